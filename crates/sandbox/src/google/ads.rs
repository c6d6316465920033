//! Google Ads API account discovery: `customers:listAccessibleCustomers` and
//! `customers/{cid}/googleAds:search` on `customer_client` (and `customer`).
//!
//! `listAccessibleCustomers` is not paged, ignores `login-customer-id` and lists only the
//! accounts the user holds directly, never the clients under a manager. `googleAds:search`
//! answers a [`gaql`](crate::google::gaql) query in fixed pages of
//! [`GoogleConfig::ads_page_size`](crate::google::GoogleConfig::ads_page_size) rows (10,000 at
//! Google; a `pageSize` in the body is `PAGE_SIZE_NOT_SUPPORTED`), with `nextPageToken` absent
//! on the last page; a page token works only with the identical query on the same customer and
//! expires after two hours (`EXPIRED_PAGE_TOKEN`). Reaching a client account needs its manager
//! in `login-customer-id` (else `USER_PERMISSION_DENIED`). The `developer-token` header is
//! accepted and ignored, as it is since its sunset.

use axum::http::HeaderMap;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{Map, Value, json};

use crate::google::config::GoogleConfig;
use crate::google::errors::GoogleError;
use crate::google::gaql::{self, Row, Val};
use crate::google::state::{AdsPageToken, GoogleState, Reach, parse_customer_id};

/// `lower_snake` -> `lowerCamel`.
pub(crate) fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `GET /v{N}/customers:listAccessibleCustomers`.
pub(crate) fn list_accessible(world: &GoogleState) -> Value {
    let names: Vec<String> =
        world.customers.values().filter(|c| c.direct).map(|c| format!("customers/{}", c.id)).collect();
    json!({ "resourceNames": names })
}

fn rows(world: &GoogleState, resource: &str, root: u64) -> Vec<Row> {
    let mut out = Vec::new();
    let entries = if resource == "customer" { vec![(root, 0)] } else { world.hierarchy(root) };
    for (id, level) in entries {
        let Some(c) = world.customers.get(&id) else {
            continue;
        };
        let mut row: Row = Vec::new();
        let mut put = |field: &str, value: Val| row.push((format!("{resource}.{field}"), value));
        if resource == "customer" {
            put("resource_name", Val::Str(format!("customers/{id}")));
        } else {
            put("resource_name", Val::Str(format!("customers/{root}/customerClients/{id}")));
            put("client_customer", Val::Str(format!("customers/{id}")));
            put("level", Val::Int(i64::try_from(level).unwrap_or(i64::MAX)));
            put("hidden", Val::Bool(false));
        }
        put("id", Val::Int(i64::try_from(id).unwrap_or(i64::MAX)));
        put("descriptive_name", Val::Str(c.name.clone()));
        put("manager", Val::Bool(c.manager));
        put("status", Val::Enum(c.status.clone()));
        put("currency_code", Val::Str(c.currency.clone()));
        put("test_account", Val::Bool(c.test_account));
        put("time_zone", Val::Str(c.time_zone.clone()));
        out.push(row);
    }
    out
}

fn render(resource: &str, fields: &[String], row: &Row) -> Value {
    let mut object = Map::new();
    for (name, value) in row {
        let wanted = name.ends_with(".resource_name") || fields.iter().any(|f| f == name);
        if !wanted {
            continue;
        }
        let key = camel(name.split_once('.').map_or(name.as_str(), |(_, f)| f));
        let value = match value {
            Val::Int(n) => json!(n.to_string()),
            Val::Str(s) | Val::Enum(s) => json!(s),
            Val::Bool(b) => json!(b),
        };
        object.insert(key, value);
    }
    let mut result = Map::new();
    result.insert(camel(resource), Value::Object(object));
    Value::Object(result)
}

/// The `login-customer-id` header, if sent.
fn login_header(version: u32, headers: &HeaderMap) -> Result<Option<u64>, GoogleError> {
    let Some(raw) = headers.get("login-customer-id") else {
        return Ok(None);
    };
    let parsed = raw.to_str().ok().map(str::trim).and_then(parse_customer_id);
    parsed.map(Some).ok_or_else(|| {
        GoogleError::ads_invalid(
            version,
            "headerError",
            "INVALID_LOGIN_CUSTOMER_ID",
            "The login customer ID header must be the manager's customer id, ten digits without hyphens.",
        )
    })
}

/// Checks that the user reaches `customer` (logging in as the header's manager, or as itself).
pub(crate) fn check_reach(
    world: &GoogleState,
    version: u32,
    customer: u64,
    headers: &HeaderMap,
) -> Result<(), GoogleError> {
    let login = login_header(version, headers)?.unwrap_or(customer);
    match world.reach(login, customer) {
        Reach::Ok => Ok(()),
        Reach::Denied => Err(GoogleError::ads_permission_denied(version, customer)),
        Reach::NotEnabled => Err(GoogleError::ads_error(
            version,
            "PERMISSION_DENIED",
            "authorizationError",
            "CUSTOMER_NOT_ENABLED",
            "The customer account can't be accessed because it is not yet enabled or has been deactivated.",
        )),
    }
}

/// `POST /v{N}/customers/{cid}/googleAds:search`.
pub(crate) fn search(
    config: &GoogleConfig,
    world: &mut GoogleState,
    version: u32,
    customer_raw: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Result<Value, GoogleError> {
    let invalid = |category, code, message: &str| GoogleError::ads_invalid(version, category, code, message);
    let customer = parse_customer_id(customer_raw).ok_or_else(|| {
        invalid("requestError", "INVALID_CUSTOMER_ID", "The customer id must be digits without hyphens.")
    })?;
    check_reach(world, version, customer, headers)?;
    let Some(body) = body.as_object() else {
        return Err(invalid("requestError", "BAD_RESOURCE_ID", "The request body must be a JSON object."));
    };
    if body.contains_key("pageSize") || body.contains_key("page_size") {
        return Err(invalid(
            "requestError",
            "PAGE_SIZE_NOT_SUPPORTED",
            "Setting the page size is not supported. Search responses have fixed pages of 10,000 rows.",
        ));
    }
    let Some(query_text) = body.get("query").and_then(Value::as_str).filter(|q| !q.trim().is_empty()) else {
        return Err(invalid("requestError", "REQUIRED_FIELD_MISSING", "The 'query' field is required."));
    };
    let query = gaql::parse(query_text).map_err(|e| invalid("queryError", e.code, &e.message))?;
    let normalized = query_text.split_whitespace().collect::<Vec<_>>().join(" ");
    let now = world.clock.now();
    let offset = match body.get("pageToken").or_else(|| body.get("page_token")).and_then(Value::as_str) {
        None | Some("") => 0,
        Some(token) => {
            let record = world
                .ads_page_tokens
                .get(token)
                .filter(|r| r.query == normalized && r.customer == customer)
                .ok_or_else(|| invalid("requestError", "INVALID_PAGE_TOKEN", "Page token is invalid."))?;
            if now >= record.expires_at {
                return Err(invalid("requestError", "EXPIRED_PAGE_TOKEN", "Page token has expired."));
            }
            record.offset
        }
    };
    let mut matched = Vec::new();
    for row in rows(world, &query.resource, customer) {
        if query.matches(&row).map_err(|e| invalid("queryError", e.code, &e.message))? {
            matched.push(row);
        }
    }
    query.sort(&mut matched);
    if let Some(limit) = query.limit {
        matched.truncate(limit);
    }
    let page_size = config.ads_page_size.max(1);
    let end = (offset + page_size).min(matched.len());
    let results: Vec<Value> = matched
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .map(|r| render(&query.resource, &query.fields, r))
        .collect();
    let mask: Vec<String> =
        query.fields.iter().map(|f| f.split('.').map(camel).collect::<Vec<_>>().join(".")).collect();
    let mut answer = Map::new();
    answer.insert("results".to_owned(), json!(results));
    answer.insert("fieldMask".to_owned(), json!(mask.join(",")));
    if end < matched.len() {
        let token = Alphanumeric.sample_string(&mut rand::rng(), 32);
        let record =
            AdsPageToken { query: normalized, customer, offset: end, expires_at: now + config.ads_page_token_ttl };
        world.ads_page_tokens.insert(token.clone(), record);
        answer.insert("nextPageToken".to_owned(), json!(token));
    }
    if body.get("returnTotalResultsCount").and_then(Value::as_bool) == Some(true) {
        answer.insert("totalResultsCount".to_owned(), json!(matched.len().to_string()));
    }
    Ok(Value::Object(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_lower_camel() {
        assert_eq!(camel("descriptive_name"), "descriptiveName");
        assert_eq!(camel("customer_client"), "customerClient");
        assert_eq!(camel("id"), "id");
    }
}
