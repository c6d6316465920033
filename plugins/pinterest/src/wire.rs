//! Pinterest API v5 request and response bodies, as serde types.
//!
//! Field names, enums and required fields follow Pinterest's OpenAPI description (v5.23.0):
//! `CustomerListRequest`, `CustomerListUpdateRequest`, `AudienceCreateRequest` (with its
//! `AudienceRule`), `Paginated`, `CustomerList`, `Audience`, `AdAccount`,
//! `OauthAccessTokenResponse` and `Error`. Request types serialise exactly the spec's names;
//! response types read only what the plugin uses and tolerate missing optional fields, so an
//! additive change on Pinterest's side does not break syncing.

use serde::{Deserialize, Deserializer, Serialize};

use crate::list_type::ListType;

/// `CustomerListRequest`: create a customer list with its first records.
#[derive(Debug, Serialize)]
pub struct CustomerListCreate<'a> {
    /// The list's name.
    pub name: &'a str,
    /// Comma-separated hashed identifiers (one string, not an array).
    pub records: &'a str,
    /// What the records are.
    pub list_type: ListType,
}

/// `UserListOperationType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Operation {
    /// Add the records.
    #[serde(rename = "ADD")]
    Add,
    /// Remove the records.
    #[serde(rename = "REMOVE")]
    Remove,
}

/// `CustomerListUpdateRequest`: add records to or remove them from a list.
#[derive(Debug, Serialize)]
pub struct CustomerListUpdate<'a> {
    /// Add or remove.
    pub operation_type: Operation,
    /// Comma-separated hashed identifiers (one string, not an array).
    pub records: &'a str,
}

/// `AudienceCreateRequest` for a CUSTOMER_LIST audience.
#[derive(Debug, Serialize)]
pub struct AudienceCreate<'a> {
    /// The audience's name.
    pub name: &'a str,
    /// Always `"CUSTOMER_LIST"` here (an `AudienceType` value).
    pub audience_type: &'static str,
    /// Which customer list the audience targets.
    pub rule: CustomerListRule<'a>,
    /// Optional description; omitted when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
}

impl<'a> AudienceCreate<'a> {
    /// A CUSTOMER_LIST audience named `name` on list `customer_list_id`.
    pub fn customer_list(name: &'a str, customer_list_id: &'a str, description: Option<&'a str>) -> Self {
        Self { name, audience_type: "CUSTOMER_LIST", rule: CustomerListRule { customer_list_id }, description }
    }
}

/// The `AudienceRule` of a CUSTOMER_LIST audience (`customer_list_id` is singular, a string).
#[derive(Debug, Serialize)]
pub struct CustomerListRule<'a> {
    /// The customer list's id.
    pub customer_list_id: &'a str,
}

/// `Paginated`: one page of a listing.
#[derive(Debug, Deserialize)]
pub struct Paginated<T> {
    /// The items on this page.
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    /// The cursor for the next page; null on the last.
    #[serde(default)]
    pub bookmark: Option<String>,
}

/// `CustomerList` (the fields used).
#[derive(Debug, Clone, Deserialize)]
pub struct CustomerList {
    /// The list's id.
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    /// The list's name.
    #[serde(default)]
    pub name: String,
    /// PROCESSING, READY, TOO_SMALL or UPLOADING.
    #[serde(default)]
    pub status: Option<String>,
    /// Records uploaded so far (counts re-uploads too).
    #[serde(default, deserialize_with = "opt_count")]
    pub num_uploaded_user_records: Option<u64>,
    /// Records removed so far (counts records that were not in the list too).
    #[serde(default, deserialize_with = "opt_count")]
    pub num_removed_user_records: Option<u64>,
}

/// `Audience` (the fields used).
#[derive(Debug, Clone, Deserialize)]
pub struct Audience {
    /// The audience's id.
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    /// The audience's name.
    #[serde(default)]
    pub name: String,
    /// ACTALIKE, ENGAGEMENT, CUSTOMER_LIST, VISITOR, ...
    #[serde(default)]
    pub audience_type: Option<String>,
    /// The audience's rule; for CUSTOMER_LIST it names the list.
    #[serde(default)]
    pub rule: Option<AudienceRuleOut>,
    /// READY, INITIALIZING, TOO_SMALL.
    #[serde(default)]
    pub status: Option<String>,
    /// Matched size, once Pinterest reports one (null before).
    #[serde(default, deserialize_with = "opt_count")]
    pub size: Option<u64>,
}

/// The part of an `AudienceRule` read back.
#[derive(Debug, Clone, Deserialize)]
pub struct AudienceRuleOut {
    /// The customer list a CUSTOMER_LIST audience targets.
    #[serde(default, deserialize_with = "opt_id_string")]
    pub customer_list_id: Option<String>,
}

/// `AdAccount` (the fields used).
#[derive(Debug, Clone, Deserialize)]
pub struct AdAccount {
    /// The account's id.
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    /// The account's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The connection's roles in the account (OWNER, ADMIN, AUDIENCE_MANAGER, ...).
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// `AdAccount` as `check-target` reads it: only the roles matter (the request succeeding is
/// what says the account is visible), so an answer without an `id` is still understood.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AdAccountRoles {
    /// The connection's roles in the account; empty when not given.
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// `OauthAccessTokenResponse` (code and refresh flows). Never log it.
#[derive(Deserialize)]
pub struct TokenResponse {
    /// The new access token.
    pub access_token: String,
    /// Seconds until the access token expires.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// The granted scopes, comma-separated.
    #[serde(default)]
    pub scope: Option<String>,
    /// A new refresh token, when Pinterest issued one.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds until the refresh token expires.
    #[serde(default, deserialize_with = "opt_count")]
    pub refresh_token_expires_in: Option<u64>,
    /// When the refresh token expires, Unix seconds.
    #[serde(default, deserialize_with = "opt_count")]
    pub refresh_token_expires_at: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    String(String),
    Number(serde_json::Number),
}

impl From<StringOrNumber> for String {
    fn from(v: StringOrNumber) -> Self {
        match v {
            StringOrNumber::String(s) => s,
            StringOrNumber::Number(n) => n.to_string(),
        }
    }
}

/// Ids are strings in the spec; accept a JSON number too rather than fail a whole page.
fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    StringOrNumber::deserialize(d).map(String::from)
}

/// A non-negative count or timestamp, read leniently: an integer, a whole float or a digit
/// string; anything else (null, negative, fractional, text) is `None` rather than a failure
/// of the whole page (the spec types some of these as `number`).
fn opt_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match value {
        Some(serde_json::Value::Number(n)) => n.as_u64().or_else(|| {
            n.as_f64().filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19).map(|f| f as u64)
        }),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn opt_id_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<StringOrNumber>::deserialize(d).map(|v| v.map(String::from))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn to_json<T: Serialize>(v: &T) -> Value {
        serde_json::to_value(v).unwrap_or(Value::Null)
    }

    #[test]
    fn customer_list_create_matches_the_spec() {
        let body = CustomerListCreate { name: "VIPs", records: "h1,h2", list_type: ListType::Email };
        assert_eq!(to_json(&body), json!({"name": "VIPs", "records": "h1,h2", "list_type": "EMAIL"}));
    }

    #[test]
    fn customer_list_update_matches_the_spec() {
        let add = CustomerListUpdate { operation_type: Operation::Add, records: "h1" };
        assert_eq!(to_json(&add), json!({"operation_type": "ADD", "records": "h1"}));
        let remove = CustomerListUpdate { operation_type: Operation::Remove, records: "h1,h2" };
        assert_eq!(to_json(&remove), json!({"operation_type": "REMOVE", "records": "h1,h2"}));
    }

    #[test]
    fn audience_create_matches_the_spec() {
        let body = AudienceCreate::customer_list("VIPs", "6431", Some("from the CRM"));
        assert_eq!(
            to_json(&body),
            json!({
                "name": "VIPs",
                "audience_type": "CUSTOMER_LIST",
                "rule": {"customer_list_id": "6431"},
                "description": "from the CRM"
            })
        );
        let bare = AudienceCreate::customer_list("VIPs", "6431", None);
        assert_eq!(
            to_json(&bare),
            json!({"name": "VIPs", "audience_type": "CUSTOMER_LIST", "rule": {"customer_list_id": "6431"}})
        );
    }

    #[test]
    fn pages_and_items_parse_leniently() {
        let page: Paginated<Audience> = match serde_json::from_str(
            r#"{"items":[{"id":"1","name":"A","audience_type":"CUSTOMER_LIST",
                "rule":{"customer_list_id":"6431"},"size":null,"status":"READY"},
                {"id":2,"name":"B","rule":{"customer_list_id":6431}}],"bookmark":null}"#,
        ) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.items[0].size, None);
        assert_eq!(page.items[1].id, "2");
        assert_eq!(page.items[1].rule.as_ref().and_then(|r| r.customer_list_id.as_deref()), Some("6431"));
        assert!(page.bookmark.is_none());
        let empty: Result<Paginated<CustomerList>, _> = serde_json::from_str(r#"{"items":[]}"#);
        assert!(empty.is_ok());
    }

    #[test]
    fn counts_parse_leniently() {
        let sizes: Vec<Option<u64>> =
            [json!(1200), json!(11.0), json!("42"), json!(-3), json!(1.5), json!(null), json!({})]
                .into_iter()
                .map(|size| {
                    serde_json::from_value::<Audience>(json!({"id": "1", "size": size}))
                        .map(|a| a.size)
                        .unwrap_or(Some(999))
                })
                .collect();
        assert_eq!(sizes, vec![Some(1200), Some(11), Some(42), None, None, None, None]);
        let list: CustomerList = match serde_json::from_value(
            json!({"id": "6431", "num_uploaded_user_records": 11.0, "num_removed_user_records": 0}),
        ) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        assert_eq!((list.num_uploaded_user_records, list.num_removed_user_records), (Some(11), Some(0)));
        let token: TokenResponse = match serde_json::from_value(json!({
            "access_token": "pina_x", "expires_in": 60, "refresh_token_expires_in": 5_184_000,
            "refresh_token_expires_at": 1_800_000_000u64
        })) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            (token.refresh_token_expires_in, token.refresh_token_expires_at),
            (Some(5_184_000), Some(1_800_000_000))
        );
    }
}
