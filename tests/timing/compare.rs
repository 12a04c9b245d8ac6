//! `--baseline` on latency: a server twice as slow is found worse, and the same server
//! run twice is no real change. Both hang on latencies a neighbour can stretch, so they
//! are judged here, alone on the machine; tests/it/compare.rs checks the comparison's
//! outputs on verdicts that no load can change, and bench/baseline.sh measures the
//! verdicts' error rates over many pairs on a quiet machine (docs/comparison.md).

use serde_json::Value;

use crate::ALONE;
use crate::support::{Run, mock_at, run, saved_run, verdict};

/// Runs a baseline against a mock at `base_ms` and a run against one at `run_ms`, and
/// compares them with `report --baseline`, until `holds` accepts what it printed and its
/// `--compare-out`: at most three pairs. A neighbour on a shared machine can stretch one
/// run's latencies and not the other's, inventing a change or hiding one, so one pair in
/// three must show the verdicts; every pair must be comparable.
async fn one_of_three(base_ms: u64, run_ms: u64, holds: impl Fn(&Run, &Value) -> Result<(), String>) {
    let (fast, slow) = (mock_at(base_ms).await, mock_at(run_ms).await);
    let mut attempts = Vec::new();
    for attempt in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let base = saved_run(&fast, dir.path(), "base.json").await;
        let other = saved_run(&slow, dir.path(), "run.json").await;
        let out = dir.path().join("comparison.json");
        let (base, other, out) = (base.to_str().unwrap(), other.to_str().unwrap(), out.to_str().unwrap());
        let r = run(&["report", "--baseline", base, other, "--compare-out", out], &[]);
        assert!(matches!(r.code, Some(0 | 1)), "attempt {attempt}: {r:?}");
        let comparison: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
        match holds(&r, &comparison) {
            Ok(()) => return,
            Err(why) => attempts.push(format!("{why}\n{}", r.stdout)),
        }
    }
    panic!("{base_ms} ms against {run_ms} ms, three times: {attempts:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_server_is_no_real_change() {
    let _alone = ALONE.lock().await;
    one_of_three(20, 20, |r, c| {
        let worse: Vec<&str> = ["latency p50", "latency p99", "error rate", "achieved rate"]
            .into_iter()
            .filter(|m| verdict(c, m) == "worse")
            .collect();
        match (r.code, worse.is_empty() && r.stdout.contains("no measure is worse")) {
            (Some(0), true) => Ok(()),
            _ => Err(format!("exit {:?}, worse: {worse:?}", r.code)),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_twice_as_slow_is_worse() {
    let _alone = ALONE.lock().await;
    one_of_three(20, 40, |r, c| {
        let not_worse: Vec<&str> = ["latency p50", "latency p99", "ok latency p50", "processing p50"]
            .into_iter()
            .filter(|m| verdict(c, m) != "worse")
            .collect();
        // "+100.0 % (95 % interval +98.1 % … +101.9 %)".
        let said = r.stdout.contains("WORSE: latency p50") && r.stdout.contains("(95 % interval +");
        match (r.code, not_worse.is_empty() && said) {
            (Some(1), true) => Ok(()),
            _ => Err(format!("exit {:?}, not worse: {not_worse:?}", r.code)),
        }
    })
    .await;
}
