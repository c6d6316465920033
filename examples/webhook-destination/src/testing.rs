//! A scripted [`Host`] for the native tests.

use std::cell::RefCell;

use audience_plugin_sdk::Host;
use audience_plugin_sdk::http::Response;
use audience_plugin_sdk::http_client::{HttpError, Request};
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::pacing::Budget;
use audience_plugin_sdk::types::{Credentials, PluginConfig, PreparedUser};
use audience_plugin_sdk::{build, kinds};

/// A host that answers from a script and remembers requests, log lines and budget readings.
pub struct FakeHost {
    pub answers: RefCell<Vec<Result<Response, HttpError>>>,
    pub requests: RefCell<Vec<Request>>,
    pub logs: RefCell<Vec<String>>,
    pub budgets: RefCell<Vec<Budget>>,
}

impl FakeHost {
    pub fn new(answers: Vec<Result<Response, HttpError>>) -> Self {
        Self {
            answers: RefCell::new(answers),
            requests: RefCell::default(),
            logs: RefCell::default(),
            budgets: RefCell::default(),
        }
    }

    pub fn header(&self, i: usize, name: &str) -> Option<String> {
        self.requests.borrow()[i].headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }
}

impl Host for FakeHost {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        self.requests.borrow_mut().push(request.clone());
        let mut answers = self.answers.borrow_mut();
        if answers.is_empty() { Err(HttpError::Connection("no scripted answer".into())) } else { answers.remove(0) }
    }

    fn log(&self, _level: Level, message: &str) {
        self.logs.borrow_mut().push(message.to_string());
    }

    fn report_budget(&self, budget: Budget) {
        self.budgets.borrow_mut().push(budget);
    }
}

pub fn config() -> PluginConfig {
    PluginConfig {
        base_url: Some("http://receiver.test/".into()),
        client_id: None,
        client_secret: Some("shh-secret".into()),
        settings: vec![],
    }
}

pub fn creds() -> Credentials {
    build::access_token("tok-123")
}

pub fn users(n: usize) -> Vec<PreparedUser> {
    (0..n)
        .map(|i| PreparedUser {
            key: format!("k{i}"),
            identifiers: vec![audience_plugin_sdk::types::Identifier {
                kind: kinds::EXTERNAL_ID.into(),
                value: format!("crm-{i}"),
            }],
            consent: None,
        })
        .collect()
}
