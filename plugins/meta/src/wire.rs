//! Graph API request and response bodies, as serde types.
//!
//! Response types read only what the plugin uses, tolerate every field being absent (Graph
//! omits null fields, and answers only the `fields` asked for), and accept ids and numbers as
//! either JSON strings or numbers: Graph documents ids as strings, but a number instead must
//! not fail a whole page.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// The fields read from an ad account (`GET /me/adaccounts`, `GET /act_<n>`).
pub const AD_ACCOUNT_FIELDS: &str = "id,account_id,name,account_status,currency,timezone_name,business,user_tasks";

/// [`AD_ACCOUNT_FIELDS`] plus the Custom Audience terms, for `check-target`.
pub const AD_ACCOUNT_CHECK_FIELDS: &str =
    "id,account_id,name,account_status,currency,timezone_name,business,user_tasks,tos_accepted";

/// The fields read from a custom audience (listing and reading).
pub const AUDIENCE_FIELDS: &str = "id,account_id,name,subtype,description,approximate_count_lower_bound,\
     approximate_count_upper_bound,operation_status,delivery_status,customer_file_source,retention_days,\
     time_updated,time_content_updated,fields_violating_integrity_policy";

/// `GET /oauth/access_token` (code exchange and `fb_exchange_token`). Never log it.
#[derive(Deserialize)]
pub struct TokenResponse {
    /// The access token.
    #[serde(default)]
    pub access_token: String,
    /// Seconds until it expires; absent (or 0) for a token that never expires.
    #[serde(default, deserialize_with = "opt_number")]
    pub expires_in: Option<i64>,
}

/// `GET /debug_token`.
#[derive(Debug, Deserialize)]
pub struct DebugToken {
    /// What Meta knows about the token.
    #[serde(default)]
    pub data: DebugTokenData,
}

/// `debug_token`'s `data`.
#[derive(Debug, Default, Deserialize)]
pub struct DebugTokenData {
    /// Whether the token works.
    #[serde(default)]
    pub is_valid: Option<bool>,
    /// When it expires, Unix seconds; 0 = never.
    #[serde(default, deserialize_with = "opt_number")]
    pub expires_at: Option<i64>,
    /// The permissions granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `USER`, `SYSTEM_USER`, `PAGE`, `APP`.
    #[serde(default, rename = "type")]
    pub token_type: Option<String>,
}

/// A cursor-paged listing: `{data, paging: {cursors: {before, after}, next?, previous?}}`.
#[derive(Debug, Deserialize)]
pub struct Paged<T> {
    /// The items of this page (possibly none, even with more to come).
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// Where the listing goes on.
    #[serde(default)]
    pub paging: Option<Paging>,
}

/// `paging` of a listing.
#[derive(Debug, Default, Deserialize)]
pub struct Paging {
    /// The cursors of this page.
    #[serde(default)]
    pub cursors: Option<Cursors>,
    /// The next page's URL: present exactly when more pages follow.
    #[serde(default)]
    pub next: Option<String>,
}

/// `paging.cursors`.
#[derive(Debug, Default, Deserialize)]
pub struct Cursors {
    /// The cursor after this page's last item.
    #[serde(default)]
    pub after: Option<String>,
}

/// An ad account (the fields used).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AdAccount {
    /// `act_<n>`.
    #[serde(default, deserialize_with = "opt_id")]
    pub id: Option<String>,
    /// `<n>`.
    #[serde(default, deserialize_with = "opt_id")]
    pub account_id: Option<String>,
    /// The account's name.
    #[serde(default)]
    pub name: Option<String>,
    /// 1 ACTIVE, 2 DISABLED, 3 UNSETTLED, ...
    #[serde(default, deserialize_with = "opt_number")]
    pub account_status: Option<i64>,
    /// What the calling user may do in the account (MANAGE, ADVERTISE, ANALYZE, ...).
    #[serde(default)]
    pub user_tasks: Vec<String>,
    /// The terms the owning business accepted: `{"custom_audience_tos": 1}`.
    #[serde(default)]
    pub tos_accepted: Option<BTreeMap<String, serde_json::Value>>,
    /// The owning business.
    #[serde(default)]
    pub business: Option<Business>,
    /// The account's currency.
    #[serde(default)]
    pub currency: Option<String>,
}

impl AdAccount {
    /// The bare account number (`account_id`, else `id` without `act_`).
    pub fn number(&self) -> Option<String> {
        self.account_id
            .clone()
            .or_else(|| self.id.as_deref().map(|id| id.strip_prefix("act_").unwrap_or(id).to_string()))
            .filter(|n| !n.is_empty())
    }

    /// Whether the owning business accepted the Custom Audience terms.
    pub fn custom_audience_tos_accepted(&self) -> bool {
        let accepted = self.tos_accepted.as_ref().and_then(|tos| tos.get("custom_audience_tos"));
        match accepted {
            Some(serde_json::Value::Number(n)) => n.as_i64() == Some(1),
            Some(serde_json::Value::String(s)) => s.trim() == "1",
            Some(serde_json::Value::Bool(b)) => *b,
            _ => false,
        }
    }
}

/// A business reference.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Business {
    /// Its id.
    #[serde(default, deserialize_with = "opt_id")]
    pub id: Option<String>,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A `{code, description}` status of a custom audience.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Status {
    /// The code.
    #[serde(default, deserialize_with = "opt_number")]
    pub code: Option<i64>,
    /// Meta's words for it.
    #[serde(default)]
    pub description: Option<String>,
}

/// A custom audience (the fields used).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CustomAudience {
    /// The audience id.
    #[serde(default, deserialize_with = "opt_id")]
    pub id: Option<String>,
    /// The ad account that owns it (the bare number).
    #[serde(default, deserialize_with = "opt_id")]
    pub account_id: Option<String>,
    /// Its name (not unique).
    #[serde(default)]
    pub name: Option<String>,
    /// CUSTOM for customer-file audiences; LOOKALIKE, WEBSITE, ENGAGEMENT, ...
    #[serde(default)]
    pub subtype: Option<String>,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// The least it may hold; -1 (or absent) = not reported.
    #[serde(default, deserialize_with = "opt_number")]
    pub approximate_count_lower_bound: Option<i64>,
    /// The most it may hold; -1 (or absent) = not reported.
    #[serde(default, deserialize_with = "opt_number")]
    pub approximate_count_upper_bound: Option<i64>,
    /// Processing status.
    #[serde(default)]
    pub operation_status: Option<Status>,
    /// Whether ads can deliver to it.
    #[serde(default)]
    pub delivery_status: Option<Status>,
    /// USER_PROVIDED_ONLY, PARTNER_PROVIDED_ONLY, BOTH_USER_AND_PARTNER_PROVIDED.
    #[serde(default)]
    pub customer_file_source: Option<String>,
    /// Days members are kept; 0 or absent = forever.
    #[serde(default, deserialize_with = "opt_number")]
    pub retention_days: Option<i64>,
    /// Last change, Unix seconds.
    #[serde(default, deserialize_with = "opt_number")]
    pub time_updated: Option<i64>,
    /// Last change of the members, Unix seconds.
    #[serde(default, deserialize_with = "opt_number")]
    pub time_content_updated: Option<i64>,
    /// The fields Meta flagged under its integrity policy (shape not documented: kept as JSON).
    #[serde(default)]
    pub fields_violating_integrity_policy: Option<serde_json::Value>,
}

/// `{"id": "..."}`: what a create answers.
#[derive(Debug, Deserialize)]
pub struct Created {
    /// The new object's id.
    #[serde(default, deserialize_with = "opt_id")]
    pub id: Option<String>,
}

/// The answer of `POST` / `DELETE /<audience_id>/users`.
#[derive(Debug, Default, Deserialize)]
pub struct UsersResponse {
    /// The audience written.
    #[serde(default, deserialize_with = "opt_id")]
    pub audience_id: Option<String>,
    /// The session echoed.
    #[serde(default, deserialize_with = "opt_id")]
    pub session_id: Option<String>,
    /// Rows received in the session so far.
    #[serde(default, deserialize_with = "opt_number")]
    pub num_received: Option<i64>,
    /// About how many rows were invalid and dropped.
    #[serde(default, deserialize_with = "opt_number")]
    pub num_invalid_entries: Option<i64>,
    /// Up to 100 examples (a map in the reference, a list in the guide): kept as JSON.
    #[serde(default)]
    pub invalid_entry_samples: Option<serde_json::Value>,
}

/// The `payload` form field of `/users`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct UsersPayload<'a> {
    /// The multi-key schema.
    pub schema: Vec<&'static str>,
    /// One row per user, in schema order; "" for a value the user lacks.
    pub data: Vec<&'a [&'a str]>,
    /// Single PIIs, each hashed on its own (not combined keys).
    pub is_raw: bool,
}

/// The `session` form field of `/users`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct UsersSession {
    /// The session's id, unique within the ad account.
    pub session_id: i64,
    /// This request's place in the session.
    pub batch_seq: u32,
    /// Whether this request ends the session.
    pub last_batch_flag: bool,
    /// How many rows the session will carry.
    pub estimated_num_total: usize,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    String(String),
    Number(serde_json::Number),
    Other(#[allow(dead_code, reason = "only matched, to accept any other JSON")] serde_json::Value),
}

fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Scalar>::deserialize(d)? {
        Some(Scalar::String(s)) => Some(s),
        Some(Scalar::Number(n)) => Some(n.to_string()),
        Some(Scalar::Other(_)) | None => None,
    })
}

fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Scalar>::deserialize(d)? {
        Some(Scalar::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Scalar::String(s)) => {
            s.trim().parse::<i64>().ok().or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64))
        }
        Some(Scalar::Other(_)) | None => None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn audiences_parse_leniently() {
        let a: CustomAudience = serde_json::from_value(json!({
            "id": 6_000_000_001u64, "name": "VIPs", "subtype": "CUSTOM",
            "approximate_count_lower_bound": "1000", "approximate_count_upper_bound": 1200,
            "operation_status": {"code": 200, "description": "Normal"},
            "delivery_status": {"code": "300", "description": "Too small"},
            "fields_violating_integrity_policy": ["name"], "unknown_field": {"x": 1}
        }))
        .unwrap();
        assert_eq!(a.id.as_deref(), Some("6000000001"));
        assert_eq!(a.approximate_count_lower_bound, Some(1000));
        assert_eq!(a.delivery_status.and_then(|s| s.code), Some(300));
        let bare: CustomAudience = serde_json::from_value(json!({"id": "1"})).unwrap();
        assert!(bare.name.is_none() && bare.operation_status.is_none());
    }

    #[test]
    fn pages_and_accounts() {
        let page: Paged<AdAccount> = serde_json::from_value(json!({
            "data": [{"id": "act_42", "name": "Acme", "account_status": 1, "user_tasks": ["MANAGE"],
                      "tos_accepted": {"custom_audience_tos": 1}}],
            "paging": {"cursors": {"before": "b", "after": "a"}, "next": "https://graph/next"}
        }))
        .unwrap();
        let account = &page.data[0];
        assert_eq!(account.number().as_deref(), Some("42"));
        assert!(account.custom_audience_tos_accepted());
        assert_eq!(page.paging.and_then(|p| p.cursors).and_then(|c| c.after).as_deref(), Some("a"));
        let empty: Paged<AdAccount> = serde_json::from_value(json!({"data": []})).unwrap();
        assert!(empty.paging.is_none());
        let no_tos: AdAccount = serde_json::from_value(json!({"id": "act_1", "tos_accepted": {}})).unwrap();
        assert!(!no_tos.custom_audience_tos_accepted());
    }

    #[test]
    fn payload_and_session_serialise_as_meta_documents() {
        let payload = UsersPayload { schema: vec!["EMAIL", "PHONE"], data: vec![&["h1", ""][..]], is_raw: true };
        assert_eq!(
            serde_json::to_string(&payload).unwrap(),
            r#"{"schema":["EMAIL","PHONE"],"data":[["h1",""]],"is_raw":true}"#
        );
        let session = UsersSession { session_id: 7, batch_seq: 1, last_batch_flag: true, estimated_num_total: 2 };
        assert_eq!(
            serde_json::to_string(&session).unwrap(),
            r#"{"session_id":7,"batch_seq":1,"last_batch_flag":true,"estimated_num_total":2}"#
        );
    }

    #[test]
    fn users_response() {
        let r: UsersResponse = serde_json::from_value(json!({
            "audience_id": "6001", "session_id": 7, "num_received": 3, "num_invalid_entries": 1,
            "invalid_entry_samples": {"bad": "Invalid"}
        }))
        .unwrap();
        assert_eq!((r.session_id.as_deref(), r.num_invalid_entries), (Some("7"), Some(1)));
        let t: TokenResponse = serde_json::from_value(json!({"access_token": "t", "token_type": "bearer"})).unwrap();
        assert_eq!(t.expires_in, None);
    }
}
