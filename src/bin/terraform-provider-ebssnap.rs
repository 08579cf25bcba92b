//! The Terraform provider binary. Terraform starts it without arguments and reads the plugin
//! handshake from stdout; nothing else may print there. `terraform-provider-ebssnap docs [DIR]`
//! regenerates the registry docs under DIR (default: the current directory).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("docs") {
        let root = std::path::PathBuf::from(args.get(1).map(String::as_str).unwrap_or("."));
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
