//! The password never shows: not on stdout or stderr, not in JSON or metrics, not in
//! an error, whatever the server answers (even when it echoes the password back).
//! `Debug` of every in-process observation is checked by `support::call_target`.

use std::sync::Mutex;
use std::time::Duration;

use nehr_probe::check::{self, CheckFormat, Limits, Verdict};

use crate::answers::{self, SHORT_TIMEOUT, catalog};
use crate::support::{HostileServer, PASSWORD, Step, USERNAME, call, nehr_probe, run};

const FORMATS: [&str; 3] = ["nagios", "json", "prometheus"];

/// Probes one class in all three formats at once; returns a failure description.
fn sweep_class(name: &str, script: Vec<Step>, want: &str) -> Result<(), String> {
    let server = HostileServer::start(script);
    let url = server.url();
    let children: Vec<_> = FORMATS
        .iter()
        .map(|format| {
            let mut cmd = nehr_probe();
            cmd.args(["check", "--url", &url, "--username", USERNAME, "--timeout", "1s", "--format", format]);
            cmd.env("NEHR_PROBE_PASSWORD", PASSWORD);
            (format, cmd.spawn().expect("spawn nehr-probe"))
        })
        .collect();
    let want_code = if want == "ok" { 0 } else { 2 };
    for (format, child) in children {
        let r = crate::support::finish(child);
        let all = format!("{}{}", r.stdout, r.stderr);
        if all.contains(PASSWORD) {
            return Err(format!("{name} --format {format}: password in the output: {all}"));
        }
        if r.code != Some(want_code) || !r.stderr.is_empty() {
            return Err(format!("{name} --format {format}: want exit {want_code} and a quiet stderr, got {r:?}"));
        }
        if *format == "json" {
            let j: serde_json::Value = serde_json::from_str(&r.stdout).map_err(|e| format!("{name}: {e}: {r:?}"))?;
            if j["outcome"] != want {
                return Err(format!("{name}: want outcome {want}, got {j}"));
            }
        }
        if *format == "prometheus" && !r.stdout.contains(&format!("nehr_probe_requests_total{{outcome=\"{want}\"")) {
            return Err(format!("{name}: no {want} counter: {}", r.stdout));
        }
    }
    // The sweep is only meaningful if the password really went out.
    let requests = server.requests();
    if requests.len() != FORMATS.len() || requests.iter().any(|r| r.json()["password"] != PASSWORD) {
        return Err(format!("{name}: the server did not get the password from every run: {requests:?}"));
    }
    Ok(())
}

/// Probes one class in-process and renders the verdict as `check` would, in all three
/// formats; returns the outcome, whether the password went out, and the renderings.
fn render_class(script: Vec<Step>, timeout: Duration) -> (&'static str, bool, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = HostileServer::start(script);
    let obs = rt.block_on(call(&server.url(), timeout));
    let requests = server.requests();
    let sent = !requests.is_empty() && requests.iter().all(|r| r.json()["password"] == PASSWORD);
    let verdict = Verdict::judge(obs, Limits::latency(Duration::from_millis(500), Duration::from_secs(2), timeout));
    let metrics = check::metrics_text(&verdict, "default", false).unwrap();
    let shown = [CheckFormat::Nagios, CheckFormat::Json, CheckFormat::Prometheus]
        .map(|f| check::render(&verdict, f, &metrics))
        .join("\n");
    (verdict.observation.outcome.as_str(), sent, shown)
}

/// Every class, in-process: the outcome the table says, and no password in the
/// observation or in any of `check`'s three renderings of it.
#[test]
fn every_class_gets_its_outcome_and_no_rendering_shows_the_password() {
    // The timeout classes first, so their waits overlap the rest.
    let mut classes = catalog();
    classes.sort_by_key(|(_, _, want)| *want != "timeout");
    let classes = Mutex::new(classes.into_iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let next = classes.lock().unwrap().next();
                    let Some((name, script, want)) = next else { break };
                    // Only the timing classes need the short timeout; the rest answer at once.
                    let timeout = if want == "timeout" { SHORT_TIMEOUT } else { Duration::from_secs(5) };
                    let (got, sent, shown) = render_class(script, timeout);
                    let mut failures = failures.lock().unwrap();
                    if got != want {
                        failures.push(format!("{name}: want {want}, got {got}"));
                    }
                    if !sent {
                        failures.push(format!("{name}: the password was not sent, so the check means nothing"));
                    }
                    if shown.contains(PASSWORD) {
                        failures.push(format!("{name}: password in the output: {shown}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The real binary, in all three formats, for the classes where a leak is most likely
/// (answers that echo the password) and one of each other kind of ending.
#[test]
fn password_never_appears_in_the_binarys_output() {
    let mut classes = answers::echoes();
    classes.push(("valid", answers::valid(), "ok"));
    classes.push(("silent", answers::silent(), "timeout"));
    classes.push(("64 MiB chunked", answers::huge_chunked(), "invalid_body"));
    classes.push(("reset", answers::reset(), "transport_error"));
    let classes = Mutex::new(classes.into_iter());
    let failures = Mutex::new(Vec::new());
    // Two classes at a time, three processes each: the timeout class overlaps the rest.
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let next = classes.lock().unwrap().next();
                    let Some((name, script, want)) = next else { break };
                    if let Err(e) = sweep_class(name, script, want) {
                        failures.lock().unwrap().push(e);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn password_in_the_url_is_refused_without_echoing_it() {
    // PASSWORD holds a '#', which ends a URL's authority; this one parses as a password.
    let in_url = "OtterPlinth5521";
    for url in [
        format!("http://{USERNAME}:{in_url}@127.0.0.1:9/nehrapi/login/getToken"),
        format!("http://u:{in_url}@[::1/broken"),
        format!("ftp://u:{in_url}@127.0.0.1/"),
        format!("http://u:{PASSWORD}@127.0.0.1:9/"),
    ] {
        let r = run(&["check", "--url", &url, "--username", USERNAME], &[("NEHR_PROBE_PASSWORD", PASSWORD)]);
        assert_eq!(r.code, Some(3), "{r:?}");
        assert!(!r.stderr.contains(in_url) && !r.stderr.contains(PASSWORD), "{url}: {}", r.stderr);
        crate::support::assert_one_clear_error(&r);
        assert!(r.stderr.contains("credentials do not belong in the URL"), "{}", r.stderr);
    }
}

#[test]
fn password_is_not_echoed_by_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.json");
    std::fs::write(&schema, "{not json").unwrap();
    for args in [
        vec!["check", "--url", "http://127.0.0.1:9/x", "--username", USERNAME, "--schema", schema.to_str().unwrap()],
        vec!["check", "--url", "http://127.0.0.1:9/x", "--username", USERNAME, "--timeout", "0"],
        vec!["check", "--url", "http://127.0.0.1:9/x", "--username", USERNAME, "-w", "3s", "-c", "1s"],
        vec!["check", "--url", "gopher://127.0.0.1:9/x", "--username", USERNAME],
    ] {
        let r = run(&args, &[("NEHR_PROBE_PASSWORD", PASSWORD)]);
        assert_eq!(r.code, Some(3), "{args:?}: {r:?}");
        assert!(!r.stderr.contains(PASSWORD) && !r.stdout.contains(PASSWORD), "{r:?}");
        crate::support::assert_one_clear_error(&r);
    }
}
