//! Client certificates and TLS versions end to end, against real servers on loopback:
//! nginx (`nginx-light`, which `.ci/run` installs) with `ssl_verify_client on` and a
//! test CA, answering the documented token answer with `return 200`, and a second
//! server of it speaking TLS 1.2 only; python's `ssl` requiring a client certificate
//! (`CERT_REQUIRED`, under TLS 1.3 and 1.2) and serving TLS 1.0 only; and a raw socket
//! answering the ClientHello with a TLS 1.0 ServerHello, as servers that ignore the
//! `supported_versions` extension do. Certificates are made with the openssl command
//! line (tls_errors.rs's helpers). Each server runs in the test's own tempdir on a
//! loopback port and is killed on drop.
//!
//! Checked where users read it: `check`'s Nagios line, exit code and JSON (against
//! `schemas/check.schema.json`), `load`'s report (against its schema), `serve`'s
//! `/metrics` and `/probe` (through promtool), and the usage errors of bad client
//! certificates and keys, none of which shows a byte of a key.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nehr_probe::cli::{Cli, Command as Sub};
use nehr_probe::serve::Exporter;
use serde_json::Value;

use crate::load::assert_valid_report;
use crate::serve::{get, promtool_check_metrics, tool};
use crate::support::{PASSWORD, Run, USERNAME, assert_one_clear_error, assert_unknown_line, run, spec_answer};
use crate::tls_errors::{EC, make_ca, make_leaf, openssl, valid_now};

const CHECK_SCHEMA: &str = include_str!("../../schemas/check.schema.json");
const PATH: &str = "/nehrapi/login/getToken";

/// `check`'s JSON against the committed schema.
fn assert_valid_check(json: &Value) {
    let schema: Value = serde_json::from_str(CHECK_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the check schema compiles");
    let errors: Vec<String> = validator.iter_errors(json).map(|e| format!("{} {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}\n{json:#}");
}

/// The test CA, the server's and the client's certificates, and the bad client
/// certificates and keys of the usage errors, in `dir`; `None` without openssl
/// (never under CI).
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn make(dir: &Path) -> Option<Pki> {
        let (start, end) = valid_now();
        let made = make_ca(dir, "ca")
            && make_leaf(dir, "server", "ca", "IP:127.0.0.1", (&start, &end))
            && make_leaf(dir, "client", "ca", "DNS:client.test", (&start, &end))
            && make_leaf(dir, "expired", "ca", "DNS:client.test", ("20200101000000Z", "20200201000000Z"))
            && make_leaf(dir, "future", "ca", "DNS:client.test", ("20990101000000Z", "20990201000000Z"))
            && openssl(dir, &[&["genpkey", "-algorithm", "EC"][..], &EC[2..], &["-out", "other.key"]].concat())
            && openssl(dir, &["pkey", "-in", "client.key", "-aes256", "-passout", "pass:hunter2", "-out", "enc.key"])
            && openssl(
                dir,
                &[
                    "pkey",
                    "-in",
                    "client.key",
                    "-traditional",
                    "-aes256",
                    "-passout",
                    "pass:hunter2",
                    "-out",
                    "legacy.key",
                ],
            );
        if !made {
            eprintln!("skipped: no openssl to make test certificates");
            return None;
        }
        Some(Pki { dir: dir.to_path_buf() })
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `--ca-cert` (the test CA issued the server's certificate) and the client pair.
    fn with_cert(&self) -> Vec<String> {
        ["--ca-cert", &self.path("ca.pem"), "--client-cert", &self.path("client.pem")]
            .iter()
            .map(|s| s.to_string())
            .chain(["--client-key".to_string(), self.path("client.key")])
            .collect()
    }

    /// The lines of every key file's PEM body: none may show in any output.
    fn key_lines(&self) -> Vec<String> {
        ["client.key", "other.key", "enc.key", "legacy.key"]
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(self.dir.join(f)).unwrap().lines().map(String::from).collect::<Vec<_>>()
            })
            .filter(|l| !l.starts_with("-----") && l.len() > 16 && !l.contains(':'))
            .collect()
    }

    fn assert_no_key(&self, what: &str, text: &str) {
        for line in self.key_lines() {
            assert!(!text.contains(&line), "{what} shows a line of a private key: {text}");
        }
        assert!(!text.contains("hunter2"), "{what} shows the key's passphrase");
    }
}

/// A loopback port nothing listens on just now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until `port` takes connections, while `child` runs; false when it exits first.
pub fn wait_listening(child: &mut Child, port: u16) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port} after 20 s");
}

/// A child process killed on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx as a foreground process with its own config in a tempdir: `mtls` requires a
/// client certificate issued by the test CA (TLS 1.2 and 1.3), `tls12` speaks TLS 1.2
/// only and asks for none. Both answer getToken with the spec's example answer.
struct Nginx {
    _process: Killed,
    mtls: u16,
    tls12: u16,
}

impl Nginx {
    fn start(pki: &Pki) -> Option<Nginx> {
        let nginx = which("nginx", &["/usr/sbin/nginx"])?;
        let dir = pki.dir.join("nginx");
        std::fs::create_dir_all(&dir).unwrap();
        let answer = spec_answer().to_string();
        assert!(!answer.contains('\''), "the answer goes in single quotes");
        // A port may be taken between finding it free and nginx binding it: try again.
        for _ in 0..5 {
            let (mtls, tls12) = (free_port(), free_port());
            let d = dir.display();
            let (cert, key, ca) = (pki.path("server.pem"), pki.path("server.key"), pki.path("ca.pem"));
            let location = format!(
                "location = {PATH} {{ default_type application/json; return 200 '{answer}'; }}\n\
                 location / {{ return 404; }}"
            );
            let config = format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
                 server {{\n  listen 127.0.0.1:{mtls} ssl;\n  ssl_certificate {cert};\n  ssl_certificate_key {key};\n\
                 ssl_protocols TLSv1.2 TLSv1.3;\n  ssl_client_certificate {ca};\n  ssl_verify_client on;\n  {location}\n }}\n\
                 server {{\n  listen 127.0.0.1:{tls12} ssl;\n  ssl_certificate {cert};\n  ssl_certificate_key {key};\n\
                 ssl_protocols TLSv1.2;\n  {location}\n }}\n}}\n"
            );
            if let Some(process) = spawn_nginx(&nginx, &dir, &config, &[mtls, tls12]) {
                return Some(Nginx { _process: process, mtls, tls12 });
            }
        }
        panic!("nginx found no free port in five tries");
    }

    fn url(port: u16) -> String {
        format!("https://127.0.0.1:{port}{PATH}")
    }
}

/// Runs `nginx` in the foreground with `config` (written to `dir`) until every one of
/// `ports` takes connections; `None` when one was taken meanwhile (try other ports).
pub fn spawn_nginx(nginx: &Path, dir: &Path, config: &str, ports: &[u16]) -> Option<Killed> {
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config).unwrap();
    let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let mut child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    if ports.iter().all(|p| wait_listening(&mut child, *p)) {
        return Some(Killed(child));
    }
    let said = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    assert!(said.contains("Address already in use"), "nginx did not start: {said}");
    None
}

/// A program on PATH or at one of `also`; `None` with a note, a failure under CI.
pub fn which(name: &str, also: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found =
        std::env::split_paths(&path).map(|d| d.join(name)).chain(also.iter().map(PathBuf::from)).find(|p| p.is_file());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "{name} is not installed; CI needs it (.ci/run installs it)");
        eprintln!("note: skipping: {name} is not installed");
    }
    found
}

/// A TLS server in python's `ssl`: argv is the certificate, key, the CA whose client
/// certificates it requires (`-` for none), and the lowest and highest TLS versions.
/// It prints its port, then answers each connection whose handshake succeeds with the
/// spec's answer.
const PYTHON_SERVER: &str = r#"
import socket, ssl, sys, threading
cert, key, ca, low, high, answer = sys.argv[1:7]
versions = {"1.0": ssl.TLSVersion.TLSv1, "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version, ctx.maximum_version = versions[low], versions[high]
if low == "1.0":
    # OpenSSL 3 refuses TLS 1.0's ciphers above security level 0.
    ctx.set_ciphers("ALL:@SECLEVEL=0")
ctx.load_cert_chain(cert, key)
if ca != "-":
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ca)
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
print(server.getsockname()[1], flush=True)

def serve(conn):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(4096)
            if not chunk:
                return
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
        while len(body) < (length[0] if length else 0):
            body += tls.recv(4096)
        payload = answer.encode()
        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
        tls.close()
    except Exception as e:
        print("handshake:", e, file=sys.stderr, flush=True)
    finally:
        conn.close()

while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

/// The python server of [`PYTHON_SERVER`], and its port.
struct Python {
    _process: Killed,
    port: u16,
}

impl Python {
    fn start(pki: &Pki, require_ca: bool, low: &str, high: &str) -> Option<Python> {
        let python = match std::env::var_os("NEHR_PROBE_TEST_PYTHON") {
            Some(p) => PathBuf::from(p),
            None => which("python3", &[])?,
        };
        let script = pki.dir.join("server.py");
        std::fs::write(&script, PYTHON_SERVER).unwrap();
        let ca = if require_ca { pki.path("ca.pem") } else { "-".to_string() };
        let mut child = Command::new(python)
            .args(["-W", "ignore"])
            .arg(&script)
            .args([pki.path("server.pem"), pki.path("server.key"), ca, low.into(), high.into()])
            .arg(spec_answer().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("python server printed {line:?}"));
        Some(Python { _process: Killed(child), port })
    }
}

/// `check` against `url` with `flags`, in a blocking task.
pub async fn check(url: &str, flags: &[String]) -> Run {
    let (url, flags) = (url.to_string(), flags.to_vec());
    tokio::task::spawn_blocking(move || {
        crate::support::check(&url, &flags.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

fn with(base: &[String], more: &[&str]) -> Vec<String> {
    base.iter().cloned().chain(more.iter().map(|s| s.to_string())).collect()
}

/// `load` in-process as the test account with `flags`.
pub async fn load(dir: &Path, url: &str, flags: &[String]) -> Value {
    let password = dir.join("password");
    std::fs::write(&password, PASSWORD).unwrap();
    let password = password.display().to_string();
    // The canned answer hands every login its one token.
    let mut args =
        vec!["--url", url, "--username", USERNAME, "--password-file", &password, "--token-reuse", "same-account"];
    args.extend(flags.iter().map(String::as_str));
    let args = crate::support::parse_load(&args);
    let finished = nehr_probe::load::execute(&args, tokio_util::sync::CancellationToken::new()).await.unwrap();
    serde_json::from_str(&finished.shown.report.json()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_requiring_a_client_certificate_answers_ok_with_it_and_400_naming_it_without() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::make(dir.path()) else { return };
    let Some(nginx) = Nginx::start(&pki) else { return };
    let url = Nginx::url(nginx.mtls);

    let ok = check(&url, &pki.with_cert()).await;
    assert_eq!(ok.code, Some(0), "{ok:?}");
    assert!(ok.stdout.starts_with("NEHR-TOKEN OK - valid bearer token, expires in 86399 s, in "), "{ok:?}");
    assert!(ok.stdout.contains(" s over HTTP/1.1 and TLS 1.3 | time="), "{ok:?}");
    let json = check(&url, &with(&pki.with_cert(), &["--format", "json"])).await;
    let json: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_valid_check(&json);
    assert_eq!((json["outcome"].as_str(), json["tls_version"].as_str()), (Some("ok"), Some("TLS 1.3")), "{json}");
    assert!(json["tls_cipher"].as_str().unwrap().starts_with("TLS_AES_"), "{json}");
    // Held to TLS 1.2 the same gateway still answers, and says so.
    let old = check(&url, &with(&pki.with_cert(), &["--tls-max", "1.2", "--format", "json"])).await;
    let old: Value = serde_json::from_str(&old.stdout).unwrap();
    assert_valid_check(&old);
    assert_eq!((old["outcome"].as_str(), old["tls_version"].as_str()), (Some("ok"), Some("TLS 1.2")), "{old}");
    assert!(old["tls_cipher"].as_str().unwrap().starts_with("TLS_ECDHE_"), "{old}");

    // Without the certificate nginx completes the handshake and answers 400.
    let ca = ["--ca-cert".to_string(), pki.path("ca.pem")];
    let without = check(&url, &ca).await;
    assert_eq!(without.code, Some(2), "{without:?}");
    assert!(
        without.stdout.starts_with(
            "NEHR-TOKEN CRITICAL - unexpected answer (HTTP 400): the server says \"No required SSL certificate was \
             sent\": it requires a client certificate; give one with --client-cert FILE and --client-key FILE, in "
        ),
        "{without:?}"
    );
    let json = check(&url, &with(&ca, &["--format", "json"])).await;
    let json: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_valid_check(&json);
    assert_eq!((json["outcome"].as_str(), json["http_status"].as_u64()), (Some("http_error"), Some(400)), "{json}");
    assert!(json["message"].as_str().unwrap().contains("--client-cert"), "{json}");

    // load: every call on a connection of TLS 1.3, or with --tls-max 1.2 of TLS 1.2.
    let report = load(dir.path(), &url, &with(&pki.with_cert(), &["-n", "20", "-c", "2"])).await;
    assert_valid_report(&report);
    assert_eq!(report["outcomes"]["ok"], 20, "{report:#}");
    assert_eq!(report["tls_versions"], serde_json::json!({"TLS 1.3": 20}), "{report:#}");
    let report = load(dir.path(), &url, &with(&pki.with_cert(), &["-n", "6", "-c", "1", "--tls-max", "1.2"])).await;
    assert_valid_report(&report);
    assert_eq!(report["tls_versions"], serde_json::json!({"TLS 1.2": 6}), "{report:#}");
    let text = nehr_probe::report::text::render(
        &nehr_probe::report::merge::read_all(&report.to_string(), "r").unwrap().0.remove(0),
    );
    assert!(text.contains("  TLS versions: TLS 1.2 6 (100.0 %) of 6 calls\n"), "{text}");
    for run in [&ok, &without] {
        pki.assert_no_key("check", &format!("{run:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_the_handshake_without_a_client_certificate_is_a_connect_error_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::make(dir.path()) else { return };
    let ca = vec!["--ca-cert".to_string(), pki.path("ca.pem")];
    // TLS 1.3: the refusal (alert certificate_required) comes after the client's side
    // of the handshake ended, on the first read. TLS 1.2: handshake_failure, within it,
    // after the server asked for a certificate.
    for (version, words) in [
        ("1.3", "the server requires a client certificate and none was given (TLS alert certificate_required)"),
        (
            "1.2",
            "the server asked for a client certificate and refused the handshake without one (TLS alert handshake_failure)",
        ),
    ] {
        let Some(server) = Python::start(&pki, true, "1.2", version) else { return };
        let url = format!("https://127.0.0.1:{}{PATH}", server.port);
        let refused = check(&url, &ca).await;
        assert_eq!(refused.code, Some(2), "{refused:?}");
        let line = &refused.stdout;
        assert!(
            line.starts_with("NEHR-TOKEN CRITICAL - connect_error: TLS handshake with 127.0.0.1 failed: "),
            "{line}"
        );
        // Under TLS 1.3 a server that closes before its alert is read is told too.
        let closed = "the server asked for a client certificate, got none and closed the connection";
        assert!(line.contains(words) || (version == "1.3" && line.contains(closed)), "TLS {version}: {line}");
        assert!(line.contains("give one with --client-cert FILE and --client-key FILE"), "{line}");
        let json = check(&url, &with(&ca, &["--format", "json"])).await;
        let json: Value = serde_json::from_str(&json.stdout).unwrap();
        assert_valid_check(&json);
        assert_eq!(json["outcome"], "connect_error", "{json}");

        let ok = check(&url, &pki.with_cert()).await;
        assert_eq!(ok.code, Some(0), "TLS {version}: {ok:?}");
        assert!(ok.stdout.contains(&format!(" over HTTP/1.1 and TLS {version} | ")), "{ok:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_of_tls_1_0_only_is_a_connect_error_naming_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::make(dir.path()) else { return };
    // python's ssl (OpenSSL 3 at security level 0) serving TLS 1.0 only: it sees this
    // client offer 1.2 and 1.3 and refuses with protocol_version.
    let Some(server) = Python::start(&pki, false, "1.0", "1.0") else { return };
    let url = format!("https://127.0.0.1:{}{PATH}", server.port);
    let run = check(&url, &["--ca-cert".to_string(), pki.path("ca.pem")]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stdout.starts_with(
            "NEHR-TOKEN CRITICAL - connect_error: TLS handshake with 127.0.0.1 failed: the server refused TLS 1.2 \
             and 1.3 (TLS alert protocol_version): it offers only TLS 1.0/1.1 (or older); nehr-probe needs TLS 1.2 \
             or later"
        ),
        "{run:?}"
    );

    // A server that answers with a TLS 1.0 ServerHello (it ignores supported_versions,
    // as OpenSSL 1.0 did): its version is named.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        while let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.read(&mut [0u8; 4096]);
            // ServerHello: version 3.1, 32 random bytes, no session id, TLS_RSA_WITH_AES_128_CBC_SHA, no compression.
            let mut hello = vec![2, 0, 0, 38, 3, 1];
            hello.extend_from_slice(&[7; 32]);
            hello.extend_from_slice(&[0, 0x00, 0x2f, 0]);
            let mut record = vec![22, 3, 1, 0, hello.len() as u8];
            record.extend_from_slice(&hello);
            let _ = stream.write_all(&record);
            let _ = stream.read(&mut [0u8; 64]);
        }
    });
    let run = check(&format!("https://{addr}{PATH}"), &[]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stdout.starts_with(
            "NEHR-TOKEN CRITICAL - connect_error: TLS handshake with 127.0.0.1 failed: the server offers only TLS \
             1.0; nehr-probe needs TLS 1.2 or later"
        ),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_min_1_3_against_a_tls_1_2_only_nginx_is_a_connect_error_naming_the_versions() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::make(dir.path()) else { return };
    let Some(nginx) = Nginx::start(&pki) else { return };
    let url = Nginx::url(nginx.tls12);
    let ca = vec!["--ca-cert".to_string(), pki.path("ca.pem")];
    let ok = check(&url, &ca).await;
    assert_eq!(ok.code, Some(0), "{ok:?}");
    assert!(ok.stdout.contains(" over HTTP/1.1 and TLS 1.2 | "), "{ok:?}");
    let refused = check(&url, &with(&ca, &["--tls-min", "1.3"])).await;
    assert_eq!(refused.code, Some(2), "{refused:?}");
    assert!(
        refused.stdout.starts_with(
            "NEHR-TOKEN CRITICAL - connect_error: TLS handshake with 127.0.0.1 failed: the server refused TLS 1.3 \
             only (TLS alert protocol_version): it offers none of --tls-min 1.3; widen them to reach it"
        ),
        "{refused:?}"
    );
}

#[test]
fn a_check_over_http_fits_the_schema_without_tls_keys() {
    let r = run(&["check", "--mock", "--format", "json"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let json: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_valid_check(&json);
    assert!(json.get("tls_version").is_none() && json.get("tls_cipher").is_none(), "{json}");
    let plain = run(&["check", "--mock"], &[]);
    assert!(!plain.stdout.contains(" over TLS"), "{plain:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_client_certificates_and_keys_are_one_line_usage_errors_that_show_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::make(dir.path()) else { return };
    let p = |f: &str| pki.path(f);
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--client-cert".into(), p("client.pem"), "--client-key".into(), p("other.key")],
            format!(
                "invalid --client-key {}: the key does not belong to the certificate (CN=nehr-probe test leaf)",
                p("other.key")
            ),
        ),
        (
            vec!["--client-cert".into(), p("client.pem"), "--client-key".into(), p("enc.key")],
            format!(
                "invalid --client-key {}: the key is encrypted, and nehr-probe does not ask for passphrases",
                p("enc.key")
            ),
        ),
        (
            vec!["--client-cert".into(), p("client.pem"), "--client-key".into(), p("legacy.key")],
            format!("invalid --client-key {}: the key is encrypted", p("legacy.key")),
        ),
        (
            vec!["--client-cert".into(), p("expired.pem"), "--client-key".into(), p("expired.key")],
            format!(
                "invalid --client-cert {}: the certificate (CN=nehr-probe test leaf) expired on 2020-02-01 00:00:00 UTC",
                p("expired.pem")
            ),
        ),
        (
            vec!["--client-cert".into(), p("future.pem"), "--client-key".into(), p("future.key")],
            format!(
                "invalid --client-cert {}: the certificate (CN=nehr-probe test leaf) is not valid before 2099-01-01",
                p("future.pem")
            ),
        ),
        (
            vec!["--client-cert".into(), p("client.key"), "--client-key".into(), p("client.key")],
            format!("invalid --client-cert {}: no PEM certificate in it", p("client.key")),
        ),
        (
            vec!["--client-cert".into(), p("client.pem"), "--client-key".into(), p("client.pem")],
            format!("invalid --client-key {}: no PEM private key in it", p("client.pem")),
        ),
        (
            vec!["--client-cert".into(), p("client.pem"), "--client-key".into(), p("nowhere.key")],
            format!("cannot read --client-key {}: No such file or directory", p("nowhere.key")),
        ),
        (vec!["--client-cert".into(), p("client.pem")], "--client-cert needs --client-key too".into()),
        (vec!["--client-key".into(), p("client.key")], "--client-key needs --client-cert too".into()),
        (
            vec!["--tls-min".into(), "1.3".into(), "--tls-max".into(), "1.2".into()],
            "--tls-min 1.3 is above --tls-max 1.2".into(),
        ),
        (vec!["--tls-min".into(), "1.0".into()], "TLS 1.0 and 1.1 are deprecated (RFC 8996)".into()),
        (vec!["--tls-max".into(), "2".into()], "expected 1.2 or 1.3".into()),
    ];
    let url = format!("https://127.0.0.1:9{PATH}");
    for (flags, want) in &cases {
        // check: UNKNOWN (3) with the error as its status line too; load: 2.
        let checked = check(&url, flags).await;
        assert_unknown_line(&checked);
        assert!(checked.stderr.contains(want.as_str()), "want {want:?}: {checked:?}");
        let mut argv = vec!["load", "--url", &url, "--username", USERNAME, "-n", "1"];
        argv.extend(flags.iter().map(String::as_str));
        let loaded = run(&argv, &[("NEHR_PROBE_PASSWORD", PASSWORD)]);
        assert_eq!(loaded.code, Some(2), "{loaded:?}");
        assert_one_clear_error(&loaded);
        assert!(loaded.stderr.contains(want.as_str()), "want {want:?}: {loaded:?}");
        pki.assert_no_key("a usage error", &format!("{checked:?} {loaded:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_presents_each_targets_certificate_and_exports_the_tls_version() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::make(dir.path()) else { return };
    let Some(nginx) = Nginx::start(&pki) else { return };
    let url = Nginx::url(nginx.mtls);
    std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
    let config = dir.path().join("targets.toml");
    let table = |name: &str, extra: &str| {
        format!("[targets.{name}]\nurl = \"{url}\"\nusername = \"{USERNAME}\"\npassword_file = \"password\"\n{extra}\n")
    };
    let cert = "client_cert = \"client.pem\"\nclient_key = \"client.key\"\n";
    std::fs::write(
        &config,
        table("mtls", cert) + &table("nocert", "") + &table("old", &format!("{cert}tls_max = \"1.2\"\n")),
    )
    .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    let log: nehr_probe::serve::Log = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
    let argv = ["nehr-probe", "serve", "--config", config.to_str().unwrap(), "--ca-cert", &pki.path("ca.pem")];
    let argv = argv.iter().copied().chain(["--listen", "127.0.0.1:0", "--interval", "1h"]);
    let Sub::Serve(args) = <Cli as clap::Parser>::try_parse_from(argv).unwrap().command else { unreachable!() };
    let exporter = Exporter::start(&args, log).await.unwrap();
    let base = format!("http://{}", exporter.addr());
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let want = [
        "nehr_probe_success{target=\"mtls\"} 1",
        "nehr_probe_tls_version_info{target=\"mtls\",version=\"TLS 1.3\"} 1",
        "nehr_probe_success{target=\"old\"} 1",
        "nehr_probe_tls_version_info{target=\"old\",version=\"TLS 1.2\"} 1",
        "nehr_probe_http_status_code{target=\"nocert\"} 400",
        "nehr_probe_requests_total{outcome=\"http_error\",target=\"nocert\"} 1",
    ];
    let start = Instant::now();
    let mut metrics = get(&client, &format!("{base}/metrics")).await.1;
    while !want.iter().all(|w| metrics.contains(w)) && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        metrics = get(&client, &format!("{base}/metrics")).await.1;
    }
    for w in want {
        assert!(metrics.contains(w), "no {w} in {metrics}");
    }
    assert!(metrics.contains("nehr_probe_tls_cipher_info{cipher=\"TLS_AES_"), "{metrics}");
    let (code, probe) = get(&client, &format!("{base}/probe?target=mtls")).await;
    assert_eq!(code, 200, "{probe}");
    assert!(probe.contains("probe_success 1\n") && probe.contains("probe_tls_version_info{version=\"TLS 1.3\"} 1\n"));
    assert!(probe.contains("probe_tls_cipher_info{cipher=\"TLS_AES_"), "{probe}");
    exporter.stop().await;
    if let Some(promtool) = tool("promtool", "prometheus") {
        promtool_check_metrics(&promtool, "serve's /metrics with TLS series", &metrics);
        promtool_check_metrics(&promtool, "/probe over mutual TLS", &probe);
    }
    let log = lines.lock().unwrap().join("\n");
    assert!(log.contains("target nocert: http_error: unexpected answer (HTTP 400): the server says"), "{log}");
    pki.assert_no_key("serve", &format!("{metrics}{probe}{log}"));

    // A table with half a pair, or versions the wrong way round, is a start-up error.
    for (extra, words) in [
        ("client_cert = \"client.pem\"\n", "client_cert needs client_key too, in the same table"),
        ("tls_min = 1.3\ntls_max = \"1.2\"\n", "tls_min 1.3 is above tls_max 1.2"),
        ("tls_min = \"1.1\"\n", "invalid tls_min \"1.1\": TLS 1.0 and 1.1 are deprecated"),
        ("client_cert = \"expired.pem\"\nclient_key = \"expired.key\"\n", "expired on 2020-02-01"),
    ] {
        std::fs::write(&config, table("bad", extra)).unwrap();
        let r = run(&["serve", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"], &[]);
        assert_eq!(r.code, Some(2), "{r:?}");
        assert_one_clear_error(&r);
        assert!(r.stderr.contains("target \"bad\"") && r.stderr.contains(words), "want {words:?}: {r:?}");
    }
}
