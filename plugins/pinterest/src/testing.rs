//! A scripted [`Host`] for native tests of the code that calls Pinterest.

use std::cell::RefCell;
use std::collections::VecDeque;

use audience_plugin_sdk::Host;
use audience_plugin_sdk::http::Response;
use audience_plugin_sdk::http_client::{HttpError, Request};
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::types::{Credentials, PluginConfig};

/// Answers requests from a script, in order, and records requests and log lines.
#[derive(Default)]
pub struct FakeHost {
    script: RefCell<VecDeque<Result<Response, HttpError>>>,
    /// Requests sent, in order.
    pub sent: RefCell<Vec<Request>>,
    /// Log lines written, in order.
    pub logs: RefCell<Vec<(Level, String)>>,
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

    /// The i-th request's JSON body.
    pub fn body(&self, i: usize) -> serde_json::Value {
        serde_json::from_slice(&self.sent.borrow()[i].body).unwrap_or(serde_json::Value::Null)
    }

    /// The i-th request's header `name`.
    pub fn header(&self, i: usize, name: &str) -> Option<String> {
        self.sent.borrow()[i].headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }

    /// The i-th request's URL after `http://sandbox.test/v5` (path and query).
    pub fn path(&self, i: usize) -> String {
        let url = self.call(i).1;
        url.strip_prefix("http://sandbox.test/v5").map_or_else(|| url.clone(), str::to_string)
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
}

/// A 200 response with a JSON body.
pub fn ok(body: serde_json::Value) -> Result<Response, HttpError> {
    Ok(Response::new(200).with_body(body.to_string()))
}

/// An error response with Pinterest's `{code, message}` body and a request id.
pub fn fail(status: u16, code: i64, message: &str) -> Result<Response, HttpError> {
    Ok(Response::new(status)
        .with_header("x-pinterest-rid", "rid-1")
        .with_body(serde_json::json!({"code": code, "message": message}).to_string()))
}

/// A config pointing at a local sandbox.
pub fn config() -> PluginConfig {
    PluginConfig {
        base_url: Some("http://sandbox.test".into()),
        client_id: Some("app-id".into()),
        client_secret: Some("app-secret-value".into()),
        settings: vec![],
    }
}

/// Credentials with a recognisable token.
pub fn creds() -> Credentials {
    Credentials {
        access_token: "pina_secret_token".into(),
        refresh_token: Some("pinr_secret_refresh".into()),
        expires_at: None,
        renewable_until: None,
        scopes: vec!["ads:read".into(), "ads:write".into()],
    }
}

/// Assert that no log line contains a secret from [`config`] or [`creds`].
pub fn assert_no_secrets_logged(host: &FakeHost) {
    for (_, line) in host.logs.borrow().iter() {
        for secret in ["pina_secret_token", "pinr_secret_refresh", "app-secret-value"] {
            assert!(!line.contains(secret), "secret in log line: {line}");
        }
    }
}
