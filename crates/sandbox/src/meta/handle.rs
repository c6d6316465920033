//! [`MetaHandle`]: the Rust side door into a running Meta stand-in.
//!
//! What no Marketing API client can do: issue tokens without a browser, revoke or expire them,
//! add ad accounts and change their status, terms and assignment, seed, flag and delete
//! audiences, see exactly who is in an audience, move the sandbox clock, change faults, and read
//! the request log. Like [`SandboxHandle`](crate::SandboxHandle) it works directly on the
//! shared state: cheap, synchronous, usable from any thread.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::meta::audiences;
use crate::meta::config::{ForcedErrors, MetaFault, MetaFaults};
use crate::meta::log::{self, MetaRequestRecord};
use crate::meta::members::MemberRow;
use crate::meta::oauth::{self, TokenKind};
use crate::meta::state::{MetaShared, account_node, parse_account, parse_number};
use crate::meta::summary::{self, MetaAudienceSummary, MetaSummary, SessionSummary};
use crate::meta::usage::BucUsage;

/// Controls and inspects a running [`MetaSandbox`](crate::MetaSandbox). Cheap to clone;
/// `Send + Sync`. Account ids are `act_<n>` (a bare `<n>` works too); audience ids are digits.
#[derive(Debug, Clone)]
pub struct MetaHandle {
    shared: Arc<MetaShared>,
}

impl MetaHandle {
    /// App id of the app every Meta sandbox knows.
    pub const DEFAULT_APP_ID: &'static str = oauth::DEFAULT_APP_ID;
    /// App secret of the default app.
    pub const DEFAULT_APP_SECRET: &'static str = oauth::DEFAULT_APP_SECRET;

    pub(crate) fn new(shared: Arc<MetaShared>) -> Self {
        Self { shared }
    }

    /// `http://127.0.0.1:PORT` (Graph paths follow: `/v25.0/...`).
    pub fn base_url(&self) -> String {
        self.shared.base_url()
    }

    /// `base_url()` plus `/v{default_version}.0`.
    pub fn graph_url(&self) -> String {
        format!("{}/v{}.0", self.base_url(), self.shared.config.default_version)
    }

    /// Registers (or re-keys) an app.
    pub fn register_app(&self, app_id: &str, app_secret: &str) {
        self.shared.lock().oauth.register_app(app_id, app_secret);
    }

    /// An authorization code for the default app and `redirect_uri` with the default scopes,
    /// as if the user had consented in the login dialog.
    pub fn issue_authorization_code(&self, redirect_uri: &str) -> String {
        let config = &self.shared.config;
        let mut world = self.shared.lock();
        let world = &mut *world;
        let scopes = config.default_scopes.clone();
        let ttl = config.authorization_code_ttl;
        world.oauth.issue_code(&world.clock, oauth::DEFAULT_APP_ID, redirect_uri, scopes, false, ttl)
    }

    fn issue(&self, kind: TokenKind, scopes: &[&str], ttl: Option<Duration>) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let mut world = self.shared.lock();
        let world = &mut *world;
        world.oauth.issue(&world.clock, kind, oauth::DEFAULT_APP_ID, &scopes, ttl)
    }

    /// A long-lived user token (`long_lived_token_ttl`) with exactly `scopes`, without the
    /// login dance.
    pub fn issue_token(&self, scopes: &[&str]) -> String {
        self.issue(TokenKind::User, scopes, Some(self.shared.config.long_lived_token_ttl))
    }

    /// A short-lived user token (`short_lived_token_ttl`), as the code exchange gives.
    pub fn issue_short_lived_token(&self, scopes: &[&str]) -> String {
        self.issue(TokenKind::User, scopes, Some(self.shared.config.short_lived_token_ttl))
    }

    /// A business system-user token; it never expires unless `system_user_token_ttl` is set.
    pub fn issue_system_user_token(&self, scopes: &[&str]) -> String {
        self.issue(TokenKind::SystemUser, scopes, self.shared.config.system_user_token_ttl)
    }

    /// Revokes a token: it then gets 190/460. False when it was unknown.
    pub fn revoke_token(&self, token: &str) -> bool {
        self.shared.lock().oauth.revoke(token)
    }

    /// Revokes every token issued so far.
    pub fn revoke_all_tokens(&self) {
        self.shared.lock().oauth.revoke_all();
    }

    /// Makes a token expire now: it then gets 190/463 and cannot be exchanged. False when it
    /// was unknown.
    pub fn expire_token(&self, token: &str) -> bool {
        let mut world = self.shared.lock();
        let world = &mut *world;
        world.oauth.expire(&world.clock, token)
    }

    /// Moves the sandbox clock forward: tokens, codes, sessions, the call budget and delayed
    /// membership changes all see the time pass.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.lock().clock.advance(by);
    }

    /// How far the sandbox clock runs ahead of the real one.
    pub fn clock_offset(&self) -> Duration {
        self.shared.lock().clock.offset()
    }

    /// Ids (`act_<n>`) of every ad account, assigned or not, in paging order.
    pub fn ad_account_ids(&self) -> Vec<String> {
        self.shared.lock().accounts.keys().map(|n| account_node(*n)).collect()
    }

    /// Adds an ad account the sandbox user is assigned to (active, terms accepted); returns
    /// its id (`act_<n>`).
    pub fn add_ad_account(&self, name: &str) -> String {
        account_node(self.shared.lock().add_account(name))
    }

    fn with_account(&self, account: &str, change: impl FnOnce(&mut crate::meta::accounts::AdAccount)) -> bool {
        let Some(number) = parse_account(account) else {
            return false;
        };
        self.shared.lock().accounts.get_mut(&number).map(change).is_some()
    }

    /// Sets `account_status` (1 ACTIVE, 2 DISABLED, 101 CLOSED, ...). False for no account.
    pub fn set_account_status(&self, account: &str, status: u32) -> bool {
        self.with_account(account, |a| a.account_status = status)
    }

    /// Signs or withdraws the Custom Audience terms of the account's business. Without them,
    /// creating audiences and editing members get 200/1870090. False for no account.
    pub fn set_tos_accepted(&self, account: &str, accepted: bool) -> bool {
        self.with_account(account, |a| a.tos_accepted = accepted)
    }

    /// Assigns the sandbox user to the account or removes it: an unassigned account and its
    /// audiences answer 100/33 and are not listed. False for no account.
    pub fn set_account_assigned(&self, account: &str, assigned: bool) -> bool {
        self.with_account(account, |a| a.assigned = assigned)
    }

    /// Seeds an empty CUSTOM audience, bypassing every check (the 500 cap and the terms
    /// included); returns its id, or `None` when there is no such account.
    pub fn create_audience(&self, account: &str, name: &str) -> Option<String> {
        let number = parse_account(account)?;
        let mut world = self.shared.lock();
        world.accounts.contains_key(&number).then(|| audiences::insert(&mut world, number, name).to_string())
    }

    /// Ids of the account's audiences named `name`, oldest first (names are not unique).
    pub fn find_audiences(&self, account: &str, name: &str) -> Vec<String> {
        let number = parse_account(account);
        let world = self.shared.lock();
        let matches = world.audiences.values().filter(|a| Some(a.account) == number && a.name == name);
        matches.map(|a| a.id.to_string()).collect()
    }

    /// The account's audiences, oldest first.
    pub fn audiences(&self, account: &str) -> Vec<MetaAudienceSummary> {
        let number = parse_account(account);
        let world = self.shared.settled();
        world.audiences.values().filter(|a| Some(a.account) == number).map(summary::audience_summary).collect()
    }

    /// One audience, if it exists.
    pub fn audience(&self, audience_id: &str) -> Option<MetaAudienceSummary> {
        let id = parse_number(audience_id)?;
        self.shared.settled().audiences.get(&id).map(summary::audience_summary)
    }

    /// Exactly who is in the audience now (delayed changes that are due applied): one row per
    /// member, schema key -> value. Empty when there is no such audience.
    pub fn members(&self, audience_id: &str) -> Vec<MemberRow> {
        let Some(id) = parse_number(audience_id) else {
            return Vec::new();
        };
        self.shared.settled().audiences.get(&id).map(|a| a.members.rows()).unwrap_or_default()
    }

    /// The audience's upload sessions, oldest first.
    pub fn sessions(&self, audience_id: &str) -> Vec<SessionSummary> {
        let id = parse_number(audience_id);
        let world = self.shared.settled();
        let mut sessions: Vec<_> = world.sessions.values().filter(|s| Some(s.audience) == id).collect();
        sessions.sort_by_key(|s| s.started);
        sessions.into_iter().map(summary::session_summary).collect()
    }

    /// Deletes an audience, as an advertiser would in Ads Manager. False when there was none.
    pub fn delete_audience(&self, audience_id: &str) -> bool {
        parse_number(audience_id).is_some_and(|id| self.shared.lock().delete_audience(id))
    }

    /// Flags an audience for integrity (operation_status 471; member edits get 100/1713230) or
    /// clears the flag. False when there is no such audience.
    pub fn set_audience_flagged(&self, audience_id: &str, flagged: bool) -> bool {
        let Some(id) = parse_number(audience_id) else {
            return false;
        };
        self.shared.lock().audiences.get_mut(&id).map(|a| a.flagged = flagged).is_some()
    }

    /// Replaces the active faults; takes effect from the next call.
    pub fn set_faults(&self, faults: MetaFaults) {
        self.shared.lock().faults = faults;
    }

    /// The active faults (forced errors show how many remain).
    pub fn faults(&self) -> MetaFaults {
        self.shared.lock().faults.clone()
    }

    /// Makes the next `calls` Graph calls fail with `fault` (other faults stay as they are).
    pub fn fail_next(&self, calls: u32, fault: MetaFault) {
        self.shared.lock().faults.forced = (calls > 0).then_some(ForcedErrors { remaining: calls, fault });
    }

    /// The account's `custom_audience` usage now, if the account exists.
    pub fn usage(&self, account: &str) -> Option<BucUsage> {
        let number = parse_account(account)?;
        let mut world = self.shared.lock();
        world.accounts.contains_key(&number).then(|| summary::usage(&mut world, number))
    }

    /// The highest `call_count` any answer reported for the account (0 when none did).
    pub fn max_usage_seen(&self, account: &str) -> u64 {
        let number = parse_account(account);
        let world = self.shared.lock();
        number.and_then(|n| world.usage.max_seen.get(&n).copied()).unwrap_or(0)
    }

    /// How many calls the `custom_audience` budget refused (80003).
    pub fn throttled_count(&self) -> usize {
        self.shared.lock().usage.throttled
    }

    /// Every Graph API version a call named, ascending.
    pub fn api_versions_used(&self) -> BTreeSet<u32> {
        self.shared.lock().versions.clone()
    }

    /// A copy of the request log, in the order calls were answered.
    pub fn request_log(&self) -> Vec<MetaRequestRecord> {
        self.shared.lock().log.clone()
    }

    /// Empties the request log (budgets keep their memory).
    pub fn clear_request_log(&self) {
        self.shared.lock().log.clear();
    }

    /// The most calls addressed to `account` (`act_<n>`, refused ones included) within any
    /// `window`, on the sandbox clock.
    pub fn max_requests_in_window(&self, account: &str, window: Duration) -> usize {
        let account = parse_account(account).map(account_node).unwrap_or_default();
        log::max_requests_in_window(&self.shared.lock().log, &account, window)
    }

    /// The most rows any single `/users` or `/usersreplace` call carried.
    pub fn max_rows_per_request(&self) -> usize {
        log::max_rows_per_request(&self.shared.lock().log)
    }

    /// How many calls failed with Graph error `code`.
    pub fn count_error(&self, code: i64) -> usize {
        log::count_error(&self.shared.lock().log, code)
    }

    /// Accounts with their audiences, usage and the versions used.
    pub fn summary(&self) -> MetaSummary {
        summary::summary(&self.shared)
    }
}
