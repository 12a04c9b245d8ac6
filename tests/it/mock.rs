//! The embedded mock, driven in-process: what it answers must be exactly what the
//! prober and validator expect of the real API, and its faults must come out as the
//! outcomes they imitate.

use std::time::{Duration, Instant};

use nehr_probe::call::secret::Secret;
use nehr_probe::call::target::{Credential, EXAMPLE_PASSWORD, EXAMPLE_USERNAME, Target, example_credential};
use nehr_probe::call::validate::Validator;
use nehr_probe::call::{Observation, Outcome, Prober};
use nehr_probe::mock::{MockArgs, MockServer, SERVER_ERROR_BODY, UNAUTHORIZED_BODY};
use serde_json::json;

fn target(server: &MockServer, credential: Credential) -> Target {
    Target { credentials: vec![credential], ..crate::support::target(&server.url(), Duration::from_secs(5)) }
}

async fn probe(args: &MockArgs, credential: Credential) -> Observation {
    let server = MockServer::start(args).await.unwrap();
    let prober = Prober::new(&target(&server, credential)).unwrap();
    prober.call(0, Instant::now()).await
}

async fn post(server: &MockServer, body: serde_json::Value) -> (u16, Vec<u8>) {
    let resp = reqwest::Client::new().post(server.url()).body(body.to_string()).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn mock_answers_are_valid_for_the_validator() {
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let prober = Prober::new(&target(&server, example_credential())).unwrap();
    for seq in 0..5 {
        let obs = prober.call(seq, Instant::now()).await;
        assert_eq!(obs.outcome, Outcome::Ok, "{obs:?}");
        assert!(obs.violations.is_empty());
        let token = obs.token.expect("token facts");
        assert_eq!(token.token_type.as_deref(), Some("bearer"));
        assert_eq!(token.expires_in, Some(86399));
        assert_eq!(token.scope, Some(vec!["".into(), "read".into(), "write".into()]));
    }
    assert_eq!(server.stats().ok, 5);
}

#[tokio::test]
async fn mock_body_has_the_documented_shape_and_fresh_tokens() {
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let login = json!({"username": EXAMPLE_USERNAME, "password": EXAMPLE_PASSWORD});
    let (status, first) = post(&server, login.clone()).await;
    assert_eq!(status, 200);
    let (_, second) = post(&server, login).await;
    let validator = Validator::builtin();
    assert!(validator.check_token(&first).is_ok());
    assert!(validator.check_token(&second).is_ok());
    let (a, b): (serde_json::Value, serde_json::Value) =
        (serde_json::from_slice(&first).unwrap(), serde_json::from_slice(&second).unwrap());
    for key in ["version", "code", "message", "result"] {
        assert!(a.get(key).is_some(), "{key} missing: {a}");
    }
    for key in [
        "access_token",
        "token_type",
        "refresh_token",
        "expires_in",
        "scope",
        "firstLogin",
        "loggedInUser",
        "userDetails",
        "persCode",
        "userIntitutes",
        "civilId",
        "userMobile",
    ] {
        assert!(a["result"].get(key).is_some(), "{key} missing: {a}");
    }
    assert_eq!(a["result"]["persCode"], "-90008");
    assert_ne!(a["result"]["access_token"], b["result"]["access_token"], "tokens must be fresh");
    assert_ne!(a["result"]["access_token"], a["result"]["refresh_token"]);
}

#[tokio::test]
async fn wrong_password_is_unauthorized_with_no_notes() {
    let wrong = Credential { username: EXAMPLE_USERNAME.into(), password: Secret::new("not-the-password") };
    let obs = probe(&MockArgs::default(), wrong).await;
    assert_eq!(obs.outcome, Outcome::Unauthorized, "{obs:?}");
    assert_eq!(obs.status, Some(401));
    assert!(obs.violations.is_empty(), "the mock's 401 body breaks the error schema: {obs:?}");
}

#[tokio::test]
async fn unknown_user_is_unauthorized_with_the_spec_body() {
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let (status, body) = post(&server, json!({"username": "MOH-0", "password": EXAMPLE_PASSWORD})).await;
    assert_eq!(status, 401);
    assert_eq!(body, UNAUTHORIZED_BODY.as_bytes());
    assert!(Validator::builtin().check_error(&body).is_empty());
}

#[tokio::test]
async fn get_is_method_not_allowed() {
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let resp = reqwest::Client::new().get(server.url()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
}

#[tokio::test]
async fn error_rate_one_is_a_server_error_with_the_spec_body() {
    let args = MockArgs { error_rate: 1.0, ..MockArgs::default() };
    let obs = probe(&args, example_credential()).await;
    assert_eq!(obs.outcome, Outcome::ServerError, "{obs:?}");
    assert_eq!(obs.status, Some(500));
    assert!(obs.violations.is_empty(), "{obs:?}");
    assert!(Validator::builtin().check_error(SERVER_ERROR_BODY.as_bytes()).is_empty());
}

#[tokio::test]
async fn invalid_body_rate_one_breaks_a_documented_rule() {
    let server = MockServer::start(&MockArgs { invalid_body_rate: 1.0, ..MockArgs::default() }).await.unwrap();
    let prober = Prober::new(&target(&server, example_credential())).unwrap();
    for seq in 0..12 {
        let obs = prober.call(seq, Instant::now()).await;
        assert_eq!(obs.outcome, Outcome::InvalidBody, "{obs:?}");
        let path = obs.violations[0].path.as_str();
        assert!(
            ["/result/access_token", "/result/expires_in", "/result/token_type"].contains(&path),
            "unexpected path {path}"
        );
    }
}

#[tokio::test]
async fn latency_is_injected() {
    let latency = nehr_probe::mock::Latency::Fixed(Duration::from_millis(150));
    let obs = probe(&MockArgs { latency: Some(latency), ..MockArgs::default() }, example_credential()).await;
    assert_eq!(obs.outcome, Outcome::Ok);
    assert!(obs.latency() >= Duration::from_millis(150), "{:?}", obs.latency());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_faults_over_http_and_refuses_other_keys() {
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let config = server.url().replace("/nehrapi/login/getToken", "/_mock/config");
    let client = reqwest::Client::new();
    let refused = client.post(&config).body(r#"{"expires_in": 60}"#).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    assert!(refused.text().await.unwrap().contains("unknown field `expires_in`"));
    let changed = client.post(&config).body(r#"{"error_rate": 1.0}"#).send().await.unwrap();
    assert_eq!(changed.status().as_u16(), 200);
    let prober = Prober::new(&target(&server, example_credential())).unwrap();
    assert_eq!(prober.call(0, Instant::now()).await.outcome, Outcome::ServerError);
}

/// A token from a login of `server`, and the protected resource's status for `auth`.
async fn token_of(server: &MockServer) -> String {
    let (status, body) = post(server, json!({"username": EXAMPLE_USERNAME, "password": EXAMPLE_PASSWORD})).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["result"]["access_token"].as_str().unwrap().to_string()
}

async fn resource(server: &MockServer, auth: Option<&str>) -> (u16, Option<String>) {
    let url = format!("http://{}{}", server.addr(), nehr_probe::mock::RESOURCE_PATH);
    let mut req = reqwest::Client::new().get(url);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let challenge = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    (resp.status().as_u16(), challenge)
}

#[tokio::test]
async fn the_protected_resource_accepts_only_the_mocks_own_unexpired_tokens() {
    let server = MockServer::start(&MockArgs { expires_in: 1, ..MockArgs::default() }).await.unwrap();
    let token = token_of(&server).await;
    assert_eq!(resource(&server, Some(&format!("Bearer {token}"))).await.0, 200);
    assert_eq!(resource(&server, Some(&format!("bearer {token}"))).await.0, 200, "the scheme in any case");
    // A forged token: the spec's example, and the real one with its last digit changed.
    let forged = format!("{}{}", &token[..35], if token.ends_with('0') { '1' } else { '0' });
    for bad in ["d0816a77-af67-43fc-bad1-2edb2aae3dc5", forged.as_str(), "not-a-token"] {
        let (status, challenge) = resource(&server, Some(&format!("Bearer {bad}"))).await;
        assert_eq!((status, challenge.as_deref()), (401, Some(r#"Bearer error="invalid_token""#)), "{bad}");
    }
    assert_eq!(resource(&server, None).await, (401, Some("Bearer".to_string())));
    // Expired once a second boundary has passed beyond its lifetime of 1 s.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(resource(&server, Some(&format!("Bearer {token}"))).await.0, 401, "expired");
    let stats = server.stats();
    assert_eq!((stats.resource_accepted, stats.resource_refused), (2, 5));
}

#[tokio::test]
async fn the_mocks_injected_failures_change_while_it_runs() {
    let server = MockServer::start(&MockArgs::default()).await.unwrap();
    let (a, b) = (token_of(&server).await, token_of(&server).await);
    assert_ne!(a, b, "fresh tokens");
    let wrong = json!({"username": EXAMPLE_USERNAME, "password": "not-the-password"});
    assert_eq!(post(&server, wrong.clone()).await.0, 401);
    let change = nehr_probe::mock::MockControl::from_json(
        br#"{"cached_token": true, "accept_any_password": true, "reject_token_rate": 1}"#,
    )
    .unwrap();
    server.control(&change).unwrap();
    let (c, d) = (token_of(&server).await, token_of(&server).await);
    assert_eq!(c, d, "one token for every login");
    assert_eq!(post(&server, wrong).await.0, 200, "any password");
    assert_eq!(resource(&server, Some(&format!("Bearer {c}"))).await.0, 401, "every token refused");
}
