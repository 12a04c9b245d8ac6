//! Connections to the target: TCP, TLS when the URL says https, and HTTP/1.1 over
//! hyper's connection-level API, with a small pool of idle keep-alive connections.
//!
//! This is the transport under [`super::probe::Prober`] and nothing else: it knows no
//! outcomes and no schema. It is deliberately lean (no per-request URL parsing, no
//! redirect or proxy machinery) because the load engine's hot path runs through it.
//! Errors say which phase failed, so the probe can tell `connect_error` from
//! `transport_error`; they never carry a request body.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use url::Url;

use super::target::ConfigError;
use super::tls;

/// A sender of requests over one HTTP/1.1 connection.
pub type Sender = http1::SendRequest<Full<Bytes>>;

/// A connection ready for a request, with what its TLS handshake showed.
pub struct Conn {
    pub sender: Sender,
    /// The earliest `notAfter` (Unix seconds) among the certificates the server
    /// presented, as blackbox_exporter's `probe_ssl_earliest_cert_expiry`; `None` over
    /// plain HTTP or when no certificate could be read.
    pub cert_not_after: Option<i64>,
}

/// Idle connections older than this are closed rather than reused: servers close idle
/// keep-alive connections after a while (nginx 75 s, many app servers 20 s or less),
/// and a request sent just as the server closes would fail through no fault of the
/// target.
const MAX_IDLE: Duration = Duration::from_secs(4);
/// More idle connections than this are closed on return.
const MAX_POOLED: usize = 1024;
/// Header lines accepted in an answer; more is a transport error, not a memory problem.
const MAX_HEADERS: usize = 100;

/// Why a connection could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: std::io::Error },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error("TCP connect to {addr} failed: {source}")]
    Tcp { addr: SocketAddr, source: std::io::Error },
    #[error("TLS handshake with {host} failed: {source}")]
    Tls { host: String, source: std::io::Error },
    #[error("HTTP handshake failed: {0}")]
    Handshake(hyper::Error),
}

/// Makes and keeps connections to one origin.
pub struct Connector {
    host: String,
    port: u16,
    /// Pre-resolved when the URL names an IP address.
    addr: Option<SocketAddr>,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    idle: Mutex<Vec<(Conn, Instant)>>,
}

impl Connector {
    pub fn new(url: &Url, ca_cert: Option<&[u8]>, insecure: bool) -> Result<Connector, ConfigError> {
        let port = url.port_or_known_default().ok_or_else(|| ConfigError::Client("URL has no port".into()))?;
        let (host, addr) = match url.host() {
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), Some(SocketAddr::from((ip, port)))),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), Some(SocketAddr::from((ip, port)))),
            Some(url::Host::Domain(d)) => (d.to_string(), None),
            None => return Err(ConfigError::Client("URL has no host".into())),
        };
        let tls = if url.scheme() == "https" {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| ConfigError::Client(format!("{host} is not a valid TLS server name: {e}")))?;
            Some((tls::connector(ca_cert, insecure)?, name))
        } else {
            None
        };
        Ok(Connector { host, port, addr, tls, idle: Mutex::new(Vec::new()) })
    }

    /// An idle keep-alive connection if a fresh one is at hand, else a new one.
    pub async fn checkout(&self) -> Result<Conn, ConnectError> {
        loop {
            let popped = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match popped {
                Some((conn, since)) if since.elapsed() < MAX_IDLE && conn.sender.is_ready() => return Ok(conn),
                Some(_) => continue,
                None => return self.connect().await,
            }
        }
    }

    /// Returns a connection whose last answer was read to the end.
    pub fn checkin(&self, conn: Conn) {
        if conn.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_POOLED {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<Conn, ConnectError> {
        let addrs: Vec<SocketAddr> = match self.addr {
            Some(a) => vec![a],
            None => tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .map_err(|source| ConnectError::Resolve { host: self.host.clone(), source })?
                .collect(),
        };
        let mut last = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(source) => last = Some(ConnectError::Tcp { addr, source }),
            }
        }
        let Some(stream) = stream else {
            return Err(last.unwrap_or_else(|| ConnectError::NoAddress { host: self.host.clone() }));
        };
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => Ok(Conn { sender: handshake(stream).await?, cert_not_after: None }),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|source| ConnectError::Tls { host: self.host.clone(), source })?;
                let cert_not_after = tls::earliest_not_after(tls.get_ref().1.peer_certificates().unwrap_or_default());
                Ok(Conn { sender: handshake(tls).await?, cert_not_after })
            }
        }
    }
}

async fn handshake<T>(io: T) -> Result<Sender, ConnectError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .max_headers(MAX_HEADERS)
        .handshake(TokioIo::new(io))
        .await
        .map_err(ConnectError::Handshake)?;
    // The connection task ends when the sender is dropped or the peer closes.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
