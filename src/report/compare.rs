//! `--baseline`: is this run worse than the one before it, or is the difference noise?
//!
//! Each measure of two saved reports (latency percentiles of all calls, of ok calls,
//! service time and the phases; the error rate and each failing outcome's share; the
//! achieved rate) gets a change with a 95 % interval and a verdict: worse, better, or no
//! real change. A change counts only when it is real (its interval excludes zero) *and*
//! larger than the tolerance. docs/comparison.md states the method and its assumptions;
//! in short, successive seconds of a run are not independent, so the uncertainty comes
//! from the per-second timeline (its spread, with the sample size cut down by the
//! series' own lag-1 autocorrelation), and where a measure has no per-second series the
//! order-statistic interval of the histogram is widened by the same run's measured
//! design effect.

use std::path::PathBuf;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::histogram::percentile;
use super::model::{LoadReport, Model, Outcomes, Shown, TimelineEntry, secs};
use crate::call::Outcome;
use crate::util::fmt::human_secs;
use crate::util::units::{parse_share, round6};

/// The confidence of every interval the comparison gives.
pub const CONFIDENCE: f64 = 0.95;
/// The tolerance when `--tolerance` is not given.
pub const DEFAULT_TOLERANCE: &str = "5%";
/// The smallest change of a share (error rate, an outcome) that counts, whatever the
/// tolerance: one call in a thousand.
pub const MIN_SHARE_CHANGE: f64 = 0.001;
/// The smallest change of a latency that counts, whatever the tolerance: 0.1 ms, below
/// what a user of a login can notice and within what a shared machine's scheduling moves
/// between two runs of the same build.
pub const MIN_LATENCY_CHANGE: f64 = 1e-4;
/// The fewest calls beyond a percentile (n (1 − q)) that let it be judged: with fewer,
/// its interval has no upper end among the calls made.
pub const MIN_TAIL_CALLS: f64 = 5.0;

/// The flags that compare a run with a baseline and speak CI's formats, shared by
/// `load` and `report`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// A saved JSON report (`load --out`) to compare this run with: each measure gets a
    /// verdict, worse, better or no real change, with its 95 % interval; exit 1 when one
    /// is worse beyond --tolerance
    #[arg(long, value_name = "FILE", help_heading = "Comparison and CI")]
    pub baseline: Option<PathBuf>,

    /// With --baseline: the smallest relative change that counts (a change must also be
    /// real, its interval clear of zero); shares also need a change of 0.1 percentage point
    #[arg(allow_hyphen_values = true, long, value_name = "SHARE", default_value = DEFAULT_TOLERANCE, value_parser = parse_share,
          help_heading = "Comparison and CI")]
    pub tolerance: f64,

    /// With --baseline: also write the comparison as JSON (schemas/comparison.schema.json)
    #[arg(long, value_name = "FILE", help_heading = "Comparison and CI")]
    pub compare_out: Option<PathBuf>,

    /// Write a JUnit XML file: each threshold and each compared measure a test case
    #[arg(long, value_name = "FILE", help_heading = "Comparison and CI")]
    pub junit: Option<PathBuf>,

    /// Write a Markdown summary (for a CI job summary, e.g. $GITHUB_STEP_SUMMARY)
    #[arg(long, value_name = "FILE", help_heading = "Comparison and CI")]
    pub summary: Option<PathBuf>,
}

/// Two runs that cannot be compared honestly.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(
        "cannot compare a {}-model run with a {}-model baseline: they measure different things",
        model_name(*run),
        model_name(*baseline)
    )]
    Models { baseline: Model, run: Model },
    #[error(
        "cannot compare a run at {run} rps with a baseline at {baseline} rps: at another rate it is another experiment"
    )]
    Rates { baseline: f64, run: f64 },
    #[error(
        "cannot compare a run with {run} workers with a baseline with {baseline}: the closed model's load is its workers"
    )]
    Workers { baseline: u64, run: u64 },
    #[error("the {which} has no requests: nothing to compare")]
    Empty { which: &'static str },
}

fn model_name(m: Model) -> &'static str {
    match m {
        Model::Open => "open",
        Model::Closed => "closed",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Worse,
    Better,
    NoRealChange,
    /// Shown, not judged (a single call's value, or too little data).
    NotJudged,
}

impl Verdict {
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Worse => "worse",
            Verdict::Better => "better",
            Verdict::NoRealChange => "no real change",
            Verdict::NotJudged => "not judged",
        }
    }
}

/// What a measure's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Seconds,
    /// A share from 0 to 1; its change is in the same unit (0.01: one percentage point).
    Share,
    PerSecond,
    Count,
}

/// One measure of both runs. `change` is run minus baseline; `interval` is the 95 %
/// interval of that change; the relative ones divide by the baseline's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compared {
    pub measure: String,
    pub unit: Unit,
    pub baseline: f64,
    pub run: f64,
    pub change: f64,
    pub relative_change: Option<f64>,
    pub interval: Option<[f64; 2]>,
    pub relative_interval: Option<[f64; 2]>,
    pub verdict: Verdict,
    /// Why it is not judged, or what the verdict rests on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a compared run was, as far as comparability goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub target: String,
    pub model: Model,
    pub target_rps: Option<f64>,
    pub concurrency: u64,
    pub duration_seconds: f64,
    pub requests: u64,
    pub started_at: Option<String>,
}

impl RunSummary {
    fn of(r: &LoadReport) -> RunSummary {
        RunSummary {
            target: r.target.clone(),
            model: r.model,
            target_rps: r.target_rps,
            concurrency: r.concurrency,
            duration_seconds: r.duration_seconds,
            requests: r.requests,
            started_at: r.started_at.clone(),
        }
    }
}

/// The comparison: the JSON object of `--compare-out` (schemas/comparison.schema.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline: RunSummary,
    pub run: RunSummary,
    pub tolerance: f64,
    pub confidence: f64,
    /// What differs between the runs besides the measures, said loudly.
    pub differences: Vec<String>,
    pub measures: Vec<Compared>,
    /// The measures found worse beyond the tolerance.
    pub worse: Vec<String>,
    pub passed: bool,
}

impl Comparison {
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a comparison serializes") + "\n"
    }
}

/// An estimate of one run's measure: its value, standard error and degrees of freedom
/// (infinite for a normal approximation).
#[derive(Debug, Clone, Copy)]
struct Estimate {
    value: f64,
    se: f64,
    df: f64,
}

/// Which way is bad.
#[derive(Clone, Copy, PartialEq)]
enum Bad {
    Higher,
    Lower,
}

/// Compares `run` with `baseline`, or says why they cannot be compared honestly.
pub fn compare(baseline: &Shown, run: &Shown, tolerance: f64) -> Result<Comparison, CompareError> {
    let (b, r) = (&baseline.report, &run.report);
    comparable(b, r.model, r.target_rps, r.concurrency)?;
    if r.requests == 0 {
        return Err(CompareError::Empty { which: "run" });
    }
    let mut differences = Vec::new();
    if b.target != r.target {
        differences.push(format!("the targets differ: baseline {}, run {}", b.target, r.target));
    }
    let (db, dr) = (b.duration_seconds, r.duration_seconds);
    if (db - dr).abs() > 0.1 * db.max(dr) {
        differences.push(format!("the durations differ: baseline {db:.1} s, run {dr:.1} s"));
    }
    for (which, s) in [("baseline", baseline), ("run", run)] {
        if series(s, |e| Some(e.latency_seconds.p50)).is_none() {
            differences.push(format!(
                "the {which} has too short a timeline (under {MIN_SERIES} seconds with calls): its intervals assume \
                 independent calls and are too narrow"
            ));
        }
    }
    let (eb, er) = (Estimator::new(baseline), Estimator::new(run));
    let mut measures = Vec::new();
    let mut add = |name: String, bad: Bad, unit: Unit, x: Option<Estimate>, y: Option<Estimate>| {
        if let (Some(x), Some(y)) = (x, y) {
            measures.push(judge(name, bad, unit, x, y, tolerance));
        }
    };
    add("achieved rate".into(), Bad::Lower, Unit::PerSecond, eb.rate(), er.rate());
    add("error rate".into(), Bad::Higher, Unit::Share, eb.share(&eb, None), er.share(&eb, None));
    for o in Outcome::ALL.into_iter().filter(|&o| o != Outcome::Ok) {
        if b.outcomes[o] + r.outcomes[o] > 0 {
            add(o.to_string(), Bad::Higher, Unit::Share, eb.share(&eb, Some(o)), er.share(&eb, Some(o)));
        }
    }
    if b.dropped + r.dropped > 0 {
        add("dropped".into(), Bad::Higher, Unit::Share, Some(eb.dropped()), Some(er.dropped()));
    }
    for (label, q) in QUANTILES {
        add(format!("latency {label}"), Bad::Higher, Unit::Seconds, eb.latency(q), er.latency(q));
    }
    if let (Some(ob), Some(or)) = (&baseline.ok_latency, &run.ok_latency) {
        for (label, q) in QUANTILES {
            add(format!("ok latency {label}"), Bad::Higher, Unit::Seconds, eb.widened(ob, q), er.widened(or, q));
        }
    }
    if let (Some(sb), Some(sr)) = (&baseline.service, &run.service) {
        for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
            add(format!("service time {label}"), Bad::Higher, Unit::Seconds, eb.widened(sb, q), er.widened(sr, q));
        }
    }
    if let (Some(pb), Some(pr)) = (&baseline.phases, &run.phases) {
        for (phase, name) in pb.iter().map(|(p, _)| (p, p.to_string())) {
            for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
                add(
                    format!("{name} {label}"),
                    Bad::Higher,
                    Unit::Seconds,
                    eb.widened(&pb[phase], q),
                    er.widened(&pr[phase], q),
                );
            }
        }
    }
    measures.push(shown_only("latency max", Unit::Seconds, secs(baseline.latency.max()), secs(run.latency.max())));
    measures.push(shown_only("requests", Unit::Count, b.requests as f64, r.requests as f64));
    let worse: Vec<String> =
        measures.iter().filter(|m| m.verdict == Verdict::Worse).map(|m| m.measure.clone()).collect();
    Ok(Comparison {
        baseline: RunSummary::of(b),
        run: RunSummary::of(r),
        tolerance,
        confidence: CONFIDENCE,
        differences,
        passed: worse.is_empty(),
        worse,
        measures,
    })
}

/// Whether a run of this model, planned rate and concurrency can be compared with
/// `baseline` at all: `load` asks before its first request.
pub fn comparable(b: &LoadReport, model: Model, target_rps: Option<f64>, concurrency: u64) -> Result<(), CompareError> {
    if b.model != model {
        return Err(CompareError::Models { baseline: b.model, run: model });
    }
    if b.requests == 0 {
        return Err(CompareError::Empty { which: "baseline" });
    }
    match (b.target_rps, target_rps) {
        (Some(x), Some(y)) if (x - y).abs() > 0.01 * x.max(y) => Err(CompareError::Rates { baseline: x, run: y }),
        _ if model == Model::Closed && b.concurrency != concurrency => {
            Err(CompareError::Workers { baseline: b.concurrency, run: concurrency })
        }
        _ => Ok(()),
    }
}

/// The latency percentiles compared, all calls and ok calls alike.
const QUANTILES: [(&str, f64); 4] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)];
/// The fewest seconds with calls that make a series to estimate spread from.
const MIN_SERIES: usize = 5;

fn shown_only(name: &str, unit: Unit, baseline: f64, run: f64) -> Compared {
    let change = run - baseline;
    Compared {
        measure: name.to_string(),
        unit,
        baseline: round6(baseline),
        run: round6(run),
        change: round6(change),
        relative_change: (baseline > 0.0).then(|| round6(change / baseline)),
        interval: None,
        relative_interval: None,
        verdict: Verdict::NotJudged,
        note: Some(
            if unit == Unit::Count { "the plan's, not the server's" } else { "one call's value: no interval" }.into(),
        ),
    }
}

/// The verdict on one measure from the two runs' estimates.
fn judge(name: String, bad: Bad, unit: Unit, b: Estimate, r: Estimate, tolerance: f64) -> Compared {
    let change = r.value - b.value;
    let se = (b.se * b.se + r.se * r.se).sqrt();
    // Welch–Satterthwaite degrees of freedom.
    let df = if se == 0.0 {
        f64::INFINITY
    } else {
        let part = |e: Estimate| if e.df.is_finite() { e.se.powi(4) / e.df } else { 0.0 };
        let denominator = part(b) + part(r);
        if denominator == 0.0 { f64::INFINITY } else { se.powi(4) / denominator }
    };
    let half = t_975(df) * se;
    let (lo, hi) = (change - half, change + half);
    if !se.is_finite() {
        let mut shown = shown_only(&name, unit, b.value, r.value);
        shown.note = Some(format!("fewer than {MIN_TAIL_CALLS} calls beyond it in a run: too few to judge"));
        return shown;
    }
    let least = match unit {
        Unit::Share => (tolerance * b.value).max(MIN_SHARE_CHANGE),
        Unit::Seconds => (tolerance * b.value).max(MIN_LATENCY_CHANGE),
        _ => tolerance * b.value.abs(),
    };
    let (worse, better) = match bad {
        Bad::Higher => (lo > 0.0 && change > least, hi < 0.0 && -change > least),
        Bad::Lower => (hi < 0.0 && -change > least, lo > 0.0 && change > least),
    };
    let verdict = if worse {
        Verdict::Worse
    } else if better {
        Verdict::Better
    } else {
        Verdict::NoRealChange
    };
    let relative = (b.value > 0.0).then_some(b.value);
    Compared {
        measure: name,
        unit,
        baseline: round6(b.value),
        run: round6(r.value),
        change: round6(change),
        relative_change: relative.map(|v| round6(change / v)),
        interval: Some([round6(lo), round6(hi)]),
        relative_interval: relative.map(|v| [round6(lo / v), round6(hi / v)]),
        verdict,
        note: None,
    }
}

/// The 97.5th percentile of Student's t with `df` degrees of freedom (two-sided 95 %).
fn t_975(df: f64) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    if !df.is_finite() {
        return 1.96;
    }
    let df = df.max(1.0);
    if df >= 30.0 {
        // The first Cornish–Fisher term: 1.96 + (z³ + z) / (4 df).
        return 1.96 + 2.373 / df;
    }
    let (i, frac) = (df.floor() as usize, df.fract());
    let at = |k: usize| TABLE[k.clamp(1, 30) - 1];
    at(i) + frac * (at(i + 1) - at(i))
}

/// The mean of a series, its standard error and degrees of freedom, with the sample
/// size cut to n (1 − ρ) / (1 + ρ) for the series' lag-1 autocorrelation ρ (clamped
/// to 0 … 0.9): successive seconds of one run are not independent samples.
fn mean_and_error(xs: &[f64]) -> Estimate {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let dev: Vec<f64> = xs.iter().map(|x| x - mean).collect();
    let ss: f64 = dev.iter().map(|d| d * d).sum();
    let rho = if ss > 0.0 { dev.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / ss } else { 0.0 };
    let rho = rho.clamp(0.0, 0.9);
    let n_eff = (n * (1.0 - rho) / (1.0 + rho)).max(2.0);
    let variance = ss / (n - 1.0);
    Estimate { value: mean, se: (variance / n_eff).sqrt(), df: n_eff - 1.0 }
}

/// The timeline's full intervals with calls (a first or last interval with under half
/// the median's calls is partial and left out), mapped by `f`; `None` when fewer than
/// [`MIN_SERIES`] remain.
fn series(s: &Shown, f: impl Fn(&TimelineEntry) -> Option<f64>) -> Option<Vec<f64>> {
    let entries = &s.report.timeline;
    let mut counts: Vec<u64> = entries.iter().map(|e| e.requests + e.dropped).filter(|&n| n > 0).collect();
    counts.sort_unstable();
    let median = *counts.get(counts.len() / 2)?;
    let xs: Vec<f64> =
        entries.iter().filter(|e| 2 * (e.requests + e.dropped) >= median && e.requests > 0).filter_map(f).collect();
    (xs.len() >= MIN_SERIES).then_some(xs)
}

/// One run's estimates, with its design effect for latency: how much wider the
/// spread of its per-second percentiles is than independent calls would make it.
struct Estimator<'a> {
    shown: &'a Shown,
    /// (quantile, design effect) for p50, p90 and p99.
    design: Vec<(f64, f64)>,
}

impl<'a> Estimator<'a> {
    fn new(shown: &'a Shown) -> Estimator<'a> {
        let mut design = Vec::new();
        for q in [0.5, 0.9, 0.99] {
            let (Some(series), Some(os)) = (latency_series(shown, q), order_error(&shown.latency, q)) else { continue };
            let effect = if os > 0.0 && os.is_finite() { (series.se / os).powi(2) } else { 1.0 };
            design.push((q, effect.clamp(1.0, 1e4)));
        }
        Estimator { shown, design }
    }

    /// The design effect for quantile `q`: that of the nearest of p50, p90, p99 (1
    /// without a timeline).
    fn effect(&self, q: f64) -> f64 {
        self.design.iter().min_by(|a, b| (a.0 - q).abs().total_cmp(&(b.0 - q).abs())).map_or(1.0, |&(_, effect)| effect)
    }

    /// A latency percentile of all calls: the histogram's value; the error from the
    /// per-second series where the timeline has it (p50, p90, p99), else widened.
    fn latency(&self, q: f64) -> Option<Estimate> {
        let value = quantile(&self.shown.latency, q)?;
        match latency_series(self.shown, q) {
            Some(series) => {
                let os = order_error(&self.shown.latency, q).unwrap_or(0.0);
                Some(Estimate { value, se: series.se.max(os), df: series.df })
            }
            None => self.widened(&self.shown.latency, q),
        }
    }

    /// A percentile of `h` with the order-statistic error widened by the design effect.
    fn widened(&self, h: &Histogram<u64>, q: f64) -> Option<Estimate> {
        let value = quantile(h, q)?;
        let se = order_error(h, q)? * self.effect(q).sqrt();
        Some(Estimate { value, se, df: f64::INFINITY })
    }

    /// The achieved rate from the per-second request counts.
    fn rate(&self) -> Option<Estimate> {
        let step = self.shown.report.timeline_interval_seconds.unwrap_or(1) as f64;
        let xs = series(self.shown, |e| Some(e.requests as f64 / step))?;
        let mut e = mean_and_error(&xs);
        e.value = self.shown.report.achieved_rps;
        Some(e)
    }

    /// The share of due requests that were not ok (`outcome` `None`) or that ended in
    /// `outcome`, with its binomial error inflated by the *baseline's* overdispersion:
    /// the noise a healthy run shows, so that a failure window in the run cannot hide
    /// itself by being noisy.
    fn share(&self, baseline: &Estimator, outcome: Option<Outcome>) -> Option<Estimate> {
        let r = &self.shown.report;
        let (count, of) = counts(r.requests, r.dropped, &r.outcomes, outcome);
        if of == 0 {
            return None;
        }
        let p = count as f64 / of as f64;
        let phi = baseline.dispersion(outcome);
        Some(Estimate { value: p, se: (phi * p * (1.0 - p) / of as f64).sqrt(), df: f64::INFINITY })
    }

    /// The share of due requests dropped, binomial.
    fn dropped(&self) -> Estimate {
        let r = &self.shown.report;
        let due = (r.requests + r.dropped).max(1) as f64;
        let p = r.dropped as f64 / due;
        Estimate { value: p, se: (p * (1.0 - p) / due).sqrt(), df: f64::INFINITY }
    }

    /// How much more the per-second counts of a share vary than binomial counts would
    /// (Pearson's χ² over its degrees of freedom), at least 1.
    fn dispersion(&self, outcome: Option<Outcome>) -> f64 {
        let r = &self.shown.report;
        let (count, of) = counts(r.requests, r.dropped, &r.outcomes, outcome);
        let p = count as f64 / of.max(1) as f64;
        if p <= 0.0 || p >= 1.0 {
            return 1.0;
        }
        let cells: Vec<(f64, f64)> = r
            .timeline
            .iter()
            .filter(|e| e.requests > 0)
            .map(|e| {
                let (k, m) = counts(e.requests, e.dropped, &e.outcomes, outcome);
                (k as f64, m as f64)
            })
            .collect();
        if cells.len() < MIN_SERIES {
            return 1.0;
        }
        let chi2: f64 = cells.iter().map(|(k, m)| (k - m * p).powi(2) / (m * p * (1.0 - p))).sum();
        (chi2 / (cells.len() - 1) as f64).clamp(1.0, 1e4)
    }
}

/// (count, of) for a share: `of` is the due requests (sent and dropped); the count is
/// the calls that ended in `outcome`, or (`None`) the due requests that were not ok.
fn counts(requests: u64, dropped: u64, outcomes: &Outcomes, outcome: Option<Outcome>) -> (u64, u64) {
    let due = requests + dropped;
    match outcome {
        Some(o) => (outcomes[o], due),
        None => (due.saturating_sub(outcomes[Outcome::Ok]), due),
    }
}

/// The per-second series of an all-calls percentile the timeline keeps.
fn latency_series(s: &Shown, q: f64) -> Option<Estimate> {
    let pick: fn(&TimelineEntry) -> f64 = match q {
        0.5 => |e| e.latency_seconds.p50,
        0.9 => |e| e.latency_seconds.p90,
        0.99 => |e| e.latency_seconds.p99,
        _ => return None,
    };
    series(s, |e| Some(pick(e))).map(|xs| mean_and_error(&xs))
}

/// The histogram's `q` quantile in seconds; `None` when it is empty.
fn quantile(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| secs(percentile(h, q * 100.0)))
}

/// The standard error of the `q` quantile of `h` if its calls were independent: the
/// distance between the values at the ranks n q ± 1.96 √(n q (1 − q)), over 2 × 1.96;
/// at least the histogram's resolution (three significant digits); infinite when fewer
/// than [`MIN_TAIL_CALLS`] calls lie beyond the percentile.
fn order_error(h: &Histogram<u64>, q: f64) -> Option<f64> {
    if h.len() < 2 {
        return None;
    }
    if (h.len() as f64 * (1.0 - q)) < MIN_TAIL_CALLS {
        return Some(f64::INFINITY);
    }
    let delta = 1.96 * (q * (1.0 - q) / h.len() as f64).sqrt();
    let lo = secs(percentile(h, (q - delta).max(0.0) * 100.0));
    let hi = secs(percentile(h, (q + delta).min(1.0) * 100.0));
    let resolution = secs(percentile(h, q * 100.0)) * 5e-4;
    Some(((hi - lo) / (2.0 * 1.96)).max(resolution))
}

/// A change as people read it: `+14.2 %` of a latency, `+0.52 pp` of a share.
pub fn show_change(m: &Compared) -> String {
    let pct = |x: f64| format!("{:+.1} %", x * 100.0);
    match (m.unit, m.relative_change, m.relative_interval, m.interval) {
        (Unit::Share, _, _, Some([lo, hi])) => {
            format!("{:+.2} pp (95 % interval {:+.2} … {:+.2} pp)", m.change * 100.0, lo * 100.0, hi * 100.0)
        }
        (_, Some(rel), Some([lo, hi]), _) => format!("{} (95 % interval {} … {})", pct(rel), pct(lo), pct(hi)),
        (_, Some(rel), None, _) => pct(rel),
        _ => format!("{:+}", m.change),
    }
}

/// A value of a measure as people read it.
pub fn show_value(unit: Unit, x: f64) -> String {
    match unit {
        Unit::Seconds => human_secs(x),
        Unit::Share => format!("{:.2} %", x * 100.0),
        Unit::PerSecond => format!("{x:.2}/s"),
        Unit::Count => format!("{x:.0}"),
    }
}

/// The comparison for the terminal.
pub fn render(c: &Comparison) -> String {
    let mut out = String::new();
    let verdict = if c.passed { "no measure is worse".to_string() } else { format!("WORSE: {}", c.worse.join(", ")) };
    out.push_str(&format!(
        "Compared with the baseline ({} requests, started {}): {verdict}\n  a change counts when its {:.0} % interval \
         is clear of zero and it is larger than the tolerance ({:.1} %)\n",
        c.baseline.requests,
        c.baseline.started_at.as_deref().unwrap_or("at an unknown time"),
        c.confidence * 100.0,
        c.tolerance * 100.0
    ));
    for d in &c.differences {
        out.push_str(&format!("  NOTE: {d}\n"));
    }
    let width = c.measures.iter().map(|m| m.measure.len()).max().unwrap_or(0);
    out.push_str(&format!("  {:width$}  {:>12}  {:>12}  {:<15} change\n", "measure", "baseline", "run", "verdict"));
    for m in &c.measures {
        let change = match m.verdict {
            Verdict::NotJudged => format!("{} ({})", show_change(m), m.note.as_deref().unwrap_or("")),
            _ => show_change(m),
        };
        out.push_str(&format!(
            "  {:width$}  {:>12}  {:>12}  {:<15} {change}\n",
            m.measure,
            show_value(m.unit, m.baseline),
            show_value(m.unit, m.run),
            m.verdict.words()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_table_and_approach_the_normal() {
        assert!((t_975(1.0) - 12.706).abs() < 1e-9);
        assert!((t_975(9.0) - 2.262).abs() < 1e-9);
        assert!((t_975(9.5) - 2.245).abs() < 1e-3);
        assert!((t_975(60.0) - 2.000).abs() < 2e-3, "{}", t_975(60.0));
        assert_eq!(t_975(f64::INFINITY), 1.96);
    }

    #[test]
    fn autocorrelation_shrinks_the_sample() {
        // The same ten values, alternating (no autocorrelation) and in two runs (strong).
        let alternating = [1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0];
        let blocks = [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0];
        let (a, b) = (mean_and_error(&alternating), mean_and_error(&blocks));
        assert_eq!(a.value, b.value);
        assert!(b.se > 2.0 * a.se, "{} vs {}", b.se, a.se);
        assert!(b.df < a.df);
    }

    #[test]
    fn a_change_must_be_real_and_beyond_the_tolerance() {
        let e = |value, se| Estimate { value, se, df: f64::INFINITY };
        let j = |b, r| judge("m".into(), Bad::Higher, Unit::Seconds, b, r, 0.05).verdict;
        assert_eq!(j(e(0.020, 0.0001), e(0.023, 0.0001)), Verdict::Worse);
        assert_eq!(j(e(0.023, 0.0001), e(0.020, 0.0001)), Verdict::Better);
        // Real, but 1 %: under the tolerance.
        assert_eq!(j(e(0.020, 0.00001), e(0.0202, 0.00001)), Verdict::NoRealChange);
        // Large, but noise.
        assert_eq!(j(e(0.020, 0.004), e(0.024, 0.004)), Verdict::NoRealChange);
        // Throughput is bad when it falls.
        let rate = judge("r".into(), Bad::Lower, Unit::PerSecond, e(200.0, 0.5), e(150.0, 0.5), 0.05);
        assert_eq!(rate.verdict, Verdict::Worse);
        // A share needs a tenth of a percentage point at least.
        let share = |b, r| judge("s".into(), Bad::Higher, Unit::Share, e(b, 0.0), e(r, 0.0), 0.05).verdict;
        assert_eq!(share(0.0, 0.0005), Verdict::NoRealChange);
        assert_eq!(share(0.0, 0.2), Verdict::Worse);
    }
}
