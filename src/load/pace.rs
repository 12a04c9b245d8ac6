//! The open model's clock: releases one permit per due request at `t0 + schedule(i)`,
//! in order, until the schedule, the window or the request count ends; then, when the
//! sending window closes, stops the workers: a worker busy then starts no call after it.
//!
//! Precision and cost pull against each other here. Tokio's timer rounds every wait up
//! to the next millisecond, which would put up to a millisecond of our own lateness into
//! every latency; a separate pacer thread is precise but costs a thread wakeup plus a
//! cross-thread wakeup of the runtime per request. The pacer is a task on the runtime
//! waiting on a [`Clock`] (a `timerfd` the runtime's own epoll watches, on Linux): the
//! runtime thread wakes when a request is due, and nothing else wakes. Requests due
//! closer together than [`GRAIN`] are released together, on a grid.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::schedule::{Schedule, lane_seq};
use crate::util::clock::Clock;

/// The longest single wait, so a stop is seen soon even at a slow rate.
const MAX_NAP: Duration = Duration::from_millis(20);
/// How long after its end the window stays open for requests released in it: a worker
/// whose thread ran a little late still sends them (the client's own delay is not a
/// drop, and its lateness counts in their latency). Never more than `--timeout`.
pub const CLOSE_GRACE: Duration = Duration::from_millis(100);
/// The most permits released at once (a run far behind its schedule catches up in
/// steps, so the workers start in due order).
const BATCH: u64 = 4096;

/// The pacer's grain: when requests fall due closer together than this, it wakes on
/// this grid and releases every request due by then at once. Each wake costs wakeups of
/// threads and of the server, so a coarser grid costs less CPU per request (README,
/// Performance, has the figures). A request is then released at most this late (on
/// average half), which latency from the due time counts: 250 µs keeps that inside the
/// accuracy docs/measurement.md promises. Sparser requests are released exactly on time.
pub const GRAIN: Duration = Duration::from_micros(250);

/// When to wake for a request due at `off` (from t0), it being `now`: on time if it is
/// at least a grain away, else at the next grid point.
fn wake_for(off: Duration, now: Duration) -> Duration {
    if off.saturating_sub(now) >= GRAIN {
        return off;
    }
    let grain = GRAIN.as_nanos();
    Duration::from_nanos(u64::try_from(off.as_nanos().div_ceil(grain) * grain).unwrap_or(u64::MAX))
}

/// What the pacer needs to know and tell.
pub struct Pacer<'a> {
    pub schedule: &'a Schedule,
    pub t0: Instant,
    pub window: Option<Duration>,
    pub requests: Option<u64>,
    /// This pacer releases the lane's requests only: run-wide numbers `lane`,
    /// `lane + lanes`, … (its `i`-th is `lane + lanes * i`).
    pub lane: u64,
    pub lanes: u64,
    pub permits: &'a Semaphore,
    /// Where the workers stop: lowered from `u64::MAX` to the number released when the
    /// window closes.
    pub end: &'a AtomicU64,
    /// Set when the window closes: a worker whose call ends after it starts no other.
    pub closed: &'a AtomicBool,
    pub workers: usize,
    pub stop: &'a AtomicBool,
    /// `--timeout`, which bounds the grace after the window.
    pub timeout: Duration,
}

impl Pacer<'_> {
    /// When request `i` is due, if it is part of this run.
    fn due(&self, i: u64) -> Option<Duration> {
        let seq = lane_seq(self.lane, self.lanes, i);
        if self.requests.is_some_and(|n| seq >= n) {
            return None;
        }
        self.schedule.offset(seq).filter(|off| self.window.is_none_or(|w| *off < w))
    }

    /// When the sending window closes, from t0: at the end of the window, or when the
    /// first request past `--requests` or past the stages would be due.
    fn closes(&self) -> Option<Duration> {
        let past = self.requests.map_or_else(|| self.schedule.length(), |n| self.schedule.offset(n));
        match (self.window, past) {
            (Some(w), Some(p)) => Some(w.min(p)),
            (w, p) => w.or(p),
        }
    }

    /// Releases the requests as they fall due; returns how many it released. When the
    /// window closes it stops the workers and wakes them all: a worker that was idle
    /// may still take one request released in the window (its thread had not run yet),
    /// a busy one starts nothing more, so what waits for a slot then is never sent.
    pub async fn run(self) -> u64 {
        let mut clock = Clock::new();
        let mut released = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let Some(off) = self.due(released) else { break };
            let now = self.t0.elapsed();
            if off > now {
                clock.sleep_until(self.t0 + wake_for(off, now).min(now + MAX_NAP)).await;
                continue;
            }
            let mut n = 1;
            while n < BATCH && self.due(released + n).is_some_and(|o| o <= now) {
                n += 1;
            }
            released += n;
            self.permits.add_permits(n as usize);
        }
        // The last requests released keep their chance of a worker until the window ends.
        if let Some(close) = self.closes().map(|c| c + CLOSE_GRACE.min(self.timeout)) {
            while !self.stop.load(Ordering::Relaxed) && self.t0.elapsed() < close {
                clock.sleep_until((self.t0 + close).min(Instant::now() + MAX_NAP)).await;
            }
        }
        self.closed.store(true, Ordering::Release);
        self.end.store(released, Ordering::Release);
        self.permits.add_permits(self.workers);
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_requests_wake_on_the_grid_sparse_ones_on_time() {
        let us = Duration::from_micros;
        assert_eq!(wake_for(us(10_000), us(1_000)), us(10_000));
        assert_eq!(wake_for(us(1_300), us(1_000)), us(1_300));
        assert_eq!(wake_for(us(1_010), us(1_000)), us(1_250));
        assert_eq!(wake_for(us(1_250), us(1_100)), us(1_250));
        assert_eq!(wake_for(us(1_251), us(1_100)), us(1_500));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn releases_each_request_once_then_the_workers() {
        let schedule = Schedule::constant(2000.0);
        let (permits, end, stop) = (Semaphore::new(0), AtomicU64::new(u64::MAX), AtomicBool::new(false));
        let closed = AtomicBool::new(false);
        let pacer = Pacer {
            schedule: &schedule,
            t0: Instant::now(),
            window: Some(Duration::from_millis(50)),
            requests: None,
            lane: 0,
            lanes: 1,
            permits: &permits,
            end: &end,
            workers: 3,
            stop: &stop,
            closed: &closed,
            timeout: Duration::from_secs(1),
        };
        assert_eq!(pacer.run().await, 100);
        assert_eq!(end.load(Ordering::Acquire), 100);
        assert!(closed.load(Ordering::Acquire));
        assert_eq!(permits.available_permits(), 103);
    }

    /// Two lanes share a schedule: each releases every other request, together all of
    /// them, and a request count cuts both at the same run-wide number.
    #[tokio::test]
    async fn lanes_split_the_schedule() {
        let schedule = Schedule::constant(2000.0);
        let t0 = Instant::now();
        let stop = AtomicBool::new(false);
        let mut released = Vec::new();
        for lane in 0..2 {
            let (permits, end) = (Semaphore::new(0), AtomicU64::new(u64::MAX));
            let pacer = Pacer {
                schedule: &schedule,
                t0,
                window: Some(Duration::from_millis(50)),
                requests: Some(61),
                lane,
                lanes: 2,
                permits: &permits,
                end: &end,
                workers: 1,
                stop: &stop,
                closed: &AtomicBool::new(false),
                timeout: Duration::from_secs(1),
            };
            released.push(pacer.run().await);
        }
        // Requests 0..61: lane 0 has 0, 2, …, 60 (31), lane 1 has 1, 3, …, 59 (30).
        assert_eq!(released, [31, 30]);
    }
}
