//! The load report: the JSON object users' scripts read (docs/json.md), built from a
//! finished run by the load engine, written with `--format json` and `--out`, and read
//! back by `nehr-probe report`.
//!
//! The shape is public interface: all ten outcome keys always present, seconds as
//! floats, histograms as base64 of a compressed V2 HdrHistogram (µs). It never holds
//! credentials or tokens. This module owns the shape, not how it is measured.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::histogram::percentile;
use super::reasons::OutcomeReasons;
use super::threshold::{Facts, Judged, Threshold};
use crate::call::Outcome;
use crate::call::observation::HttpVersion;
use crate::call::phases::PhaseMap;
use crate::util::units::{round6, trim3};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// A fixed schedule (`--rps`, `--stages`); latency counts from the due time.
    Open,
    /// Workers back to back; latency is service time.
    Closed,
}

/// Which share of one global schedule a run sent (`load --segment I/N`): the requests
/// whose sequence number k has k mod `count` = `index`. N segments, each index once,
/// are together exactly the one-process run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Segment {
    pub index: u64,
    pub count: u64,
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Requests by outcome: all ten keys, always (`reused_token`, added later, is read as
/// 0 from older reports).
pub use crate::call::Outcomes;

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
        let q = |p: f64| secs(percentile(h, p));
        Percentiles {
            min: secs(h.min()),
            mean: round6(h.mean() / 1e6),
            p50: q(50.0),
            p90: q(90.0),
            p99: q(99.0),
            p99_9: q(99.9),
            p99_99: q(99.99),
            max: secs(h.max()),
        }
    }

    /// Which of [`Percentiles::rows`] rest on fewer than [`THIN_BELOW`] of `calls`
    /// beyond them (p99 of 500 calls is the 5th slowest: close to max, not a p99).
    pub fn thin(calls: u64) -> [bool; 8] {
        // Per ten thousand: p50, p90, p99, p99.9, p99.99.
        let beyond = |per_10k: u64| u128::from(calls) * u128::from(10_000 - per_10k) < u128::from(THIN_BELOW) * 10_000;
        [false, false, beyond(5000), beyond(9000), beyond(9900), beyond(9990), beyond(9999), false]
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

/// A percentile with fewer calls than this beyond it is marked in the text and HTML
/// reports: it is close to max (docs/measurement.md).
pub const THIN_BELOW: u64 = 10;

/// The note the text and HTML reports put under a table with a marked percentile.
pub const THIN_NOTE: &str = "fewer than 10 calls above this percentile: it is close to max";

/// One stage of a `--stages` plan: the rate ramps linearly to `target_rps` over
/// `duration_seconds`, from the rate the stage before ended at (the first from 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlannedStage {
    pub duration_seconds: f64,
    /// This report's share: with `--segment I/N`, the stage's rate over N.
    pub target_rps: f64,
}

/// The most stages a chart draws the planned rate of.
const MAX_PLANNED_CORNERS: usize = 10_000;

/// The planned rate of `stages` over time, as the corners of its line: `(seconds from
/// the start, requests per second)`, up to `until` seconds (where the chart ends).
pub fn planned_rate(stages: &[PlannedStage], until: f64) -> Vec<(f64, f64)> {
    let mut line = vec![(0.0, 0.0)];
    let (mut t, mut rate) = (0.0_f64, 0.0_f64);
    // A saved report may hold any number: a chart is under 1000 pixels wide anyway.
    for s in stages.iter().take(MAX_PLANNED_CORNERS) {
        let len = s.duration_seconds.max(0.0);
        if t + len >= until {
            let part = if len > 0.0 { (until - t) / len } else { 1.0 };
            line.push((until, rate + (s.target_rps - rate) * part.clamp(0.0, 1.0)));
            return line;
        }
        t += len;
        rate = s.target_rps;
        line.push((t, rate));
    }
    // The plan is over before the chart: no more requests are due.
    if t < until {
        if rate != 0.0 {
            line.push((t, 0.0));
        }
        line.push((until, 0.0));
    }
    line
}

/// `10s:50, 20s:100`: a plan as `--stages` takes it, at most `most` stages named.
pub fn stages_text(stages: &[PlannedStage], most: usize) -> String {
    let mut named: Vec<String> = stages
        .iter()
        .take(most)
        .map(|s| {
            let d = humantime::format_duration(Duration::from_secs_f64(s.duration_seconds.clamp(0.0, 1e9)));
            format!("{d}:{}", trim3(s.target_rps))
        })
        .collect();
    if stages.len() > most {
        named.push(format!("and {} more", stages.len() - most));
    }
    named.join(", ")
}

/// One phase of the calls over the calls where it happened (docs/json.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
    pub calls: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// The most entries the timeline of a planned run has (an hour at 1 s).
pub const TIMELINE_MAX_ENTRIES: u64 = 3600;
/// Timeline intervals, in seconds, for runs of every length.
const TIMELINE_STEPS: [u64; 14] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

/// The timeline interval (seconds) for a run that lasts `span`: the shortest step that
/// keeps the timeline within [`TIMELINE_MAX_ENTRIES`].
pub fn timeline_interval(span: Option<Duration>) -> u64 {
    let secs = span.map_or(0, |d| d.as_secs_f64().ceil() as u64);
    let fits = |step: &u64| secs.div_ceil(*step) <= TIMELINE_MAX_ENTRIES;
    TIMELINE_STEPS.into_iter().find(fits).unwrap_or(TIMELINE_STEPS[TIMELINE_STEPS.len() - 1])
}

/// Latency of one timeline interval, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalLatency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl PhaseStats {
    /// From a histogram of microseconds; `None` when no call had the phase.
    pub fn of(h: &Histogram<u64>) -> Option<PhaseStats> {
        if h.is_empty() {
            return None;
        }
        let q = |p: f64| secs(percentile(h, p));
        Some(PhaseStats { calls: h.len(), p50: q(50.0), p90: q(90.0), p99: q(99.0), max: secs(h.max()) })
    }
}

/// The five phases (`null`: no call had it).
pub type PhaseTable = PhaseMap<Option<PhaseStats>>;

/// HTTP/2 calls that waited for a stream (the server's `SETTINGS_MAX_CONCURRENT_STREAMS`
/// all in use): part of their latency, shown on its own. Adds exactly in merges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamWait {
    pub calls: u64,
    pub total_seconds: f64,
    pub max_seconds: f64,
}

impl StreamWait {
    /// Counts one call's wait.
    pub fn record(&mut self, wait: std::time::Duration) {
        self.calls += 1;
        self.total_seconds += wait.as_secs_f64();
        self.max_seconds = self.max_seconds.max(wait.as_secs_f64());
    }

    /// Adds another run's waits (a merge).
    pub fn add(&mut self, other: &StreamWait) {
        self.calls += other.calls;
        self.total_seconds += other.total_seconds;
        self.max_seconds = self.max_seconds.max(other.max_seconds);
    }

    /// As reported: `None` when no call waited, seconds rounded to the microsecond.
    pub fn reported(self) -> Option<StreamWait> {
        (self.calls > 0).then(|| StreamWait {
            calls: self.calls,
            total_seconds: crate::util::units::round6(self.total_seconds),
            max_seconds: crate::util::units::round6(self.max_seconds),
        })
    }
}

/// The phase table of the histograms of the five phases.
pub fn phase_table(h: &PhaseHistograms) -> PhaseTable {
    PhaseMap::from_fn(|p| PhaseStats::of(&h[p]))
}

/// The phases with their names, in the order reports list them.
pub fn phase_rows(table: &PhaseTable) -> Vec<(&'static str, Option<PhaseStats>)> {
    crate::call::keyed::named(table).collect()
}

/// The histograms of the five phases (µs).
pub type PhaseHistograms = PhaseMap<Histogram<u64>>;

/// Five empty phase histograms.
pub fn phase_histograms() -> PhaseHistograms {
    PhaseMap::from_fn(|_| super::histogram::histogram())
}

/// One interval of the timeline: the calls that *ended* in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Its start, in seconds after `started_at`.
    pub offset_seconds: f64,
    pub requests: u64,
    /// Due requests given up in it (never sent; in no outcome). Absent (0) in reports
    /// written before it was counted.
    #[serde(default)]
    pub dropped: u64,
    #[serde(with = "crate::call::keyed")]
    pub outcomes: Outcomes,
    /// All calls' latency (all zero without calls).
    pub latency_seconds: IntervalLatency,
}

/// The report, field for field as docs/json.md shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Never with credentials (a URL holding them is refused).
    pub target: String,
    pub model: Model,
    /// The planned mean rate (`--rps`; for `--stages` planned requests over the planned
    /// time); null for the closed model.
    pub target_rps: Option<f64>,
    /// `--stages`: the plan. Absent for `--rps` and the closed model, and in reports
    /// written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<PlannedStage>>,
    pub concurrency: u64,
    pub duration_seconds: f64,
    pub requests: u64,
    /// Open model: requests that fell due but were never sent (a free worker did not
    /// come within `--timeout`, or the window closed first). No latency: they are in no
    /// histogram. Absent (0) in reports written before it was counted.
    #[serde(default)]
    pub dropped: u64,
    pub achieved_rps: f64,
    #[serde(with = "crate::call::keyed")]
    pub outcomes: Outcomes,
    pub latency_seconds: Percentiles,
    /// Latency of `ok` calls only, so that fast failures do not flatter it. Absent in
    /// reports written before it (and in merges with such a report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_latency_seconds: Option<Percentiles>,
    pub service_time_seconds: Percentiles,
    pub late_starts: u64,
    pub http_status: BTreeMap<String, u64>,
    pub violations: BTreeMap<String, u64>,
    /// Why calls failed: each failing outcome's most frequent reasons, by outcome
    /// name. Empty when no call failed; absent (empty) in reports written before it.
    #[serde(default)]
    pub reasons: BTreeMap<String, OutcomeReasons>,
    pub thresholds: Vec<Judged>,
    /// Seconds per timeline entry: 1, coarser for long runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline_interval_seconds: Option<u64>,
    /// What happened when: one entry per interval from `started_at`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineEntry>,
    /// Base64 of the compressed V2 HdrHistogram of latency, µs.
    pub histogram: String,
    /// The same of service time, so that merged service-time percentiles are exact too.
    /// Reports written without it still read and merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time_histogram: Option<String>,
    /// `load --segment`: which share of the global schedule this run sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<Segment>,
    /// When the measured schedule started (its t0), RFC 3339 UTC; the timeline counts
    /// from it. Absent in reports written before it was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Open model: how long after its due time the first request was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_send_late_seconds: Option<f64>,
    /// Connections the calls opened (TCP handshakes completed).
    #[serde(default)]
    pub connections_opened: u64,
    /// The share of calls that ran on a connection they opened, 0 to 1.
    #[serde(default)]
    pub new_connection_share: f64,
    /// Answers by the TLS version of their connection (report/versions.rs); absent
    /// over http.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tls_versions: BTreeMap<String, u64>,
    /// Answers by the HTTP version they came in (report/versions.rs); absent when no
    /// call got an answer, and in older reports.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub http_versions: BTreeMap<String, u64>,
    /// HTTP/2: the calls that waited for a stream the server allows; absent when none
    /// did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_wait: Option<StreamWait>,
    /// Where the time went: each phase over the calls where it happened.
    #[serde(default)]
    #[serde(with = "crate::call::keyed")]
    pub phases_seconds: PhaseTable,
    /// The phases' histograms by phase name, as `histogram`, so merges are exact.
    /// Reports written without them still read and merge (without phases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_histograms: Option<BTreeMap<String, String>>,
    /// The same of `ok` calls' latency, so that merged ok latency is exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_histogram: Option<String>,
    /// `--then`: the call after each ok login. Absent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<ThenReport>,
}

/// With `--then`: the call after each ok login, and the journeys it completes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThenReport {
    /// Where it went: never with credentials (a URL holding them is refused).
    pub url: String,
    pub method: String,
    /// Calls made: one per ok login.
    pub calls: u64,
    /// Those calls by outcome, every key of docs/journeys.md always.
    pub outcomes: BTreeMap<String, u64>,
    /// Why calls other than `accepted` ended so, as the report's own `reasons`.
    #[serde(default)]
    pub reasons: BTreeMap<String, OutcomeReasons>,
    /// Journeys a user could go on with: the login ok and the call accepted.
    pub journeys_ok: u64,
    /// The share of due journeys that did not end so: failed logins, refused or failed
    /// calls, and dropped requests; 0 to 1.
    pub journey_error_rate: f64,
    /// From the call's send to its end.
    pub latency_seconds: Percentiles,
    #[serde(with = "crate::call::keyed")]
    pub phases_seconds: PhaseTable,
    /// As the report's own, for exact merges.
    pub histogram: String,
    pub phase_histograms: BTreeMap<String, String>,
}

impl ThenReport {
    /// Journeys that did not end with an accepted call, over those due.
    pub fn error_rate(journeys_ok: u64, due: u64) -> f64 {
        if due == 0 { 0.0 } else { round6(due.saturating_sub(journeys_ok) as f64 / due as f64) }
    }
}

/// What a run knows besides its recorder.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub target: String,
    pub model: Model,
    pub target_rps: Option<f64>,
    /// `--stages`: the plan (this segment's share of it).
    pub stages: Option<Vec<PlannedStage>>,
    pub concurrency: u64,
    pub duration: Duration,
    pub segment: Option<Segment>,
    /// The wall-clock time of the measured phase's t0.
    pub started_at: std::time::SystemTime,
    /// `--then`: its URL and method.
    pub then: Option<(String, String)>,
}

impl LoadReport {
    /// Judges `thresholds` against this report and its latency histograms (µs): of all
    /// calls, and of `ok` calls where the report has it.
    pub fn judge(&mut self, thresholds: &[Threshold], latency: &Histogram<u64>, ok_latency: Option<&Histogram<u64>>) {
        let then_latency = self.then.as_ref().and_then(|t| super::histogram::decode(&t.histogram).ok());
        let facts = Facts {
            latency,
            ok_latency,
            then_latency: then_latency.as_ref(),
            journeys_ok: self.then.as_ref().map(|t| t.journeys_ok),
            requests: self.requests,
            ok: self.outcomes[Outcome::Ok],
            dropped: self.dropped,
            achieved_rps: self.achieved_rps,
            answered: self.http_versions.values().sum(),
            http2: self.http_versions.get(HttpVersion::Http2.name()).copied().unwrap_or(0),
        };
        self.thresholds = thresholds.iter().map(|t| t.judge(&facts)).collect();
    }

    pub fn passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.passed)
    }

    /// What fails the run, as people read it: each rule that failed and, when not one
    /// call was `ok`, [`NO_OK`] (a run that measured nothing but failures, or nothing,
    /// must not pass silently: docs/exit-codes.md). Empty when the run passed.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self.thresholds.iter().filter(|t| !t.passed).map(|t| t.expr.clone()).collect();
        if self.outcomes[Outcome::Ok] == 0 {
            out.push(NO_OK.to_string());
        }
        out
    }

    /// The exit code of `load` and `report`: 1 when a threshold failed or no call was ok.
    pub fn exit_code(&self) -> u8 {
        if self.failures().is_empty() { 0 } else { 1 }
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes") + "\n"
    }
}

/// The failure of a run in which not one call was `ok`, whatever its thresholds.
pub const NO_OK: &str = "no call was ok";

/// Microseconds as seconds, to the microsecond.
pub fn secs(us: u64) -> f64 {
    round6(us as f64 / 1e6)
}

/// A report with its latency histogram decoded, and notes for the text rendering.
#[derive(Debug, Clone)]
pub struct Shown {
    pub report: LoadReport,
    pub latency: Histogram<u64>,
    /// Absent in reports written before it was saved.
    pub service: Option<Histogram<u64>>,
    /// The phases' histograms; absent in reports written before they were saved.
    pub phases: Option<PhaseHistograms>,
    /// Of `ok` calls; absent in reports written before it was saved.
    pub ok_latency: Option<Histogram<u64>>,
    pub notes: Vec<String>,
}

/// The share `part / of`, rounded to the microsecond's six decimals; 0 of nothing.
pub fn share(part: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { round6(part as f64 / of as f64) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentile_needs_ten_calls_beyond_it() {
        // min, mean, p50, p90, p99, p99.9, p99.99, max.
        let f = false;
        assert_eq!(Percentiles::thin(500), [f, f, f, f, true, true, true, f], "p99 of 500 is the 5th slowest");
        assert_eq!(Percentiles::thin(1_000), [f, f, f, f, f, true, true, f]);
        assert_eq!(Percentiles::thin(9_999), [f, f, f, f, f, true, true, f]);
        assert_eq!(Percentiles::thin(10_000), [f, f, f, f, f, f, true, f]);
        assert!(Percentiles::thin(99_999)[6]);
        assert_eq!(Percentiles::thin(100_000), [f; 8]);
        assert_eq!(Percentiles::thin(19), [f, f, true, true, true, true, true, f]);
        assert_eq!(Percentiles::thin(u64::MAX), [f; 8]);
    }

    #[test]
    fn the_planned_rate_ramps_holds_jumps_and_ends() {
        let plan = [(2.0, 10.0), (2.0, 10.0), (0.0, 30.0), (1.0, 0.0)]
            .map(|(duration_seconds, target_rps)| PlannedStage { duration_seconds, target_rps });
        let line = planned_rate(&plan, 7.0);
        assert_eq!(line, [(0.0, 0.0), (2.0, 10.0), (4.0, 10.0), (4.0, 30.0), (5.0, 0.0), (7.0, 0.0)]);
        // A chart that ends mid-ramp ends the line there.
        assert_eq!(planned_rate(&plan, 1.0), [(0.0, 0.0), (1.0, 5.0)]);
        assert_eq!(stages_text(&plan, 3), "2s:10, 2s:10, 0s:30, and 1 more");
    }
}
