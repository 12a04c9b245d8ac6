//! The charts of the `--html` pages: latency over time, requests per second by outcome
//! and the percentile spectrum, drawn by plotters' SVG backend into strings the pages
//! inline. Owns the outcome colours every page shares, the axes (titles, and the
//! latency axis' ticks through [`LatencyAxis`]) and the legends, which sit above the
//! plot so they never cover a line.
//!
//! It reads only the report and its histograms, and must never reference anything
//! outside the SVG (no font, image or script is fetched).

use std::ops::Range;

use hdrhistogram::Histogram;
use maud::html;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{LatencyAxis, short};
use super::model::{LoadReport, Model, Shown, TimelineEntry};
use crate::call::Outcome;
use crate::util::units::trim3;

/// Chart size in SVG pixels (the page scales them to its width).
const WIDTH: u32 = 960;
const HEIGHT: u32 = 320;
/// The frame around the plot, in pixels: the margin, the room for the y labels and the
/// axis title left of the plot, and for the x labels and title below it.
const MARGIN: u32 = 10;
const Y_AREA: u32 = 86;
const X_AREA: u32 = 46;
/// A legend row above the plot.
const LEGEND_ROW: u32 = 20;
/// The most points a time chart draws: more entries share a point, so an hour-long
/// run's page stays small (a chart is under 1000 pixels wide anyway).
const MAX_POINTS: usize = 720;
/// The spectrum's right end: p99.999, as 1 / (1 - q).
pub(super) const SPECTRUM_END: f64 = 1e5;
const FONT: (&str, u32) = ("sans-serif", 13);
const INK: RGBColor = RGBColor(31, 35, 40);
/// A dashed line's dash and gap, in pixels.
const DASH: (u32, u32) = (6, 4);

/// Each outcome's colour in every chart and table (green is ok; failures are warm,
/// failures below HTTP dark).
pub fn colour(o: Outcome) -> RGBColor {
    match o {
        Outcome::Ok => RGBColor(46, 160, 67),
        Outcome::InvalidBody => RGBColor(137, 87, 229),
        Outcome::ReusedToken => RGBColor(255, 0, 110),
        Outcome::Unauthorized => RGBColor(219, 109, 40),
        Outcome::RateLimited => RGBColor(212, 167, 44),
        Outcome::ServerError => RGBColor(207, 34, 46),
        Outcome::HttpError => RGBColor(191, 57, 137),
        Outcome::Timeout => RGBColor(130, 7, 30),
        Outcome::ConnectError => RGBColor(87, 96, 106),
        Outcome::TransportError => RGBColor(9, 105, 218),
    }
}

/// An outcome's colour as CSS (`#2ea043`), the same everywhere a person sees outcomes.
pub fn css_colour(o: Outcome) -> String {
    let RGBColor(r, g, b) = colour(o);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A point of a time chart: entries sharing it add their counts; their p50, p90 and
/// p99 are request-weighted, their max the largest.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Point {
    pub start: f64,
    pub seconds: f64,
    pub entry: TimelineEntry,
}

pub(super) fn points(r: &LoadReport) -> Vec<Point> {
    let interval = r.timeline_interval_seconds.unwrap_or(1).max(1) as f64;
    let per_point = r.timeline.len().div_ceil(MAX_POINTS).max(1);
    r.timeline
        .chunks(per_point)
        .map(|chunk| {
            let mut p =
                Point { start: chunk[0].offset_seconds, seconds: interval * chunk.len() as f64, ..Point::default() };
            let (mut w50, mut w90, mut w99) = (0.0, 0.0, 0.0);
            for e in chunk {
                p.entry.requests += e.requests;
                p.entry.dropped += e.dropped;
                crate::call::keyed::add_all(&mut p.entry.outcomes, &e.outcomes);
                let n = e.requests as f64;
                w50 += e.latency_seconds.p50 * n;
                w90 += e.latency_seconds.p90 * n;
                w99 += e.latency_seconds.p99 * n;
                p.entry.latency_seconds.max = p.entry.latency_seconds.max.max(e.latency_seconds.max);
            }
            if p.entry.requests > 0 {
                let n = p.entry.requests as f64;
                let l = &mut p.entry.latency_seconds;
                (l.p50, l.p90, l.p99) = (w50 / n, w90 / n, w99 / n);
            }
            p
        })
        .collect()
}

/// The time axis: seconds from the start, to the end of the last interval.
fn time_axis(points: &[Point]) -> Range<f64> {
    let end = points.last().map_or(1.0, |p| p.start + p.seconds);
    0.0..end.max(1.0)
}

fn seconds_label(x: &f64) -> String {
    if *x >= 120.0 { format!("{} min", trim3(x / 60.0)) } else { format!("{} s", trim3(*x)) }
}

/// Draws into an SVG string; a drawing error (none is expected) leaves a note instead.
fn svg(draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), String>) -> String {
    let mut out = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        let drawn = root.fill(&WHITE).map_err(|e| e.to_string()).and_then(|()| draw(&root));
        drawn.and_then(|()| root.present().map_err(|e| e.to_string()))
    };
    match result {
        Ok(()) => out,
        Err(e) => html! { p.note { "chart not drawn: " (e) } }.into_string(),
    }
}

/// A log axis over `values` (seconds), a little beyond them, for a plot `rows` legend
/// rows shorter than the chart.
fn latency_axis(values: impl Iterator<Item = f64>, rows: u32) -> LatencyAxis {
    let (lo, hi) = values.filter(|v| *v > 0.0).fold((f64::MAX, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let range = if hi <= 0.0 { 1e-4..1.0 } else { (lo / 1.5).max(1e-6)..(hi * 1.5) };
    LatencyAxis::new(range, f64::from(plot_height(rows)))
}

fn plot_height(rows: u32) -> u32 {
    HEIGHT - top(rows) - MARGIN - X_AREA
}

fn top(rows: u32) -> u32 {
    MARGIN + rows * LEGEND_ROW
}

/// What a legend entry shows beside its name.
#[derive(Debug, Clone, Copy)]
enum Swatch {
    Line(u32),
    /// A dashed line, as max is drawn.
    Dashed(u32),
    Box,
}

type Key = (String, RGBColor, Swatch);

/// Where each key goes: its row and left edge, left to right above the plot, wrapping.
fn key_places(keys: &[Key]) -> Vec<(u32, u32)> {
    let (left, right) = (MARGIN + Y_AREA, WIDTH - MARGIN);
    let (mut row, mut x) = (0, left);
    keys.iter()
        .map(|(name, _, _)| {
            // 13 px sans-serif runs about 7.5 px a character.
            let w = 24 + (name.chars().count() as f64 * 7.5).ceil() as u32 + 18;
            if x + w > right && x > left {
                (row, x) = (row + 1, left);
            }
            let place = (row, x);
            x += w;
            place
        })
        .collect()
}

fn rows(keys: &[Key]) -> u32 {
    key_places(keys).last().map_or(0, |p| p.0 + 1)
}

/// The legend, above the plot.
fn legend(root: &DrawingArea<SVGBackend, Shift>, keys: &[Key]) -> Result<(), String> {
    let style = TextStyle::from(FONT.into_font()).color(&INK).pos(Pos::new(HPos::Left, VPos::Center));
    for ((name, c, swatch), (row, x)) in keys.iter().zip(key_places(keys)) {
        let (x, y) = (x as i32, (MARGIN + row * LEGEND_ROW + LEGEND_ROW / 2) as i32);
        match swatch {
            Swatch::Line(w) => root.draw(&PathElement::new([(x, y), (x + 18, y)], c.stroke_width(*w))),
            Swatch::Dashed(w) => {
                root.draw(&DashedPathElement::new([(x, y), (x + 18, y)], DASH.0, DASH.1, c.stroke_width(*w)))
            }
            Swatch::Box => root.draw(&Rectangle::new([(x + 3, y - 5), (x + 15, y + 5)], c.filled())),
        }
        .map_err(|e| e.to_string())?;
        root.draw(&Text::new(name.clone(), (x + 24, y), style.clone())).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A line of the latency chart: its name, colour, width, whether dashed, and value.
type Series = (&'static str, RGBColor, u32, bool, fn(&TimelineEntry) -> f64);

/// A line of the spectrum: its name, colour, width and points. Wider lines are meant
/// to go first, so a narrower one drawn on top leaves them visible at its sides.
pub(super) type Line = (&'static str, RGBColor, u32, Vec<(f64, f64)>);

pub(super) fn latency_chart(r: &LoadReport) -> String {
    let points = points(r);
    // p99 orange and max near black: the two lines that meet at the top stay apart.
    // With few calls an interval's p99 is its max: max goes last and dashed, so p99
    // shows in its gaps where the two are one.
    let series: [Series; 4] = [
        ("p50", RGBColor(9, 105, 218), 2, false, |e| e.latency_seconds.p50),
        ("p90", RGBColor(26, 127, 55), 2, false, |e| e.latency_seconds.p90),
        ("p99", RGBColor(219, 109, 40), 2, false, |e| e.latency_seconds.p99),
        ("max (dashed)", RGBColor(36, 41, 47), 2, true, |e| e.latency_seconds.max),
    ];
    let swatch = |s: &Series| if s.3 { Swatch::Dashed(s.2) } else { Swatch::Line(s.2) };
    let keys: Vec<Key> = series.iter().map(|s| (s.0.to_string(), s.1, swatch(s))).collect();
    let y = latency_axis(points.iter().flat_map(|p| series.map(|s| (s.4)(&p.entry))), rows(&keys));
    svg(|root| {
        let titles = ("time since the start", "latency");
        let mut chart = axes(root, rows(&keys), time_axis(&points), y, &seconds_label, &|v| short(*v), titles)?;
        for (_, c, width, dashed, value) in series {
            // A line per run of intervals with calls: no line across an interval without any.
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for p in &points {
                if p.entry.requests == 0 {
                    runs.push(Vec::new());
                } else {
                    runs.last_mut().expect("one run").push((p.start + p.seconds / 2.0, value(&p.entry)));
                }
            }
            for run in runs.into_iter().filter(|r| !r.is_empty()) {
                let drawn = if dashed {
                    chart.draw_series(DashedLineSeries::new(run, DASH.0, DASH.1, c.stroke_width(width)))
                } else {
                    chart.draw_series(LineSeries::new(run, c.stroke_width(width)))
                };
                drawn.map_err(|e| e.to_string())?;
            }
        }
        legend(root, &keys)
    })
}

/// A chart's axes, grid, labels and titles on `root`, below `rows` legend rows, the
/// same for every chart of the page.
fn axes<'a, 'b, X, Y>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    rows: u32,
    x: impl AsRangedCoord<CoordDescType = X, Value = f64>,
    y: impl AsRangedCoord<CoordDescType = Y, Value = f64>,
    x_label: &dyn Fn(&f64) -> String,
    y_label: &dyn Fn(&f64) -> String,
    (x_title, y_title): (&str, &str),
) -> Result<ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>, String>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .margin(MARGIN)
        .margin_top(top(rows))
        .margin_right(30)
        .x_label_area_size(X_AREA)
        .y_label_area_size(Y_AREA)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_label_formatter(x_label)
        .y_label_formatter(y_label)
        .x_desc(x_title)
        .y_desc(y_title)
        .light_line_style(RGBColor(240, 240, 240))
        .label_style(FONT)
        .axis_desc_style(FONT.into_font().color(&RGBColor(89, 99, 110)))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// The colour of requests that fell due and were never sent (dropped): no outcome's.
pub(super) const DROPPED: RGBColor = RGBColor(36, 41, 47);

pub(super) fn rate_chart(r: &LoadReport) -> String {
    let points = points(r);
    // The layers, bottom up: each outcome that occurred, then the dropped requests (due,
    // never sent), so the top edge is the rate the schedule asked for.
    // `None` stands for the dropped requests.
    let mut layers: Vec<Option<Outcome>> = Outcome::ALL.into_iter().filter(|o| r.outcomes[*o] > 0).map(Some).collect();
    if r.dropped > 0 {
        layers.push(None);
    }
    let name = |layer: &Option<Outcome>| layer.map_or(("dropped (never sent)", DROPPED), |o| (o.as_str(), colour(o)));
    let mut keys: Vec<Key> = layers.iter().map(name).map(|(n, c)| (n.to_string(), c, Swatch::Box)).collect();
    let plan = planned(r, &points, &mut keys);
    let count = |layer: Option<Outcome>, e: &TimelineEntry| layer.map_or(e.dropped, |o| e.outcomes[o]);
    let rate = |p: &Point, upto: usize| -> f64 {
        layers[..=upto].iter().map(|layer| count(*layer, &p.entry)).sum::<u64>() as f64 / p.seconds
    };
    let top = points.iter().map(|p| (p.entry.requests + p.entry.dropped) as f64 / p.seconds).fold(0.0, f64::max);
    let top = plan.iter().map(|p| p.1).fold(top, f64::max);
    svg(|root| {
        let y = 0.0..(top * 1.1).max(1.0);
        let titles = ("time since the start", "calls per second");
        let per_second = |y: &f64| format!("{}/s", trim3(*y));
        let mut chart = axes(root, rows(&keys), time_axis(&points), y, &seconds_label, &per_second, titles)?;
        // The highest layer first: each lower one paints over it, leaving its own band.
        for (i, layer) in layers.iter().enumerate().rev() {
            let steps = points.iter().flat_map(|p| [(p.start, rate(p, i)), (p.start + p.seconds, rate(p, i))]);
            let c = name(layer).1;
            chart.draw_series(AreaSeries::new(steps, 0.0, c.mix(0.85)).border_style(c)).map_err(|e| e.to_string())?;
        }
        if !plan.is_empty() {
            let dashed = DashedLineSeries::new(plan, 8, 5, PLANNED.stroke_width(2));
            chart.draw_series(dashed).map_err(|e| e.to_string())?;
        }
        legend(root, &keys)
    })
}

/// The planned rate's line (`--stages`), black on the stacked outcomes.
const PLANNED: RGBColor = RGBColor(0, 0, 0);

/// `--stages`: the planned rate over the chart's time axis, and its legend key; empty
/// without a plan.
fn planned(r: &LoadReport, points: &[Point], keys: &mut Vec<Key>) -> Vec<(f64, f64)> {
    let Some(stages) = &r.stages else { return Vec::new() };
    keys.push(("planned rate (--stages)".to_string(), PLANNED, Swatch::Line(2)));
    super::model::planned_rate(stages, time_axis(points).end)
}

/// `(1 / (1 - q), latency in seconds)` along the histogram, to p99.999.
pub(super) fn spectrum(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = h
        .iter_quantiles(4)
        .map(|v| {
            let q = v.quantile_iterated_to();
            let x = if q >= 1.0 { SPECTRUM_END } else { (1.0 / (1.0 - q)).min(SPECTRUM_END) };
            (x, h.highest_equivalent(v.value_iterated_to()) as f64 / 1e6)
        })
        .collect();
    out.dedup_by(|a, b| a.0 == b.0 && a.1 <= b.1);
    out
}

pub(super) fn percentile_label(x: &f64) -> String {
    match x.round() as u64 {
        1 => "0%".into(),
        10 => "90%".into(),
        100 => "99%".into(),
        1000 => "99.9%".into(),
        10_000 => "99.99%".into(),
        100_000 => "99.999%".into(),
        _ => String::new(),
    }
}

pub(super) fn spectrum_chart(shown: &Shown) -> String {
    let mut lines: Vec<Line> = Vec::new();
    let all = if shown.report.model == Model::Open { "all calls, latency from due" } else { "all calls" };
    // All calls widest and first, service time narrowest and last: where the lines are
    // one (a server that keeps up), each shows beside the one drawn on it.
    lines.push((all, RGBColor(9, 105, 218), 7, spectrum(&shown.latency)));
    if let Some(ok) = shown.ok_latency.as_ref().filter(|h| !h.is_empty()) {
        lines.push(("ok calls only", colour(Outcome::Ok), 4, spectrum(ok)));
    }
    if let Some(service) = &shown.service {
        lines.push(("service time, from send", RGBColor(130, 80, 223), 2, spectrum(service)));
    }
    lines_chart(lines)
}

/// The percentile spectra of `lines` on one chart, drawn in their order.
pub(super) fn lines_chart(mut lines: Vec<Line>) -> String {
    lines.retain(|l| !l.3.is_empty());
    let keys: Vec<Key> = lines.iter().map(|l| (l.0.to_string(), l.1, Swatch::Line(l.2.min(5)))).collect();
    let y = latency_axis(lines.iter().flat_map(|l| l.3.iter().map(|p| p.1)), rows(&keys));
    svg(|root| {
        let x = (1.0..SPECTRUM_END).log_scale();
        let titles = ("percentile (HdrHistogram's axis)", "latency");
        let mut chart = axes(root, rows(&keys), x, y, &percentile_label, &|v| short(*v), titles)?;
        for (_, c, width, points) in lines {
            chart.draw_series(LineSeries::new(points, c.stroke_width(width))).map_err(|e| e.to_string())?;
        }
        legend(root, &keys)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legends_wrap_above_the_plot() {
        let key = |n: &str| (n.to_string(), INK, Swatch::Box);
        assert_eq!(rows(&[]), 0);
        assert_eq!(rows(&[key("p50"), key("p90")]), 1);
        let many: Vec<Key> =
            Outcome::ALL.iter().map(|o| key(o.as_str())).chain([key("dropped (never sent)")]).collect();
        let places = key_places(&many);
        assert!(rows(&many) >= 2, "{places:?}");
        for (k, (_, x)) in many.iter().zip(&places) {
            assert!(x + 24 + (k.0.len() as u32 * 15 / 2) <= WIDTH - MARGIN, "{places:?}");
        }
        assert!(plot_height(rows(&many)) > 160);
    }
}
