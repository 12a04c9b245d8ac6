//! `nehr-probe load`: the load test. Owns the flags and their validation into a
//! [`Plan`] before any request, runs the warmup and the measured phase on the
//! [`engine`], and turns what the [`recorder`] measured into a report.
//!
//! It must not drop a due request silently, must stop at Ctrl-C and still report (with
//! an exit code that says the run was cut short), and must not print the password or a
//! token.

pub mod args;
pub mod engine;
pub mod live;
pub mod pace;
pub mod recorder;
pub mod schedule;
pub mod segment;
pub mod then;
pub mod timeline;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::call::Prober;
use crate::metrics::{Metrics, Registry, register_build_info};
use crate::report::model::{RunFacts, Shown};
use crate::util::shutdown::Shutdown;
pub use args::{DEFAULT_DURATION, LoadArgs, Plan, StageList};
use engine::{run_phase, worker_threads};
use live::{Hlog, Progress};
use recorder::Sinks;
use schedule::Schedule;

/// A finished run: its report (thresholds judged) and histograms, whether the `--hlog`
/// could be written to the end (a failure there does not stop the run), and whether a
/// signal cut it short.
#[derive(Debug)]
pub struct Finished {
    pub shown: Shown,
    pub hlog: anyhow::Result<()>,
    pub interrupted: bool,
}

/// Runs the load test and prints its report; returns the exit code (1: a threshold
/// failed; 130 or 143: SIGINT or SIGTERM cut the run short). Errors are start-up errors,
/// or an `--out` or `--hlog` that could not be written after the report was printed
/// (exit 2).
pub async fn run(args: &LoadArgs, signals: &Shutdown) -> anyhow::Result<u8> {
    let hlog = [("--hlog", args.hlog.as_deref())];
    crate::report::check_outputs(args.out.as_deref(), args.html.as_deref(), &args.compare, &hlog)?;
    // A baseline that cannot be read fails before the first request, not after the run.
    let baseline = args.compare.baseline.as_deref().map(crate::report::read_baseline).transpose()?;
    if let Some(b) = &baseline {
        let plan = Plan::from_args(args);
        // A --stages plan's mean rate is known only once it ran: the comparison checks it.
        let rps = if args.stages.is_some() { None } else { args.rps };
        crate::report::compare::comparable(&b.report, plan.model(), rps, plan.concurrency as u64)
            .context("--baseline")?;
    }
    let finished = execute(args, signals.token()).await?;
    let shown = &finished.shown;
    let comparison = baseline
        .map(|b| crate::report::compare::compare(&b, shown, args.compare.tolerance))
        .transpose()
        .context("--baseline")?;
    crate::report::emit(shown, args.format, args.out.as_deref(), args.html.as_deref())?;
    let judged = crate::report::finish(shown, comparison.as_ref(), args.format, &args.compare)?;
    finished.hlog?;
    Ok(match signals.signal() {
        Some(signal) if finished.interrupted => signal.exit_code(),
        // A segment's thresholds are judged on the merged segments, by `report`.
        _ if args.segment.is_some_and(|s| s.count > 1) => 0,
        _ => judged,
    })
}

/// Runs the load test and returns what it measured, without printing it.
pub async fn execute(args: &LoadArgs, shutdown: CancellationToken) -> anyhow::Result<Finished> {
    execute_with(args, shutdown, |_| {}).await
}

/// [`execute`], telling `on_listening` the address `--metrics-listen` bound (the port
/// the system picked, for port 0) before the first request is sent. Not called without
/// `--metrics-listen`.
pub async fn execute_with(
    args: &LoadArgs,
    shutdown: CancellationToken,
    on_listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<Finished> {
    let plan = Plan::from_args(args);
    plan.check(args)?;
    let mut target = args.target.resolve_with(args.credentials.as_deref())?;
    let _mock = crate::mock::start_embedded(&mut target, &args.target, args.credentials.as_deref()).await?;
    // One prober (its own connections) per worker thread: see `run_phase`.
    let probers = (0..worker_threads(plan.connections()))
        .map(|_| Prober::with_streams(&target, !args.no_keepalive, plan.streams).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;

    let stop_servers = CancellationToken::new();
    let _stop_servers = stop_servers.clone().drop_guard();
    let live = match args.metrics_listen {
        None => LiveSeries::default(),
        Some(addr) => {
            let (live, registry) = LiveSeries::register(&args.name, target.then.is_some())?;
            on_listening(live::serve_metrics(addr, registry, stop_servers.clone()).await?);
            live
        }
    };
    let hlog = args.hlog.as_deref().map(Hlog::create).transpose()?;
    // The common start of every segment: the warmup from --start-at, the measured
    // schedule right after it.
    let start = match args.start_at {
        None => None,
        Some(at) => match segment::wait_for(at, plan.segment, &shutdown).await? {
            Some(t0) => Some((t0, at)),
            None => anyhow::bail!("interrupted while waiting for --start-at: nothing was sent"),
        },
    };
    let mut progress = Progress::new(args.quiet, plan.window, plan.requests);
    if !plan.warmup.is_zero() {
        warm_up(&plan, &probers, &shutdown, progress.as_mut(), start.map_or_else(Instant::now, |(t0, _)| t0)).await;
    }
    if let Some(p) = &mut progress {
        p.measuring();
    }
    let sinks = Sinks {
        hlog,
        progress,
        metrics: live.metrics,
        started: None,
        dropped: None,
        dropped_total: live.dropped,
        late_starts: live.late_starts,
    };
    let (t0, started_at) = match start {
        Some((t0, at)) => (t0 + plan.warmup, at + plan.warmup),
        None => (Instant::now(), SystemTime::now()),
    };
    let mut phase = run_phase(&plan, &probers, &shutdown, sinks, t0).await;
    if let Some(p) = &phase.sinks.progress {
        p.finish();
    }
    let hlog = phase.sinks.hlog.take().map_or(Ok(()), Hlog::finish);
    let notes = notes(args, &plan, &phase, started_at);
    let segmented = (plan.segment.count > 1).then_some(plan.segment);
    let run = RunFacts {
        target: target.display_url(),
        model: plan.model(),
        // This segment's share of the planned rate.
        target_rps: plan
            .schedule
            .as_ref()
            .map(|s| s.mean_rate(phase.planned.unwrap_or(phase.duration)) / plan.segment.count as f64),
        stages: args.stages.as_ref().map(|s| s.planned(plan.segment.count)),
        concurrency: plan.concurrency as u64,
        duration: phase.duration,
        segment: segmented,
        started_at,
        then: target.then_url().zip(target.then.as_ref()).map(|(url, t)| (url.to_string(), t.method.as_str().into())),
    };
    let shown = phase.recorder.into_shown(&run, &args.thresholds, notes);
    Ok(Finished { shown, hlog, interrupted: phase.interrupted })
}

/// The series `--metrics-listen` serves while the run goes on; none without it.
#[derive(Default)]
struct LiveSeries {
    metrics: Option<Metrics>,
    dropped: Option<prometheus_client::metrics::counter::Counter>,
    late_starts: Option<prometheus_client::metrics::counter::Counter>,
}

impl LiveSeries {
    fn register(name: &str, then: bool) -> anyhow::Result<(LiveSeries, Registry)> {
        let registry = Registry::new();
        let live = LiveSeries {
            metrics: Some(Metrics::register_with(&registry, name, then).context("registering metrics")?),
            dropped: Some(live::register_dropped(&registry, name).context("registering metrics")?),
            late_starts: Some(live::register_late_starts(&registry, name).context("registering metrics")?),
        };
        register_build_info(&registry).context("registering metrics")?;
        Ok((live, registry))
    }
}

/// The warmup: the plan's first rate for `--warmup`, measured by nothing.
async fn warm_up(
    plan: &Plan,
    probers: &[Arc<Prober>],
    shutdown: &CancellationToken,
    progress: Option<&mut Progress>,
    t0: Instant,
) {
    if let Some(p) = progress {
        p.warming_up(plan.warmup);
    }
    let warm = Plan {
        schedule: plan.schedule.as_ref().map(|s| Schedule::constant(s.warmup_rate())),
        window: Some(plan.warmup),
        requests: None,
        ..plan.clone()
    };
    run_phase(&warm, probers, shutdown, Sinks::default(), t0).await;
}

/// What the report says about how the run went beyond its numbers: the release grid,
/// an interruption, the segment, the common start.
fn notes(args: &LoadArgs, plan: &Plan, phase: &engine::PhaseResult, started_at: SystemTime) -> Vec<String> {
    let mut notes = Vec::new();
    let step = phase.grid;
    if !step.is_zero() {
        notes.push(format!(
            "above {} rps, requests are released in batches on a grid of {:.2} ms at most: up to that long after \
             their due time, counted in latency",
            pace::EXACT_UP_TO,
            step.as_secs_f64() * 1e3,
        ));
    }
    if phase.interrupted {
        notes.push(format!(
            "interrupted after {:.1} s; {} calls in flight were abandoned, not counted",
            phase.duration.as_secs_f64(),
            phase.abandoned
        ));
    }
    if plan.segment.count > 1 {
        let seg = plan.segment;
        notes.push(format!(
            "segment {seg} of the schedule (every request k with k mod {} = {}): merge the {} segments' reports with `nehr-probe report`{}",
            seg.count,
            seg.index,
            seg.count,
            if args.thresholds.is_empty() { "" } else { ", which judges the thresholds on all of them; they do not set this exit code" }
        ));
    }
    if args.start_at.is_some() {
        notes.push(format!("started at {}", crate::util::time::rfc3339(started_at)));
    }
    notes
}
