//! `nehr-probe report`: renders a saved JSON load report again, or merges several (from
//! processes or machines run side by side) into one, and judges thresholds on it.
//!
//! [`model`] owns the report's shape, [`histogram`] its histograms, [`reasons`] why calls
//! failed, [`merge`] reading and
//! merging, [`text`] the terminal rendering, [`html`] the `--html` page ([`chart`] its charts,
//! [`axis`] their latency axis), [`threshold`]
//! the pass/fail rules, [`compare`] the comparison with a baseline, [`ci`] JUnit and
//! Markdown. This module
//! knows nothing of how a run is measured: the load engine builds reports, this reads them.

pub mod axis;
pub mod chart;
pub mod ci;
pub mod compare;
pub mod histogram;
pub mod html;
pub mod html_compare;
pub mod html_then;
pub mod merge;
pub mod model;
pub mod reasons;
pub mod text;
pub mod threshold;
pub mod versions;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::util::fs::print_stdout;
use compare::{CompareArgs, Comparison};
use merge::{ReportError, WARNING, merge, read_inputs};
use model::Shown;
use threshold::Threshold;

/// `nehr-probe report`: render or merge saved JSON reports.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Saved JSON reports (`load --out FILE` or `load --format json`), `-` for standard
    /// input; a file may hold several one after another (`kubectl logs` of several
    /// pods). Several are merged into one, as if one client had sent all their requests;
    /// the segments of one schedule (`load --segment`) into that one run
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Pass/fail rule, repeatable, judged on the (merged) report together with the rules
    /// saved in it: p99<300ms, error_rate<1%, rps>=49. Any failure exits 1
    #[arg(long = "threshold", value_name = "EXPR", value_parser = Threshold::parse)]
    pub thresholds: Vec<Threshold>,

    /// Output format on stdout
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also write the JSON report to this file
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Also write the report as one self-contained HTML page with charts (latency and
    /// outcomes over time, the percentile spectrum) to this file
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    #[command(flatten)]
    pub compare: CompareArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Summary, percentiles, status codes, violations, thresholds and a spectrum
    Text,
    /// The JSON object of the documented report shape
    Json,
}

/// `nehr-probe report FILE…`: renders (and merges), judges the saved and the given
/// thresholds, returns the exit code.
pub fn run(args: &ReportArgs) -> anyhow::Result<u8> {
    check_outputs(args.out.as_deref(), args.html.as_deref(), &args.compare, &[])?;
    let (parts, skipped) = read_inputs(&args.files)?;
    let mut rules: Vec<Threshold> = Vec::new();
    for (name, part) in &parts {
        for v in &part.report.thresholds {
            let rule =
                Threshold::parse(&v.expr).map_err(|e| ReportError::Threshold { path: name.clone(), why: e.why })?;
            if !rules.iter().any(|r| r.expr == rule.expr) {
                rules.push(rule);
            }
        }
    }
    for t in &args.thresholds {
        if !rules.iter().any(|r| r.expr == t.expr) {
            rules.push(t.clone());
        }
    }
    let baseline = args.compare.baseline.as_deref().map(read_baseline).transpose()?;
    let mut shown = merge(parts.into_iter().map(|(_, s)| s).collect())?;
    for warning in shown.notes.iter().filter(|n| n.starts_with(WARNING)) {
        eprintln!("nehr-probe report: {warning}");
    }
    shown.notes.extend(skipped);
    shown.report.judge(&rules, &shown.latency, shown.ok_latency.as_ref());
    let comparison = baseline.as_ref().map(|b| compare::compare(b, &shown, args.compare.tolerance)).transpose()?;
    // With a baseline, --html is the comparison's page.
    let run_page = if comparison.is_some() { None } else { args.html.as_deref() };
    emit(&shown, args.format, args.out.as_deref(), run_page)?;
    if let (Some(b), Some(c), Some(path)) = (&baseline, &comparison, &args.html) {
        std::fs::write(path, html_compare::render(b, &shown, c))
            .with_context(|| format!("cannot write --html {}", path.display()))?;
    }
    finish(&shown, comparison.as_ref(), args.format, &args.compare)
}

/// Checks that every file a report goes to (`--out`, `--html`, `--compare-out`,
/// `--junit`, `--summary`, and any `extra` of the command's own) can be written: a usage
/// error before the first request, not after the run.
pub fn check_outputs(
    out: Option<&Path>,
    html: Option<&Path>,
    args: &CompareArgs,
    extra: &[(&str, Option<&Path>)],
) -> anyhow::Result<()> {
    let ours = [
        ("--out", out),
        ("--html", html),
        ("--compare-out", args.compare_out.as_deref()),
        ("--junit", args.junit.as_deref()),
        ("--summary", args.summary.as_deref()),
    ];
    for (flag, path) in ours.iter().chain(extra) {
        if let Some(path) = path {
            crate::util::fs::check_writable(flag, path, crate::util::fs::Written::InPlace)?;
        }
    }
    Ok(())
}

/// Reads a `--baseline`: one saved report, or the segments of one run (merged).
pub fn read_baseline(path: &Path) -> anyhow::Result<Shown> {
    let (parts, _) = read_inputs(&[path.to_path_buf()]).context("cannot read --baseline")?;
    merge(parts.into_iter().map(|(_, s)| s).collect()).context("cannot read --baseline")
}

/// After the report was printed: the comparison (after the report in text; on stderr
/// when stdout carries the JSON report), `--compare-out`, `--junit` and `--summary`.
/// Returns the exit code: 1 when a threshold failed or a measure is worse.
pub fn finish(
    shown: &Shown,
    comparison: Option<&Comparison>,
    format: Format,
    args: &CompareArgs,
) -> anyhow::Result<u8> {
    if let Some(c) = comparison {
        match format {
            Format::Text => print_stdout(&format!("\n{}", compare::render(c)))?,
            Format::Json => eprint!("{}", compare::render(c)),
        }
        if let Some(path) = &args.compare_out {
            std::fs::write(path, c.json()).with_context(|| format!("cannot write --compare-out {}", path.display()))?;
        }
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, ci::junit(&shown.report, comparison))
            .with_context(|| format!("cannot write --junit {}", path.display()))?;
    }
    if let Some(path) = &args.summary {
        std::fs::write(path, ci::markdown(&shown.report, comparison))
            .with_context(|| format!("cannot write --summary {}", path.display()))?;
    }
    let worse = comparison.is_some_and(|c| !c.passed);
    Ok(if worse { 1 } else { shown.report.exit_code() })
}

/// Prints the report as asked, then writes `out` (JSON) and `html`: a file that cannot be
/// written never costs the user the report (the error comes after it). stdout may be a
/// closed pipe.
pub fn emit(shown: &Shown, format: Format, out: Option<&Path>, html: Option<&Path>) -> anyhow::Result<()> {
    let json = shown.report.json();
    let printed = match format {
        Format::Json => print_stdout(&json),
        Format::Text => print_stdout(&text::render(shown)),
    };
    if let Some(path) = out {
        std::fs::write(path, &json).with_context(|| format!("cannot write --out {}", path.display()))?;
    }
    if let Some(path) = html {
        std::fs::write(path, html::render(shown)).with_context(|| format!("cannot write --html {}", path.display()))?;
    }
    printed
}
