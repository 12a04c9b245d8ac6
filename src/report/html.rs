//! `--html FILE`: the report as one self-contained page for people who decide go or
//! no-go from pictures. Owns the page's layout, its charts and its tables.
//!
//! Charts are drawn by plotters' SVG backend and inlined; the page is built with maud,
//! so every text from the report (the target, violation paths, threshold rules) is
//! escaped by construction. It must never reference anything outside the file (no
//! script, font, style sheet or image is fetched): it works offline, by mail, in an
//! archive. It reads only the report and its histograms, so `report --html` draws a
//! saved or merged run exactly as `load --html` drew it.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::chart::{css_colour, latency_chart, rate_chart, spectrum_chart};
use super::model::{LoadReport, Model, Percentiles, Shown, THIN_NOTE, phase_rows, stages_text};
use super::threshold::Threshold;
use super::versions::{self, Version};
use crate::call::Outcome;
use crate::call::observation::HttpVersion;
use crate::call::tls_version::TlsVersion;
use crate::util::fmt::human_secs;
use crate::util::units::trim3;

const STYLE: &str = "
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2328;margin:0 auto;
max-width:1000px;padding:16px 20px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 6px;border-bottom:1px solid #d0d7de}
.sub{color:#59636e;margin:0 0 12px;overflow-wrap:anywhere}
.verdict{display:inline-block;padding:3px 10px;border-radius:6px;font-weight:600;color:#fff}
.pass{background:#1a7f37}.fail{background:#cf222e}.none{background:#59636e}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.tile{border:1px solid #d0d7de;border-radius:6px;padding:6px 12px;min-width:120px}
.tile b{display:block;font-size:20px}.tile span{color:#59636e;font-size:13px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 12px 3px 0;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}tr+tr td{border-top:1px solid #eaeef2}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
figure{margin:8px 0}figcaption{color:#59636e;font-size:13px}svg{max-width:100%;height:auto}
.note{color:#59636e;font-size:13px}
.reason{font-size:13px;overflow-wrap:anywhere}.reason .count{display:inline-block;min-width:4em;color:#59636e;
font-variant-numeric:tabular-nums}sup.thin{display:inline-block;width:.7em;line-height:0;text-align:left;color:#bc4c00;font-weight:600}
@media print{body{max-width:none;padding:0;font-size:12px}figure,table{break-inside:avoid}}
";

/// The whole page.
pub fn render(shown: &Shown) -> String {
    let r = &shown.report;
    let failures = r.failures();
    let verdict = match (r.thresholds.is_empty(), failures.is_empty()) {
        (_, false) => ("fail", format!("FAIL: {}", failures.join(", "))),
        (true, true) => ("none", "no thresholds".to_string()),
        (false, true) => ("pass", "PASS".to_string()),
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(&format!("nehr-probe load report: {}", r.target)))
            body {
                h1 { "nehr-probe load report" }
                p.sub { (r.target) }
                span class={ "verdict " (verdict.0) } { (verdict.1) }
                (tiles(r))
                @for note in &shown.notes {
                    p.note { "Note: " (note) }
                }
                h2 { "Latency over time" }
                (figure(latency_chart(r), "p50, p90, p99 and max of all calls per interval, by the interval in which \
                    they ended; logarithmic scale."))
                h2 { "Requests per second by outcome" }
                (figure(rate_chart(r), "Calls per second, stacked by outcome, by the interval in which they ended; on top, requests that fell due and were never sent (dropped), if any; the planned rate of a run with stages as a dashed line."))
                h2 { "Latency percentile spectrum" }
                (figure(spectrum_chart(shown), "Latency at each percentile out to p99.999 (HdrHistogram's axis): \
                    all calls, ok calls only, and service time (from the send); logarithmic scales."))
                h2 { "Run" }
                (facts(r))
                h2 { "Outcomes" }
                (outcomes(r))
                h2 { "Latency" }
                (percentiles(r))
                @if phase_rows(&r.phases_seconds).iter().any(|(_, p)| p.is_some()) {
                    h2 { "Where the time went" }
                    (phases(r))
                }
                @if let Some(t) = &r.then {
                    (super::html_then::section(t, r.requests + r.dropped))
                }
                @if !r.thresholds.is_empty() {
                    h2 { "Thresholds" }
                    (thresholds(r))
                }
                h2 { "HTTP status" }
                (statuses(r))
                @if !r.violations.is_empty() {
                    h2 { "Schema violations" }
                    (violations(r))
                }
                p.note { "Written by nehr-probe " (env!("CARGO_PKG_VERSION")) "." }
            }
        }
    };
    page.into_string()
}

/// The `head` of every page: its title, the viewport, the one style sheet.
pub(super) fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) }
            style { (PreEscaped(STYLE)) }
        }
    }
}

pub(super) fn figure(svg: String, caption: &str) -> Markup {
    html! { figure { (PreEscaped(svg)) figcaption { (caption) } } }
}

fn share(n: u64, of: u64) -> String {
    if of == 0 { "–".into() } else { format!("{:.2} %", n as f64 * 100.0 / of as f64) }
}

fn tiles(r: &LoadReport) -> Markup {
    let p99 = |p: Option<&Percentiles>| p.filter(|_| r.requests > 0).map_or("–".into(), |p| human_secs(p.p99));
    let ok_p99 = p99(r.ok_latency_seconds.as_ref().filter(|_| r.outcomes[Outcome::Ok] > 0));
    html! {
        div.tiles {
            div.tile { b { (r.requests) } span { "requests" } }
            div.tile { b { (share(r.outcomes[Outcome::Ok], r.requests)) } span { "ok" } }
            div.tile { b { (format!("{:.2}/s", r.achieved_rps)) } span { "achieved rate" } }
            div.tile { b { (p99(Some(&r.latency_seconds))) } span { "p99, all calls" } }
            div.tile { b { (ok_p99) } span { "p99, ok calls" } }
        }
    }
}

fn facts(r: &LoadReport) -> Markup {
    let model = match (r.model, r.target_rps) {
        (Model::Open, Some(rps)) => format!("open: {} rps planned, at most {} in flight", trim3(rps), r.concurrency),
        (Model::Open, None) => format!("open: at most {} in flight", r.concurrency),
        (Model::Closed, _) => format!("closed: {} workers back to back", r.concurrency),
    };
    let model = match &r.stages {
        Some(stages) => format!("{model}; stages {}", stages_text(stages, 20)),
        None => model,
    };
    html! {
        table {
            tr { th { "Target" } td { (r.target) } }
            tr { th { "Model" } td { (model) } }
            @if let Some(at) = &r.started_at { tr { th { "Started" } td { (at) } } }
            tr { th { "Duration" } td { (format!("{:.2} s", r.duration_seconds)) } }
            tr { th { "Requests" } td { (r.requests) " at " (format!("{:.2}/s", r.achieved_rps)) } }
            tr { th { "Late starts" } td { (r.late_starts) " (started more than 1 ms after their release)" } }
            @if r.model == Model::Open {
                tr { th { "Dropped" } td { (r.dropped) " (fell due, never sent)" } }
            }
            tr { th { "Connections opened" } td { (r.connections_opened) " ("
                (format!("{:.1} %", r.new_connection_share * 100.0)) " of the calls opened theirs)" } }
            @if let Some(s) = versions::summary(&r.http_versions, r.requests) {
                tr { th { (HttpVersion::LABEL) } td { (s) } }
            }
            @if let Some(s) = versions::summary(&r.tls_versions, r.requests) {
                tr { th { (TlsVersion::LABEL) } td { (s) } }
            }
            @if let Some(w) = r.stream_wait {
                tr { th { "Waited for an HTTP/2 stream" } td { (w.calls) " calls, "
                    (human_secs(w.total_seconds / w.calls.max(1) as f64)) " on average, longest "
                    (human_secs(w.max_seconds)) " (counted in latency)" } }
            }
            @if let Some(i) = r.timeline_interval_seconds { tr { th { "Timeline" } td { (i) " s per interval" } } }
        }
    }
}

fn outcomes(r: &LoadReport) -> Markup {
    let any_reasons = !r.reasons.is_empty();
    html! {
        table {
            tr {
                th { "Outcome" } th.n { "Calls" } th.n { "Share" }
                @if any_reasons { th { "Most frequent reasons" } }
            }
            @for o in Outcome::ALL {
                @let n = r.outcomes[o];
                tr {
                    td { span.sw style={ "background:" (css_colour(o)) } {} (o.as_str()) }
                    td.n { (n) }
                    td.n { (share(n, r.requests)) }
                    @if any_reasons { td { (super::html_then::reason_list(r.reasons.get(o.as_str()))) } }
                }
            }
        }
    }
}

fn percentiles(r: &LoadReport) -> Markup {
    // A value, and a mark when too few calls lie beyond it.
    let cell = |p: Option<&Percentiles>, i: usize, calls: u64| match p {
        Some(p) if calls > 0 => html! {
            (human_secs(p.rows()[i].1))
            // Every cell has the mark's room, so the numbers stay aligned.
            @if Percentiles::thin(calls)[i] { sup.thin title=(THIN_NOTE) { "*" } } @else { sup.thin {} }
        },
        _ => html! { "–" },
    };
    let ok_calls = if r.ok_latency_seconds.is_some() { r.outcomes[Outcome::Ok] } else { 0 };
    let thin = [r.requests, ok_calls].iter().any(|&n| n > 0 && Percentiles::thin(n).contains(&true));
    let from = if r.model == Model::Open { " (from due)" } else { "" };
    html! {
        table {
            tr { th {} th.n { "All calls" (from) } th.n { "Ok calls" (from) } th.n { "Service time (from send)" } }
            @for (i, (name, _)) in r.latency_seconds.rows().into_iter().enumerate() {
                tr {
                    td { (name) }
                    td.n { (cell(Some(&r.latency_seconds), i, r.requests)) }
                    td.n { (cell(r.ok_latency_seconds.as_ref(), i, r.outcomes[Outcome::Ok])) }
                    td.n { (cell(Some(&r.service_time_seconds), i, r.requests)) }
                }
            }
        }
        @if thin { p.note { "* " (THIN_NOTE) "." } }
    }
}

fn phases(r: &LoadReport) -> Markup {
    html! {
        table {
            tr { th { "Phase" } th.n { "Calls" } th.n { "p50" } th.n { "p90" } th.n { "p99" } th.n { "max" } }
            // A phase no call had (resolve of an IP address, tls over http) is noise.
            @for (name, p) in phase_rows(&r.phases_seconds).into_iter().filter_map(|(n, p)| p.map(|p| (n, p))) {
                tr {
                    td { (name) }
                    td.n { (p.calls) }
                    @for v in [p.p50, p.p90, p.p99, p.max] { td.n { (human_secs(v)) } }
                }
            }
        }
    }
}

fn thresholds(r: &LoadReport) -> Markup {
    html! {
        table {
            tr { th { "Rule" } th { "Verdict" } th.n { "Actual" } }
            @for v in &r.thresholds {
                @let actual = match Threshold::parse(&v.expr) {
                    Ok(t) => t.show(v.actual),
                    Err(_) => v.actual.map_or("–".into(), |a| a.to_string()),
                };
                tr {
                    td { code { (v.expr) } }
                    td { span class={ "verdict " (if v.passed { "pass" } else { "fail" }) } {
                        (if v.passed { "pass" } else { "FAIL" }) } }
                    td.n { (actual) }
                }
            }
        }
    }
}

fn statuses(r: &LoadReport) -> Markup {
    let answered: u64 = r.http_status.values().sum();
    html! {
        table {
            tr { th { "Status" } th.n { "Answers" } }
            @for (code, n) in &r.http_status { tr { td { (code) } td.n { (n) } } }
            tr { td { "no HTTP answer" } td.n { (r.requests.saturating_sub(answered)) } }
        }
    }
}

fn violations(r: &LoadReport) -> Markup {
    let mut rows: Vec<(&String, &u64)> = r.violations.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    html! {
        table {
            tr { th { "JSON Pointer" } th.n { "Answers" } }
            @for (path, n) in rows {
                tr { td { code { (if path.is_empty() { "(the whole body)" } else { path.as_str() }) } } td.n { (n) } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use plotters::style::RGBColor;

    use super::*;
    use crate::report::chart::{DROPPED, SPECTRUM_END, percentile_label, points, spectrum};
    use crate::report::histogram::{encode, histogram};
    use crate::report::model::{IntervalLatency, Outcomes, PhaseTable, TimelineEntry};

    /// An hour at 200 rps with an outage from minute 20 to 25 and slow minutes after it,
    /// as a saved report holds it (a report is data: no run is needed to draw one).
    fn an_hour() -> Shown {
        let (mut latency, mut ok_latency) = (histogram(), histogram());
        let mut outcomes = Outcomes::default();
        let mut timeline = Vec::with_capacity(3600);
        for s in 0..3600u64 {
            let down = (1200..1500).contains(&s);
            let (outcome, ms) = if down { (Outcome::ConnectError, 0) } else { (Outcome::Ok, 5 + s % 7 + s / 400) };
            let mut entry = TimelineEntry { offset_seconds: s as f64, ..TimelineEntry::default() };
            entry.outcomes[outcome] += 200;
            entry.outcomes[Outcome::ServerError] += s % 3;
            entry.requests = 200 + s % 3;
            let secs = |us: u64| us as f64 / 1e6;
            entry.latency_seconds = IntervalLatency {
                p50: secs(ms * 1000),
                p90: secs(ms * 1300),
                p99: secs(ms * 2000 + 100),
                max: secs(ms * 3000 + 200),
            };
            outcomes[outcome] += 200;
            outcomes[Outcome::ServerError] += s % 3;
            for i in 0..20 {
                latency.saturating_record((ms + i) * 1000);
                if outcome == Outcome::Ok {
                    ok_latency.saturating_record((ms + i) * 1000);
                }
            }
            timeline.push(entry);
        }
        let requests: u64 = timeline.iter().map(|e| e.requests).sum();
        let mut report = LoadReport {
            target: "http://127.0.0.1:8080/nehrapi/login/getToken?<b>".into(),
            model: Model::Open,
            target_rps: Some(200.0),
            stages: None,
            concurrency: 50,
            duration_seconds: 3600.0,
            requests,
            dropped: 0,
            achieved_rps: requests as f64 / 3600.0,
            outcomes,
            latency_seconds: Percentiles::of(&latency),
            ok_latency_seconds: Some(Percentiles::of(&ok_latency)),
            service_time_seconds: Percentiles::of(&latency),
            late_starts: 0,
            http_status: [("200".to_string(), outcomes[Outcome::Ok])].into(),
            violations: Default::default(),
            reasons: Default::default(),
            thresholds: vec![],
            timeline_interval_seconds: Some(1),
            timeline,
            histogram: encode(&latency),
            service_time_histogram: None,
            segment: None,
            started_at: Some("1970-01-01T00:00:00Z".into()),
            first_send_late_seconds: Some(0.0),
            connections_opened: 50,
            new_connection_share: 0.0,
            tls_versions: Default::default(),
            http_versions: Default::default(),
            stream_wait: None,
            phases_seconds: PhaseTable::default(),
            phase_histograms: None,
            ok_histogram: Some(encode(&ok_latency)),
            then: None,
        };
        let rules = ["p99<300ms", "ok_p99<50ms", "error_rate<1%"].map(|t| Threshold::parse(t).unwrap());
        report.judge(&rules, &latency, Some(&ok_latency));
        Shown {
            report,
            service: Some(latency.clone()),
            latency,
            phases: None,
            ok_latency: Some(ok_latency),
            notes: vec![],
        }
    }

    #[test]
    fn an_hour_long_run_makes_a_page_under_a_mebibyte_with_nothing_outside_it() {
        let page = render(&an_hour());
        eprintln!("a one-hour report's page: {} bytes", page.len());
        assert!(page.len() < 1 << 20, "{} bytes", page.len());
        assert_eq!(page.matches("<svg").count(), 3);
        for outside in ["<script", "src=", "href=", "url(", "@import", "<link", "<iframe"] {
            assert!(!page.contains(outside), "{outside}");
        }
        // The only addresses are the target and the SVG namespace (a name, never fetched).
        let addresses = page.matches("http://").count();
        let namespaces = page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
        let targets = page.matches("http://127.0.0.1:8080/").count();
        assert_eq!(addresses, namespaces + targets, "an address that is neither the target nor the SVG namespace");
        // The target is text, escaped by construction.
        assert!(page.contains("getToken?&lt;b&gt;") && !page.contains("?<b>"));
        for o in ["connect_error", "server_error", "ok"] {
            assert!(page.contains(o), "{o}");
        }
        assert!(page.contains("ok_p99&lt;50ms"));
    }

    #[test]
    fn the_run_table_names_the_protocols_measured_only_when_known() {
        let mut shown = an_hour();
        let page = render(&shown);
        assert!(!page.contains("HTTP versions") && !page.contains("TLS versions"), "none counted");
        let n = shown.report.requests;
        shown.report.http_versions = [("HTTP/1.1".to_string(), n - 20), ("HTTP/2".to_string(), 20)].into();
        shown.report.tls_versions = [("TLS 1.3".to_string(), n)].into();
        let page = render(&shown);
        let http =
            format!("<th>HTTP versions</th><td>HTTP/2 20 (0.0 %), HTTP/1.1 {} (100.0 %) of {n} calls</td>", n - 20);
        assert!(page.contains(&http), "{http} in the page");
        assert!(page.contains(&format!("<th>TLS versions</th><td>TLS 1.3 {n} (100.0 %) of {n} calls</td>")));
    }

    #[test]
    fn time_charts_draw_a_point_per_interval_up_to_a_bound() {
        let shown = an_hour();
        let points = points(&shown.report);
        assert_eq!(points.len(), 720);
        let total: u64 = shown.report.timeline.iter().map(|e| e.requests).sum();
        assert_eq!(points.iter().map(|p| p.entry.requests).sum::<u64>(), total);
        assert_eq!(points[0].seconds, 5.0);
        let outage = &points[1250 / 5];
        assert_eq!(outage.entry.outcomes[Outcome::ConnectError], 1000);
        assert_eq!(outage.entry.outcomes[Outcome::Ok], 0);
    }

    #[test]
    fn dropped_requests_stack_on_top_of_the_rate_chart_only_when_there_are_some() {
        let mut shown = an_hour();
        assert!(!rate_chart(&shown.report).contains("dropped"));
        // Minute 30: the schedule asked for 300 a second more than went out.
        for e in shown.report.timeline.iter_mut().skip(1800).take(60) {
            e.dropped = 300;
        }
        shown.report.dropped = 300 * 60;
        let chart = rate_chart(&shown.report);
        assert!(chart.contains("dropped (never sent)"));
        let RGBColor(r, g, b) = DROPPED;
        assert!(chart.contains(&format!("#{r:02X}{g:02X}{b:02X}")));
        // The axis reaches the top of the stack: 200 ok + 2 server errors + 300 dropped.
        assert!(chart.contains("500/s"), "the axis stops below the dropped requests");
    }

    #[test]
    fn the_spectrum_runs_on_hdrhistograms_axis_to_p99_999() {
        let shown = an_hour();
        let line = spectrum(&shown.latency);
        assert_eq!(line[0].0, 1.0);
        assert_eq!(line.last().unwrap().0, SPECTRUM_END);
        assert!(line.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(percentile_label(&1000.0), "99.9%");
        assert_eq!(percentile_label(&3.0), "");
    }
}
