//! Customer lists, the data path: `POST|GET /v5/ad_accounts/{id}/customer_lists` and
//! `GET|PATCH /v5/ad_accounts/{id}/customer_lists/{customer_list_id}`.
//!
//! Pinterest only reports counters for a list, never who is in it. The sandbox keeps the
//! actual membership as a set so a test can assert exactly who a sync put in and took out. It
//! checks records the way the spec describes them (lowercase; emails plain or hashed; MAIDs and
//! IDFAs hashed) and enforces the per-request record cap, so a plugin that gets either wrong
//! fails against the sandbox before it fails against Pinterest.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::accounts::require_account;
use crate::error::{ApiError, LogExtras, finish};
use crate::paging::{PageRequest, parse_query};
use crate::spec::{self, Operation};
use crate::state::{Shared, State as World, parse_id, unix_now};

/// The spec's `UserListType`: what kind of identifiers a customer list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ListType {
    /// Email addresses, plain (lowercase) or hashed with SHA1, SHA256 or MD5. The default.
    #[default]
    Email,
    /// Apple advertising ids, hashed.
    Idfa,
    /// Mobile advertising ids, hashed.
    Maid,
    /// LiveRamp ids.
    LrId,
    /// Acxiom (DLX) ids.
    DlxId,
    /// Hashed Pinterest user ids.
    HashedPinnerId,
}

impl ListType {
    /// The spec's spelling, e.g. `"EMAIL"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::Idfa => "IDFA",
            Self::Maid => "MAID",
            Self::LrId => "LR_ID",
            Self::DlxId => "DLX_ID",
            Self::HashedPinnerId => "HASHED_PINNER_ID",
        }
    }
}

impl fmt::Display for ListType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the spec's `UserListType` values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown list type `{0}`")]
pub struct UnknownListType(pub String);

impl FromStr for ListType {
    type Err = UnknownListType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Email, Self::Idfa, Self::Maid, Self::LrId, Self::DlxId, Self::HashedPinnerId]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownListType(s.to_owned()))
    }
}

/// A customer list and its members.
#[derive(Debug, Clone)]
pub(crate) struct CustomerList {
    pub id: u64,
    pub ad_account_id: String,
    pub name: String,
    pub list_type: ListType,
    pub created_time: u64,
    pub updated_time: u64,
    pub num_batches: u64,
    pub num_uploaded: u64,
    pub num_removed: u64,
    pub members: HashSet<String>,
}

/// A list as the API shows it: the spec's `CustomerList` fields.
#[derive(Debug, Serialize)]
pub(crate) struct CustomerListView {
    id: String,
    name: String,
    ad_account_id: String,
    created_time: u64,
    updated_time: u64,
    num_batches: u64,
    num_uploaded_user_records: u64,
    num_removed_user_records: u64,
    exceptions: Map<String, Value>,
    status: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// Pinterest needs at least this many matched people before a list is usable.
pub(crate) const MIN_USABLE_SIZE: usize = 100;

impl CustomerList {
    pub fn view(&self) -> CustomerListView {
        CustomerListView {
            id: self.id.to_string(),
            name: self.name.clone(),
            ad_account_id: self.ad_account_id.clone(),
            created_time: self.created_time,
            updated_time: self.updated_time,
            num_batches: self.num_batches,
            num_uploaded_user_records: self.num_uploaded,
            num_removed_user_records: self.num_removed,
            exceptions: Map::new(),
            status: if self.members.len() >= MIN_USABLE_SIZE { "READY" } else { "TOO_SMALL" },
            kind: "customerlist",
        }
    }
}

/// Creates a list without any checks (for seeding) and returns its id.
pub(crate) fn insert(
    world: &mut World,
    ad_account_id: &str,
    name: &str,
    list_type: ListType,
    records: impl IntoIterator<Item = String>,
) -> u64 {
    let id = world.next_id();
    let now = unix_now();
    let members: HashSet<String> = records.into_iter().collect();
    let list = CustomerList {
        id,
        ad_account_id: ad_account_id.to_owned(),
        name: name.to_owned(),
        list_type,
        created_time: now,
        updated_time: now,
        num_batches: 1,
        num_uploaded: members.len() as u64,
        num_removed: 0,
        members,
    };
    world.lists.insert(id, list);
    id
}

/// The records of a body: split on commas, trimmed, empty entries (a trailing comma) skipped.
pub(crate) fn split_records(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|r| !r.is_empty())
}

fn is_hash(record: &str) -> bool {
    matches!(record.len(), 32 | 40 | 64) && record.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why `record` is not acceptable in a list of `list_type`, if it is not.
pub(crate) fn record_problem(list_type: ListType, record: &str) -> Option<&'static str> {
    if record.chars().any(char::is_whitespace) {
        return Some("records must not contain whitespace");
    }
    match list_type {
        ListType::LrId | ListType::DlxId => None,
        _ if record.chars().any(char::is_uppercase) => Some("records must be lowercase"),
        ListType::Email => {
            let plain = record.split_once('@').is_some_and(|(user, domain)| !user.is_empty() && !domain.is_empty());
            (!plain && !is_hash(record)).then_some("not an email address nor a SHA1, SHA256 or MD5 hex hash")
        }
        ListType::Idfa | ListType::Maid | ListType::HashedPinnerId => {
            (!is_hash(record)).then_some("must be hashed with SHA1, SHA256 or MD5 (lowercase hex)")
        }
    }
}

/// Splits and checks the records of one request.
fn checked_records(raw: &str, list_type: ListType, max: usize) -> Result<Vec<&str>, ApiError> {
    let records: Vec<&str> = split_records(raw).collect();
    if records.is_empty() {
        return Err(ApiError::invalid("records must contain at least one record."));
    }
    if records.len() > max {
        return Err(ApiError::invalid(format!(
            "Too many records: {} in one request, at most {max} are allowed.",
            records.len()
        )));
    }
    for (i, record) in records.iter().enumerate() {
        if let Some(problem) = record_problem(list_type, record) {
            let shown: String = record.chars().take(4).collect();
            return Err(ApiError::invalid(format!("Invalid record at position {} (`{shown}…`): {problem}.", i + 1)));
        }
    }
    Ok(records)
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    records: String,
    #[serde(default)]
    list_type: ListType,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "UPPERCASE")]
enum RecordOperation {
    Add,
    Remove,
}

#[derive(Deserialize)]
struct UpdateBody {
    operation_type: RecordOperation,
    records: String,
}

/// `POST /v5/ad_accounts/{ad_account_id}/customer_lists`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut extras = LogExtras::default();
    let result = (|| {
        parse_id(&account).ok_or_else(ApiError::invalid_ad_account_id)?;
        let body: CreateBody = spec::checked_body(Operation::CustomerListCreate, &headers, &body, &mut extras)?;
        require_account(&shared, &account)?;
        let max = shared.config.max_records_per_request;
        let records = checked_records(&body.records, body.list_type, max)?;
        let mut world = shared.lock();
        let id = insert(&mut world, &account, &body.name, body.list_type, records.iter().map(|r| (*r).to_owned()));
        if let Some(list) = world.lists.get_mut(&id) {
            // Pinterest counts uploaded records, duplicates included.
            list.num_uploaded = records.len() as u64;
        }
        world.lists.get(&id).map(CustomerList::view).ok_or_else(|| ApiError::not_found("Customer list not found."))
    })();
    finish(result, extras)
}

/// `GET /v5/ad_accounts/{ad_account_id}/customer_lists`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = (|| {
        require_account(&shared, &account)?;
        let query = parse_query(query.as_deref())?;
        let request = PageRequest::parse(&query, format!("customer_lists:{account}"))?;
        let world = shared.lock();
        Ok(request.page(world.lists.values().filter(|l| l.ad_account_id == account).map(|l| (l.id, l.view()))))
    })();
    finish(result, LogExtras::default())
}

/// `GET /v5/ad_accounts/{ad_account_id}/customer_lists/{customer_list_id}`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path((account, list_id)): Path<(String, String)>,
) -> Response {
    let result = (|| {
        require_account(&shared, &account)?;
        let id = parse_id(&list_id).ok_or_else(|| ApiError::invalid("Invalid customer list id"))?;
        shared
            .lock()
            .list(&account, id)
            .map(CustomerList::view)
            .ok_or_else(|| ApiError::not_found("Customer list not found."))
    })();
    finish(result, LogExtras::default())
}

/// `PATCH /v5/ad_accounts/{ad_account_id}/customer_lists/{customer_list_id}`.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Path((account, list_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut extras = LogExtras::default();
    let result = (|| {
        parse_id(&account).ok_or_else(ApiError::invalid_ad_account_id)?;
        let body: UpdateBody = spec::checked_body(Operation::CustomerListUpdate, &headers, &body, &mut extras)?;
        require_account(&shared, &account)?;
        let id = parse_id(&list_id).ok_or_else(|| ApiError::invalid("Invalid customer list id"))?;
        let not_found = || ApiError::not_found("Customer list not found.");
        let list_type = shared.lock().list(&account, id).ok_or_else(not_found)?.list_type;
        let max = shared.config.max_records_per_request;
        let records = checked_records(&body.records, list_type, max)?;
        let mut world = shared.lock();
        let list = world.lists.get_mut(&id).filter(|l| l.ad_account_id == account).ok_or_else(not_found)?;
        match body.operation_type {
            RecordOperation::Add => {
                list.members.extend(records.iter().map(|r| (*r).to_owned()));
                list.num_uploaded += records.len() as u64;
            }
            RecordOperation::Remove => {
                for record in &records {
                    list.members.remove(*record);
                }
                list.num_removed += records.len() as u64;
            }
        }
        list.num_batches += 1;
        list.updated_time = unix_now();
        Ok(list.view())
    })();
    finish(result, extras)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256: &str = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b";

    #[test]
    fn emails_may_be_plain_or_hashed_but_lowercase() {
        assert_eq!(record_problem(ListType::Email, "ann@example.com"), None);
        assert_eq!(record_problem(ListType::Email, SHA256), None);
        assert_eq!(record_problem(ListType::Email, &SHA256[..40]), None);
        assert_eq!(record_problem(ListType::Email, &SHA256[..32]), None);
        assert!(record_problem(ListType::Email, "Ann@example.com").is_some());
        assert!(record_problem(ListType::Email, &SHA256.to_uppercase()).is_some());
        assert!(record_problem(ListType::Email, "not-an-email").is_some());
        assert!(record_problem(ListType::Email, &SHA256[..50]).is_some());
    }

    #[test]
    fn device_ids_must_be_hashed() {
        assert_eq!(record_problem(ListType::Maid, SHA256), None);
        assert!(record_problem(ListType::Maid, "6d92078a-8246-4ba4-ae5b-76104861e7dc").is_some());
        assert!(record_problem(ListType::Idfa, "ann@example.com").is_some());
    }

    #[test]
    fn trailing_commas_and_spaces_are_not_records() {
        let records: Vec<_> = split_records(" a@b.c, d@e.f,,").collect();
        assert_eq!(records, vec!["a@b.c", "d@e.f"]);
    }

    #[test]
    fn invalid_record_message_names_position_not_the_whole_record() {
        let err = checked_records("a@b.c,Secret@Example.com", ListType::Email, 10).err();
        let message = err.map(|e| e.message).unwrap_or_default();
        assert!(message.contains("position 2"), "{message}");
        assert!(!message.contains("Secret@Example.com"), "{message}");
    }

    #[test]
    fn list_type_round_trips_through_its_spec_spelling() {
        for t in ["EMAIL", "IDFA", "MAID", "LR_ID", "DLX_ID", "HASHED_PINNER_ID"] {
            assert_eq!(t.parse::<ListType>().map(ListType::as_str), Ok(t));
        }
        assert!("PHONE".parse::<ListType>().is_err());
    }
}
