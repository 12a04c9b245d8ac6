//! Bad command lines: each gets the documented exit code (3, UNKNOWN, for `check`; 2
//! for the other commands) and one clear line on stderr, never a panic or a backtrace.

use crate::support::{PASSWORD, Run, USERNAME, assert_one_clear_error, run};

const URL: &str = "http://127.0.0.1:9/nehrapi/login/getToken";

fn check_with(extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args = vec!["check"];
    args.extend_from_slice(extra);
    run(&args, env)
}

fn assert_unknown(r: &Run, needle: &str) {
    assert_eq!(r.code, Some(3), "{r:?}");
    assert_one_clear_error(r);
    assert!(r.stderr.contains(needle), "want {needle:?} in: {}", r.stderr);
}

const WITH_PASSWORD: &[(&str, &str)] = &[("NEHR_PROBE_PASSWORD", PASSWORD)];

#[test]
fn check_unknown_flag_is_unknown_3() {
    let r = check_with(&["--mock", "--bogus"], &[]);
    assert_unknown(&r, "--bogus");
}

#[test]
fn check_password_flag_does_not_exist() {
    let r = check_with(&["--url", URL, "--username", USERNAME, "--password", "hunter2"], &[]);
    assert_unknown(&r, "--password");
}

#[test]
fn check_bad_duration_says_what_is_expected() {
    for flag in ["--timeout", "--warning", "--critical"] {
        let r = check_with(&["--mock", flag, "ten"], &[]);
        assert_unknown(&r, "expected e.g.");
    }
}

#[test]
fn check_bad_format_is_unknown() {
    let r = check_with(&["--mock", "--format", "xml"], &[]);
    assert_unknown(&r, "xml");
}

#[test]
fn check_bad_max_body_is_unknown() {
    let r = check_with(&["--mock", "--max-body", "lots"], &[]);
    assert_unknown(&r, "expected e.g.");
}

#[test]
fn check_missing_password_is_unknown() {
    let r = check_with(&["--url", URL, "--username", USERNAME], &[]);
    assert_unknown(&r, "missing password");
    assert!(r.stderr.contains("--password-file"), "says how to fix it: {}", r.stderr);
}

#[test]
fn check_missing_url_is_unknown_and_suggests_mock() {
    let r = check_with(&["--username", USERNAME], WITH_PASSWORD);
    assert_unknown(&r, "--mock");
}

#[test]
fn check_missing_username_is_unknown() {
    let r = check_with(&["--url", URL], WITH_PASSWORD);
    assert_unknown(&r, "--username");
}

#[test]
fn check_bad_url_scheme_is_unknown() {
    let r = check_with(&["--url", "ftp://127.0.0.1/nehrapi/login/getToken", "--username", USERNAME], WITH_PASSWORD);
    assert_unknown(&r, "only http:// and https://");
}

#[test]
fn check_url_that_is_not_a_url_is_unknown() {
    let r = check_with(&["--url", "not a url", "--username", USERNAME], WITH_PASSWORD);
    assert_unknown(&r, "expected e.g.");
}

#[test]
fn check_unreadable_password_file_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-file");
    let r = check_with(&["--url", URL, "--username", USERNAME, "--password-file", missing.to_str().unwrap()], &[]);
    assert_unknown(&r, "cannot read password file");
    // The OS's reason once: it used to be printed twice, by the message and the chain.
    assert_eq!(r.stderr.matches("No such file or directory").count(), 1, "{}", r.stderr);
    // A directory cannot be read as a file either.
    let r = check_with(&["--url", URL, "--username", USERNAME, "--password-file", dir.path().to_str().unwrap()], &[]);
    assert_unknown(&r, "cannot read password file");
}

#[test]
fn check_empty_password_file_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, "\n").unwrap();
    let r = check_with(&["--url", URL, "--username", USERNAME, "--password-file", file.to_str().unwrap()], &[]);
    assert_unknown(&r, "is empty");
}

#[test]
fn check_warning_above_critical_is_unknown() {
    let r = check_with(&["--mock", "-w", "3s", "-c", "1s"], &[]);
    assert_unknown(&r, "--warning");
}

#[test]
fn check_zero_timeout_is_unknown() {
    let r = check_with(&["--mock", "--timeout", "0"], &[]);
    assert_unknown(&r, "--timeout");
}

#[test]
fn check_unreadable_ca_cert_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let r = check_with(&["--mock", "--ca-cert", not_pem.to_str().unwrap()], &[]);
    assert_unknown(&r, "--ca-cert");
}

#[test]
fn mock_unknown_flag_exits_2() {
    let r = run(&["mock", "--bogus"], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert_one_clear_error(&r);
}

#[test]
fn mock_bad_latency_exits_2() {
    let r = run(&["mock", "--latency", "fast"], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert_one_clear_error(&r);
    assert!(r.stderr.contains("expected 20ms"), "{}", r.stderr);
}

#[test]
fn unknown_command_exits_2() {
    let r = run(&["frobnicate"], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert_one_clear_error(&r);
}

#[test]
fn help_and_version_exit_0() {
    let r = run(&["check", "--help"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("--password-file") && !r.stdout.contains("--password "), "{}", r.stdout);
    let r = run(&["--version"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.starts_with("nehr-probe "), "{}", r.stdout);
}

#[test]
fn schema_prints_the_shipped_schema() {
    let r = run(&["schema"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let schema: serde_json::Value = serde_json::from_str(&r.stdout).expect("schema is JSON");
    assert_eq!(schema["title"], "NEHR getToken answer (HTTP 200)");
}

/// Every flag of every command (help and version aside) is in the README, so a flag
/// added without documentation fails here.
#[test]
fn the_readme_documents_every_flag_of_every_command() {
    use clap::CommandFactory;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut missing = Vec::new();
    for command in nehr_probe::cli::Cli::command().get_subcommands() {
        for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
            let Some(long) = arg.get_long() else { continue };
            if !["help", "version"].contains(&long) && !readme.contains(&format!("--{long}")) {
                missing.push(format!("{} --{long}", command.get_name()));
            }
        }
    }
    assert!(missing.is_empty(), "not in the README: {missing:?}");
}
