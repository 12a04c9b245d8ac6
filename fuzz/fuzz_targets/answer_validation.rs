//! Answer validation: any body is a valid token answer with its facts, or a list of
//! violations (never empty, each with a JSON Pointer); an error body's notes too. No
//! violation carries a control character: they end up in log lines and on the page.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nehr_probe::call::validate::Validator;

fn plain(v: &nehr_probe::call::validate::Violation) {
    assert!(!v.path.chars().chain(v.message.chars()).any(char::is_control), "{v:?}");
}

fuzz_target!(|data: &[u8]| {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    let v = VALIDATOR.get_or_init(Validator::builtin);
    if let Err(violations) = v.check_token(data) {
        assert!(!violations.is_empty());
        for violation in &violations {
            assert!(violation.path.is_empty() || violation.path.starts_with('/'), "{violation:?}");
            plain(violation);
        }
    }
    for violation in v.check_error(data) {
        assert!(violation.path.is_empty() || violation.path.starts_with('/'), "{violation:?}");
        plain(&violation);
    }
});
