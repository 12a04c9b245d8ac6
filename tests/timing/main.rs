//! The tests that measure time closely: the rate and the delay reported at a fixed rate,
//! coordinated omission around a stall, stages, the deadlines of a call and of `/probe`,
//! and `--baseline`'s verdicts on latency. They live in their own test binary (cargo runs test binaries one after
//! another) and take turns within it, so that no other test competes with them for this
//! machine's cores while they measure.

// The kit serves the `it` binary; this one uses a few parts of it (it allows dead code).
#[path = "../it/support.rs"]
mod support;
// The hostile answers too, a few of them.
#[path = "../it/answers.rs"]
#[allow(dead_code)]
mod answers;

mod compare;
mod deadlines;
mod overload;
mod segments;

use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use nehr_probe::call::Outcome;
use nehr_probe::call::target::TOKEN_PATH;
use nehr_probe::load::execute;
use nehr_probe::mock::{Latency, MockArgs, MockServer};
use nehr_probe::report::model::{LoadReport, Model};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use support::{example_account, load_against, parse_load, spec_answer, within};

/// Held by each test for its whole run: one measurement at a time.
static ALONE: Mutex<()> = Mutex::const_new(());

/// A keep-alive HTTP/1.1 server on its own threads that answers every request with the
/// spec's answer after `delay`, slept on a thread: precise, and independent of the code
/// under test (the mock shares the load engine's clock). Its threads end with the test
/// process.
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

/// One run at 100 rps, at most 20 in flight, against `url`.
async fn at_100_rps(url: &str, duration: &str) -> LoadReport {
    let dir = tempfile::tempdir().unwrap();
    let accounts = example_account(dir.path());
    let args = parse_load(&[
        "--url",
        url,
        "--credentials",
        accounts.to_str().unwrap(),
        "--rps",
        "100",
        "-d",
        duration,
        "-c",
        "20",
        // The canned server hands every login the token of its one answer.
        "--token-reuse",
        "same-account",
    ]);
    execute(&args, CancellationToken::new()).await.unwrap().shown.report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_rate_holds_count_and_rate_and_reports_the_delay() {
    let _alone = ALONE.lock().await;
    // The delay must show within a millisecond, on top of what a call costs without it
    // (client, validation, loopback, server). A neighbour on a shared machine can stretch
    // one measurement by that much, never shrink it: so the best of three attempts is
    // judged. Count and rate are held on every attempt.
    let (fast, slow) = (precise_server(Duration::ZERO), precise_server(Duration::from_millis(20)));
    let mut attempts = Vec::new();
    for _ in 0..3 {
        let base = at_100_rps(&fast, "1s").await;
        let r = at_100_rps(&slow, "3s").await;
        assert_eq!(r.model, Model::Open);
        assert!(within(r.requests as f64, 300.0, 3.0), "count {}", r.requests);
        assert_eq!(r.outcomes[Outcome::Ok], r.requests, "{r:?}");
        assert!(within(r.achieved_rps, 100.0, 1.0), "rate {}", r.achieved_rps);
        assert_eq!(r.target_rps, Some(100.0));
        let (lat, svc) = (r.latency_seconds.p50, r.service_time_seconds.p50);
        let (base_lat, base_svc) = (base.latency_seconds.p50, base.service_time_seconds.p50);
        let shows = |p50: f64, base: f64| p50 >= 0.020 && within(p50 - base, 0.020, 0.001);
        // Late starts (over 1 ms) come from a busy machine, which adds them and never
        // takes them away: a sanity bound judged with the delay, not the accuracy check
        // (that is p50). A pacer that started everything late would fail all three.
        if shows(lat, base_lat) && shows(svc, base_svc) && r.late_starts < r.requests / 2 {
            return;
        }
        attempts.push(format!(
            "latency p50 {lat} (without the delay {base_lat}), service p50 {svc} ({base_svc}), late starts {}",
            r.late_starts
        ));
    }
    panic!("the 20 ms delay is not reported within 1 ms: {attempts:#?}");
}

/// The mock's `--latency` is what it says, to docs/measurement.md's half a millisecond: it sleeps
/// on a precise clock, not on tokio's timer, which adds 1.1 to 1.4 ms to a 20 ms sleep
/// here (measured with this test). The best of five attempts is judged, as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mocks_latency_is_precise() {
    let _alone = ALONE.lock().await;
    let fast = MockServer::start(&MockArgs::default()).await.unwrap();
    let latency = Some(Latency::Fixed(Duration::from_millis(20)));
    let slow = MockServer::start(&MockArgs { latency, ..MockArgs::default() }).await.unwrap();
    let mut attempts = Vec::new();
    for _ in 0..5 {
        let base = at_100_rps(&fast.url(), "1s").await.service_time_seconds.p50;
        let r = at_100_rps(&slow.url(), "2s").await;
        assert_eq!(r.outcomes[Outcome::Ok], r.requests, "{r:?}");
        let svc = r.service_time_seconds.p50;
        if svc >= 0.020 && within(svc - base, 0.020, 0.0005) {
            return;
        }
        attempts.push(format!("service p50 {svc}, without the latency {base}"));
    }
    panic!("the mock's 20 ms are not 20 ms: {attempts:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_corrected_latency_not_in_service_time() {
    let _alone = ALONE.lock().await;
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
    assert_eq!((r.requests, r.dropped), (300, 0), "nothing due is dropped");
    // The run sees what is left of the stall when its first request falls due: the
    // second less the time the run took to start (a busy machine can take a tenth of
    // it). The first request waits it out, so the max is its length, up to 1 s.
    let stall = r.latency_seconds.max;
    assert!(stall > 0.5 && stall < 1.15, "max {stall}");
    // About 100 a second were due during it: two stuck in it, the rest queued behind
    // them. Their latencies from the due time spread from 0 to the stall's length, so a
    // third of the run sees the stall and the p99 is near its full length.
    assert!(r.latency_seconds.p99 > stall - 0.1, "corrected p99 {}, max {stall}", r.latency_seconds.p99);
    assert!(r.latency_seconds.mean > stall / 10.0, "mean {}, max {stall}", r.latency_seconds.mean);
    assert!(r.service_time_seconds.p99 < 0.1, "service p99 {}", r.service_time_seconds.p99);
    // Those queued behind the stall started late; a busy machine may add a few more. A
    // pacer that let everything start late would count all 300.
    let queued = (stall * 100.0 * 0.9) as u64;
    assert!((queued..=200).contains(&r.late_starts), "late starts {}, max {stall}", r.late_starts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_ramp_the_rate_and_the_hlog_round_trips() {
    let _alone = ALONE.lock().await;
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

/// A server that takes `head_delay` to answer, sends the head and half the body, then
/// the rest after `body_delay`, on its own threads (one per connection), then closes.
fn staged_server(head_delay: Duration, body_delay: Duration) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let body = spec_answer().to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let (mut seen, mut chunk) = (Vec::new(), [0u8; 4096]);
                // The request: a head and a short JSON body; read until the body's end.
                while !seen.ends_with(b"}") {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&chunk[..n]),
                    }
                }
                std::thread::sleep(head_delay);
                let (first, rest) = body.split_at(body.len() / 2);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(format!("{head}{first}").as_bytes());
                std::thread::sleep(body_delay);
                let _ = stream.write_all(rest.as_bytes());
            });
        }
    });
    format!("http://{addr}{TOKEN_PATH}")
}

/// The `processing` and `transfer` seconds of a `/probe` answer.
fn probe_phases(text: &str) -> (f64, f64) {
    let phase = |name: &str| {
        let prefix = format!("probe_http_duration_seconds{{phase=\"{name}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
    };
    (phase("processing"), phase("transfer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_match_a_servers_delays_in_check_and_probe() {
    let _alone = ALONE.lock().await;
    let (head, body) = (Duration::from_millis(60), Duration::from_millis(90));
    let url = staged_server(head, body);
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, support::PASSWORD).unwrap();
    let argv = ["nehr-probe", "serve", "--url", &url, "--username", support::USERNAME, "--listen", "127.0.0.1:0"];
    let argv: Vec<&str> =
        // No --probe-min-interval: each attempt's /probe is a fresh login, not the last one again.
        argv.into_iter().chain(["--interval", "1h", "--probe-min-interval", "0", "--token-reuse", "same-account", "--password-file", password.to_str().unwrap()]).collect();
    let nehr_probe::cli::Command::Serve(args) = <nehr_probe::cli::Cli as clap::Parser>::parse_from(argv).command else {
        unreachable!()
    };
    let exporter = nehr_probe::serve::Exporter::start(&args, std::sync::Arc::new(|_: &str| {})).await.unwrap();
    let probe = format!("http://{}/probe", exporter.addr());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    // Each phase should show its delay: never less (the server slept that long; half a
    // millisecond of slack for the clocks), more only by the machine's noise (a crowded
    // machine wakes the client late: with two busy loops on the two cores, by up to
    // 30 ms). So the best of five attempts is judged, within half the 30 ms between the
    // two delays: the phases told apart, a phase measured as the other or as both never
    // passes.
    let close = |got: f64, want: Duration| (-0.0005..0.015).contains(&(got - want.as_secs_f64()));
    let mut attempts = Vec::new();
    for _ in 0..5 {
        let check = {
            let url = url.clone();
            tokio::task::spawn_blocking(move || support::check(&url, &["--format", "json"])).await.unwrap()
        };
        assert_eq!(check.code, Some(0), "{check:?}");
        let json: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
        let phases = &json["phases_seconds"];
        let (processing, transfer) = (phases["processing"].as_f64().unwrap(), phases["transfer"].as_f64().unwrap());
        assert_eq!(phases["resolve"], serde_json::Value::Null, "{json}");
        assert_eq!(phases["tls"], serde_json::Value::Null, "{json}");
        assert!(phases["connect"].as_f64().is_some_and(|c| c < 0.05), "{json}");

        let text = client.get(&probe).send().await.unwrap().text().await.unwrap();
        assert!(text.contains("probe_success 1\n"), "{text}");
        let (probe_processing, probe_transfer) = probe_phases(&text);
        if close(processing, head)
            && close(transfer, body)
            && close(probe_processing, head)
            && close(probe_transfer, body)
        {
            exporter.stop().await;
            return;
        }
        attempts.push(format!(
            "check: processing {processing}, transfer {transfer}; /probe: {probe_processing}, {probe_transfer}"
        ));
    }
    panic!("phases not within 15 ms of the delays ({head:?} to the head, {body:?} to the rest): {attempts:#?}");
}
