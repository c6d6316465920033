//! Views of the Meta stand-in's state for tests, people and dashboards: what the handle's
//! accessors and the control API's JSON routes answer.

use serde::Serialize;

use crate::meta::audiences::Audience;
use crate::meta::sessions::{Session, SessionOperation};
use crate::meta::state::{MetaShared, MetaState, account_node};
use crate::meta::usage::BucUsage;

/// What the Meta stand-in holds.
#[derive(Debug, Clone, Serialize)]
pub struct MetaSummary {
    /// Base URL of the sandbox (no version).
    pub base_url: String,
    /// Every Graph API version a call named, ascending.
    pub api_versions_used: Vec<u32>,
    /// Every ad account (assigned or not) with its audiences.
    pub ad_accounts: Vec<MetaAccountSummary>,
    /// Tokens neither revoked nor expired.
    pub active_access_tokens: usize,
    /// Calls in the request log.
    pub requests_logged: usize,
    /// Calls refused by an account's `custom_audience` budget.
    pub throttled_calls: usize,
    /// How far the sandbox clock runs ahead of the real one, in seconds.
    pub clock_offset_secs: u64,
}

/// One ad account in a [`MetaSummary`].
#[derive(Debug, Clone, Serialize)]
pub struct MetaAccountSummary {
    /// `act_<n>`.
    pub id: String,
    /// Ad account name.
    pub name: String,
    /// Meta's `account_status` (1 ACTIVE, 2 DISABLED, 101 CLOSED, ...).
    pub account_status: u32,
    /// Whether the owning business signed the Custom Audience terms.
    pub tos_accepted: bool,
    /// Whether the sandbox user is assigned to it (unassigned accounts are invisible).
    pub assigned: bool,
    /// Its `custom_audience` budget usage now.
    pub usage: BucUsage,
    /// Its audiences, oldest first.
    pub audiences: Vec<MetaAudienceSummary>,
}

/// One audience in a [`MetaSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetaAudienceSummary {
    /// Audience id.
    pub id: String,
    /// The ad account holding it (`act_<n>`).
    pub ad_account_id: String,
    /// Audience name (not unique).
    pub name: String,
    /// Distinct member rows now.
    pub members: usize,
    /// Accepted changes not yet applied (`MetaConfig::membership_delay`).
    pub pending_changes: usize,
    /// Flagged for integrity (operation_status 471).
    pub flagged: bool,
    /// `operation_status.code`.
    pub operation_status: u32,
    /// `delivery_status.code`.
    pub delivery_status: u32,
    /// `approximate_count_lower_bound` (-1 below 100 members).
    pub approximate_count_lower_bound: i64,
    /// `approximate_count_upper_bound` (-1 below 100 members).
    pub approximate_count_upper_bound: i64,
}

/// One upload session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    /// The client's `session_id`.
    pub session_id: i64,
    /// The audience it uploads to.
    pub audience_id: String,
    /// Add, remove or replace.
    pub operation: SessionOperation,
    /// Batches accepted.
    pub batches: u64,
    /// Rows received over the session (`num_received`).
    pub num_received: u64,
    /// Invalid rows over the session (`num_invalid_entries`).
    pub num_invalid_entries: u64,
    /// Whether the last batch arrived or the session ran out of time.
    pub finished: bool,
    /// Whether it ran out of time (90 minutes after its first batch).
    pub timed_out: bool,
    /// The client's `estimated_num_total`, if it sent one.
    pub estimated_num_total: Option<u64>,
}

pub(crate) fn audience_summary(audience: &Audience) -> MetaAudienceSummary {
    let (lower, upper) = audience.bounds();
    MetaAudienceSummary {
        id: audience.id.to_string(),
        ad_account_id: account_node(audience.account),
        name: audience.name.clone(),
        members: audience.members.len(),
        pending_changes: audience.pending.len(),
        flagged: audience.flagged,
        operation_status: audience.operation_status().0,
        delivery_status: audience.delivery_status().0,
        approximate_count_lower_bound: lower,
        approximate_count_upper_bound: upper,
    }
}

pub(crate) fn session_summary(session: &Session) -> SessionSummary {
    SessionSummary {
        session_id: session.session_id,
        audience_id: session.audience.to_string(),
        operation: session.operation,
        batches: session.next_seq.saturating_sub(1),
        num_received: session.num_received,
        num_invalid_entries: session.num_invalid,
        finished: session.finished,
        timed_out: session.timed_out,
        estimated_num_total: session.estimated_num_total,
    }
}

/// The usage of `account` now.
pub(crate) fn usage(world: &mut MetaState, account: u64) -> BucUsage {
    let audiences = world.audience_count(account);
    let now = world.clock.now();
    world.usage.reading(account, audiences, now)
}

pub(crate) fn summary(shared: &MetaShared) -> MetaSummary {
    let mut world = shared.settled();
    let numbers: Vec<u64> = world.accounts.keys().copied().collect();
    let mut ad_accounts = Vec::new();
    for number in numbers {
        let usage = usage(&mut world, number);
        let Some(account) = world.accounts.get(&number) else {
            continue;
        };
        ad_accounts.push(MetaAccountSummary {
            id: account_node(number),
            name: account.name.clone(),
            account_status: account.account_status,
            tos_accepted: account.tos_accepted,
            assigned: account.assigned,
            usage,
            audiences: world.audiences.values().filter(|a| a.account == number).map(audience_summary).collect(),
        });
    }
    MetaSummary {
        base_url: shared.base_url(),
        api_versions_used: world.versions.iter().copied().collect(),
        ad_accounts,
        active_access_tokens: world.oauth.active(&world.clock),
        requests_logged: world.log.len(),
        throttled_calls: world.usage.throttled,
        clock_offset_secs: world.clock.offset().as_secs(),
    }
}
