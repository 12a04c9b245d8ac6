//! The one loop every load model shares, and the threads it runs on.
//!
//! Open model (`--rps`, `--stages`): each worker thread is a lane that owns its share
//! of the schedule; its [`super::pace::Pacer`] says which of the lane's requests are due
//! (request *i* at `t0 + schedule(i)`, an absolute schedule that never drifts), and the
//! lane starts them while fewer than its share of `--concurrency` calls are in flight; a
//! due request waits for a free slot with its wait counted in its latency (latency from
//! the due time; service time from the send). A request still waiting `--timeout` after
//! it fell due, or still waiting for a slot when the sending window closes, is
//! *dropped*: counted, never sent (docs/measurement.md). No call starts after the window
//! (and its short grace), so the run ends about one timeout after the window whatever
//! the server does. Closed model (no rate): each slot calls back to back. Observations
//! go to one owner ([`super::recorder::collect`]).
//!
//! Wakeups are the cost that matters at high rates (each is a context switch): a lane
//! is one task, so one wake serves both the answers that are ready and the requests
//! whose release time has come (their due time, or above 4000 rps the grid point after
//! it: [`super::pace`]), and its timer is set only for the next release.
//!
//! It must not drop a due request silently and must stop at the shutdown token.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::Either;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::args::Plan;
use super::pace::{Pacer, coarsest_window};
use super::recorder::{Recorder, Sinks, collect};
use super::schedule::{Schedule, lane_seq};
use super::segment::{global, stripe};
use crate::call::{Observation, Prober};
use crate::util::clock::Clock;

/// What one phase (warmup or measurement) measured.
pub struct PhaseResult {
    pub recorder: Recorder,
    pub sinks: Sinks,
    /// Open model: the sending window (the planned one, or up to the last send if that
    /// fell behind it). Closed model, or interrupted: from t0 to the end.
    pub duration: Duration,
    /// The planned span of the open schedule that was sent.
    pub planned: Option<Duration>,
    pub interrupted: bool,
    pub abandoned: u64,
    /// The release grid's coarsest step over every lane of every segment (zero: each
    /// request released on time), for the report to state.
    pub grid: Duration,
}

/// How long a due request may wait for a free worker before it is dropped: the call's
/// own timeout (a user who waited that long got nothing).
fn give_up_after(plan: &Plan) -> Duration {
    plan.timeout
}

/// What the calls of one lane share: the schedule and the hand-out counters.
///
/// Open model: each worker thread is a lane that owns every `lanes`-th request of the
/// schedule (lane `k` sends requests `k`, `k + lanes`, …) with its own pacer, so a
/// request falls due, is released and is sent on one thread, with no wakeup crossing
/// threads. Closed model: one lane for all threads (they only share the counters).
struct Shared {
    schedule: Option<Schedule>,
    t0: Instant,
    /// Closed model: start no call at or after this.
    deadline: Option<Instant>,
    lane: u64,
    lanes: u64,
    /// Closed model: lane-local numbers handed out so far.
    next: AtomicU64,
    /// Closed model: no call with a lane-local number at or above this.
    end: u64,
    /// Calls started, all lanes together (the progress display's in-flight count).
    started: Arc<AtomicU64>,
    /// Open model: requests given up after waiting [`give_up_after`], all lanes together.
    dropped: Arc<AtomicU64>,
    give_up: Duration,
}

impl Shared {
    /// The run-wide sequence number of this lane's `j`-th request.
    fn seq(&self, j: u64) -> u64 {
        lane_seq(self.lane, self.lanes, j)
    }
}

/// Worker threads for `concurrency` workers: one per CPU, at most one per worker.
pub fn worker_threads(concurrency: usize) -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, concurrency.max(1))
}

/// The calls in flight thread `i` of `threads` runs: the concurrency shared out as
/// evenly as can be, in whole connections of `--streams` calls (each thread's prober
/// has connections of its own), so the run uses ceil(concurrency / streams).
fn thread_slots(plan: &Plan, threads: usize, i: usize) -> usize {
    let streams = plan.streams.max(1);
    let connections = plan.connections();
    let before: usize = (0..i).map(|j| connections / threads + usize::from(j < connections % threads)).sum();
    let mine = connections / threads + usize::from(i < connections % threads);
    (mine * streams).min(plan.concurrency.saturating_sub(before * streams))
}

/// Runs one phase from `t0` (now, or the common start of `--start-at`, which may be a
/// few milliseconds ahead: the pacers wait for it).
pub async fn run_phase(
    plan: &Plan,
    probers: &[Arc<Prober>],
    shutdown: &CancellationToken,
    mut sinks: Sinks,
    t0: Instant,
) -> PhaseResult {
    let started = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    sinks.started = Some(Arc::clone(&started));
    sinks.dropped = Some(Arc::clone(&dropped));
    let open = plan.schedule.is_some();
    let lanes = if open { probers.len() } else { 1 };
    let shared: Vec<Arc<Shared>> = (0..lanes)
        .map(|lane| {
            // This process's lanes stripe its segment of the global schedule.
            let (lane, lanes) = stripe(plan.segment, lane as u64, lanes as u64);
            Arc::new(Shared {
                schedule: plan.schedule.clone(),
                t0,
                deadline: plan.window.filter(|_| !open).map(|w| t0 + w),
                lane,
                lanes,
                next: AtomicU64::new(0),
                end: plan.requests.unwrap_or(u64::MAX),
                started: Arc::clone(&started),
                dropped: Arc::clone(&dropped),
                give_up: give_up_after(plan),
            })
        })
        .collect();

    let (tx, rx) = mpsc::channel::<Observation>(4096);
    // How long the run is meant to last, for the timeline's interval.
    let planned = plan.window.or_else(|| plan.schedule.as_ref().zip(plan.requests).and_then(|(s, n)| s.offset(n)));
    // Requests the grid holds back by design are not late starts: every thread of every
    // segment is a lane.
    let all_lanes = probers.len() as u64 * plan.segment.count;
    let grid = plan.schedule.as_ref().map_or(Duration::ZERO, |s| coarsest_window(s, all_lanes));
    let owner = tokio::spawn(collect(rx, t0, planned, grid, sinks));

    // Each thread runs its share of the calls (and, open model, its lane's pacer) as one
    // task on its own single-threaded runtime with its own prober: a call, its
    // connection's task and the release that started it stay on one thread instead of
    // waking each other across threads (docs/performance.md has the figures).
    let mut threads = Vec::new();
    for (i, prober) in probers.iter().enumerate() {
        let slots = thread_slots(plan, probers.len(), i);
        let lane = Arc::clone(&shared[i % lanes]);
        let (tx, cancel, prober) = (tx.clone(), shutdown.clone(), Arc::clone(prober));
        let (window, requests) = (plan.window, plan.requests);
        threads.push(spawn_on_own_thread(async move {
            let pacer =
                lane.schedule.as_ref().map(|s| Pacer::new(s, window, requests, lane.lane, lane.lanes, lane.give_up));
            run_lane(&lane, pacer, &prober, slots, tx, &cancel).await
        }));
    }
    let mut released = 0;
    for thread in threads {
        released += thread.await.unwrap_or(0);
    }
    // Every request released and not started was dropped: the ones given up while the
    // window was open, and those still waiting when it closed. The owner reads the total
    // once the last sender (this one) is gone.
    if open {
        dropped.store(released.saturating_sub(started.load(Ordering::SeqCst)), Ordering::SeqCst);
    }
    drop(tx);
    let interrupted = shutdown.is_cancelled();
    let finished = t0.elapsed();
    let (recorder, sinks) = owner.await.expect("the recorder task does not panic");

    let planned = match &plan.schedule {
        Some(s) => {
            // Due time of this segment's first request not sent: the end of its window.
            let span = s.offset(global(plan.segment, released)).or_else(|| s.length()).unwrap_or(finished);
            Some(plan.window.map_or(span, |w| span.min(w)))
        }
        None => None,
    };
    // Open model: the rate offered is what was sent over the sending window (answers
    // arriving after it do not lower it; sends that fell behind past it do).
    let duration = match planned {
        Some(p) if !interrupted => {
            p.max(recorder.last_sent().map_or(Duration::ZERO, |s| s.saturating_duration_since(t0)))
        }
        _ => finished,
    };
    PhaseResult {
        abandoned: started.load(Ordering::Relaxed).saturating_sub(recorder.requests()),
        recorder,
        sinks,
        duration,
        planned,
        interrupted,
        grid,
    }
}

/// Runs `work` on a new thread with its own single-threaded runtime, or, should no
/// thread or runtime be had, on the current runtime: its share of the load is never
/// dropped. The receiver fires when it is done.
fn spawn_on_own_thread<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return spawn_here(work);
    };
    let (done, finished) = tokio::sync::oneshot::channel();
    // The work goes to the thread once it exists, so a failed spawn still has it.
    let (hand_over, take) = std::sync::mpsc::sync_channel::<Pin<Box<dyn Future<Output = T> + Send>>>(1);
    let spawned = std::thread::Builder::new().name("nehr-probe-worker".into()).spawn(move || {
        if let Ok(work) = take.recv() {
            // A task, not the future `block_on` polls itself: a task woken on its own
            // thread is queued there, while waking that future always signals the
            // runtime's driver (a write to an eventfd and one more epoll_wait).
            if let Ok(result) = runtime.block_on(async { tokio::spawn(work).await }) {
                let _ = done.send(result);
            }
        }
    });
    match spawned {
        Ok(_) => {
            let _ = hand_over.send(Box::pin(work));
            finished
        }
        Err(_) => spawn_here(work),
    }
}

/// Runs `work` on the current runtime; the receiver fires when it is done.
fn spawn_here<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> tokio::sync::oneshot::Receiver<T> {
    let (done, finished) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = done.send(work.await);
    });
    finished
}

/// The shortest period of the lane's always-pending timer (below it, the timer's own
/// wakes would cost more than they save).
const SENTINEL_AT_LEAST: Duration = Duration::from_millis(100);

/// One thread's share of a phase, as one task: start the calls that may start, then
/// wait for whichever comes first (an answer, the pacer's next wake, the shutdown) and
/// go round. Open model: the due requests the pacer released start in order while fewer
/// than `slots` calls are in flight and the window is open; one that waited for a slot
/// longer than the timeout is dropped instead. Closed model: a call per free slot until
/// the deadline or the request count. Every wake of the thread (an answer's too)
/// releases whatever the pacer says is due by then, and the timer is set for the next
/// release. Returns how many requests the pacer released (0 in the closed model).
async fn run_lane(
    lane: &Shared,
    mut pacer: Option<Pacer<'_>>,
    prober: &Prober,
    slots: usize,
    tx: mpsc::Sender<Observation>,
    cancel: &CancellationToken,
) -> u64 {
    let mut clock = Clock::new();
    let mut calls = FuturesUnordered::new();
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    // One tokio timer always pending sooner than any call's timeout, so registering a
    // call's timeout never finds tokio's timer wheel empty: then tokio signals its own
    // driver (an eventfd write and one more epoll_wait) for every call. It goes off
    // every half timeout, which is nothing beside the calls.
    let keep_pending = lane.give_up / 2;
    let sentinel = tokio::time::sleep(keep_pending);
    tokio::pin!(sentinel);
    let use_sentinel = keep_pending >= SENTINEL_AT_LEAST;
    let closes = pacer.as_ref().and_then(Pacer::closes).map(|c| lane.t0 + c);
    // Lane-local numbers started or dropped so far (open model).
    let mut taken = 0u64;
    // Closed model: no more calls to start.
    let mut closed_done = false;
    loop {
        let mut wake = None;
        match (&mut pacer, &lane.schedule) {
            (Some(pacer), Some(schedule)) => {
                let now = Instant::now();
                let open = closes.is_none_or(|c| now < c);
                // `t0` may lie ahead (`--start-at`): nothing is due before it.
                let released = match now.checked_duration_since(lane.t0) {
                    Some(since) => pacer.release(since),
                    None => pacer.released(),
                };
                while open && calls.len() < slots && taken < released {
                    let seq = lane.seq(taken);
                    taken += 1;
                    // Released requests are due by now, so `seq` has an offset.
                    let due = lane.t0 + schedule.offset(seq).unwrap_or_default();
                    if now.saturating_duration_since(due) > lane.give_up {
                        lane.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    lane.started.fetch_add(1, Ordering::Relaxed);
                    calls.push(Either::Left(prober.call(seq, due)));
                }
                // What is released and not taken when the window closes is dropped.
                let finished = !open || (pacer.is_done() && taken == released);
                if finished && calls.is_empty() {
                    break;
                }
                if open && taken == released {
                    wake = pacer.next_wake().map(|w| lane.t0 + w);
                }
            }
            _ => {
                while !closed_done && calls.len() < slots {
                    let j = lane.next.fetch_add(1, Ordering::Relaxed);
                    if j >= lane.end || lane.deadline.is_some_and(|d| Instant::now() >= d) {
                        closed_done = true;
                        break;
                    }
                    lane.started.fetch_add(1, Ordering::Relaxed);
                    // Closed model: due when it starts (at its first poll), so never late.
                    let seq = lane.seq(j);
                    calls.push(Either::Right(async move { prober.call(seq, Instant::now()).await }));
                }
                if closed_done && calls.is_empty() {
                    break;
                }
            }
        }
        tokio::select! {
            biased;
            () = &mut cancelled => break,
            Some(obs) = calls.next(), if !calls.is_empty() => {
                if tx.send(obs).await.is_err() {
                    break;
                }
            }
            () = clock.sleep_until(wake.unwrap_or(lane.t0)), if wake.is_some() => {}
            () = &mut sentinel, if use_sentinel => {
                sentinel.as_mut().reset(tokio::time::Instant::now() + keep_pending);
            }
        }
    }
    pacer.map_or(0, |p| p.released())
}
