//! The series of a `/probe` answer, blackbox_exporter's names where one exists
//! (`probe_success`, `probe_duration_seconds`, `probe_http_status_code`,
//! `probe_ssl_earliest_cert_expiry`) plus `nehr_probe_outcome`: a registry of their own,
//! made per scrape, so nothing of one probe lingers into the next.

use std::time::Duration;

use prometheus::{Gauge, IntGauge, IntGaugeVec, Opts, Registry};

use crate::call::{Observation, Outcome};
use crate::metrics::encode;

/// What a `/probe` answer reports.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub outcome: Outcome,
    pub duration: Duration,
    pub status: Option<u16>,
    pub expires_in: Option<i64>,
    pub cert_not_after: Option<i64>,
}

impl ProbeResult {
    pub fn of(obs: &Observation) -> ProbeResult {
        ProbeResult {
            outcome: obs.outcome,
            duration: obs.latency(),
            status: obs.status,
            expires_in: obs.token_lifetime(),
            cert_not_after: obs.cert_not_after,
        }
    }
}

/// The `/probe` metrics: a registry of their own, made per scrape.
pub fn probe_text(p: &ProbeResult) -> String {
    let registry = Registry::new();
    let build = || -> prometheus::Result<()> {
        let success = IntGauge::new("probe_success", "1 if the login got a valid token, else 0")?;
        success.set(i64::from(p.outcome == Outcome::Ok));
        let duration = Gauge::new("probe_duration_seconds", "How long the login probe took")?;
        duration.set(p.duration.as_secs_f64());
        let status = IntGauge::new("probe_http_status_code", "HTTP status of the answer (0 when there was none)")?;
        status.set(p.status.map_or(0, i64::from));
        let outcome = IntGaugeVec::new(
            Opts::new("nehr_probe_outcome", "1 for the outcome of this probe, 0 for the other eight"),
            &["outcome"],
        )?;
        for o in Outcome::ALL {
            outcome.with_label_values(&[o.as_str()]).set(i64::from(o == p.outcome));
        }
        registry.register(Box::new(success))?;
        registry.register(Box::new(duration))?;
        registry.register(Box::new(status))?;
        registry.register(Box::new(outcome))?;
        if let Some(e) = p.expires_in {
            let expires =
                IntGauge::new("nehr_probe_token_expires_in_seconds", "expires_in of the token this probe got")?;
            expires.set(e);
            registry.register(Box::new(expires))?;
        }
        if let Some(t) = p.cert_not_after {
            // blackbox_exporter's name, so its certificate alerts and dashboards work here.
            let expiry = Gauge::new(
                "probe_ssl_earliest_cert_expiry",
                "When the earliest certificate the target presented expires (Unix time)",
            )?;
            expiry.set(t as f64);
            registry.register(Box::new(expiry))?;
        }
        Ok(())
    };
    build().expect("static /probe metric definitions");
    encode(&registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_metrics_name_the_one_outcome() {
        let text = probe_text(&ProbeResult {
            outcome: Outcome::Timeout,
            duration: Duration::from_millis(1500),
            status: None,
            expires_in: None,
            cert_not_after: None,
        });
        assert!(text.contains("probe_success 0\n"), "{text}");
        assert!(text.contains("probe_duration_seconds 1.5\n"), "{text}");
        assert!(text.contains("probe_http_status_code 0\n"), "{text}");
        assert!(text.contains("nehr_probe_outcome{outcome=\"timeout\"} 1\n"), "{text}");
        assert_eq!(text.matches("nehr_probe_outcome{").count(), 9, "{text}");
        assert_eq!(text.matches("} 1\n").count(), 1, "{text}");
        assert!(!text.contains("expires_in"));
        let ok = probe_text(&ProbeResult {
            outcome: Outcome::Ok,
            duration: Duration::from_millis(4),
            status: Some(200),
            expires_in: Some(86399),
            cert_not_after: Some(1_798_761_600),
        });
        assert!(ok.contains("probe_success 1\n") && ok.contains("nehr_probe_token_expires_in_seconds 86399\n"));
        assert!(ok.contains("probe_ssl_earliest_cert_expiry 1798761600\n"), "{ok}");
        assert!(!text.contains("probe_ssl"), "no certificate, no series: {text}");
    }
}
