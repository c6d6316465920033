//! Everything the Meta stand-in remembers, behind one lock, and the sandbox clock.
//!
//! As for Pinterest, one `parking_lot::Mutex` over plain collections: every operation is a few
//! map look-ups, the lock is never held across an `.await`, and one lock keeps cross-collection
//! invariants (deleting an audience ends its sessions; the budget and the log see calls in one
//! order) trivially true.
//!
//! Meta's behaviour is full of long durations (tokens live 2 hours or 60 days, sessions close
//! after 90 minutes, the call budget rolls over an hour), so every time the stand-in compares
//! comes from [`Clock`], which a test can move forward
//! ([`MetaHandle::advance_clock`](crate::MetaHandle::advance_clock)) instead of waiting.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use crate::meta::accounts::{self, AdAccount};
use crate::meta::audiences::Audience;
use crate::meta::config::{MetaConfig, MetaFaults};
use crate::meta::log::MetaRequestRecord;
use crate::meta::oauth::TokenStore;
use crate::meta::sessions::Session;
use crate::meta::usage::Usage;
use crate::state::unix_now;

/// First audience id; 17 digits like Meta's.
const FIRST_AUDIENCE_ID: u64 = 23_851_000_000_000_001;

/// The sandbox's notion of now: the real clock plus an offset tests can grow.
#[derive(Debug)]
pub(crate) struct Clock {
    started: Instant,
    offset: Duration,
}

impl Clock {
    fn new() -> Self {
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

    /// Unix seconds now, on the sandbox clock (Meta's timestamps are unix seconds).
    pub fn unix(&self) -> u64 {
        unix_now() + self.offset.as_secs()
    }

    /// Unix seconds at the sandbox instant `at`.
    pub fn unix_at(&self, at: Instant) -> u64 {
        let now = self.now();
        if at >= now {
            self.unix() + at.duration_since(now).as_secs()
        } else {
            self.unix().saturating_sub(now.duration_since(at).as_secs())
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

/// State shared by the server tasks and every [`MetaHandle`](crate::MetaHandle).
#[derive(Debug)]
pub(crate) struct MetaShared {
    state: Mutex<MetaState>,
    pub config: MetaConfig,
    pub addr: SocketAddr,
}

impl MetaShared {
    pub fn new(config: MetaConfig, addr: SocketAddr) -> Self {
        let clock = Clock::new();
        let mut state = MetaState {
            oauth: TokenStore::new(),
            accounts: BTreeMap::new(),
            audiences: BTreeMap::new(),
            sessions: BTreeMap::new(),
            usage: Usage::new(&config),
            faults: config.faults.clone(),
            log: Vec::new(),
            versions: BTreeSet::new(),
            paged_requests: 0,
            next_audience: FIRST_AUDIENCE_ID,
            clock,
        };
        for i in 0..config.ad_accounts {
            state.add_account(&format!("Sandbox Ad Account {}", i + 1));
        }
        Self { state: Mutex::new(state), config, addr }
    }

    /// Locks the state. Never hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, MetaState> {
        self.state.lock()
    }

    /// Locks the state after applying what became due on the sandbox clock (delayed membership
    /// changes, sessions that timed out).
    pub fn settled(&self) -> MutexGuard<'_, MetaState> {
        let mut world = self.state.lock();
        crate::meta::sessions::settle(&mut world, &self.config);
        world
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The stand-in's world.
#[derive(Debug)]
pub(crate) struct MetaState {
    pub clock: Clock,
    pub oauth: TokenStore,
    /// Ad accounts by number (the `<n>` of `act_<n>`).
    pub accounts: BTreeMap<u64, AdAccount>,
    /// Audiences by id; ids grow with creation, so iteration is creation order.
    pub audiences: BTreeMap<u64, Audience>,
    /// Upload sessions by (ad account number, session id): ids are unique per ad account.
    pub sessions: BTreeMap<(u64, i64), Session>,
    pub usage: Usage,
    pub faults: MetaFaults,
    pub log: Vec<MetaRequestRecord>,
    /// Every Graph API version a call named.
    pub versions: BTreeSet<u32>,
    /// Paged requests answered so far (drives `empty_page_every`).
    pub paged_requests: u64,
    next_audience: u64,
}

impl MetaState {
    /// A fresh audience id.
    pub fn next_audience_id(&mut self) -> u64 {
        let id = self.next_audience;
        self.next_audience += 1;
        id
    }

    /// Adds an ad account the sandbox user is assigned to; returns its number.
    pub fn add_account(&mut self, name: &str) -> u64 {
        let number = accounts::FIRST_ACCOUNT_NUMBER + self.accounts.len() as u64;
        self.accounts.insert(number, AdAccount::new(number, name));
        number
    }

    /// The account, if the sandbox user is assigned to it.
    pub fn visible_account(&self, number: u64) -> Option<&AdAccount> {
        self.accounts.get(&number).filter(|a| a.assigned)
    }

    /// The audience, if it exists in an account the sandbox user is assigned to.
    pub fn visible_audience(&self, id: u64) -> Option<&Audience> {
        self.audiences.get(&id).filter(|a| self.visible_account(a.account).is_some())
    }

    /// How many audiences the account holds.
    pub fn audience_count(&self, account: u64) -> usize {
        self.audiences.values().filter(|a| a.account == account).count()
    }

    /// Deletes an audience and ends its sessions. False when there was none.
    pub fn delete_audience(&mut self, id: u64) -> bool {
        if self.audiences.remove(&id).is_none() {
            return false;
        }
        self.sessions.retain(|_, s| s.audience != id);
        true
    }
}

/// `act_<n>` for an account number.
pub(crate) fn account_node(number: u64) -> String {
    format!("act_{number}")
}

/// The number of an `act_<n>` id (a bare `<n>` is accepted too, for handle calls).
pub(crate) fn parse_account(raw: &str) -> Option<u64> {
    parse_number(raw.strip_prefix("act_").unwrap_or(raw))
}

/// A Graph object id: digits only, at most 20.
pub(crate) fn parse_number(raw: &str) -> Option<u64> {
    if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_moves_forward_on_demand() {
        let mut clock = Clock::new();
        let before = clock.unix();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.unix() >= before + 3600);
        assert!(clock.since_start() >= Duration::from_secs(3600));
        let now = clock.now();
        assert!(clock.unix_at(now + Duration::from_secs(60)) >= clock.unix() + 59);
        assert!(clock.unix_at(now - Duration::from_secs(60)) <= clock.unix() - 59);
    }

    #[test]
    fn ids_parse_with_and_without_prefix() {
        assert_eq!(parse_account("act_123"), Some(123));
        assert_eq!(parse_account("123"), Some(123));
        assert_eq!(parse_account("act_"), None);
        assert_eq!(parse_account("act_12a"), None);
        assert_eq!(account_node(7), "act_7");
    }
}
