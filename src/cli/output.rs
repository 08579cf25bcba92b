//! What commands print: stdout carries reports and tables, stderr everything else.

use std::io::Write;

use serde::Serialize;

use crate::core::report::Report;
use crate::error::exit;

/// Writes to stdout. A closed pipe (`ebssnap snapshots | head`) is not an error: the exit code
/// still reflects the run, so write errors are ignored rather than panicking like `print!`.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

/// `println!` into a `String` buffer.
macro_rules! outln {
    ($buf:expr, $($arg:tt)*) => {{
        let _ = ::std::fmt::Write::write_fmt(&mut $buf, format_args!($($arg)*));
        $buf.push('\n');
    }};
}
pub(crate) use outln;

pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => emit(&(s + "\n")),
        Err(e) => eprintln!("ebssnap: error: cannot serialize the output: {e}"),
    }
}

/// Prints a report and gives the exit code it stands for.
pub fn finish(report: &Report, json: bool) -> i32 {
    if json {
        print_json(report)
    } else {
        emit(&report.human())
    }
    if report.failed() {
        exit::VOLUME_FAILED
    } else {
        exit::OK
    }
}
