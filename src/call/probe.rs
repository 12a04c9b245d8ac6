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
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderValue, USER_AGENT};
use hyper::{Method, Request, StatusCode};

use super::conn::{ConnectError, ConnectOptions, Connector};
use super::observation::{Observation, Outcome};
use super::phases::{Mark, Marks};
use super::secret::Secret;
use super::target::{ConfigError, Target};
use super::validate::{TokenFacts, Validator, Violation};
use crate::util::fmt::error_chain;

/// A ready-to-call target: its connections (a small keep-alive pool), the request
/// bodies built once per account, and the compiled schema.
pub struct Prober {
    conn: Connector,
    /// The request target (path and query), parsed once.
    path: hyper::Uri,
    bodies: Vec<Bytes>,
    /// The request headers for each body, built once: a call clones its map instead of
    /// inserting each header again (and hyper finds the length set, so it adds nothing).
    headers: Vec<HeaderMap>,
    /// The password of each body, to scrub from what an answer says (a hostile server
    /// could echo it in `scope`).
    passwords: Vec<Secret>,
    timeout: Duration,
    max_body: usize,
    validator: Arc<Validator>,
}

/// Why a call failed below HTTP.
enum Failure {
    Connect(ConnectError),
    Transport(hyper::Error),
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
        let host_header = HeaderValue::from_str(&host).map_err(|e| ConfigError::Client(e.to_string()))?;
        let path: hyper::Uri = path.parse().map_err(|e| ConfigError::Client(format!("URL path: {e}")))?;
        let bodies: Vec<Bytes> = target
            .credentials
            .iter()
            .map(|c| {
                let body = serde_json::json!({"username": c.username, "password": c.password.expose()});
                Bytes::from(serde_json::to_vec(&body).expect("JSON of two strings"))
            })
            .collect();
        let headers = bodies
            .iter()
            .map(|body| {
                let mut headers = HeaderMap::with_capacity(6);
                headers.insert(HOST, host_header.clone());
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
                headers.insert(USER_AGENT, HeaderValue::from_static(concat!("nehr-probe/", env!("CARGO_PKG_VERSION"))));
                if !keepalive {
                    headers.insert(CONNECTION, HeaderValue::from_static("close"));
                }
                headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
                headers
            })
            .collect();
        Ok(Prober {
            conn,
            path,
            bodies,
            headers,
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
        self.call_within(seq, due, self.timeout).await
    }

    /// [`Prober::call`] with a deadline shorter than the target's timeout, when the
    /// caller must answer sooner (a scrape's budget): a call cut short by it is a
    /// `timeout`, decided here like any other.
    pub async fn call_within(&self, seq: u64, due: Instant, budget: Duration) -> Observation {
        let limit = budget.min(self.timeout);
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
                obs.detail = Some(format!("no complete answer within {limit:?} ({phase})"));
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

    async fn exchange(&self, seq: u64, status_out: &AtomicU32, marks: &Marks) -> Result<Answer, Failure> {
        // Boxed: making a connection (TLS included) is a large future, and inline it would
        // make every call's future as large, copied whole each time a call is moved.
        let mut conn = Box::pin(self.conn.checkout(marks)).await.map_err(Failure::Connect)?;
        let (cert_not_after, tls_version) = (conn.cert_not_after, conn.tls_version);
        let account = (seq % self.bodies.len() as u64) as usize;
        let mut request = Request::new(Full::new(self.bodies[account].clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.path.clone();
        *request.headers_mut() = self.headers[account].clone();
        let resp = conn.sender.send_request(request).await.map_err(Failure::Transport)?;
        // The connection's I/O saw this request written and its answer's first byte
        // (the head that just arrived came after both).
        marks.copy_from(&conn.io, &[Mark::Written, Mark::FirstByte]);
        let status = resp.status();
        let version = resp.version();
        status_out.store(u32::from(status.as_u16()), Ordering::Relaxed);
        let declared =
            resp.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body as u64) {
            // Not read at all; the connection is dropped with the sender.
            return Ok(Answer {
                status,
                body: Bytes::new(),
                oversized: true,
                total: 0,
                tls: (cert_not_after, tls_version),
                version,
            });
        }
        let mut incoming = resp.into_body();
        let mut first: Option<Bytes> = None;
        let mut rest: Vec<u8> = Vec::new();
        let mut total = 0u64;
        while let Some(frame) = incoming.frame().await {
            let Ok(data) = frame.map_err(Failure::Transport)?.into_data() else { continue };
            total += data.len() as u64;
            if total > self.max_body as u64 {
                // Stop reading: the rest is never buffered, the connection is dropped.
                return Ok(Answer {
                    status,
                    body: Bytes::new(),
                    oversized: true,
                    total,
                    tls: (cert_not_after, tls_version),
                    version,
                });
            }
            // Most answers arrive in one frame: keep it without copying.
            match &first {
                None if rest.is_empty() => first = Some(data),
                _ => {
                    if let Some(f) = first.take() {
                        rest.extend_from_slice(&f);
                    }
                    rest.extend_from_slice(&data);
                }
            }
        }
        self.conn.checkin(conn);
        let body = first.unwrap_or_else(|| Bytes::from(rest));
        Ok(Answer { status, body, oversized: false, total, tls: (cert_not_after, tls_version), version })
    }

    fn classify(&self, obs: &mut Observation, answer: Answer) {
        obs.body_bytes = answer.total;
        (obs.cert_not_after, obs.tls_version) = answer.tls;
        obs.http_version = Some(answer.version);
        let status = answer.status.as_u16();
        obs.outcome = Outcome::for_status(status);
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
            Outcome::Unauthorized | Outcome::ServerError
                if matches!(answer.status, StatusCode::UNAUTHORIZED | StatusCode::INTERNAL_SERVER_ERROR)
                    && !answer.oversized =>
            {
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
        let hide = |s: &mut String| {
            if s.contains(password) {
                *s = "***".to_string();
            }
        };
        if let Some(t) = &mut facts.token_type {
            hide(t);
        }
        facts.scope.iter_mut().flatten().for_each(hide);
    }
}

struct Answer {
    status: StatusCode,
    body: Bytes,
    oversized: bool,
    total: u64,
    /// What the handshake showed: the certificates' earliest expiry, the TLS version.
    tls: (Option<i64>, Option<&'static str>),
    version: hyper::Version,
}
