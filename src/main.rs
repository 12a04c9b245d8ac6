//! The `nehr-probe` binary: parse, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use nehr_probe::cli::{Cli, usage_error_code, usage_error_stdout};

/// mimalloc rather than glibc's malloc: a load test allocates a few times a call, and
/// glibc's malloc and free were 5-7 % of the load hot path's CPU (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let usage_error = usage_error_code(args.get(1).map(std::ffi::OsString::as_os_str));
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
            } else {
                usage_error_said(&args, &one_line(&e.render().to_string()));
            }
            return ExitCode::from(usage_error);
        }
    };
    match nehr_probe::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            usage_error_said(&args, &format!("{e:#}"));
            ExitCode::from(usage_error)
        }
    }
}

/// A usage or start-up error on its one stderr line, and for `check` its UNKNOWN status
/// line on stdout too.
fn usage_error_said(args: &[std::ffi::OsString], error: &str) {
    eprintln!("nehr-probe: {error}");
    if let Some(line) = usage_error_stdout(args, error) {
        // A closed stdout is not an error; the status is in the exit code anyway.
        let _ = nehr_probe::util::fs::print_stdout(&line);
    }
}

/// clap's message on one line: what was wrong and the hint, without the usage block
/// (stderr carries one line per error, so a log or a Nagios status shows all of it).
fn one_line(rendered: &str) -> String {
    let text: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .collect();
    let joined = text.join(" ");
    let joined = joined.strip_prefix("error: ").unwrap_or(&joined);
    format!("{joined} (see --help)")
}
