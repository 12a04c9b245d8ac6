//! The running exporter's lifecycle: checks the flags, binds, starts one probe loop per
//! target and the HTTP server, and stops them all.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::routing::get;
use prometheus::Registry;
use tokio_util::sync::CancellationToken;

use super::args::{Log, ServeArgs, ServeError};
use super::config::resolve_targets;
use super::state::{App, History, Watched};
use super::{http, page};
use crate::call::Prober;
use crate::metrics::{Metrics, register_build_info};
use crate::mock::MockServer;

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
            mock = crate::start_embedded_mock(target, &args.target, None).await?;
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
                // A fresh connection for every probe, as blackbox_exporter makes: each
                // probe measures what a new user meets (name lookup, TCP, TLS), its
                // phases are complete and comparable from one probe to the next, and no
                // stale pooled connection turns a server's idle close into a failure.
                prober: Prober::with_keepalive(target, false)?,
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
