//! `check --wrong-password`: the verdict on a login with a wrong password, and its
//! metrics. The door is what is judged, not the login: a 401 is OK.

use anyhow::Context;

use super::verdict::{Limits, Status, Verdict};
use crate::call::Observation;
use crate::call::door::Door;
use crate::metrics::{DoorMetrics, Registry, encode, register_build_info};

/// OK on a 401 with the documented body; WARNING on a 401 whose body differs (its
/// shape is on the line); CRITICAL on a 200 ("accepted a wrong password"); UNKNOWN when
/// the answer says nothing about the password (429, 5xx, another status, no answer).
pub fn judge(observation: Observation, limits: Limits) -> Verdict {
    let door = Door::of(&observation);
    let status = match door {
        Door::Shut => Status::Ok,
        Door::ShutOddly => Status::Warning,
        Door::Open => Status::Critical,
        Door::Undecided => Status::Unknown,
    };
    let message = door.reason(&observation);
    let cert_left = observation.cert_seconds_left(crate::metrics::unix_now() as i64);
    Verdict { status, observation, message, limits, cert_left, door: Some(door) }
}

/// The Prometheus text of one wrong-password check: its own series only, so that a
/// refused login does not read as `nehr_probe_success 0` of target `name`.
pub fn metrics_text(verdict: &Verdict, name: &str) -> anyhow::Result<String> {
    let registry = Registry::new();
    let metrics = DoorMetrics::register(&registry, name).context("registering metrics")?;
    register_build_info(&registry).context("registering metrics")?;
    metrics.observe(verdict.door.unwrap_or(Door::Undecided));
    Ok(encode(&registry))
}
