//! The landing page a person opens in a browser: links to the endpoints and, per
//! target, the last probe, the last failure, the certificate's time left, and the last
//! hour of probes: a strip of cells coloured by outcome (each cell's title says when,
//! what and how long), a latency sparkline and the availability over that window.
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

/// Width of the strip and the sparkline, in SVG pixels.
const STRIP_WIDTH: usize = 720;
/// Cells are at most this wide (few probes) and at least 2 px (the most probes kept,
/// [`CELLS`](super::strip::CELLS), fill the strip).
const CELL_MAX: usize = 12;
const STRIP_HEIGHT: usize = 22;
const SPARK_HEIGHT: usize = 36;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#1f2328}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}.ok{color:#070}\
.bad{color:#b00;font-weight:bold}.hist{margin:1em 0 1.6em}.hist p{margin:.2em 0}.note{color:#59636e}\
svg{display:block;max-width:100%;height:auto}";

/// The landing page: links, each target's last outcome and last failure, and its history.
pub async fn landing(State(app): State<Arc<App>>) -> Html<String> {
    Html(landing_page(&app))
}

pub fn landing_page(app: &App) -> String {
    let now = SystemTime::now();
    let unix_now = crate::metrics::unix_now() as i64;
    let seen = |s: &Option<Seen>, none: &str| match s {
        Some(s) => html! {
            td class=(if s.is_ok() { "ok" } else { "bad" }) { (s.label()) }
            td { (s.reason) }
            td { (ago(now, s.at)) " ago (" (format!("{:.1}", s.latency.as_secs_f64() * 1e3)) " ms)" }
        },
        None => html! { td { "-" } td { (none) } td {} },
    };
    let mut rows = Vec::new();
    let mut histories = Vec::new();
    for w in &app.targets {
        let h = w.history.lock().unwrap_or_else(|p| p.into_inner());
        let cert = h.cert_not_after.map_or_else(|| "-".to_string(), |t| cert_note(t.saturating_sub(unix_now)));
        rows.push(html! {
            tr {
                th { a href={ "probe?target=" (w.name) } { (w.name) } }
                td { code { (w.url) } }
                td { (h.probes) }
                (seen(&h.last, "not probed yet"))
                (seen(&h.last_failure, "none since start"))
                td { (cert) }
            }
        });
        histories.push(history(&w.name, &h.strip.recent(now)));
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
                table {
                    tr {
                        th rowspan="2" { "target" } th rowspan="2" { "url" } th rowspan="2" { "probes" }
                        th colspan="3" { "last probe" } th colspan="3" { "last failure" } th rowspan="2" { "TLS" }
                    }
                    tr {
                        th { "outcome" } th { "reason" } th { "when" }
                        th { "outcome" } th { "reason" } th { "when" }
                    }
                    @for row in &rows { (row) }
                }
                h2 { "The last hour" }
                @for h in &histories { (h) }
            }
        }
    };
    page.into_string()
}

/// One target's last hour: availability, the strip of cells and the latency sparkline.
fn history(name: &str, cells: &[Cell]) -> Markup {
    let n = cells.len();
    let ok = cells.iter().filter(|c| c.outcome == Outcome::Ok).count();
    let width = (STRIP_WIDTH / n.max(1)).clamp(2, CELL_MAX);
    // The newest probe at the right end.
    let x = |i: usize| STRIP_WIDTH - (n - i) * width;
    let top = cells.iter().map(|c| c.latency).max().unwrap_or_default();
    let y = |c: &Cell| {
        let share = if top.is_zero() { 0.0 } else { c.latency.as_secs_f64() / top.as_secs_f64() };
        2.0 + (1.0 - share) * (SPARK_HEIGHT - 4) as f64
    };
    let points: Vec<String> =
        cells.iter().enumerate().map(|(i, c)| format!("{},{:.1}", x(i) + width / 2, y(c))).collect();
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
                svg.strip xmlns="http://www.w3.org/2000/svg" width=(STRIP_WIDTH) height=(STRIP_HEIGHT)
                    viewBox={ "0 0 " (STRIP_WIDTH) " " (STRIP_HEIGHT) } role="img"
                    aria-label={ "the last " (n) " probes of " (name) " by outcome" } {
                    @for (i, c) in cells.iter().enumerate() {
                        rect x=(x(i)) y="0" width=(width.saturating_sub(1).max(1)) height=(STRIP_HEIGHT)
                            fill=(css_colour(c.outcome)) {
                            title { (cell_title(c)) }
                        }
                    }
                }
                svg.spark xmlns="http://www.w3.org/2000/svg" width=(STRIP_WIDTH) height=(SPARK_HEIGHT)
                    viewBox={ "0 0 " (STRIP_WIDTH) " " (SPARK_HEIGHT) } role="img"
                    aria-label={ "latency of the last " (n) " probes of " (name) } {
                    rect x="0" y="0" width=(STRIP_WIDTH) height=(SPARK_HEIGHT) fill="#f6f8fa" {}
                    polyline points=(points.join(" ")) fill="none" stroke="#0969da" stroke-width="1.5" {}
                }
            }
        }
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
        assert!(page.contains("transport_error: &lt;script&gt;x&lt;/script&gt;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains(">ok</td>") && page.contains(">transport_error</td>"), "{page}");
        assert!(page.contains("every 30s"), "{page}");
        assert!(page.contains("<td>-</td></tr>"), "no certificate over http: {page}");

        let mut tls = Observation::test(Outcome::Ok, Some(200), 0, 3);
        tls.cert_not_after = Some(crate::metrics::unix_now() as i64 + 10 * 86_400 + 600);
        app.targets[0].record(&tls);
        let page = landing_page(&app);
        assert!(page.contains("<td>certificate expires in 10 days</td></tr>"), "{page}");
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
        let fills: Vec<&str> = strip.match_indices("fill=\"").map(|(i, _)| &strip[i + 6..i + 13]).collect();
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
        assert!(points[5].ends_with(",2.0"), "{points:?}");
        // Names are escaped here too.
        assert!(page.contains("staging &lt;b&gt;") && !page.contains("staging <b>"), "{page}");
    }

    #[test]
    fn a_target_not_probed_yet_says_so() {
        let page = landing_page(&app(watched("fresh")));
        assert!(page.contains("no probes in the last 1h"), "{page}");
        assert!(!page.contains("<svg"), "{page}");
        assert_eq!(CELLS * 2, STRIP_WIDTH, "a full strip fills the width at the narrowest cells");
    }
}
