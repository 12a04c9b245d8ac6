//! `check`'s verdict: one observation judged against the limits (OK, WARNING, CRITICAL
//! by outcome, latency, token lifetime and certificate time left), and its two
//! renderings of its own: the Nagios line with perfdata and the JSON object
//! (docs/json.md). The Prometheus rendering is [`crate::metrics`]'.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::call::door::Door;
use crate::call::keyed::Named;
use crate::call::observation::HttpVersion;
use crate::call::{Observation, Outcome, Prober};
use crate::util::fmt::cert_note;
use crate::util::units::{round6, trim3};

/// Nagios plugin states; the value is the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// What `check` judges a probe against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Latency.
    pub warning: Duration,
    pub critical: Duration,
    /// Time left before the server's certificate expires (https only; `None`: not judged).
    pub cert_warning: Option<Duration>,
    pub cert_critical: Option<Duration>,
    /// A valid token's `expires_in` below this is WARNING (`None`: not judged).
    pub min_token_lifetime: Option<Duration>,
    /// The call's deadline (the perfdata's max).
    pub timeout: Duration,
    /// `--require-http2`: an answer in another HTTP version is CRITICAL.
    pub require_http2: bool,
}

impl Limits {
    /// Latency limits only, no certificate or token-lifetime limit.
    pub fn latency(warning: Duration, critical: Duration, timeout: Duration) -> Limits {
        Limits {
            warning,
            critical,
            cert_warning: None,
            cert_critical: None,
            min_token_lifetime: None,
            timeout,
            require_http2: false,
        }
    }
}

/// A probe judged against the limits.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub status: Status,
    pub observation: Observation,
    pub message: String,
    pub limits: Limits,
    /// Seconds until the server's certificate expires (negative: expired), when known.
    pub cert_left: Option<i64>,
    /// `--wrong-password`: what the wrong-password login found.
    pub door: Option<Door>,
}

impl Verdict {
    /// Any outcome but `ok` is CRITICAL; an ok answer is judged by its latency, and by its
    /// token's lifetime when a minimum is given. Over https, a certificate expiring
    /// within a given limit raises the status too.
    pub fn judge(observation: Observation, limits: Limits) -> Verdict {
        let latency = observation.latency();
        let mut message = observation.reason();
        let mut status = if observation.outcome != Outcome::Ok {
            Status::Critical
        } else if latency >= limits.critical {
            message.push_str(&format!(" (critical at {} s)", trim3(limits.critical.as_secs_f64())));
            Status::Critical
        } else if latency >= limits.warning {
            message.push_str(&format!(" (warning at {} s)", trim3(limits.warning.as_secs_f64())));
            Status::Warning
        } else {
            Status::Ok
        };
        let lifetime = observation.token_lifetime();
        if let (Some(min), Some(lifetime)) = (limits.min_token_lifetime, lifetime)
            && lifetime < secs(min)
        {
            message.push_str(&format!(" (shorter than --min-token-lifetime {} s)", min.as_secs()));
            status = status.max(Status::Warning);
        }
        let cert_left = observation.cert_seconds_left(crate::metrics::unix_now() as i64);
        if let Some(left) = cert_left {
            let within = |limit: Option<Duration>| limit.is_some_and(|l| left < secs(l));
            let cert_status = if within(limits.cert_critical) {
                Status::Critical
            } else if within(limits.cert_warning) {
                Status::Warning
            } else {
                Status::Ok
            };
            if cert_status != Status::Ok {
                message.push_str(&format!("; {}", cert_note(left)));
                status = status.max(cert_status);
            }
        }
        if let Some(step) = observation.then.as_ref().filter(|_| observation.is_ok()) {
            if step.is_accepted() {
                message.push_str(&format!("; next call accepted in {:.3} s", step.latency().as_secs_f64()));
            } else {
                // The login's own words first would bury why nobody can work.
                message = format!("{}; after {}", step.reason(), observation.reason());
                status = Status::Critical;
            }
        }
        // A login already CRITICAL keeps its own words; the line names the protocol.
        if let Some(version) = observation.http_version.filter(|v| limits.require_http2 && *v != HttpVersion::Http2)
            && status < Status::Critical
        {
            message = format!("answered over {version}, not HTTP/2 (--require-http2); {message}");
            status = Status::Critical;
        }
        Verdict { status, observation, message, limits, cert_left, door: None }
    }

    /// `NEHR-TOKEN OK - valid bearer token, expires in 86399 s, in 0.042 s over HTTP/1.1 |
    /// time=…`; over https, `in 0.042 s over HTTP/2 and TLS 1.3 | …`; without an answer,
    /// whatever of the two is known.
    pub fn nagios_line(&self) -> String {
        let o = &self.observation;
        let latency = o.latency().as_secs_f64();
        // A '|' in the text would start the perfdata early.
        let text = self.message.replace('|', "/");
        let over = match (o.http_version, o.tls_version) {
            (Some(http), Some(tls)) => format!(" over {http} and {tls}"),
            (Some(http), None) => format!(" over {http}"),
            (None, Some(tls)) => format!(" over {tls}"),
            (None, None) => String::new(),
        };
        let mut line = format!(
            "NEHR-TOKEN {} - {text}, in {latency:.3} s{over} | time={latency:.6}s;{};{};0;{} size={}B;;;0",
            self.status.as_str(),
            trim3(self.limits.warning.as_secs_f64()),
            trim3(self.limits.critical.as_secs_f64()),
            trim3(self.limits.timeout.as_secs_f64()),
            o.body_bytes,
        );
        if let Some(left) = self.cert_left {
            // Range syntax of the plugin guidelines: "N:" alerts below N.
            let limit = |l: Option<Duration>| l.map(|d| format!("{}:", d.as_secs())).unwrap_or_default();
            let (w, c) = (limit(self.limits.cert_warning), limit(self.limits.cert_critical));
            line.push_str(&format!(" cert_expires_in={left}s;{w};{c};;"));
        }
        if let Some(step) = &o.then {
            line.push_str(&format!(
                " then_time={:.6}s;;;0;{}",
                step.latency().as_secs_f64(),
                trim3(self.limits.timeout.as_secs_f64())
            ));
        }
        line
    }

    /// check_curl's extended perfdata (`-E`), its names, so graph templates made for it
    /// read ours: `time_connect` (name lookup and TCP), `time_ssl` (the TLS handshake,
    /// https only), `time_headers` (writing the request), `time_firstbyte` (the server's
    /// time to the first byte), `time_transfer` (the rest of the answer). A phase the
    /// call did not reach is `U`, the plugin guidelines' "could not be determined".
    pub fn extended_perfdata(&self) -> String {
        let o = &self.observation;
        let p = &o.phases;
        let max = trim3(self.limits.timeout.as_secs_f64());
        let item = |name: &str, d: Option<Duration>| match d {
            Some(d) => format!(" {name}={:.6}s;;;0;{max}", d.as_secs_f64()),
            None => format!(" {name}=U"),
        };
        let connect = match (p.resolve, p.connect) {
            (r, Some(c)) => Some(c + r.unwrap_or_default()),
            (_, None) => None,
        };
        let mut out = item("time_connect", connect);
        if o.is_https() {
            out.push_str(&item("time_ssl", p.tls));
        }
        out.push_str(&item("time_headers", p.sending));
        out.push_str(&item("time_firstbyte", p.processing));
        out.push_str(&item("time_transfer", p.transfer));
        out
    }

    /// The JSON object of docs/json.md (with the certificate's time left over https).
    pub fn json(&self) -> serde_json::Value {
        let o = &self.observation;
        let secs = |d: Option<Duration>| d.map(|d| round6(d.as_secs_f64()));
        let phases: serde_json::Map<String, serde_json::Value> =
            o.phases.listed().into_iter().map(|(p, d)| (p.name().to_string(), secs(d).into())).collect();
        let mut out = json!({
            "status": self.status,
            "outcome": o.outcome,
            "http_status": o.status,
            "latency_seconds": round6(o.latency().as_secs_f64()),
            "body_bytes": o.body_bytes,
            "message": self.message,
            "violations": o.violations,
            "token": o.token,
            "phases_seconds": phases,
            "http_version": o.http_version.map(HttpVersion::name),
        });
        // Over https only: an http target has no certificate.
        if let Some(left) = self.cert_left {
            out["tls_cert_expires_in_seconds"] = left.into();
        }
        if let Some(version) = o.tls_version {
            out["tls_version"] = version.into();
        }
        if let Some(cipher) = o.tls_cipher {
            out["tls_cipher"] = cipher.into();
        }
        if let Some(door) = self.door {
            out["wrong_password"] = door.label().into();
        }
        if let Some(step) = &o.then {
            let phases: serde_json::Map<String, serde_json::Value> =
                step.phases.listed().into_iter().map(|(p, d)| (p.name().to_string(), secs(d).into())).collect();
            out["then"] = json!({
                "outcome": step.outcome,
                "http_status": step.status,
                "latency_seconds": round6(step.latency().as_secs_f64()),
                "message": step.reason(),
                "phases_seconds": phases,
            });
        }
        out
    }
}

/// The status line of a check that could not run (a usage or config error), as
/// monitoring plugins print one: Nagios shows a plugin's stdout, not its stderr.
pub fn unknown_line(error: &str) -> String {
    format!("NEHR-TOKEN {} - {}", Status::Unknown.as_str(), error.replace('|', "/"))
}

/// One probe, judged.
pub async fn probe_once(prober: &Prober, limits: Limits) -> Verdict {
    Verdict::judge(prober.call(0, Instant::now()).await, limits)
}

/// Whole seconds, saturating.
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::validate::{TokenFacts, Violation};

    fn obs(outcome: Outcome, ms: u64) -> Observation {
        let t = Instant::now();
        let mut o = Observation::new(0, t, t, t + Duration::from_millis(ms), Some(200), outcome);
        o.token = Some(TokenFacts {
            token_type: Some("bearer".into()),
            expires_in: Some(86399),
            scope: Some(vec!["read".into()]),
        });
        o.body_bytes = 371;
        o
    }

    fn judge(o: Observation) -> Verdict {
        Verdict::judge(o, Limits::latency(Duration::from_millis(500), Duration::from_secs(2), Duration::from_secs(10)))
    }

    #[test]
    fn ok_line_has_perfdata() {
        let v = judge(obs(Outcome::Ok, 42));
        assert_eq!(v.status, Status::Ok);
        assert_eq!(
            v.nagios_line(),
            "NEHR-TOKEN OK - valid bearer token, expires in 86399 s, in 0.042 s | time=0.042000s;0.5;2;0;10 size=371B;;;0"
        );
    }

    fn then(outcome: crate::call::observation::StepOutcome, status: u16) -> crate::call::Step {
        let t = Instant::now();
        crate::call::Step {
            outcome,
            status: Some(status),
            sent: t,
            done: t + Duration::from_millis(12),
            detail: None,
            phases: Default::default(),
            connection: None,
        }
    }

    #[test]
    fn a_refused_token_is_critical_with_the_reason_first() {
        use crate::call::observation::StepOutcome;
        let mut o = obs(Outcome::Ok, 42);
        o.then = Some(then(StepOutcome::TokenRefused, 401));
        let v = judge(o);
        assert_eq!(v.status, Status::Critical);
        assert!(
            v.nagios_line().starts_with(
                "NEHR-TOKEN CRITICAL - the next call refused the token (HTTP 401); after valid bearer token"
            ),
            "{}",
            v.nagios_line()
        );
        assert!(v.nagios_line().contains(" then_time=0.012000s;;;0;10"), "{}", v.nagios_line());
        assert_eq!(v.json()["then"]["outcome"], "token_refused");
        let mut o = obs(Outcome::Ok, 42);
        o.then = Some(then(StepOutcome::Accepted, 200));
        let v = judge(o);
        assert_eq!(v.status, Status::Ok);
        assert!(v.message.ends_with("; next call accepted in 0.012 s"), "{}", v.message);
    }

    #[test]
    fn latency_thresholds() {
        assert_eq!(judge(obs(Outcome::Ok, 499)).status, Status::Ok);
        let w = judge(obs(Outcome::Ok, 500));
        assert_eq!(w.status, Status::Warning);
        assert!(w.message.contains("warning at 0.5 s"));
        assert_eq!(judge(obs(Outcome::Ok, 2500)).status, Status::Critical);
    }

    #[test]
    fn any_failure_is_critical_and_names_the_field() {
        let mut o = obs(Outcome::InvalidBody, 5);
        o.token = None;
        o.violations = vec![Violation { path: "/result/expires_in".into(), message: "must be > 0".into() }];
        let v = judge(o);
        assert_eq!(v.status, Status::Critical);
        assert!(v.nagios_line().starts_with(
            "NEHR-TOKEN CRITICAL - invalid body: /result/expires_in must be > 0 (HTTP 200), in 0.005 s | "
        ));
        let j = v.json();
        assert_eq!(j["status"], "CRITICAL");
        assert_eq!(j["outcome"], "invalid_body");
        assert_eq!(j["violations"][0]["path"], "/result/expires_in");
    }

    #[test]
    fn pipe_in_a_reason_cannot_break_perfdata() {
        let mut o = obs(Outcome::TransportError, 1);
        o.detail = Some("weird | text".into());
        let line = judge(o).nagios_line();
        assert_eq!(line.matches('|').count(), 1, "{line}");
        assert!(line.contains("weird / text"), "replaced, not lost: {line}");
    }

    #[test]
    fn certificate_limits_raise_the_status_and_show_in_perfdata() {
        const DAY: i64 = 86_400;
        let with_cert = |days_left: i64| {
            let mut o = obs(Outcome::Ok, 42);
            o.cert_not_after = Some(crate::metrics::unix_now() as i64 + days_left * DAY + 60);
            o
        };
        let day = |n: u64| Some(Duration::from_secs(n * DAY as u64));
        let limits = Limits {
            cert_warning: day(21),
            cert_critical: day(7),
            ..Limits::latency(Duration::from_millis(500), Duration::from_secs(2), Duration::from_secs(10))
        };
        let ok = Verdict::judge(with_cert(30), limits);
        assert_eq!(ok.status, Status::Ok);
        let line = ok.nagios_line();
        assert!(line.ends_with(&format!(" cert_expires_in={}s;1814400:;604800:;;", 30 * DAY + 60)), "{line}");
        assert_eq!(ok.json()["tls_cert_expires_in_seconds"], 30 * DAY + 60);

        let warn = Verdict::judge(with_cert(10), limits);
        assert_eq!(warn.status, Status::Warning);
        assert!(warn.message.ends_with("; certificate expires in 10 days"), "{}", warn.message);
        assert_eq!(Verdict::judge(with_cert(3), limits).status, Status::Critical);
        let expired = Verdict::judge(with_cert(-3), limits);
        assert_eq!(expired.status, Status::Critical);
        assert!(expired.message.contains("certificate expired 2 days ago"), "{}", expired.message);

        let mut tls = with_cert(30);
        (tls.tls_version, tls.tls_cipher) = (Some("TLS 1.3"), Some("TLS_AES_128_GCM_SHA256"));
        let v = Verdict::judge(tls, limits);
        assert!(v.nagios_line().contains(", in 0.042 s over TLS 1.3 | time="), "{}", v.nagios_line());
        assert_eq!(
            (v.json()["tls_version"].as_str(), v.json()["tls_cipher"].as_str()),
            (Some("TLS 1.3"), Some("TLS_AES_128_GCM_SHA256"))
        );

        // Not judged unless asked; not shown over plain HTTP.
        assert_eq!(judge(with_cert(3)).status, Status::Ok);
        let plain = judge(obs(Outcome::Ok, 42));
        assert!(!plain.nagios_line().contains("cert"));
        assert!(plain.json().get("tls_cert_expires_in_seconds").is_none());
        assert!(plain.json().get("tls_version").is_none() && !plain.nagios_line().contains("TLS"));
    }

    #[test]
    fn a_short_token_lifetime_warns_when_a_minimum_is_given() {
        let limits = Limits {
            min_token_lifetime: Some(Duration::from_secs(3600)),
            ..Limits::latency(Duration::from_millis(500), Duration::from_secs(2), Duration::from_secs(10))
        };
        let mut short = obs(Outcome::Ok, 42);
        short.token.as_mut().unwrap().expires_in = Some(60);
        let v = Verdict::judge(short.clone(), limits);
        assert_eq!(v.status, Status::Warning);
        assert!(v.message.ends_with("expires in 60 s (shorter than --min-token-lifetime 3600 s)"), "{}", v.message);
        assert_eq!(Verdict::judge(obs(Outcome::Ok, 42), limits).status, Status::Ok);
        assert_eq!(judge(short).status, Status::Ok, "not judged unless asked");
    }

    fn require_http2(o: Observation) -> Verdict {
        let limits = Limits {
            require_http2: true,
            ..Limits::latency(Duration::from_millis(500), Duration::from_secs(2), Duration::from_secs(10))
        };
        Verdict::judge(o, limits)
    }

    #[test]
    fn the_line_and_the_json_name_the_http_version() {
        let mut o = obs(Outcome::Ok, 42);
        o.http_version = Some(HttpVersion::Http11);
        let v = judge(o.clone());
        assert_eq!(
            v.nagios_line(),
            "NEHR-TOKEN OK - valid bearer token, expires in 86399 s, in 0.042 s over HTTP/1.1 | \
             time=0.042000s;0.5;2;0;10 size=371B;;;0"
        );
        assert_eq!(v.json()["http_version"], "HTTP/1.1");
        (o.http_version, o.tls_version) = (Some(HttpVersion::Http2), Some("TLS 1.3"));
        let v = judge(o);
        assert!(v.nagios_line().contains(", in 0.042 s over HTTP/2 and TLS 1.3 | time="), "{}", v.nagios_line());
        assert_eq!(v.json()["http_version"], "HTTP/2");
        let mut none = obs(Outcome::Timeout, 10_000);
        none.status = None;
        let v = judge(none);
        assert!(v.json()["http_version"].is_null() && !v.nagios_line().contains("over"), "{}", v.nagios_line());
    }

    #[test]
    fn require_http2_is_critical_for_any_other_version_and_quiet_for_http2() {
        let mut o = obs(Outcome::Ok, 42);
        o.http_version = Some(HttpVersion::Http2);
        let v = require_http2(o.clone());
        assert_eq!((v.status, v.message.as_str()), (Status::Ok, "valid bearer token, expires in 86399 s"));
        for (version, name) in [(HttpVersion::Http11, "HTTP/1.1"), (HttpVersion::Http10, "HTTP/1.0")] {
            o.http_version = Some(version);
            let v = require_http2(o.clone());
            assert_eq!(v.status, Status::Critical);
            assert!(
                v.nagios_line().starts_with(&format!(
                    "NEHR-TOKEN CRITICAL - answered over {name}, not HTTP/2 (--require-http2); valid bearer token"
                )),
                "{}",
                v.nagios_line()
            );
            assert_eq!(v.nagios_line().lines().count(), 1);
        }
        // Slow and on HTTP/1.1: CRITICAL, with both reasons.
        let mut slow = obs(Outcome::Ok, 600);
        slow.http_version = Some(HttpVersion::Http11);
        let v = require_http2(slow);
        assert_eq!(v.status, Status::Critical);
        assert!(v.message.starts_with("answered over HTTP/1.1") && v.message.contains("(warning at 0.5 s)"));
        // A failed login keeps its own words; no answer, nothing to say about it.
        let mut refused = obs(Outcome::Unauthorized, 5);
        (refused.token, refused.status, refused.http_version) = (None, Some(401), Some(HttpVersion::Http11));
        let v = require_http2(refused);
        assert_eq!(v.status, Status::Critical);
        assert!(!v.message.contains("--require-http2"), "{}", v.message);
        let mut none = obs(Outcome::ConnectError, 5);
        (none.token, none.status) = (None, None);
        assert!(!require_http2(none).message.contains("HTTP/2"));
        // Not asked: HTTP/1.1 is fine.
        o.http_version = Some(HttpVersion::Http11);
        assert_eq!(judge(o).status, Status::Ok);
    }
}
