//! The one worker loop every load model shares, and the threads it runs on.
//!
//! Open model (`--rps`, `--stages`): a pacer ([`super::pace`]) per worker thread
//! releases that thread's share of the requests (its lane), request *i* at
//! `t0 + schedule(i)` (an absolute schedule that never drifts) as a permit; the lane's
//! workers take permits, so at most `--concurrency` calls are in flight, and a due
//! request waits for a free worker with its wait counted in its latency (latency from
//! the due time; service time from the send). A request still waiting `--timeout` after
//! it fell due, or still waiting for a slot when the sending window closes, is
//! *dropped*: counted, never sent (docs/measurement.md). A worker busy when the window
//! closes starts nothing after its call (one idle then may still take a request released
//! in the window), so the run ends about one timeout after the window whatever the
//! server does. Closed model (no rate):
//! the workers call back to back. Observations go to one owner
//! ([`super::recorder::collect`]).
//!
//! It must not drop a due request silently and must stop at the shutdown token.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::args::Plan;
use super::pace::Pacer;
use super::recorder::{Recorder, Sinks, collect};
use super::schedule::{Schedule, lane_seq};
use super::segment::{global, stripe};
use crate::call::{Observation, Prober};

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
}

/// How long a due request may wait for a free worker before it is dropped: the call's
/// own timeout (a user who waited that long got nothing).
fn give_up_after(plan: &Plan) -> Duration {
    plan.timeout
}

/// What the workers of one lane share: the schedule and the hand-out counters.
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
    /// Lane-local numbers handed out so far (one per call or drop, plus one per worker
    /// at the end).
    next: AtomicU64,
    /// No call with a lane-local number at or above this; the pacer lowers it to the
    /// number released when the sending window closes.
    end: AtomicU64,
    /// Open model: the window has closed; a worker whose call ends now stops.
    closed: AtomicBool,
    /// Calls started, all lanes together (the progress display's in-flight count).
    started: Arc<AtomicU64>,
    /// Open model: requests given up after waiting [`give_up_after`], all lanes together.
    dropped: Arc<AtomicU64>,
    give_up: Duration,
    /// Open model: one permit per due request of this lane.
    permits: Option<Semaphore>,
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
                closed: AtomicBool::new(false),
                end: AtomicU64::new(if open { u64::MAX } else { plan.requests.unwrap_or(u64::MAX) }),
                started: Arc::clone(&started),
                dropped: Arc::clone(&dropped),
                give_up: give_up_after(plan),
                permits: open.then(|| Semaphore::new(0)),
            })
        })
        .collect();

    let (tx, rx) = mpsc::channel::<Observation>(4096);
    // How long the run is meant to last, for the timeline's interval.
    let planned = plan.window.or_else(|| plan.schedule.as_ref().zip(plan.requests).and_then(|(s, n)| s.offset(n)));
    let owner = tokio::spawn(collect(rx, t0, planned, sinks));

    // Each thread runs its share of the workers (and, open model, its lane's pacer) on
    // its own single-threaded runtime with its own prober: a call, its connection's task
    // and the permit that released it stay on one thread instead of waking each other
    // across threads (README, Performance, has the figures).
    let mut threads = Vec::new();
    for (i, prober) in probers.iter().enumerate() {
        let workers = plan.concurrency / probers.len() + usize::from(i < plan.concurrency % probers.len());
        let lane = Arc::clone(&shared[i % lanes]);
        let (tx, cancel, prober) = (tx.clone(), shutdown.clone(), Arc::clone(prober));
        // Per lane: a lane that is done must not stop another lane's pacer.
        let stop = Arc::new(AtomicBool::new(false));
        let (window, requests) = (plan.window, plan.requests);
        let run = async move {
            let pacer = lane.permits.is_some().then(|| {
                let (lane, stop) = (Arc::clone(&lane), Arc::clone(&stop));
                tokio::spawn(async move {
                    let (Some(schedule), Some(permits)) = (&lane.schedule, &lane.permits) else { return 0 };
                    let pacer = Pacer {
                        schedule,
                        t0: lane.t0,
                        window,
                        requests,
                        lane: lane.lane,
                        lanes: lane.lanes,
                        permits,
                        end: &lane.end,
                        closed: &lane.closed,
                        workers,
                        timeout: lane.give_up,
                        stop: &stop,
                    };
                    pacer.run().await
                })
            });
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..workers {
                let (lane, tx, cancel, prober) = (Arc::clone(&lane), tx.clone(), cancel.clone(), Arc::clone(&prober));
                set.spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        () = worker(&lane, &prober, tx) => {}
                    }
                });
            }
            while set.join_next().await.is_some() {}
            // Interrupted: the workers stopped first; the pacer stops now.
            stop.store(true, Ordering::Relaxed);
            match pacer {
                Some(p) => p.await.unwrap_or(0),
                None => 0,
            }
        };
        threads.push(spawn_on_own_thread(run));
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
            let _ = done.send(runtime.block_on(work));
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

/// The one worker loop: wait for a turn (a permit in the open model, none in the
/// closed), take the next sequence number, call, hand the observation to the owner.
async fn worker(shared: &Shared, prober: &Prober, tx: mpsc::Sender<Observation>) {
    loop {
        if let Some(permits) = &shared.permits {
            match permits.acquire().await {
                Ok(p) => p.forget(),
                Err(_) => return,
            }
        } else if shared.deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let j = shared.next.fetch_add(1, Ordering::Relaxed);
        if j >= shared.end.load(Ordering::Acquire) {
            return;
        }
        let seq = shared.seq(j);
        let due = match &shared.schedule {
            // Released permits never outnumber due requests, so `seq` is due by now.
            Some(s) => {
                let due = shared.t0 + s.offset(seq).unwrap_or_default();
                if due.elapsed() > shared.give_up {
                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                due
            }
            None => Instant::now(),
        };
        shared.started.fetch_add(1, Ordering::Relaxed);
        let obs = prober.call(seq, due).await;
        if tx.send(obs).await.is_err() {
            return;
        }
        // Busy when the window closed: no new call (what waits for a slot is dropped).
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
    }
}
