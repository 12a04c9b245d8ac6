//! The one call path: one POST to getToken, one [`Observation`]. Every command is a
//! scheduler plus a sink over [`Prober::call`]; nothing else talks to the target.
//!
//! A failed request is data, never an error: every way a call can end maps to one of
//! the nine [`Outcome`]s, decided in the documented order. The call must end by
//! `--timeout` whatever the server does, must not buffer more than `--max-body`, and
//! must not put the password or a token into anything it returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::conn::{ConnectOptions, Connector, Failure};
use super::h1;
use super::observation::HttpVersion;
use super::observation::{Observation, Outcome};
use super::phases::{Mark, Marks};
use super::secret::Secret;
use super::target::{ConfigError, Target};
use super::validate::{TokenFacts, Validator, Violation};
use crate::util::fmt::error_chain;

/// A ready-to-call target: its connections (a small keep-alive pool), the requests
/// built once per account (head and body, written with one call), and the compiled
/// schema.
pub struct Prober {
    conn: Connector,
    requests: Vec<Bytes>,
    /// The password of each body, to scrub from what an answer says (a hostile server
    /// could echo it in `scope`).
    passwords: Vec<Secret>,
    timeout: Duration,
    max_body: usize,
    validator: Arc<Validator>,
}

impl Prober {
    /// A prober keeping connections alive between calls, as one busy client does.
    pub fn new(target: &Target) -> Result<Self, ConfigError> {
        Self::with_keepalive(target, true)
    }

    /// With `keepalive` false every call opens a connection of its own (and its TLS
    /// handshake), asks the server to close it, and closes it: as distinct users'
    /// clients do (`load --no-keepalive`, and `serve` and `check` always).
    pub fn with_keepalive(target: &Target, keepalive: bool) -> Result<Self, ConfigError> {
        let options = ConnectOptions {
            ca_cert: target.ca_cert.as_deref(),
            insecure: target.insecure,
            pinned: target.pinned,
            keepalive,
        };
        let conn = Connector::new(&target.url, options)?;
        let mut path = target.url.path().to_string();
        if let Some(q) = target.url.query() {
            path.push('?');
            path.push_str(q);
        }
        let host = match (target.url.host_str(), target.url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(ConfigError::Client("URL has no host".into())),
        };
        // A parsed URL's path and host are ASCII without blanks or line breaks already.
        if [&path, &host].iter().any(|s| s.bytes().any(|b| !b.is_ascii_graphic())) {
            return Err(ConfigError::Client("URL has a character a request line cannot carry".into()));
        }
        let requests = target
            .credentials
            .iter()
            .map(|c| {
                let body = serde_json::json!({"username": c.username, "password": c.password.expose()});
                h1::request(&path, &host, keepalive, &serde_json::to_vec(&body).expect("JSON of two strings"))
            })
            .collect();
        Ok(Prober {
            conn,
            requests,
            passwords: target.credentials.iter().map(|c| c.password.clone()).collect(),
            timeout: target.timeout,
            max_body: target.max_body,
            validator: Arc::clone(&target.validator),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Makes call number `seq`, which was due at `due`, and says how it went. Never
    /// fails and never takes longer than the timeout (plus scheduling noise).
    pub async fn call(&self, seq: u64, due: Instant) -> Observation {
        let limit = self.timeout;
        let sent = Instant::now();
        // The status and the marks are kept outside the exchange so a timeout while
        // reading the body still reports what the server said, and the phases until then.
        let status = AtomicU32::new(0);
        let marks = Marks::new(sent);
        let result = tokio::time::timeout(limit, self.exchange(seq, &status, &marks)).await;
        let done = Instant::now();
        let status = match status.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s as u16),
        };
        if result.as_ref().is_ok_and(Result::is_ok) {
            marks.stamp_at(Mark::Done, done);
        }
        let mut obs = Observation::new(seq, due, sent, done, status, Outcome::Ok);
        obs.phases = marks.phases();
        obs.connection = marks.connection();
        match result {
            Err(_) => {
                obs.outcome = Outcome::Timeout;
                let phase = if status.is_some() { "reading the body" } else { "waiting for the answer" };
                obs.detail = Some(timeout_detail(limit, phase));
            }
            Ok(Err(Failure::Connect(e))) => {
                obs.outcome = Outcome::ConnectError;
                obs.detail = Some(e.to_string());
            }
            Ok(Err(Failure::Transport(e))) => {
                obs.outcome = Outcome::TransportError;
                obs.detail = Some(error_chain(&e));
            }
            Ok(Ok(answer)) => self.classify(&mut obs, answer),
        }
        obs
    }

    /// What a caller reports that stopped waiting, `budget` after `start`, for a call
    /// another caller started (a `/probe` scrape sharing the login in flight, which
    /// goes on for the next scrape): a `timeout` in the same words as a call cut short
    /// by its own deadline, with nothing of the answer it did not wait for.
    pub fn gave_up(start: Instant, budget: Duration) -> Observation {
        let mut obs = Observation::new(0, start, start, Instant::now(), None, Outcome::Timeout);
        obs.detail = Some(timeout_detail(budget, "waiting for a login in flight"));
        obs
    }

    async fn exchange(&self, seq: u64, status: &AtomicU32, marks: &Marks) -> Result<Answer, Failure> {
        let request = &self.requests[(seq % self.requests.len() as u64) as usize];
        let reply = self.conn.exchange(request, self.max_body, marks, status).await?;
        let h1::Answer { status, version, body, oversized, total, .. } = reply.answer;
        Ok(Answer { status, body, oversized, total, tls: (reply.cert_not_after, reply.tls_version), version })
    }

    fn classify(&self, obs: &mut Observation, answer: Answer) {
        obs.body_bytes = answer.total;
        (obs.cert_not_after, obs.tls_version) = answer.tls;
        obs.http_version = Some(answer.version);
        obs.outcome = Outcome::for_status(answer.status);
        match obs.outcome {
            Outcome::Ok if answer.oversized => {
                obs.outcome = Outcome::InvalidBody;
                obs.violations.push(Violation::root(format!("body larger than --max-body ({} bytes)", self.max_body)));
            }
            Outcome::Ok => match self.validator.check_token(&answer.body) {
                Ok(mut facts) => {
                    self.scrub(obs.seq, &mut facts);
                    obs.token = Some(facts);
                }
                Err(violations) => {
                    obs.outcome = Outcome::InvalidBody;
                    obs.violations = violations;
                }
            },
            Outcome::Unauthorized | Outcome::ServerError if matches!(answer.status, 401 | 500) && !answer.oversized => {
                obs.violations = self.validator.check_error(&answer.body);
            }
            _ => {}
        }
    }
}

impl Prober {
    /// Replaces any fact that holds the password sent with call `seq` by `***`.
    fn scrub(&self, seq: u64, facts: &mut TokenFacts) {
        let password = self.passwords[(seq % self.passwords.len() as u64) as usize].expose();
        if facts.token_type.as_deref().is_some_and(|t| t.contains(password)) {
            facts.token_type = Some("***".into());
        }
        for s in facts.scope.iter_mut().flatten().filter(|s| s.contains(password)) {
            *s = "***".to_string();
        }
    }
}

/// Why a call is a `timeout`: the limit, and what it was waiting for.
fn timeout_detail(limit: Duration, phase: &str) -> String {
    format!("no complete answer within {limit:?} ({phase})")
}

struct Answer {
    /// 100 to 999: the head parser refuses anything else.
    status: u16,
    body: Bytes,
    oversized: bool,
    total: u64,
    /// What the handshake showed: the certificates' earliest expiry, the TLS version.
    tls: (Option<i64>, Option<&'static str>),
    version: HttpVersion,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_that_gave_up_reports_a_timeout_of_its_own_wait() {
        let start = Instant::now() - Duration::from_millis(40);
        let obs = Prober::gave_up(start, Duration::from_millis(40));
        assert_eq!(obs.outcome, Outcome::Timeout);
        assert!(obs.latency() >= Duration::from_millis(40));
        assert_eq!(obs.status, None);
        assert_eq!(obs.detail.as_deref(), Some("no complete answer within 40ms (waiting for a login in flight)"));
    }
}
