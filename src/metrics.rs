//! The Prometheus metrics of docs/metrics.md, fed by observations: one [`Metrics`] per
//! target, registered in a caller's [`Registry`] so `serve`, `load --metrics-listen` and
//! `check --format prometheus` print the same names. The metric types are the official
//! client's (`prometheus-client`); the latency histograms are classic and native at once,
//! and keep the last call of each classic bucket as its exemplar (`call`, the call's
//! sequence number). A scrape is gathered into Prometheus' data model and written in the
//! format the scraper asks for ([`crate::util::exposition`]).
//!
//! Labels stay low-cardinality: the ten outcomes, schema paths (bounded by the schema)
//! and configured target names. Never an error text, a URL with a query, or a token.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, NativeHistogramConfig};
use prometheus_client::registry::Registry as ClientRegistry;

use crate::call::door::Door;
use crate::call::keyed::Named;
use crate::call::observation::{HttpVersion, StepOutcome};
use crate::call::phases::{Phase, PhaseMap};
use crate::call::{Observation, Outcome};
use crate::util::exposition::{self, Format, ProcessCollector, Seen, Slots, series_key};
pub use crate::util::exposition::{Registry, gather};

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = exposition::TEXT;

/// Buckets of `nehr_probe_request_duration_seconds`: 1 ms to 10 s.
pub const DURATION_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0];

/// Buckets of `nehr_probe_phase_duration_seconds`: 100 µs to 10 s (a phase on a LAN,
/// such as a TCP handshake, takes well under a millisecond).
pub const PHASE_BUCKETS: [f64; 17] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0];

/// The schema of the native histograms: 2^(2^-3), each bucket 9.05 % wider than the one
/// below (a quantile is off by at most that), the resolution client_golang's default
/// bucket factor 1.1 picks. 100 µs to 10 s is 133 buckets at most; usually a target's
/// latencies fill a dozen.
pub const NATIVE_SCHEMA: i8 = 3;

/// More buckets than that in one series and it halves its resolution (never reached
/// from 100 µs to 10 s).
pub const NATIVE_MAX_BUCKETS: usize = 160;

/// How much wider each native bucket is than the one below it.
pub fn native_bucket_growth() -> f64 {
    2f64.powf(2f64.powi(-i32::from(NATIVE_SCHEMA)))
}

type OneLabel = [(&'static str, &'static str); 1];
type NoLabel = [(&'static str, &'static str); 0];
/// A gauge absent until set: a 0 would read as "token lifetime 0 s" (and fire the alert
/// on it), "last success in 1970", "certificate expired in 1970".
type Optional<N = f64, A = AtomicU64> = Family<NoLabel, Gauge<N, A>>;

/// A latency histogram: classic buckets and native ones in one series, with exemplars.
#[derive(Clone)]
struct Latency {
    histogram: Histogram,
    bounds: &'static [f64],
    slots: Slots,
}

fn latency_histogram(bounds: &[f64]) -> Histogram {
    Histogram::new_classic_and_native(
        bounds.iter().copied(),
        NativeHistogramConfig::with_schema(NATIVE_SCHEMA).max_buckets(NATIVE_MAX_BUCKETS),
    )
}

fn duration_histogram() -> Histogram {
    latency_histogram(&DURATION_BUCKETS)
}

fn phase_histogram() -> Histogram {
    latency_histogram(&PHASE_BUCKETS)
}

impl Latency {
    fn new(histogram: Histogram, bounds: &'static [f64]) -> Latency {
        Latency { histogram, bounds, slots: Arc::new(Mutex::new(vec![None; bounds.len() + 1])) }
    }

    fn observe(&self, seconds: f64, call: u64) {
        self.histogram.observe(seconds);
        let bucket = self.bounds.iter().position(|b| seconds <= *b).unwrap_or(self.bounds.len());
        let seen = Seen { call, value: seconds, at: SystemTime::now() };
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)[bucket] = Some(seen);
    }
}

/// A counter's name as prometheus-client takes it: without the `_total` it adds.
fn counter_name(full: &'static str) -> &'static str {
    full.strip_suffix("_total").expect("a counter's name ends in _total")
}

/// The sub-registry of `target`'s series: each carries `target`.
fn of_target<'r>(registry: &'r mut ClientRegistry, target: &str) -> &'r mut ClientRegistry {
    registry.sub_registry_with_label((Cow::Borrowed("target"), Cow::Owned(target.to_string())))
}

/// The metrics of one target.
#[derive(Clone)]
pub struct Metrics {
    target: String,
    requests: Family<OneLabel, Counter>,
    duration: Latency,
    success: Gauge,
    last_success: Optional,
    http_status: Gauge,
    expires_in: Optional<i64, std::sync::atomic::AtomicI64>,
    violations: Family<[(&'static str, String); 1], Counter>,
    cert_expiry: Optional,
    /// One series per phase: no label lookup per call.
    phases: PhaseMap<Latency>,
    phase_family: Family<OneLabel, Histogram, fn() -> Histogram>,
    /// The TLS version and cipher suite of the last handshake: one series each, at 1.
    tls_version: Family<OneLabel, Gauge>,
    tls_cipher: Family<OneLabel, Gauge>,
    /// The HTTP version of the last answer: one series, at 1.
    http_version: Family<OneLabel, Gauge>,
    /// `--then`: registered only for a target that makes the next call.
    then: Option<ThenMetrics>,
}

/// The series of the call after the login (docs/metrics.md, `--then`).
#[derive(Clone)]
struct ThenMetrics {
    requests: Family<OneLabel, Counter>,
    duration: Latency,
    journey: Gauge,
}

const REQUESTS: &str = "nehr_probe_requests_total";
const DURATION: &str = "nehr_probe_request_duration_seconds";
const PHASES: &str = "nehr_probe_phase_duration_seconds";
const THEN_REQUESTS: &str = "nehr_probe_then_requests_total";
const THEN_DURATION: &str = "nehr_probe_then_duration_seconds";

impl ThenMetrics {
    fn new() -> ThenMetrics {
        let requests = Family::default();
        for o in StepOutcome::ALL {
            let _ = requests.get_or_create(&[("outcome", o.as_str())]);
        }
        ThenMetrics {
            requests,
            duration: Latency::new(duration_histogram(), &DURATION_BUCKETS),
            journey: Gauge::default(),
        }
    }

    fn register(&self, r: &mut ClientRegistry) {
        r.register(
            counter_name(THEN_REQUESTS),
            "Calls made with the token after an ok login (--then), by outcome",
            self.requests.clone(),
        );
        r.register(THEN_DURATION, "Latency of the --then calls, from their send", self.duration.histogram.clone());
        r.register(
            "nehr_probe_journey_success",
            "1 if the last probe's login was ok and the --then call accepted its token, else 0",
            self.journey.clone(),
        );
    }
}

impl Metrics {
    /// Registers the metrics of the target named `target` (its `target` label).
    pub fn register(registry: &Registry, target: &str) -> anyhow::Result<Metrics> {
        Metrics::register_with(registry, target, false)
    }

    /// As [`Metrics::register`], with the `--then` series when `then` is set.
    pub fn register_with(registry: &Registry, target: &str, then: bool) -> anyhow::Result<Metrics> {
        let requests = Family::default();
        for outcome in Outcome::ALL {
            let _ = requests.get_or_create(&[("outcome", outcome.as_str())]);
        }
        let phase_family: Family<OneLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(phase_histogram as fn() -> Histogram);
        let phases = PhaseMap::from_fn(|p: Phase| {
            Latency::new(phase_family.get_or_create(&[("phase", p.name())]).clone(), &PHASE_BUCKETS)
        });
        let m = Metrics {
            target: target.to_string(),
            requests,
            duration: Latency::new(duration_histogram(), &DURATION_BUCKETS),
            success: Gauge::default(),
            last_success: Family::default(),
            http_status: Gauge::default(),
            expires_in: Family::default(),
            violations: Family::default(),
            cert_expiry: Family::default(),
            phases,
            phase_family,
            tls_version: Family::default(),
            tls_cipher: Family::default(),
            http_version: Family::default(),
            then: then.then(ThenMetrics::new),
        };
        let mut exemplars = vec![(series_key(DURATION, &[("target", target)]), Arc::clone(&m.duration.slots))];
        for (p, l) in &m.phases {
            exemplars.push((series_key(PHASES, &[("phase", p.name()), ("target", target)]), Arc::clone(&l.slots)));
        }
        if let Some(t) = &m.then {
            exemplars.push((series_key(THEN_DURATION, &[("target", target)]), Arc::clone(&t.duration.slots)));
        }
        let series = m.clone();
        registry.add(format!("metrics/{target}"), move |r| series.register_into(r), exemplars)?;
        Ok(m)
    }

    fn register_into(&self, registry: &mut ClientRegistry) {
        let r = of_target(registry, &self.target);
        r.register(counter_name(REQUESTS), "getToken calls made, by outcome", self.requests.clone());
        r.register(DURATION, "Latency of getToken calls", self.duration.histogram.clone());
        r.register("nehr_probe_success", "1 if the last probe got a valid token, else 0", self.success.clone());
        r.register(
            "nehr_probe_last_success_timestamp_seconds",
            "Unix time of the last probe that got a valid token",
            self.last_success.clone(),
        );
        r.register(
            "nehr_probe_http_status_code",
            "HTTP status of the last answer (0 when there was none)",
            self.http_status.clone(),
        );
        r.register(
            "nehr_probe_token_expires_in_seconds",
            "expires_in of the last valid token",
            self.expires_in.clone(),
        );
        r.register(
            counter_name("nehr_probe_schema_violations_total"),
            "Schema violations seen in answers, by JSON Pointer",
            self.violations.clone(),
        );
        r.register(
            "nehr_probe_tls_cert_expiry_timestamp_seconds",
            "When the earliest certificate the target presented on its last TLS handshake expires (Unix time)",
            self.cert_expiry.clone(),
        );
        r.register(
            PHASES,
            "Where the calls' time went: name lookup, TCP, TLS, the server's processing, transfer",
            self.phase_family.clone(),
        );
        r.register(
            "nehr_probe_tls_version_info",
            "The TLS version of the last answer's connection; always 1",
            self.tls_version.clone(),
        );
        r.register(
            "nehr_probe_tls_cipher_info",
            "The TLS cipher suite of the last answer's connection; always 1",
            self.tls_cipher.clone(),
        );
        r.register(
            "nehr_probe_http_version_info",
            "The HTTP version of the last answer (HTTP/1.1, HTTP/2); always 1",
            self.http_version.clone(),
        );
        if let Some(then) = &self.then {
            then.register(r);
        }
    }

    /// Whether the target's `--then` series are registered.
    pub fn has_then(&self) -> bool {
        self.then.is_some()
    }

    /// Takes the target's series out of `registry` (its target left the config).
    pub fn unregister(&self, registry: &Registry) {
        registry.remove(&format!("metrics/{}", self.target));
    }

    /// Counts one call and sets the last-probe gauges.
    pub fn observe(&self, obs: &Observation) {
        self.requests.get_or_create(&[("outcome", obs.outcome.as_str())]).inc();
        self.duration.observe(obs.latency().as_secs_f64(), obs.seq);
        self.http_status.set(obs.status.map_or(0, i64::from));
        for (h, d) in self.phases.values().zip(obs.phases.listed().into_values()) {
            if let Some(d) = d {
                h.observe(d.as_secs_f64(), obs.seq);
            }
        }
        if let Some(t) = obs.cert_not_after {
            self.cert_expiry.get_or_create(&[]).set(t as f64);
        }
        for (info, label, value) in [
            (&self.tls_version, "version", obs.tls_version),
            (&self.tls_cipher, "cipher", obs.tls_cipher),
            (&self.http_version, "version", obs.http_version.map(HttpVersion::name)),
        ] {
            if let Some(value) = value {
                one_of(info, label, value);
            }
        }
        for v in obs.counted_violations() {
            self.violations.get_or_create(&[("path", v.path.clone())]).inc();
        }
        if obs.is_ok() {
            self.success.set(1);
            self.last_success.get_or_create(&[]).set(unix_now());
            if let Some(e) = obs.token_lifetime() {
                self.expires_in.get_or_create(&[]).set(e);
            }
        } else {
            self.success.set(0);
        }
        if let Some(then) = &self.then {
            then.journey.set(i64::from(obs.journey_ok()));
            if let Some(step) = &obs.then {
                then.requests.get_or_create(&[("outcome", step.outcome.as_str())]).inc();
                then.duration.observe(step.latency().as_secs_f64(), obs.seq);
            }
        }
    }
}

/// Makes `value` the one series of an info gauge, at 1: a version that changed leaves
/// no series of the old one behind.
fn one_of(info: &Family<OneLabel, Gauge>, label: &'static str, value: &'static str) {
    let now = info.get(&[(label, value)]).map(|g| g.get());
    if now != Some(1) {
        info.clear();
        info.get_or_create(&[(label, value)]).set(1);
    }
}

/// The series of the wrong-password login (docs/metrics.md): `check --wrong-password`
/// and `serve`'s `wrong_password_probe`.
#[derive(Clone)]
pub struct DoorMetrics {
    target: String,
    probes: Family<OneLabel, Counter>,
    // Absent until the first probe: a 0 before it would read as "the door is shut".
    accepted: Optional,
    last: Optional,
}

impl DoorMetrics {
    pub fn register(registry: &Registry, target: &str) -> anyhow::Result<DoorMetrics> {
        let probes = Family::default();
        for l in Door::LABELS {
            let _ = probes.get_or_create(&[("result", l)]);
        }
        let m =
            DoorMetrics { target: target.to_string(), probes, accepted: Family::default(), last: Family::default() };
        let series = m.clone();
        registry.add(
            format!("door/{target}"),
            move |registry| {
                let r = of_target(registry, &series.target);
                r.register(
                    counter_name("nehr_probe_wrong_password_probes_total"),
                    "Logins with a wrong password, by result: refused (401), accepted (200) or undecided",
                    series.probes.clone(),
                );
                r.register(
                    "nehr_probe_wrong_password_accepted",
                    "1 if the last wrong-password login got a 200, else 0",
                    series.accepted.clone(),
                );
                r.register(
                    "nehr_probe_wrong_password_last_probe_timestamp_seconds",
                    "When the last wrong-password login ended, Unix seconds",
                    series.last.clone(),
                );
            },
            Vec::new(),
        )?;
        Ok(m)
    }

    /// Takes the series out of `registry`.
    pub fn unregister(&self, registry: &Registry) {
        registry.remove(&format!("door/{}", self.target));
    }

    pub fn observe(&self, door: Door) {
        self.probes.get_or_create(&[("result", door.label())]).inc();
        // Undecided says nothing about the door: the last verdict stands.
        if door != Door::Undecided {
            self.accepted.get_or_create(&[]).set(f64::from(u8::from(door == Door::Open)));
        }
        self.last.get_or_create(&[]).set(unix_now());
    }
}

/// A counter of `target` in `registry` under `name` (with `_total`), for the series a
/// command adds of its own (`load`'s dropped requests and late starts).
pub fn register_counter(
    registry: &Registry,
    target: &str,
    name: &'static str,
    help: &'static str,
) -> anyhow::Result<Counter> {
    let counter = Counter::default();
    let (c, target_name) = (counter.clone(), target.to_string());
    registry.add(
        format!("{name}/{target}"),
        move |r| of_target(r, &target_name).register(counter_name(name), help, c.clone()),
        Vec::new(),
    )?;
    Ok(counter)
}

/// `nehr_probe_build_info{version} 1`, once per registry.
pub fn register_build_info(registry: &Registry) -> anyhow::Result<()> {
    let info: Family<OneLabel, Gauge> = Family::default();
    info.get_or_create(&[("version", env!("CARGO_PKG_VERSION"))]).set(1);
    registry.add(
        "build_info".into(),
        move |r| r.register("nehr_probe_build_info", "nehr-probe build; always 1", info.clone()),
        Vec::new(),
    )
}

/// The `process_*` series of this process (Linux), once per registry.
pub fn register_process(registry: &Registry) -> anyhow::Result<()> {
    registry.add("process".into(), |r| r.register_collector(Box::new(ProcessCollector)), Vec::new())
}

/// The registry in the text exposition format.
pub fn encode(registry: &Registry) -> String {
    exposition::text(&registry.gather())
}

/// The registry in `format`.
pub fn encode_as(registry: &Registry, format: Format) -> Vec<u8> {
    format.render(&registry.gather())
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
    fn the_http_version_is_that_of_the_last_answer() {
        let reg = Registry::new();
        let m = Metrics::register(&reg, "default").unwrap();
        m.observe(&obs(Outcome::ConnectError, None));
        assert!(!encode(&reg).contains("nehr_probe_http_version_info"), "absent until an answer: {}", encode(&reg));
        let mut answer = obs(Outcome::Ok, Some(200));
        answer.http_version = Some(HttpVersion::Http2);
        m.observe(&answer);
        m.observe(&obs(Outcome::Timeout, None));
        let text = encode(&reg);
        assert!(text.contains("nehr_probe_http_version_info{target=\"default\",version=\"HTTP/2\"} 1"), "{text}");
        answer.http_version = Some(HttpVersion::Http11);
        m.observe(&answer);
        let text = encode(&reg);
        assert_eq!(text.matches("nehr_probe_http_version_info{").count(), 1, "{text}");
        assert!(text.contains("version=\"HTTP/1.1\"} 1") && !text.contains("version=\"HTTP/2\""), "{text}");
        m.unregister(&reg);
        assert!(!encode(&reg).contains("nehr_probe_http_version"), "{}", encode(&reg));
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
