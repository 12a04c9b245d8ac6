//! `--threshold EXPR`: the pass/fail rules that decide the exit code of `load` and
//! `report`. Owns the grammar (`METRIC OP VALUE[UNIT]`) and the evaluation against a
//! finished run; a malformed rule is rejected while the flags are parsed, before any
//! request is sent, with a message that spells the grammar out.

use crate::util::units::round6;
use std::fmt;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::histogram::percentile;

/// What every grammar error ends with.
pub const GRAMMAR: &str = "expected METRIC OP VALUE, e.g. p99<300ms, ok_p99<300ms, error_rate<=1%, rps>=49; \
     METRIC is p50, p90, p95, p99, p99.9, max or mean (latency of all calls, in us, ms or s; \
     with ok_ in front, of ok calls only), error_rate or dropped (in % or as a fraction) \
     or rps; OP is <, <=, > or >=";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid threshold {expr:?}: {why}; {GRAMMAR}")]
pub struct ThresholdError {
    pub expr: String,
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
    /// The share of due requests that were dropped (never sent).
    Dropped,
    /// The achieved request rate.
    Rps,
}

impl Metric {
    fn parse(name: &str) -> Option<Metric> {
        match name {
            "max" => Some(Metric::Max),
            "mean" => Some(Metric::Mean),
            "error_rate" => Some(Metric::ErrorRate),
            "dropped" => Some(Metric::Dropped),
            "rps" => Some(Metric::Rps),
            _ => {
                let p: f64 = name.strip_prefix('p')?.replace('_', ".").parse().ok()?;
                (p > 0.0 && p <= 100.0).then_some(Metric::Percentile(p))
            }
        }
    }

    fn is_latency(self) -> bool {
        matches!(self, Metric::Percentile(_) | Metric::Max | Metric::Mean)
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
    pub requests: u64,
    pub ok: u64,
    /// Due requests never sent.
    pub dropped: u64,
    pub achieved_rps: f64,
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
        let err = |why: &str| ThresholdError { expr: expr.clone(), why: why.to_string() };
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
        let (ok_only, bare) = match name.strip_prefix("ok_") {
            Some(bare) => (true, bare),
            None => (false, name),
        };
        let metric = Metric::parse(bare).ok_or_else(|| err(&format!("unknown metric {name:?}")))?;
        if ok_only && !metric.is_latency() {
            return Err(err(&format!("ok_ goes with a latency metric only, not {bare}")));
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
            (Metric::ErrorRate | Metric::Dropped, "%") => n / 100.0,
            (Metric::ErrorRate | Metric::Dropped, "") if n <= 1.0 => n,
            (Metric::ErrorRate | Metric::Dropped, "") => {
                return Err(err("a fraction is at most 1; write a percentage with %"));
            }
            (Metric::Rps, "") => n,
            (_, unit) => return Err(err(&format!("unit {unit:?} does not fit {name}"))),
        };
        Ok(Threshold { expr, metric, ok_only, op, value })
    }

    /// The measured value, in the metric's base unit; `None` without requests (or,
    /// for `ok_` rules, without ok calls).
    pub fn actual(&self, facts: &Facts) -> Option<f64> {
        let h = if self.ok_only { facts.ok_latency? } else { facts.latency };
        let secs = |us: u64| us as f64 / 1e6;
        let due = facts.requests + facts.dropped;
        match self.metric {
            Metric::Rps => Some(facts.achieved_rps),
            Metric::ErrorRate | Metric::Dropped if due == 0 => None,
            Metric::ErrorRate => Some(due.saturating_sub(facts.ok) as f64 / due as f64),
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
            (_, None) => "no requests".to_string(),
            (Metric::ErrorRate | Metric::Dropped, Some(a)) => format!("{:.2} %", a * 100.0),
            (Metric::Rps, Some(a)) => format!("{a:.2}/s"),
            (_, Some(a)) => crate::util::fmt::human_secs(a),
        }
    }
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
            ("p101<1s", "unknown metric"),
            ("latency<1s", "unknown metric"),
            ("error_rate<5", "at most 1"),
            ("rps>10ms", "does not fit"),
            ("p99<1.2.3s", "not a number"),
            ("ok_error_rate<1%", "latency metric only"),
            ("ok_rps>1", "latency metric only"),
            ("ok_<1s", "unknown metric"),
        ] {
            let e = Threshold::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("expected METRIC OP VALUE") && e.contains(&format!("{bad:?}")), "{e}");
        }
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
        let facts =
            Facts { latency: &h, ok_latency: Some(&fast), requests: 100, ok: 97, dropped: 0, achieved_rps: 50.0 };
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
    }

    #[test]
    fn nothing_measured_fails_except_rate() {
        let h = histogram(&[]);
        let facts = Facts { latency: &h, ok_latency: Some(&h), requests: 0, ok: 0, dropped: 0, achieved_rps: 0.0 };
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
        let facts = Facts { latency: &h, ok_latency: None, requests: 60, ok: 50, dropped: 40, achieved_rps: 6.0 };
        assert_eq!(t("error_rate<1%").judge(&facts).actual, Some(0.5));
        assert_eq!(t("dropped<1%").judge(&facts).actual, Some(0.4));
        assert!(!t("dropped<1%").judge(&facts).passed && t("dropped<=40%").judge(&facts).passed);
        // Everything dropped: nothing was sent, yet both rates are known.
        let none = histogram(&[]);
        let all = Facts { latency: &none, ok_latency: None, requests: 0, ok: 0, dropped: 7, achieved_rps: 0.0 };
        assert_eq!(t("error_rate<1%").judge(&all).actual, Some(1.0));
        assert_eq!(t("dropped<1%").judge(&all).actual, Some(1.0));
        assert_eq!(t("p99<1s").judge(&all).actual, None);
    }
}
