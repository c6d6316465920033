//! The thin layer that talks to Pinterest through the host.
//!
//! Everything that touches the network goes through [`Client`]: it sends a built request via a
//! [`Host`] (the component's imports in production, a scripted fake in tests), turns HTTP
//! failures and error statuses into `destination-error` (see [`crate::errors`]), and logs each
//! failure with Pinterest's `x-pinterest-rid`. The endpoint methods below only assemble URLs
//! and bodies from [`crate::wire`] types. No line logged here contains a token or secret:
//! log lines are built from the call name, status, code and request id only.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::http::{RequestBuilder, Response, http_failure};
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::paging::Page;
use audience_plugin_sdk::types::{DestinationError, PluginConfig};
use serde::de::DeserializeOwned;

use crate::config::api_root;
use crate::errors::{Call, ErrorBody, map_error, request_id};
use crate::wire::{
    AdAccount, AdAccountRoles, Audience, AudienceCreate, CustomerList, CustomerListCreate, CustomerListUpdate,
    Paginated,
};

/// The largest `page_size` Pinterest accepts on the listings used (spec: maximum 250).
pub const PAGE_SIZE: &str = "250";

/// Sends requests to Pinterest's `/v5` API through the host.
pub struct Client<'a> {
    host: &'a dyn Host,
    root: String,
}

impl<'a> Client<'a> {
    /// A client for the API root configured in `config`.
    pub fn new(host: &'a dyn Host, config: &PluginConfig) -> Self {
        Self { host, root: api_root(config) }
    }

    /// The absolute URL of `path` (which starts with `/`) under `/v5`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }

    /// Send `request` for `call`; a non-2xx status or transport failure becomes an error.
    pub fn execute(&self, call: Call, request: RequestBuilder) -> Result<Response, DestinationError> {
        let request = request.header("accept", "application/json");
        let response = request.send_via(self.host).map_err(|e| {
            let err = http_failure(&e);
            self.host.log(Level::Warn, &format!("Pinterest: could not {}: {}", call.what, error_text(&err)));
            err
        })?;
        if response.is_success() {
            return Ok(response);
        }
        let body = ErrorBody::parse(&response.body);
        self.host.log(
            Level::Warn,
            &format!(
                "Pinterest: could not {}: HTTP {}, code {}, x-pinterest-rid {}",
                call.what,
                response.status,
                body.code.map_or_else(|| "none".to_string(), |c| c.to_string()),
                request_id(&response).unwrap_or("none"),
            ),
        );
        Err(map_error(call, &response))
    }

    /// [`execute`](Self::execute), then decode the JSON body. An unreadable 2xx body is
    /// `transient`: it is most likely a truncated or garbled answer.
    pub fn json<T: DeserializeOwned>(&self, call: Call, request: RequestBuilder) -> Result<T, DestinationError> {
        let response = self.execute(call, request)?;
        response.json().map_err(|e| {
            let message = format!(
                "Pinterest sent an unreadable answer when asked to {}: {e} (x-pinterest-rid {})",
                call.what,
                request_id(&response).unwrap_or("none")
            );
            self.host.log(Level::Warn, &message);
            DestinationError::Transient(message)
        })
    }
}

/// Pinterest's API for one access token.
pub struct Pinterest<'a> {
    client: Client<'a>,
    token: &'a str,
}

fn page<T>(p: Paginated<T>) -> Page<T> {
    Page { items: p.items, next_cursor: p.bookmark }
}

impl<'a> Pinterest<'a> {
    /// The API as the holder of `access_token`; an empty token is `unauthorized`.
    pub fn new(client: Client<'a>, access_token: &'a str) -> Result<Self, DestinationError> {
        if access_token.trim().is_empty() {
            return Err(DestinationError::Unauthorized(
                "no access token: the connection needs to be authorized".into(),
            ));
        }
        Ok(Self { client, token: access_token })
    }

    fn get(&self, path: &str) -> RequestBuilder {
        RequestBuilder::get(self.client.url(path)).bearer_auth(self.token)
    }

    fn with_body(
        &self,
        method: &str,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<RequestBuilder, DestinationError> {
        RequestBuilder::new(method, self.client.url(path)).bearer_auth(self.token).json(body)
    }

    /// `GET /ad_accounts?page_size=250&include_shared_accounts=true[&bookmark=..]`.
    pub fn ad_accounts(&self, bookmark: Option<&str>) -> Result<Page<AdAccount>, DestinationError> {
        let request = self
            .get("/ad_accounts")
            .query("page_size", PAGE_SIZE)
            .query("include_shared_accounts", "true")
            .query_opt("bookmark", bookmark);
        self.client.json(Call::LIST_AD_ACCOUNTS, request).map(page)
    }

    /// `GET /ad_accounts/{account}`: the connection's roles in the account, when these
    /// credentials can see it.
    pub fn ad_account_roles(&self, account: &str) -> Result<AdAccountRoles, DestinationError> {
        self.client.json(Call::GET_AD_ACCOUNT, self.get(&format!("/ad_accounts/{account}")))
    }

    /// `GET /ad_accounts/{account}/customer_lists/{list}`.
    pub fn customer_list(&self, account: &str, list: &str) -> Result<CustomerList, DestinationError> {
        self.client.json(Call::GET_CUSTOMER_LIST, self.get(&format!("/ad_accounts/{account}/customer_lists/{list}")))
    }

    /// `GET /ad_accounts/{account}/audiences/{audience}`.
    pub fn audience(&self, account: &str, audience: &str) -> Result<Audience, DestinationError> {
        self.client.json(Call::GET_AUDIENCE, self.get(&format!("/ad_accounts/{account}/audiences/{audience}")))
    }

    /// `GET /ad_accounts/{account}/customer_lists?page_size=250[&bookmark=..]`.
    pub fn customer_lists(
        &self,
        account: &str,
        bookmark: Option<&str>,
    ) -> Result<Page<CustomerList>, DestinationError> {
        let request = self
            .get(&format!("/ad_accounts/{account}/customer_lists"))
            .query("page_size", PAGE_SIZE)
            .query_opt("bookmark", bookmark);
        self.client.json(Call::LIST_CUSTOMER_LISTS, request).map(page)
    }

    /// `GET /ad_accounts/{account}/audiences?page_size=250&ownership_type=OWNED[&bookmark=..]`.
    pub fn audiences(&self, account: &str, bookmark: Option<&str>) -> Result<Page<Audience>, DestinationError> {
        let request = self
            .get(&format!("/ad_accounts/{account}/audiences"))
            .query("page_size", PAGE_SIZE)
            .query("ownership_type", "OWNED")
            .query_opt("bookmark", bookmark);
        self.client.json(Call::LIST_AUDIENCES, request).map(page)
    }

    /// `POST /ad_accounts/{account}/customer_lists`.
    pub fn create_customer_list(
        &self,
        account: &str,
        body: &CustomerListCreate<'_>,
    ) -> Result<CustomerList, DestinationError> {
        let request = self.with_body("POST", &format!("/ad_accounts/{account}/customer_lists"), body)?;
        self.client.json(Call::CREATE_CUSTOMER_LIST, request)
    }

    /// `PATCH /ad_accounts/{account}/customer_lists/{list}`. The answer's body is not needed.
    pub fn update_customer_list(
        &self,
        account: &str,
        list: &str,
        body: &CustomerListUpdate<'_>,
    ) -> Result<(), DestinationError> {
        let request = self.with_body("PATCH", &format!("/ad_accounts/{account}/customer_lists/{list}"), body)?;
        self.client.execute(Call::UPDATE_CUSTOMER_LIST, request).map(drop)
    }

    /// `POST /ad_accounts/{account}/audiences`.
    pub fn create_audience(&self, account: &str, body: &AudienceCreate<'_>) -> Result<Audience, DestinationError> {
        let request = self.with_body("POST", &format!("/ad_accounts/{account}/audiences"), body)?;
        self.client.json(Call::CREATE_AUDIENCE, request)
    }
}

/// The human part of an error, for log lines.
fn error_text(err: &DestinationError) -> String {
    match err {
        DestinationError::RateLimited(_) => "rate limited".to_string(),
        DestinationError::Unauthorized(m)
        | DestinationError::NotFound(m)
        | DestinationError::InvalidRequest(m)
        | DestinationError::ActionRequired(m)
        | DestinationError::Transient(m) => m.clone(),
        DestinationError::RejectedUsers(users) => format!("{} user(s) refused the whole request", users.len()),
    }
}
