//! nehr-probe: load-tests and monitors the NEHR login endpoint. The binary is a thin
//! shell over [`run`]; tests drive every command through the same entry points.
//!
//! One data flow: a [`target::Target`] becomes a [`probe::Prober`], whose one call
//! yields a [`probe::Observation`]; each command is a scheduler plus a sink over it.

pub mod check;
pub mod cli;
pub mod clock;
pub mod conn;
pub mod load;
pub mod metrics;
pub mod mock;
pub mod probe;
pub mod push;
pub mod secret;
pub mod serve;
pub mod shutdown;
pub mod target;
pub mod units;
pub mod validate;

use std::io::Write;

use cli::{Cli, Command};

/// Runs a parsed command line to its end; returns the process exit code. Errors are
/// usage, config or start-up errors: the caller prints them on one line and exits with
/// [`Command::usage_error_code`].
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let shutdown = shutdown::on_signals();
        match &cli.command {
            Command::Load(args) => load::run(args, shutdown).await,
            Command::Check(args) => check::run(args).await,
            Command::Mock(args) => mock::run(args, shutdown).await.map(|()| 0),
            Command::Serve(args) => serve::run(args, shutdown).await.map(|()| 0),
            Command::Report(args) => load::report::run(args),
            Command::Schema(args) => {
                print_stdout(if args.error { validate::ERROR_SCHEMA } else { validate::TOKEN_SCHEMA })?;
                Ok(0)
            }
        }
    })
}

/// With `--mock`, starts the embedded mock on a loopback port and aims `target` at it.
/// The server lives as long as the returned value.
pub async fn start_embedded_mock(
    target: &mut target::Target,
    args: &target::TargetArgs,
) -> anyhow::Result<Option<mock::MockServer>> {
    if !args.mock {
        return Ok(None);
    }
    let server = mock::MockServer::start(&mock::MockArgs::default()).await?;
    target.aim_at(server.addr());
    Ok(Some(server))
}

/// Prints to stdout; a closed pipe (`| head`) is not an error.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
