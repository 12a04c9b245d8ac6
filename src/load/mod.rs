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

use std::sync::Arc;

use anyhow::Context;
use prometheus::Registry;
use tokio_util::sync::CancellationToken;

use crate::call::Prober;
use crate::metrics::{Metrics, register_build_info};
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
    let finished = execute(args, signals.token()).await?;
    crate::report::emit(&finished.shown, args.format, args.out.as_deref())?;
    finished.hlog?;
    Ok(match signals.signal() {
        Some(signal) if finished.interrupted => signal.exit_code(),
        _ => finished.shown.report.exit_code(),
    })
}

/// Runs the load test and returns what it measured, without printing it.
pub async fn execute(args: &LoadArgs, shutdown: CancellationToken) -> anyhow::Result<Finished> {
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
    let (metrics, dropped_total) = match args.metrics_listen {
        None => (None, None),
        Some(addr) => {
            let registry = Registry::new();
            let metrics = Metrics::register(&registry, &args.name).context("registering metrics")?;
            let dropped = live::register_dropped(&registry, &args.name).context("registering metrics")?;
            register_build_info(&registry).context("registering metrics")?;
            live::serve_metrics(addr, registry, stop_servers.clone()).await?;
            (Some(metrics), Some(dropped))
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
    let sinks = Sinks { hlog: hlog.take(), progress, metrics, started: None, dropped: None, dropped_total };
    let phase = run_phase(&plan, &probers, &shutdown, sinks).await;
    if let Some(p) = &phase.sinks.progress {
        p.finish();
    }
    let hlog = match phase.sinks.hlog {
        Some(h) => h.finish(),
        None => Ok(()),
    };

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
    let report = phase.recorder.report(&run, &args.thresholds);
    let recorder = phase.recorder;
    let shown = Shown { report, latency: recorder.latency, service: Some(recorder.service), notes };
    Ok(Finished { shown, hlog, interrupted: phase.interrupted })
}
