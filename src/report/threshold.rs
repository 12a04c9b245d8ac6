//! `--threshold EXPR`: the pass/fail rules that decide the exit code of `load` and
//! `report`. Owns the grammar (`METRIC OP VALUE[UNIT]`) and the evaluation against a
//! finished run; a malformed rule is rejected while the flags are parsed, before any
//! request is sent, with a message that spells the grammar out.

use crate::util::units::round6;
use std::fmt;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::histogram::percentile;

/// What a grammar error ends with: the shape of a rule, short enough for one line.
pub const GRAMMAR: &str = "expected METRIC OP VALUE, e.g. p99<300ms, error_rate<=1%, rps>=49, http2>=100% \
     (docs/commands.md#load)";

/// What an unknown metric's error ends with, in place of [`GRAMMAR`].
pub const METRICS: &str = "the metrics are pNN (0 < NN < 100), max, mean (ok_/then_ too), error_rate, \
     journey_error_rate, dropped, rps, http2 (docs/commands.md#load)";

/// The metrics a misspelt name is held against for a did-you-mean.
const NAMES: [&str; 12] =
    ["p50", "p90", "p95", "p99", "p99.9", "max", "mean", "error_rate", "journey_error_rate", "dropped", "rps", "http2"];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid threshold {expr:?}: {why}")]
pub struct ThresholdError {
    pub expr: String,
    /// What is wrong and what was expected.
    pub why: String,
}

/// What a threshold looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency percentile (p99 → 99.0).
    Percentile(f64),
    Max,
    Mean,
    /// The share of due requests that got no `ok`: calls with another outcome, and
    /// dropped requests.
    ErrorRate,
    /// With `--then`: the share of due journeys that did not end with the next call
    /// accepted.
    JourneyErrorRate,
    /// The share of due requests that were dropped (never sent).
    Dropped,
    /// The achieved request rate.
    Rps,
    /// The share of answered calls whose answer came over HTTP/2.
    Http2,
}

impl Metric {
    fn parse(name: &str) -> Option<Metric> {
        match name {
            "max" => Some(Metric::Max),
            "mean" => Some(Metric::Mean),
            "error_rate" => Some(Metric::ErrorRate),
            "journey_error_rate" => Some(Metric::JourneyErrorRate),
            "dropped" => Some(Metric::Dropped),
            "rps" => Some(Metric::Rps),
            "http2" => Some(Metric::Http2),
            _ => {
                let p: f64 = name.strip_prefix('p')?.replace('_', ".").parse().ok()?;
                (p > 0.0 && p < 100.0).then_some(Metric::Percentile(p))
            }
        }
    }

    /// Why `name` is no metric, on one line: p100 is the max, a percentile out of range
    /// says the range, a near miss gets a did-you-mean.
    fn unknown(name: &str) -> String {
        let lower = name.to_ascii_lowercase();
        if lower != name && Metric::parse(&lower).is_some() {
            return format!("unknown metric {name:?}: did you mean {lower}?");
        }
        let percentile = name.strip_prefix('p').and_then(|p| p.replace('_', ".").parse::<f64>().ok());
        match percentile {
            Some(100.0) => {
                format!("{name} is the slowest call: write max instead (a percentile is above 0 and below 100)")
            }
            Some(_) => format!("percentile {name} is out of range: a percentile is above 0 and below 100"),
            None => match NAMES.iter().filter_map(|known| Some((near(name, known)?, known))).min() {
                Some((_, known)) => {
                    format!("unknown metric {name:?}: did you mean {known}? (the metrics: docs/commands.md#load)")
                }
                None => format!("unknown metric {name:?}; {METRICS}"),
            },
        }
    }

    fn is_latency(self) -> bool {
        matches!(self, Metric::Percentile(_) | Metric::Max | Metric::Mean)
    }

    /// A share from 0 to 1, given as one or as a percentage.
    fn is_share(self) -> bool {
        matches!(self, Metric::ErrorRate | Metric::JourneyErrorRate | Metric::Dropped | Metric::Http2)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
        }
    }
}

/// One parsed rule. `value` is in the base unit of its metric: seconds for latency, a
/// share from 0 to 1 for `error_rate`, requests per second for `rps`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub expr: String,
    pub metric: Metric,
    /// A latency metric of `ok` calls only (`ok_p99`), which fast failures cannot flatter.
    pub ok_only: bool,
    /// A latency metric of the `--then` call (`then_p99`).
    pub then: bool,
    pub op: Op,
    pub value: f64,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expr)
    }
}

/// What a run measured, as far as thresholds care.
pub struct Facts<'a> {
    /// Latency in microseconds.
    pub latency: &'a Histogram<u64>,
    /// Latency of `ok` calls in microseconds; `None` in reports written before it.
    pub ok_latency: Option<&'a Histogram<u64>>,
    /// Latency of the `--then` calls in microseconds; `None` without `--then`.
    pub then_latency: Option<&'a Histogram<u64>>,
    /// Journeys that ended with the `--then` call accepted; `None` without `--then`.
    pub journeys_ok: Option<u64>,
    pub requests: u64,
    pub ok: u64,
    /// Due requests never sent.
    pub dropped: u64,
    pub achieved_rps: f64,
    /// Calls that got an answer whose HTTP version is known (the report's
    /// `http_versions` added up), and those of them that came over HTTP/2.
    pub answered: u64,
    pub http2: u64,
}

/// One rule judged; the `thresholds` entries of the JSON report. `actual` is `None`
/// when the run has nothing to judge it on (no request was recorded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    pub expr: String,
    pub passed: bool,
    pub actual: Option<f64>,
}

impl Threshold {
    /// Parses `p99<300ms`, `p99.9 <= 1s`, `error_rate<1%`, `error_rate<0.01`, `rps>=49.5`.
    pub fn parse(s: &str) -> Result<Threshold, ThresholdError> {
        let expr = s.trim().to_string();
        let err = |why: &str| ThresholdError { expr: expr.clone(), why: format!("{why}; {GRAMMAR}") };
        let at = expr.find(['<', '>']).ok_or_else(|| err("no operator"))?;
        let name = expr[..at].trim();
        let rest = &expr[at..];
        let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else {
            (Op::Gt, &rest[1..])
        };
        if name.is_empty() {
            return Err(err("no metric before the operator"));
        }
        let (ok_only, then, bare) = match (name.strip_prefix("ok_"), name.strip_prefix("then_")) {
            (Some(bare), _) => (true, false, bare),
            (_, Some(bare)) => (false, true, bare),
            _ => (false, false, name),
        };
        let metric =
            Metric::parse(bare).ok_or_else(|| ThresholdError { expr: expr.clone(), why: Metric::unknown(bare) })?;
        if (ok_only || then) && !metric.is_latency() {
            let prefix = if ok_only { "ok_" } else { "then_" };
            return Err(err(&format!("{prefix} goes with a latency metric only, not {bare}")));
        }
        let value = value.trim();
        let split = value.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(value.len());
        let (number, unit) = value.split_at(split);
        if number.is_empty() {
            return Err(err("no number after the operator"));
        }
        let n: f64 = number.parse().map_err(|_| err(&format!("{number:?} is not a number")))?;
        let value = match (metric, unit.trim()) {
            (m, "us" | "µs") if m.is_latency() => n / 1e6,
            (m, "ms") if m.is_latency() => n / 1000.0,
            (m, "s") if m.is_latency() => n,
            (m, "") if m.is_latency() => return Err(err("a latency needs a unit: us, ms or s")),
            (m, "%") if m.is_share() => n / 100.0,
            (m, "") if m.is_share() && n <= 1.0 => n,
            (m, "") if m.is_share() => {
                return Err(err("a fraction is at most 1; write a percentage with %"));
            }
            (Metric::Rps, "") => n,
            (_, unit) => return Err(err(&format!("unit {unit:?} does not fit {name}"))),
        };
        Ok(Threshold { expr, metric, ok_only, then, op, value })
    }

    /// The measured value, in the metric's base unit; `None` without requests (or,
    /// for `ok_` rules, without ok calls; for `then_` and journey rules, without
    /// `--then` calls; for `http2`, without answers).
    pub fn actual(&self, facts: &Facts) -> Option<f64> {
        let h = match (self.ok_only, self.then) {
            (true, _) => facts.ok_latency?,
            (_, true) => facts.then_latency?,
            _ => facts.latency,
        };
        let secs = |us: u64| us as f64 / 1e6;
        let due = facts.requests + facts.dropped;
        match self.metric {
            Metric::Rps => Some(facts.achieved_rps),
            Metric::Http2 if facts.answered == 0 => None,
            Metric::Http2 => Some(facts.http2.min(facts.answered) as f64 / facts.answered as f64),
            Metric::ErrorRate | Metric::JourneyErrorRate | Metric::Dropped if due == 0 => None,
            Metric::ErrorRate => Some(due.saturating_sub(facts.ok) as f64 / due as f64),
            Metric::JourneyErrorRate => Some(due.saturating_sub(facts.journeys_ok?) as f64 / due as f64),
            Metric::Dropped => Some(facts.dropped as f64 / due as f64),
            _ if facts.requests == 0 => None,
            _ if h.is_empty() => None,
            Metric::Percentile(p) => Some(secs(percentile(h, p))),
            Metric::Max => Some(secs(h.max())),
            Metric::Mean => Some(h.mean() / 1e6),
        }
    }

    pub fn judge(&self, facts: &Facts) -> Judged {
        let actual = self.actual(facts);
        let passed = actual.is_some_and(|a| self.op.holds(a, self.value));
        Judged { expr: self.expr.clone(), passed, actual: actual.map(round6) }
    }

    /// The measured value as people read this metric: `123.4 ms`, `0.67 %`, `49.98/s`.
    pub fn show(&self, actual: Option<f64>) -> String {
        match (self.metric, actual) {
            (_, None) if self.ok_only => "no ok calls".to_string(),
            (_, None) if self.then || self.metric == Metric::JourneyErrorRate => "no --then calls".to_string(),
            (Metric::Http2, None) => "no answers".to_string(),
            (_, None) => "no requests".to_string(),
            (m, Some(a)) if m.is_share() => format!("{:.2} %", a * 100.0),
            (Metric::Rps, Some(a)) => format!("{a:.2}/s"),
            (_, Some(a)) => crate::util::fmt::human_secs(a),
        }
    }
}

/// How near a misspelt `name` is to `known`, when near enough for a did-you-mean: 0
/// when they start alike (`errors`, `drop`), else their edit distance up to 2.
fn near(name: &str, known: &str) -> Option<usize> {
    let common = name.chars().zip(known.chars()).take_while(|(a, b)| a == b).count();
    if common >= 4 {
        return Some(0);
    }
    Some(edits(name, known)).filter(|d| *d <= 2)
}

/// The Levenshtein distance of two short names.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let replaced = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = replaced.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Threshold {
        Threshold::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn grammar() {
        assert_eq!(
            t("p99<300ms"),
            Threshold {
                expr: "p99<300ms".into(),
                metric: Metric::Percentile(99.0),
                ok_only: false,
                then: false,
                op: Op::Lt,
                value: 0.3
            }
        );
        assert_eq!(t(" p99.9 <= 1.5s ").metric, Metric::Percentile(99.9));
        assert_eq!(t("p99.9<=1.5s").value, 1.5);
        assert_eq!(t("p50>1ms").op, Op::Gt);
        assert_eq!(t("p50>250us").value, 0.000_25);
        assert_eq!(t("p50>250µs").value, 0.000_25);
        assert_eq!(t("p95>=2s").op, Op::Ge);
        assert_eq!(t("max<1s").metric, Metric::Max);
        assert_eq!(t("mean<20ms").metric, Metric::Mean);
        assert_eq!(t("error_rate<=1%").value, 0.01);
        assert_eq!(t("error_rate<0.05").value, 0.05);
        assert_eq!(t("rps>=49.5").value, 49.5);
        assert_eq!(t("p90 < 250ms").expr, "p90 < 250ms");
        let ok = t("ok_p99.9<2s");
        assert_eq!((ok.metric, ok.ok_only, ok.value), (Metric::Percentile(99.9), true, 2.0));
        assert!(t("ok_max<1s").ok_only && t("ok_p99_9<1s").ok_only && !t("max<1s").ok_only);
    }

    #[test]
    fn malformed_rules_name_the_grammar() {
        for (bad, why) in [
            ("p99", "no operator"),
            ("<300ms", "no metric"),
            ("p99<", "no number"),
            ("p99<<3ms", "no number"),
            ("p99<300", "needs a unit"),
            ("p99<300kg", "unit \"kg\""),
            ("error_rate<5", "at most 1"),
            ("rps>10ms", "does not fit"),
            ("p99<1.2.3s", "not a number"),
            ("ok_error_rate<1%", "latency metric only"),
            ("ok_rps>1", "latency metric only"),
        ] {
            let e = refused(bad, why);
            assert!(e.contains("expected METRIC OP VALUE") && e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    /// The error of a refused rule, which says `why` on one short line.
    fn refused(bad: &str, why: &str) -> String {
        let e = Threshold::parse(bad).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
        assert!(e.len() < 200, "one short line: {e}");
        e
    }

    /// p100 used to be accepted as a percentile (it is the max), and an unknown metric
    /// got a 500-character line.
    #[test]
    fn unknown_metrics_get_one_short_line_and_p100_is_refused() {
        for (bad, why) in [
            ("p100<1s", "p100 is the slowest call: write max instead"),
            ("ok_p100<1s", "p100 is the slowest call: write max"),
            ("p101<1s", "percentile p101 is out of range: a percentile is above 0 and below 100"),
            ("p0<1s", "out of range"),
            ("latency<1s", "unknown metric \"latency\"; the metrics are pNN"),
            ("ok_<1s", "unknown metric \"\"; the metrics are"),
            ("p999<1s", "out of range"),
            ("P99<1s", "unknown metric \"P99\": did you mean p99?"),
            ("errors<1%", "unknown metric \"errors\": did you mean error_rate?"),
            ("error-rate<1%", "did you mean error_rate?"),
            ("mx<1s", "did you mean max?"),
            ("drop<1%", "did you mean dropped?"),
            ("rsp>1", "did you mean rps?"),
        ] {
            refused(bad, why);
        }
        assert_eq!(t("p99.99<1s").metric, Metric::Percentile(99.99));
    }

    fn histogram(values_ms: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in values_ms {
            h.record(v * 1000).unwrap();
        }
        h
    }

    #[test]
    fn evaluation() {
        let h = histogram(&(1..=100).collect::<Vec<_>>());
        let fast = histogram(&[1, 1, 1]);
        let facts = Facts {
            latency: &h,
            ok_latency: Some(&fast),
            then_latency: None,
            journeys_ok: None,
            requests: 100,
            ok: 97,
            dropped: 0,
            achieved_rps: 50.0,
            answered: 100,
            http2: 0,
        };
        let judge = |s: &str| t(s).judge(&facts);
        // Percentiles are reported as the highest value equivalent to them (3 digits).
        assert!(judge("p50<51ms").passed && !judge("p50<50ms").passed);
        assert!(judge("p99<100ms").passed && !judge("p99<99ms").passed);
        assert_eq!(judge("max<1s").actual, Some(0.100031));
        assert!(judge("mean>50ms").passed);
        let e = judge("error_rate<=3%");
        assert!(e.passed, "{e:?}");
        assert!(!judge("error_rate<2%").passed);
        assert!(judge("rps>=49.9").passed && !judge("rps>50").passed);
        assert_eq!(t("error_rate<2%").show(Some(0.03)), "3.00 %");
        assert_eq!(t("rps>1").show(Some(49.98)), "49.98/s");
        // ok_ rules judge the ok calls' latency only.
        assert!(judge("ok_p99<2ms").passed && !judge("p99<2ms").passed);
        assert_eq!(judge("ok_max<1s").actual, Some(0.001));
        let old = Facts { ok_latency: None, ..facts };
        let v = t("ok_p99<1s").judge(&old);
        assert!(!v.passed && v.actual.is_none());
        assert_eq!(t("ok_p99<1s").show(None), "no ok calls");
        // then_ and journey rules judge the --then calls, and fail without them.
        assert!(!judge("then_p99<1s").passed && !judge("journey_error_rate<50%").passed);
        assert_eq!(t("then_p99<1s").show(None), "no --then calls");
        let then = histogram(&[5, 5, 200]);
        let journeys = Facts { then_latency: Some(&then), journeys_ok: Some(90), ..old };
        assert_eq!(t("then_max<1s").judge(&journeys).actual, Some(0.200063));
        assert!(t("then_p50<6ms").judge(&journeys).passed && !t("then_p99<6ms").judge(&journeys).passed);
        let j = t("journey_error_rate<=10%").judge(&journeys);
        assert!(j.passed && j.actual == Some(0.1), "{j:?}");
        assert!(!t("journey_error_rate<10%").judge(&journeys).passed);
    }

    #[test]
    fn nothing_measured_fails_except_rate() {
        let h = histogram(&[]);
        let facts = Facts {
            latency: &h,
            ok_latency: Some(&h),
            then_latency: None,
            journeys_ok: None,
            requests: 0,
            ok: 0,
            dropped: 0,
            achieved_rps: 0.0,
            answered: 0,
            http2: 0,
        };
        let v = t("p99<1s").judge(&facts);
        assert!(!v.passed && v.actual.is_none());
        assert!(!t("error_rate<1%").judge(&facts).passed);
        assert!(!t("dropped<1%").judge(&facts).passed);
        assert!(t("rps<1").judge(&facts).passed);
    }

    /// A dropped request is a user who got nothing: an error, and a share of its own.
    #[test]
    fn dropped_requests_count_as_errors() {
        assert_eq!(t("dropped<1%").metric, Metric::Dropped);
        assert_eq!(t("dropped<=0.5").value, 0.5);
        assert!(Threshold::parse("dropped<5").unwrap_err().to_string().contains("at most 1"));
        assert!(Threshold::parse("dropped<5ms").unwrap_err().to_string().contains("does not fit"));
        let h = histogram(&[10; 60]);
        let facts = Facts {
            latency: &h,
            ok_latency: None,
            then_latency: None,
            journeys_ok: None,
            requests: 60,
            ok: 50,
            dropped: 40,
            achieved_rps: 6.0,
            answered: 60,
            http2: 60,
        };
        assert_eq!(t("error_rate<1%").judge(&facts).actual, Some(0.5));
        assert_eq!(t("dropped<1%").judge(&facts).actual, Some(0.4));
        assert!(!t("dropped<1%").judge(&facts).passed && t("dropped<=40%").judge(&facts).passed);
        // Everything dropped: nothing was sent, yet both rates are known.
        let none = histogram(&[]);
        let all = Facts {
            latency: &none,
            ok_latency: None,
            then_latency: None,
            journeys_ok: None,
            requests: 0,
            ok: 0,
            dropped: 7,
            achieved_rps: 0.0,
            answered: 0,
            http2: 0,
        };
        assert_eq!(t("error_rate<1%").judge(&all).actual, Some(1.0));
        assert_eq!(t("dropped<1%").judge(&all).actual, Some(1.0));
        assert_eq!(t("p99<1s").judge(&all).actual, None);
    }

    /// `http2>=100%` insists that every answer came over HTTP/2: one call that fell
    /// back to HTTP/1.1 fails it, and so does a run without answers.
    #[test]
    fn http2_is_the_share_of_answers_over_http2() {
        let rule = t("http2>=100%");
        assert_eq!((rule.metric, rule.op, rule.value), (Metric::Http2, Op::Ge, 1.0));
        assert_eq!(t("http2>=0.99").value, 0.99);
        assert!(Threshold::parse("http2>=2").unwrap_err().to_string().contains("at most 1"));
        assert!(Threshold::parse("http2>1ms").unwrap_err().to_string().contains("does not fit"));
        assert!(Threshold::parse("ok_http2>1%").unwrap_err().to_string().contains("latency metric only"));
        refused("http_2>=1", "did you mean http2?");
        refused("HTTP2>=1", "did you mean http2?");
        let h = histogram(&[10; 50]);
        let facts = |answered, http2| Facts {
            latency: &h,
            ok_latency: None,
            then_latency: None,
            journeys_ok: None,
            requests: 50,
            ok: 50,
            dropped: 0,
            achieved_rps: 5.0,
            answered,
            http2,
        };
        let all = rule.judge(&facts(50, 50));
        assert!(all.passed && all.actual == Some(1.0), "{all:?}");
        let one_fell_back = rule.judge(&facts(50, 49));
        assert!(!one_fell_back.passed && one_fell_back.actual == Some(0.98), "{one_fell_back:?}");
        assert_eq!(rule.show(one_fell_back.actual), "98.00 %");
        assert!(t("http2>=98%").judge(&facts(50, 49)).passed);
        let none = rule.judge(&facts(0, 0));
        assert!(!none.passed && none.actual.is_none(), "{none:?}");
        assert_eq!(rule.show(None), "no answers");
        // Nothing over HTTP/2: a rule that forbids it passes.
        assert!(t("http2<=0%").judge(&facts(50, 0)).passed);
    }
}
