//! The provider binary as a go-plugin server, without Terraform: the cookie check, the
//! handshake line, and the socket removed on SIGTERM. (Terraform's own handshake, AutoMTLS with
//! its P-521 client certificate and every RPC are exercised by the terraform tests.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

fn provider() -> Command {
    Command::new(env!("CARGO_BIN_EXE_terraform-provider-ebssnap"))
}

#[test]
fn without_terraforms_cookie_the_binary_says_what_it_is_and_exits_1() {
    let out = provider()
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    // One human paragraph: what it is, that Terraform starts it, its version.
    assert!(
        err.contains("Terraform provider for scheduled EBS snapshots"),
        "{err}"
    );
    assert!(err.contains("Terraform starts it"), "{err}");
    assert!(err.contains(env!("CARGO_PKG_VERSION")), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn version_prints_the_version() {
    let out = provider().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("terraform-provider-ebssnap {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The docs generator writes only into this repository: `docs --help` once made a directory
/// named `--help`; any directory that is not the repository is refused, and nothing is written.
#[test]
fn the_docs_generator_never_writes_outside_the_repository() {
    let dir = std::env::temp_dir().join(format!("ebssnap-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for args in [
        vec!["docs", "--help"],
        vec!["docs"],
        vec!["docs", "."],
        vec!["docs", "--out", "."],
        vec!["docs", "--out", "elsewhere"],
    ] {
        let out = provider().args(&args).current_dir(&dir).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("usage: terraform-provider-ebssnap docs --out"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "written: {left:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_terraform_without_protocol_6_is_refused() {
    let out = provider()
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "4,5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("this provider speaks 6"));
}

#[test]
fn the_handshake_names_a_fresh_socket_and_sigterm_removes_it() {
    let dir = std::env::temp_dir().join(format!("ebssnap-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let client = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    let mut child = provider()
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_UNIX_SOCKET_DIR", &dir)
        .env("PLUGIN_CLIENT_CERT", &client)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let parts: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(&parts[..3], &["1", "6", "unix"], "{line}");
    assert_eq!(parts[4], "grpc");
    let socket = std::path::PathBuf::from(parts[3]);
    assert!(socket.starts_with(&dir), "{line}");
    assert!(socket.exists());
    // The server certificate: unpadded standard base64 of a DER certificate.
    assert!(!parts[5].is_empty() && !parts[5].ends_with('='), "{line}");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!socket.exists(), "the socket file is removed");
    std::fs::remove_dir_all(dir).ok();
}
