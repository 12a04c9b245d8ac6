//! The one call path: one POST to getToken, one [`Observation`]. Every command is a
//! scheduler plus a sink over [`Prober::call`]; nothing else talks to the target.
//!
//! A failed request is data, never an error: every way a call can end maps to one of
//! the ten [`Outcome`]s, decided in the documented order. The call must end by
//! `--timeout` whatever the server does, must not buffer more than `--max-body`, and
//! must not put the password or a token into anything it returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::conn::{Call, ConnectOptions, Connector, Failure, Reply, Request};
use super::h1;
use super::h2::Outgoing;
use super::ledger::Ledger;
use super::observation::HttpVersion;
use super::observation::{Observation, Outcome, Step, StepOutcome};
use super::phases::{Mark, Marks};
use super::secret::Secret;
use super::target::{ConfigError, Target, TokenReuse};
use super::validate::{TokenFacts, Validator, Violation};
use crate::util::fmt::error_chain;

/// A ready-to-call target: its connections (a small keep-alive pool), the requests
/// built once per account (head and body, written with one call), and the compiled
/// schema.
pub struct Prober {
    conn: Connector,
    /// Each account's request: its HTTP/1.1 bytes and its HTTP/2 form.
    requests: Vec<(Bytes, Outgoing)>,
    /// The password of each body, to scrub from what an answer says (a hostile server
    /// could echo it in `scope`).
    passwords: Vec<Secret>,
    timeout: Duration,
    max_body: usize,
    validator: Arc<Validator>,
    ledger: Arc<Ledger>,
    token_reuse: TokenReuse,
    then: Option<NextCall>,
    /// `--http2`.
    http2: bool,
}

/// The call after an ok login (`--then`).
struct NextCall {
    /// Its own connections when it goes to another origin than the login; `None`: the
    /// login's (and their keep-alive pool).
    conn: Option<Connector>,
    request: h1::BearerRequest,
    /// Its HTTP/2 form, the token put in per call.
    h2: Outgoing,
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
        Self::with_streams(target, keepalive, 1)
    }

    /// [`Prober::with_keepalive`], an HTTP/2 connection carrying up to `streams` calls
    /// at once (`load --streams`).
    pub fn with_streams(target: &Target, keepalive: bool, streams: usize) -> Result<Self, ConfigError> {
        let options = ConnectOptions {
            ca_cert: target.ca_cert.as_deref(),
            insecure: target.insecure,
            identity: target.client_cert.as_deref(),
            versions: target.tls_versions,
            pinned: target.pinned,
            keepalive,
            http2: target.http2,
            streams,
        };
        let conn = Connector::new(&target.url, options)?;
        let (path, host) = request_target(&target.url)?;
        let then = match target.then_url() {
            None => None,
            Some(url) => {
                let (path, host) = request_target(&url)?;
                let conn = if url.origin() == target.url.origin() {
                    None
                } else {
                    // `--resolve` pins the login URL's host only.
                    Some(Connector::new(&url, ConnectOptions { pinned: None, ..options })?)
                };
                let method = target.then.as_ref().map_or("GET", |t| t.method.as_str());
                let h2 = Outgoing::new(method.parse().expect("GET or POST"), &url, Bytes::new())
                    .map_err(ConfigError::Client)?;
                Some(NextCall { conn, request: h1::BearerRequest::new(method, &path, &host, keepalive), h2 })
            }
        };
        let requests = target
            .credentials
            .iter()
            .map(|c| {
                let body = serde_json::json!({"username": c.username, "password": c.password.expose()});
                let body = Bytes::from(serde_json::to_vec(&body).expect("JSON of two strings"));
                let h2 = Outgoing::new(http::Method::POST, &target.url, body.clone()).map_err(ConfigError::Client)?;
                Ok((h1::request(&path, &host, keepalive, &body), h2))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Prober {
            conn,
            requests,
            passwords: target.credentials.iter().map(|c| c.password.clone()).collect(),
            timeout: target.timeout,
            max_body: target.max_body,
            validator: Arc::clone(&target.validator),
            ledger: Arc::clone(&target.ledger),
            token_reuse: target.token_reuse,
            then,
            http2: target.http2,
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Makes call number `seq`, which was due at `due`, and says how it went; with
    /// `--then`, an ok login's next call too, within the same timeout. Never fails and
    /// never takes longer than the timeout (plus scheduling noise).
    pub async fn call(&self, seq: u64, due: Instant) -> Observation {
        let (wire, h2) = &self.requests[(seq % self.requests.len() as u64) as usize];
        let request = Request { wire, h2 };
        let sent = Instant::now();
        let timed = self.timed(&self.conn, request, sent, self.timeout).await;
        let mut obs = Observation::new(seq, due, sent, timed.done, timed.status, Outcome::Ok);
        obs.phases = timed.marks.phases();
        obs.connection = timed.marks.connection();
        match timed.result {
            Err(detail) => {
                obs.outcome = Outcome::Timeout;
                obs.detail = Some(detail);
            }
            Ok(Err(Failure::Connect(e))) => {
                obs.outcome = Outcome::ConnectError;
                obs.detail = Some(e.to_string());
            }
            Ok(Err(Failure::Transport(e))) => {
                obs.outcome = Outcome::TransportError;
                obs.detail = Some(error_chain(&e));
            }
            Ok(Ok(reply)) => {
                let answer = Answer::of(reply);
                let token = self.classify(&mut obs, &answer);
                if let Some(next) = self.then.as_ref().filter(|_| obs.is_ok()) {
                    obs.then = Some(self.next_call(next, token.as_deref(), sent + self.timeout).await);
                }
            }
        }
        obs
    }

    /// The call after an ok login, with its token, ending by `deadline`.
    async fn next_call(&self, next: &NextCall, token: Option<&str>, deadline: Instant) -> Step {
        let sent = Instant::now();
        let mut step = Step {
            outcome: StepOutcome::NoToken,
            status: None,
            sent,
            done: sent,
            detail: None,
            phases: Default::default(),
            connection: None,
        };
        // The HTTP/2 form is made only when it may be sent.
        let with = |t: &str| match self.http2 {
            true => next.h2.with_bearer(t).map(std::borrow::Cow::Owned),
            false => Some(std::borrow::Cow::Borrowed(&next.h2)),
        };
        let Some((wire, h2)) = token.and_then(|t| next.request.with(t).zip(with(t))) else {
            return step;
        };
        let conn = next.conn.as_ref().unwrap_or(&self.conn);
        let request = Request { wire: &wire, h2: &h2 };
        let timed = self.timed(conn, request, sent, deadline.saturating_duration_since(sent)).await;
        (step.done, step.status) = (timed.done, timed.status);
        step.phases = timed.marks.phases();
        step.connection = timed.marks.connection();
        (step.outcome, step.detail) = match timed.result {
            Err(detail) => (StepOutcome::Timeout, Some(detail)),
            Ok(Err(Failure::Connect(e))) => (StepOutcome::ConnectError, Some(e.to_string())),
            Ok(Err(Failure::Transport(e))) => (StepOutcome::TransportError, Some(error_chain(&e))),
            Ok(Ok(reply)) => (StepOutcome::for_status(reply.answer.status), None),
        };
        step
    }

    /// One exchange on `conn`, cut at `limit`. The status and the marks are kept
    /// outside the exchange so a timeout while reading the body still reports what the
    /// server said, and the phases until then.
    async fn timed(&self, conn: &Connector, request: Request<'_>, sent: Instant, limit: Duration) -> Timed {
        let status = AtomicU32::new(0);
        let marks = Marks::new(sent);
        let result = tokio::time::timeout(
            limit,
            conn.exchange(&Call { request, max_body: self.max_body, marks: &marks, status: &status }),
        )
        .await;
        let done = Instant::now();
        let status = match status.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s as u16),
        };
        if result.as_ref().is_ok_and(Result::is_ok) {
            marks.stamp_at(Mark::Done, done);
        }
        let result = result.map_err(|_| {
            let phase = if status.is_some() { "reading the body" } else { "waiting for the answer" };
            timeout_detail(limit, phase)
        });
        Timed { result, status, marks, done }
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

    /// Decides the outcome of a login's answer; the access token of a valid one, for
    /// the next call.
    fn classify<'a>(&self, obs: &mut Observation, answer: &'a Answer) -> Option<std::borrow::Cow<'a, str>> {
        obs.body_bytes = answer.total;
        (obs.cert_not_after, obs.tls_version, obs.tls_cipher) = answer.tls;
        obs.client_cert_wanted = answer.cert_wanted;
        obs.http_version = Some(answer.version);
        obs.outcome = Outcome::for_status(answer.status);
        if obs.outcome != Outcome::Ok {
            obs.detail =
                super::tls_error::answered_without_certificate(answer.status, &answer.body, answer.cert_wanted);
        }
        match obs.outcome {
            Outcome::Ok if answer.oversized => {
                obs.outcome = Outcome::InvalidBody;
                obs.violations.push(Violation::root(format!("body larger than --max-body ({} bytes)", self.max_body)));
            }
            Outcome::Ok => match self.validator.check_token_with(&answer.body) {
                Ok((mut facts, token)) => {
                    self.scrub(obs.seq, &mut facts);
                    obs.token = Some(facts);
                    if let Some(t) = &token {
                        self.note_token(obs, t);
                    }
                    return token;
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
        None
    }

    /// Tells the ledger of the token a valid answer handed out; a repeat the rule in
    /// force forbids makes the login `reused_token`.
    fn note_token(&self, obs: &mut Observation, token: &str) {
        let account = (obs.seq % self.requests.len() as u64) as u32;
        let handed = self.ledger.hand_out(token, account);
        let forbidden = match self.token_reuse {
            TokenReuse::Forbid => !handed.is_new(),
            TokenReuse::SameAccount => handed.other_account,
        };
        if forbidden {
            obs.outcome = Outcome::ReusedToken;
            let whose = if handed.other_account { "of different accounts" } else { "of one account" };
            obs.detail = Some(format!("the same access token was handed to {} logins {whose}", handed.logins));
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

/// What one exchange gave: the reply or why it timed out, and what was seen meanwhile.
struct Timed {
    result: Result<Result<Reply, Failure>, String>,
    status: Option<u16>,
    marks: Marks,
    done: Instant,
}

/// Where a URL's requests go: the request line's target and the `Host` header.
fn request_target(url: &url::Url) -> Result<(String, String), ConfigError> {
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err(ConfigError::Client("URL has no host".into())),
    };
    // A parsed URL's path and host are ASCII without blanks or line breaks already.
    if [&path, &host].iter().any(|s| s.bytes().any(|b| !b.is_ascii_graphic())) {
        return Err(ConfigError::Client("URL has a character a request line cannot carry".into()));
    }
    Ok((path, host))
}

struct Answer {
    /// 100 to 999: the head parser refuses anything else.
    status: u16,
    body: Bytes,
    oversized: bool,
    total: u64,
    /// What the handshake showed: the certificates' earliest expiry, the TLS version
    /// and cipher suite.
    tls: (Option<i64>, Option<&'static str>, Option<&'static str>),
    /// The server asked for a client certificate and none was given.
    cert_wanted: bool,
    version: HttpVersion,
}

impl Answer {
    fn of(reply: Reply) -> Answer {
        let h1::Answer { status, version, body, oversized, total, .. } = reply.answer;
        let tls = (reply.cert_not_after, reply.tls_version, reply.tls_cipher);
        Answer { status, body, oversized, total, tls, cert_wanted: reply.cert_wanted, version }
    }
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
