//! The command line: one clap parser, a subcommand per job. Each subcommand's flags
//! live beside the code that runs it; this module only names them.

use clap::{Parser, Subcommand};

use crate::check::CheckArgs;
use crate::load::LoadArgs;
use crate::mock::MockArgs;
use crate::report::ReportArgs;
use crate::serve::ServeArgs;

/// Load-tests and monitors the NEHR login endpoint (POST …/nehrapi/login/getToken).
#[derive(Debug, Parser)]
#[command(name = "nehr-probe", version, about, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load test: open model (--rps, --stages) or closed model; report and thresholds at the end
    Load(Box<LoadArgs>),
    /// One probe for cron and Nagios/Icinga: status line with perfdata, JSON, or metrics
    Check(CheckArgs),
    /// A server that answers as the API document says, with injectable latency and faults
    Mock(MockArgs),
    /// Exporter for Prometheus: probes every --interval; serves /metrics, /probe and /healthz
    Serve(ServeArgs),
    /// Render a saved JSON load report again, or merge several into one
    Report(ReportArgs),
    /// Print the JSON Schema that answers are validated against
    Schema(SchemaArgs),
}

#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Print the schema of 401/500 error bodies instead
    #[arg(long)]
    pub error: bool,
}

/// The exit code of a usage or start-up error of the subcommand named `name` (the
/// first argument, parsed or not): UNKNOWN (3) for `check`, as Nagios expects, so a
/// broken check command line does not look CRITICAL; 2 for every other command.
pub fn usage_error_code(name: Option<&std::ffi::OsStr>) -> u8 {
    if name.is_some_and(|n| n == "check") { crate::check::Status::Unknown as u8 } else { 2 }
}

/// What a usage or start-up error of this command line prints on stdout besides its
/// line on stderr: for `check`, the UNKNOWN status line ([`crate::check::verdict::unknown_line`]),
/// since Nagios shows only a plugin's stdout; nothing when `--format json` or
/// `--format prometheus` is asked for, whose readers a status line would break, nor for
/// the other commands.
pub fn usage_error_stdout(args: &[std::ffi::OsString], error: &str) -> Option<String> {
    if args.get(1).is_none_or(|name| name != "check") {
        return None;
    }
    let words: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    let format = words.iter().enumerate().rev().find_map(|(i, word)| match *word {
        "--format" => Some(words.get(i + 1).copied().unwrap_or("")),
        _ => word.strip_prefix("--format="),
    });
    match format {
        Some("json" | "prometheus") => None,
        _ => Some(crate::check::verdict::unknown_line(error) + "\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdout_of(args: &[&str]) -> Option<String> {
        let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        usage_error_stdout(&args, "--timeout must be more than 0 | x")
    }

    #[test]
    fn only_a_nagios_check_echoes_its_usage_error_on_stdout() {
        let line = Some("NEHR-TOKEN UNKNOWN - --timeout must be more than 0 / x\n".to_string());
        assert_eq!(stdout_of(&["nehr-probe", "check", "--timeout", "0"]), line);
        assert_eq!(stdout_of(&["nehr-probe", "check", "--format", "nagios"]), line);
        assert_eq!(stdout_of(&["nehr-probe", "check", "--format", "xml"]), line);
        assert_eq!(stdout_of(&["nehr-probe", "check", "--format", "json"]), None);
        assert_eq!(stdout_of(&["nehr-probe", "check", "--format=prometheus"]), None);
        assert_eq!(stdout_of(&["nehr-probe", "load", "--timeout", "0"]), None);
        assert_eq!(stdout_of(&["nehr-probe"]), None);
    }
}
