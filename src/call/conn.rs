//! Connections to the target: TCP, TLS when the URL says https, and HTTP/1.1 over them
//! through [`super::h1`], with a small pool of idle keep-alive connections; with
//! `--http2`, HTTP/2 through [`super::h2`] on lanes of up to `--streams` calls each.
//!
//! This is the transport under [`super::probe::Prober`] and nothing else: it knows no
//! outcomes and no schema. It is deliberately lean (no per-request URL parsing, no
//! redirect or proxy machinery, no task or channel per connection: a call's exchange
//! runs in the calling task) because the load engine's hot path runs through it.
//! Errors say which phase failed, so the probe can tell `connect_error` from
//! `transport_error`; they never carry a request body.
//!
//! It stamps the call's [`Marks`] as a connection is made ([`super::h1`] stamps the
//! request written and the answer's first byte): clock reads on the way, no extra
//! system call.
//!
//! A connection goes back to the pool only after its answer was read exactly to its
//! end and the server allows it; one whose exchange failed or was cut short by the
//! timeout is dropped (closed). A pooled connection the server has closed meanwhile
//! must not cost a failed call, so two checks: before reuse, one read polled once
//! (no wait) must find nothing, neither end of stream nor stray bytes; and a reused
//! connection that fails before the first byte of its answer (the server closed it as
//! the request went out) is replaced by a new one, once, for the same call.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use url::Url;

use super::h1;
use super::h2;
use super::phases::{Connection, Mark, Marks};
use super::target::ConfigError;
use super::tls::{self, ClientIdentity, ClientTls, Peeked};
use super::tls_error::Handshake;
use super::tls_version::TlsVersions;

/// A connection ready for a request, with what its TLS handshake showed.
pub struct Conn {
    io: Io,
    /// What was read of the answer; empty between exchanges.
    buf: BytesMut,
    /// The earliest `notAfter` (Unix seconds) among the certificates the server
    /// presented, as blackbox_exporter's `probe_ssl_earliest_cert_expiry`; `None` over
    /// plain HTTP or when no certificate could be read.
    pub cert_not_after: Option<i64>,
    /// The TLS version negotiated, as blackbox_exporter names it (`TLS 1.3`).
    pub tls_version: Option<&'static str>,
    /// The cipher suite negotiated, by its IANA name.
    pub tls_cipher: Option<&'static str>,
    /// The server asked for a client certificate in the handshake (given or not).
    asked: bool,
    /// The server's verdict on the handshake may still be to come (TLS 1.3 sends it
    /// with the first read): no exchange has been made on it yet.
    fresh: bool,
    /// It speaks HTTP/2: ALPN chose `h2`, or h2c by prior knowledge over http.
    h2: bool,
}

/// Idle connections older than this are closed rather than reused: servers close idle
/// keep-alive connections after a while (nginx 75 s, many app servers 20 s or less),
/// and a request sent just as the server closes would fail through no fault of the
/// target.
const MAX_IDLE: Duration = Duration::from_secs(4);
/// More idle connections than this are closed on return.
const MAX_POOLED: usize = 1024;

/// Why a connection could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: std::io::Error },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error("TCP connect to {addr} failed: {source}")]
    Tcp { addr: SocketAddr, source: std::io::Error },
    /// `why` in words ([`super::tls_error::handshake`]).
    #[error("TLS handshake with {host} failed: {why}")]
    Tls { host: String, why: String },
}

/// Why an exchange failed below HTTP.
#[derive(Debug)]
pub enum Failure {
    Connect(ConnectError),
    Transport(Transport),
}

/// A failure on an open connection, in the words of the protocol it spoke.
#[derive(Debug, thiserror::Error)]
pub enum Transport {
    #[error(transparent)]
    H1(#[from] h1::Error),
    #[error(transparent)]
    H2(#[from] h2::Error),
}

/// One exchange: the request, the most body to read, and where to note what was seen
/// (the marks, and the status as soon as it is read).
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub request: Request<'a>,
    pub max_body: usize,
    pub marks: &'a Marks,
    pub status: &'a AtomicU32,
}

/// One request, in the form each protocol sends.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// HTTP/1.1: head and body, written with one call.
    pub wire: &'a [u8],
    /// HTTP/2: what its frames carry.
    pub h2: &'a h2::Outgoing,
}

/// An answer read to its end, and the facts of the connection it came on.
pub struct Reply {
    pub answer: h1::Answer,
    pub cert_not_after: Option<i64>,
    pub tls_version: Option<&'static str>,
    pub tls_cipher: Option<&'static str>,
    /// The server asked for a client certificate and none was given.
    pub cert_wanted: bool,
}

/// Makes and keeps connections to one origin.
pub struct Connector {
    host: String,
    port: u16,
    /// Pre-resolved when the URL names an IP address or `--resolve` pins one: then no
    /// name is looked up (and there is no `resolve` phase).
    addr: Option<SocketAddr>,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    /// What the handshake's words need to know ([`super::tls_error`]).
    versions: TlsVersions,
    client_cert: bool,
    /// With keep-alive off, every call opens a connection of its own and closes it.
    keepalive: bool,
    idle: Mutex<Vec<(Conn, Instant)>>,
    /// `--http2`: h2c by prior knowledge over http, ALPN `h2` offered over https.
    http2: bool,
    /// HTTP/2: the calls in flight one connection carries at most (`--streams`).
    streams: usize,
    /// HTTP/2 connections with keep-alive, each carrying up to `streams` calls.
    lanes: Mutex<Vec<Arc<Lane>>>,
    /// The server chose HTTP/1.1 by ALPN: calls go the HTTP/1.1 way from then on.
    h1_only: AtomicBool,
}

/// How a [`Connector`] reaches its origin, besides the URL.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions<'a> {
    pub ca_cert: Option<&'a [u8]>,
    pub insecure: bool,
    /// Presented when the server asks (`--client-cert`, `--client-key`).
    pub identity: Option<&'a ClientIdentity>,
    pub versions: TlsVersions,
    /// The address to connect to instead of looking the host up (`--resolve`); TLS
    /// still checks the URL's host name.
    pub pinned: Option<std::net::IpAddr>,
    pub keepalive: bool,
    /// `--http2`.
    pub http2: bool,
    /// `--streams`: calls one HTTP/2 connection carries at once (1 or more).
    pub streams: usize,
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
        let tls = if url.scheme() == "https" {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| ConfigError::Client(format!("{host} is not a valid TLS server name: {e}")))?;
            let connector = tls::connector(ClientTls {
                ca_cert: options.ca_cert,
                insecure: options.insecure,
                // Keep-alive off stands for distinct users' clients: none resumes a session.
                resume: options.keepalive,
                versions: options.versions,
                identity: options.identity,
                http2: options.http2,
            })?;
            Some((connector, name))
        } else {
            None
        };
        Ok(Connector {
            host,
            port,
            addr,
            tls,
            versions: options.versions,
            client_cert: options.identity.is_some(),
            keepalive: options.keepalive,
            idle: Mutex::new(Vec::new()),
            http2: options.http2,
            streams: options.streams.max(1),
            lanes: Mutex::new(Vec::new()),
            h1_only: AtomicBool::new(false),
        })
    }

    /// What the handshake's words need, with what this one showed.
    fn handshake(&self, asked: bool, server_hello: Option<u16>) -> Handshake {
        Handshake { versions: self.versions, client_cert: self.client_cert, asked, server_hello }
    }

    /// The failure of an exchange on `conn`: on a new connection's first exchange, a
    /// failure before any answer that is the server's verdict on the handshake is a
    /// connect error ([`super::tls_error::after_handshake`]).
    fn failed(&self, conn: &Conn, e: h1::Error) -> Failure {
        if conn.fresh && conn.tls_version.is_some() {
            let handshake = self.handshake(conn.asked, None);
            if let Some(why) = super::tls_error::after_handshake(&e, &handshake) {
                return Failure::Connect(ConnectError::Tls { host: self.host.clone(), why });
            }
        }
        Failure::Transport(e.into())
    }

    /// [`Connector::failed`] for HTTP/2: the server's verdict on a new connection's
    /// handshake comes as an alert on the first read.
    fn failed_h2(&self, facts: &Facts, fresh: bool, e: h2::Error) -> Failure {
        if fresh && facts.tls_version.is_some() && matches!(e, h2::Error::Io(..) | h2::Error::Handshake(_)) {
            let handshake = self.handshake(facts.asked, None);
            let e = match e.io_before_answer() {
                Some(io) => h1::Error::FailedBeforeAnswer(io),
                None => h1::Error::ClosedBeforeAnswer,
            };
            return match super::tls_error::after_handshake(&e, &handshake) {
                Some(why) => Failure::Connect(ConnectError::Tls { host: self.host.clone(), why }),
                None => Failure::Transport(e.into()),
            };
        }
        Failure::Transport(e.into())
    }

    /// Sends `request` and reads its answer, on an idle keep-alive connection if one is
    /// at hand, else on a new one; stamps `marks` on the way and `status` as soon as the
    /// answer's head is read. The connection goes back to the pool only when the answer
    /// was read to its end and may be followed by another. With `--http2`, on a stream
    /// of an HTTP/2 connection, unless the server chose HTTP/1.1.
    pub async fn exchange(&self, call: &Call<'_>) -> Result<Reply, Failure> {
        let marks = call.marks;
        if self.http2 && !self.h1_only.load(Ordering::Relaxed) {
            return self.exchange_h2(call).await;
        }
        let (conn, reused) = self.checkout(marks).await.map_err(Failure::Connect)?;
        self.exchange_h1(conn, reused, call).await
    }

    /// [`Connector::exchange`] over HTTP/1.1 on `conn`; a connection that turned out to
    /// speak HTTP/2 (ALPN) carries this one exchange over it instead.
    async fn exchange_h1(&self, mut conn: Conn, reused: bool, call: &Call<'_>) -> Result<Reply, Failure> {
        if conn.h2 {
            return self.once_h2(conn, call).await;
        }
        let mut result =
            h1::exchange(&mut conn.io, &mut conn.buf, call.request.wire, call.max_body, call.marks, call.status).await;
        if reused && result.as_ref().is_err_and(h1::Error::before_answer) {
            // The server closed it as the request went out: once more, on a new one.
            conn = Box::pin(self.connect(call.marks)).await.map_err(Failure::Connect)?;
            call.marks.stamp(Mark::Ready);
            if conn.h2 {
                return self.once_h2(conn, call).await;
            }
            result =
                h1::exchange(&mut conn.io, &mut conn.buf, call.request.wire, call.max_body, call.marks, call.status)
                    .await;
        }
        let answer = match result {
            Ok(answer) => answer,
            Err(e) => return Err(self.failed(&conn, e)),
        };
        conn.fresh = false;
        let reply = Reply {
            answer,
            cert_not_after: conn.cert_not_after,
            tls_version: conn.tls_version,
            tls_cipher: conn.tls_cipher,
            cert_wanted: conn.asked && !self.client_cert,
        };
        if reply.answer.reusable {
            self.checkin(conn);
        }
        Ok(reply)
    }

    /// An idle keep-alive connection if a fresh, open one is at hand (and `true`), else
    /// a new one; stamps `marks` on the way (which connection, and when it was ready).
    async fn checkout(&self, marks: &Marks) -> Result<(Conn, bool), ConnectError> {
        while let Some((mut conn, since)) = self.pooled() {
            if since.elapsed() >= MAX_IDLE || !conn.still_open() {
                continue;
            }
            marks.set_connection(Connection::Reused);
            marks.stamp(Mark::Ready);
            return Ok((conn, true));
        }
        // Boxed: making a connection (a TLS handshake's state included) is a large
        // future, and inline it would make every call's future as large (1952 bytes
        // against 952), copied whole each time the call is moved.
        let conn = Box::pin(self.connect(marks)).await?;
        marks.stamp(Mark::Ready);
        Ok((conn, false))
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
    fn checkin(&self, conn: Conn) {
        if !self.keepalive {
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
        let Some((connector, name)) = &self.tls else {
            return Ok(Conn { h2: self.http2, ..Conn::new(Io::Plain(stream)) });
        };
        let handshake = connector.connect(name.clone(), Peeked::new(stream)).into_fallible();
        let (tls, asked) = match tls::watch(handshake).await {
            (Ok(tls), asked) => (tls, asked),
            (Err((e, io)), asked) => {
                let why = super::tls_error::handshake(&e, &self.handshake(asked, io.server_hello_version()));
                return Err(ConnectError::Tls { host: self.host.clone(), why });
            }
        };
        marks.stamp(Mark::Secured);
        let session = tls.get_ref().1;
        let cert_not_after = tls::earliest_not_after(session.peer_certificates().unwrap_or_default());
        let tls_version = session.protocol_version().map(tls::version_name);
        let tls_cipher = session.negotiated_cipher_suite().map(|s| tls::cipher_name(s.suite()));
        let h2 = session.alpn_protocol() == Some(b"h2");
        Ok(Conn { cert_not_after, tls_version, tls_cipher, asked, h2, ..Conn::new(Io::Tls(Box::new(tls))) })
    }
}

/// What a connection's TLS handshake showed, kept beside an HTTP/2 session.
#[derive(Debug, Clone, Copy)]
struct Facts {
    cert_not_after: Option<i64>,
    tls_version: Option<&'static str>,
    tls_cipher: Option<&'static str>,
    asked: bool,
}

/// One HTTP/2 connection's worth of calls: the connection (or the call making it), and
/// how many calls it carries now.
#[derive(Default)]
struct Lane {
    state: Mutex<LaneState>,
    in_flight: AtomicUsize,
}

#[derive(Default)]
enum LaneState {
    #[default]
    Empty,
    /// A call is making the connection; the others of the lane wait for it (the
    /// receiver ends when it is done, made or failed).
    Connecting(tokio::sync::watch::Receiver<()>),
    Live(h2::Session, Facts),
}

/// A call's place in a lane, given back when the call ends (or is cut short).
struct Seat(Arc<Lane>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The making of a lane's connection: should the call making it be cut short, the
/// lane is left empty for the next, and its waiters woken.
struct Making<'a> {
    lane: &'a Lane,
    _done: tokio::sync::watch::Sender<()>,
    made: bool,
}

impl Drop for Making<'_> {
    fn drop(&mut self) {
        if !self.made {
            *self.lane.state.lock().unwrap_or_else(|p| p.into_inner()) = LaneState::Empty;
        }
    }
}

/// What a call got from its lane: a session to open a stream on, or (the server chose
/// HTTP/1.1 by ALPN) a connection for an HTTP/1.1 exchange.
enum Got {
    H2 { session: h2::Session, facts: Facts, new: bool },
    H1(Conn),
}

impl Connector {
    /// [`Connector::exchange`] on HTTP/2: with keep-alive, on a stream of the first
    /// connection carrying fewer than `--streams` calls (a new one when all are full);
    /// without, on a connection of its own. A reused connection that turns the request
    /// away unprocessed (GOAWAY, a refused stream, closed) is replaced once.
    async fn exchange_h2(&self, call: &Call<'_>) -> Result<Reply, Failure> {
        let marks = call.marks;
        if !self.keepalive {
            let conn = Box::pin(self.connect(marks)).await.map_err(Failure::Connect)?;
            marks.stamp(Mark::Ready);
            return self.exchange_h1(conn, false, call).await;
        }
        let seat = self.seat();
        let mut retried = false;
        loop {
            let (session, facts, new) = match self.session(&seat.0, marks).await? {
                Got::H2 { session, facts, new } => (session, facts, new),
                Got::H1(conn) => return self.exchange_h1(conn, false, call).await,
            };
            marks.stamp(Mark::Ready);
            match h2::exchange(&session, call.request.h2, call.max_body, call.marks, call.status).await {
                Ok(answer) => return Ok(self.reply_h2(answer, &facts)),
                Err(e) if !new && !retried && e.unprocessed() => {
                    seat.0.forget(&session);
                    retried = true;
                }
                Err(e) => {
                    if e.connection_gone() {
                        seat.0.forget(&session);
                    }
                    return Err(self.failed_h2(&facts, new, e));
                }
            }
        }
    }

    /// One exchange on a new connection that speaks HTTP/2, which closes after it.
    async fn once_h2(&self, conn: Conn, call: &Call<'_>) -> Result<Reply, Failure> {
        let facts = conn.facts();
        let session = h2::handshake(conn.io).await.map_err(|e| self.failed_h2(&facts, true, e))?;
        match h2::exchange(&session, call.request.h2, call.max_body, call.marks, call.status).await {
            Ok(answer) => Ok(self.reply_h2(answer, &facts)),
            Err(e) => Err(self.failed_h2(&facts, true, e)),
        }
    }

    fn reply_h2(&self, answer: h1::Answer, facts: &Facts) -> Reply {
        Reply {
            answer,
            cert_not_after: facts.cert_not_after,
            tls_version: facts.tls_version,
            tls_cipher: facts.tls_cipher,
            cert_wanted: facts.asked && !self.client_cert,
        }
    }

    /// A place in the first lane with room for one more call, a new lane when every
    /// one is full: so `c` calls in flight use ceil(c / streams) connections.
    fn seat(&self) -> Seat {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let lane = match lanes.iter().find(|l| l.in_flight.load(Ordering::Relaxed) < self.streams) {
            Some(lane) => Arc::clone(lane),
            None => {
                let lane = Arc::new(Lane::default());
                lanes.push(Arc::clone(&lane));
                lane
            }
        };
        lane.in_flight.fetch_add(1, Ordering::Relaxed);
        Seat(lane)
    }

    /// The lane's connection: the live one, the one another call is making (waited
    /// for), or a new one made by this call.
    async fn session(&self, lane: &Lane, marks: &Marks) -> Result<Got, Failure> {
        let done = loop {
            let wait = {
                let mut state = lane.state.lock().unwrap_or_else(|p| p.into_inner());
                match &*state {
                    LaneState::Live(session, facts) if !session.closed() => {
                        marks.set_connection(super::phases::Connection::Reused);
                        return Ok(Got::H2 { session: session.clone(), facts: *facts, new: false });
                    }
                    LaneState::Connecting(done) => done.clone(),
                    _ => {
                        let (tx, rx) = tokio::sync::watch::channel(());
                        *state = LaneState::Connecting(rx);
                        break tx;
                    }
                }
            };
            let mut wait = wait;
            // Ends when the call making the connection is done with it, either way.
            let _ = wait.changed().await;
        };
        let mut making = Making { lane, _done: done, made: false };
        let conn = Box::pin(self.connect(marks)).await.map_err(Failure::Connect)?;
        if !conn.h2 {
            // The server chose HTTP/1.1: so be it, for this call and the next.
            self.h1_only.store(true, Ordering::Relaxed);
            return Ok(Got::H1(conn));
        }
        let facts = conn.facts();
        let session = h2::handshake(conn.io).await.map_err(|e| self.failed_h2(&facts, true, e))?;
        *lane.state.lock().unwrap_or_else(|p| p.into_inner()) = LaneState::Live(session.clone(), facts);
        making.made = true;
        Ok(Got::H2 { session, facts, new: true })
    }
}

impl Lane {
    /// Drops `session` from the lane, if it is still the lane's: it failed.
    fn forget(&self, session: &h2::Session) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(&*state, LaneState::Live(s, _) if s.same(session)) {
            *state = LaneState::Empty;
        }
    }
}

impl Conn {
    /// A new connection, before what its handshake showed is known.
    fn new(io: Io) -> Conn {
        Conn {
            io,
            buf: BytesMut::new(),
            cert_not_after: None,
            tls_version: None,
            tls_cipher: None,
            asked: false,
            fresh: true,
            h2: false,
        }
    }

    fn facts(&self) -> Facts {
        Facts {
            cert_not_after: self.cert_not_after,
            tls_version: self.tls_version,
            tls_cipher: self.tls_cipher,
            asked: self.asked,
        }
    }

    /// Whether an idle connection can be used again: one read, polled once without
    /// waiting, finds nothing to read. End of stream (the server closed it), an error,
    /// or bytes nobody asked for all mean no. Usually no system call: tokio takes a
    /// short read (the last answer's) as the socket drained, and reads again only once
    /// the runtime has seen the socket readable, as a close makes it (measured: one
    /// send and one receive a request, as before). A close the runtime has not seen
    /// yet is what the retry in [`Connector::exchange`] is for.
    fn still_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut byte = [0u8; 1];
        let mut probe = ReadBuf::new(&mut byte);
        Pin::new(&mut self.io).poll_read(&mut cx, &mut probe).is_pending()
    }
}

/// A connection's byte stream, plain or TLS.
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<Peeked<TcpStream>>>),
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
