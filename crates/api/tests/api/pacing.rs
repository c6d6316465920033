//! Calls the API makes to the partner on a connection's behalf share the connection's rate
//! with its deliveries, and never wait long for it: when the connection's next turn is further
//! than `engine.rate.api_max_wait` (2 s) away, the API answers 429 `rate_limited` with
//! `Retry-After` and the partner is not asked.
//!
//! The partner's rates are set low (one request every 4 s, or every 10 s), so that the turns
//! deliveries or an earlier call hold reach seconds ahead: the answers do not depend on how fast
//! the machine runs the test, only on seconds of margin.

use std::time::Duration;

use audience_api::{ApiState, OauthOverride, OperatorKey, router};
use audience_engine::{EngineConfig, LimitOverrides};
use audience_lab::world::{World, WorldOptions};
use reqwest::{StatusCode, header};
use serde_json::json;

use super::{Answer, MAX_BODY, OPERATOR, Server};

/// A server whose Pinterest plugin has these `limits`.
async fn server_limited(limits: LimitOverrides) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = EngineConfig::default();
    engine.batch.flush_interval = Duration::from_millis(200);
    let world = World::start(dir.path(), WorldOptions { engine, limits, ..WorldOptions::default() }).await.unwrap();
    let (sandbox, engine) = (world.sandbox, world.engine);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut state = ApiState::new(engine.clone(), OperatorKey::new(OPERATOR).unwrap(), base.clone());
    state.oauth.insert("pinterest".into(), OauthOverride { authorize_url: Some(sandbox.authorize_url()) });
    state.max_body_bytes = MAX_BODY;
    let app = router(state);
    tokio::spawn(audience_api::serve(listener, app, audience_api::HttpSettings::default(), std::future::pending()));
    Server { base, sandbox, engine, http: reqwest::Client::new(), _dir: dir, _database: None }
}

/// The answer's `Retry-After`, in seconds.
fn retry_after(response: &reqwest::Response) -> u64 {
    let value = response.headers().get(header::RETRY_AFTER).expect("Retry-After").to_str().unwrap();
    value.parse().unwrap()
}

/// GETs `path` and asserts a 429 `rate_limited` saying the budget is in use, with a
/// `Retry-After` of at most `most` seconds that the message repeats.
async fn paced_out(s: &Server, path: &str, key: &str, most: u64) {
    let response = s.request(reqwest::Method::GET, path, Some(key)).send().await.unwrap();
    let status = response.status();
    let wait = response.headers().contains_key(header::RETRY_AFTER).then(|| retry_after(&response));
    let text = response.text().await.unwrap();
    let answer = Answer { status, body: serde_json::from_str(&text).unwrap_or_default(), text };
    answer.refused(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "in use (by deliveries or other API calls)");
    let wait = wait.unwrap_or_else(|| panic!("{path}: no Retry-After: {answer:?}"));
    assert!((1..=most).contains(&wait), "Retry-After {wait}");
    assert!(answer.message().contains(&format!("try again in {wait} s")), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_for_a_connection_whose_next_turn_is_beyond_the_wait_answer_429_with_retry_after() {
    // One request every 4 s: a call takes the connection's turn, so the next call's turn is
    // about 4 s away, beyond the 2 s an API call may wait. (Deliveries take turns the same
    // way; the lane keeps at most one batch waiting for a turn, so they seldom hold more than
    // the next one: see the lane's tests.)
    let limits = LimitOverrides { requests_per_second: Some(0.25), ..LimitOverrides::default() };
    let s = server_limited(limits).await;
    let (_, key) = s.workspace("Acme").await;
    let connection = s.connection(&key).await;
    let accounts = format!("/v1/connections/{connection}/accounts");
    // Nothing queued: a call goes at once.
    assert_eq!(s.get(&accounts, &key).await.status, StatusCode::OK);
    paced_out(&s, &accounts, &key, 5).await;
    let account = s.sandbox.handle().ad_account_ids()[0].clone();
    paced_out(&s, &format!("/v1/connections/{connection}/accounts/{account}/audiences?query=churn"), &key, 5).await;
    let metrics = s.get("/metrics", OPERATOR).await;
    assert!(metrics.text.contains("audience_api_paced_out_total{destination=\"pinterest\"}"), "{}", metrics.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_exchange_beyond_the_wait_answers_429_and_starting_again_after_it_works() {
    // One exchange every 10 s for the destination's new connections: the second comes well
    // within that however slowly the machine runs the consent flows.
    let s = server_limited(LimitOverrides { requests_per_second: Some(0.1), ..LimitOverrides::default() }).await;
    let (_, key) = s.workspace("Acme").await;
    let start = "/v1/connections/oauth/start";
    let first = s.consent(start, &key, Some(json!({"destination": "pinterest", "name": "A"}))).await;
    assert_eq!(s.open(&first).await.status, StatusCode::CREATED, "the first exchange goes at once");
    // A second new connection's exchange comes within the 10 s spacing of the destination's
    // exchanges: not made, and said so, with when to start again.
    let second = s.consent(start, &key, Some(json!({"destination": "pinterest", "name": "B"}))).await;
    let response = s.http.get(&second).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&response);
    assert!((3..=11).contains(&wait), "Retry-After {wait}: 10 s and the guard, less the time since the first");
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("start again with POST /v1/connections/oauth/start")
            && message.contains(&format!("in {wait} s")),
        "{message}"
    );
    // After the wait, the flow started again goes through.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = s.consent(start, &key, Some(json!({"destination": "pinterest", "name": "B"}))).await;
    let done = s.open(&again).await;
    assert_eq!(done.status, StatusCode::CREATED, "{done:?}");
    assert_eq!(done.body["connection"]["name"], "B");
}
