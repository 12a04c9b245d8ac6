//! `nehr-probe serve`: the exporter for continuous monitoring. Owns the probe loop of
//! each target (one probe every `--interval`, fed to the [`Metrics`] of DESIGN.md), the
//! HTTP endpoints Prometheus scrapes (`/metrics`, blackbox-style `/probe`), `/healthz`,
//! the landing page, and the `--config` file that names several targets.
//!
//! It must never probe an address a scraper chose (`/probe` takes a configured name,
//! never a URL), never put error text in a label, never show the password or a token,
//! and it logs one line per change of a target's outcome, not one per probe.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use clap::Args;
use prometheus::{Gauge, IntGauge, IntGaugeVec, Opts, Registry};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::check::cert_note;
use crate::metrics::{Metrics, encode, register_build_info};
use crate::mock::MockServer;
use crate::probe::{Observation, Outcome, Prober};
use crate::target::{Target, TargetArgs};
use crate::units::parse_duration;

/// The name of the one target given by flags or environment (no `--config`).
pub const DEFAULT_TARGET: &str = "default";

/// The content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `nehr-probe serve`: probe on a schedule, export metrics for Prometheus.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Address to serve /metrics, /probe and the landing page on. Loopback by default;
    /// give e.g. 0.0.0.0:9464 to let a Prometheus on another machine scrape it
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Time between two probes of each target
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Duration,

    /// TOML file naming several targets: a [targets.NAME] table each, with url,
    /// username, password_file and an optional timeout. Replaces --url, --username and
    /// the password options
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A bad `serve` command line or config file; each says what to fix, on one line.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--interval must be more than 0")]
    ZeroInterval,
    #[error("give the targets either in --config or with --url/--mock, not both")]
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
    #[error("--config {path}, target {name:?}: invalid timeout {value:?}: {why}")]
    BadTimeout { path: String, name: String, value: String, why: String },
    #[error(transparent)]
    Flags(crate::target::ConfigError),
    #[error("--config {path}, target {name:?}: {cause}")]
    Target { path: String, name: String, cause: crate::target::ConfigError },
    #[error("cannot listen on {addr}: {cause}")]
    Bind { addr: SocketAddr, cause: std::io::Error },
}

/// The `--config` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    targets: BTreeMap<String, TargetEntry>,
}

/// One `[targets.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    url: String,
    username: String,
    /// Relative paths are relative to the config file.
    password_file: PathBuf,
    timeout: Option<String>,
}

/// The named, checked targets of a `serve` command line, in the order they are shown.
/// With `--mock` the one target still has to be aimed at the mock.
pub fn resolve_targets(args: &ServeArgs) -> Result<Vec<(String, Target)>, ServeError> {
    if args.interval.is_zero() {
        return Err(ServeError::ZeroInterval);
    }
    let Some(path) = &args.config else {
        let target = args.target.resolve().map_err(ServeError::Flags)?;
        return Ok(vec![(DEFAULT_TARGET.to_string(), target)]);
    };
    if args.target.url.is_some() || args.target.mock {
        return Err(ServeError::ConfigAndFlags);
    }
    let shown = path.display().to_string();
    let text =
        crate::units::read_input_file(path).map_err(|cause| ServeError::ReadConfig { path: shown.clone(), cause })?;
    let file: ConfigFile = toml::from_str(&text).map_err(|e| ServeError::ParseConfig {
        path: shown.clone(),
        line: e.span().map_or(1, |s| text[..s.start.min(text.len())].matches('\n').count() + 1),
        message: e.message().trim().to_string(),
    })?;
    if file.targets.is_empty() {
        return Err(ServeError::NoTargets { path: shown });
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::with_capacity(file.targets.len());
    for (name, entry) in file.targets {
        if !valid_name(&name) {
            return Err(ServeError::BadName { path: shown, name });
        }
        let mut flags = args.target.clone();
        flags.url = Some(entry.url);
        flags.username = Some(entry.username);
        flags.password_file = Some(base.join(entry.password_file));
        if let Some(value) = entry.timeout {
            flags.timeout = parse_duration(&value).map_err(|why| ServeError::BadTimeout {
                path: shown.clone(),
                name: name.clone(),
                value: value.clone(),
                why,
            })?;
        }
        let target =
            flags.resolve().map_err(|cause| ServeError::Target { path: shown.clone(), name: name.clone(), cause })?;
        out.push((name, target));
    }
    Ok(out)
}

/// Names go into labels and URLs: keep them plain.
fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Where log lines go: stderr in the binary, a buffer in tests.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// Log lines on stderr, prefixed with the command.
pub fn stderr_log() -> Log {
    Arc::new(|line| eprintln!("nehr-probe serve: {line}"))
}

/// What one probe of a target showed, kept for the landing page.
#[derive(Debug, Clone)]
struct Seen {
    outcome: Outcome,
    reason: String,
    at: SystemTime,
    latency: Duration,
}

#[derive(Debug, Default)]
struct History {
    last: Option<Seen>,
    last_failure: Option<Seen>,
    probes: u64,
    /// When the target's certificate expires (Unix seconds), from the last https answer.
    cert_not_after: Option<i64>,
}

/// One target being watched.
struct Watched {
    name: String,
    url: String,
    prober: Prober,
    timeout: Duration,
    metrics: Metrics,
    /// Call numbers, shared by the loop and `/probe` (they pick the account).
    seq: AtomicU64,
    history: Mutex<History>,
}

impl Watched {
    /// Feeds one scheduled probe to the metrics and the history; returns the log line
    /// when the outcome differs from the last one.
    fn record(&self, obs: &Observation) -> Option<String> {
        self.metrics.observe(obs);
        let seen = Seen { outcome: obs.outcome, reason: obs.reason(), at: SystemTime::now(), latency: obs.latency() };
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        h.probes += 1;
        h.cert_not_after = obs.cert_not_after.or(h.cert_not_after);
        let line = match &h.last {
            Some(prev) if prev.outcome == seen.outcome => None,
            Some(prev) => Some(format!("target {}: {} -> {}: {}", self.name, prev.outcome, seen.outcome, seen.reason)),
            None => Some(format!("target {}: {}: {}", self.name, seen.outcome, seen.reason)),
        };
        if seen.outcome != Outcome::Ok {
            h.last_failure = Some(seen.clone());
        }
        h.last = Some(seen);
        line
    }
}

/// What the HTTP handlers share.
struct App {
    targets: Vec<Arc<Watched>>,
    registry: Registry,
    interval: Duration,
    started: SystemTime,
    stop: CancellationToken,
}

/// A running exporter: probe loops plus the HTTP server. Dropping it stops it.
pub struct Exporter {
    addr: SocketAddr,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _mock: Option<MockServer>,
}

impl Exporter {
    /// Checks the arguments, binds `--listen`, and starts probing and serving in the
    /// background of the current runtime. The first probe of each target starts now.
    pub async fn start(args: &ServeArgs, log: Log) -> anyhow::Result<Exporter> {
        let mut targets = resolve_targets(args)?;
        let mut mock = None;
        if let [(_, target)] = targets.as_mut_slice() {
            mock = crate::start_embedded_mock(target, &args.target).await?;
        }
        let registry = Registry::new();
        register_build_info(&registry)?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        let mut watched = Vec::with_capacity(targets.len());
        for (name, target) in &targets {
            watched.push(Arc::new(Watched {
                name: name.clone(),
                url: target.display_url(),
                prober: Prober::new(target)?,
                timeout: target.timeout,
                metrics: Metrics::register(&registry, name)?,
                seq: AtomicU64::new(0),
                history: Mutex::new(History::default()),
            }));
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|cause| ServeError::Bind { addr: args.listen, cause })?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let app = Arc::new(App {
            targets: watched.clone(),
            registry,
            interval: args.interval,
            started: SystemTime::now(),
            stop: stop.clone(),
        });
        let names: Vec<&str> = watched.iter().map(|w| w.name.as_str()).collect();
        log(&format!(
            "serving http://{addr}/ (/metrics, /probe, /healthz); probing {} every {}",
            names.join(", "),
            humantime::format_duration(args.interval)
        ));
        let mut tasks = Vec::with_capacity(watched.len() + 1);
        for w in watched {
            tasks.push(tokio::spawn(probe_loop(w, args.interval, stop.clone(), log.clone())));
        }
        let router = Router::new()
            .route("/", get(landing))
            .route("/metrics", get(metrics))
            .route("/probe", get(probe))
            .route("/healthz", get(healthz))
            .fallback(not_found)
            .with_state(app);
        let shutdown = stop.clone();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        }));
        Ok(Exporter { addr, stop, tasks, _mock: mock })
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops probing and serving; answers in flight get a few seconds to finish.
    pub async fn stop(mut self) {
        self.stop.cancel();
        let tasks = std::mem::take(&mut self.tasks);
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), all).await;
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.cancel();
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// `nehr-probe serve`: runs until Ctrl-C or SIGTERM.
pub async fn run(args: &ServeArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let log = stderr_log();
    let exporter = Exporter::start(args, log.clone()).await?;
    shutdown.cancelled().await;
    exporter.stop().await;
    log("stopped");
    Ok(())
}

/// Probes one target every `interval` until stopped; never two probes of it at once.
async fn probe_loop(w: Arc<Watched>, interval: Duration, stop: CancellationToken, log: Log) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let seq = w.seq.fetch_add(1, Ordering::Relaxed);
        let obs = tokio::select! {
            _ = stop.cancelled() => return,
            obs = w.prober.call(seq, Instant::now()) => obs,
        };
        if let Some(line) = w.record(&obs) {
            log(&line);
        }
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    metrics_response(encode(&app.registry))
}

fn metrics_response(text: String) -> Response {
    let mut resp = text.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
    resp
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found: see / for /metrics, /probe and /healthz\n").into_response()
}

/// `/probe[?target=NAME]`: one fresh probe, blackbox_exporter style.
async fn probe(
    State(app): State<Arc<App>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let w = match pick_target(&app.targets, &query) {
        Ok(w) => w,
        Err(message) => return (StatusCode::BAD_REQUEST, message + "\n").into_response(),
    };
    let budget = scrape_budget(&headers, w.timeout);
    let seq = w.seq.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let result = tokio::select! {
        _ = app.stop.cancelled() => {
            return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
        }
        r = tokio::time::timeout(budget, w.prober.call(seq, start)) => r,
    };
    let probed = match result {
        Ok(obs) => ProbeResult {
            outcome: obs.outcome,
            duration: obs.latency(),
            status: obs.status,
            expires_in: obs.token.as_ref().and_then(|t| t.expires_in).filter(|_| obs.is_ok()),
            cert_not_after: obs.cert_not_after,
        },
        // The scrape would be abandoned before the target's own timeout: report it as one.
        Err(_) => ProbeResult {
            outcome: Outcome::Timeout,
            duration: start.elapsed(),
            status: None,
            expires_in: None,
            cert_not_after: None,
        },
    };
    metrics_response(probe_text(&probed))
}

/// The target a `/probe` query names: a configured name only, never an address.
fn pick_target<'a>(targets: &'a [Arc<Watched>], query: &[(String, String)]) -> Result<&'a Arc<Watched>, String> {
    let names = || targets.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", ");
    let asked: Vec<&str> = query.iter().filter(|(k, _)| k == "target").map(|(_, v)| v.as_str()).collect();
    match asked.as_slice() {
        [] if targets.len() == 1 => Ok(&targets[0]),
        [] => Err(format!("several targets are configured: add ?target=NAME, one of: {}", names())),
        [name] => targets.iter().find(|w| w.name == *name).ok_or_else(|| {
            format!("unknown target: ?target= takes the name of a configured target (one of: {}), never a URL", names())
        }),
        _ => Err("give ?target= once".to_string()),
    }
}

/// How long a `/probe` may take: the target's timeout, capped by what Prometheus
/// waits for the scrape, less a margin to send the answer (as blackbox_exporter does).
fn scrape_budget(headers: &HeaderMap, timeout: Duration) -> Duration {
    let scrape = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0);
    let Some(secs) = scrape else { return timeout };
    let budget = if secs > 1.0 { secs - 0.5 } else { secs / 2.0 };
    Duration::try_from_secs_f64(budget).map_or(timeout, |b| b.min(timeout))
}

/// What a `/probe` answer reports.
#[derive(Debug, Clone)]
struct ProbeResult {
    outcome: Outcome,
    duration: Duration,
    status: Option<u16>,
    expires_in: Option<i64>,
    cert_not_after: Option<i64>,
}

/// The `/probe` metrics: a registry of their own, made per scrape.
fn probe_text(p: &ProbeResult) -> String {
    let registry = Registry::new();
    let build = || -> prometheus::Result<()> {
        let success = IntGauge::new("probe_success", "1 if the login got a valid token, else 0")?;
        success.set(i64::from(p.outcome == Outcome::Ok));
        let duration = Gauge::new("probe_duration_seconds", "How long the login probe took")?;
        duration.set(p.duration.as_secs_f64());
        let status = IntGauge::new("probe_http_status_code", "HTTP status of the answer (0 when there was none)")?;
        status.set(p.status.map_or(0, i64::from));
        let outcome = IntGaugeVec::new(
            Opts::new("nehr_probe_outcome", "1 for the outcome of this probe, 0 for the other eight"),
            &["outcome"],
        )?;
        for o in Outcome::ALL {
            outcome.with_label_values(&[o.as_str()]).set(i64::from(o == p.outcome));
        }
        registry.register(Box::new(success))?;
        registry.register(Box::new(duration))?;
        registry.register(Box::new(status))?;
        registry.register(Box::new(outcome))?;
        if let Some(e) = p.expires_in {
            let expires =
                IntGauge::new("nehr_probe_token_expires_in_seconds", "expires_in of the token this probe got")?;
            expires.set(e);
            registry.register(Box::new(expires))?;
        }
        if let Some(t) = p.cert_not_after {
            // blackbox_exporter's name, so its certificate alerts and dashboards work here.
            let expiry = Gauge::new(
                "probe_ssl_earliest_cert_expiry",
                "When the earliest certificate the target presented expires (Unix time)",
            )?;
            expiry.set(t as f64);
            registry.register(Box::new(expiry))?;
        }
        Ok(())
    };
    build().expect("static /probe metric definitions");
    encode(&registry)
}

/// The landing page: links, and each target's last outcome and last failure.
async fn landing(State(app): State<Arc<App>>) -> Html<String> {
    Html(landing_page(&app))
}

fn landing_page(app: &App) -> String {
    let now = SystemTime::now();
    let unix_now = crate::metrics::unix_now() as i64;
    let mut rows = String::new();
    for w in &app.targets {
        let h = w.history.lock().unwrap_or_else(|p| p.into_inner());
        let seen = |s: &Option<Seen>, none: &str| match s {
            Some(s) => format!(
                "<td class=\"{cls}\">{outcome}</td><td>{reason}</td><td>{ago} ago ({ms:.1} ms)</td>",
                cls = if s.outcome == Outcome::Ok { "ok" } else { "bad" },
                outcome = s.outcome,
                reason = escape(&s.reason),
                ago = ago(now, s.at),
                ms = s.latency.as_secs_f64() * 1e3,
            ),
            None => format!("<td>-</td><td>{none}</td><td></td>"),
        };
        let _ = writeln!(
            rows,
            "<tr><th><a href=\"probe?target={name}\">{name}</a></th><td><code>{url}</code></td><td>{probes}</td>{last}{failure}<td>{cert}</td></tr>",
            name = escape(&w.name),
            url = escape(&w.url),
            probes = h.probes,
            last = seen(&h.last, "not probed yet"),
            failure = seen(&h.last_failure, "none since start"),
            cert = h.cert_not_after.map_or_else(|| "-".to_string(), |t| cert_note(t.saturating_sub(unix_now))),
        );
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nehr-probe</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}.ok{{color:#070}}.bad{{color:#b00;font-weight:bold}}</style>
</head><body>
<h1>nehr-probe {version}</h1>
<p>Probes the NEHR login (<code>POST …/nehrapi/login/getToken</code>) every {interval}; up since {since}.</p>
<ul>
<li><a href="metrics">/metrics</a>: the metrics of every target, for Prometheus</li>
<li><a href="probe">/probe</a>: one fresh probe per request, blackbox style (<code>?target=NAME</code>)</li>
<li><a href="healthz">/healthz</a>: is this process up</li>
</ul>
<table>
<tr><th rowspan="2">target</th><th rowspan="2">url</th><th rowspan="2">probes</th><th colspan="3">last probe</th><th colspan="3">last failure</th><th rowspan="2">TLS</th></tr>
<tr><th>outcome</th><th>reason</th><th>when</th><th>outcome</th><th>reason</th><th>when</th></tr>
{rows}</table>
</body></html>
"#,
        version = env!("CARGO_PKG_VERSION"),
        interval = humantime::format_duration(app.interval),
        since = humantime::format_rfc3339_seconds(app.started),
    )
}

fn ago(now: SystemTime, then: SystemTime) -> String {
    let secs = now.duration_since(then).unwrap_or_default().as_secs();
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn args(argv: &[&str]) -> ServeArgs {
        Cmd::try_parse_from(std::iter::once("serve").chain(argv.iter().copied())).unwrap().serve
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn config_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "targets.toml", text);
        resolve_targets(&args(&["--config", p.to_str().unwrap()])).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_loopback_and_30s() {
        let a = args(&["--mock"]);
        assert_eq!(a.listen, "127.0.0.1:9464".parse().unwrap());
        assert_eq!(a.interval, Duration::from_secs(30));
        let t = resolve_targets(&a).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].0, "default");
    }

    #[test]
    fn the_example_config_parses() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "targets.toml", include_str!("../deploy/nehr-probe.toml"));
        write(dir.path(), "production.password", "p1\n");
        write(dir.path(), "staging.password", "p2\n");
        let t = resolve_targets(&args(&["--config", p.to_str().unwrap(), "--timeout", "3s"])).unwrap();
        let names: Vec<&str> = t.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["production", "staging"]);
        assert_eq!(t[0].1.timeout, Duration::from_secs(10));
        assert_eq!(t[1].1.timeout, Duration::from_secs(5));
        assert_eq!(t[0].1.credentials[0].password.expose(), "p1");
        assert_eq!(t[1].1.url.as_str(), "https://staging.nehr.example/nehrapi/login/getToken");
    }

    #[test]
    fn config_errors_are_one_line_and_say_what_to_fix() {
        let e = config_error("[targets.a]\nurl = \"http://x/\"\nusername = \"u\"\npasword_file = \"p\"\n");
        assert!(e.contains("line 4") && e.contains("unknown field `pasword_file`"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = config_error("");
        assert!(e.contains("names no targets"), "{e}");
        let e = config_error("[targets.\"a b\"]\nurl = \"http://x/\"\nusername = \"u\"\npassword_file = \"p\"\n");
        assert!(e.contains("invalid target name \"a b\""), "{e}");
        let e = config_error("[targets.a]\nurl = \"http://x/\"\nusername = \"u\"\npassword_file = \"nope\"\n");
        assert!(e.contains("target \"a\"") && e.contains("cannot read password file"), "{e}");
        let e = config_error(
            "[targets.a]\nurl = \"http://x/\"\nusername = \"u\"\npassword_file = \"p\"\ntimeout = \"soon\"\n",
        );
        assert!(e.contains("invalid timeout \"soon\"") && e.contains("expected e.g. 30s"), "{e}");
        let e = resolve_targets(&args(&["--config", "/no/such/file.toml"])).unwrap_err().to_string();
        assert!(e.starts_with("cannot read --config /no/such/file.toml: "), "{e}");
    }

    #[test]
    fn config_and_target_flags_do_not_mix() {
        let e = resolve_targets(&args(&["--config", "x.toml", "--mock"])).unwrap_err().to_string();
        assert!(e.contains("not both"), "{e}");
        let e = resolve_targets(&args(&["--mock", "--interval", "0"])).unwrap_err().to_string();
        assert!(e.contains("--interval must be more than 0"), "{e}");
    }

    #[test]
    fn names() {
        for ok in ["production", "staging-2", "eu.west_1", "0"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-x", "a b", "a/b", "http://x", "ä", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn scrape_timeout_caps_the_probe() {
        let mut h = HeaderMap::new();
        let ten = Duration::from_secs(10);
        assert_eq!(scrape_budget(&h, ten), ten);
        h.insert("X-Prometheus-Scrape-Timeout-Seconds", HeaderValue::from_static("5"));
        assert_eq!(scrape_budget(&h, ten), Duration::from_millis(4500));
        assert_eq!(scrape_budget(&h, Duration::from_secs(2)), Duration::from_secs(2));
        h.insert("X-Prometheus-Scrape-Timeout-Seconds", HeaderValue::from_static("0.4"));
        assert_eq!(scrape_budget(&h, ten), Duration::from_millis(200));
        // Junk is ignored: the target's own timeout, never a zero budget.
        for junk in ["-1", "0", "NaN", "inf", "1e300", "soon"] {
            h.insert("X-Prometheus-Scrape-Timeout-Seconds", HeaderValue::from_static(junk));
            assert_eq!(scrape_budget(&h, ten), ten, "{junk}");
        }
    }

    fn watched(name: &str) -> Arc<Watched> {
        let mut target = args(&["--mock"]).target.resolve().unwrap();
        target.aim_at("127.0.0.1:9".parse().unwrap());
        Arc::new(Watched {
            name: name.into(),
            url: target.display_url(),
            prober: Prober::new(&target).unwrap(),
            timeout: target.timeout,
            metrics: Metrics::register(&Registry::new(), name).unwrap(),
            seq: AtomicU64::new(0),
            history: Mutex::new(History::default()),
        })
    }

    #[test]
    fn probe_takes_configured_names_only() {
        let one = vec![watched("default")];
        assert_eq!(pick_target(&one, &[]).unwrap().name, "default");
        let two = vec![watched("production"), watched("staging")];
        let q = |v: &str| vec![("target".to_string(), v.to_string())];
        assert_eq!(pick_target(&two, &q("staging")).unwrap().name, "staging");
        assert!(pick_target(&two, &[]).map(|w| &w.name).unwrap_err().contains("one of: production, staging"));
        let e = pick_target(&two, &q("http://evil.example/")).map(|w| &w.name).unwrap_err();
        assert!(e.contains("never a URL") && !e.contains("evil"), "{e}");
        assert!(pick_target(&one, &q("nope")).is_err());
        let mut twice = q("production");
        twice.extend(q("staging"));
        assert!(pick_target(&two, &twice).is_err());
    }

    fn observation(outcome: Outcome, status: Option<u16>) -> Observation {
        let t = Instant::now();
        Observation::new(0, t, t, t + Duration::from_millis(3), status, outcome)
    }

    #[test]
    fn logs_once_per_change_of_outcome() {
        let w = watched("production");
        let ok = observation(Outcome::Ok, Some(200));
        let down = observation(Outcome::ServerError, Some(500));
        let lines: Vec<Option<String>> = [&ok, &ok, &down, &down, &down, &ok].iter().map(|o| w.record(o)).collect();
        assert_eq!(lines[0].as_deref(), Some("target production: ok: valid token answer"));
        assert_eq!(lines[1], None);
        assert_eq!(lines[2].as_deref(), Some("target production: ok -> server_error: server error (HTTP 500)"));
        assert_eq!(lines[3..5], [None, None]);
        assert_eq!(lines[5].as_deref(), Some("target production: server_error -> ok: valid token answer"));
        let h = w.history.lock().unwrap();
        assert_eq!(h.probes, 6);
        assert_eq!(h.last.as_ref().unwrap().outcome, Outcome::Ok);
        assert_eq!(h.last_failure.as_ref().unwrap().outcome, Outcome::ServerError);
    }

    #[test]
    fn probe_metrics_name_the_one_outcome() {
        let text = probe_text(&ProbeResult {
            outcome: Outcome::Timeout,
            duration: Duration::from_millis(1500),
            status: None,
            expires_in: None,
            cert_not_after: None,
        });
        assert!(text.contains("probe_success 0\n"), "{text}");
        assert!(text.contains("probe_duration_seconds 1.5\n"), "{text}");
        assert!(text.contains("probe_http_status_code 0\n"), "{text}");
        assert!(text.contains("nehr_probe_outcome{outcome=\"timeout\"} 1\n"), "{text}");
        assert_eq!(text.matches("nehr_probe_outcome{").count(), 9, "{text}");
        assert_eq!(text.matches("} 1\n").count(), 1, "{text}");
        assert!(!text.contains("expires_in"));
        let ok = probe_text(&ProbeResult {
            outcome: Outcome::Ok,
            duration: Duration::from_millis(4),
            status: Some(200),
            expires_in: Some(86399),
            cert_not_after: Some(1_798_761_600),
        });
        assert!(ok.contains("probe_success 1\n") && ok.contains("nehr_probe_token_expires_in_seconds 86399\n"));
        assert!(ok.contains("probe_ssl_earliest_cert_expiry 1798761600\n"), "{ok}");
        assert!(!text.contains("probe_ssl"), "no certificate, no series: {text}");
    }

    #[test]
    fn landing_page_escapes_and_shows_the_last_failure() {
        let w = watched("production");
        let mut bad = observation(Outcome::TransportError, None);
        bad.detail = Some("<script>x</script>".into());
        w.record(&bad);
        w.record(&observation(Outcome::Ok, Some(200)));
        let app = App {
            targets: vec![w],
            registry: Registry::new(),
            interval: Duration::from_secs(30),
            started: SystemTime::now(),
            stop: CancellationToken::new(),
        };
        let page = landing_page(&app);
        assert!(page.contains("href=\"metrics\"") && page.contains("href=\"healthz\""), "{page}");
        assert!(page.contains("href=\"probe?target=production\""), "{page}");
        assert!(page.contains("transport_error: &lt;script&gt;x&lt;/script&gt;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains(">ok</td>") && page.contains(">transport_error</td>"), "{page}");
        assert!(page.contains("every 30s"), "{page}");
        assert!(page.contains("<td>-</td></tr>"), "no certificate over http: {page}");

        let mut tls = observation(Outcome::Ok, Some(200));
        tls.cert_not_after = Some(crate::metrics::unix_now() as i64 + 10 * 86_400 + 600);
        app.targets[0].record(&tls);
        let page = landing_page(&app);
        assert!(page.contains("<td>certificate expires in 10 days</td></tr>"), "{page}");
    }
}
