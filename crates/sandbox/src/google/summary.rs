//! Views of the Google stand-in's state for tests, people and dashboards: what the handle's
//! accessors and the control API's JSON routes answer.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::google::quota::{BucketStats, QuotaBucket};
use crate::google::state::{GoogleShared, UserList};

/// What the Google stand-in holds.
#[derive(Debug, Clone, Serialize)]
pub struct GoogleSummary {
    /// Base URL of the sandbox.
    pub base_url: String,
    /// Every account.
    pub customers: Vec<CustomerSummary>,
    /// Every user list.
    pub user_lists: Vec<UserListSummary>,
    /// Accepted ingestion requests still processing.
    pub pending_requests: usize,
    /// Access tokens neither revoked nor expired.
    pub active_access_tokens: usize,
    /// Calls in the request log.
    pub requests_logged: usize,
    /// Quota counters per bucket.
    pub quota: BTreeMap<QuotaBucket, BucketStats>,
    /// How far the sandbox clock runs ahead of the real one, in seconds.
    pub clock_offset_secs: u64,
}

/// One account in a [`GoogleSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerSummary {
    /// Customer id (digits).
    pub id: String,
    /// Descriptive name.
    pub name: String,
    /// Whether it is a manager account.
    pub manager: bool,
    /// The manager it sits under, if any.
    pub parent: Option<String>,
    /// Whether the user holds it directly.
    pub direct: bool,
    /// `ENABLED`, `CANCELED`, `SUSPENDED` or `CLOSED`.
    pub status: String,
}

/// One user list in a [`GoogleSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserListSummary {
    /// List id (digits).
    pub id: String,
    /// The owning account.
    pub account: String,
    /// Display name (unique per account).
    pub display_name: String,
    /// `CONTACT_ID`, `MOBILE_ID` or `USER_ID`.
    pub upload_key_type: String,
    /// Members now.
    pub members: usize,
    /// The size `sizeInfo` reports now (lags behind `members`).
    pub reported_size: u64,
}

pub(crate) fn user_list(list: &UserList) -> UserListSummary {
    UserListSummary {
        id: list.id.to_string(),
        account: list.account.to_string(),
        display_name: list.display_name.clone(),
        upload_key_type: list.key_type.name().to_owned(),
        members: list.members.len(),
        reported_size: list.reported_size,
    }
}

pub(crate) fn summary(shared: &GoogleShared) -> GoogleSummary {
    let world = shared.settled();
    let customers = world
        .customers
        .values()
        .map(|c| CustomerSummary {
            id: c.id.to_string(),
            name: c.name.clone(),
            manager: c.manager,
            parent: c.parent.map(|p| p.to_string()),
            direct: c.direct,
            status: c.status.clone(),
        })
        .collect();
    GoogleSummary {
        base_url: shared.base_url(),
        customers,
        user_lists: world.user_lists.values().map(user_list).collect(),
        pending_requests: world.requests.values().filter(|r| r.outcomes.is_none()).count(),
        active_access_tokens: world.oauth.active(&world.clock),
        requests_logged: world.log.len(),
        quota: world.quota.stats.iter().map(|(b, s)| (*b, *s)).collect(),
        clock_offset_secs: world.clock.offset().as_secs(),
    }
}
