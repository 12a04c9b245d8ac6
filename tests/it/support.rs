//! Shared helpers of the integration tests: a hostile HTTP server on loopback that can
//! answer anything (garbage, truncation, resets, stalls, endless bodies) and hands the
//! requests it received back to the test; targets and probers aimed at it; and a runner
//! for the real binary.
//!
//! Everything here binds or connects to 127.0.0.1 only.

#![allow(dead_code)] // Each test module uses a different part of the kit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser;
use nehr_probe::call::secret::Secret;
use nehr_probe::call::target::{Credential, EXAMPLE_PASSWORD, EXAMPLE_USERNAME, TOKEN_PATH, Target};
use nehr_probe::call::validate::Validator;
use nehr_probe::call::{Observation, Prober};
use nehr_probe::cli::{Cli, Command as Sub};
use nehr_probe::load::{Finished, LoadArgs, execute};
use nehr_probe::mock::MockServer;
use nehr_probe::report::model::Shown;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A password distinctive enough that finding it anywhere in an output is a leak.
/// No character in it is escaped in JSON, so a plain substring search is meaningful.
pub const PASSWORD: &str = "Zebra#Quux-91377";
pub const USERNAME: &str = "MOH-4242";

/// One thing the hostile server does on a connection, after reading the request.
/// A script ends with a clean close (FIN) unless a step says otherwise.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes.
    Write(Vec<u8>),
    /// Wait.
    Sleep(Duration),
    /// Write these bytes one at a time, `every` apart.
    Trickle(Vec<u8>, Duration),
    /// Write `total` bytes of body in 64 KiB pieces (chunk-framed if `chunked`),
    /// generated on the fly: the server never holds the whole body either.
    Stream { total: u64, chunked: bool },
    /// Keep the connection open and never write again.
    Hold,
    /// Abort the connection: SO_LINGER 0, then close, so the peer gets a RST.
    Reset,
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Request>>,
    streamed: AtomicU64,
    finished: AtomicUsize,
}

/// A raw-TCP HTTP server on 127.0.0.1:0 that plays one [`Step`] script on every
/// connection. It runs on its own thread and runtime, so it serves while a test blocks
/// on a child process; dropping it stops it and closes every connection it holds.
pub struct HostileServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HostileServer {
    pub fn start(script: Vec<Step>) -> HostileServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared::default());
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("server runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let script = Arc::new(script);
                let mut conns = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                conns.spawn(serve(stream, Arc::clone(&script), Arc::clone(&state)));
                            }
                        }
                        Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    }
                }
                // Dropping the set aborts held connections; the runtime's drop closes them.
            });
        });
        HostileServer { addr, shared, stop: Some(stop), thread: Some(thread) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The getToken URL on this server.
    pub fn url(&self) -> String {
        format!("http://{}{TOKEN_PATH}", self.addr)
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Body bytes written by [`Step::Stream`] steps so far.
    pub fn streamed(&self) -> u64 {
        self.shared.streamed.load(Ordering::Relaxed)
    }

    /// Waits until `n` connections have ended their script (or failed writing), at most
    /// `limit`. Async, so the caller's runtime keeps driving its side of the connection.
    pub async fn wait_finished(&self, n: usize, limit: Duration) -> bool {
        let start = Instant::now();
        while self.shared.finished.load(Ordering::Relaxed) < n {
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(mut stream: TcpStream, script: Arc<Vec<Step>>, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let Some(request) = read_request(&mut stream).await else {
        shared.finished.fetch_add(1, Ordering::Relaxed);
        return;
    };
    shared.requests.lock().unwrap().push(request);
    let _ = play(&mut stream, &script, &shared).await;
    shared.finished.fetch_add(1, Ordering::Relaxed);
}

async fn play(stream: &mut TcpStream, script: &[Step], shared: &Shared) -> std::io::Result<()> {
    for step in script {
        match step {
            Step::Write(bytes) => stream.write_all(bytes).await?,
            Step::Sleep(d) => tokio::time::sleep(*d).await,
            Step::Trickle(bytes, every) => {
                for b in bytes {
                    stream.write_all(std::slice::from_ref(b)).await?;
                    tokio::time::sleep(*every).await;
                }
            }
            Step::Stream { total, chunked } => {
                let piece = vec![b' '; 64 * 1024];
                let mut left = *total;
                while left > 0 {
                    let n = left.min(piece.len() as u64) as usize;
                    if *chunked {
                        stream.write_all(format!("{n:x}\r\n").as_bytes()).await?;
                    }
                    stream.write_all(&piece[..n]).await?;
                    if *chunked {
                        stream.write_all(b"\r\n").await?;
                    }
                    shared.streamed.fetch_add(n as u64, Ordering::Relaxed);
                    left -= n as u64;
                }
                if *chunked {
                    stream.write_all(b"0\r\n\r\n").await?;
                }
            }
            Step::Hold => std::future::pending::<()>().await,
            Step::Reset => {
                stream.set_zero_linger()?;
                return Ok(());
            }
        }
    }
    stream.shutdown().await
}

/// Reads one request: head up to the blank line, then a Content-Length body.
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.splitn(3, ' ');
    let (method, path, version) = (first.next()?.to_string(), first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(Request { method, path, version, headers, body })
}

/// An HTTP/1.1 answer with a Content-Length and `Connection: close`.
pub fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A script answering `status` with a JSON body.
pub fn json_answer(status: &str, body: &str) -> Vec<Step> {
    vec![Step::Write(response(status, &[("Content-Type", "application/json")], body.as_bytes()))]
}

/// The example answer of the API document.
pub fn spec_answer() -> Value {
    serde_json::from_str(nehr_probe::call::validate::SPEC_EXAMPLE).expect("the spec's example is JSON")
}

/// The example answer with one edit applied, as a 200 script.
pub fn edited_answer(edit: impl FnOnce(&mut Value)) -> Vec<Step> {
    let mut v = spec_answer();
    edit(&mut v);
    json_answer("200 OK", &v.to_string())
}

/// A target at `url` logging in as [`USERNAME`] with [`PASSWORD`].
pub fn target(url: &str, timeout: Duration) -> Target {
    Target {
        url: url.parse().expect("test URL"),
        credentials: vec![Credential { username: USERNAME.into(), password: Secret::new(PASSWORD) }],
        timeout,
        max_body: 1 << 20,
        validator: Arc::new(Validator::builtin()),
        ca_cert: None,
        insecure: false,
        client_cert: None,
        tls_versions: Default::default(),
        http2: false,
        pinned: None,
        then: None,
        ledger: Default::default(),
        // Canned servers hand the one token of their answer to every login, as a server
        // that gives an account its live token again does; the tests of reused tokens
        // set `Forbid` themselves.
        token_reuse: nehr_probe::call::target::TokenReuse::SameAccount,
        wrong_password: None,
    }
}

/// One call to `target`, checking that nothing it returns can show the password.
pub async fn call_target(target: &Target) -> Observation {
    let prober = Prober::new(target).expect("prober");
    let obs = prober.call(0, Instant::now()).await;
    let shown = format!("{obs:?} {} {target:?}", obs.reason());
    assert!(!shown.contains(PASSWORD), "password in Debug output: {shown}");
    obs
}

/// One call to `url` with the given timeout.
pub async fn call(url: &str, timeout: Duration) -> Observation {
    call_target(&target(url, timeout)).await
}

/// Resident memory of this process in KiB, from /proc/self/status.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// The real binary, with a clean environment (no inherited `NEHR_PROBE_*`, no proxy)
/// and backtraces on, so a panic could not go unnoticed.
pub fn nehr_probe() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nehr-probe"));
    cmd.env_clear().env("RUST_BACKTRACE", "1").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Runs the binary with these arguments (and the test account's password in the
/// environment unless `env` says otherwise).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = nehr_probe();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    finish(cmd.spawn().expect("spawn nehr-probe"))
}

pub fn finish(child: std::process::Child) -> Run {
    let out = child.wait_with_output().expect("wait for nehr-probe");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `check` against `url` as the test account, with extra arguments.
pub fn check(url: &str, extra: &[&str]) -> Run {
    let mut args = vec!["check", "--url", url, "--username", USERNAME];
    args.extend_from_slice(extra);
    run(&args, &[("NEHR_PROBE_PASSWORD", PASSWORD)])
}

/// Bad input gets one clear error line, never a panic or a backtrace. Our own errors
/// are exactly one line; clap's add only its usage and help hints after the line.
/// Nothing else is printed but, for `check`, the same error as its UNKNOWN status line
/// on stdout ([`assert_unknown_line`]).
pub fn assert_one_clear_error(run: &Run) {
    let err = &run.stderr;
    assert!(!err.contains("panicked") && !err.contains("backtrace") && !err.contains("RUST_BACKTRACE"), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no error message");
    // clap's errors too: one line, no usage block.
    assert_eq!(lines.len(), 1, "more than one line: {err}");
    assert!(lines[0].starts_with("nehr-probe: "), "{err}");
    assert!(run.stdout.is_empty() || run.stdout == unknown_line(run), "stdout on a usage error: {}", run.stdout);
}

/// `check`'s usage error is on stdout too, as its UNKNOWN status line, so that Nagios
/// (which shows a plugin's stdout) says what is wrong.
pub fn assert_unknown_line(run: &Run) {
    assert_eq!(run.code, Some(3), "{run:?}");
    assert_one_clear_error(run);
    assert_eq!(run.stdout, unknown_line(run), "{run:?}");
}

/// The UNKNOWN status line that echoes `run`'s one error line.
fn unknown_line(run: &Run) -> String {
    let error = run.stderr.trim_end().strip_prefix("nehr-probe: ").unwrap_or(&run.stderr);
    format!("NEHR-TOKEN UNKNOWN - {}\n", error.replace('|', "/"))
}

// `load` in-process, shared by the load tests and the timing tests.

/// `load`'s flags as clap parses them, with `--quiet` first.
pub fn parse_load(args: &[&str]) -> LoadArgs {
    let mut argv = vec!["nehr-probe", "load", "--quiet"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}")).command {
        Sub::Load(a) => *a,
        other => panic!("not load: {other:?}"),
    }
}

/// A credentials file holding the example account, which the mock accepts.
pub fn example_account(dir: &Path) -> PathBuf {
    let path = dir.join("accounts");
    std::fs::write(&path, format!("{EXAMPLE_USERNAME}:{EXAMPLE_PASSWORD}\n")).unwrap();
    path
}

/// `load` in-process against `server` with these flags.
pub async fn load_against(server: &MockServer, dir: &Path, args: &[&str]) -> Shown {
    let url = server.url();
    let accounts = example_account(dir);
    let mut all = vec!["--url", url.as_str(), "--credentials", accounts.to_str().unwrap()];
    all.extend_from_slice(args);
    execute(&parse_load(&all), CancellationToken::new()).await.expect("load runs").shown
}

/// Whether `actual` is `want` give or take `tolerance`.
pub fn within(actual: f64, want: f64, tolerance: f64) -> bool {
    (actual - want).abs() <= tolerance
}

// Several `load` processes and `report` over a stream, for the segment tests.

/// Unix seconds `ahead` from now, as `--start-at` takes them.
pub fn start_in(ahead: Duration) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap() + ahead;
    format!("{:.3}", t.as_secs_f64())
}

/// The real binary's `load` against `url` as the example account, JSON on stdout.
pub fn spawn_load(url: &str, extra: &[&str]) -> std::process::Child {
    let mut cmd = nehr_probe();
    cmd.args(["load", "--quiet", "--format", "json", "--url", url, "--username", EXAMPLE_USERNAME]);
    cmd.args(extra).env("NEHR_PROBE_PASSWORD", EXAMPLE_PASSWORD);
    cmd.spawn().expect("spawn nehr-probe load")
}

/// `report` reading `input` from standard input.
pub fn report_stdin(input: &str, extra: &[&str]) -> Run {
    let mut cmd = nehr_probe();
    cmd.args(["report", "-"]).args(extra).stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn nehr-probe report");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    finish(child)
}

pub fn json_of(run: &Run) -> Value {
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

pub fn decoded(report: &Value) -> hdrhistogram::Histogram<u64> {
    nehr_probe::report::histogram::decode(report["histogram"].as_str().unwrap()).unwrap()
}

/// A mock answering every login after `ms` milliseconds.
pub async fn mock_at(ms: u64) -> MockServer {
    let latency = Some(nehr_probe::mock::Latency::Fixed(Duration::from_millis(ms)));
    MockServer::start(&nehr_probe::mock::MockArgs { latency, ..Default::default() }).await.unwrap()
}

/// A 6 s run at 100 rps against `server`, saved as `dir/name` (a `--baseline` to be).
pub async fn saved_run(server: &MockServer, dir: &Path, name: &str) -> PathBuf {
    let shown = load_against(server, dir, &["--rps", "100", "-d", "6s"]).await;
    let path = dir.join(name);
    std::fs::write(&path, shown.report.json()).unwrap();
    path
}

/// The verdict of `measure` in a comparison's JSON (`--compare-out`).
pub fn verdict(comparison: &Value, measure: &str) -> String {
    let m = comparison["measures"].as_array().unwrap().iter().find(|m| m["measure"] == measure);
    m.unwrap_or_else(|| panic!("no {measure} in {comparison:#}"))["verdict"].as_str().unwrap().to_string()
}

/// A loopback address nothing listens on, and nothing can begin to while the returned
/// socket lives: the socket is bound there and never listens, so every connection is
/// refused. (A port found free and let go could be anyone's by the time a test used it.)
pub fn refused_addr() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind 127.0.0.1:0");
    let addr = socket.local_addr().expect("local address");
    (socket, addr)
}

/// `load` in-process in the background, serving its live metrics (`--metrics-listen`)
/// on loopback under a `--name` of its own.
pub struct LiveLoad {
    /// Where its `/metrics` answers.
    pub listen: String,
    /// Its `--name`: the `target` label of its series.
    pub name: String,
    pub run: tokio::task::JoinHandle<anyhow::Result<Finished>>,
}

/// Starts `load` with these flags and live metrics on `127.0.0.1:0`, stopped by `stop`,
/// and returns once its `/metrics` answers, on the port `load` bound and reported.
pub async fn live_load(args: &[&str], stop: CancellationToken) -> LiveLoad {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let name = format!("live-{}-{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed));
    let mut argv = args.to_vec();
    argv.extend_from_slice(&["--metrics-listen", "127.0.0.1:0", "--name", &name]);
    let parsed = parse_load(&argv);
    let (bound, listening) = tokio::sync::oneshot::channel();
    let mut run = tokio::spawn(async move {
        nehr_probe::load::execute_with(&parsed, stop, |addr| {
            let _ = bound.send(addr);
        })
        .await
    });
    let listen = tokio::select! {
        Ok(addr) = listening => addr.to_string(),
        ended = &mut run => match ended.expect("load panicked") {
            Err(e) => panic!("load failed: {e:#}"),
            Ok(_) => panic!("load ended without serving its metrics"),
        },
    };
    let text = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{listen}/metrics"))
        .send()
        .await
        .and_then(|a| a.error_for_status())
        .unwrap_or_else(|e| panic!("load's metrics on {listen}: {e}"));
    let text = text.text().await.unwrap();
    assert!(text.contains(&format!("target=\"{name}\"")), "{text}");
    LiveLoad { listen, name, run }
}

/// A server that never answers, and `load` against it in the background with `extra`
/// flags and live metrics ([`live_load`]).
pub async fn silent_server_live_load(dir: &Path, extra: &[&str], stop: CancellationToken) -> (HostileServer, LiveLoad) {
    let server = HostileServer::start(vec![Step::Hold]);
    let accounts = example_account(dir);
    let url = server.url();
    let mut args = vec!["--url", url.as_str(), "--credentials", accounts.to_str().unwrap()];
    args.extend_from_slice(extra);
    let live = live_load(&args, stop).await;
    (server, live)
}
