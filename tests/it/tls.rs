//! https targets: the probe's own rustls connector trusts `--ca-cert`, refuses an
//! unknown issuer as `connect_error`, and `--insecure` accepts any certificate. The
//! certificate is made for the test with the openssl command line; the TLS server is
//! tokio-rustls on 127.0.0.1. The certificate's expiry is read from the handshake and
//! judged by `check --cert-warning/--cert-critical`, as check_curl and blackbox do.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nehr_probe::call::Outcome;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Run, call_target, check, spec_answer, target};

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files in `dir`.
fn make_cert(dir: &Path) -> Option<(Vec<u8>, Vec<u8>)> {
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=nehr-probe test", "-addext", "subjectAltName=IP:127.0.0.1"])
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

/// Serves the spec's answer over TLS on a loopback port, one answer per connection.
async fn tls_server(cert: &[u8], key: &[u8]) -> std::net::SocketAddr {
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
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let body = spec_answer().to_string();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

/// A certificate made in `dir` (its PEM, also `dir/cert.pem`) and a TLS server using it;
/// `None`, with a note, where there is no openssl (never under CI).
async fn served_over_tls(dir: &Path) -> Option<(Vec<u8>, std::net::SocketAddr)> {
    let Some((cert, key)) = make_cert(dir) else {
        eprintln!("skipped: no openssl to make a test certificate");
        return None;
    };
    let addr = tls_server(&cert, &key).await;
    Some((cert, addr))
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
