//! The catalog of answer classes the hostile server can give, one function per class,
//! and [`catalog`] listing them all with the outcome each must get, so the per-class
//! tests and the sweeps over every class (secrets, exit codes) share one definition.

use std::time::Duration;

use serde_json::json;

use crate::support::{PASSWORD, Step, edited_answer, json_answer, response, spec_answer};

/// The timeout every timing class is probed with.
pub const SHORT_TIMEOUT: Duration = Duration::from_secs(1);

/// The spec's 401 body.
pub const SPEC_401: &str = r#"{"code":401,"message":"Unauthorized: Access is denied due to invalid credentials."}"#;
/// The spec's 500 body.
pub const SPEC_500: &str =
    r#"{"code":500,"message":"Internal Server Error: Unable to process the request due to server error."}"#;

pub const HTML: &str = "<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Oops</h1></body></html>";

fn html(status: &str) -> Vec<Step> {
    vec![Step::Write(response(status, &[("Content-Type", "text/html; charset=utf-8")], HTML.as_bytes()))]
}

fn raw(bytes: impl Into<Vec<u8>>) -> Vec<Step> {
    vec![Step::Write(bytes.into())]
}

pub fn valid() -> Vec<Step> {
    json_answer("200 OK", &spec_answer().to_string())
}

pub fn valid_with_extra_fields() -> Vec<Step> {
    edited_answer(|v| {
        v["traceId"] = json!("abc-123");
        v["result"]["sessionPolicy"] = json!({"idle": 900, "flags": [1, 2]});
        v["result"]["roles"] = json!(["clinician"]);
    })
}

pub fn chunked() -> Vec<Step> {
    let body = spec_answer().to_string();
    let (a, b) = body.split_at(body.len() / 3);
    let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in [a, b] {
        out.extend_from_slice(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes());
    }
    out.extend_from_slice(b"0\r\n\r\n");
    // Sent in two writes with a pause, so the client really reads it piece by piece.
    let split = out.len() / 2;
    vec![Step::Write(out[..split].to_vec()), Step::Sleep(Duration::from_millis(20)), Step::Write(out[split..].to_vec())]
}

pub fn unauthorized_spec() -> Vec<Step> {
    json_answer("401 Unauthorized", SPEC_401)
}

pub fn unauthorized_html() -> Vec<Step> {
    html("401 Unauthorized")
}

pub fn server_error_spec() -> Vec<Step> {
    json_answer("500 Internal Server Error", SPEC_500)
}

pub fn unavailable_html() -> Vec<Step> {
    html("503 Service Unavailable")
}

pub fn too_many_requests() -> Vec<Step> {
    vec![Step::Write(response(
        "429 Too Many Requests",
        &[("Retry-After", "1"), ("Content-Type", "application/json")],
        br#"{"code":429,"message":"slow down"}"#,
    ))]
}

pub fn not_found() -> Vec<Step> {
    html("404 Not Found")
}

/// A redirect to `location`, with a valid-looking body that must not be used either.
pub fn redirect(location: &str) -> Vec<Step> {
    vec![Step::Write(response(
        "302 Found",
        &[("Location", location), ("Content-Type", "application/json")],
        spec_answer().to_string().as_bytes(),
    ))]
}

pub fn not_json() -> Vec<Step> {
    vec![Step::Write(response("200 OK", &[("Content-Type", "application/json")], HTML.as_bytes()))]
}

pub fn empty_body() -> Vec<Step> {
    json_answer("200 OK", "")
}

pub fn json_array() -> Vec<Step> {
    json_answer("200 OK", &format!("[{}]", spec_answer()))
}

pub fn deep_nesting() -> Vec<Step> {
    json_answer("200 OK", &format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)))
}

/// 64 MiB of chunked body: no Content-Length, so the client must count as it reads.
pub const HUGE: u64 = 64 << 20;

pub fn huge_chunked() -> Vec<Step> {
    vec![
        Step::Write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
        ),
        Step::Stream { total: HUGE, chunked: true },
    ]
}

/// 64 MiB announced by Content-Length.
pub fn huge_declared() -> Vec<Step> {
    vec![
        Step::Write(
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE}\r\n\r\n").into(),
        ),
        Step::Stream { total: HUGE, chunked: false },
    ]
}

/// Content-Length promises more than is sent, then the server closes.
pub fn truncated() -> Vec<Step> {
    let body = spec_answer().to_string();
    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
    vec![Step::Write(head.into()), Step::Write(body.as_bytes()[..body.len() / 2].to_vec())]
}

/// Half a head, then a RST.
pub fn reset() -> Vec<Step> {
    vec![Step::Write(b"HTTP/1.1 200 OK\r\nContent-Ty".to_vec()), Step::Sleep(Duration::from_millis(20)), Step::Reset]
}

pub fn garbage() -> Vec<Step> {
    raw(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02\xff\xfe not http at all\r\n\r\n".to_vec())
}

pub fn many_headers() -> Vec<Step> {
    let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n");
    for i in 0..5000 {
        head.push_str(&format!("X-Filler-{i}: {i}\r\n"));
    }
    let body = spec_answer().to_string();
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
    raw(head)
}

/// Headers complete, then nothing: the server holds the connection.
pub fn silent() -> Vec<Step> {
    vec![Step::Hold]
}

/// The head one byte a second (slowloris in reverse).
pub fn trickle_head() -> Vec<Step> {
    vec![Step::Trickle(valid_bytes(), Duration::from_secs(1)), Step::Hold]
}

/// A complete head, then the body one byte a second.
pub fn trickle_body() -> Vec<Step> {
    let body = spec_answer().to_string();
    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
    vec![Step::Write(head.into()), Step::Trickle(body.into(), Duration::from_secs(1)), Step::Hold]
}

fn valid_bytes() -> Vec<u8> {
    match valid().remove(0) {
        Step::Write(b) => b,
        _ => unreachable!("valid() is one write"),
    }
}

/// Answers that carry the password back, as a broken or malicious server might: none of
/// it may reach an output.
pub fn echoes() -> Vec<(&'static str, Vec<Step>, &'static str)> {
    let in_json = format!(r#"{{"code":401,"message":"bad password {PASSWORD}"}}"#);
    vec![
        ("echo in 401 body", json_answer("401 Unauthorized", &in_json), "unauthorized"),
        (
            "echo in 500 body",
            json_answer("500 Internal Server Error", &format!(r#"{{"code":"{PASSWORD}"}}"#)),
            "server_error",
        ),
        ("echo as token_type", edited_answer(|v| v["result"]["token_type"] = json!(PASSWORD)), "invalid_body"),
        ("echo as expires_in", edited_answer(|v| v["result"]["expires_in"] = json!(PASSWORD)), "invalid_body"),
        ("echo as code", edited_answer(|v| v["code"] = json!(PASSWORD)), "invalid_body"),
        // Valid, and `scope` is printed by check: the probe must scrub it.
        ("echo in scope", edited_answer(|v| v["result"]["scope"] = json!(["read", format!("x{PASSWORD}x")])), "ok"),
        ("echo in non-JSON", json_answer("200 OK", &format!("password={PASSWORD}")), "invalid_body"),
        ("echo in header", vec![Step::Write(response("404 Not Found", &[("X-Echo", PASSWORD)], b""))], "http_error"),
        ("echo in Location", redirect(&format!("http://127.0.0.1:9/?p={PASSWORD}")), "http_error"),
        ("echo in garbage", raw(format!("{PASSWORD}\r\n\r\n")), "transport_error"),
        ("echo in status line", raw(format!("HTTP/1.1 200 {PASSWORD}\r\nContent-Length: 0\r\n\r\n")), "invalid_body"),
    ]
}

/// Every class with the outcome it must get, probed with [`SHORT_TIMEOUT`].
pub fn catalog() -> Vec<(&'static str, Vec<Step>, &'static str)> {
    let mut all = vec![
        ("valid", valid(), "ok"),
        ("valid with extra fields", valid_with_extra_fields(), "ok"),
        ("chunked", chunked(), "ok"),
        ("401 spec body", unauthorized_spec(), "unauthorized"),
        ("401 HTML", unauthorized_html(), "unauthorized"),
        ("500 spec body", server_error_spec(), "server_error"),
        ("503 HTML", unavailable_html(), "server_error"),
        ("429", too_many_requests(), "rate_limited"),
        ("404", not_found(), "http_error"),
        ("302", redirect("http://127.0.0.1:9/elsewhere"), "http_error"),
        (
            "missing field",
            edited_answer(|v| drop(v["result"].as_object_mut().unwrap().remove("access_token"))),
            "invalid_body",
        ),
        ("wrong type", edited_answer(|v| v["result"]["expires_in"] = json!("86399")), "invalid_body"),
        ("code not 0", edited_answer(|v| v["code"] = json!(1)), "invalid_body"),
        ("result null", edited_answer(|v| v["result"] = json!(null)), "invalid_body"),
        ("expires_in 0", edited_answer(|v| v["result"]["expires_in"] = json!(0)), "invalid_body"),
        ("wrong token_type", edited_answer(|v| v["result"]["token_type"] = json!("mac")), "invalid_body"),
        ("empty token", edited_answer(|v| v["result"]["access_token"] = json!("")), "invalid_body"),
        ("not JSON", not_json(), "invalid_body"),
        ("empty body", empty_body(), "invalid_body"),
        ("JSON array", json_array(), "invalid_body"),
        ("nesting 100k deep", deep_nesting(), "invalid_body"),
        ("64 MiB chunked", huge_chunked(), "invalid_body"),
        ("64 MiB declared", huge_declared(), "invalid_body"),
        ("truncated", truncated(), "transport_error"),
        ("reset", reset(), "transport_error"),
        ("garbage", garbage(), "transport_error"),
        ("thousands of headers", many_headers(), "transport_error"),
        ("silent", silent(), "timeout"),
        ("trickled head", trickle_head(), "timeout"),
        ("trickled body", trickle_body(), "timeout"),
    ];
    all.extend(echoes());
    all
}
