//! The thin layer that talks to Google through the host.
//!
//! Everything that touches the network goes through [`Client`]: it sends a built request via a
//! [`Host`] (the component's imports in production, a scripted fake in tests), turns transport
//! failures and Google errors into `destination-error` ([`crate::errors`]) and logs each failure
//! with Google's reason and `requestId`. [`Google`] adds the connection's bearer token and
//! knows the endpoints:
//!
//! | call | request |
//! |---|---|
//! | accessible customers | `GET {ads}/{version}/customers:listAccessibleCustomers` |
//! | a customer's hierarchy | `POST {ads}/{version}/customers/{cid}/googleAds:search` `{query, pageToken?}`, header `login-customer-id: {cid}` |
//! | user lists | `GET {dm}/v1/accountTypes/GOOGLE_ADS/accounts/{cid}/userLists?pageSize&pageToken&filter` |
//! | one user list | `GET {dm}/v1/accountTypes/GOOGLE_ADS/accounts/{cid}/userLists/{id}` |
//! | create a user list | `POST {dm}/v1/accountTypes/GOOGLE_ADS/accounts/{cid}/userLists` |
//! | add / remove members | `POST {dm}/v1/audienceMembers:ingest` / `:remove` |
//! | a request's status | `GET {dm}/v1/requestStatus:retrieve?requestId=` |
//!
//! User-list calls carry `login-account: accountTypes/GOOGLE_ADS/accounts/{manager}` when the
//! account is reached through a manager; ingestion ignores headers (the destination names the
//! login account), and so does `requestStatus:retrieve`.
//!
//! No line logged or message returned contains a token or secret: log lines are built from the
//! call, status, reasons and request id only, and every message that could carry text from
//! elsewhere (a transport error, Google's own words) has the connection's secrets replaced
//! with `<redacted>`.

use std::time::{SystemTime, UNIX_EPOCH};

use audience_plugin_sdk::Host;
use audience_plugin_sdk::http::{RequestBuilder, Response, http_failure, retry_after_ms};
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::types::{Credentials, DestinationError, PluginConfig};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::config::{AccountRef, Hosts, ads_api_version};
use crate::errors::{Api, Call, Context, GoogleError, map_error};
use crate::wire::{AccessibleCustomers, SearchPage, UserList, UserListPage, WriteResponse};

/// Milliseconds since the Unix epoch from the WASI wall clock.
pub fn now_ms() -> Option<u64> {
    SystemTime::now().duration_since(UNIX_EPOCH).ok().and_then(|d| u64::try_from(d.as_millis()).ok())
}

/// Replace every secret in `text` with `<redacted>`.
fn redact(text: &str, secrets: &[String]) -> String {
    secrets.iter().filter(|s| s.len() >= 4).fold(text.to_string(), |t, s| t.replace(s.as_str(), "<redacted>"))
}

/// `error` with every secret redacted from its words.
pub fn redact_error(error: DestinationError, secrets: &[String]) -> DestinationError {
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

/// The human part of an error, for log lines.
pub fn message_of(err: &DestinationError) -> String {
    match err {
        DestinationError::RateLimited(ms) => format!("rate limited (wait {ms:?} ms)"),
        DestinationError::Unauthorized(m)
        | DestinationError::NotFound(m)
        | DestinationError::InvalidRequest(m)
        | DestinationError::ActionRequired(m)
        | DestinationError::Transient(m) => m.clone(),
        DestinationError::RejectedUsers(users) => format!("{} member(s) refused the whole request", users.len()),
    }
}

/// Sends requests to Google through the host.
pub struct Client<'a> {
    host: &'a dyn Host,
    hosts: Hosts,
    secrets: Vec<String>,
    now_ms: Option<u64>,
}

impl<'a> Client<'a> {
    /// A client for the hosts configured in `config`.
    pub fn new(host: &'a dyn Host, config: &PluginConfig) -> Self {
        let secrets = config.client_secret.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        Self { host, hosts: Hosts::of(config), secrets, now_ms: now_ms() }
    }

    /// Never let `secret` into a message.
    pub fn add_secret(&mut self, secret: &str) {
        let secret = secret.trim();
        if !secret.is_empty() {
            self.secrets.push(secret.to_string());
        }
    }

    /// The hosts' base URLs.
    pub fn hosts(&self) -> &Hosts {
        &self.hosts
    }

    /// `error` with this client's secrets redacted from its words.
    pub fn redacted(&self, error: DestinationError) -> DestinationError {
        redact_error(error, &self.secrets)
    }

    /// Log a line (never with secrets: it is redacted first).
    pub fn log(&self, level: Level, message: &str) {
        self.host.log(level, &redact(message, &self.secrets));
    }

    /// Send `request`; only a request that got no response is an error.
    pub fn send(&self, call: &Call, request: RequestBuilder) -> Result<Response, DestinationError> {
        request.header("accept", "application/json").send_via(self.host).map_err(|e| {
            let error = redact_error(http_failure(&e), &self.secrets);
            self.log(Level::Warn, &format!("Google: could not {}: {}", call.what, message_of(&error)));
            error
        })
    }

    /// The error for a non-2xx `response` to `call` (logged); `members` are a write's user keys.
    pub fn failure(&self, call: &Call, response: &Response, members: Option<&[&str]>) -> DestinationError {
        let google = GoogleError::parse(&response.body);
        let context = Context {
            retry_after_ms: response.header("retry-after").and_then(retry_after_ms),
            now_ms: self.now_ms,
            members,
        };
        let error = redact_error(map_error(call, response.status, google.as_ref(), &context), &self.secrets);
        let reasons = google.as_ref().map(|g| g.reasons.join(",")).filter(|r| !r.is_empty());
        self.log(
            Level::Warn,
            &format!(
                "Google: could not {}: HTTP {}, status {}, reason {}, requestId {}",
                call.what,
                response.status,
                google.as_ref().and_then(|g| g.status.as_deref()).unwrap_or("none"),
                reasons.as_deref().unwrap_or("none"),
                google.as_ref().and_then(|g| g.request_id.as_deref()).unwrap_or("none"),
            ),
        );
        error
    }

    /// Send `request`; a transport failure or a non-2xx answer is an error.
    pub fn execute(
        &self,
        call: &Call,
        request: RequestBuilder,
        members: Option<&[&str]>,
    ) -> Result<Response, DestinationError> {
        let response = self.send(call, request)?;
        if response.is_success() { Ok(response) } else { Err(self.failure(call, &response, members)) }
    }

    /// Decode a 2xx answer's JSON body; an empty body reads as `{}`. An unreadable body is
    /// `transient`: most likely a truncated or garbled answer.
    pub fn decode<T: DeserializeOwned>(&self, call: &Call, response: &Response) -> Result<T, DestinationError> {
        let body: &[u8] = if response.body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &response.body };
        serde_json::from_slice(body).map_err(|e| {
            let message = format!("Google sent an unreadable answer when asked to {}: {e}", call.what);
            self.log(Level::Warn, &message);
            DestinationError::Transient(message)
        })
    }

    /// [`execute`](Self::execute), then [`decode`](Self::decode).
    pub fn json<T: DeserializeOwned>(
        &self,
        call: &Call,
        request: RequestBuilder,
        members: Option<&[&str]>,
    ) -> Result<T, DestinationError> {
        let response = self.execute(call, request, members)?;
        self.decode(call, &response)
    }
}

/// Which write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `audienceMembers:ingest`.
    Ingest,
    /// `audienceMembers:remove`.
    Remove,
}

impl Operation {
    /// The endpoint's verb.
    pub fn verb(self) -> &'static str {
        match self {
            Operation::Ingest => "ingest",
            Operation::Remove => "remove",
        }
    }
}

/// The Google APIs as the holder of one access token.
pub struct Google<'a> {
    client: Client<'a>,
    token: &'a str,
    config: &'a PluginConfig,
}

impl<'a> Google<'a> {
    /// The APIs for `creds` under `config`; an empty token is `unauthorized`.
    pub fn new(host: &'a dyn Host, config: &'a PluginConfig, creds: &'a Credentials) -> Result<Self, DestinationError> {
        if creds.access_token.trim().is_empty() {
            return Err(DestinationError::Unauthorized(
                "no access token: the connection needs to be authorized".into(),
            ));
        }
        let mut client = Client::new(host, config);
        client.add_secret(&creds.access_token);
        if let Some(refresh) = &creds.refresh_token {
            client.add_secret(refresh);
        }
        Ok(Self { client, token: &creds.access_token, config })
    }

    /// The underlying client.
    pub fn client(&self) -> &Client<'a> {
        &self.client
    }

    fn ads_url(&self, path: &str) -> Result<String, DestinationError> {
        Ok(format!("{}/{}{path}", self.client.hosts().googleads, ads_api_version(self.config)?))
    }

    fn dm_url(&self, path: &str) -> String {
        format!("{}/v1{path}", self.client.hosts().datamanager)
    }

    fn lists_url(account: &AccountRef) -> String {
        format!("/accountTypes/GOOGLE_ADS/accounts/{}/userLists", account.operating)
    }

    fn with_login(request: RequestBuilder, account: &AccountRef) -> RequestBuilder {
        match account.login_account_header() {
            Some(login) => request.header("login-account", &login),
            None => request,
        }
    }

    /// `GET customers:listAccessibleCustomers`: the ids of the customers the user holds directly.
    pub fn accessible_customers(&self) -> Result<Vec<String>, DestinationError> {
        let call = Call::new(Api::Ads, "list the Google Ads accounts the user can access");
        let request = RequestBuilder::get(self.ads_url("/customers:listAccessibleCustomers")?).bearer_auth(self.token);
        let answer: AccessibleCustomers = self.client.json(&call, request, None)?;
        let mut ids: Vec<String> = answer
            .resource_names
            .iter()
            .filter_map(|name| name.strip_prefix("customers/"))
            .map(str::trim)
            .filter(|id| !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_string)
            .collect();
        ids.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        ids.dedup();
        Ok(ids)
    }

    /// One page of `query` run in `customer` (as its own login customer).
    pub fn search(
        &self,
        customer: &str,
        query: &str,
        page_token: Option<&str>,
    ) -> Result<SearchPage, DestinationError> {
        let call = Call::new(Api::Ads, format!("list the accounts under Google Ads account {customer}"))
            .in_account(format!("Google Ads account {customer}"));
        let mut body = json!({ "query": query });
        if let Some(token) = page_token {
            body["pageToken"] = Value::String(token.to_string());
        }
        let request = RequestBuilder::post(self.ads_url(&format!("/customers/{customer}/googleAds:search"))?)
            .bearer_auth(self.token)
            .header("login-customer-id", customer)
            .json(&body)?;
        self.client.json(&call, request, None)
    }

    /// One page of the account's user lists.
    pub fn user_lists(
        &self,
        account: &AccountRef,
        page_size: u32,
        page_token: Option<&str>,
        filter: Option<&str>,
    ) -> Result<UserListPage, DestinationError> {
        let call = Call::new(Api::DataManager, format!("list the user lists of {}", account.describe()))
            .in_account(account.describe());
        let request = RequestBuilder::get(self.dm_url(&Self::lists_url(account)))
            .query("pageSize", &page_size.to_string())
            .query_opt("pageToken", page_token.filter(|t| !t.is_empty()))
            .query_opt("filter", filter)
            .bearer_auth(self.token);
        self.client.json(&call, Self::with_login(request, account), None)
    }

    /// The user list `id` of the account.
    pub fn user_list(&self, account: &AccountRef, id: &str) -> Result<UserList, DestinationError> {
        let call = Call::new(Api::DataManager, format!("read user list {id} of {}", account.describe()))
            .in_account(account.describe())
            .about_list();
        let request =
            RequestBuilder::get(self.dm_url(&format!("{}/{id}", Self::lists_url(account)))).bearer_auth(self.token);
        self.client.json(&call, Self::with_login(request, account), None)
    }

    /// Create a user list in the account.
    pub fn create_user_list(&self, account: &AccountRef, list: &Value) -> Result<UserList, DestinationError> {
        let call = Call::new(Api::DataManager, format!("create a user list in {}", account.describe()))
            .in_account(account.describe());
        let request =
            RequestBuilder::post(self.dm_url(&Self::lists_url(account))).bearer_auth(self.token).json(list)?;
        self.client.json(&call, Self::with_login(request, account), None)
    }

    /// `audienceMembers:ingest` / `:remove` with a ready JSON `body` whose members are the users
    /// `members`, in order.
    pub fn write(
        &self,
        operation: Operation,
        account: &AccountRef,
        list: &str,
        body: Vec<u8>,
        members: &[&str],
    ) -> Result<WriteResponse, DestinationError> {
        let what = match operation {
            Operation::Ingest => format!("add {} members to user list {list} of {}", members.len(), account.describe()),
            Operation::Remove => {
                format!("remove {} members from user list {list} of {}", members.len(), account.describe())
            }
        };
        let call = Call::new(Api::DataManager, what).in_account(account.describe()).about_list();
        let request = RequestBuilder::post(self.dm_url(&format!("/audienceMembers:{}", operation.verb())))
            .bearer_auth(self.token)
            .header("content-type", "application/json")
            .body(body);
        self.client.json(&call, request, Some(members))
    }

    /// `requestStatus:retrieve` of `request_id`: the raw answer, whatever its status.
    pub fn retrieve(&self, request_id: &str) -> Result<(Call, Response), DestinationError> {
        let call = Call::new(Api::DataManager, format!("read the status of request {request_id}"));
        let request = RequestBuilder::get(self.dm_url("/requestStatus:retrieve"))
            .query("requestId", request_id)
            .bearer_auth(self.token);
        let response = self.client.send(&call, request)?;
        Ok((call, response))
    }
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::http_client::HttpError;

    use super::*;
    use crate::testing::{FakeHost, TOKEN, assert_no_secrets, assert_no_secrets_logged, config, creds, fail, ok};

    #[test]
    fn user_list_calls_carry_the_token_and_login_account() {
        let host = FakeHost::new(vec![ok(json!({"userLists": [], "nextPageToken": "p2"}))]);
        let (config, creds) = (config(), creds());
        let google = Google::new(&host, &config, &creds).unwrap();
        let account = AccountRef::parse("1112223334@9998887776").unwrap();
        let page = google.user_lists(&account, 100, Some("p1"), Some("display_name = \"VIP\"")).unwrap();
        assert_eq!(page.next_page_token.as_deref(), Some("p2"));
        assert_eq!(
            host.call(0),
            (
                "GET".into(),
                "http://sandbox.test/datamanager/v1/accountTypes/GOOGLE_ADS/accounts/1112223334/userLists?pageSize=100\
                 &pageToken=p1&filter=display_name%20%3D%20%22VIP%22"
                    .into()
            )
        );
        assert_eq!(host.header(0, "authorization"), Some(format!("Bearer {TOKEN}")));
        assert_eq!(host.header(0, "login-account").as_deref(), Some("accountTypes/GOOGLE_ADS/accounts/9998887776"));
    }

    #[test]
    fn failures_are_logged_with_the_request_id_and_never_a_secret() {
        let host = FakeHost::new(vec![
            fail(403, "PERMISSION_DENIED", Some("PERMISSION_DENIED"), vec![]),
            Err(HttpError::Connection(format!("reset while sending Bearer {TOKEN}"))),
            Ok(Response::new(200).with_body("<html>")),
        ]);
        let (config, creds) = (config(), creds());
        let google = Google::new(&host, &config, &creds).unwrap();
        let account = AccountRef::parse("1234567890").unwrap();
        let denied = google.user_list(&account, "42").unwrap_err();
        assert!(matches!(&denied, DestinationError::NotFound(m) if m.contains("requestId err-req")), "{denied:?}");
        let reset = google.user_list(&account, "42").unwrap_err();
        assert!(matches!(&reset, DestinationError::Transient(m) if m.contains("<redacted>")), "{reset:?}");
        let garbled = google.user_list(&account, "42").unwrap_err();
        assert!(matches!(&garbled, DestinationError::Transient(m) if m.contains("unreadable")));
        for e in [denied, reset, garbled] {
            assert_no_secrets(&message_of(&e));
        }
        assert!(host.logs.borrow()[0].1.contains("reason PERMISSION_DENIED, requestId err-req"));
        assert_no_secrets_logged(&host);
        let mut empty = creds.clone();
        empty.access_token = " ".into();
        assert!(matches!(Google::new(&host, &config, &empty), Err(DestinationError::Unauthorized(_))));
    }

    #[test]
    fn ads_calls_use_the_version_and_login_customer_id() {
        let host = FakeHost::new(vec![
            ok(json!({"resourceNames": ["customers/9998887776", "customers/1234567890", "bogus"]})),
            ok(json!({"results": []})),
        ]);
        let mut config = config();
        config.settings.push(("ads-api-version".into(), "v24".into()));
        let creds = creds();
        let google = Google::new(&host, &config, &creds).unwrap();
        assert_eq!(google.accessible_customers().unwrap(), vec!["1234567890".to_string(), "9998887776".to_string()]);
        assert_eq!(host.call(0).1, "http://sandbox.test/googleads/v24/customers:listAccessibleCustomers");
        google.search("9998887776", "SELECT x", Some("tok")).unwrap();
        assert_eq!(host.call(1).1, "http://sandbox.test/googleads/v24/customers/9998887776/googleAds:search");
        assert_eq!(host.header(1, "login-customer-id").as_deref(), Some("9998887776"));
        assert_eq!(host.json(1), json!({"query": "SELECT x", "pageToken": "tok"}));
    }
}
