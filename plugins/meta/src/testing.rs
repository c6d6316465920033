//! A scripted [`Host`] for native tests of the code that calls Meta.

use std::cell::RefCell;
use std::collections::VecDeque;

use audience_plugin_sdk::Host;
use audience_plugin_sdk::hashing::Normalization;
use audience_plugin_sdk::http::Response;
use audience_plugin_sdk::http_client::{HttpError, Request};
use audience_plugin_sdk::identity::sha256_hex_normalized;
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::pacing::Budget;
use audience_plugin_sdk::types::{Credentials, PluginConfig};

/// The access token of [`creds`].
pub const TOKEN: &str = "EAAG-secret-token";
/// The app secret of [`config`].
pub const SECRET: &str = "app-secret-value";

/// Answers requests from a script, in order, and records requests, log lines, hash calls and
/// budget readings.
#[derive(Default)]
pub struct FakeHost {
    script: RefCell<VecDeque<Result<Response, HttpError>>>,
    /// Requests sent, in order.
    pub sent: RefCell<Vec<Request>>,
    /// Log lines written, in order.
    pub logs: RefCell<Vec<(Level, String)>>,
    /// How many values each `sha256_hex` call hashed.
    pub hash_calls: RefCell<Vec<usize>>,
    /// Budget readings reported.
    pub budgets: RefCell<Vec<Budget>>,
}

impl FakeHost {
    /// A host that will answer with `script`, in order.
    pub fn new(script: Vec<Result<Response, HttpError>>) -> Self {
        Self { script: RefCell::new(script.into()), ..Self::default() }
    }

    /// The i-th request's method and URL.
    pub fn call(&self, i: usize) -> (String, String) {
        let sent = self.sent.borrow();
        (sent[i].method.clone(), sent[i].url.clone())
    }

    /// The i-th request's URL without its `access_token` and `appsecret_proof` parameters.
    pub fn url(&self, i: usize) -> String {
        let url = self.sent.borrow()[i].url.clone();
        let Some((path, query)) = url.split_once('?') else { return url };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| !p.starts_with("access_token=") && !p.starts_with("appsecret_proof="))
            .collect();
        if kept.is_empty() { path.to_string() } else { format!("{path}?{}", kept.join("&")) }
    }

    /// The i-th request's query or form parameter `name`, decoded.
    pub fn param(&self, i: usize, name: &str) -> Option<String> {
        let sent = self.sent.borrow();
        let request = &sent[i];
        let query = request.url.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default();
        let body = String::from_utf8_lossy(&request.body).to_string();
        [query, body]
            .iter()
            .flat_map(|s| s.split('&').map(str::to_string).collect::<Vec<_>>())
            .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .find(|(k, _)| k == name)
            .map(|(_, v)| decode(&v))
    }

    /// How many requests were sent.
    pub fn count(&self) -> usize {
        self.sent.borrow().len()
    }
}

/// Percent-decode a query or form value (`+` is a space).
pub fn decode(value: &str) -> String {
    crate::paging::decode(value)
}

impl Host for FakeHost {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        self.sent.borrow_mut().push(request.clone());
        self.script.borrow_mut().pop_front().unwrap_or_else(|| Err(HttpError::Connection("script exhausted".into())))
    }

    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }

    fn sha256_hex(&self, normalization: Normalization, values: &[String]) -> Vec<String> {
        self.hash_calls.borrow_mut().push(values.len());
        values.iter().map(|v| sha256_hex_normalized(normalization, v)).collect()
    }

    fn report_budget(&self, budget: Budget) {
        self.budgets.borrow_mut().push(budget);
    }
}

/// A 200 response with a JSON body.
pub fn ok(body: serde_json::Value) -> Result<Response, HttpError> {
    Ok(Response::new(200).with_body(body.to_string()))
}

/// A Graph error response.
pub fn fail(status: u16, code: i64, subcode: Option<i64>, message: &str) -> Result<Response, HttpError> {
    let mut error =
        serde_json::json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "TRACE1"});
    if let Some(sub) = subcode {
        error["error_subcode"] = sub.into();
    }
    Ok(Response::new(status).with_body(serde_json::json!({ "error": error }).to_string()))
}

/// A config pointing at a local sandbox, with `appsecret_proof` on (the default with a secret).
pub fn config() -> PluginConfig {
    PluginConfig {
        base_url: Some("http://sandbox.test".into()),
        client_id: Some("app-id".into()),
        client_secret: Some(SECRET.into()),
        settings: vec![("api_version".into(), "v25.0".into())],
    }
}

/// Credentials with a recognisable token.
pub fn creds() -> Credentials {
    Credentials {
        access_token: TOKEN.into(),
        refresh_token: None,
        expires_at: Some(4_000_000_000),
        renewable_until: Some(4_000_000_000),
        scopes: vec!["ads_management".into(), "ads_read".into(), "business_management".into()],
    }
}

/// Assert that no log line contains a secret of [`config`] or [`creds`].
pub fn assert_no_secrets_logged(host: &FakeHost) {
    for (_, line) in host.logs.borrow().iter() {
        for secret in [TOKEN, SECRET] {
            assert!(!line.contains(secret), "secret in log line: {line}");
        }
    }
}

/// Assert that `text` contains no secret of [`config`] or [`creds`].
pub fn assert_no_secrets(text: &str) {
    for secret in [TOKEN, SECRET] {
        assert!(!text.contains(secret), "secret in: {text}");
    }
}
