//! `--baseline`: two runs compared end to end, from saved files and at the end of
//! `load`, their outputs read by real consumers: the comparison JSON by a JSON Schema
//! validator, the JUnit file by python's junitparser, the Markdown summary by a
//! CommonMark parser. The verdicts' error rates over many pairs are measured by
//! bench/baseline.sh, not here (docs/comparison.md has the figures).

use std::path::{Path, PathBuf};
use std::time::Duration;

use nehr_probe::mock::MockControl;
use serde_json::Value;

use crate::support::{Run, assert_one_clear_error, mock_at, run, saved_run, verdict};

const SCHEMA: &str = include_str!("../../schemas/comparison.schema.json");

/// `report --baseline BASE RUN` with every CI output, read back.
struct Compared {
    run: Run,
    json: Value,
    junit: PathBuf,
    summary: String,
}

fn compare(dir: &Path, base: &Path, run_file: &Path, tag: &str) -> Compared {
    let (json, junit, summary) =
        (dir.join(format!("{tag}.json")), dir.join(format!("{tag}.xml")), dir.join(format!("{tag}.md")));
    let r = run(
        &[
            "report",
            "--baseline",
            base.to_str().unwrap(),
            run_file.to_str().unwrap(),
            "--compare-out",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--summary",
            summary.to_str().unwrap(),
        ],
        &[],
    );
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    let json: Value = serde_json::from_str(&text).unwrap();
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the comparison schema compiles");
    let errors: Vec<String> = validator.iter_errors(&json).map(|e| format!("{} {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}\n{json:#}");
    Compared { run: r, json, junit, summary: std::fs::read_to_string(&summary).unwrap() }
}

/// The JUnit file as python's junitparser reads it: (suite, case, result kind, message).
fn junit_cases(path: &Path) -> Option<Vec<(String, String, String, String)>> {
    let python = std::env::var("NEHR_PROBE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import json, sys\nfrom junitparser import JUnitXml\nout = []\n\
        for s in JUnitXml.fromfile(sys.argv[1]):\n    for c in s:\n        r = c.result\n        \
        out.append([s.name, c.name, type(r[0]).__name__ if r else 'Passed', (r[0].message or '') if r else ''])\n\
        print(json.dumps(out))";
    let out = std::process::Command::new(&python).args(["-c", script]).arg(path).output();
    match out {
        Ok(o) if o.status.success() => Some(serde_json::from_slice(&o.stdout).unwrap()),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "junitparser is not importable by {python}; CI needs it (.ci/run installs it into its virtualenv)"
            );
            eprintln!("note: junitparser not installed (pip install junitparser): the JUnit file is not checked");
            None
        }
    }
}

/// The Markdown summary's tables as a CommonMark (GFM tables) parser sees them: rows of cells.
fn markdown_tables(text: &str) -> Vec<Vec<Vec<String>>> {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let (mut tables, mut cell) = (Vec::new(), None::<String>);
    for event in Parser::new_ext(text, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Table(_)) => tables.push(Vec::new()),
            Event::Start(Tag::TableHead | Tag::TableRow) => tables.last_mut().unwrap().push(Vec::new()),
            Event::Start(Tag::TableCell) => cell = Some(String::new()),
            Event::End(TagEnd::TableCell) => {
                tables.last_mut().unwrap().last_mut().unwrap().push(cell.take().unwrap());
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(c) = &mut cell {
                    c.push_str(&t);
                }
            }
            _ => {}
        }
    }
    tables
}

/// The outputs of a comparison whose verdicts no load on this machine can change: a run
/// against itself (nothing changed), and a run that a third of the logins failed against
/// a baseline without errors. Whether a slower server is found slower, and the same
/// server the same, is measured in tests/timing (compare.rs), alone on the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outputs_of_a_comparison_are_read_by_their_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let (healthy_server, failing) = (mock_at(5).await, mock_at(5).await);
    failing.control(&MockControl { error_rate: Some(0.3), ..MockControl::default() }).unwrap();
    let base = saved_run(&healthy_server, dir.path(), "base.json").await;
    let failing_run = saved_run(&failing, dir.path(), "failing.json").await;

    let healthy = compare(dir.path(), &base, &base, "cmp-same");
    assert_eq!(healthy.run.code, Some(0), "{:?}\n{:#}", healthy.run, healthy.json);
    assert_eq!(healthy.json["passed"], true);
    assert!(healthy.run.stdout.contains("no measure is worse"), "{}", healthy.run.stdout);
    for m in ["latency p50", "latency p99", "error rate", "achieved rate"] {
        assert_eq!(verdict(&healthy.json, m), "no_real_change", "{m}");
    }

    let worse = compare(dir.path(), &base, &failing_run, "cmp-failing");
    assert_eq!(worse.run.code, Some(1), "{:?}", worse.run);
    for m in ["error rate", "server_error"] {
        assert_eq!(verdict(&worse.json, m), "worse", "{m}: {:#}", worse.json);
    }
    assert_eq!(verdict(&worse.json, "latency max"), "not_judged");
    assert!(worse.run.stdout.contains("WORSE: error rate"), "{}", worse.run.stdout);
    // The line says how much, and how sure: "+30.0 % (95 % interval +25.1 % … +34.9 %)".
    assert!(worse.run.stdout.contains("(95 % interval +"), "{}", worse.run.stdout);
    assert!(worse.json["differences"][0].as_str().unwrap().contains("the targets differ"), "{:#}", worse.json);

    // JUnit, as a CI server reads it: a failing case per worse measure, a skipped one per
    // measure not judged, the rest passing.
    if let Some(cases) = junit_cases(&worse.junit) {
        let kinds = |kind: &str| cases.iter().filter(|c| c.2 == kind).map(|c| c.1.clone()).collect::<Vec<_>>();
        let names: Vec<String> =
            worse.json["worse"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert_eq!(kinds("Failure"), names);
        assert!(kinds("Skipped").contains(&"latency max".to_string()), "{cases:?}");
        assert!(kinds("Passed").contains(&"achieved rate".to_string()), "{cases:?}");
        let errors = cases.iter().find(|c| c.1 == "error rate").unwrap();
        assert!(errors.3.contains("is worse") && errors.3.contains("95 % interval"), "{errors:?}");
        let healthy_cases = junit_cases(&healthy.junit).unwrap();
        assert!(healthy_cases.iter().all(|c| c.2 != "Failure"), "{healthy_cases:?}");
    }

    // The --html page of the comparison, as chromium draws it.
    let page = dir.path().join("compare.html");
    let r = run(
        &[
            "report",
            "--baseline",
            base.to_str().unwrap(),
            failing_run.to_str().unwrap(),
            "--html",
            page.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<svg").count(), 3, "spectra overlaid, two timelines");
    if let Some(shot) = crate::browser::screenshot(&page, &dir.path().join("compare.png"), (1100, 2400)) {
        shot.assert_drawn();
    }

    // Markdown: the verdict first, then one table row per measure.
    assert!(worse.summary.starts_with("### nehr-probe: FAIL"), "{}", worse.summary);
    assert!(healthy.summary.starts_with("### nehr-probe: PASS"), "{}", healthy.summary);
    let tables = markdown_tables(&worse.summary);
    let table = tables.last().expect("a comparison table");
    assert_eq!(table[0], ["measure", "baseline", "run", "change", "verdict"]);
    assert_eq!(table.len() - 1, worse.json["measures"].as_array().unwrap().len());
    assert!(table.iter().all(|row| row.len() == 5), "{table:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_window_is_a_worse_error_rate() {
    let dir = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(mock_at(5).await);
    let base = saved_run(&server, dir.path(), "base.json").await;
    let mock = server.clone();
    let outage = tokio::spawn(async move {
        let errors = |rate| MockControl { error_rate: Some(rate), ..MockControl::default() };
        tokio::time::sleep(Duration::from_secs(2)).await;
        mock.control(&errors(1.0)).unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        mock.control(&errors(0.0)).unwrap();
    });
    let broken = saved_run(&server, dir.path(), "broken.json").await;
    outage.await.unwrap();
    let c = compare(dir.path(), &base, &broken, "cmp-outage");
    assert_eq!(c.run.code, Some(1), "{:?}", c.run);
    assert_eq!(verdict(&c.json, "error rate"), "worse", "{:#}", c.json);
    assert_eq!(verdict(&c.json, "server_error"), "worse");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_compares_at_its_end_and_refuses_another_experiment_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let server = mock_at(2).await;
    let base = saved_run(&server, dir.path(), "base.json").await;
    let base = base.to_str().unwrap();

    // Another rate, another model: refused before the first request, on one line.
    for (flags, says) in [(&["--rps", "50"][..], "at another rate"), (&["-c", "5"][..], "closed-model run")] {
        let mut args = vec!["load", "--mock", "-q", "-d", "30s", "--baseline", base];
        args.extend_from_slice(flags);
        let started = std::time::Instant::now();
        let r = run(&args, &[]);
        assert_eq!(r.code, Some(2), "{r:?}");
        assert_one_clear_error(&r);
        assert!(r.stderr.contains(says), "{}", r.stderr);
        assert!(started.elapsed() < Duration::from_secs(20), "refused only after the run");
    }
    // A baseline that is not a report: before the run too.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "not json").unwrap();
    let r = run(&["load", "--mock", "-q", "-d", "30s", "--baseline", junk.to_str().unwrap()], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("--baseline"), "{}", r.stderr);

    // The same plan on the embedded mock: compared after the report, JSON on stdout intact.
    let junit = dir.path().join("load.xml");
    let r = run(
        &["load", "--mock", "-q", "--rps", "100", "-d", "6s", "--format", "json", "--baseline", base, "--junit"]
            .into_iter()
            .chain([junit.to_str().unwrap()])
            .collect::<Vec<_>>(),
        &[],
    );
    let report: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert!(report["requests"].as_u64().unwrap() > 500, "{report:#}");
    assert!(r.stderr.contains("Compared with the baseline"), "the comparison goes to stderr: {}", r.stderr);
    assert!(std::fs::read_to_string(&junit).unwrap().contains("comparison with the baseline"));
}
