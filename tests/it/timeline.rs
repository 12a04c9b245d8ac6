//! What happened when: a server that fails, fast, between two instants of a run. The
//! timeline puts the failures in the intervals between those instants and in none
//! outside them, the `--hlog` holds the same calls second by second, ok latency leaves
//! the fast failures out while all-calls latency takes them in, and `report` of two runs
//! adds their timelines by absolute time.

use std::time::{Duration, SystemTime};

use nehr_probe::call::Outcome;
use nehr_probe::load::execute;
use nehr_probe::mock::{Latency, MockArgs, MockControl, MockServer};
use nehr_probe::report::histogram::decode;
use nehr_probe::report::model::LoadReport;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::{example_account, parse_load, run};

/// Seconds from `start` to `at` (negative before it).
fn after(start: SystemTime, at: SystemTime) -> f64 {
    match at.duration_since(start) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_window_lands_in_its_intervals_and_ok_latency_leaves_the_fast_failures_out() {
    let dir = tempfile::tempdir().unwrap();
    // Ok answers take 100 ms, failures none: far enough apart that a crowded machine,
    // which stretches both, cannot make one look like the other.
    let slow = Latency::Fixed(Duration::from_millis(100));
    let server = MockServer::start(&MockArgs { latency: Some(slow), ..MockArgs::default() }).await.unwrap();
    let (url, accounts, hlog) = (server.url(), example_account(dir.path()), dir.path().join("run.hlog"));
    let args = parse_load(&[
        "--url",
        &url,
        "--credentials",
        accounts.to_str().unwrap(),
        "--rps",
        "100",
        "-d",
        "5s",
        "--hlog",
        hlog.to_str().unwrap(),
        "--threshold",
        "ok_p50>=100ms",
        "--threshold",
        "p50<50ms",
    ]);
    let load = tokio::spawn(async move { execute(&args, CancellationToken::new()).await });
    // The mock fails every login at once (a 500, no delay) from about second 1.5 to 4.5.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let down = SystemTime::now();
    server.control(&MockControl { error_rate: Some(1.0), latency: Some(String::new()), ..Default::default() }).unwrap();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    server
        .control(&MockControl { error_rate: Some(0.0), latency: Some("100ms".into()), ..Default::default() })
        .unwrap();
    let up = SystemTime::now();
    let finished = load.await.unwrap().expect("load runs");
    finished.hlog.expect("the hlog is written");
    let shown = finished.shown;
    let r = &shown.report;

    let started = humantime::parse_rfc3339(r.started_at.as_deref().expect("started_at")).unwrap();
    let (down, up) = (after(started, down), after(started, up));
    assert_eq!(r.timeline_interval_seconds, Some(1));
    assert!(r.timeline.len() >= 5, "{:?}", r.timeline);
    let mut inside = 0;
    for e in &r.timeline {
        let (from, to) = (e.offset_seconds, e.offset_seconds + 1.0);
        let failed = e.outcomes[Outcome::ServerError];
        // Calls sent before the switch end 100 ms later, ok: allow 150 ms at the edges.
        if from >= down + 0.15 && to <= up {
            inside += 1;
            assert_eq!((failed, e.outcomes[Outcome::Ok]), (e.requests, 0), "{down:.3}..{up:.3}: {e:?}");
            assert!(e.requests >= 90, "the rate held through the outage: {e:?}");
            assert!(e.latency_seconds.p50 < 0.05, "failures are fast: {e:?}");
        } else if to <= down || from >= up + 0.15 {
            assert_eq!(failed, 0, "a failure outside {down:.3}..{up:.3}: {e:?}");
            if e.requests > 0 {
                assert!(e.latency_seconds.p50 >= 0.1, "{e:?}");
            }
        }
    }
    assert!(inside >= 2, "no interval wholly inside {down:.3}..{up:.3}: {:?}", r.timeline);
    assert_eq!(r.timeline.iter().map(|e| e.requests).sum::<u64>(), r.requests);
    assert_eq!(
        r.timeline.iter().map(|e| e.outcomes[Outcome::ServerError]).sum::<u64>(),
        r.outcomes[Outcome::ServerError]
    );

    // ok latency leaves the fast failures out; all-calls latency takes them in.
    let ok = r.ok_latency_seconds.expect("ok latency");
    assert!(ok.min >= 0.1 && ok.p50 >= 0.1, "{ok:?}");
    assert!(r.latency_seconds.min < 0.05 && r.latency_seconds.p50 < 0.05, "{:?}", r.latency_seconds);
    assert_eq!(shown.ok_latency.as_ref().unwrap().len(), r.outcomes[Outcome::Ok]);
    assert!(r.passed(), "{:?}", r.thresholds);

    // The --hlog holds the same calls, second by second.
    let text = std::fs::read_to_string(&hlog).unwrap();
    let per_second: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| decode(l.rsplit(',').next().unwrap()).unwrap().len())
        .collect();
    let timeline: Vec<u64> = r.timeline.iter().map(|e| e.requests).collect();
    assert_eq!(per_second, timeline);

    // The text report shows the outage.
    let text = nehr_probe::report::text::render(&shown);
    let row = text.lines().find(|l| l.trim_start().starts_with("server_error ") && l.ends_with("/s at most"));
    let spark: Vec<char> = row.unwrap_or_else(|| panic!("{text}")).chars().skip(19).take(r.timeline.len()).collect();
    assert_eq!((spark[0], spark[2], spark[3]), (' ', '█', '█'), "{text}");

    // `report` of two runs adds their timelines by absolute time: the same run again,
    // started 2 s later.
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(&a, r.json()).unwrap();
    let mut later: Value = serde_json::from_str(&r.json()).unwrap();
    let shifted = started + Duration::from_secs(2);
    later["started_at"] = humantime::format_rfc3339_millis(shifted).to_string().into();
    std::fs::write(&b, later.to_string()).unwrap();
    let out = run(&["report", a.to_str().unwrap(), b.to_str().unwrap(), "--format", "json"], &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let m: LoadReport = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(m.started_at, r.started_at);
    assert_eq!(m.timeline.len(), r.timeline.len() + 2);
    for (i, e) in m.timeline.iter().enumerate() {
        let own = r.timeline.get(i);
        let shifted = i.checked_sub(2).and_then(|j| r.timeline.get(j));
        let sum = |f: fn(&nehr_probe::report::model::TimelineEntry) -> u64| own.map_or(0, f) + shifted.map_or(0, f);
        assert_eq!(e.requests, sum(|e| e.requests), "entry {i}");
        assert_eq!(e.outcomes[Outcome::ServerError], sum(|e| e.outcomes[Outcome::ServerError]), "entry {i}");
        assert_eq!(e.offset_seconds, i as f64);
    }
    assert_eq!(m.requests, 2 * r.requests);
}
