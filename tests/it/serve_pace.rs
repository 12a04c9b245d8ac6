//! `serve` probes every `--interval`: with `--interval 1s` and the default
//! `--probe-min-interval 1s` it used to probe about every 1.6 s, the gate handing the
//! loop its own last result whenever that login had started a little after the
//! previous tick. Measured on the requests a local server receives (loose margins: the
//! machine is shared).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nehr_probe::serve::Exporter;

use crate::serve::serve_args;
use crate::support::{HostileServer, PASSWORD, USERNAME, edited_answer};

/// The gaps between the logins `serve ARGS` makes in `run`, in seconds, and its log.
async fn gaps(extra: &[&str], run: Duration) -> (Vec<f64>, Vec<String>) {
    let server = HostileServer::start(edited_answer(|_| {}));
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, PASSWORD).unwrap();
    let url = server.url();
    let mut argv = vec!["--url", &url, "--username", USERNAME, "--password-file", password.to_str().unwrap()];
    argv.extend_from_slice(&["--listen", "127.0.0.1:0"]);
    argv.extend_from_slice(extra);
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    let log: nehr_probe::serve::Log = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
    let exporter = Exporter::start(&serve_args(&argv), log).await.unwrap();
    tokio::time::sleep(run).await;
    exporter.stop().await;
    let at: Vec<_> = server.requests().iter().map(|r| r.at).collect();
    let gaps = at.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    let log = lines.lock().unwrap().clone();
    (gaps, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_equal_to_the_min_interval_is_kept() {
    let (gaps, _) = gaps(&["--interval", "1s"], Duration::from_millis(6500)).await;
    assert!(gaps.len() >= 5, "{} logins in 6.5 s: {gaps:?}", gaps.len() + 1);
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    assert!((0.95..1.2).contains(&mean), "mean gap {mean:.3} s: {gaps:?}");
    assert!(gaps.iter().all(|g| (0.95..1.5).contains(g)), "{gaps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_below_the_min_interval_probes_every_min_interval_and_says_so() {
    let (gaps, log) =
        gaps(&["--interval", "200ms", "--probe-min-interval", "700ms"], Duration::from_millis(3000)).await;
    assert!(gaps.len() >= 3, "{gaps:?}");
    assert!(gaps.iter().all(|g| (0.69..1.1).contains(g)), "never below the min interval: {gaps:?}");
    let start = &log[0];
    assert!(
        start.contains("probing default every 700ms (--interval 200ms is shorter than --probe-min-interval 700ms)"),
        "{start}"
    );
}
