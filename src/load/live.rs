//! What a run shows while it goes on: the progress display on stderr (a terminal only,
//! never with `--quiet`), the `--hlog` interval log written second by second, and the
//! `--metrics-listen` endpoint. None of these may slow the workers: they are fed by the
//! one owner of the recorder, once per observation or once per second.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum::Router;
use axum::http::header;
use axum::routing::get;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prometheus_client::metrics::counter::Counter;

use crate::metrics::Registry;
use crate::util::exposition::Format;
use tokio_util::sync::CancellationToken;

use crate::report::histogram::{histogram, percentile};
use crate::util::fmt::human_secs;

/// An HdrHistogram interval log (format 1.3, V2 compressed histograms, µs), written one
/// interval at a time. A write error stops the log and is reported once at the end; it
/// never stops the run.
pub struct Hlog {
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
    path: PathBuf,
    error: Option<String>,
}

impl Hlog {
    /// Creates the file, so a bad path fails before the run; the header follows at
    /// [`Hlog::begin`], when the measured run starts.
    pub fn create(path: &Path) -> anyhow::Result<Hlog> {
        let file = File::create(path).with_context(|| format!("cannot create --hlog {}", path.display()))?;
        Ok(Hlog { out: BufWriter::new(file), serializer: V2DeflateSerializer::new(), path: path.into(), error: None })
    }

    /// Writes the header; `start` is the wall-clock time of t0, which interval
    /// timestamps count from (the log's StartTime and BaseTime).
    pub fn begin(&mut self, start: SystemTime) {
        let header = (|| -> std::io::Result<()> {
            IntervalLogWriterBuilder::new()
                .add_comment(concat!("[Logged with nehr-probe ", env!("CARGO_PKG_VERSION"), "]"))
                .add_comment("[Histogram log format version 1.3]")
                .add_comment("[Latency from the due time, in microseconds]")
                .with_start_time(start)
                .with_base_time(start)
                .begin_log_with(&mut self.out, &mut self.serializer)?;
            writeln!(
                self.out,
                "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
            )?;
            self.out.flush()
        })();
        if let Err(e) = header {
            self.error = Some(e.to_string());
        }
    }

    /// Appends one interval: `start` from t0, `len` long.
    pub fn write(&mut self, h: &Histogram<u64>, start: Duration, len: Duration) {
        if self.error.is_some() {
            return;
        }
        // A builder without headers writes nothing itself: it only lends the writer.
        let result = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut self.out, &mut self.serializer)
            .map_err(|e| e.to_string())
            .and_then(|mut log| log.write_histogram(h, start, len, None).map_err(|e| e.to_string()))
            .and_then(|()| self.out.flush().map_err(|e| e.to_string()));
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    /// Flushes; the first write error, if there was one.
    pub fn finish(mut self) -> anyhow::Result<()> {
        if self.error.is_none() {
            self.error = self.out.flush().err().map(|e| e.to_string());
        }
        match self.error {
            Some(e) => anyhow::bail!("cannot write --hlog {}: {e}", self.path.display()),
            None => Ok(()),
        }
    }
}

/// How many one-second intervals the progress display's p99 looks back over.
const RECENT: usize = 5;

/// The live view: elapsed and remaining, requests, current rate, share ok, p99 of the
/// last seconds, in flight, and requests dropped once there are any.
pub struct Progress {
    bar: ProgressBar,
    recent: VecDeque<Histogram<u64>>,
    window: Option<Duration>,
    requests: Option<u64>,
    warmup: bool,
}

impl Progress {
    /// `None` unless stderr is a terminal and the user did not ask for quiet.
    pub fn new(quiet: bool, window: Option<Duration>, requests: Option<u64>) -> Option<Progress> {
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:24}] {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Some(Progress { bar, recent: VecDeque::with_capacity(RECENT + 1), window, requests, warmup: false })
    }

    /// Shows the warmup instead of numbers until [`Progress::measuring`].
    pub fn warming_up(&mut self, warmup: Duration) {
        self.warmup = true;
        self.bar.set_message(format!("warming up for {} (not recorded)", humantime::format_duration(warmup)));
    }

    pub fn measuring(&mut self) {
        self.warmup = false;
        self.bar.reset_elapsed();
        self.bar.set_position(0);
        self.recent.clear();
        self.bar.set_message("starting");
    }

    /// One second more: `done` calls recorded so far, `ok` of them ok, `interval` the
    /// latencies of the second just closed.
    pub fn update(&mut self, done: u64, ok: u64, interval: &Histogram<u64>, in_flight: u64, dropped: u64) {
        if self.warmup {
            return;
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(interval.clone());
        let mut last = histogram();
        for h in &self.recent {
            let _ = last.add(h);
        }
        let elapsed = self.bar.elapsed();
        let fraction = match (self.window, self.requests) {
            (Some(w), _) if !w.is_zero() => elapsed.as_secs_f64() / w.as_secs_f64(),
            (_, Some(n)) if n > 0 => done as f64 / n as f64,
            _ => 0.0,
        };
        self.bar.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
        let remaining = match self.window {
            Some(w) => format!(
                "{} left, ",
                humantime::format_duration(Duration::from_secs(w.saturating_sub(elapsed).as_secs()))
            ),
            None => String::new(),
        };
        let ok = if done == 0 { 0.0 } else { ok as f64 * 100.0 / done as f64 };
        let p99 = if last.is_empty() { "–".into() } else { human_secs(percentile(&last, 99.0) as f64 / 1e6) };
        // Requests given up so far show as soon as there is one: the cap is too small.
        let dropped = if dropped > 0 { format!(", {dropped} dropped") } else { String::new() };
        self.bar.set_message(format!(
            "{remaining}{done} requests, {} /s, {ok:.1} % ok, p99 {p99} (last {} s), {in_flight} in flight{dropped}",
            interval.len(),
            self.recent.len(),
        ));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `nehr_probe_dropped_requests_total`: `load`'s own series beside the target series
/// (docs/metrics.md), registered in the `--metrics-listen` registry.
pub fn register_dropped(registry: &Registry, target: &str) -> anyhow::Result<Counter> {
    crate::metrics::register_counter(
        registry,
        target,
        "nehr_probe_dropped_requests_total",
        "Requests that fell due but were never sent: no --concurrency slot came free in time",
    )
}

/// `nehr_probe_late_starts_total`, `load`'s other own series (docs/metrics.md): calls
/// started more than [`super::recorder::LATE`] after their release (a soak watches
/// it stay flat). The owner of the recorder keeps it in step.
pub fn register_late_starts(registry: &Registry, target: &str) -> anyhow::Result<Counter> {
    crate::metrics::register_counter(
        registry,
        target,
        "nehr_probe_late_starts_total",
        "Calls started more than 1 ms after their release (due time, or the release grid's next point)",
    )
}

/// Serves `GET /metrics` from `registry` on `addr` until `stop`. Binds before it
/// returns, so a bad address is a start-up error; returns the bound address.
pub async fn serve_metrics(
    addr: SocketAddr,
    registry: Registry,
    stop: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for --metrics-listen"))?;
    let bound = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move |headers: axum::http::HeaderMap| {
            let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
            let body = crate::metrics::encode_as(&registry, format);
            async move { ([(header::CONTENT_TYPE, format.content_type())], body) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_names_dropped_requests_once_there_are_any() {
        let bar = ProgressBar::hidden();
        let mut p = Progress {
            bar,
            recent: VecDeque::new(),
            window: Some(Duration::from_secs(8)),
            requests: None,
            warmup: false,
        };
        let mut second = histogram();
        second.record(20_000).unwrap();
        p.update(1, 1, &second, 0, 0);
        assert!(!p.bar.message().contains("dropped"), "{}", p.bar.message());
        p.update(60, 0, &second, 100, 39_500);
        assert!(p.bar.message().ends_with("100 in flight, 39500 dropped"), "{}", p.bar.message());
    }
}
