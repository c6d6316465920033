//! A call the API makes to the partner with credentials the partner no longer takes: an
//! access token that expired is refreshed (as the connection's lane would at its next 401) and
//! the call answers; credentials that cannot be refreshed answer 409 and the connection shows
//! that it needs a person.

use reqwest::StatusCode;
use serde_json::json;

use super::server;

/// A connection made from fresh sandbox tokens: its id and the tokens.
async fn connection_with_tokens(s: &super::Server, key: &str) -> (String, audience_sandbox::TokenPair) {
    let tokens = s.sandbox.handle().issue_tokens(&["ads:read", "ads:write"]);
    let body = json!({"destination": "pinterest", "name": "sandbox", "credentials": {
        "access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
        "scopes": ["ads:read", "ads:write"]}});
    let answer = s.post("/v1/connections", key, body).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    (answer.body["id"].as_str().expect("id").to_string(), tokens)
}

/// Token refreshes the partner granted.
fn refreshes(s: &super::Server) -> usize {
    s.sandbox.handle().request_log().iter().filter(|r| r.path == "/v5/oauth/token" && r.status == 200).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_after_the_access_token_expired_refreshes_it_and_answers() {
    let s = server().await;
    let (_, key) = s.workspace("Acme").await;
    let (connection, tokens) = connection_with_tokens(&s, &key).await;
    let accounts = format!("/v1/connections/{connection}/accounts");
    assert_eq!(s.get(&accounts, &key).await.status, StatusCode::OK);
    s.sandbox.handle().expire_access_token(&tokens.access_token);
    let answer = s.get(&accounts, &key).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(refreshes(&s), 1, "one refresh");
    let account = s.sandbox.handle().ad_account_ids()[0].clone();
    let search = s.get(&format!("{accounts}/{account}/audiences?query=churn"), &key).await;
    assert_eq!(search.status, StatusCode::OK, "the new token serves the next call: {search:?}");
    assert_eq!(refreshes(&s), 1, "no second refresh");
    let shown = s.get(&format!("/v1/connections/{connection}"), &key).await;
    assert_eq!(shown.body["health"], "ok", "{shown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_credentials_cannot_be_refreshed_answers_409_and_the_connection_needs_a_person() {
    let s = server().await;
    let (_, key) = s.workspace("Acme").await;
    let (connection, tokens) = connection_with_tokens(&s, &key).await;
    s.sandbox.handle().revoke_token(&tokens.access_token);
    s.sandbox.handle().revoke_token(&tokens.refresh_token);
    let answer = s.get(&format!("/v1/connections/{connection}/accounts"), &key).await;
    answer.refused(StatusCode::CONFLICT, "partner_unauthorized", "connect the account again");
    let shown = s.get(&format!("/v1/connections/{connection}"), &key).await;
    assert_eq!(shown.body["health"], "needs_reauthorization", "{shown:?}");
}
