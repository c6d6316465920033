//! Data Manager API user lists (UserListService):
//! `/v1/accountTypes/GOOGLE_ADS/accounts/{cid}/userLists[/{id}]`.
//!
//! - list: `pageSize` (default 50, at most 1000; more is clamped, negative refused),
//!   `pageToken` (bound to the same account and filter), and an AIP-160 `filter` of terms
//!   joined by `AND`: `field = value`, `field != value` and `field IN (v1, v2)` on `id`,
//!   `display_name`, `description`, `membership_status`, `integration_code`, `access_reason`
//!   and `ingested_user_list_info.upload_key_types` (`=` there means "includes");
//! - get, create (`?validateOnly=true` allowed), patch (`?updateMask=`; upload key types are
//!   immutable) and delete;
//! - create rules: `displayName` required and unique in the account
//!   (`DISPLAY_NAME_ALREADY_USED`), exactly one upload key type of `CONTACT_ID`, `MOBILE_ID`
//!   (with `mobileIdInfo.keySpace` and `appId`) or `USER_ID`, `membershipDuration` whole days
//!   (else INVALID_ARGUMENT), at most 540 days (`MEMBERSHIP_DURATION_TOO_LONG`), unset = 540.
//!
//! Access: the `login-account` header (`accountTypes/GOOGLE_ADS/accounts/<cid>`, default the
//! target account) must be an account the token's user holds and the target must sit under it;
//! otherwise, and for a list that does not exist in the account, the answer is 403
//! PERMISSION_DENIED (Google does not tell "no access" from "not found"). `sizeInfo` and
//! `matchRatePercentage` follow the membership only once ingestion requests finished
//! processing, plus [`GoogleConfig::size_delay`](crate::google::GoogleConfig::size_delay).

use std::collections::HashMap;

use axum::http::HeaderMap;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{Map, Value, json};

use crate::google::errors::{FieldViolation, GoogleError};
use crate::google::fields::{self, get, text};
use crate::google::members::Members;
use crate::google::state::{GoogleState, ListPageToken, Reach, UploadKeyType, UserList, parse_customer_id};

/// The longest membership Google allows, in days.
pub(crate) const MAX_DURATION_DAYS: u64 = 540;
const DAY_SECS: u64 = 86_400;
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

/// `accountTypes/GOOGLE_ADS/accounts/<cid>` -> cid.
pub(crate) fn parse_account_name(raw: &str) -> Option<u64> {
    raw.trim().strip_prefix("accountTypes/GOOGLE_ADS/accounts/").and_then(parse_customer_id)
}

/// The account a path names; only Google Ads accounts are modelled.
pub(crate) fn path_account(account_type: &str, cid: &str) -> Result<u64, GoogleError> {
    if account_type != "GOOGLE_ADS" {
        return Err(GoogleError::invalid_field(
            "parent",
            "INVALID_ARGUMENT",
            format!("The sandbox models Google Ads accounts only, not {account_type}."),
        ));
    }
    parse_customer_id(cid)
        .ok_or_else(|| GoogleError::invalid_field("parent", "INVALID_NUMBER_FORMAT", "The account id must be digits."))
}

/// Checks the `login-account` header against the hierarchy for `account`.
pub(crate) fn check_access(world: &GoogleState, headers: &HeaderMap, account: u64) -> Result<(), GoogleError> {
    let login = match headers.get("login-account") {
        None => account,
        Some(raw) => raw.to_str().ok().and_then(parse_account_name).ok_or_else(|| {
            GoogleError::invalid_field(
                "login_account",
                "INVALID_ARGUMENT",
                "The login-account header must be accountTypes/GOOGLE_ADS/accounts/<customer id>.",
            )
        })?,
    };
    match world.reach(login, account) {
        Reach::Ok => Ok(()),
        Reach::Denied | Reach::NotEnabled => Err(GoogleError::permission_denied(format!(
            "The caller does not have permission to access account {account} (logged in as {login})."
        ))),
    }
}

/// The JSON of a user list.
pub(crate) fn render(list: &UserList) -> Value {
    let mut object = Map::new();
    object.insert(
        "name".to_owned(),
        json!(format!("accountTypes/GOOGLE_ADS/accounts/{}/userLists/{}", list.account, list.id)),
    );
    object.insert("id".to_owned(), json!(list.id.to_string()));
    object.insert("readOnly".to_owned(), json!(false));
    object.insert("displayName".to_owned(), json!(list.display_name));
    if let Some(description) = &list.description {
        object.insert("description".to_owned(), json!(description));
    }
    object.insert("membershipStatus".to_owned(), json!(list.membership_status));
    if let Some(code) = &list.integration_code {
        object.insert("integrationCode".to_owned(), json!(code));
    }
    object.insert("membershipDuration".to_owned(), json!(format!("{}s", list.duration_days * DAY_SECS)));
    object.insert("accessReason".to_owned(), json!("OWNED"));
    object.insert("accountAccessStatus".to_owned(), json!("ENABLED"));
    let size = list.reported_size.to_string();
    object.insert(
        "sizeInfo".to_owned(),
        json!({
            "displayNetworkMembersCount": size,
            "searchNetworkMembersCount": size,
            "youtubeMembersCount": size,
            "gmailMembersCount": size,
        }),
    );
    object.insert("targetNetworkInfo".to_owned(), json!({"eligibleForDisplay": true, "eligibleForSearch": true}));
    let mut info = Map::new();
    info.insert("uploadKeyTypes".to_owned(), json!([list.key_type.name()]));
    match list.key_type {
        UploadKeyType::ContactId => {
            info.insert(
                "contactIdInfo".to_owned(),
                json!({"dataSourceType": list.data_source_type, "matchRatePercentage": list.reported_match_rate}),
            );
        }
        UploadKeyType::MobileId => {
            let (key_space, app_id) = list.mobile.clone().unwrap_or_default();
            info.insert(
                "mobileIdInfo".to_owned(),
                json!({"dataSourceType": list.data_source_type, "keySpace": key_space, "appId": app_id}),
            );
        }
        UploadKeyType::UserId => {
            info.insert("userIdInfo".to_owned(), json!({"dataSourceType": list.data_source_type}));
        }
    }
    object.insert("ingestedUserListInfo".to_owned(), Value::Object(info));
    Value::Object(object)
}

/// `"<n>s"` -> whole days, or the violation.
fn parse_duration(raw: &Value, field: &str) -> Result<u64, FieldViolation> {
    let invalid = |why: &str| FieldViolation::new(field, "INVALID_ARGUMENT", why);
    let text =
        raw.as_str().ok_or_else(|| invalid("membershipDuration must be a duration string like \"2592000s\"."))?;
    let seconds = text.strip_suffix('s').ok_or_else(|| invalid("A duration ends with 's'."))?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let whole: u64 = whole.parse().map_err(|_| invalid("The duration is not a number of seconds."))?;
    if !fraction.bytes().all(|b| b == b'0') || !whole.is_multiple_of(DAY_SECS) || whole == 0 {
        return Err(invalid("Valid durations are exact multiples of 24 hours (86400 seconds)."));
    }
    let days = whole / DAY_SECS;
    if days > MAX_DURATION_DAYS {
        return Err(FieldViolation::new(
            field,
            "MEMBERSHIP_DURATION_TOO_LONG",
            format!("The membership duration may be at most {MAX_DURATION_DAYS} days."),
        ));
    }
    Ok(days)
}

const LIST_FIELDS: &[&str] = &[
    "name",
    "id",
    "readOnly",
    "displayName",
    "description",
    "membershipStatus",
    "integrationCode",
    "membershipDuration",
    "closingReason",
    "accessReason",
    "accountAccessStatus",
    "sizeInfo",
    "targetNetworkInfo",
    "ingestedUserListInfo",
];
const INFO_FIELDS: &[&str] = &[
    "uploadKeyTypes",
    "contactIdInfo",
    "mobileIdInfo",
    "userIdInfo",
    "pairIdInfo",
    "pseudonymousIdInfo",
    "partnerAudienceInfo",
];

fn check_status(value: Option<&str>, field: &str, out: &mut Vec<FieldViolation>) {
    if let Some(status) = value
        && !matches!(status, "OPEN" | "CLOSED")
    {
        out.push(FieldViolation::new(field, "INVALID_ENUM_VALUE", "membershipStatus must be OPEN or CLOSED."));
    }
}

fn check_name_unique(world: &GoogleState, account: u64, name: &str, except: Option<u64>) -> Result<(), GoogleError> {
    let taken =
        world.user_lists.values().any(|l| l.account == account && l.display_name == name && Some(l.id) != except);
    if taken {
        return Err(GoogleError::invalid_field(
            "user_list.display_name",
            "DISPLAY_NAME_ALREADY_USED",
            format!("A user list named \"{name}\" already exists in account {account}."),
        ));
    }
    Ok(())
}

/// `POST .../userLists`.
pub(crate) fn create(
    world: &mut GoogleState,
    account: u64,
    body: &Value,
    validate_only: bool,
) -> Result<Value, GoogleError> {
    let empty = Map::new();
    let object = body.as_object().unwrap_or(&empty);
    let mut violations = Vec::new();
    fields::unknown(object, LIST_FIELDS, "user_list", &mut violations);
    let name = text(object, "displayName").map(str::trim).filter(|n| !n.is_empty());
    if name.is_none() {
        violations.push(FieldViolation::new(
            "user_list.display_name",
            "REQUIRED_FIELD_MISSING",
            "displayName is required.",
        ));
    }
    check_status(text(object, "membershipStatus"), "user_list.membership_status", &mut violations);
    let days = match get(object, "membershipDuration") {
        None | Some(Value::Null) => MAX_DURATION_DAYS,
        Some(raw) => parse_duration(raw, "user_list.membership_duration").unwrap_or_else(|v| {
            violations.push(v);
            0
        }),
    };
    let info = get(object, "ingestedUserListInfo").and_then(Value::as_object);
    let mut key_type = None;
    let mut mobile = None;
    let mut data_source = "DATA_SOURCE_TYPE_FIRST_PARTY".to_owned();
    match info {
        None => violations.push(FieldViolation::new(
            "user_list.ingested_user_list_info",
            "REQUIRED_FIELD_MISSING",
            "ingestedUserListInfo with one upload key type is required.",
        )),
        Some(info) => {
            fields::unknown(info, INFO_FIELDS, "user_list.ingested_user_list_info", &mut violations);
            let field = "user_list.ingested_user_list_info.upload_key_types";
            let types: Vec<&str> = get(info, "uploadKeyTypes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match types.as_slice() {
                [one] => match UploadKeyType::parse(one) {
                    Some(parsed) => key_type = Some(parsed),
                    None => violations.push(FieldViolation::new(
                        field,
                        "INVALID_ENUM_VALUE",
                        format!("Upload key type {one} is for data partners or unknown; use CONTACT_ID, MOBILE_ID or USER_ID."),
                    )),
                },
                [] => violations.push(FieldViolation::new(field, "REQUIRED_FIELD_MISSING", "One upload key type is required.")),
                _ => violations.push(FieldViolation::new(field, "INVALID_ARGUMENT", "Exactly one upload key type is allowed.")),
            }
            let sub = match key_type {
                Some(UploadKeyType::ContactId) => "contactIdInfo",
                Some(UploadKeyType::MobileId) => "mobileIdInfo",
                _ => "userIdInfo",
            };
            if let Some(source) = get(info, sub).and_then(Value::as_object).and_then(|s| text(s, "dataSourceType")) {
                data_source = source.to_owned();
            }
            if key_type == Some(UploadKeyType::MobileId) {
                let at = "user_list.ingested_user_list_info.mobile_id_info";
                let sub = get(info, "mobileIdInfo").and_then(Value::as_object);
                let key_space = sub.and_then(|s| text(s, "keySpace"));
                let app_id = sub.and_then(|s| text(s, "appId")).filter(|a| !a.is_empty());
                match key_space {
                    Some("IOS" | "ANDROID") => {}
                    Some(_) => violations.push(FieldViolation::new(
                        format!("{at}.key_space"),
                        "INVALID_ENUM_VALUE",
                        "keySpace must be IOS or ANDROID.",
                    )),
                    None => violations.push(FieldViolation::new(
                        format!("{at}.key_space"),
                        "REQUIRED_FIELD_MISSING",
                        "keySpace is required for MOBILE_ID lists.",
                    )),
                }
                if app_id.is_none() {
                    violations.push(FieldViolation::new(
                        format!("{at}.app_id"),
                        "REQUIRED_FIELD_MISSING",
                        "appId is required for MOBILE_ID lists.",
                    ));
                }
                mobile = Some((key_space.unwrap_or_default().to_owned(), app_id.unwrap_or_default().to_owned()));
            }
        }
    }
    if !violations.is_empty() {
        return Err(GoogleError::invalid(violations));
    }
    let (Some(name), Some(key_type)) = (name, key_type) else {
        return Err(GoogleError::invalid_field("user_list", "INVALID_ARGUMENT", "Incomplete user list."));
    };
    check_name_unique(world, account, name, None)?;
    let id = if validate_only { 0 } else { world.next_user_list_id() };
    let list = UserList {
        id,
        account,
        display_name: name.to_owned(),
        description: text(object, "description").map(str::to_owned),
        membership_status: text(object, "membershipStatus").unwrap_or("OPEN").to_owned(),
        integration_code: text(object, "integrationCode").map(str::to_owned),
        duration_days: days,
        key_type,
        data_source_type: data_source,
        mobile,
        members: Members::default(),
        reported_size: 0,
        reported_match_rate: 0,
        size_due: None,
    };
    let answer = render(&list);
    if !validate_only {
        world.user_lists.insert(id, list);
    }
    Ok(answer)
}

/// The list `id_raw` of `account`, or 403 PERMISSION_DENIED.
pub(crate) fn find(world: &GoogleState, account: u64, id_raw: &str) -> Result<u64, GoogleError> {
    parse_customer_id(id_raw).filter(|id| world.user_lists.get(id).is_some_and(|l| l.account == account)).ok_or_else(
        || {
            GoogleError::permission_denied(format!(
                "The caller does not have permission, or user list {id_raw} does not exist in account {account}."
            ))
        },
    )
}

/// `GET .../userLists/{id}`.
pub(crate) fn read(world: &GoogleState, account: u64, id_raw: &str) -> Result<Value, GoogleError> {
    let id = find(world, account, id_raw)?;
    Ok(world.user_lists.get(&id).map(render).unwrap_or(Value::Null))
}

/// `DELETE .../userLists/{id}`.
pub(crate) fn delete(world: &mut GoogleState, account: u64, id_raw: &str) -> Result<Value, GoogleError> {
    let id = find(world, account, id_raw)?;
    world.user_lists.remove(&id);
    Ok(json!({}))
}

/// `PATCH .../userLists/{id}?updateMask=..`.
pub(crate) fn update(
    world: &mut GoogleState,
    account: u64,
    id_raw: &str,
    body: &Value,
    mask: Option<&str>,
    validate_only: bool,
) -> Result<Value, GoogleError> {
    let id = find(world, account, id_raw)?;
    let empty = Map::new();
    let object = body.as_object().unwrap_or(&empty);
    let mut violations = Vec::new();
    fields::unknown(object, LIST_FIELDS, "user_list", &mut violations);
    let paths: Vec<String> = match mask {
        Some(mask) => mask.split(',').map(str::trim).filter(|p| !p.is_empty()).map(fields::snake).collect(),
        None => object.keys().map(|k| fields::snake(k)).collect(),
    };
    const MUTABLE: &[&str] =
        &["display_name", "description", "membership_status", "membership_duration", "integration_code"];
    for path in &paths {
        if path.starts_with("ingested_user_list_info") {
            violations.push(FieldViolation::new(
                format!("user_list.{path}"),
                "INVALID_ARGUMENT",
                "The upload key types and their info are immutable.",
            ));
        } else if !MUTABLE.contains(&path.as_str()) && mask.is_some() {
            violations.push(FieldViolation::new(
                "update_mask",
                "INVALID_ARGUMENT",
                format!("Field {path} cannot be updated."),
            ));
        }
    }
    let wants = |field: &str| paths.iter().any(|p| p == field);
    let name = text(object, "displayName").map(str::trim).filter(|n| !n.is_empty());
    if wants("display_name") && name.is_none() {
        violations.push(FieldViolation::new(
            "user_list.display_name",
            "REQUIRED_FIELD_MISSING",
            "displayName cannot be empty.",
        ));
    }
    if wants("membership_status") {
        check_status(text(object, "membershipStatus"), "user_list.membership_status", &mut violations);
    }
    let mut days = None;
    if wants("membership_duration") {
        match get(object, "membershipDuration").map(|raw| parse_duration(raw, "user_list.membership_duration")) {
            Some(Ok(d)) => days = Some(d),
            Some(Err(v)) => violations.push(v),
            None => days = Some(MAX_DURATION_DAYS),
        }
    }
    if !violations.is_empty() {
        return Err(GoogleError::invalid(violations));
    }
    if let Some(name) = name.filter(|_| wants("display_name")) {
        check_name_unique(world, account, name, Some(id))?;
    }
    let Some(list) = world.user_lists.get(&id) else {
        return Err(GoogleError::permission_denied("The user list is gone."));
    };
    let mut list = list.clone();
    if let Some(name) = name.filter(|_| wants("display_name")) {
        list.display_name = name.to_owned();
    }
    if wants("description") {
        list.description = text(object, "description").map(str::to_owned);
    }
    if wants("integration_code") {
        list.integration_code = text(object, "integrationCode").map(str::to_owned);
    }
    if let Some(status) = text(object, "membershipStatus").filter(|_| wants("membership_status")) {
        list.membership_status = status.to_owned();
    }
    if let Some(days) = days {
        list.duration_days = days;
    }
    let answer = render(&list);
    if !validate_only {
        world.user_lists.insert(id, list);
    }
    Ok(answer)
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    Compare { field: String, negate: bool, values: Vec<String> },
}

fn parse_filter(filter: &str) -> Result<Vec<Term>, GoogleError> {
    let bad = |why: &str| GoogleError::invalid_field("filter", "INVALID_ARGUMENT", format!("Invalid filter: {why}"));
    let mut terms = Vec::new();
    if filter.trim().is_empty() {
        return Ok(terms);
    }
    for raw in split_and(filter) {
        let raw = raw.trim();
        let (field, negate, rest) = if let Some((f, r)) = raw.split_once("!=") {
            (f, true, r)
        } else if let Some((f, r)) = raw.split_once('=') {
            (f, false, r)
        } else if let Some(index) = raw.find(" IN") {
            let (f, r) = raw.split_at(index);
            (f, false, r.trim_start().trim_start_matches("IN"))
        } else {
            return Err(bad(&format!("cannot read the term `{raw}`")));
        };
        let field = fields::snake(field.trim());
        const FIELDS: &[&str] = &[
            "id",
            "display_name",
            "description",
            "membership_status",
            "integration_code",
            "access_reason",
            "ingested_user_list_info.upload_key_types",
        ];
        if !FIELDS.contains(&field.as_str()) {
            return Err(bad(&format!("unknown field `{field}`")));
        }
        let rest = rest.trim();
        let values: Vec<String> = if let Some(list) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            list.split(',').map(unquote).collect()
        } else {
            vec![unquote(rest)]
        };
        if values.iter().any(String::is_empty) {
            return Err(bad("empty value"));
        }
        terms.push(Term::Compare { field, negate, values });
    }
    Ok(terms)
}

/// Splits on ` AND ` outside quotes.
fn split_and(filter: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let chars: Vec<char> = filter.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if chars[i..].starts_with(&[' ', 'A', 'N', 'D', ' ']) => {
                parts.push(std::mem::take(&mut current));
                i += 5;
                continue;
            }
            None => {}
        }
        current.push(c);
        i += 1;
    }
    parts.push(current);
    parts
}

fn unquote(raw: &str) -> String {
    let raw = raw.trim();
    let stripped = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')));
    stripped.unwrap_or(raw).replace("\\\"", "\"")
}

fn passes(list: &UserList, terms: &[Term]) -> bool {
    terms.iter().all(|Term::Compare { field, negate, values }| {
        let actual: Vec<String> = match field.as_str() {
            "id" => vec![list.id.to_string()],
            "display_name" => vec![list.display_name.clone()],
            "description" => vec![list.description.clone().unwrap_or_default()],
            "membership_status" => vec![list.membership_status.clone()],
            "integration_code" => vec![list.integration_code.clone().unwrap_or_default()],
            "access_reason" => vec!["OWNED".to_owned()],
            _ => vec![list.key_type.name().to_owned()],
        };
        let hit = values.iter().any(|v| actual.contains(v));
        hit != *negate
    })
}

/// `GET .../userLists?pageSize=&pageToken=&filter=`.
pub(crate) fn list(
    world: &mut GoogleState,
    account: u64,
    query: &HashMap<String, String>,
) -> Result<Value, GoogleError> {
    let page_size = match query.get("pageSize").or_else(|| query.get("page_size")).map(|s| s.trim().parse::<i64>()) {
        None => DEFAULT_PAGE_SIZE,
        Some(Ok(n)) if n < 0 => {
            return Err(GoogleError::invalid_field("page_size", "INVALID_ARGUMENT", "pageSize cannot be negative."));
        }
        Some(Ok(0)) => DEFAULT_PAGE_SIZE,
        Some(Ok(n)) => usize::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE),
        Some(Err(_)) => {
            return Err(GoogleError::invalid_field("page_size", "INVALID_ARGUMENT", "pageSize must be an integer."));
        }
    };
    let filter = query.get("filter").cloned().unwrap_or_default();
    let terms = parse_filter(&filter)?;
    let offset = match query.get("pageToken").or_else(|| query.get("page_token")).filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => world
            .list_page_tokens
            .get(token)
            .filter(|t| t.account == account && t.filter == filter)
            .map(|t| t.offset)
            .ok_or_else(|| {
                GoogleError::invalid_field(
                    "page_token",
                    "INVALID_ARGUMENT",
                    "The page token is invalid for this request.",
                )
            })?,
    };
    let matched: Vec<&UserList> =
        world.user_lists.values().filter(|l| l.account == account && passes(l, &terms)).collect();
    let end = (offset + page_size).min(matched.len());
    let page: Vec<Value> = matched.get(offset..end).unwrap_or_default().iter().map(|l| render(l)).collect();
    let more = end < matched.len();
    let mut answer = Map::new();
    if !page.is_empty() {
        answer.insert("userLists".to_owned(), json!(page));
    }
    if more {
        let token = Alphanumeric.sample_string(&mut rand::rng(), 24);
        world.list_page_tokens.insert(token.clone(), ListPageToken { account, filter, offset: end });
        answer.insert("nextPageToken".to_owned(), json!(token));
    }
    Ok(Value::Object(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_must_be_whole_days_up_to_540() {
        let field = "f";
        assert_eq!(parse_duration(&json!("2592000s"), field), Ok(30));
        assert_eq!(parse_duration(&json!("46656000s"), field), Ok(540));
        assert_eq!(parse_duration(&json!("46656000.000s"), field), Ok(540));
        assert_eq!(
            parse_duration(&json!("46742400s"), field).err().map(|v| v.reason),
            Some("MEMBERSHIP_DURATION_TOO_LONG")
        );
        assert_eq!(parse_duration(&json!("90000s"), field).err().map(|v| v.reason), Some("INVALID_ARGUMENT"));
        assert_eq!(parse_duration(&json!(86400), field).err().map(|v| v.reason), Some("INVALID_ARGUMENT"));
    }

    #[test]
    fn filters_read_aip160_terms() {
        let terms = parse_filter(r#"display_name = "News AND more" AND membership_status != CLOSED"#);
        assert_eq!(terms.as_ref().map(Vec::len).ok(), Some(2));
        let terms = parse_filter(r#"ingestedUserListInfo.uploadKeyTypes IN ("CONTACT_ID", "USER_ID")"#);
        assert!(terms.is_ok_and(|t| matches!(&t[0], Term::Compare { values, .. } if values.len() == 2)));
        assert!(parse_filter("size > 3").is_err());
        assert!(parse_filter("nonsense").is_err());
    }
}
