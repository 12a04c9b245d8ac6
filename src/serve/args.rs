//! `serve`'s flags and its start-up errors, and where its log lines go: what every
//! part of the exporter reads, kept apart so the parts depend on it and not on each
//! other.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::call::target::TargetArgs;
use crate::util::units::{parse_duration, parse_period};

/// The name of the one target given by flags or environment (no `--config`).
pub const DEFAULT_TARGET: &str = "default";

/// `nehr-probe serve`: probe on a schedule, export metrics for Prometheus.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Address to serve /metrics, /probe and the landing page on. Loopback by default;
    /// give e.g. 0.0.0.0:9464 to let a Prometheus on another machine scrape it
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Time between two probes of each target; a shorter one than --probe-min-interval
    /// probes every --probe-min-interval instead
    #[arg(allow_hyphen_values = true, long, default_value = "30s", value_parser = parse_period, value_name = "DURATION")]
    pub interval: Duration,

    /// TOML file naming several targets: a [targets.NAME] table each, with url,
    /// username, password_file and an optional timeout. Replaces --url, --username and
    /// the password options
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Least time between two logins of a target, whoever asks: /probe requests inside
    /// it get the last result and its age; concurrent ones share one login
    #[arg(allow_hyphen_values = true, long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub probe_min_interval: Duration,

    /// Web configuration file in the Prometheus exporters' format (exporter-toolkit):
    /// TLS (tls_server_config), basic auth (basic_auth_users), response headers
    #[arg(long, value_name = "FILE")]
    pub web_config: Option<PathBuf>,

    /// Connections served at once; more wait until one closes
    #[arg(allow_hyphen_values = true, long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65536), value_name = "N")]
    pub max_connections: u32,

    /// Time a client has to send a request's headers (and with TLS, to finish the
    /// handshake); also how long an idle connection is kept
    #[arg(allow_hyphen_values = true, long, default_value = "10s", value_parser = parse_period, value_name = "DURATION")]
    pub header_timeout: Duration,
}

/// A bad `serve` command line or config file; each says what to fix, on one line.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    WebConfig(#[from] super::web_config::WebConfigError),
    #[error(
        "give the targets either in --config or with --url/--mock/--resolve/--then, not both (a target's resolve and then go in its table)"
    )]
    ConfigAndFlags,
    #[error("cannot read --config {path}: {cause}")]
    ReadConfig { path: String, cause: std::io::Error },
    #[error("--config {path}, line {line}: {message}")]
    ParseConfig { path: String, line: usize, message: String },
    #[error("--config {path} names no targets; add e.g. [targets.production] with url, username and password_file")]
    NoTargets { path: String },
    #[error(
        "--config {path}: invalid target name {name:?}: use letters, digits, '_', '-' and '.', starting with a letter or digit"
    )]
    BadName { path: String, name: String },
    #[error("--config {path}, target {name:?}: invalid {key} {value:?}: {why}")]
    BadDuration { path: String, name: String, key: &'static str, value: String, why: String },
    #[error(
        "--config {path}, target {name:?}: wrong_password_username and wrong_password_every need wrong_password_probe = true"
    )]
    DoorWithoutProbe { path: String, name: String },
    #[error("--config {path}, target {name:?}: {why}")]
    BadResolve { path: String, name: String, why: String },
    /// A key of a target's table that is wrong as written (TLS settings).
    #[error("--config {path}, target {name:?}: {why}")]
    BadEntry { path: String, name: String, why: String },
    #[error(transparent)]
    Flags(crate::call::target::ConfigError),
    #[error("--config {path}, target {name:?}: {cause}")]
    Target { path: String, name: String, cause: crate::call::target::ConfigError },
    #[error("cannot listen on {addr}: {cause}")]
    Bind { addr: SocketAddr, cause: std::io::Error },
}

/// Where log lines go: stderr in the binary, a buffer in tests.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// Log lines on stderr, prefixed with the command.
pub fn stderr_log() -> Log {
    Arc::new(|line| eprintln!("nehr-probe serve: {line}"))
}
