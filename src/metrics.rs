//! The Prometheus metrics of docs/metrics.md, fed by observations: one [`Metrics`] per
//! target, registered in a caller's registry so `serve`, `load --metrics-listen` and
//! `check --format prometheus` print the same names.
//!
//! Labels stay low-cardinality: the ten outcomes, schema paths (bounded by the schema)
//! and configured target names. Never an error text, a URL with a query, or a token.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::call::door::Door;
use crate::call::keyed::Named;
use crate::call::observation::StepOutcome;
use crate::call::phases::{Phase, PhaseMap};
use crate::call::{Observation, Outcome};

/// Buckets of `nehr_probe_request_duration_seconds`: 1 ms to 10 s.
/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub const DURATION_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0];

/// Buckets of `nehr_probe_phase_duration_seconds`: 100 µs to 10 s (a phase on a LAN,
/// such as a TCP handshake, takes well under a millisecond).
pub const PHASE_BUCKETS: [f64; 17] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0];

/// The metrics of one target.
#[derive(Clone)]
pub struct Metrics {
    requests: IntCounterVec,
    duration: Histogram,
    success: IntGauge,
    // The three gauges below are vectors with no variable label only so that their series
    // is absent until set: a 0 would read as "token lifetime 0 s" (and fire the alert on
    // it), "last success in 1970", "certificate expired in 1970".
    last_success: GaugeVec,
    http_status: IntGauge,
    expires_in: IntGaugeVec,
    violations: IntCounterVec,
    cert_expiry: GaugeVec,
    /// The TLS version and cipher suite of the last handshake: one series each, at 1.
    tls_version: IntGaugeVec,
    tls_cipher: IntGaugeVec,
    /// One child per phase: no label lookup per call.
    phases: PhaseMap<Histogram>,
    phase_vec: HistogramVec,
    /// `--then`: registered only for a target that makes the next call.
    then: Option<ThenMetrics>,
}

/// The series of the call after the login (docs/metrics.md, `--then`).
#[derive(Clone)]
struct ThenMetrics {
    requests: IntCounterVec,
    duration: Histogram,
    journey: IntGauge,
}

impl ThenMetrics {
    fn register(registry: &Registry, target: &str) -> prometheus::Result<ThenMetrics> {
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("target", target);
        let requests = IntCounterVec::new(
            opts("nehr_probe_then_requests_total", "Calls made with the token after an ok login (--then), by outcome"),
            &["outcome"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new("nehr_probe_then_duration_seconds", "Latency of the --then calls, from their send")
                .const_label("target", target)
                .buckets(DURATION_BUCKETS.to_vec()),
        )?;
        let journey = IntGauge::with_opts(opts(
            "nehr_probe_journey_success",
            "1 if the last probe's login was ok and the --then call accepted its token, else 0",
        ))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(journey.clone()))?;
        for o in StepOutcome::ALL {
            requests.with_label_values(&[o.as_str()]);
        }
        Ok(ThenMetrics { requests, duration, journey })
    }

    fn collectors(&self) -> [Box<dyn prometheus::core::Collector>; 3] {
        [Box::new(self.requests.clone()), Box::new(self.duration.clone()), Box::new(self.journey.clone())]
    }
}

impl Metrics {
    /// Registers the metrics of the target named `target` (its `target` label).
    pub fn register(registry: &Registry, target: &str) -> prometheus::Result<Metrics> {
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("target", target);
        let requests =
            IntCounterVec::new(opts("nehr_probe_requests_total", "getToken calls made, by outcome"), &["outcome"])?;
        let duration = Histogram::with_opts(
            HistogramOpts::new("nehr_probe_request_duration_seconds", "Latency of getToken calls")
                .const_label("target", target)
                .buckets(DURATION_BUCKETS.to_vec()),
        )?;
        let success = IntGauge::with_opts(opts("nehr_probe_success", "1 if the last probe got a valid token, else 0"))?;
        let last_success = GaugeVec::new(
            opts("nehr_probe_last_success_timestamp_seconds", "Unix time of the last probe that got a valid token"),
            &[],
        )?;
        let http_status = IntGauge::with_opts(opts(
            "nehr_probe_http_status_code",
            "HTTP status of the last answer (0 when there was none)",
        ))?;
        let expires_in =
            IntGaugeVec::new(opts("nehr_probe_token_expires_in_seconds", "expires_in of the last valid token"), &[])?;
        let violations = IntCounterVec::new(
            opts("nehr_probe_schema_violations_total", "Schema violations seen in answers, by JSON Pointer"),
            &["path"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(success.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        registry.register(Box::new(http_status.clone()))?;
        registry.register(Box::new(expires_in.clone()))?;
        let cert_expiry = GaugeVec::new(
            opts(
                "nehr_probe_tls_cert_expiry_timestamp_seconds",
                "When the earliest certificate the target presented on its last TLS handshake expires (Unix time)",
            ),
            &[],
        )?;
        registry.register(Box::new(violations.clone()))?;
        registry.register(Box::new(cert_expiry.clone()))?;
        let tls_version = IntGaugeVec::new(
            opts("nehr_probe_tls_version_info", "The TLS version of the last answer's connection; always 1"),
            &["version"],
        )?;
        let tls_cipher = IntGaugeVec::new(
            opts("nehr_probe_tls_cipher_info", "The TLS cipher suite of the last answer's connection; always 1"),
            &["cipher"],
        )?;
        registry.register(Box::new(tls_version.clone()))?;
        registry.register(Box::new(tls_cipher.clone()))?;
        for outcome in Outcome::ALL {
            requests.with_label_values(&[outcome.as_str()]);
        }
        let phase_vec = HistogramVec::new(
            HistogramOpts::new(
                "nehr_probe_phase_duration_seconds",
                "Where the calls' time went: name lookup, TCP, TLS, the server's processing, transfer",
            )
            .const_label("target", target)
            .buckets(PHASE_BUCKETS.to_vec()),
            &["phase"],
        )?;
        registry.register(Box::new(phase_vec.clone()))?;
        let phases = PhaseMap::from_fn(|p: Phase| phase_vec.with_label_values(&[p.name()]));
        Ok(Metrics {
            requests,
            duration,
            success,
            last_success,
            http_status,
            expires_in,
            violations,
            cert_expiry,
            tls_version,
            tls_cipher,
            phases,
            phase_vec,
            then: None,
        })
    }

    /// As [`Metrics::register`], with the `--then` series when `then` is set.
    pub fn register_with(registry: &Registry, target: &str, then: bool) -> prometheus::Result<Metrics> {
        let mut m = Metrics::register(registry, target)?;
        if then {
            m.then = Some(ThenMetrics::register(registry, target)?);
        }
        Ok(m)
    }

    /// Whether the target's `--then` series are registered.
    pub fn has_then(&self) -> bool {
        self.then.is_some()
    }

    /// Takes the target's series out of `registry` (its target left the config).
    pub fn unregister(&self, registry: &Registry) {
        let collectors: [Box<dyn prometheus::core::Collector>; 11] = [
            Box::new(self.requests.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.success.clone()),
            Box::new(self.last_success.clone()),
            Box::new(self.http_status.clone()),
            Box::new(self.expires_in.clone()),
            Box::new(self.violations.clone()),
            Box::new(self.cert_expiry.clone()),
            Box::new(self.tls_version.clone()),
            Box::new(self.tls_cipher.clone()),
            Box::new(self.phase_vec.clone()),
        ];
        for c in collectors.into_iter().chain(self.then.iter().flat_map(ThenMetrics::collectors)) {
            let _ = registry.unregister(c);
        }
    }

    /// Counts one call and sets the last-probe gauges.
    pub fn observe(&self, obs: &Observation) {
        self.requests.with_label_values(&[obs.outcome.as_str()]).inc();
        self.duration.observe(obs.latency().as_secs_f64());
        self.http_status.set(obs.status.map_or(0, i64::from));
        for (h, d) in self.phases.values().zip(obs.phases.listed().into_values()) {
            if let Some(d) = d {
                h.observe(d.as_secs_f64());
            }
        }
        if let Some(t) = obs.cert_not_after {
            self.cert_expiry.with_label_values::<&str>(&[]).set(t as f64);
        }
        for (info, value) in [(&self.tls_version, obs.tls_version), (&self.tls_cipher, obs.tls_cipher)] {
            if let Some(value) = value {
                one_of(info, value);
            }
        }
        for v in obs.counted_violations() {
            self.violations.with_label_values(&[v.path.as_str()]).inc();
        }
        if obs.is_ok() {
            self.success.set(1);
            self.last_success.with_label_values::<&str>(&[]).set(unix_now());
            if let Some(e) = obs.token_lifetime() {
                self.expires_in.with_label_values::<&str>(&[]).set(e);
            }
        } else {
            self.success.set(0);
        }
        if let Some(then) = &self.then {
            then.journey.set(i64::from(obs.journey_ok()));
            if let Some(step) = &obs.then {
                then.requests.with_label_values(&[step.outcome.as_str()]).inc();
                then.duration.observe(step.latency().as_secs_f64());
            }
        }
    }
}

/// Makes `value` the one series of an info gauge, at 1: a version that changed leaves
/// no series of the old one behind.
fn one_of(info: &IntGaugeVec, value: &str) {
    let series = info.with_label_values(&[value]);
    if series.get() != 1 {
        info.reset();
        info.with_label_values(&[value]).set(1);
    }
}

/// The series of the wrong-password login (docs/metrics.md): `check --wrong-password`
/// and `serve`'s `wrong_password_probe`.
#[derive(Clone)]
pub struct DoorMetrics {
    probes: IntCounterVec,
    accepted: GaugeVec,
    last: GaugeVec,
}

impl DoorMetrics {
    pub fn register(registry: &Registry, target: &str) -> prometheus::Result<DoorMetrics> {
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("target", target);
        let probes = IntCounterVec::new(
            opts(
                "nehr_probe_wrong_password_probes_total",
                "Logins with a wrong password, by result: refused (401), accepted (200) or undecided",
            ),
            &["result"],
        )?;
        // Vectors with no variable label so that the series is absent until the first
        // probe: a 0 before it would read as "the door is shut".
        let accepted = GaugeVec::new(
            opts("nehr_probe_wrong_password_accepted", "1 if the last wrong-password login got a 200, else 0"),
            &[],
        )?;
        let last = GaugeVec::new(
            opts(
                "nehr_probe_wrong_password_last_probe_timestamp_seconds",
                "When the last wrong-password login ended, Unix seconds",
            ),
            &[],
        )?;
        for c in [
            Box::new(probes.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(accepted.clone()),
            Box::new(last.clone()),
        ] {
            registry.register(c)?;
        }
        for l in Door::LABELS {
            probes.with_label_values(&[l]);
        }
        Ok(DoorMetrics { probes, accepted, last })
    }

    /// Takes the series out of `registry`.
    pub fn unregister(&self, registry: &Registry) {
        let _ = registry.unregister(Box::new(self.probes.clone()));
        let _ = registry.unregister(Box::new(self.accepted.clone()));
        let _ = registry.unregister(Box::new(self.last.clone()));
    }

    pub fn observe(&self, door: Door) {
        self.probes.with_label_values(&[door.label()]).inc();
        // Undecided says nothing about the door: the last verdict stands.
        if door != Door::Undecided {
            self.accepted.with_label_values::<&str>(&[]).set(f64::from(u8::from(door == Door::Open)));
        }
        self.last.with_label_values::<&str>(&[]).set(unix_now());
    }
}

/// `nehr_probe_build_info{version} 1`, once per registry.
pub fn register_build_info(registry: &Registry) -> prometheus::Result<()> {
    let info = IntGauge::with_opts(
        Opts::new("nehr_probe_build_info", "nehr-probe build; always 1")
            .const_label("version", env!("CARGO_PKG_VERSION")),
    )?;
    info.set(1);
    registry.register(Box::new(info))
}

/// The registry in the text exposition format.
pub fn encode(registry: &Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buf).expect("text encoding of gathered metrics");
    String::from_utf8(buf).expect("metrics text is UTF-8")
}

pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::validate::{TokenFacts, Violation};
    use std::time::{Duration, Instant};

    fn obs(outcome: Outcome, status: Option<u16>) -> Observation {
        let t = Instant::now();
        Observation::new(0, t, t, t + Duration::from_millis(42), status, outcome)
    }

    #[test]
    fn unregister_takes_every_series_of_the_target_and_only_those() {
        let reg = Registry::new();
        let (gone, stays) = (Metrics::register(&reg, "gone").unwrap(), Metrics::register(&reg, "stays").unwrap());
        let mut ok = obs(Outcome::Ok, Some(200));
        ok.cert_not_after = Some(1_798_761_600);
        for m in [&gone, &stays] {
            m.observe(&ok);
            m.observe(&obs(Outcome::InvalidBody, Some(200)));
        }
        let of = |t: &str, name: &str| -> Vec<String> {
            t.lines().filter(|l| l.contains(&format!("target=\"{name}\""))).map(String::from).collect()
        };
        let before = encode(&reg);
        assert!(!of(&before, "gone").is_empty());
        gone.unregister(&reg);
        let after = encode(&reg);
        assert_eq!(of(&after, "gone"), Vec::<String>::new(), "{after}");
        assert_eq!(of(&after, "stays"), of(&before, "stays"));
        // Registered again, it starts from zero.
        let back = Metrics::register(&reg, "gone").unwrap();
        back.observe(&ok);
        assert!(encode(&reg).contains("nehr_probe_requests_total{outcome=\"ok\",target=\"gone\"} 1"));
    }

    #[test]
    fn all_outcomes_exist_from_the_start_and_counts_follow() {
        let reg = Registry::new();
        let m = Metrics::register(&reg, "default").unwrap();
        register_build_info(&reg).unwrap();
        let text = encode(&reg);
        for o in Outcome::ALL {
            assert!(
                text.contains(&format!("nehr_probe_requests_total{{outcome=\"{o}\",target=\"default\"}} 0")),
                "{text}"
            );
        }
        for unset in ["nehr_probe_token_expires_in_seconds", "nehr_probe_last_success_timestamp_seconds"] {
            assert!(!text.contains(unset), "{unset} before any valid token: {text}");
        }
        let mut ok = obs(Outcome::Ok, Some(200));
        ok.token = Some(TokenFacts { token_type: Some("bearer".into()), expires_in: Some(86399), scope: None });
        m.observe(&ok);
        let mut bad = obs(Outcome::InvalidBody, Some(200));
        bad.violations.push(Violation { path: "/result/expires_in".into(), message: "must be > 0".into() });
        m.observe(&bad);
        let text = encode(&reg);
        assert!(text.contains("nehr_probe_requests_total{outcome=\"ok\",target=\"default\"} 1"));
        assert!(text.contains("nehr_probe_schema_violations_total{path=\"/result/expires_in\",target=\"default\"} 1"));
        assert!(text.contains("nehr_probe_success{target=\"default\"} 0"));
        assert!(text.contains("nehr_probe_token_expires_in_seconds{target=\"default\"} 86399"));
        assert!(text.contains("nehr_probe_request_duration_seconds_count{target=\"default\"} 2"));
        assert!(text.contains("nehr_probe_build_info{version="));
        assert!(!text.contains("nehr_probe_tls_cert_expiry"), "absent until an https answer: {text}");
        let mut tls = obs(Outcome::Ok, Some(200));
        tls.cert_not_after = Some(1_798_761_600);
        tls.phases.tls = Some(Duration::from_micros(900));
        tls.phases.processing = Some(Duration::from_millis(40));
        m.observe(&tls);
        let text = encode(&reg);
        let phase = |p: &str, le: &str| {
            format!("nehr_probe_phase_duration_seconds_bucket{{phase=\"{p}\",target=\"default\",le=\"{le}\"}}")
        };
        assert!(text.contains(&(phase("tls", "0.001") + " 1")), "{text}");
        assert!(text.contains(&(phase("tls", "0.0005") + " 0")), "{text}");
        assert!(text.contains(&(phase("processing", "0.05") + " 1")), "{text}");
        assert!(text.contains("nehr_probe_phase_duration_seconds_count{phase=\"resolve\",target=\"default\"} 0"));
        assert!(text.contains("nehr_probe_tls_cert_expiry_timestamp_seconds{target=\"default\"} 1798761600"), "{text}");
        assert!(!text.contains("nehr_probe_tls_version_info"), "absent until a handshake is known: {text}");
    }

    #[test]
    fn the_tls_version_and_cipher_are_those_of_the_last_handshake() {
        let reg = Registry::new();
        let m = Metrics::register(&reg, "default").unwrap();
        let mut tls = obs(Outcome::Ok, Some(200));
        (tls.tls_version, tls.tls_cipher) = (Some("TLS 1.3"), Some("TLS_AES_256_GCM_SHA384"));
        m.observe(&tls);
        m.observe(&obs(Outcome::ConnectError, None));
        let text = encode(&reg);
        assert!(text.contains("nehr_probe_tls_version_info{target=\"default\",version=\"TLS 1.3\"} 1"), "{text}");
        assert!(text.contains("nehr_probe_tls_cipher_info{cipher=\"TLS_AES_256_GCM_SHA384\",target=\"default\"} 1"));
        (tls.tls_version, tls.tls_cipher) = (Some("TLS 1.2"), Some("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"));
        m.observe(&tls);
        let text = encode(&reg);
        assert_eq!(text.matches("nehr_probe_tls_version_info{").count(), 1, "{text}");
        assert!(text.contains("version=\"TLS 1.2\"} 1") && !text.contains("TLS 1.3"), "{text}");
        assert_eq!(text.matches("nehr_probe_tls_cipher_info{").count(), 1, "{text}");
        m.unregister(&reg);
        assert!(!encode(&reg).contains("nehr_probe_tls"), "{}", encode(&reg));
    }

    #[test]
    fn then_series_exist_only_with_then_and_follow_the_journeys() {
        let reg = Registry::new();
        let plain = Metrics::register_with(&reg, "plain", false).unwrap();
        let then = Metrics::register_with(&reg, "then", true).unwrap();
        let text = encode(&reg);
        assert!(!text.contains("nehr_probe_then_requests_total{outcome=\"accepted\",target=\"plain\"}"));
        for o in StepOutcome::ALL {
            assert!(text.contains(&format!("nehr_probe_then_requests_total{{outcome=\"{o}\",target=\"then\"}} 0")));
        }
        let mut refused = obs(Outcome::Ok, Some(200));
        refused.then = Some(crate::call::Step {
            outcome: StepOutcome::TokenRefused,
            status: Some(401),
            sent: refused.done,
            done: refused.done + Duration::from_millis(3),
            detail: None,
            phases: Default::default(),
            connection: None,
        });
        plain.observe(&refused);
        then.observe(&refused);
        let text = encode(&reg);
        assert!(text.contains("nehr_probe_then_requests_total{outcome=\"token_refused\",target=\"then\"} 1"), "{text}");
        assert!(text.contains("nehr_probe_journey_success{target=\"then\"} 0"), "{text}");
        assert!(text.contains("nehr_probe_success{target=\"then\"} 1"), "the login itself was ok: {text}");
        assert!(text.contains("nehr_probe_then_duration_seconds_count{target=\"then\"} 1"), "{text}");
        assert!(!text.contains("nehr_probe_journey_success{target=\"plain\"}"), "{text}");
        then.unregister(&reg);
        assert!(!encode(&reg).contains("target=\"then\""));
    }

    #[test]
    fn two_targets_share_a_registry() {
        let reg = Registry::new();
        Metrics::register(&reg, "production").unwrap();
        Metrics::register(&reg, "staging").unwrap();
        let text = encode(&reg);
        assert!(text.contains("target=\"production\""));
        assert!(text.contains("target=\"staging\""));
    }
}
