//! The wrong-password login (`check --wrong-password`, `serve`'s
//! `wrong_password_probe`): the target's account with a random password no one holds,
//! and what its answer means. The door is shut when the server answers 401; it is open
//! when a 200 comes back, whatever its body.
//!
//! Each such login is one failed login of the account it names, which counts toward
//! the server's lockout policy: docs/journeys.md#the-door-stays-shut says how often the
//! commands send one and how to aim them at an account of their own.

use rand::distr::{Alphanumeric, SampleString};

use super::observation::{Observation, Outcome};
use super::secret::Secret;
use super::target::{Credential, Target};

/// What a wrong-password login found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// 401 with the documented error body.
    Shut,
    /// 401, but its body is not the documented `{code, message}`.
    ShutOddly,
    /// 200: the server let a wrong password in.
    Open,
    /// No verdict on the password: rate limited, a server error, another status, or no
    /// answer at all.
    Undecided,
}

impl Door {
    /// Judges the answer to a wrong-password login.
    pub fn of(o: &Observation) -> Door {
        match (o.status, o.outcome) {
            (Some(200), _) => Door::Open,
            (_, Outcome::Unauthorized) if o.violations.is_empty() => Door::Shut,
            (_, Outcome::Unauthorized) => Door::ShutOddly,
            _ => Door::Undecided,
        }
    }

    /// The `result` label of `nehr_probe_wrong_password_probes_total`.
    pub fn label(self) -> &'static str {
        match self {
            Door::Shut | Door::ShutOddly => "refused",
            Door::Open => "accepted",
            Door::Undecided => "undecided",
        }
    }

    pub const LABELS: [&'static str; 3] = ["refused", "accepted", "undecided"];

    /// In a few words, for the check's line and the logs; never the password.
    pub fn reason(self, o: &Observation) -> String {
        match self {
            Door::Shut => "wrong password refused (HTTP 401)".to_string(),
            Door::ShutOddly => {
                let notes: Vec<String> = o.violations.iter().map(|v| format!("{} {}", v.path, v.message)).collect();
                format!("wrong password refused (HTTP 401), but the error body differs: {}", notes.join("; "))
            }
            // The login's own words already name the status when they are not "valid".
            Door::Open if o.outcome == Outcome::Ok => format!("accepted a wrong password (HTTP 200, {})", o.reason()),
            Door::Open => format!("accepted a wrong password ({})", o.reason()),
            Door::Undecided => format!("could not tell whether a wrong password is refused: {}", o.reason()),
        }
    }
}

/// A copy of `target` that logs in as `username` (the target's own account when
/// `None`) with a fresh random password that differs from every real one, and makes
/// no `--then` call.
pub fn wrong_password_target(target: &Target, username: Option<&str>) -> Target {
    let account = username.map_or_else(|| target.credentials[0].username.clone(), str::to_string);
    let mut rng = rand::rng();
    let password = loop {
        let p = format!("nehr-probe-wrong-{}", Alphanumeric.sample_string(&mut rng, 24));
        if target.credentials.iter().all(|c| c.password.expose() != p) {
            break p;
        }
    };
    let mut out = target.clone();
    out.credentials = vec![Credential { username: account, password: Secret::new(password) }];
    out.then = None;
    out
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::call::validate::Violation;

    fn answer(status: Option<u16>, outcome: Outcome) -> Observation {
        let t = Instant::now();
        Observation::new(0, t, t, t, status, outcome)
    }

    #[test]
    fn only_a_401_shuts_the_door_and_any_200_opens_it() {
        assert_eq!(Door::of(&answer(Some(401), Outcome::Unauthorized)), Door::Shut);
        assert_eq!(Door::of(&answer(Some(200), Outcome::Ok)), Door::Open);
        assert_eq!(Door::of(&answer(Some(200), Outcome::InvalidBody)), Door::Open);
        assert_eq!(Door::of(&answer(Some(200), Outcome::ReusedToken)), Door::Open);
        for (status, outcome) in [
            (Some(429), Outcome::RateLimited),
            (Some(500), Outcome::ServerError),
            (Some(403), Outcome::HttpError),
            (None, Outcome::Timeout),
            (None, Outcome::ConnectError),
        ] {
            assert_eq!(Door::of(&answer(status, outcome)), Door::Undecided, "{status:?}");
        }
        let mut odd = answer(Some(401), Outcome::Unauthorized);
        odd.violations.push(Violation { path: "/code".into(), message: "missing".into() });
        assert_eq!(Door::of(&odd), Door::ShutOddly);
        assert!(Door::ShutOddly.reason(&odd).contains("/code missing"));
    }
}
