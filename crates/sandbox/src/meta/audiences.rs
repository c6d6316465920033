//! Custom audiences: `GET|POST /act_<n>/customaudiences` and `GET|POST|DELETE /<audience_id>`.
//!
//! Only customer-file audiences (`subtype=CUSTOM`) are modelled, because that is what a sync
//! destination makes. Meta's size is a privacy range (`approximate_count_lower_bound` /
//! `_upper_bound`), `-1` until at least 100 people matched; here every accepted row counts as
//! a matched person, and from 100 members the bounds are the member count rounded down and up
//! at its second significant digit (1,234 members: 1,200 to 1,300). `delivery_status` is 300
//! (too small) below 100 members and 200 from there; `operation_status` is 410 before any
//! upload, 441 while delayed changes are pending, 414 during a replace, 471 when flagged, else
//! 200. Names are not unique: two audiences may share one.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::meta::config::MetaConfig;
use crate::meta::errors::GraphError;
use crate::meta::members::{MemberRow, Membership};
use crate::meta::paging::{Links, page};
use crate::meta::params::{Params, check_fields, select};
use crate::meta::state::{Clock, MetaState};

/// Below this many members an audience cannot deliver and shows no size.
pub(crate) const MIN_DELIVERABLE: usize = 100;
/// The first version that no longer answers the deprecated `approximate_count` field.
pub(crate) const APPROXIMATE_COUNT_REMOVED_IN: u32 = 25;

const FIELDS: &[&str] = &[
    "id",
    "account_id",
    "name",
    "subtype",
    "description",
    "approximate_count_lower_bound",
    "approximate_count_upper_bound",
    "operation_status",
    "delivery_status",
    "customer_file_source",
    "retention_days",
    "time_created",
    "time_updated",
    "time_content_updated",
    "fields_violating_integrity_policy",
];

const FILE_SOURCES: &[&str] = &["USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY", "BOTH_USER_AND_PARTNER_PROVIDED"];

/// A membership change waiting for its time (`MetaConfig::membership_delay`).
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Add(Vec<MemberRow>),
    Remove(Vec<MemberRow>),
    /// The outcome of a `usersreplace` session: exactly these members.
    Replace(Vec<MemberRow>),
}

/// A customer-file custom audience.
#[derive(Debug, Clone)]
pub(crate) struct Audience {
    pub id: u64,
    pub account: u64,
    pub name: String,
    pub description: Option<String>,
    pub customer_file_source: Option<String>,
    pub retention_days: Option<u32>,
    pub time_created: u64,
    pub time_updated: u64,
    pub time_content_updated: u64,
    /// Flagged for integrity (operation_status 471): member edits fail with 100/1713230.
    pub flagged: bool,
    /// Whether any upload was ever accepted.
    pub uploaded: bool,
    pub members: Membership,
    pub pending: VecDeque<(Instant, Change)>,
    /// The `usersreplace` session running, if any.
    pub replacing: Option<i64>,
}

impl Audience {
    pub fn new(id: u64, account: u64, name: &str, now: u64) -> Self {
        Self {
            id,
            account,
            name: name.to_owned(),
            description: None,
            customer_file_source: None,
            retention_days: None,
            time_created: now,
            time_updated: now,
            time_content_updated: now,
            flagged: false,
            uploaded: false,
            members: Membership::default(),
            pending: VecDeque::new(),
            replacing: None,
        }
    }

    /// Applies `change` now, or queues it `delay` from now.
    pub fn queue(&mut self, clock: &Clock, delay: Duration, change: Change) {
        if delay.is_zero() && self.pending.is_empty() {
            self.apply(change, clock.unix());
        } else {
            self.pending.push_back((clock.now() + delay, change));
        }
    }

    /// Applies the queued changes whose time has come, in order.
    pub fn apply_due(&mut self, clock: &Clock) {
        let now = clock.now();
        while self.pending.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((due, change)) = self.pending.pop_front() {
                self.apply(change, clock.unix_at(due));
            }
        }
    }

    fn apply(&mut self, change: Change, at: u64) {
        match change {
            Change::Add(rows) => rows.into_iter().for_each(|row| {
                self.members.add(row);
            }),
            Change::Remove(rows) => rows.iter().for_each(|row| {
                self.members.remove_matching(row);
            }),
            Change::Replace(rows) => self.members = Membership::from_rows(rows),
        }
        self.time_content_updated = at;
    }

    pub fn operation_status(&self) -> (u32, &'static str) {
        if self.flagged {
            (471, "This audience has been flagged for violating integrity policies")
        } else if self.replacing.is_some() {
            (414, "Replace in progress")
        } else if !self.pending.is_empty() {
            (441, "Audience is still being populated")
        } else if !self.uploaded {
            (410, "No upload: no data has been added to this audience yet")
        } else {
            (200, "Normal")
        }
    }

    pub fn delivery_status(&self) -> (u32, &'static str) {
        if self.flagged {
            (400, "This audience is unusable: it is flagged for violating integrity policies")
        } else if self.members.len() < MIN_DELIVERABLE {
            (300, "This audience is too small to deliver ads")
        } else {
            (200, "This audience is ready for use")
        }
    }

    /// `approximate_count_lower_bound` / `_upper_bound`.
    pub fn bounds(&self) -> (i64, i64) {
        let n = u64::try_from(self.members.len()).unwrap_or(u64::MAX);
        if n < MIN_DELIVERABLE as u64 {
            return (-1, -1);
        }
        let step = 10_u64.pow(n.ilog10().saturating_sub(1));
        let lower = n / step * step;
        (i64::try_from(lower).unwrap_or(i64::MAX), i64::try_from(lower + step).unwrap_or(i64::MAX))
    }

    fn all_fields(&self, version: u32) -> Map<String, Value> {
        let (lower, upper) = self.bounds();
        let (op, op_text) = self.operation_status();
        let (delivery, delivery_text) = self.delivery_status();
        let mut fields = Map::new();
        fields.insert("id".to_owned(), json!(self.id.to_string()));
        fields.insert("account_id".to_owned(), json!(self.account.to_string()));
        fields.insert("name".to_owned(), json!(self.name));
        fields.insert("subtype".to_owned(), json!("CUSTOM"));
        if let Some(description) = &self.description {
            fields.insert("description".to_owned(), json!(description));
        }
        fields.insert("approximate_count_lower_bound".to_owned(), json!(lower));
        fields.insert("approximate_count_upper_bound".to_owned(), json!(upper));
        if version < APPROXIMATE_COUNT_REMOVED_IN {
            fields.insert("approximate_count".to_owned(), json!(lower));
        }
        fields.insert("operation_status".to_owned(), json!({"code": op, "description": op_text}));
        fields.insert("delivery_status".to_owned(), json!({"code": delivery, "description": delivery_text}));
        if let Some(source) = &self.customer_file_source {
            fields.insert("customer_file_source".to_owned(), json!(source));
        }
        if let Some(days) = self.retention_days {
            fields.insert("retention_days".to_owned(), json!(days));
        }
        fields.insert("time_created".to_owned(), json!(self.time_created));
        fields.insert("time_updated".to_owned(), json!(self.time_updated));
        fields.insert("time_content_updated".to_owned(), json!(self.time_content_updated));
        let violating: Vec<&str> = if self.flagged { vec!["name"] } else { Vec::new() };
        fields.insert("fields_violating_integrity_policy".to_owned(), json!(violating));
        fields
    }

    /// The audience as `fields` asks for it, at API `version`.
    pub fn view(&self, asked: Option<&[String]>, version: u32) -> Result<Value, GraphError> {
        select(self.all_fields(version), &known_fields(version), asked, "CustomAudience")
    }
}

/// The fields an audience answers at API `version`.
fn known_fields(version: u32) -> Vec<&'static str> {
    let mut known = FIELDS.to_vec();
    if version < APPROXIMATE_COUNT_REMOVED_IN {
        known.push("approximate_count");
    }
    known
}

/// Creates an audience without any checks (for seeding) and returns its id.
pub(crate) fn insert(world: &mut MetaState, account: u64, name: &str) -> u64 {
    let id = world.next_audience_id();
    let now = world.clock.unix();
    world.audiences.insert(id, Audience::new(id, account, name, now));
    id
}

/// `GET /act_<n>/customaudiences`. `filtering` is accepted and ignored: which fields Meta
/// filters on is undocumented, so clients must match names themselves.
pub(crate) fn list(
    config: &MetaConfig,
    world: &mut MetaState,
    account: u64,
    links: &Links<'_>,
    version: u32,
) -> Result<Value, GraphError> {
    let asked = links.params.fields();
    check_fields(asked.as_deref(), &known_fields(version), "CustomAudience")?;
    world.paged_requests += 1;
    let ids: Vec<u64> = world.audiences.values().filter(|a| a.account == account).map(|a| a.id).collect();
    let render = |id: u64| match world.audiences.get(&id) {
        Some(audience) => audience.view(asked.as_deref(), version),
        None => Err(GraphError::unknown_object(&id.to_string(), "GET")),
    };
    page(config, world.paged_requests, links, &format!("customaudiences:{account}"), &ids, render)
}

fn retention_days(params: &Params) -> Result<Option<u32>, GraphError> {
    match params.text("retention_days") {
        None => Ok(None),
        Some(raw) => match raw.parse::<u32>() {
            Ok(days) if (1..=180).contains(&days) => Ok(Some(days)),
            _ => Err(GraphError::invalid_param("Param retention_days must be an integer from 1 to 180")),
        },
    }
}

/// `POST /act_<n>/customaudiences`: `{"id"}` of a new, empty audience.
pub(crate) fn create(
    config: &MetaConfig,
    world: &mut MetaState,
    account: u64,
    params: &Params,
) -> Result<Value, GraphError> {
    if world.accounts.get(&account).is_some_and(|a| !a.tos_accepted) {
        return Err(GraphError::tos_not_accepted(account));
    }
    let name = params
        .text("name")
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| GraphError::invalid_param("The parameter name is required"))?;
    match params.text("subtype").as_deref() {
        Some("CUSTOM") => {}
        None => return Err(GraphError::invalid_param("The parameter subtype is required")),
        Some(other) => {
            return Err(GraphError::invalid_param(format!(
                "Param subtype {other}: the sandbox creates customer file (CUSTOM) audiences only"
            )));
        }
    }
    let source = params.text("customer_file_source");
    if let Some(source) = &source
        && !FILE_SOURCES.contains(&source.as_str())
    {
        return Err(GraphError::invalid_param(format!(
            "Param customer_file_source must be one of {{{}}}",
            FILE_SOURCES.join(", ")
        )));
    }
    let retention = retention_days(params)?;
    if world.audience_count(account) >= config.max_customer_file_audiences {
        return Err(GraphError::too_many_audiences(config.max_customer_file_audiences));
    }
    let id = insert(world, account, &name);
    if let Some(audience) = world.audiences.get_mut(&id) {
        audience.description = params.text("description");
        audience.customer_file_source = source;
        audience.retention_days = retention;
    }
    Ok(json!({ "id": id.to_string() }))
}

/// `GET /<audience_id>`.
pub(crate) fn read(world: &MetaState, id: u64, params: &Params, version: u32) -> Result<Value, GraphError> {
    let audience = world.visible_audience(id).ok_or_else(|| GraphError::unknown_object(&id.to_string(), "GET"))?;
    audience.view(params.fields().as_deref(), version)
}

/// `POST /<audience_id>`: changes `name`, `description` or `retention_days`.
pub(crate) fn update(world: &mut MetaState, id: u64, params: &Params) -> Result<Value, GraphError> {
    let retention = retention_days(params)?;
    let now = world.clock.unix();
    let audience = world.audiences.get_mut(&id).ok_or_else(|| GraphError::unknown_object(&id.to_string(), "POST"))?;
    if let Some(name) = params.text("name") {
        if name.trim().is_empty() {
            return Err(GraphError::invalid_param("Param name must be non-empty"));
        }
        audience.name = name;
    }
    if let Some(description) = params.text("description") {
        audience.description = Some(description);
    }
    if retention.is_some() {
        audience.retention_days = retention;
    }
    audience.time_updated = now;
    Ok(json!({ "success": true }))
}

/// `DELETE /<audience_id>`.
pub(crate) fn delete(world: &mut MetaState, id: u64) -> Result<Value, GraphError> {
    if world.delete_audience(id) {
        Ok(json!({ "success": true }))
    } else {
        Err(GraphError::unknown_object(&id.to_string(), "DELETE"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_members(n: usize) -> Audience {
        let mut audience = Audience::new(1, 2, "a", 0);
        for i in 0..n {
            audience.members.add([("EMAIL".to_owned(), format!("{i:064x}"))].into_iter().collect());
        }
        audience
    }

    #[test]
    fn bounds_appear_at_100_members_and_bracket_the_size() {
        assert_eq!(with_members(99).bounds(), (-1, -1));
        assert_eq!(with_members(100).bounds(), (100, 110));
        assert_eq!(with_members(1_234).bounds(), (1_200, 1_300));
        assert_eq!(with_members(99).delivery_status().0, 300);
        assert_eq!(with_members(100).delivery_status().0, 200);
    }

    #[test]
    fn approximate_count_exists_only_before_v25() {
        let audience = with_members(0);
        let asked = vec!["approximate_count".to_owned()];
        assert!(audience.view(Some(&asked), 24).is_ok());
        assert_eq!(audience.view(Some(&asked), 25).err().map(|e| e.code), Some(100));
    }

    #[test]
    fn operation_status_follows_the_audience_life() {
        let mut audience = with_members(0);
        assert_eq!(audience.operation_status().0, 410);
        audience.uploaded = true;
        assert_eq!(audience.operation_status().0, 200);
        audience.replacing = Some(1);
        assert_eq!(audience.operation_status().0, 414);
        audience.flagged = true;
        assert_eq!(audience.operation_status().0, 471);
    }
}
