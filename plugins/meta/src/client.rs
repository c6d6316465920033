//! The thin layer that talks to the Graph API through the host.
//!
//! Everything that touches the network goes through [`Client`]: it sends a built request via a
//! [`Host`] (the component's imports in production, a scripted fake in tests), reports the
//! usage headers of **every** response to the host's pacing import, turns transport failures
//! and Graph errors into `destination-error` ([`crate::errors`]), and logs each failure with
//! Meta's `fbtrace_id`. [`Graph`] adds the connection's token: `access_token` (and, when
//! enabled, `appsecret_proof`) as a query parameter on GET and a form field otherwise, as Graph
//! documents; the endpoint methods only assemble paths and parameters.
//!
//! No line logged or message returned contains a token or secret: log lines are built from the
//! call, status, codes and trace id only, and every message that could carry text from
//! elsewhere (a transport error, Meta's own words) has the connection's secrets replaced with
//! `<redacted>`.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::http::{RequestBuilder, Response, http_failure, retry_after_ms};
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::pacing::Budget;
use audience_plugin_sdk::types::{Credentials, DestinationError, PluginConfig};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::config::{appsecret_proof, graph_root};
use crate::errors::{Call, Context, GraphError, map_error};
use crate::form::Form;
use crate::paging::{Page, page};
use crate::payload::Operation;
use crate::usage;
use crate::wire::{self, AdAccount, Created, CustomAudience, Paged, UsersPayload, UsersResponse, UsersSession};

/// The page size asked of Graph listings.
pub const PAGE_LIMIT: &str = "100";

/// A failed call: the error for the host, with Graph's code and subcode when it gave any.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The error.
    pub error: DestinationError,
    /// Graph's `code`.
    pub code: Option<i64>,
    /// Graph's `error_subcode`.
    pub subcode: Option<i64>,
}

impl From<Failure> for DestinationError {
    fn from(failure: Failure) -> Self {
        failure.error
    }
}

impl From<DestinationError> for Failure {
    fn from(error: DestinationError) -> Self {
        Failure { error, code: None, subcode: None }
    }
}

/// `appsecret_proof`: the lowercase hex HMAC-SHA256 of `token` keyed with `secret`.
pub fn appsecret_proof_of(token: &str, secret: &str) -> String {
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(token.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => String::new(),
    }
}

/// Replace every secret in `text` with `<redacted>`.
fn redact(text: &str, secrets: &[String]) -> String {
    secrets.iter().filter(|s| s.len() >= 4).fold(text.to_string(), |t, s| t.replace(s.as_str(), "<redacted>"))
}

fn redact_error(error: DestinationError, secrets: &[String]) -> DestinationError {
    use DestinationError as E;
    match error {
        E::RateLimited(ms) => E::RateLimited(ms),
        E::Unauthorized(m) => E::Unauthorized(redact(&m, secrets)),
        E::NotFound(m) => E::NotFound(redact(&m, secrets)),
        E::InvalidRequest(m) => E::InvalidRequest(redact(&m, secrets)),
        E::ActionRequired(m) => E::ActionRequired(redact(&m, secrets)),
        E::Transient(m) => E::Transient(redact(&m, secrets)),
        E::RejectedUsers(mut users) => {
            for user in &mut users {
                user.reason = redact(&user.reason, secrets);
            }
            E::RejectedUsers(users)
        }
    }
}

/// Sends requests to the Graph API through the host.
pub struct Client<'a> {
    host: &'a dyn Host,
    root: String,
    secrets: Vec<String>,
}

impl<'a> Client<'a> {
    /// A client for the Graph root configured in `config` (a malformed `api_version` is
    /// `invalid-request`).
    pub fn new(host: &'a dyn Host, config: &PluginConfig) -> Result<Self, DestinationError> {
        let secrets = config.client_secret.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        Ok(Self { host, root: graph_root(config)?, secrets })
    }

    /// Never let `secret` into a message.
    pub fn add_secret(&mut self, secret: &str) {
        if !secret.is_empty() {
            self.secrets.push(secret.to_string());
        }
    }

    /// The host, for logging.
    pub fn host(&self) -> &'a dyn Host {
        self.host
    }

    /// The absolute URL of `path` (which starts with `/`) under the versioned root.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }

    /// Log a line (never with secrets: it is redacted first).
    pub fn log(&self, level: Level, message: &str) {
        self.host.log(level, &redact(message, &self.secrets));
    }

    /// Send `request` for `call`; a transport failure or a Graph error becomes a [`Failure`].
    /// `account` (the bare number) goes into the terms link of a terms error.
    pub fn execute(&self, call: Call, request: RequestBuilder, account: Option<&str>) -> Result<Response, Failure> {
        let response = request.header("accept", "application/json").send_via(self.host).map_err(|e| {
            let error = redact_error(http_failure(&e), &self.secrets);
            self.log(Level::Warn, &format!("Meta: could not {}: {}", call.what, message_of(&error)));
            Failure::from(error)
        })?;
        let usage = usage::parse(&response);
        if let Some(usage) = usage {
            self.host
                .report_budget(Budget { used_percent: usage.used_percent, regain_after_ms: usage.regain_after_ms });
        }
        let graph_error = GraphError::parse(&response.body);
        if response.is_success() && graph_error.is_none() {
            return Ok(response);
        }
        let context = Context {
            account,
            usage_wait_ms: usage.and_then(|u| u.throttle_wait_ms()),
            retry_after_ms: response.header("retry-after").and_then(retry_after_ms),
        };
        let error = redact_error(map_error(call, response.status, graph_error.as_ref(), context), &self.secrets);
        let code = graph_error.as_ref().and_then(|e| e.code);
        let subcode = graph_error.as_ref().and_then(|e| e.error_subcode);
        self.log(
            Level::Warn,
            &format!(
                "Meta: could not {}: HTTP {}, code {}{}, fbtrace_id {}",
                call.what,
                response.status,
                code.map_or_else(|| "none".to_string(), |c| c.to_string()),
                subcode.map_or_else(String::new, |s| format!("/{s}")),
                graph_error.as_ref().and_then(|e| e.fbtrace_id.as_deref()).unwrap_or("none"),
            ),
        );
        Err(Failure { error, code, subcode })
    }

    /// [`execute`](Self::execute), then decode the JSON body. An unreadable 2xx body is
    /// `transient`: it is most likely a truncated or garbled answer.
    pub fn json<T: DeserializeOwned>(
        &self,
        call: Call,
        request: RequestBuilder,
        account: Option<&str>,
    ) -> Result<T, Failure> {
        let response = self.execute(call, request, account)?;
        response.json().map_err(|e| {
            let message = format!("Meta sent an unreadable answer when asked to {}: {e}", call.what);
            self.log(Level::Warn, &message);
            Failure::from(DestinationError::Transient(message))
        })
    }
}

/// The human part of an error, for log lines.
pub fn message_of(err: &DestinationError) -> String {
    match err {
        DestinationError::RateLimited(ms) => format!("rate limited (wait {ms:?} ms)"),
        DestinationError::Unauthorized(m)
        | DestinationError::NotFound(m)
        | DestinationError::InvalidRequest(m)
        | DestinationError::ActionRequired(m)
        | DestinationError::Transient(m) => m.clone(),
        DestinationError::RejectedUsers(users) => format!("{} user(s) refused the whole request", users.len()),
    }
}

/// The Graph API as the holder of one access token.
pub struct Graph<'a> {
    client: Client<'a>,
    token: &'a str,
    proof: Option<String>,
}

impl<'a> Graph<'a> {
    /// The API for `creds` under `config`; an empty token is `unauthorized`.
    pub fn new(host: &'a dyn Host, config: &PluginConfig, creds: &'a Credentials) -> Result<Self, DestinationError> {
        Self::with_token(host, config, &creds.access_token)
    }

    /// The API for the access token `token`.
    pub fn with_token(host: &'a dyn Host, config: &PluginConfig, token: &'a str) -> Result<Self, DestinationError> {
        if token.trim().is_empty() {
            return Err(DestinationError::Unauthorized(
                "no access token: the connection needs to be authorized".into(),
            ));
        }
        let mut client = Client::new(host, config)?;
        client.add_secret(token);
        let proof = match config.client_secret.as_deref().map(str::trim) {
            Some(secret) if appsecret_proof(config) => Some(appsecret_proof_of(token, secret)),
            _ => None,
        };
        if let Some(proof) = &proof {
            client.add_secret(proof);
        }
        Ok(Self { client, token, proof })
    }

    /// The underlying client.
    pub fn client(&self) -> &Client<'a> {
        &self.client
    }

    fn auth(&self) -> Vec<(&'static str, String)> {
        let mut auth = vec![("access_token", self.token.to_string())];
        if let Some(proof) = &self.proof {
            auth.push(("appsecret_proof", proof.clone()));
        }
        auth
    }

    /// `GET {path}?{query}&access_token=..`.
    pub fn get<T: DeserializeOwned>(
        &self,
        call: Call,
        path: &str,
        query: &[(&str, &str)],
        account: Option<&str>,
    ) -> Result<T, Failure> {
        let mut request = RequestBuilder::get(self.client.url(path));
        for (name, value) in query {
            request = request.query(name, value);
        }
        for (name, value) in self.auth() {
            request = request.query(name, &value);
        }
        self.client.json(call, request, account)
    }

    /// `{method} {path}` with a form body of `fields` and the token.
    pub fn send_form<T: DeserializeOwned>(
        &self,
        call: Call,
        method: &str,
        path: &str,
        fields: &[(&str, String)],
        account: Option<&str>,
    ) -> Result<T, Failure> {
        let mut form: Vec<(&str, String)> = fields.to_vec();
        form.extend(self.auth());
        let request = RequestBuilder::new(method, self.client.url(path)).form(&form);
        self.client.json(call, request, account)
    }

    /// `GET /me/adaccounts?fields=..&limit=100[&after=..]`.
    pub fn ad_accounts(&self, after: Option<&str>) -> Result<Page<AdAccount>, Failure> {
        let mut query = vec![("fields", wire::AD_ACCOUNT_FIELDS), ("limit", PAGE_LIMIT)];
        if let Some(after) = after {
            query.push(("after", after));
        }
        let paged: Paged<AdAccount> = self.get(Call::LIST_AD_ACCOUNTS, "/me/adaccounts", &query, None)?;
        Ok(page(paged)?)
    }

    /// `GET /act_<n>?fields=..`.
    pub fn ad_account(&self, account: &str, fields: &str) -> Result<AdAccount, Failure> {
        self.get(Call::READ_AD_ACCOUNT, &format!("/act_{account}"), &[("fields", fields)], Some(account))
    }

    /// `GET /act_<n>/customaudiences?fields=..&limit=100[&after=..]`.
    pub fn audiences(&self, account: &str, after: Option<&str>) -> Result<Page<CustomAudience>, Failure> {
        let mut query = vec![("fields", wire::AUDIENCE_FIELDS), ("limit", PAGE_LIMIT)];
        if let Some(after) = after {
            query.push(("after", after));
        }
        let path = format!("/act_{account}/customaudiences");
        let paged: Paged<CustomAudience> = self.get(Call::LIST_AUDIENCES, &path, &query, Some(account))?;
        Ok(page(paged)?)
    }

    /// `GET /<audience_id>?fields=..`.
    pub fn audience(&self, id: &str, account: Option<&str>) -> Result<CustomAudience, Failure> {
        self.get(Call::READ_AUDIENCE, &format!("/{id}"), &[("fields", wire::AUDIENCE_FIELDS)], account)
    }

    /// `POST /act_<n>/customaudiences` with `name`, `subtype=CUSTOM`,
    /// `customer_file_source=USER_PROVIDED_ONLY` and the description, if any.
    pub fn create_audience(&self, account: &str, name: &str, description: Option<&str>) -> Result<Created, Failure> {
        let mut fields = vec![
            ("name", name.to_string()),
            ("subtype", "CUSTOM".to_string()),
            ("customer_file_source", "USER_PROVIDED_ONLY".to_string()),
        ];
        if let Some(description) = description.filter(|d| !d.trim().is_empty()) {
            fields.push(("description", description.to_string()));
        }
        let path = format!("/act_{account}/customaudiences");
        self.send_form(Call::CREATE_AUDIENCE, "POST", &path, &fields, Some(account))
    }

    /// `POST` / `DELETE /<audience_id>/users` with the `payload` and `session` JSON.
    ///
    /// The body is encoded once, into a buffer of exactly its size ([`users_body`]): a batch
    /// of 10,000 rows is about ten megabytes of it.
    pub fn users(
        &self,
        operation: Operation,
        audience: &str,
        payload: &UsersPayload<'_>,
        session: &UsersSession,
        account: &str,
    ) -> Result<UsersResponse, Failure> {
        let call = match operation {
            Operation::Add => Call::ADD_USERS,
            Operation::Remove => Call::REMOVE_USERS,
        };
        let body = users_body(payload, session, self.token, self.proof.as_deref()).map_err(|e| {
            Failure::from(DestinationError::InvalidRequest(format!("could not encode the users payload: {e}")))
        })?;
        let request = RequestBuilder::new(operation.method(), self.client.url(&format!("/{audience}/users")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.client.json(call, request, Some(account))
    }
}

impl Graph<'_> {
    /// The length of the [`users_body`] of `payload` and `session` (nothing is built).
    pub fn users_body_len(
        &self,
        payload: &UsersPayload<'_>,
        session: &UsersSession,
    ) -> Result<usize, DestinationError> {
        users_form(payload, session, self.token, self.proof.as_deref())
            .len()
            .map_err(|e| DestinationError::InvalidRequest(format!("could not encode the users payload: {e}")))
    }
}

fn users_form<'a>(
    payload: &'a UsersPayload<'_>,
    session: &'a UsersSession,
    token: &'a str,
    proof: Option<&'a str>,
) -> Form<'a> {
    let mut form = Form::default();
    form.json("payload", payload).json("session", session).text("access_token", token);
    if let Some(proof) = proof {
        form.text("appsecret_proof", proof);
    }
    form
}

/// The form body of a `/users` request: `payload`, `session`, `access_token` and, when used,
/// `appsecret_proof`, in that order.
pub fn users_body(
    payload: &UsersPayload<'_>,
    session: &UsersSession,
    token: &str,
    proof: Option<&str>,
) -> Result<Vec<u8>, serde_json::Error> {
    users_form(payload, session, token, proof).body()
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::http_client::HttpError;
    use serde_json::json;

    use super::*;
    use crate::testing::{
        FakeHost, SECRET, TOKEN, assert_no_secrets, assert_no_secrets_logged, config, creds, fail, ok,
    };

    #[test]
    fn appsecret_proof_is_hmac_sha256_hex() {
        // RFC 4231 test case 2: HMAC-SHA256(key "Jefe", "what do ya want for nothing?").
        assert_eq!(
            appsecret_proof_of("what do ya want for nothing?", "Jefe"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn get_carries_the_token_and_proof_in_the_query() {
        let host = FakeHost::new(vec![ok(json!({"id": "act_1", "name": "Acme"}))]);
        let creds = creds();
        let graph = Graph::new(&host, &config(), &creds).unwrap();
        let account = graph.ad_account("1", "id,name").unwrap();
        assert_eq!(account.name.as_deref(), Some("Acme"));
        assert_eq!(host.url(0), "http://sandbox.test/v25.0/act_1?fields=id%2Cname");
        assert_eq!(host.param(0, "access_token").as_deref(), Some(TOKEN));
        assert_eq!(host.param(0, "appsecret_proof"), Some(appsecret_proof_of(TOKEN, SECRET)));
        let mut off = config();
        off.settings.push(("appsecret_proof".into(), "off".into()));
        let host = FakeHost::new(vec![ok(json!({"id": "act_1"}))]);
        Graph::new(&host, &off, &creds).unwrap().ad_account("1", "id").unwrap();
        assert_eq!(host.param(0, "appsecret_proof"), None);
    }

    #[test]
    fn usage_is_reported_on_every_response() {
        let usage = r#"{"1": [{"type": "custom_audience", "call_count": 80, "total_cputime": 5, "total_time": 5,
                         "estimated_time_to_regain_access": 3}]}"#;
        let throttled = Response::new(400)
            .with_header("x-business-use-case-usage", usage)
            .with_body(json!({"error": {"message": "limit", "code": 80003, "error_subcode": 2446079}}).to_string());
        let host = FakeHost::new(vec![
            Ok(Response::new(200).with_header("x-app-usage", r#"{"call_count": 12}"#).with_body(r#"{"id":"act_1"}"#)),
            Ok(throttled),
        ]);
        let creds = creds();
        let graph = Graph::new(&host, &config(), &creds).unwrap();
        assert!(graph.ad_account("1", "id").is_ok());
        let err = graph.ad_account("1", "id").unwrap_err();
        assert_eq!(err.error, DestinationError::RateLimited(Some(180_000)));
        assert_eq!((err.code, err.subcode), (Some(80003), Some(2446079)));
        let budgets = host.budgets.borrow();
        assert_eq!(budgets.len(), 2);
        assert_eq!((budgets[0].used_percent, budgets[0].regain_after_ms), (12.0, None));
        assert_eq!((budgets[1].used_percent, budgets[1].regain_after_ms), (100.0, Some(180_000)));
    }

    #[test]
    fn failures_are_logged_with_the_trace_id_and_never_a_secret() {
        let host = FakeHost::new(vec![
            fail(400, 190, Some(463), &format!("token {TOKEN} expired")),
            Err(HttpError::Connection(format!("reset while sending access_token={TOKEN}"))),
            Ok(Response::new(200).with_body("<html>")),
        ]);
        let creds = creds();
        let graph = Graph::new(&host, &config(), &creds).unwrap();
        let expired = graph.ad_account("1", "id").unwrap_err();
        assert!(
            matches!(&expired.error, DestinationError::Unauthorized(m) if m.contains("fbtrace_id TRACE1") && m.contains("<redacted>"))
        );
        let reset = graph.ad_account("1", "id").unwrap_err();
        assert!(matches!(&reset.error, DestinationError::Transient(_)));
        let garbled = graph.ad_account("1", "id").unwrap_err();
        assert!(matches!(&garbled.error, DestinationError::Transient(m) if m.contains("unreadable")));
        for failure in [expired, reset, garbled] {
            assert_no_secrets(&message_of(&failure.error));
        }
        assert!(host.logs.borrow()[0].1.contains("code 190/463, fbtrace_id TRACE1"));
        assert_eq!(host.logs.borrow().len(), 3);
        assert_no_secrets_logged(&host);
    }

    #[test]
    fn an_error_body_in_a_200_is_an_error_and_empty_tokens_send_nothing() {
        let host = FakeHost::new(vec![ok(json!({"error": {"message": "x", "code": 100, "error_subcode": 33}}))]);
        let creds = creds();
        let graph = Graph::new(&host, &config(), &creds).unwrap();
        assert!(matches!(graph.audience("5", None).unwrap_err().error, DestinationError::NotFound(_)));
        let mut empty = creds.clone();
        empty.access_token = " ".into();
        assert!(matches!(Graph::new(&host, &config(), &empty), Err(DestinationError::Unauthorized(_))));
        assert_eq!(host.count(), 1);
    }

    #[test]
    fn forms_carry_the_token() {
        let host = FakeHost::new(vec![ok(json!({"id": "6001"}))]);
        let creds = creds();
        let graph = Graph::new(&host, &config(), &creds).unwrap();
        let created = graph.create_audience("1", "VIPs", Some("from the CRM")).unwrap();
        assert_eq!(created.id.as_deref(), Some("6001"));
        assert_eq!(host.call(0), ("POST".into(), "http://sandbox.test/v25.0/act_1/customaudiences".into()));
        for (name, value) in [
            ("name", "VIPs"),
            ("subtype", "CUSTOM"),
            ("customer_file_source", "USER_PROVIDED_ONLY"),
            ("description", "from the CRM"),
            ("access_token", TOKEN),
        ] {
            assert_eq!(host.param(0, name).as_deref(), Some(value), "{name}");
        }
    }
}
