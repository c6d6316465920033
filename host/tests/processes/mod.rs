//! Helpers for the tests that run `audience-host serve` as separate processes.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use audience_sandbox::SandboxHandle;
use serde_json::{Value, json};

/// The operator key every test host is started with.
pub const OPERATOR_KEY: &str = "process-test-operator-key";

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A host process; killed when dropped, so a failing test leaves no process behind.
pub struct HostProcess(Child);

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl HostProcess {
    /// SIGKILL, and reap.
    pub fn kill_now(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reaped");
    }

    /// SIGTERM (a graceful stop), and wait for the process to exit.
    pub fn terminate(&mut self) {
        let status = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status().expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        let exit = self.0.wait().expect("reaped");
        assert!(exit.success(), "the host exited with {exit} after SIGTERM");
    }
}

/// Start `audience-host serve --config CONFIG`, with the secrets the test configs name in
/// the environment (`TEST_CREDENTIALS_KEY`, `TEST_OPERATOR_KEY`, `TEST_PINTEREST_SECRET`).
pub fn spawn_host(config: &Path) -> HostProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_audience-host"))
        .args(["serve", "--config"])
        .arg(config)
        .env("TEST_CREDENTIALS_KEY", "11".repeat(32))
        .env("TEST_OPERATOR_KEY", OPERATOR_KEY)
        .env("TEST_PINTEREST_SECRET", SandboxHandle::DEFAULT_CLIENT_SECRET)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the host starts");
    HostProcess(child)
}

/// Wait until `{base}/readyz` answers 2xx (at most a minute).
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the host at {base} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One API call that must succeed; its JSON answer.
pub async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> Value {
    let mut request = client.request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the host answers");
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {value}");
    value
}

/// A metric's value in Prometheus text, or 0 when absent. `selector` is a name (summed over
/// its label sets) or a name with its labels as printed (`name{label="value"}`).
pub fn metric(text: &str, selector: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.strip_prefix(selector).is_some_and(|rest| rest.starts_with([' ', '{'])))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The `[plugins.pinterest]` section pointing at a sandbox.
pub fn pinterest_section(sandbox_base_url: &str) -> String {
    let host_port = sandbox_base_url.trim_start_matches("http://");
    format!(
        r#"
[plugins.pinterest]
component = "builtin:pinterest"
base_url = "{sandbox_base_url}"
client_id = "{client_id}"
client_secret = {{ env = "TEST_PINTEREST_SECRET" }}
plain_http_hosts = ["{host_port}"]
"#,
        client_id = SandboxHandle::DEFAULT_CLIENT_ID,
    )
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
