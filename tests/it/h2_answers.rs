//! Every way an HTTP/2 answer can go wrong lands in its outcome (docs/http2.md's
//! "Hostile answers"): hostile servers on 127.0.0.1, built here on the `h2` crate's
//! server side, or on raw frames where that crate will not misbehave, and calls made
//! through the library as `load` (keep-alive, lanes) and `check` or `serve` (a
//! connection per call) make them. Each class checks the outcome and the reason: one
//! line, never the password, never a byte the server chose.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::Reason;
use h2::server::SendResponse;
use nehr_probe::call::observation::HttpVersion;
use nehr_probe::call::target::TOKEN_PATH;
use nehr_probe::call::{Observation, Outcome, Prober};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::answers::{SPEC_401, SPEC_500};
use crate::support::{self, PASSWORD, USERNAME};

/// What a server may put in bytes of its own choosing; found in a reason, it leaked.
const MARK: &str = "LEAKED-SERVER-BYTES";

/// A server on 127.0.0.1:0 running `serve` on each connection it accepts (numbered
/// from 0), on a thread and runtime of its own; dropping it stops it and closes every
/// connection it holds.
struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start<F, Fut>(serve: F) -> Server
    where
        F: Fn(usize, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let addr = listener.local_addr().expect("local address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("server runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let mut conns = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                let _ = stream.set_nodelay(true);
                                conns.spawn(serve(count.fetch_add(1, Ordering::Relaxed), stream));
                            }
                        }
                        Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    }
                }
            });
        });
        Server { addr, accepted, stop: Some(stop), thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://{}{TOKEN_PATH}", self.addr)
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Which request a server is answering: its place on its connection (from 0).
#[derive(Debug, Clone, Copy)]
struct Nth {
    stream: usize,
}

type Incoming = http::Request<h2::RecvStream>;

/// An HTTP/2 server on the `h2` crate (h2c, prior knowledge) allowing `max_streams`
/// streams at once, each request handed to `answer` on a task of its own.
fn h2_server<F, Fut>(max_streams: Option<u32>, answer: F) -> Server
where
    F: Fn(Nth, Incoming, SendResponse<Bytes>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let answer = Arc::new(answer);
    Server::start(move |_, tcp| {
        let answer = Arc::clone(&answer);
        async move {
            let mut builder = h2::server::Builder::new();
            if let Some(n) = max_streams {
                builder.max_concurrent_streams(n);
            }
            let Ok(mut connection) = builder.handshake::<_, Bytes>(tcp).await else { return };
            let mut stream = 0;
            while let Some(Ok((request, respond))) = connection.accept().await {
                tokio::spawn(answer(Nth { stream }, request, respond));
                stream += 1;
            }
        }
    })
}

/// Answers `status` with `body` (JSON) in one HEADERS and one DATA frame.
async fn reply(mut respond: SendResponse<Bytes>, status: u16, body: impl Into<String>) {
    let body: String = body.into();
    let head = http::Response::builder().status(status).header("content-type", "application/json").body(()).unwrap();
    let Ok(mut stream) = respond.send_response(head, body.is_empty()) else { return };
    if !body.is_empty() {
        let _ = stream.send_data(Bytes::from(body), true);
    }
}

fn spec_body() -> String {
    support::spec_answer().to_string()
}

/// The request's body, read to its end.
async fn body_of(request: Incoming) -> Vec<u8> {
    let mut body = request.into_body();
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    out
}

/// A target at `url` speaking HTTP/2.
fn h2_target(url: &str, timeout: Duration) -> nehr_probe::call::target::Target {
    let mut target = support::target(url, timeout);
    target.http2 = true;
    target
}

/// One call as `load` makes it (keep-alive: a stream of a lane's connection) and one as
/// `check` and `serve` make it (a connection of its own), at once: both must end
/// alike. The keep-alive one is returned; both are checked to be secret-free.
async fn call_h2(url: &str, timeout: Duration) -> Observation {
    let target = h2_target(url, timeout);
    let (lane, own) = (Prober::with_keepalive(&target, true).unwrap(), Prober::with_keepalive(&target, false).unwrap());
    let (lane, own) = tokio::join!(lane.call(0, Instant::now()), own.call(0, Instant::now()));
    assert_eq!(lane.outcome, own.outcome, "{lane:?}\n{own:?}");
    assert_eq!(lane.detail, own.detail, "{lane:?}\n{own:?}");
    assert_clean(&lane);
    assert_clean(&own);
    lane
}

/// Nothing of the call shows the password or the server's own bytes, and its reason
/// is one line.
fn assert_clean(obs: &Observation) {
    let shown = format!("{obs:?} {}", obs.reason());
    assert!(!shown.contains(PASSWORD), "password shown: {shown}");
    assert!(!shown.contains(MARK), "server bytes shown: {shown}");
    assert!(!obs.reason().contains('\n'), "{}", obs.reason());
}

/// The call ended in `outcome` with a reason saying `words`.
#[track_caller]
fn assert_ended(obs: &Observation, outcome: Outcome, words: &str) {
    assert_eq!(obs.outcome, outcome, "{obs:?}");
    let detail = obs.detail.as_deref().unwrap_or_default();
    assert!(detail.contains(words), "{detail:?} does not say {words:?}");
    assert_clean(obs);
}

// Raw frames, for what the h2 crate will not send.

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn settings(values: &[(u16, u32)]) -> Vec<u8> {
    let payload: Vec<u8> =
        values.iter().flat_map(|(k, v)| [k.to_be_bytes().to_vec(), v.to_be_bytes().to_vec()].concat()).collect();
    frame(SETTINGS, 0, 0, &payload)
}

fn goaway(last: u32, code: u32, debug: &[u8]) -> Vec<u8> {
    frame(GOAWAY, 0, 0, &[&last.to_be_bytes()[..], &code.to_be_bytes(), debug].concat())
}

/// An HPACK integer with an `n`-bit prefix, the rest of the first byte `flags`.
fn hpack_int(flags: u8, n: u32, value: usize) -> Vec<u8> {
    let max = (1usize << n) - 1;
    if value < max {
        return vec![flags | value as u8];
    }
    let (mut out, mut rest) = (vec![flags | max as u8], value - max);
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
    out
}

/// A header field as a literal without indexing, new name, no Huffman.
fn literal(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x00];
    out.extend(hpack_int(0, 7, name.len()));
    out.extend_from_slice(name.as_bytes());
    out.extend(hpack_int(0, 7, value.len()));
    out.extend_from_slice(value);
    out
}

/// `:status 200` (the static table's entry 8) and these fields.
fn block_200(fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = vec![0x88];
    for (name, value) in fields {
        out.extend(literal(name, value));
    }
    out
}

/// A header block as a HEADERS frame and as many CONTINUATIONs as 16 KiB frames need.
fn header_frames(stream: u32, block: &[u8], end_stream: bool) -> Vec<u8> {
    let pieces: Vec<&[u8]> = block.chunks(16_384).collect();
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let last = if i + 1 == pieces.len() { END_HEADERS } else { 0 };
        let (kind, flags) = match i {
            0 => (HEADERS, last | if end_stream { END_STREAM } else { 0 }),
            _ => (CONTINUATION, last),
        };
        out.extend(frame(kind, flags, stream, piece));
    }
    out
}

/// A complete valid answer on `stream`.
fn valid_frames(stream: u32) -> Vec<u8> {
    let body = spec_body();
    let mut out = header_frames(stream, &block_200(&[("content-type", b"application/json")]), false);
    out.extend(frame(DATA, END_STREAM, stream, body.as_bytes()));
    out
}

/// What a raw server does after writing its answer to a request.
enum Then {
    Go,
    Close,
    Hold,
}

/// A raw HTTP/2 server: writes `first` (its SETTINGS, or whatever stands for them),
/// reads the client's preface and frames, acknowledges its SETTINGS, and for the n-th
/// request (HEADERS) on a connection writes what `script` says.
fn raw_server<F>(first: Vec<u8>, script: F) -> Server
where
    F: Fn(Nth, u32) -> (Vec<u8>, Then) + Send + Sync + 'static,
{
    let script = Arc::new(script);
    Server::start(move |_, mut tcp| {
        let (script, first) = (Arc::clone(&script), first.clone());
        async move {
            let _ = raw_conversation(&mut tcp, &first, &*script).await;
        }
    })
}

async fn raw_conversation(
    tcp: &mut TcpStream,
    first: &[u8],
    script: &(dyn Fn(Nth, u32) -> (Vec<u8>, Then) + Send + Sync),
) -> std::io::Result<()> {
    tcp.write_all(first).await?;
    let mut preface = [0u8; 24];
    tcp.read_exact(&mut preface).await?;
    let mut stream = 0;
    loop {
        let mut head = [0u8; 9];
        tcp.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0; len];
        tcp.read_exact(&mut payload).await?;
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        match head[3] {
            SETTINGS if head[4] & ACK == 0 => tcp.write_all(&frame(SETTINGS, ACK, 0, &[])).await?,
            HEADERS => {
                let (bytes, then) = script(Nth { stream }, id);
                stream += 1;
                tcp.write_all(&bytes).await?;
                match then {
                    Then::Go => {}
                    Then::Close => return tcp.shutdown().await,
                    Then::Hold => std::future::pending::<()>().await,
                }
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_valid_token_answer_over_h2c_is_ok_and_counted_as_http2() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let server = h2_server(None, move |_, request, respond| {
        let log = Arc::clone(&log);
        async move {
            let what = (request.method().to_string(), request.uri().path().to_string(), request.version());
            let body = body_of(request).await;
            log.lock().unwrap().push((what, body));
            reply(respond, 200, spec_body()).await;
        }
    });
    let obs = call_h2(&server.url(), Duration::from_secs(5)).await;
    assert_eq!(obs.outcome, Outcome::Ok, "{obs:?}");
    assert_eq!(obs.http_version, Some(HttpVersion::Http2));
    assert_eq!(obs.status, Some(200));
    assert_eq!(obs.body_bytes, spec_body().len() as u64);
    assert!(obs.token.as_ref().is_some_and(|t| t.expires_in.is_some()), "{obs:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for ((method, path, version), body) in seen.iter() {
        assert_eq!((method.as_str(), path.as_str(), *version), ("POST", TOKEN_PATH, http::Version::HTTP_2));
        let body: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["username"], USERNAME);
    }
}

#[tokio::test]
async fn statuses_over_http2_decide_as_over_http1() {
    for (status, body, outcome) in [
        (401, SPEC_401, Outcome::Unauthorized),
        (500, SPEC_500, Outcome::ServerError),
        (429, r#"{"code":429,"message":"slow down"}"#, Outcome::RateLimited),
    ] {
        let server = h2_server(None, move |_, _, respond| reply(respond, status, body));
        let obs = call_h2(&server.url(), Duration::from_secs(5)).await;
        assert_eq!((obs.outcome, obs.status, obs.http_version), (outcome, Some(status), Some(HttpVersion::Http2)));
        // The documented error bodies meet their schema: no note.
        assert!(obs.violations.is_empty(), "{obs:?}");
        assert_clean(&obs);
    }
}

#[tokio::test]
async fn a_stream_reset_before_the_headers_is_a_transport_error() {
    let server = h2_server(None, |_, _, mut respond| async move { respond.send_reset(Reason::INTERNAL_ERROR) });
    let obs = call_h2(&server.url(), Duration::from_secs(5)).await;
    assert_ended(&obs, Outcome::TransportError, "the server reset the stream before any answer (INTERNAL_ERROR)");
}

#[tokio::test]
async fn a_refused_stream_on_a_new_connection_is_a_transport_error() {
    let server = h2_server(None, |_, _, mut respond| async move { respond.send_reset(Reason::REFUSED_STREAM) });
    let obs = call_h2(&server.url(), Duration::from_secs(5)).await;
    assert_ended(&obs, Outcome::TransportError, "the server refused the stream before answering (REFUSED_STREAM)");
}

#[tokio::test]
async fn a_refused_stream_on_a_reused_connection_goes_again_on_a_new_one() {
    // Every connection refuses its second stream.
    let server = h2_server(None, |nth, _, mut respond| async move {
        match nth.stream {
            1 => respond.send_reset(Reason::REFUSED_STREAM),
            _ => reply(respond, 200, spec_body()).await,
        }
    });
    let prober = Prober::with_keepalive(&h2_target(&server.url(), Duration::from_secs(5)), true).unwrap();
    for seq in 0..3 {
        let obs = prober.call(seq, Instant::now()).await;
        assert_eq!(obs.outcome, Outcome::Ok, "call {seq}: {obs:?}");
    }
    // The second call was refused on the first connection and answered on a second;
    // the third is that one's second stream, refused too, and answered on a third.
    assert_eq!(server.connections(), 3);
}

#[tokio::test]
async fn a_goaway_before_the_answer_is_a_transport_error_and_never_shows_its_debug_data() {
    let debug = format!("{MARK} {PASSWORD}");
    for (code, last, words) in [
        (0, 0, "the server closed the connection before any answer (GOAWAY NO_ERROR)"),
        (2, 0, "the server closed the connection before any answer (GOAWAY INTERNAL_ERROR)"),
        // An error GOAWAY that lets the stream be, then the close.
        (2, 1, "the connection closed before any answer"),
    ] {
        let debug = debug.clone();
        let server = raw_server(settings(&[]), move |_, _| (goaway(last, code, debug.as_bytes()), Then::Close));
        let obs = call_h2(&server.url(), Duration::from_secs(5)).await;
        assert_ended(&obs, Outcome::TransportError, words);
    }
}

#[tokio::test]
async fn a_goaway_on_a_reused_connection_sends_the_request_again_on_a_new_one() {
    // Each connection answers its first request and turns the second away.
    let server = raw_server(settings(&[]), |nth, id| match nth.stream {
        0 => (valid_frames(id), Then::Go),
        _ => (goaway(id - 2, 0, b""), Then::Close),
    });
    let prober = Prober::with_keepalive(&h2_target(&server.url(), Duration::from_secs(5)), true).unwrap();
    for seq in 0..3 {
        let obs = prober.call(seq, Instant::now()).await;
        assert_eq!(obs.outcome, Outcome::Ok, "call {seq}: {obs:?}");
        assert_eq!(obs.http_version, Some(HttpVersion::Http2));
    }
    assert_eq!(server.connections(), 3);
}

/// The timeout every stalling class is probed with, and how late a call may end past
/// it on a crowded machine.
const STALL: Duration = Duration::from_secs(1);
const LATE: Duration = Duration::from_secs(3);

#[tokio::test]
async fn stalled_streams_and_silent_servers_time_out_at_the_timeout() {
    let headers_only = h2_server(None, |_, _, mut respond| async move {
        let head = http::Response::builder().status(200).body(()).unwrap();
        let _stream = respond.send_response(head, false);
        std::future::pending::<()>().await;
    });
    let no_answer = h2_server(None, |_, _, respond| async move {
        let _respond = respond;
        std::future::pending::<()>().await;
    });
    // Not even its SETTINGS.
    let mute = Server::start(|_, tcp| async move {
        let _tcp = tcp;
        std::future::pending::<()>().await;
    });
    let urls = [headers_only.url(), no_answer.url(), mute.url()];
    let expected = [
        (Some(200), "no complete answer within 1s (reading the body)"),
        (None, "no complete answer within 1s (waiting for the answer)"),
        (None, "no complete answer within 1s (waiting for the answer)"),
    ];
    // All at once.
    let start = Instant::now();
    let (a, b, c) = tokio::join!(call_h2(&urls[0], STALL), call_h2(&urls[1], STALL), call_h2(&urls[2], STALL));
    assert!(start.elapsed() < STALL + LATE, "{:?}", start.elapsed());
    for (obs, (status, words)) in [a, b, c].iter().zip(expected) {
        assert!(obs.latency() >= STALL && obs.latency() < STALL + LATE, "{:?}", obs.latency());
        assert_ended(obs, Outcome::Timeout, words);
        assert_eq!(obs.status, status);
    }
}

#[tokio::test]
async fn a_header_list_over_64_kib_is_a_transport_error_that_says_so() {
    let big = vec![b'a'; 100 * 1024];
    let one_value = block_200(&[("x-big", &big)]);
    let mut many = vec![0x88];
    for i in 0..700 {
        many.extend(literal(&format!("x-filler-{i:03}"), &[b'b'; 90]));
    }
    assert!(many.len() > 64 * 1024 && many.len() < 5 * 16_384, "{}", many.len());
    // One 100 KiB value in seven frames, past the CONTINUATIONs a 64 KiB list needs
    // (h2 closes the connection); 70 KiB of small fields in five (h2 resets the stream).
    for block in [one_value, many] {
        let server = raw_server(settings(&[]), move |_, id| (header_frames(id, &block, true), Then::Hold));
        let obs = call_h2(&server.url(), Duration::from_secs(5)).await;
        assert_ended(&obs, Outcome::TransportError, "answer header list larger than 64 KiB");
    }
}

/// A header block that puts one 4000-byte field in HPACK's dynamic table (4096 bytes,
/// the client's default) and names it `times` times: a few KiB on the wire.
fn amplified(times: usize) -> Vec<u8> {
    let mut block = vec![0x88, 0x40];
    block.extend(hpack_int(0, 7, 3));
    block.extend_from_slice(b"x-a");
    block.extend(hpack_int(0, 7, 4000));
    block.extend(vec![b'a'; 4000]);
    // The dynamic table's first entry is index 62.
    block.extend(std::iter::repeat_n(0x80 | 62, times));
    block
}

#[tokio::test]
async fn a_header_list_over_64_kib_only_once_decoded() {
    // Far over the limit (280 KiB decoded): h2 closes the connection, saying why.
    let far = amplified(70);
    let server = raw_server(settings(&[]), move |_, id| (header_frames(id, &far, true), Then::Hold));
    let obs = call_h2(&server.url(), Duration::from_secs(5)).await;
    assert_ended(&obs, Outcome::TransportError, "answer header list larger than 64 KiB");
    // Just over it (80 KiB decoded from 4 KiB): h2 resets the stream as it does for a
    // malformed list, and nothing tells the two apart.
    let near = amplified(20);
    let server = raw_server(settings(&[]), move |_, id| (header_frames(id, &near, true), Then::Hold));
    let obs = call_h2(&server.url(), Duration::from_secs(5)).await;
    assert_ended(&obs, Outcome::TransportError, "the answer broke HTTP/2 before any answer (PROTOCOL_ERROR)");
}

#[tokio::test]
async fn a_malformed_header_list_is_not_called_too_large() {
    // A connection-specific field, which HTTP/2 forbids.
    let block = block_200(&[("connection", b"keep-alive")]);
    let server = raw_server(settings(&[]), move |_, id| (header_frames(id, &block, true), Then::Hold));
    let obs = call_h2(&server.url(), Duration::from_secs(5)).await;
    assert_ended(&obs, Outcome::TransportError, "the answer broke HTTP/2 before any answer (PROTOCOL_ERROR)");
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_a_transport_error() {
    let head = block_200(&[("content-type", b"application/json"), ("content-length", b"500")]);
    let ended = head.clone();
    let short = raw_server(settings(&[]), move |_, id| {
        let mut out = header_frames(id, &ended, false);
        out.extend(frame(DATA, END_STREAM, id, &[b' '; 100]));
        (out, Then::Hold)
    });
    let cut = raw_server(settings(&[]), move |_, id| {
        let mut out = header_frames(id, &head, false);
        out.extend(frame(DATA, 0, id, &[b' '; 100]));
        (out, Then::Close)
    });
    let obs = call_h2(&short.url(), Duration::from_secs(5)).await;
    assert_ended(
        &obs,
        Outcome::TransportError,
        "the answer broke HTTP/2 in the middle of the answer's body (PROTOCOL_ERROR)",
    );
    assert_eq!(obs.status, Some(200));
    let obs = call_h2(&cut.url(), Duration::from_secs(5)).await;
    assert_ended(&obs, Outcome::TransportError, "the connection closed in the middle of the answer's body");
}

#[tokio::test]
async fn a_64_mib_body_is_cut_at_max_body_and_never_read_whole() {
    const HUGE: u64 = 64 << 20;
    let sent = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&sent);
    // Sent as the client's flow control allows, generated on the fly.
    let server = h2_server(None, move |_, _, mut respond| {
        let count = Arc::clone(&count);
        async move {
            let head =
                http::Response::builder().status(200).header("content-type", "application/json").body(()).unwrap();
            let Ok(mut stream) = respond.send_response(head, false) else { return };
            let piece = Bytes::from(vec![b' '; 16_384]);
            let mut left = HUGE;
            while left > 0 {
                stream.reserve_capacity(piece.len());
                let Some(Ok(n)) = std::future::poll_fn(|cx| stream.poll_capacity(cx)).await else { return };
                let n = n.min(left as usize);
                if stream.send_data(piece.slice(..n), left == n as u64).is_err() {
                    return;
                }
                count.fetch_add(n as u64, Ordering::Relaxed);
                left -= n as u64;
            }
        }
    });
    let start = Instant::now();
    let obs = call_h2(&server.url(), Duration::from_secs(20)).await;
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    assert_eq!(obs.outcome, Outcome::InvalidBody, "{obs:?}");
    assert!(obs.reason().contains("larger than --max-body"), "{}", obs.reason());
    // Read to the limit and one frame past it, no further.
    assert!(obs.body_bytes > 1 << 20 && obs.body_bytes <= (1 << 20) + 16_384, "{}", obs.body_bytes);
    // Two calls: each let the server send at most its reads plus the window.
    let sent = sent.load(Ordering::Relaxed);
    assert!(sent < 8 << 20, "the server sent {sent} bytes");
}

/// Bytes that look like nothing, the same every run.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn garbage_and_broken_frames_are_transport_errors() {
    let mut with_mark = noise(64);
    with_mark.extend_from_slice(MARK.as_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("noise", with_mark, "the server broke HTTP/2 before any answer"),
        // SETTINGS' payload is a multiple of six bytes (h2 calls a frame it cannot load
        // a PROTOCOL_ERROR).
        ("settings of 5 bytes", frame(SETTINGS, 0, 0, &[0; 5]), "(PROTOCOL_ERROR)"),
        // Over the client's SETTINGS_MAX_FRAME_SIZE (16 KiB).
        (
            "frame of 16 MiB",
            [settings(&[]), vec![0xff, 0xff, 0xff, DATA, 0, 0, 0, 0, 1]].concat(),
            "(FRAME_SIZE_ERROR)",
        ),
        // RFC 9113 says FLOW_CONTROL_ERROR; h2 refuses the frame as it loads it.
        ("window over 2^31-1", settings(&[(0x4, 0x8000_0000)]), "(PROTOCOL_ERROR)"),
        ("max frame size 100", settings(&[(0x5, 100)]), "(PROTOCOL_ERROR)"),
        ("enable push 2", settings(&[(0x2, 2)]), "(PROTOCOL_ERROR)"),
        (
            "RST_STREAM on stream 0",
            [settings(&[]), frame(RST_STREAM, 0, 0, &[0, 0, 0, 2])].concat(),
            "(PROTOCOL_ERROR)",
        ),
    ];
    let mut wrong = Vec::new();
    for (name, first, words) in cases {
        let server = raw_server(first, |_, _| (Vec::new(), Then::Hold));
        let obs = call_h2(&server.url(), Duration::from_secs(5)).await;
        let detail = obs.detail.as_deref().unwrap_or_default();
        if obs.outcome != Outcome::TransportError || !detail.contains(words) {
            wrong.push(format!("{name}: {} {detail:?}, not {words:?}", obs.outcome));
        }
        assert_clean(&obs);
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn frames_of_unknown_types_are_ignored() {
    let server = raw_server(settings(&[]), |_, id| {
        let mut out = frame(0xfa, 0xff, id, MARK.as_bytes());
        out.extend(valid_frames(id));
        (out, Then::Go)
    });
    let obs = call_h2(&server.url(), Duration::from_secs(5)).await;
    assert_eq!(obs.outcome, Outcome::Ok, "{obs:?}");
}

#[tokio::test]
async fn an_http1_server_asked_for_h2c_is_a_transport_error_naming_h2c() {
    let canned = support::HostileServer::start(crate::answers::valid());
    // One answers h2c's preface with an HTTP/1.1 status line; the other closes without
    // a byte once it has read the preface, as HTTP/1.1-only hyper servers do.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_url = format!("http://{}/nehrapi/login/getToken", mute.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = mute.accept().await {
            let mut preface = [0u8; 24];
            let _ = tokio::io::AsyncReadExt::read_exact(&mut conn, &mut preface).await;
        }
    });
    for (url, words) in [
        (
            canned.url(),
            "the server answered in HTTP/1.x: it does not speak HTTP/2 over plain http (h2c, prior knowledge)",
        ),
        (mute_url, "before any HTTP/2 frame: it does not seem to speak HTTP/2 over plain http (h2c, prior knowledge)"),
    ] {
        let obs = call_h2(&url, Duration::from_secs(5)).await;
        assert_ended(&obs, Outcome::TransportError, words);
    }
}

#[tokio::test]
async fn calls_over_the_servers_stream_limit_wait_for_a_stream() {
    // One stream at a time, each answer 150 ms late.
    let server = h2_server(Some(1), |_, _, respond| async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        reply(respond, 200, spec_body()).await;
    });
    let prober = Prober::with_streams(&h2_target(&server.url(), Duration::from_secs(10)), true, 4).unwrap();
    let now = Instant::now();
    let (a, b, c, d) = tokio::join!(prober.call(0, now), prober.call(1, now), prober.call(2, now), prober.call(3, now));
    let all = [a, b, c, d];
    for obs in &all {
        assert_eq!(obs.outcome, Outcome::Ok, "{obs:?}");
    }
    // One connection; the three that waited say so.
    assert_eq!(server.connections(), 1);
    let waited = all.iter().filter(|o| o.phases.stream_wait.is_some_and(|w| w > Duration::ZERO)).count();
    assert_eq!(waited, 3, "{:#?}", all.iter().map(|o| o.phases).collect::<Vec<_>>());
    let longest = all.iter().filter_map(|o| o.phases.stream_wait).max().unwrap();
    assert!(longest >= Duration::from_millis(300), "{longest:?}");
}

#[test]
fn check_over_http2_says_ok_or_critical_with_no_secret() {
    let ok = h2_server(None, |_, _, respond| reply(respond, 200, spec_body()));
    let run = support::check(&ok.url(), &["--http2"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let reset = h2_server(None, |_, _, mut respond| async move { respond.send_reset(Reason::INTERNAL_ERROR) });
    let run = support::check(&reset.url(), &["--http2"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stdout.contains("the server reset the stream before any answer (INTERNAL_ERROR)"), "{run:?}");
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
}
