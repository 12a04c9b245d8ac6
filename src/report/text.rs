//! The text rendering of a load report, for people at a terminal: summary, outcomes,
//! latency and service-time percentiles side by side, status codes, top violations,
//! threshold verdicts, and a percentile spectrum drawn with block characters. Numbers
//! only come from the report and its histogram, so `report FILE` renders a saved run
//! exactly as `load` showed it.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::histogram::percentile;
use super::merge::WARNING;
use super::model::{
    LoadReport, Model, NO_OK, Percentiles, PhaseTable, Shown, THIN_NOTE, ThenReport, TimelineEntry, stages_text,
};
use super::reasons::{OutcomeReasons, TOP};
use super::threshold::Threshold;
use crate::call::Outcome;
use crate::call::observation::{HttpVersion, StepOutcome};
use crate::call::tls_version::TlsVersion;
use crate::util::fmt::human_secs;
use crate::util::units::trim3;

/// How many violation paths the text shows.
const TOP_VIOLATIONS: usize = 5;
/// Width of the spectrum's longest bar, in characters.
const BAR_WIDTH: usize = 40;
/// The spectrum's rows: percentile and label.
const SPECTRUM: [(f64, &str); 9] = [
    (0.0, "min"),
    (50.0, "p50"),
    (75.0, "p75"),
    (90.0, "p90"),
    (95.0, "p95"),
    (99.0, "p99"),
    (99.9, "p99.9"),
    (99.99, "p99.99"),
    (100.0, "max"),
];

pub fn render(shown: &Shown) -> String {
    let r = &shown.report;
    let mut out = String::new();
    let o = &mut out;
    header(o, shown);
    outcomes(o, r);
    reasons(o, "why calls failed", &Outcome::ALL.map(Outcome::as_str), &r.reasons);
    latency(o, r);
    phases(o, r);
    let tls = super::versions::text_line::<TlsVersion>(&r.tls_versions, r.requests);
    let http = super::versions::text_line::<HttpVersion>(&r.http_versions, r.requests);
    for line in [tls, http, stream_wait_line(r)].into_iter().flatten() {
        let _ = writeln!(o, "{line}");
    }
    if let Some(t) = &r.then {
        then(o, t, r.requests + r.dropped);
    }
    statuses(o, r);
    violations(o, r);
    if r.requests > 0 && !r.timeline.is_empty() {
        timeline(o, r);
    }
    if r.requests > 0 {
        let _ = writeln!(o, "\nlatency spectrum");
        spectrum(o, shown);
    }
    thresholds(o, r);
    out
}

/// The target, the model, the run's counts and the notes.
fn header(o: &mut String, shown: &Shown) {
    let r = &shown.report;
    let _ = writeln!(o, "nehr-probe load: {}", r.target);
    let _ = writeln!(o, "  {}", model(r));
    let _ = writeln!(
        o,
        "  {} requests in {:.2} s = {:.2}/s; {} ok ({}); late starts {}",
        r.requests,
        r.duration_seconds,
        r.achieved_rps,
        r.outcomes[Outcome::Ok],
        share(r.outcomes[Outcome::Ok], r.requests),
        r.late_starts,
    );
    if r.dropped > 0 {
        let due = r.requests + r.dropped;
        let _ = writeln!(
            o,
            "  dropped {} of {due} due ({}): never sent, the -c {} cap was full (no latency: not in the percentiles)",
            r.dropped,
            share(r.dropped, due),
            r.concurrency,
        );
    }
    for note in &shown.notes {
        match note.strip_prefix(WARNING) {
            Some(warning) => _ = writeln!(o, "  WARNING: {warning}"),
            None => _ = writeln!(o, "  note: {note}"),
        }
    }
}

/// The most stages the header names.
const HEADER_STAGES: usize = 8;

/// `open model at 20 rps`, `open model, stages 10s:50, 20s:100 (…)`, `closed model, …`.
fn model(r: &LoadReport) -> String {
    match (r.model, r.target_rps, &r.stages) {
        (Model::Open, rps, Some(stages)) => {
            let mean = rps.map_or(String::new(), |rps| format!(" ({} rps on average)", trim3(rps)));
            let stages = stages_text(stages, HEADER_STAGES);
            format!("open model, stages {stages}{mean}, at most {} in flight", r.concurrency)
        }
        (Model::Open, Some(rps), None) => {
            format!("open model at {} rps, at most {} in flight", trim3(rps), r.concurrency)
        }
        (Model::Open, None, None) => format!("open model, at most {} in flight", r.concurrency),
        (Model::Closed, _, _) => format!("closed model, {} workers back to back", r.concurrency),
    }
}

fn outcomes(o: &mut String, r: &LoadReport) {
    let _ = writeln!(o, "\noutcomes");
    let mut zero = Vec::new();
    for outcome in Outcome::ALL {
        let n = r.outcomes[outcome];
        if n == 0 {
            zero.push(outcome.as_str());
        } else {
            let _ = writeln!(o, "  {:<16} {n:>10}  {:>8}", outcome.as_str(), share(n, r.requests));
        }
    }
    if !zero.is_empty() {
        let _ = writeln!(o, "  none: {}", zero.join(", "));
    }
}

/// Each outcome's most frequent reasons, in the order of `names`, under `title`.
fn reasons(o: &mut String, title: &str, names: &[&str], table: &BTreeMap<String, OutcomeReasons>) {
    if table.values().all(|r| r.calls() == 0) {
        return;
    }
    let _ = writeln!(o, "\n{title} (the {TOP} most frequent reasons of each outcome)");
    for name in names {
        let Some(r) = table.get(*name) else { continue };
        let mut label = *name;
        for c in &r.top {
            let _ = writeln!(o, "  {label:<16} {:>10}  {}", c.count, c.reason);
            label = "";
        }
        if r.other > 0 {
            let _ = writeln!(o, "  {label:<16} {:>10}  (other reasons)", r.other);
        }
    }
}

/// Latency, ok latency and service time side by side; a percentile with too few calls
/// beyond it marked.
fn latency(o: &mut String, r: &LoadReport) {
    let (lat, svc) = match r.model {
        Model::Open => ("latency (from due)", "service time (from send)"),
        Model::Closed => ("latency", "service time"),
    };
    if r.model == Model::Open {
        let _ = writeln!(
            o,
            "\n  latency counts from the due time, late starts are calls sent over 1 ms late (docs/measurement.md)"
        );
    }
    let _ = writeln!(o, "\n  {:<8} {lat:>20}  {:>14}  {svc:>26}", "", "ok calls only");
    let ok_rows = r.ok_latency_seconds.filter(|_| r.outcomes[Outcome::Ok] > 0).map(|p| p.rows());
    let (thin, ok_thin) = (Percentiles::thin(r.requests), Percentiles::thin(r.outcomes[Outcome::Ok]));
    // A cell is its value and a mark: `*` when too few calls lie beyond it.
    let cell =
        |v: Option<f64>, thin: bool| v.map_or("–".into(), human_secs) + if thin && v.is_some() { "*" } else { " " };
    for (i, ((name, l), (_, s))) in r.latency_seconds.rows().into_iter().zip(r.service_time_seconds.rows()).enumerate()
    {
        let any = r.requests > 0;
        let (l, s) = (cell(any.then_some(l), thin[i]), cell(any.then_some(s), thin[i]));
        let ok = cell(ok_rows.map(|rows| rows[i].1), ok_thin[i]);
        let line = format!("  {name:<8} {l:>21} {ok:>15} {s:>27}");
        let _ = writeln!(o, "{}", line.trim_end());
    }
    if (r.requests > 0 && thin.contains(&true)) || (ok_rows.is_some() && ok_thin.contains(&true)) {
        let _ = writeln!(o, "  * {THIN_NOTE}");
    }
}

fn statuses(o: &mut String, r: &LoadReport) {
    if !r.http_status.is_empty() {
        let codes: Vec<String> = r.http_status.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        let _ = writeln!(o, "\nHTTP status  {}", codes.join("   "));
    }
    let no_answer = r.requests - r.http_status.values().sum::<u64>().min(r.requests);
    if no_answer > 0 {
        let gap = if r.http_status.is_empty() { "\n" } else { "" };
        let _ = writeln!(
            o,
            "{gap}no HTTP answer: {no_answer} (connect errors, timeouts before the headers, transport errors)"
        );
    }
}

fn violations(o: &mut String, r: &LoadReport) {
    if r.violations.is_empty() {
        return;
    }
    let mut top: Vec<(&String, &u64)> = r.violations.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown_n = top.len().min(TOP_VIOLATIONS);
    let _ = writeln!(o, "\nschema violations (top {shown_n} of {} paths)", top.len());
    for (path, n) in top.into_iter().take(TOP_VIOLATIONS) {
        let path = if path.is_empty() { "(the whole body)" } else { path.as_str() };
        let _ = writeln!(o, "  {path:<32} {n:>10}");
    }
}

fn thresholds(o: &mut String, r: &LoadReport) {
    if r.thresholds.is_empty() && r.outcomes[Outcome::Ok] > 0 {
        return;
    }
    let _ = writeln!(o, "\nthresholds");
    if r.outcomes[Outcome::Ok] == 0 {
        let _ = writeln!(o, "  FAIL  {NO_OK:<24} the run fails (exit 1) whatever its rules");
    }
    for v in &r.thresholds {
        let actual = match Threshold::parse(&v.expr) {
            Ok(t) => t.show(v.actual),
            Err(_) => v.actual.map_or("–".into(), |a| a.to_string()),
        };
        let mark = if v.passed { "pass" } else { "FAIL" };
        let _ = writeln!(o, "  {mark}  {:<24} actual {actual}", v.expr);
    }
}

/// Where the time went, phase by phase over the calls that had each, and how many
/// connections the calls opened.
fn phases(o: &mut String, r: &LoadReport) {
    if r.requests == 0 || !phase_table(o, &r.phases_seconds) {
        return;
    }
    let _ = writeln!(
        o,
        "  connections opened {}; {} of calls on a new connection",
        r.connections_opened,
        share(r.connections_opened, r.requests),
    );
}

/// The quantiles a one-line latency summary gives.
const KEY_QUANTILES: [&str; 4] = ["p50", "p90", "p99", "max"];

/// `--then`: the journeys, the next call's outcomes, latency and phases.
fn then(o: &mut String, t: &ThenReport, due: u64) {
    let _ = writeln!(o, "\nthen {} {}", t.method, t.url);
    let _ = writeln!(
        o,
        "  {} of {due} journeys ok ({}): the login ok and the next call accepted; journey error rate {:.2} %",
        t.journeys_ok,
        share(t.journeys_ok, due),
        t.journey_error_rate * 100.0,
    );
    let mut zero = Vec::new();
    for outcome in StepOutcome::ALL {
        match t.outcomes.get(outcome.as_str()).copied().unwrap_or(0) {
            0 => zero.push(outcome.as_str()),
            n => _ = writeln!(o, "  {:<16} {n:>10}  {:>8}", outcome.as_str(), share(n, t.calls)),
        }
    }
    if !zero.is_empty() {
        let _ = writeln!(o, "  none: {}", zero.join(", "));
    }
    reasons(o, "  why next calls failed", &StepOutcome::ALL.map(StepOutcome::as_str), &t.reasons);
    if t.calls == 0 {
        return;
    }
    let rows: Vec<String> = t
        .latency_seconds
        .rows()
        .into_iter()
        .filter(|(n, _)| KEY_QUANTILES.contains(n))
        .map(|(n, v)| format!("{n} {}", human_secs(v)))
        .collect();
    let _ = writeln!(o, "  latency (from its send)  {}", rows.join("  "));
    phase_table(o, &t.phases_seconds);
}

/// The phase table; whether it had any phase to show.
fn phase_table(o: &mut String, table: &PhaseTable) -> bool {
    let rows = super::model::phase_rows(table);
    if rows.iter().all(|(_, p)| p.is_none()) {
        return false;
    }
    let _ = writeln!(o, "\n  {:<12} {:>8} {:>10} {:>10} {:>10} {:>10}", "phase", "calls", "p50", "p90", "p99", "max");
    for (name, p) in rows {
        // A phase no call had (resolve of an IP address, tls over http) is noise.
        if let Some(p) = p {
            let [p50, p90, p99, max] = [p.p50, p.p90, p.p99, p.max].map(human_secs);
            let _ = writeln!(o, "  {name:<12} {:>8} {p50:>10} {p90:>10} {p99:>10} {max:>10}", p.calls);
        }
    }
    true
}

/// One bar per percentile, its length proportional to the latency there.
fn spectrum(o: &mut String, shown: &Shown) {
    let h = &shown.latency;
    if h.is_empty() {
        return;
    }
    let max = h.max().max(1) as f64;
    for (p, label) in SPECTRUM {
        let v = percentile(h, p);
        let _ = writeln!(o, "  {label:<7} {} {}", bar(v as f64 / max), human_secs(v as f64 / 1e6));
    }
}

/// A bar of `fraction` × [`BAR_WIDTH`] characters, in eighths.
fn bar(fraction: f64) -> String {
    const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (fraction.clamp(0.0, 1.0) * (BAR_WIDTH * 8) as f64).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(EIGHTHS[eighths % 8]);
    }
    // Even the shortest bar shows, so a row is never blank.
    if s.is_empty() {
        s.push('▏');
    }
    format!("{s:<BAR_WIDTH$}")
}

/// The widest the timeline's rows get, in characters: entries beyond it share a column.
const TIMELINE_WIDTH: usize = 60;

/// One row per outcome that occurred (calls per second, one scale for all rows, blank
/// where there were none) and one of the worst p99 per column, so that an outage
/// mid-run shows at a glance.
fn timeline(o: &mut String, r: &LoadReport) {
    let interval = r.timeline_interval_seconds.unwrap_or(1).max(1);
    let per_column = r.timeline.len().div_ceil(TIMELINE_WIDTH).max(1);
    let columns: Vec<&[TimelineEntry]> = r.timeline.chunks(per_column).collect();
    let seconds = |c: &[TimelineEntry]| (c.len() as u64 * interval) as f64;
    let rate =
        |c: &[TimelineEntry], f: &dyn Fn(&TimelineEntry) -> u64| c.iter().map(f).sum::<u64>() as f64 / seconds(c);
    let peak = columns.iter().map(|c| rate(c, &|e| e.requests)).fold(0.0, f64::max);
    let span = r.timeline.len() as u64 * interval;
    let _ = writeln!(
        o,
        "\ntimeline ({} a column, calls by the second they ended; {} to {})",
        human_span((per_column as u64 * interval) as f64),
        human_span(0.0),
        human_span(span as f64),
    );
    for outcome in Outcome::ALL {
        if r.outcomes[outcome] == 0 {
            continue;
        }
        let rates: Vec<f64> = columns.iter().map(|c| rate(c, &|e| e.outcomes[outcome])).collect();
        let top = rates.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(o, "  {:<16} {}  {}/s at most", outcome.as_str(), sparkline(&rates, peak), trim3(top));
    }
    if r.dropped > 0 {
        // On a scale of its own: under overload far more are dropped than sent.
        let rates: Vec<f64> = columns.iter().map(|c| rate(c, &|e| e.dropped)).collect();
        let top = rates.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(o, "  {:<16} {}  {}/s at most", "dropped", sparkline(&rates, top), trim3(top));
    }
    let p99: Vec<f64> = columns.iter().map(|c| c.iter().map(|e| e.latency_seconds.p99).fold(0.0, f64::max)).collect();
    let top = p99.iter().copied().fold(0.0, f64::max);
    let _ = writeln!(o, "  {:<16} {}  {} at most", "p99 (all calls)", sparkline(&p99, top), human_secs(top));
}

/// One character per value, ▁ to █ in proportion to `top`; blank for zero.
fn sparkline(values: &[f64], top: f64) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|&v| if v <= 0.0 || top <= 0.0 { ' ' } else { LEVELS[((v / top * 8.0).ceil() as usize).clamp(1, 8) - 1] })
        .collect()
}

/// A span of whole seconds as people read it: `30 s`, `5 min`, `2 h`.
fn human_span(secs: f64) -> String {
    if secs < 120.0 {
        format!("{} s", trim3(secs))
    } else if secs < 7200.0 {
        format!("{} min", trim3(secs / 60.0))
    } else {
        format!("{} h", trim3(secs / 3600.0))
    }
}

fn share(n: u64, of: u64) -> String {
    if of == 0 { "–".into() } else { format!("{:.2} %", n as f64 * 100.0 / of as f64) }
}

/// `  waited for an HTTP/2 stream: 12 calls (0.3 %), 1.20 ms on average, longest 4.10 ms`:
/// the calls whose connection had all the streams its server allows in use.
fn stream_wait_line(r: &LoadReport) -> Option<String> {
    let w = r.stream_wait?;
    let share = if r.requests == 0 { 0.0 } else { w.calls as f64 * 100.0 / r.requests as f64 };
    Some(format!(
        "  waited for an HTTP/2 stream: {} calls ({share:.1} %), {} on average, longest {} (counted in latency)",
        w.calls,
        human_secs(w.total_seconds / w.calls.max(1) as f64),
        human_secs(w.max_seconds)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_proportional_and_fixed_width() {
        assert_eq!(bar(1.0).chars().count(), BAR_WIDTH);
        assert_eq!(bar(0.5).trim_end().chars().count(), BAR_WIDTH / 2);
        assert_eq!(bar(0.0).trim_end(), "▏");
        assert_eq!(bar(1.0 / 320.0).trim_end(), "▏");
        assert_eq!(bar(0.5).chars().count(), BAR_WIDTH);
    }

    #[test]
    fn sparklines_scale_and_leave_zero_blank() {
        assert_eq!(sparkline(&[0.0, 1.0, 4.0, 8.0], 8.0), " ▁▄█");
        assert_eq!(sparkline(&[0.01, 8.0], 8.0), "▁█");
        assert_eq!(sparkline(&[3.0], 0.0), " ");
        assert_eq!(human_span(30.0), "30 s");
        assert_eq!(human_span(300.0), "5 min");
        assert_eq!(human_span(3.0 * 3600.0), "3 h");
    }

    #[test]
    fn shares_and_rates() {
        assert_eq!(share(1, 3), "33.33 %");
        assert_eq!(share(0, 0), "–");
        assert_eq!(trim3(50.0), "50");
        assert_eq!(trim3(49.98), "49.98");
    }
}
