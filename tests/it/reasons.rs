//! Why calls failed, end to end: a load against a closed port or with a wrong password
//! says why in its text, JSON (schema-valid) and HTML; reasons that would make one per
//! call stay one; merged reports add their reasons and stay bounded. And what the report
//! keeps of a `--stages` plan, and the HTML phase table without the phases no call had.

use nehr_probe::call::target::{EXAMPLE_PASSWORD, EXAMPLE_USERNAME};
use nehr_probe::mock::{MockArgs, MockServer};
use nehr_probe::report::merge::merge;
use nehr_probe::report::model::PlannedStage;
use nehr_probe::report::text::render;
use serde_json::{Value, json};

use crate::browser::{keep, screenshot};
use crate::load::assert_valid_report;
use crate::support::{load_against, refused_addr, run};

/// A password no account has; it must appear in no output.
const WRONG: &str = "Wrong#Passw0rd-5150";

/// `load` as the real binary, the password from the environment.
fn load(url: &str, password: &str, extra: &[&str]) -> crate::support::Run {
    let mut args = vec!["load", "--quiet", "--url", url, "--username", EXAMPLE_USERNAME, "--rps", "200", "-n", "40"];
    args.extend_from_slice(extra);
    run(&args, &[("NEHR_PROBE_PASSWORD", password)])
}

fn read(path: &std::path::Path) -> Value {
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_valid_report(&json);
    json
}

#[test]
fn a_closed_port_reports_connect_error_with_the_refusal_in_text_json_and_html() {
    let (_socket, addr) = refused_addr();
    let url = format!("http://{addr}/nehrapi/login/getToken");
    let dir = tempfile::tempdir().unwrap();
    let (out, html) = (dir.path().join("run.json"), dir.path().join("run.html"));
    let run = load(&url, EXAMPLE_PASSWORD, &["--out", out.to_str().unwrap(), "--html", html.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run:?}");
    // The text: the reason under the outcome, without the outcome's name again.
    let want = format!("  connect_error            40  TCP connect to {addr} failed: Connection refused");
    assert!(run.stdout.contains(&want), "{}", run.stdout);
    assert!(!run.stdout.contains("connect_error: "), "{}", run.stdout);
    // The JSON: the same reason, counted, under its outcome.
    let json = read(&out);
    let reasons = &json["reasons"]["connect_error"];
    assert_eq!(reasons["top"][0]["count"], 40, "{reasons:#}");
    assert_eq!(reasons["other"], 0);
    let reason = reasons["top"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("TCP connect to") && reason.contains("Connection refused"), "{reason}");
    assert_eq!(json["reasons"].as_object().unwrap().len(), 1, "only failing outcomes: {:#}", json["reasons"]);
    // The HTML: the reason beside the outcome, escaped text, and drawn.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Most frequent reasons") && page.contains(reason), "no reason on the page");
    let png = keep("html-reasons-refused.png");
    if let Some(shot) = screenshot(&html, &png, (1100, 2400)) {
        eprintln!("screenshot: {}", png.display());
        shot.assert_drawn();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_reports_unauthorized_and_why_and_never_the_password() {
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let (out, html) = (dir.path().join("run.json"), dir.path().join("run.html"));
    let args = ["--out", out.to_str().unwrap(), "--html", html.to_str().unwrap()].map(str::to_owned);
    let run =
        tokio::task::spawn_blocking(move || load(&url, WRONG, &args.each_ref().map(String::as_str))).await.unwrap();
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.contains("  unauthorized             40  login refused (HTTP 401)"), "{}", run.stdout);
    let json = read(&out);
    assert_eq!(
        json["reasons"]["unauthorized"],
        json!({"top": [{"reason": "login refused (HTTP 401)", "count": 40}], "other": 0})
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("login refused (HTTP 401)"));
    for text in [&run.stdout, &run.stderr, &page, &std::fs::read_to_string(&out).unwrap()] {
        assert!(!text.contains(WRONG), "the password is in an output");
    }
}

/// The mock handing every login the same token: each reused_token's reason names how
/// many logins had it, a number that grows with every call. It stays one reason.
#[test]
fn a_reason_whose_number_changes_every_call_stays_one_reason() {
    let run = run(
        &["load", "--mock", "--mock-fault", "cached-token", "-n", "300", "-c", "4", "--quiet", "--format", "json"],
        &[],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_valid_report(&json);
    let reused = &json["reasons"]["reused_token"];
    assert_eq!(reused["top"].as_array().unwrap().len(), 1, "{reused:#}");
    assert_eq!(reused["top"][0]["reason"], "the same access token was handed to … logins of one account");
    assert_eq!(reused["top"][0]["count"], json["outcomes"]["reused_token"]);
    assert_eq!(reused["other"], 0);
}

/// Two saved reports of a closed port merged: their reasons add; with more distinct
/// reasons than a report keeps, the five most frequent are kept and the rest is other.
#[test]
fn merged_reports_add_their_reasons_and_stay_bounded() {
    let (_socket, addr) = refused_addr();
    let url = format!("http://{addr}/nehrapi/login/getToken");
    let dir = tempfile::tempdir().unwrap();
    let paths = ["0", "1"].map(|i| dir.path().join(format!("seg{i}.json")));
    for (i, path) in paths.iter().enumerate() {
        let segment = format!("{i}/2");
        let run = load(&url, EXAMPLE_PASSWORD, &["--segment", &segment, "--out", path.to_str().unwrap()]);
        assert_eq!(run.code, Some(0), "a segment's exit code waits for the merge: {run:?}");
    }
    let [a, b] = paths.each_ref().map(|p| p.to_str().unwrap().to_owned());
    let both = merged(&[&a, &b]);
    let refused = &both["reasons"]["connect_error"];
    assert_eq!(refused["top"].as_array().unwrap().len(), 1, "{refused:#}");
    assert_eq!(refused["top"][0]["count"], 40, "20 + 20, each segment half of -n 40: {refused:#}");

    // Five reasons in each report, four of them different: nine in all.
    let mut edited = Vec::new();
    for (path, names) in paths.iter().zip([["a", "b", "c", "d", "shared"], ["e", "f", "g", "h", "shared"]]) {
        let mut json = read(path);
        let top: Vec<Value> = names
            .iter()
            .zip([9, 7, 5, 3, 10])
            .map(|(n, c)| json!({"reason": format!("reason {n}"), "count": c}))
            .collect();
        json["reasons"]["connect_error"] = json!({"top": top, "other": 6});
        let edit = dir.path().join(format!("edited-{}", path.file_name().unwrap().to_str().unwrap()));
        std::fs::write(&edit, json.to_string()).unwrap();
        edited.push(edit.to_str().unwrap().to_owned());
    }
    let again = merged(&[&edited[0], &edited[1]]);
    let r = &again["reasons"]["connect_error"];
    let top: Vec<(&str, u64)> = r["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["reason"].as_str().unwrap(), c["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(top, [("reason shared", 20), ("reason a", 9), ("reason e", 9), ("reason b", 7), ("reason f", 7)]);
    assert_eq!(r["other"], 6 + 6 + 5 + 3 + 5 + 3, "{r:#}");
}

/// `report` merging `files` as JSON: a merge of runs without an ok call fails (exit 1).
fn merged(files: &[&str]) -> Value {
    let mut args = vec!["report", "--format", "json"];
    args.extend_from_slice(files);
    let run = run(&args, &[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let json: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    assert_valid_report(&json);
    json
}

/// A `--stages` run keeps its plan: in the JSON, in the text's header and as the HTML
/// chart's planned rate; two segments' shares merge back into the plan. Its HTML phase
/// table lists only the phases its calls had (plain http to an IP address: no resolve,
/// no tls).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stages_run_keeps_its_plan_and_its_page_only_the_phases_it_had() {
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let shown = load_against(&server, dir.path(), &["--stages", "1s:20,1s:40,0s:10,1s:10"]).await;
    let plan = [(1.0, 20.0), (1.0, 40.0), (0.0, 10.0), (1.0, 10.0)]
        .map(|(duration_seconds, target_rps)| PlannedStage { duration_seconds, target_rps });
    assert_eq!(shown.report.stages.as_deref(), Some(&plan[..]));
    let json: Value = serde_json::from_str(&shown.report.json()).unwrap();
    assert_valid_report(&json);
    assert_eq!(json["stages"][1], json!({"duration_seconds": 1.0, "target_rps": 40.0}));
    let text = render(&shown);
    assert!(text.contains("  open model, stages 1s:20, 1s:40, 0s:10, 1s:10 ("), "{text}");
    let page = nehr_probe::report::html::render(&shown);
    assert!(page.contains("planned rate (--stages)"), "no planned rate on the rate chart");
    assert!(page.contains("<td>processing</td>"), "no phase table");
    for phase in ["resolve", "tls"] {
        assert!(!page.contains(&format!("<td>{phase}</td>")), "an empty {phase} row");
    }
    let html = dir.path().join("stages.html");
    std::fs::write(&html, &page).unwrap();
    let png = keep("html-stages.png");
    if let Some(shot) = screenshot(&html, &png, (1100, 2400)) {
        eprintln!("screenshot: {}", png.display());
        shot.assert_drawn();
    }

    // Two segments each keep their share; merged, the plan again.
    let mut halves = Vec::new();
    for segment in ["0/2", "1/2"] {
        let s = load_against(&server, dir.path(), &["--stages", "1s:20,1s:40", "--segment", segment]).await;
        assert_eq!(s.report.stages.as_ref().unwrap()[1].target_rps, 20.0);
        halves.push(s);
    }
    let whole = merge(halves).unwrap();
    let stages: Vec<f64> = whole.report.stages.unwrap().iter().map(|s| s.target_rps).collect();
    assert_eq!(stages, [20.0, 40.0]);
    // An old report without a plan still reads; merged with one that has one, none.
    let mut old = json.clone();
    old.as_object_mut().unwrap().remove("stages");
    old.as_object_mut().unwrap().remove("reasons");
    let old_path = dir.path().join("old.json");
    std::fs::write(&old_path, old.to_string()).unwrap();
    let old = nehr_probe::report::merge::read(&old_path).unwrap();
    assert!(old.report.stages.is_none() && old.report.reasons.is_empty());
    let mixed = merge(vec![old, shown]).unwrap();
    assert!(mixed.report.stages.is_none());
    assert!(mixed.notes.iter().any(|n| n.contains("plans do not line up")), "{:?}", mixed.notes);
}

/// `--then`'s calls say why they failed too: the mock's resource refusing every token.
#[test]
fn refused_next_calls_say_why() {
    let run = run(
        &["load", "--mock", "--mock-fault", "reject-tokens", "--then", "/nehrapi/mock/resource", "-n", "20", "--quiet"],
        &[],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("  why next calls failed (the 5 most frequent reasons of each outcome)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  token_refused            20  the next call refused the token (HTTP 401)"),
        "{}",
        run.stdout
    );
}
