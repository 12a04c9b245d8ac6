//! The monitoring stack end to end: `serve` scraped by a real Prometheus (the dashboard's
//! queries and the alert rules on live data), `check --push` into a real Pushgateway,
//! `promtool` on the config, the rules and their tests. The daemons and helpers are
//! [`crate::serve`]'s; without the tools a test prints a note and passes, unless `CI`
//! is set.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use nehr_probe::mock::{MockArgs, MockControl};
use serde_json::Value;

use crate::serve::{
    Daemon, REPO, ServeProcess, assert_no_secret, dashboard, eventually, get, mock, promtool_check_metrics, query,
    start_prometheus, substitute, tool, value,
};
use crate::support::{PASSWORD, USERNAME, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_is_scraped_by_a_real_prometheus_and_the_dashboard_and_rules_work() {
    let (Some(prometheus), Some(promtool)) = (tool("prometheus", "prometheus"), tool("promtool", "prometheus")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let mock = mock(dir.path(), MockArgs::default()).await;
    let serve = ServeProcess::start(&["--url", &mock.url(), "--username", USERNAME, "--interval", "200ms"]);
    let config = format!(
        r#"
global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}
rule_files: ["{REPO}/deploy/prometheus/nehr-probe.rules.yml"]
scrape_configs:
  - job_name: nehr_probe
    static_configs: [{{targets: ["{addr}"]}}]
  - job_name: nehr_probe_blackbox
    metrics_path: /probe
    params: {{target: [default]}}
    static_configs: [{{targets: ["{addr}"]}}]
"#,
        addr = serve.addr
    );
    let (_prom, base) = start_prometheus(&prometheus, dir.path(), &config, &client).await;
    let limit = Duration::from_secs(15);

    // Healthy: success 1, a latency quantile from the histogram, a blackbox probe.
    let up = eventually(&client, &base, r#"nehr_probe_success{job="nehr_probe",target="default"}"#, limit, |r| {
        value(r) == Some(1.0)
    })
    .await;
    assert_eq!(up[0]["metric"]["target"], "default");
    let p90 = r#"histogram_quantile(0.9, sum by (le) (rate(nehr_probe_request_duration_seconds_bucket{target="default"}[10s])))"#;
    let q = eventually(&client, &base, p90, limit, |r| value(r).is_some_and(|v| v.is_finite() && v > 0.0)).await;
    assert!(value(&q).unwrap() < 1.0, "p90 of the mock's latency: {q:?}");
    eventually(&client, &base, r#"probe_success{job="nehr_probe_blackbox"}"#, limit, |r| value(r) == Some(1.0)).await;
    eventually(&client, &base, r#"nehr_probe_outcome{job="nehr_probe_blackbox",outcome="ok"}"#, limit, |r| {
        value(r) == Some(1.0)
    })
    .await;
    let (_, metrics) = get(&client, &serve.url("/metrics")).await;
    let (_, probe) = get(&client, &serve.url("/probe")).await;
    promtool_check_metrics(&promtool, "/metrics", &metrics);
    promtool_check_metrics(&promtool, "/probe", &probe);
    assert!(metrics.contains("process_resident_memory_bytes"), "{metrics}");

    // Answers break the schema: violations are counted by path.
    mock.control(&MockControl { invalid_body_rate: Some(1.0), ..Default::default() }).unwrap();
    let v = eventually(&client, &base, "nehr_probe_schema_violations_total > 0", limit, |r| !r.is_empty()).await;
    assert!(v[0]["metric"]["path"].as_str().is_some_and(|p| p.starts_with("/result")), "{v:?}");

    // The login fails: success drops to 0 and the outcome is counted.
    mock.control(&MockControl { error_rate: Some(1.0), invalid_body_rate: Some(0.0), ..Default::default() }).unwrap();
    eventually(&client, &base, r#"nehr_probe_success{job="nehr_probe"}"#, limit, |r| value(r) == Some(0.0)).await;
    eventually(&client, &base, r#"nehr_probe_requests_total{outcome="server_error"} > 0"#, limit, |r| !r.is_empty())
        .await;
    eventually(&client, &base, r#"nehr_probe_outcome{job="nehr_probe_blackbox",outcome="server_error"}"#, limit, |r| {
        value(r) == Some(1.0)
    })
    .await;
    let (_, probe) = get(&client, &serve.url("/probe")).await;
    promtool_check_metrics(&promtool, "/probe of a failure", &probe);
    assert!(probe.contains("probe_success 0\n") && probe.contains("probe_http_status_code 500\n"), "{probe}");

    dashboard_queries_have_data(&client, &base).await;
    rules_load_and_evaluate(&client, &base).await;

    // The landing page tells why; nothing anywhere shows the password or a token.
    let (code, page) = get(&client, &serve.url("/")).await;
    assert_eq!(code, 200);
    assert!(page.contains("server error (HTTP 500)") && page.contains(">server_error</td>"), "{page}");
    let (_, metrics) = get(&client, &serve.url("/metrics")).await;
    let all_series = reqwest::Url::parse_with_params(
        &format!("{base}/api/v1/series"),
        [("match[]", r#"{__name__=~"nehr_probe_.+|probe_.+"}"#)],
    )
    .unwrap();
    let series = get(&client, all_series.as_str()).await.1;
    assert!(series.contains("nehr_probe_requests_total"), "{series}");
    for (what, text) in [("/metrics", &metrics), ("/probe", &probe), ("/", &page), ("Prometheus series", &series)] {
        assert_no_secret(what, text);
    }

    // SIGTERM: a clean stop; one log line per change of outcome, not one per probe.
    let (code, log) = serve.terminate();
    assert_eq!(code, Some(0), "{log:?}");
    let text = log.join("\n");
    assert_no_secret("the log", &text);
    assert!(text.contains("target default: ok: valid bearer token"), "{text}");
    assert!(text.contains("ok -> invalid_body: invalid body: /result"), "{text}");
    assert!(text.contains("invalid_body -> server_error: server error (HTTP 500)"), "{text}");
    assert!(log.len() <= 6, "more than one line per change: {text}");
    assert!(log.last().is_some_and(|l| l.ends_with("stopped")), "{text}");
    assert!(log.iter().all(|l| l.starts_with("nehr-probe serve: ")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_push_reaches_a_pushgateway_and_its_textfile_passes_promtool() {
    let (Some(gateway), Some(promtool)) =
        (tool("prometheus-pushgateway", "prometheus-pushgateway"), tool("promtool", "prometheus"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let args = ["--web.listen-address=127.0.0.1:0".to_string(), "--log.level=info".to_string()];
    let mut gw = Daemon::spawn("pushgateway", &gateway, &args, dir.path().join("pushgateway.log"));
    let base = format!("http://{}", gw.listening().await);
    gw.wait_ready(&client, &format!("{base}/-/ready")).await;
    let mock = mock(dir.path(), MockArgs::default()).await;
    let textfile = dir.path().join("nehr.prom");
    let push = |url: String, textfile: PathBuf, base: String| {
        tokio::task::spawn_blocking(move || {
            let tf = textfile.to_str().unwrap();
            let args =
                ["check", "--url", &url, "--username", USERNAME, "--name", "lab", "--textfile", tf, "--push", &base];
            run(&args, &[("NEHR_PROBE_PASSWORD", PASSWORD)])
        })
    };

    let r = push(mock.url(), textfile.clone(), base.clone()).await.unwrap();
    assert_eq!(r.code, Some(0), "{r:?}");
    let pushed = get(&client, &format!("{base}/metrics")).await.1;
    let host = nehr_probe::check::push::instance_name();
    let group = |line: &str, name: &str| {
        line.starts_with(&format!("{name}{{"))
            && line.contains(&format!("instance=\"{host}\""))
            && line.contains("job=\"nehr_probe\"")
            && line.contains("target=\"lab\"")
    };
    let success: Vec<&str> = pushed.lines().filter(|l| group(l, "nehr_probe_success")).collect();
    assert_eq!(success.len(), 1, "{pushed}");
    assert!(success[0].ends_with(" 1"), "{pushed}");
    assert!(
        pushed
            .lines()
            .any(|l| group(l, "nehr_probe_requests_total") && l.contains("outcome=\"ok\"") && l.ends_with(" 1"))
    );
    assert!(pushed.lines().any(|l| group(l, "push_time_seconds")), "{pushed}");
    promtool_check_metrics(&promtool, "the textfile", &std::fs::read_to_string(&textfile).unwrap());

    // A failing login is pushed too, replacing the group: CRITICAL, success 0.
    mock.control(&MockControl { error_rate: Some(1.0), ..Default::default() }).unwrap();
    let r = push(mock.url(), textfile.clone(), base.clone()).await.unwrap();
    assert_eq!(r.code, Some(2), "{r:?}");
    let pushed = get(&client, &format!("{base}/metrics")).await.1;
    let success: Vec<&str> = pushed.lines().filter(|l| group(l, "nehr_probe_success")).collect();
    assert!(success.len() == 1 && success[0].ends_with(" 0"), "{pushed}");
    assert!(
        pushed.lines().any(|l| group(l, "nehr_probe_requests_total")
            && l.contains("outcome=\"server_error\"")
            && l.ends_with(" 1"))
    );
    assert!(
        !pushed
            .lines()
            .any(|l| group(l, "nehr_probe_requests_total") && l.contains("outcome=\"ok\"") && l.ends_with(" 1"))
    );
    promtool_check_metrics(&promtool, "the textfile of a failure", &std::fs::read_to_string(&textfile).unwrap());
    assert_no_secret("the Pushgateway", &pushed);
    assert_no_secret("check's output", &format!("{}{}", r.stdout, r.stderr));
}

#[test]
fn check_push_to_nowhere_is_unknown_with_the_verdict_and_one_clear_line() {
    let (_refusing, addr) = crate::support::refused_addr();
    let url = format!("http://{addr}");
    // The probe's verdict is still shown; the failed delivery makes it UNKNOWN.
    let r = run(&["check", "--mock", "--push", &url], &[]);
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.stdout.starts_with("NEHR-TOKEN OK - valid bearer token") && r.stdout.lines().count() == 1, "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(r.stderr.starts_with(&format!("nehr-probe: cannot push to the Pushgateway at {url}/: ")), "{}", r.stderr);
    // A bad URL is a usage error, found before any probe.
    let r = run(&["check", "--mock", "--push", "http://user:hunter2@127.0.0.1:9/"], &[]);
    assert_eq!(r.code, Some(3), "{r:?}");
    crate::support::assert_one_clear_error(&r);
    assert!(r.stderr.contains("credentials do not belong") && !r.stderr.contains("hunter2"), "{}", r.stderr);
}

#[test]
fn promtool_accepts_the_config_the_rules_and_their_tests() {
    let Some(promtool) = tool("promtool", "prometheus") else { return };
    let dir = format!("{REPO}/deploy/prometheus");
    for args in [
        &["check", "config", "prometheus.yml"][..],
        &["check", "rules", "nehr-probe.rules.yml"],
        &["test", "rules", "nehr-probe.rules.test.yml"],
    ] {
        let out = Command::new(&promtool).args(args).current_dir(&dir).output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "promtool {args:?}: {said}");
    }
}

#[test]
fn the_dashboard_is_importable_with_a_datasource_and_a_target_variable() {
    let dash = dashboard();
    assert_eq!(dash["uid"], "nehr-probe");
    assert!(dash["id"].is_null(), "an importable dashboard has no id");
    let vars = dash["templating"]["list"].as_array().unwrap();
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no ${name} variable"));
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    assert_eq!(var("target")["type"], "query");
    assert_eq!(var("target")["includeAll"], true);
    let mut ids = std::collections::HashSet::new();
    let mut titles = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id {}", p["id"]);
        assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "panel {}", p["title"]);
            let expr = t["expr"].as_str().unwrap();
            assert!(expr.contains("target=~\"$target\"") || expr.starts_with("up{"), "no $target in {expr}");
        }
        titles.push(p["title"].as_str().unwrap().to_string());
    }
    for want in [
        "Login",
        "Exporter up",
        "Login latency",
        "Calls by outcome",
        "Schema violations by path",
        "Token lifetime",
        "Request rate",
    ] {
        assert!(titles.iter().any(|t| t == want), "no {want:?} panel in {titles:?}");
    }
    let latency = dash["panels"].as_array().unwrap().iter().find(|p| p["title"] == "Login latency").unwrap();
    let exprs: Vec<&str> = latency["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap()).collect();
    for q in ["0.5", "0.9", "0.99"] {
        assert!(
            exprs.iter().any(|e| e.starts_with(&format!("histogram_quantile({q}, "))
                && e.contains("nehr_probe_request_duration_seconds_bucket")),
            "{exprs:?}"
        );
    }
}

/// Every query of the dashboard is valid PromQL with data, and so are its variables.
/// The certificate's series exists for https targets only, and the mock speaks http;
/// dropped requests are `load --metrics-listen`'s only: their queries must be valid
/// (`query` checks that), and have no data here.
async fn dashboard_queries_have_data(client: &reqwest::Client, base: &str) {
    let dash = dashboard();
    let mut exprs = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = substitute(t["expr"].as_str().unwrap());
            let r = query(client, base, &expr).await;
            let elsewhere = expr.contains("nehr_probe_tls_cert_expiry_timestamp_seconds")
                || expr.contains("nehr_probe_dropped_requests_total");
            assert!(!r.is_empty() || elsewhere, "panel {:?}: no data for {expr}", panel["title"]);
            exprs += 1;
        }
    }
    assert!(exprs >= 12, "{exprs} queries");
    for var in dash["templating"]["list"].as_array().unwrap().iter().filter(|v| v["type"] == "query") {
        let def = substitute(var["definition"].as_str().unwrap());
        let inner = def.strip_prefix("label_values(").and_then(|s| s.strip_suffix(')')).unwrap();
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/api/v1/label/{}/values", label.trim()),
            [("match[]", selector.trim())],
        )
        .unwrap();
        let v: Value = serde_json::from_str(&get(client, url.as_str()).await.1).unwrap();
        assert!(v["data"].as_array().is_some_and(|a| !a.is_empty()), "variable {}: {v}", var["name"]);
    }
}

/// Prometheus loaded the alert rules and evaluates them without error.
async fn rules_load_and_evaluate(client: &reqwest::Client, base: &str) {
    let rules: Value = serde_json::from_str(&get(client, &format!("{base}/api/v1/rules")).await.1).unwrap();
    let all: Vec<&Value> =
        rules["data"]["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).collect();
    assert_eq!(all.len(), 11, "{rules}");
    for r in &all {
        assert_ne!(r["health"], "err", "rule {}: {}", r["name"], r["lastError"]);
    }
}
