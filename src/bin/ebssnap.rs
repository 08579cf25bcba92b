//! The `ebssnap` binary: the CLI, or the Lambda runtime when `AWS_LAMBDA_RUNTIME_API` is set.

use std::process::ExitCode;

use clap::Parser;
use ebssnap::cli::{self, Cli, LogFormat};

fn main() -> ExitCode {
    let lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ebssnap: error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    if lambda {
        cli::init_logging(LogFormat::Json, "info");
        return match runtime.block_on(ebssnap::lambda::serve()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ebssnap: lambda runtime stopped: {e}");
                ExitCode::from(3)
            }
        };
    }
    let args = Cli::parse();
    let default_level = if args.global.log_format == LogFormat::Json {
        "info"
    } else {
        "warn"
    };
    cli::init_logging(args.global.log_format, default_level);
    let code = runtime.block_on(cli::main(args));
    ExitCode::from(u8::try_from(code).unwrap_or(3))
}
