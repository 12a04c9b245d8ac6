//! The `--html` page of a comparison with a baseline: the verdict per measure, both
//! runs' percentile spectra overlaid, and their latency over time one above the other.
//! Self-contained like the run's page (html.rs), whose charts and style it reuses.

use maud::{DOCTYPE, html};
use plotters::style::RGBColor;

use super::chart::{latency_chart, lines_chart, spectrum};
use super::compare::{Comparison, Verdict, show_change, show_value};
use super::html::{figure, head};
use super::model::Shown;

/// The whole page.
pub fn render(baseline: &Shown, run: &Shown, c: &Comparison) -> String {
    let (class, verdict) = if c.passed {
        ("pass", "NO MEASURE WORSE".to_string())
    } else {
        ("fail", format!("WORSE: {}", c.worse.join(", ")))
    };
    let mut lines = vec![
        ("baseline, all calls", RGBColor(110, 119, 129), 5, spectrum(&baseline.latency)),
        ("run, all calls", RGBColor(9, 105, 218), 2, spectrum(&run.latency)),
    ];
    // The baseline's lines wide and first, the run's narrow on top of them.
    if let (Some(b), Some(r)) = (&baseline.ok_latency, &run.ok_latency) {
        lines.insert(1, ("baseline, ok calls", RGBColor(175, 184, 193), 5, spectrum(b)));
        lines.push(("run, ok calls", RGBColor(26, 127, 55), 2, spectrum(r)));
    }
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(&format!("nehr-probe comparison: {}", c.run.target)))
            body {
                h1 { "nehr-probe: run against baseline" }
                p.sub { "baseline " (c.baseline.target) ", started " (c.baseline.started_at.as_deref().unwrap_or("at an unknown time")) }
                p.sub { "run " (c.run.target) ", started " (c.run.started_at.as_deref().unwrap_or("at an unknown time")) }
                span class={ "verdict " (class) } { (verdict) }
                p.note { "A change counts when its " (format!("{:.0}", c.confidence * 100.0)) " % interval is clear of zero and it is larger than the tolerance (" (format!("{:.1}", c.tolerance * 100.0)) " %)." }
                @for d in &c.differences {
                    p.note { "Note: " (d) }
                }
                h2 { "Measures" }
                table {
                    tr { th { "measure" } th.n { "baseline" } th.n { "run" } th { "verdict" } th { "change" } }
                    @for m in &c.measures {
                        tr {
                            td { (m.measure) }
                            td.n { (show_value(m.unit, m.baseline)) }
                            td.n { (show_value(m.unit, m.run)) }
                            td { @if m.verdict == Verdict::Worse { b { "worse" } } @else { (m.verdict.words()) } }
                            td { (show_change(m)) @if let Some(n) = &m.note { " (" (n) ")" } }
                        }
                    }
                }
                h2 { "Latency percentile spectrum, both runs" }
                (figure(lines_chart(lines), "Latency at each percentile out to p99.999: the baseline in grey, the run in colour; logarithmic scales."))
                h2 { "Latency over time: baseline" }
                (figure(latency_chart(&baseline.report), "p50, p90, p99 and max of all calls per interval; logarithmic scale."))
                h2 { "Latency over time: run" }
                (figure(latency_chart(&run.report), "The same for the run."))
                p.note { "Written by nehr-probe " (env!("CARGO_PKG_VERSION")) "." }
            }
        }
    };
    page.into_string()
}
