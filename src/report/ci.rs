//! What a CI job reads: `--junit FILE` (each threshold and each compared measure a test
//! case) and `--summary FILE` (Markdown for a job summary). Both are built from the
//! judged report and, with `--baseline`, the comparison; neither holds anything the
//! JSON report does not.

use super::compare::{Comparison, Verdict, show_change, show_value};
use super::model::{LoadReport, NO_OK};
use super::threshold::Threshold;
use crate::call::Outcome;
use crate::util::fmt::human_secs;

/// The measured value of a judged rule as people read it, from the rule's own text.
fn shown_actual(expr: &str, actual: Option<f64>) -> String {
    match Threshold::parse(expr) {
        Ok(rule) => rule.show(actual),
        Err(_) => actual.map_or_else(|| "nothing measured".to_string(), |a| a.to_string()),
    }
}

/// Text for an XML attribute or element.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no way to write other control characters.
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML of a run: a test suite of its thresholds and, with a baseline, one of
/// the compared measures (a measure not judged is a skipped test case).
pub fn junit(report: &LoadReport, comparison: Option<&Comparison>) -> String {
    let mut suites = Vec::new();
    let mut cases = Vec::new();
    for t in &report.thresholds {
        let failure = (!t.passed).then(|| format!("{}: measured {}", t.expr, shown_actual(&t.expr, t.actual)));
        cases.push(case("nehr-probe.thresholds", &t.expr, failure.as_deref(), None));
    }
    let mut failed = report.thresholds.iter().filter(|t| !t.passed).count();
    if report.outcomes[Outcome::Ok] == 0 {
        // The rule that needs no flag (docs/exit-codes.md), a case only when it fails.
        let failure = format!("{NO_OK}: {} requests, none ok", report.requests);
        cases.push(case("nehr-probe.thresholds", "at least one call ok", Some(&failure), None));
        failed += 1;
    }
    suites.push(suite("thresholds", report.duration_seconds, &cases, failed, 0));
    let cases_in_thresholds = cases.len();
    if let Some(c) = comparison {
        let mut cases = Vec::new();
        for m in &c.measures {
            let values = format!("{} → {}", show_value(m.unit, m.baseline), show_value(m.unit, m.run));
            let failure = (m.verdict == Verdict::Worse).then(|| {
                format!("{} is worse: {values}, {}; tolerance {:.1} %", m.measure, show_change(m), c.tolerance * 100.0)
            });
            let skipped = (m.verdict == Verdict::NotJudged)
                .then(|| format!("{values}: not judged ({})", m.note.as_deref().unwrap_or("")));
            cases.push(case("nehr-probe.comparison", &m.measure, failure.as_deref(), skipped.as_deref()));
        }
        let skipped = c.measures.iter().filter(|m| m.verdict == Verdict::NotJudged).count();
        suites.push(suite("comparison with the baseline", 0.0, &cases, c.worse.len(), skipped));
    }
    let tests: usize = cases_in_thresholds + comparison.map_or(0, |c| c.measures.len());
    let failures = failed + comparison.map_or(0, |c| c.worse.len());
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"nehr-probe\" tests=\"{tests}\" \
         failures=\"{failures}\" errors=\"0\">\n{}</testsuites>\n",
        suites.concat()
    )
}

fn case(class: &str, name: &str, failure: Option<&str>, skipped: Option<&str>) -> String {
    let (class, name) = (xml(class), xml(name));
    match (failure, skipped) {
        (Some(f), _) => format!(
            "    <testcase classname=\"{class}\" name=\"{name}\" time=\"0\">\n      <failure message=\"{}\" \
             type=\"worse\">{}</failure>\n    </testcase>\n",
            xml(f),
            xml(f)
        ),
        (None, Some(s)) => format!(
            "    <testcase classname=\"{class}\" name=\"{name}\" time=\"0\">\n      <skipped message=\"{}\"/>\n    \
             </testcase>\n",
            xml(s)
        ),
        (None, None) => format!("    <testcase classname=\"{class}\" name=\"{name}\" time=\"0\"/>\n"),
    }
}

fn suite(name: &str, time: f64, cases: &[String], failures: usize, skipped: usize) -> String {
    format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" \
         time=\"{time:.3}\">\n{}  </testsuite>\n",
        xml(name),
        cases.len(),
        cases.concat()
    )
}

/// Text for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\").replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// A Markdown summary of a run: the verdict, the figures, the thresholds and, with a
/// baseline, the comparison.
pub fn markdown(report: &LoadReport, comparison: Option<&Comparison>) -> String {
    let passed = report.failures().is_empty() && comparison.is_none_or(|c| c.passed);
    let mut out = format!("### nehr-probe: {}\n\n", if passed { "PASS" } else { "FAIL" });
    if report.outcomes[Outcome::Ok] == 0 {
        out.push_str(&format!("**{NO_OK}**: the run fails whatever its thresholds.\n\n"));
    }
    let due = report.requests + report.dropped;
    let errors = due.saturating_sub(report.outcomes[Outcome::Ok]);
    let l = &report.latency_seconds;
    out.push_str(&format!(
        "`{}`: {} requests in {:.1} s ({:.2}/s), {} not ok ({:.2} %); latency p50 {}, p99 {}, max {}\n\n",
        cell(&report.target),
        report.requests,
        report.duration_seconds,
        report.achieved_rps,
        errors,
        if due == 0 { 0.0 } else { errors as f64 * 100.0 / due as f64 },
        human_secs(l.p50),
        human_secs(l.p99),
        human_secs(l.max)
    ));
    if !report.thresholds.is_empty() {
        out.push_str("| threshold | measured | result |\n|---|---|---|\n");
        for t in &report.thresholds {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                cell(&t.expr),
                cell(&shown_actual(&t.expr, t.actual)),
                if t.passed { "pass" } else { "**FAIL**" }
            ));
        }
        out.push('\n');
    }
    if let Some(c) = comparison {
        out.push_str(&format!(
            "Compared with the baseline (tolerance {:.1} %, {:.0} % intervals): {}\n\n",
            c.tolerance * 100.0,
            c.confidence * 100.0,
            if c.passed { "no measure is worse".to_string() } else { format!("**worse: {}**", c.worse.join(", ")) }
        ));
        for d in &c.differences {
            out.push_str(&format!("> **Note:** {}\n\n", cell(d)));
        }
        out.push_str("| measure | baseline | run | change | verdict |\n|---|---|---|---|---|\n");
        for m in &c.measures {
            let verdict = match m.verdict {
                Verdict::Worse => "**worse**",
                v => v.words(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {verdict} |\n",
                cell(&m.measure),
                show_value(m.unit, m.baseline),
                show_value(m.unit, m.run),
                cell(&show_change(m))
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_and_markdown_text_cannot_break_out() {
        assert_eq!(xml("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;\u{FFFD}");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
