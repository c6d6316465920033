//! Ad accounts: `GET /me`, `GET /me/adaccounts` and `GET /act_<n>`.
//!
//! An account has `id` = `act_<n>` and `account_id` = `<n>`. What a destination needs from
//! them is enumeration (fully paged, `next` absent only on the last page), `account_status`,
//! `user_tasks` for permissions, and `tos_accepted`, which tells whether the owning business
//! signed the Custom Audience terms; tests flip status, terms and assignment through the handle.

use serde_json::{Map, Value, json};

use crate::meta::config::MetaConfig;
use crate::meta::errors::GraphError;
use crate::meta::oauth::{Caller, SYSTEM_USER_ID, TokenKind, USER_ID};
use crate::meta::paging::{Links, page};
use crate::meta::params::{Params, check_fields, select};
use crate::meta::state::{MetaState, account_node};

/// First ad account number; 16 digits like Meta's.
pub(crate) const FIRST_ACCOUNT_NUMBER: u64 = 1_203_300_000_000_001;

/// The fields an ad account answers.
pub(crate) const FIELDS: &[&str] = &[
    "id",
    "account_id",
    "name",
    "account_status",
    "currency",
    "timezone_name",
    "business",
    "user_tasks",
    "tos_accepted",
    "user_tos_accepted",
];

/// An ad account.
#[derive(Debug, Clone)]
pub(crate) struct AdAccount {
    pub number: u64,
    pub name: String,
    /// 1 ACTIVE, 2 DISABLED, 3 UNSETTLED, 7 PENDING_RISK_REVIEW, 9 IN_GRACE_PERIOD,
    /// 100 PENDING_CLOSURE, 101 CLOSED, 102 PENDING_SETTLEMENT.
    pub account_status: u32,
    pub currency: String,
    pub timezone_name: String,
    pub user_tasks: Vec<String>,
    /// Whether the owning business signed the Custom Audience terms.
    pub tos_accepted: bool,
    /// Whether the sandbox user (and system user) is assigned to it; unassigned accounts are
    /// invisible (100/33) and not listed.
    pub assigned: bool,
}

impl AdAccount {
    pub fn new(number: u64, name: &str) -> Self {
        Self {
            number,
            name: name.to_owned(),
            account_status: 1,
            currency: "USD".to_owned(),
            timezone_name: "America/Los_Angeles".to_owned(),
            user_tasks: ["MANAGE", "ADVERTISE", "ANALYZE"].map(str::to_owned).to_vec(),
            tos_accepted: true,
            assigned: true,
        }
    }

    /// Every field with a value, for a caller of `kind` (`None`: an app token).
    fn all_fields(&self, kind: Option<TokenKind>) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("id".to_owned(), json!(account_node(self.number)));
        fields.insert("account_id".to_owned(), json!(self.number.to_string()));
        fields.insert("name".to_owned(), json!(self.name));
        fields.insert("account_status".to_owned(), json!(self.account_status));
        fields.insert("currency".to_owned(), json!(self.currency));
        fields.insert("timezone_name".to_owned(), json!(self.timezone_name));
        fields.insert("business".to_owned(), json!({"id": "1002003004005006", "name": "Sandbox Business"}));
        fields.insert("user_tasks".to_owned(), json!(self.user_tasks));
        // Graph leaves fields without a value out: no terms signed, no `tos_accepted`.
        if self.tos_accepted {
            let tos = json!({"custom_audience_tos": 1});
            fields.insert("tos_accepted".to_owned(), tos.clone());
            if kind == Some(TokenKind::User) {
                fields.insert("user_tos_accepted".to_owned(), tos);
            }
        }
        fields
    }

    /// The account as `fields` asks for it.
    pub fn view(&self, caller: &Caller, asked: Option<&[String]>) -> Result<Value, GraphError> {
        let kind = match caller {
            Caller::Token(t) => Some(t.kind),
            Caller::App => None,
        };
        select(self.all_fields(kind), FIELDS, asked, "AdAccount")
    }
}

/// `GET /me`: the user or system user behind the token.
pub(crate) fn me(caller: &Caller, params: &Params) -> Result<Value, GraphError> {
    let Caller::Token(token) = caller else {
        return Err(GraphError::no_current_user());
    };
    let name = match token.kind {
        TokenKind::User => "Sandbox Advertiser",
        TokenKind::SystemUser => "Sandbox System User",
    };
    let id = if token.kind == TokenKind::User { USER_ID } else { SYSTEM_USER_ID };
    let all = json!({"id": id, "name": name}).as_object().cloned().unwrap_or_default();
    // `/me` answers `name` too when no fields are asked.
    let asked = params.fields().unwrap_or_else(|| vec!["name".to_owned()]);
    select(all, &["id", "name"], Some(&asked), "User")
}

/// `GET /me/adaccounts`.
pub(crate) fn list(
    config: &MetaConfig,
    world: &mut MetaState,
    caller: &Caller,
    links: &Links<'_>,
) -> Result<Value, GraphError> {
    if matches!(caller, Caller::App) {
        return Err(GraphError::no_current_user());
    }
    let asked = links.params.fields();
    check_fields(asked.as_deref(), FIELDS, "AdAccount")?;
    world.paged_requests += 1;
    let numbers: Vec<u64> = world.accounts.values().filter(|a| a.assigned).map(|a| a.number).collect();
    let render = |n: u64| match world.accounts.get(&n) {
        Some(account) => account.view(caller, asked.as_deref()),
        None => Err(GraphError::unknown_object(&account_node(n), "GET")),
    };
    page(config, world.paged_requests, links, "adaccounts", &numbers, render)
}

/// `GET /act_<n>`.
pub(crate) fn read(world: &MetaState, caller: &Caller, number: u64, params: &Params) -> Result<Value, GraphError> {
    let account =
        world.visible_account(number).ok_or_else(|| GraphError::unknown_object(&account_node(number), "GET"))?;
    account.view(caller, params.fields().as_deref())
}
