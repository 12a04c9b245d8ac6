//! The open model's release clock: which of a lane's requests are due by now, when the
//! lane must wake for the next one, and when its sending window closes. Request *i* is
//! due at `t0 + schedule(i)`; the [`Pacer`] hands them out in order until the schedule,
//! the window or the request count ends. It knows no sockets, tasks or threads: the
//! engine asks it at every wake.
//!
//! Precision and cost pull against each other here. Each wake of a worker thread costs
//! a context switch (and a wakeup of the server); waking for every request at 20k rps
//! cost about twice oha's CPU per request. Up to [`EXACT_UP_TO`] requests a second each
//! request gets a wake of its own, exactly on time; above that, requests are released
//! in batches on a grid whose step follows the rate ([`release_window`]: about
//! [`PER_WAKE`] requests a wake, never more than [`MAX_WINDOW`]), so a request may go
//! out up to one step late; latency from the due time counts that, and the report
//! states the step. The grid holds for every wake of the lane, an answer's too: when an
//! answer released whatever had fallen due by then, each answer started the next
//! request and the lane woke about once a request, grid or not.

use std::time::Duration;

use super::schedule::{Schedule, lane_seq};

/// How long after its end the window stays open for requests released in it: a lane
/// whose thread ran a little late still sends them (the client's own delay is not a
/// drop, and its lateness counts in their latency). Never more than `--timeout`.
pub const CLOSE_GRACE: Duration = Duration::from_millis(100);
/// The most requests released at once (a run far behind its schedule catches up in
/// steps, so one wake does not start thousands of calls before reading any answer).
const BATCH: u64 = 4096;

/// Up to this many requests a second (all lanes together), every request is released
/// at its due time by a wake of its own.
pub const EXACT_UP_TO: f64 = 4000.0;
/// Above [`EXACT_UP_TO`], how many requests of a lane one wake aims to release (ten:
/// a 1 ms step at 20k rps on two threads, as oha's 1 ms tick; five cost about a fifth
/// more CPU a request there).
pub const PER_WAKE: f64 = 10.0;
/// The finest and the coarsest release grid.
pub const MIN_WINDOW: Duration = Duration::from_micros(250);
pub const MAX_WINDOW: Duration = Duration::from_millis(1);

/// The release grid's step at `rate` requests a second over `lanes` lanes: zero (each
/// request on time) up to [`EXACT_UP_TO`], else the time `lanes` lanes take to fall
/// [`PER_WAKE`] requests due each, within [`MIN_WINDOW`]..=[`MAX_WINDOW`].
pub fn release_window(rate: f64, lanes: u64) -> Duration {
    if rate.is_nan() || rate <= EXACT_UP_TO {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(PER_WAKE * lanes.max(1) as f64 / rate).clamp(MIN_WINDOW, MAX_WINDOW)
}

/// The coarsest release grid `schedule` runs on over `lanes` lanes (zero: every request
/// on time), for the report to state.
pub fn coarsest_window(schedule: &Schedule, lanes: u64) -> Duration {
    schedule.lowest_rate_above(EXACT_UP_TO).map_or(Duration::ZERO, |rate| release_window(rate, lanes))
}

/// When a request due at `off` (from t0) is released on a grid of `step`: at its due
/// time when the step is zero, else at the first grid point at or after it. Every wake
/// of the lane (an answer as much as its timer) releases by this rule, so between grid
/// points no answer starts a request of its own: a lane wakes once a step for its
/// releases, and the answers to one batch come back together.
fn release_at(off: Duration, step: Duration) -> Duration {
    if step.is_zero() {
        return off;
    }
    let step = step.as_nanos();
    Duration::from_nanos(u64::try_from(off.as_nanos().div_ceil(step) * step).unwrap_or(u64::MAX))
}

/// One lane's share of the schedule: run-wide numbers `lane`, `lane + lanes`, … (its
/// `i`-th is `lane + lanes * i`), cut by the window and the request count.
pub struct Pacer<'a> {
    schedule: &'a Schedule,
    window: Option<Duration>,
    requests: Option<u64>,
    lane: u64,
    lanes: u64,
    /// `--timeout`, which bounds the grace after the window.
    timeout: Duration,
    released: u64,
    done: bool,
}

impl<'a> Pacer<'a> {
    pub fn new(
        schedule: &'a Schedule,
        window: Option<Duration>,
        requests: Option<u64>,
        lane: u64,
        lanes: u64,
        timeout: Duration,
    ) -> Pacer<'a> {
        Pacer { schedule, window, requests, lane, lanes, timeout, released: 0, done: false }
    }

    /// When the sending window closes, from t0: at the end of the window, or when the
    /// first request past `--requests` or past the stages would be due, plus
    /// [`CLOSE_GRACE`] (at most the timeout). No call of the lane starts after it.
    pub fn closes(&self) -> Option<Duration> {
        let past = self.requests.map_or_else(|| self.schedule.length(), |n| self.schedule.offset(n));
        let close = match (self.window, past) {
            (Some(w), Some(p)) => Some(w.min(p)),
            (w, p) => w.or(p),
        };
        close.map(|c| c + CLOSE_GRACE.min(self.timeout))
    }

    /// When the lane's request `i` is due (from t0), if it is part of this run.
    fn due(&self, i: u64) -> Option<Duration> {
        let seq = lane_seq(self.lane, self.lanes, i);
        if self.requests.is_some_and(|n| seq >= n) {
            return None;
        }
        self.schedule.offset(seq).filter(|off| self.window.is_none_or(|w| *off < w))
    }

    /// Releases every request whose release time ([`Pacer::release_at`]) has come by
    /// `now` (from t0), at most [`BATCH`] more at once; returns how many have been
    /// released in all (lane-local numbers `0..` that).
    pub fn release(&mut self, now: Duration) -> u64 {
        // Each request's time needs the due time of the one after it, which is the next
        // round's own: carried over, so a release reads the schedule once a request.
        let mut off = self.due(self.released);
        for _ in 0..BATCH {
            let Some(this) = off else {
                self.done = true;
                break;
            };
            let next = self.due(self.released + 1);
            if self.release_at(this, next) > now {
                break;
            }
            self.released += 1;
            off = next;
        }
        self.released
    }

    /// When a request due at `off` is released (from t0), `next` being the due time of
    /// the lane's request after it: on the grid whose step follows the rate where it
    /// falls (the gap between the two).
    fn release_at(&self, off: Duration, next: Option<Duration>) -> Duration {
        let rate = match next {
            Some(next) if next > off => self.lanes as f64 / (next - off).as_secs_f64(),
            Some(_) => f64::INFINITY,
            None => 0.0,
        };
        release_at(off, release_window(rate, self.lanes))
    }

    pub fn released(&self) -> u64 {
        self.released
    }

    /// Whether every request of the lane has been released.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// When (from t0) the lane must wake to release its next request; `None` when there
    /// is none.
    pub fn next_wake(&self) -> Option<Duration> {
        let off = self.due(self.released)?;
        Some(self.release_at(off, self.due(self.released + 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::schedule::Stage;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn requests_are_released_on_the_grid() {
        let us = Duration::from_micros;
        let step = us(250);
        assert_eq!(release_at(us(1_000), step), us(1_000));
        assert_eq!(release_at(us(1_010), step), us(1_250));
        assert_eq!(release_at(us(1_250), step), us(1_250));
        assert_eq!(release_at(us(1_251), step), us(1_500));
        assert_eq!(release_at(us(1_010), Duration::ZERO), us(1_010));
    }

    #[test]
    fn the_window_follows_the_rate() {
        let us = Duration::from_micros;
        assert_eq!(release_window(100.0, 2), Duration::ZERO);
        assert_eq!(release_window(EXACT_UP_TO, 2), Duration::ZERO);
        assert_eq!(release_window(f64::NAN, 2), Duration::ZERO);
        assert_eq!(release_window(5000.0, 2), MAX_WINDOW);
        assert_eq!(release_window(20_000.0, 2), MAX_WINDOW);
        assert_eq!(release_window(40_000.0, 2), us(500));
        assert_eq!(release_window(80_000.0, 1), us(125).max(MIN_WINDOW));
        assert_eq!(release_window(1e7, 2), MIN_WINDOW);
        assert_eq!(release_window(f64::INFINITY, 2), MIN_WINDOW);
    }

    #[test]
    fn the_report_states_the_coarsest_grid() {
        assert_eq!(coarsest_window(&Schedule::constant(2000.0), 2), Duration::ZERO);
        assert_eq!(coarsest_window(&Schedule::constant(40_000.0), 2), Duration::from_micros(500));
        let ramp = Schedule::stages(vec![Stage { duration: Duration::from_secs(10), target: 50_000.0 }]);
        assert_eq!(coarsest_window(&ramp, 2), MAX_WINDOW);
        let slow = Schedule::stages(vec![Stage { duration: Duration::from_secs(10), target: 300.0 }]);
        assert_eq!(coarsest_window(&slow, 2), Duration::ZERO);
    }

    #[test]
    fn releases_each_due_request_once_in_order() {
        let schedule = Schedule::constant(2000.0);
        let mut pacer = Pacer::new(&schedule, Some(Duration::from_millis(50)), None, 0, 1, SECOND);
        let ms = Duration::from_millis;
        assert_eq!(pacer.release(Duration::ZERO), 1);
        assert_eq!(pacer.next_wake(), Some(Duration::from_micros(500)));
        assert_eq!(pacer.release(ms(10)), 21);
        assert_eq!(pacer.release(ms(10)), 21);
        assert!(!pacer.is_done());
        assert_eq!(pacer.release(ms(1000)), 100);
        assert!(pacer.is_done());
        assert_eq!(pacer.next_wake(), None);
    }

    #[test]
    fn a_dense_schedule_wakes_on_the_grid() {
        // 40k rps over two lanes: each lane's requests are 50 µs apart, the step 500 µs.
        let schedule = Schedule::constant(40_000.0);
        let mut pacer = Pacer::new(&schedule, None, None, 0, 2, SECOND);
        let us = Duration::from_micros;
        assert_eq!(pacer.release(us(1_000)), 21);
        assert_eq!(pacer.next_wake(), Some(us(1_500)));
        // An answer waking the lane between grid points releases nothing: the requests
        // due since wait for the grid point, and go out together.
        assert_eq!(pacer.release(us(1_350)), 21);
        assert_eq!(pacer.release(us(1_500)), 31);
    }

    /// Two lanes share a schedule: each releases every other request, together all of
    /// them, and a request count cuts both at the same run-wide number.
    #[test]
    fn lanes_split_the_schedule() {
        let schedule = Schedule::constant(2000.0);
        let released: Vec<u64> = (0..2)
            .map(|lane| {
                let mut pacer = Pacer::new(&schedule, Some(Duration::from_millis(50)), Some(61), lane, 2, SECOND);
                pacer.release(Duration::from_secs(1))
            })
            .collect();
        // Requests 0..61: lane 0 has 0, 2, …, 60 (31), lane 1 has 1, 3, …, 59 (30).
        assert_eq!(released, [31, 30]);
    }

    #[test]
    fn the_window_closes_after_its_grace() {
        let schedule = Schedule::constant(100.0);
        let ms = Duration::from_millis;
        let window = Pacer::new(&schedule, Some(ms(500)), None, 0, 1, SECOND);
        assert_eq!(window.closes(), Some(ms(600)));
        // -n 10: the first request past it would be due at 100 ms; a short timeout cuts the grace.
        let count = Pacer::new(&schedule, None, Some(10), 0, 1, ms(30));
        assert_eq!(count.closes(), Some(ms(130)));
        assert_eq!(Pacer::new(&schedule, None, None, 0, 1, SECOND).closes(), None);
    }

    #[test]
    fn a_run_far_behind_catches_up_in_batches() {
        let schedule = Schedule::constant(1e6);
        let mut pacer = Pacer::new(&schedule, None, None, 0, 1, SECOND);
        assert_eq!(pacer.release(Duration::from_secs(1)), BATCH);
        assert_eq!(pacer.release(Duration::from_secs(1)), 2 * BATCH);
    }
}
