//! Turning Google's answers into `destination-error`.
//!
//! Google's APIs answer failures as a `google.rpc.Status`: `{"error": {code, message, status,
//! details: [ErrorInfo {reason, domain, metadata}, BadRequest {fieldViolations: [{field,
//! description, reason}]}, RetryInfo {retryDelay}, RequestInfo {requestId}, GoogleAdsFailure
//! {errors: [{errorCode: {"<category>Error": "<ENUM>"}}]}]}}` (see
//! `crates/sandbox/spec/google-notes.md`, "Errors"). The mapping looks at the reasons first and
//! the HTTP status last, in this order:
//!
//! | answer | error |
//! |---|---|
//! | 429, status `RESOURCE_EXHAUSTED`, Ads `quotaError` `RESOURCE_EXHAUSTED` / `RESOURCE_TEMPORARILY_EXHAUSTED` | `rate-limited(wait)`: the `Retry-After` header, else `RetryInfo.retryDelay` (Ads: `quotaErrorDetails.retryDelay`), else by `ErrorInfo.metadata.quota_limit`: a per-minute quota the rest of the minute, a per-day quota an hour (the daily reset is at midnight Pacific time; the host simply asks again an hour later), else none (the host backs off) |
//! | 401, status `UNAUTHENTICATED`; Ads `OAUTH_TOKEN_EXPIRED`, `OAUTH_TOKEN_INVALID`, `OAUTH_TOKEN_REVOKED`, `NOT_ADS_USER` | `unauthorized` (the host refreshes once, then asks for re-authorization) |
//! | `ACCESS_TOKEN_SCOPE_INSUFFICIENT` | `unauthorized`: re-authorize granting both scopes |
//! | `SERVICE_DISABLED` | `action-required`: enable the API in the Cloud project (Google's activation link) |
//! | `TERMS_AND_CONDITIONS_NOT_SIGNED` (any `TERMS…`), Ads `MISSING_TOS`, `CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS` | `action-required`: accept the Customer Match terms in Google Ads |
//! | `NOT_ALLOWLISTED`, Ads `CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE` | `action-required` |
//! | `EU_POLITICAL_ADVERTISING_DECLARATION_REQUIRED` | `action-required` |
//! | Ads `USER_PERMISSION_DENIED`, `CUSTOMER_NOT_ENABLED`, `CLOUD_PROJECT_NOT_APPROVED_FOR_PRODUCTION`, `DEVELOPER_TOKEN_NOT_APPROVED` | `action-required` |
//! | `PERMISSION_DENIED` (DM reason, "no permission or not found") | on a call about one list: `not-found` (the list is gone or out of reach); otherwise `action-required` (the Google user cannot reach the account) |
//! | `INVALID_USER_LIST_ID`, `NOT_FOUND`, HTTP 404 | `not-found` |
//! | `INVALID_USER_LIST_TYPE`, `INVALID_DESTINATION`, `DESTINATION_ACCOUNT_TYPE_MISMATCH`, `OPERATING_ACCOUNT_LOGIN_ACCOUNT_MISMATCH`, `DATA_PARTNER_USER_LIST_MUTATE_NOT_ALLOWED` | `action-required`: the sync's list or account cannot take these members |
//! | a 400 of `audienceMembers:ingest` / `:remove` with `TOO_MANY_AUDIENCE_MEMBERS` | `invalid-request` (the host splits the batch) |
//! | a 400 of a write whose `fieldViolations` all name `audience_members[i]…` | `rejected-users`: member `i` of the request is the batch's user, with Google's reason (the host errors them and resends the rest at once) |
//! | a 400 of a write with a violation elsewhere | `invalid-request` |
//! | 500, 502, 503, 504, 408, 409; status `INTERNAL`, `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `UNKNOWN`, `ABORTED`; reasons `INTERNAL_ERROR`, `DEADLINE_EXCEEDED`, Ads `INTERNAL_ERROR`, `TRANSIENT_ERROR` | `transient` |
//! | another 403 | `unauthorized` |
//! | anything else (400, ...) | `invalid-request` |
//!
//! Messages say what to do and carry Google's message, reason and `requestId` (Google support
//! asks for it); they never carry a token: Google never echoes one, and [`crate::client`]
//! redacts the connection's secrets from every message besides.

use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::{DestinationError, RejectedUser};
use serde_json::Value;

/// The longest part of Google's message carried into an error, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// The wait for a per-day quota: the host asks again after it.
pub const DAILY_QUOTA_WAIT_MS: u32 = 3_600_000;

/// Which API a call goes to, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Google's OAuth token endpoint.
    OAuth,
    /// The Google Ads API (account discovery).
    Ads,
    /// The Data Manager API.
    DataManager,
}

impl Api {
    /// The API's name for people.
    pub fn name(self) -> &'static str {
        match self {
            Api::OAuth => "Google OAuth",
            Api::Ads => "Google Ads API",
            Api::DataManager => "Data Manager API",
        }
    }
}

/// What a failed call was, for the mapping and its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Completes "could not ...": "list the user lists of Google Ads account 1234567890".
    pub what: String,
    /// The API.
    pub api: Api,
    /// Whether the call is about one list (a `PERMISSION_DENIED` then means the list is gone
    /// or out of reach).
    pub about_list: bool,
    /// The account in words, for messages that say where to act.
    pub account: Option<String>,
}

impl Call {
    /// A call to `api` doing `what`.
    pub fn new(api: Api, what: impl Into<String>) -> Self {
        Self { what: what.into(), api, about_list: false, account: None }
    }

    /// This call, about one list.
    pub fn about_list(mut self) -> Self {
        self.about_list = true;
        self
    }

    /// This call, in the account described as `account`.
    pub fn in_account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    fn account_words(&self) -> &str {
        self.account.as_deref().unwrap_or("the Google Ads account")
    }
}

/// One `BadRequest.fieldViolations` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violation {
    /// The field path (`audience_members[12].user_data.user_identifiers[1]`).
    pub field: String,
    /// Google's words.
    pub description: String,
    /// The `ErrorReason`, when given.
    pub reason: Option<String>,
}

/// The parts of a `google.rpc.Status` the mapping uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoogleError {
    /// The HTTP code Google put in the body.
    pub code: Option<i64>,
    /// Google's message.
    pub message: Option<String>,
    /// The canonical status (`INVALID_ARGUMENT`, ...).
    pub status: Option<String>,
    /// Every reason given: `ErrorInfo.reason`, the violations' reasons, Ads error codes.
    pub reasons: Vec<String>,
    /// `ErrorInfo.metadata`.
    pub metadata: Vec<(String, String)>,
    /// `BadRequest.fieldViolations`.
    pub violations: Vec<Violation>,
    /// `RetryInfo.retryDelay` (or Ads `quotaErrorDetails.retryDelay`), in milliseconds.
    pub retry_delay_ms: Option<u32>,
    /// Google's request id.
    pub request_id: Option<String>,
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string).filter(|s| !s.is_empty())
}

/// A protobuf `Duration` as JSON (`"12s"`, `"0.5s"`, or `{seconds, nanos}`) in milliseconds,
/// rounded up.
pub fn duration_ms(value: &Value) -> Option<u32> {
    let seconds: f64 = match value {
        Value::String(s) => s.trim().strip_suffix('s')?.trim().parse().ok()?,
        Value::Object(o) => {
            let secs = o.get("seconds").and_then(|s| s.as_f64().or_else(|| s.as_str()?.parse().ok())).unwrap_or(0.0);
            let nanos = o.get("nanos").and_then(Value::as_f64).unwrap_or(0.0);
            secs + nanos / 1e9
        }
        _ => return None,
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    let ms = (seconds * 1000.0).ceil();
    Some(if ms >= f64::from(u32::MAX) { u32::MAX } else { ms as u32 })
}

impl GoogleError {
    /// The error of a response body, if it is a `google.rpc.Status` envelope.
    pub fn parse(body: &[u8]) -> Option<GoogleError> {
        let root: Value = serde_json::from_slice(body).ok()?;
        let error = root.get("error")?.as_object()?;
        let mut out = GoogleError {
            code: error.get("code").and_then(Value::as_i64),
            message: error.get("message").and_then(Value::as_str).map(str::to_string),
            status: error.get("status").and_then(Value::as_str).map(str::to_string),
            ..GoogleError::default()
        };
        for detail in error.get("details").and_then(Value::as_array).into_iter().flatten() {
            let kind = detail.get("@type").and_then(Value::as_str).unwrap_or_default();
            if kind.ends_with("google.rpc.ErrorInfo") {
                out.reasons.extend(text(detail, "reason"));
                if let Some(metadata) = detail.get("metadata").and_then(Value::as_object) {
                    for (key, value) in metadata {
                        if let Some(value) = value.as_str() {
                            out.metadata.push((key.clone(), value.to_string()));
                        }
                    }
                    if out.request_id.is_none() {
                        out.request_id = metadata.get("requestId").and_then(Value::as_str).map(str::to_string);
                    }
                }
            } else if kind.ends_with("google.rpc.BadRequest") {
                for violation in detail.get("fieldViolations").and_then(Value::as_array).into_iter().flatten() {
                    let v = Violation {
                        field: text(violation, "field").unwrap_or_default(),
                        description: text(violation, "description").unwrap_or_default(),
                        reason: text(violation, "reason"),
                    };
                    out.reasons.extend(v.reason.clone());
                    out.violations.push(v);
                }
            } else if kind.ends_with("google.rpc.RetryInfo") {
                out.retry_delay_ms = detail.get("retryDelay").and_then(duration_ms).or(out.retry_delay_ms);
            } else if kind.ends_with("google.rpc.RequestInfo") {
                out.request_id = text(detail, "requestId").or(out.request_id);
            } else if kind.ends_with("GoogleAdsFailure") {
                for ads in detail.get("errors").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(codes) = ads.get("errorCode").and_then(Value::as_object) {
                        out.reasons.extend(codes.values().filter_map(|v| v.as_str().map(str::to_string)));
                    }
                    let delay = ads.pointer("/details/quotaErrorDetails/retryDelay").and_then(duration_ms);
                    out.retry_delay_ms = out.retry_delay_ms.or(delay);
                }
                out.request_id = text(detail, "requestId").or(out.request_id);
            }
        }
        Some(out)
    }

    /// Whether Google gave `reason`.
    pub fn has(&self, reason: &str) -> bool {
        self.reasons.iter().any(|r| r == reason)
    }

    /// The value of metadata `key`.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// " (Google: message; reason R; requestId X)".
    pub fn detail(&self) -> String {
        let mut parts = Vec::new();
        if let Some(message) = self.message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            parts.push(format!("Google: {}", excerpt(message, MAX_MESSAGE_CHARS)));
        }
        let mut reasons: Vec<&str> = Vec::new();
        for r in &self.reasons {
            if !reasons.contains(&r.as_str()) && reasons.len() < 3 {
                reasons.push(r);
            }
        }
        if !reasons.is_empty() {
            parts.push(format!("reason {}", reasons.join(", ")));
        } else if let Some(status) = &self.status {
            parts.push(format!("status {status}"));
        }
        if let Some(id) = &self.request_id {
            parts.push(format!("requestId {}", excerpt(id, 80)));
        }
        if parts.is_empty() { String::new() } else { format!(" ({})", parts.join("; ")) }
    }
}

/// What else the mapping needs to know about a failed response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context<'a> {
    /// The `Retry-After` header, in milliseconds.
    pub retry_after_ms: Option<u32>,
    /// Now, in milliseconds since the Unix epoch (for "the rest of the minute").
    pub now_ms: Option<u64>,
    /// For a write: the user keys of the request's members, in order (member `i` is
    /// `members[i]`).
    pub members: Option<&'a [&'a str]>,
}

/// The wait a throttled answer asks for (see the module documentation).
pub fn rate_limit_wait(google: Option<&GoogleError>, context: &Context<'_>) -> Option<u32> {
    if let Some(ms) = context.retry_after_ms {
        return Some(ms);
    }
    let google = google?;
    if let Some(ms) = google.retry_delay_ms {
        return Some(ms);
    }
    let limit = google.meta("quota_limit").or_else(|| google.meta("quota_limit_value"))?;
    if limit.contains("PerMinute") {
        let into_minute = context.now_ms.map_or(0, |now| now % 60_000);
        return u32::try_from(60_000 - into_minute).ok();
    }
    limit.contains("PerDay").then_some(DAILY_QUOTA_WAIT_MS)
}

const TRANSIENT_STATUSES: [&str; 5] = ["INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED", "UNKNOWN", "ABORTED"];
const TRANSIENT_REASONS: [&str; 3] = ["INTERNAL_ERROR", "DEADLINE_EXCEEDED", "TRANSIENT_ERROR"];
const TOKEN_REASONS: [&str; 4] = ["OAUTH_TOKEN_EXPIRED", "OAUTH_TOKEN_INVALID", "OAUTH_TOKEN_REVOKED", "NOT_ADS_USER"];
const ADS_ACCOUNT_REASONS: [&str; 4] = [
    "USER_PERMISSION_DENIED",
    "CUSTOMER_NOT_ENABLED",
    "CLOUD_PROJECT_NOT_APPROVED_FOR_PRODUCTION",
    "DEVELOPER_TOKEN_NOT_APPROVED",
];
const WRONG_TARGET_REASONS: [&str; 5] = [
    "INVALID_USER_LIST_TYPE",
    "INVALID_DESTINATION",
    "DESTINATION_ACCOUNT_TYPE_MISMATCH",
    "OPERATING_ACCOUNT_LOGIN_ACCOUNT_MISMATCH",
    "DATA_PARTNER_USER_LIST_MUTATE_NOT_ALLOWED",
];

/// The index `i` of a field path naming `audience_members[i]` (or `audienceMembers[i]`),
/// wherever it sits in the path (a sample puts a prefix before it).
pub fn member_index(field: &str) -> Option<usize> {
    ["audience_members[", "audienceMembers["].iter().find_map(|marker| {
        let start = field.find(marker)? + marker.len();
        let rest = &field[start..];
        let end = rest.find(']')?;
        rest[..end].trim().parse().ok()
    })
}

/// The users a write's fast-fail 400 names, or why it is a request problem instead.
fn member_rejections(google: &GoogleError, members: &[&str]) -> Result<Vec<RejectedUser>, String> {
    if google.has("TOO_MANY_AUDIENCE_MEMBERS") {
        return Err("Google refused the request: it holds more members than Google accepts in one request".into());
    }
    let mut rejected: Vec<RejectedUser> = Vec::new();
    for violation in &google.violations {
        let Some(key) = member_index(&violation.field).and_then(|i| members.get(i)) else {
            return Err(format!(
                "Google refused the request for `{}`: {}",
                excerpt(&violation.field, 120),
                excerpt(&violation.description, 200)
            ));
        };
        let why = match &violation.reason {
            Some(reason) => format!("{reason} at {}: {}", violation.field, violation.description),
            None => format!("{}: {}", violation.field, violation.description),
        };
        let why = excerpt(&why, 240);
        match rejected.iter_mut().find(|r| r.key == *key) {
            Some(existing) if existing.reason.chars().count() < 480 => {
                existing.reason.push_str("; ");
                existing.reason.push_str(&why);
            }
            Some(_) => {}
            None => rejected
                .push(RejectedUser { key: (*key).to_string(), reason: format!("Google refused the member: {why}") }),
        }
    }
    Ok(rejected)
}

/// The error for a failed `call` answered `status` with `google` (when the body was a
/// `google.rpc.Status`).
pub fn map_error(call: &Call, status: u16, google: Option<&GoogleError>, context: &Context<'_>) -> DestinationError {
    use DestinationError as E;
    let detail = google.map(GoogleError::detail).unwrap_or_else(|| format!(" (HTTP {status})"));
    let has = |reason: &str| google.is_some_and(|g| g.has(reason));
    let any = |reasons: &[&str]| reasons.iter().any(|r| has(r));
    let status_is = |name: &str| google.and_then(|g| g.status.as_deref()) == Some(name);
    let what = &call.what;
    let account = call.account_words();

    if status == 429
        || status_is("RESOURCE_EXHAUSTED")
        || any(&["RESOURCE_EXHAUSTED", "RESOURCE_TEMPORARILY_EXHAUSTED"])
    {
        return E::RateLimited(rate_limit_wait(google, context));
    }
    if status == 401 || status_is("UNAUTHENTICATED") || any(&TOKEN_REASONS) {
        return E::Unauthorized(format!(
            "Google refused the access token when asked to {what}: it expired or was revoked{detail}"
        ));
    }
    if has("ACCESS_TOKEN_SCOPE_INSUFFICIENT") {
        return E::Unauthorized(format!(
            "the connection lacks a Google permission needed to {what}: re-authorize it and allow access to both \
             Google Ads and the Data Manager API{detail}"
        ));
    }
    if has("SERVICE_DISABLED") {
        let service = google.and_then(|g| g.meta("service")).unwrap_or(call.api.name());
        let project = google.and_then(|g| g.meta("consumer")).map(|c| format!(" ({c})")).unwrap_or_default();
        let link = google.and_then(|g| g.meta("activationUrl")).map(|u| format!(" at {u}")).unwrap_or_default();
        return E::ActionRequired(format!(
            "{service} is not enabled in the Google Cloud project of the OAuth client{project}: the operator must \
             enable it{link}, then resume the sync{detail}"
        ));
    }
    if google.is_some_and(|g| g.reasons.iter().any(|r| r.starts_with("TERMS")))
        || any(&["MISSING_TOS", "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS"])
    {
        return E::ActionRequired(format!(
            "the Customer Match terms are not accepted for {account}: someone with access must accept them in Google \
             Ads (Tools, Audience manager, Customer Match terms), then resume the sync{detail}"
        ));
    }
    if any(&["NOT_ALLOWLISTED", "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"]) {
        return E::ActionRequired(format!(
            "{account} may not use Customer Match through this API (not allowlisted): ask Google to allow it (Google \
             requires a good policy and payment history), then resume the sync{detail}"
        ));
    }
    if has("EU_POLITICAL_ADVERTISING_DECLARATION_REQUIRED") {
        return E::ActionRequired(format!(
            "Google requires the EU political advertising declaration for {account}: complete it in Google Ads, then \
             resume the sync{detail}"
        ));
    }
    if any(&ADS_ACCOUNT_REASONS) {
        return E::ActionRequired(format!(
            "Google refused to {what}: {account} cannot be used by the signed-in Google user (not enabled, or no \
             permission); fix the access in Google Ads or pick another account{detail}"
        ));
    }
    if has("PERMISSION_DENIED") {
        return if call.about_list {
            E::NotFound(format!(
                "Google denied access when asked to {what}: the list does not exist in {account}, or the signed-in \
                 Google user cannot reach it; pick another list or reconnect with a user who can{detail}"
            ))
        } else {
            E::ActionRequired(format!(
                "Google denied access when asked to {what}: the signed-in Google user cannot reach {account}; give \
                 them access in Google Ads or reconnect with a user who has it, then resume the sync{detail}"
            ))
        };
    }
    if has("INVALID_USER_LIST_ID") || has("NOT_FOUND") || status == 404 || status_is("NOT_FOUND") {
        return E::NotFound(format!("Google found nothing when asked to {what}{detail}"));
    }
    if any(&WRONG_TARGET_REASONS) {
        return E::ActionRequired(format!(
            "Google refused the list or account of this sync when asked to {what}: pick another list or account \
             (the list must be a Customer Match list of {account} of the sync's key type, and a manager must still \
             manage the account), then resume the sync{detail}"
        ));
    }
    if status == 400
        && let (Some(google), Some(members)) = (google, context.members)
        && (has("TOO_MANY_AUDIENCE_MEMBERS") || !google.violations.is_empty())
    {
        return match member_rejections(google, members) {
            Ok(users) if !users.is_empty() => E::RejectedUsers(users),
            Ok(_) => E::InvalidRequest(format!("Google refused the request to {what}{detail}")),
            Err(why) => E::InvalidRequest(format!("{why}{detail}")),
        };
    }
    if matches!(status, 408 | 409 | 500 | 502 | 503 | 504)
        || TRANSIENT_STATUSES.iter().any(|s| status_is(s))
        || any(&TRANSIENT_REASONS)
    {
        return E::Transient(format!("Google failed to {what}; it may work again shortly{detail}"));
    }
    if status == 403 {
        return E::Unauthorized(format!("Google refused permission to {what}{detail}"));
    }
    if (500..=599).contains(&status) {
        return E::Transient(format!("Google failed to {what}{detail}"));
    }
    E::InvalidRequest(format!("Google refused the request to {what}{detail}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn status(code: u16, status: &str, details: Value) -> (u16, GoogleError) {
        let body = json!({"error": {"code": code, "message": "boom", "status": status, "details": details}});
        (code, GoogleError::parse(body.to_string().as_bytes()).unwrap())
    }

    fn info(reason: &str) -> Value {
        json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
               "domain": "datamanager.googleapis.com", "metadata": {"requestId": "req-1"}})
    }

    fn variant(e: &DestinationError) -> &'static str {
        match e {
            DestinationError::RateLimited(_) => "rate-limited",
            DestinationError::Unauthorized(_) => "unauthorized",
            DestinationError::NotFound(_) => "not-found",
            DestinationError::InvalidRequest(_) => "invalid-request",
            DestinationError::ActionRequired(_) => "action-required",
            DestinationError::Transient(_) => "transient",
            DestinationError::RejectedUsers(_) => "rejected-users",
        }
    }

    fn map(call: &Call, answer: (u16, GoogleError)) -> DestinationError {
        map_error(call, answer.0, Some(&answer.1), &Context::default())
    }

    #[test]
    fn the_table() {
        let dm = Call::new(Api::DataManager, "list the user lists").in_account("Google Ads account 1");
        let list = Call::new(Api::DataManager, "read user list 5").about_list();
        let cases: Vec<(&Call, (u16, GoogleError), &str)> = vec![
            (&dm, status(401, "UNAUTHENTICATED", json!([])), "unauthorized"),
            (&dm, status(403, "PERMISSION_DENIED", json!([info("ACCESS_TOKEN_SCOPE_INSUFFICIENT")])), "unauthorized"),
            (&dm, status(403, "PERMISSION_DENIED", json!([info("SERVICE_DISABLED")])), "action-required"),
            (
                &dm,
                status(403, "PERMISSION_DENIED", json!([info("TERMS_AND_CONDITIONS_NOT_SIGNED")])),
                "action-required",
            ),
            (&dm, status(403, "PERMISSION_DENIED", json!([info("NOT_ALLOWLISTED")])), "action-required"),
            (
                &dm,
                status(403, "PERMISSION_DENIED", json!([info("EU_POLITICAL_ADVERTISING_DECLARATION_REQUIRED")])),
                "action-required",
            ),
            (&dm, status(403, "PERMISSION_DENIED", json!([info("PERMISSION_DENIED")])), "action-required"),
            (&list, status(403, "PERMISSION_DENIED", json!([info("PERMISSION_DENIED")])), "not-found"),
            (&dm, status(403, "PERMISSION_DENIED", json!([])), "unauthorized"),
            (&dm, status(404, "NOT_FOUND", json!([])), "not-found"),
            (&dm, status(400, "INVALID_ARGUMENT", json!([info("INVALID_USER_LIST_ID")])), "not-found"),
            (&dm, status(400, "INVALID_ARGUMENT", json!([info("INVALID_USER_LIST_TYPE")])), "action-required"),
            (
                &dm,
                status(400, "INVALID_ARGUMENT", json!([info("OPERATING_ACCOUNT_LOGIN_ACCOUNT_MISMATCH")])),
                "action-required",
            ),
            (&dm, status(400, "INVALID_ARGUMENT", json!([info("DISPLAY_NAME_ALREADY_USED")])), "invalid-request"),
            (&dm, status(500, "INTERNAL", json!([])), "transient"),
            (&dm, status(503, "UNAVAILABLE", json!([])), "transient"),
            (&dm, status(504, "DEADLINE_EXCEEDED", json!([])), "transient"),
            (&dm, status(409, "ABORTED", json!([])), "transient"),
            (&dm, status(429, "RESOURCE_EXHAUSTED", json!([])), "rate-limited"),
        ];
        for (call, answer, expected) in cases {
            let shown = format!("{answer:?}");
            let error = map(call, answer);
            assert_eq!(variant(&error), expected, "{shown} gave {error:?}");
        }
        let ads = Call::new(Api::Ads, "list clients");
        let failure = json!([{"@type": "type.googleapis.com/google.ads.googleads.v25.errors.GoogleAdsFailure",
            "errors": [{"errorCode": {"authorizationError": "USER_PERMISSION_DENIED"}, "message": "no"}],
            "requestId": "ads-req"}]);
        let error = map(&ads, status(403, "PERMISSION_DENIED", failure));
        assert!(matches!(&error, DestinationError::ActionRequired(m) if m.contains("requestId ads-req")), "{error:?}");
        let expired = json!([{"@type": "x.GoogleAdsFailure", "errors": [{"errorCode": {"authenticationError": "OAUTH_TOKEN_EXPIRED"}}]}]);
        assert_eq!(variant(&map(&ads, status(401, "UNAUTHENTICATED", expired))), "unauthorized");
    }

    #[test]
    fn bodies_that_are_not_google_errors_map_by_status() {
        let call = Call::new(Api::DataManager, "x");
        let by = |code| variant(&map_error(&call, code, None, &Context::default()));
        assert_eq!(
            [by(400), by(401), by(403), by(404), by(429), by(500), by(502), by(503)],
            [
                "invalid-request",
                "unauthorized",
                "unauthorized",
                "not-found",
                "rate-limited",
                "transient",
                "transient",
                "transient"
            ]
        );
        assert_eq!(GoogleError::parse(br#"{"code": 403, "message": "scripted"}"#), None);
    }

    #[test]
    fn rate_limit_waits() {
        let call = Call::new(Api::DataManager, "x");
        let retry = json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]);
        let (_, g) = status(429, "RESOURCE_EXHAUSTED", retry);
        let context = Context { retry_after_ms: Some(7000), ..Context::default() };
        assert_eq!(map_error(&call, 429, Some(&g), &context), DestinationError::RateLimited(Some(7000)));
        assert_eq!(map_error(&call, 429, Some(&g), &Context::default()), DestinationError::RateLimited(Some(1500)));
        let quota = |limit: &str| {
            let details = json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
                "metadata": {"quota_limit": limit}}]);
            status(429, "RESOURCE_EXHAUSTED", details).1
        };
        let at = Context { now_ms: Some(1_800_000_045_000), ..Context::default() };
        let minute = quota("IngestionMutateRequestsPerMinutePerProject");
        assert_eq!(map_error(&call, 429, Some(&minute), &at), DestinationError::RateLimited(Some(15_000)));
        let day = quota("IngestionMutateRequestsPerDayPerProject");
        assert_eq!(map_error(&call, 429, Some(&day), &at), DestinationError::RateLimited(Some(DAILY_QUOTA_WAIT_MS)));
        assert_eq!(map_error(&call, 429, None, &at), DestinationError::RateLimited(None));
        assert_eq!(duration_ms(&json!({"seconds": "2", "nanos": 500_000_000})), Some(2500));
        assert_eq!(duration_ms(&json!("soon")), None);
    }

    #[test]
    fn fast_fail_members_become_rejected_users() {
        let call = Call::new(Api::DataManager, "add members");
        let violations = |fields: &[(&str, &str)]| {
            let list: Vec<Value> = fields
                .iter()
                .map(|(field, reason)| json!({"field": field, "description": "bad value", "reason": reason}))
                .collect();
            json!([info("INVALID_ARGUMENT"), {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": list}])
        };
        let keys = ["a", "b", "c"];
        let context = Context { members: Some(&keys), ..Context::default() };
        let (_, g) = status(
            400,
            "INVALID_ARGUMENT",
            violations(&[
                ("audience_members[2].user_data.user_identifiers[0]", "INVALID_SHA256_FORMAT"),
                ("events.audienceMembers[0].consent", "INVALID_ENUM_VALUE"),
                ("audience_members[2].user_data.user_identifiers[1].address", "INVALID_POSTAL_CODE"),
            ]),
        );
        match map_error(&call, 400, Some(&g), &context) {
            DestinationError::RejectedUsers(users) => {
                let keys: Vec<&str> = users.iter().map(|u| u.key.as_str()).collect();
                assert_eq!(keys, vec!["c", "a"]);
                assert!(
                    users[0].reason.contains("INVALID_SHA256_FORMAT") && users[0].reason.contains("INVALID_POSTAL")
                );
            }
            other => panic!("{other:?}"),
        }
        let (_, outside) = status(
            400,
            "INVALID_ARGUMENT",
            violations(&[
                ("audience_members[0]", "INVALID_FORMAT"),
                ("destinations[0].login_account", "INVALID_ARGUMENT"),
            ]),
        );
        assert_eq!(variant(&map_error(&call, 400, Some(&outside), &context)), "invalid-request");
        let (_, beyond) = status(400, "INVALID_ARGUMENT", violations(&[("audience_members[3]", "INVALID_FORMAT")]));
        assert_eq!(variant(&map_error(&call, 400, Some(&beyond), &context)), "invalid-request");
        let (_, too_many) = status(400, "INVALID_ARGUMENT", json!([info("TOO_MANY_AUDIENCE_MEMBERS")]));
        assert_eq!(variant(&map_error(&call, 400, Some(&too_many), &context)), "invalid-request");
        let (_, list) = status(400, "INVALID_ARGUMENT", json!([info("INVALID_USER_LIST_ID")]));
        assert_eq!(variant(&map_error(&call, 400, Some(&list), &context)), "not-found");
        assert_eq!(member_index("audience_members[12].user_data"), Some(12));
        assert_eq!(member_index("audienceMembers[x]"), None);
    }
}
