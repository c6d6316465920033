//! Audiences, what advertisers target: `POST|GET /v5/ad_accounts/{id}/audiences` and
//! `GET|PATCH /v5/ad_accounts/{id}/audiences/{audience_id}`.
//!
//! Only `CUSTOMER_LIST` audiences are modelled, because that is what a sync destination makes:
//! a customer list "X" paired with an audience "X" built on it. An audience's size is the live
//! size of its list, so a test can watch a sync grow it. Removal (`operation_type: REMOVE`) and
//! deletion from outside (the control API) both make the audience answer 404, which is how a
//! destination learns that an advertiser deleted it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::accounts::require_account;
use crate::customer_lists::MIN_USABLE_SIZE;
use crate::error::{ApiError, LogExtras, finish};
use crate::paging::{Page, PageRequest, parse_query};
use crate::spec::{self, Operation};
use crate::state::{Shared, State as World, parse_id, unix_now};

/// A customer-list audience.
#[derive(Debug, Clone)]
pub(crate) struct Audience {
    pub id: u64,
    pub ad_account_id: String,
    pub name: String,
    pub description: Option<String>,
    pub customer_list_id: u64,
    pub created: u64,
    pub updated: u64,
}

/// An audience as the API shows it: the spec's `Audience` fields.
#[derive(Debug, Serialize)]
pub(crate) struct AudienceView {
    id: String,
    ad_account_id: String,
    name: String,
    audience_type: &'static str,
    description: Option<String>,
    rule: RuleView,
    size: Option<u64>,
    status: &'static str,
    created_timestamp: u64,
    updated_timestamp: u64,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct RuleView {
    customer_list_id: String,
}

impl Audience {
    pub fn view(&self, world: &World) -> AudienceView {
        let size = world.lists.get(&self.customer_list_id).map_or(0, |l| l.members.len());
        AudienceView {
            id: self.id.to_string(),
            ad_account_id: self.ad_account_id.clone(),
            name: self.name.clone(),
            audience_type: "CUSTOMER_LIST",
            description: self.description.clone(),
            rule: RuleView { customer_list_id: self.customer_list_id.to_string() },
            size: Some(size as u64),
            status: if size >= MIN_USABLE_SIZE { "READY" } else { "TOO_SMALL" },
            created_timestamp: self.created,
            updated_timestamp: self.updated,
            kind: "audience",
        }
    }
}

/// Creates an audience without any checks (for seeding) and returns its id.
pub(crate) fn insert(
    world: &mut World,
    ad_account_id: &str,
    name: &str,
    description: Option<String>,
    customer_list_id: u64,
) -> u64 {
    let id = world.next_id();
    let now = unix_now();
    world.audiences.insert(
        id,
        Audience {
            id,
            ad_account_id: ad_account_id.to_owned(),
            name: name.to_owned(),
            description,
            customer_list_id,
            created: now,
            updated: now,
        },
    );
    id
}

#[derive(Deserialize)]
struct Rule {
    customer_list_id: Option<String>,
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    audience_type: String,
    rule: Rule,
    description: Option<String>,
}

#[derive(Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
enum UpdateOperation {
    #[default]
    Update,
    Remove,
}

#[derive(Deserialize)]
struct UpdateBody {
    #[serde(default)]
    operation_type: UpdateOperation,
    name: Option<String>,
    description: Option<String>,
    rule: Option<Rule>,
}

/// The customer list a rule names, which must exist in `account`.
fn rule_list(world: &World, account: &str, rule: &Rule) -> Result<u64, ApiError> {
    let raw = rule
        .customer_list_id
        .as_deref()
        .ok_or_else(|| ApiError::invalid("rule.customer_list_id is required for CUSTOMER_LIST audiences."))?;
    parse_id(raw)
        .filter(|id| world.list(account, *id).is_some())
        .ok_or_else(|| ApiError::invalid(format!("Customer list {raw} not found in ad account {account}.")))
}

fn audience_id(raw: &str) -> Result<u64, ApiError> {
    parse_id(raw).ok_or_else(|| ApiError::invalid("Invalid audience id"))
}

fn not_found() -> ApiError {
    ApiError::not_found("Audience not found.")
}

/// `POST /v5/ad_accounts/{ad_account_id}/audiences`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut extras = LogExtras::default();
    let result = (|| {
        parse_id(&account).ok_or_else(ApiError::invalid_ad_account_id)?;
        let body: CreateBody = spec::checked_body(Operation::AudienceCreate, &headers, &body, &mut extras)?;
        require_account(&shared, &account)?;
        if body.audience_type != "CUSTOMER_LIST" {
            return Err(ApiError::invalid("The sandbox supports only CUSTOMER_LIST audiences."));
        }
        let mut world = shared.lock();
        let list = rule_list(&world, &account, &body.rule)?;
        let id = insert(&mut world, &account, &body.name, body.description, list);
        world.audiences.get(&id).map(|a| a.view(&world)).ok_or_else(not_found)
    })();
    finish(result, extras)
}

/// `GET /v5/ad_accounts/{ad_account_id}/audiences`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = (|| {
        require_account(&shared, &account)?;
        let query = parse_query(query.as_deref())?;
        let request = PageRequest::parse(&query, format!("audiences:{account}"))?;
        match query.get("ownership_type").map(String::as_str) {
            None | Some("OWNED") => {}
            // Nobody shares audiences with the sandbox user.
            Some("RECEIVED") => {
                return Ok(Page { items: Vec::new(), bookmark: None });
            }
            Some(_) => return Err(ApiError::invalid("ownership_type must be OWNED or RECEIVED")),
        }
        let world = shared.lock();
        Ok(request
            .page(world.audiences.values().filter(|a| a.ad_account_id == account).map(|a| (a.id, a.view(&world)))))
    })();
    finish(result, LogExtras::default())
}

/// `GET /v5/ad_accounts/{ad_account_id}/audiences/{audience_id}`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path((account, audience)): Path<(String, String)>,
) -> Response {
    let result = (|| {
        require_account(&shared, &account)?;
        let id = audience_id(&audience)?;
        let world = shared.lock();
        world.audience(&account, id).map(|a| a.view(&world)).ok_or_else(not_found)
    })();
    finish(result, LogExtras::default())
}

/// `PATCH /v5/ad_accounts/{ad_account_id}/audiences/{audience_id}`: UPDATE or REMOVE.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Path((account, audience)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut extras = LogExtras::default();
    let result = (|| {
        parse_id(&account).ok_or_else(ApiError::invalid_ad_account_id)?;
        let body: UpdateBody = spec::checked_body(Operation::AudienceUpdate, &headers, &body, &mut extras)?;
        require_account(&shared, &account)?;
        let id = audience_id(&audience)?;
        let mut world = shared.lock();
        let view = world.audience(&account, id).map(|a| a.view(&world)).ok_or_else(not_found)?;
        if body.operation_type == UpdateOperation::Remove {
            world.delete_audience(&account, id);
            return Ok(view);
        }
        let list = match &body.rule {
            Some(rule) => Some(rule_list(&world, &account, rule)?),
            None => None,
        };
        let audience = world.audiences.get_mut(&id).ok_or_else(not_found)?;
        if let Some(name) = body.name {
            audience.name = name;
        }
        if let Some(description) = body.description {
            audience.description = Some(description);
        }
        if let Some(list) = list {
            audience.customer_list_id = list;
        }
        audience.updated = unix_now();
        world.audiences.get(&id).map(|a| a.view(&world)).ok_or_else(not_found)
    })();
    finish(result, extras)
}
