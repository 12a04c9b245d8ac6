//! The numbers of `--then`: the call after each ok login (its outcomes, latency and
//! phases) and the journeys it completes, for the report's `then` section. Owned by
//! the [`super::recorder::Recorder`], fixed in size like it.

use hdrhistogram::Histogram;

use crate::call::observation::{StepOutcome, StepOutcomes};
use crate::call::{Observation, Step};
use crate::report::histogram::{self, histogram, micros};
use crate::report::model::{Percentiles, PhaseHistograms, ThenReport, phase_histograms, phase_table};
use crate::report::reasons::{Tally, without_outcome};

/// What the `--then` calls of a run measured.
#[derive(Debug, Clone)]
pub struct ThenRecorder {
    /// From the call's send, µs.
    pub latency: Histogram<u64>,
    pub phases: PhaseHistograms,
    outcomes: StepOutcomes,
    /// Why calls were not accepted, by outcome (`accepted`'s stays empty).
    reasons: enum_map::EnumMap<StepOutcome, Tally>,
    calls: u64,
    journeys_ok: u64,
}

impl Default for ThenRecorder {
    fn default() -> Self {
        ThenRecorder {
            latency: histogram(),
            phases: phase_histograms(),
            outcomes: StepOutcomes::default(),
            reasons: enum_map::EnumMap::default(),
            calls: 0,
            journeys_ok: 0,
        }
    }
}

impl ThenRecorder {
    /// Counts one journey: its login, and its call when the login was ok.
    pub fn record(&mut self, obs: &Observation) {
        self.journeys_ok += u64::from(obs.journey_ok());
        if let Some(step) = &obs.then {
            self.record_step(step);
        }
    }

    fn record_step(&mut self, step: &Step) {
        self.calls += 1;
        self.outcomes[step.outcome] += 1;
        if !step.is_accepted() {
            self.reasons[step.outcome].add(&without_outcome(&step.reason(), step.outcome.as_str()), 1);
        }
        self.latency.saturating_record(micros(step.latency()));
        for (p, d) in step.phases.listed() {
            if let Some(d) = d {
                self.phases[p].saturating_record(micros(d));
            }
        }
    }

    /// The report's section; `due` counts every due journey (calls and dropped).
    pub fn report(&self, url: &str, method: &str, due: u64) -> ThenReport {
        ThenReport {
            url: url.to_string(),
            method: method.to_string(),
            calls: self.calls,
            outcomes: StepOutcome::ALL.iter().map(|o| (o.as_str().to_string(), self.outcomes[*o])).collect(),
            reasons: StepOutcome::ALL
                .iter()
                .filter(|o| !self.reasons[**o].is_empty())
                .map(|o| (o.as_str().to_string(), self.reasons[*o].report()))
                .collect(),
            journeys_ok: self.journeys_ok,
            journey_error_rate: ThenReport::error_rate(self.journeys_ok, due),
            latency_seconds: Percentiles::of(&self.latency),
            phases_seconds: phase_table(&self.phases),
            histogram: histogram::encode(&self.latency),
            phase_histograms: histogram::encode_phases(&self.phases),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Outcome;
    use std::time::Duration;

    fn journey(login: Outcome, step: Option<StepOutcome>) -> Observation {
        let mut obs = Observation::test(login, Some(200), 0, 5);
        obs.then = step.map(|outcome| Step {
            outcome,
            status: Some(200),
            sent: obs.done,
            done: obs.done + Duration::from_millis(7),
            detail: None,
            phases: Default::default(),
            connection: None,
        });
        obs
    }

    #[test]
    fn a_journey_is_ok_only_when_login_and_next_call_are() {
        let mut r = ThenRecorder::default();
        r.record(&journey(Outcome::Ok, Some(StepOutcome::Accepted)));
        r.record(&journey(Outcome::Ok, Some(StepOutcome::TokenRefused)));
        r.record(&journey(Outcome::ServerError, None));
        let report = r.report("http://127.0.0.1:1/r", "GET", 4);
        assert_eq!((report.calls, report.journeys_ok), (2, 1));
        assert_eq!(report.outcomes["accepted"], 1);
        assert_eq!(report.outcomes["token_refused"], 1);
        assert_eq!(report.outcomes.len(), StepOutcome::COUNT);
        // Why the refused call was refused; nothing for the accepted one.
        assert_eq!(report.reasons.len(), 1);
        assert_eq!(report.reasons["token_refused"].top[0].reason, "the next call refused the token (HTTP 200)");
        // Four due (one dropped), one completed.
        assert_eq!(report.journey_error_rate, 0.75);
        assert!((0.0069..0.0072).contains(&report.latency_seconds.p50), "{:?}", report.latency_seconds);
    }
}
