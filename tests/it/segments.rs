//! One schedule over several processes: `load --segment I/N` with one `--start-at`,
//! merged by `report` (from files, or several reports in one stream), against one mock
//! on loopback, compared with one process sending the whole schedule. The comparison of
//! rates and latencies of three real processes is in the timing tests.

use std::time::Duration;

use nehr_probe::call::Outcome;
use nehr_probe::call::target::{EXAMPLE_PASSWORD, EXAMPLE_USERNAME};
use nehr_probe::load::execute;
use nehr_probe::mock::{MockArgs, MockServer};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::{
    assert_one_clear_error, example_account, json_of, parse_load, report_stdin, run, start_in, within,
};

/// `--stages` is striped the same way, and `--credentials` rows go by the global
/// sequence number: with three rows of which only the first is valid, segment 0 of 3
/// sends every valid login and the other two none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_and_credentials_are_striped_by_global_sequence_number() {
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let accounts = dir.path().join("accounts");
    std::fs::write(&accounts, format!("{EXAMPLE_USERNAME}:{EXAMPLE_PASSWORD}\nnobody:x\nnobody2:y\n")).unwrap();
    let (url, accounts) = (server.url(), accounts.to_str().unwrap().to_string());
    let start = start_in(Duration::from_millis(800));
    // 60 rps for a second, then down to 0 over a second: 60 + 30 requests.
    let common = ["--url", &url, "--credentials", &accounts, "--stages", "0s:60,1s:60,1s:0", "--start-at", &start];
    let runs = (0..3).map(|i| {
        let mut argv = common.to_vec();
        let seg = format!("{i}/3");
        argv.extend(["--segment", &seg]);
        let args = parse_load(&argv);
        async move { execute(&args, CancellationToken::new()).await.expect("segment runs").shown.report }
    });
    let parts = futures_join(runs).await;
    let counts: Vec<u64> = parts.iter().map(|r| r.requests).collect();
    assert_eq!(counts, [30, 30, 30]);
    let ok: Vec<u64> = parts.iter().map(|r| r.outcomes[Outcome::Ok]).collect();
    assert_eq!(ok, [30, 0, 0], "credentials by global sequence number");
    assert_eq!(parts[1].outcomes[Outcome::Unauthorized], 30);

    let whole = parse_load(&["--url", &url, "--credentials", &accounts, "--stages", "0s:60,1s:60,1s:0"]);
    let whole = execute(&whole, CancellationToken::new()).await.unwrap().shown.report;
    assert_eq!(whole.requests, counts.iter().sum::<u64>());
    assert_eq!(whole.outcomes[Outcome::Ok], 30);
    let planned: f64 = parts.iter().map(|r| r.target_rps.unwrap()).sum();
    assert!(within(planned, whole.target_rps.unwrap(), 0.01), "{planned} vs {:?}", whole.target_rps);
}

/// `--requests` and `--warmup` are the whole run's: `-n 10` over three segments is the
/// global requests 0 to 9, four for segment 0 and three for the others, after a warmup
/// each segment shares the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_warmup_split_by_global_number() {
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, accounts) = (server.url(), example_account(dir.path()));
    let start = start_in(Duration::from_millis(500));
    let runs = (0..3).map(|i| {
        let seg = format!("{i}/3");
        let args = parse_load(&[
            "--url",
            &url,
            "--credentials",
            accounts.to_str().unwrap(),
            "--rps",
            "200",
            "-n",
            "10",
            "--warmup",
            "100ms",
            "--segment",
            &seg,
            "--start-at",
            &start,
        ]);
        async move { execute(&args, CancellationToken::new()).await.expect("segment runs").shown.report }
    });
    let counts: Vec<u64> = futures_join(runs).await.iter().map(|r| r.requests).collect();
    assert_eq!(counts, [4, 3, 3]);
}

/// Runs the futures together on this runtime.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[test]
fn bad_segments_and_a_past_start_are_usage_errors() {
    for (args, says) in [
        (&["--rps", "5", "--segment", "3/3"][..], "I must be less than N"),
        (&["--rps", "5", "--segment", "x"], "expected I/N"),
        (&["--rps", "5", "--segment", "0/0"], "N must be 1 to"),
        (&["--rps", "5", "--segment", "1"], "expected I/N"),
        (&["--segment", "0/3"], "needs --rps or --stages"),
        (&["--rps", "5", "--start-at", "2020-01-01T00:00:00Z"], "passed"),
        (&["--rps", "5", "--start-at", "tomorrow"], "expected an RFC 3339 time"),
        (&["--rps", "5", "--start-at", "99999999999"], "more than 7 days away"),
    ] {
        let mut argv = vec!["load", "--mock", "-d", "1s"];
        argv.extend_from_slice(args);
        let r = run(&argv, &[]);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert_one_clear_error(&r);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
}

/// A saved report as segment `index` of `count`.
fn as_segment(report: &str, index: u64, count: u64) -> String {
    let mut v: Value = serde_json::from_str(report).unwrap();
    v["segment"] = serde_json::json!({"index": index, "count": count});
    v.to_string()
}

#[test]
fn report_names_missing_and_repeated_segments() {
    let one = run(&["load", "--mock", "--rps", "50", "-n", "10", "--format", "json", "--quiet"], &[]);
    assert_eq!(one.code, Some(0), "{}", one.stderr);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (a, c) = (file("a.json", as_segment(&one.stdout, 0, 3)), file("c.json", as_segment(&one.stdout, 2, 3)));
    let r = run(&["report", &a, &c], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("warning: segment 1/3 missing"), "{}", r.stderr);
    assert!(r.stdout.contains("WARNING: segment 1/3 missing"), "{}", r.stdout);

    // Two files, one of them holding two reports, segment 0/3 among them twice.
    let two = file("ab.json", format!("{}\n{}", as_segment(&one.stdout, 0, 3), as_segment(&one.stdout, 1, 3)));
    let r = run(&["report", &two, &a, &c, "--format", "json"], &[]);
    assert!(r.stderr.contains("warning: segment 0/3 more than once"), "{}", r.stderr);
    assert_eq!(json_of(&r)["requests"], 40);

    // A complete set says nothing; nor does a stream of plain reports.
    let b = file("b.json", as_segment(&one.stdout, 1, 3));
    let r = run(&["report", &a, &b, &c], &[]);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let r = report_stdin(&format!("starting\n{}{}", one.stdout, one.stdout), &["--format", "json"]);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert_eq!(json_of(&r)["requests"], 20);

    // Nothing to read, or a broken second report: one clear error, exit 2.
    for input in ["just words\n", &format!("{}{{\"target\": 3}}", one.stdout)] {
        let r = report_stdin(input, &[]);
        assert_eq!(r.code, Some(2), "{}", r.stderr);
        assert_one_clear_error(&r);
    }
    let r = run(&["report", "-", "-"], &[]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("only once"), "{}", r.stderr);
}
