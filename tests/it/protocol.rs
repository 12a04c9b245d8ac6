//! The HTTP version an answer came in, end to end against the mock (HTTP/1.1): `load`'s
//! `http_versions` and its text line, the `http2` threshold, merges, `check`'s line,
//! JSON (against its schema) and metric, and `check --require-http2`.

use nehr_probe::load::execute;
use nehr_probe::mock::{MockArgs, MockServer};
use nehr_probe::report::merge::merge;
use nehr_probe::report::text::render;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::load::assert_valid_report;
use crate::support::{load_against, run};

const CHECK_SCHEMA: &str = include_str!("../../schemas/check.schema.json");

fn assert_valid_check(json: &Value) {
    let schema: Value = serde_json::from_str(CHECK_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the check schema compiles");
    let errors: Vec<String> = validator.iter_errors(json).map(|e| format!("{} {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}\n{json:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_counts_answers_by_http_version_and_http2_rules_judge_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let rules = ["--threshold", "http2>=100%", "--threshold", "http2<=0%"];
    let a = load_against(&server, dir.path(), &[&["--rps", "200", "-n", "20"][..], &rules].concat()).await;
    let json: Value = serde_json::from_str(&a.report.json()).unwrap();
    assert_valid_report(&json);
    assert_eq!(json["http_versions"], serde_json::json!({"HTTP/1.1": 20}), "{json:#}");
    assert!(json.get("tls_versions").is_none(), "over http: {json:#}");
    let text = render(&a);
    assert!(text.contains("\n  HTTP versions: HTTP/1.1 20 (100.0 %) of 20 calls\n"), "{text}");
    let judged = &a.report.thresholds;
    assert_eq!((judged[0].passed, judged[0].actual), (false, Some(0.0)), "{judged:?}");
    assert!(judged[1].passed, "{judged:?}");
    assert!(text.contains("FAIL  http2>=100%") && text.contains("actual 0.00 %"), "{text}");
    assert_eq!(a.report.exit_code(), 1);

    // A merge adds the counts.
    let b = load_against(&server, dir.path(), &["--rps", "200", "-n", "10"]).await;
    let merged = merge(vec![a, b]).unwrap();
    assert_eq!(merged.report.http_versions, [("HTTP/1.1".to_string(), 30)].into());
    assert!(render(&merged).contains("  HTTP versions: HTTP/1.1 30 (100.0 %) of 30 calls\n"));

    // No answer, no count: the line is left out and http2 rules fail.
    let closed = "http://127.0.0.1:1/nehrapi/login/getToken";
    let accounts = crate::support::example_account(dir.path());
    let args = ["--url", closed, "--credentials", accounts.to_str().unwrap(), "-n", "3", "--timeout", "2s"];
    let load = crate::support::parse_load(&[&args[..], &["--threshold", "http2<=100%"]].concat());
    let none = execute(&load, CancellationToken::new()).await.expect("load runs").shown;
    assert!(none.report.http_versions.is_empty(), "{:?}", none.report.http_versions);
    let text = render(&none);
    assert!(!text.contains("HTTP versions"), "{text}");
    assert!(text.contains("FAIL  http2<=100%") && text.contains("no answers"), "{text}");
}

#[test]
fn check_names_the_http_version_in_its_line_json_and_metrics() {
    let r = run(&["check", "--mock"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let (text, _) = r.stdout.split_once(" | ").expect("perfdata");
    assert!(text.ends_with(" s over HTTP/1.1"), "{}", r.stdout);

    let r = run(&["check", "--mock", "--format", "json"], &[]);
    let j: Value = serde_json::from_str(r.stdout.trim_end()).unwrap();
    assert_valid_check(&j);
    assert_eq!(j["http_version"], "HTTP/1.1");

    let r = run(&["check", "--mock", "--format", "prometheus"], &[]);
    assert!(r.stdout.contains("nehr_probe_http_version_info{target=\"default\",version=\"HTTP/1.1\"} 1"), "{r:?}");

    // No answer: null, and a line without a protocol.
    let r = run(
        &["check", "--url", "http://127.0.0.1:1/nehrapi/login/getToken", "--format", "json"],
        &[("NEHR_PROBE_USERNAME", "u"), ("NEHR_PROBE_PASSWORD", "p")],
    );
    assert_eq!(r.code, Some(2), "{r:?}");
    let j: Value = serde_json::from_str(r.stdout.trim_end()).unwrap();
    assert_valid_check(&j);
    assert!(j["http_version"].is_null(), "{j}");
}

/// The mock answers in HTTP/1.1: `--require-http2` makes an otherwise good login
/// CRITICAL, its reason first, on one line; JSON says the same and validates.
#[test]
fn require_http2_is_critical_when_the_answer_came_over_http_1_1() {
    let r = run(&["check", "--mock", "--require-http2"], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert_eq!(r.stdout.lines().count(), 1, "{r:?}");
    assert!(
        r.stdout.starts_with(
            "NEHR-TOKEN CRITICAL - answered over HTTP/1.1, not HTTP/2 (--require-http2); valid bearer token, \
             expires in 86399 s, in "
        ),
        "{r:?}"
    );
    let r = run(&["check", "--mock", "--require-http2", "--format", "json"], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    let j: Value = serde_json::from_str(r.stdout.trim_end()).unwrap();
    assert_valid_check(&j);
    assert_eq!((j["status"].as_str(), j["outcome"].as_str()), (Some("CRITICAL"), Some("ok")));
    assert!(j["message"].as_str().unwrap().starts_with("answered over HTTP/1.1, not HTTP/2"), "{j}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_run_over_http2_on_the_mock_and_a_refused_token_still_fails_them() {
    let dir = tempfile::tempdir().unwrap();
    let then = ["--http2", "-c", "8", "--streams", "4", "-n", "200", "--then", "/nehrapi/mock/resource"];
    let rules = ["--threshold", "http2>=100%", "--threshold", "journey_error_rate<=0%"];
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let ok = load_against(&server, dir.path(), &[&then[..], &rules].concat()).await;
    let json: Value = serde_json::from_str(&ok.report.json()).unwrap();
    assert_valid_report(&json);
    assert_eq!(json["http_versions"], serde_json::json!({"HTTP/2": 200}), "{json:#}");
    assert_eq!(json["then"]["journeys_ok"], 200, "{json:#}");
    // 8 in flight, 4 to a connection; the next calls share the logins' connections.
    assert_eq!(json["connections_opened"], 2, "{json:#}");
    assert_eq!(ok.report.exit_code(), 0, "{}", render(&ok));

    // The resource refusing every token: each journey fails, over HTTP/2 as over 1.1.
    let refusing = MockServer::start(&MockArgs { reject_token_rate: 1.0, ..MockArgs::default() }).await.unwrap();
    let bad = load_against(&refusing, dir.path(), &[&then[..], &rules].concat()).await;
    let json: Value = serde_json::from_str(&bad.report.json()).unwrap();
    assert_eq!((json["outcomes"]["ok"].as_u64(), json["then"]["journeys_ok"].as_u64()), (Some(200), Some(0)));
    assert_eq!(json["then"]["outcomes"]["token_refused"], 200, "{json:#}");
    assert_eq!(bad.report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_speaks_http2_to_the_targets_configured_so_and_says_which_it_got() {
    use crate::serve::{get, mock, serve_args};
    use crate::support::{PASSWORD, USERNAME};
    let dir = tempfile::tempdir().unwrap();
    let server = mock(dir.path(), MockArgs::default()).await;
    std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
    let config = dir.path().join("targets.toml");
    let table = |name: &str| {
        format!(
            "[targets.{name}]\nurl = \"{}\"\nusername = \"{USERNAME}\"\npassword_file = \"password\"\n",
            server.url()
        )
    };
    std::fs::write(&config, format!("{}http2 = true\n\n{}", table("two"), table("one"))).unwrap();
    let log: nehr_probe::serve::Log = std::sync::Arc::new(|_: &str| {});
    let args = serve_args(&["--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--interval", "1h"]);
    let exporter = nehr_probe::serve::Exporter::start(&args, log).await.unwrap();
    let base = format!("http://{}", exporter.addr());
    let client = reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(10)).build().unwrap();
    for (target, version) in [("two", "2"), ("one", "1.1")] {
        let (code, body) = get(&client, &format!("{base}/probe?target={target}")).await;
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("probe_success 1\n"), "{target}: {body}");
        assert!(body.contains(&format!("probe_http_version {version}\n")), "{target}: {body}");
    }
    // The scheduled probes (the first at start) give each target its version's series.
    let start = std::time::Instant::now();
    let metrics = loop {
        let (_, body) = get(&client, &format!("{base}/metrics")).await;
        if body.contains("nehr_probe_http_version_info{target=\"one\"") && body.contains("target=\"two\",version") {
            break body;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(metrics.contains("nehr_probe_http_version_info{target=\"two\",version=\"HTTP/2\"} 1\n"), "{metrics}");
    assert!(metrics.contains("nehr_probe_http_version_info{target=\"one\",version=\"HTTP/1.1\"} 1\n"), "{metrics}");
    if let Some(promtool) = crate::serve::tool("promtool", "prometheus") {
        crate::serve::promtool_check_metrics(&promtool, "serve's /metrics", &metrics);
    }
}
