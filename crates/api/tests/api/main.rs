//! The HTTP API over real HTTP: a server on 127.0.0.1:0 (the host's own serving loop,
//! `audience_api::serve`) in front of the engine, the Pinterest plugin and its sandbox, driven
//! with reqwest the way a caller (and a person's browser, for OAuth) would. `edge` tests the
//! serving loop against slow and idle clients; `containment` what hostile input cannot do.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a step that fails is a failed test")]

mod containment;
mod credentials;
mod edge;
mod pacing;
mod paging;
mod users;

use std::time::{Duration, Instant};

use audience_api::{ApiState, HttpSettings, OauthOverride, OperatorKey, router};
use audience_engine::{Engine, EngineConfig};
use audience_lab::world::{ScratchDatabase, World, WorldOptions};
use audience_sandbox::PinterestSandbox;
use audience_store::Health;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const OPERATOR: &str = "operator-secret-for-tests-0123456789";
/// The test servers' body limit.
const MAX_BODY: usize = 4 << 20;

struct Server {
    base: String,
    sandbox: PinterestSandbox,
    engine: Engine,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    _database: Option<ScratchDatabase>,
}

async fn server() -> Server {
    server_with(|_| {}).await
}

/// A server with the Pinterest plugin pointed at a fresh sandbox; `adjust` may change the
/// API's settings before it starts.
async fn server_with(adjust: impl FnOnce(&mut ApiState)) -> Server {
    server_on(None, adjust).await
}

/// The PostgreSQL server the tests use (`AUDIENCE_TEST_POSTGRES_URL`, or the local one).
fn postgres_server() -> String {
    std::env::var("AUDIENCE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A server whose store is a scratch database on the PostgreSQL server.
async fn server_on_postgres() -> Server {
    let server = postgres_server();
    let database = ScratchDatabase::create(&server, "api")
        .await
        .unwrap_or_else(|e| panic!("this test needs PostgreSQL at {server} (start it): {e:#}"));
    server_on(Some(database), |_| {}).await
}

/// A server on a SQLite store in a temporary directory, or on `database`.
async fn server_on(database: Option<ScratchDatabase>, adjust: impl FnOnce(&mut ApiState)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = EngineConfig::default();
    engine.batch.flush_interval = Duration::from_millis(200);
    engine.retry.initial_backoff = Duration::from_millis(50);
    let postgres_url = database.as_ref().map(|d| d.url().to_string());
    let world =
        World::start(dir.path(), WorldOptions { engine, postgres_url, ..WorldOptions::default() }).await.unwrap();
    let (sandbox, engine) = (world.sandbox, world.engine);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut state = ApiState::new(engine.clone(), OperatorKey::new(OPERATOR).unwrap(), base.clone());
    state.oauth.insert("pinterest".into(), OauthOverride { authorize_url: Some(sandbox.authorize_url()) });
    state.max_body_bytes = MAX_BODY;
    adjust(&mut state);
    let app = router(state);
    tokio::spawn(audience_api::serve(listener, app, HttpSettings::default(), std::future::pending()));
    Server { base, sandbox, engine, http: reqwest::Client::new(), _dir: dir, _database: database }
}

/// An answer: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Value,
    text: String,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    /// Asserts a JSON error with this status and code whose message contains `words`.
    fn refused(&self, status: StatusCode, code: &str, words: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.code(), code, "{self:?}");
        assert!(
            self.message().to_lowercase().contains(&words.to_lowercase()),
            "message {:?} should mention {words:?}",
            self.message()
        );
    }
}

impl Server {
    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body, text }
    }

    fn request(&self, method: Method, path: &str, key: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    async fn call(&self, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> Answer {
        let mut request = self.request(method, path, key);
        if let Some(body) = body {
            request = request.header(header::CONTENT_TYPE, "application/json").body(body.to_string());
        }
        self.send(request).await
    }

    async fn get(&self, path: &str, key: &str) -> Answer {
        self.call(Method::GET, path, Some(key), None).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    /// Posts raw bytes with a content type.
    async fn post_raw(&self, path: &str, key: &str, content_type: Option<&str>, body: Vec<u8>) -> Answer {
        let mut request = self.request(Method::POST, path, Some(key)).body(body);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        self.send(request).await
    }

    /// A workspace made by the operator; its id and first key.
    async fn workspace(&self, name: &str) -> (String, String) {
        let answer = self.post("/v1/workspaces", OPERATOR, json!({"name": name})).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        let key = answer.body["api_key"]["key"].as_str().expect("key shown").to_string();
        (answer.body["workspace"]["id"].as_str().expect("id").to_string(), key)
    }

    /// A connection made from sandbox tokens (no OAuth).
    async fn connection(&self, key: &str) -> String {
        let tokens = self.sandbox.handle().issue_tokens(&["ads:read", "ads:write"]);
        let body = json!({"destination": "pinterest", "name": "sandbox", "credentials": {
            "access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
            "scopes": ["ads:read", "ads:write"]}});
        let answer = self.post("/v1/connections", key, body).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        assert!(!answer.text.contains(&tokens.access_token), "credentials are never shown");
        answer.body["id"].as_str().expect("id").to_string()
    }

    async fn sync(&self, key: &str, connection: &str, audience: &str) -> String {
        let account = self.sandbox.handle().ad_account_ids()[0].clone();
        let body = json!({"connection_id": connection, "account_id": account, "audience_name": audience,
            "match_fields": ["email"]});
        let answer = self.post("/v1/syncs", key, body).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        answer.body["id"].as_str().expect("id").to_string()
    }

    /// The sync's counts once nothing is pending.
    async fn settled(&self, key: &str, sync: &str) -> Value {
        let started = Instant::now();
        loop {
            let answer = self.get(&format!("/v1/syncs/{sync}"), key).await;
            assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
            let counts = answer.body["counts"].clone();
            // Nothing left to send: no user waiting to be added or removed.
            if counts["pending"] == 0 && counts["removing"] == 0 {
                return counts;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "not settled: {counts}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts an OAuth connection and lets the sandbox's consent page redirect (without
    /// following it): the callback URL the browser would open.
    async fn consent(&self, start: &str, key: &str, body: Option<Value>) -> String {
        let answer = self.call(Method::POST, start, Some(key), body).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        let authorize_url = answer.body["authorize_url"].as_str().expect("authorize_url");
        let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let response = browser.get(authorize_url).send().await.expect("consent page");
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()[header::LOCATION].to_str().unwrap().to_string();
        assert!(location.starts_with(&format!("{}/v1/oauth/callback?", self.base)), "{location}");
        location
    }

    async fn open(&self, url: &str) -> Answer {
        self.send(self.http.get(url)).await
    }
}

fn users(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"key": format!("{prefix}{i}"), "identifiers": [{"kind": "email", "value": format!("{prefix}{i}@example.com")}]}))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_from_workspace_to_metrics() {
    let s = server().await;
    let (workspace, key) = s.workspace("Acme").await;
    let me = s.get("/v1/workspace", &key).await;
    assert_eq!(me.body["id"], workspace.as_str());
    let destinations = s.get("/v1/destinations", &key).await;
    assert_eq!(destinations.body["destinations"][0]["name"], "pinterest", "{destinations:?}");

    // OAuth: start, the partner's page (the sandbox consents at once), the callback.
    let started =
        s.post("/v1/connections/oauth/start", &key, json!({"destination": "pinterest", "name": "Main"})).await;
    assert_eq!(started.status, StatusCode::CREATED, "{started:?}");
    let authorize_url = started.body["authorize_url"].as_str().unwrap();
    assert!(authorize_url.starts_with(&s.sandbox.authorize_url()), "{authorize_url}");
    assert!(authorize_url.contains("scope=ads%3Aread%2Cads%3Awrite"), "{authorize_url}");
    assert!(authorize_url.contains(started.body["state"].as_str().unwrap()));
    let response = s.http.get(authorize_url).send().await.expect("browser follows the redirects");
    assert!(response.url().path().ends_with("/v1/oauth/callback"), "{}", response.url());
    assert_eq!(response.status(), StatusCode::CREATED);
    let done: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(done["reconnected"], false);
    let connection = done["connection"]["id"].as_str().expect("connection id").to_string();

    let shown = s.get(&format!("/v1/connections/{connection}"), &key).await;
    assert_eq!((shown.body["health"].as_str(), shown.body["name"].as_str()), (Some("ok"), Some("Main")));
    assert!(!shown.text.contains("access_token") && !shown.text.contains("pina_"), "{}", shown.text);
    let listed = s.get("/v1/connections", &key).await;
    assert_eq!(listed.body["connections"].as_array().unwrap().len(), 1);

    // Accounts, page by page.
    let mut accounts = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/connections/{connection}/accounts?cursor={c}"),
            None => format!("/v1/connections/{connection}/accounts"),
        };
        let page = s.get(&path, &key).await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        accounts
            .extend(page.body["accounts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string()));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let mut expected = s.sandbox.handle().ad_account_ids();
    expected.sort();
    accounts.sort();
    assert_eq!(accounts, expected);

    // A sync, and users: 40 with an email, 3 without a usable one.
    let body = json!({"connection_id": connection, "account_id": accounts[0], "audience_name": "Churn risk",
        "match_fields": ["email"]});
    let created = s.post("/v1/syncs", &key, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let sync = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["status"], "active");
    let mut batch = users("u", 40);
    batch.push(json!({"key": "bad-1", "identifiers": [{"kind": "email", "value": "bob@"}]}));
    batch.push(json!({"key": "bad-2", "identifiers": [{"kind": "email", "value": "not an email"}]}));
    batch.push(json!({"key": "bad-3", "identifiers": [{"kind": "mobile-ad-id", "value": "6d92078a-8246-4ba4-ae5b-76104861e7dc"}]}));
    let intake = s.post(&format!("/v1/syncs/{sync}/users"), &key, json!({"users": batch})).await;
    assert_eq!(intake.status, StatusCode::OK, "{intake:?}");
    assert_eq!((intake.body["accepted"].as_u64(), intake.body["not_synced"].as_u64()), (Some(40), Some(3)));
    let not_synced = intake.body["not_synced_users"].as_array().unwrap();
    assert_eq!(not_synced.len(), 3);
    assert!(not_synced.iter().all(|u| !u["reason"].as_str().unwrap().is_empty()), "{not_synced:?}");
    assert_eq!(not_synced[0]["key"], "bad-1");

    let counts = s.settled(&key, &sync).await;
    assert_eq!(counts["entered"], 43, "{counts}");
    assert_eq!(counts["proceeded"], 43, "{counts}");
    assert_eq!(counts["synced"], 40, "{counts}");
    assert_eq!(counts["not_synced"], 3, "{counts}");
    assert_eq!(counts["errored"], 0, "{counts}");
    assert_eq!(counts["synced"].as_u64().unwrap() + counts["not_synced"].as_u64().unwrap(), 43);
    let audience = s.sandbox.handle().find_customer_list(&accounts[0], "Churn risk").expect("audience made");
    let members = s.sandbox.handle().members(&audience);
    assert!(members.contains(&hex::encode(Sha256::digest("u7@example.com"))));
    assert_eq!(members.len(), 40);

    let listed = s.get("/v1/syncs", &key).await;
    assert_eq!(listed.body["syncs"][0]["counts"]["synced"], 40);

    // Metrics: the operator's, with the destination's figures (its one sync's), and no series
    // per sync or per connection.
    let metrics = s.send(s.request(Method::GET, "/metrics", Some(OPERATOR))).await;
    assert_eq!(metrics.status, StatusCode::OK);
    for line in [
        "audience_users_synced_total{destination=\"pinterest\"} 40",
        "audience_users_not_synced_total{destination=\"pinterest\"} 3",
        "audience_users_entered_total{destination=\"pinterest\"} 43",
        "audience_syncs{destination=\"pinterest\"} 1",
        "audience_connections{destination=\"pinterest\"} 1",
    ] {
        assert!(metrics.text.lines().any(|l| l == line), "missing {line:?} in\n{}", metrics.text);
    }
    assert!(!metrics.text.contains(&sync) && !metrics.text.contains(&connection), "{}", metrics.text);
    s.get("/metrics", &key).await.refused(StatusCode::FORBIDDEN, "forbidden", "operator key");

    // Pause, resume, delete.
    let paused = s.call(Method::POST, &format!("/v1/syncs/{sync}/pause"), Some(&key), None).await;
    assert_eq!(paused.body["status"], "paused", "{paused:?}");
    let resumed = s.call(Method::POST, &format!("/v1/syncs/{sync}/resume"), Some(&key), None).await;
    assert_eq!(resumed.body["status"], "active", "{resumed:?}");
    let refused = s.call(Method::DELETE, &format!("/v1/connections/{connection}"), Some(&key), None).await;
    refused.refused(StatusCode::CONFLICT, "conflict", "delete those syncs first");
    let deleted = s.call(Method::DELETE, &format!("/v1/syncs/{sync}"), Some(&key), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    s.get(&format!("/v1/syncs/{sync}"), &key).await.refused(StatusCode::NOT_FOUND, "not_found", &sync);
    let disconnected = s.call(Method::DELETE, &format!("/v1/connections/{connection}"), Some(&key), None).await;
    assert_eq!(disconnected.status, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_sees_and_changes_only_its_workspace() {
    let s = server().await;
    let (a, key_a) = s.workspace("A").await;
    let (_, key_b) = s.workspace("B").await;
    let conn_a = s.connection(&key_a).await;
    let sync_a = s.sync(&key_a, &conn_a, "A's audience").await;
    let intake = s.post(&format!("/v1/syncs/{sync_a}/users"), &key_a, json!({"users": users("a", 5)})).await;
    assert_eq!(intake.status, StatusCode::OK, "{intake:?}");
    let before = s.settled(&key_a, &sync_a).await;

    // Every way B could touch A's things answers 404, the same as for a missing thing.
    for (method, path, body) in [
        (Method::GET, format!("/v1/syncs/{sync_a}"), None),
        (Method::POST, format!("/v1/syncs/{sync_a}/users"), Some(json!({"users": users("b", 3)}))),
        (Method::POST, format!("/v1/syncs/{sync_a}/pause"), None),
        (Method::POST, format!("/v1/syncs/{sync_a}/resume"), None),
        (Method::DELETE, format!("/v1/syncs/{sync_a}"), None),
        (Method::GET, format!("/v1/connections/{conn_a}"), None),
        (Method::GET, format!("/v1/connections/{conn_a}/accounts"), None),
        (Method::POST, format!("/v1/connections/{conn_a}/oauth/start"), None),
        (Method::DELETE, format!("/v1/connections/{conn_a}"), None),
    ] {
        let answer = s.call(method.clone(), &path, Some(&key_b), body).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}: {answer:?}");
        assert_eq!(answer.code(), "not_found");
    }
    let missing = s.get("/v1/syncs/sync_doesnotexist", &key_b).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.message().replace("sync_doesnotexist", "X"),
        s.get(&format!("/v1/syncs/{sync_a}"), &key_b).await.message().replace(&sync_a, "X")
    );

    // B cannot build a sync on A's connection, and lists nothing of A's.
    let account = s.sandbox.handle().ad_account_ids()[0].clone();
    let body = json!({"connection_id": conn_a, "account_id": account, "audience_name": "x", "match_fields": ["email"]});
    s.post("/v1/syncs", &key_b, body).await.refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        "no connection",
    );
    assert_eq!(s.get("/v1/syncs", &key_b).await.body["syncs"], json!([]));
    assert_eq!(s.get("/v1/connections", &key_b).await.body["connections"], json!([]));

    // A's sync is untouched.
    let after = s.settled(&key_a, &sync_a).await;
    assert_eq!(before, after);
    assert_eq!(s.get(&format!("/v1/syncs/{sync_a}"), &key_a).await.body["status"], "active");

    // Keys: workspace keys cannot manage workspaces; unknown or revoked keys are refused.
    s.get("/v1/workspaces", &key_a).await.refused(StatusCode::FORBIDDEN, "forbidden", "operator key");
    s.get("/v1/syncs", OPERATOR).await.refused(StatusCode::FORBIDDEN, "forbidden", "API keys");
    s.get("/v1/syncs", "ahk_unknown").await.refused(StatusCode::UNAUTHORIZED, "unauthorized", "unknown API key");
    let anonymous = s.call(Method::GET, "/v1/syncs", None, None).await;
    anonymous.refused(StatusCode::UNAUTHORIZED, "unauthorized", "Authorization: Bearer");
    let second = s.post(&format!("/v1/workspaces/{a}/keys"), OPERATOR, json!({"name": "rotation"})).await;
    assert_eq!(second.status, StatusCode::CREATED, "{second:?}");
    let second_key = second.body["key"].as_str().unwrap().to_string();
    assert_eq!(s.get(&format!("/v1/syncs/{sync_a}"), &second_key).await.status, StatusCode::OK);
    let keys = s.get(&format!("/v1/workspaces/{a}/keys"), OPERATOR).await;
    assert_eq!(keys.body["keys"].as_array().unwrap().len(), 2, "{keys:?}");
    assert!(!keys.text.contains(&key_a) && !keys.text.contains(&second_key), "keys are never listed");
    let key_id = second.body["id"].as_str().unwrap();
    let revoked = s.call(Method::DELETE, &format!("/v1/workspaces/{a}/keys/{key_id}"), Some(OPERATOR), None).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    s.get("/v1/syncs", &second_key).await.refused(StatusCode::UNAUTHORIZED, "unauthorized", "unknown API key");
    assert_eq!(s.get("/v1/syncs", &key_a).await.status, StatusCode::OK);
}

fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_state_mismatch_replay_and_expiry_are_refused() {
    let s = server().await;
    let (_, key) = s.workspace("Acme").await;
    let start = json!({"destination": "pinterest", "name": "Main"});
    let callback = s.consent("/v1/connections/oauth/start", &key, Some(start.clone())).await;
    let code = query_param(&callback, "code");

    // A state this host did not issue.
    let forged = format!("{}/v1/oauth/callback?code={code}&state=forged0123456789", s.base);
    s.open(&forged).await.refused(StatusCode::BAD_REQUEST, "invalid_state", "unknown OAuth state");
    let no_state = format!("{}/v1/oauth/callback?code={code}", s.base);
    s.open(&no_state).await.refused(StatusCode::BAD_REQUEST, "invalid_state", "no `state`");
    assert_eq!(s.get("/v1/connections", &key).await.body["connections"], json!([]));

    // The real one works once; the same callback again is refused.
    let done = s.open(&callback).await;
    assert_eq!(done.status, StatusCode::CREATED, "{done:?}");
    s.open(&callback).await.refused(StatusCode::BAD_REQUEST, "invalid_state", "already used");
    assert_eq!(s.get("/v1/connections", &key).await.body["connections"].as_array().unwrap().len(), 1);

    // The partner reports a refusal: the state is spent, nothing is connected.
    let refused = s.consent("/v1/connections/oauth/start", &key, Some(start.clone())).await;
    let state = query_param(&refused, "state");
    let denied = format!("{}/v1/oauth/callback?state={state}&error=access_denied", s.base);
    s.open(&denied).await.refused(StatusCode::BAD_REQUEST, "oauth_failed", "access_denied");

    // A browser gets a page, not JSON.
    let page = s.consent("/v1/connections/oauth/start", &key, Some(start.clone())).await;
    let html = s.send(s.http.get(&page).header(header::ACCEPT, "text/html")).await;
    assert_eq!(html.status, StatusCode::CREATED);
    assert!(html.text.contains("<h1>Connected</h1>"), "{}", html.text);

    // Re-authorizing a connection that needs it replaces its credentials.
    let connection = done.body["connection"]["id"].as_str().unwrap().to_string();
    s.engine
        .store()
        .set_connection_health(&connection, Health::NeedsReauthorization, Some("token revoked"))
        .await
        .unwrap();
    let shown = s.get(&format!("/v1/connections/{connection}"), &key).await;
    assert_eq!(shown.body["health"], "needs_reauthorization");
    assert_eq!(shown.body["last_error"], "token revoked");
    let again = s.consent(&format!("/v1/connections/{connection}/oauth/start"), &key, None).await;
    let reconnected = s.open(&again).await;
    assert_eq!(reconnected.status, StatusCode::CREATED, "{reconnected:?}");
    assert_eq!(reconnected.body["reconnected"], true);
    assert_eq!(reconnected.body["connection"]["id"], connection.as_str());
    let shown = s.get(&format!("/v1/connections/{connection}"), &key).await;
    assert_eq!((shown.body["health"].as_str(), shown.body["credentials_version"].as_i64()), (Some("ok"), Some(2)));

    // An expired state.
    let quick = server_with(|state| state.state_ttl = Duration::ZERO).await;
    let (_, quick_key) = quick.workspace("Acme").await;
    let late = quick.consent("/v1/connections/oauth/start", &quick_key, Some(start)).await;
    quick.open(&late).await.refused(StatusCode::BAD_REQUEST, "invalid_state", "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_that_says_what_to_fix_and_changes_nothing() {
    let s = server().await;
    let (_, key) = s.workspace("Acme").await;
    let (_, other_key) = s.workspace("Other").await;
    let connection = s.connection(&key).await;
    let sync = s.sync(&key, &connection, "kept").await;
    let path = format!("/v1/syncs/{sync}/users");
    let intake = s.post(&path, &key, json!({"users": users("ok", 10)})).await;
    assert_eq!(intake.status, StatusCode::OK, "{intake:?}");
    let before = s.settled(&key, &sync).await;
    let json_type = Some("application/json");

    // Malformed JSON, wrong types, missing fields.
    s.post_raw(&path, &key, json_type, b"{\"users\": [".to_vec()).await.refused(
        StatusCode::BAD_REQUEST,
        "invalid_json",
        "line 1",
    );
    s.post_raw(&path, &key, json_type, b"".to_vec()).await.refused(StatusCode::BAD_REQUEST, "invalid_json", "empty");
    s.post(&path, &key, json!({"users": "everyone"})).await.refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        "users: invalid type: string",
    );
    let wrong_key = s.post(&path, &key, json!({"users": [{"key": 5, "identifiers": []}]})).await;
    wrong_key.refused(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "users[0].key: invalid type: integer");
    assert_eq!(wrong_key.body["error"]["problems"][0]["field"], "users[0].key");
    s.post(&path, &key, json!({"users": [{"identifiers": []}]})).await.refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        "missing field `key`",
    );
    s.post(&path, &key, json!({"user": []})).await.refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        "unknown field `user`",
    );

    // Non-UTF-8, and bodies that are not JSON at all.
    let latin1 = b"{\"users\": [{\"key\": \"caf\xe9\", \"identifiers\": []}]}".to_vec();
    s.post_raw(&path, &key, json_type, latin1).await.refused(
        StatusCode::BAD_REQUEST,
        "invalid_json",
        "not valid UTF-8",
    );
    let body = json!({"users": users("x", 1)}).to_string().into_bytes();
    s.post_raw(&path, &key, None, body.clone()).await.refused(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Content-Type: application/json",
    );
    s.post_raw(&path, &key, Some("text/plain"), body).await.refused(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "not JSON",
    );

    // A path that is not UTF-8 once decoded.
    let not_utf8 = s.post("/v1/syncs/sync_%FF/users", &key, json!({"users": users("x", 1)})).await;
    not_utf8.refused(StatusCode::BAD_REQUEST, "invalid_request", "ids are ASCII");

    // Unknown sync, another workspace's sync.
    s.post("/v1/syncs/sync_nope/users", &key, json!({"users": users("x", 1)})).await.refused(
        StatusCode::NOT_FOUND,
        "not_found",
        "sync_nope",
    );
    s.post(&path, &other_key, json!({"users": users("x", 1)})).await.refused(StatusCode::NOT_FOUND, "not_found", &sync);

    // Too large, too many, none.
    let huge = json!({"users": [{"key": "big", "identifiers": [{"kind": "email", "value": "x".repeat(MAX_BODY)}]}]});
    s.post(&path, &key, huge).await.refused(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "fewer users");
    s.post(&path, &key, json!({"users": users("many", 10_001)})).await.refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        "limit is 10000",
    );
    s.post(&path, &key, json!({"users": []})).await.refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        "no users",
    );

    // Users that cannot be taken: every problem at once, and nothing stored.
    let bad = json!({"users": [
        {"key": "fine", "identifiers": [{"kind": "email", "value": "fine@example.com"}]},
        {"key": "none", "identifiers": []},
        {"key": "blank", "identifiers": [{"kind": "email", "value": "  "}]},
        {"key": "odd", "identifiers": [{"kind": "fax", "value": "123"}]},
        {"key": " ", "identifiers": [{"kind": "email", "value": "k@example.com"}]},
        {"key": "long", "identifiers": [{"kind": "email", "value": "y".repeat(2000)}]}
    ]});
    let answer = s.post(&path, &key, bad).await;
    answer.refused(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "users[1].identifiers: empty");
    let fields: Vec<&str> =
        answer.body["error"]["problems"].as_array().unwrap().iter().map(|p| p["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "users[1].identifiers",
            "users[2].identifiers[0].value",
            "users[3].identifiers[0].kind",
            "users[4].key",
            "users[5].identifiers[0].value"
        ]
    );
    assert!(answer.message().contains("known: email, phone"), "{}", answer.message());
    let long = s
        .post(
            &path,
            &key,
            json!({"users": [{"key": "long", "identifiers": [{"kind": "email", "value": "y".repeat(2000)}]}]}),
        )
        .await;
    long.refused(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "longer than 1024 bytes");

    // Sync creation lists every problem at once.
    let empty = s.post("/v1/syncs", &key, json!({})).await;
    empty.refused(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "connection_id: missing");
    let fields: Vec<&str> =
        empty.body["error"]["problems"].as_array().unwrap().iter().map(|p| p["field"].as_str().unwrap()).collect();
    for field in ["connection_id", "account_id", "audience_name", "match_fields"] {
        assert!(fields.contains(&field), "{field} not in {fields:?}");
    }
    let body = json!({"connection_id": connection, "account_id": "a", "audience_name": "n", "match_fields": ["email", "shoe-size"], "action": "add"});
    s.post("/v1/syncs", &key, body).await.refused(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "shoe-size");
    let body = json!({"connection_id": connection, "account_id": "a", "audience_name": "n", "match_fields": ["email"], "action": "merge"});
    s.post("/v1/syncs", &key, body).await.refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        "unknown variant `merge`",
    );
    s.post("/v1/workspaces", OPERATOR, json!({"name": " "})).await.refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        "name: empty",
    );
    s.post("/v1/connections/oauth/start", &key, json!({"destination": "myspace", "name": ""})).await.refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        "this host has: pinterest",
    );
    s.get(&format!("/v1/connections/{connection}/accounts?cursor=a&cursor=b"), &key).await.refused(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "cursor",
    );

    // Routes and methods that do not exist.
    s.get("/v1/nothing-here", &key).await.refused(StatusCode::NOT_FOUND, "not_found", "/openapi.json");
    s.call(Method::PUT, "/v1/syncs", Some(&key), None).await.refused(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "PUT",
    );

    // After all that, the sync's counts have not moved.
    assert_eq!(s.settled(&key, &sync).await, before);
    assert_eq!(before["entered"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_and_probes_answer() {
    let s = server().await;
    let answer = s.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let document = answer.body;
    assert!(document["openapi"].as_str().unwrap_or("").starts_with('3'), "{document}");
    let served = [
        ("/v1/workspaces", &["get", "post"][..]),
        ("/v1/workspaces/{id}", &["get"]),
        ("/v1/workspaces/{id}/keys", &["get", "post"]),
        ("/v1/workspaces/{id}/keys/{key_id}", &["delete"]),
        ("/v1/workspace", &["get"]),
        ("/v1/destinations", &["get"]),
        ("/v1/connections", &["get", "post"]),
        ("/v1/connections/oauth/start", &["post"]),
        ("/v1/connections/{id}", &["delete", "get"]),
        ("/v1/connections/{id}/oauth/start", &["post"]),
        ("/v1/connections/{id}/accounts", &["get"]),
        ("/v1/connections/{id}/accounts/{account}/audiences", &["get"]),
        ("/v1/oauth/callback", &["get"]),
        ("/v1/syncs", &["get", "post"]),
        ("/v1/syncs/{id}", &["delete", "get"]),
        ("/v1/syncs/{id}/pause", &["post"]),
        ("/v1/syncs/{id}/resume", &["post"]),
        ("/v1/syncs/{id}/users", &["get", "post"]),
        ("/v1/syncs/{id}/users/{key}", &["get"]),
        ("/v1/syncs/{id}/users/retry", &["post"]),
        ("/v1/syncs/{id}/users/remove", &["post"]),
        ("/metrics", &["get"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
    ];
    let paths = document["paths"].as_object().expect("paths");
    let documented: Vec<&String> = paths.keys().filter(|p| p.starts_with("/v1")).collect();
    assert_eq!(documented.len(), served.iter().filter(|(p, _)| p.starts_with("/v1")).count(), "{documented:?}");
    for (path, methods) in served {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} is not documented"));
        let mut listed: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| methods.contains(k) || ["put", "patch"].contains(k))
            .collect();
        listed.sort();
        assert_eq!(listed, methods, "{path}");
    }
    // Every operation that takes a path id or a body says it may refuse control characters
    // (422); listing accounts says a foreign cursor is a 400.
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let takes_input = path.contains('{') || operation.get("requestBody").is_some();
            if takes_input {
                assert!(operation["responses"]["422"].is_object(), "{method} {path} does not document 422");
            }
        }
    }
    let accounts = &paths["/v1/connections/{id}/accounts"]["get"]["responses"]["400"]["description"];
    assert!(accounts.as_str().unwrap_or("").contains("invalid_cursor"), "{accounts}");
    assert!(document["components"]["securitySchemes"]["bearer"].is_object(), "bearer scheme declared");
    assert!(document["components"]["schemas"]["ErrorBody"].is_object());

    assert_eq!(s.call(Method::GET, "/healthz", None, None).await.body["status"], "ok");
    assert_eq!(s.call(Method::GET, "/readyz", None, None).await.body["status"], "ready");
    let anonymous = s.call(Method::GET, "/metrics", None, None).await;
    anonymous.refused(StatusCode::UNAUTHORIZED, "unauthorized", "Authorization");
}

/// The statuses an operation can answer because of its input are all in the document, so a
/// client generated from it (or schemathesis in CI) meets no undocumented status: a bearer key
/// (401, 403, 503), a path id (400, 404, 422), a JSON body (400, 408, 413, 415, 422). Every
/// error answer is documented as the `ErrorBody` shape. And the document's security is what
/// the server does: each keyed operation answers 401 without a key, each open one does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_documents_the_statuses_its_input_can_cause_and_its_limits() {
    let document = serde_json::to_value(audience_api::openapi()).unwrap();
    let s = server().await;
    let served = s.call(Method::GET, "/openapi.json", None, None).await.body;
    assert_eq!(served, document, "/openapi.json serves audience_api::openapi()");

    let paths = document["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let keyed = operation["security"]
                .as_array()
                .is_some_and(|requirements| requirements.iter().any(|r| r.as_object().is_some_and(|r| !r.is_empty())));
            let path_id = operation["parameters"]
                .as_array()
                .is_some_and(|parameters| parameters.iter().any(|p| p["in"] == "path"));
            let body = operation.get("requestBody").is_some();
            let mut expected = Vec::new();
            if keyed {
                expected.extend(["401", "403", "503"]);
            }
            if path_id {
                expected.extend(["400", "404", "422"]);
            }
            if body {
                expected.extend(["400", "408", "413", "415", "422"]);
            }
            let responses = operation["responses"].as_object().unwrap();
            for status in expected {
                assert!(responses.contains_key(status), "{method} {path} does not document {status}");
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {status}: {response}");
                }
            }

            // What the document says about keys is what the server does.
            let url = path.replace(['{', '}'], "");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let anonymous = s.call(method.clone(), &url, None, body.then(|| json!({}))).await;
            if keyed {
                anonymous.refused(StatusCode::UNAUTHORIZED, "unauthorized", "");
            } else {
                assert_ne!(
                    anonymous.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} is documented open: {anonymous:?}"
                );
            }
        }
    }
    assert!(operations >= 27, "{operations} operations");

    // The limits the server enforces are in the schemas.
    let schemas = &document["components"]["schemas"];
    let users = &schemas["EnterUsers"]["properties"]["users"];
    assert_eq!((users["minItems"].as_u64(), users["maxItems"].as_u64()), (Some(1), Some(10_000)), "{users}");
    let user = &schemas["UserIn"]["properties"];
    assert_eq!((user["key"]["minLength"].as_u64(), user["key"]["maxLength"].as_u64()), (Some(1), Some(256)));
    assert_eq!(user["identifiers"]["minItems"].as_u64(), Some(1));
    let identifier = &schemas["IdentifierIn"]["properties"];
    assert_eq!(identifier["kind"]["$ref"], "#/components/schemas/IdentifierKind", "{identifier}");
    assert_eq!(identifier["value"]["maxLength"].as_u64(), Some(1024));
    let kinds: Vec<&str> =
        schemas["IdentifierKind"]["enum"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    let all: Vec<&str> = audience_store::IdentifierKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(kinds, all);
    for schema in ["CreateWorkspace", "CreateKey", "StartOauth", "CreateConnection"] {
        let name = &schemas[schema]["properties"]["name"];
        assert_eq!((name["minLength"].as_u64(), name["maxLength"].as_u64()), (Some(1), Some(200)), "{schema}: {name}");
        assert!(schemas[schema]["required"].as_array().unwrap().contains(&json!("name")), "{schema}");
    }
    let sync = &schemas["CreateSync"];
    for field in ["connection_id", "account_id", "match_fields"] {
        assert!(sync["required"].as_array().unwrap().contains(&json!(field)), "CreateSync.{field}: {sync}");
    }
    assert_eq!(sync["properties"]["match_fields"]["items"]["$ref"], "#/components/schemas/IdentifierKind");
}
