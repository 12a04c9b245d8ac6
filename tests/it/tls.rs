//! https targets: the probe's own rustls connector trusts `--ca-cert`, refuses an
//! unknown issuer as `connect_error`, and `--insecure` accepts any certificate. The
//! certificate is made for the test with the openssl command line; the TLS server is
//! tokio-rustls on 127.0.0.1. The certificate's expiry is read from the handshake and
//! judged by `check --cert-warning/--cert-critical`, as check_curl and blackbox do.
//!
//! The server keeps connections alive, counts the connections it accepts and notes the
//! SNI and `Host` of every request, so the phases of new and reused connections,
//! `load --no-keepalive` and `--resolve` are tested against what it saw.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nehr_probe::call::phases::Phase;
use nehr_probe::call::{Connection, Outcome, Prober};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{PASSWORD, Run, USERNAME, call_target, check, spec_answer, target};

/// The host name the test certificate is also made for (the `--resolve` test's).
const HOST_NAME: &str = "nehr.test";

/// A self-signed certificate for 127.0.0.1 and `nehr.test`, and its key, as PEM files in
/// `dir`.
pub(crate) fn make_cert(dir: &Path) -> Option<(Vec<u8>, Vec<u8>)> {
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=nehr-probe test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:nehr.test"])
        // A leaf, not a CA: webpki refuses a CA certificate as the server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {
            Some((std::fs::read(dir.join("cert.pem")).unwrap(), std::fs::read(dir.join("key.pem")).unwrap()))
        }
        _ if std::env::var_os("CI").is_some() => panic!("openssl is needed to make a test certificate"),
        _ => None,
    }
}

/// What the TLS server saw: connections accepted, and the SNI and `Host` of each request.
#[derive(Default)]
struct Seen {
    accepted: AtomicUsize,
    /// Connections whose handshake resumed an earlier session.
    resumed: AtomicUsize,
    requests: Mutex<Vec<(Option<String>, Option<String>)>>,
}

/// A TLS server on a loopback port.
pub(crate) struct TlsServer {
    pub(crate) addr: std::net::SocketAddr,
    seen: Arc<Seen>,
}

impl TlsServer {
    fn accepted(&self) -> usize {
        self.seen.accepted.load(Ordering::Relaxed)
    }
}

/// Serves the spec's answer over TLS on a loopback port, keeping connections alive
/// unless the client asks to close.
pub(crate) async fn tls_server(cert: &[u8], key: &[u8]) -> TlsServer {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert).map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_slice(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let state = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            state.accepted.fetch_add(1, Ordering::Relaxed);
            let (acceptor, state) = (acceptor.clone(), Arc::clone(&state));
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let sni = tls.get_ref().1.server_name().map(str::to_string);
                if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                    state.resumed.fetch_add(1, Ordering::Relaxed);
                }
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                loop {
                    let head_end = loop {
                        if let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').trim().to_string()))
                    };
                    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    let close = header("connection").is_some_and(|v| v == "close");
                    state.requests.lock().unwrap().push((sni.clone(), header("host")));
                    while seen.len() < head_end + length {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.drain(..head_end + length);
                    let body = spec_answer().to_string();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{body}",
                        body.len(),
                        if close { "Connection: close\r\n" } else { "" },
                    );
                    if tls.write_all(answer.as_bytes()).await.is_err() || close {
                        let _ = tls.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    TlsServer { addr, seen }
}

/// A certificate made in `dir` (its PEM, also `dir/cert.pem`) and a TLS server using it;
/// `None`, with a note, where there is no openssl (never under CI).
async fn served_over_tls(dir: &Path) -> Option<(Vec<u8>, std::net::SocketAddr)> {
    let (cert, server) = tls_served(dir).await?;
    Some((cert, server.addr))
}

/// As [`served_over_tls`], with the server itself.
async fn tls_served(dir: &Path) -> Option<(Vec<u8>, TlsServer)> {
    let Some((cert, key)) = make_cert(dir) else {
        eprintln!("skipped: no openssl to make a test certificate");
        return None;
    };
    let server = tls_server(&cert, &key).await;
    Some((cert, server))
}

#[tokio::test]
async fn https_with_ca_cert_unknown_issuer_and_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, addr)) = served_over_tls(dir.path()).await else { return };
    let url = format!("https://{addr}/nehrapi/login/getToken");

    let mut trusted = target(&url, Duration::from_secs(5));
    trusted.ca_cert = Some(cert.clone());
    let obs = call_target(&trusted).await;
    assert_eq!(obs.outcome, Outcome::Ok, "{obs:?}");

    let unknown = target(&url, Duration::from_secs(5));
    let obs = call_target(&unknown).await;
    assert_eq!(obs.outcome, Outcome::ConnectError, "{obs:?}");
    let detail = obs.detail.unwrap();
    assert!(detail.contains("TLS handshake") && detail.contains("certificate"), "{detail}");

    let mut insecure = target(&url, Duration::from_secs(5));
    insecure.insecure = true;
    assert_eq!(call_target(&insecure).await.outcome, Outcome::Ok);

    // Plain HTTP to a TLS port: the server's TLS alert is not HTTP.
    let plain = target(&format!("http://{addr}/nehrapi/login/getToken"), Duration::from_secs(5));
    assert_eq!(call_target(&plain).await.outcome, Outcome::TransportError);
}

/// `check` against the TLS server in a blocking task (the server runs on this runtime).
async fn check_tls(url: &str, extra: &[&str]) -> Run {
    let (url, extra): (String, Vec<String>) = (url.to_string(), extra.iter().map(|s| s.to_string()).collect());
    tokio::task::spawn_blocking(move || check(&url, &extra.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificates_expiry_is_reported_and_judged() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, addr)) = served_over_tls(dir.path()).await else { return };
    let url = format!("https://{addr}/nehrapi/login/getToken");
    let now = nehr_probe::metrics::unix_now() as i64;

    // Made with -days 2: it expires two days from now (give or take the test's minutes).
    let mut trusted = target(&url, Duration::from_secs(5));
    trusted.ca_cert = Some(cert.clone());
    let obs = call_target(&trusted).await;
    let not_after = obs.cert_not_after.expect("an https answer knows its certificate");
    assert!((not_after - (now + 2 * 86_400)).abs() < 600, "notAfter {not_after}, now {now}");
    let plain = crate::support::HostileServer::start(crate::answers::valid());
    assert_eq!(call_target(&target(&plain.url(), Duration::from_secs(5))).await.cert_not_after, None);

    let ca = dir.path().join("cert.pem");
    let ca = ca.to_str().unwrap();
    let fine = check_tls(&url, &["--ca-cert", ca, "--cert-warning", "1d", "--format", "json"]).await;
    assert_eq!(fine.code, Some(0), "{fine:?}");
    let json: serde_json::Value = serde_json::from_str(&fine.stdout).unwrap();
    let left = json["tls_cert_expires_in_seconds"].as_i64().unwrap();
    assert!((left - 2 * 86_400).abs() < 600, "{json}");

    let warn = check_tls(&url, &["--ca-cert", ca, "--cert-warning", "3d"]).await;
    assert_eq!(warn.code, Some(1), "{warn:?}");
    assert!(warn.stdout.starts_with("NEHR-TOKEN WARNING - valid bearer token"), "{warn:?}");
    let note = |left: &str| format!("; certificate expires in {left}, in ");
    assert!(warn.stdout.contains(&note("2 days")) || warn.stdout.contains(&note("47 hours")), "{warn:?}");
    assert!(warn.stdout.contains(" cert_expires_in=") && warn.stdout.contains(";259200:;;;"), "{warn:?}");

    let crit = check_tls(&url, &["--ca-cert", ca, "--cert-warning", "30d", "--cert-critical", "3d"]).await;
    assert_eq!(crit.code, Some(2), "{crit:?}");

    let metrics = check_tls(&url, &["--ca-cert", ca, "--format", "prometheus"]).await;
    assert_eq!(metrics.code, Some(0), "{metrics:?}");
    let line = format!("nehr_probe_tls_cert_expiry_timestamp_seconds{{target=\"default\"}} {not_after}");
    assert!(metrics.stdout.contains(&line), "{}", metrics.stdout);

    let backwards = check_tls(&url, &["--ca-cert", ca, "--cert-warning", "1d", "--cert-critical", "3d"]).await;
    assert_eq!(backwards.code, Some(3), "{backwards:?}");
    crate::support::assert_one_clear_error(&backwards);
}

#[tokio::test]
async fn a_tls_phase_on_every_new_connection_and_none_on_a_reused_one() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, server)) = tls_served(dir.path()).await else { return };
    let mut t = target(&format!("https://{}/nehrapi/login/getToken", server.addr), Duration::from_secs(5));
    t.ca_cert = Some(cert);
    let prober = Prober::new(&t).unwrap();
    let first = prober.call(0, Instant::now()).await;
    assert_eq!(first.outcome, Outcome::Ok, "{first:?}");
    assert_eq!(first.connection, Some(Connection::New));
    let p = first.phases;
    assert!(p.connect.is_some() && p.tls.is_some() && p.processing.is_some() && p.transfer.is_some(), "{p:?}");
    assert_eq!(p.resolve, None, "an IP address is not looked up");
    assert_eq!(first.tls_version, Some("TLS 1.3"));
    for seq in 1..5 {
        let again = prober.call(seq, Instant::now()).await;
        assert_eq!(again.connection, Some(Connection::Reused), "{again:?}");
        let p = again.phases;
        assert_eq!((p.resolve, p.connect, p.tls), (None, None, None), "{p:?}");
        assert!(p.processing.is_some() && p.transfer.is_some(), "{p:?}");
        // The phases fit in the call: the server's time and the transfer, no more.
        assert!(p.processing.unwrap() + p.transfer.unwrap() <= again.service_time(), "{again:?}");
    }
    assert_eq!(server.accepted(), 1);

    // Without keep-alive, each call opens (and handshakes) a connection of its own.
    let fresh = Prober::with_keepalive(&t, false).unwrap();
    for seq in 0..3 {
        let obs = fresh.call(seq, Instant::now()).await;
        assert_eq!((obs.outcome, obs.connection), (Outcome::Ok, Some(Connection::New)), "{obs:?}");
        assert!(obs.phases.tls.is_some());
    }
    assert_eq!(server.accepted(), 4);
}

/// `load` in-process against the TLS server, trusting `ca`, with these flags.
async fn load_tls(url: &str, ca: &Path, dir: &Path, flags: &[&str]) -> nehr_probe::report::model::LoadReport {
    let password = dir.join("password");
    std::fs::write(&password, PASSWORD).unwrap();
    let (ca, password) = (ca.to_str().unwrap(), password.to_str().unwrap());
    let mut args = vec!["--url", url, "--username", USERNAME, "--password-file", password, "--ca-cert", ca];
    // The canned server hands every login the token of its one answer.
    args.extend_from_slice(&["--token-reuse", "same-account"]);
    args.extend_from_slice(flags);
    let args = crate::support::parse_load(&args);
    let finished = nehr_probe::load::execute(&args, tokio_util::sync::CancellationToken::new()).await.unwrap();
    finished.shown.report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_keepalive_opens_one_connection_per_call_and_keepalive_at_most_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_, server)) = tls_served(dir.path()).await else { return };
    let url = format!("https://{}/nehrapi/login/getToken", server.addr);
    let ca = dir.path().join("cert.pem");

    // The closed model: every call is made, however slow full handshakes are here.
    let r = load_tls(&url, &ca, dir.path(), &["--no-keepalive", "-n", "60", "-c", "4"]).await;
    assert_eq!((r.requests, r.outcomes[Outcome::Ok]), (60, 60), "{r:?}");
    assert_eq!(server.accepted(), 60, "one connection per call");
    assert_eq!(server.seen.resumed.load(Ordering::Relaxed), 0, "a full handshake each, as distinct clients make");
    assert_eq!((r.connections_opened, r.new_connection_share), (60, 1.0));
    let tls = r.phases_seconds[Phase::Tls].expect("a TLS phase");
    assert_eq!(tls.calls, 60);
    assert!(tls.p50 > 0.0 && tls.max >= tls.p99, "{tls:?}");
    assert_eq!(r.phases_seconds[Phase::Connect].unwrap().calls, 60);
    assert_eq!(r.phases_seconds[Phase::Resolve], None, "an IP address is not looked up");
    assert_eq!(r.phases_seconds[Phase::Processing].unwrap().calls, 60);
    assert!(server.seen.requests.lock().unwrap().len() == 60);

    let before = server.accepted();
    let r = load_tls(&url, &ca, dir.path(), &["-n", "300", "-c", "4"]).await;
    assert_eq!(r.outcomes[Outcome::Ok], 300, "{r:?}");
    let opened = server.accepted() - before;
    assert!((1..=4).contains(&opened), "keep-alive opened {opened} connections for 4 workers");
    assert_eq!(r.connections_opened, opened as u64);
    assert_eq!(
        r.phases_seconds[Phase::Tls].map(|t| t.calls),
        Some(opened as u64),
        "a handshake per new connection only"
    );
    assert_eq!(r.phases_seconds[Phase::Transfer].unwrap().calls, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_reaches_the_pinned_address_with_the_urls_name_in_sni_and_host() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_, server)) = tls_served(dir.path()).await else { return };
    let port = server.addr.port();
    // nehr.test resolves nowhere: only the pin can reach the server.
    let url = format!("https://{HOST_NAME}:{port}/nehrapi/login/getToken");
    let ca = dir.path().join("cert.pem");
    let pin = format!("{HOST_NAME}:{port}:127.0.0.1");
    let ok = check_tls(&url, &["--ca-cert", ca.to_str().unwrap(), "--resolve", &pin, "--format", "json"]).await;
    assert_eq!(ok.code, Some(0), "{ok:?}");
    let json: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!(json["phases_seconds"]["resolve"], serde_json::Value::Null, "a pinned address is not looked up");
    assert!(json["phases_seconds"]["tls"].as_f64().unwrap() > 0.0, "{json}");
    let seen = server.seen.requests.lock().unwrap().clone();
    assert_eq!(seen, [(Some(HOST_NAME.to_string()), Some(format!("{HOST_NAME}:{port}")))]);

    // TLS still checks the URL's name against the certificate: a name it lacks fails
    // even though the pinned address is the right server.
    let wrong = format!("https://other.test:{port}/nehrapi/login/getToken");
    let pin = format!("other.test:{port}:127.0.0.1");
    let refused = check_tls(&wrong, &["--ca-cert", ca.to_str().unwrap(), "--resolve", &pin]).await;
    assert_eq!(refused.code, Some(2), "{refused:?}");
    assert!(refused.stdout.contains("connect_error") && refused.stdout.contains("TLS handshake"), "{refused:?}");

    // A pin for another host or port is a usage error, before any call.
    let elsewhere = check_tls(&url, &["--resolve", &format!("{HOST_NAME}:1:127.0.0.1")]).await;
    assert_eq!(elsewhere.code, Some(3), "{elsewhere:?}");
    crate::support::assert_one_clear_error(&elsewhere);
    assert!(elsewhere.stderr.contains("does not match the URL's host and port"), "{elsewhere:?}");
}

/// A server at one address whose certificate is `certs[order[i]]` on its i-th
/// connection, answering one login a connection and closing it.
async fn changing_server(certs: Vec<(Vec<u8>, Vec<u8>)>, order: Vec<usize>) -> std::net::SocketAddr {
    let acceptors: Vec<tokio_rustls::TlsAcceptor> = certs
        .iter()
        .map(|(cert, key)| {
            let chain = CertificateDer::pem_slice_iter(cert).map(|c| c.unwrap()).collect();
            let config =
                rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(chain, PrivateKeyDer::from_pem_slice(key).unwrap())
                    .unwrap();
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        })
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for which in order {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptors[which].clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let (mut buf, mut seen) = (vec![0u8; 4096], Vec::new());
                // The head, then as much of the body as Content-Length says.
                let done = |seen: &[u8]| {
                    let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
                    let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    seen.len() >= end + 4 + length
                };
                while !done(&seen) {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let body = spec_answer().to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

/// Full handshakes on new connections remember a chain that verified (not to check its
/// signatures again), and that chain only: a server that then presents another
/// certificate for the same name is refused each time, and the trusted one still passes.
#[tokio::test]
async fn a_verified_chain_vouches_for_itself_only() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let Some(trusted) = make_cert(&a) else { return };
    let Some(other) = make_cert(&b) else { return };
    let order = vec![0, 0, 1, 0, 1, 1, 0];
    let addr = changing_server(vec![trusted.clone(), other], order.clone()).await;
    let mut t = target(&format!("https://{addr}/nehrapi/login/getToken"), Duration::from_secs(5));
    t.ca_cert = Some(trusted.0);
    let prober = Prober::with_keepalive(&t, false).unwrap();
    for (i, which) in order.into_iter().enumerate() {
        let obs = prober.call(i as u64, Instant::now()).await;
        if which == 0 {
            assert_eq!(obs.outcome, Outcome::Ok, "call {i}: {obs:?}");
            assert_eq!(obs.connection, Some(Connection::New), "call {i}: a new connection, a full handshake");
        } else {
            assert_eq!(obs.outcome, Outcome::ConnectError, "call {i}: {obs:?}");
            let detail = obs.detail.unwrap_or_default();
            assert!(detail.contains("certificate"), "call {i}: {detail}");
        }
    }
}
