//! What the exporter knows of each target while it runs: the [`Watched`] target (its
//! prober, gate, metrics and recent history) and the [`App`] state the HTTP handlers
//! share. Every login goes through [`Watched::probe`], and so through the target's
//! [`Gate`]; its result is fed to the metrics only through [`Watched::record`], so the
//! probe loop, `/probe`, the metrics and the landing page agree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::metrics::Registry;
use axum::extract::FromRef;
use tokio_util::sync::CancellationToken;

use super::access::Access;
use super::args::Log;
use super::gate::{Done, Gate};
use super::strip::{Cell, Strip};
use crate::call::observation::StepOutcome;
use crate::call::{Observation, Outcome, Prober};
use crate::metrics::Metrics;

/// What one probe of a target showed, kept for the landing page.
#[derive(Debug, Clone)]
pub struct Seen {
    pub outcome: Outcome,
    /// With `--then`, after an ok login: the next call's outcome when it failed.
    pub then_failed: Option<StepOutcome>,
    pub reason: String,
    pub at: SystemTime,
    pub latency: Duration,
}

impl Seen {
    fn of(obs: &Observation) -> Seen {
        Seen {
            outcome: obs.outcome,
            then_failed: obs.then.as_ref().filter(|s| obs.is_ok() && !s.is_accepted()).map(|s| s.outcome),
            reason: obs.journey_reason(),
            at: SystemTime::now(),
            latency: obs.latency(),
        }
    }

    /// Whether a user could work: the login ok and, with `--then`, its token accepted.
    pub fn is_ok(&self) -> bool {
        self.outcome == Outcome::Ok && self.then_failed.is_none()
    }

    /// The reason without the outcome name it may begin with (`connect_error: TCP …`
    /// reads `TCP …`), for wherever the outcome is shown beside it.
    pub fn detail(&self) -> &str {
        let label = self.label();
        self.reason.strip_prefix(label.as_str()).and_then(|r| r.strip_prefix(": ")).unwrap_or(&self.reason)
    }

    /// The outcome as shown: `ok, then token_refused` for a login whose token failed.
    pub fn label(&self) -> String {
        match self.then_failed {
            Some(step) => format!("{}, then {step}", self.outcome),
            None => self.outcome.to_string(),
        }
    }
}

#[derive(Debug, Default)]
pub struct History {
    pub last: Option<Seen>,
    pub last_failure: Option<Seen>,
    pub probes: u64,
    /// When the target's certificate expires (Unix seconds), from the last https answer.
    pub cert_not_after: Option<i64>,
    /// The last probes, for the landing page's strip.
    pub strip: Strip,
}

/// One target being watched.
pub struct Watched {
    pub name: String,
    pub url: String,
    pub prober: Prober,
    pub timeout: Duration,
    /// Kept across a `--config` reload, like the history and the gate: the counters go on.
    pub metrics: Metrics,
    /// Call numbers (they pick the account).
    pub seq: AtomicU64,
    pub history: Arc<Mutex<History>>,
    /// The one way to a login of this target.
    pub gate: Arc<Gate<Observation>>,
    pub log: Log,
    /// `wrong_password_probe`: the target's wrong-password logins.
    pub door: Option<Arc<super::door::DoorWatch>>,
}

impl Watched {
    /// A result of a login no older than the `/probe` policy allows, through the gate:
    /// a new login only when none is in flight and the last started at least
    /// `--probe-min-interval` ago. Each login is recorded once, whoever asked for it.
    /// `None` once the exporter stops.
    pub async fn probe(self: &Arc<Self>) -> Option<Arc<Done<Observation>>> {
        let w = Arc::clone(self);
        self.gate
            .get(move || async move {
                let seq = w.seq.fetch_add(1, Ordering::Relaxed);
                let obs = w.prober.call(seq, Instant::now()).await;
                if let Some(line) = w.record(&obs) {
                    (w.log)(&line);
                }
                obs
            })
            .await
    }

    /// Feeds one login to the metrics and the history; returns the log line when the
    /// outcome differs from the last one.
    pub fn record(&self, obs: &Observation) -> Option<String> {
        self.metrics.observe(obs);
        let seen = Seen::of(obs);
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        h.probes += 1;
        h.cert_not_after = obs.cert_not_after.or(h.cert_not_after);
        let line = match &h.last {
            Some(prev) if prev.label() == seen.label() => None,
            Some(prev) => {
                Some(format!("target {}: {} -> {}: {}", self.name, prev.label(), seen.label(), seen.detail()))
            }
            None => Some(format!("target {}: {}: {}", self.name, seen.label(), seen.detail())),
        };
        h.strip.push(Cell { at: seen.at, outcome: seen.outcome, latency: seen.latency });
        if !seen.is_ok() {
            h.last_failure = Some(seen.clone());
        }
        h.last = Some(seen);
        line
    }
}

/// What the HTTP handlers share: one snapshot of the targets in force.
pub struct App {
    pub targets: Vec<Arc<Watched>>,
    pub registry: Registry,
    pub interval: Duration,
    pub started: SystemTime,
    pub stop: CancellationToken,
}

/// The router's state: the [`App`] in force, replaced whole when `--config` is read
/// again (each request sees one snapshot), and the web config's guard.
#[derive(Clone)]
pub struct Live {
    pub app: Arc<RwLock<Arc<App>>>,
    pub access: Arc<Access>,
}

impl Live {
    pub fn app(&self) -> Arc<App> {
        Arc::clone(&self.app.read().unwrap_or_else(|p| p.into_inner()))
    }
}

impl FromRef<Live> for Arc<App> {
    fn from_ref(live: &Live) -> Arc<App> {
        live.app()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::call::target::TargetArgs;
    use crate::testing::args;

    /// A watched target aimed at a port nothing listens on.
    pub(crate) fn watched(name: &str) -> Arc<Watched> {
        let mut target = args::<TargetArgs>(&["--mock"]).unwrap().resolve().unwrap();
        target.aim_at("127.0.0.1:9".parse().unwrap());
        Arc::new(Watched {
            name: name.into(),
            url: target.display_url(),
            prober: Prober::new(&target).unwrap(),
            timeout: target.timeout,
            metrics: Metrics::register(&Registry::new(), name).unwrap(),
            seq: AtomicU64::new(0),
            history: Arc::default(),
            gate: Gate::new(Duration::from_secs(1), CancellationToken::new()),
            log: Arc::new(|_: &str| {}),
            door: None,
        })
    }

    #[test]
    fn logs_once_per_change_of_outcome() {
        let w = watched("production");
        let ok = Observation::test(Outcome::Ok, Some(200), 0, 3);
        let down = Observation::test(Outcome::ServerError, Some(500), 0, 3);
        let lines: Vec<Option<String>> = [&ok, &ok, &down, &down, &down, &ok].iter().map(|o| w.record(o)).collect();
        assert_eq!(lines[0].as_deref(), Some("target production: ok: valid token answer"));
        assert_eq!(lines[1], None);
        assert_eq!(lines[2].as_deref(), Some("target production: ok -> server_error: server error (HTTP 500)"));
        assert_eq!(lines[3..5], [None, None]);
        assert_eq!(lines[5].as_deref(), Some("target production: server_error -> ok: valid token answer"));
        let h = w.history.lock().unwrap();
        assert_eq!(h.probes, 6);
        assert_eq!(h.last.as_ref().unwrap().outcome, Outcome::Ok);
        assert_eq!(h.last_failure.as_ref().unwrap().outcome, Outcome::ServerError);
    }
}
