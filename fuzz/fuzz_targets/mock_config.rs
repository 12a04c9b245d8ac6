//! The mock's `POST /_mock/config`: any body is a change the running mock takes or a
//! refusal; it never panics and never leaves the mock unable to answer.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nehr_probe::mock::{MockArgs, MockControl, MockServer};

fn server() -> &'static MockServer {
    static SERVER: OnceLock<(tokio::runtime::Runtime, MockServer)> = OnceLock::new();
    &SERVER
        .get_or_init(|| {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            let server = rt.block_on(MockServer::start(&MockArgs::default())).unwrap();
            (rt, server)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let change = match MockControl::from_json(data) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.contains('\n'), "{e}");
            return;
        }
    };
    if let Err(e) = server().control(&change) {
        assert!(!e.contains('\n'), "{e}");
    }
    let _ = server().stats();
});
