//! The series of a `/probe` answer, blackbox_exporter's names where one exists
//! (`probe_success`, `probe_duration_seconds`, `probe_http_status_code`,
//! `probe_ssl_earliest_cert_expiry`, and its phase series `probe_http_duration_seconds`,
//! `probe_dns_lookup_time_seconds`, `probe_http_version`, `probe_http_ssl`,
//! `probe_tls_version_info`, `probe_tls_cipher_info`, so dashboards made for blackbox
//! work) plus
//! `nehr_probe_outcome`: a registry of their own, made per scrape, so nothing of one
//! probe lingers into the next.

use std::time::Duration;

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::call::keyed::Named;
use crate::call::observation::{HttpVersion, StepOutcome};
use crate::call::{Observation, Outcome, Phases};
use crate::metrics::gather;
use crate::util::exposition::model::MetricFamily;

/// What a `/probe` answer reports.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub outcome: Outcome,
    pub duration: Duration,
    pub status: Option<u16>,
    pub expires_in: Option<i64>,
    pub cert_not_after: Option<i64>,
    pub phases: Phases,
    /// The answer's HTTP version as blackbox has it (1.1), 0 without an answer.
    pub http_version: f64,
    pub https: bool,
    pub tls_version: Option<&'static str>,
    pub tls_cipher: Option<&'static str>,
    /// How long ago the login finished: about 0 for one made or shared by this request,
    /// up to `--probe-min-interval` for the last result served again.
    pub age: Duration,
    /// With `--then`: whether the journey was ok, and the next call's outcome and
    /// latency when the login was ok.
    pub journey_ok: bool,
    pub then: Option<(StepOutcome, Duration)>,
}

impl ProbeResult {
    pub fn of(obs: &Observation, age: Duration) -> ProbeResult {
        let http_version = obs.http_version.map_or(0.0, HttpVersion::number);
        ProbeResult {
            outcome: obs.outcome,
            duration: obs.latency(),
            status: obs.status,
            expires_in: obs.token_lifetime(),
            cert_not_after: obs.cert_not_after,
            phases: obs.phases,
            http_version,
            https: obs.is_https(),
            tls_version: obs.tls_version,
            tls_cipher: obs.tls_cipher,
            age,
            journey_ok: obs.journey_ok(),
            then: obs.then.as_ref().map(|s| (s.outcome, s.latency())),
        }
    }
}

/// The `/probe` metrics in the text format.
pub fn probe_text(p: &ProbeResult) -> String {
    crate::util::exposition::text(&probe_families(p))
}

/// The `/probe` metrics: a registry of their own, made per scrape.
pub fn probe_families(p: &ProbeResult) -> Vec<MetricFamily> {
    let mut r = Registry::default();
    let gauge = |r: &mut Registry, name: &'static str, help: &'static str, v: f64| {
        r.register(name, help, ConstGauge::new(v));
    };
    let one_of = |r: &mut Registry,
                  name: &'static str,
                  help: &'static str,
                  label: &'static str,
                  values: &[(&'static str, f64)]| {
        let family: Family<[(&'static str, &'static str); 1], Gauge<f64, AtomicU64>> = Family::default();
        for (value, v) in values {
            family.get_or_create(&[(label, *value)]).set(*v);
        }
        r.register(name, help, family);
    };
    let flag = |b: bool| f64::from(u8::from(b));
    gauge(
        &mut r,
        "probe_success",
        "1 if the login got a valid token (with --then: and the next call accepted it), else 0",
        flag(p.outcome == Outcome::Ok && p.journey_ok),
    );
    gauge(&mut r, "probe_duration_seconds", "How long the login probe took", p.duration.as_secs_f64());
    gauge(
        &mut r,
        "probe_http_status_code",
        "HTTP status of the answer (0 when there was none)",
        p.status.map_or(0.0, f64::from),
    );
    let outcomes: Vec<_> = Outcome::ALL.iter().map(|o| (o.as_str(), flag(*o == p.outcome))).collect();
    one_of(&mut r, "nehr_probe_outcome", "1 for the outcome of this probe, 0 for the others", "outcome", &outcomes);
    if let Some((step, latency)) = p.then {
        let steps: Vec<_> = StepOutcome::ALL.iter().map(|o| (o.as_str(), flag(*o == step))).collect();
        one_of(
            &mut r,
            "nehr_probe_then_outcome",
            "1 for the outcome of the --then call, 0 for the others",
            "outcome",
            &steps,
        );
        gauge(&mut r, "nehr_probe_then_seconds", "How long the --then call took", latency.as_secs_f64());
    }
    // blackbox_exporter's phase series: every phase, 0 when the probe had none.
    let phases: Vec<_> =
        p.phases.listed().into_iter().map(|(phase, d)| (phase.name(), d.map_or(0.0, |d| d.as_secs_f64()))).collect();
    one_of(&mut r, "probe_http_duration_seconds", "Duration of the probe's HTTP request by phase", "phase", &phases);
    gauge(
        &mut r,
        "probe_dns_lookup_time_seconds",
        "How long the name lookup took",
        p.phases.resolve.map_or(0.0, |d| d.as_secs_f64()),
    );
    gauge(&mut r, "probe_http_version", "HTTP version of the answer (0 when there was none)", p.http_version);
    gauge(&mut r, "probe_http_ssl", "1 if the probe went over TLS, else 0", flag(p.https));
    if let Some(v) = p.tls_version {
        one_of(
            &mut r,
            "probe_tls_version_info",
            "The TLS version the probe's connection used; always 1",
            "version",
            &[(v, 1.0)],
        );
    }
    if let Some(c) = p.tls_cipher {
        one_of(
            &mut r,
            "probe_tls_cipher_info",
            "The TLS cipher suite the probe's connection used; always 1",
            "cipher",
            &[(c, 1.0)],
        );
    }
    gauge(
        &mut r,
        "nehr_probe_probe_age_seconds",
        "How long ago the login reported here finished (the last result is served again within --probe-min-interval)",
        crate::util::units::round6(p.age.as_secs_f64()),
    );
    if let Some(e) = p.expires_in {
        gauge(&mut r, "nehr_probe_token_expires_in_seconds", "expires_in of the token this probe got", e as f64);
    }
    if let Some(t) = p.cert_not_after {
        // blackbox_exporter's name, so its certificate alerts and dashboards work here.
        gauge(
            &mut r,
            "probe_ssl_earliest_cert_expiry",
            "When the earliest certificate the target presented expires (Unix time)",
            t as f64,
        );
    }
    gather(&r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: Outcome, ms: u64, status: Option<u16>) -> ProbeResult {
        ProbeResult {
            outcome,
            duration: Duration::from_millis(ms),
            status,
            expires_in: None,
            cert_not_after: None,
            phases: Phases::default(),
            http_version: 0.0,
            https: false,
            tls_version: None,
            tls_cipher: None,
            age: Duration::from_millis(250),
            journey_ok: outcome == Outcome::Ok,
            then: None,
        }
    }

    #[test]
    fn a_refused_next_call_fails_the_probe_and_is_named() {
        let mut p = result(Outcome::Ok, 20, Some(200));
        let text = probe_text(&p);
        assert!(text.contains("probe_success 1\n") && !text.contains("nehr_probe_then"), "{text}");
        p.journey_ok = false;
        p.then = Some((StepOutcome::TokenRefused, Duration::from_millis(4)));
        let text = probe_text(&p);
        assert!(text.contains("probe_success 0\n"), "{text}");
        assert!(text.contains("nehr_probe_then_outcome{outcome=\"token_refused\"} 1\n"), "{text}");
        assert_eq!(text.matches("nehr_probe_then_outcome{").count(), StepOutcome::COUNT, "{text}");
        assert!(text.contains("nehr_probe_then_seconds 0.004\n"), "{text}");
    }

    #[test]
    fn probe_metrics_name_the_one_outcome() {
        let text = probe_text(&result(Outcome::Timeout, 1500, None));
        assert!(text.contains("probe_success 0\n"), "{text}");
        assert!(text.contains("nehr_probe_probe_age_seconds 0.25\n"), "{text}");
        assert!(text.contains("probe_duration_seconds 1.5\n"), "{text}");
        assert!(text.contains("probe_http_status_code 0\n"), "{text}");
        assert!(text.contains("nehr_probe_outcome{outcome=\"timeout\"} 1\n"), "{text}");
        assert_eq!(text.matches("nehr_probe_outcome{").count(), Outcome::COUNT, "{text}");
        assert_eq!(text.matches("} 1\n").count(), 1, "{text}");
        assert!(!text.contains("expires_in"));
        let ok = probe_text(&ProbeResult {
            expires_in: Some(86399),
            cert_not_after: Some(1_798_761_600),
            ..result(Outcome::Ok, 4, Some(200))
        });
        assert!(ok.contains("probe_success 1\n") && ok.contains("nehr_probe_token_expires_in_seconds 86399\n"));
        assert!(ok.contains("probe_ssl_earliest_cert_expiry 1798761600\n"), "{ok}");
        assert!(!text.contains("probe_ssl"), "no certificate, no series: {text}");
    }

    #[test]
    fn phases_as_blackbox_names_them() {
        let ms = Duration::from_millis;
        let phases = Phases {
            resolve: Some(ms(2)),
            connect: Some(ms(1)),
            tls: Some(ms(5)),
            processing: Some(ms(40)),
            transfer: Some(ms(3)),
            ..Phases::default()
        };
        let tls = probe_text(&ProbeResult {
            phases,
            http_version: 1.1,
            https: true,
            tls_version: Some("TLS 1.3"),
            tls_cipher: Some("TLS_AES_128_GCM_SHA256"),
            ..result(Outcome::Ok, 51, Some(200))
        });
        for line in [
            "probe_http_duration_seconds{phase=\"resolve\"} 0.002\n",
            "probe_http_duration_seconds{phase=\"connect\"} 0.001\n",
            "probe_http_duration_seconds{phase=\"tls\"} 0.005\n",
            "probe_http_duration_seconds{phase=\"processing\"} 0.04\n",
            "probe_http_duration_seconds{phase=\"transfer\"} 0.003\n",
            "probe_dns_lookup_time_seconds 0.002\n",
            "probe_http_version 1.1\n",
            "probe_http_ssl 1\n",
            "probe_tls_version_info{version=\"TLS 1.3\"} 1\n",
            "probe_tls_cipher_info{cipher=\"TLS_AES_128_GCM_SHA256\"} 1\n",
        ] {
            assert!(tls.contains(line), "{line} in {tls}");
        }
        // Over http, and a call that failed to connect: every phase there, at 0.
        let failed = probe_text(&result(Outcome::ConnectError, 1, None));
        assert_eq!(failed.matches("probe_http_duration_seconds{").count(), 5, "{failed}");
        assert!(failed.contains("probe_http_duration_seconds{phase=\"tls\"} 0\n"), "{failed}");
        assert!(failed.contains("probe_http_ssl 0\n") && failed.contains("probe_http_version 0\n"), "{failed}");
        assert!(!failed.contains("probe_tls_version_info") && !failed.contains("probe_tls_cipher"), "{failed}");
    }

    /// blackbox_exporter writes `probe_http_version 2` for an HTTP/2 answer, never 2.0.
    #[test]
    fn an_http2_answer_is_version_2() {
        for (version, line) in [
            (HttpVersion::Http2, "probe_http_version 2\n"),
            (HttpVersion::Http11, "probe_http_version 1.1\n"),
            (HttpVersion::Http10, "probe_http_version 1\n"),
        ] {
            let mut obs = Observation::test(Outcome::Ok, Some(200), 0, 5);
            obs.http_version = Some(version);
            let text = probe_text(&ProbeResult::of(&obs, Duration::ZERO));
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
