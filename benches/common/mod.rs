//! What the benchmarks share (each bench is its own crate: included with `#[path]`, and each uses
//! only some of it).
#![allow(dead_code)]

use std::process::Command;
use std::time::Instant;

/// A number from the environment, else `default`.
pub fn env_num<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A binary of this build: benches run from `<target>/<triple>/release/deps/`, the binaries are
/// one level up.
pub fn bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join(name)
}

/// The command under a small Python wrapper that reports the child's peak RSS (getrusage).
pub fn with_rss(program: &std::path::Path, args: &[String]) -> Command {
    let mut c = Command::new(std::env::var("EBSSNAP_PYTHON").unwrap_or_else(|_| "python3".into()));
    c.arg("-c")
        .arg("import resource,subprocess,sys; r=subprocess.run(sys.argv[1:]); sys.stderr.write('RSS_KIB=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
        .arg(program)
        .args(args);
    c
}

/// Runs a [`with_rss`] command: (wall seconds, peak RSS in KiB, stdout). Panics when it fails.
pub fn rss_of(cmd: &mut Command) -> (f64, u64, String) {
    let t0 = Instant::now();
    let out = cmd.output().expect("run");
    let secs = t0.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed: {err}");
    let rss = err
        .lines()
        .find_map(|l| l.strip_prefix("RSS_KIB="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (secs, rss, String::from_utf8_lossy(&out.stdout).into())
}
