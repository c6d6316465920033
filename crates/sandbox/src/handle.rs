//! [`SandboxHandle`]: the Rust side door into a running sandbox.
//!
//! Tests need to do what no Pinterest client can: seed lists, see exactly who is in a list,
//! revoke or expire tokens behind the plugin's back, change faults mid-run, and read the
//! request log. The handle does all of that directly on the shared state (no HTTP), so it is
//! cheap, synchronous and usable from any thread.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::audiences;
use crate::config::Faults;
use crate::control::{self, Summary};
use crate::customer_lists::{self, ListType};
use crate::log::{self, RequestRecord};
use crate::oauth::{self, TokenKind, TokenPair};
use crate::state::{Shared, parse_id};

/// Controls and inspects a running sandbox. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct SandboxHandle {
    shared: Arc<Shared>,
}

impl SandboxHandle {
    /// Client id of the app every sandbox knows.
    pub const DEFAULT_CLIENT_ID: &'static str = oauth::DEFAULT_CLIENT_ID;
    /// Client secret of the default app.
    pub const DEFAULT_CLIENT_SECRET: &'static str = oauth::DEFAULT_CLIENT_SECRET;

    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// `http://127.0.0.1:PORT` (clients append `/v5/...`).
    pub fn base_url(&self) -> String {
        self.shared.base_url()
    }

    /// Registers (or re-keys) an OAuth app.
    pub fn register_app(&self, client_id: &str, client_secret: &str) {
        self.shared.lock().oauth.register_app(client_id, client_secret);
    }

    /// An authorization code for `client_id` and `redirect_uri` with the default scopes, as if
    /// the user had consented on the authorize page. Exchange it at `/v5/oauth/token`.
    pub fn issue_authorization_code(&self, client_id: &str, redirect_uri: &str) -> String {
        let config = &self.shared.config;
        self.shared.lock().oauth.issue_code(
            client_id,
            redirect_uri,
            config.default_scopes.clone(),
            config.authorization_code_ttl,
        )
    }

    /// A fresh token pair for the default app with exactly `scopes` (empty means none), without
    /// the OAuth dance.
    pub fn issue_tokens(&self, scopes: &[&str]) -> TokenPair {
        let config = &self.shared.config;
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let mut world = self.shared.lock();
        let client = oauth::DEFAULT_CLIENT_ID;
        TokenPair {
            access_token: world.oauth.issue(TokenKind::Access, client, &scopes, config.access_token_ttl),
            refresh_token: world.oauth.issue(TokenKind::Refresh, client, &scopes, config.refresh_token_ttl),
        }
    }

    /// Revokes an access or refresh token, as an advertiser disconnecting the app would.
    pub fn revoke_token(&self, token: &str) {
        self.shared.lock().oauth.revoke(token);
    }

    /// Revokes every token issued so far.
    pub fn revoke_all_tokens(&self) {
        self.shared.lock().oauth.revoke_all();
    }

    /// Makes a token expire now: an access token then gets 401 code 1104.
    pub fn expire_access_token(&self, token: &str) {
        self.shared.lock().oauth.expire(token);
    }

    /// Ids of the sandbox user's ad accounts, in paging order.
    pub fn ad_account_ids(&self) -> Vec<String> {
        let world = self.shared.lock();
        world.accounts.iter().map(|a| a.id.clone()).collect()
    }

    /// Seeds a customer list and returns its id. Records are stored as given, unchecked.
    pub fn create_customer_list(
        &self,
        ad_account_id: &str,
        name: &str,
        list_type: ListType,
        records: &[String],
    ) -> String {
        let mut world = self.shared.lock();
        customer_lists::insert(&mut world, ad_account_id, name, list_type, records.iter().cloned()).to_string()
    }

    /// Seeds a `CUSTOMER_LIST` audience on a list and returns its id. An id that names no list
    /// gives an audience of size 0.
    pub fn create_audience(&self, ad_account_id: &str, name: &str, customer_list_id: &str) -> String {
        let list = parse_id(customer_list_id).unwrap_or(0);
        let mut world = self.shared.lock();
        audiences::insert(&mut world, ad_account_id, name, None, list).to_string()
    }

    /// Id of the oldest customer list named `name` in the account.
    pub fn find_customer_list(&self, ad_account_id: &str, name: &str) -> Option<String> {
        let world = self.shared.lock();
        world.lists.values().find(|l| l.ad_account_id == ad_account_id && l.name == name).map(|l| l.id.to_string())
    }

    /// Id of the oldest audience named `name` in the account.
    pub fn find_audience(&self, ad_account_id: &str, name: &str) -> Option<String> {
        let world = self.shared.lock();
        world.audiences.values().find(|a| a.ad_account_id == ad_account_id && a.name == name).map(|a| a.id.to_string())
    }

    /// Exactly who is in a customer list now (empty when there is no such list).
    pub fn members(&self, customer_list_id: &str) -> HashSet<String> {
        let Some(id) = parse_id(customer_list_id) else {
            return HashSet::new();
        };
        let world = self.shared.lock();
        world.lists.get(&id).map(|l| l.members.clone()).unwrap_or_default()
    }

    /// Deletes an audience, as an advertiser would in Ads Manager. False when there was none.
    pub fn delete_audience(&self, ad_account_id: &str, audience_id: &str) -> bool {
        parse_id(audience_id).is_some_and(|id| self.shared.lock().delete_audience(ad_account_id, id))
    }

    /// Deletes a customer list and the audiences built on it. False when there was none.
    pub fn delete_customer_list(&self, ad_account_id: &str, customer_list_id: &str) -> bool {
        parse_id(customer_list_id).is_some_and(|id| self.shared.lock().delete_customer_list(ad_account_id, id))
    }

    /// Replaces the active faults; takes effect from the next request.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// The active faults (a forced 429 shows how many remain).
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    /// A copy of the request log, in the order requests were answered.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// Empties the request log (the rate limiter keeps its memory).
    pub fn clear_request_log(&self) {
        self.shared.lock().log.clear();
    }

    /// The most requests (refused ones included) `token` made within any `window`.
    pub fn max_requests_in_window(&self, token: &str, window: Duration) -> usize {
        log::max_requests_in_window(&self.shared.lock().log, token, window)
    }

    /// The most records any single customer-list request carried.
    pub fn max_records_per_request(&self) -> usize {
        log::max_records_per_request(&self.shared.lock().log)
    }

    /// Requests that arrived while their token already had the rate limit's worth of requests
    /// within the preceding 1,000 ms, refused ones included (see
    /// [`SandboxConfig::rate_limit_per_second`](crate::SandboxConfig)): over every token, since
    /// the sandbox started. Always 0 without a rate limit. Unlike the 429s, this counts every
    /// request a correctly paced client would not have sent, whether or not it was refused.
    pub fn rate_limit_violations(&self) -> u64 {
        self.shared.lock().limiter.violations()
    }

    /// [`Self::rate_limit_violations`] of one access token.
    pub fn rate_limit_violations_of(&self, token: &str) -> u64 {
        self.shared.lock().limiter.violations_of(token)
    }

    /// Records in every customer list together: how many users a load test has landed, read
    /// in one step however many lists there are.
    pub fn total_members(&self) -> usize {
        self.shared.lock().lists.values().map(|l| l.members.len()).sum()
    }

    /// How many requests were answered with `status` (0 counts dropped connections).
    pub fn count_status(&self, status: u16) -> usize {
        log::count_status(&self.shared.lock().log, status)
    }

    /// Every spec violation seen, as `"METHOD /path: violation"`.
    pub fn spec_violations(&self) -> Vec<String> {
        log::spec_violations(&self.shared.lock().log)
    }

    /// Accounts with their lists (and member counts) and audiences.
    pub fn summary(&self) -> Summary {
        control::summary(&self.shared)
    }
}
