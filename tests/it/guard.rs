//! The exporter cannot be turned against the target or knocked over by its clients: a
//! flood of `/probe` requests makes at most one login per target per
//! `--probe-min-interval`; `--web-config` serves TLS with a test CA, client
//! certificates and basic auth the way Prometheus exporters do, and a real Prometheus
//! scrapes through it; idle and slow sockets do not stop `/metrics`; SIGHUP reads
//! `--config` again without losing counters.
//!
//! Certificates are made for each test with the openssl command line (Debian's
//! `openssl`, which `.ci/run` installs); without it a test prints a note and passes,
//! unless `CI` is set.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nehr_probe::mock::{MockArgs, MockServer};
use nehr_probe::serve::{Exporter, Log};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::serve::{ServeProcess, eventually, get, mock, serve_args, start_prometheus, tool, value};
use crate::support::{PASSWORD, USERNAME};

/// A test CA, a server certificate for 127.0.0.1 and a client certificate signed by it,
/// as `ca.crt`, `server.{crt,key}`, `client.{crt,key}` in `dir`.
fn make_pki(dir: &Path) -> bool {
    tool("openssl", "openssl").is_some_and(|openssl| {
        let run = |args: &[&str]| {
            let out = std::process::Command::new(&openssl).current_dir(dir).args(args).output().unwrap();
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        run(&[
            &["req", "-x509"],
            &ec[..],
            &["-days", "2", "-subj", "/CN=nehr-probe test CA", "-keyout", "ca.key", "-out", "ca.crt"],
            &["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
        ]
        .concat());
        for (name, usage, san) in [("server", "serverAuth", "IP:127.0.0.1"), ("client", "clientAuth", "DNS:prometheus")]
        {
            let ext = format!("{name}.ext");
            std::fs::write(
                dir.join(&ext),
                format!("subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage={usage}\n"),
            )
            .unwrap();
            let (key, csr, crt) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"));
            run(&[&["req"], &ec[..], &["-subj", &format!("/CN={name}"), "-keyout", &key, "-out", &csr]].concat());
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &crt,
            ]);
        }
        true
    })
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

/// A client that trusts the test CA, with the client certificate when `identity`. No
/// connection is kept: each request makes a handshake under the config in force.
fn https_client(dir: &Path, identity: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .tls_certs_only([reqwest::Certificate::from_pem(&read(dir, "ca.crt")).unwrap()]);
    if identity {
        let pem = [read(dir, "client.crt"), read(dir, "client.key")].concat();
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

fn collecting_log() -> (Log, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    (Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string())), lines)
}

/// A `--config` of mocks by name, the password file beside it.
fn write_config(dir: &Path, targets: &[(&str, &MockServer)]) -> PathBuf {
    std::fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
    let text: String = targets
        .iter()
        .map(|(name, m)| {
            format!(
                "[targets.{name}]\nurl = \"{}\"\nusername = \"{USERNAME}\"\npassword_file = \"password\"\n",
                m.url()
            )
        })
        .collect();
    let path = dir.join("targets.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn logins(m: &MockServer) -> u64 {
    let s = m.stats();
    s.ok + s.invalid_body + s.unauthorized + s.server_error + s.bad_request
}

/// The sample of `series` (name with labels, as printed) in an exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_flood_makes_at_most_one_login_per_target_per_second_and_reports_right() {
    let dir = tempfile::tempdir().unwrap();
    let good = mock(dir.path(), MockArgs::default()).await;
    let bad = mock(dir.path(), MockArgs { error_rate: 1.0, ..MockArgs::default() }).await;
    let config = write_config(dir.path(), &[("good", &good), ("bad", &bad)]);
    let args = serve_args(&["--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--interval", "1h"]);
    let (log, _) = collecting_log();
    let exporter = Exporter::start(&args, log).await.unwrap();
    let base = format!("http://{}", exporter.addr());
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();

    // Twenty clients per target, each asking again as soon as it has an answer, 3 s.
    let start = Instant::now();
    let flood = Duration::from_secs(3);
    let mut tasks = Vec::new();
    for target in ["good", "bad"] {
        for _ in 0..20 {
            let (client, url) = (client.clone(), format!("{base}/probe?target={target}"));
            tasks.push(tokio::spawn(async move {
                let mut answers = Vec::new();
                while start.elapsed() < flood {
                    answers.push(get(&client, &url).await);
                }
                (target, answers)
            }));
        }
    }
    let mut answered = 0;
    for t in tasks {
        let (target, answers) = t.await.unwrap();
        for (code, body) in answers {
            answered += 1;
            assert_eq!(code, 200, "{body}");
            let (success, outcome) = if target == "good" { (1.0, "ok") } else { (0.0, "server_error") };
            assert_eq!(sample(&body, "probe_success"), Some(success), "{target}: {body}");
            assert_eq!(sample(&body, &format!("nehr_probe_outcome{{outcome=\"{outcome}\"}}")), Some(1.0), "{body}");
            let age = sample(&body, "nehr_probe_probe_age_seconds").expect("an age");
            assert!((0.0..1.5).contains(&age), "age {age}: {body}");
        }
    }
    let took = start.elapsed().as_secs_f64();
    // One login at start (the loop's), then at most one per second.
    let most = took.floor() as u64 + 1;
    for (name, m) in [("good", &good), ("bad", &bad)] {
        let n = logins(m);
        assert!((2..=most).contains(&n), "{name}: {n} logins in {took:.1} s for {answered} answers");
    }
    assert!(answered > 200, "the flood was a flood: {answered} answers");
    // Every login counts once in /metrics, whoever asked for it.
    let (_, metrics) = get(&client, &format!("{base}/metrics")).await;
    let counted = sample(&metrics, "nehr_probe_requests_total{outcome=\"ok\",target=\"good\"}");
    assert_eq!(counted, Some(logins(&good) as f64), "{metrics}");
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_config_serves_tls_with_a_test_ca_basic_auth_and_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    if !make_pki(dir.path()) {
        return;
    }
    let web = dir.path().join("web.yml");
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let users = format!("basic_auth_users:\n  prometheus: '{}'\n", hash("s3cret"));
    let headers = "http_server_config:\n  headers:\n    X-Frame-Options: deny\n";
    std::fs::write(&web, format!("{tls}{users}{headers}")).unwrap();
    let args =
        serve_args(&["--mock", "--listen", "127.0.0.1:0", "--interval", "1h", "--web-config", web.to_str().unwrap()]);
    let (log, lines) = collecting_log();
    let exporter = Exporter::start(&args, log).await.unwrap();
    let base = format!("https://127.0.0.1:{}", exporter.addr().port());
    let client = https_client(dir.path(), false);
    let metrics = format!("{base}/metrics");

    let r = client.get(&metrics).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"nehr-probe\"");
    assert_eq!(r.headers()["x-frame-options"], "deny", "headers on refusals too");
    for (user, password) in [("prometheus", "wrong"), ("nobody", "s3cret"), ("prometheus", "")] {
        let r = client.get(&metrics).basic_auth(user, Some(password)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{user}:{password}");
    }
    for path in ["/metrics", "/probe", "/", "/healthz", "/nope"] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without credentials");
    }
    let r = client.get(&metrics).basic_auth("prometheus", Some("s3cret")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "deny");
    assert!(r.text().await.unwrap().contains("nehr_probe_build_info"));
    let r = client.get(format!("{base}/probe")).basic_auth("prometheus", Some("s3cret")).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("probe_success 1"));

    // Plain http on the TLS port: a 400 that says to use https, then the connection closes.
    let mut plain = TcpStream::connect(exporter.addr()).await.unwrap();
    plain.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.0 400 ") && answer.contains("https://"), "{answer}");
    // A client that does not trust the test CA gets no answer at all.
    let untrusting = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(untrusting.get(&metrics).send().await.is_err());

    // Client certificates required: written while it runs, read again within a second.
    let mtls = "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n";
    std::fs::write(&web, format!("{tls}{mtls}{users}")).unwrap();
    let with_cert = https_client(dir.path(), true);
    let start = Instant::now();
    while client.get(&metrics).basic_auth("prometheus", Some("s3cret")).send().await.is_ok() {
        assert!(start.elapsed() < Duration::from_secs(5), "the change was not read: {:?}", lines.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = with_cert.get(&metrics).basic_auth("prometheus", Some("s3cret")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-frame-options").is_none(), "the new file has no headers");

    // A broken edit is logged and changes nothing.
    std::fs::write(&web, format!("{tls}{mtls}basic_auth_users:\n  prometheus: s3cret\n")).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = with_cert.get(&metrics).basic_auth("prometheus", Some("s3cret")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(client.get(&metrics).send().await.is_err(), "still no entry without a certificate");
    exporter.stop().await;
    let log = lines.lock().unwrap().join("\n");
    assert!(log.contains("serving https://127.0.0.1:"), "{log}");
    assert!(log.contains("line 7: basic_auth_users: the value of \"prometheus\" is not a bcrypt hash"), "{log}");
    assert!(log.contains("keeping the config in force") && !log.contains("s3cret"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_through_tls_config_and_basic_auth() {
    let Some(prometheus) = tool("prometheus", "prometheus") else { return };
    let dir = tempfile::tempdir().unwrap();
    if !make_pki(dir.path()) {
        return;
    }
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: '{}'\n",
            hash("scrape-pass")
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("scrape.password"), "scrape-pass\n").unwrap();
    let serve = ServeProcess::start(&["--mock", "--interval", "500ms", "--web-config", web.to_str().unwrap()]);
    let d = dir.path().display();
    let config = format!(
        r#"
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: secured
    scheme: https
    tls_config: {{ca_file: "{d}/ca.crt"}}
    basic_auth: {{username: prometheus, password_file: "{d}/scrape.password"}}
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
  - job_name: no_password
    scheme: https
    tls_config: {{ca_file: "{d}/ca.crt"}}
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"#,
        port = serve.addr.port()
    );
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let (_prom, base) = start_prometheus(&prometheus, dir.path(), &config, &client).await;
    let limit = Duration::from_secs(20);
    eventually(&client, &base, r#"up{job="secured"}"#, limit, |r| value(r) == Some(1.0)).await;
    eventually(&client, &base, r#"nehr_probe_success{job="secured"}"#, limit, |r| value(r) == Some(1.0)).await;
    eventually(&client, &base, r#"up{job="no_password"}"#, limit, |r| value(r) == Some(0.0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_idle_sockets_do_not_stop_metrics_answering_quickly() {
    // Margins a crowded machine meets, each still well short of what a server held up by
    // idle sockets would take: it would answer only once they timed out (the header
    // timeout), or never close them.
    let header_timeout = Duration::from_secs(4);
    let args = serve_args(&["--mock", "--listen", "127.0.0.1:0", "--interval", "1h", "--header-timeout", "4s"]);
    let (log, _) = collecting_log();
    let exporter = Exporter::start(&args, log).await.unwrap();
    let addr = exporter.addr();
    let mut idle = Vec::new();
    for i in 0..400 {
        // Before the connection exists, so before the server can start its clock on it.
        let opened = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        // Half send nothing; half a slowloris: part of a request, never its end.
        if i % 2 == 1 {
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        }
        idle.push((opened, s));
    }
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let start = Instant::now();
    let (code, body) = get(&client, &format!("http://{addr}/metrics")).await;
    let took = start.elapsed();
    assert_eq!(code, 200);
    assert!(body.contains("nehr_probe_build_info"));
    assert!(took < header_timeout / 2, "/metrics took {took:?} beside 400 idle sockets");

    // The idle ones are closed after --header-timeout: not before, nor long after.
    let mut buf = [0u8; 256];
    for (opened, s) in idle.iter_mut().step_by(37) {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await.expect("closed in time");
        assert!(matches!(n, Ok(0) | Err(_)), "closed without an answer: {n:?}");
        let held = opened.elapsed();
        assert!(held >= header_timeout && held < header_timeout * 2, "an idle socket held for {held:?}");
    }
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_slow_clients_give_way_within_the_header_timeout() {
    let argv =
        ["--mock", "--listen", "127.0.0.1:0", "--interval", "1h", "--max-connections", "20", "--header-timeout", "1s"];
    let (log, _) = collecting_log();
    let exporter = Exporter::start(&serve_args(&argv), log).await.unwrap();
    let addr = exporter.addr();
    let mut idle = Vec::new();
    for _ in 0..30 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let start = Instant::now();
    let (code, _) = get(&client, &format!("http://{addr}/healthz")).await;
    assert_eq!(code, 200);
    assert!(start.elapsed() < Duration::from_secs(4), "waited {:?} for a slot", start.elapsed());

    // Too large a head, and a body where none is taken.
    let r = client.get(format!("http://{addr}/metrics")).header("X-Big", "x".repeat(20_000)).send().await.unwrap();
    assert_eq!(r.status(), 431);
    let r = client.get(format!("http://{addr}/metrics")).body("x".repeat(100)).send().await.unwrap();
    assert_eq!(r.status(), 413);
    drop(idle);
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reads_the_config_again_keeping_counters_and_a_broken_file_keeps_the_targets() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        mock(dir.path(), MockArgs::default()).await,
        mock(dir.path(), MockArgs::default()).await,
        mock(dir.path(), MockArgs::default()).await,
    );
    let config = write_config(dir.path(), &[("alpha", &a), ("beta", &b)]);
    let serve = ServeProcess::start(&["--config", config.to_str().unwrap(), "--interval", "200ms"]);
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let beta_ok = "nehr_probe_requests_total{outcome=\"ok\",target=\"beta\"}";
    let wait_for = |want: &'static str, what: f64| {
        let (client, url) = (client.clone(), serve.url("/metrics"));
        async move {
            let start = Instant::now();
            loop {
                let (_, text) = get(&client, &url).await;
                if sample(&text, want).is_some_and(|v| v >= what) {
                    return text;
                }
                assert!(start.elapsed() < Duration::from_secs(15), "no {want} >= {what}: {text}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let before = sample(&wait_for(beta_ok, 3.0).await, beta_ok).unwrap();

    // alpha leaves, gamma comes, beta stays and keeps counting from where it was.
    write_config(dir.path(), &[("beta", &b), ("gamma", &c)]);
    serve.signal("HUP");
    let text = wait_for("nehr_probe_requests_total{outcome=\"ok\",target=\"gamma\"}", 1.0).await;
    assert!(!text.contains("target=\"alpha\""), "alpha is gone: {text}");
    assert!(sample(&text, beta_ok).unwrap() >= before, "beta's counter went on: {text}");

    // A broken file: one line says why, both targets go on.
    std::fs::write(&config, "[targets.beta]\nurl = 7\n").unwrap();
    serve.signal("HUP");
    let gamma = sample(&wait_for(beta_ok, 0.0).await, "nehr_probe_requests_total{outcome=\"ok\",target=\"gamma\"}");
    let after = wait_for("nehr_probe_requests_total{outcome=\"ok\",target=\"gamma\"}", gamma.unwrap() + 2.0).await;
    assert!(after.contains("target=\"beta\""), "{after}");
    let (code, log) = serve.terminate();
    assert_eq!(code, Some(0), "{log:?}");
    let log = log.join("\n");
    assert!(log.contains("again: added gamma; removed alpha; kept beta"), "{log}");
    assert!(log.contains("line 2") && log.contains("still probing beta, gamma"), "{log}");
    assert!(!log.contains(PASSWORD), "{log}");
}
