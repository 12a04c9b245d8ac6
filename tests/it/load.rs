//! `load` and `report` end to end against the embedded mock on loopback: the JSON report
//! and its schema, merges, exit codes, accounts, warmup, live metrics and Ctrl-C. The
//! tests that measure time closely (rate, coordinated omission, stages) are in the
//! `timing` test binary, where nothing runs beside them.

use std::time::{Duration, Instant};

use nehr_probe::call::Outcome;
use nehr_probe::call::target::{EXAMPLE_PASSWORD, EXAMPLE_USERNAME};
use nehr_probe::load::execute;
use nehr_probe::mock::{Latency, MockArgs, MockServer};
use nehr_probe::report::histogram::decode;
use nehr_probe::report::model::{LoadReport, Model, Percentiles};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::{
    Run, assert_one_clear_error, finish, live_load, load_against, nehr_probe, parse_load, run, within,
};

const SCHEMA: &str = include_str!("../../schemas/load-report.schema.json");

pub fn assert_valid_report(json: &Value) {
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
        assert_eq!(json["outcomes"].as_object().unwrap().len(), 10);
        assert!(json["outcomes"]["server_error"].as_u64().unwrap() > 0, "{json:#}");
        assert!(json["http_status"]["500"].as_u64().unwrap() > 0);
    }
    assert_eq!(closed.report.model, Model::Closed);
    assert_eq!(closed.report.target_rps, None);
    assert_eq!(closed.report.late_starts, 0, "a closed-model call is due when it starts");
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
    let a = load_against(&fast, dir.path(), &["--rps", "100", "-n", "60", "--threshold", "p99<20s"]).await;
    let b = load_against(&slow, dir.path(), &["--rps", "50", "-n", "40"]).await;
    let (pa, pb) = (dir.path().join("a.json"), dir.path().join("b.json"));
    std::fs::write(&pa, a.report.json()).unwrap();
    std::fs::write(&pb, b.report.json()).unwrap();

    let out = run(&["report", pa.to_str().unwrap(), pb.to_str().unwrap(), "--format", "json"], &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let merged: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_valid_report(&merged);
    let m: LoadReport = serde_json::from_value(merged).unwrap();
    // A loaded machine may cost a call or two (dropped, timed out): the merge is the
    // sum of what the two runs measured, whatever that was.
    assert_eq!(m.requests, a.report.requests + b.report.requests);
    assert_eq!(m.outcomes[Outcome::Ok], a.report.outcomes[Outcome::Ok] + b.report.outcomes[Outcome::Ok]);
    let status = |r: &LoadReport| r.http_status.get("200").copied().unwrap_or(0);
    assert_eq!(status(&m), status(&a.report) + status(&b.report));
    assert_eq!(m.late_starts, a.report.late_starts + b.report.late_starts);
    assert!(within(m.achieved_rps, a.report.achieved_rps + b.report.achieved_rps, 1e-5));
    assert_eq!(m.target_rps, Some(150.0));
    assert_eq!(m.target, format!("{}, {}", a.report.target, b.report.target));
    let mut sum = a.latency.clone();
    sum.add(&b.latency).unwrap();
    assert_eq!(decode(&m.histogram).unwrap(), sum);
    assert_eq!(m.latency_seconds, Percentiles::of(&sum));
    // The saved rule is judged again, on the merge.
    assert_eq!(m.thresholds.len(), 1);
    assert_eq!(m.thresholds[0].expr, "p99<20s");

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

    // An --out that can no longer be written at the end (its directory went away
    // during the run; a missing one is refused before it, tests/it/usage.rs) does not
    // cost the measured run: the report first, then one line of error.
    let gone = dir.path().join("gone");
    std::fs::create_dir(&gone).unwrap();
    let (out, hlog) = (gone.join("run.json"), gone.join("run.hlog"));
    let child = nehr_probe()
        .args(["load", "--mock", "--rps", "20", "-n", "20", "--out", out.to_str().unwrap()])
        .args(["--hlog", hlog.to_str().unwrap()])
        .spawn()
        .unwrap();
    // The --hlog is created as the run starts, after the outputs were checked.
    let started = std::time::Instant::now();
    while !hlog.exists() && started.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::fs::remove_file(&hlog).unwrap();
    std::fs::remove_dir(&gone).unwrap();
    let unwritable = finish(child);
    assert_eq!(unwritable.code, Some(2), "{unwritable:?}");
    assert!(unwritable.stdout.contains("20 requests in"), "{unwritable:?}");
    let lines: Vec<&str> = unwritable.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{unwritable:?}");
    assert!(lines[0].starts_with(&format!("nehr-probe: cannot write --out {}: ", out.display())), "{unwritable:?}");

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

/// Ctrl-C and SIGTERM stop the run: the partial report is printed and written, and the
/// exit code says the run was cut short (130 and 143, as shells report them).
#[test]
fn a_signal_stops_the_run_reports_it_and_fails_it() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = [("INT", 130), ("TERM", 143)]
        .into_iter()
        .map(|(signal, code)| {
            let out = dir.path().join(format!("{signal}.json"));
            let mut cmd = nehr_probe();
            cmd.args(["load", "--mock", "--rps", "50", "--duration", "60s", "--format", "json", "--out"]);
            cmd.arg(&out);
            (signal, code, out, cmd.spawn().unwrap())
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    // Both signals first, then the reports: each run is cut at about 1.5 s.
    for (signal, _, _, child) in &children {
        let killed = std::process::Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status();
        assert!(killed.unwrap().success());
    }
    let started = Instant::now();
    for (signal, code, out, child) in children {
        let run: Run = finish(child);
        assert!(started.elapsed() < Duration::from_secs(10), "stopped promptly");
        assert_eq!(run.code, Some(code), "SIG{signal}: {run:?}");
        let json: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
        assert_valid_report(&json);
        let requests = json["requests"].as_u64().unwrap();
        assert!((20..=120).contains(&requests), "{requests} requests in ~1.5 s at 50 rps");
        assert!(json["duration_seconds"].as_f64().unwrap() < 10.0);
        let written: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(written, json, "the partial report is written too");
    }
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
    let args = parse_load(&["--url", &url, "--credentials", accounts.to_str().unwrap(), "-c", "3", "-n", "30"]);
    let shown = execute(&args, CancellationToken::new()).await.unwrap().shown;
    assert_eq!(shown.report.outcomes[Outcome::Ok], 20);
    assert_eq!(shown.report.outcomes[Outcome::Unauthorized], 10);
}

/// `--mock --credentials`: the embedded mock accepts the file's accounts, so rotation
/// works with zero setup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_mock_accepts_the_credentials_files_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = dir.path().join("accounts");
    std::fs::write(&accounts, "# two users\nMOH-1:one\nMOH-2:two:with-colon\n").unwrap();
    let args = parse_load(&["--mock", "--credentials", accounts.to_str().unwrap(), "-c", "2", "-n", "20"]);
    let shown = execute(&args, CancellationToken::new()).await.unwrap().shown;
    assert_eq!((shown.report.requests, shown.report.outcomes[Outcome::Ok]), (20, 20), "{:?}", shown.report.outcomes);
    std::fs::write(&accounts, "bad line\n").unwrap();
    let e = execute(&args, CancellationToken::new()).await.unwrap_err().to_string();
    assert!(e.contains("line 1: expected username:password"), "{e}");
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
    let load = live_load(&["--mock", "--rps", "50", "--duration", "2s"], CancellationToken::new()).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let text = reqwest::get(format!("http://{}/metrics", load.listen)).await.unwrap().text().await.unwrap();
    let ok_line = text
        .lines()
        .find(|l| l.starts_with("nehr_probe_requests_total{outcome=\"ok\""))
        .unwrap_or_else(|| panic!("{text}"));
    let live: f64 = ok_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(live > 10.0, "{ok_line}");
    assert!(text.contains("nehr_probe_build_info{version="), "{text}");
    assert!(text.contains(&format!("nehr_probe_late_starts_total{{target=\"{}\"}} ", load.name)), "{text}");
    let done = load.run.await.unwrap().unwrap();
    assert!(done.shown.report.requests as f64 >= live);
}

/// A run in which not one call was ok fails without any threshold, and says so in
/// every output (text, JUnit, the Markdown summary, the HTML badge), and `report` of
/// its saved JSON fails again: a closed port (every call a connect_error) and a wrong
/// password (every call unauthorized). docs/exit-codes.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_no_ok_call_fails_without_a_threshold() {
    // Bound and never listening, for the whole test: a port let go could be another
    // test's server by the time the load calls it.
    let (_socket, addr) = crate::support::refused_addr();
    let closed = format!("http://{addr}/nehrapi/login/getToken");
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let mock = server.url();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (junit, summary, html, saved) = (file("junit.xml"), file("summary.md"), file("run.html"), file("run.json"));
    let load = |url: String, password: &'static str, extra: Vec<String>| {
        let mut args: Vec<String> = ["load", "--url", &url, "--username", EXAMPLE_USERNAME, "--rps", "100", "-n", "20"]
            .map(str::to_owned)
            .into();
        args.extend(extra);
        tokio::task::spawn_blocking(move || {
            run(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[("NEHR_PROBE_PASSWORD", password)])
        })
    };
    let outputs = ["--junit", &junit, "--summary", &summary, "--html", &html, "--out", &saved].map(str::to_owned);
    let refused = load(closed, EXAMPLE_PASSWORD, outputs.into()).await.unwrap();
    let wrong = load(mock, "not-the-password", Vec::new()).await.unwrap();
    for (out, outcome) in [(&refused, "connect_error"), (&wrong, "unauthorized")] {
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stdout.contains(&format!("  {outcome:<16} {:>10}  {:>8}", 20, "100.00 %")), "{out:?}");
        assert!(out.stdout.contains("FAIL  no call was ok"), "{out:?}");
    }
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(
        junit.contains("name=\"at least one call ok\"") && junit.contains("no call was ok: 20 requests"),
        "{junit}"
    );
    assert!(std::fs::read_to_string(&summary).unwrap().starts_with("### nehr-probe: FAIL\n\n**no call was ok**"));
    assert!(std::fs::read_to_string(&html).unwrap().contains(">FAIL: no call was ok<"));
    let again = run(&["report", &saved], &[]);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(again.stdout.contains("FAIL  no call was ok"), "{again:?}");
}
