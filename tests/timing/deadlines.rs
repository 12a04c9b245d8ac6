//! Deadlines kept closely: a call ends at its `--timeout` whatever the server does, and
//! `/probe` answers before Prometheus gives up on the scrape. They time the end to a few
//! hundred milliseconds, so they take their turn with the other timing tests; the `it`
//! binary checks the same outcomes beside everything else, with margins a crowded
//! machine meets.

use std::time::{Duration, Instant};

use nehr_probe::call::target::{EXAMPLE_PASSWORD, EXAMPLE_USERNAME};
use nehr_probe::call::{Outcome, Prober};
use nehr_probe::mock::{Latency, MockArgs, MockServer};

use crate::answers::{self, SHORT_TIMEOUT};
use crate::support::{HostileServer, target};

/// How late a deadline may end here: scheduling, and the answer's own work after it.
const LATE: Duration = Duration::from_millis(500);

/// Silent, the head trickled, the body trickled: each call ends at its 1 s timeout, not
/// before it and not [`LATE`] after it. Timed from the call, the prober made before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_ends_at_its_timeout_whatever_the_server_does() {
    let _alone = crate::ALONE.lock().await;
    let scripts = [
        ("silent", answers::silent()),
        ("head trickled", answers::trickle_head()),
        ("body trickled", answers::trickle_body()),
    ];
    for (what, script) in scripts {
        let server = HostileServer::start(script);
        let prober = Prober::new(&target(&server.url(), SHORT_TIMEOUT)).unwrap();
        let started = Instant::now();
        let obs = prober.call(0, started).await;
        let took = started.elapsed();
        assert_eq!(obs.outcome, Outcome::Timeout, "{what}: {obs:?}");
        assert!(took >= SHORT_TIMEOUT, "{what}: ended early, after {took:?}");
        assert!(took < SHORT_TIMEOUT + LATE, "{what}: ended late, after {took:?}");
    }
}

/// A scrape that Prometheus gives up on after 1 s gets its `/probe` answer (a timeout)
/// before that, though the target takes 3 s to answer and has 5 s to do it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_answers_within_the_scrape_timeout() {
    let _alone = crate::ALONE.lock().await;
    let latency = Some(Latency::Fixed(Duration::from_secs(3)));
    let slow = MockServer::start(&MockArgs { latency, ..MockArgs::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, EXAMPLE_PASSWORD).unwrap();
    let url = slow.url();
    #[rustfmt::skip]
    let argv = [
        "nehr-probe", "serve", "--url", &url, "--username", EXAMPLE_USERNAME,
        "--password-file", password.to_str().unwrap(), "--timeout", "5s",
        "--listen", "127.0.0.1:0", "--interval", "1h", "--probe-min-interval", "0",
    ];
    let nehr_probe::cli::Command::Serve(args) = <nehr_probe::cli::Cli as clap::Parser>::parse_from(argv).command else {
        unreachable!()
    };
    let exporter = nehr_probe::serve::Exporter::start(&args, std::sync::Arc::new(|_: &str| {})).await.unwrap();
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();

    let started = Instant::now();
    let answer = client
        .get(format!("http://{}/probe", exporter.addr()))
        .header("X-Prometheus-Scrape-Timeout-Seconds", "1")
        .send()
        .await
        .unwrap();
    let body = answer.text().await.unwrap();
    let took = started.elapsed();
    assert!(
        body.contains("probe_success 0\n") && body.contains("nehr_probe_outcome{outcome=\"timeout\"} 1\n"),
        "{body}"
    );
    // Its budget is half of a scrape timeout of a second or less (docs/commands.md).
    assert!(took >= Duration::from_millis(500), "gave up early, after {took:?}");
    assert!(took < Duration::from_millis(950), "answered after {took:?}: Prometheus gave up at 1 s");
    exporter.stop().await;
}
