//! The `--html` latency charts' y axes as a reader sees them: for runs whose latencies
//! lie around 1 ms, 5–6 ms, 30–80 ms and 1 s, headless chromium lays out the page and a
//! script measures every label's box. Each latency chart (over time and the spectrum)
//! must show at least three y labels, none overlapping another label or any other text
//! of the chart, all inside the chart, distinct, short ("5.5 ms", never "100.00 ms"),
//! and rising up the axis.
//!
//! The runs are real (`load` against the mock with that latency). Because a crowded
//! machine widens a real run's range, each range is also drawn from a report reshaped to
//! exactly that range, so the test holds the ranges of issue 21 whatever the load. The
//! pages are kept under `target/tmp/pictures/labels-*.html` for a reviewer to open.

use std::path::Path;

use nehr_probe::call::Outcome;
use nehr_probe::mock::{Latency, MockArgs, MockServer};
use nehr_probe::report::histogram::{histogram, percentile};
use nehr_probe::report::html;
use nehr_probe::report::model::{Percentiles, Shown, secs};
use serde::Deserialize;

use crate::browser::{Rect, keep, measure};
use crate::support::load_against;

/// Every SVG of the page with the text it holds, each text's box as laid out.
const SCRIPT: &str = "
document.body.dataset.measured = JSON.stringify([...document.querySelectorAll('svg')].map(svg => ({
  box: svg.getBoundingClientRect(),
  texts: [...svg.querySelectorAll('text')].map(t => ({
    text: t.textContent.trim(),
    anchor: t.getAttribute('text-anchor') || 'start',
    rotated: t.hasAttribute('transform'),
    box: t.getBoundingClientRect(),
  })),
})));
";

#[derive(Debug, Deserialize)]
struct Chart {
    #[serde(rename = "box")]
    frame: Rect,
    texts: Vec<Text>,
}

#[derive(Debug, Deserialize)]
struct Text {
    text: String,
    anchor: String,
    rotated: bool,
    #[serde(rename = "box")]
    frame: Rect,
}

impl Chart {
    /// A latency chart's y axis is titled "latency" (the rotated text left of the plot).
    fn is_latency(&self) -> bool {
        self.texts.iter().any(|t| t.rotated && t.text == "latency")
    }

    /// The y tick labels: right-aligned and upright (x labels are centred, the legend
    /// left-aligned, the axis titles centred or turned).
    fn y_labels(&self) -> Vec<&Text> {
        self.texts.iter().filter(|t| t.anchor == "end" && !t.rotated).collect()
    }
}

/// A label's value in seconds, when it reads as a short duration: a number of at most
/// three significant decimals, none of them a needless trailing zero, and a unit.
fn seconds(label: &str) -> Option<f64> {
    let (number, unit) = label.split_once(' ')?;
    let scale = match unit {
        "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => return None,
    };
    if let Some((_, decimals)) = number.split_once('.')
        && (decimals.is_empty() || decimals.len() > 3 || decimals.ends_with('0'))
    {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    (value > 0.0 && value < 1000.0).then_some(value * scale)
}

/// Renders `shown` as the `--html` page, lays it out in chromium at each of `widths`
/// and checks the y axes of its latency charts; the page is kept as `name`.html.
fn assert_readable_y_labels(shown: &Shown, name: &str, widths: &[u32]) {
    let page = keep(&format!("{name}.html"));
    std::fs::write(&page, html::render(shown)).unwrap();
    for &width in widths {
        let Some(measured) = measure(&page, (width, 2400), SCRIPT) else { return };
        let charts: Vec<Chart> = serde_json::from_str(&measured).unwrap_or_else(|e| panic!("{e}: {measured}"));
        let latency: Vec<&Chart> = charts.iter().filter(|c| c.is_latency()).collect();
        assert_eq!(latency.len(), 2, "{name}: latency over time and the spectrum: {charts:#?}");
        for (i, chart) in latency.iter().enumerate() {
            let what = format!("{name} at {width} px, latency chart {}", i + 1);
            let labels = chart.y_labels();
            let texts: Vec<&str> = labels.iter().map(|t| t.text.as_str()).collect();
            assert!(labels.len() >= 3, "{what}: y labels {texts:?}");
            let mut distinct = texts.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), texts.len(), "{what}: a label twice: {texts:?}");
            let values: Vec<f64> = labels
                .iter()
                .map(|t| seconds(&t.text).unwrap_or_else(|| panic!("{what}: {:?} is not a short duration", t.text)))
                .collect();
            for (label, value) in labels.iter().zip(&values) {
                assert!(chart.frame.holds(&label.frame), "{what}: {:?} outside the chart {:?}", label, chart.frame);
                assert!(label.frame.height() > 5.0, "{what}: {label:?} is not drawn");
                for other in chart.texts.iter().filter(|o| !std::ptr::eq(*o, *label)) {
                    assert!(!label.frame.overlaps(&other.frame), "{what}: {label:?} overlaps {other:?}");
                }
                // Up the axis, larger values.
                for (l2, v2) in labels.iter().zip(&values) {
                    if l2.frame.top < label.frame.top {
                        assert!(v2 > value, "{what}: {:?} above {:?}", l2.text, label.text);
                    }
                }
            }
        }
    }
}

/// A run against the mock answering after `latency`: `rps` calls a second for 3 s.
async fn run_at(latency: &str, rps: &str, dir: &Path) -> Shown {
    let args = MockArgs { latency: Some(Latency::parse(latency).unwrap()), ..MockArgs::default() };
    let server = MockServer::start(&args).await.unwrap();
    load_against(&server, dir, &["--rps", rps, "-d", "3s", "--timeout", "10s"]).await
}

/// `shown` with latencies spread evenly from `lo` to `hi` seconds: its histograms, its
/// percentiles and each interval of its timeline (p50 to max inside that range).
fn reshaped(mut shown: Shown, lo: f64, hi: f64) -> Shown {
    let mut h = histogram();
    let n = shown.report.requests.max(100);
    for i in 0..n {
        let v = lo + (hi - lo) * i as f64 / (n - 1) as f64;
        h.record((v * 1e6).round() as u64).unwrap();
    }
    let at = |p: f64| secs(percentile(&h, p));
    for e in shown.report.timeline.iter_mut().filter(|e| e.requests > 0) {
        let l = &mut e.latency_seconds;
        (l.p50, l.p90, l.p99, l.max) = (at(50.0), at(90.0), at(99.0), hi);
    }
    shown.report.latency_seconds = Percentiles::of(&h);
    shown.report.ok_latency_seconds = Some(Percentiles::of(&h));
    shown.latency = h.clone();
    shown.ok_latency = Some(h.clone());
    shown.service = Some(h);
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_charts_show_readable_y_labels_in_chromium_at_every_range() {
    let dir = tempfile::tempdir().unwrap();
    // Real runs: the mock answers after the latency; 1 s answers need a lower rate.
    let mut slow = None;
    for (name, latency, rps, p50) in [
        ("labels-1ms", "1ms", "40", 0.001..0.1),
        ("labels-5-6ms", "5ms..6ms", "40", 0.005..0.1),
        ("labels-30-80ms", "30ms..80ms", "40", 0.03..0.2),
        ("labels-1s", "1s", "4", 1.0..1.5),
    ] {
        let shown = run_at(latency, rps, dir.path()).await;
        let r = &shown.report;
        assert!(r.outcomes[Outcome::Ok] > 0 && r.timeline.len() >= 3, "{name}: {r:?}");
        assert!(p50.contains(&r.latency_seconds.p50), "{name}: p50 {}", r.latency_seconds.p50);
        assert_readable_y_labels(&shown, name, &[1100, 700]);
        slow = Some(shown);
    }
    // The same ranges exactly, on the last run's report.
    let base = slow.expect("a run");
    for (name, lo, hi) in [
        ("labels-exact-1ms", 0.00095, 0.00105),
        ("labels-exact-5-6ms", 0.005, 0.006),
        ("labels-exact-30-80ms", 0.03, 0.08),
        ("labels-exact-1s", 0.995, 1.005),
        ("labels-exact-wide", 0.0003, 2.0),
    ] {
        assert_readable_y_labels(&reshaped(base.clone(), lo, hi), name, &[1100]);
    }
}

#[test]
fn only_short_durations_pass_as_labels() {
    for (label, want) in [("5 ms", 0.005), ("5.5 ms", 0.0055), ("800 µs", 0.0008), ("1.25 s", 1.25)] {
        assert!(seconds(label).is_some_and(|v| (v - want).abs() < 1e-12), "{label}");
    }
    for bad in ["100.00 ms", "5.50 ms", "5. ms", "1.2345 s", "5ms", "5 m", "1000 ms", "0 s"] {
        assert_eq!(seconds(bad), None, "{bad}");
    }
}
