//! Shared set-up for the sandbox's HTTP tests: a started sandbox, a client, a token.

#![allow(dead_code)]

use audience_sandbox::{PinterestSandbox, SandboxConfig, SandboxHandle, TokenPair};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::Value;

/// A running sandbox with a client and a full-scope token pair.
pub struct Env {
    pub sandbox: PinterestSandbox,
    pub handle: SandboxHandle,
    pub http: Client,
    pub tokens: TokenPair,
}

/// Defaults, but without the rate limit (tests that need it turn it back on).
pub fn unlimited() -> SandboxConfig {
    SandboxConfig { rate_limit_per_second: None, ..SandboxConfig::default() }
}

pub async fn start(config: SandboxConfig) -> Env {
    let sandbox = PinterestSandbox::start(config).await.expect("sandbox starts");
    let handle = sandbox.handle();
    let tokens = handle.issue_tokens(&["ads:read", "ads:write"]);
    let http = Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client builds");
    Env { sandbox, handle, http, tokens }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    pub fn account(&self) -> String {
        self.handle.ad_account_ids()[0].clone()
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(&self.tokens.access_token)
    }

    pub fn post(&self, path: &str, body: Value) -> RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(&self.tokens.access_token).json(&body)
    }

    pub fn patch(&self, path: &str, body: Value) -> RequestBuilder {
        self.http.patch(self.url(path)).bearer_auth(&self.tokens.access_token).json(&body)
    }

    /// Creates a customer list over HTTP and returns its id.
    pub async fn create_list(&self, name: &str, records: &[&str]) -> String {
        let path = format!("/v5/ad_accounts/{}/customer_lists", self.account());
        let body = serde_json::json!({"name": name, "records": records.join(","), "list_type": "EMAIL"});
        let (status, json) = send(self.post(&path, body)).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json["id"].as_str().expect("list id").to_owned()
    }
}

/// Sends and returns status and JSON body (`Value::Null` when the body is not JSON).
pub async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response: Response = request.send().await.expect("request is answered");
    let status = response.status();
    let bytes = response.bytes().await.expect("body is read");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A lowercase SHA-256-shaped hex string derived from `n`.
pub fn hashed(n: usize) -> String {
    format!("{n:064x}")
}
