//! Helpers for the tests that run `audience-host serve` as separate processes.
#![allow(dead_code)]

use std::path::Path;

use audience_host::host_process;
use audience_sandbox::SandboxHandle;
use serde_json::{Value, json};

/// The operator key every test host is started with.
pub const OPERATOR_KEY: &str = "process-test-operator-key";

pub use audience_host::host_process::HostProcess;

/// A free loopback port.
pub fn free_port() -> u16 {
    host_process::free_port().expect("a free port")
}

/// Start `audience-host serve --config CONFIG`, with the secrets the test configs name in
/// the environment (`TEST_CREDENTIALS_KEY`, `TEST_OPERATOR_KEY`, `TEST_PINTEREST_SECRET`).
pub fn spawn_host(config: &Path) -> HostProcess {
    let env = [
        ("TEST_CREDENTIALS_KEY", "11".repeat(32)),
        ("TEST_OPERATOR_KEY", OPERATOR_KEY.to_string()),
        ("TEST_PINTEREST_SECRET", SandboxHandle::DEFAULT_CLIENT_SECRET.to_string()),
    ];
    HostProcess::spawn(Path::new(env!("CARGO_BIN_EXE_audience-host")), config, &env).expect("the host starts")
}

/// Wait until `{base}/readyz` answers 2xx (at most a minute).
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    host_process::wait_ready(client, base).await.expect("the host becomes ready");
}

/// One API call that must succeed; its JSON answer.
pub async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> Value {
    host_process::call(client, method, url, key, body).await.unwrap_or_else(|e| panic!("{e:#}"))
}

/// The `[plugins.pinterest]` section pointing at a sandbox.
pub fn pinterest_section(sandbox_base_url: &str) -> String {
    host_process::pinterest_section(sandbox_base_url, "TEST_PINTEREST_SECRET")
}

/// Create a workspace through `base` with the operator key; its API key.
pub async fn create_workspace(client: &reqwest::Client, base: &str, name: &str) -> String {
    let created =
        call(client, reqwest::Method::POST, format!("{base}/v1/workspaces"), OPERATOR_KEY, Some(json!({"name": name})))
            .await;
    created["api_key"]["key"].as_str().expect("a workspace key").to_string()
}

/// A new partner token from the sandbox, a connection holding it and an add-sync by email
/// into a new audience called `audience`, all made through `base`. The token's access token
/// and the sync's id.
pub async fn connect_and_sync(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    sandbox: &SandboxHandle,
    account: &str,
    audience: &str,
) -> (String, String) {
    let pair = sandbox.issue_tokens(&["ads:read", "ads:write"]);
    let connection = call(
        client,
        reqwest::Method::POST,
        format!("{base}/v1/connections"),
        key,
        Some(json!({"destination": "pinterest", "name": format!("token for {audience}"),
                    "credentials": {"access_token": pair.access_token, "refresh_token": pair.refresh_token}})),
    )
    .await;
    let sync = call(
        client,
        reqwest::Method::POST,
        format!("{base}/v1/syncs"),
        key,
        Some(json!({"connection_id": connection["id"], "account_id": account,
                    "audience_name": audience, "action": "add", "match_fields": ["email"]})),
    )
    .await;
    (pair.access_token, sync["id"].as_str().expect("a sync id").to_string())
}

/// Enter users identified by these emails (each its own key) into a sync through `base`.
pub async fn enter_emails(client: &reqwest::Client, base: &str, key: &str, sync: &str, emails: &[String]) {
    let users: Vec<Value> =
        emails.iter().map(|e| json!({"key": e, "identifiers": [{"kind": "email", "value": e}]})).collect();
    call(client, reqwest::Method::POST, format!("{base}/v1/syncs/{sync}/users"), key, Some(json!({ "users": users })))
        .await;
}
