//! What one call tells: its [`Outcome`] (one of ten, in the documented order) and the
//! [`Observation`] every sink reads. Facts derived from an observation (the token's
//! lifetime, the certificate's time left, which violations count) are methods here,
//! decided once, so no sink re-derives them differently.
//!
//! An observation never holds the password or a token: only their facts.

use std::time::{Duration, Instant};

use enum_map::{Enum, EnumMap};
use serde::Serialize;

use super::keyed::Named;
use super::phases::{Connection, Phases};
use super::validate::{TokenFacts, Violation};

/// How one call ended, in the order reports list them (`ok` first). They are decided
/// the other way round: no connection, no answer in time, a broken answer, then the
/// status, then the body, then the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Enum)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    InvalidBody,
    /// A valid answer whose access token an earlier login of this target was handed.
    ReusedToken,
    Unauthorized,
    RateLimited,
    ServerError,
    HttpError,
    Timeout,
    ConnectError,
    TransportError,
}

/// Calls by outcome: the one shape the recorder, the timeline, the reports and their
/// merge keep them in (JSON: an object with all ten keys, [`super::keyed`]).
pub type Outcomes = EnumMap<Outcome, u64>;

impl Named for Outcome {
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl Outcome {
    /// How many there are.
    pub const COUNT: usize = <Outcome as Enum>::LENGTH;

    /// All ten, in the order reports list them (`ok` first).
    pub const ALL: [Outcome; Outcome::COUNT] = [
        Outcome::Ok,
        Outcome::InvalidBody,
        Outcome::ReusedToken,
        Outcome::Unauthorized,
        Outcome::RateLimited,
        Outcome::ServerError,
        Outcome::HttpError,
        Outcome::Timeout,
        Outcome::ConnectError,
        Outcome::TransportError,
    ];

    /// The label value and JSON key.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::InvalidBody => "invalid_body",
            Outcome::ReusedToken => "reused_token",
            Outcome::Unauthorized => "unauthorized",
            Outcome::RateLimited => "rate_limited",
            Outcome::ServerError => "server_error",
            Outcome::HttpError => "http_error",
            Outcome::Timeout => "timeout",
            Outcome::ConnectError => "connect_error",
            Outcome::TransportError => "transport_error",
        }
    }

    /// The outcome an HTTP status decides, before the body is looked at.
    pub fn for_status(status: u16) -> Outcome {
        match status {
            200 => Outcome::Ok,
            401 => Outcome::Unauthorized,
            429 => Outcome::RateLimited,
            500..=599 => Outcome::ServerError,
            _ => Outcome::HttpError,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the call after an ok login (`--then`) ended: whether the token it was handed
/// works. The order of the variants is the order reports list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Enum)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// A 2xx answer: the token opened the door.
    Accepted,
    /// 401 or 403: the server refused the token it had just handed out.
    TokenRefused,
    /// The login's answer, valid by the schema in force, had no access token to send.
    NoToken,
    RateLimited,
    ServerError,
    HttpError,
    Timeout,
    ConnectError,
    TransportError,
}

/// `--then` calls by outcome, as [`Outcomes`] for logins.
pub type StepOutcomes = EnumMap<StepOutcome, u64>;

impl Named for StepOutcome {
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl StepOutcome {
    pub const COUNT: usize = <StepOutcome as Enum>::LENGTH;

    pub const ALL: [StepOutcome; StepOutcome::COUNT] = [
        StepOutcome::Accepted,
        StepOutcome::TokenRefused,
        StepOutcome::NoToken,
        StepOutcome::RateLimited,
        StepOutcome::ServerError,
        StepOutcome::HttpError,
        StepOutcome::Timeout,
        StepOutcome::ConnectError,
        StepOutcome::TransportError,
    ];

    /// The label value and JSON key.
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Accepted => "accepted",
            StepOutcome::TokenRefused => "token_refused",
            StepOutcome::NoToken => "no_token",
            StepOutcome::RateLimited => "rate_limited",
            StepOutcome::ServerError => "server_error",
            StepOutcome::HttpError => "http_error",
            StepOutcome::Timeout => "timeout",
            StepOutcome::ConnectError => "connect_error",
            StepOutcome::TransportError => "transport_error",
        }
    }

    /// The outcome an HTTP status decides; the body is not judged.
    pub fn for_status(status: u16) -> StepOutcome {
        match status {
            200..=299 => StepOutcome::Accepted,
            401 | 403 => StepOutcome::TokenRefused,
            429 => StepOutcome::RateLimited,
            500..=599 => StepOutcome::ServerError,
            _ => StepOutcome::HttpError,
        }
    }
}

impl std::fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The call after an ok login (`--then`): one request carrying the token it was handed.
#[derive(Debug, Clone)]
pub struct Step {
    pub outcome: StepOutcome,
    pub status: Option<u16>,
    /// When it was sent (right after the login's answer) and when it ended.
    pub sent: Instant,
    pub done: Instant,
    /// Why it failed below HTTP, in a few words.
    pub detail: Option<String>,
    pub phases: Phases,
    pub connection: Option<Connection>,
}

impl Step {
    /// From its send to its end: what the server took to honour the token.
    pub fn latency(&self) -> Duration {
        self.done.saturating_duration_since(self.sent)
    }

    pub fn is_accepted(&self) -> bool {
        self.outcome == StepOutcome::Accepted
    }

    /// One short, secret-free sentence on how the step went.
    pub fn reason(&self) -> String {
        let status = self.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
        match self.outcome {
            StepOutcome::Accepted => format!("token accepted by the next call{status}"),
            StepOutcome::TokenRefused => format!("the next call refused the token{status}"),
            StepOutcome::NoToken => "the login answer had no access_token to send".to_string(),
            StepOutcome::Timeout => {
                format!("next call timeout: {}", self.detail.as_deref().unwrap_or("no answer in time"))
            }
            StepOutcome::ConnectError | StepOutcome::TransportError => {
                format!("next call {}: {}", self.outcome, self.detail.as_deref().unwrap_or("failed"))
            }
            StepOutcome::RateLimited => format!("next call rate limited{status}"),
            StepOutcome::ServerError => format!("next call server error{status}"),
            StepOutcome::HttpError => format!("next call unexpected answer{status}"),
        }
    }
}

/// The HTTP version an answer came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HttpVersion {
    Http10,
    Http11,
    Http2,
}

impl HttpVersion {
    /// Every version, oldest first.
    pub const ALL: [HttpVersion; 3] = [HttpVersion::Http10, HttpVersion::Http11, HttpVersion::Http2];

    /// As blackbox_exporter's `probe_http_version` gives it: 1.0, 1.1, 2.
    pub fn number(self) -> f64 {
        match self {
            HttpVersion::Http10 => 1.0,
            HttpVersion::Http11 => 1.1,
            HttpVersion::Http2 => 2.0,
        }
    }

    /// The one name reports, JSON keys and label values use: `HTTP/1.0`, `HTTP/1.1`,
    /// `HTTP/2` (RFC 9113's name; never `HTTP/2.0`).
    pub fn name(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
            HttpVersion::Http2 => "HTTP/2",
        }
    }
}

impl std::fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything one call tells, and nothing secret.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Which call this was (picks the account round robin).
    pub seq: u64,
    /// When the schedule wanted it sent; latency is measured from here.
    pub due: Instant,
    /// When it was actually sent; service time is measured from here.
    pub sent: Instant,
    pub done: Instant,
    pub status: Option<u16>,
    pub outcome: Outcome,
    /// Schema violations of a 200 answer, or notes on a 401/500 body.
    pub violations: Vec<Violation>,
    /// Facts about a valid token: type, lifetime and scope, never the token.
    pub token: Option<TokenFacts>,
    pub body_bytes: u64,
    /// Why a call failed below HTTP (connect, transport, timeout), in a few words.
    pub detail: Option<String>,
    /// Over https: when the earliest of the server's certificates expires (Unix seconds).
    pub cert_not_after: Option<i64>,
    /// Over https: the TLS version of the connection (`TLS 1.3`).
    pub tls_version: Option<&'static str>,
    /// Over https: the cipher suite of the connection, its IANA name.
    pub tls_cipher: Option<&'static str>,
    /// Over https: the server asked for a client certificate in the handshake and this
    /// probe had none to give (an answer that is not ok then names it).
    pub client_cert_wanted: bool,
    /// The answer's HTTP version, when one came.
    pub http_version: Option<HttpVersion>,
    /// Where the time went.
    pub phases: Phases,
    /// The connection the call ran on; `None` when it got none (no TCP connection).
    pub connection: Option<Connection>,
    /// With `--then`, after an ok login: the next call, made with the token.
    pub then: Option<Step>,
}

impl Observation {
    /// A call's facts before its answer is looked at: no violations, token or body.
    pub fn new(seq: u64, due: Instant, sent: Instant, done: Instant, status: Option<u16>, outcome: Outcome) -> Self {
        Observation {
            seq,
            due,
            sent,
            done,
            status,
            outcome,
            violations: Vec::new(),
            token: None,
            body_bytes: 0,
            detail: None,
            cert_not_after: None,
            tls_version: None,
            tls_cipher: None,
            client_cert_wanted: false,
            http_version: None,
            phases: Phases::default(),
            connection: None,
            then: None,
        }
    }

    /// From the due time: what a user waiting for a login sees.
    pub fn latency(&self) -> Duration {
        self.done.saturating_duration_since(self.due)
    }

    /// From the actual send: what the server (and network) took.
    pub fn service_time(&self) -> Duration {
        self.done.saturating_duration_since(self.sent)
    }

    /// Whether the call went over TLS (it knows a TLS version only then).
    pub fn is_https(&self) -> bool {
        self.tls_version.is_some() || self.phases.tls.is_some()
    }

    pub fn is_ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }

    /// Whether a user could work after this login: it was ok and, with `--then`, the
    /// next call accepted its token.
    pub fn journey_ok(&self) -> bool {
        self.is_ok() && self.then.as_ref().is_none_or(Step::is_accepted)
    }

    /// The login's reason, or when it was ok, the next call's when that failed.
    pub fn journey_reason(&self) -> String {
        match &self.then {
            Some(step) if self.is_ok() && !step.is_accepted() => step.reason(),
            _ => self.reason(),
        }
    }

    /// The token's `expires_in`, only when the call was ok (an invalid answer's
    /// lifetime means nothing).
    pub fn token_lifetime(&self) -> Option<i64> {
        self.token.as_ref().and_then(|t| t.expires_in).filter(|_| self.is_ok())
    }

    /// Seconds until the server's certificate expires (negative: expired), at Unix time
    /// `now`; `None` over plain HTTP or when no certificate was read.
    pub fn cert_seconds_left(&self, now: i64) -> Option<i64> {
        self.cert_not_after.map(|t| t.saturating_sub(now))
    }

    /// The schema violations of a token answer. The notes on a 401 or 500 body are not
    /// violations: that body is an error answer, judged by its own schema.
    pub fn counted_violations(&self) -> &[Violation] {
        if self.outcome == Outcome::InvalidBody { &self.violations } else { &[] }
    }

    /// One short, secret-free sentence on why the call was not ok (or how it was).
    pub fn reason(&self) -> String {
        let status = self.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
        match self.outcome {
            Outcome::Ok => match &self.token {
                Some(TokenFacts { token_type, expires_in: Some(e), .. }) => {
                    format!("valid {} token, expires in {e} s", token_type.as_deref().unwrap_or("bearer"))
                }
                _ => "valid token answer".to_string(),
            },
            Outcome::InvalidBody => match self.violations.first() {
                Some(v) if v.path.is_empty() => format!("invalid body: {}{status}", v.message),
                Some(v) => format!("invalid body: {} {}{status}", v.path, v.message),
                None => format!("invalid body{status}"),
            },
            Outcome::Timeout => format!("timeout: {}", self.detail.as_deref().unwrap_or("no answer in time")),
            Outcome::ConnectError | Outcome::TransportError => {
                format!("{}: {}", self.outcome, self.detail.as_deref().unwrap_or("failed"))
            }
            Outcome::ReusedToken => match self.detail.as_deref() {
                Some(d) => format!("reused token: {d}"),
                None => "reused token: an earlier login was handed the same access token".to_string(),
            },
            Outcome::Unauthorized => format!("login refused{status}{}", self.note()),
            Outcome::RateLimited => format!("rate limited{status}{}", self.note()),
            Outcome::ServerError => format!("server error{status}{}", self.note()),
            Outcome::HttpError => format!("unexpected answer{status}{}", self.note()),
        }
    }

    /// What an answer's `detail` adds to its reason (a client certificate the server
    /// wanted), after a colon; empty without one.
    fn note(&self) -> String {
        self.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    }
}

#[cfg(test)]
impl Observation {
    /// A call for tests: due now, sent `wait_ms` later, answered `service_ms` after that.
    pub fn test(outcome: Outcome, status: Option<u16>, wait_ms: u64, service_ms: u64) -> Observation {
        let due = Instant::now();
        let sent = due + Duration::from_millis(wait_ms);
        Observation::new(0, due, sent, sent + Duration::from_millis(service_ms), status, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_and_order() {
        let names: Vec<_> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            names,
            [
                "ok",
                "invalid_body",
                "reused_token",
                "unauthorized",
                "rate_limited",
                "server_error",
                "http_error",
                "timeout",
                "connect_error",
                "transport_error"
            ]
        );
        // The listed order is the declaration order: the one a map iterates in.
        assert!(Outcome::all().eq(Outcome::ALL));
    }

    #[test]
    fn step_outcomes_are_listed_once_each() {
        assert!(StepOutcome::all().eq(StepOutcome::ALL));
        assert_eq!(StepOutcome::for_status(204), StepOutcome::Accepted);
        assert_eq!(StepOutcome::for_status(403), StepOutcome::TokenRefused);
        assert_eq!(StepOutcome::for_status(401), StepOutcome::TokenRefused);
        assert_eq!(StepOutcome::for_status(302), StepOutcome::HttpError);
        assert_eq!(StepOutcome::for_status(503), StepOutcome::ServerError);
    }

    #[test]
    fn status_classes() {
        assert_eq!(Outcome::for_status(200), Outcome::Ok);
        assert_eq!(Outcome::for_status(401), Outcome::Unauthorized);
        assert_eq!(Outcome::for_status(429), Outcome::RateLimited);
        assert_eq!(Outcome::for_status(500), Outcome::ServerError);
        assert_eq!(Outcome::for_status(503), Outcome::ServerError);
        assert_eq!(Outcome::for_status(302), Outcome::HttpError);
        assert_eq!(Outcome::for_status(404), Outcome::HttpError);
        assert_eq!(Outcome::for_status(204), Outcome::HttpError);
    }
}
