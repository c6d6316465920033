//! Everything the Google stand-in remembers, behind one lock, and the sandbox clock.
//!
//! As for the other partners, one `parking_lot::Mutex` over plain collections: every operation
//! is a few map look-ups, the lock is never held across an `.await`, and one lock keeps
//! cross-collection invariants (a request's changes, the list sizes and the quota counters see
//! calls in one order) trivially true.
//!
//! Google's behaviour is full of long durations (tokens live an hour, ingestion takes half an
//! hour, quotas count per minute and per day, page tokens last two hours), so every time the
//! stand-in compares comes from [`Clock`], which a test moves forward
//! ([`GoogleHandle::advance_clock`](crate::GoogleHandle::advance_clock)) instead of waiting.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, MutexGuard};

use crate::google::config::{GoogleConfig, GoogleFaults};
use crate::google::log::GoogleRequestRecord;
use crate::google::members::Members;
use crate::google::oauth::TokenStore;
use crate::google::quota::QuotaBook;
use crate::google::requests::IngestionRequest;

/// First customer id handed out; ten digits like Google's.
const FIRST_CUSTOMER_ID: u64 = 1_234_500_001;
/// First user list id.
const FIRST_USER_LIST_ID: u64 = 9_100_000_001;

/// The sandbox's notion of now: the real clock plus an offset tests can grow.
#[derive(Debug)]
pub(crate) struct Clock {
    started: Instant,
    offset: Duration,
}

impl Clock {
    pub fn new() -> Self {
        Self { started: Instant::now(), offset: Duration::ZERO }
    }

    /// Now, on the sandbox clock.
    pub fn now(&self) -> Instant {
        Instant::now() + self.offset
    }

    /// Time since the sandbox started, on the sandbox clock.
    pub fn since_start(&self) -> Duration {
        self.now().saturating_duration_since(self.started)
    }

    /// Time since the Unix epoch now, on the sandbox clock.
    pub fn unix(&self) -> Duration {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + self.offset
    }

    /// The sandbox instant of a Unix time (clamped to the sandbox's start).
    pub fn instant_of(&self, unix: Duration) -> Instant {
        let now_unix = self.unix();
        let now = self.now();
        if unix >= now_unix {
            now + (unix - now_unix)
        } else {
            now.checked_sub(now_unix - unix).unwrap_or(self.started).max(self.started)
        }
    }

    /// Moves the sandbox clock forward.
    pub fn advance(&mut self, by: Duration) {
        self.offset += by;
    }

    /// How far the sandbox clock is ahead of the real one.
    pub fn offset(&self) -> Duration {
        self.offset
    }
}

/// A Google Ads account.
#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub id: u64,
    pub name: String,
    pub manager: bool,
    /// The manager it sits under, if any.
    pub parent: Option<u64>,
    /// Whether the sandbox user holds it directly (listed by `listAccessibleCustomers`).
    pub direct: bool,
    /// `ENABLED`, `CANCELED`, `SUSPENDED` or `CLOSED`.
    pub status: String,
    pub currency: String,
    pub time_zone: String,
    pub test_account: bool,
}

/// A user list's one upload key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UploadKeyType {
    /// Emails, phone numbers, addresses (`userData`).
    ContactId,
    /// Mobile advertising ids (`mobileData`).
    MobileId,
    /// Third-party user ids (`userIdData`).
    UserId,
}

impl UploadKeyType {
    /// The enum name in JSON.
    pub fn name(self) -> &'static str {
        match self {
            UploadKeyType::ContactId => "CONTACT_ID",
            UploadKeyType::MobileId => "MOBILE_ID",
            UploadKeyType::UserId => "USER_ID",
        }
    }

    /// The key type of an enum name, for those the sandbox models.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "CONTACT_ID" => Some(UploadKeyType::ContactId),
            "MOBILE_ID" => Some(UploadKeyType::MobileId),
            "USER_ID" => Some(UploadKeyType::UserId),
            _ => None,
        }
    }
}

/// A Customer Match user list of the Data Manager API.
#[derive(Debug, Clone)]
pub(crate) struct UserList {
    pub id: u64,
    /// The owning account.
    pub account: u64,
    pub display_name: String,
    pub description: Option<String>,
    /// `OPEN` or `CLOSED`.
    pub membership_status: String,
    pub integration_code: Option<String>,
    pub duration_days: u64,
    pub key_type: UploadKeyType,
    pub data_source_type: String,
    /// `(keySpace, appId)` of a MOBILE_ID list.
    pub mobile: Option<(String, String)>,
    pub members: Members,
    /// The size reported in `sizeInfo` (lags behind `members`).
    pub reported_size: u64,
    /// The `matchRatePercentage` reported (lags too).
    pub reported_match_rate: u64,
    /// When the reported figures next catch up with the membership.
    pub size_due: Option<Instant>,
}

/// A `googleAds:search` page token.
#[derive(Debug, Clone)]
pub(crate) struct AdsPageToken {
    pub query: String,
    pub customer: u64,
    pub offset: usize,
    pub expires_at: Instant,
}

/// A `userLists.list` page token.
#[derive(Debug, Clone)]
pub(crate) struct ListPageToken {
    pub account: u64,
    pub filter: String,
    pub offset: usize,
}

/// State shared by the server tasks and every [`GoogleHandle`](crate::GoogleHandle).
#[derive(Debug)]
pub(crate) struct GoogleShared {
    state: Mutex<GoogleState>,
    pub config: GoogleConfig,
    pub addr: SocketAddr,
}

impl GoogleShared {
    pub fn new(config: GoogleConfig, addr: SocketAddr) -> Self {
        let mut state = GoogleState {
            clock: Clock::new(),
            oauth: TokenStore::new(),
            customers: BTreeMap::new(),
            user_lists: BTreeMap::new(),
            requests: HashMap::new(),
            request_order: Vec::new(),
            ads_page_tokens: HashMap::new(),
            list_page_tokens: HashMap::new(),
            quota: QuotaBook::default(),
            faults: config.faults.clone(),
            disabled_services: BTreeSet::new(),
            processing_failures: HashMap::new(),
            refused_identifiers: HashMap::new(),
            log: Vec::new(),
            next_customer: FIRST_CUSTOMER_ID,
            next_user_list: FIRST_USER_LIST_ID,
        };
        for i in 0..config.customers {
            state.add_customer(&format!("Sandbox Account {}", i + 1), false, None);
        }
        if config.manager_clients > 0 {
            let manager = state.add_customer("Sandbox Manager", true, None);
            for i in 0..config.manager_clients {
                state.add_customer(&format!("Sandbox Client {}", i + 1), false, Some(manager));
            }
            let sub = state.add_customer("Sandbox Sub-manager", true, Some(manager));
            state.add_customer("Sandbox Sub-client", false, Some(sub));
        }
        Self { state: Mutex::new(state), config, addr }
    }

    /// Locks the state. Never hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, GoogleState> {
        self.state.lock()
    }

    /// Locks the state after applying what became due on the sandbox clock (requests that
    /// finished processing, list sizes that caught up).
    pub fn settled(&self) -> MutexGuard<'_, GoogleState> {
        let mut world = self.state.lock();
        crate::google::requests::settle(&mut world, &self.config);
        world
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The stand-in's world.
#[derive(Debug)]
pub(crate) struct GoogleState {
    pub clock: Clock,
    pub oauth: TokenStore,
    /// Google Ads accounts by id.
    pub customers: BTreeMap<u64, Customer>,
    /// User lists by id; ids grow with creation, so iteration is creation order.
    pub user_lists: BTreeMap<u64, UserList>,
    /// Accepted ingestion requests by request id (validateOnly ones are never stored).
    pub requests: HashMap<String, IngestionRequest>,
    /// Request ids in the order they were accepted: the order their changes apply in.
    pub request_order: Vec<String>,
    pub ads_page_tokens: HashMap<String, AdsPageToken>,
    pub list_page_tokens: HashMap<String, ListPageToken>,
    pub quota: QuotaBook,
    pub faults: GoogleFaults,
    /// Services (`datamanager.googleapis.com`, `googleads.googleapis.com`) switched off.
    pub disabled_services: BTreeSet<String>,
    /// Identifier key -> the processing error any member carrying it gets.
    pub processing_failures: HashMap<String, String>,
    /// Identifier key -> the fast-fail reason (an `ErrorReason`) that refuses, whole, any
    /// ingest or remove request carrying it: a record the plugin accepted but Google's
    /// validation does not.
    pub refused_identifiers: HashMap<String, &'static str>,
    pub log: Vec<GoogleRequestRecord>,
    next_customer: u64,
    next_user_list: u64,
}

impl GoogleState {
    /// Adds an account; `parent` makes it a client of that manager, else the user holds it
    /// directly. Returns its id.
    pub fn add_customer(&mut self, name: &str, manager: bool, parent: Option<u64>) -> u64 {
        let id = self.next_customer;
        self.next_customer += 1;
        let customer = Customer {
            id,
            name: name.to_owned(),
            manager,
            parent,
            direct: parent.is_none(),
            status: "ENABLED".to_owned(),
            currency: "USD".to_owned(),
            time_zone: "America/New_York".to_owned(),
            test_account: false,
        };
        self.customers.insert(id, customer);
        id
    }

    /// A fresh user list id.
    pub fn next_user_list_id(&mut self) -> u64 {
        let id = self.next_user_list;
        self.next_user_list += 1;
        id
    }

    /// Whether `ancestor` is `id` or one of the managers above it.
    pub fn is_under(&self, id: u64, ancestor: u64) -> bool {
        let mut current = Some(id);
        let mut hops = 0;
        while let Some(c) = current {
            if c == ancestor {
                return true;
            }
            hops += 1;
            if hops > 64 {
                return false;
            }
            current = self.customers.get(&c).and_then(|c| c.parent);
        }
        false
    }

    /// How the user reaches `target` when logging in as `login`: `Ok` when `login` is held
    /// directly, enabled, and `target` is it or sits under it.
    pub fn reach(&self, login: u64, target: u64) -> Reach {
        let (Some(login_account), Some(target_account)) = (self.customers.get(&login), self.customers.get(&target))
        else {
            return Reach::Denied;
        };
        if !login_account.direct || !self.is_under(target, login) {
            return Reach::Denied;
        }
        if target_account.status != "ENABLED" || login_account.status != "ENABLED" {
            return Reach::NotEnabled;
        }
        Reach::Ok
    }

    /// The accounts under `root` (itself included) with their level below it, depth first.
    pub fn hierarchy(&self, root: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut stack = vec![(root, 0_u64)];
        while let Some((id, level)) = stack.pop() {
            if out.iter().any(|(seen, _)| *seen == id) || level > 64 {
                continue;
            }
            out.push((id, level));
            let children: Vec<u64> =
                self.customers.values().filter(|c| c.parent == Some(id)).map(|c| c.id).rev().collect();
            stack.extend(children.into_iter().map(|c| (c, level + 1)));
        }
        out
    }
}

/// Whether the user can act on an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    Ok,
    /// Not held directly, or not under the login account.
    Denied,
    /// Reachable but cancelled, suspended or closed.
    NotEnabled,
}

/// A customer id: digits only (no hyphens), at most 20.
pub(crate) fn parse_customer_id(raw: &str) -> Option<u64> {
    if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use super::*;

    fn shared() -> GoogleShared {
        GoogleShared::new(GoogleConfig::default(), SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1)))
    }

    #[test]
    fn default_world_has_direct_accounts_and_a_manager_tree() {
        let shared = shared();
        let world = shared.lock();
        let direct: Vec<_> = world.customers.values().filter(|c| c.direct).collect();
        assert_eq!(direct.len(), 3);
        let manager = direct.iter().find(|c| c.manager).map(|c| c.id).unwrap_or_default();
        let tree = world.hierarchy(manager);
        assert_eq!(tree.len(), 1 + 3 + 1 + 1);
        assert_eq!(tree.iter().filter(|(_, level)| *level == 2).count(), 1);
        let client = tree[1].0;
        assert_eq!(world.reach(manager, client), Reach::Ok);
        assert_eq!(world.reach(client, client), Reach::Denied);
        assert_eq!(world.reach(direct[0].id, client), Reach::Denied);
    }

    #[test]
    fn clock_converts_between_instants_and_unix_time() {
        let mut clock = Clock::new();
        let unix = clock.unix();
        clock.advance(Duration::from_secs(60));
        assert!(clock.unix() >= unix + Duration::from_secs(60));
        let later = clock.instant_of(clock.unix() + Duration::from_secs(10));
        let expected = clock.now() + Duration::from_secs(10);
        assert!(later.max(expected) - later.min(expected) < Duration::from_millis(5));
        assert_eq!(parse_customer_id("123-456"), None);
        assert_eq!(parse_customer_id("1234567890"), Some(1_234_567_890));
    }
}
