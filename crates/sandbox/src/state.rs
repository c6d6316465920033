//! Everything the sandbox remembers, behind one lock.
//!
//! One `parking_lot::Mutex` over plain collections is enough: every operation is a few map
//! look-ups or set inserts (100,000 records in ~50 requests is microseconds of work), the lock
//! is never held across an `.await`, and a single lock keeps the invariants that span
//! collections (deleting a list deletes its audiences; the log and the rate limiter see requests
//! in one order) trivially true.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, MutexGuard};

use crate::accounts::{self, AdAccount};
use crate::audiences::Audience;
use crate::config::{Faults, SandboxConfig};
use crate::customer_lists::CustomerList;
use crate::gate::RateLimiter;
use crate::log::RequestRecord;
use crate::oauth::OAuthStore;

/// First id handed to customer lists and audiences; 13 digits like Pinterest's ids.
const FIRST_ID: u64 = 2_748_779_069_441;

/// State shared by the server tasks and every [`SandboxHandle`](crate::SandboxHandle).
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    pub config: SandboxConfig,
    pub started: Instant,
    pub addr: SocketAddr,
}

impl Shared {
    pub fn new(config: SandboxConfig, addr: SocketAddr) -> Self {
        let state = State {
            oauth: OAuthStore::new(),
            accounts: accounts::generate(config.ad_accounts, unix_now()),
            lists: BTreeMap::new(),
            audiences: BTreeMap::new(),
            faults: config.faults.clone(),
            limiter: RateLimiter::default(),
            log: Vec::new(),
            next_id: FIRST_ID,
        };
        Self { state: Mutex::new(state), config, started: Instant::now(), addr }
    }

    /// Locks the state. Never hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The sandbox's world: OAuth grants, accounts, lists, audiences, faults and the request log.
#[derive(Debug)]
pub(crate) struct State {
    pub oauth: OAuthStore,
    pub accounts: Vec<AdAccount>,
    /// Customer lists by id; ids grow with creation, so iteration is creation order.
    pub lists: BTreeMap<u64, CustomerList>,
    /// Audiences by id, in creation order.
    pub audiences: BTreeMap<u64, Audience>,
    pub faults: Faults,
    pub limiter: RateLimiter,
    pub log: Vec<RequestRecord>,
    next_id: u64,
}

impl State {
    /// A fresh id for a list or audience.
    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The ad account with this id, if the sandbox user has it.
    pub fn account(&self, id: &str) -> Option<&AdAccount> {
        self.accounts.iter().find(|a| a.id == id)
    }

    /// The list `id`, if it belongs to `ad_account_id`.
    pub fn list(&self, ad_account_id: &str, id: u64) -> Option<&CustomerList> {
        self.lists.get(&id).filter(|l| l.ad_account_id == ad_account_id)
    }

    /// The audience `id`, if it belongs to `ad_account_id`.
    pub fn audience(&self, ad_account_id: &str, id: u64) -> Option<&Audience> {
        self.audiences.get(&id).filter(|a| a.ad_account_id == ad_account_id)
    }

    /// Deletes a customer list and every audience built on it. False when there was none.
    pub fn delete_customer_list(&mut self, ad_account_id: &str, id: u64) -> bool {
        if self.list(ad_account_id, id).is_none() {
            return false;
        }
        self.lists.remove(&id);
        self.audiences.retain(|_, a| a.customer_list_id != id);
        true
    }

    /// Deletes an audience (its customer list stays). False when there was none.
    pub fn delete_audience(&mut self, ad_account_id: &str, id: u64) -> bool {
        if self.audience(ad_account_id, id).is_none() {
            return false;
        }
        self.audiences.remove(&id).is_some()
    }
}

/// Seconds since the Unix epoch, the unit of every Pinterest timestamp.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Parses a Pinterest id (`^\d+$`, at most 18 digits as the spec's path parameters say).
pub(crate) fn parse_id(raw: &str) -> Option<u64> {
    if raw.is_empty() || raw.len() > 18 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}
