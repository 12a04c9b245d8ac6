//! `nehr-probe check`: one probe, one verdict, for cron and Nagios/Icinga. Owns the
//! flags, the probe, and the delivery of its metrics: printed, written atomically for
//! node_exporter's textfile collector, or pushed to a Pushgateway ([`push`]). The
//! verdict and its renderings are [`verdict`]'s.
//!
//! It must not print the password or the token, and usage errors exit 3 (UNKNOWN).

pub mod door;
pub mod push;
pub mod verdict;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::call::Prober;
use crate::call::target::TargetArgs;
use crate::metrics::{Metrics, Registry, encode, register_build_info};
use crate::util::fs::{print_stdout, write_atomically};
use crate::util::units::parse_duration;
pub use verdict::{Limits, Status, Verdict, probe_once};

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Latency at or above which the check is WARNING
    #[arg(allow_hyphen_values = true, short, long, default_value = "500ms", value_parser = parse_duration, value_name = "DURATION")]
    pub warning: Duration,

    /// Latency at or above which the check is CRITICAL
    #[arg(allow_hyphen_values = true, short, long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub critical: Duration,

    /// Over https: WARNING when the server's certificate expires within this, e.g. 21d
    /// (off unless given)
    #[arg(allow_hyphen_values = true, long, value_parser = parse_duration, value_name = "DURATION")]
    pub cert_warning: Option<Duration>,

    /// Over https: CRITICAL when the server's certificate expires within this, e.g. 7d
    /// (off unless given)
    #[arg(allow_hyphen_values = true, long, value_parser = parse_duration, value_name = "DURATION")]
    pub cert_critical: Option<Duration>,

    /// WARNING when a valid token's lifetime (`expires_in`) is shorter than this, e.g. 1h
    /// (the API documents a day; off unless given)
    #[arg(allow_hyphen_values = true, long, value_parser = parse_duration, value_name = "DURATION")]
    pub min_token_lifetime: Option<Duration>,

    /// CRITICAL when the answer comes in any HTTP version but HTTP/2 (give --http2 too:
    /// h2c over http, ALPN over https)
    #[arg(long)]
    pub require_http2: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = CheckFormat::Nagios)]
    pub format: CheckFormat,

    /// Add check_curl's phase perfdata to the Nagios line: time_connect, time_ssl
    /// (https), time_headers, time_firstbyte, time_transfer
    #[arg(short = 'E', long)]
    pub extended_perfdata: bool,

    /// Also write the metrics to this file for node_exporter's textfile collector
    /// (atomically: temp file, then rename). Name it *.prom
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,

    /// Name put in the `target` label of the metrics
    #[arg(long, default_value = "default", value_name = "NAME")]
    pub name: String,

    /// Also push the metrics to this Prometheus Pushgateway, e.g. http://pushgateway:9091
    /// (job nehr_probe, grouped by instance = this host and target = --name)
    #[arg(long, value_name = "URL")]
    pub push: Option<String>,

    /// Log in with a random wrong password instead: OK only when the server refuses it
    /// (401), CRITICAL when it answers 200. Each run is one failed login of the account:
    /// mind its lockout policy (docs/journeys.md#the-door-stays-shut)
    #[arg(long, conflicts_with = "then")]
    pub wrong_password: bool,

    /// The account the wrong password is tried on (default: --username); e.g. one kept
    /// for this probe, so its failed logins never lock a real user out
    #[arg(long, requires = "wrong_password", value_name = "NAME")]
    pub wrong_password_username: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// One Nagios/Icinga line with perfdata
    Nagios,
    /// One JSON object
    Json,
    /// Prometheus text exposition format
    Prometheus,
}

/// Runs the check and prints its verdict; returns the Nagios exit code.
pub async fn run(args: &CheckArgs) -> anyhow::Result<u8> {
    if args.warning > args.critical {
        anyhow::bail!("--warning ({:?}) must not be above --critical ({:?})", args.warning, args.critical);
    }
    if let (Some(w), Some(c)) = (args.cert_warning, args.cert_critical)
        && w < c
    {
        let (w, c) = (humantime::format_duration(w), humantime::format_duration(c));
        anyhow::bail!("--cert-warning ({w}) must not be below --cert-critical ({c}): it warns earlier");
    }
    if let Some(path) = &args.textfile {
        crate::util::fs::check_writable("--textfile", path, crate::util::fs::Written::Atomically)?;
    }
    let mut target = args.target.resolve()?;
    let _mock = crate::mock::start_embedded(&mut target, &args.target, None).await?;
    if args.wrong_password {
        target = crate::call::door::wrong_password_target(&target, args.wrong_password_username.as_deref());
    }
    // One call on a connection of its own, which it asks the server to close.
    let prober = Prober::with_keepalive(&target, false)?;
    let limits = Limits {
        warning: args.warning,
        critical: args.critical,
        cert_warning: args.cert_warning,
        cert_critical: args.cert_critical,
        min_token_lifetime: args.min_token_lifetime,
        timeout: prober.timeout(),
        require_http2: args.require_http2,
    };
    // A bad --push URL is a usage error, found before the probe.
    let push_to = match &args.push {
        Some(base) => Some(push::group_url(base, &push::instance_name(), &args.name)?),
        None => None,
    };
    let (verdict, text) = if args.wrong_password {
        let verdict = door::judge(prober.call(0, std::time::Instant::now()).await, limits);
        let text = door::metrics_text(&verdict, &args.name)?;
        (verdict, text)
    } else {
        let verdict = probe_once(&prober, limits).await;
        let text = metrics_text(&verdict, &args.name, args.target.then.is_some())?;
        (verdict, text)
    };
    let mut out = render(&verdict, args.format, &text);
    if args.extended_perfdata && args.format == CheckFormat::Nagios {
        out.insert_str(out.len() - 1, &verdict.extended_perfdata());
    }
    // The verdict is shown even when delivering the metrics fails: Nagios or the cron
    // mail then has the probe's result, and stderr says what did not arrive (UNKNOWN).
    print_stdout(&out)?;
    let delivered = async {
        if let Some(path) = &args.textfile {
            write_atomically(path, text.as_bytes())?;
        }
        if let Some(url) = push_to {
            push::push(url, text).await?;
        }
        anyhow::Ok(())
    };
    if let Err(e) = delivered.await {
        eprintln!("nehr-probe: {e:#}");
        return Ok(Status::Unknown as u8);
    }
    Ok(verdict.status as u8)
}

/// The Prometheus text of one check: `serve`'s series for target `name`.
/// With `then`, the `--then` series too.
pub fn metrics_text(verdict: &Verdict, name: &str, then: bool) -> anyhow::Result<String> {
    let registry = Registry::new();
    let metrics = Metrics::register_with(&registry, name, then).context("registering metrics")?;
    register_build_info(&registry).context("registering metrics")?;
    metrics.observe(&verdict.observation);
    Ok(encode(&registry))
}

/// The verdict as `format` shows it; `metrics` is its Prometheus text.
pub fn render(verdict: &Verdict, format: CheckFormat, metrics: &str) -> String {
    match format {
        CheckFormat::Nagios => verdict.nagios_line() + "\n",
        CheckFormat::Json => verdict.json().to_string() + "\n",
        CheckFormat::Prometheus => metrics.to_string(),
    }
}
