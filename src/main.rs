//! The `nehr-probe` binary: parse, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use nehr_probe::cli::Cli;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                // Nagios reads 3 as UNKNOWN: a broken check command line must not look CRITICAL.
                _ if args.get(1).is_some_and(|a| a == "check") => 3,
                _ => 2,
            });
        }
    };
    let usage_error = cli.command.usage_error_code();
    match nehr_probe::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("nehr-probe: {e:#}");
            ExitCode::from(usage_error)
        }
    }
}
