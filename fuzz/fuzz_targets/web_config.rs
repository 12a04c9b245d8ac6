//! `--web-config`: any text parses to a config or a one-line error naming a line, never a
//! panic; a hash or inline key never shows in the error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nehr_probe::serve::web_config::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(problem) = parse(text, std::path::Path::new("/etc/nehr-probe")) {
        let shown = problem.to_string();
        assert!(!shown.contains('\n'), "{shown:?}");
        if let Some(line) = problem.line {
            let lines = nehr_probe::serve::web_config::yaml_lines(text).count();
            assert!(line >= 1 && line <= lines + 1, "line {line} of {lines} in {text:?}");
        }
    }
});
