//! `nehr-probe check`: one probe, one verdict, for cron and Nagios/Icinga. Owns the
//! verdict (OK/WARNING/CRITICAL by outcome and latency) and its three renderings: a
//! Nagios line with perfdata, JSON, and the Prometheus text of `serve`'s metrics (also
//! written atomically for node_exporter's textfile collector).
//!
//! It must not print the password or the token, and usage errors exit 3 (UNKNOWN).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use prometheus::Registry;
use serde::Serialize;
use serde_json::json;

use crate::metrics::{Metrics, encode, register_build_info};
use crate::probe::{Observation, Outcome, Prober};
use crate::target::TargetArgs;
use crate::units::parse_duration;

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Latency at or above which the check is WARNING
    #[arg(short, long, default_value = "500ms", value_parser = parse_duration, value_name = "DURATION")]
    pub warning: Duration,

    /// Latency at or above which the check is CRITICAL
    #[arg(short, long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub critical: Duration,

    /// Output format
    #[arg(long, value_enum, default_value_t = CheckFormat::Nagios)]
    pub format: CheckFormat,

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

/// Nagios plugin states; the value is the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// A probe judged against the thresholds.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub status: Status,
    pub observation: Observation,
    pub message: String,
    pub warning: Duration,
    pub critical: Duration,
    pub timeout: Duration,
}

impl Verdict {
    /// Any outcome but `ok` is CRITICAL; an ok answer is judged by its latency.
    pub fn judge(observation: Observation, warning: Duration, critical: Duration, timeout: Duration) -> Verdict {
        let latency = observation.latency();
        let mut message = observation.reason();
        let status = if observation.outcome != Outcome::Ok {
            Status::Critical
        } else if latency >= critical {
            message.push_str(&format!(" (critical at {} s)", trim_secs(critical)));
            Status::Critical
        } else if latency >= warning {
            message.push_str(&format!(" (warning at {} s)", trim_secs(warning)));
            Status::Warning
        } else {
            Status::Ok
        };
        Verdict { status, observation, message, warning, critical, timeout }
    }

    /// `NEHR-TOKEN OK - valid bearer token, expires in 86399 s, in 0.042 s | time=…`
    pub fn nagios_line(&self) -> String {
        let o = &self.observation;
        let latency = o.latency().as_secs_f64();
        // A '|' in the text would start the perfdata early.
        let text = self.message.replace('|', "/");
        format!(
            "NEHR-TOKEN {} - {text}, in {latency:.3} s | time={latency:.6}s;{};{};0;{} size={}B;;;0",
            self.status.as_str(),
            trim_secs(self.warning),
            trim_secs(self.critical),
            trim_secs(self.timeout),
            o.body_bytes,
        )
    }

    /// The JSON object of DESIGN.md.
    pub fn json(&self) -> serde_json::Value {
        let o = &self.observation;
        json!({
            "status": self.status,
            "outcome": o.outcome,
            "http_status": o.status,
            "latency_seconds": round6(o.latency().as_secs_f64()),
            "body_bytes": o.body_bytes,
            "message": self.message,
            "violations": o.violations,
            "token": o.token,
        })
    }
}

/// Runs the check and prints its verdict; returns the Nagios exit code.
pub async fn run(args: &CheckArgs) -> anyhow::Result<u8> {
    if args.warning > args.critical {
        anyhow::bail!("--warning ({:?}) must not be above --critical ({:?})", args.warning, args.critical);
    }
    let mut target = args.target.resolve()?;
    let _mock = crate::start_embedded_mock(&mut target, &args.target).await?;
    let prober = Prober::new(&target)?;
    let verdict = probe_once(&prober, args.warning, args.critical).await;

    let registry = Registry::new();
    let metrics = Metrics::register(&registry, &args.name).context("registering metrics")?;
    register_build_info(&registry).context("registering metrics")?;
    metrics.observe(&verdict.observation);
    let text = encode(&registry);
    if let Some(path) = &args.textfile {
        write_atomically(path, text.as_bytes())?;
    }
    if let Some(url) = &args.push {
        crate::push::push(url, &args.name, text.clone()).await?;
    }
    let out = match args.format {
        CheckFormat::Nagios => verdict.nagios_line() + "\n",
        CheckFormat::Json => verdict.json().to_string() + "\n",
        CheckFormat::Prometheus => text,
    };
    crate::print_stdout(&out)?;
    Ok(verdict.status as u8)
}

/// One probe, judged.
pub async fn probe_once(prober: &Prober, warning: Duration, critical: Duration) -> Verdict {
    let observation = prober.call(0, Instant::now()).await;
    Verdict::judge(observation, warning, critical, prober.timeout())
}

/// Writes `path` so a reader sees the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().with_context(|| format!("--textfile {} names no file", path.display()))?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("cannot write {}: {e}", path.display())
    })
}

fn trim_secs(d: Duration) -> String {
    let s = format!("{:.3}", d.as_secs_f64());
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{TokenFacts, Violation};

    fn obs(outcome: Outcome, ms: u64) -> Observation {
        let t = Instant::now();
        Observation {
            seq: 0,
            due: t,
            sent: t,
            done: t + Duration::from_millis(ms),
            status: Some(200),
            outcome,
            violations: vec![],
            token: Some(TokenFacts {
                token_type: Some("bearer".into()),
                expires_in: Some(86399),
                scope: Some(vec!["read".into()]),
            }),
            body_bytes: 371,
            detail: None,
        }
    }

    fn judge(o: Observation) -> Verdict {
        Verdict::judge(o, Duration::from_millis(500), Duration::from_secs(2), Duration::from_secs(10))
    }

    #[test]
    fn ok_line_has_perfdata() {
        let v = judge(obs(Outcome::Ok, 42));
        assert_eq!(v.status, Status::Ok);
        assert_eq!(
            v.nagios_line(),
            "NEHR-TOKEN OK - valid bearer token, expires in 86399 s, in 0.042 s | time=0.042000s;0.5;2;0;10 size=371B;;;0"
        );
    }

    #[test]
    fn latency_thresholds() {
        assert_eq!(judge(obs(Outcome::Ok, 499)).status, Status::Ok);
        let w = judge(obs(Outcome::Ok, 500));
        assert_eq!(w.status, Status::Warning);
        assert!(w.message.contains("warning at 0.5 s"));
        assert_eq!(judge(obs(Outcome::Ok, 2500)).status, Status::Critical);
    }

    #[test]
    fn any_failure_is_critical_and_names_the_field() {
        let mut o = obs(Outcome::InvalidBody, 5);
        o.token = None;
        o.violations = vec![Violation { path: "/result/expires_in".into(), message: "must be > 0".into() }];
        let v = judge(o);
        assert_eq!(v.status, Status::Critical);
        assert!(v.nagios_line().starts_with(
            "NEHR-TOKEN CRITICAL - invalid body: /result/expires_in must be > 0 (HTTP 200), in 0.005 s | "
        ));
        let j = v.json();
        assert_eq!(j["status"], "CRITICAL");
        assert_eq!(j["outcome"], "invalid_body");
        assert_eq!(j["violations"][0]["path"], "/result/expires_in");
    }

    #[test]
    fn pipe_in_a_reason_cannot_break_perfdata() {
        let mut o = obs(Outcome::TransportError, 1);
        o.detail = Some("weird | text".into());
        let line = judge(o).nagios_line();
        assert_eq!(line.matches('|').count(), 1, "{line}");
    }

    #[test]
    fn textfile_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nehr.prom");
        write_atomically(&p, b"a 1\n").unwrap();
        write_atomically(&p, b"a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a 2\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_atomically(&dir.path().join("no/such/dir/x.prom"), b"").is_err());
    }
}
