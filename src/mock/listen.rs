//! How the mock is reached: it accepts connections and serves its router on each, over
//! HTTP/1.1 or HTTP/2 on the same port. In plain text a client that opens with HTTP/2's
//! connection preface (h2c by prior knowledge) gets HTTP/2 and any other gets
//! HTTP/1.1; with `--tls-cert` and `--tls-key` it serves https, offering ALPN `h2` and
//! `http/1.1` (a client that offers neither gets HTTP/1.1).
//!
//! It knows nothing of the login: the router's handlers are [`super`]'s. It must stay
//! cheap per request (it is the benchmark's target), never wait on one client to
//! accept another, and on stop let the answers in flight finish.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Streams one HTTP/2 connection may have open at once. A load test multiplexes its
/// concurrency over few connections; 1024 lets `-c 1000` share one (hyper's default
/// is 200, Go's 250, nginx's 128).
pub const MAX_CONCURRENT_STREAMS: u32 = 1024;
/// Flow-control windows, fixed: a stream's as hyper's default (1 MiB, where the
/// protocol's is 64 KiB), the connection's wide enough that a thousand streams' request
/// bodies never wait on a WINDOW_UPDATE. Not adaptive: BDP estimation pings the client
/// on bursts of data, a frame and a wake-up that a loopback benchmark does not need.
const STREAM_WINDOW: u32 = 1024 * 1024;
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;
/// How long a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection builder: HTTP/1.1 with keep-alive, or HTTP/2 when the connection
/// opens with its preface.
fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true);
    builder
        .http2()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .adaptive_window(false);
    builder
}

/// Serves `router` on `listener` (over TLS with `tls`) until `stop`, then lets the
/// answers in flight finish: HTTP/1.1 connections close once idle, HTTP/2 ones are
/// sent GOAWAY and close when their open streams are answered.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(builder());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let Some(stream) = crate::util::net::accept(&listener, &stop).await else { break };
        let service = TowerToHyperService::new(router.clone());
        let (builder, watcher) = (Arc::clone(&builder), graceful.watcher());
        let Some(acceptor) = acceptor.clone() else {
            tokio::spawn(async move {
                let _ = watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await;
            });
            continue;
        };
        let stop = stop.clone();
        tokio::spawn(async move {
            let tls = tokio::select! {
                _ = stop.cancelled() => return,
                done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => match done {
                    Ok(Ok(tls)) => tls,
                    // A failed or stalled handshake: rustls has sent its alert, if any.
                    _ => return,
                },
            };
            let _ = watcher.watch(builder.serve_connection(TokioIo::new(tls), service)).await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The TLS config of `--tls-cert` and `--tls-key`: the certificate chain and its key,
/// ALPN `h2` then `http/1.1`. Every problem is one line naming the file.
pub fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let read = |flag: &str, path: &Path| {
        crate::util::units::read_input_file(path)
            .map_err(|e| anyhow::anyhow!("{flag} {}: cannot be read: {e}", path.display()))
    };
    let certs = crate::call::tls::parse_pem_certs(read("--tls-cert", cert)?.as_bytes())
        .map_err(|e| anyhow::anyhow!("--tls-cert {}: not PEM: {}", cert.display(), crate::util::fmt::one_line(&e)))?;
    if certs.is_empty() {
        anyhow::bail!("--tls-cert {}: holds no PEM certificate", cert.display());
    }
    let key_text = read("--tls-key", key)?;
    if key_text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || key_text.contains("Proc-Type: 4,ENCRYPTED") {
        anyhow::bail!("--tls-key {}: the key is encrypted; give it decrypted", key.display());
    }
    // Its words could quote a line of the file: none of them.
    let private = PrivateKeyDer::from_pem_slice(key_text.as_bytes())
        .map_err(|_| anyhow::anyhow!("--tls-key {}: holds no PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| {
            let why = crate::util::fmt::one_line(&e.to_string());
            anyhow::anyhow!("--tls-key {}: does not go with --tls-cert {}: {why}", key.display(), cert.display())
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
