//! Reading saved reports and merging several into one. Runs side by side (processes or
//! machines) merge exactly: counts add, latency and service-time histograms add, rates
//! add (runs side by side share their window, so the sum is the rate over it; the
//! merged duration is the longest run's). Segments of one schedule (`load --segment`)
//! merge into that one run, its rate over their common window; a missing or repeated
//! segment is named in a warning.
//!
//! A file, or standard input (`-`), may hold several reports one after another, as
//! `kubectl logs` of several pods prints them; lines between them that are not JSON
//! (what the processes said on stderr) are skipped.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use super::histogram::{self, histogram};
use super::model::{
    LoadReport, Outcomes, Percentiles, PhaseHistograms, PlannedStage, Segment, Shown, ThenReport, TimelineEntry,
    phase_histograms, phase_table, share, timeline_interval,
};
use super::reasons;
use crate::call::observation::StepOutcome;
use crate::call::{Outcome, keyed};
use crate::util::time::{parse_rfc3339, rfc3339};
use crate::util::units::round6;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path} is not a nehr-probe load report: {}", crate::util::fmt::one_line(&cause.to_string()))]
    Json { path: String, cause: serde_json::Error },
    #[error("{path}: its \"histogram\" is {why}")]
    Histogram { path: String, why: String },
    #[error("{path}: its \"phase_histograms\" is unreadable: {why}")]
    Phases { path: String, why: String },
    #[error("{path}: its saved threshold is unreadable: {why}")]
    Threshold { path: String, why: String },
    #[error("{path} holds no load report")]
    Empty { path: String },
    #[error("standard input (-) can be read only once")]
    StdinTwice,
    #[error("cannot merge an open-model report with a closed-model one: their latencies mean different things")]
    MixedModels,
}

/// Reads one saved report.
pub fn read(path: &Path) -> Result<Shown, ReportError> {
    let shown = path.display().to_string();
    let text =
        crate::util::units::read_input_file(path).map_err(|cause| ReportError::Read { path: shown.clone(), cause })?;
    let report: LoadReport =
        serde_json::from_str(&text).map_err(|cause| ReportError::Json { path: shown.clone(), cause })?;
    decoded(report, &shown)
}

/// Reads every report in `text` (named `name` in errors): JSON reports one after
/// another, with lines that do not start a JSON object between them skipped. Returns
/// the reports and how many lines were skipped.
pub fn read_all(text: &str, name: &str) -> Result<(Vec<Shown>, usize), ReportError> {
    let (mut found, mut skipped) = (Vec::new(), 0);
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if !rest.starts_with('{') {
            skipped += 1;
            rest = rest.split_once('\n').map_or("", |(_, after)| after).trim_start();
            continue;
        }
        let at = if found.is_empty() { name.to_string() } else { format!("{name} (report {})", found.len() + 1) };
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<LoadReport>();
        let report = match stream.next() {
            Some(Ok(report)) => report,
            Some(Err(cause)) => return Err(ReportError::Json { path: at, cause }),
            None => break,
        };
        rest = rest[stream.byte_offset()..].trim_start();
        found.push(decoded(report, &at)?);
    }
    if found.is_empty() {
        return Err(ReportError::Empty { path: name.to_string() });
    }
    Ok((found, skipped))
}

/// Reports, each with the name of the input it came from, and notes on what was skipped.
pub type Inputs = (Vec<(String, Shown)>, Vec<String>);

/// Reads the reports of every input, `-` being standard input (once).
pub fn read_inputs(paths: &[std::path::PathBuf]) -> Result<Inputs, ReportError> {
    if paths.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return Err(ReportError::StdinTwice);
    }
    let (mut all, mut notes) = (Vec::new(), Vec::new());
    for path in paths {
        let (name, text) = if path.as_os_str() == "-" {
            ("standard input".to_string(), crate::util::units::read_input(std::io::stdin().lock()))
        } else {
            (path.display().to_string(), crate::util::units::read_input_file(path))
        };
        let text = text.map_err(|cause| ReportError::Read { path: name.clone(), cause })?;
        let (found, skipped) = read_all(&text, &name)?;
        if skipped > 0 {
            notes.push(format!("{name}: skipped {skipped} lines that are not a JSON report"));
        }
        all.extend(found.into_iter().map(|s| (name.clone(), s)));
    }
    Ok((all, notes))
}

/// Standard input, with the same cap as a file.
/// A parsed report with its histograms decoded.
fn decoded(report: LoadReport, shown: &str) -> Result<Shown, ReportError> {
    let shown = shown.to_string();
    let latency =
        histogram::decode(&report.histogram).map_err(|why| ReportError::Histogram { path: shown.clone(), why })?;
    let decode = |text: &Option<String>| match text {
        Some(text) => {
            histogram::decode(text).map(Some).map_err(|why| ReportError::Histogram { path: shown.clone(), why })
        }
        None => Ok(None),
    };
    let service = decode(&report.service_time_histogram)?;
    let mut ok_latency = decode(&report.ok_histogram)?;
    let mut report = report;
    if ok_latency.is_none() && report.outcomes[Outcome::Ok] == report.requests {
        // Older reports: when every call was ok, the ok latency is the latency.
        ok_latency = Some(latency.clone());
        report.ok_latency_seconds = Some(report.latency_seconds);
    }
    let phases = match &report.phase_histograms {
        Some(saved) => Some(histogram::decode_phases(saved).map_err(|why| ReportError::Phases { path: shown, why })?),
        None => None,
    };
    Ok(Shown { report, latency, service, phases, ok_latency, notes: Vec::new() })
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
    let mut m = counts_added(&all);
    m.then = merge_then(&all, m.requests + m.dropped)?;
    let mut notes = schedule(&mut m, &all);
    let h = Histograms::added(&all);
    h.write(&mut m, &all, &mut notes);
    add_timeline(&mut m, &all, &mut notes);
    m.stages = merge_stages(&all, &mut notes);
    Ok(Shown { report: m, latency: h.latency, service: h.service, phases: h.phases, ok_latency: h.ok_latency, notes })
}

/// The first report with the counts, rates and lists of all of them added: targets
/// named once, thresholds once by rule (judged again by the caller), reasons summed.
fn counts_added(all: &[&Shown]) -> LoadReport {
    let mut m = all[0].report.clone();
    m.target_rps = Some(0.0);
    m.concurrency = 0;
    m.duration_seconds = 0.0;
    m.requests = 0;
    m.dropped = 0;
    m.achieved_rps = 0.0;
    m.outcomes = Outcomes::default();
    m.late_starts = 0;
    m.connections_opened = 0;
    m.tls_versions.clear();
    m.http_versions.clear();
    let mut waits = super::model::StreamWait::default();
    m.http_status.clear();
    m.violations.clear();
    m.thresholds.clear();
    let mut targets: Vec<&str> = Vec::new();
    for s in all {
        let r = &s.report;
        if !targets.contains(&r.target.as_str()) {
            targets.push(&r.target);
        }
        m.target_rps = m.target_rps.zip(r.target_rps).map(|(a, b)| a + b);
        m.concurrency += r.concurrency;
        m.duration_seconds = m.duration_seconds.max(r.duration_seconds);
        m.requests += r.requests;
        m.dropped += r.dropped;
        m.achieved_rps += r.achieved_rps;
        keyed::add_all(&mut m.outcomes, &r.outcomes);
        m.late_starts += r.late_starts;
        m.connections_opened += r.connections_opened;
        super::versions::add(&mut m.tls_versions, &r.tls_versions);
        super::versions::add(&mut m.http_versions, &r.http_versions);
        if let Some(w) = &r.stream_wait {
            waits.add(w);
        }
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
    }
    let failing: Vec<&str> = Outcome::ALL.iter().filter(|o| **o != Outcome::Ok).map(|o| o.as_str()).collect();
    m.reasons = reasons::sum(all.iter().map(|s| &s.report.reasons), &failing);
    m.new_connection_share = share(m.connections_opened, m.requests);
    m.stream_wait = waits.reported();
    m.target = targets.join(", ");
    m.target_rps = m.target_rps.map(round6);
    m
}

/// The merged run's place in time and its rate: segments of one schedule are one run
/// over their common window. Returns the notes that say how the reports were merged.
fn schedule(m: &mut LoadReport, all: &[&Shown]) -> Vec<String> {
    let (one_schedule, warnings) = check_segments(all);
    m.segment = None;
    m.started_at = all.iter().filter_map(|s| started(&s.report)).min().map(rfc3339);
    m.first_send_late_seconds = all.iter().filter_map(|s| s.report.first_send_late_seconds).reduce(f64::max);
    if one_schedule {
        // Segments of one schedule: one run, its rate over the segments' common window.
        m.duration_seconds = common_window(all);
        m.achieved_rps = if m.duration_seconds > 0.0 { m.requests as f64 / m.duration_seconds } else { 0.0 };
        m.duration_seconds = round6(m.duration_seconds);
    }
    m.achieved_rps = round6(m.achieved_rps);
    let mut notes: Vec<String> = warnings.into_iter().map(|w| format!("{WARNING}{w}")).collect();
    notes.push(if one_schedule {
        format!(
            "merged from {} segments of one schedule: counts and histograms add, the rate is over their common window",
            all.len()
        )
    } else {
        format!("merged from {} reports: counts and histograms add, rates add", all.len())
    });
    notes
}

/// The reports' histograms added, each kept only when every report has it.
struct Histograms {
    latency: Histogram<u64>,
    service: Option<Histogram<u64>>,
    phases: Option<PhaseHistograms>,
    ok_latency: Option<Histogram<u64>>,
}

impl Histograms {
    fn added(all: &[&Shown]) -> Histograms {
        let mut latency = histogram();
        let mut service = all.iter().all(|s| s.service.is_some()).then(histogram);
        let mut phases = all.iter().all(|s| s.phases.is_some()).then(phase_histograms);
        let mut ok_latency = all.iter().all(|s| s.ok_latency.is_some()).then(histogram);
        for s in all {
            histogram::add(&mut latency, &s.latency);
            if let (Some(into), Some(from)) = (service.as_mut(), s.service.as_ref()) {
                histogram::add(into, from);
            }
            if let (Some(into), Some(from)) = (phases.as_mut(), s.phases.as_ref()) {
                into.values_mut().zip(from.values()).for_each(|(into, from)| histogram::add(into, from));
            }
            if let (Some(into), Some(from)) = (ok_latency.as_mut(), s.ok_latency.as_ref()) {
                histogram::add(into, from);
            }
        }
        Histograms { latency, service, phases, ok_latency }
    }

    /// Writes the merged percentiles, phases and saved histograms into `m`, with a note
    /// for each that a report without its histogram left approximate or out.
    fn write(&self, m: &mut LoadReport, all: &[&Shown], notes: &mut Vec<String>) {
        m.latency_seconds = Percentiles::of(&self.latency);
        m.histogram = histogram::encode(&self.latency);
        match &self.service {
            Some(h) => m.service_time_seconds = Percentiles::of(h),
            None => {
                m.service_time_seconds = merge_service_times(all);
                notes.push(
                    "a report without a service-time histogram was merged: service-time percentiles are \
                     request-weighted means of the reports' (approximate); min, mean and max are exact"
                        .to_string(),
                );
            }
        }
        m.service_time_histogram = self.service.as_ref().map(histogram::encode);
        m.phases_seconds = self.phases.as_ref().map(phase_table).unwrap_or_default();
        m.phase_histograms = self.phases.as_ref().map(histogram::encode_phases);
        if self.phases.is_none() {
            notes.push("a report without phase histograms was merged: the merged report has no phases".to_string());
        }
        m.ok_latency_seconds = self.ok_latency.as_ref().map(Percentiles::of);
        m.ok_histogram = self.ok_latency.as_ref().map(histogram::encode);
        if self.ok_latency.is_none() {
            notes.push("a report without ok latency was merged: the merged report has none".to_string());
        }
    }
}

/// The merged timeline, or none and a note saying why.
fn add_timeline(m: &mut LoadReport, all: &[&Shown], notes: &mut Vec<String>) {
    match merge_timelines(all) {
        Ok(merged) => {
            // `started_at` is the earliest already: the merged timeline counts from it.
            m.timeline_interval_seconds = Some(merged.interval);
            m.timeline = merged.entries;
            if merged.approximate {
                notes.push(
                    "timelines lined up by absolute time: counts and max add exactly; p50, p90 and p99 of \
                     an interval several entries share are their request-weighted means (approximate)"
                        .to_string(),
                );
            }
        }
        Err(why) => {
            m.timeline_interval_seconds = None;
            m.timeline = Vec::new();
            notes.push(format!("no merged timeline: {why}"));
        }
    }
}

/// The `--stages` plans added stage by stage (as `target_rps` adds) when every report
/// has one of the same stage lengths; otherwise none, with a note when some had one.
fn merge_stages(all: &[&Shown], notes: &mut Vec<String>) -> Option<Vec<PlannedStage>> {
    let plans: Option<Vec<&Vec<PlannedStage>>> = all.iter().map(|s| s.report.stages.as_ref()).collect();
    let same = |a: &[PlannedStage], b: &[PlannedStage]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.duration_seconds == y.duration_seconds)
    };
    match plans {
        Some(plans) if plans.iter().all(|p| same(p, plans[0])) => {
            let mut sum = plans[0].clone();
            for (i, stage) in sum.iter_mut().enumerate() {
                stage.target_rps = round6(plans.iter().map(|p| p[i].target_rps).sum());
            }
            Some(sum)
        }
        _ => {
            if all.iter().any(|s| s.report.stages.is_some()) {
                notes.push("the reports' --stages plans do not line up: the merged report keeps none".to_string());
            }
            None
        }
    }
}

/// The reports' timelines on one time axis.
struct MergedTimeline {
    interval: u64,
    entries: Vec<TimelineEntry>,
    /// Some interval holds more than one entry with calls.
    approximate: bool,
}

/// The most entries a merged timeline may have (runs far apart in time).
const MAX_MERGED_ENTRIES: u64 = 100_000;

/// Lines the reports' timelines up by absolute time: the merged one starts at the
/// earliest `started_at`, its interval is the longest of theirs (or coarser, so that a
/// long span stays within [`TIMELINE_MAX_ENTRIES`](super::model::TIMELINE_MAX_ENTRIES)),
/// and each entry goes to the merged interval that holds its midpoint.
fn merge_timelines(all: &[&Shown]) -> Result<MergedTimeline, String> {
    let mut parts = Vec::with_capacity(all.len());
    for s in all {
        let r = &s.report;
        let (Some(at), Some(interval)) = (&r.started_at, r.timeline_interval_seconds) else {
            return Err("a report without a timeline was merged".into());
        };
        let at = parse_rfc3339(at).ok_or_else(|| format!("started_at {at:?} is not an RFC 3339 time"))?;
        parts.push((at, interval.max(1), &r.timeline));
    }
    let start = parts.iter().map(|p| p.0).min().ok_or("no reports")?;
    let shift = |at: SystemTime| at.duration_since(start).unwrap_or_default().as_secs_f64();
    let end = parts
        .iter()
        .map(|(at, interval, entries)| shift(*at) + entries.last().map_or(0.0, |e| e.offset_seconds + *interval as f64))
        .fold(0.0, f64::max);
    let longest = parts.iter().map(|p| p.1).max().unwrap_or(1);
    let interval = longest.max(timeline_interval(Some(Duration::from_secs_f64(end.min(1e12)))));
    let count = (end / interval as f64).ceil() as u64;
    if count > MAX_MERGED_ENTRIES {
        return Err(format!("the runs span {} s, too far apart to line up", end.round()));
    }
    /// One merged interval: its counts, its max, and its joined p50, p90 and p99.
    #[derive(Default, Clone, Copy)]
    struct Sum {
        entry: TimelineEntry,
        joined: histogram::JoinedQuantiles,
        parts: u32,
    }
    let mut sums = vec![Sum::default(); count as usize];
    for (at, part_interval, entries) in parts {
        for e in entries {
            let mid = shift(at) + e.offset_seconds + part_interval as f64 / 2.0;
            let i = ((mid / interval as f64).floor() as usize).min(sums.len().saturating_sub(1));
            let Some(sum) = sums.get_mut(i) else { continue };
            sum.entry.requests += e.requests;
            sum.entry.dropped += e.dropped;
            keyed::add_all(&mut sum.entry.outcomes, &e.outcomes);
            let l = &e.latency_seconds;
            sum.joined.add([l.p50, l.p90, l.p99], e.requests);
            sum.entry.latency_seconds.max = sum.entry.latency_seconds.max.max(l.max);
            sum.parts += u32::from(e.requests > 0);
        }
    }
    let approximate = sums.iter().any(|s| s.parts > 1);
    let entries = sums
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let mut e = s.entry;
            e.offset_seconds = (i as u64 * interval) as f64;
            if let Some(q) = s.joined.get() {
                let [p50, p90, p99] = q.map(round6);
                (e.latency_seconds.p50, e.latency_seconds.p90, e.latency_seconds.p99) = (p50, p90, p99);
            }
            e
        })
        .collect();
    Ok(MergedTimeline { interval, entries, approximate })
}

/// How the notes that are warnings begin (`report` also prints them on stderr).
pub const WARNING: &str = "warning: ";

/// Whether `all` are segments of one schedule (each `I/N` with one N), and warnings
/// naming what keeps them from being that schedule whole: missing or repeated segments,
/// segments of schedules split differently, reports without a segment among them.
fn check_segments(all: &[&Shown]) -> (bool, Vec<String>) {
    let segments: Vec<Segment> = all.iter().filter_map(|s| s.report.segment).collect();
    if segments.is_empty() {
        return (false, Vec::new());
    }
    let mut warnings = Vec::new();
    let counts: BTreeSet<u64> = segments.iter().map(|s| s.count).collect();
    if counts.len() > 1 {
        let split: Vec<String> = counts.iter().map(|n| format!("/{n}")).collect();
        warnings.push(format!("segments of schedules split differently ({}) were merged", split.join(", ")));
    }
    let without = all.len() - segments.len();
    if without > 0 {
        warnings.push(format!("{without} reports without --segment were merged with segments of a schedule"));
    }
    for &count in &counts {
        let times = |index: u64| segments.iter().filter(|s| **s == Segment { index, count }).count();
        let missing: Vec<u64> = (0..count).filter(|&i| times(i) == 0).collect();
        let repeated: Vec<u64> = (0..count).filter(|&i| times(i) > 1).collect();
        if !missing.is_empty() {
            warnings.push(format!(
                "{} missing: the merged report holds {} of the {count} segments of the schedule",
                name_segments(&missing, count),
                count - missing.len() as u64
            ));
        }
        if !repeated.is_empty() {
            warnings.push(format!(
                "{} more than once: those requests are counted more than once",
                name_segments(&repeated, count)
            ));
        }
    }
    (counts.len() == 1 && without == 0, warnings)
}

/// `segment 1/3`, `segments 0/3, 2/3`; at most ten named.
fn name_segments(indices: &[u64], count: u64) -> String {
    let mut named: Vec<String> = indices.iter().take(10).map(|i| format!("{i}/{count}")).collect();
    if indices.len() > 10 {
        named.push(format!("and {} more", indices.len() - 10));
    }
    let noun = if indices.len() == 1 { "segment" } else { "segments" };
    format!("{noun} {}", named.join(", "))
}

/// When a report's schedule started, if it says.
fn started(r: &LoadReport) -> Option<SystemTime> {
    r.started_at.as_deref().and_then(parse_rfc3339)
}

/// The window segments sent in together, in seconds: from the earliest start to the
/// latest end where every report says when it started (segments started together by
/// `--start-at` share it), else the longest.
fn common_window(all: &[&Shown]) -> f64 {
    let longest = all.iter().map(|s| s.report.duration_seconds).fold(0.0, f64::max);
    let starts: Option<Vec<SystemTime>> = all.iter().map(|s| started(&s.report)).collect();
    let Some(starts) = starts else { return longest };
    let Some(&first) = starts.iter().min() else { return longest };
    all.iter()
        .zip(&starts)
        .map(|(s, t)| t.duration_since(first).unwrap_or_default().as_secs_f64() + s.report.duration_seconds)
        .fold(0.0, f64::max)
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

/// The `--then` sections merged exactly (counts and histograms add); none unless every
/// report has one. Journeys of a report without it are not journeys.
fn merge_then(all: &[&Shown], due: u64) -> Result<Option<ThenReport>, ReportError> {
    let Some(sections) = all.iter().map(|s| s.report.then.as_ref()).collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    let bad = |why: String| ReportError::Histogram { path: "the then section".into(), why };
    let mut latency = histogram();
    let mut phases = phase_histograms();
    let mut merged = sections[0].clone();
    merged.calls = 0;
    merged.journeys_ok = 0;
    merged.outcomes.values_mut().for_each(|n| *n = 0);
    let mut urls: Vec<&str> = Vec::new();
    for t in &sections {
        if !urls.contains(&t.url.as_str()) {
            urls.push(&t.url);
        }
        merged.calls += t.calls;
        merged.journeys_ok += t.journeys_ok;
        for (k, v) in &t.outcomes {
            *merged.outcomes.entry(k.clone()).or_default() += v;
        }
        histogram::add(&mut latency, &histogram::decode(&t.histogram).map_err(bad)?);
        let from = histogram::decode_phases(&t.phase_histograms).map_err(bad)?;
        phases.values_mut().zip(from.values()).for_each(|(into, from)| histogram::add(into, from));
    }
    merged.url = urls.join(", ");
    let failing: Vec<&str> =
        StepOutcome::ALL.iter().filter(|o| **o != StepOutcome::Accepted).map(|o| o.as_str()).collect();
    merged.reasons = reasons::sum(sections.iter().map(|t| &t.reasons), &failing);
    merged.journey_error_rate = ThenReport::error_rate(merged.journeys_ok, due);
    merged.latency_seconds = Percentiles::of(&latency);
    merged.phases_seconds = phase_table(&phases);
    merged.histogram = histogram::encode(&latency);
    merged.phase_histograms = histogram::encode_phases(&phases);
    Ok(Some(merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_with_a_newline_keeps_the_error_on_one_line() {
        // Found by fuzzing: serde quotes the bad value as it decoded it, newline and all.
        let text = "{\"target\": \"x\", \"model\": \"ope\\n\\u001b[31m\", \"requests\": 1}";
        let e = read_all(text, "run.json").unwrap_err().to_string();
        assert!(e.starts_with("run.json is not a nehr-probe load report: unknown variant"), "{e}");
        assert!(!e.contains('\n') && !e.contains('\u{1b}'), "{e:?}");
        assert!(e.contains("ope\\n\\u{1b}[31m"), "{e}");
    }
}
