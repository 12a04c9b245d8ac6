//! The exporter's HTTP(S) server: accepts connections on `--listen` and serves the
//! router on each, with the limits that keep it answering when clients misbehave: at
//! most `--max-connections` at once, `--header-timeout` to send a request's headers (a
//! slowloris client is cut off, and so is a connection idle between requests), 16 KiB
//! of request line and headers, and with TLS the handshake within the same time.
//!
//! It must never let a plain-http request through on a TLS port (it answers 400 and
//! closes), never wait on one client to accept another, and never log per connection
//! (a flood of bad clients would flood the journal).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::access::Access;

/// Request line plus headers, at most (hyper answers 431 past it).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Headers in one request, at most.
pub const MAX_HEADERS: usize = 64;
/// How long answers in flight get to finish once the server is told to stop.
const DRAIN: Duration = Duration::from_secs(5);

/// What one misbehaving client may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// What a TLS port answers to a plain-http request, before closing.
const PLAIN_ON_TLS: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nThis port speaks HTTPS only: use an https:// URL.\n";

/// Serves `router` on `listener` until `stop`, then lets answers in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    access: Arc<Access>,
    limits: Limits,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let builder = Arc::new(builder);
    loop {
        // A free slot first: at the cap, new connections wait in the kernel's backlog
        // until a client finishes or times out.
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let Some(stream) = crate::util::net::accept(&listener, &stop).await else { break };
        let service = TowerToHyperService::new(router.clone());
        let (builder, access, watcher) = (Arc::clone(&builder), Arc::clone(&access), graceful.watcher());
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if access.tls_on() {
                let Some(tls) = handshake(stream, &access, limits.header_timeout, &stop).await else { return };
                let _ = watcher.watch(builder.serve_connection(TokioIo::new(tls), service)).await;
            } else {
                let _ = watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await;
            }
        });
    }
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

/// The TLS handshake under the config in force, within `timeout`; a plain-http
/// request gets a 400 saying to use https.
async fn handshake(
    mut stream: TcpStream,
    access: &Access,
    timeout: Duration,
    stop: &CancellationToken,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let config = access.current().tls.clone()?;
    let work = async {
        let mut first = [0u8; 1];
        // 0x16: a TLS handshake record. Anything else is not TLS.
        if stream.peek(&mut first).await.ok()? == 0 {
            return None;
        }
        if first[0] != 0x16 {
            let _ = stream.write_all(PLAIN_ON_TLS).await;
            let _ = stream.shutdown().await;
            return None;
        }
        tokio_rustls::TlsAcceptor::from(config).accept(stream).await.ok()
    };
    tokio::select! {
        _ = stop.cancelled() => None,
        r = tokio::time::timeout(timeout, work) => r.ok().flatten(),
    }
}
