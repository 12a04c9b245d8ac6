//! The door stays shut: `check --wrong-password` and `serve`'s `wrong_password_probe`
//! against servers that refuse a wrong password (the mock, a canned 401) and one that
//! lets it in (the mock's any-password fault), each verdict over repeated runs both
//! ways: no false alarm on the healthy server, no miss on the broken one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nehr_probe::mock::MockArgs;
use nehr_probe::serve::Exporter;
use serde_json::Value;

use crate::serve::{get, mock, promtool_check_metrics, serve_args, tool};
use crate::support::{HostileServer, PASSWORD, USERNAME, check, json_answer, run};

/// Runs of each verdict: a miss or a false alarm in any of them fails the test.
const RUNS: usize = 20;

fn wrong_password(extra: &[&str]) -> crate::support::Run {
    let mut args = vec!["check", "--mock", "--wrong-password"];
    args.extend_from_slice(extra);
    run(&args, &[])
}

#[test]
fn a_refused_wrong_password_is_ok_and_an_accepted_one_critical_every_time() {
    let (mut false_alarms, mut misses) = (0, 0);
    for _ in 0..RUNS {
        let shut = wrong_password(&[]);
        if shut.code != Some(0) || !shut.stdout.starts_with("NEHR-TOKEN OK - wrong password refused (HTTP 401)") {
            false_alarms += 1;
            eprintln!("false alarm: {shut:?}");
        }
        let open = wrong_password(&["--mock-fault", "any-password"]);
        if open.code != Some(2) || !open.stdout.starts_with("NEHR-TOKEN CRITICAL - accepted a wrong password") {
            misses += 1;
            eprintln!("miss: {open:?}");
        }
    }
    assert_eq!((false_alarms, misses), (0, 0), "over {RUNS} runs each");
}

#[test]
fn the_json_and_the_metrics_name_the_door_not_the_login() {
    let r = wrong_password(&["--format", "json"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!((v["status"].as_str(), v["wrong_password"].as_str()), (Some("OK"), Some("refused")), "{v}");
    assert_eq!(v["outcome"], "unauthorized");

    let r = wrong_password(&["--format", "prometheus", "--mock-fault", "any-password", "--name", "prod"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    for want in [
        "nehr_probe_wrong_password_accepted{target=\"prod\"} 1\n",
        "nehr_probe_wrong_password_probes_total{result=\"accepted\",target=\"prod\"} 1\n",
    ] {
        assert!(r.stdout.contains(want), "no {want} in {}", r.stdout);
    }
    // A refused login must not read as the target's login failing.
    assert!(!r.stdout.contains("nehr_probe_success"), "{}", r.stdout);
    if let Some(promtool) = tool("promtool", "prometheus") {
        promtool_check_metrics(&promtool, "check --wrong-password", &r.stdout);
    }
}

#[test]
fn a_401_of_another_shape_warns_and_a_rate_limit_cannot_tell() {
    let odd = HostileServer::start(json_answer("401 Unauthorized", r#"{"error":"denied"}"#));
    let r = check(&odd.url(), &["--wrong-password"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stdout.contains("but the error body differs: /code"), "{}", r.stdout);
    let limited = HostileServer::start(json_answer("429 Too Many Requests", "{}"));
    let r = check(&limited.url(), &["--wrong-password"]);
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.stdout.contains("could not tell whether a wrong password is refused"), "{}", r.stdout);
    let let_in = HostileServer::start(json_answer("200 OK", "{}"));
    let r = check(&let_in.url(), &["--wrong-password"]);
    assert_eq!(r.code, Some(2), "an invalid 200 is still a door open: {r:?}");
    assert!(!r.stdout.contains(PASSWORD) && !r.stderr.contains(PASSWORD));
}

#[test]
fn the_wrong_password_goes_to_the_account_given() {
    // The mock lets any password in for its one known account and refuses every other
    // name: a refusal here shows the probe sent the name it was given.
    let r = wrong_password(&["--mock-fault", "any-password", "--wrong-password-username", "MOH-CANARY"]);
    assert_eq!(r.code, Some(0), "an unknown account is refused: {r:?}");
    let r = run(&["check", "--mock", "--wrong-password-username", "x"], &[]);
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.stdout.starts_with("NEHR-TOKEN UNKNOWN") && r.stdout.contains("--wrong-password"), "{r:?}");
}

/// Two targets with the probe, one whose server lets any password in: the metrics say
/// which door is open, the log names it once, and the login series are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_tries_the_wrong_password_per_target_and_exports_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let shut = mock(dir.path(), MockArgs::default()).await;
    let open = mock(dir.path(), MockArgs { accept_any_password: true, ..MockArgs::default() }).await;
    std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
    let config = dir.path().join("targets.toml");
    let entry = |name: &str, url: String| {
        format!(
            "[targets.{name}]\nurl = \"{url}\"\nusername = \"{USERNAME}\"\npassword_file = \"password\"\n\
             wrong_password_probe = true\nwrong_password_every = \"1h\"\n\n"
        )
    };
    std::fs::write(&config, entry("shut", shut.url()) + &entry("open", open.url())).unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    let log: nehr_probe::serve::Log = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
    let args = serve_args(&["--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--interval", "1h"]);
    let exporter = Exporter::start(&args, log).await.unwrap();
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let url = format!("http://{}/metrics", exporter.addr());
    let start = Instant::now();
    let metrics = loop {
        let (_, text) = get(&client, &url).await;
        let probed = |t: &str| text.contains(&format!("nehr_probe_wrong_password_accepted{{target=\"{t}\"}}"));
        if probed("shut") && probed("open") {
            break text;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no wrong-password probe in 20 s: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for want in [
        "nehr_probe_wrong_password_accepted{target=\"shut\"} 0\n",
        "nehr_probe_wrong_password_accepted{target=\"open\"} 1\n",
        "nehr_probe_wrong_password_probes_total{result=\"refused\",target=\"shut\"} 1\n",
        "nehr_probe_wrong_password_probes_total{result=\"accepted\",target=\"open\"} 1\n",
        "nehr_probe_success{target=\"shut\"} 1\n",
        "nehr_probe_success{target=\"open\"} 1\n",
    ] {
        assert!(metrics.contains(want), "no {want} in {metrics}");
    }
    assert!(!metrics.contains(PASSWORD));
    if let Some(promtool) = tool("promtool", "prometheus") {
        promtool_check_metrics(&promtool, "serve with wrong_password_probe", &metrics);
    }
    // A reload (SIGHUP) keeps the pace: the next wrong password is still an hour away.
    for _ in 0..3 {
        exporter.reload();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    exporter.stop().await;
    let log = lines.lock().unwrap().join("\n");
    assert_eq!(log.matches("SIGHUP: read --config").count(), 3, "{log}");
    assert!(log.contains("target open: wrong-password login: accepted a wrong password"), "{log}");
    assert!(log.contains("target shut: wrong-password login: wrong password refused"), "{log}");
    // The mock saw exactly one wrong password per target, besides the real logins.
    let stats = client.get(format!("http://{}/_mock/stats", shut.addr())).send().await.unwrap().bytes().await.unwrap();
    let stats: Value = serde_json::from_slice(&stats).unwrap();
    assert_eq!(stats["unauthorized"], 1, "{stats}");
}

#[test]
fn the_probes_settings_need_the_probe() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("password"), "x\n").unwrap();
    let config = dir.path().join("targets.toml");
    std::fs::write(
        &config,
        "[targets.a]\nurl = \"http://127.0.0.1:9/nehrapi/login/getToken\"\nusername = \"u\"\n\
         password_file = \"password\"\nwrong_password_username = \"canary\"\n",
    )
    .unwrap();
    let r = run(&["serve", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("need wrong_password_probe = true"), "{}", r.stderr);
}
