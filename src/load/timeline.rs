//! What happened when: the run's seconds and its timeline.
//!
//! Owns the rule that puts a call in time — **a call belongs to the interval in which it
//! ended** (its answer, error or timeout), counted from t0, the instant the schedule
//! starts — and applies it to both the `--hlog` (one line per second) and the report's
//! timeline, so the two always agree. A second stays open [`GRACE`] past its end for the
//! answers still on their way to the recorder; one that arrives later still (only when
//! the recorder falls behind) counts in the oldest second still open.
//!
//! The timeline's interval is 1 s, or coarser when the planned run is long, so that a
//! report holds at most
//! [`TIMELINE_MAX_ENTRIES`](crate::report::model::TIMELINE_MAX_ENTRIES) entries; a run that outlasts its plan (`-n`
//! without `--duration`) doubles the interval as it goes. Memory stays fixed: a closed
//! interval keeps counts and four percentiles, never a histogram. It must not know
//! about report formats: `report` turns a [`Timeline`] into JSON.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use crate::call::{Outcome, keyed};
use crate::report::histogram::{self, histogram};
use crate::report::model::{IntervalLatency, Outcomes, TimelineEntry, secs, timeline_interval};

/// How long a second stays open after it ended, for answers on their way to the
/// recorder (which drains its channel every 10 ms).
pub const GRACE: Duration = Duration::from_millis(100);

/// The most entries any timeline has: past it the interval doubles.
const HARD_MAX: usize = 4096;

/// One interval of the timeline, closed: counts by outcome (in [`Outcome::ALL`]'s order),
/// requests dropped in it, and latency percentiles in µs (all zero without calls).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Slice {
    pub outcomes: Outcomes,
    /// Due requests given up in it (never sent: no latency).
    pub dropped: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Slice {
    pub fn requests(&self) -> u64 {
        keyed::total(&self.outcomes)
    }

    fn summarize(outcomes: Outcomes, dropped: u64, h: &Histogram<u64>) -> Slice {
        if h.is_empty() {
            return Slice { outcomes, dropped, ..Slice::default() };
        }
        Slice {
            outcomes,
            dropped,
            p50_us: histogram::percentile(h, 50.0),
            p90_us: histogram::percentile(h, 90.0),
            p99_us: histogram::percentile(h, 99.0),
            max_us: h.max(),
        }
    }

    /// Two neighbours as one: counts and the maximum exact, the percentiles the
    /// request-weighted means of theirs (no histogram is kept per interval).
    fn join(a: &Slice, b: &Slice) -> Slice {
        let (na, nb) = (a.requests(), b.requests());
        let mut outcomes = a.outcomes;
        keyed::add_all(&mut outcomes, &b.outcomes);
        let mut joined = histogram::JoinedQuantiles::default();
        for (s, n) in [(a, na), (b, nb)] {
            joined.add([s.p50_us, s.p90_us, s.p99_us].map(|us| us as f64), n);
        }
        let [p50_us, p90_us, p99_us] = joined.get().unwrap_or_default().map(|us| us.round() as u64);
        Slice { outcomes, dropped: a.dropped + b.dropped, p50_us, p90_us, p99_us, max_us: a.max_us.max(b.max_us) }
    }
}

/// The run's timeline: entry `i` covers `[i × interval, (i + 1) × interval)` from
/// `started_at` (the last one may be shorter: the run ended).
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The wall-clock instant of t0.
    pub started_at: SystemTime,
    /// Seconds per entry.
    pub interval: u64,
    pub slices: Vec<Slice>,
    /// Some entries were joined after they closed, so their p50, p90 and p99 are
    /// approximate (the run outlasted its plan).
    pub coarsened: bool,
}

impl Timeline {
    /// The report's entries.
    pub fn entries(&self) -> Vec<TimelineEntry> {
        let entry = |(i, slice): (usize, &Slice)| {
            let outcomes = slice.outcomes;
            TimelineEntry {
                offset_seconds: (i as u64 * self.interval) as f64,
                requests: slice.requests(),
                dropped: slice.dropped,
                outcomes,
                latency_seconds: IntervalLatency {
                    p50: secs(slice.p50_us),
                    p90: secs(slice.p90_us),
                    p99: secs(slice.p99_us),
                    max: secs(slice.max_us),
                },
            }
        };
        self.slices.iter().enumerate().map(entry).collect()
    }
}

/// Builds the timeline from closed seconds, in order.
#[derive(Debug)]
pub struct TimelineBuilder {
    timeline: Timeline,
    /// The interval being filled: its index, counts and latency (µs).
    slot: u64,
    outcomes: Outcomes,
    dropped: u64,
    latency: Histogram<u64>,
}

impl TimelineBuilder {
    pub fn new(started_at: SystemTime, planned: Option<Duration>) -> Self {
        TimelineBuilder {
            timeline: Timeline {
                started_at,
                interval: timeline_interval(planned),
                slices: Vec::new(),
                coarsened: false,
            },
            slot: 0,
            outcomes: Outcomes::default(),
            dropped: 0,
            latency: histogram(),
        }
    }

    /// Adds the closed second `k` (seconds arrive in order, none skipped).
    pub fn add(&mut self, second: &Second) {
        // The interval may double while earlier slots close: its slot is found again.
        while second.index / self.timeline.interval > self.slot {
            self.close_slot();
            self.slot += 1;
        }
        keyed::add_all(&mut self.outcomes, &second.outcomes);
        self.dropped += second.dropped;
        histogram::add(&mut self.latency, &second.latency);
    }

    fn close_slot(&mut self) {
        let slice = Slice::summarize(self.outcomes, self.dropped, &self.latency);
        self.timeline.slices.push(slice);
        self.outcomes = Outcomes::default();
        self.dropped = 0;
        self.latency.reset();
        if self.timeline.slices.len() >= HARD_MAX {
            let joined = self.timeline.slices.chunks(2).map(|p| p.iter().skip(1).fold(p[0], |a, b| Slice::join(&a, b)));
            self.timeline.slices = joined.collect();
            self.timeline.interval *= 2;
            self.timeline.coarsened = true;
            // The slot being filled next starts where the joined slices end.
            self.slot = self.timeline.slices.len() as u64 - 1;
        }
    }

    /// The timeline, its last interval closed.
    pub fn finish(mut self) -> Timeline {
        self.close_slot();
        self.timeline
    }
}

/// One second of the run, by the instant calls ended.
#[derive(Debug, Clone)]
pub struct Second {
    /// Seconds from t0 at its start.
    pub index: u64,
    /// Latency (from the due time) of the calls that ended in it, µs.
    pub latency: Histogram<u64>,
    /// Its calls by outcome, in [`Outcome::ALL`]'s order.
    pub outcomes: Outcomes,
    /// Due requests given up in it.
    pub dropped: u64,
}

/// The seconds still open to calls, oldest first: usually one, two around a boundary.
#[derive(Debug, Default)]
pub struct OpenSeconds {
    /// Index of the oldest open second.
    first: u64,
    open: VecDeque<Second>,
    /// Closed seconds' histograms, for reuse (no allocation per second).
    spare: Vec<Histogram<u64>>,
}

impl OpenSeconds {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a call that ended `at` after t0 with `latency_us`.
    pub fn record(&mut self, at: Duration, outcome: Outcome, latency_us: u64) {
        let k = at.as_secs().max(self.first);
        while self.first + (self.open.len() as u64) <= k {
            self.open_next();
        }
        let second = &mut self.open[(k - self.first) as usize];
        second.latency.saturating_record(latency_us);
        second.outcomes[outcome] += 1;
    }

    /// Counts `n` requests given up `at` after t0 (when the recorder learnt of them).
    pub fn drop_at(&mut self, at: Duration, n: u64) {
        if n == 0 {
            return;
        }
        let k = at.as_secs().max(self.first);
        while self.first + (self.open.len() as u64) <= k {
            self.open_next();
        }
        self.open[(k - self.first) as usize].dropped += n;
    }

    fn open_next(&mut self) {
        let index = self.first + self.open.len() as u64;
        let latency = self.spare.pop().unwrap_or_else(histogram);
        self.open.push_back(Second { index, latency, outcomes: Outcomes::default(), dropped: 0 });
    }

    /// Closes, oldest first, every second that ended at least [`GRACE`] before `now`
    /// (time from t0), handing each to `sink` with its length.
    pub fn close_due(&mut self, now: Duration, mut sink: impl FnMut(&Second, Duration)) {
        while Duration::from_secs(self.first + 1) + GRACE <= now {
            self.close_first(Duration::from_secs(1), &mut sink);
        }
    }

    /// The run ended at `end` (from t0): closes every second up to it, the last one
    /// partial. An empty partial second at the end is left out, unless it is the only one.
    pub fn close_all(&mut self, end: Duration, mut sink: impl FnMut(&Second, Duration)) {
        let whole = end.as_secs();
        while self.first < whole || !self.open.is_empty() {
            let start = Duration::from_secs(self.first);
            let len = if self.first < whole { Duration::from_secs(1) } else { end.saturating_sub(start) };
            let empty = self.open.front().is_none_or(|s| s.latency.is_empty() && s.dropped == 0);
            if self.first >= whole && empty && self.first > 0 {
                self.open.pop_front();
                self.first += 1;
                continue;
            }
            self.close_first(len.max(Duration::from_millis(1)), &mut sink);
        }
        if self.first == 0 {
            // Nothing at all happened: one empty second, so the log and timeline have a line.
            self.close_first(end.max(Duration::from_millis(1)), &mut sink);
        }
    }

    fn close_first(&mut self, len: Duration, sink: &mut impl FnMut(&Second, Duration)) {
        if self.open.is_empty() {
            self.open_next();
        }
        let mut second = self.open.pop_front().expect("one second is open");
        sink(&second, len);
        second.latency.reset();
        self.spare.push(second.latency);
        self.first += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close_all(open: &mut OpenSeconds, end: Duration) -> Vec<(u64, u64, Duration)> {
        let mut out = Vec::new();
        open.close_all(end, |s, len| out.push((s.index, s.latency.len(), len)));
        out
    }

    #[test]
    fn calls_count_in_the_second_they_ended() {
        let mut open = OpenSeconds::new();
        open.record(Duration::from_millis(999), Outcome::Ok, 10);
        open.record(Duration::from_millis(1001), Outcome::Timeout, 20);
        let mut closed = Vec::new();
        // Second 0 stays open for the grace period after it ends.
        open.close_due(Duration::from_millis(1050), |s, _| closed.push(s.index));
        assert!(closed.is_empty());
        // A late answer of second 0 still lands in it.
        open.record(Duration::from_millis(990), Outcome::Ok, 30);
        open.close_due(Duration::from_millis(1100), |s, _| closed.push(s.outcomes[Outcome::Ok]));
        assert_eq!(closed, [2]);
        // Later than the grace: it counts in the oldest open second.
        open.record(Duration::from_millis(500), Outcome::Ok, 30);
        let rest = close_all(&mut open, Duration::from_millis(2500));
        assert_eq!(rest, [(1, 2, Duration::from_secs(1))]);
    }

    #[test]
    fn the_end_closes_a_partial_second_and_skips_an_empty_one() {
        let mut open = OpenSeconds::new();
        open.record(Duration::from_millis(2200), Outcome::Ok, 10);
        let got = close_all(&mut open, Duration::from_millis(2500));
        assert_eq!(
            got,
            [(0, 0, Duration::from_secs(1)), (1, 0, Duration::from_secs(1)), (2, 1, Duration::from_millis(500))]
        );
        let mut open = OpenSeconds::new();
        open.record(Duration::from_millis(500), Outcome::Ok, 10);
        assert_eq!(close_all(&mut open, Duration::from_millis(1300)), [(0, 1, Duration::from_secs(1))]);
        let mut open = OpenSeconds::new();
        assert_eq!(close_all(&mut open, Duration::from_millis(300)), [(0, 0, Duration::from_millis(300))]);
    }

    fn second(index: u64, outcome: Outcome, latencies_us: &[u64]) -> Second {
        let mut s = Second { index, latency: histogram(), outcomes: Outcomes::default(), dropped: 0 };
        for &l in latencies_us {
            s.latency.record(l).unwrap();
            s.outcomes[outcome] += 1;
        }
        s
    }

    #[test]
    fn dropped_requests_count_in_the_second_they_were_given_up() {
        let mut open = OpenSeconds::new();
        open.record(Duration::from_millis(300), Outcome::Timeout, 10);
        open.drop_at(Duration::from_millis(2400), 40);
        open.drop_at(Duration::from_millis(2600), 2);
        let mut b = TimelineBuilder::new(SystemTime::UNIX_EPOCH, None);
        let mut got = Vec::new();
        open.close_all(Duration::from_millis(2700), |s, _| {
            got.push((s.index, s.dropped));
            b.add(s);
        });
        // A partial last second with only dropped requests is kept.
        assert_eq!(got, [(0, 0), (1, 0), (2, 42)]);
        let t = b.finish();
        assert_eq!(t.slices.iter().map(|s| s.dropped).collect::<Vec<_>>(), [0, 0, 42]);
        assert_eq!(t.entries()[2].dropped, 42);
        assert_eq!(Slice::join(&t.slices[1], &t.slices[2]).dropped, 42);
    }

    #[test]
    fn seconds_gather_into_intervals() {
        let mut b = TimelineBuilder::new(SystemTime::UNIX_EPOCH, Some(Duration::from_secs(7200)));
        assert_eq!(b.timeline.interval, 2);
        b.add(&second(0, Outcome::Ok, &[100, 200]));
        b.add(&second(1, Outcome::Ok, &[300]));
        b.add(&second(2, Outcome::ConnectError, &[5]));
        b.add(&second(3, Outcome::Ok, &[]));
        b.add(&second(4, Outcome::Ok, &[1000]));
        let t = b.finish();
        assert_eq!(t.slices.len(), 3);
        assert_eq!(t.slices[0].outcomes[Outcome::Ok], 3);
        assert_eq!((t.slices[0].p50_us, t.slices[0].max_us), (200, 300));
        assert_eq!(t.slices[1].outcomes[Outcome::ConnectError], 1);
        assert_eq!(t.slices[1].requests(), 1);
        assert_eq!(t.slices[2].max_us, 1000);
        assert!(!t.coarsened);
    }

    #[test]
    fn a_run_past_its_plan_doubles_the_interval() {
        let mut b = TimelineBuilder::new(SystemTime::UNIX_EPOCH, None);
        let n = HARD_MAX as u64 + 10;
        for k in 0..n {
            b.add(&second(k, Outcome::Ok, &[k + 1]));
        }
        let t = b.finish();
        assert_eq!(t.interval, 2);
        assert!(t.coarsened);
        assert_eq!(t.slices.len() as u64, n.div_ceil(2));
        assert!(t.slices.iter().all(|s| s.requests() == 2));
        assert_eq!(t.slices.iter().map(Slice::requests).sum::<u64>(), n);
        assert_eq!(t.slices[0].max_us, 2);
        // Histograms keep 3 significant digits: the highest equivalent value.
        assert!((n..n + 3).contains(&t.slices.last().unwrap().max_us));
    }
}
