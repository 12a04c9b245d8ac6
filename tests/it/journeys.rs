//! Journeys end to end: `--then` against servers that really keep a token store (the
//! embedded mock, and a token store of the test's own that refuses unknown tokens and
//! can go down), and tokens handed out twice. Each verdict is checked both ways: the
//! healthy server passes, the broken one fails.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;

use crate::load::assert_valid_report;
use crate::support::{PASSWORD, Run, USERNAME, run};

const RESOURCE: &str = "/nehrapi/mock/resource";

fn load(args: &[&str]) -> Run {
    let mut all = vec!["load", "--format", "json", "--quiet"];
    all.extend_from_slice(args);
    run(&all, &[("NEHR_PROBE_PASSWORD", PASSWORD)])
}

fn report(run: &Run) -> Value {
    let json: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    assert_valid_report(&json);
    json
}

#[test]
fn every_journey_on_the_mock_is_ok_and_the_report_says_so() {
    let run =
        load(&["--mock", "--rps", "100", "-n", "100", "--then", RESOURCE, "--threshold", "journey_error_rate<1%"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let json = report(&run);
    let then = &json["then"];
    assert_eq!(then["calls"], 100, "{then:#}");
    assert_eq!(then["journeys_ok"], 100);
    assert_eq!(then["outcomes"]["accepted"], 100);
    assert_eq!(then["journey_error_rate"], 0.0);
    assert_eq!(then["method"], "GET");
    assert!(then["url"].as_str().unwrap().ends_with(RESOURCE), "{then:#}");
    assert!(then["latency_seconds"]["p50"].as_f64().unwrap() > 0.0);
    assert_eq!(json["outcomes"]["ok"], 100);
    // The text report shows the journey block.
    let text = run_text(&["--mock", "-n", "20", "-c", "2", "--then", RESOURCE]);
    assert!(text.contains("\nthen GET http://127.0.0.1:"), "{text}");
    assert!(text.contains("20 of 20 journeys ok (100.00 %)"), "{text}");
}

fn run_text(args: &[&str]) -> String {
    let mut all = vec!["load", "--quiet"];
    all.extend_from_slice(args);
    let run = run(&all, &[("NEHR_PROBE_PASSWORD", PASSWORD)]);
    assert!(run.code.is_some_and(|c| c <= 1), "{run:?}");
    run.stdout
}

#[test]
fn a_token_store_that_refuses_every_token_fails_every_journey() {
    let run = load(&[
        "--mock",
        "--mock-fault",
        "reject-tokens",
        "-n",
        "40",
        "-c",
        "4",
        "--then",
        RESOURCE,
        "--threshold",
        "journey_error_rate<1%",
    ]);
    assert_eq!(run.code, Some(1), "the journey threshold fails: {run:?}");
    let json = report(&run);
    assert_eq!(json["outcomes"]["ok"], 40, "every login itself is ok");
    assert_eq!(json["then"]["outcomes"]["token_refused"], 40);
    assert_eq!(json["then"]["journeys_ok"], 0);
    assert_eq!(json["then"]["journey_error_rate"], 1.0);
    assert_eq!(json["thresholds"][0]["passed"], false);
    // A share: about that share refused.
    let json =
        report(&load(&["--mock", "--mock-fault", "reject-tokens=0.5", "-n", "200", "-c", "4", "--then", RESOURCE]));
    let refused = json["then"]["outcomes"]["token_refused"].as_u64().unwrap();
    assert!((60..=140).contains(&refused), "{refused} of 200 refused at 50 %");
}

#[test]
fn a_cached_token_is_counted_as_reused_and_fails_the_error_rate() {
    let run = load(&["--mock", "--mock-fault", "cached-token", "-n", "30", "-c", "3", "--threshold", "error_rate<1%"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let json = report(&run);
    assert_eq!(json["outcomes"]["ok"], 1, "only the first login had the token to itself");
    assert_eq!(json["outcomes"]["reused_token"], 29);
    // The same account handed its live token again is fine under same-account.
    let json = report(&load(&["--mock", "--mock-fault", "cached-token", "-n", "30", "--token-reuse", "same-account"]));
    assert_eq!(json["outcomes"]["ok"], 30);
    // A healthy mock never hands a token out twice.
    let json = report(&load(&["--mock", "-n", "500", "-c", "4"]));
    assert_eq!((json["outcomes"]["ok"].as_u64(), json["outcomes"]["reused_token"].as_u64()), (Some(500), Some(0)));
}

#[test]
fn a_cached_token_handed_to_two_accounts_is_reused_even_under_same_account() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = dir.path().join("accounts");
    std::fs::write(&accounts, "MOH-1:one\nMOH-2:two\n").unwrap();
    let run = load(&[
        "--mock",
        "--credentials",
        accounts.to_str().unwrap(),
        "--mock-fault",
        "cached-token",
        "-n",
        "10",
        "--token-reuse",
        "same-account",
    ]);
    let json = report(&run);
    // MOH-1 first, then every login of MOH-2 gets MOH-1's token; MOH-1's again are its own.
    assert_eq!(json["outcomes"]["reused_token"], 5, "{json:#}");
    assert_eq!(json["outcomes"]["ok"], 5);
}

#[test]
fn check_is_critical_when_the_next_call_refuses_the_token() {
    let env = [("NEHR_PROBE_PASSWORD", PASSWORD)];
    let ok = run(&["check", "--mock", "--then", RESOURCE], &env);
    assert_eq!(ok.code, Some(0), "{ok:?}");
    assert!(ok.stdout.starts_with("NEHR-TOKEN OK - valid bearer token"), "{ok:?}");
    assert!(ok.stdout.contains("; next call accepted in "), "{ok:?}");
    let bad = run(&["check", "--mock", "--mock-fault", "reject-tokens", "--then", RESOURCE, "--format", "json"], &env);
    assert_eq!(bad.code, Some(2), "{bad:?}");
    let json: Value = serde_json::from_str(&bad.stdout).unwrap();
    assert_eq!(json["status"], "CRITICAL");
    assert_eq!(json["outcome"], "ok");
    assert_eq!(json["then"]["outcome"], "token_refused");
    assert_eq!(json["then"]["http_status"], 401);
    assert!(json["message"].as_str().unwrap().starts_with("the next call refused the token (HTTP 401)"), "{json}");
}

/// A login endpoint with a token store of its own: tokens it issued work on
/// `/resource` until the store goes down; `cached` hands every login one token.
struct TokenStore {
    issued: Mutex<HashSet<String>>,
    up: AtomicBool,
    cached: AtomicBool,
    next: AtomicU64,
    resource_calls: AtomicU64,
}

async fn store_login(State(s): State<Arc<TokenStore>>) -> (StatusCode, String) {
    let n = if s.cached.load(Ordering::Relaxed) { 0 } else { s.next.fetch_add(1, Ordering::Relaxed) };
    let token = format!("store-token-{n:06}");
    s.issued.lock().unwrap().insert(token.clone());
    let mut answer = crate::support::spec_answer();
    answer["result"]["access_token"] = token.into();
    (StatusCode::OK, answer.to_string())
}

async fn store_resource(State(s): State<Arc<TokenStore>>, headers: HeaderMap) -> StatusCode {
    s.resource_calls.fetch_add(1, Ordering::Relaxed);
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(t) if s.up.load(Ordering::Relaxed) && s.issued.lock().unwrap().contains(t) => StatusCode::OK,
        _ => StatusCode::UNAUTHORIZED,
    }
}

async fn token_store() -> (SocketAddr, Arc<TokenStore>) {
    let store = Arc::new(TokenStore {
        issued: Mutex::default(),
        up: AtomicBool::new(true),
        cached: AtomicBool::new(false),
        next: AtomicU64::new(0),
        resource_calls: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/nehrapi/login/getToken", post(store_login))
        .route("/resource", get(store_resource))
        .with_state(Arc::clone(&store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_store_of_our_own_up_down_and_cached() {
    let (addr, store) = token_store().await;
    let url = format!("http://{addr}/nehrapi/login/getToken");
    let then = format!("http://{addr}/resource");
    let go = |extra: &'static [&'static str]| {
        let (url, then) = (url.clone(), then.clone());
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["--url", url.as_str(), "--username", USERNAME, "--then", then.as_str(), "-n", "20"];
            args.extend_from_slice(extra);
            load(&args)
        })
    };
    let up = go(&[]).await.unwrap();
    let json = report(&up);
    assert_eq!(json["then"]["journeys_ok"], 20, "{json:#}");
    assert_eq!(store.resource_calls.load(Ordering::Relaxed), 20);
    // The token never shows in any output.
    for n in 0..20 {
        let token = format!("store-token-{n:06}");
        assert!(!up.stdout.contains(&token) && !up.stderr.contains(&token), "token {token} shown");
    }
    store.up.store(false, Ordering::Relaxed);
    let json = report(&go(&[]).await.unwrap());
    assert_eq!(json["then"]["outcomes"]["token_refused"], 20, "store down: every journey refused: {json:#}");
    assert_eq!(json["outcomes"]["ok"], 20, "while every login reads ok");
    store.up.store(true, Ordering::Relaxed);
    store.cached.store(true, Ordering::Relaxed);
    let json = report(&go(&[]).await.unwrap());
    assert_eq!(json["outcomes"]["reused_token"], 19, "{json:#}");
    assert_eq!(json["then"]["calls"], 1, "a reused token's login is not ok: no next call");
}

#[test]
fn the_html_report_shows_the_journeys_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("journeys.html");
    let run = load(&[
        "--mock",
        "--mock-fault",
        "reject-tokens=0.3",
        "-n",
        "200",
        "-c",
        "4",
        "--then",
        RESOURCE,
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Journeys: GET http://127.0.0.1:"), "no journey section");
    assert!(html.contains("token_refused") && html.contains("Next call latency"), "{html}");
    let png = crate::browser::keep("journeys.png");
    if let Some(shot) = crate::browser::screenshot(&page, &png, (1200, 3400)) {
        shot.assert_drawn();
    }
}
