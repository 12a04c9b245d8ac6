//! `nehr-probe check` as cron and Nagios run it: the real binary, its exit codes, its
//! Nagios line, its JSON and its textfile.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::answers;
use crate::support::{HostileServer, PASSWORD, Run, Step, USERNAME, check, edited_answer, run};

fn nagios(run: &Run) -> &str {
    assert!(run.stderr.is_empty(), "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {}", run.stdout);
    lines[0]
}

fn json_of(run: &Run) -> Value {
    assert!(run.stderr.is_empty(), "stderr: {}", run.stderr);
    serde_json::from_str(run.stdout.trim_end()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn check_mock_prints_an_ok_nagios_line_and_exits_0() {
    let r = run(&["check", "--mock"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let line = nagios(&r);
    assert!(line.starts_with("NEHR-TOKEN OK - valid bearer token, expires in 86399 s, in "), "{line}");
    let (text, perf) = line.split_once(" | ").expect("perfdata");
    assert!(!text.contains('|'));
    // 'label'=value[UOM];warn;crit;min;max, the monitoring-plugins convention.
    let fields: Vec<&str> = perf.split(' ').collect();
    assert_eq!(fields.len(), 2, "{perf}");
    let time = fields[0].strip_prefix("time=").expect("time perfdata");
    let parts: Vec<&str> = time.split(';').collect();
    assert_eq!(parts[1..], ["0.5", "2", "0", "10"], "{time}");
    let secs: f64 = parts[0].strip_suffix('s').unwrap().parse().unwrap();
    assert!((0.0..2.0).contains(&secs), "{secs}");
    assert!(fields[1].starts_with("size=") && fields[1].ends_with("B;;;0"), "{perf}");
}

#[test]
fn check_mock_json_has_the_documented_shape() {
    let r = run(&["check", "--mock", "--format", "json"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let j = json_of(&r);
    let mut keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "body_bytes",
            "http_status",
            "http_version",
            "latency_seconds",
            "message",
            "outcome",
            "phases_seconds",
            "status",
            "token",
            "violations"
        ]
    );
    assert_eq!(j["status"], "OK");
    assert_eq!(j["outcome"], "ok");
    assert_eq!(j["http_status"], 200);
    assert_eq!(j["http_version"], "HTTP/1.1");
    assert!(j["latency_seconds"].as_f64().is_some_and(|s| (0.0..2.0).contains(&s)), "{j}");
    assert!(j["body_bytes"].as_u64().is_some_and(|n| n > 300), "{j}");
    assert_eq!(j["message"], "valid bearer token, expires in 86399 s");
    assert_eq!(j["violations"], serde_json::json!([]));
    assert_eq!(
        j["token"],
        serde_json::json!({"token_type": "bearer", "expires_in": 86399, "scope": ["", "read", "write"]})
    );
    let shown = j.to_string();
    assert!(!shown.contains("access_token") && !shown.contains("refresh_token"), "{shown}");
}

#[test]
fn check_mock_prometheus_has_the_documented_metrics() {
    let r = run(&["check", "--mock", "--format", "prometheus"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let text = &r.stdout;
    assert!(text.contains("nehr_probe_success{target=\"default\"} 1"), "{text}");
    assert!(text.contains("nehr_probe_requests_total{outcome=\"ok\",target=\"default\"} 1"), "{text}");
    assert!(text.contains("nehr_probe_requests_total{outcome=\"timeout\",target=\"default\"} 0"), "{text}");
    assert!(text.contains("nehr_probe_http_status_code{target=\"default\"} 200"), "{text}");
    assert!(text.contains("nehr_probe_token_expires_in_seconds{target=\"default\"} 86399"), "{text}");
    assert!(text.contains("nehr_probe_build_info{version=\""), "{text}");
}

#[test]
fn check_textfile_is_written_for_node_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nehr.prom");
    let r = run(&["check", "--mock", "--textfile", path.to_str().unwrap(), "--name", "lab"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(nagios(&r).starts_with("NEHR-TOKEN OK"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("nehr_probe_success{target=\"lab\"} 1"), "{text}");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["nehr.prom"], "a temporary file was left behind");
}

#[test]
fn check_textfile_in_a_missing_directory_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/nehr.prom");
    let r = run(&["check", "--mock", "--textfile", path.to_str().unwrap()], &[]);
    // Found before the probe: a usage error, on stdout too for Nagios.
    crate::support::assert_unknown_line(&r);
    assert!(r.stderr.starts_with("nehr-probe: cannot write --textfile "), "{r:?}");
}

#[test]
fn check_sends_the_account_from_the_environment() {
    let server = HostileServer::start(answers::valid());
    let r = check(&server.url(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "check makes exactly one call");
    let req = &requests[0];
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/nehrapi/login/getToken"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.json(), serde_json::json!({"username": USERNAME, "password": PASSWORD}));
}

#[test]
fn check_reads_the_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let server = HostileServer::start(answers::valid());
    let url = server.url();
    let r = run(&["check", "--url", &url, "--username", USERNAME, "--password-file", file.to_str().unwrap()], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(server.requests()[0].json()["password"], PASSWORD, "the newline must not be sent");
    let r =
        run(&["check", "--url", &url, "--username", USERNAME], &[("NEHR_PROBE_PASSWORD_FILE", file.to_str().unwrap())]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(server.requests()[1].json()["password"], PASSWORD, "nor from the environment's file");
}

#[test]
fn check_against_a_failing_server_is_critical() {
    let server = HostileServer::start(answers::server_error_spec());
    let r = check(&server.url(), &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    let line = nagios(&r);
    assert!(line.starts_with("NEHR-TOKEN CRITICAL - server error (HTTP 500)"), "{line}");
}

#[test]
fn check_names_the_broken_field() {
    let server = HostileServer::start(edited_answer(|v| v["result"]["expires_in"] = serde_json::json!(0)));
    let r = check(&server.url(), &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(nagios(&r).starts_with("NEHR-TOKEN CRITICAL - invalid body: /result/expires_in must be > 0"), "{r:?}");
    let r = check(&server.url(), &["--format", "json"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    let j = json_of(&r);
    assert_eq!(j["status"], "CRITICAL");
    assert_eq!(j["outcome"], "invalid_body");
    assert_eq!(j["violations"][0]["path"], "/result/expires_in");
    assert_eq!(j["token"], Value::Null);
}

#[test]
fn check_slow_answer_is_warning() {
    let mut script = vec![Step::Sleep(Duration::from_millis(300))];
    script.extend(answers::valid());
    let server = HostileServer::start(script);
    let r = check(&server.url(), &["-w", "100ms", "-c", "5s"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    let line = nagios(&r);
    assert!(line.starts_with("NEHR-TOKEN WARNING - valid bearer token"), "{line}");
    assert!(line.contains("(warning at 0.1 s)"), "{line}");
    assert!(line.contains(";0.1;5;0;10 "), "{line}");
}

#[test]
fn check_answer_slower_than_critical_is_critical() {
    let mut script = vec![Step::Sleep(Duration::from_millis(300))];
    script.extend(answers::valid());
    let server = HostileServer::start(script);
    let r = check(&server.url(), &["--warning", "50ms", "--critical", "100ms", "--format", "json"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    let j = json_of(&r);
    assert_eq!((j["status"].as_str(), j["outcome"].as_str()), (Some("CRITICAL"), Some("ok")));
    assert!(j["message"].as_str().unwrap().contains("critical at 0.1 s"), "{j}");
}

#[test]
fn check_of_a_silent_server_ends_at_the_timeout() {
    let server = HostileServer::start(answers::silent());
    let started = Instant::now();
    let r = check(&server.url(), &["--timeout", "1s"]);
    let took = started.elapsed();
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(nagios(&r).starts_with("NEHR-TOKEN CRITICAL - timeout: "), "{r:?}");
    assert!(nagios(&r).contains("within 1s"), "{r:?}");
    // Not before the timeout, and long before the default one (10 s). How closely a call
    // ends at its timeout is measured in tests/timing (deadlines.rs); here the start-up
    // of a debug build on a crowded machine is added, and that machine may be slow.
    assert!(took >= Duration::from_secs(1), "took {took:?}");
    assert!(took < Duration::from_secs(6), "took {took:?}");
}

#[test]
fn check_of_a_closed_port_is_critical() {
    let (_refusing, addr) = crate::support::refused_addr();
    let url = format!("http://{addr}/nehrapi/login/getToken");
    let r = check(&url, &["--format", "json"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert_eq!(json_of(&r)["outcome"], "connect_error");
    assert_eq!(json_of(&r)["http_status"], Value::Null);
}

#[test]
fn a_token_lifetime_below_the_minimum_is_a_warning() {
    // The mock's tokens live 86399 s, as the API documents.
    let short = run(&["check", "--mock", "--min-token-lifetime", "2d"], &[]);
    assert_eq!(short.code, Some(1), "{short:?}");
    assert!(short.stdout.starts_with("NEHR-TOKEN WARNING - valid bearer token, expires in 86399 s"), "{short:?}");
    assert!(short.stdout.contains("(shorter than --min-token-lifetime 172800 s)"), "{short:?}");
    assert_eq!(run(&["check", "--mock", "--min-token-lifetime", "1h"], &[]).code, Some(0));
}

/// `check` against the mock at `url`, with the example account it accepts, as JSON.
async fn check_mock_at(url: String) -> Value {
    use nehr_probe::call::target::{EXAMPLE_PASSWORD, EXAMPLE_USERNAME};
    let r = tokio::task::spawn_blocking(move || {
        let args = ["check", "--url", &url, "--username", EXAMPLE_USERNAME, "--format", "json"];
        run(&args, &[("NEHR_PROBE_PASSWORD", EXAMPLE_PASSWORD)])
    })
    .await
    .unwrap();
    assert_eq!(r.code, Some(0), "{r:?}");
    json_of(&r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_literal_url_works_and_a_host_name_has_a_resolve_phase() {
    use nehr_probe::mock::{MockArgs, MockServer};
    let v6 = MockArgs { listen: "[::1]:0".parse().unwrap(), ..MockArgs::default() };
    match MockServer::start(&v6).await {
        Ok(server) => {
            let url = server.url();
            assert!(url.starts_with("http://[::1]:"), "{url}");
            let j = check_mock_at(url).await;
            assert_eq!(j["outcome"], "ok", "{j}");
            assert_eq!(j["phases_seconds"]["resolve"], Value::Null, "an address is not looked up: {j}");
            assert!(j["phases_seconds"]["connect"].as_f64().is_some(), "{j}");
        }
        // Some containers have no IPv6 loopback; that is the machine, not the code.
        Err(e) => eprintln!("skipped the IPv6 half: cannot listen on [::1]: {e:#}"),
    }
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let by_name = format!("http://localhost:{}/nehrapi/login/getToken", server.addr().port());
    let j = check_mock_at(by_name).await;
    assert_eq!(j["outcome"], "ok", "{j}");
    assert!(j["phases_seconds"]["resolve"].as_f64().is_some(), "a host name is looked up: {j}");
}
