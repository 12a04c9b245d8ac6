//! `nehr-probe serve`: the exporter for continuous monitoring. Probes each target every
//! `--interval` ([`exporter`]), serves what Prometheus scrapes ([`http`]: `/metrics`,
//! blackbox-style `/probe` with its own series in [`probe_metrics`], `/healthz`) and a
//! landing page ([`page`]); several targets come from a `--config` file ([`config`]).
//! Every login goes through the target's [`gate`] (the `/probe` policy); who may
//! connect and what they must show is the `--web-config` ([`web_config`], checked on
//! each request by [`access`]); [`listener`] holds the server up against slow,
//! idle and greedy clients.
//!
//! It must never probe an address a scraper chose (`/probe` takes a configured name,
//! never a URL), never put error text in a label, never show the password or a token,
//! and it logs one line per change of a target's outcome, not one per probe.

pub mod access;
pub mod args;
pub mod config;
pub mod door;
pub mod exporter;
pub mod gate;
pub mod http;
pub mod listener;
pub mod page;
pub mod probe_metrics;
pub mod state;
pub mod strip;
pub mod web_config;
pub mod web_load;

use tokio_util::sync::CancellationToken;

pub use args::{DEFAULT_TARGET, Log, ServeArgs, ServeError, stderr_log};
pub use config::resolve_targets;
pub use exporter::Exporter;

/// `nehr-probe serve`: runs until Ctrl-C or SIGTERM; SIGHUP reads `--config` and
/// `--web-config` again.
pub async fn run(args: &ServeArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let log = stderr_log();
    let exporter = Exporter::start(args, log.clone()).await?;
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())?;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = hangup.recv() => exporter.reload(),
            }
        }
    }
    #[cfg(not(unix))]
    shutdown.cancelled().await;
    exporter.stop().await;
    log("stopped");
    Ok(())
}
