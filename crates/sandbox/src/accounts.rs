//! Ad accounts: `GET /v5/ad_accounts` and `GET /v5/ad_accounts/{ad_account_id}`.
//!
//! Accounts are generated at start-up (how many is configurable) because what a destination
//! needs from them is enumeration: an advertiser with hundreds of accounts must be fully paged,
//! and a plugin that stops after the first page has to fail a test.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde::Serialize;

use crate::error::{ApiError, LogExtras, finish};
use crate::paging::{PageRequest, parse_query};
use crate::state::{Shared, parse_id};

/// First ad account id; 12 digits like Pinterest's.
const FIRST_ACCOUNT_ID: u64 = 549_755_813_888;

/// An ad account, with the spec's `AdAccount` fields.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AdAccount {
    pub id: String,
    pub name: String,
    pub owner: Owner,
    pub country: &'static str,
    pub currency: &'static str,
    pub permissions: Vec<&'static str>,
    pub created_time: u64,
    pub updated_time: u64,
}

/// The spec's `AdAccountOwner`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Owner {
    pub id: String,
    pub username: String,
}

/// `count` accounts owned by the one sandbox user.
pub(crate) fn generate(count: usize, now: u64) -> Vec<AdAccount> {
    (0..count as u64)
        .map(|i| AdAccount {
            id: (FIRST_ACCOUNT_ID + i).to_string(),
            name: format!("Sandbox Ad Account {}", i + 1),
            owner: Owner { id: "1099511627776".to_owned(), username: "sandbox_advertiser".to_owned() },
            country: "US",
            currency: "USD",
            permissions: vec!["OWNER"],
            created_time: now,
            updated_time: now,
        })
        .collect()
}

/// Checks the path's ad account id and that the sandbox user has that account.
pub(crate) fn require_account(shared: &Shared, raw: &str) -> Result<(), ApiError> {
    parse_id(raw).ok_or_else(ApiError::invalid_ad_account_id)?;
    match shared.lock().account(raw) {
        Some(_) => Ok(()),
        None => Err(ApiError::ad_account_not_found()),
    }
}

/// `GET /v5/ad_accounts`.
pub(crate) async fn list(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let result = (|| {
        let query = parse_query(query.as_deref())?;
        if let Some(flag) = query.get("include_shared_accounts")
            && flag != "true"
            && flag != "false"
        {
            return Err(ApiError::invalid("include_shared_accounts must be true or false"));
        }
        let request = PageRequest::parse(&query, "ad_accounts".to_owned())?;
        let state = shared.lock();
        // Every sandbox account is owned, so shared or not the answer is the same.
        Ok(request.page(state.accounts.iter().cloned().enumerate().map(|(i, a)| (i as u64, a))))
    })();
    finish(result, LogExtras::default())
}

/// `GET /v5/ad_accounts/{ad_account_id}`.
pub(crate) async fn get(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let result = require_account(&shared, &id)
        .and_then(|()| shared.lock().account(&id).cloned().ok_or_else(ApiError::ad_account_not_found));
    finish(result, LogExtras::default())
}
