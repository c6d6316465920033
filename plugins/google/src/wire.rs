//! Google's request and response bodies, read leniently.
//!
//! REST JSON is lowerCamelCase with int64 values as strings (`"id": "123"`); every field is
//! optional here and ids and counts are accepted as strings or numbers, so a sandbox (or a
//! newer API version) that differs in such details still reads, and the code decides what a
//! missing field means.

use serde::{Deserialize, Deserializer};

/// A string, or a number written as one; `None` for null or anything else.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A non-negative integer written as a number or a string; `None` otherwise.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    })
}

/// The answer of `POST /token`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenResponse {
    /// The new access token.
    #[serde(default)]
    pub access_token: Option<String>,
    /// Its lifetime in seconds (about 3599).
    #[serde(default, deserialize_with = "lenient_u64")]
    pub expires_in: Option<u64>,
    /// A refresh token (the code exchange with `access_type=offline`; usually not on refresh).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// The granted scopes, space-separated.
    #[serde(default)]
    pub scope: Option<String>,
}

/// An OAuth error answer: `{"error": "invalid_grant", "error_description": ".."}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OAuthError {
    /// The error code.
    #[serde(default)]
    pub error: Option<String>,
    /// Words for developers.
    #[serde(default)]
    pub error_description: Option<String>,
}

/// The answer of `customers:listAccessibleCustomers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessibleCustomers {
    /// `customers/{id}` of each customer the user holds directly.
    #[serde(default)]
    pub resource_names: Vec<String>,
}

/// One page of `googleAds:search`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    /// The rows.
    #[serde(default)]
    pub results: Vec<SearchRow>,
    /// The next page's token; absent on the last page.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// One row of a `customer_client` query.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRow {
    /// The client.
    #[serde(default)]
    pub customer_client: Option<CustomerClient>,
}

/// A `customer_client` resource: one account in a customer's hierarchy (itself at level 0).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerClient {
    /// The client's customer id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    /// `customers/{id}` of the client.
    #[serde(default)]
    pub client_customer: Option<String>,
    /// Its name.
    #[serde(default)]
    pub descriptive_name: Option<String>,
    /// Whether it is a manager account.
    #[serde(default)]
    pub manager: Option<bool>,
    /// Its distance from the queried customer (0: itself).
    #[serde(default, deserialize_with = "lenient_u64")]
    pub level: Option<u64>,
    /// ENABLED, CANCELED, SUSPENDED, CLOSED, ...
    #[serde(default)]
    pub status: Option<String>,
    /// Whether it is a test account.
    #[serde(default)]
    pub test_account: Option<bool>,
}

/// One page of `userLists`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserListPage {
    /// The lists.
    #[serde(default)]
    pub user_lists: Vec<UserList>,
    /// The next page's token; absent on the last page.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// A Data Manager user list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserList {
    /// `accountTypes/GOOGLE_ADS/accounts/{cid}/userLists/{id}`.
    #[serde(default)]
    pub name: Option<String>,
    /// The numeric id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    /// Whether this account may not edit it.
    #[serde(default)]
    pub read_only: Option<bool>,
    /// The name people see.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// OPEN or CLOSED.
    #[serde(default)]
    pub membership_status: Option<String>,
    /// Why Google closed it (UNUSED).
    #[serde(default)]
    pub closing_reason: Option<String>,
    /// OWNED, SHARED, LICENSED, ...
    #[serde(default)]
    pub access_reason: Option<String>,
    /// ENABLED, or DISABLED when a share was revoked.
    #[serde(default)]
    pub account_access_status: Option<String>,
    /// `"<seconds>s"`.
    #[serde(default)]
    pub membership_duration: Option<String>,
    /// Estimated members per network.
    #[serde(default)]
    pub size_info: Option<SizeInfo>,
    /// What an ingested (Customer Match) list takes.
    #[serde(default)]
    pub ingested_user_list_info: Option<IngestedUserListInfo>,
}

/// A list's estimated members per network.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SizeInfo {
    /// On the Display Network.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub display_network_members_count: Option<u64>,
    /// On Google Search.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub search_network_members_count: Option<u64>,
    /// On YouTube.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub youtube_members_count: Option<u64>,
    /// On Gmail.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub gmail_members_count: Option<u64>,
}

impl SizeInfo {
    /// Each reported count with its network's name.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        [
            ("Display Network", self.display_network_members_count),
            ("Search", self.search_network_members_count),
            ("YouTube", self.youtube_members_count),
            ("Gmail", self.gmail_members_count),
        ]
        .into_iter()
        .filter_map(|(network, count)| count.map(|c| (network, c)))
        .collect()
    }
}

/// What an ingested list takes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestedUserListInfo {
    /// Exactly one of CONTACT_ID, MOBILE_ID, USER_ID, ...
    #[serde(default)]
    pub upload_key_types: Vec<String>,
    /// For CONTACT_ID lists.
    #[serde(default)]
    pub contact_id_info: Option<ContactIdInfo>,
    /// For MOBILE_ID lists.
    #[serde(default)]
    pub mobile_id_info: Option<MobileIdInfo>,
}

/// A contact list's facts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactIdInfo {
    /// The match rate, in percent.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub match_rate_percentage: Option<u64>,
}

/// A mobile-id list's facts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MobileIdInfo {
    /// IOS or ANDROID.
    #[serde(default)]
    pub key_space: Option<String>,
    /// The app.
    #[serde(default)]
    pub app_id: Option<String>,
}

/// The answer of `audienceMembers:ingest` and `:remove`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteResponse {
    /// The id to ask `requestStatus:retrieve` about.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Problems with optional fields (logged only).
    #[serde(default)]
    pub field_warnings: Vec<serde_json::Value>,
}

/// The answer of `requestStatus:retrieve`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetrieveResponse {
    /// One status per destination of the request, in its order.
    #[serde(default)]
    pub request_status_per_destination: Vec<DestinationStatus>,
}

/// How a request did at one destination.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationStatus {
    /// PROCESSING, SUCCESS, PARTIAL_SUCCESS, FAILED, REQUEST_STATUS_UNKNOWN.
    #[serde(default)]
    pub request_status: Option<String>,
    /// Failed records per reason (FAILED and PARTIAL_SUCCESS only).
    #[serde(default)]
    pub error_info: Option<ErrorCounts>,
    /// Records with warnings per reason.
    #[serde(default)]
    pub warning_info: Option<WarningCounts>,
    /// The ingestion's counts and match rate.
    #[serde(default)]
    pub audience_members_ingestion_status: Option<serde_json::Value>,
    /// The removal's counts.
    #[serde(default)]
    pub audience_members_removal_status: Option<serde_json::Value>,
}

/// `errorInfo`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCounts {
    /// One count per reason.
    #[serde(default)]
    pub error_counts: Vec<ReasonCount>,
}

/// `warningInfo`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WarningCounts {
    /// One count per reason.
    #[serde(default)]
    pub warning_counts: Vec<ReasonCount>,
}

/// A number of records and why.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasonCount {
    /// How many records.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub record_count: Option<u64>,
    /// `PROCESSING_ERROR_REASON_*` / `PROCESSING_WARNING_REASON_*`.
    #[serde(default)]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_counts_read_as_strings_or_numbers() {
        let list: UserList = serde_json::from_str(
            r#"{"id": "42", "displayName": "VIP", "sizeInfo": {"displayNetworkMembersCount": "1200",
                "searchNetworkMembersCount": 900}, "ingestedUserListInfo": {"uploadKeyTypes": ["CONTACT_ID"],
                "contactIdInfo": {"matchRatePercentage": 61}}}"#,
        )
        .unwrap();
        assert_eq!(list.id.as_deref(), Some("42"));
        assert_eq!(list.size_info.unwrap().counts(), vec![("Display Network", 1200), ("Search", 900)]);
        let list: UserList = serde_json::from_str(r#"{"id": 43}"#).unwrap();
        assert_eq!(list.id.as_deref(), Some("43"));
        let page: SearchPage = serde_json::from_str(
            r#"{"results": [{"customerClient": {"id": "1112223334", "level": "1", "manager": false}}]}"#,
        )
        .unwrap();
        assert_eq!(page.results[0].customer_client.as_ref().unwrap().level, Some(1));
        let empty: RetrieveResponse = serde_json::from_str("{}").unwrap();
        assert!(empty.request_status_per_destination.is_empty());
    }
}
