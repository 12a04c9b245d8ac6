//! The call path's HTTP/1.1 on real sockets: which connections are used again and which
//! never are (the server's `Connection: close`, HTTP/1.0, a body over `--max-body`, an
//! answer cut short by the timeout), a pooled connection the server closed, interim and
//! bodiless answers, and framings that must be refused rather than guessed at.
//!
//! The server here keeps connections alive and answers each request as a plan says for
//! that connection and request, counting the connections it accepts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nehr_probe::call::target::TOKEN_PATH;
use nehr_probe::call::{Connection, Observation, Outcome, Prober};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{HostileServer, Step, call, spec_answer, target};

/// What the server does with request `req` on connection `conn`.
enum Reply {
    /// Write these bytes and wait for the next request.
    Send(Vec<u8>),
    /// The same, after a pause.
    Late(Duration, Vec<u8>),
    /// Write these bytes and close, without saying so in the answer.
    SendThenClose(Vec<u8>),
    /// Close without answering.
    Close,
}

type Plan = dyn Fn(usize, usize) -> Reply + Send + Sync;

struct Server {
    url: String,
    accepted: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl Server {
    async fn start(plan: impl Fn(usize, usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{TOKEN_PATH}", listener.local_addr().unwrap());
        let (accepted, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let plan: Arc<Plan> = Arc::new(plan);
        let (counted, seen) = (Arc::clone(&accepted), Arc::clone(&requests));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let conn = counted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(stream, conn, Arc::clone(&plan), Arc::clone(&seen)));
            }
        });
        Server { url, accepted, requests }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

async fn serve(mut stream: tokio::net::TcpStream, conn: usize, plan: Arc<Plan>, seen: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    for req in 0.. {
        // One request: the head, then its Content-Length body (the client never pipelines).
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    buf.drain(..end + 4 + length);
                    break;
                }
            }
            match stream.read(&mut piece).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&piece[..n]),
            }
        }
        seen.fetch_add(1, Ordering::Relaxed);
        let written = match plan(conn, req) {
            Reply::Send(bytes) => stream.write_all(&bytes).await,
            Reply::Late(pause, bytes) => {
                tokio::time::sleep(pause).await;
                stream.write_all(&bytes).await
            }
            Reply::SendThenClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                return;
            }
            Reply::Close => return,
        };
        if written.is_err() {
            return;
        }
    }
}

/// The spec's answer, with these header lines, as the status line's version says.
fn answer(version: &str, headers: &str) -> Vec<u8> {
    let body = spec_answer().to_string();
    format!(
        "{version} 200 OK\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn ok() -> Vec<u8> {
    answer("HTTP/1.1", "")
}

/// `n` calls in a row on one prober, each with `timeout`.
async fn calls(prober: &Prober, n: u64) -> Vec<Observation> {
    let mut all = Vec::new();
    for seq in 0..n {
        all.push(prober.call(seq, Instant::now()).await);
    }
    all
}

fn connections(all: &[Observation]) -> Vec<(Outcome, Option<Connection>)> {
    all.iter().map(|o| (o.outcome, o.connection)).collect()
}

const PATIENT: Duration = Duration::from_secs(5);
use Connection::{New, Reused};
use Outcome::Ok as OK;

#[tokio::test]
async fn one_connection_carries_every_call_while_the_server_allows() {
    let server = Server::start(|_, _| Reply::Send(ok())).await;
    let prober = Prober::new(&target(&server.url, PATIENT)).unwrap();
    let all = calls(&prober, 5).await;
    assert_eq!(
        connections(&all),
        [(OK, Some(New)), (OK, Some(Reused)), (OK, Some(Reused)), (OK, Some(Reused)), (OK, Some(Reused))]
    );
    assert_eq!(all[4].http_version, Some(nehr_probe::call::observation::HttpVersion::Http11));
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn the_servers_connection_close_or_http_1_0_without_keep_alive_is_never_reused() {
    for plain in [answer("HTTP/1.1", "Connection: close\r\n"), answer("HTTP/1.0", "")] {
        let server = Server::start(move |_, _| Reply::Send(plain.clone())).await;
        let all = calls(&Prober::new(&target(&server.url, PATIENT)).unwrap(), 3).await;
        assert_eq!(connections(&all), [(OK, Some(New)); 3]);
        assert_eq!(server.accepted(), 3);
    }
    let kept = answer("HTTP/1.0", "Connection: keep-alive\r\n");
    let server = Server::start(move |_, _| Reply::Send(kept.clone())).await;
    let all = calls(&Prober::new(&target(&server.url, PATIENT)).unwrap(), 3).await;
    assert_eq!(connections(&all), [(OK, Some(New)), (OK, Some(Reused)), (OK, Some(Reused))]);
    assert_eq!(all[0].http_version, Some(nehr_probe::call::observation::HttpVersion::Http10));
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_costs_no_failed_call() {
    // The server closes after each answer without saying so: found closed before reuse.
    let server = Server::start(|_, _| Reply::SendThenClose(ok())).await;
    let prober = Prober::new(&target(&server.url, PATIENT)).unwrap();
    let all = calls(&prober, 20).await;
    assert!(all.iter().all(|o| o.outcome == OK && o.connection == Some(New)), "{:?}", connections(&all));
    assert_eq!(server.accepted(), 20);

    // Closed just as the next request went out: that call goes again, once, on a new one.
    let server = Server::start(|conn, req| if conn == 0 && req == 1 { Reply::Close } else { Reply::Send(ok()) }).await;
    let prober = Prober::new(&target(&server.url, PATIENT)).unwrap();
    let all = calls(&prober, 3).await;
    assert_eq!(connections(&all), [(OK, Some(New)), (OK, Some(New)), (OK, Some(Reused))]);
    assert_eq!((server.accepted(), server.requests.load(Ordering::Relaxed)), (2, 4));

    // A new connection closed without an answer is the server's failure: no second try.
    let server = Server::start(|_, _| Reply::Close).await;
    let obs = calls(&Prober::new(&target(&server.url, PATIENT)).unwrap(), 1).await.remove(0);
    assert_eq!(obs.outcome, Outcome::TransportError, "{obs:?}");
    assert_eq!(obs.detail.as_deref(), Some("the connection closed before any answer"));
    assert_eq!(server.requests.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_connection_whose_answer_was_not_read_to_its_end_is_never_reused() {
    // Cut short by the timeout: its late answer must not be taken for the next call's.
    let server =
        Server::start(
            |conn, _| if conn == 0 { Reply::Late(Duration::from_millis(400), ok()) } else { Reply::Send(ok()) },
        )
        .await;
    let prober = Prober::new(&target(&server.url, Duration::from_millis(200))).unwrap();
    let all = calls(&prober, 3).await;
    assert_eq!(connections(&all)[0], (Outcome::Timeout, Some(New)));
    assert_eq!(&connections(&all)[1..], [(OK, Some(New)), (OK, Some(Reused))]);
    assert_eq!(server.accepted(), 2);

    // A body over --max-body is not read, so its connection is closed.
    let server = Server::start(|_, _| Reply::Send(ok())).await;
    let mut small = target(&server.url, PATIENT);
    small.max_body = 64;
    let all = calls(&Prober::new(&small).unwrap(), 2).await;
    assert_eq!(connections(&all), [(Outcome::InvalidBody, Some(New)); 2]);
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn interim_answers_are_skipped_and_bodiless_ones_read_no_body() {
    let mut interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n".to_vec();
    interim.extend_from_slice(&ok());
    let server = Server::start(move |_, req| match req {
        0 => Reply::Send(interim.clone()),
        // No body follows, whatever Content-Length says: the next answer comes right after.
        1 => Reply::Send(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n".to_vec()),
        2 => Reply::Send(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
        _ => Reply::Send(ok()),
    })
    .await;
    let started = Instant::now();
    let all = calls(&Prober::new(&target(&server.url, PATIENT)).unwrap(), 4).await;
    let got: Vec<_> = all.iter().map(|o| (o.outcome, o.status, o.connection)).collect();
    assert_eq!(
        got,
        [
            (OK, Some(200), Some(New)),
            (Outcome::HttpError, Some(304), Some(Reused)),
            (Outcome::HttpError, Some(204), Some(Reused)),
            (OK, Some(200), Some(Reused)),
        ]
    );
    assert!(started.elapsed() < Duration::from_secs(2), "waited for a body that never comes");
}

/// One call to a server writing `head` (and `rest`) then closing.
async fn raw(head: &str, rest: &str) -> Observation {
    let server = HostileServer::start(vec![Step::Write(format!("{head}{rest}").into_bytes())]);
    call(&server.url(), PATIENT).await
}

#[tokio::test]
async fn ambiguous_framing_is_a_transport_error_never_a_guess() {
    let body = spec_answer().to_string();
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    for (head, why) in [
        (format!("Content-Length: {}\r\nTransfer-Encoding: chunked\r\n", chunked.len()), "both"),
        (format!("Content-Length: {}\r\nContent-Length: 5\r\n", chunked.len()), "conflicting"),
        (format!("Content-Length: {}, 5\r\n", chunked.len()), "conflicting"),
        ("Transfer-Encoding: gzip, chunked\r\n".to_string(), "other than chunked"),
    ] {
        let obs = raw(&format!("HTTP/1.1 200 OK\r\n{head}\r\n"), &chunked).await;
        assert_eq!(obs.outcome, Outcome::TransportError, "{head}: {obs:?}");
        assert!(obs.detail.as_deref().is_some_and(|d| d.contains(why) && !d.contains('\n')), "{obs:?}");
    }
    let te = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let obs = raw(te, &format!("zz\r\n{body}\r\n0\r\n\r\n")).await;
    assert_eq!(obs.outcome, Outcome::TransportError, "{obs:?}");
    assert!(obs.detail.as_deref().is_some_and(|d| d.contains("chunk size")), "{obs:?}");
    // Extensions and trailers are allowed, and ignored.
    let obs = raw(te, &format!("{:x};ext=\"1\"\r\n{body}\r\n0\r\nX-Trailer: t\r\n\r\n", body.len())).await;
    assert_eq!((obs.outcome, obs.body_bytes), (OK, body.len() as u64), "{obs:?}");
}
