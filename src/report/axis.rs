//! The latency axis of the `--html` charts: a logarithmic scale whose tick values are
//! chosen here, not by plotters, so that every range has at least three labels that do
//! not crowd one another, in short form ("5 ms", "5.5 ms", "800 µs").
//!
//! Plotters puts a log axis' labels at powers of ten only, so a run whose latencies stay
//! within one decade got one label or none. [`LatencyAxis`] maps values as a log scale
//! does and hands plotters its own tick values: whole decades when the range is wide,
//! 1-2-5 or finer steps within a decade, and even steps (0.25 ms apart, say) when the
//! range is narrower still. It draws nothing itself and knows nothing of reports.

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};

use crate::util::units::trim3;

/// The least distance between two labels, in pixels (the labels are 13 px high).
pub const MIN_GAP: f64 = 20.0;
/// The fewest labels an axis gets.
const MIN_TICKS: usize = 3;

/// A logarithmic axis over seconds with its tick values chosen for `pixels` of height.
#[derive(Debug, Clone)]
pub struct LatencyAxis {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl LatencyAxis {
    /// An axis over `range` (seconds, both ends above zero) drawn `pixels` high.
    pub fn new(range: Range<f64>, pixels: f64) -> LatencyAxis {
        let ticks = ticks(range.start, range.end, pixels);
        LatencyAxis { range, ticks }
    }

    pub fn ticks(&self) -> &[f64] {
        &self.ticks
    }
}

impl Ranged for LatencyAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = (self.range.start.ln(), self.range.end.ln());
        let share = (value.max(f64::MIN_POSITIVE).ln() - lo) / (hi - lo);
        (f64::from(limit.0) + share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

impl ValueFormatter<f64> for LatencyAxis {
    fn format(value: &f64) -> String {
        short(*value)
    }
}

/// A duration in seconds as an axis label: at most three decimals, none needless, in
/// the unit that keeps the number between 1 and 1000 ("800 µs", "5.5 ms", "1.25 s").
pub fn short(x: f64) -> String {
    if x < 1e-3 {
        format!("{} µs", trim3(x * 1e6))
    } else if x < 1.0 {
        format!("{} ms", trim3(x * 1e3))
    } else {
        format!("{} s", trim3(x))
    }
}

/// The tick values for a log axis from `lo` to `hi` drawn `pixels` high: the coarsest
/// choice that gives at least three ticks at least [`MIN_GAP`] apart.
fn ticks(lo: f64, hi: f64, pixels: f64) -> Vec<f64> {
    let span = (hi / lo).log10();
    let fits =
        |t: &[f64]| t.len() >= MIN_TICKS && t.windows(2).all(|w| (w[1] / w[0]).log10() / span * pixels >= MIN_GAP);
    const MANTISSAS: [&[f64]; 4] =
        [&[1.0], &[1.0, 2.0, 5.0], &[1.0, 2.0, 3.0, 5.0], &[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]];
    for mantissas in MANTISSAS {
        let t = decades(lo, hi, mantissas);
        if fits(&t) {
            return t;
        }
    }
    // Narrower than the finest steps within a decade: evenly spaced ticks, the largest
    // nice step that gives enough of them.
    let mut step = 10f64.powf((hi - lo).log10().ceil());
    for _ in 0..40 {
        for factor in [1.0, 0.5, 0.25, 0.2] {
            let s = step * factor;
            let first = (lo / s).ceil() as i64;
            let last = (hi / s).floor() as i64;
            let t: Vec<f64> = (first..=last).map(|i| i as f64 * s).filter(|v| *v > 0.0).collect();
            if fits(&t) {
                return t;
            }
        }
        step /= 10.0;
    }
    // Wider than the decades fit (not expected): every other decade, or both ends.
    let t: Vec<f64> = decades(lo, hi, &[1.0]).into_iter().step_by(2).collect();
    if t.len() >= 2 { t } else { vec![lo, hi] }
}

/// `m × 10^k` for every mantissa `m` and decade `k` between `lo` and `hi`, ascending.
fn decades(lo: f64, hi: f64, mantissas: &[f64]) -> Vec<f64> {
    let (first, last) = (lo.log10().floor() as i32 - 1, hi.log10().ceil() as i32);
    let mut out = Vec::new();
    for k in first..=last {
        for m in mantissas {
            // Built from the mantissa, so 3 ms is 0.003, not 0.0030000000000000005.
            let v: f64 = format!("{m}e{k}").parse().expect("a number");
            if v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                out.push(v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plot height of a chart of the report, roughly.
    const PIXELS: f64 = 210.0;

    fn labels(lo: f64, hi: f64) -> Vec<String> {
        ticks(lo, hi, PIXELS).into_iter().map(short).collect()
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(short(0.0008), "800 µs");
        assert_eq!(short(0.005), "5 ms");
        assert_eq!(short(0.0055), "5.5 ms");
        assert_eq!(short(0.1), "100 ms");
        assert_eq!(short(1.25), "1.25 s");
        assert_eq!(short(3e-5), "30 µs");
    }

    #[test]
    fn every_range_gets_three_labels_or_more_that_do_not_crowd() {
        // The report's charts reach 1.5 times beyond the data on both sides.
        for (lo, hi) in [(0.001, 0.001), (0.005, 0.006), (0.03, 0.08), (1.0, 1.0), (0.0003, 2.0), (2e-5, 30.0)] {
            let (lo, hi) = (lo / 1.5, hi * 1.5);
            let t = ticks(lo, hi, PIXELS);
            assert!(t.len() >= 3, "{lo}..{hi}: {t:?}");
            assert!(t.iter().all(|v| (lo..=hi).contains(v)), "{lo}..{hi}: {t:?}");
            let span = (hi / lo).log10();
            for w in t.windows(2) {
                let gap = (w[1] / w[0]).log10() / span * PIXELS;
                assert!(gap >= MIN_GAP, "{lo}..{hi}: {t:?}");
            }
            let shown: Vec<String> = t.iter().map(|v| short(*v)).collect();
            let mut distinct = shown.clone();
            distinct.dedup();
            assert_eq!(distinct, shown, "a label twice");
            assert!(shown.iter().all(|l| !l.contains(".00")), "{shown:?}");
        }
    }

    #[test]
    fn the_ranges_of_issue_21() {
        assert_eq!(labels(0.03 / 1.5, 0.08 * 1.5), ["20 ms", "50 ms", "100 ms"]);
        assert_eq!(labels(0.005 / 1.5, 0.006 * 1.5), ["4 ms", "5 ms", "6 ms", "7 ms", "8 ms", "9 ms"]);
        assert_eq!(labels(0.001 / 1.5, 0.001 * 1.5), ["700 µs", "800 µs", "900 µs", "1 ms", "1.5 ms"]);
        assert_eq!(labels(1e-4, 10.0), ["100 µs", "1 ms", "10 ms", "100 ms", "1 s", "10 s"]);
    }

    #[test]
    fn the_axis_maps_as_a_log_scale() {
        let axis = LatencyAxis::new(0.001..0.1, PIXELS);
        assert_eq!(axis.map(&0.001, (200, 0)), 200);
        assert_eq!(axis.map(&0.01, (200, 0)), 100);
        assert_eq!(axis.map(&0.1, (200, 0)), 0);
        assert_eq!(axis.key_points(5usize), axis.ticks());
    }
}
