//! `wrong_password_probe = true`: now and then, a login of the target's account (or
//! `wrong_password_username`) with a random wrong password, in a loop of its own beside
//! the target's probe loop. Its series are [`DoorMetrics`]'; a door found open is logged.
//!
//! The pace keeps the account clear of lockout: at most one such login every
//! `wrong_password_every` (5 minutes unless set, never more often than `--interval`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::Registry;
use tokio_util::sync::CancellationToken;

use super::args::Log;
use crate::call::Prober;
use crate::call::door::{Door, wrong_password_target};
use crate::call::target::Target;
use crate::metrics::DoorMetrics;

/// The pace when the config does not set `wrong_password_every`.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(300);

/// One target's wrong-password logins.
pub struct DoorWatch {
    /// The target as configured: each login takes a fresh wrong password from it.
    target: Target,
    username: Option<String>,
    /// Kept across a `--config` reload while the target keeps its probe.
    pub metrics: DoorMetrics,
    every: Duration,
    /// When the last wrong password was tried: a reload carries it, so a SIGHUP never
    /// brings the next try forward.
    last: Mutex<Option<Instant>>,
}

impl DoorWatch {
    /// The target's wrong-password probe, when its config asks for one; `metrics` are
    /// the series it feeds, registered by [`series`]; `last`, when the target's
    /// previous watch (before a reload) last tried one.
    pub fn new(
        target: &Target,
        metrics: Option<DoorMetrics>,
        interval: Duration,
        last: Option<Instant>,
    ) -> Option<Arc<DoorWatch>> {
        let (plan, metrics) = (target.wrong_password.as_ref()?, metrics?);
        Some(Arc::new(DoorWatch {
            target: target.clone(),
            username: plan.username.clone(),
            metrics,
            every: plan.every.max(interval),
            last: Mutex::new(last),
        }))
    }

    /// When this watch last tried a wrong password.
    pub fn last(&self) -> Option<Instant> {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The first try of a (re)started loop: now, or `every` after the last one.
    fn first_due(&self, now: Instant) -> Instant {
        self.last().map_or(now, |t| (t + self.every).max(now))
    }
}

/// The wrong-password series a target needs in `registry` after a (re)load: those of
/// `old` when it had them, fresh ones when it did not, none (and `old`'s gone) when the
/// target no longer asks for the probe.
pub fn series(
    name: &str,
    target: &Target,
    old: Option<&DoorWatch>,
    registry: &Registry,
) -> prometheus::Result<Option<DoorMetrics>> {
    let had = old.map(|d| d.metrics.clone());
    match (had, target.wrong_password.is_some()) {
        (Some(m), true) => Ok(Some(m)),
        (Some(m), false) => {
            m.unregister(registry);
            Ok(None)
        }
        (None, true) => DoorMetrics::register(registry, name).map(Some),
        (None, false) => Ok(None),
    }
}

/// Tries the wrong password on `name` every so often until stopped; a fresh random
/// password and a fresh connection each time.
pub async fn door_loop(name: String, door: Arc<DoorWatch>, log: Log, stop: CancellationToken) {
    let first = door.first_due(Instant::now());
    let mut ticker = tokio::time::interval_at(first.into(), door.every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Door> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        // Each login its own password: none is ever tried twice.
        let target = wrong_password_target(&door.target, door.username.as_deref());
        let prober = match Prober::with_keepalive(&target, false) {
            Ok(p) => p,
            Err(e) => {
                log(&format!("target {name}: wrong-password probe stopped: {e:#}"));
                return;
            }
        };
        *door.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let obs = tokio::select! {
            _ = stop.cancelled() => return,
            obs = prober.call(0, Instant::now()) => obs,
        };
        let found = Door::of(&obs);
        door.metrics.observe(found);
        if last != Some(found) {
            log(&format!("target {name}: wrong-password login: {}", found.reason(&obs)));
        }
        last = Some(found);
    }
}
