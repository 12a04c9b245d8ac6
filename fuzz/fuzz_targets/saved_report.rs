//! `report`: any saved text is reports or a one-line error; what reads can be merged
//! and shown without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nehr_probe::report::merge::{merge, read_all};
use nehr_probe::report::text::render;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match read_all(text, "run.json") {
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
        Ok((reports, _skipped)) => {
            for r in &reports {
                let _ = render(r);
            }
            if let Ok(merged) = merge(reports) {
                let _ = render(&merged);
            }
        }
    }
});
