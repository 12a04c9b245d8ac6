//! Mistakes a newcomer makes on the command line (issue 21), each told in one line with
//! the documented exit code (2, or 3 UNKNOWN for `check`) before any call is made.

use crate::support::{Run, assert_one_clear_error, run};

/// The exit code of a usage error of `command`.
fn usage_code(command: &str) -> i32 {
    if command == "check" { 3 } else { 2 }
}

fn assert_usage_error(command: &str, r: &Run, needle: &str) {
    assert_eq!(r.code, Some(usage_code(command)), "{command}: {r:?}");
    assert_one_clear_error(r);
    assert!(r.stderr.contains(needle), "{command}: want {needle:?} in: {}", r.stderr);
}

#[test]
fn mock_with_a_flag_it_replaces_is_a_usage_error_on_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "x\n").unwrap();
    let password = password.to_str().unwrap();
    let url = "http://127.0.0.1:9/nehrapi/login/getToken";
    for command in ["load", "check", "serve"] {
        for (flag, value) in [("--url", url), ("--username", "MOH-1"), ("--password-file", password)] {
            let r = run(&[command, "--mock", flag, value], &[]);
            assert_usage_error(command, &r, &format!("--mock and {flag} cannot be used together"));
        }
    }
}

/// The environment's settings are defaults: `--mock` overrides them without a word.
#[test]
fn mock_overrides_the_environments_url_and_account() {
    let env = [
        ("NEHR_PROBE_URL", "http://127.0.0.1:9/nehrapi/login/getToken"),
        ("NEHR_PROBE_USERNAME", "MOH-1"),
        ("NEHR_PROBE_PASSWORD_FILE", "/nonexistent/password"),
    ];
    let r = run(&["check", "--mock"], &env);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.starts_with("NEHR-TOKEN OK"), "{r:?}");
}
