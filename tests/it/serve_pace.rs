//! `serve` probes every `--interval`: with `--interval 1s` and the default
//! `--probe-min-interval 1s` it used to probe about every 1.6 s, the gate handing the
//! loop its own last result whenever that login had started a little after the
//! previous tick. Measured end to end on `serve --mock`, from the exporter's own
//! `/metrics`, with margins a shared, loaded machine meets: a skipped probe costs a
//! whole interval, far more than they allow.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nehr_probe::serve::Exporter;

use crate::serve::{get, serve_args};

/// The logins made so far: the sum of `nehr_probe_requests_total` over its outcomes.
fn logins(metrics: &str) -> u64 {
    let series = metrics.lines().filter(|l| l.starts_with("nehr_probe_requests_total{"));
    series.filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum::<f64>() as u64
}

/// Starts `serve --mock ARGS` and returns how long it took from its first login to its
/// `1 + gaps`th, as seen by polling `/metrics`, with the start line of its log.
async fn pace(extra: &[&str], gaps: u64) -> (Duration, String) {
    let mut argv = vec!["--mock", "--listen", "127.0.0.1:0"];
    argv.extend_from_slice(extra);
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    let log: nehr_probe::serve::Log = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
    let exporter = Exporter::start(&serve_args(&argv), log).await.unwrap();
    let url = format!("http://{}/metrics", exporter.addr());
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let limit = Instant::now() + Duration::from_secs(30);
    let mut first = None;
    let took = loop {
        let (code, text) = get(&client, &url).await;
        assert_eq!(code, 200, "{text}");
        let now = Instant::now();
        let n = logins(&text);
        if n >= 1 && first.is_none() {
            first = Some(now);
        }
        if let Some(first) = first
            && n > gaps
        {
            break now - first;
        }
        assert!(now < limit, "{n} logins in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    exporter.stop().await;
    let start = lines.lock().unwrap().first().cloned().unwrap_or_default();
    (took, start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_equal_to_the_min_interval_is_kept() {
    let (took, start) = pace(&["--interval", "1s"], 6).await;
    let mean = took.as_secs_f64() / 6.0;
    assert!((0.9..1.25).contains(&mean), "one login every {mean:.3} s, not every 1 s");
    assert!(start.contains("probing default every 1s; at most one login per 1s per target"), "{start}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_below_the_min_interval_probes_every_min_interval_and_says_so() {
    let (took, start) = pace(&["--interval", "200ms", "--probe-min-interval", "700ms"], 4).await;
    let mean = took.as_secs_f64() / 4.0;
    assert!((0.63..0.9).contains(&mean), "one login every {mean:.3} s, not every 700 ms");
    assert!(
        start.contains("probing default every 700ms (--interval 200ms is shorter than --probe-min-interval 700ms)"),
        "{start}"
    );
}
