//! Turns observations into the numbers of a load report: HdrHistograms of latency (from
//! the due time) and service time (from the send), and counters per outcome, HTTP status
//! and violation path, the most frequent reasons of each failing outcome, plus
//! `late_starts`.
//!
//! One task owns the [`Recorder`]; workers send it their observations over a bounded
//! channel that it drains every 10 ms ([`collect`]), so recording takes no lock and
//! wakes no thread, and after the first answer of each kind it allocates nothing but a
//! failed call's reason text. Memory is flat: histograms have a fixed size whatever the
//! run's length, violation paths are bounded by the schema (and capped here), and
//! reasons by [`Tally`].
//! Every second the owner also closes an interval: a line of the `--hlog`, a refresh of
//! the progress display.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use prometheus_client::metrics::counter::Counter as IntCounter;
use tokio::sync::mpsc;

use super::live::{Hlog, Progress};
use super::then::ThenRecorder;
use super::timeline::{OpenSeconds, Second, Timeline, TimelineBuilder};
use crate::call::observation::HttpVersion;
use crate::call::tls_version::TlsVersion;
use crate::call::{Connection, Observation, Outcome};
use crate::metrics::Metrics;
use crate::report::histogram::{self, histogram, micros};
use crate::report::model::{
    LoadReport, Model, Outcomes, Percentiles, PhaseHistograms, RunFacts, Shown, StreamWait, phase_histograms,
    phase_table, share,
};
use crate::report::reasons::{OutcomeReasons, Tally, without_outcome};
use crate::report::threshold::Threshold;
use crate::report::versions::Counts;
use crate::util::units::round6;

/// A request that starts later than this after its release time (its due time, or
/// above 4000 rps the release grid's next point) is a late start.
pub const LATE: Duration = Duration::from_millis(1);
/// Distinct violation paths counted by name; more (only a hostile `--schema` could
/// make them) are counted under [`OTHER_PATHS`].
const MAX_PATHS: usize = 64;
pub const OTHER_PATHS: &str = "(other paths)";

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// From the due time, µs.
    pub latency: Histogram<u64>,
    /// From the send, µs.
    pub service: Histogram<u64>,
    /// Each phase, over the calls where it happened, µs.
    pub phases: PhaseHistograms,
    connections_opened: u64,
    /// Answers by TLS version, and by HTTP version.
    tls_versions: Counts<TlsVersion>,
    http_versions: Counts<HttpVersion>,
    stream_wait: StreamWait,
    /// From the due time, of `ok` calls only, µs: fast failures do not pull it down.
    pub ok_latency: Histogram<u64>,
    /// What happened when; filled by [`collect`] when the run ends.
    pub timeline: Option<Timeline>,
    /// `--then`: the next calls; from the first journey that made one.
    pub then: Option<ThenRecorder>,
    outcomes: Outcomes,
    /// Indexed by status code (HTTP allows 100 to 999).
    statuses: Box<[u64]>,
    violations: BTreeMap<String, u64>,
    /// Why calls failed, by outcome (`ok`'s stays empty).
    reasons: enum_map::EnumMap<Outcome, Tally>,
    late_starts: u64,
    /// A start later than this after the due time is late: [`LATE`] plus the release
    /// grid's step (a request the grid holds back by design is not held back by the
    /// cap or the machine).
    late_after: Duration,
    requests: u64,
    /// Open model: due requests never sent (docs/measurement.md).
    dropped: u64,
    last_sent: Option<Instant>,
    /// The lowest sequence number seen and how late after its due time it was sent.
    first: Option<(u64, Duration)>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            latency: histogram(),
            service: histogram(),
            phases: phase_histograms(),
            connections_opened: 0,
            tls_versions: Counts::default(),
            http_versions: Counts::default(),
            stream_wait: StreamWait::default(),
            ok_latency: histogram(),
            timeline: None,
            then: None,
            outcomes: Outcomes::default(),
            statuses: vec![0; 1000].into_boxed_slice(),
            violations: BTreeMap::new(),
            reasons: enum_map::EnumMap::default(),
            late_starts: 0,
            late_after: LATE,
            requests: 0,
            dropped: 0,
            last_sent: None,
            first: None,
        }
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A recorder for requests released on a grid of `step` (zero: each on time).
    pub fn on_grid(step: Duration) -> Self {
        Recorder { late_after: LATE + step, ..Self::default() }
    }

    /// Counts one call; returns its latency in µs (for the interval histogram).
    pub fn record(&mut self, obs: &Observation) -> u64 {
        let latency = micros(obs.latency());
        self.latency.saturating_record(latency);
        self.service.saturating_record(micros(obs.service_time()));
        for (p, d) in obs.phases.listed() {
            if let Some(d) = d {
                self.phases[p].saturating_record(micros(d));
            }
        }
        self.connections_opened += u64::from(obs.connection == Some(Connection::New));
        self.tls_versions.record_name(obs.tls_version);
        self.http_versions.record(obs.http_version);
        if let Some(wait) = obs.phases.stream_wait {
            self.stream_wait.record(wait);
        }
        if obs.outcome == Outcome::Ok {
            self.ok_latency.saturating_record(latency);
        }
        self.outcomes[obs.outcome] += 1;
        if !obs.is_ok() {
            self.reasons[obs.outcome].add(&without_outcome(&obs.reason(), obs.outcome.as_str()), 1);
        }
        if obs.then.is_some() || self.then.is_some() {
            self.then.get_or_insert_default().record(obs);
        }
        if let Some(count) = obs.status.and_then(|s| self.statuses.get_mut(usize::from(s))) {
            *count += 1;
        }
        if obs.sent.saturating_duration_since(obs.due) > self.late_after {
            self.late_starts += 1;
        }
        for v in obs.counted_violations() {
            self.count_violation(&v.path);
        }
        self.requests += 1;
        if self.last_sent.is_none_or(|t| obs.sent > t) {
            self.last_sent = Some(obs.sent);
        }
        if self.first.is_none_or(|(seq, _)| obs.seq < seq) {
            self.first = Some((obs.seq, obs.sent.saturating_duration_since(obs.due)));
        }
        latency
    }

    fn count_violation(&mut self, path: &str) {
        if let Some(n) = self.violations.get_mut(path) {
            *n += 1;
        } else if self.violations.len() < MAX_PATHS {
            self.violations.insert(path.to_string(), 1);
        } else {
            *self.violations.entry(OTHER_PATHS.to_string()).or_default() += 1;
        }
    }

    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Due requests never sent so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Takes the run's count of dropped requests, which only grows; returns how many
    /// are new since the last time.
    pub fn set_dropped(&mut self, total: u64) -> u64 {
        let new = total.saturating_sub(self.dropped);
        self.dropped += new;
        new
    }

    /// When the last recorded call was sent.
    pub fn last_sent(&self) -> Option<Instant> {
        self.last_sent
    }

    pub fn late_starts(&self) -> u64 {
        self.late_starts
    }

    pub fn outcome(&self, o: Outcome) -> u64 {
        self.outcomes[o]
    }

    /// Answers by HTTP status, lowest status first; calls without an answer are absent.
    pub fn http_status(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.statuses.iter().enumerate().filter(|(_, n)| **n > 0).map(|(s, n)| (s as u16, *n))
    }

    pub fn violations(&self) -> &BTreeMap<String, u64> {
        &self.violations
    }

    /// Each failing outcome's most frequent reasons, by outcome name.
    pub fn reasons(&self) -> BTreeMap<String, OutcomeReasons> {
        self.reasons.iter().filter(|(_, t)| !t.is_empty()).map(|(o, t)| (o.as_str().to_string(), t.report())).collect()
    }

    /// The report of a finished run with its histograms, ready to show.
    pub fn into_shown(self, run: &RunFacts, thresholds: &[Threshold], notes: Vec<String>) -> Shown {
        let report = self.report(run, thresholds);
        Shown {
            report,
            latency: self.latency,
            service: Some(self.service),
            phases: Some(self.phases),
            ok_latency: Some(self.ok_latency),
            notes,
        }
    }

    /// The report of a finished run, thresholds judged.
    pub fn report(&self, run: &RunFacts, thresholds: &[Threshold]) -> LoadReport {
        let rec = self;
        let duration = run.duration.as_secs_f64();
        let outcomes = rec.outcomes;
        let timeline = rec.timeline.as_ref();
        let mut report = LoadReport {
            target: run.target.clone(),
            model: run.model,
            target_rps: run.target_rps.map(round6),
            stages: run.stages.clone(),
            concurrency: run.concurrency,
            duration_seconds: round6(duration),
            requests: rec.requests(),
            dropped: rec.dropped(),
            achieved_rps: if duration > 0.0 { round6(rec.requests() as f64 / duration) } else { 0.0 },
            outcomes,
            latency_seconds: Percentiles::of(&rec.latency),
            ok_latency_seconds: Some(Percentiles::of(&rec.ok_latency)),
            service_time_seconds: Percentiles::of(&rec.service),
            late_starts: rec.late_starts(),
            http_status: rec.http_status().map(|(s, n)| (s.to_string(), n)).collect(),
            violations: rec.violations().clone(),
            reasons: rec.reasons(),
            thresholds: Vec::new(),
            timeline_interval_seconds: timeline.map(|t| t.interval),
            timeline: timeline.map_or_else(Vec::new, Timeline::entries),
            histogram: histogram::encode(&rec.latency),
            service_time_histogram: Some(histogram::encode(&rec.service)),
            segment: run.segment,
            started_at: Some(crate::util::time::rfc3339(run.started_at)),
            first_send_late_seconds: match run.model {
                Model::Open => rec.first.map(|(_, late)| round6(late.as_secs_f64())),
                Model::Closed => None,
            },
            connections_opened: rec.connections_opened,
            new_connection_share: share(rec.connections_opened, rec.requests()),
            tls_versions: rec.tls_versions.to_map(),
            http_versions: rec.http_versions.to_map(),
            stream_wait: rec.stream_wait.reported(),
            phases_seconds: phase_table(&rec.phases),
            phase_histograms: Some(histogram::encode_phases(&rec.phases)),
            ok_histogram: Some(histogram::encode(&rec.ok_latency)),
            then: run.then.as_ref().map(|(url, method)| {
                rec.then.clone().unwrap_or_default().report(url, method, rec.requests() + rec.dropped())
            }),
        };
        report.judge(thresholds, &rec.latency, Some(&rec.ok_latency));
        report
    }
}

/// Where the owner sends what it learns while the run goes on.
#[derive(Default)]
pub struct Sinks {
    pub hlog: Option<Hlog>,
    pub progress: Option<Progress>,
    pub metrics: Option<Metrics>,
    /// `nehr_probe_late_starts_total` of the live metrics.
    pub late_starts: Option<IntCounter>,
    /// Calls handed out so far (the workers' sequence counter), for "in flight".
    pub started: Option<Arc<AtomicU64>>,
    /// Due requests dropped so far; the engine stores the final count before the
    /// channel closes.
    pub dropped: Option<Arc<AtomicU64>>,
    /// `--metrics-listen`'s count of them.
    pub dropped_total: Option<IntCounter>,
}

/// How often the owner drains the channel. Workers never wake it: it polls, so a send
/// costs the worker a few atomic operations and no thread wakeup.
const DRAIN_EVERY: Duration = Duration::from_millis(10);

/// Receives observations until every sender is gone, recording each; closes a second
/// of the `--hlog` and of the timeline at a time, by the instant calls ended (see
/// [`super::timeline`]). `planned` is how long the run is meant to last, which sets
/// the timeline's interval; `grid`, the release grid's coarsest step (zero: every
/// request released on time). Returns the recorder, its timeline filled, and the sinks.
pub async fn collect(
    mut rx: mpsc::Receiver<Observation>,
    t0: Instant,
    planned: Option<Duration>,
    grid: Duration,
    mut sinks: Sinks,
) -> (Recorder, Sinks) {
    let started_at = SystemTime::now() - t0.elapsed();
    if let Some(hlog) = &mut sinks.hlog {
        hlog.begin(started_at);
    }
    let mut rec = Recorder::on_grid(grid);
    let mut seconds = OpenSeconds::new();
    let mut timeline = TimelineBuilder::new(started_at, planned);
    let mut drains = tokio::time::interval(DRAIN_EVERY);
    drains.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        drains.tick().await;
        let closed = loop {
            match rx.try_recv() {
                Ok(obs) => {
                    let latency = rec.record(&obs);
                    seconds.record(obs.done.saturating_duration_since(t0), obs.outcome, latency);
                    if let Some(m) = &sinks.metrics {
                        m.observe(&obs);
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break false,
                Err(mpsc::error::TryRecvError::Disconnected) => break true,
            }
        };
        if let Some(dropped) = &sinks.dropped {
            let new = rec.set_dropped(dropped.load(Ordering::SeqCst));
            seconds.drop_at(t0.elapsed(), new);
            if let Some(total) = &sinks.dropped_total {
                total.inc_by(new);
            }
        }
        if let Some(late) = &sinks.late_starts {
            late.inc_by(rec.late_starts().saturating_sub(late.get()));
        }
        // A second that is over closes even on the last drain, so no interval is longer.
        seconds.close_due(t0.elapsed(), |second, len| {
            timeline.add(second);
            close_second(&mut sinks, &rec, second, len);
        });
        if closed {
            break;
        }
    }
    // The last seconds go to the log and the timeline only: the display is about to clear.
    seconds.close_all(t0.elapsed(), |second, len| {
        timeline.add(second);
        if let Some(hlog) = &mut sinks.hlog {
            hlog.write(&second.latency, Duration::from_secs(second.index), len);
        }
    });
    rec.timeline = Some(timeline.finish());
    (rec, sinks)
}

fn close_second(sinks: &mut Sinks, rec: &Recorder, second: &Second, len: Duration) {
    if let Some(hlog) = &mut sinks.hlog {
        hlog.write(&second.latency, Duration::from_secs(second.index), len);
    }
    if let Some(p) = &mut sinks.progress {
        let started = sinks.started.as_ref().map_or(0, |s| s.load(Ordering::Relaxed));
        let in_flight = started.saturating_sub(rec.requests());
        p.update(rec.requests(), rec.outcome(Outcome::Ok), &second.latency, in_flight, rec.dropped());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::call::phases::Phase;
    use crate::call::validate::Violation;
    use crate::load::timeline::{OpenSeconds, TimelineBuilder};
    use crate::report::histogram::decode;
    use crate::report::merge::{ReportError, merge};
    use crate::report::model::PhaseStats;

    pub(crate) fn obs(outcome: Outcome, status: Option<u16>, wait_ms: u64, service_ms: u64) -> Observation {
        let due = Instant::now();
        let sent = due + Duration::from_millis(wait_ms);
        Observation::new(0, due, sent, sent + Duration::from_millis(service_ms), status, outcome)
    }

    #[test]
    fn latency_counts_the_wait_and_service_time_does_not() {
        let mut r = Recorder::new();
        assert_eq!(r.record(&obs(Outcome::Ok, Some(200), 0, 20)), 20_000);
        r.record(&obs(Outcome::Ok, Some(200), 980, 20));
        assert_eq!(r.requests(), 2);
        assert_eq!(r.late_starts(), 1);
        assert!(r.latency.max() >= 1_000_000 && r.latency.max() < 1_001_000);
        assert!(r.service.max() < 20_100);
    }

    #[test]
    fn the_release_grid_is_not_a_late_start() {
        // On a 1 ms grid a request goes out up to 1 ms after its due time by design.
        let mut r = Recorder::on_grid(Duration::from_millis(1));
        r.record(&obs(Outcome::Ok, Some(200), 1, 1));
        assert_eq!(r.late_starts(), 0);
        r.record(&obs(Outcome::Ok, Some(200), 3, 1));
        assert_eq!(r.late_starts(), 1);
        let mut exact = Recorder::new();
        exact.record(&obs(Outcome::Ok, Some(200), 2, 1));
        assert_eq!(exact.late_starts(), 1);
    }

    #[test]
    fn counters_by_outcome_status_and_path() {
        let mut r = Recorder::new();
        r.record(&obs(Outcome::Ok, Some(200), 0, 1));
        r.record(&obs(Outcome::ServerError, Some(503), 0, 1));
        r.record(&obs(Outcome::ConnectError, None, 0, 1));
        let mut bad = obs(Outcome::InvalidBody, Some(200), 0, 1);
        bad.violations = vec![Violation { path: "/result/expires_in".into(), message: "must be > 0".into() }];
        r.record(&bad);
        r.record(&bad);
        let mut note = obs(Outcome::Unauthorized, Some(401), 0, 1);
        note.violations = vec![Violation { path: "/code".into(), message: "expected integer".into() }];
        r.record(&note);
        assert_eq!(r.outcome(Outcome::Ok), 1);
        assert_eq!(r.outcome(Outcome::InvalidBody), 2);
        assert_eq!(r.outcome(Outcome::ConnectError), 1);
        assert_eq!(r.http_status().collect::<Vec<_>>(), [(200, 3), (401, 1), (503, 1)]);
        assert_eq!(r.violations().len(), 1);
        assert_eq!(r.violations()["/result/expires_in"], 2);
    }

    #[test]
    fn violation_paths_are_capped() {
        let mut r = Recorder::new();
        for i in 0..100 {
            r.count_violation(&format!("/f{i}"));
        }
        assert_eq!(r.violations().len(), MAX_PATHS + 1);
        assert_eq!(r.violations()[OTHER_PATHS], 100 - MAX_PATHS as u64);
    }

    #[tokio::test]
    async fn the_owner_records_what_workers_send() {
        let (tx, rx) = mpsc::channel(8);
        let owner = tokio::spawn(collect(rx, Instant::now(), None, Duration::ZERO, Sinks::default()));
        for _ in 0..100 {
            tx.send(obs(Outcome::Ok, Some(200), 0, 2)).await.unwrap();
        }
        drop(tx);
        let (rec, _) = owner.await.unwrap();
        assert_eq!(rec.requests(), 100);
        assert_eq!(rec.latency.len(), 100);
    }

    // The report a recorder builds, and how reports merge.

    fn run_of(latencies_ms: &[u64], model: Model) -> Shown {
        let mut rec = Recorder::new();
        let mut seconds = OpenSeconds::new();
        for (i, &ms) in latencies_ms.iter().enumerate() {
            let outcome = if ms > 900 { Outcome::ServerError } else { Outcome::Ok };
            let mut o = obs(outcome, Some(200), 0, ms);
            // Every other call opens its connection; all are answered.
            o.connection = Some(if i % 2 == 0 { Connection::New } else { Connection::Reused });
            o.phases.connect = (i % 2 == 0).then(|| Duration::from_micros(150));
            o.phases.processing = Some(Duration::from_millis(ms));
            let latency = rec.record(&o);
            seconds.record(Duration::from_millis(i as u64 * 100), outcome, latency);
        }
        let mut timeline = TimelineBuilder::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000), None);
        seconds.close_all(Duration::from_secs(10), |second, _| timeline.add(second));
        rec.timeline = Some(timeline.finish());
        let run = RunFacts {
            target: "http://127.0.0.1:1/nehrapi/login/getToken".into(),
            model,
            target_rps: Some(10.0),
            stages: None,
            concurrency: 5,
            duration: Duration::from_secs(10),
            segment: None,
            started_at: std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            then: None,
        };
        rec.into_shown(&run, &[Threshold::parse("p99<500ms").unwrap()], vec![])
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
                "dropped",
                "achieved_rps",
                "outcomes",
                "latency_seconds",
                "ok_latency_seconds",
                "service_time_seconds",
                "late_starts",
                "http_status",
                "violations",
                "reasons",
                "thresholds",
                "timeline_interval_seconds",
                "timeline",
                "histogram",
                "service_time_histogram",
                "started_at",
                "first_send_late_seconds",
                "connections_opened",
                "new_connection_share",
                "phases_seconds",
                "phase_histograms",
                "ok_histogram"
            ]
        );
        assert_eq!(v["outcomes"].as_object().unwrap().len(), Outcome::COUNT);
        assert_eq!(v["model"], "open");
        assert_eq!(v["achieved_rps"], 0.3);
        assert_eq!(v["http_status"]["200"], 3);
        assert_eq!(v["thresholds"][0]["expr"], "p99<500ms");
        assert_eq!(v["started_at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["timeline"].as_array().unwrap().len(), 10);
        assert_eq!(v["timeline"][0]["requests"], 3);
        assert_eq!(v["timeline"][0]["outcomes"].as_object().unwrap().len(), Outcome::COUNT);
        assert_eq!(v["timeline"][0]["latency_seconds"]["max"], 0.030015);
        assert_eq!(v["timeline"][1]["requests"], 0);
        assert!(v["histogram"].as_str().unwrap().starts_with("HISTF"));
        let back: LoadReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, s.report);
        assert_eq!(decode(&back.histogram).unwrap(), s.latency);
    }

    #[test]
    fn merge_adds_counts_and_histograms() {
        let mut a = run_of(&[10; 90], Model::Open);
        let mut b = run_of(&[1000; 10], Model::Open);
        (a.report.dropped, b.report.dropped) = (3, 4);
        let mut both = a.latency.clone();
        both.add(&b.latency).unwrap();
        let m = merge(vec![a.clone(), b.clone()]).unwrap();
        assert_eq!(m.report.requests, 100);
        assert_eq!(m.report.dropped, 7, "dropped requests add");
        assert_eq!(m.report.outcomes[Outcome::Ok], 90);
        assert_eq!(m.report.outcomes[Outcome::ServerError], 10);
        assert_eq!(m.report.achieved_rps, 10.0);
        assert_eq!(m.report.target_rps, Some(20.0));
        assert_eq!(m.report.concurrency, 10);
        assert_eq!(m.report.http_status["200"], 100);
        assert_eq!(m.latency, both);
        assert_eq!(m.report.latency_seconds, Percentiles::of(&both));
        assert_eq!(m.report.target, a.report.target);
        assert_eq!(m.report.service_time_seconds.max, b.report.service_time_seconds.max);
        // Phases merge exactly: their histograms add; connections add.
        let mut processing = a.phases.as_ref().unwrap()[Phase::Processing].clone();
        processing.add(&b.phases.as_ref().unwrap()[Phase::Processing]).unwrap();
        assert_eq!(m.phases.as_ref().unwrap()[Phase::Processing], processing);
        assert_eq!(m.report.phases_seconds[Phase::Processing], PhaseStats::of(&processing));
        assert_eq!(m.report.phases_seconds[Phase::Processing].unwrap().calls, 100);
        assert_eq!(m.report.phases_seconds[Phase::Connect].unwrap().calls, 50);
        assert_eq!(m.report.phases_seconds[Phase::Resolve], None);
        assert_eq!((m.report.connections_opened, m.report.new_connection_share), (50, 0.5));
        let back = crate::report::histogram::decode_phases(m.report.phase_histograms.as_ref().unwrap()).unwrap();
        assert_eq!(&back, m.phases.as_ref().unwrap());
        // Service time merges exactly too: its histograms add.
        let mut services = a.service.clone().unwrap();
        services.add(b.service.as_ref().unwrap()).unwrap();
        assert_eq!(m.report.service_time_seconds, Percentiles::of(&services));
        assert_eq!(m.service.as_ref(), Some(&services));
        // A report written before service histograms were saved still merges, approximately.
        let mut old = b.clone();
        old.service = None;
        old.report.service_time_histogram = None;
        old.phases = None;
        old.report.phase_histograms = None;
        let m = merge(vec![a.clone(), old]).unwrap();
        assert!(m.service.is_none() && m.report.service_time_histogram.is_none());
        assert_eq!(
            m.report.phases_seconds,
            crate::report::model::PhaseTable::default(),
            "no phases rather than a part of them"
        );
        assert!(m.notes.iter().any(|n| n.contains("without phase histograms")), "{:?}", m.notes);
        assert!(m.notes.iter().any(|n| n.contains("approximate")), "{:?}", m.notes);
        let closed = run_of(&[1], Model::Closed);
        assert!(matches!(merge(vec![a, closed]), Err(ReportError::MixedModels)));
    }

    #[test]
    fn merge_adds_ok_latency_and_lines_timelines_up_by_absolute_time() {
        let a = run_of(&[10; 30], Model::Open);
        let mut b = run_of(&[20, 1000, 20, 1000, 20], Model::Open);
        // b started 2 s after a.
        b.report.started_at = Some("2023-11-14T22:13:22.000Z".into());
        let m = merge(vec![a.clone(), b.clone()]).unwrap();
        let mut oks = a.ok_latency.clone().unwrap();
        oks.add(b.ok_latency.as_ref().unwrap()).unwrap();
        assert_eq!(m.ok_latency.as_ref(), Some(&oks));
        assert_eq!(m.report.ok_latency_seconds, Some(Percentiles::of(&oks)));
        let r = &m.report;
        assert_eq!(r.started_at.as_deref(), Some("2023-11-14T22:13:20.000Z"));
        assert_eq!(r.timeline_interval_seconds, Some(1));
        let requests: Vec<u64> = r.timeline.iter().map(|e| e.requests).collect();
        assert_eq!(requests, [10, 10, 10 + 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(r.timeline[2].outcomes[Outcome::ServerError], 2);
        assert_eq!(r.timeline[2].latency_seconds.max, 1.000_447);
        assert!(m.notes.iter().any(|n| n.contains("request-weighted")), "{:?}", m.notes);
        // A report without a timeline: the merge has none, and says so.
        let mut old = b.clone();
        (old.report.timeline_interval_seconds, old.report.timeline) = (None, vec![]);
        let m = merge(vec![a.clone(), old]).unwrap();
        assert!(m.report.timeline.is_empty() && m.report.timeline_interval_seconds.is_none());
        assert!(m.notes.iter().any(|n| n.contains("without a timeline")), "{:?}", m.notes);
        // Runs years apart are not lined up into a timeline of millions of entries.
        let mut far = b;
        far.report.started_at = Some("1990-01-01T00:00:00Z".into());
        let m = merge(vec![a, far]).unwrap();
        assert!(m.report.timeline.is_empty());
    }

    #[test]
    fn empty_run_reports_zeros() {
        let s = run_of(&[], Model::Closed);
        assert_eq!(s.report.requests, 0);
        assert_eq!(s.report.latency_seconds, Percentiles::default());
        assert!(!s.report.passed(), "a latency rule cannot pass without requests");
        assert_eq!(s.report.exit_code(), 1);
    }
}
