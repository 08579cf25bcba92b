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
    // Sizes (targets in docs/benchmarks.md): under 20 MB each, compressed or not.
    for f in [&provider_zip, &runner_zip] {
        assert!(
            std::fs::metadata(f).unwrap().len() < 20 * 1024 * 1024,
            "{} is over 20 MB",
            f.display()
        );
    }
}

#[test]
fn the_provider_installs_from_a_filesystem_mirror_with_terraform_init() {
    let Some(dist) = dist() else { return };
    let Some(terraform) = crate::tf::terraform_binary() else {
        return;
    };
    let work = std::env::temp_dir().join(format!("ebssnap-mirror-{}", std::process::id()));
    let mirror = work.join("mirror/registry.terraform.io/rackerlabs/ebssnap");
    std::fs::create_dir_all(&mirror).unwrap();
    let zip = format!("terraform-provider-ebssnap_{VERSION}_linux_amd64.zip");
    std::fs::copy(dist.join(&zip), mirror.join(&zip)).unwrap();
    let cfg = work.join("project");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        work.join("cli.tfrc"),
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/rackerlabs/ebssnap\"]\n  }}\n}}\n",
            work.join("mirror").display()
        ),
    )
    .unwrap();
    std::fs::write(
        cfg.join("main.tf"),
        format!(
            "terraform {{\n  required_providers {{\n    ebssnap = {{\n      source  = \"rackerlabs/ebssnap\"\n      version = \"{VERSION}\"\n    }}\n  }}\n}}\n\
             provider \"ebssnap\" {{\n  region = \"us-east-1\"\n}}\ndata \"ebssnap_iam_policy\" \"x\" {{}}\noutput \"ok\" {{\n  value = length(data.ebssnap_iam_policy.x.runner_policy_json) > 0\n}}\n"
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(&terraform)
            .current_dir(&cfg)
            .env("TF_CLI_CONFIG_FILE", work.join("cli.tfrc"))
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .args(args)
            .arg("-no-color")
            .output()
            .unwrap()
    };
    let init = run(&["init", "-input=false"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&init.stdout),
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(init.status.success(), "{text}");
    assert!(
        text.contains(&format!("Installed rackerlabs/ebssnap v{VERSION}")),
        "{text}"
    );
    let apply = run(&["apply", "-auto-approve", "-input=false"]);
    let text = String::from_utf8_lossy(&apply.stdout);
    assert!(
        apply.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    assert!(text.contains("ok = true"), "{text}");
    std::fs::remove_dir_all(&work).ok();
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
    // The event is a pointer: the target's schedule must exist (DESIGN §3).
    let stored = crate::docs::target(
        "std",
        "t",
        serde_json::json!({"volume_tags": {"Backup": "yes"}}),
    );
    crate::docs::store_target(&c, &stored).await;
    let target = crate::docs::with_run(stored, "2026-11-26T05:00:00Z");
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

/// `make release-all` adds the runner's Lambda bundle for arm64; when dist/ holds it, it is a
/// static aarch64 binary (verify-dist reads its header) that runs under qemu-user.
#[test]
fn the_arm64_lambda_bundle_when_built_is_static_aarch64_and_runs_under_qemu() {
    let Some(dist) = dist() else { return };
    let zip = dist.join(format!("ebssnap-runner_{VERSION}_lambda_arm64.zip"));
    if !zip.exists() {
        eprintln!(
            "SKIP: no arm64 bundle in dist/ (made by `make release-all`, not by `make test`)"
        );
        return;
    }
    let (code, out, _) = run(
        "python3",
        &[&script("verify_dist.py"), dist.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "ebssnap-runner_{VERSION}_lambda_arm64.zip: bootstrap linux/arm64 static"
        )),
        "{out}"
    );
    let dir = std::env::temp_dir().join(format!("ebssnap-arm64-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    extract(&zip, "bootstrap", &dir);
    let (code, out, err) = run(
        "qemu-aarch64-static",
        &[dir.join("bootstrap").to_str().unwrap(), "--version"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("ebssnap {VERSION}"));
    std::fs::remove_dir_all(dir).ok();
}
