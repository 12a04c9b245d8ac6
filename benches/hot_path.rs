//! Criterion benches of the per-request hot path: validating one answer against the
//! schema (every answer of a load test is validated) and recording one observation
//! (histograms and counters). Run with `cargo bench --bench hot_path`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use nehr_probe::call::validate::{SPEC_EXAMPLE, TokenFacts, Validator};
use nehr_probe::call::{Connection, Observation, Outcome, Phases};
use nehr_probe::load::recorder::Recorder;

/// The answer the API document shows, compact as the mock sends it (371 bytes).
fn answer() -> String {
    serde_json::from_str::<serde_json::Value>(SPEC_EXAMPLE).expect("the spec's example is JSON").to_string()
}

fn validate(c: &mut Criterion) {
    let validator = Validator::builtin();
    let answer = answer();
    assert!(validator.check_token(answer.as_bytes()).is_ok());
    c.bench_function("validate one answer", |b| b.iter(|| validator.check_token(black_box(answer.as_bytes()))));
    let broken = answer.replace("86399", "0");
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
        cert_not_after: None,
        tls_version: None,
        tls_cipher: None,
        client_cert_wanted: false,
        http_version: Some(nehr_probe::call::observation::HttpVersion::Http11),
        // A keep-alive call: the two phases of a reused connection.
        phases: Phases {
            sending: Some(Duration::from_micros(5)),
            processing: Some(Duration::from_micros(21_000)),
            transfer: Some(Duration::from_micros(200)),
            ..Phases::default()
        },
        connection: Some(Connection::Reused),
        then: None,
    };
    let mut recorder = Recorder::new();
    c.bench_function("record one observation", |b| b.iter(|| recorder.record(black_box(&obs))));
}

criterion_group!(benches, validate, record);
criterion_main!(benches);
