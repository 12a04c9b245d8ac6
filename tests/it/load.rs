//! `load` and `report` end to end against the embedded mock on loopback: rate accuracy,
//! coordinated-omission correction, stages, the JSON report and its schema, merges, the
//! HdrHistogram interval log, exit codes, live metrics and Ctrl-C.
//!
//! Timing tests run a few seconds each with tolerances wide enough for a busy 2-core
//! machine, and narrow enough to catch a schedule that drifts or a latency measured from
//! the wrong instant.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use nehr_probe::cli::{Cli, Command as Sub};
use nehr_probe::load::report::{LoadReport, Model, Percentiles, Shown, decode_histogram};
use nehr_probe::load::{LoadArgs, execute};
use nehr_probe::mock::{Latency, MockArgs, MockServer};
use nehr_probe::target::{EXAMPLE_PASSWORD, EXAMPLE_USERNAME, TOKEN_PATH};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::{Run, assert_one_clear_error, finish, nehr_probe, run, spec_answer};

const SCHEMA: &str = include_str!("../../schemas/load-report.schema.json");

fn parse(args: &[&str]) -> LoadArgs {
    let mut argv = vec!["nehr-probe", "load", "--quiet"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}")).command {
        Sub::Load(a) => a,
        other => panic!("not load: {other:?}"),
    }
}

/// A credentials file holding the example account, which the mock accepts.
fn example_account(dir: &Path) -> PathBuf {
    let path = dir.join("accounts");
    std::fs::write(&path, format!("{EXAMPLE_USERNAME}:{EXAMPLE_PASSWORD}\n")).unwrap();
    path
}

/// `load` in-process against `server` with these flags.
async fn load_against(server: &MockServer, dir: &Path, args: &[&str]) -> Shown {
    let url = server.url();
    let accounts = example_account(dir);
    let mut all = vec!["--url", url.as_str(), "--credentials", accounts.to_str().unwrap()];
    all.extend_from_slice(args);
    execute(&parse(&all), CancellationToken::new(), &mut None).await.expect("load runs")
}

fn within(actual: f64, want: f64, tolerance: f64) -> bool {
    (actual - want).abs() <= tolerance
}

/// A keep-alive HTTP/1.1 server on its own threads that answers every request with the
/// spec's answer after `delay`, slept on a thread: within tens of microseconds, where an
/// async timer (the mock's) rounds up to the next millisecond. Its threads end with the
/// test process.
fn precise_server(delay: Duration) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let body = spec_answer().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || serve_keep_alive(stream, &body, delay));
        }
    });
    format!("http://{addr}{TOKEN_PATH}")
}

fn serve_keep_alive(mut stream: std::net::TcpStream, body: &str, delay: Duration) {
    use std::io::{Read, Write};
    let _ = stream.set_nodelay(true);
    let answer =
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + length);
        std::thread::sleep(delay);
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_rate_holds_count_and_rate_and_reports_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = example_account(dir.path());
    let accounts = accounts.to_str().unwrap();
    let rate = |url: &str, duration: &str| {
        parse(&["--url", url, "--credentials", accounts, "--rps", "100", "-d", duration, "-c", "20"])
    };
    // What a call costs without a delay (client, validation, loopback, server), so the
    // delay is compared with what the report adds on top of that.
    let base =
        execute(&rate(&precise_server(Duration::ZERO), "1s"), CancellationToken::new(), &mut None).await.unwrap();
    let url = precise_server(Duration::from_millis(20));
    let r = execute(&rate(&url, "3s"), CancellationToken::new(), &mut None).await.unwrap().report;
    assert_eq!(r.model, Model::Open);
    assert!(within(r.requests as f64, 300.0, 3.0), "count {}", r.requests);
    assert_eq!(r.outcomes.ok, r.requests, "{r:?}");
    assert!(within(r.achieved_rps, 100.0, 1.0), "rate {}", r.achieved_rps);
    assert_eq!(r.target_rps, Some(100.0));
    let (lat, svc) = (r.latency_seconds.p50, r.service_time_seconds.p50);
    let (base_lat, base_svc) = (base.report.latency_seconds.p50, base.report.service_time_seconds.p50);
    assert!(lat >= 0.020 && within(lat - base_lat, 0.020, 0.001), "latency p50 {lat}, without the delay {base_lat}");
    assert!(svc >= 0.020 && within(svc - base_svc, 0.020, 0.001), "service p50 {svc}, without the delay {base_svc}");
    // Late starts (over 1 ms) come from a busy machine: tests run side by side on two
    // cores, CI builds beside them. A sanity bound, not the accuracy check (that is p50).
    assert!(r.late_starts < r.requests / 2, "late starts {}", r.late_starts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_corrected_latency_not_in_service_time() {
    let dir = tempfile::tempdir().unwrap();
    // One stall: the first second of the mock's life (its period is an hour).
    let args = MockArgs {
        stall_every: Some(Duration::from_secs(3600)),
        stall_for: Duration::from_secs(1),
        ..MockArgs::default()
    };
    let server = MockServer::start(&args).await.unwrap();
    let run = load_against(&server, dir.path(), &["--rps", "100", "--duration", "3s", "-c", "2"]).await;
    let r = &run.report;
    assert_eq!(r.requests, 300, "nothing due is dropped");
    // About 100 requests were due during the stall: two stuck in it, the rest queued
    // behind them. Their latencies from the due time spread from 0 to 1 s, so a third of
    // the run sees the stall and the p99 is near its full length.
    assert!(r.latency_seconds.p99 > 0.9, "corrected p99 {}", r.latency_seconds.p99);
    assert!(within(r.latency_seconds.max, 1.0, 0.15), "max {}", r.latency_seconds.max);
    assert!(r.latency_seconds.mean > 0.1, "mean {}", r.latency_seconds.mean);
    assert!(r.service_time_seconds.p99 < 0.1, "service p99 {}", r.service_time_seconds.p99);
    // Those queued behind the stall started late; a busy machine may add a few more.
    assert!((90..=150).contains(&r.late_starts), "late starts {}", r.late_starts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_ramp_the_rate_and_the_hlog_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let hlog = dir.path().join("run.hlog");
    let run =
        load_against(&server, dir.path(), &["--stages", "1s:100,1s:100,1s:0", "--hlog", hlog.to_str().unwrap()]).await;
    // Ramp to 100 rps over 1 s (50 requests), hold 1 s (100), ramp down over 1 s (50).
    assert_eq!(run.report.requests, 200);
    assert!(within(run.report.target_rps.unwrap(), 66.667, 0.01), "{:?}", run.report.target_rps);

    let text = std::fs::read(&hlog).unwrap();
    let mut per_second = Vec::new();
    let mut merged = Histogram::<u64>::new(3).unwrap();
    let mut base_time = false;
    for entry in IntervalLogIterator::new(&text) {
        match entry.expect("the log parses") {
            LogEntry::BaseTime(_) => base_time = true,
            LogEntry::StartTime(_) => {}
            LogEntry::Interval(i) => {
                let bytes = base64_decode(i.encoded_histogram());
                let h: Histogram<u64> = Deserializer::new().deserialize(&mut bytes.as_slice()).unwrap();
                assert!(i.duration() <= Duration::from_secs(1));
                assert_eq!(i.start_timestamp(), Duration::from_secs(per_second.len() as u64));
                per_second.push(h.len());
                merged.add(&h).unwrap();
            }
        }
    }
    assert!(base_time);
    assert_eq!(merged.len(), 200, "every request is in one interval: {per_second:?}");
    assert!(per_second.len() >= 3, "{per_second:?}");
    for (second, want) in [(0, 50.0), (1, 100.0), (2, 50.0)] {
        assert!(within(per_second[second] as f64, want, 6.0), "second {second}: {per_second:?}");
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

fn assert_valid_report(json: &Value) {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the report schema compiles");
    let errors: Vec<String> = validator.iter_errors(json).map(|e| format!("{} {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}\n{json:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_reports_validate_against_the_committed_schema() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start(&MockArgs { error_rate: 0.2, ..MockArgs::default() }).await.unwrap();
    let open = load_against(&server, dir.path(), &["--rps", "200", "-n", "40", "--threshold", "p99<5s"]).await;
    let closed = load_against(&server, dir.path(), &["-c", "2", "-n", "40", "--threshold", "error_rate<1%"]).await;
    for shown in [&open, &closed] {
        let json: Value = serde_json::from_str(&shown.report.json()).unwrap();
        assert_valid_report(&json);
        assert_eq!(json["outcomes"].as_object().unwrap().len(), 9);
        assert!(json["outcomes"]["server_error"].as_u64().unwrap() > 0, "{json:#}");
        assert!(json["http_status"]["500"].as_u64().unwrap() > 0);
    }
    assert_eq!(closed.report.model, Model::Closed);
    assert_eq!(closed.report.target_rps, None);
    assert!(!closed.report.thresholds[0].passed, "20 % errors fail error_rate<1%");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_merges_two_runs_into_their_sum() {
    let dir = tempfile::tempdir().unwrap();
    let fast = MockServer::start(&MockArgs::default()).await.unwrap();
    let slow = MockServer::start(&MockArgs {
        latency: Some(Latency::Fixed(Duration::from_millis(30))),
        ..MockArgs::default()
    })
    .await
    .unwrap();
    let a = load_against(&fast, dir.path(), &["--rps", "100", "-n", "60", "--threshold", "p99<1s"]).await;
    let b = load_against(&slow, dir.path(), &["--rps", "50", "-n", "40"]).await;
    let (pa, pb) = (dir.path().join("a.json"), dir.path().join("b.json"));
    std::fs::write(&pa, a.report.json()).unwrap();
    std::fs::write(&pb, b.report.json()).unwrap();

    let out = run(&["report", pa.to_str().unwrap(), pb.to_str().unwrap(), "--format", "json"], &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let merged: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_valid_report(&merged);
    let m: LoadReport = serde_json::from_value(merged).unwrap();
    assert_eq!(m.requests, 100);
    assert_eq!(m.outcomes.ok, a.report.outcomes.ok + b.report.outcomes.ok);
    assert_eq!(m.http_status["200"], 100);
    assert_eq!(m.late_starts, a.report.late_starts + b.report.late_starts);
    assert!(within(m.achieved_rps, a.report.achieved_rps + b.report.achieved_rps, 1e-5));
    assert_eq!(m.target_rps, Some(150.0));
    assert_eq!(m.target, format!("{}, {}", a.report.target, b.report.target));
    let mut sum = a.latency.clone();
    sum.add(&b.latency).unwrap();
    assert_eq!(decode_histogram(&m.histogram).unwrap(), sum);
    assert_eq!(m.latency_seconds, Percentiles::of(&sum));
    // The saved rule is judged again, on the merge.
    assert_eq!(m.thresholds.len(), 1);
    assert_eq!(m.thresholds[0].expr, "p99<1s");

    // One file renders as it was saved.
    let again = run(&["report", pa.to_str().unwrap(), "--format", "json"], &[]);
    let again: LoadReport = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again, a.report);
    let text = run(&["report", pa.to_str().unwrap(), pb.to_str().unwrap()], &[]);
    assert!(text.stdout.contains("merged from 2 reports") && text.stdout.contains("latency spectrum"), "{text:?}");
}

#[test]
fn exit_codes_of_load_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("run.json");
    let saved = saved.to_str().unwrap();
    let quick = |extra: &[&'static str]| -> Vec<&str> {
        let mut args = vec!["load", "--mock", "--rps", "200", "-n", "20"];
        args.extend_from_slice(extra);
        args
    };

    let pass = run(&[quick(&["--threshold", "p99<10s", "--out"]), vec![saved]].concat(), &[]);
    assert_eq!(pass.code, Some(0), "{pass:?}");
    assert!(pass.stdout.contains("pass  p99<10s"), "{pass:?}");
    assert!(pass.stderr.is_empty(), "no progress display off a terminal: {pass:?}");

    let fail = run(&quick(&["--threshold", "error_rate>50%", "--format", "json"]), &[]);
    assert_eq!(fail.code, Some(1), "{fail:?}");
    let json: Value = serde_json::from_str(&fail.stdout).unwrap();
    assert_eq!(json["thresholds"][0]["passed"], false);

    let malformed = run(&["load", "--mock", "--threshold", "p99<<3ms"], &[]);
    assert_eq!(malformed.code, Some(2));
    assert!(malformed.stderr.contains("expected METRIC OP VALUE"), "{malformed:?}");
    assert_one_clear_error(&malformed);

    let no_target = run(&["load", "--rps", "5"], &[]);
    assert_eq!(no_target.code, Some(2));
    assert!(no_target.stderr.contains("--url"), "{no_target:?}");
    assert_one_clear_error(&no_target);

    assert_eq!(run(&["report", saved], &[]).code, Some(0));
    assert_eq!(run(&["report", saved, "--threshold", "p50<1us"], &[]).code, Some(1));
    let missing = run(&["report", "/nonexistent/run.json"], &[]);
    assert_eq!(missing.code, Some(2));
    assert_one_clear_error(&missing);
    std::fs::write(dir.path().join("bad.json"), "{\"target\": 1}").unwrap();
    let bad = run(&["report", dir.path().join("bad.json").to_str().unwrap()], &[]);
    assert_eq!(bad.code, Some(2));
    assert!(bad.stderr.contains("is not a nehr-probe load report"), "{bad:?}");
    assert_one_clear_error(&bad);
}

#[test]
fn ctrl_c_stops_the_run_and_still_reports() {
    let mut cmd = nehr_probe();
    cmd.args(["load", "--mock", "--rps", "50", "--duration", "60s", "--format", "json"]);
    let child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let killed = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let out: Run = finish(child);
    assert!(started.elapsed() < Duration::from_secs(10), "stopped promptly");
    assert!(matches!(out.code, Some(0 | 1)), "{out:?}");
    let json: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_valid_report(&json);
    let requests = json["requests"].as_u64().unwrap();
    assert!((20..=120).contains(&requests), "{requests} requests in ~1.5 s at 50 rps");
    assert!(json["duration_seconds"].as_f64().unwrap() < 10.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_used_round_robin() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "MOH-1:one\nMOH-2:two\n").unwrap();
    let server = MockServer::start(&MockArgs { users: Some(users), ..MockArgs::default() }).await.unwrap();
    let accounts = dir.path().join("accounts");
    std::fs::write(&accounts, "MOH-1:one\nMOH-2:two\nMOH-3:wrong\n").unwrap();
    let url = server.url();
    let args = parse(&["--url", &url, "--credentials", accounts.to_str().unwrap(), "-c", "3", "-n", "30"]);
    let shown = execute(&args, CancellationToken::new(), &mut None).await.unwrap();
    assert_eq!(shown.report.outcomes.ok, 20);
    assert_eq!(shown.report.outcomes.unauthorized, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_traffic_is_sent_but_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let run = load_against(&server, dir.path(), &["--rps", "100", "-n", "20", "--warmup", "300ms"]).await;
    assert_eq!(run.report.requests, 20);
    let served = server.stats().ok;
    assert!((45..=55).contains(&served), "30 warmup calls and 20 recorded ones, the mock saw {served}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_metrics_are_served_during_the_run() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let args = parse(&["--mock", "--rps", "50", "--duration", "2s", "--metrics-listen", &listen]);
    let load = tokio::spawn(async move { execute(&args, CancellationToken::new(), &mut None).await });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let text = reqwest::get(format!("http://{listen}/metrics")).await.unwrap().text().await.unwrap();
    let ok_line = text
        .lines()
        .find(|l| l.starts_with("nehr_probe_requests_total{outcome=\"ok\""))
        .unwrap_or_else(|| panic!("{text}"));
    let live: f64 = ok_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(live > 10.0, "{ok_line}");
    assert!(text.contains("nehr_probe_build_info{version="), "{text}");
    let done = load.await.unwrap().unwrap();
    assert!(done.report.requests as f64 >= live);
}
