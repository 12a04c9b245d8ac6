//! Mistakes a newcomer makes on the command line (issue 21), each told in one line with
//! the documented exit code (2, or 3 UNKNOWN for `check`) before any call is made.

use std::time::{Duration, Instant};

use crate::support::{
    HostileServer, PASSWORD, Run, USERNAME, assert_one_clear_error, assert_unknown_line, edited_answer, run,
};

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

/// A negative value used to be taken for a flag ("unexpected argument '-5'").
#[test]
fn negative_values_are_refused_as_values_with_the_reason() {
    for (command, flag, value, why) in [
        ("load", "-d", "-5s", "invalid duration \"-5s\": a duration cannot be negative"),
        ("load", "--warmup", "-1s", "a duration cannot be negative"),
        ("load", "--timeout", "-1s", "a duration cannot be negative"),
        ("load", "--rps", "-5", "invalid rate \"-5\": a rate cannot be negative"),
        ("load", "-c", "-5", "-5 is not in 1..=100000"),
        ("load", "-n", "-5", "a count cannot be negative"),
        ("check", "-w", "-5s", "a duration cannot be negative"),
        ("check", "-c", "-1s", "a duration cannot be negative"),
        ("serve", "--interval", "-1s", "a duration cannot be negative"),
        ("serve", "--max-connections", "-1", "-1 is not in 1..=65536"),
    ] {
        let r = run(&[command, "--mock", flag, value], &[]);
        assert_usage_error(command, &r, why);
    }
    let r = run(&["mock", "--stall-for", "-1s"], &[]);
    assert_usage_error("mock", &r, "a duration cannot be negative");
    // A flag where a value was due is still no negative number.
    let r = run(&["load", "--mock", "-d", "--quiet"], &[]);
    assert_usage_error("load", &r, "invalid duration \"--quiet\": expected e.g. 30s");
    assert!(!r.stderr.contains("negative"), "{}", r.stderr);
}

#[test]
fn a_rate_above_the_cap_says_the_range() {
    let r = run(&["load", "--mock", "--rps", "1e9"], &[]);
    assert_usage_error("load", &r, "too high; expected requests per second above 0 and at most 10,000,000");
}

/// `p100<1s` used to be accepted, and an unknown metric got a 500-character line.
#[test]
fn bad_threshold_metrics_get_one_short_line() {
    for (rule, why) in [
        ("p100<1s", "p100 is the slowest call: write max instead (a percentile is above 0 and below 100)"),
        ("latency<1s", "unknown metric \"latency\"; the metrics are pNN (0 < NN < 100)"),
        ("errors<1%", "did you mean error_rate?"),
    ] {
        let r = run(&["load", "--mock", "--threshold", rule], &[]);
        assert_usage_error("load", &r, why);
        assert!(r.stderr.len() < 300, "one short line: {}", r.stderr);
        let r = run(&["report", "-", "--threshold", rule], &[]);
        assert_usage_error("report", &r, why);
    }
}

/// `check`'s usage errors went to stderr only, so Nagios showed "(No output returned
/// from plugin)": the UNKNOWN line is on stdout too, unless stdout is JSON or metrics.
#[test]
fn check_usage_errors_are_an_unknown_status_line_on_stdout() {
    for args in [
        &["check", "--bogus"][..],
        &["check", "--mock", "-w", "3s", "-c", "1s"],
        &["check", "--url", "http://127.0.0.1:9/nehrapi/login/getToken"],
        &["check", "--mock", "--timeout", "ten"],
    ] {
        let r = run(args, &[]);
        assert_unknown_line(&r);
        assert!(r.stdout.starts_with("NEHR-TOKEN UNKNOWN - "), "{args:?}: {r:?}");
    }
    for format in ["json", "prometheus"] {
        let r = run(&["check", "--mock", "--format", format, "--timeout", "0"], &[]);
        assert_usage_error("check", &r, "--timeout <DURATION>': it must be more than 0");
        assert!(r.stdout.is_empty(), "{format}: a status line would break its reader: {r:?}");
    }
    let r = run(&["load", "--mock", "--timeout", "0"], &[]);
    assert_usage_error("load", &r, "--timeout <DURATION>': it must be more than 0");
    assert!(r.stdout.is_empty(), "{r:?}");
}

/// `--out` into a missing directory used to fail only after the whole run: every file a
/// command writes is checked before the first call, which the server never sees.
#[test]
fn an_output_that_cannot_be_written_fails_before_the_first_call() {
    let server = HostileServer::start(edited_answer(|_| {}));
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept.json");
    std::fs::write(&kept, "keep").unwrap();
    let missing = dir.path().join("missing/x");
    let (kept, missing) = (kept.to_str().unwrap(), missing.to_str().unwrap());
    let load = ["load", "--url", &url, "--username", USERNAME, "--rps", "10", "-d", "30s", "--quiet"];
    for flag in ["--out", "--html", "--hlog", "--compare-out", "--junit", "--summary"] {
        let started = Instant::now();
        // A file that can be written is named first (--html, or --out for the others):
        // probing it must not touch it.
        let writable = if flag == "--html" { "--out" } else { "--html" };
        let args = [&load[..], &[writable, kept, flag, missing]].concat();
        let r = run(&args, &[("NEHR_PROBE_PASSWORD", PASSWORD)]);
        assert_usage_error("load", &r, &format!("cannot write {flag} {missing}: directory "));
        assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
        assert!(started.elapsed() < Duration::from_secs(10), "{flag}: failed after the run");
    }
    let r = run(
        &["check", "--url", &url, "--username", USERNAME, "--textfile", missing],
        &[("NEHR_PROBE_PASSWORD", PASSWORD)],
    );
    assert_unknown_line(&r);
    assert!(r.stderr.contains(&format!("cannot write --textfile {missing}: directory ")), "{}", r.stderr);
    let r = run(&["check", "--mock", "--textfile", dir.path().to_str().unwrap()], &[]);
    assert_unknown_line(&r);
    assert!(r.stderr.contains("it is a directory"), "{}", r.stderr);
    let r = run(&["report", "-", "--html", kept, "--junit", missing], &[]);
    assert_usage_error("report", &r, &format!("cannot write --junit {missing}"));
    assert!(server.requests().is_empty(), "the server was called");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "keep", "an existing file was changed");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["kept.json"], "stray files");
}
