//! Rate limiting, injected faults and the request log, over real HTTP.

use std::time::{Duration, Instant};

use crate::common::{send, start, unlimited};
use audience_sandbox::{FaultKind, Faults, Forced429, SandboxConfig};
use reqwest::StatusCode;

#[tokio::test]
async fn eighth_request_within_a_second_gets_429_while_another_token_is_unaffected() {
    let env = start(SandboxConfig::default()).await;
    let other = env.handle.issue_tokens(&["ads:read"]);
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(send(env.get("/v5/ad_accounts")).await.0);
    }
    let (other_status, _) = send(env.http.get(env.url("/v5/ad_accounts")).bearer_auth(&other.access_token)).await;
    let (status, body) = send(env.get("/v5/ad_accounts")).await;
    if started.elapsed() >= Duration::from_millis(900) {
        // Far too slow a machine to say anything about a one-second window.
        return;
    }
    assert_eq!(&statuses[..7], &[StatusCode::OK; 7]);
    assert_eq!(statuses[7], StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["code"], 8);
    assert_eq!(other_status, StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(send(env.get("/v5/ad_accounts")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn requests_beyond_the_limit_count_as_violations_whether_refused_or_not() {
    let env = start(SandboxConfig { rate_limit_per_second: Some(3), ..SandboxConfig::default() }).await;
    let other = env.handle.issue_tokens(&["ads:read"]);
    let started = Instant::now();
    for _ in 0..5 {
        send(env.get("/v5/ad_accounts")).await;
    }
    send(env.http.get(env.url("/v5/ad_accounts")).bearer_auth(&other.access_token)).await;
    if started.elapsed() >= Duration::from_millis(900) {
        // Far too slow a machine to say anything about a one-second window.
        return;
    }
    // Two requests too many: both refused, both violations.
    assert_eq!(env.handle.count_status(429), 2);
    assert_eq!(env.handle.rate_limit_violations(), 2);
    assert_eq!(env.handle.rate_limit_violations_of(&env.tokens.access_token), 2);
    assert_eq!(env.handle.rate_limit_violations_of(&other.access_token), 0);
    let (status, body) = send(env.http.get(env.url("/_sandbox/rate_limit"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["violations"], 2);
    assert_eq!(body["requests_per_second"], 3);
    assert_eq!(body["window_ms"], 1000);
    let query = format!("/_sandbox/rate_limit?access_token={}", other.access_token);
    assert_eq!(send(env.http.get(env.url(&query))).await.1["violations"], 0);
}

#[tokio::test]
async fn rate_limited_answer_has_no_retry_after() {
    let env = start(SandboxConfig { rate_limit_per_second: Some(1), ..SandboxConfig::default() }).await;
    send(env.get("/v5/ad_accounts")).await;
    let response = env.get("/v5/ad_accounts").send().await.expect("answered");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn forced_429_carries_retry_after_then_clears() {
    let env = start(unlimited()).await;
    env.handle.set_faults(Faults {
        forced_429: Some(Forced429 { remaining: 2, retry_after: Some(Duration::from_secs(3)) }),
        ..Faults::default()
    });
    for _ in 0..2 {
        let response = env.get("/v5/ad_accounts").send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "3");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["code"], 8);
    }
    assert_eq!(send(env.get("/v5/ad_accounts")).await.0, StatusCode::OK);
    assert_eq!(env.handle.faults(), Faults::default());
    let forced = env.handle.request_log().iter().filter(|r| r.fault == Some(FaultKind::Forced429)).count();
    assert_eq!(forced, 2);
}

#[tokio::test]
async fn server_error_rate_is_roughly_honoured() {
    let env = start(SandboxConfig { faults: Faults { error_rate: 0.3, ..Faults::default() }, ..unlimited() }).await;
    let mut errors = 0;
    for _ in 0..300 {
        let (status, body) = send(env.get("/v5/ad_accounts")).await;
        if status.is_server_error() {
            assert!(status == StatusCode::INTERNAL_SERVER_ERROR || status == StatusCode::SERVICE_UNAVAILABLE);
            assert!(body["code"].is_i64() && body["message"].is_string());
            errors += 1;
        }
    }
    // Expected 90; this band is more than six standard deviations wide.
    assert!((40..=140).contains(&errors), "{errors} errors in 300");
    assert_eq!(env.handle.count_status(500) + env.handle.count_status(503), errors);
}

#[tokio::test]
async fn dropped_connection_is_a_client_side_error() {
    let env = start(unlimited()).await;
    env.handle.set_faults(Faults { drop_rate: 1.0, ..Faults::default() });
    let outcome = env.get("/v5/ad_accounts").send().await;
    let error = outcome.expect_err("no response for a dropped connection");
    assert!(error.is_request() && !error.is_status(), "{error:?}");

    env.handle.set_faults(Faults::default());
    assert_eq!(send(env.get("/v5/ad_accounts")).await.0, StatusCode::OK);
    let log = env.handle.request_log();
    assert_eq!(log[0].status, 0);
    assert_eq!(log[0].fault, Some(FaultKind::Dropped));
}

#[tokio::test]
async fn latency_is_added_to_every_api_answer() {
    let env = start(SandboxConfig {
        faults: Faults { latency: Duration::from_millis(150), ..Faults::default() },
        ..unlimited()
    })
    .await;
    let started = Instant::now();
    assert_eq!(send(env.get("/v5/ad_accounts")).await.0, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn every_api_answer_carries_a_request_id() {
    let env = start(unlimited()).await;
    let ok = env.get("/v5/ad_accounts").send().await.expect("answered");
    let refused = env.http.get(env.url("/v5/ad_accounts")).send().await.expect("answered");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    for response in [ok, refused] {
        assert!(response.headers().get("x-pinterest-rid").is_some());
    }
}

#[tokio::test]
async fn request_log_helpers_compute_the_right_numbers() {
    let env = start(SandboxConfig { rate_limit_per_second: Some(3), ..SandboxConfig::default() }).await;
    let account = env.account();
    let started = Instant::now();
    for _ in 0..5 {
        send(env.get("/v5/ad_accounts")).await;
    }
    let burst_took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let id = env.create_list("L", &["a@x.io", "b@x.io", "c@x.io"]).await;
    let path = format!("/v5/ad_accounts/{account}/customer_lists/{id}");
    send(env.patch(&path, serde_json::json!({"operation_type": "REMOVE", "records": "a@x.io,b@x.io"}))).await;

    let log = env.handle.request_log();
    assert_eq!(log.len(), 7);
    assert!(log.iter().all(|r| r.access_token.as_deref() == Some(env.tokens.access_token.as_str())));
    assert_eq!(log[5].method, "POST");
    assert_eq!(log[5].path, format!("/v5/ad_accounts/{account}/customer_lists"));
    assert_eq!(log[5].records, Some(3));
    assert_eq!(log[6].records, Some(2));
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(env.handle.max_records_per_request(), 3);
    if burst_took < Duration::from_millis(900) {
        // All five burst requests count, the two refused ones included.
        assert_eq!(env.handle.max_requests_in_window(&env.tokens.access_token, Duration::from_secs(1)), 5);
        assert_eq!(env.handle.count_status(429), 2);
    }
    assert_eq!(env.handle.max_requests_in_window("pina_nobody", Duration::from_secs(1)), 0);
    assert_eq!(env.handle.max_requests_in_window(&env.tokens.access_token, Duration::from_secs(60)), 7);
}

#[tokio::test]
async fn sandbox_shuts_down_and_frees_its_port() {
    let env = start(unlimited()).await;
    let url = env.url("/v5/ad_accounts");
    let port = reqwest::Url::parse(&url).ok().and_then(|u| u.port()).unwrap_or(0);
    env.sandbox.shutdown().await;
    assert!(env.http.get(&url).send().await.is_err());
    let again = audience_sandbox::PinterestSandbox::start(SandboxConfig { port, ..unlimited() }).await;
    assert!(again.is_ok(), "port {port} is free again");
}
