//! The load report: the JSON object of DESIGN.md ("Output contracts"), built from a
//! finished run, written with `--format json` and `--out`, and read back by
//! `nehr-probe report FILE…`, which renders one saved report again or merges several
//! (from processes or machines run side by side) exactly: counts add, latency
//! histograms add, rates add (runs side by side share their window, so the sum is the
//! rate over it; the merged duration is the longest run's).
//!
//! The shape is public interface: all nine outcome keys always present, seconds as
//! floats, the latency histogram as base64 of a compressed V2 HdrHistogram (µs). It
//! never holds credentials or tokens. Text rendering lives in `text.rs`.

use crate::units::round6;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use super::recorder::{Recorder, histogram};
use super::text;
use super::threshold::{Facts, Threshold, Verdict};
use crate::probe::Outcome;

/// `nehr-probe report`: render or merge saved JSON reports.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Saved JSON reports (`load --out FILE` or `load --format json`); several are merged
    /// into one, as if one client had sent all their requests
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Pass/fail rule, repeatable, judged on the (merged) report together with the rules
    /// saved in it: p99<300ms, error_rate<1%, rps>=49. Any failure exits 1
    #[arg(long = "threshold", value_name = "EXPR", value_parser = Threshold::parse)]
    pub thresholds: Vec<Threshold>,

    /// Output format on stdout
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also write the JSON report to this file
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Summary, percentiles, status codes, violations, thresholds and a spectrum
    Text,
    /// The JSON object of the documented report shape
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// A fixed schedule (`--rps`, `--stages`); latency counts from the due time.
    Open,
    /// Workers back to back; latency is service time.
    Closed,
}

/// Requests by outcome: all nine keys, always.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    pub ok: u64,
    pub invalid_body: u64,
    pub unauthorized: u64,
    pub rate_limited: u64,
    pub server_error: u64,
    pub http_error: u64,
    pub timeout: u64,
    pub connect_error: u64,
    pub transport_error: u64,
}

impl Outcomes {
    pub fn get(&self, o: Outcome) -> u64 {
        let mut copy = *self;
        *copy.slot(o)
    }

    fn slot(&mut self, o: Outcome) -> &mut u64 {
        match o {
            Outcome::Ok => &mut self.ok,
            Outcome::InvalidBody => &mut self.invalid_body,
            Outcome::Unauthorized => &mut self.unauthorized,
            Outcome::RateLimited => &mut self.rate_limited,
            Outcome::ServerError => &mut self.server_error,
            Outcome::HttpError => &mut self.http_error,
            Outcome::Timeout => &mut self.timeout,
            Outcome::ConnectError => &mut self.connect_error,
            Outcome::TransportError => &mut self.transport_error,
        }
    }
}

/// A distribution in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub p99_99: f64,
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of microseconds; all zero when it is empty.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let q = |q: f64| secs(h.value_at_quantile(q));
        Percentiles {
            min: secs(h.min()),
            mean: round6(h.mean() / 1e6),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p99_9: q(0.999),
            p99_99: q(0.9999),
            max: secs(h.max()),
        }
    }

    /// The quantiles in the order reports list them, with their names.
    pub fn rows(&self) -> [(&'static str, f64); 8] {
        [
            ("min", self.min),
            ("mean", self.mean),
            ("p50", self.p50),
            ("p90", self.p90),
            ("p99", self.p99),
            ("p99.9", self.p99_9),
            ("p99.99", self.p99_99),
            ("max", self.max),
        ]
    }
}

/// The report, field for field as DESIGN.md shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Never with credentials (a URL holding them is refused).
    pub target: String,
    pub model: Model,
    /// The planned mean rate (`--rps`; for `--stages` planned requests over the planned
    /// time); null for the closed model.
    pub target_rps: Option<f64>,
    pub concurrency: u64,
    pub duration_seconds: f64,
    pub requests: u64,
    pub achieved_rps: f64,
    pub outcomes: Outcomes,
    pub latency_seconds: Percentiles,
    pub service_time_seconds: Percentiles,
    pub late_starts: u64,
    pub http_status: BTreeMap<String, u64>,
    pub violations: BTreeMap<String, u64>,
    pub thresholds: Vec<Verdict>,
    /// Base64 of the compressed V2 HdrHistogram of latency, µs.
    pub histogram: String,
    /// The same of service time, so that merged service-time percentiles are exact too.
    /// An addition to DESIGN.md's shape; reports without it still read and merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time_histogram: Option<String>,
}

/// What a run knows besides its recorder.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub target: String,
    pub model: Model,
    pub target_rps: Option<f64>,
    pub concurrency: u64,
    pub duration: Duration,
}

impl LoadReport {
    /// The report of a finished run, thresholds judged.
    pub fn build(run: &RunFacts, rec: &Recorder, thresholds: &[Threshold]) -> LoadReport {
        let duration = run.duration.as_secs_f64();
        let mut outcomes = Outcomes::default();
        for o in Outcome::ALL {
            *outcomes.slot(o) = rec.outcome(o);
        }
        let mut report = LoadReport {
            target: run.target.clone(),
            model: run.model,
            target_rps: run.target_rps.map(round6),
            concurrency: run.concurrency,
            duration_seconds: round6(duration),
            requests: rec.requests(),
            achieved_rps: if duration > 0.0 { round6(rec.requests() as f64 / duration) } else { 0.0 },
            outcomes,
            latency_seconds: Percentiles::of(&rec.latency),
            service_time_seconds: Percentiles::of(&rec.service),
            late_starts: rec.late_starts(),
            http_status: rec.http_status().map(|(s, n)| (s.to_string(), n)).collect(),
            violations: rec.violations().clone(),
            thresholds: Vec::new(),
            histogram: encode_histogram(&rec.latency),
            service_time_histogram: Some(encode_histogram(&rec.service)),
        };
        report.judge(thresholds, &rec.latency);
        report
    }

    /// Judges `thresholds` against this report and its latency histogram (µs).
    pub fn judge(&mut self, thresholds: &[Threshold], latency: &Histogram<u64>) {
        let facts = Facts { latency, requests: self.requests, ok: self.outcomes.ok, achieved_rps: self.achieved_rps };
        self.thresholds = thresholds.iter().map(|t| t.judge(&facts)).collect();
    }

    pub fn passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.passed)
    }

    /// The exit code of `load` and `report`: 1 when a threshold failed.
    pub fn exit_code(&self) -> u8 {
        if self.passed() { 0 } else { 1 }
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes") + "\n"
    }
}

/// Base64 of the compressed V2 encoding.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).expect("serializing into memory cannot fail");
    BASE64.encode(bytes)
}

pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = BASE64.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| format!("not an HdrHistogram: {e:?}"))
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path} is not a nehr-probe load report: {cause}")]
    Json { path: String, cause: serde_json::Error },
    #[error("{path}: its \"histogram\" is {why}")]
    Histogram { path: String, why: String },
    #[error("{path}: its saved threshold is unreadable: {why}")]
    Threshold { path: String, why: String },
    #[error("cannot merge an open-model report with a closed-model one: their latencies mean different things")]
    MixedModels,
}

/// A report with its latency histogram decoded, and notes for the text rendering.
#[derive(Debug, Clone)]
pub struct Shown {
    pub report: LoadReport,
    pub latency: Histogram<u64>,
    /// Absent in reports written before it was saved.
    pub service: Option<Histogram<u64>>,
    pub notes: Vec<String>,
}

impl Shown {
    /// Prints the report as asked and writes `out`; stdout may be a closed pipe.
    pub fn emit(&self, format: Format, out: Option<&Path>) -> anyhow::Result<()> {
        let json = self.report.json();
        if let Some(path) = out {
            std::fs::write(path, &json).with_context(|| format!("cannot write --out {}", path.display()))?;
        }
        match format {
            Format::Json => crate::print_stdout(&json),
            Format::Text => crate::print_stdout(&text::render(self)),
        }
    }
}

/// Reads one saved report.
pub fn read(path: &Path) -> Result<Shown, ReportError> {
    let shown = path.display().to_string();
    let text = crate::units::read_input_file(path).map_err(|cause| ReportError::Read { path: shown.clone(), cause })?;
    let report: LoadReport =
        serde_json::from_str(&text).map_err(|cause| ReportError::Json { path: shown.clone(), cause })?;
    let latency =
        decode_histogram(&report.histogram).map_err(|why| ReportError::Histogram { path: shown.clone(), why })?;
    let service = match &report.service_time_histogram {
        Some(text) => Some(decode_histogram(text).map_err(|why| ReportError::Histogram { path: shown, why })?),
        None => None,
    };
    Ok(Shown { report, latency, service, notes: Vec::new() })
}

/// Merges reports of runs that ran side by side into the report of one run that sent
/// all their requests: counts and histograms add; so do the runs' rates (each over its
/// own window; the merged duration is the longest run's).
pub fn merge(parts: Vec<Shown>) -> Result<Shown, ReportError> {
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else { unreachable!("clap requires at least one file") };
    let rest: Vec<Shown> = parts.collect();
    if rest.is_empty() {
        return Ok(first);
    }
    let all: Vec<&Shown> = std::iter::once(&first).chain(&rest).collect();
    if all.iter().any(|s| s.report.model != first.report.model) {
        return Err(ReportError::MixedModels);
    }
    let mut latency = histogram();
    let mut service = all.iter().all(|s| s.service.is_some()).then(histogram);
    let mut targets: Vec<&str> = Vec::new();
    let mut m = first.report.clone();
    m.target_rps = Some(0.0);
    m.concurrency = 0;
    m.duration_seconds = 0.0;
    m.requests = 0;
    m.achieved_rps = 0.0;
    m.outcomes = Outcomes::default();
    m.late_starts = 0;
    m.http_status.clear();
    m.violations.clear();
    m.thresholds.clear();
    for s in &all {
        let r = &s.report;
        if !targets.contains(&r.target.as_str()) {
            targets.push(&r.target);
        }
        m.target_rps = m.target_rps.zip(r.target_rps).map(|(a, b)| a + b);
        m.concurrency += r.concurrency;
        m.duration_seconds = m.duration_seconds.max(r.duration_seconds);
        m.requests += r.requests;
        m.achieved_rps += r.achieved_rps;
        for o in Outcome::ALL {
            *m.outcomes.slot(o) += r.outcomes.get(o);
        }
        m.late_starts += r.late_starts;
        for (k, v) in &r.http_status {
            *m.http_status.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &r.violations {
            *m.violations.entry(k.clone()).or_default() += v;
        }
        for t in &r.thresholds {
            if !m.thresholds.iter().any(|have| have.expr == t.expr) {
                m.thresholds.push(t.clone());
            }
        }
        add_histogram(&mut latency, &s.latency);
        if let (Some(into), Some(from)) = (service.as_mut(), s.service.as_ref()) {
            add_histogram(into, from);
        }
    }
    m.target = targets.join(", ");
    m.target_rps = m.target_rps.map(round6);
    m.achieved_rps = round6(m.achieved_rps);
    m.latency_seconds = Percentiles::of(&latency);
    m.histogram = encode_histogram(&latency);
    let mut notes = vec![format!("merged from {} reports: counts and histograms add, rates add", all.len())];
    match &service {
        Some(h) => m.service_time_seconds = Percentiles::of(h),
        None => {
            m.service_time_seconds = merge_service_times(&all);
            notes.push(
                "a report without a service-time histogram was merged: service-time percentiles are \
                 request-weighted means of the reports' (approximate); min, mean and max are exact"
                    .to_string(),
            );
        }
    }
    m.service_time_histogram = service.as_ref().map(encode_histogram);
    Ok(Shown { report: m, latency, service, notes })
}

/// Adds `from` into `into`. Values beyond an hour (another tool's histogram) land at the
/// top; `add` checks the range before it adds anything.
fn add_histogram(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if into.add(from).is_err() {
        for v in from.iter_recorded() {
            into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// For reports without a service-time histogram: merged service-time percentiles are
/// weighted means; min, mean and max are exact.
fn merge_service_times(all: &[&Shown]) -> Percentiles {
    let total: u64 = all.iter().map(|s| s.report.requests).sum();
    if total == 0 {
        return Percentiles::default();
    }
    let weighted = |f: fn(&Percentiles) -> f64| {
        round6(
            all.iter().map(|s| f(&s.report.service_time_seconds) * s.report.requests as f64).sum::<f64>()
                / total as f64,
        )
    };
    let with_requests = || all.iter().filter(|s| s.report.requests > 0).map(|s| &s.report.service_time_seconds);
    Percentiles {
        min: with_requests().map(|p| p.min).fold(f64::INFINITY, f64::min),
        mean: weighted(|p| p.mean),
        p50: weighted(|p| p.p50),
        p90: weighted(|p| p.p90),
        p99: weighted(|p| p.p99),
        p99_9: weighted(|p| p.p99_9),
        p99_99: weighted(|p| p.p99_99),
        max: with_requests().map(|p| p.max).fold(0.0, f64::max),
    }
}

/// `nehr-probe report FILE…`: renders (and merges), judges the saved and the given
/// thresholds, returns the exit code.
pub fn run(args: &ReportArgs) -> anyhow::Result<u8> {
    let mut parts = Vec::with_capacity(args.files.len());
    let mut rules: Vec<Threshold> = Vec::new();
    for path in &args.files {
        let part = read(path)?;
        for v in &part.report.thresholds {
            let rule = Threshold::parse(&v.expr)
                .map_err(|e| ReportError::Threshold { path: path.display().to_string(), why: e.why })?;
            if !rules.iter().any(|r| r.expr == rule.expr) {
                rules.push(rule);
            }
        }
        parts.push(part);
    }
    for t in &args.thresholds {
        if !rules.iter().any(|r| r.expr == t.expr) {
            rules.push(t.clone());
        }
    }
    let mut shown = merge(parts)?;
    shown.report.judge(&rules, &shown.latency);
    shown.emit(args.format, args.out.as_deref())?;
    Ok(shown.report.exit_code())
}

/// Seconds as people read them: `850 µs`, `21.07 ms`, `1.002 s`.
pub fn human_secs(x: f64) -> String {
    if x < 0.001 {
        format!("{:.0} µs", x * 1e6)
    } else if x < 1.0 {
        format!("{:.2} ms", x * 1e3)
    } else {
        format!("{x:.3} s")
    }
}

fn secs(us: u64) -> f64 {
    round6(us as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::recorder::tests::obs;

    fn run_of(latencies_ms: &[u64], model: Model) -> Shown {
        let mut rec = Recorder::new();
        for &ms in latencies_ms {
            rec.record(&obs(if ms > 900 { Outcome::ServerError } else { Outcome::Ok }, Some(200), 0, ms));
        }
        let run = RunFacts {
            target: "http://127.0.0.1:1/nehrapi/login/getToken".into(),
            model,
            target_rps: Some(10.0),
            concurrency: 5,
            duration: Duration::from_secs(10),
        };
        let report = LoadReport::build(&run, &rec, &[Threshold::parse("p99<500ms").unwrap()]);
        Shown { report, latency: rec.latency, service: Some(rec.service), notes: vec![] }
    }

    #[test]
    fn json_has_every_key_of_the_contract() {
        let s = run_of(&[10, 20, 30], Model::Open);
        let v: serde_json::Value = serde_json::from_str(&s.report.json()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "target",
                "model",
                "target_rps",
                "concurrency",
                "duration_seconds",
                "requests",
                "achieved_rps",
                "outcomes",
                "latency_seconds",
                "service_time_seconds",
                "late_starts",
                "http_status",
                "violations",
                "thresholds",
                "histogram",
                "service_time_histogram"
            ]
        );
        assert_eq!(v["outcomes"].as_object().unwrap().len(), 9);
        assert_eq!(v["model"], "open");
        assert_eq!(v["achieved_rps"], 0.3);
        assert_eq!(v["http_status"]["200"], 3);
        assert_eq!(v["thresholds"][0]["expr"], "p99<500ms");
        assert!(v["histogram"].as_str().unwrap().starts_with("HISTF"));
        let back: LoadReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, s.report);
        assert_eq!(decode_histogram(&back.histogram).unwrap(), s.latency);
    }

    #[test]
    fn merge_adds_counts_and_histograms() {
        let a = run_of(&[10; 90], Model::Open);
        let b = run_of(&[1000; 10], Model::Open);
        let mut both = a.latency.clone();
        both.add(&b.latency).unwrap();
        let m = merge(vec![a.clone(), b.clone()]).unwrap();
        assert_eq!(m.report.requests, 100);
        assert_eq!(m.report.outcomes.ok, 90);
        assert_eq!(m.report.outcomes.server_error, 10);
        assert_eq!(m.report.achieved_rps, 10.0);
        assert_eq!(m.report.target_rps, Some(20.0));
        assert_eq!(m.report.concurrency, 10);
        assert_eq!(m.report.http_status["200"], 100);
        assert_eq!(m.latency, both);
        assert_eq!(m.report.latency_seconds, Percentiles::of(&both));
        assert_eq!(m.report.target, a.report.target);
        assert_eq!(m.report.service_time_seconds.max, b.report.service_time_seconds.max);
        // Service time merges exactly too: its histograms add.
        let mut services = a.service.clone().unwrap();
        services.add(b.service.as_ref().unwrap()).unwrap();
        assert_eq!(m.report.service_time_seconds, Percentiles::of(&services));
        assert_eq!(m.service.as_ref(), Some(&services));
        // A report written before service histograms were saved still merges, approximately.
        let mut old = b.clone();
        old.service = None;
        old.report.service_time_histogram = None;
        let m = merge(vec![a.clone(), old]).unwrap();
        assert!(m.service.is_none() && m.report.service_time_histogram.is_none());
        assert!(m.notes.iter().any(|n| n.contains("approximate")), "{:?}", m.notes);
        let closed = run_of(&[1], Model::Closed);
        assert!(matches!(merge(vec![a, closed]), Err(ReportError::MixedModels)));
    }

    #[test]
    fn empty_run_reports_zeros() {
        let s = run_of(&[], Model::Closed);
        assert_eq!(s.report.requests, 0);
        assert_eq!(s.report.latency_seconds, Percentiles::default());
        assert!(!s.report.passed(), "a latency rule cannot pass without requests");
        assert_eq!(s.report.exit_code(), 1);
    }

    #[test]
    fn seconds_for_people() {
        assert_eq!(human_secs(0.000_85), "850 µs");
        assert_eq!(human_secs(0.021_07), "21.07 ms");
        assert_eq!(human_secs(1.0024), "1.002 s");
    }
}
