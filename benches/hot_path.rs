//! Criterion benches of the per-request hot path: validating one answer against the
//! schema (every answer of a load test is validated) and recording one observation
//! (histograms and counters). Run with `cargo bench --bench hot_path`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use nehr_probe::load::recorder::Recorder;
use nehr_probe::probe::{Observation, Outcome};
use nehr_probe::validate::{TokenFacts, Validator};

/// The answer the API document shows, as the mock sends it.
const ANSWER: &str = r#"{"version":"v2","code":0,"message":"1 Records found","result":{"access_token":"d0816a77-af67-43fc-bad1-2edb2aae3dc5","token_type":"bearer","refresh_token":"542f00d0-4be3-4b47-940a-62e354b9c3e7","expires_in":86399,"scope":["","read","write"],"firstLogin":null,"loggedInUser":null,"userDetails":null,"persCode":"-90008","userIntitutes":[],"civilId":null,"userMobile":null}}"#;

fn validate(c: &mut Criterion) {
    let validator = Validator::builtin();
    assert!(validator.check_token(ANSWER.as_bytes()).is_ok());
    c.bench_function("validate one answer", |b| b.iter(|| validator.check_token(black_box(ANSWER.as_bytes()))));
    let broken = ANSWER.replace("86399", "0");
    c.bench_function("validate one broken answer", |b| b.iter(|| validator.check_token(black_box(broken.as_bytes()))));
}

fn record(c: &mut Criterion) {
    let due = Instant::now();
    let obs = Observation {
        seq: 0,
        due,
        sent: due + Duration::from_micros(40),
        done: due + Duration::from_micros(21_300),
        status: Some(200),
        outcome: Outcome::Ok,
        violations: Vec::new(),
        token: Some(TokenFacts {
            token_type: Some("bearer".into()),
            expires_in: Some(86399),
            scope: Some(vec![String::new(), "read".into(), "write".into()]),
        }),
        body_bytes: 371,
        detail: None,
    };
    let mut recorder = Recorder::new();
    c.bench_function("record one observation", |b| b.iter(|| recorder.record(black_box(&obs))));
}

criterion_group!(benches, validate, record);
criterion_main!(benches);
