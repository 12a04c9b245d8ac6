//! Reading saved reports and merging several into one. Runs side by side (processes or
//! machines) merge exactly: counts add, latency and service-time histograms add, rates
//! add (runs side by side share their window, so the sum is the rate over it; the
//! merged duration is the longest run's).

use std::path::Path;

use super::histogram::{self, histogram};
use super::model::{LoadReport, Outcomes, Percentiles, Shown};
use crate::call::Outcome;
use crate::util::units::round6;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path} is not a nehr-probe load report: {cause}")]
    Json { path: String, cause: serde_json::Error },
    #[error("{path}: its \"histogram\" is {why}")]
    Histogram { path: String, why: String },
    #[error("{path}: its saved threshold is unreadable: {why}")]
    Threshold { path: String, why: String },
    #[error("cannot merge an open-model report with a closed-model one: their latencies mean different things")]
    MixedModels,
}

/// Reads one saved report.
pub fn read(path: &Path) -> Result<Shown, ReportError> {
    let shown = path.display().to_string();
    let text =
        crate::util::units::read_input_file(path).map_err(|cause| ReportError::Read { path: shown.clone(), cause })?;
    let report: LoadReport =
        serde_json::from_str(&text).map_err(|cause| ReportError::Json { path: shown.clone(), cause })?;
    let latency =
        histogram::decode(&report.histogram).map_err(|why| ReportError::Histogram { path: shown.clone(), why })?;
    let service = match &report.service_time_histogram {
        Some(text) => Some(histogram::decode(text).map_err(|why| ReportError::Histogram { path: shown, why })?),
        None => None,
    };
    Ok(Shown { report, latency, service, notes: Vec::new() })
}

/// Merges reports of runs that ran side by side into the report of one run that sent
/// all their requests: counts and histograms add; so do the runs' rates (each over its
/// own window; the merged duration is the longest run's).
pub fn merge(parts: Vec<Shown>) -> Result<Shown, ReportError> {
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else { unreachable!("clap requires at least one file") };
    let rest: Vec<Shown> = parts.collect();
    if rest.is_empty() {
        return Ok(first);
    }
    let all: Vec<&Shown> = std::iter::once(&first).chain(&rest).collect();
    if all.iter().any(|s| s.report.model != first.report.model) {
        return Err(ReportError::MixedModels);
    }
    let mut latency = histogram();
    let mut service = all.iter().all(|s| s.service.is_some()).then(histogram);
    let mut targets: Vec<&str> = Vec::new();
    let mut m = first.report.clone();
    m.target_rps = Some(0.0);
    m.concurrency = 0;
    m.duration_seconds = 0.0;
    m.requests = 0;
    m.dropped = 0;
    m.achieved_rps = 0.0;
    m.outcomes = Outcomes::default();
    m.late_starts = 0;
    m.http_status.clear();
    m.violations.clear();
    m.thresholds.clear();
    for s in &all {
        let r = &s.report;
        if !targets.contains(&r.target.as_str()) {
            targets.push(&r.target);
        }
        m.target_rps = m.target_rps.zip(r.target_rps).map(|(a, b)| a + b);
        m.concurrency += r.concurrency;
        m.duration_seconds = m.duration_seconds.max(r.duration_seconds);
        m.requests += r.requests;
        m.dropped += r.dropped;
        m.achieved_rps += r.achieved_rps;
        for o in Outcome::ALL {
            *m.outcomes.slot(o) += r.outcomes.get(o);
        }
        m.late_starts += r.late_starts;
        for (k, v) in &r.http_status {
            *m.http_status.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &r.violations {
            *m.violations.entry(k.clone()).or_default() += v;
        }
        for t in &r.thresholds {
            if !m.thresholds.iter().any(|have| have.expr == t.expr) {
                m.thresholds.push(t.clone());
            }
        }
        histogram::add(&mut latency, &s.latency);
        if let (Some(into), Some(from)) = (service.as_mut(), s.service.as_ref()) {
            histogram::add(into, from);
        }
    }
    m.target = targets.join(", ");
    m.target_rps = m.target_rps.map(round6);
    m.achieved_rps = round6(m.achieved_rps);
    m.latency_seconds = Percentiles::of(&latency);
    m.histogram = histogram::encode(&latency);
    let mut notes = vec![format!("merged from {} reports: counts and histograms add, rates add", all.len())];
    match &service {
        Some(h) => m.service_time_seconds = Percentiles::of(h),
        None => {
            m.service_time_seconds = merge_service_times(&all);
            notes.push(
                "a report without a service-time histogram was merged: service-time percentiles are \
                 request-weighted means of the reports' (approximate); min, mean and max are exact"
                    .to_string(),
            );
        }
    }
    m.service_time_histogram = service.as_ref().map(histogram::encode);
    Ok(Shown { report: m, latency, service, notes })
}

/// For reports without a service-time histogram: merged service-time percentiles are
/// weighted means; min, mean and max are exact.
fn merge_service_times(all: &[&Shown]) -> Percentiles {
    let total: u64 = all.iter().map(|s| s.report.requests).sum();
    if total == 0 {
        return Percentiles::default();
    }
    let weighted = |f: fn(&Percentiles) -> f64| {
        round6(
            all.iter().map(|s| f(&s.report.service_time_seconds) * s.report.requests as f64).sum::<f64>()
                / total as f64,
        )
    };
    let with_requests = || all.iter().filter(|s| s.report.requests > 0).map(|s| &s.report.service_time_seconds);
    Percentiles {
        min: with_requests().map(|p| p.min).fold(f64::INFINITY, f64::min),
        mean: weighted(|p| p.mean),
        p50: weighted(|p| p.p50),
        p90: weighted(|p| p.p90),
        p99: weighted(|p| p.p99),
        p99_9: weighted(|p| p.p99_9),
        p99_99: weighted(|p| p.p99_99),
        max: with_requests().map(|p| p.max).fold(0.0, f64::max),
    }
}
