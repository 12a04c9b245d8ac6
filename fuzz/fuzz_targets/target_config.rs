//! `serve --config`: any text names checked targets or is a one-line error naming the
//! file, and a password never shows in it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nehr_probe::serve::config::parse_config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_config(text, "targets.toml") {
        Err(e) => {
            let shown = e.to_string();
            assert!(!shown.contains('\n'), "{shown:?}");
            assert!(shown.contains("targets.toml"), "{shown:?}");
        }
        Ok(entries) => assert!(!entries.is_empty()),
    }
});
