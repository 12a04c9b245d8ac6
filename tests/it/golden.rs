//! The human renderings, checked whole against golden files in `tests/golden/`: a
//! change to the text report shows as a diff in review, not as a substring that still
//! happens to match. `UPDATE_GOLDEN=1 cargo test golden` rewrites them after an
//! intended change.

use std::path::Path;
use std::time::{Duration, Instant, UNIX_EPOCH};

use nehr_probe::call::validate::Violation;
use nehr_probe::call::{Connection, Observation, Outcome, Phases};
use nehr_probe::load::recorder::Recorder;
use nehr_probe::load::timeline::{OpenSeconds, TimelineBuilder};
use nehr_probe::report::model::{Model, PlannedStage, RunFacts, Shown};
use nehr_probe::report::text::render;
use nehr_probe::report::threshold::Threshold;

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if want != actual {
        panic!(
            "{name} differs from its golden file (UPDATE_GOLDEN=1 rewrites it):\n--- want\n{want}\n--- got\n{actual}"
        );
    }
}

/// An open-model run of 200 calls over 10 s: mostly ok, some slow, a few failures of
/// each kind, the server errors together in seconds 4 and 5.
fn run() -> Shown {
    let mut rec = Recorder::new();
    let mut seconds = OpenSeconds::new();
    let mut at = 0u64;
    let mut record = |rec: &mut Recorder, obs: Observation, ended_ms: u64| {
        let latency = rec.record(&obs);
        seconds.record(Duration::from_millis(ended_ms), obs.outcome, latency);
    };
    let due = Instant::now();
    let us = Duration::from_micros;
    let call = |outcome, status: Option<u16>, wait_us: u64, service_us: u64| {
        let sent = due + us(wait_us);
        let mut obs = Observation::new(0, due, sent, sent + us(service_us), status, outcome);
        // One call in ten opens its connection (over https); the rest reuse one.
        let new = wait_us == 0 && service_us.is_multiple_of(10);
        obs.connection = Some(if new { Connection::New } else { Connection::Reused });
        // Every answer came over HTTP/1.1: the report says so on a line of its own.
        obs.http_version = status.map(|_| nehr_probe::call::observation::HttpVersion::Http11);
        obs.phases = Phases {
            connect: new.then(|| us(120)),
            tls: new.then(|| us(900)),
            processing: status.map(|_| us(service_us * 9 / 10)),
            transfer: status.map(|_| us(service_us / 20)),
            ..Phases::default()
        };
        obs
    };
    for i in 0..180u64 {
        at += if (80..100).contains(&i) { 0 } else { 62 };
        record(&mut rec, call(Outcome::Ok, Some(200), i % 3 * 400, 2_000 + i * 37), at);
    }
    for i in 0..8u64 {
        record(&mut rec, call(Outcome::ServerError, Some(503), 0, 900 + i * 10), 4_000 + i * 200);
    }
    for i in 0..5 {
        let mut bad = call(Outcome::InvalidBody, Some(200), 0, 3_100);
        bad.violations = vec![Violation { path: "/result/expires_in".into(), message: "must be > 0".into() }];
        record(&mut rec, bad, 1_000 + i * 1_500);
    }
    for i in 0..7 {
        let mut slow = call(Outcome::Timeout, None, 0, 2_000_000);
        slow.detail = Some("no complete answer within 2s (waiting for the answer)".into());
        record(&mut rec, slow, 2_000 + i * 1_000);
    }
    let mut timeline = TimelineBuilder::new(UNIX_EPOCH + Duration::from_secs(1_780_000_000), None);
    seconds.close_all(Duration::from_secs(10), |second, _| timeline.add(second));
    rec.timeline = Some(timeline.finish());
    let facts = RunFacts {
        target: "http://127.0.0.1:8080/nehrapi/login/getToken".into(),
        model: Model::Open,
        target_rps: Some(20.0),
        stages: Some(vec![
            PlannedStage { duration_seconds: 2.0, target_rps: 20.0 },
            PlannedStage { duration_seconds: 8.0, target_rps: 20.0 },
        ]),
        concurrency: 50,
        duration: Duration::from_secs(10),
        segment: None,
        started_at: std::time::UNIX_EPOCH + Duration::from_secs(1_777_636_800),
        then: None,
    };
    let rules = ["p99<300ms", "error_rate<1%", "rps>=19.5"].map(|r| Threshold::parse(r).unwrap());
    rec.into_shown(&facts, &rules, vec![])
}

#[test]
fn text_report() {
    golden("report.txt", &render(&run()));
}

/// Regression: 1000 calls of 1 to 1000 ms showed p99.9 as 999 ms in the table and as
/// 1 s in the spectrum (`99.9 / 100` is 0.9990000000000001 in floating point), and a
/// `p99.9` threshold judged a third number. One percentile is one number everywhere.
#[test]
fn p99_9_is_one_number_in_the_table_the_spectrum_and_the_thresholds() {
    let mut rec = Recorder::new();
    let due = Instant::now();
    for ms in 1..=1000u64 {
        let end = due + Duration::from_millis(ms);
        rec.record(&Observation::new(0, due, due, end, Some(200), Outcome::Ok));
    }
    let facts = RunFacts {
        target: "http://127.0.0.1:8080/nehrapi/login/getToken".into(),
        model: Model::Closed,
        target_rps: None,
        stages: None,
        concurrency: 1,
        duration: Duration::from_secs(10),
        segment: None,
        started_at: UNIX_EPOCH,
        then: None,
    };
    let shown = rec.into_shown(&facts, &[Threshold::parse("p99.9<=999.5ms").unwrap()], vec![]);
    let text = render(&shown);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.first() == Some(&"p99.9"))
        .collect();
    // The table's row (all calls, ok calls, service time) and the spectrum's bar.
    assert_eq!(rows.len(), 2, "{text}");
    // p99 of 1000 calls has 10 calls beyond it; p99.9 has one: marked as close to max.
    let p99 = text.lines().find(|l| l.starts_with("  p99 ")).unwrap();
    assert!(!p99.contains('*'), "{text}");
    // p99.9 of 1000 calls has one call beyond it: marked as close to max.
    assert_eq!(rows[0][1..3], ["999.42", "ms*"], "{text}");
    assert_eq!(rows[1][rows[1].len() - 2..], ["999.42", "ms"], "{text}");
    assert_eq!(shown.report.latency_seconds.p99_9, 0.999423);
    assert!(shown.report.thresholds[0].passed, "{:?}", shown.report.thresholds);
}
