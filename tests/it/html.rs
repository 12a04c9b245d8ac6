//! `--html`: the page `load` and `report` write, rendered by a real headless chromium
//! (a non-blank screenshot, no console message), its structure checked (three charts,
//! the tables, nothing referenced outside the file), and `report --html` of saved runs.

use serde_json::Value;

use crate::browser::{keep, screenshot};
use crate::support::{HostileServer, Step, example_account, run};

/// The ok colour of the outcome chart, as its 85 % fill shows on white.
const OK_FILL: [u8; 3] = [77, 174, 95];

/// The page is self-contained: no script, and no address but the SVG namespace and the target.
fn assert_self_contained(page: &str, target: &str) {
    for outside in ["<script", "src=", "href=", "url(", "@import", "<link", "<iframe", "<img", "<object"] {
        assert!(!page.contains(outside), "the page holds {outside:?}");
    }
    let addresses = page.matches("http://").count() + page.matches("https://").count();
    let namespaces = page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
    assert_eq!(addresses, namespaces + page.matches(target).count(), "an address besides the target");
}

#[test]
fn load_html_is_one_self_contained_page_that_chromium_draws() {
    let dir = tempfile::tempdir().unwrap();
    let (html, json) = (dir.path().join("run.html"), dir.path().join("run.json"));
    let out = run(
        &[
            "load",
            "--mock",
            "--rps",
            "50",
            "-d",
            "3s",
            "--quiet",
            "--threshold",
            "ok_p99<2s",
            "--threshold",
            "error_rate<50%",
            "--html",
            html.to_str().unwrap(),
            "--out",
            json.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let page = std::fs::read_to_string(&html).unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let target = report["target"].as_str().unwrap();
    assert!(target.starts_with("http://127.0.0.1:"), "{target}");

    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 3, "three charts");
    for heading in [
        "Latency over time",
        "Requests per second by outcome",
        "Latency percentile spectrum",
        ">Run<",
        ">Outcomes<",
        ">Latency<",
        ">Thresholds<",
        ">HTTP status<",
        ">Where the time went<",
        ">processing<",
        ">Dropped<",
    ] {
        assert!(page.contains(heading), "no {heading}");
    }
    assert!(page.contains("ok_p99&lt;2s") && page.contains("99.999%"), "rules and the spectrum's axis");
    assert!(page.contains(">PASS<"), "the verdict");
    assert!(page.contains(report["started_at"].as_str().unwrap()));
    assert_self_contained(&page, target);

    let png = keep("html-report.png");
    let Some(shot) = screenshot(&html, &png, (1100, 2200)) else { return };
    eprintln!("screenshot: {} ({}x{}, {} bytes of page)", png.display(), shot.width, shot.height, page.len());
    shot.assert_drawn();
    assert!(shot.count(OK_FILL, 12) > 5_000, "the ok band of the outcome chart is not drawn");
}

#[test]
fn report_html_draws_saved_runs_merged() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in ["a.json", "b.json"] {
        let path = dir.path().join(name);
        let out = run(&["load", "--mock", "--rps", "40", "-n", "40", "--quiet", "--out", path.to_str().unwrap()], &[]);
        assert_eq!(out.code, Some(0), "{out:?}");
        files.push(path.to_str().unwrap().to_owned());
    }
    let html = dir.path().join("both.html");
    let out = run(&["report", &files[0], &files[1], "--html", html.to_str().unwrap()], &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 3);
    assert!(page.contains("merged from 2 reports"), "the merge's notes");
    assert!(page.contains("<td class=\"n\">80</td>"), "80 ok calls in the outcomes table");
    // The badge names the rules that failed.
    let strict = dir.path().join("strict.html");
    let rules = ["--threshold", "p99<1us", "--threshold", "max<1us", "--threshold", "p50<10s"];
    let out = run(&[&["report", &files[0], "--html", strict.to_str().unwrap()][..], &rules].concat(), &[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let strict = std::fs::read_to_string(&strict).unwrap();
    assert!(strict.contains(">FAIL: p99&lt;1us, max&lt;1us<"), "the badge says which rules failed");
    let png = keep("html-report-merged.png");
    let Some(shot) = screenshot(&html, &png, (1100, 1600)) else { return };
    shot.assert_drawn();

    // An unwritable --html is a clear error.
    let bad = run(&["report", &files[0], "--html", "/nonexistent-dir/x.html"], &[]);
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(bad.stderr.contains("cannot write --html /nonexistent-dir/x.html"), "{}", bad.stderr);
}

/// The dark fill of the dropped layer, as its 85 % shows on white.
const DROPPED_FILL: [u8; 3] = [69, 73, 78];

/// A server that never answers, one worker and a rate it cannot keep: the calls time
/// out and most due requests are dropped, and the rate chart shows them stacked on top.
#[test]
fn an_overloaded_run_draws_its_dropped_requests_on_the_rate_chart() {
    let dir = tempfile::tempdir().unwrap();
    let server = HostileServer::start(vec![Step::Hold]);
    let accounts = example_account(dir.path());
    let (html, json) = (dir.path().join("over.html"), dir.path().join("over.json"));
    let url = server.url();
    let out = run(
        &[
            "load",
            "--url",
            &url,
            "--credentials",
            accounts.to_str().unwrap(),
            "--rps",
            "100",
            "-c",
            "1",
            "-d",
            "2s",
            "--timeout",
            "300ms",
            "--quiet",
            "--html",
            html.to_str().unwrap(),
            "--out",
            json.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.code, Some(1), "no call was ok: {out:?}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let dropped = report["dropped"].as_u64().unwrap();
    assert!(dropped > 100, "{report}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("dropped (never sent)"), "the rate chart's legend");
    assert!(page.contains(">FAIL: no call was ok<"), "the verdict says why");
    let png = keep("html-report-dropped.png");
    let Some(shot) = screenshot(&html, &png, (1100, 2200)) else { return };
    shot.assert_drawn();
    assert!(shot.count(DROPPED_FILL, 12) > 2_000, "the dropped band of the rate chart is not drawn");
}
