//! The running exporter's lifecycle: checks the flags and the web config, binds, starts
//! one probe loop per target and the HTTP(S) server, reads `--config` again on demand
//! (SIGHUP) keeping the counters of the targets that stay, and stops them all.
//!
//! A reload must never leave the exporter without targets: a bad new file keeps the
//! targets in force and logs why.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use prometheus::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::access::{self, Access};
use super::args::{Log, ServeArgs, ServeError};
use super::config::resolve_targets;
use super::door::{self, DoorWatch};
use super::gate::Gate;
use super::listener::{self, Limits};
use super::state::{App, Live, Watched};
use super::{http, page};
use crate::call::Prober;
use crate::call::target::Target;
use crate::metrics::{Metrics, register_build_info};
use crate::mock::MockServer;

/// A running exporter: probe loops plus the HTTP server. Dropping it stops it.
pub struct Exporter {
    addr: SocketAddr,
    stop: CancellationToken,
    server: Option<JoinHandle<()>>,
    args: ServeArgs,
    log: Log,
    live: Live,
    /// Each target's probe loop, by name, with the token that stops it alone.
    loops: Mutex<BTreeMap<String, (CancellationToken, JoinHandle<()>)>>,
    _mock: Option<MockServer>,
}

impl Exporter {
    /// Checks the arguments and the web config, binds `--listen`, and starts probing
    /// and serving in the background of the current runtime. The first probe of each
    /// target starts now.
    pub async fn start(args: &ServeArgs, log: Log) -> anyhow::Result<Exporter> {
        let mut targets = resolve_targets(args)?;
        let access = Access::load(args.web_config.as_deref(), log.clone()).map_err(ServeError::from)?;
        let mut mock = None;
        if let [(_, target)] = targets.as_mut_slice() {
            mock = crate::mock::start_embedded(target, &args.target, None).await?;
        }
        let registry = Registry::new();
        register_build_info(&registry)?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        let stop = CancellationToken::new();
        let mut watched = Vec::with_capacity(targets.len());
        for (name, target) in &targets {
            let metrics = Metrics::register_with(&registry, name, target.then.is_some())?;
            let door = door::series(name, target, None, &registry)?;
            watched.push(watch(name, target, args, &log, &stop, Carried { door, ..Carried::fresh(metrics) })?);
        }
        let tcp = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|cause| ServeError::Bind { addr: args.listen, cause })?;
        let addr = tcp.local_addr()?;
        let app = App {
            targets: watched.clone(),
            registry,
            interval: args.interval,
            started: SystemTime::now(),
            stop: stop.clone(),
        };
        let live = Live { app: Arc::new(RwLock::new(Arc::new(app))), access: Arc::clone(&access) };
        let names: Vec<&str> = watched.iter().map(|w| w.name.as_str()).collect();
        let (every, min) =
            (humantime::format_duration(args.interval), humantime::format_duration(args.probe_min_interval));
        // The loop waits for the gate: a shorter --interval probes every min interval.
        let every = if args.interval < args.probe_min_interval {
            format!("{min} (--interval {every} is shorter than --probe-min-interval {min})")
        } else {
            every.to_string()
        };
        log(&format!(
            "serving {}://{addr}/ (/metrics, /probe, /healthz); probing {} every {every}; at most one login per {min} per target",
            if access.tls_on() { "https" } else { "http" },
            names.join(", "),
        ));
        let router = Router::new()
            .route("/", get(page::landing))
            .route("/metrics", get(http::metrics))
            .route("/probe", get(http::probe))
            .route("/healthz", get(http::healthz))
            .fallback(http::not_found)
            .layer(from_fn_with_state(Arc::clone(&access), access::guard))
            .with_state(live.clone());
        let limits = Limits { max_connections: args.max_connections as usize, header_timeout: args.header_timeout };
        let server = tokio::spawn(listener::serve(tcp, router, access, limits, stop.clone()));
        let exporter = Exporter {
            addr,
            stop,
            server: Some(server),
            args: args.clone(),
            log,
            live,
            loops: Mutex::new(BTreeMap::new()),
            _mock: mock,
        };
        for w in watched {
            exporter.start_loop(w);
        }
        Ok(exporter)
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn start_loop(&self, w: Arc<Watched>) {
        let own = self.stop.child_token();
        let name = w.name.clone();
        let door = w.door.clone().map(|d| door::door_loop(name.clone(), d, self.log.clone(), own.clone()));
        let probes = probe_loop(w, self.args.interval, own.clone());
        let task = tokio::spawn(async move {
            match door {
                Some(door) => drop(tokio::join!(probes, door)),
                None => probes.await,
            }
        });
        let mut loops = self.loops.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((old, _)) = loops.insert(name, (own, task)) {
            old.cancel();
        }
    }

    /// Reads the web config and `--config` again (SIGHUP). Targets that stay keep their
    /// counters, history and gate; new ones start; gone ones stop and their series
    /// leave `/metrics`. A bad file changes nothing and the log says why.
    pub fn reload(&self) {
        self.live.access.reload_now();
        let Some(path) = &self.args.config else {
            (self.log)("SIGHUP: no --config to read again");
            return;
        };
        match self.swap_targets() {
            Ok(line) => (self.log)(&format!("SIGHUP: read --config {} again: {line}", path.display())),
            Err(e) => {
                let names: Vec<String> = self.live.app().targets.iter().map(|w| w.name.clone()).collect();
                (self.log)(&format!("SIGHUP: {e:#}; still probing {}", names.join(", ")));
            }
        }
    }

    fn swap_targets(&self) -> anyhow::Result<String> {
        let targets = resolve_targets(&self.args)?;
        let old = self.live.app();
        let before: BTreeMap<&str, &Arc<Watched>> = old.targets.iter().map(|w| (w.name.as_str(), w)).collect();
        let mut registered = Vec::new();
        let mut next = Vec::with_capacity(targets.len());
        let mut built = || -> anyhow::Result<()> {
            for (name, target) in &targets {
                // A target whose `then` came or went starts its series afresh.
                let kept = before.get(name.as_str()).filter(|w| w.metrics.has_then() == target.then.is_some());
                if let Some(w) = before.get(name.as_str()).filter(|_| kept.is_none()) {
                    w.metrics.unregister(&old.registry);
                }
                let mut carried = match kept {
                    Some(w) => Carried::from(w),
                    None => {
                        let metrics = Metrics::register_with(&old.registry, name, target.then.is_some())?;
                        registered.push(metrics.clone());
                        Carried::fresh(metrics)
                    }
                };
                let had = before.get(name.as_str()).and_then(|w| w.door.as_deref());
                carried.door = door::series(name, target, had, &old.registry)?;
                carried.door_last = had.and_then(DoorWatch::last);
                next.push(watch(name, target, &self.args, &self.log, &self.stop, carried)?);
            }
            Ok(())
        };
        if let Err(e) = built() {
            for m in registered {
                m.unregister(&old.registry);
            }
            return Err(e);
        }
        let kept: Vec<&str> = next.iter().map(|w| w.name.as_str()).filter(|n| before.contains_key(n)).collect();
        let added: Vec<&str> = next.iter().map(|w| w.name.as_str()).filter(|n| !before.contains_key(n)).collect();
        let removed: Vec<&Arc<Watched>> =
            old.targets.iter().filter(|w| !next.iter().any(|n| n.name == w.name)).collect();
        for w in &removed {
            w.metrics.unregister(&old.registry);
            if let Some(d) = &w.door {
                d.metrics.unregister(&old.registry);
            }
            if let Some((own, _)) = self.loops.lock().unwrap_or_else(|p| p.into_inner()).remove(&w.name) {
                own.cancel();
            }
        }
        let list = |names: &[&str]| if names.is_empty() { "none".to_string() } else { names.join(", ") };
        let line = format!(
            "added {}; removed {}; kept {}",
            list(&added),
            list(&removed.iter().map(|w| w.name.as_str()).collect::<Vec<_>>()),
            list(&kept),
        );
        let app = App {
            targets: next.clone(),
            registry: old.registry.clone(),
            interval: old.interval,
            started: old.started,
            stop: old.stop.clone(),
        };
        *self.live.app.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(app);
        for w in next {
            self.start_loop(w);
        }
        Ok(line)
    }

    /// Stops probing and serving; answers in flight get a few seconds to finish.
    pub async fn stop(mut self) {
        self.stop.cancel();
        let mut tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.loops.lock().unwrap_or_else(|p| p.into_inner()))
            .into_values()
            .map(|(_, t)| t)
            .collect();
        tasks.extend(self.server.take());
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(6), all).await;
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.cancel();
        for (_, (_, t)) in self.loops.get_mut().unwrap_or_else(|p| p.into_inner()).iter() {
            t.abort();
        }
        if let Some(t) = &self.server {
            t.abort();
        }
    }
}

/// What a target keeps across a reload: its series, history, gate and call numbers.
struct Carried {
    metrics: Metrics,
    history: Arc<Mutex<super::state::History>>,
    gate: Option<Arc<Gate<crate::call::Observation>>>,
    seq: u64,
    /// The wrong-password series, when the target has that probe.
    door: Option<crate::metrics::DoorMetrics>,
    /// When the target's wrong-password probe last tried, before the reload.
    door_last: Option<Instant>,
}

impl Carried {
    fn fresh(metrics: Metrics) -> Carried {
        Carried { metrics, history: Arc::default(), gate: None, seq: 0, door: None, door_last: None }
    }

    fn from(w: &Watched) -> Carried {
        Carried {
            metrics: w.metrics.clone(),
            history: Arc::clone(&w.history),
            gate: Some(Arc::clone(&w.gate)),
            seq: w.seq.load(Ordering::Relaxed),
            door: None,
            door_last: None,
        }
    }
}

fn watch(
    name: &str,
    target: &Target,
    args: &ServeArgs,
    log: &Log,
    stop: &CancellationToken,
    carried: Carried,
) -> anyhow::Result<Arc<Watched>> {
    Ok(Arc::new(Watched {
        name: name.to_string(),
        url: target.display_url(),
        // A fresh connection for every login, as blackbox_exporter makes: each probe
        // measures what a new user meets (name lookup, TCP, TLS), its phases are
        // complete and comparable from one probe to the next, and no stale pooled
        // connection turns a server's idle close into a failure.
        prober: Prober::with_keepalive(target, false)?,
        timeout: target.timeout,
        metrics: carried.metrics,
        seq: AtomicU64::new(carried.seq),
        history: carried.history,
        gate: carried.gate.unwrap_or_else(|| Gate::new(args.probe_min_interval, stop.clone())),
        log: log.clone(),
        door: DoorWatch::new(target, carried.door, args.interval, carried.door_last),
    }))
}

/// Probes one target every `interval` until stopped, through its gate: never two
/// logins of it at once, and never more than the `/probe` policy allows.
async fn probe_loop(w: Arc<Watched>, interval: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = async { w.gate.turn().await; w.probe().await } => {}
        }
    }
}
