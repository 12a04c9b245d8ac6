//! `load` keeps its word under overload: the sending window closes on time whatever the
//! server does, requests that fell due but were never sent are counted as dropped and
//! judged, and a rate the cap can hold drops nothing. They time the run's end and count
//! drops at the window's close closely, so they take their turn with the other timing
//! tests.

use std::time::{Duration, Instant};

use nehr_probe::call::Outcome;
use nehr_probe::mock::{MockArgs, MockServer};
use tokio_util::sync::CancellationToken;

use crate::support::{load_against, silent_server_live_load};

/// A server that never answers, at a rate far above what `-c` calls held for the whole
/// `--timeout` can carry: the run still ends one timeout after its window, and every
/// request it could not send is counted, as an error, and fails a threshold on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_cannot_stretch_the_run() {
    let _alone = crate::ALONE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    #[rustfmt::skip]
    let (_server, load) = silent_server_live_load(dir.path(), &[
        "--rps", "2000", "-c", "10", "-d", "1500ms", "--timeout", "500ms",
        "--threshold", "dropped<1%", "--threshold", "error_rate<100%",
    ], CancellationToken::new()).await;
    // The live counter grows while the run goes on.
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(1)).build().unwrap();
    let mut live = 0.0f64;
    let series = format!("nehr_probe_dropped_requests_total{{target=\"{}\"}}", load.name);
    while !load.run.is_finished() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(answer) = client.get(format!("http://{}/metrics", load.listen)).send().await else { continue };
        let text = answer.text().await.unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.starts_with(&series)) {
            live = live.max(line.rsplit(' ').next().unwrap().parse().unwrap());
        }
    }
    let shown = load.run.await.unwrap().unwrap().shown;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500 + 500 + 1000), "the run took {took:?}");

    let r = &shown.report;
    // 2000 rps for 1.5 s: 3000 due. Each slot sends about once per timeout (a request
    // waiting longer than the timeout is given up), so a few dozen are sent at most.
    assert_eq!(r.requests + r.dropped, 3000, "every due request is sent or dropped: {r:?}");
    assert!(r.requests >= 10 && r.requests <= 60, "{} sent", r.requests);
    assert_eq!(r.outcomes[Outcome::Timeout], r.requests);
    // Dropped requests have no latency: the histogram holds the sent calls only.
    assert_eq!(shown.latency.len(), r.requests);
    assert!(live > 0.0 && live <= r.dropped as f64, "live metrics counted {live} of {} dropped", r.dropped);
    // The timeline says when they were given up, every one of them.
    assert_eq!(r.timeline.iter().map(|e| e.dropped).sum::<u64>(), r.dropped, "{:?}", r.timeline);
    let [dropped, errors] = [&r.thresholds[0], &r.thresholds[1]];
    assert!(!dropped.passed, "{dropped:?}");
    assert!(dropped.actual.unwrap() > 0.95, "{dropped:?}");
    assert_eq!(errors.actual, Some(1.0), "dropped requests are errors: {errors:?}");
    assert_eq!(r.exit_code(), 1);
    let text = nehr_probe::report::text::render(&shown);
    let line = text.lines().find(|l| l.contains("dropped")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&format!("dropped {} of 3000 due", r.dropped)), "{line}");
    assert!(line.contains("the -c 10 cap was full"), "{line}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("dropped ") && l.contains("/s at most")), "{text}");
}

/// A rate the cap holds easily drops nothing, and says nothing about dropping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_the_cap_can_hold_drops_nothing() {
    let _alone = crate::ALONE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let shown =
        load_against(&server, dir.path(), &["--rps", "200", "-c", "10", "-d", "1s", "--threshold", "dropped<=0%"])
            .await;
    let r = &shown.report;
    assert_eq!((r.requests, r.dropped), (200, 0), "{r:?}");
    assert!(r.thresholds[0].passed, "{:?}", r.thresholds);
    assert!(!nehr_probe::report::text::render(&shown).contains("never sent"));
}
