//! `load`'s flags and their check into a [`Plan`], the shape of a run, before any
//! request is sent: every bad combination is a usage error here, with one message.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::Args;

use super::schedule::{Schedule, Stage, parse_stages};
use super::segment::{Segment, WHOLE, parse_segment, parse_start_at};
use crate::call::target::TargetArgs;
use crate::report::Format;
use crate::report::compare::CompareArgs;
use crate::report::model::{Model, PlannedStage};
use crate::report::threshold::Threshold;
use crate::util::units::{parse_count, parse_duration, parse_period, round6};

/// How long a run lasts when neither `--duration`, `--requests` nor `--stages` says.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Accounts to log in with, one `username:password` a line, used round robin (in
    /// place of --username and the password): real load comes from many users. With
    /// --mock, the embedded mock accepts these accounts
    #[arg(long, value_name = "FILE", help_heading = "Target")]
    pub credentials: Option<PathBuf>,

    /// Open model: send N requests per second on a fixed schedule, whatever the server
    /// does. Without --rps or --stages the model is closed
    #[arg(allow_hyphen_values = true, long, value_name = "N", value_parser = parse_rate, help_heading = "Load")]
    pub rps: Option<f64>,

    /// Open model with a changing rate, k6 style: DURATION:RPS,… each stage ramps
    /// linearly from the previous rate (the first from 0), e.g. 30s:100,2m:100,30s:0
    #[arg(long, value_name = "STAGES", value_parser = parse_stage_list, conflicts_with_all = ["rps", "duration"], help_heading = "Load")]
    pub stages: Option<StageList>,

    /// Open model: requests in flight at most (a due request waits for a slot, and the
    /// wait counts in its latency). Closed model: workers calling back to back
    #[arg(allow_hyphen_values = true, short, long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000), help_heading = "Load")]
    pub concurrency: u32,

    /// With --http2: calls in flight one connection carries at once, so the connections
    /// used are ceil(--concurrency / N)
    #[arg(allow_hyphen_values = true, long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000), requires = "http2", help_heading = "Load")]
    pub streams: u32,

    /// A new connection, and TLS handshake, for every call, closed after it (as distinct
    /// users' clients do), instead of reusing up to --concurrency connections
    #[arg(long, help_heading = "Load")]
    pub no_keepalive: bool,

    /// How long to send requests [default: 10s, unless --requests or --stages is given]
    #[arg(allow_hyphen_values = true, short, long, value_name = "DURATION", value_parser = parse_period, help_heading = "Load")]
    pub duration: Option<Duration>,

    /// Stop after this many requests (with --duration: whichever comes first)
    #[arg(allow_hyphen_values = true, short = 'n', long, value_name = "N", value_parser = parse_count, help_heading = "Load")]
    pub requests: Option<u64>,

    /// Send traffic for this long first, not recorded (at --rps, the first stage's rate,
    /// or --concurrency workers): warms connections and the server's caches
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse_duration, default_value = "0", help_heading = "Load")]
    pub warmup: Duration,

    /// Send only segment I of N of the schedule (I from 0): the requests whose sequence
    /// number k has k mod N = I, at their global due times. N processes with 0/N … N-1/N
    /// and one --start-at send together exactly what one would; `nehr-probe report`
    /// merges their reports. Needs --rps or --stages
    #[arg(long, value_name = "I/N", value_parser = parse_segment, help_heading = "Load")]
    pub segment: Option<Segment>,

    /// Start the schedule at this wall-clock time (RFC 3339, e.g. 2026-05-01T12:00:00Z,
    /// or Unix seconds), waiting for it; a time already more than 1 s past is an error.
    /// Gives every --segment the same t0
    #[arg(long, value_name = "TIME", value_parser = parse_start_at, help_heading = "Load")]
    pub start_at: Option<SystemTime>,

    /// Pass/fail rule, repeatable: p99<300ms, p99.9<=1s, error_rate<1%, dropped<1%, rps>=49.
    /// Any failure exits 1
    #[arg(long = "threshold", value_name = "EXPR", value_parser = Threshold::parse, help_heading = "Report")]
    pub thresholds: Vec<Threshold>,

    /// Report format on stdout
    #[arg(long, value_enum, default_value_t = Format::Text, help_heading = "Report")]
    pub format: Format,

    /// Also write the JSON report to this file (for `nehr-probe report`)
    #[arg(long, value_name = "FILE", help_heading = "Report")]
    pub out: Option<PathBuf>,

    /// Also write the report as one self-contained HTML page with charts (latency and
    /// outcomes over time, the percentile spectrum) to this file
    #[arg(long, value_name = "FILE", help_heading = "Report")]
    pub html: Option<PathBuf>,

    /// Write an HdrHistogram interval log of latency here: format V2, one interval per
    /// second, microseconds (HdrHistogram's log tools read it)
    #[arg(long, value_name = "FILE", help_heading = "Report")]
    pub hlog: Option<PathBuf>,

    /// Serve live metrics at http://ADDR/metrics during the run
    #[arg(long, value_name = "ADDR", help_heading = "Report")]
    pub metrics_listen: Option<SocketAddr>,

    /// `target` label of the live metrics
    #[arg(long, default_value = "default", value_name = "NAME", help_heading = "Report")]
    pub name: String,

    /// No live progress display (there is none anyway when stderr is not a terminal)
    #[arg(short, long, help_heading = "Report")]
    pub quiet: bool,

    #[command(flatten)]
    pub compare: CompareArgs,
}

/// The parsed `--stages` (a newtype, so clap takes it as one value).
#[derive(Debug, Clone, PartialEq)]
pub struct StageList(pub Vec<Stage>);

impl StageList {
    /// The plan as a report keeps it: with `segments` segments, each stage's rate over
    /// that many (a segment's share, as its `target_rps`).
    pub fn planned(&self, segments: u64) -> Vec<PlannedStage> {
        let share = segments.max(1) as f64;
        self.0
            .iter()
            .map(|s| PlannedStage { duration_seconds: s.duration.as_secs_f64(), target_rps: round6(s.target / share) })
            .collect()
    }
}

fn parse_stage_list(s: &str) -> Result<StageList, String> {
    parse_stages(s).map(StageList)
}

/// The highest `--rps`: far above what one process sends, low enough that a schedule's
/// arithmetic stays exact.
pub const MAX_RPS: f64 = 10_000_000.0;

fn parse_rate(s: &str) -> Result<f64, String> {
    let why = match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= MAX_RPS => return Ok(r),
        Ok(r) if r < 0.0 => "a rate cannot be negative",
        Ok(0.0) => "a rate of 0 sends nothing",
        Ok(r) if r > MAX_RPS => "too high",
        _ => "not a number",
    };
    Err(format!(
        "invalid rate {s:?}: {why}; expected requests per second above 0 and at most 10,000,000, e.g. 50 or 0.5"
    ))
}

/// The checked shape of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `None`: the closed model.
    pub schedule: Option<Schedule>,
    pub concurrency: usize,
    /// `--streams`: calls in flight one HTTP/2 connection carries (1 over HTTP/1.1).
    pub streams: usize,
    /// Send no request due at or after this (the closed model: start none after it).
    pub window: Option<Duration>,
    pub requests: Option<u64>,
    pub warmup: Duration,
    /// `--timeout`: a due request waits at most this long for a free worker.
    pub timeout: Duration,
    /// This process's share of the schedule ([`WHOLE`] without `--segment`).
    pub segment: Segment,
}

impl Plan {
    pub fn from_args(args: &LoadArgs) -> Plan {
        let schedule = match (&args.stages, args.rps) {
            (Some(StageList(stages)), _) => Some(Schedule::stages(stages.clone())),
            (None, Some(rps)) => Some(Schedule::constant(rps)),
            (None, None) => None,
        };
        let window = match (args.duration, schedule.as_ref().and_then(Schedule::length), args.requests) {
            (Some(d), _, _) => Some(d),
            (None, Some(stages), _) => Some(stages),
            (None, None, Some(_)) => None,
            (None, None, None) => Some(DEFAULT_DURATION),
        };
        Plan {
            schedule,
            concurrency: args.concurrency as usize,
            streams: args.streams as usize,
            window,
            requests: args.requests,
            warmup: args.warmup,
            timeout: args.target.timeout,
            segment: args.segment.unwrap_or(WHOLE),
        }
    }

    /// The combinations clap cannot refuse by itself; a usage error before any request.
    pub fn check(&self, args: &LoadArgs) -> anyhow::Result<()> {
        if args.segment.is_some() && self.schedule.is_none() {
            anyhow::bail!(
                "--segment needs --rps or --stages: a closed model has no schedule to share (give each process its own --concurrency instead)"
            );
        }
        if let Some(at) = args.start_at {
            super::segment::check_start(at, &crate::util::time::rfc3339(at))?;
        }
        Ok(())
    }

    /// The connections the calls in flight need at most: ceil(concurrency / streams).
    pub fn connections(&self) -> usize {
        self.concurrency.div_ceil(self.streams.max(1))
    }

    pub fn model(&self) -> Model {
        if self.schedule.is_some() { Model::Open } else { Model::Closed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<LoadArgs, clap::Error> {
        crate::testing::args(args)
    }

    #[test]
    fn models_and_windows() {
        let p = Plan::from_args(&parse(&["--mock"]).unwrap());
        assert_eq!((p.model(), p.window, p.concurrency), (Model::Closed, Some(DEFAULT_DURATION), 50));
        let p = Plan::from_args(&parse(&["--mock", "--rps", "50", "-n", "100"]).unwrap());
        assert_eq!((p.model(), p.window, p.requests), (Model::Open, None, Some(100)));
        let args = parse(&["--mock", "--stages", "1s:10,2s:10"]).unwrap();
        let p = Plan::from_args(&args);
        assert_eq!(p.window, Some(Duration::from_secs(3)));
        let half = args.stages.as_ref().unwrap().planned(2);
        assert_eq!(half, [1.0, 2.0].map(|d| PlannedStage { duration_seconds: d, target_rps: 5.0 }));
        let p = Plan::from_args(&parse(&["--mock", "--rps", "5", "-d", "2s", "-c", "3"]).unwrap());
        assert_eq!((p.window, p.concurrency), (Some(Duration::from_secs(2)), 3));
    }

    #[test]
    fn conflicting_and_bad_flags_are_usage_errors() {
        for bad in [
            &["--rps", "5", "--stages", "1s:5"][..],
            &["--stages", "1s:5", "--duration", "1s"],
            &["--rps", "0"],
            &["--rps", "fast"],
            &["-c", "0"],
            &["-n", "0"],
            &["--threshold", "p99<"],
            &["--stages", "1s"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        for (rate, why) in
            [("-5", "cannot be negative"), ("1e9", "too high"), ("0", "sends nothing"), ("x", "not a number")]
        {
            let e = parse(&["--rps", rate]).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("at most 10,000,000"), "{rate}: {e}");
        }
        assert_eq!(parse(&["--mock", "--rps", "1e7"]).unwrap().rps, Some(MAX_RPS));
        let e = parse(&["--threshold", "p99<<3"]).unwrap_err().to_string();
        assert!(e.contains("expected METRIC OP VALUE"), "{e}");
    }
}
