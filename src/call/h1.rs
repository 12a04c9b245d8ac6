//! HTTP/1.1 on the wire, for the one request nehr-probe makes: the request's bytes
//! (built once per account), and its answer read from a buffer the connection keeps:
//! the head parsed by `httparse`, the body framed by Content-Length, by chunks (decoded
//! in place) or by the connection's close, interim 1xx answers skipped.
//!
//! It runs inside the calling task: no task of its own, no channel, no header map, and
//! in the steady state no allocation (the body handed out shares the connection's
//! buffer, which gets its room back once the body is dropped). It stamps the call's
//! [`Mark::Written`] and [`Mark::FirstByte`] as it passes them.
//!
//! *Must never* buffer more than [`MAX_HEAD`] of head or `max_body` of body (plus one
//! read), call an answer whose framing is ambiguous (two lengths, a length and a
//! transfer coding) anything but an error, call a connection reusable unless its
//! answer was read exactly to the end, or put a byte of the answer into an error text
//! (a hostile server may echo the password).

use std::io;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, Ordering};

use super::observation::HttpVersion as Version;
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::phases::{Mark, Marks};

/// Header lines accepted in an answer; more is a transport error, not a memory problem.
pub const MAX_HEADERS: usize = 100;
/// Bytes accepted in an answer's head (and in a chunked body's trailers).
pub const MAX_HEAD: usize = 64 * 1024;
/// Bytes accepted in one chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4096;
/// Room made in the buffer before each read.
const READ_ROOM: usize = 8 * 1024;

/// Why an exchange failed. The texts are one line and carry nothing the server sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the request failed: {0}")]
    Write(io::Error),
    #[error("the connection closed before any answer")]
    ClosedBeforeAnswer,
    #[error("the connection failed before any answer: {0}")]
    FailedBeforeAnswer(io::Error),
    #[error("reading the answer failed: {0}")]
    Read(io::Error),
    #[error("the connection closed in the middle of the answer's head")]
    ClosedInHead,
    #[error("the connection closed after {read} of the {declared} body bytes announced")]
    ClosedInBody { read: usize, declared: u64 },
    #[error("the connection closed in the middle of a chunked body")]
    ClosedInChunks,
    #[error("answer head larger than {} KiB", MAX_HEAD / 1024)]
    HeadTooLarge,
    #[error("answer has more than {MAX_HEADERS} header lines")]
    TooManyHeaders,
    #[error("not an HTTP/1.x answer ({0})")]
    Malformed(httparse::Error),
    #[error("the server answered in HTTP/2, which it speaks only here (h2c): add --http2")]
    Http2Answer,
    #[error("answer status {0} is not a valid HTTP status")]
    Status(u16),
    #[error("answer has an invalid Content-Length")]
    BadLength,
    #[error("answer has conflicting Content-Length values")]
    ConflictingLength,
    #[error("answer has both Content-Length and Transfer-Encoding")]
    LengthAndCoding,
    #[error("answer has a Transfer-Encoding other than chunked")]
    Coding,
    #[error("answer has a malformed chunk size line")]
    ChunkSize,
    #[error("answer has a chunk not ended by CRLF")]
    ChunkEnd,
    #[error("answer's trailers are malformed or larger than {} KiB", MAX_HEAD / 1024)]
    Trailers,
}

impl Error {
    /// The connection failed before the answer's first byte: on a reused connection,
    /// the server most likely closed it as the request went out.
    pub fn before_answer(&self) -> bool {
        matches!(self, Error::Write(_) | Error::ClosedBeforeAnswer | Error::FailedBeforeAnswer(_))
    }
}

/// What nehr-probe calls itself in every request it sends.
pub const USER_AGENT: &str = concat!("nehr-probe/", env!("CARGO_PKG_VERSION"));

/// The bytes of one request: `POST path`, the headers nehr-probe always sends, and the
/// body. Built once per account; `path` and `host` come from a parsed URL, so they hold
/// no space or line break.
pub fn request(path: &str, host: &str, keepalive: bool, body: &[u8]) -> Bytes {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json\r\n\
         User-Agent: {USER_AGENT}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !keepalive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    Bytes::from(bytes)
}

/// A request that carries a token, built around it: everything before the token is
/// made once, the token put in per call (`--then`).
#[derive(Debug, Clone)]
pub struct BearerRequest {
    head: String,
    tail: &'static str,
}

impl BearerRequest {
    /// `method path` to `host`, with `Authorization: Bearer` (RFC 6750's spelling,
    /// whatever the login answer's `token_type` case); a POST sends an empty body.
    pub fn new(method: &str, path: &str, host: &str, keepalive: bool) -> BearerRequest {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nUser-Agent: {USER_AGENT}\r\n"
        );
        if method == "POST" {
            head.push_str("Content-Length: 0\r\n");
        }
        if !keepalive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("Authorization: Bearer ");
        BearerRequest { head, tail: "\r\n\r\n" }
    }

    /// The request with `token` in it; `None` when the token holds a byte a header
    /// cannot carry (a hostile answer could otherwise add headers of its own).
    pub fn with(&self, token: &str) -> Option<Vec<u8>> {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let mut bytes = Vec::with_capacity(self.head.len() + token.len() + self.tail.len());
        bytes.extend_from_slice(self.head.as_bytes());
        bytes.extend_from_slice(token.as_bytes());
        bytes.extend_from_slice(self.tail.as_bytes());
        Some(bytes)
    }
}

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (1xx, 101, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Whatever comes until the server closes.
    Close,
}

/// An answer's head, as far as the call needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub version: Version,
    /// Bytes of the head, its blank line included.
    pub len: usize,
    pub framing: Framing,
    /// The server lets the connection be used again once this answer was read.
    pub keep_alive: bool,
}

impl Head {
    /// An interim answer (100 Continue, 103 Early Hints): the real one follows.
    fn interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// Parses the head at the start of `buf`: `None` while incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, Error> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut response, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(Error::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Error::TooManyHeaders),
        Err(_) if http2_frame(buf) => return Err(Error::Http2Answer),
        Err(e) => return Err(Error::Malformed(e)),
    };
    if len > MAX_HEAD {
        return Err(Error::HeadTooLarge);
    }
    let status = response.code.unwrap_or(0);
    if status < 100 {
        return Err(Error::Status(status));
    }
    let version = if response.version == Some(0) { Version::Http10 } else { Version::Http11 };
    let (mut length, mut chunked, mut coded) = (None, 0u32, false);
    let (mut close, mut keep_alive) = (false, false);
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            for n in h.value.split(|&b| b == b',').map(content_length) {
                let n = n?;
                if length.is_some_and(|l| l != n) {
                    return Err(Error::ConflictingLength);
                }
                length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if coding.eq_ignore_ascii_case(b"chunked") && !coded {
                    chunked += 1;
                } else {
                    // Another coding, or one after chunked: nothing this client decodes.
                    coded = true;
                }
            }
            coded |= chunked == 0;
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked > 0 || coded {
        if length.is_some() {
            return Err(Error::LengthAndCoding);
        }
        if coded || chunked > 1 {
            return Err(Error::Coding);
        }
        Framing::Chunked
    } else {
        length.map_or(Framing::Close, Framing::Length)
    };
    let persistent = if version == Version::Http10 { keep_alive && !close } else { !close };
    let keep_alive = persistent && framing != Framing::Close && status != 101;
    Ok(Some(Head { status, version, len, framing, keep_alive }))
}

/// Whether `buf` starts with what an HTTP/2 server sends a client whose first bytes
/// were not its preface: a SETTINGS or GOAWAY frame on stream 0.
fn http2_frame(buf: &[u8]) -> bool {
    buf.len() >= 9 && matches!(buf[3], 0x04 | 0x07) && buf[5..9] == [0, 0, 0, 0]
}

/// One Content-Length value: digits only (no sign, no space inside), fitting 64 bits.
fn content_length(value: &[u8]) -> Result<u64, Error> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Error::BadLength);
    }
    Ok(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Where a chunked body's decoding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Chunk {
    /// At a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data, at its CRLF.
    DataEnd,
    /// After the last chunk, this many trailer bytes seen.
    Trailers(usize),
    Done,
}

/// Decodes a chunked body in place: `buf[..decoded]` holds the body so far and the
/// rest of `buf` what is not decoded yet; each call moves what it can of the rest down
/// behind the body (chunk framing is never copied, only chunk data, once). Says whether
/// the body ended; bytes after it stay in `buf` past the body.
#[derive(Debug, Default)]
pub struct Dechunker {
    state: Chunk,
}

impl Dechunker {
    pub fn decode(&mut self, buf: &mut BytesMut, decoded: &mut usize) -> Result<bool, Error> {
        let (mut read, mut write) = (*decoded, *decoded);
        let end = buf.len();
        loop {
            match self.state {
                Chunk::Size => {
                    let Some(line) = line(&buf[read..], MAX_CHUNK_LINE, Error::ChunkSize)? else { break };
                    let size = chunk_size(&buf[read..read + line - 2])?;
                    read += line;
                    self.state = if size == 0 { Chunk::Trailers(0) } else { Chunk::Data(size) };
                }
                Chunk::Data(left) => {
                    let n = (end - read).min(usize::try_from(left).unwrap_or(usize::MAX));
                    if n == 0 {
                        break;
                    }
                    buf.copy_within(read..read + n, write);
                    (read, write) = (read + n, write + n);
                    self.state = if n as u64 == left { Chunk::DataEnd } else { Chunk::Data(left - n as u64) };
                }
                Chunk::DataEnd => {
                    if end - read < 2 {
                        break;
                    }
                    if &buf[read..read + 2] != b"\r\n" {
                        return Err(Error::ChunkEnd);
                    }
                    read += 2;
                    self.state = Chunk::Size;
                }
                Chunk::Trailers(seen) => {
                    let Some(line) = line(&buf[read..], MAX_HEAD - seen, Error::Trailers)? else { break };
                    read += line;
                    self.state = if line == 2 { Chunk::Done } else { Chunk::Trailers(seen + line) };
                }
                Chunk::Done => break,
            }
        }
        // What is not decoded yet follows the body, so the next read appends to it.
        buf.copy_within(read..end, write);
        buf.truncate(write + (end - read));
        *decoded = write;
        Ok(self.state == Chunk::Done)
    }
}

/// The length of the CRLF-ended line at the start of `bytes`, CRLF included; `None`
/// while incomplete; `too_long` when none ends within `max` bytes.
fn line(bytes: &[u8], max: usize, too_long: Error) -> Result<Option<usize>, Error> {
    match bytes.iter().take(max).position(|&b| b == b'\n') {
        Some(i) if i > 0 && bytes[i - 1] == b'\r' => Ok(Some(i + 1)),
        Some(_) => Err(too_long),
        None if bytes.len() >= max => Err(too_long),
        None => Ok(None),
    }
}

/// A chunk-size line without its CRLF: hex digits, then optional blanks and extensions
/// (ignored).
fn chunk_size(line: &[u8]) -> Result<u64, Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(Error::ChunkSize);
    }
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') {
        return Err(Error::ChunkSize);
    }
    let hex = std::str::from_utf8(&line[..digits]).map_err(|_| Error::ChunkSize)?;
    u64::from_str_radix(hex, 16).map_err(|_| Error::ChunkSize)
}

/// An answer read to its end (or, past `max_body`, as far as that).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub version: Version,
    /// The body; empty when it was larger than `max_body`.
    pub body: Bytes,
    pub oversized: bool,
    /// Body bytes read (decoded, for a chunked body).
    pub total: u64,
    /// The connection may carry another request: the server allows it and this answer
    /// was read exactly to its end.
    pub reusable: bool,
}

/// Writes `request` with one write call, then reads its answer into `buf` (empty on
/// entry). Stamps [`Mark::Written`] when the request is handed to the socket and
/// [`Mark::FirstByte`] when the answer's first byte comes, and stores the final
/// answer's status in `status` as soon as its head is read.
pub async fn exchange<S>(
    io: &mut S,
    buf: &mut BytesMut,
    request: &[u8],
    max_body: usize,
    marks: &Marks,
    status: &AtomicU32,
) -> Result<Answer, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    io.write_all(request).await.map_err(Error::Write)?;
    io.flush().await.map_err(Error::Write)?;
    marks.stamp(Mark::Written);
    let head = read_head(io, buf, marks).await?;
    status.store(u32::from(head.status), Ordering::Relaxed);
    buf.advance(head.len);
    let mut answer = Answer {
        status: head.status,
        version: head.version,
        body: Bytes::new(),
        oversized: false,
        total: 0,
        reusable: false,
    };
    let length = match head.framing {
        Framing::Empty => 0,
        Framing::Length(n) if n > max_body as u64 => {
            // Not read at all: the connection goes with the answer.
            answer.oversized = true;
            return Ok(answer);
        }
        Framing::Length(n) => read_length(io, buf, n as usize).await?,
        Framing::Chunked => read_chunked(io, buf, max_body).await?,
        Framing::Close => read_to_close(io, buf, max_body).await?,
    };
    answer.total = length as u64;
    if length > max_body {
        answer.oversized = true;
        return Ok(answer);
    }
    answer.body = buf.split_to(length).freeze();
    answer.reusable = head.keep_alive && buf.is_empty();
    Ok(answer)
}

/// Reads until `buf` holds the final answer's head, skipping interim ones.
async fn read_head<S: AsyncRead + Unpin>(io: &mut S, buf: &mut BytesMut, marks: &Marks) -> Result<Head, Error> {
    let mut answered = false;
    loop {
        if answered && let Some(head) = parse_head(buf)? {
            if !head.interim() {
                return Ok(head);
            }
            buf.advance(head.len);
            continue;
        }
        let n = fill(io, buf, READ_ROOM).await.map_err(|e| match answered {
            false => Error::FailedBeforeAnswer(e),
            true => Error::Read(e),
        })?;
        match (n, answered) {
            (0, false) => return Err(Error::ClosedBeforeAnswer),
            (0, true) => return Err(Error::ClosedInHead),
            (_, false) => {
                marks.stamp(Mark::FirstByte);
                answered = true;
            }
            _ => {}
        }
    }
}

/// Reads until `buf` holds `length` body bytes; returns `length`.
async fn read_length<S: AsyncRead + Unpin>(io: &mut S, buf: &mut BytesMut, length: usize) -> Result<usize, Error> {
    while buf.len() < length {
        let room = (length - buf.len()).clamp(READ_ROOM, 64 * 1024);
        if fill(io, buf, room).await.map_err(Error::Read)? == 0 {
            return Err(Error::ClosedInBody { read: buf.len(), declared: length as u64 });
        }
    }
    Ok(length)
}

/// Reads a chunked body to its end, or past `max_body`; returns its decoded length.
async fn read_chunked<S: AsyncRead + Unpin>(io: &mut S, buf: &mut BytesMut, max_body: usize) -> Result<usize, Error> {
    let (mut chunks, mut decoded) = (Dechunker::default(), 0);
    while !chunks.decode(buf, &mut decoded)? && decoded <= max_body {
        if fill(io, buf, READ_ROOM).await.map_err(Error::Read)? == 0 {
            return Err(Error::ClosedInChunks);
        }
    }
    Ok(decoded)
}

/// Reads until the server closes, or past `max_body`; returns the length read.
async fn read_to_close<S: AsyncRead + Unpin>(io: &mut S, buf: &mut BytesMut, max_body: usize) -> Result<usize, Error> {
    while buf.len() <= max_body {
        if fill(io, buf, READ_ROOM).await.map_err(Error::Read)? == 0 {
            break;
        }
    }
    Ok(buf.len())
}

/// One read into `buf`, with at least `room` bytes of room made first.
async fn fill<S: AsyncRead + Unpin>(io: &mut S, buf: &mut BytesMut, room: usize) -> io::Result<usize> {
    if buf.capacity() - buf.len() < room {
        buf.reserve(room);
    }
    io.read_buf(buf).await
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn head(text: &str) -> Result<Option<Head>, Error> {
        parse_head(text.as_bytes())
    }

    fn framing(text: &str) -> Result<(Framing, bool), Error> {
        head(text).map(|h| h.map(|h| (h.framing, h.keep_alive)).expect("a complete head"))
    }

    #[test]
    fn the_request_is_one_buffer_of_head_and_body() {
        let r = request("/nehrapi/login/getToken?a=1", "h:8080", false, b"{}");
        let text = std::str::from_utf8(&r).unwrap();
        assert!(text.starts_with("POST /nehrapi/login/getToken?a=1 HTTP/1.1\r\nHost: h:8080\r\n"), "{text}");
        assert!(text.contains("\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), "{text}");
        assert!(text.contains("\r\nUser-Agent: nehr-probe/") && text.contains("\r\nAccept: application/json\r\n"));
        let kept = request("/", "h", true, b"{}");
        assert!(!std::str::from_utf8(&kept).unwrap().contains("Connection"));
    }

    #[test]
    fn bodies_are_framed_as_rfc_9112_says() {
        let ok = "HTTP/1.1 200 OK\r\n";
        assert_eq!(framing(&format!("{ok}Content-Length: 12\r\n\r\n")).unwrap(), (Framing::Length(12), true));
        assert_eq!(
            framing(&format!("{ok}content-length: 5\r\nContent-Length: 5\r\n\r\n")).unwrap().0,
            Framing::Length(5)
        );
        assert_eq!(framing(&format!("{ok}Content-Length: 5, 5\r\n\r\n")).unwrap().0, Framing::Length(5));
        assert_eq!(framing(&format!("{ok}Transfer-Encoding: Chunked\r\n\r\n")).unwrap(), (Framing::Chunked, true));
        // Neither: the body runs to the close, so the connection cannot be reused.
        assert_eq!(framing(&format!("{ok}X: y\r\n\r\n")).unwrap(), (Framing::Close, false));
        assert!(!framing(&format!("{ok}Content-Length: 5\r\nConnection: keep-alive, Close\r\n\r\n")).unwrap().1);
        // No body, whatever the headers say.
        for status in ["204 No Content", "304 Not Modified", "100 Continue", "103 Early Hints"] {
            let text = format!("HTTP/1.1 {status}\r\nContent-Length: 9\r\n\r\n");
            assert_eq!(framing(&text).unwrap(), (Framing::Empty, true), "{status}");
        }
        assert_eq!(framing("HTTP/1.1 101 Switching Protocols\r\n\r\n").unwrap(), (Framing::Empty, false));
        // HTTP/1.0 keeps the connection only when it says so.
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.version, h.keep_alive), (Version::Http10, false));
        assert!(framing("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").unwrap().1);
    }

    #[test]
    fn ambiguous_or_broken_heads_are_errors_that_quote_nothing() {
        let bad = |text: &str| head(&format!("HTTP/1.1 200 OK\r\n{text}\r\n\r\n")).unwrap_err().to_string();
        for length in ["-1", "+5", "5 5", "", "0x10", "99999999999999999999"] {
            assert!(bad(&format!("Content-Length: {length}")).contains("invalid Content-Length"), "{length:?}");
        }
        assert!(bad("Content-Length: 5\r\nContent-Length: 6").contains("conflicting"));
        assert!(bad("Content-Length: 5, 6").contains("conflicting"));
        assert!(bad("Content-Length: 5\r\nTransfer-Encoding: chunked").contains("both"));
        for coding in ["gzip", "gzip, chunked", "chunked, gzip", "chunked, chunked", ""] {
            assert!(bad(&format!("Transfer-Encoding: {coding}")).contains("other than chunked"), "{coding:?}");
        }
        assert!(bad("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked").contains("other than chunked"));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: {i}\r\n")).collect();
        assert!(bad(&many).contains("more than 100"));
        let huge = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HEAD));
        assert!(matches!(parse_head(huge.as_bytes()), Err(Error::HeadTooLarge)));
        assert!(matches!(head("HTTP/1.1 099 Low\r\n\r\n"), Err(Error::Status(99))));
        assert!(matches!(head("SSH-2.0-OpenSSH\r\n\r\n"), Err(Error::Malformed(_))));
        assert!(matches!(head("HTTP/2 200\r\n\r\n"), Err(Error::Malformed(_))));
        // An h2c server's SETTINGS frame, then a GOAWAY.
        let settings = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x80";
        assert!(matches!(parse_head(settings), Err(Error::Http2Answer)));
        assert!(matches!(parse_head(b"\x00\x00\x08\x07\x00\x00\x00\x00\x00\x00\x00"), Err(Error::Http2Answer)));
        assert!(matches!(head("HTTP/1.1 200 OK\r\nContent-Len"), Ok(None)));
    }

    /// Decodes `input` fed `step` bytes at a time; the body, or the first error.
    fn dechunk(input: &[u8], step: usize) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let (mut chunks, mut buf, mut decoded) = (Dechunker::default(), BytesMut::new(), 0);
        for piece in input.chunks(step) {
            buf.extend_from_slice(piece);
            if chunks.decode(&mut buf, &mut decoded)? {
                return Ok((buf[..decoded].to_vec(), buf[decoded..].to_vec()));
            }
        }
        Err(Error::ClosedInChunks)
    }

    #[test]
    fn chunked_bodies_decode_in_place_whatever_the_reads() {
        let input = b"5;name=\"v\"\r\nhello\r\n7 \r\n, world\r\n0\r\nExpires: never\r\n\r\n";
        for step in [1, 2, 3, 7, input.len()] {
            assert_eq!(dechunk(input, step).unwrap(), (b"hello, world".to_vec(), vec![]), "step {step}");
        }
        let (body, after) = dechunk(b"A\r\n0123456789\r\n0\r\n\r\nHTTP", 100).unwrap();
        assert_eq!((body.as_slice(), after.as_slice()), (&b"0123456789"[..], &b"HTTP"[..]));
        for broken in ["zz\r\n", "\r\n", "1 2\r\nx\r\n", "11111111111111111\r\n", "5\nhello", "1;x\n"] {
            assert!(matches!(dechunk(broken.as_bytes(), 1), Err(Error::ChunkSize)), "{broken:?}");
        }
        assert!(matches!(dechunk(b"5\r\nhelloXX0\r\n\r\n", 1), Err(Error::ChunkEnd)));
        let long_line = format!("5;{}\r\nhello\r\n0\r\n\r\n", "x".repeat(MAX_CHUNK_LINE));
        assert!(matches!(dechunk(long_line.as_bytes(), 512), Err(Error::ChunkSize)));
        let trailers = format!("0\r\n{}\r\n", "X: y\r\n".repeat(MAX_HEAD / 6 + 1));
        assert!(matches!(dechunk(trailers.as_bytes(), 1000), Err(Error::Trailers)));
    }

    /// Exchanges `b"req"` with a peer answering `answer` through a pipe that holds
    /// `step` bytes at most, so each read gets no more.
    fn exchange_with(answer: &str, step: usize, max_body: usize) -> (Result<Answer, Error>, Marks, u32) {
        let (marks, status) = (Marks::new(Instant::now()), AtomicU32::new(0));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let answer = answer.as_bytes().to_vec();
        let result = rt.block_on(async {
            let (mut ours, mut theirs) = tokio::io::duplex(step);
            let peer = tokio::spawn(async move {
                let mut request = [0u8; 3];
                theirs.read_exact(&mut request).await.unwrap();
                // Fails once the client stopped reading and hung up: that is fine.
                let _ = theirs.write_all(&answer).await;
                request
            });
            let result = exchange(&mut ours, &mut BytesMut::new(), b"req", max_body, &marks, &status).await;
            drop(ours);
            assert_eq!(&peer.await.unwrap(), b"req");
            result
        });
        (result, marks, status.load(Ordering::Relaxed))
    }

    #[test]
    fn answers_are_read_to_their_end_and_reused_only_then() {
        let ok = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for step in [1, 3, ok.len()] {
            let (answer, marks, status) = exchange_with(ok, step, 100);
            let a = answer.unwrap();
            assert_eq!((a.status, status, &a.body[..], a.total, a.reusable), (200, 200, &b"hello"[..], 5, true));
            assert!(marks.get(Mark::Written).is_some() && marks.get(Mark::FirstByte).is_some());
        }
        let a = exchange_with("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP", 100, 100).0.unwrap();
        assert!(!a.reusable, "bytes after the answer: not reused");
        let a = exchange_with("HTTP/1.0 200 OK\r\n\r\nto the end", 4, 100).0.unwrap();
        assert_eq!((&a.body[..], a.reusable, a.version), (&b"to the end"[..], false, Version::Http10));
        let a = exchange_with("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 2, 100).0;
        assert_eq!(&a.unwrap().body[..], b"hi");
        let a = exchange_with("HTTP/1.1 204 No Content\r\n\r\n", 100, 100).0.unwrap();
        assert_eq!((a.body.len(), a.reusable), (0, true));
    }

    #[test]
    fn bodies_over_max_body_are_not_buffered_and_the_connection_not_reused() {
        let (a, _, status) = exchange_with("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", 100, 10);
        let a = a.unwrap();
        assert_eq!((a.oversized, a.total, a.body.len(), a.reusable, status), (true, 0, 0, false, 200));
        let chunked = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{}", "4\r\nabcd\r\n".repeat(100));
        let a = exchange_with(&chunked, 16, 10).0.unwrap();
        assert!(a.oversized && a.total > 10 && a.total < 30 && !a.reusable, "{a:?}");
        let a = exchange_with(&format!("HTTP/1.1 200 OK\r\n\r\n{}", "x".repeat(100)), 8, 10).0.unwrap();
        assert!(a.oversized && a.total < 30, "{a:?}");
    }

    #[test]
    fn an_answer_cut_short_says_where() {
        let err = |answer: &str| exchange_with(answer, 3, 100).0.unwrap_err();
        assert!(err("").before_answer());
        assert!(matches!(err("HTTP/1.1 200 OK\r\nCont"), Error::ClosedInHead));
        assert!(!err("HTTP/1.1 200 OK\r\nCont").before_answer());
        let e = err("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf");
        assert_eq!(e.to_string(), "the connection closed after 4 of the 10 body bytes announced");
        assert!(matches!(err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"), Error::ClosedInChunks));
    }
}
