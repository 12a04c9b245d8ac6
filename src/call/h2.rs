//! HTTP/2 for the one request nehr-probe makes: the handshake on a connection
//! [`super::conn`] made (h2c by prior knowledge over http, ALPN `h2` over https), and
//! one exchange on a stream of it. The hyperium `h2` crate does the framing, HPACK and
//! flow control; the connection, TLS and the phase timing stay the call path's own.
//!
//! Unlike HTTP/1.1 an HTTP/2 connection needs a task of its own: it answers the
//! server's pings and settings and carries every stream's frames. The exchange runs in
//! the calling task and stamps the call's marks as for HTTP/1.1: [`Mark::Opened`] when
//! it had to wait for a stream (the server's `SETTINGS_MAX_CONCURRENT_STREAMS`),
//! [`Mark::Written`] when the request's last frame is queued on the connection,
//! [`Mark::FirstByte`] when the answer's headers arrive.
//!
//! *Must never* buffer more than [`super::h1::MAX_HEAD`] of header list (the server is
//! told, and a larger one is an error) or `max_body` of body (plus one frame), or put a
//! byte of the answer into an error text: errors name HTTP/2's reason codes only.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use h2::Reason;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::h1::{Answer, MAX_HEAD};
use super::observation::HttpVersion;
use super::phases::{Mark, Marks};

/// The flow-control window of each stream and of the whole connection: generous, so a
/// login's answer (under a kilobyte) never waits on one. The body is read as it comes
/// and its window given back at once, so this is credit, not buffered memory.
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 4 << 20;

/// What one request is on HTTP/2: built once per account (the login) or per call (the
/// `--then` call, which carries a token).
#[derive(Debug, Clone)]
pub struct Outgoing {
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Outgoing {
    /// `method` to `url` with nehr-probe's headers and `body` (JSON when not empty).
    pub fn new(method: http::Method, url: &url::Url, body: Bytes) -> Result<Outgoing, String> {
        let uri: http::Uri = url.as_str().parse().map_err(|e| format!("URL is not a valid HTTP/2 target: {e}"))?;
        let mut headers = http::HeaderMap::with_capacity(4);
        headers.insert(http::header::ACCEPT, http::HeaderValue::from_static("application/json"));
        headers.insert(http::header::USER_AGENT, http::HeaderValue::from_static(super::h1::USER_AGENT));
        if !body.is_empty() {
            headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        }
        headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(body.len()));
        Ok(Outgoing { method, uri, headers, body })
    }

    /// The same request with `Authorization: Bearer token`; `None` when the token holds
    /// a byte a header cannot carry. The header is marked sensitive, so HPACK never
    /// indexes it.
    pub fn with_bearer(&self, token: &str) -> Option<Outgoing> {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let mut value = http::HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
        value.set_sensitive(true);
        let mut out = self.clone();
        out.headers.insert(http::header::AUTHORIZATION, value);
        Some(out)
    }

    fn request(&self) -> http::Request<()> {
        let mut request = http::Request::new(());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = http::Version::HTTP_2;
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// Why an HTTP/2 exchange failed. One line, HTTP/2's reason codes only.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the server answered in HTTP/1.x: it does not speak HTTP/2 over plain http (h2c, prior knowledge); \
         drop --http2, or use https, where HTTP/2 is negotiated"
    )]
    NotH2c,
    #[error("the HTTP/2 handshake failed: {0}")]
    Handshake(Box<Error>),
    #[error("the server refused the stream before answering ({0:?})")]
    Refused(Reason),
    #[error("the server reset the stream {1} ({0:?})")]
    Reset(Reason, Stage),
    #[error("the server closed the connection {1} (GOAWAY {0:?})")]
    GoAway(Reason, Stage),
    #[error("the answer broke HTTP/2 {1} ({0:?})")]
    Broken(Reason, Stage),
    #[error("the server broke HTTP/2 {1} ({0:?}): the connection was closed")]
    Protocol(Reason, Stage),
    #[error("answer header list larger than {} KiB", MAX_HEAD / 1024)]
    HeadTooLarge,
    #[error("the connection failed {1}: {0}")]
    Io(io::Error, Stage),
    #[error("the connection closed {0}")]
    Closed(Stage),
}

/// Where an exchange was when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    BeforeAnswer,
    InBody,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::BeforeAnswer => "before any answer",
            Stage::InBody => "in the middle of the answer's body",
        })
    }
}

impl Error {
    /// The server turned the request away before doing anything with it (a GOAWAY or
    /// a refused stream before the answer, or the connection gone): on a reused
    /// connection, the request may go again on a new one.
    pub fn unprocessed(&self) -> bool {
        matches!(
            self,
            Error::Refused(_)
                | Error::GoAway(_, Stage::BeforeAnswer)
                | Error::Closed(Stage::BeforeAnswer)
                | Error::Io(_, Stage::BeforeAnswer)
        )
    }

    /// The I/O error of a failure before any answer, for the TLS alert it may carry.
    pub fn io_before_answer(self) -> Option<io::Error> {
        match self {
            Error::Io(io, Stage::BeforeAnswer) => Some(io),
            Error::Handshake(e) => e.io_before_answer(),
            _ => None,
        }
    }

    /// The connection is of no further use: the server or this client closed it.
    pub fn connection_gone(&self) -> bool {
        !matches!(self, Error::Refused(_) | Error::Reset(..) | Error::Broken(..) | Error::HeadTooLarge)
    }

    fn of(e: h2::Error, stage: Stage, sniffed: &Sniffed) -> Error {
        if sniffed.http1() {
            return Error::NotH2c;
        }
        if e.is_io() {
            return match e.into_io() {
                Some(io) if matches!(io.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe) => {
                    Error::Closed(stage)
                }
                Some(io) => Error::Io(io, stage),
                None => Error::Closed(stage),
            };
        }
        let reason = e.reason().unwrap_or(Reason::INTERNAL_ERROR);
        match (e.is_go_away(), e.is_reset(), e.is_remote()) {
            (true, _, true) => Error::GoAway(reason, stage),
            (_, true, true) if reason == Reason::REFUSED_STREAM && stage == Stage::BeforeAnswer => {
                Error::Refused(reason)
            }
            (_, true, true) => Error::Reset(reason, stage),
            (_, true, false) if reason == Reason::PROTOCOL_ERROR && stage == Stage::BeforeAnswer => {
                // h2 resets a stream whose header list is over the limit it announced.
                Error::HeadTooLarge
            }
            (_, true, false) => Error::Broken(reason, stage),
            _ => Error::Protocol(reason, stage),
        }
    }
}

/// One HTTP/2 connection, as callers share it: cheap to clone.
#[derive(Clone)]
pub struct Session {
    send: h2::client::SendRequest<Bytes>,
    /// Set once the connection's task has ended: the connection is gone.
    closed: Arc<AtomicBool>,
    sniffed: Arc<Sniffed>,
}

impl Session {
    /// Whether the connection is gone (closed, or refusing new streams after a GOAWAY).
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Whether two handles are one connection.
    pub fn same(&self, other: &Session) -> bool {
        Arc::ptr_eq(&self.closed, &other.closed)
    }
}

/// Starts HTTP/2 on `io`: sends the preface and settings and spawns the connection's
/// task on the current runtime. The server's settings come with the first exchange.
pub async fn handshake<T>(io: T) -> Result<Session, Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let sniffed = Arc::new(Sniffed::default());
    let io = Sniff { io, sniffed: Arc::clone(&sniffed), seen: false };
    let (send, connection) = h2::client::Builder::new()
        .enable_push(false)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEAD as u32)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| Error::Handshake(Box::new(Error::of(e, Stage::BeforeAnswer, &sniffed))))?;
    let closed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&closed);
    tokio::spawn(async move {
        let _ = connection.await;
        flag.store(true, Ordering::Relaxed);
    });
    Ok(Session { send, closed, sniffed })
}

/// Sends `out` on a new stream of `session` and reads its answer, the body to its end
/// or past `max_body`. Stamps `marks` on the way and stores the status in `status` as
/// soon as the headers are read.
pub async fn exchange(
    session: &Session,
    out: &Outgoing,
    max_body: usize,
    marks: &Marks,
    status: &AtomicU32,
) -> Result<Answer, Error> {
    let failed = |e: h2::Error, stage| Error::of(e, stage, &session.sniffed);
    let mut waited = false;
    let mut ready = session.send.clone().ready();
    let mut send = std::future::poll_fn(|cx| {
        let poll = Pin::new(&mut ready).poll(cx);
        waited |= poll.is_pending();
        poll
    })
    .await
    .map_err(|e| failed(e, Stage::BeforeAnswer))?;
    if waited {
        marks.stamp(Mark::Opened);
    }
    let (response, mut stream) =
        send.send_request(out.request(), out.body.is_empty()).map_err(|e| failed(e, Stage::BeforeAnswer))?;
    if !out.body.is_empty() {
        stream.send_data(out.body.clone(), true).map_err(|e| failed(e, Stage::BeforeAnswer))?;
    }
    marks.stamp(Mark::Written);
    let response = response.await.map_err(|e| failed(e, Stage::BeforeAnswer))?;
    marks.stamp(Mark::FirstByte);
    let code = response.status().as_u16();
    status.store(u32::from(code), Ordering::Relaxed);
    let mut answer = Answer {
        status: code,
        version: HttpVersion::Http2,
        body: Bytes::new(),
        oversized: false,
        total: 0,
        reusable: true,
    };
    let mut body = response.into_body();
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| failed(e, Stage::InBody))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        answer.total += chunk.len() as u64;
        if answer.total > max_body as u64 {
            // Not read further: dropping the stream resets it (CANCEL), the connection
            // stays usable.
            answer.oversized = true;
            return Ok(answer);
        }
        if buf.is_empty() && body.is_end_stream() {
            answer.body = chunk;
            return Ok(answer);
        }
        buf.extend_from_slice(&chunk);
    }
    answer.body = buf.freeze();
    Ok(answer)
}

/// What the first bytes the server sent looked like: an HTTP/1.x status line where an
/// HTTP/2 server's settings frame belongs says the server does not speak h2c.
#[derive(Debug, Default)]
struct Sniffed {
    /// The first eight bytes read, little-endian, and whether any came.
    first: AtomicU64,
    any: AtomicBool,
}

impl Sniffed {
    fn http1(&self) -> bool {
        self.any.load(Ordering::Relaxed) && self.first.load(Ordering::Relaxed).to_le_bytes().starts_with(b"HTTP/1.")
    }
}

/// The connection's bytes, the first few noted in passing.
struct Sniff<T> {
    io: T,
    sniffed: Arc<Sniffed>,
    seen: bool,
}

impl<T: AsyncRead + Unpin> AsyncRead for Sniff<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if !this.seen && buf.filled().len() >= before + 8 {
            this.seen = true;
            let mut first = [0u8; 8];
            first.copy_from_slice(&buf.filled()[before..before + 8]);
            this.sniffed.first.store(u64::from_le_bytes(first), Ordering::Relaxed);
            this.sniffed.any.store(true, Ordering::Relaxed);
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Sniff<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
