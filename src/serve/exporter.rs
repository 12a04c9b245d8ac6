//! The running exporter: one probe loop per target, the state the HTTP handlers share
//! ([`App`]), and each target's recent history for the landing page. A target's
//! metrics are fed only through [`Watched::record`], so the loop and the page agree.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::routing::get;
use prometheus::Registry;
use tokio_util::sync::CancellationToken;

use super::config::resolve_targets;
use super::{Log, ServeArgs, ServeError, http, page};
use crate::call::{Observation, Outcome, Prober};
use crate::metrics::{Metrics, register_build_info};
use crate::mock::MockServer;

/// What one probe of a target showed, kept for the landing page.
#[derive(Debug, Clone)]
pub struct Seen {
    pub outcome: Outcome,
    pub reason: String,
    pub at: SystemTime,
    pub latency: Duration,
}

#[derive(Debug, Default)]
pub struct History {
    pub last: Option<Seen>,
    pub last_failure: Option<Seen>,
    pub probes: u64,
    /// When the target's certificate expires (Unix seconds), from the last https answer.
    pub cert_not_after: Option<i64>,
}

/// One target being watched.
pub struct Watched {
    pub name: String,
    pub url: String,
    pub prober: Prober,
    pub timeout: Duration,
    pub metrics: Metrics,
    /// Call numbers, shared by the loop and `/probe` (they pick the account).
    pub seq: AtomicU64,
    pub history: Mutex<History>,
}

impl Watched {
    /// Feeds one scheduled probe to the metrics and the history; returns the log line
    /// when the outcome differs from the last one.
    pub fn record(&self, obs: &Observation) -> Option<String> {
        self.metrics.observe(obs);
        let seen = Seen { outcome: obs.outcome, reason: obs.reason(), at: SystemTime::now(), latency: obs.latency() };
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        h.probes += 1;
        h.cert_not_after = obs.cert_not_after.or(h.cert_not_after);
        let line = match &h.last {
            Some(prev) if prev.outcome == seen.outcome => None,
            Some(prev) => Some(format!("target {}: {} -> {}: {}", self.name, prev.outcome, seen.outcome, seen.reason)),
            None => Some(format!("target {}: {}: {}", self.name, seen.outcome, seen.reason)),
        };
        if seen.outcome != Outcome::Ok {
            h.last_failure = Some(seen.clone());
        }
        h.last = Some(seen);
        line
    }
}

/// What the HTTP handlers share.
pub struct App {
    pub targets: Vec<Arc<Watched>>,
    pub registry: Registry,
    pub interval: Duration,
    pub started: SystemTime,
    pub stop: CancellationToken,
}

/// A running exporter: probe loops plus the HTTP server. Dropping it stops it.
pub struct Exporter {
    addr: SocketAddr,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _mock: Option<MockServer>,
}

impl Exporter {
    /// Checks the arguments, binds `--listen`, and starts probing and serving in the
    /// background of the current runtime. The first probe of each target starts now.
    pub async fn start(args: &ServeArgs, log: Log) -> anyhow::Result<Exporter> {
        let mut targets = resolve_targets(args)?;
        let mut mock = None;
        if let [(_, target)] = targets.as_mut_slice() {
            mock = crate::start_embedded_mock(target, &args.target).await?;
        }
        let registry = Registry::new();
        register_build_info(&registry)?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        let mut watched = Vec::with_capacity(targets.len());
        for (name, target) in &targets {
            watched.push(Arc::new(Watched {
                name: name.clone(),
                url: target.display_url(),
                prober: Prober::new(target)?,
                timeout: target.timeout,
                metrics: Metrics::register(&registry, name)?,
                seq: AtomicU64::new(0),
                history: Mutex::new(History::default()),
            }));
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|cause| ServeError::Bind { addr: args.listen, cause })?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let app = Arc::new(App {
            targets: watched.clone(),
            registry,
            interval: args.interval,
            started: SystemTime::now(),
            stop: stop.clone(),
        });
        let names: Vec<&str> = watched.iter().map(|w| w.name.as_str()).collect();
        log(&format!(
            "serving http://{addr}/ (/metrics, /probe, /healthz); probing {} every {}",
            names.join(", "),
            humantime::format_duration(args.interval)
        ));
        let mut tasks = Vec::with_capacity(watched.len() + 1);
        for w in watched {
            tasks.push(tokio::spawn(probe_loop(w, args.interval, stop.clone(), log.clone())));
        }
        let router = Router::new()
            .route("/", get(page::landing))
            .route("/metrics", get(http::metrics))
            .route("/probe", get(http::probe))
            .route("/healthz", get(http::healthz))
            .fallback(http::not_found)
            .with_state(app);
        let shutdown = stop.clone();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        }));
        Ok(Exporter { addr, stop, tasks, _mock: mock })
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops probing and serving; answers in flight get a few seconds to finish.
    pub async fn stop(mut self) {
        self.stop.cancel();
        let tasks = std::mem::take(&mut self.tasks);
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), all).await;
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.cancel();
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Probes one target every `interval` until stopped; never two probes of it at once.
async fn probe_loop(w: Arc<Watched>, interval: Duration, stop: CancellationToken, log: Log) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let seq = w.seq.fetch_add(1, Ordering::Relaxed);
        let obs = tokio::select! {
            _ = stop.cancelled() => return,
            obs = w.prober.call(seq, Instant::now()) => obs,
        };
        if let Some(line) = w.record(&obs) {
            log(&line);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::call::target::TargetArgs;
    use crate::testing::args;

    /// A watched target aimed at a port nothing listens on.
    pub(crate) fn watched(name: &str) -> Arc<Watched> {
        let mut target = args::<TargetArgs>(&["--mock"]).unwrap().resolve().unwrap();
        target.aim_at("127.0.0.1:9".parse().unwrap());
        Arc::new(Watched {
            name: name.into(),
            url: target.display_url(),
            prober: Prober::new(&target).unwrap(),
            timeout: target.timeout,
            metrics: Metrics::register(&Registry::new(), name).unwrap(),
            seq: AtomicU64::new(0),
            history: Mutex::new(History::default()),
        })
    }

    #[test]
    fn logs_once_per_change_of_outcome() {
        let w = watched("production");
        let ok = Observation::test(Outcome::Ok, Some(200), 0, 3);
        let down = Observation::test(Outcome::ServerError, Some(500), 0, 3);
        let lines: Vec<Option<String>> = [&ok, &ok, &down, &down, &down, &ok].iter().map(|o| w.record(o)).collect();
        assert_eq!(lines[0].as_deref(), Some("target production: ok: valid token answer"));
        assert_eq!(lines[1], None);
        assert_eq!(lines[2].as_deref(), Some("target production: ok -> server_error: server error (HTTP 500)"));
        assert_eq!(lines[3..5], [None, None]);
        assert_eq!(lines[5].as_deref(), Some("target production: server_error -> ok: valid token answer"));
        let h = w.history.lock().unwrap();
        assert_eq!(h.probes, 6);
        assert_eq!(h.last.as_ref().unwrap().outcome, Outcome::Ok);
        assert_eq!(h.last_failure.as_ref().unwrap().outcome, Outcome::ServerError);
    }
}
