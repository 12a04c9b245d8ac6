//! An HTTP/2 answer as the call path reads it from a hostile server
//! (`src/call/h2.rs`, on the `h2` crate): whatever bytes the server sends after the
//! client's preface give an answer or a one-line error, never a panic or a hang; an
//! answer's body is never longer than `max_body` plus one frame, nor than what was sent.
//!
//! The first byte says what the server does once its bytes are out: close the
//! connection (odd) or hold it open (even, until the call's timeout, on a paused clock);
//! the rest is what it sends.
#![no_main]

use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nehr_probe::call::h2::{Outgoing, exchange, handshake};
use nehr_probe::call::phases::Marks;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Small, so that bodies past it are tried too.
const MAX_BODY: usize = 4096;
/// The most a DATA frame carries at the client's default SETTINGS_MAX_FRAME_SIZE.
const FRAME: usize = 16_384;

fuzz_target!(|data: &[u8]| {
    let Some((&how, sent)) = data.split_first() else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    rt.block_on(async {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let bytes = sent.to_vec();
        tokio::spawn(async move {
            let (mut read, mut write) = tokio::io::split(&mut server);
            // What the client writes is read and dropped, so it never waits on it.
            let drain = async {
                let mut sink = [0u8; 4096];
                while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
            };
            let answer = async {
                let _ = write.write_all(&bytes).await;
                if how % 2 == 1 {
                    let _ = write.shutdown().await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::join!(drain, answer);
        });
        let url = "http://127.0.0.1/nehrapi/login/getToken".parse().unwrap();
        let out = Outgoing::new(http::Method::POST, &url, Bytes::from_static(br#"{"username":"u","password":"p"}"#))
            .unwrap();
        let call = async {
            let session = handshake(client, true).await?;
            let (marks, status) = (Marks::new(Instant::now()), AtomicU32::new(0));
            exchange(&session, &out, MAX_BODY, &marks, &status).await
        };
        match tokio::time::timeout(Duration::from_secs(5), call).await {
            Err(_) => {}
            Ok(Ok(answer)) => {
                assert!(answer.body.len() <= MAX_BODY + FRAME, "{}", answer.body.len());
                assert!(answer.total <= sent.len() as u64, "{} > {}", answer.total, sent.len());
                assert!(answer.oversized || answer.body.len() as u64 == answer.total);
            }
            Ok(Err(e)) => assert!(!e.to_string().contains('\n'), "{e}"),
        }
    });
});
