//! [`GoogleHandle`]: the Rust side door into a running Google stand-in.
//!
//! What no Google client can do: register OAuth clients, issue codes and tokens without a
//! browser, revoke or expire them, add accounts and managers, seed user lists, see exactly who
//! is in a list and how often each identifier was ingested, move the sandbox clock (tokens,
//! processing, sizes, quotas and page tokens all follow it), mark identifiers to fail
//! processing, switch a service off, inject faults, and read quota counters and the request
//! log. Like the other handles it works directly on the shared state: cheap, synchronous,
//! usable from any thread.
//!
//! Identifier keys name a member's identifiers: `email:<sha256 hex>`, `phone:<sha256 hex>`,
//! `address:<given hex>|<family hex>|<REGION>|<postal>`, `mobile:<uuid, lowercase>`,
//! `user_id:<id>` (hashes lowercase, whatever the request's encoding). Build them with
//! [`GoogleHandle::email_key`] and [`GoogleHandle::phone_key`].

use std::sync::Arc;
use std::time::Duration;

use crate::google::config::{ForcedGoogleErrors, GoogleFault, GoogleFaults};
use crate::google::errors::Api;
use crate::google::log::{self, GoogleRequestRecord};
use crate::google::members::{GoogleMember, Members};
use crate::google::oauth::{self, GoogleTokens};
use crate::google::quota::{BucketStats, QuotaBucket};
use crate::google::server::service_of;
use crate::google::state::{GoogleShared, UploadKeyType, UserList, parse_customer_id};
use crate::google::summary::{self, GoogleSummary, UserListSummary};
use crate::google::user_lists::MAX_DURATION_DAYS;

/// A Google service that can be switched off in every Cloud project
/// ([`GoogleHandle::set_service_enabled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoogleService {
    /// `googleads.googleapis.com`.
    GoogleAds,
    /// `datamanager.googleapis.com`.
    DataManager,
}

/// Controls and inspects a running [`GoogleSandbox`](crate::GoogleSandbox). Cheap to clone;
/// `Send + Sync`. Customer and user list ids are digit strings.
#[derive(Debug, Clone)]
pub struct GoogleHandle {
    shared: Arc<GoogleShared>,
}

impl GoogleHandle {
    /// Client id of the OAuth client every Google sandbox knows.
    pub const DEFAULT_CLIENT_ID: &'static str = oauth::DEFAULT_CLIENT_ID;
    /// Client secret of the default client.
    pub const DEFAULT_CLIENT_SECRET: &'static str = oauth::DEFAULT_CLIENT_SECRET;
    /// The Google Ads API scope.
    pub const ADWORDS_SCOPE: &'static str = oauth::ADWORDS_SCOPE;
    /// The Data Manager API scope.
    pub const DATAMANAGER_SCOPE: &'static str = oauth::DATAMANAGER_SCOPE;

    pub(crate) fn new(shared: Arc<GoogleShared>) -> Self {
        Self { shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url()
    }

    /// Stand-in for `https://accounts.google.com`: `base_url() + "/accounts"`.
    pub fn accounts_url(&self) -> String {
        format!("{}/accounts", self.base_url())
    }

    /// Stand-in for `https://oauth2.googleapis.com`: `base_url() + "/oauth2"`.
    pub fn oauth2_url(&self) -> String {
        format!("{}/oauth2", self.base_url())
    }

    /// Stand-in for `https://googleads.googleapis.com`: `base_url() + "/googleads"`.
    pub fn googleads_url(&self) -> String {
        format!("{}/googleads", self.base_url())
    }

    /// Stand-in for `https://datamanager.googleapis.com`: `base_url() + "/datamanager"`.
    pub fn datamanager_url(&self) -> String {
        format!("{}/datamanager", self.base_url())
    }

    /// The identifier key of a hashed email (SHA-256 hex, any case).
    pub fn email_key(sha256_hex: &str) -> String {
        format!("email:{}", sha256_hex.to_ascii_lowercase())
    }

    /// The identifier key of a hashed phone number (SHA-256 hex, any case).
    pub fn phone_key(sha256_hex: &str) -> String {
        format!("phone:{}", sha256_hex.to_ascii_lowercase())
    }

    /// Registers (or re-keys) an OAuth client, that is a Cloud project with its own quotas;
    /// returns the project number.
    pub fn register_client(&self, client_id: &str, client_secret: &str) -> u64 {
        self.shared.lock().oauth.register_client(client_id, client_secret)
    }

    /// An authorization code for the default client and `redirect_uri` with `scopes` and
    /// `access_type=offline`, as if the user had consented on the authorize page.
    pub fn issue_authorization_code(&self, redirect_uri: &str, scopes: &[&str]) -> String {
        let ttl = self.shared.config.authorization_code_ttl;
        let scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        let mut world = self.shared.lock();
        let world = &mut *world;
        world.oauth.issue_code(&world.clock, oauth::DEFAULT_CLIENT_ID, redirect_uri, scopes, true, ttl)
    }

    /// An access and a refresh token of the default client holding `scopes`, as the code
    /// exchange with `access_type=offline` gives.
    pub fn issue_tokens(&self, scopes: &[&str]) -> GoogleTokens {
        self.issue_tokens_for(oauth::DEFAULT_CLIENT_ID, scopes).unwrap_or_else(|| GoogleTokens {
            access_token: String::new(),
            refresh_token: None,
            expires_in: 0,
            scope: String::new(),
        })
    }

    /// The same for another registered client; `None` when the client is unknown.
    pub fn issue_tokens_for(&self, client_id: &str, scopes: &[&str]) -> Option<GoogleTokens> {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let mut world = self.shared.lock();
        let world = &mut *world;
        world.oauth.project_of(client_id)?;
        Some(world.oauth.issue(&world.clock, &self.shared.config, client_id, &scopes, true))
    }

    /// Revokes a token (access or refresh) and the rest of its grant: the refresh token then
    /// gets `invalid_grant`, the access tokens 401. False when unknown.
    pub fn revoke_token(&self, token: &str) -> bool {
        self.shared.lock().oauth.revoke(token)
    }

    /// Makes an access token expire now (401 from then on); its refresh token still works.
    /// False when unknown.
    pub fn expire_access_token(&self, token: &str) -> bool {
        let mut world = self.shared.lock();
        let world = &mut *world;
        world.oauth.expire(&world.clock, token)
    }

    /// Makes every access token expire now.
    pub fn expire_all_access_tokens(&self) {
        let mut world = self.shared.lock();
        let world = &mut *world;
        world.oauth.expire_all(&world.clock);
    }

    /// Moves the sandbox clock forward: tokens, codes, page tokens, processing, list sizes and
    /// quota windows all see the time pass.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.lock().clock.advance(by);
    }

    /// How far the sandbox clock runs ahead of the real one.
    pub fn clock_offset(&self) -> Duration {
        self.shared.lock().clock.offset()
    }

    /// Every account id, in creation order.
    pub fn customer_ids(&self) -> Vec<String> {
        self.shared.lock().customers.keys().map(u64::to_string).collect()
    }

    /// The accounts the user holds directly (what `listAccessibleCustomers` lists).
    pub fn accessible_customer_ids(&self) -> Vec<String> {
        self.shared.lock().customers.values().filter(|c| c.direct).map(|c| c.id.to_string()).collect()
    }

    /// The manager accounts the user holds directly.
    pub fn manager_ids(&self) -> Vec<String> {
        self.shared.lock().customers.values().filter(|c| c.direct && c.manager).map(|c| c.id.to_string()).collect()
    }

    /// The accounts directly under a manager.
    pub fn client_ids(&self, manager: &str) -> Vec<String> {
        let id = parse_customer_id(manager);
        let world = self.shared.lock();
        world.customers.values().filter(|c| c.parent.is_some() && c.parent == id).map(|c| c.id.to_string()).collect()
    }

    /// Adds a plain account the user holds directly; returns its id.
    pub fn add_customer(&self, name: &str) -> String {
        self.shared.lock().add_customer(name, false, None).to_string()
    }

    /// Adds a manager the user holds directly with `clients` plain accounts under it; returns
    /// the manager's id and the clients' ids.
    pub fn add_manager(&self, name: &str, clients: usize) -> (String, Vec<String>) {
        let mut world = self.shared.lock();
        let manager = world.add_customer(name, true, None);
        let clients = (0..clients)
            .map(|i| world.add_customer(&format!("{name} client {}", i + 1), false, Some(manager)).to_string());
        (manager.to_string(), clients.collect())
    }

    /// Adds an account (a manager when `manager`) under `parent`; `None` when `parent` is not
    /// a manager account.
    pub fn add_client(&self, parent: &str, name: &str, manager: bool) -> Option<String> {
        let parent = parse_customer_id(parent)?;
        let mut world = self.shared.lock();
        world.customers.get(&parent).filter(|p| p.manager)?;
        Some(world.add_customer(name, manager, Some(parent)).to_string())
    }

    /// Sets an account's status (`ENABLED`, `CANCELED`, `SUSPENDED`, `CLOSED`); anything but
    /// `ENABLED` makes it unusable. False for no account.
    pub fn set_customer_status(&self, customer: &str, status: &str) -> bool {
        let Some(id) = parse_customer_id(customer) else {
            return false;
        };
        self.shared.lock().customers.get_mut(&id).map(|c| c.status = status.to_owned()).is_some()
    }

    /// Gives the user direct access to an account or takes it away (it then leaves
    /// `listAccessibleCustomers`, and logging in as it is denied). False for no account.
    pub fn set_direct_access(&self, customer: &str, direct: bool) -> bool {
        let Some(id) = parse_customer_id(customer) else {
            return false;
        };
        self.shared.lock().customers.get_mut(&id).map(|c| c.direct = direct).is_some()
    }

    /// Seeds an empty, open user list of `key_type` with the maximum duration, bypassing
    /// every check (unique names included); `None` when there is no such account.
    pub fn create_user_list(&self, account: &str, display_name: &str, key_type: UploadKeyType) -> Option<String> {
        let account = parse_customer_id(account)?;
        let mut world = self.shared.lock();
        world.customers.get(&account)?;
        let id = world.next_user_list_id();
        let mobile =
            (key_type == UploadKeyType::MobileId).then(|| ("ANDROID".to_owned(), "com.example.app".to_owned()));
        world.user_lists.insert(
            id,
            UserList {
                id,
                account,
                display_name: display_name.to_owned(),
                description: None,
                membership_status: "OPEN".to_owned(),
                integration_code: None,
                duration_days: MAX_DURATION_DAYS,
                key_type,
                data_source_type: "DATA_SOURCE_TYPE_FIRST_PARTY".to_owned(),
                mobile,
                members: Members::default(),
                reported_size: 0,
                reported_match_rate: 0,
                size_due: None,
            },
        );
        Some(id.to_string())
    }

    /// The id of the account's list named `display_name`, if any.
    pub fn find_user_list(&self, account: &str, display_name: &str) -> Option<String> {
        let account = parse_customer_id(account)?;
        let world = self.shared.lock();
        world
            .user_lists
            .values()
            .find(|l| l.account == account && l.display_name == display_name)
            .map(|l| l.id.to_string())
    }

    /// The account's lists, oldest first (due processing applied).
    pub fn user_lists(&self, account: &str) -> Vec<UserListSummary> {
        let account = parse_customer_id(account);
        let world = self.shared.settled();
        world.user_lists.values().filter(|l| Some(l.account) == account).map(summary::user_list).collect()
    }

    /// Deletes a list behind the client's back. False when there was none.
    pub fn delete_user_list(&self, list: &str) -> bool {
        parse_customer_id(list).is_some_and(|id| self.shared.lock().user_lists.remove(&id).is_some())
    }

    fn with_members<T>(&self, list: &str, read: impl FnOnce(&Members) -> T) -> Option<T> {
        let id = parse_customer_id(list)?;
        self.shared.settled().user_lists.get(&id).map(|l| read(&l.members))
    }

    /// Exactly who is in the list now: requests that finished processing by the sandbox clock
    /// applied, later ones not. Empty when there is no such list.
    pub fn members(&self, list: &str) -> Vec<GoogleMember> {
        self.with_members(list, Members::list).unwrap_or_default()
    }

    /// How many members the list holds now.
    pub fn member_count(&self, list: &str) -> usize {
        self.with_members(list, Members::len).unwrap_or(0)
    }

    /// Whether a member of the list carries the identifier key now.
    pub fn is_member(&self, list: &str, identifier_key: &str) -> bool {
        self.with_members(list, |m| m.contains(identifier_key)).unwrap_or(false)
    }

    /// How many processed ingest requests carried the identifier key into the list (removals
    /// do not reset it): 2 or more means the member was sent twice.
    pub fn times_ingested(&self, list: &str, identifier_key: &str) -> u32 {
        self.with_members(list, |m| m.times_ingested(identifier_key)).unwrap_or(0)
    }

    /// The most times any identifier was ingested into the list.
    pub fn max_times_ingested(&self, list: &str) -> u32 {
        self.with_members(list, Members::max_times_ingested).unwrap_or(0)
    }

    /// Accepted ingestion requests still `PROCESSING` on the sandbox clock.
    pub fn pending_requests(&self) -> usize {
        let world = self.shared.settled();
        world.requests.values().filter(|r| r.outcomes.is_none()).count()
    }

    /// Moves the sandbox clock past the processing delay (and the size delay), so every
    /// accepted request has finished and list sizes caught up.
    pub fn finish_processing(&self) {
        let config = &self.shared.config;
        self.advance_clock(config.processing_delay + config.size_delay);
        drop(self.shared.settled());
    }

    /// Makes every member carrying `identifier_key` fail processing with `reason` (e.g.
    /// `PROCESSING_ERROR_REASON_INVALID_FORMAT`): counted in `errorCounts`, not applied.
    pub fn fail_processing_of(&self, identifier_key: &str, reason: &str) {
        self.shared.lock().processing_failures.insert(identifier_key.to_owned(), reason.to_owned());
    }

    /// Refuse, at validation, every ingest or remove request carrying the identifier
    /// `identifier_key` (see [`GoogleHandle::email_key`]): HTTP 400 INVALID_ARGUMENT whose
    /// BadRequest names `audience_members[i].user_data.user_identifiers[j]` with `reason` (an
    /// `ErrorReason` such as `INVALID_SHA256_FORMAT`), and nothing of the request applied, as
    /// Google's fast-fail does for a record its validation refuses.
    pub fn refuse_identifier(&self, identifier_key: &str, reason: &'static str) {
        self.shared.lock().refused_identifiers.insert(identifier_key.to_owned(), reason);
    }

    /// Enables or disables a service in every Cloud project: disabled, its calls get 403
    /// `SERVICE_DISABLED`.
    pub fn set_service_enabled(&self, service: GoogleService, enabled: bool) {
        let name = service_of(match service {
            GoogleService::GoogleAds => Api::Ads(0),
            GoogleService::DataManager => Api::DataManager,
        });
        let mut world = self.shared.lock();
        if enabled {
            world.disabled_services.remove(name);
        } else {
            world.disabled_services.insert(name.to_owned());
        }
    }

    /// Replaces the active faults; takes effect from the next call.
    pub fn set_faults(&self, faults: GoogleFaults) {
        self.shared.lock().faults = faults;
    }

    /// The active faults (forced errors show how many remain).
    pub fn faults(&self) -> GoogleFaults {
        self.shared.lock().faults.clone()
    }

    /// Makes the next `calls` API calls (Google Ads or Data Manager) fail with `fault`.
    pub fn fail_next(&self, calls: u32, fault: GoogleFault) {
        self.shared.lock().faults.forced = (calls > 0).then_some(ForcedGoogleErrors { remaining: calls, fault });
    }

    /// What a quota bucket saw, across projects: requests counted, 429s given, and the most
    /// requests one project had counted in any 60 s.
    pub fn quota_stats(&self, bucket: QuotaBucket) -> BucketStats {
        self.shared.lock().quota.stats.get(&bucket).copied().unwrap_or_default()
    }

    /// The most requests one project had counted in any 60 s in `bucket`.
    pub fn max_per_minute_usage(&self, bucket: QuotaBucket) -> u64 {
        self.quota_stats(bucket).max_per_minute
    }

    /// How many 429 RESOURCE_EXHAUSTED answers were given, all buckets.
    pub fn quota_refusals(&self) -> u64 {
        self.shared.lock().quota.stats.values().map(|s| s.refused).sum()
    }

    /// A copy of the request log, in the order calls were answered.
    pub fn request_log(&self) -> Vec<GoogleRequestRecord> {
        self.shared.lock().log.clone()
    }

    /// Empties the request log (quota counters keep their memory).
    pub fn clear_request_log(&self) {
        self.shared.lock().log.clear();
    }

    /// The most calls of `bucket` (refused ones included) within any `window`.
    pub fn max_requests_in_window(&self, bucket: QuotaBucket, window: Duration) -> usize {
        log::max_requests_in_window(&self.shared.lock().log, bucket, window)
    }

    /// The most audience members any single ingest or remove call carried.
    pub fn max_members_per_request(&self) -> usize {
        log::max_members_per_request(&self.shared.lock().log)
    }

    /// How many calls failed with this `ErrorInfo` reason, Ads error code or OAuth error.
    pub fn count_error(&self, reason: &str) -> usize {
        log::count_reason(&self.shared.lock().log, reason)
    }

    /// Accounts, lists with member counts, quotas and the clock.
    pub fn summary(&self) -> GoogleSummary {
        summary::summary(&self.shared)
    }
}
