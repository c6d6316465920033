//! OAuth over real HTTP: authorize, code exchange, refresh, revocation and bearer checks.

use std::time::Duration;

use crate::common::{Env, send, start, unlimited};
use audience_sandbox::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxConfig};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;

const REDIRECT: &str = "http://localhost:9999/callback";

fn token_request(env: &Env, form: &[(&str, &str)]) -> RequestBuilder {
    env.http.post(env.url("/v5/oauth/token")).basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET)).form(form)
}

async fn exchange(env: &Env, code: &str, redirect_uri: &str) -> (StatusCode, Value) {
    send(token_request(env, &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)]))
        .await
}

async fn refresh(env: &Env, refresh_token: &str) -> (StatusCode, Value) {
    send(token_request(
        env,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("continuous_refresh", "true")],
    ))
    .await
}

async fn ad_accounts_status(env: &Env, token: &str) -> (StatusCode, Value) {
    send(env.http.get(env.url("/v5/ad_accounts")).bearer_auth(token)).await
}

#[tokio::test]
async fn authorize_page_redirects_with_a_code_and_the_state() {
    let env = start(unlimited()).await;
    let response = env
        .http
        .get(env.sandbox.authorize_url())
        .query(&[
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "ads:read,ads:write"),
            ("state", "xyz 123"),
        ])
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().expect("ascii").to_owned();
    let url = reqwest::Url::parse(&location).expect("location is a URL");
    assert!(location.starts_with(REDIRECT));
    let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "xyz 123");

    let (status, body) = exchange(&env, &pairs["code"], REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "ads:read,ads:write");
}

#[tokio::test]
async fn authorize_page_refuses_an_unknown_client() {
    let env = start(unlimited()).await;
    let (status, body) = send(env.http.get(env.sandbox.authorize_url()).query(&[
        ("client_id", "stranger"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
    ]))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn code_exchange_answers_the_spec_token_response() {
    let env = start(unlimited()).await;
    let code = env.handle.issue_authorization_code(DEFAULT_CLIENT_ID, REDIRECT);
    let (status, body) = exchange(&env, &code, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].as_str().is_some_and(|t| t.starts_with("pina_")));
    assert!(body["refresh_token"].as_str().is_some_and(|t| t.starts_with("pinr_")));
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 30 * 24 * 3600);
    assert_eq!(body["scope"], "ads:read,ads:write");
    assert_eq!(body["refresh_token_expires_in"], 60 * 24 * 3600);
    assert!(body["refresh_token_expires_at"].as_u64().is_some());

    let token = body["access_token"].as_str().unwrap_or_default();
    assert_eq!(ad_accounts_status(&env, token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn authorization_code_is_single_use() {
    let env = start(unlimited()).await;
    let code = env.handle.issue_authorization_code(DEFAULT_CLIENT_ID, REDIRECT);
    assert_eq!(exchange(&env, &code, REDIRECT).await.0, StatusCode::OK);
    let (status, body) = exchange(&env, &code, REDIRECT).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], 283);
}

#[tokio::test]
async fn wrong_redirect_uri_is_refused() {
    let env = start(unlimited()).await;
    let code = env.handle.issue_authorization_code(DEFAULT_CLIENT_ID, REDIRECT);
    let (status, body) = exchange(&env, &code, "http://evil.example/cb").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], 283);
    // A mismatched attempt does not burn the code for its rightful owner.
    assert_eq!(exchange(&env, &code, REDIRECT).await.0, StatusCode::OK);
}

#[tokio::test]
async fn expired_authorization_code_is_refused() {
    let env = start(SandboxConfig { authorization_code_ttl: Duration::ZERO, ..unlimited() }).await;
    let code = env.handle.issue_authorization_code(DEFAULT_CLIENT_ID, REDIRECT);
    assert_eq!(exchange(&env, &code, REDIRECT).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_client_secret_is_refused() {
    let env = start(unlimited()).await;
    let code = env.handle.issue_authorization_code(DEFAULT_CLIENT_ID, REDIRECT);
    let (status, body) =
        send(env.http.post(env.url("/v5/oauth/token")).basic_auth(DEFAULT_CLIENT_ID, Some("wrong")).form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ]))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, serde_json::json!({"code": 2, "message": "Authentication failed."}));
}

#[tokio::test]
async fn registered_app_can_exchange_its_own_codes_only() {
    let env = start(unlimited()).await;
    env.handle.register_app("other-app", "other-secret");
    let code = env.handle.issue_authorization_code("other-app", REDIRECT);
    // The default app cannot redeem another app's code...
    assert_eq!(exchange(&env, &code, REDIRECT).await.0, StatusCode::UNAUTHORIZED);
    // ...the app it was issued to can.
    let (status, body) =
        send(env.http.post(env.url("/v5/oauth/token")).basic_auth("other-app", Some("other-secret")).form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn refresh_without_rotation_omits_the_refresh_token_and_the_old_one_keeps_working() {
    let env = start(unlimited()).await;
    let (status, body) = refresh(&env, &env.tokens.refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let new_access = body["access_token"].as_str().unwrap_or_default().to_owned();
    assert!(new_access.starts_with("pina_"));
    assert_ne!(new_access, env.tokens.access_token);
    assert_eq!(ad_accounts_status(&env, &new_access).await.0, StatusCode::OK);

    let (status, _) = refresh(&env, &env.tokens.refresh_token).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn refresh_with_rotation_returns_a_new_refresh_token_and_retires_the_old_one() {
    let env = start(SandboxConfig { rotate_refresh_tokens: true, ..unlimited() }).await;
    let (status, body) = refresh(&env, &env.tokens.refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rotated = body["refresh_token"].as_str().unwrap_or_default().to_owned();
    assert!(rotated.starts_with("pinr_"));
    assert_ne!(rotated, env.tokens.refresh_token);
    assert!(body["refresh_token_expires_at"].as_u64().is_some());

    let (status, body) = refresh(&env, &env.tokens.refresh_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], 283);
    assert_eq!(refresh(&env, &rotated).await.0, StatusCode::OK);
}

#[tokio::test]
async fn revoked_token_is_refused() {
    let env = start(unlimited()).await;
    assert_eq!(ad_accounts_status(&env, &env.tokens.access_token).await.0, StatusCode::OK);
    env.handle.revoke_token(&env.tokens.access_token);
    let (status, body) = ad_accounts_status(&env, &env.tokens.access_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, serde_json::json!({"code": 2, "message": "Authentication failed."}));
}

#[tokio::test]
async fn revoke_endpoint_revokes_refresh_tokens() {
    let env = start(unlimited()).await;
    let (status, _) = send(
        env.http
            .post(env.url("/v5/oauth/token/revoke"))
            .basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
            .form(&[("token", env.tokens.refresh_token.as_str()), ("token_type_hint", "refresh_token")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(refresh(&env, &env.tokens.refresh_token).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoking_all_tokens_refuses_every_token() {
    let env = start(unlimited()).await;
    let second = env.handle.issue_tokens(&["ads:read"]);
    env.handle.revoke_all_tokens();
    for token in [&env.tokens.access_token, &second.access_token] {
        assert_eq!(ad_accounts_status(&env, token).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(refresh(&env, &second.refresh_token).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_token_is_refused_with_code_1104_until_refreshed() {
    let env = start(unlimited()).await;
    env.handle.expire_access_token(&env.tokens.access_token);
    let (status, body) = ad_accounts_status(&env, &env.tokens.access_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], 1104);

    let (_, body) = refresh(&env, &env.tokens.refresh_token).await;
    let fresh = body["access_token"].as_str().unwrap_or_default();
    assert_eq!(ad_accounts_status(&env, fresh).await.0, StatusCode::OK);
}

#[tokio::test]
async fn short_access_token_ttl_expires_on_its_own() {
    let env = start(SandboxConfig { access_token_ttl: Duration::from_millis(50), ..unlimited() }).await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    let (status, body) = ad_accounts_status(&env, &env.tokens.access_token).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::UNAUTHORIZED, 1104.into()));
}

#[tokio::test]
async fn unknown_and_missing_tokens_are_refused() {
    let env = start(unlimited()).await;
    assert_eq!(ad_accounts_status(&env, "pina_madeup").await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = send(env.http.get(env.url("/v5/ad_accounts"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], 2);
    // A refresh token is not a bearer token.
    let (status, _) = ad_accounts_status(&env, &env.tokens.refresh_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn token_lacking_a_scope_is_refused_with_code_3() {
    let env = start(unlimited()).await;
    let read_only = env.handle.issue_tokens(&["ads:read"]);
    assert_eq!(ad_accounts_status(&env, &read_only.access_token).await.0, StatusCode::OK);
    let path = format!("/v5/ad_accounts/{}/customer_lists", env.account());
    let (status, body) = send(
        env.http
            .post(env.url(&path))
            .bearer_auth(&read_only.access_token)
            .json(&serde_json::json!({"name": "x", "records": "a@b.c"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], 3);

    let write_only = env.handle.issue_tokens(&["ads:write"]);
    let (status, body) = ad_accounts_status(&env, &write_only.access_token).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::UNAUTHORIZED, 3.into()));
}

#[tokio::test]
async fn token_form_that_breaks_the_spec_is_refused_and_recorded() {
    let env = start(unlimited()).await;
    let (status, _) = send(token_request(&env, &[("grant_type", "refresh_token")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let violations = env.handle.spec_violations();
    assert_eq!(violations, vec!["POST /v5/oauth/token: body.refresh_token: required property is missing"]);
}
