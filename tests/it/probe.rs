//! `Prober::call` against every class of answer the hostile server can give: each must
//! get the outcome docs/outcomes.md's table says, end by `--timeout`, and keep memory small.

use std::time::{Duration, Instant};

use nehr_probe::call::target::TOKEN_PATH;
use nehr_probe::call::validate::TokenFacts;
use nehr_probe::call::{Observation, Outcome};
use serde_json::json;

use crate::answers::{self, SHORT_TIMEOUT};
use crate::support::{
    HostileServer, PASSWORD, Step, USERNAME, call, call_target, edited_answer, json_answer, rss_kib, target,
};

/// Long enough never to matter for answers that come at once.
const PATIENT: Duration = Duration::from_secs(5);

async fn probe(script: Vec<Step>) -> (Observation, HostileServer) {
    let server = HostileServer::start(script);
    let obs = call(&server.url(), PATIENT).await;
    (obs, server)
}

async fn outcome_of(script: Vec<Step>) -> Observation {
    probe(script).await.0
}

/// A 200 whose body breaks one rule: `invalid_body`, naming exactly that field.
async fn assert_breaks(script: Vec<Step>, path: &str, reason: &str) {
    let obs = outcome_of(script).await;
    assert_eq!(obs.outcome, Outcome::InvalidBody, "{obs:?}");
    assert_eq!(obs.status, Some(200));
    let paths: Vec<&str> = obs.violations.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(paths, [path], "{obs:?}");
    assert!(obs.violations[0].message.contains(reason), "{obs:?}");
    assert!(obs.token.is_none());
    assert!(obs.reason().contains(path), "{}", obs.reason());
}

/// An answer with no usable body: `invalid_body` at the root, with this reason.
async fn assert_unreadable(script: Vec<Step>, reason: &str) {
    let obs = outcome_of(script).await;
    assert_eq!(obs.outcome, Outcome::InvalidBody, "{obs:?}");
    assert_eq!(obs.violations.len(), 1, "{obs:?}");
    assert_eq!(obs.violations[0].path, "");
    assert!(obs.violations[0].message.contains(reason), "{obs:?}");
}

fn assert_transport_error(obs: &Observation) {
    assert_eq!(obs.outcome, Outcome::TransportError, "{obs:?}");
    assert!(obs.detail.as_deref().is_some_and(|d| !d.is_empty()), "{obs:?}");
    assert!(obs.service_time() < PATIENT, "took {:?}", obs.service_time());
}

#[tokio::test]
async fn valid_answer_is_ok_and_the_request_is_as_documented() {
    let (obs, server) = probe(answers::valid()).await;
    assert_eq!(obs.outcome, Outcome::Ok, "{obs:?}");
    assert_eq!(obs.status, Some(200));
    assert!(obs.violations.is_empty());
    assert_eq!(
        obs.token,
        Some(TokenFacts {
            token_type: Some("bearer".into()),
            expires_in: Some(86399),
            scope: Some(vec!["".into(), "read".into(), "write".into()]),
        })
    );
    assert_eq!(obs.body_bytes, crate::support::spec_answer().to_string().len() as u64);
    assert_eq!(obs.reason(), "valid bearer token, expires in 86399 s");

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, TOKEN_PATH);
    assert_eq!(r.version, "HTTP/1.1");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("accept"), Some("application/json"));
    assert!(r.header("user-agent").is_some_and(|ua| ua.starts_with("nehr-probe/")), "{r:?}");
    assert_eq!(r.header("host"), Some(server.addr().to_string().as_str()));
    assert_eq!(r.json(), json!({"username": USERNAME, "password": PASSWORD}));
}

#[tokio::test]
async fn valid_answer_with_extra_fields_is_ok() {
    let obs = outcome_of(answers::valid_with_extra_fields()).await;
    assert_eq!(obs.outcome, Outcome::Ok, "{obs:?}");
    assert!(obs.violations.is_empty());
}

#[tokio::test]
async fn chunked_answer_is_ok() {
    let obs = outcome_of(answers::chunked()).await;
    assert_eq!(obs.outcome, Outcome::Ok, "{obs:?}");
    assert_eq!(obs.body_bytes, crate::support::spec_answer().to_string().len() as u64);
}

#[tokio::test]
async fn token_type_in_any_case_is_ok() {
    let obs = outcome_of(edited_answer(|v| v["result"]["token_type"] = json!("Bearer"))).await;
    assert_eq!(obs.outcome, Outcome::Ok, "{obs:?}");
}

#[tokio::test]
async fn expires_in_written_as_a_float_keeps_its_lifetime() {
    // JSON Schema counts 86399.0 as an integer, so the answer is valid; its lifetime
    // was lost (reported as unknown) because only i64 values were read back.
    let body = crate::support::spec_answer().to_string().replace("86399", "86399.0");
    let obs = outcome_of(json_answer("200 OK", &body)).await;
    assert_eq!(obs.outcome, Outcome::Ok, "{obs:?}");
    assert_eq!(obs.token.and_then(|t| t.expires_in), Some(86399));
    let huge = crate::support::spec_answer().to_string().replace("86399", "1e30");
    let obs = outcome_of(json_answer("200 OK", &huge)).await;
    assert_eq!(obs.token.and_then(|t| t.expires_in), Some(i64::MAX));
}

#[tokio::test]
async fn unauthorized_with_the_spec_body_has_no_notes() {
    let obs = outcome_of(answers::unauthorized_spec()).await;
    assert_eq!(obs.outcome, Outcome::Unauthorized, "{obs:?}");
    assert_eq!(obs.status, Some(401));
    assert!(obs.violations.is_empty(), "{obs:?}");
    assert!(obs.token.is_none());
}

#[tokio::test]
async fn unauthorized_with_an_html_body_is_still_unauthorized_with_a_note() {
    let obs = outcome_of(answers::unauthorized_html()).await;
    assert_eq!(obs.outcome, Outcome::Unauthorized, "{obs:?}");
    assert_eq!(obs.violations.len(), 1, "{obs:?}");
    assert_eq!(obs.violations[0].path, "");
}

#[tokio::test]
async fn server_error_with_the_spec_body() {
    let obs = outcome_of(answers::server_error_spec()).await;
    assert_eq!(obs.outcome, Outcome::ServerError, "{obs:?}");
    assert_eq!(obs.status, Some(500));
    assert!(obs.violations.is_empty(), "{obs:?}");
}

#[tokio::test]
async fn server_error_with_a_malformed_body_is_noted_not_reclassified() {
    let obs = outcome_of(json_answer("500 Internal Server Error", r#"{"code":"500"}"#)).await;
    assert_eq!(obs.outcome, Outcome::ServerError, "{obs:?}");
    let paths: Vec<&str> = obs.violations.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(paths, ["/code", "/message"]);
}

#[tokio::test]
async fn unavailable_html_page_is_a_server_error() {
    let obs = outcome_of(answers::unavailable_html()).await;
    assert_eq!(obs.outcome, Outcome::ServerError, "{obs:?}");
    assert_eq!(obs.status, Some(503));
    assert!(obs.reason().contains("HTTP 503"), "{}", obs.reason());
}

#[tokio::test]
async fn too_many_requests_is_rate_limited() {
    let obs = outcome_of(answers::too_many_requests()).await;
    assert_eq!(obs.outcome, Outcome::RateLimited, "{obs:?}");
    assert_eq!(obs.status, Some(429));
}

#[tokio::test]
async fn not_found_is_an_http_error() {
    let obs = outcome_of(answers::not_found()).await;
    assert_eq!(obs.outcome, Outcome::HttpError, "{obs:?}");
    assert_eq!(obs.status, Some(404));
}

#[tokio::test]
async fn redirect_is_not_followed() {
    let elsewhere = HostileServer::start(answers::valid());
    let (obs, server) = probe(answers::redirect(&elsewhere.url())).await;
    assert_eq!(obs.outcome, Outcome::HttpError, "{obs:?}");
    assert_eq!(obs.status, Some(302));
    assert_eq!(server.requests().len(), 1);
    assert!(elsewhere.requests().is_empty(), "the redirect was followed, with the password");
}

#[tokio::test]
async fn missing_field_is_invalid_body() {
    assert_breaks(
        edited_answer(|v| drop(v["result"].as_object_mut().unwrap().remove("access_token"))),
        "/result/access_token",
        "missing",
    )
    .await;
    assert_breaks(edited_answer(|v| drop(v.as_object_mut().unwrap().remove("version"))), "/version", "missing").await;
}

#[tokio::test]
async fn wrong_type_is_invalid_body() {
    assert_breaks(edited_answer(|v| v["result"]["expires_in"] = json!("86399")), "/result/expires_in", "integer").await;
    assert_breaks(edited_answer(|v| v["result"]["scope"] = json!("read write")), "/result/scope", "array").await;
}

#[tokio::test]
async fn code_not_zero_is_invalid_body() {
    assert_breaks(edited_answer(|v| v["code"] = json!(1)), "/code", "must equal 0").await;
}

#[tokio::test]
async fn result_null_is_invalid_body() {
    assert_breaks(edited_answer(|v| v["result"] = json!(null)), "/result", "object").await;
}

#[tokio::test]
async fn expires_in_not_positive_is_invalid_body() {
    assert_breaks(edited_answer(|v| v["result"]["expires_in"] = json!(0)), "/result/expires_in", "> 0").await;
    assert_breaks(edited_answer(|v| v["result"]["expires_in"] = json!(-60)), "/result/expires_in", "> 0").await;
}

#[tokio::test]
async fn wrong_token_type_is_invalid_body() {
    assert_breaks(edited_answer(|v| v["result"]["token_type"] = json!("mac")), "/result/token_type", "bearer").await;
}

#[tokio::test]
async fn empty_token_is_invalid_body() {
    assert_breaks(edited_answer(|v| v["result"]["access_token"] = json!("")), "/result/access_token", "empty").await;
    assert_breaks(edited_answer(|v| v["result"]["refresh_token"] = json!("")), "/result/refresh_token", "empty").await;
}

#[tokio::test]
async fn not_json_is_invalid_body() {
    assert_unreadable(answers::not_json(), "not JSON").await;
}

#[tokio::test]
async fn empty_body_is_invalid_body() {
    assert_unreadable(answers::empty_body(), "empty body").await;
}

#[tokio::test]
async fn json_array_is_invalid_body() {
    assert_unreadable(answers::json_array(), "an array").await;
}

#[tokio::test]
async fn nesting_100k_deep_is_invalid_body_without_overflowing_the_stack() {
    assert_unreadable(answers::deep_nesting(), "nested too deep").await;
}

/// Runs the 64 MiB answer and checks the client stopped reading early: the server
/// could not write more than the cap plus what socket buffers hold, and this process
/// did not grow by the size of the body.
async fn assert_huge_body_not_buffered(script: Vec<Step>) -> Observation {
    let server = HostileServer::start(script);
    let rss_before = rss_kib();
    let started = Instant::now();
    let obs = call(&server.url(), Duration::from_secs(10)).await;
    let took = started.elapsed();
    let rss_after = rss_kib();
    assert_eq!(obs.outcome, Outcome::InvalidBody, "{obs:?}");
    assert!(obs.violations[0].message.contains("--max-body"), "{obs:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // Once the client is gone the server's writes fail and its script ends.
    assert!(
        server.wait_finished(1, Duration::from_secs(5)).await,
        "the server could write on: the client kept reading"
    );
    let sent = server.streamed();
    assert!(sent < answers::HUGE / 4, "{sent} bytes were sent before the client hung up");
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        let grew = after.saturating_sub(before);
        assert!(grew < 32 * 1024, "RSS grew by {grew} KiB");
    }
    obs
}

#[tokio::test]
async fn body_of_64_mib_streamed_is_abandoned_at_max_body() {
    let obs = assert_huge_body_not_buffered(answers::huge_chunked()).await;
    assert!(obs.body_bytes > 1024 * 1024, "read up to the cap: {obs:?}");
}

#[tokio::test]
async fn body_of_64_mib_declared_is_refused_without_reading() {
    let obs = assert_huge_body_not_buffered(answers::huge_declared()).await;
    assert_eq!(obs.body_bytes, 0, "a declared length over the cap is refused unread: {obs:?}");
}

#[tokio::test]
async fn max_body_is_the_limit_not_a_default() {
    let server = HostileServer::start(answers::valid());
    let mut small = target(&server.url(), PATIENT);
    small.max_body = 64;
    let obs = call_target(&small).await;
    assert_eq!(obs.outcome, Outcome::InvalidBody, "{obs:?}");
    assert!(obs.reason().contains("--max-body"), "{}", obs.reason());
}

#[tokio::test]
async fn truncated_body_is_a_transport_error() {
    assert_transport_error(&outcome_of(answers::truncated()).await);
}

#[tokio::test]
async fn connection_reset_is_a_transport_error() {
    assert_transport_error(&outcome_of(answers::reset()).await);
}

#[tokio::test]
async fn reset_after_a_complete_head_is_a_transport_error() {
    let body = crate::support::spec_answer().to_string();
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}", body.len(), &body[..10]);
    let obs = outcome_of(vec![Step::Write(head.into()), Step::Sleep(Duration::from_millis(20)), Step::Reset]).await;
    assert_transport_error(&obs);
    assert_eq!(obs.status, Some(200));
}

#[tokio::test]
async fn close_without_an_answer_is_a_transport_error() {
    assert_transport_error(&outcome_of(vec![]).await);
}

#[tokio::test]
async fn non_http_garbage_is_a_transport_error() {
    assert_transport_error(&outcome_of(answers::garbage()).await);
}

#[tokio::test]
async fn thousands_of_headers_is_a_transport_error() {
    assert_transport_error(&outcome_of(answers::many_headers()).await);
}

#[tokio::test]
async fn one_huge_header_is_a_transport_error() {
    let head = format!("HTTP/1.1 200 OK\r\nX-Huge: {}\r\nContent-Length: 0\r\n\r\n", "a".repeat(2 << 20));
    assert_transport_error(&outcome_of(vec![Step::Write(head.into())]).await);
}

/// Probes with a 1 s timeout and checks the call timed out, not before the timeout, and
/// not seconds after: these answers would go on for minutes or for ever. How closely it
/// ends at the timeout is measured in tests/timing (`deadlines.rs`), where no other test
/// runs beside it; here a crowded machine may be late by far more.
async fn assert_times_out(script: Vec<Step>) -> Observation {
    let server = HostileServer::start(script);
    let started = Instant::now();
    let obs = call(&server.url(), SHORT_TIMEOUT).await;
    let took = started.elapsed();
    assert_eq!(obs.outcome, Outcome::Timeout, "{obs:?}");
    assert!(took >= SHORT_TIMEOUT, "ended early, after {took:?}");
    assert!(took < SHORT_TIMEOUT + Duration::from_secs(4), "ended late, after {took:?}");
    assert_eq!(server.requests().len(), 1, "the request was sent once");
    obs
}

#[tokio::test]
async fn server_that_never_answers_times_out() {
    let obs = assert_times_out(answers::silent()).await;
    assert_eq!(obs.status, None);
    assert!(obs.reason().contains("waiting for the answer"), "{}", obs.reason());
}

#[tokio::test]
async fn head_trickled_a_byte_a_second_times_out() {
    let obs = assert_times_out(answers::trickle_head()).await;
    assert_eq!(obs.status, None);
}

#[tokio::test]
async fn body_trickled_a_byte_a_second_times_out_with_the_status_known() {
    let obs = assert_times_out(answers::trickle_body()).await;
    assert_eq!(obs.status, Some(200));
    assert!(obs.reason().contains("reading the body"), "{}", obs.reason());
}

#[tokio::test]
async fn port_nobody_listens_on_is_a_connect_error() {
    let (_refusing, addr) = crate::support::refused_addr();
    let started = Instant::now();
    let obs = call(&format!("http://{addr}{TOKEN_PATH}"), PATIENT).await;
    assert_eq!(obs.outcome, Outcome::ConnectError, "{obs:?}");
    assert_eq!(obs.status, None);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(obs.reason().starts_with("connect_error: "), "{}", obs.reason());
}

#[tokio::test]
async fn latency_is_measured_from_the_due_time() {
    let server = HostileServer::start(answers::valid());
    let prober = nehr_probe::call::Prober::new(&target(&server.url(), PATIENT)).unwrap();
    let due = Instant::now() - Duration::from_millis(200);
    let obs = prober.call(7, due).await;
    assert_eq!(obs.outcome, Outcome::Ok);
    assert_eq!(obs.seq, 7);
    assert!(obs.latency() >= Duration::from_millis(200));
    assert!(obs.service_time() < obs.latency());
}
