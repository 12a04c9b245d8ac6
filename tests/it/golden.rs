//! The human renderings, checked whole against golden files in `tests/golden/`: a
//! change to the text report shows as a diff in review, not as a substring that still
//! happens to match. `UPDATE_GOLDEN=1 cargo test golden` rewrites them after an
//! intended change.

use std::path::Path;
use std::time::{Duration, Instant};

use nehr_probe::call::validate::Violation;
use nehr_probe::call::{Connection, Observation, Outcome, Phases};
use nehr_probe::load::recorder::Recorder;
use nehr_probe::report::model::{Model, RunFacts, Shown};
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

/// An open-model run of 200 calls: mostly ok, some slow, a few failures of each kind.
fn run() -> Shown {
    let mut rec = Recorder::new();
    let due = Instant::now();
    let us = Duration::from_micros;
    let call = |outcome, status: Option<u16>, wait_us: u64, service_us: u64| {
        let sent = due + us(wait_us);
        let mut obs = Observation::new(0, due, sent, sent + us(service_us), status, outcome);
        // One call in ten opens its connection (over https); the rest reuse one.
        let new = wait_us == 0 && service_us.is_multiple_of(10);
        obs.connection = Some(if new { Connection::New } else { Connection::Reused });
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
        rec.record(&call(Outcome::Ok, Some(200), i % 3 * 400, 2_000 + i * 37));
    }
    for i in 0..8u64 {
        rec.record(&call(Outcome::ServerError, Some(503), 0, 900 + i * 10));
    }
    for _ in 0..5 {
        let mut bad = call(Outcome::InvalidBody, Some(200), 0, 3_100);
        bad.violations = vec![Violation { path: "/result/expires_in".into(), message: "must be > 0".into() }];
        rec.record(&bad);
    }
    for _ in 0..7 {
        rec.record(&call(Outcome::Timeout, None, 0, 2_000_000));
    }
    let facts = RunFacts {
        target: "http://127.0.0.1:8080/nehrapi/login/getToken".into(),
        model: Model::Open,
        target_rps: Some(20.0),
        concurrency: 50,
        duration: Duration::from_secs(10),
        segment: None,
        started_at: std::time::UNIX_EPOCH + Duration::from_secs(1_777_636_800),
    };
    let rules = ["p99<300ms", "error_rate<1%", "rps>=19.5"].map(|r| Threshold::parse(r).unwrap());
    let report = rec.report(&facts, &rules);
    Shown { report, latency: rec.latency, service: Some(rec.service), phases: Some(rec.phases), notes: vec![] }
}

#[test]
fn text_report() {
    golden("report.txt", &render(&run()));
}
