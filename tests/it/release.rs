//! The release artifacts (`make release` → dist/): names, layout, checksums, the provider
//! installing through a filesystem mirror with `terraform init`, and the static `bootstrap`
//! answering a Lambda invocation in an empty environment.

use std::path::{Path, PathBuf};
use std::process::Command;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// dist/, from `EBSSNAP_DIST` (set by `make test`). Under CI=true a missing dist/ fails.
fn dist() -> Option<PathBuf> {
    match std::env::var("EBSSNAP_DIST").map(PathBuf::from) {
        Ok(d) if d.is_dir() => Some(d),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("dist/ missing under CI=true: run `make release` (make test does)")
        }
        _ => {
            eprintln!("SKIP: EBSSNAP_DIST not set; run `make release`");
            None
        }
    }
}

fn python(args: &[&str]) -> String {
    let out = Command::new("python3")
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into()
}

/// (name, unix mode) of every entry of a zip.
fn zip_entries(zip: &Path) -> Vec<(String, u32)> {
    let listing = python(&[
        "-c",
        "import sys,zipfile\nfor i in zipfile.ZipFile(sys.argv[1]).infolist(): print(i.filename, i.external_attr >> 16)",
        zip.to_str().unwrap(),
    ]);
    listing
        .lines()
        .filter_map(|l| {
            l.rsplit_once(' ')
                .map(|(n, m)| (n.to_string(), m.parse().unwrap_or(0)))
        })
        .collect()
}

fn extract(zip: &Path, name: &str, to: &Path) {
    python(&[
        "-c",
        "import sys,zipfile\nzipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])",
        zip.to_str().unwrap(),
        name,
        to.to_str().unwrap(),
    ]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(to.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn sha256_hex(path: &Path) -> String {
    python(&[
        "-c",
        "import sys,hashlib\nprint(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())",
        path.to_str().unwrap(),
    ])
    .trim()
    .to_string()
}

#[test]
fn release_artifacts_have_the_registry_layout_and_checksums() {
    let Some(dist) = dist() else { return };
    let provider_zip = dist.join(format!(
        "terraform-provider-ebssnap_{VERSION}_linux_amd64.zip"
    ));
    let manifest = dist.join(format!(
        "terraform-provider-ebssnap_{VERSION}_manifest.json"
    ));
    let sums = dist.join(format!("terraform-provider-ebssnap_{VERSION}_SHA256SUMS"));
    let runner_zip = dist.join(format!("ebssnap-runner_{VERSION}_lambda_x86_64.zip"));
    for f in [&provider_zip, &manifest, &sums, &runner_zip] {
        assert!(f.is_file(), "missing {}", f.display());
    }
    let entries = zip_entries(&provider_zip);
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].0,
        format!("terraform-provider-ebssnap_v{VERSION}")
    );
    assert_eq!(entries[0].1 & 0o111, 0o111, "the provider is executable");
    let entries = zip_entries(&runner_zip);
    assert_eq!(
        entries.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["bootstrap"],
        "bootstrap at the root, alone"
    );
    assert_eq!(entries[0].1 & 0o111, 0o111, "bootstrap is executable");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        std::fs::read(&manifest).unwrap(),
        std::fs::read(root.join("terraform-registry-manifest.json")).unwrap()
    );
    let listed = std::fs::read_to_string(&sums).unwrap();
    for f in [&provider_zip, &manifest, &runner_zip] {
        let line = format!(
            "{}  {}",
            sha256_hex(f),
            f.file_name().unwrap().to_string_lossy()
        );
        assert!(
            listed.lines().any(|l| l == line),
            "SHA256SUMS lacks {line:?}:\n{listed}"
        );
    }
    // The size budget (docs/benchmarks.md): each binary under 20 MB, the Lambda zip under 8 MB.
    for f in [&provider_zip, &runner_zip] {
        let size = unzipped_size(f);
        assert!(
            size < 20_000_000,
            "{}: the binary is {size} bytes",
            f.display()
        );
    }
    let zipped = std::fs::metadata(&runner_zip).unwrap().len();
    assert!(zipped < 8_000_000, "the Lambda zip is {zipped} bytes");
}

/// The uncompressed size of a zip's entries.
fn unzipped_size(zip: &Path) -> u64 {
    python(&[
        "-c",
        "import sys,zipfile\nprint(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))",
        zip.to_str().unwrap(),
    ])
    .trim()
    .parse()
    .unwrap_or(u64::MAX)
}

/// scripts/smoke_provider.py on the provider zip of `platform` (it must pass); its output.
fn smoke(dist: &Path, platform: &str, terraform: &str, extra: &[&str]) -> String {
    let zip = dist.join(format!(
        "terraform-provider-ebssnap_{VERSION}_{platform}.zip"
    ));
    let script = script("smoke_provider.py");
    let mut args = vec![
        script.as_str(),
        zip.to_str().unwrap(),
        "--terraform",
        terraform,
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = run("python3", &args, &[]);
    assert_eq!(code, 0, "{out}{err}");
    out
}

/// scripts/smoke_provider.py, which the release workflow also runs on macOS, Windows and Linux
/// arm64 runners: install from a filesystem mirror, `terraform init`, `apply` with a data source
/// and both provider functions.
#[test]
fn the_provider_installs_from_a_filesystem_mirror_and_answers_terraform() {
    let Some(dist) = dist() else { return };
    let Some(terraform) = crate::tf::terraform_binary() else {
        return;
    };
    let out = smoke(&dist, "linux_amd64", &terraform, &[]);
    assert!(
        out.contains(&format!(
            "ok   terraform init installed rackerlabs/ebssnap v{VERSION} (linux_amd64)"
        )),
        "{out}"
    );
    assert!(
        out.contains("validate_expression and next_runs answered"),
        "{out}"
    );

    // Not a release zip: refused before Terraform runs.
    let (code, _, err) = run(
        "python3",
        &[&script("smoke_provider.py"), "/tmp/provider.zip"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
}

#[tokio::test]
async fn the_static_bootstrap_answers_a_lambda_invocation_in_an_empty_environment() {
    let Some(dist) = dist() else { return };
    let Some(m) = crate::moto::Moto::start() else {
        return;
    };
    let work = std::env::temp_dir().join(format!("ebssnap-bootstrap-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    extract(
        &dist.join(format!("ebssnap-runner_{VERSION}_lambda_x86_64.zip")),
        "bootstrap",
        &work,
    );
    let bootstrap = work.join("bootstrap");
    let ldd = Command::new("ldd").arg(&bootstrap).output().expect("ldd");
    let ldd_text = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        ldd_text.contains("statically linked") || ldd_text.contains("not a dynamic executable"),
        "bootstrap is not static: {ldd_text}"
    );
    let c = m.clients().await;
    crate::fleet::volume(&c, &[("Backup", "yes")]).await;
    let pol = crate::docs::policy("std", 7, 1);
    crate::docs::store_policy(&c, &pol).await;
    // The event is a pointer: the target's schedule must exist (docs/design.md §3).
    let stored = crate::docs::target(
        "std",
        "t",
        serde_json::json!({"volume_tags": {"Backup": "yes"}}),
    );
    crate::docs::store_target(&c, &stored).await;
    let target = crate::docs::with_run(stored, &crate::docs::recent_fire(0));
    let (port, answers) =
        crate::lambda::fake_runtime_api(vec![target, serde_json::json!({"ebssnap": 9})]);
    let mut child = crate::lambda::as_lambda(&bootstrap, &m, port)
        .current_dir(&work)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first = answers.recv_timeout(std::time::Duration::from_secs(60));
    let second = answers.recv_timeout(std::time::Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let (_, kind, report) = first.expect("an answer to the first invocation");
    assert_eq!(kind, "response");
    assert_eq!(report["created"].as_array().unwrap().len(), 1);
    let (_, kind, err) = second.expect("an answer to the second invocation");
    assert_eq!(kind, "error");
    assert_eq!(err["errorType"], "NonRetryable");
    std::fs::remove_dir_all(&work).ok();
}

fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{program} not found ({e}): run `make deps`"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn script(name: &str) -> String {
    format!("{}/scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A copy of dist/ to tamper with.
fn copy_dist(dist: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(dist).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn verify_dist_accepts_the_release_and_names_what_is_wrong() {
    let Some(dist) = dist() else { return };
    let (code, out, _) = run(
        "python3",
        &[&script("verify_dist.py"), dist.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("terraform-provider-ebssnap_{VERSION}_linux_amd64.zip: terraform-provider-ebssnap_v{VERSION} linux/amd64 static")), "{out}");
    assert!(out.contains("bootstrap linux/amd64 static"), "{out}");

    // A dynamically linked bootstrap, and a digest that no longer matches.
    let bad = std::env::temp_dir().join(format!("ebssnap-dist-bad-{}", std::process::id()));
    copy_dist(&dist, &bad);
    let runner = bad.join(format!("ebssnap-runner_{VERSION}_lambda_x86_64.zip"));
    python(&[
        "-c",
        "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], 'w'); z.write('/bin/true', 'bootstrap'); z.close()",
        runner.to_str().unwrap(),
    ]);
    let (code, out, _) = run(
        "python3",
        &[&script("verify_dist.py"), bad.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("dynamically linked"), "{out}");
    assert!(out.contains("missing or with a wrong digest"), "{out}");
    std::fs::remove_dir_all(bad).ok();
}

#[test]
fn sha256sums_is_signed_with_the_given_key_and_verify_dist_checks_it() {
    let Some(dist) = dist() else { return };
    let home = std::env::temp_dir().join(format!("ebssnap-gnupg-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let gh = home.to_str().unwrap();
    let env = [("GNUPGHOME", gh), ("GPG_KEY_ID", "release@ebssnap.invalid")];
    let (code, _, err) = run(
        "gpg",
        &[
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "ebssnap release test <release@ebssnap.invalid>",
            "rsa2048",
            "sign",
            "never",
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    let signed = home.join("dist");
    copy_dist(&dist, &signed);
    let sums = signed.join(format!("terraform-provider-ebssnap_{VERSION}_SHA256SUMS"));
    let (code, _, err) = run(
        "python3",
        &[&script("release.py"), "sign", sums.to_str().unwrap()],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    let sig = std::fs::read(signed.join(format!(
        "terraform-provider-ebssnap_{VERSION}_SHA256SUMS.sig"
    )))
    .unwrap();
    assert!(
        !sig.is_empty() && sig[0] != b'-',
        "a binary (not armored) detached signature"
    );
    let (code, out, _) = run(
        "python3",
        &[&script("verify_dist.py"), signed.to_str().unwrap()],
        &env,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SHA256SUMS.sig: good signature"), "{out}");
    // A changed SHA256SUMS no longer verifies.
    let mut text = std::fs::read_to_string(&sums).unwrap();
    text.push('\n');
    std::fs::write(&sums, text).unwrap();
    let (code, out, _) = run(
        "python3",
        &[&script("verify_dist.py"), signed.to_str().unwrap()],
        &env,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not verify"), "{out}");
    let _ = run("gpgconf", &["--kill", "all"], &env);
    std::fs::remove_dir_all(home).ok();
}

/// `make release-all` adds the other platforms. When dist/ holds them: verify-dist reads every
/// header (OS, architecture, static on Linux, system libraries only on macOS and Windows), and
/// the Linux arm64 binaries run under qemu-user (the runner prints its version; the provider,
/// started without Terraform, says it is a plugin and exits 1, as go-plugin's do, and under
/// Terraform answers a data source and both functions).
#[test]
fn the_other_platforms_when_built_have_the_right_headers_and_arm64_runs_under_qemu() {
    let Some(dist) = dist() else { return };
    let lambda = dist.join(format!("ebssnap-runner_{VERSION}_lambda_arm64.zip"));
    if !lambda.exists() {
        eprintln!(
            "SKIP: only the host platform in dist/ (the others are made by `make release-all`, not by `make test`)"
        );
        return;
    }
    let (code, out, _) = run(
        "python3",
        &[&script("verify_dist.py"), dist.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    for line in [
        format!("ebssnap-runner_{VERSION}_lambda_arm64.zip: bootstrap linux/arm64 static"),
        format!("_linux_arm64.zip: terraform-provider-ebssnap_v{VERSION} linux/arm64 static"),
        format!(
            "_darwin_arm64.zip: terraform-provider-ebssnap_v{VERSION} darwin/arm64 system libraries only"
        ),
        format!(
            "_darwin_amd64.zip: terraform-provider-ebssnap_v{VERSION} darwin/amd64 system libraries only"
        ),
        format!(
            "_windows_amd64.zip: terraform-provider-ebssnap_v{VERSION}.exe windows/amd64 system DLLs only"
        ),
    ] {
        assert!(out.contains(&line), "{line} not in\n{out}");
    }
    let dir = std::env::temp_dir().join(format!("ebssnap-arm64-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    extract(&lambda, "bootstrap", &dir);
    let (code, out, err) = run(
        "qemu-aarch64-static",
        &[dir.join("bootstrap").to_str().unwrap(), "--version"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("ebssnap {VERSION}"));
    let provider = format!("terraform-provider-ebssnap_v{VERSION}");
    extract(
        &dist.join(format!(
            "terraform-provider-ebssnap_{VERSION}_linux_arm64.zip"
        )),
        &provider,
        &dir,
    );
    let (code, out, err) = run(
        "qemu-aarch64-static",
        &[dir.join(&provider).to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("Terraform starts it"), "{err}");
    std::fs::remove_dir_all(dir).ok();

    // The arm64 provider under qemu, driven by the real terraform (smoke_provider.py --run-with).
    if let Some(terraform) = crate::tf::terraform_binary() {
        let out = smoke(
            &dist,
            "linux_arm64",
            &terraform,
            &["--run-with", "qemu-aarch64-static"],
        );
        assert!(
            out.contains("validate_expression and next_runs answered"),
            "{out}"
        );
    }
}

/// The release workflow cannot run here (no GitHub), so its wiring is checked against the
/// project: it builds with `make release-all` on tags, runs the smoke script on a runner of
/// every platform release.py packages (and that `make release-all` passes it), publishes only
/// after both, and names scripts that exist.
#[test]
fn the_release_workflow_builds_and_runs_every_platform_the_release_packages() {
    let python = std::env::var("EBSSNAP_PYTHON").unwrap_or_else(|_| "python3".into());
    let check = r#"
import importlib.util, os, re, sys, yaml
root = sys.argv[1]
wf = yaml.safe_load(open(os.path.join(root, ".github/workflows/release.yml")))
spec = importlib.util.spec_from_file_location("release", os.path.join(root, "scripts/release.py"))
release = importlib.util.module_from_spec(spec); spec.loader.exec_module(release)
make = open(os.path.join(root, "Makefile")).read()
text = open(os.path.join(root, ".github/workflows/release.yml")).read()
on = wf.get("on", wf.get(True))
assert on["push"]["tags"] == ["v*"], on
jobs = wf["jobs"]
build = " ".join(s.get("run", "") for s in jobs["build"]["steps"])
assert "make release-all" in build and "make verify-dist" in build, build
smoke = {m["platform"] for m in jobs["smoke"]["strategy"]["matrix"]["include"]}
assert smoke == set(release.PROVIDER_PLATFORMS), (smoke, release.PROVIDER_PLATFORMS)
steps = " ".join(s.get("run", "") for s in jobs["smoke"]["steps"])
assert "scripts/smoke_provider.py" in steps and "lambda_arm64" in steps, steps
assert set(jobs["publish"]["needs"]) == {"build", "smoke"}, jobs["publish"]["needs"]
assert "release.py sign" in " ".join(s.get("run", "") for s in jobs["publish"]["steps"])
recipe = make.split("\nrelease-all:", 1)[1].split("\n\n", 1)[0]
for platform in release.PROVIDER_PLATFORMS:
    if platform != "linux_amd64":
        assert f"--provider {platform}=" in recipe, (platform, recipe)
for arch in release.LAMBDA_ARCHES:
    if arch != "x86_64":
        assert f"--lambda {arch}=" in recipe, (arch, recipe)
for script in set(re.findall(r"scripts/[a-z_]+\.py", text)):
    assert os.path.isfile(os.path.join(root, script)), script
print("ok", sorted(smoke))
"#;
    let out = Command::new(python)
        .args(["-c", check, env!("CARGO_MANIFEST_DIR")])
        .output()
        .expect("python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with(
            "ok ['darwin_amd64', 'darwin_arm64', 'linux_amd64', 'linux_arm64', 'windows_amd64']"
        ),
        "{text}"
    );
}
