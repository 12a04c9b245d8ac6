//! nehr-probe: load-tests and monitors the NEHR login endpoint. The binary is a thin
//! shell over [`run`]; tests drive every command through the same entry points.
//!
//! One data flow: a [`call::target::Target`] becomes a [`call::Prober`], whose one call
//! yields a [`call::Observation`]; each command is a scheduler plus a sink over it.
//! ARCHITECTURE.md maps the modules; docs/ holds the contracts users rely on.

pub mod call;
pub mod check;
pub mod cli;
pub mod load;
pub mod metrics;
pub mod mock;
pub mod report;
pub mod serve;
#[cfg(test)]
mod testing;
pub mod util;

use cli::{Cli, Command};

/// Runs a parsed command line to its end; returns the process exit code. Errors are
/// usage, config or start-up errors: the caller prints them on one line and exits with
/// [`cli::usage_error_code`].
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let signals = util::shutdown::on_signals();
        match &cli.command {
            Command::Load(args) => load::run(args, &signals).await,
            Command::Check(args) => check::run(args).await,
            Command::Mock(args) => mock::run(args, signals.token()).await.map(|()| 0),
            Command::Serve(args) => serve::run(args, signals.token()).await.map(|()| 0),
            Command::Report(args) => report::run(args),
            Command::Schema(args) => {
                let schema = if args.error { call::validate::ERROR_SCHEMA } else { call::validate::TOKEN_SCHEMA };
                util::fs::print_stdout(schema)?;
                Ok(0)
            }
        }
    })
}
