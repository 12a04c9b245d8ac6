//! The landing page a person opens in a browser: links to the endpoints and, per
//! target, the last probe, the last failure (each reason on one line, cut short with
//! the whole of it in a tooltip), the certificate's time left, and the last hour of
//! probes: a strip of cells coloured by outcome (each cell's title says when, what and
//! how long) with the legend of its colours, a latency sparkline with its lowest and
//! highest value on a scale, a time axis under both (how long ago, "now" at the right
//! end), and the availability over that window.
//!
//! Built with maud, so every text from a target or an answer is escaped by
//! construction. The strip and the sparkline are SVG drawn here on the server (no
//! script): a cell per probe carries its own `<title>`, which a plotting crate does not
//! give, and the geometry is a row of equal cells and one polyline. Nothing on the page
//! is fetched from elsewhere.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::response::Html;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::state::{App, Seen};
use super::strip::{Cell, WINDOW};
use crate::call::Outcome;
use crate::report::chart::css_colour;
use crate::util::fmt::{cert_note, human_secs};

/// Width of the strip's cells and the sparkline, in SVG pixels.
const STRIP_WIDTH: usize = 720;
/// Room left of the strip and the sparkline for the sparkline's scale.
const GUTTER: usize = 64;
/// Cells are at most this wide (few probes) and at least 2 px (the most probes kept,
/// [`CELLS`](super::strip::CELLS), fill the strip).
const CELL_MAX: usize = 12;
const STRIP_HEIGHT: usize = 22;
const SPARK_HEIGHT: usize = 36;
/// The time axis under the sparkline: tick marks and their labels.
const AXIS_HEIGHT: usize = 18;
/// The least distance between the centres of two time labels, in SVG pixels.
const LABEL_GAP: usize = 80;
/// The scale's and the axis' text.
const SMALL: &str = "font-family:sans-serif;font-size:11px";
const GREY: &str = "#59636e";

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#1f2328}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top;white-space:nowrap}\
td.n{text-align:right}.ok{color:#070}.bad{color:#b00;font-weight:bold}.k{color:#59636e}\
.cut{max-width:20em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}\
td.reason{width:100%;max-width:0}td.reason .cut{max-width:none}\
td.reason{min-width:8em}th code{font-weight:normal}th .cut{max-width:14em}\
.targets{width:100%}.wide{overflow-x:auto}.tls{white-space:normal;min-width:6em}\
@media(max-width:1000px){th .cut{max-width:9em}.tls{min-width:0}td.reason{min-width:6em}}\
.hist{margin:1em 0 1.6em}.hist p{margin:.2em 0}.note{color:#59636e}\
.legend{font-size:13px;color:#59636e}.legend span{margin-right:1.2em;white-space:nowrap}\
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}\
svg{display:block;max-width:100%;height:auto}";

/// The landing page: links, each target's last outcome and last failure, and its history.
pub async fn landing(State(app): State<Arc<App>>) -> Html<String> {
    Html(landing_page(&app))
}

pub fn landing_page(app: &App) -> String {
    let now = SystemTime::now();
    let unix_now = crate::metrics::unix_now() as i64;
    // One line per cell: the outcome once (a reason that begins with it drops it), the
    // reason cut to the column with the whole of it in the tooltip.
    let seen = |s: &Option<Seen>, none: &str| match s {
        Some(s) => html! {
            td class=(if s.is_ok() { "ok" } else { "bad" }) { (s.label()) }
            td.reason { div.cut title=(s.detail()) { (s.detail()) } }
            td { (ago(now, s.at)) " ago (" (format!("{:.1}", s.latency.as_secs_f64() * 1e3)) " ms)" }
        },
        None => html! { td { "-" } td.reason { div.cut { (none) } } td {} },
    };
    let mut rows = Vec::new();
    let mut histories = Vec::new();
    for w in &app.targets {
        let h = w.history.lock().unwrap_or_else(|p| p.into_inner());
        let cert = h.cert_not_after.map_or_else(|| "-".to_string(), |t| cert_note(t.saturating_sub(unix_now)));
        // Two lines a target: its last probe, and its last failure.
        rows.push(html! {
            tr {
                th rowspan="2" {
                    a href={ "probe?target=" (w.name) } { (w.name) }
                    div.cut title=(w.url) { code { (w.url) } }
                }
                td.n rowspan="2" { (h.probes) }
                td.k { "last probe" }
                (seen(&h.last, "not probed yet"))
                td.tls rowspan="2" { (cert) }
            }
            tr {
                td.k { "last failure" }
                (seen(&h.last_failure, "none since start"))
            }
        });
        histories.push(history(&w.name, &h.strip.recent(now), now, app.interval));
    }
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "nehr-probe" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "nehr-probe " (env!("CARGO_PKG_VERSION")) }
                p {
                    "Probes the NEHR login (" code { "POST …/nehrapi/login/getToken" } ") every "
                    (humantime::format_duration(app.interval)) "; up since "
                    (humantime::format_rfc3339_seconds(app.started)) "."
                }
                ul {
                    li { a href="metrics" { "/metrics" } ": the metrics of every target, for Prometheus" }
                    li { a href="probe" { "/probe" } ": a probe, blackbox style, at most one new login per target per --probe-min-interval ("
                        code { "?target=NAME" } ")" }
                    li { a href="healthz" { "/healthz" } ": is this process up" }
                }
                div.wide {
                    table.targets {
                        tr {
                            th { "target" } th { "probes" } th {} th { "outcome" } th { "reason" } th { "when" }
                            th { "TLS" }
                        }
                        @for row in &rows { (row) }
                    }
                }
                h2 { "The last hour" }
                @for h in &histories { (h) }
            }
        }
    };
    page.into_string()
}

/// One target's last hour: availability, the strip of cells, the latency sparkline
/// with its scale, the time axis under both, and the legend of the strip's colours.
fn history(name: &str, cells: &[Cell], now: SystemTime, interval: Duration) -> Markup {
    let n = cells.len();
    let ok = cells.iter().filter(|c| c.outcome == Outcome::Ok).count();
    let width = (STRIP_WIDTH / n.max(1)).clamp(2, CELL_MAX);
    // The newest probe at the right end.
    let x = |i: usize| GUTTER + STRIP_WIDTH - (n - i) * width;
    let lo = cells.iter().map(|c| c.latency).min().unwrap_or_default();
    let top = cells.iter().map(|c| c.latency).max().unwrap_or_default();
    // From the fastest probe at the bottom to the slowest at the top (all alike: the middle).
    let y = |c: &Cell| {
        let span = (top - lo).as_secs_f64();
        let share = if span > 0.0 { (c.latency - lo).as_secs_f64() / span } else { 0.5 };
        2.0 + (1.0 - share) * (SPARK_HEIGHT - 4) as f64
    };
    let points: Vec<String> =
        cells.iter().enumerate().map(|(i, c)| format!("{},{:.1}", x(i) + width / 2, y(c))).collect();
    let full = GUTTER + STRIP_WIDTH;
    let ticks = time_ticks(cells, now, interval, |i| x(i) + width / 2);
    let counts: Vec<(Outcome, usize)> = Outcome::ALL
        .into_iter()
        .map(|o| (o, cells.iter().filter(|c| c.outcome == o).count()))
        .filter(|(_, k)| *k > 0)
        .collect();
    html! {
        div.hist {
            p {
                b { (name) } ": "
                @if n == 0 {
                    span.note { "no probes in the last " (humantime::format_duration(WINDOW)) }
                } @else {
                    (format!("{:.2} %", ok as f64 * 100.0 / n as f64)) " available over the last "
                    (n) " probes (" (ok) " ok), latency up to " (human_secs(top.as_secs_f64()))
                }
            }
            @if n > 0 {
                svg.strip xmlns="http://www.w3.org/2000/svg" width=(full) height=(STRIP_HEIGHT)
                    viewBox={ "0 0 " (full) " " (STRIP_HEIGHT) } role="img"
                    aria-label={ "the last " (n) " probes of " (name) " by outcome" } {
                    text x=(GUTTER - 6) y=(STRIP_HEIGHT / 2) text-anchor="end" dominant-baseline="middle"
                        style=(SMALL) fill=(GREY) { "outcome" }
                    @for (i, c) in cells.iter().enumerate() {
                        rect x=(x(i)) y="0" width=(width.saturating_sub(1).max(1)) height=(STRIP_HEIGHT)
                            fill=(css_colour(c.outcome)) {
                            title { (cell_title(c)) }
                        }
                    }
                }
                svg.spark xmlns="http://www.w3.org/2000/svg" width=(full) height=(SPARK_HEIGHT + AXIS_HEIGHT)
                    viewBox={ "0 0 " (full) " " (SPARK_HEIGHT + AXIS_HEIGHT) } role="img"
                    aria-label={ "latency of the last " (n) " probes of " (name) ", from "
                        (human_secs(lo.as_secs_f64())) " to " (human_secs(top.as_secs_f64())) } {
                    rect x=(GUTTER) y="0" width=(STRIP_WIDTH) height=(SPARK_HEIGHT) fill="#f6f8fa" {}
                    // The scale: the slowest probe's latency at the top, the fastest's at the bottom.
                    @if top > lo {
                        line x1=(GUTTER) x2=(full) y1="2" y2="2" stroke="#d0d7de" stroke-dasharray="3 3" {}
                        line x1=(GUTTER) x2=(full) y1=(SPARK_HEIGHT - 2) y2=(SPARK_HEIGHT - 2) stroke="#d0d7de"
                            stroke-dasharray="3 3" {}
                        text.scale x=(GUTTER - 6) y="2" text-anchor="end" dominant-baseline="hanging" style=(SMALL)
                            fill=(GREY) { (human_secs(top.as_secs_f64())) }
                        text.scale x=(GUTTER - 6) y=(SPARK_HEIGHT - 1) text-anchor="end" style=(SMALL) fill=(GREY) {
                            (human_secs(lo.as_secs_f64()))
                        }
                    } @else {
                        text.scale x=(GUTTER - 6) y=(SPARK_HEIGHT / 2) text-anchor="end" dominant-baseline="middle"
                            style=(SMALL) fill=(GREY) { (human_secs(top.as_secs_f64())) }
                    }
                    polyline points=(points.join(" ")) fill="none" stroke="#0969da" stroke-width="1.5" {}
                    // The time axis: how long ago the probe above each tick ran.
                    line x1=(GUTTER) x2=(full) y1=(SPARK_HEIGHT) y2=(SPARK_HEIGHT) stroke="#8c959f" {}
                    @for (at, anchor, label) in &ticks {
                        line x1=(at) x2=(at) y1=(SPARK_HEIGHT) y2=(SPARK_HEIGHT + 3) stroke="#8c959f" {}
                        text.time x=(at) y=(SPARK_HEIGHT + AXIS_HEIGHT - 3) text-anchor=(anchor) style=(SMALL)
                            fill=(GREY) { (label) }
                    }
                }
                p.legend {
                    @for (o, k) in &counts {
                        span { i.sw style={ "background:" (css_colour(*o)) } {} (o.as_str()) " " (k) }
                    }
                }
            }
        }
    }
}

/// The time axis' ticks: where (SVG x), how the label is anchored, and the label: the
/// age of the probe at a few cells spread over the strip, the newest "now" when it is
/// no older than about one interval. Labels closer than [`LABEL_GAP`] are left out.
fn time_ticks(
    cells: &[Cell],
    now: SystemTime,
    interval: Duration,
    centre: impl Fn(usize) -> usize,
) -> Vec<(usize, &'static str, String)> {
    let n = cells.len();
    if n == 0 {
        return Vec::new();
    }
    let age = |i: usize| now.duration_since(cells[i].at).unwrap_or_default();
    let mut picks: Vec<usize> = (0..=4).map(|k| k * (n - 1) / 4).collect();
    picks.dedup();
    let newest = n - 1;
    let mut out: Vec<(usize, &'static str, String)> = Vec::new();
    // From the newest leftwards, so "now" always shows.
    for &i in picks.iter().rev() {
        let at = centre(i);
        if out.last().is_some_and(|(last, _, _)| last - at < LABEL_GAP) {
            continue;
        }
        let label = if i == newest && age(i) <= interval + Duration::from_secs(5) {
            "now".to_string()
        } else {
            format!("\u{2212}{}", short_age(age(i)))
        };
        let anchor = if i == newest {
            "end"
        } else if i == 0 && at < GUTTER + LABEL_GAP {
            "start"
        } else {
            "middle"
        };
        let at = if i == newest { GUTTER + STRIP_WIDTH } else { at };
        out.push((at, anchor, label));
    }
    out.reverse();
    out
}

/// An age on the time axis: `0.4 s`, `40 s`, `12 min`, `1 h`.
fn short_age(d: Duration) -> String {
    let s = d.as_secs();
    if s < 10 {
        format!("{:.1} s", d.as_secs_f64())
    } else if s < 120 {
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else {
        format!("{} h", s / 3600)
    }
}

/// A cell's tooltip: when (UTC), what, how long.
fn cell_title(c: &Cell) -> String {
    format!(
        "{}  {}  {}",
        humantime::format_rfc3339_seconds(c.at),
        c.outcome.as_str(),
        human_secs(c.latency.as_secs_f64())
    )
}

fn ago(now: SystemTime, then: SystemTime) -> String {
    let secs = now.duration_since(then).unwrap_or_default().as_secs();
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use crate::metrics::Registry;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::call::Observation;
    use crate::serve::state::tests::watched;
    use crate::serve::strip::CELLS;

    fn app(w: Arc<crate::serve::state::Watched>) -> App {
        App {
            targets: vec![w],
            registry: Registry::new(),
            interval: Duration::from_secs(30),
            started: SystemTime::now(),
            stop: CancellationToken::new(),
        }
    }

    #[test]
    fn landing_page_escapes_and_shows_the_last_failure() {
        let w = watched("production");
        let mut bad = Observation::test(Outcome::TransportError, None, 0, 3);
        bad.detail = Some("<script>x</script>".into());
        w.record(&bad);
        w.record(&Observation::test(Outcome::Ok, Some(200), 0, 3));
        let app = app(w);
        let page = landing_page(&app);
        assert!(page.contains("href=\"metrics\"") && page.contains("href=\"healthz\""), "{page}");
        assert!(page.contains("href=\"probe?target=production\""), "{page}");
        // The reason escaped, without the outcome name it begins with, its whole in the tooltip.
        assert!(
            page.contains("title=\"&lt;script&gt;x&lt;/script&gt;\">&lt;script&gt;x&lt;/script&gt;</div>"),
            "{page}"
        );
        assert!(!page.contains("transport_error: "), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains(">ok</td>") && page.contains(">transport_error</td>"), "{page}");
        assert!(page.contains("every 30s"), "{page}");
        assert!(page.contains("<td class=\"tls\" rowspan=\"2\">-</td></tr>"), "no certificate over http: {page}");

        let mut tls = Observation::test(Outcome::Ok, Some(200), 0, 3);
        tls.cert_not_after = Some(crate::metrics::unix_now() as i64 + 10 * 86_400 + 600);
        app.targets[0].record(&tls);
        let page = landing_page(&app);
        assert!(page.contains(">certificate expires in 10 days</td></tr>"), "{page}");
    }

    #[test]
    fn the_history_shows_mixed_outcomes_cell_by_cell() {
        let w = watched("staging <b>");
        let outcomes = [Outcome::Ok, Outcome::Ok, Outcome::ServerError, Outcome::Ok, Outcome::Timeout, Outcome::Ok];
        for (i, o) in outcomes.iter().enumerate() {
            w.record(&Observation::test(*o, Some(200), 0, 10 * (i as u64 + 1)));
        }
        let page = landing_page(&app(w));
        assert!(page.contains("66.67 % available over the last 6 probes (4 ok), latency up to 60.00 ms"), "{page}");
        // One cell per probe, in order, coloured by outcome, each with its title.
        let strip = &page[page.find("<svg class=\"strip\"").unwrap()..];
        let strip = &strip[..strip.find("</svg>").unwrap()];
        let fills: Vec<&str> = strip
            .split("<rect")
            .skip(1)
            .map(|r| {
                let i = r.find("fill=\"").unwrap();
                &r[i + 6..i + 13]
            })
            .collect();
        let want: Vec<String> = outcomes.iter().map(|o| css_colour(*o)).collect();
        assert_eq!(fills, want);
        let titles: Vec<&str> = strip.split("<title>").skip(1).map(|t| &t[..t.find("</title>").unwrap()]).collect();
        assert_eq!(titles.len(), 6);
        assert!(titles[2].contains("  server_error  30.") && titles[4].contains("  timeout  50."), "{titles:?}");
        assert!(titles[0].ends_with(" ms") && titles[0].starts_with("20"), "{titles:?}");
        // The sparkline: one point per probe, the slowest at the top.
        let spark = &page[page.find("<svg class=\"spark\"").unwrap()..];
        let points = spark.split("points=\"").nth(1).unwrap();
        let points: Vec<&str> = points[..points.find('"').unwrap()].split(' ').collect();
        assert_eq!(points.len(), 6);
        assert!(points[5].ends_with(",2.0") && points[0].ends_with(",34.0"), "{points:?}");
        // Its scale: the slowest probe's latency at the top, the fastest's at the bottom.
        let scale: Vec<&str> = spark
            .split("<text class=\"scale\"")
            .skip(1)
            .map(|t| &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()])
            .collect();
        assert_eq!(scale, ["60.00 ms", "10.00 ms"]);
        // The time axis ends at "now"; the legend names each colour of the strip.
        assert!(spark.contains(">now</text>"), "{spark}");
        for key in ["ok 4", "server_error 1", "timeout 1"] {
            assert!(page.contains(&format!("{key}</span>")), "{key}: {page}");
        }
        // Names are escaped here too.
        assert!(page.contains("staging &lt;b&gt;") && !page.contains("staging <b>"), "{page}");
    }

    #[test]
    fn the_time_axis_says_how_long_ago_and_ends_at_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let interval = Duration::from_secs(10);
        let hour: Vec<Cell> = (0..CELLS as u64)
            .map(|i| Cell {
                at: now - Duration::from_secs((CELLS as u64 - 1 - i) * 10),
                outcome: Outcome::Ok,
                latency: Duration::from_millis(5),
            })
            .collect();
        let ticks = time_ticks(&hour, now, interval, |i| GUTTER + i * 2 + 1);
        let labels: Vec<&str> = ticks.iter().map(|t| t.2.as_str()).collect();
        assert_eq!(labels, ["\u{2212}59 min", "\u{2212}45 min", "\u{2212}30 min", "\u{2212}15 min", "now"]);
        assert_eq!(ticks[4].0, GUTTER + STRIP_WIDTH, "now at the right end");
        assert!(ticks.windows(2).all(|w| w[1].0 - w[0].0 >= LABEL_GAP), "{ticks:?}");
        // A few probes, the newest long ago: labels that would crowd are left out, and
        // the right end says how old the newest is.
        let few = &hour[..3];
        let ticks = time_ticks(few, now, interval, |i| GUTTER + STRIP_WIDTH - (3 - i) * 12 + 6);
        let labels: Vec<&str> = ticks.iter().map(|t| t.2.as_str()).collect();
        assert_eq!(labels, ["\u{2212}59 min"]);
        assert_eq!(short_age(Duration::from_secs(45)), "45 s");
        assert_eq!(short_age(Duration::from_millis(420)), "0.4 s");
        assert_eq!(short_age(Duration::from_secs(7300)), "2 h");
    }

    #[test]
    fn a_target_not_probed_yet_says_so() {
        let page = landing_page(&app(watched("fresh")));
        assert!(page.contains("no probes in the last 1h"), "{page}");
        assert!(!page.contains("<svg"), "{page}");
        assert_eq!(CELLS * 2, STRIP_WIDTH, "a full strip fills the width at the narrowest cells");
    }
}
