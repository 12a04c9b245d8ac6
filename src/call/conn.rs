//! Connections to the target: TCP, TLS when the URL says https, and HTTP/1.1 over
//! hyper's connection-level API, with a small pool of idle keep-alive connections.
//!
//! This is the transport under [`super::probe::Prober`] and nothing else: it knows no
//! outcomes and no schema. It is deliberately lean (no per-request URL parsing, no
//! redirect or proxy machinery) because the load engine's hot path runs through it.
//! Errors say which phase failed, so the probe can tell `connect_error` from
//! `transport_error`; they never carry a request body.
//!
//! It stamps the call's [`Marks`] as a connection is made, and its I/O layer
//! ([`Timed`]) notes when a request was written and its answer's first byte read: clock
//! reads on calls the connection makes anyway, no extra system call.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use url::Url;

use super::phases::{Connection, Mark, Marks};
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
    /// The TLS version negotiated, as blackbox_exporter names it (`TLS 1.3`).
    pub tls_version: Option<&'static str>,
    /// When the last request on it was written and its answer's first byte came.
    pub io: Arc<Marks>,
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
    /// Pre-resolved when the URL names an IP address or `--resolve` pins one: then no
    /// name is looked up (and there is no `resolve` phase).
    addr: Option<SocketAddr>,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    /// With keep-alive off, every call opens a connection of its own and closes it.
    keepalive: bool,
    idle: Mutex<Vec<(Conn, Instant)>>,
}

/// How a [`Connector`] reaches its origin, besides the URL.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions<'a> {
    pub ca_cert: Option<&'a [u8]>,
    pub insecure: bool,
    /// The address to connect to instead of looking the host up (`--resolve`); TLS
    /// still checks the URL's host name.
    pub pinned: Option<std::net::IpAddr>,
    pub keepalive: bool,
}

impl Connector {
    pub fn new(url: &Url, options: ConnectOptions<'_>) -> Result<Connector, ConfigError> {
        let port = url.port_or_known_default().ok_or_else(|| ConfigError::Client("URL has no port".into()))?;
        let (host, mut addr) = match url.host() {
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), Some(SocketAddr::from((ip, port)))),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), Some(SocketAddr::from((ip, port)))),
            Some(url::Host::Domain(d)) => (d.to_string(), None),
            None => return Err(ConfigError::Client("URL has no host".into())),
        };
        if let Some(ip) = options.pinned {
            addr = Some(SocketAddr::new(ip, port));
        }
        let (ca_cert, insecure) = (options.ca_cert, options.insecure);
        let tls = if url.scheme() == "https" {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| ConfigError::Client(format!("{host} is not a valid TLS server name: {e}")))?;
            // Keep-alive off stands for distinct users' clients: none resumes a session.
            Some((tls::connector(ca_cert, insecure, options.keepalive)?, name))
        } else {
            None
        };
        Ok(Connector { host, port, addr, tls, keepalive: options.keepalive, idle: Mutex::new(Vec::new()) })
    }

    pub fn keepalive(&self) -> bool {
        self.keepalive
    }

    /// An idle keep-alive connection if a fresh one is at hand, else a new one; stamps
    /// `marks` on the way (which connection, and when it was ready).
    pub async fn checkout(&self, marks: &Marks) -> Result<Conn, ConnectError> {
        while let Some((mut conn, since)) = self.pooled() {
            if since.elapsed() >= MAX_IDLE || conn.sender.is_closed() {
                continue;
            }
            // Just returned, its connection task may not have taken note yet that the
            // last answer ended: wait for it rather than open another connection (an
            // error here means the peer closed it meanwhile).
            if !conn.sender.is_ready() && conn.sender.ready().await.is_err() {
                continue;
            }
            marks.set_connection(Connection::Reused);
            marks.stamp(Mark::Ready);
            return Ok(conn);
        }
        let conn = self.connect(marks).await?;
        marks.stamp(Mark::Ready);
        Ok(conn)
    }

    /// The most recently returned idle connection; never one with keep-alive off.
    fn pooled(&self) -> Option<(Conn, Instant)> {
        if !self.keepalive {
            return None;
        }
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// Returns a connection whose last answer was read to the end (with keep-alive off,
    /// closes it).
    pub fn checkin(&self, conn: Conn) {
        if !self.keepalive || conn.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_POOLED {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self, marks: &Marks) -> Result<Conn, ConnectError> {
        let addrs: Vec<SocketAddr> = match self.addr {
            Some(a) => vec![a],
            None => {
                let found = tokio::net::lookup_host((self.host.as_str(), self.port))
                    .await
                    .map_err(|source| ConnectError::Resolve { host: self.host.clone(), source })?
                    .collect();
                marks.stamp(Mark::Resolved);
                found
            }
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
        marks.stamp(Mark::Connected);
        marks.set_connection(Connection::New);
        let _ = stream.set_nodelay(true);
        let io = Arc::new(Marks::new(Instant::now()));
        match &self.tls {
            None => {
                let sender = handshake(stream, &io).await?;
                Ok(Conn { sender, cert_not_after: None, tls_version: None, io })
            }
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|source| ConnectError::Tls { host: self.host.clone(), source })?;
                marks.stamp(Mark::Secured);
                let session = tls.get_ref().1;
                let cert_not_after = tls::earliest_not_after(session.peer_certificates().unwrap_or_default());
                let tls_version = session.protocol_version().map(tls::version_name);
                Ok(Conn { sender: handshake(tls, &io).await?, cert_not_after, tls_version, io })
            }
        }
    }
}

async fn handshake<T>(io: T, marks: &Arc<Marks>) -> Result<Sender, ConnectError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let timed = Timed { io, marks: Arc::clone(marks), awaiting: false };
    let (sender, conn) = http1::Builder::new()
        .max_headers(MAX_HEADERS)
        .handshake(TokioIo::new(timed))
        .await
        .map_err(ConnectError::Handshake)?;
    // The connection task ends when the sender is dropped or the peer closes.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A connection's I/O, noting in its marks when a request was last written
/// ([`Mark::Written`]) and when the first byte after it came ([`Mark::FirstByte`]).
/// One clock read per write and one per answer; reads and writes pass through unchanged.
struct Timed<T> {
    io: T,
    marks: Arc<Marks>,
    /// A request was written and no byte of its answer has come yet.
    awaiting: bool,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Timed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.awaiting && matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.awaiting = false;
            this.marks.stamp(Mark::FirstByte);
        }
        polled
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> Timed<T> {
    fn wrote(&mut self, polled: &Poll<std::io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(n)) if *n > 0) {
            self.awaiting = true;
            self.marks.stamp(Mark::Written);
        }
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Timed<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(&polled);
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
