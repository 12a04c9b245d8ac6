//! `serve` end to end: `/probe` and the scrape budget, its start-up errors, the systemd
//! unit; and the daemons and helpers the monitoring tests share (a real Prometheus,
//! Pushgateway, promtool, the mock, a `serve` process). The stack itself is tested in
//! [`crate::stack`].
//!
//! The Prometheus tools come from Debian (`prometheus`, `prometheus-pushgateway`, which
//! `.ci/run` installs), as does `systemd-analyze` (`systemd`), which checks the unit
//! file. Each test starts its own on a loopback port the tool binds itself (port 0, read
//! back from its log) with temporary storage and kills it on drop. Without them a test
//! prints a note and passes, unless `CI` is set: then a missing tool is a failure.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nehr_probe::cli::{Cli, Command as Sub};
use nehr_probe::mock::{Latency, MockArgs, MockServer};
use nehr_probe::serve::Exporter;
use serde_json::Value;

use crate::support::{PASSWORD, USERNAME, nehr_probe, run};

pub(crate) const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A tool on PATH (or in /usr/bin), or `None` with a note; a failure under CI. `package`
/// is the Debian package it comes in (`.ci/run` installs them all).
pub(crate) fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found =
        std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]).map(|d| d.join(name)).find(|p| p.is_file());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "{name} is not installed; CI needs it (apt-get install {package})");
        eprintln!("note: skipping: {name} is not installed (apt-get install {package})");
    }
    found
}

/// A child process killed on drop; its output goes to a log file shown when it fails.
pub(crate) struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub(crate) fn spawn(name: &'static str, program: &Path, args: &[String], log: PathBuf) -> Daemon {
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Daemon { name, child, log }
    }

    /// The address the daemon listens on, from its log: Prometheus and the Pushgateway,
    /// told `--web.listen-address=127.0.0.1:0`, log the port they were given (at `info`):
    /// `msg="Listening on" address=127.0.0.1:PORT`.
    pub(crate) async fn listening(&mut self) -> String {
        let start = Instant::now();
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let said = log.lines().filter(|l| l.contains("msg=\"Listening on\"")).find_map(|l| {
                let (_, rest) = l.split_once(" address=")?;
                rest.split_whitespace().next().map(|a| a.trim_matches('"').to_string())
            });
            if let Some(addr) = said {
                return addr;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before it listened:\n{}", self.name, self.log_tail());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{} not listening in 20 s:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until `url` answers 200.
    pub(crate) async fn wait_ready(&mut self, client: &reqwest::Client, url: &str) {
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(url).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before it was ready:\n{}", self.name, self.log_tail());
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{} not ready in 20 s:\n{}", self.name, self.log_tail());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Prometheus server on a loopback port of its own, scraping what `config` says.
pub(crate) async fn start_prometheus(
    bin: &Path,
    dir: &Path,
    config: &str,
    client: &reqwest::Client,
) -> (Daemon, String) {
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config).unwrap();
    let args = [
        format!("--config.file={}", config_file.display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        "--web.listen-address=127.0.0.1:0".to_string(),
        "--log.level=info".to_string(),
    ];
    let mut d = Daemon::spawn("prometheus", bin, &args, dir.join("prometheus.log"));
    let base = format!("http://{}", d.listening().await);
    d.wait_ready(client, &format!("{base}/-/ready")).await;
    (d, base)
}

/// Runs an instant query; invalid PromQL fails the test with Prometheus' message.
pub(crate) async fn query(client: &reqwest::Client, base: &str, expr: &str) -> Vec<Value> {
    let url = reqwest::Url::parse_with_params(&format!("{base}/api/v1/query"), [("query", expr)]).unwrap();
    let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "success", "query {expr}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The first sample value of a query result.
pub(crate) fn value(result: &[Value]) -> Option<f64> {
    result.first()?["value"][1].as_str()?.parse().ok()
}

/// Queries until `done` holds, at most `limit`.
pub(crate) async fn eventually(
    client: &reqwest::Client,
    base: &str,
    expr: &str,
    limit: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let result = query(client, base, expr).await;
        if done(&result) {
            return result;
        }
        assert!(start.elapsed() < limit, "{expr} not as expected in {limit:?}: {result:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(crate) async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let r = client.get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (r.status().as_u16(), r.text().await.unwrap())
}

/// `promtool check metrics` on an exposition: no errors, no lint problems.
pub(crate) fn promtool_check_metrics(promtool: &Path, what: &str, text: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics on {what}: {said}\n{text}");
}

/// The first UUID in `text`: the mock's tokens are UUIDs, so one showing is a leak.
pub(crate) fn find_uuid(text: &str) -> Option<String> {
    text.as_bytes()
        .windows(36)
        .find(|w| {
            w.iter().enumerate().all(|(j, c)| match j {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
        })
        .map(|w| String::from_utf8_lossy(w).into_owned())
}

pub(crate) fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.contains(PASSWORD), "password in {what}: {text}");
    assert!(find_uuid(text).is_none(), "a token (UUID {:?}) in {what}: {text}", find_uuid(text));
}

/// The mock with the test account, so the password is distinctive.
pub(crate) async fn mock(dir: &Path, args: MockArgs) -> MockServer {
    let users = dir.join("users");
    std::fs::write(&users, format!("{USERNAME}:{PASSWORD}\n")).unwrap();
    MockServer::start(&MockArgs { users: Some(users), ..args }).await.unwrap()
}

/// The real `serve` binary, its stderr collected line by line.
pub(crate) struct ServeProcess {
    child: Child,
    pub(crate) lines: Arc<Mutex<Vec<String>>>,
    pub(crate) addr: SocketAddr,
}

impl ServeProcess {
    /// `serve ARGS --listen 127.0.0.1:0`.
    pub(crate) fn start(args: &[&str]) -> ServeProcess {
        let mut argv = vec!["serve"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--listen", "127.0.0.1:0"]);
        ServeProcess::start_argv(&argv)
    }

    /// The binary with exactly these arguments, which must make it serve.
    fn start_argv(argv: &[&str]) -> ServeProcess {
        let mut cmd = nehr_probe();
        cmd.args(argv).env("NEHR_PROBE_PASSWORD", PASSWORD);
        let mut child = cmd.spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let served = line.split_once("serving http://").or_else(|| line.split_once("serving https://"));
                if let Some(rest) = served.map(|(_, r)| r.to_string()) {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("serve did not start: {:?}", lines.lock().unwrap())
        });
        ServeProcess { child, lines, addr: addr.parse().unwrap() }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a signal (`HUP`, `TERM`) to the process.
    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap().success());
    }

    /// SIGTERM, then the exit code and everything it logged.
    pub(crate) fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(50));
        (status.code(), self.lines.lock().unwrap().clone())
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn dashboard() -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{REPO}/dashboards/nehr-probe.json")).unwrap()).unwrap()
}

/// Grafana's template variables, as a query of "All" targets over a short window.
pub(crate) fn substitute(expr: &str) -> String {
    expr.replace("${job}", ".*")
        .replace("$job", ".*")
        .replace("${target}", ".*")
        .replace("$target", ".*")
        .replace("$__rate_interval", "15s")
}

pub(crate) fn serve_args(argv: &[&str]) -> nehr_probe::serve::ServeArgs {
    let cli: Cli = clap::Parser::try_parse_from(["nehr-probe", "serve"].iter().chain(argv)).unwrap();
    match cli.command {
        Sub::Serve(args) => args,
        other => panic!("parsed as {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_takes_configured_names_only_and_fits_the_scrape_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let fast = mock(dir.path(), MockArgs::default()).await;
    let slow = mock(dir.path(), MockArgs { latency: Some(Latency::parse("3s").unwrap()), ..MockArgs::default() }).await;
    std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
    let config = dir.path().join("targets.toml");
    std::fs::write(
        &config,
        format!(
            "[targets.fast]\nurl = \"{}\"\nusername = \"{USERNAME}\"\npassword_file = \"password\"\n\n\
             [targets.slow]\nurl = \"{}\"\nusername = \"{USERNAME}\"\npassword_file = \"password\"\ntimeout = \"5s\"\n",
            fast.url(),
            slow.url()
        ),
    )
    .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    let log: nehr_probe::serve::Log = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
    let args = serve_args(&["--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--interval", "1h"]);
    let exporter = Exporter::start(&args, log).await.unwrap();
    let base = format!("http://{}", exporter.addr());
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();

    let (code, body) = get(&client, &format!("{base}/probe")).await;
    assert_eq!(code, 400);
    assert!(body.contains("one of: fast, slow"), "{body}");
    let evil = reqwest::Url::parse_with_params(&format!("{base}/probe"), [("target", fast.url())]).unwrap();
    let (code, body) = get(&client, evil.as_str()).await;
    assert_eq!(code, 400);
    assert!(body.contains("never a URL") && !body.contains("127.0.0.1"), "{body}");
    let (code, body) = get(&client, &format!("{base}/probe?target=fast")).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("probe_success 1\n") && body.contains("nehr_probe_outcome{outcome=\"ok\"} 1\n"), "{body}");

    // Prometheus would give up after 1 s: the probe ends as a timeout, not when the
    // slow target answers (3 s) or times out (5 s). That it ends within the second is
    // measured in tests/timing (deadlines.rs), where no other test runs beside it.
    let start = Instant::now();
    let r = client
        .get(format!("{base}/probe?target=slow"))
        .header("X-Prometheus-Scrape-Timeout-Seconds", "1")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(2500), "{:?}", start.elapsed());
    assert!(
        body.contains("probe_success 0\n") && body.contains("nehr_probe_outcome{outcome=\"timeout\"} 1\n"),
        "{body}"
    );

    let (code, body) = get(&client, &format!("{base}/healthz")).await;
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    assert_eq!(get(&client, &format!("{base}/nope")).await.0, 404);
    let (_, metrics) = get(&client, &format!("{base}/metrics")).await;
    for want in [
        "nehr_probe_requests_total{outcome=\"ok\",target=\"fast\"} 1",
        "nehr_probe_success{target=\"fast\"} 1",
        "nehr_probe_success{target=\"slow\"}",
        "nehr_probe_build_info{version=",
    ] {
        assert!(metrics.contains(want), "no {want} in {metrics}");
    }
    let (_, page) = get(&client, &format!("{base}/")).await;
    assert!(page.contains("href=\"probe?target=fast\"") && page.contains("href=\"probe?target=slow\""), "{page}");
    assert_no_secret("/metrics", &metrics);
    assert_no_secret("/", &page);
    exporter.stop().await;
    let log = lines.lock().unwrap().join("\n");
    assert!(log.contains("target fast: ok: valid bearer token"), "{log}");
    assert_no_secret("the log", &log);
}

#[test]
fn serve_start_up_errors_exit_2_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(&["serve", "--config", dir.path().join("missing.toml").to_str().unwrap()], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    crate::support::assert_one_clear_error(&r);
    assert!(r.stderr.contains("cannot read --config"), "{}", r.stderr);

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let r = run(&["serve", "--mock", "--listen", &addr], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    crate::support::assert_one_clear_error(&r);
    assert!(r.stderr.starts_with(&format!("nehr-probe: cannot listen on {addr}: ")), "{}", r.stderr);

    let r = run(&["serve"], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    crate::support::assert_one_clear_error(&r);
    assert!(r.stderr.contains("missing --url"), "{}", r.stderr);
}

/// The systemd unit in `deploy/` as systemd reads it, and its command line run for real:
/// `systemd-analyze verify` finds nothing to say; the `ExecStart` line (binary, config
/// and port swapped for the test's) serves metrics of the configured target; SIGTERM,
/// the unit's `KillSignal`, ends it with 0; and a bad config exits 2, the status the unit
/// does not restart on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_systemd_unit_verifies_and_its_command_line_serves() {
    let Some(analyze) = tool("systemd-analyze", "systemd") else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = mock(dir.path(), MockArgs::default()).await;
    std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
    let config = dir.path().join("targets.toml");
    std::fs::write(
        &config,
        format!(
            "[targets.production]\nurl = \"{}\"\nusername = \"{USERNAME}\"\npassword_file = \"password\"\n",
            server.url()
        ),
    )
    .unwrap();
    let binary = env!("CARGO_BIN_EXE_nehr-probe");
    let unit = std::fs::read_to_string(format!("{REPO}/deploy/nehr-probe.service")).unwrap();
    for (key, want) in [
        ("KillSignal", "SIGTERM"),
        ("RestartPreventExitStatus", "2"),
        ("Restart", "on-failure"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
    ] {
        let found = unit.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='));
        assert_eq!(found, Some(want), "{key}");
    }
    // The web config as shipped: all comments, so plain http without users.
    let web_config = dir.path().join("web-config.yml");
    std::fs::copy(format!("{REPO}/deploy/web-config.yml"), &web_config).unwrap();
    let unit = unit
        .replace("/usr/local/bin/nehr-probe", binary)
        .replace("/etc/nehr-probe/targets.toml", config.to_str().unwrap())
        .replace("/etc/nehr-probe/web-config.yml", web_config.to_str().unwrap())
        .replace("127.0.0.1:9464", "127.0.0.1:0");
    let unit_file = dir.path().join("nehr-probe.service");
    std::fs::write(&unit_file, &unit).unwrap();
    let verify = Command::new(&analyze).arg("verify").arg(&unit_file).output().unwrap();
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");

    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("an ExecStart line");
    // $NEHR_PROBE_ARGS comes from /etc/default/nehr-probe, absent here: no words.
    let words: Vec<&str> = exec.split_whitespace().filter(|w| *w != "$NEHR_PROBE_ARGS").collect();
    assert_eq!(words[0], binary);
    let serve = ServeProcess::start_argv(&words[1..]);
    let client = reqwest::Client::new();
    let metrics = serve.url("/metrics");
    let start = Instant::now();
    loop {
        let (_, text) = get(&client, &metrics).await;
        if text.contains("nehr_probe_success{target=\"production\"} 1") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no successful probe of the target: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, log) = serve.terminate();
    assert_eq!(code, Some(0), "{log:?}");

    std::fs::write(&config, "[targets.production]\nurl = 7\n").unwrap();
    let bad = Command::new(binary).args(&words[1..]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
}
