//! A scripted [`Host`] for native tests of the code that calls Google.

use std::cell::RefCell;
use std::collections::VecDeque;

use audience_plugin_sdk::Host;
use audience_plugin_sdk::hashing::Normalization;
use audience_plugin_sdk::http::Response;
use audience_plugin_sdk::http_client::{HttpError, Request};
use audience_plugin_sdk::identity::sha256_hex_normalized;
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::types::{Credentials, PluginConfig};
use serde_json::{Value, json};

/// The access token of [`creds`].
pub const TOKEN: &str = "ya29.secret-access-token";
/// The refresh token of [`creds`].
pub const REFRESH: &str = "1//secret-refresh-token";
/// The client secret of [`config`].
pub const SECRET: &str = "GOCSPX-secret-client";

/// Answers requests from a script, in order, and records requests, log lines and hash calls.
#[derive(Default)]
pub struct FakeHost {
    script: RefCell<VecDeque<Result<Response, HttpError>>>,
    /// Requests sent, in order.
    pub sent: RefCell<Vec<Request>>,
    /// Log lines written, in order.
    pub logs: RefCell<Vec<(Level, String)>>,
    /// How many values each `sha256_hex` call hashed.
    pub hash_calls: RefCell<Vec<usize>>,
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

    /// The i-th request's header `name`.
    pub fn header(&self, i: usize, name: &str) -> Option<String> {
        self.sent.borrow()[i].headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }

    /// The i-th request's body as JSON.
    pub fn json(&self, i: usize) -> Value {
        serde_json::from_slice(&self.sent.borrow()[i].body).unwrap_or(Value::Null)
    }

    /// The i-th request's body as text.
    pub fn body(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.sent.borrow()[i].body).into_owned()
    }

    /// How many requests were sent.
    pub fn count(&self) -> usize {
        self.sent.borrow().len()
    }
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
}

/// A 200 response with a JSON body.
pub fn ok(body: Value) -> Result<Response, HttpError> {
    Ok(Response::new(200).with_body(body.to_string()))
}

/// A `google.rpc.Status` error with an `ErrorInfo` of `reason` (when given) and `extra` details.
pub fn fail(status: u16, canonical: &str, reason: Option<&str>, extra: Vec<Value>) -> Result<Response, HttpError> {
    let mut details = Vec::new();
    if let Some(reason) = reason {
        details.push(json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                            "domain": "datamanager.googleapis.com", "metadata": {"requestId": "err-req"}}));
    }
    details.extend(extra);
    let body = json!({"error": {"code": status, "message": format!("{canonical} from the fake"), "status": canonical,
                                "details": details}});
    Ok(Response::new(status).with_body(body.to_string()))
}

/// A config pointing at a sandbox.
pub fn config() -> PluginConfig {
    PluginConfig {
        base_url: Some("http://sandbox.test".into()),
        client_id: Some("client-id.apps.googleusercontent.com".into()),
        client_secret: Some(SECRET.into()),
        settings: vec![],
    }
}

/// Credentials with recognisable tokens and both scopes.
pub fn creds() -> Credentials {
    Credentials {
        access_token: TOKEN.into(),
        refresh_token: Some(REFRESH.into()),
        expires_at: Some(4_000_000_000),
        renewable_until: None,
        scopes: crate::manifest::SCOPES.map(str::to_string).to_vec(),
    }
}

/// Assert that no log line contains a secret of [`config`] or [`creds`].
pub fn assert_no_secrets_logged(host: &FakeHost) {
    for (_, line) in host.logs.borrow().iter() {
        assert_no_secrets(line);
    }
}

/// Assert that `text` contains no secret of [`config`] or [`creds`].
pub fn assert_no_secrets(text: &str) {
    for secret in [TOKEN, REFRESH, SECRET] {
        assert!(!text.contains(secret), "secret in: {text}");
    }
}
