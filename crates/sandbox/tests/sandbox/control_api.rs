//! The `/_sandbox/` control API, as a non-Rust plugin author would use it.

use std::time::Duration;

use crate::common::{send, start, unlimited};
use audience_sandbox::{Faults, Forced429};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn control_api_issues_a_working_token() {
    let env = start(unlimited()).await;
    let (status, pair) = send(env.http.post(env.url("/_sandbox/tokens"))).await;
    assert_eq!(status, StatusCode::OK);
    let token = pair["access_token"].as_str().expect("token");
    assert!(pair["refresh_token"].as_str().is_some_and(|t| t.starts_with("pinr_")));
    assert_eq!(pair["scope"], "ads:read,ads:write");
    let (status, _) = send(env.http.get(env.url("/v5/ad_accounts")).bearer_auth(token)).await;
    assert_eq!(status, StatusCode::OK);

    let (_, narrow) = send(env.http.post(env.url("/_sandbox/tokens")).json(&json!({"scopes": ["ads:read"]}))).await;
    assert_eq!(narrow["scope"], "ads:read");
}

#[tokio::test]
async fn control_api_shows_members_summary_and_log_without_logging_itself() {
    let env = start(unlimited()).await;
    let id = env.create_list("Fans", &["b@x.io", "a@x.io"]).await;
    let (status, members) = send(env.http.get(env.url(&format!("/_sandbox/customer_lists/{id}/members")))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(members["members"], json!(["a@x.io", "b@x.io"]));
    assert_eq!(members["count"], 2);

    let (_, summary) = send(env.http.get(env.url("/_sandbox/summary"))).await;
    let account = &summary["ad_accounts"][0];
    assert_eq!(account["customer_lists"][0]["name"], "Fans");
    assert_eq!(account["customer_lists"][0]["members"], 2);
    assert_eq!(summary["ad_accounts"].as_array().map(Vec::len), Some(3));

    let (_, log) = send(env.http.get(env.url("/_sandbox/requests"))).await;
    let log = log.as_array().expect("array");
    assert_eq!(log.len(), 1, "control calls are not logged: {log:?}");
    assert_eq!(log[0]["records"], 2);
    assert_eq!(log[0]["status"], 200);
    assert!(log[0]["at_ms"].is_u64());

    let (status, _) = send(env.http.get(env.url("/_sandbox/customer_lists/1/members"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn control_api_sets_and_reads_faults() {
    let env = start(unlimited()).await;
    let (status, echoed) = send(
        env.http
            .post(env.url("/_sandbox/faults"))
            .json(&json!({"forced_429": 1, "retry_after_secs": 4, "latency_ms": 5})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echoed["forced_429"], 1);
    assert_eq!(
        env.handle.faults(),
        Faults {
            latency: Duration::from_millis(5),
            forced_429: Some(Forced429 { remaining: 1, retry_after: Some(Duration::from_secs(4)) }),
            ..Faults::default()
        }
    );
    let response = env.get("/v5/ad_accounts").send().await.expect("answered");
    assert_eq!(response.headers()["retry-after"], "4");

    let (status, _) = send(env.http.post(env.url("/_sandbox/faults")).json(&json!({"typo": 1}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn control_api_revokes_expires_and_deletes() {
    let env = start(unlimited()).await;
    let account = env.account();
    let list = env.create_list("L", &["a@x.io"]).await;
    let audience = env.handle.create_audience(&account, "L", &list);

    let (status, _) =
        send(env.http.post(env.url(&format!("/_sandbox/ad_accounts/{account}/customer_lists/{list}/delete")))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(env.handle.find_audience(&account, "L"), None, "audience {audience} went with its list");

    let second = env.handle.issue_tokens(&["ads:read"]);
    let (status, _) =
        send(env.http.post(env.url("/_sandbox/tokens/expire")).json(&json!({"token": second.access_token}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = send(env.http.get(env.url("/v5/ad_accounts")).bearer_auth(&second.access_token)).await;
    assert_eq!(body["code"], 1104);

    let (status, _) = send(env.http.post(env.url("/_sandbox/tokens/revoke")).json(&json!({"all": true}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(send(env.get("/v5/ad_accounts")).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn control_api_serves_the_openapi_description() {
    let env = start(unlimited()).await;
    let (status, spec) = send(env.http.get(env.url("/_sandbox/openapi.json"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(spec["info"]["version"], "5.23.0");
    let (_, index) = send(env.http.get(env.url("/_sandbox/"))).await;
    assert!(index["routes"].as_object().is_some_and(|r| r.len() > 10));
}
