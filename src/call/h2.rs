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
//! told, and a larger one is an error; on the way h2 holds at most the CONTINUATION
//! frames such a list needs, about 100 KiB) or `max_body` of body (plus one frame), or
//! put a byte of the answer into an error text: errors name HTTP/2's reason codes only.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
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
    /// Over plain http, the server closed (or reset) the connection without one byte of
    /// HTTP/2, not even the SETTINGS every HTTP/2 server opens with: as an HTTP/1.1
    /// server does that takes h2c's preface for a broken request.
    #[error(
        "the server closed the connection before any HTTP/2 frame: it does not seem to speak HTTP/2 over \
         plain http (h2c, prior knowledge); drop --http2, or use https, where HTTP/2 is negotiated"
    )]
    MuteH2c,
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
    #[error("the HTTP/2 exchange failed {1}: {0}")]
    Library(String, Stage),
    /// `true`: h2 closed the whole connection over it (GOAWAY), not just the stream.
    #[error("answer header list larger than {} KiB", MAX_HEAD / 1024)]
    HeadTooLarge(bool),
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
        !matches!(self, Error::Refused(_) | Error::Reset(..) | Error::Broken(..) | Error::HeadTooLarge(false))
    }

    /// What h2's error `e` on stream `stream` (0: not opened yet) means, in words of
    /// HTTP/2's reason codes: whether the server said it (a RST_STREAM or GOAWAY it
    /// sent) or h2 found the server's frames broke the protocol. The server's GOAWAY
    /// debug data is never shown; h2's own names for what it refused are read only to
    /// tell an oversized header list from a malformed one.
    fn of(e: h2::Error, stage: Stage, sniffed: &Sniffed, stream: u32) -> Error {
        if sniffed.http1() {
            return Error::NotH2c;
        }
        if e.is_io() && sniffed.h2c && !sniffed.any_read.load(Ordering::Relaxed) {
            return Error::MuteH2c;
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
        let Some(reason) = e.reason() else {
            // Neither the server's code nor a frame: h2's own refusal of a use, in its
            // own static words (no byte of the answer is in them).
            return Error::Library(e.to_string(), stage);
        };
        let remote = e.is_remote();
        let oversized = stage == Stage::BeforeAnswer && sniffed.oversized(stream);
        match (e.is_go_away(), e.is_reset()) {
            (true, _) if remote => Error::GoAway(reason, stage),
            (_, true) if remote && reason == Reason::REFUSED_STREAM && stage == Stage::BeforeAnswer => {
                Error::Refused(reason)
            }
            (_, true) if remote => Error::Reset(reason, stage),
            // h2 resets a stream whose header list is over the limit it announced, and
            // closes the connection when the list is far over it or comes in more
            // CONTINUATION frames than the limit needs (its own words in the GOAWAY).
            (_, true) if oversized && reason == Reason::PROTOCOL_ERROR => Error::HeadTooLarge(false),
            (true, _) if e.is_library() && (oversized || h2_refused_size(&e)) => Error::HeadTooLarge(true),
            (_, true) => Error::Broken(reason, stage),
            _ => Error::Protocol(reason, stage),
        }
    }
}

/// Whether h2 closed the connection over a header list too large to decode: its own
/// GOAWAY debug data (`library_go_away_data`), never the server's.
fn h2_refused_size(e: &h2::Error) -> bool {
    if !e.is_library() || !matches!(e.reason(), Some(Reason::ENHANCE_YOUR_CALM)) {
        return false;
    }
    let text = e.to_string();
    text.contains("header_list_way_too_large") || text.contains("too_many_continuations")
}

/// One HTTP/2 connection, as callers share it: cheap to clone.
#[derive(Clone)]
pub struct Session {
    send: h2::client::SendRequest<Bytes>,
    /// Set once the connection's task has ended: the connection is gone.
    closed: Arc<AtomicBool>,
    sniffed: Arc<Sniffed>,
    /// The streams the server allows at once, as h2 last saw it, and the exchanges on
    /// the connection now: one more than the limit waits for a stream.
    limit: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
}

/// An exchange's place among a connection's streams, given back when it ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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

/// Starts HTTP/2 on `io` (`h2c`: by prior knowledge over plain http): sends the
/// preface and settings and spawns the connection's task on the current runtime. The
/// server's settings come with the first exchange.
pub async fn handshake<T>(io: T, h2c: bool) -> Result<Session, Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let sniffed = Arc::new(Sniffed { h2c, ..Sniffed::default() });
    let io = Sniff { io, sniffed: Arc::clone(&sniffed), seen: false, frames: FrameTrack::default() };
    let (send, connection) = h2::client::Builder::new()
        .enable_push(false)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEAD as u32)
        // One stream until the server's SETTINGS say how many it allows: RFC 9113 lets
        // a client assume no limit, and a server allowing fewer refuses the excess
        // (REFUSED_STREAM). The other calls wait for the settings, about one round trip.
        .initial_max_send_streams(1)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| Error::Handshake(Box::new(Error::of(e, Stage::BeforeAnswer, &sniffed, 0))))?;
    let closed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&closed);
    let limit = Arc::new(AtomicUsize::new(1));
    let seen = Arc::clone(&limit);
    tokio::spawn(async move {
        let mut connection = std::pin::pin!(connection);
        let _ = std::future::poll_fn(|cx| {
            let poll = connection.as_mut().poll(cx);
            seen.store(connection.max_concurrent_send_streams(), Ordering::Relaxed);
            poll
        })
        .await;
        flag.store(true, Ordering::Relaxed);
    });
    Ok(Session { send, closed, sniffed, limit, in_flight: Arc::new(AtomicUsize::new(0)) })
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
    let sniffed = &session.sniffed;
    let queued = session.in_flight.fetch_add(1, Ordering::Relaxed) >= session.limit.load(Ordering::Relaxed);
    let _in_flight = InFlight(&session.in_flight);
    let mut send = session.send.clone();
    std::future::poll_fn(|cx| send.poll_ready(cx)).await.map_err(|e| Error::of(e, Stage::BeforeAnswer, sniffed, 0))?;
    let (response, mut stream) = send
        .send_request(out.request(), out.body.is_empty())
        .map_err(|e| Error::of(e, Stage::BeforeAnswer, sniffed, 0))?;
    let id = response.stream_id().as_u32();
    let failed = |e: h2::Error, stage| Error::of(e, stage, sniffed, id);
    if !out.body.is_empty() {
        // A stream over the server's SETTINGS_MAX_CONCURRENT_STREAMS waits, queued in
        // h2, to be opened; it gets send capacity only once open. So for a stream that
        // found all the server allows in use, waiting for room for the body is waiting
        // for the stream. (Every new stream is opened by the connection's task, so
        // there is always a short wait: it counts only when the streams were full.) A
        // request without a body is not told apart: its wait is in `processing`.
        stream.reserve_capacity(out.body.len());
        let mut waited = false;
        let capacity = std::future::poll_fn(|cx| {
            let poll = stream.poll_capacity(cx);
            waited |= poll.is_pending();
            poll
        })
        .await;
        if waited && queued {
            marks.stamp(Mark::Opened);
        }
        // Refused or reset meanwhile: the answer says how.
        if let Some(Ok(_)) = capacity {
            stream.send_data(out.body.clone(), true).map_err(|e| failed(e, Stage::BeforeAnswer))?;
        }
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

/// What the bytes the server sent showed, noted as they pass: an HTTP/1.x status line
/// where an HTTP/2 server's settings frame belongs says the server does not speak h2c;
/// a header block longer on the wire than [`MAX_HEAD`] says why h2 refused it.
#[derive(Debug, Default)]
struct Sniffed {
    /// The first eight bytes read, little-endian, and whether any came.
    first: AtomicU64,
    any: AtomicBool,
    /// The stream of the last header block over [`MAX_HEAD`] bytes (0: none).
    oversized: AtomicU32,
    /// Any byte at all was read.
    any_read: AtomicBool,
    /// HTTP/2 by prior knowledge over plain http.
    h2c: bool,
}

impl Sniffed {
    fn http1(&self) -> bool {
        self.any.load(Ordering::Relaxed) && self.first.load(Ordering::Relaxed).to_le_bytes().starts_with(b"HTTP/1.")
    }

    /// Whether a header block of `stream` was over [`MAX_HEAD`] bytes before HPACK
    /// decoding: a decoded list is never much shorter (Huffman shortens, it does not
    /// lengthen what a sane encoder sends).
    fn oversized(&self, stream: u32) -> bool {
        stream != 0 && self.oversized.load(Ordering::Relaxed) == stream
    }
}

/// HTTP/2's frame layer, followed over the server's bytes without buffering them: each
/// frame's 9-byte head is read and its payload skipped, only the lengths of header
/// blocks (HEADERS and its CONTINUATIONs) are added up.
#[derive(Debug, Default)]
struct FrameTrack {
    head: [u8; 9],
    have: usize,
    /// Payload bytes of the current frame still to come.
    left: usize,
    /// The current frame is part of a header block.
    in_block: bool,
    stream: u32,
    /// Bytes of the current header block so far.
    block: usize,
}

/// HTTP/2's frame types that carry a header block.
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;

impl FrameTrack {
    /// Follows `bytes`; returns the stream of a header block that has just gone over
    /// `limit` bytes.
    fn feed(&mut self, mut bytes: &[u8], limit: usize) -> Option<u32> {
        let mut over = None;
        while !bytes.is_empty() {
            if self.left > 0 {
                let n = self.left.min(bytes.len());
                self.left -= n;
                bytes = &bytes[n..];
                if self.in_block {
                    let before = self.block;
                    self.block = self.block.saturating_add(n);
                    if before <= limit && self.block > limit {
                        over = Some(self.stream);
                    }
                }
                continue;
            }
            let n = (9 - self.have).min(bytes.len());
            self.head[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < 9 {
                break;
            }
            self.have = 0;
            let h = self.head;
            self.left = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
            self.stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
            match h[3] {
                HEADERS => (self.in_block, self.block) = (true, 0),
                CONTINUATION => self.in_block = true,
                _ => self.in_block = false,
            }
        }
        over
    }
}

/// The connection's bytes, the first few noted in passing and the frames followed.
struct Sniff<T> {
    io: T,
    sniffed: Arc<Sniffed>,
    seen: bool,
    frames: FrameTrack,
}

impl<T> Sniff<T> {
    fn note(&mut self, read: &[u8]) {
        if !read.is_empty() {
            self.sniffed.any_read.store(true, Ordering::Relaxed);
        }
        if !self.seen && read.len() >= 8 {
            self.seen = true;
            let mut first = [0u8; 8];
            first.copy_from_slice(&read[..8]);
            self.sniffed.first.store(u64::from_le_bytes(first), Ordering::Relaxed);
            self.sniffed.any.store(true, Ordering::Relaxed);
        }
        if let Some(stream) = self.frames.feed(read, MAX_HEAD) {
            self.sniffed.oversized.store(stream, Ordering::Relaxed);
        }
    }
}

impl<T: AsyncRead + Unpin> Sniff<T> {
    /// A write failed before anything was read: an HTTP/1.x server that answered h2c's
    /// preface with an error and closed makes the next write fail (a reset) before h2
    /// reads its answer. What it wrote may still be there to tell why.
    fn sniff_after<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if !self.seen && matches!(poll, Poll::Ready(Err(_))) {
            let mut first = [0u8; 16];
            let mut buf = ReadBuf::new(&mut first);
            if let Poll::Ready(Ok(())) = Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                let read = buf.filled().len();
                self.note(&first[..read]);
            }
        }
        poll
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Sniff<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        this.note(&buf.filled()[before..]);
        poll
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Sniff<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.sniff_after(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.sniff_after(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.sniff_after(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, len: usize) -> Vec<u8> {
        let mut out = (len as u32).to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend(std::iter::repeat_n(0u8, len));
        out
    }

    /// SETTINGS, a 10-byte header block on stream 1, DATA, then a block on stream 3 in
    /// a HEADERS and two CONTINUATIONs adding up to 30 bytes.
    fn stream() -> Vec<u8> {
        [
            frame(0x4, 0, 0, 6),
            frame(HEADERS, 0x4, 1, 10),
            frame(0x0, 0x1, 1, 50),
            frame(HEADERS, 0, 3, 12),
            frame(CONTINUATION, 0, 3, 12),
            frame(CONTINUATION, 0x4, 3, 6),
        ]
        .concat()
    }

    #[test]
    fn frames_are_followed_whatever_reads_they_come_in() {
        for step in [1, 2, 5, 9, 10, 64, 1000] {
            let mut track = FrameTrack::default();
            let over: Vec<u32> = stream().chunks(step).filter_map(|piece| track.feed(piece, 24)).collect();
            // Stream 1's block (10) and DATA (50) stay under 24; stream 3's goes over once.
            assert_eq!(over, [3], "reads of {step}");
        }
    }

    #[test]
    fn a_header_block_is_counted_from_its_headers_frame() {
        let mut track = FrameTrack::default();
        assert_eq!(track.feed(&stream(), 30), None);
        assert_eq!(track.feed(&frame(HEADERS, 0x4, 5, 31), 30), Some(5));
    }
}
