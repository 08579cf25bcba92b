//! The Terraform provider binary. Terraform starts it (with its plugin handshake in the
//! environment) and reads the handshake line from stdout; nothing else may print there.
//!
//! Run by hand it explains itself (`--version` prints the version). `docs --out DIR` regenerates
//! the registry docs of the repository DIR (a build-time tool for `make docs`: it refuses a
//! directory that is not this project's repository, so it never writes anywhere else).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ebssnap::provider::plugin::go_plugin::{MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn by_hand() -> String {
    format!(
        "terraform-provider-ebssnap {VERSION}: the Terraform provider for scheduled EBS snapshots \
         (ebssnap_policy, ebssnap_target). It is not run by hand: Terraform starts it when a \
         configuration requires the provider rackerlabs/ebssnap (see `terraform init`). \
         Documentation: https://registry.terraform.io/providers/rackerlabs/ebssnap/latest/docs; \
         the runner it schedules is the `ebssnap` command."
    )
}

/// The repository to write docs into: `--out DIR` (required), which must hold this project.
fn docs_root(args: &[String]) -> Result<PathBuf, String> {
    let usage = "usage: terraform-provider-ebssnap docs --out <repository directory>";
    let dir = match args {
        [flag, dir] if flag == "--out" => PathBuf::from(dir),
        _ => return Err(usage.into()),
    };
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    let is_ours = manifest.contains("name = \"ebssnap\"")
        && Path::new(&dir)
            .join("examples/provider/provider.tf")
            .is_file();
    if !is_ours {
        return Err(format!(
            "{} is not the ebssnap repository (no Cargo.toml of the crate ebssnap and \
             examples/provider/provider.tf): refusing to write docs there; {usage}",
            dir.display()
        ));
    }
    Ok(dir)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version" | "-v" | "version") => {
            println!("terraform-provider-ebssnap {VERSION}");
            return ExitCode::SUCCESS;
        }
        Some("docs") => {
            let root = match docs_root(&args[1..]) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("terraform-provider-ebssnap docs: {e}");
                    return ExitCode::from(2);
                }
            };
            return match ebssnap::provider::docs::write_all(&root) {
                Ok(files) => {
                    for f in files {
                        eprintln!("wrote {}", f.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("terraform-provider-ebssnap docs: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    if std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE) {
        eprintln!("{}", by_hand());
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("terraform-provider-ebssnap: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ebssnap::provider::serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("terraform-provider-ebssnap: {e}");
            ExitCode::FAILURE
        }
    }
}
