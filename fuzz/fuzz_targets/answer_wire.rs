//! An answer's head and chunked body, as the call path reads them from a hostile server
//! (`src/call/h1.rs`): any bytes give a head or a one-line error, never a panic; a head
//! is never longer than what was read nor than the limit; a chunked body decodes the
//! same whatever reads it arrives in, and never longer than its framing.
//!
//! The first byte sets the size of the reads; the rest is the answer.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use nehr_probe::call::h1::{Dechunker, Framing, MAX_HEAD, parse_head};

/// Decodes `input` arriving `step` bytes a read: the body and what followed it, or the
/// error's text, or "unfinished".
fn dechunk(input: &[u8], step: usize) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (mut chunks, mut buf, mut decoded, mut done) = (Dechunker::default(), BytesMut::new(), 0, false);
    for piece in input.chunks(step) {
        buf.extend_from_slice(piece);
        if !done {
            done = chunks.decode(&mut buf, &mut decoded).map_err(|e| e.to_string())?;
        }
    }
    match done {
        true => Ok((buf[..decoded].to_vec(), buf[decoded..].to_vec())),
        false => Err("unfinished".into()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, answer)) = data.split_first() else { return };
    let mut body = answer;
    match parse_head(answer) {
        Ok(Some(head)) => {
            assert!(head.len <= answer.len() && head.len <= MAX_HEAD, "{head:?}");
            if head.framing == Framing::Chunked {
                body = &answer[head.len..];
            }
        }
        Ok(None) => assert!(answer.len() < MAX_HEAD),
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
    }
    let whole = dechunk(body, body.len().max(1));
    assert_eq!(whole, dechunk(body, usize::from(step).max(1)));
    if let Ok((decoded, _)) = whole {
        assert!(decoded.len() <= body.len());
    }
});
