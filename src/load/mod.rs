//! `nehr-probe load`: the load test. Owns the flags, their validation into a [`Plan`]
//! before any request, and the one worker loop that every model shares.
//!
//! Open model (`--rps`, `--stages`): a pacer ([`pace`]) per worker thread releases
//! that thread's share of the requests (its lane), request *i* at
//! `t0 + schedule(i)` (an absolute schedule that never drifts) as a permit; `--concurrency`
//! workers take permits, so at most that many calls are in flight, and a due request
//! waits for a free worker with its wait counted in its latency (latency from the due
//! time, coordinated-omission corrected; service time from the send). Closed model (no
//! rate): the workers call back to back. Observations go to one owner ([`recorder`]).
//!
//! It must not drop a due request silently, must stop at Ctrl-C and still report, and
//! must not print the password or a token.

pub mod live;
pub mod pace;
pub mod recorder;
pub mod report;
pub mod schedule;
pub mod text;
pub mod threshold;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use prometheus::Registry;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, register_build_info};
use crate::probe::{Observation, Prober};
use crate::target::TargetArgs;
use crate::units::parse_duration;
use live::{Hlog, Progress};
use pace::Pacer;
use recorder::{Recorder, Sinks, collect};
use report::{Format, LoadReport, Model, RunFacts, Shown};
use schedule::{Schedule, Stage, parse_stages};
use threshold::Threshold;

/// How long a run lasts when neither `--duration`, `--requests` nor `--stages` says.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Accounts to log in with, one `username:password` a line, used round robin (in
    /// place of --username and the password): real load comes from many users
    #[arg(long, value_name = "FILE", conflicts_with = "mock", help_heading = "Target")]
    pub credentials: Option<PathBuf>,

    /// Open model: send N requests per second on a fixed schedule, whatever the server
    /// does. Without --rps or --stages the model is closed
    #[arg(long, value_name = "N", value_parser = parse_rate, help_heading = "Load")]
    pub rps: Option<f64>,

    /// Open model with a changing rate, k6 style: DURATION:RPS,… each stage ramps
    /// linearly from the previous rate (the first from 0), e.g. 30s:100,2m:100,30s:0
    #[arg(long, value_name = "STAGES", value_parser = parse_stage_list, conflicts_with_all = ["rps", "duration"], help_heading = "Load")]
    pub stages: Option<StageList>,

    /// Open model: requests in flight at most (a due request waits for a slot, and the
    /// wait counts in its latency). Closed model: workers calling back to back
    #[arg(short, long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000), help_heading = "Load")]
    pub concurrency: u32,

    /// How long to send requests [default: 10s, unless --requests or --stages is given]
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Load")]
    pub duration: Option<Duration>,

    /// Stop after this many requests (with --duration: whichever comes first)
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Load")]
    pub requests: Option<u64>,

    /// Send traffic for this long first, not recorded (at --rps, the first stage's rate,
    /// or --concurrency workers): warms connections and the server's caches
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0", help_heading = "Load")]
    pub warmup: Duration,

    /// Pass/fail rule, repeatable: p99<300ms, p99.9<=1s, error_rate<1%, rps>=49.
    /// Any failure exits 1
    #[arg(long = "threshold", value_name = "EXPR", value_parser = Threshold::parse, help_heading = "Report")]
    pub thresholds: Vec<Threshold>,

    /// Report format on stdout
    #[arg(long, value_enum, default_value_t = Format::Text, help_heading = "Report")]
    pub format: Format,

    /// Also write the JSON report to this file (for `nehr-probe report`)
    #[arg(long, value_name = "FILE", help_heading = "Report")]
    pub out: Option<PathBuf>,

    /// Write an HdrHistogram interval log of latency here: format V2, one interval per
    /// second, microseconds (HdrHistogram's log tools read it)
    #[arg(long, value_name = "FILE", help_heading = "Report")]
    pub hlog: Option<PathBuf>,

    /// Serve live metrics at http://ADDR/metrics during the run
    #[arg(long, value_name = "ADDR", help_heading = "Report")]
    pub metrics_listen: Option<SocketAddr>,

    /// `target` label of the live metrics
    #[arg(long, default_value = "default", value_name = "NAME", help_heading = "Report")]
    pub name: String,

    /// No live progress display (there is none anyway when stderr is not a terminal)
    #[arg(short, long, help_heading = "Report")]
    pub quiet: bool,
}

/// The parsed `--stages` (a newtype, so clap takes it as one value).
#[derive(Debug, Clone, PartialEq)]
pub struct StageList(pub Vec<Stage>);

fn parse_stage_list(s: &str) -> Result<StageList, String> {
    parse_stages(s).map(StageList)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 10_000_000.0 => Ok(r),
        _ => Err(format!("invalid rate {s:?}: expected requests per second, a number above 0, e.g. 50 or 0.5")),
    }
}

/// The checked shape of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `None`: the closed model.
    pub schedule: Option<Schedule>,
    pub concurrency: usize,
    /// Send no request due at or after this (the closed model: start none after it).
    pub window: Option<Duration>,
    pub requests: Option<u64>,
    pub warmup: Duration,
}

impl Plan {
    pub fn from_args(args: &LoadArgs) -> Plan {
        let schedule = match (&args.stages, args.rps) {
            (Some(StageList(stages)), _) => Some(Schedule::stages(stages.clone())),
            (None, Some(rps)) => Some(Schedule::constant(rps)),
            (None, None) => None,
        };
        let window = match (args.duration, schedule.as_ref().and_then(Schedule::length), args.requests) {
            (Some(d), _, _) => Some(d),
            (None, Some(stages), _) => Some(stages),
            (None, None, Some(_)) => None,
            (None, None, None) => Some(DEFAULT_DURATION),
        };
        Plan { schedule, concurrency: args.concurrency as usize, window, requests: args.requests, warmup: args.warmup }
    }

    pub fn model(&self) -> Model {
        if self.schedule.is_some() { Model::Open } else { Model::Closed }
    }
}

/// A finished run: its report (thresholds judged), latency histogram and notes.
pub type Finished = Shown;

/// Runs the load test and prints its report; returns the exit code (1: a threshold
/// failed). Errors are start-up errors (exit 2).
pub async fn run(args: &LoadArgs, shutdown: CancellationToken) -> anyhow::Result<u8> {
    let mut hlog_error = None;
    let finished = execute(args, shutdown, &mut hlog_error).await?;
    finished.emit(args.format, args.out.as_deref())?;
    if let Some(e) = hlog_error {
        return Err(e);
    }
    Ok(finished.report.exit_code())
}

/// Runs the load test and returns what it measured, without printing it. A failure to
/// write `--hlog` mid-run does not stop the run: it is put in `hlog_error`.
pub async fn execute(
    args: &LoadArgs,
    shutdown: CancellationToken,
    hlog_error: &mut Option<anyhow::Error>,
) -> anyhow::Result<Finished> {
    if args.duration.is_some_and(|d| d.is_zero()) {
        anyhow::bail!("--duration must be more than 0");
    }
    let plan = Plan::from_args(args);
    let mut target = args.target.resolve_with(args.credentials.as_deref())?;
    let _mock = crate::start_embedded_mock(&mut target, &args.target).await?;
    // One prober (its own connections) per worker thread: see `run_phase`.
    let probers = (0..worker_threads(plan.concurrency))
        .map(|_| Prober::new(&target).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;

    let stop_servers = CancellationToken::new();
    let _stop_servers = stop_servers.clone().drop_guard();
    let metrics = match args.metrics_listen {
        None => None,
        Some(addr) => {
            let registry = Registry::new();
            let metrics = Metrics::register(&registry, &args.name).context("registering metrics")?;
            register_build_info(&registry).context("registering metrics")?;
            live::serve_metrics(addr, registry, stop_servers.clone()).await?;
            Some(metrics)
        }
    };
    let mut hlog = match &args.hlog {
        None => None,
        Some(path) => Some(Hlog::create(path)?),
    };
    let mut progress = Progress::new(args.quiet, plan.window, plan.requests);

    if !plan.warmup.is_zero() {
        if let Some(p) = &mut progress {
            p.warming_up(plan.warmup);
        }
        let warm = Plan {
            schedule: plan.schedule.as_ref().map(|s| Schedule::constant(s.warmup_rate())),
            window: Some(plan.warmup),
            requests: None,
            ..plan.clone()
        };
        run_phase(&warm, &probers, &shutdown, Sinks::default()).await;
    }
    if let Some(p) = &mut progress {
        p.measuring();
    }
    let sinks = Sinks { hlog: hlog.take(), progress, metrics, started: None };
    let phase = run_phase(&plan, &probers, &shutdown, sinks).await;
    if let Some(p) = &phase.sinks.progress {
        p.finish();
    }
    if let Some(h) = phase.sinks.hlog {
        *hlog_error = h.finish().err();
    }

    let mut notes = Vec::new();
    if phase.interrupted {
        notes.push(format!(
            "interrupted after {:.1} s; {} calls in flight were abandoned, not counted",
            phase.duration.as_secs_f64(),
            phase.abandoned
        ));
    }
    let run = RunFacts {
        target: target.display_url(),
        model: plan.model(),
        target_rps: plan.schedule.as_ref().map(|s| s.mean_rate(phase.planned.unwrap_or(phase.duration))),
        concurrency: plan.concurrency as u64,
        duration: phase.duration,
    };
    let report = LoadReport::build(&run, &phase.recorder, &args.thresholds);
    let recorder = phase.recorder;
    Ok(Shown { report, latency: recorder.latency, service: Some(recorder.service), notes })
}

/// What one phase (warmup or measurement) measured.
struct PhaseResult {
    recorder: Recorder,
    sinks: Sinks,
    /// Open model: the sending window (the planned one, or up to the last send if that
    /// fell behind it). Closed model, or interrupted: from t0 to the end.
    duration: Duration,
    /// The planned span of the open schedule that was sent.
    planned: Option<Duration>,
    interrupted: bool,
    abandoned: u64,
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
    /// Lane-local numbers handed out so far (one per call, plus one per worker at the end).
    next: AtomicU64,
    /// No call with a lane-local number at or above this; the pacer lowers it at the end.
    end: AtomicU64,
    /// Calls started, all lanes together (the progress display's in-flight count).
    started: Arc<AtomicU64>,
    /// Open model: one permit per due request of this lane.
    permits: Option<Semaphore>,
}

impl Shared {
    /// The run-wide sequence number of this lane's `j`-th request.
    fn seq(&self, j: u64) -> u64 {
        self.lane + self.lanes * j
    }
}

/// Worker threads for `concurrency` workers: one per CPU, at most one per worker.
fn worker_threads(concurrency: usize) -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, concurrency.max(1))
}

async fn run_phase(
    plan: &Plan,
    probers: &[Arc<Prober>],
    shutdown: &CancellationToken,
    mut sinks: Sinks,
) -> PhaseResult {
    let t0 = Instant::now();
    let started = Arc::new(AtomicU64::new(0));
    sinks.started = Some(Arc::clone(&started));
    let open = plan.schedule.is_some();
    let lanes = if open { probers.len() } else { 1 };
    let shared: Vec<Arc<Shared>> = (0..lanes)
        .map(|lane| {
            Arc::new(Shared {
                schedule: plan.schedule.clone(),
                t0,
                deadline: plan.window.filter(|_| !open).map(|w| t0 + w),
                lane: lane as u64,
                lanes: lanes as u64,
                next: AtomicU64::new(0),
                end: AtomicU64::new(if open { u64::MAX } else { plan.requests.unwrap_or(u64::MAX) }),
                started: Arc::clone(&started),
                permits: open.then(|| Semaphore::new(0)),
            })
        })
        .collect();

    let (tx, rx) = mpsc::channel::<Observation>(4096);
    let owner = tokio::spawn(collect(rx, t0, sinks));

    // Each thread runs its share of the workers (and, open model, its lane's pacer) on
    // its own single-threaded runtime with its own prober: a call, its connection's task
    // and the permit that released it stay on one thread, instead of waking each other
    // across threads (measured: a fifth more closed-model throughput; at 100 to 5000
    // rps a median start 0.08-0.1 ms after the due time, where a pacer on another
    // thread than the workers took 0.15-0.3 ms).
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
                        workers,
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
    drop(tx);
    let mut released = 0;
    for thread in threads {
        released += thread.await.unwrap_or(0);
    }
    let interrupted = shutdown.is_cancelled();
    let finished = t0.elapsed();
    let (recorder, sinks) = owner.await.expect("the recorder task does not panic");

    let planned = match &plan.schedule {
        Some(s) => {
            let span = s.offset(released).or_else(|| s.length()).unwrap_or(finished);
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
        shared.started.fetch_add(1, Ordering::Relaxed);
        let seq = shared.seq(j);
        let due = match &shared.schedule {
            // Released permits never outnumber due requests, so `seq` is due by now.
            Some(s) => shared.t0 + s.offset(seq).unwrap_or_default(),
            None => Instant::now(),
        };
        let obs = prober.call(seq, due).await;
        if tx.send(obs).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<LoadArgs, clap::Error> {
        let mut argv = vec!["nehr-probe", "load"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Load(a) => Ok(a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn models_and_windows() {
        let p = Plan::from_args(&parse(&["--mock"]).unwrap());
        assert_eq!((p.model(), p.window, p.concurrency), (Model::Closed, Some(DEFAULT_DURATION), 50));
        let p = Plan::from_args(&parse(&["--mock", "--rps", "50", "-n", "100"]).unwrap());
        assert_eq!((p.model(), p.window, p.requests), (Model::Open, None, Some(100)));
        let p = Plan::from_args(&parse(&["--mock", "--stages", "1s:10,2s:10"]).unwrap());
        assert_eq!(p.window, Some(Duration::from_secs(3)));
        let p = Plan::from_args(&parse(&["--mock", "--rps", "5", "-d", "2s", "-c", "3"]).unwrap());
        assert_eq!((p.window, p.concurrency), (Some(Duration::from_secs(2)), 3));
    }

    #[test]
    fn conflicting_and_bad_flags_are_usage_errors() {
        for bad in [
            &["--rps", "5", "--stages", "1s:5"][..],
            &["--stages", "1s:5", "--duration", "1s"],
            &["--rps", "0"],
            &["--rps", "fast"],
            &["-c", "0"],
            &["-n", "0"],
            &["--threshold", "p99<"],
            &["--stages", "1s"],
            &["--credentials", "x", "--mock"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let e = parse(&["--threshold", "p99<<3"]).unwrap_err().to_string();
        assert!(e.contains("expected METRIC OP VALUE"), "{e}");
    }
}
