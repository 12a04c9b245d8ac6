//! The mock over HTTP/2: on its plain port a client with prior knowledge (h2c) and an
//! HTTP/1.1 client both get the documented answers; with `--tls-cert` and `--tls-key`
//! it serves https, ALPN choosing h2 or http/1.1, and HTTP/1.1 to a client that offers
//! no ALPN. The HTTP/2 client is reqwest's (hyper's h2); the version each answer came in
//! is the one the client reports. The TLS flags' mistakes are one-line usage errors.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nehr_probe::call::target::{EXAMPLE_PASSWORD, EXAMPLE_USERNAME, TOKEN_PATH};
use nehr_probe::call::validate::Validator;
use nehr_probe::mock::{Latency, MockArgs, MockServer, RESOURCE_PATH, UNAUTHORIZED_BODY};
use reqwest::Version;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Run, assert_one_clear_error, nehr_probe, run};

fn login(password: &str) -> serde_json::Value {
    json!({"username": EXAMPLE_USERNAME, "password": password})
}

/// POSTs `body` to `url`: the version the answer came in, its status and body.
async fn post(client: &reqwest::Client, url: &str, body: &serde_json::Value) -> (Version, u16, Vec<u8>) {
    let resp = client.post(url).body(body.to_string()).send().await.unwrap();
    let (version, status) = (resp.version(), resp.status().as_u16());
    (version, status, resp.bytes().await.unwrap().to_vec())
}

/// The documented answers through `client` at the login `url`, every one in `version`:
/// a valid token answer, the resource opened by its token, and 401 with the spec's body
/// for a wrong password.
async fn answers_as_documented(client: &reqwest::Client, url: &str, version: Version) {
    let (v, status, body) = post(client, url, &login(EXAMPLE_PASSWORD)).await;
    assert_eq!((v, status), (version, 200), "{}", String::from_utf8_lossy(&body));
    let facts = Validator::builtin().check_token(&body).expect("a valid token answer");
    assert_eq!(facts.token_type.as_deref(), Some("bearer"));
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let token = answer["result"]["access_token"].as_str().unwrap();
    let resource = client
        .get(url.replace(TOKEN_PATH, RESOURCE_PATH))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!((resource.version(), resource.status().as_u16()), (version, 200));
    let (v, status, body) = post(client, url, &login("not-the-password")).await;
    assert_eq!((v, status), (version, 401));
    assert_eq!(body, UNAUTHORIZED_BODY.as_bytes());
}

#[tokio::test]
async fn mock_speaks_h2c_by_prior_knowledge_and_http1_on_the_same_port() {
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let url = server.url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    answers_as_documented(&h2, &url, Version::HTTP_2).await;
    let h1 = reqwest::Client::builder().http1_only().build().unwrap();
    answers_as_documented(&h1, &url, Version::HTTP_11).await;
    // More streams at once than hyper's default cap of 200, on the one connection.
    let calls = (0..300).map(|_| {
        let (h2, url) = (h2.clone(), url.clone());
        async move { post(&h2, &url, &login(EXAMPLE_PASSWORD)).await }
    });
    for (v, status, _) in futures_util::future::join_all(calls).await {
        assert_eq!((v, status), (Version::HTTP_2, 200));
    }
    let stats = server.stats();
    assert_eq!((stats.ok, stats.unauthorized, stats.resource_accepted), (302, 2, 2), "{stats:?}");
    // An idle HTTP/2 connection (and an HTTP/1.1 one) does not hold the stop up.
    tokio::time::timeout(Duration::from_secs(10), server.stop()).await.expect("the mock stops");
}

#[tokio::test]
async fn an_http2_answer_in_flight_finishes_when_the_mock_stops() {
    let latency = Some(Latency::Fixed(Duration::from_millis(500)));
    let server = MockServer::start(&MockArgs { latency, ..MockArgs::default() }).await.unwrap();
    let url = server.url();
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let call = tokio::spawn(async move { post(&h2, &url, &login(EXAMPLE_PASSWORD)).await });
    // Until the request has arrived: the mock holds it for its latency.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), server.stop()).await.expect("the mock stops");
    let (v, status, body) = call.await.unwrap();
    assert_eq!((v, status), (Version::HTTP_2, 200));
    assert!(Validator::builtin().check_token(&body).is_ok());
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

/// `nehr-probe mock ARGS --listen 127.0.0.1:0`, killed on drop.
struct MockProcess {
    child: Child,
    /// The login URL it said it serves.
    url: String,
}

impl MockProcess {
    fn start(args: &[&str]) -> MockProcess {
        let mut child = nehr_probe().arg("mock").args(args).args(["--listen", "127.0.0.1:0"]).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the mock did not start")
        });
        let url = line.split_once("serving ").and_then(|(_, rest)| rest.split(' ').next()).unwrap_or_default();
        assert!(url.ends_with(TOKEN_PATH), "{line}");
        MockProcess { url: url.to_string(), child }
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.1 login over TLS offering no ALPN: the raw answer, and the protocol the
/// handshake chose.
async fn login_without_alpn(url: &str, cert: &[u8]) -> (String, Option<Vec<u8>>) {
    let addr = url.trim_start_matches("https://").split('/').next().unwrap().to_string();
    let mut roots = rustls::RootCertStore::empty();
    for c in nehr_probe::call::tls::parse_pem_certs(cert).unwrap() {
        roots.add(c).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert!(config.alpn_protocols.is_empty());
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let body = login(EXAMPLE_PASSWORD).to_string();
    let request = format!(
        "POST {TOKEN_PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // A close without close_notify is fine here: the answer is what counts.
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await.expect("an answer");
    (String::from_utf8_lossy(&answer).into_owned(), alpn)
}

#[tokio::test]
async fn mock_with_a_certificate_serves_https_with_alpn_h2_and_http1() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, _)) = crate::tls::make_cert(dir.path()) else {
        eprintln!("skipped: no openssl to make a test certificate");
        return;
    };
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let mock = MockProcess::start(&["--tls-cert", path(&cert_file), "--tls-key", path(&key_file)]);
    assert!(mock.url.starts_with("https://127.0.0.1:"), "{}", mock.url);
    let root = reqwest::Certificate::from_pem(&cert).unwrap();
    // ALPN offers h2 and http/1.1: the mock picks h2.
    let h2 = reqwest::Client::builder().add_root_certificate(root.clone()).build().unwrap();
    answers_as_documented(&h2, &mock.url, Version::HTTP_2).await;
    // ALPN offers http/1.1 only.
    let h1 = reqwest::Client::builder().add_root_certificate(root).http1_only().build().unwrap();
    answers_as_documented(&h1, &mock.url, Version::HTTP_11).await;
    let (answer, alpn) = login_without_alpn(&mock.url, &cert).await;
    assert_eq!(alpn, None);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    assert!(Validator::builtin().check_token(body.as_bytes()).is_ok(), "{body}");

    // In-process too: its URL says https.
    let args = MockArgs { tls_cert: Some(cert_file), tls_key: Some(key_file), ..MockArgs::default() };
    let server = MockServer::start(&args).await.unwrap();
    assert!(server.url().starts_with("https://127.0.0.1:"), "{}", server.url());
    answers_as_documented(&h2, &server.url(), Version::HTTP_2).await;
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn assert_mock_usage_error(args: &[&str], needle: &str) {
    let mut argv = vec!["mock", "--listen", "127.0.0.1:0"];
    argv.extend_from_slice(args);
    let r: Run = run(&argv, &[]);
    assert_eq!(r.code, Some(2), "{args:?}: {r:?}");
    assert_one_clear_error(&r);
    assert!(r.stderr.contains(needle), "{args:?}: want {needle:?} in: {}", r.stderr);
}

#[test]
fn the_mocks_tls_flags_go_together_and_bad_files_are_named_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let not_pem = file("not.pem", "not pem\n");
    assert_mock_usage_error(&["--tls-cert", &not_pem], "--tls-cert needs --tls-key too");
    assert_mock_usage_error(&["--tls-key", &not_pem], "--tls-key needs --tls-cert too");
    let absent = dir.path().join("absent.pem");
    let absent = path(&absent);
    assert_mock_usage_error(
        &["--tls-cert", absent, "--tls-key", &not_pem],
        &format!("--tls-cert {absent}: cannot be read"),
    );
    assert_mock_usage_error(
        &["--tls-cert", &not_pem, "--tls-key", &not_pem],
        &format!("--tls-cert {not_pem}: holds no PEM certificate"),
    );

    let Some(_) = crate::tls::make_cert(dir.path()) else {
        eprintln!("skipped the rest: no openssl to make a test certificate");
        return;
    };
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (cert, key) = (path(&cert), path(&key));
    assert_mock_usage_error(&["--tls-cert", cert, "--tls-key", absent], &format!("--tls-key {absent}: cannot be read"));
    assert_mock_usage_error(
        &["--tls-cert", cert, "--tls-key", cert],
        &format!("--tls-key {cert}: holds no PEM private key"),
    );
    // The key of another certificate.
    let other = tempfile::tempdir().unwrap();
    crate::tls::make_cert(other.path()).unwrap();
    let other_key = other.path().join("key.pem");
    assert_mock_usage_error(
        &["--tls-cert", cert, "--tls-key", path(&other_key)],
        &format!("--tls-key {}: does not go with --tls-cert {cert}", path(&other_key)),
    );
    let encrypted = dir.path().join("enc.key");
    let made = std::process::Command::new("openssl")
        .args(["pkey", "-in", key, "-aes256", "-passout", "pass:hunter2", "-out", path(&encrypted)])
        .status()
        .unwrap();
    assert!(made.success());
    assert_mock_usage_error(
        &["--tls-cert", cert, "--tls-key", path(&encrypted)],
        &format!("--tls-key {}: the key is encrypted", path(&encrypted)),
    );
}
