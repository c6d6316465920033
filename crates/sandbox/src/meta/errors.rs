//! Graph API errors, as Meta answers them.
//!
//! Every failure is `{"error": {"message", "type", "code", "error_subcode"?,
//! "error_user_title"?, "error_user_msg"?, "is_transient"?, "fbtrace_id"}}`. Clients are told
//! to branch on `code` / `error_subcode`, never on the HTTP status, and Meta's habit is HTTP 400
//! for nearly everything, throttles included. The sandbox therefore answers HTTP 400 for every
//! error except code 1 and 2 (HTTP 500, Meta's "unknown" and "service" errors) and injected
//! HTTP statuses; it never answers 401 or 403. The constructors below pin each situation to one
//! code/subcode pair from the notes (`spec/meta-notes.md`); where the notes are silent the
//! choice is documented in the crate README.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{Map, Value, json};

use crate::meta::config::MetaFault;

/// Graph's generic error type.
const OAUTH: &str = "OAuthException";
/// The type Graph gives "no such object" errors.
const GRAPH_METHOD: &str = "GraphMethodException";

/// One Graph error answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GraphError {
    pub status: StatusCode,
    pub code: i64,
    pub subcode: Option<i64>,
    pub kind: &'static str,
    pub message: String,
    pub user_title: Option<String>,
    pub user_msg: Option<String>,
    pub is_transient: Option<bool>,
}

/// A fresh `fbtrace_id`, the id Meta's support asks for (also sent as `x-fb-trace-id`).
pub(crate) fn fbtrace_id() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 11)
}

/// The Custom Audience terms page of an ad account (`act_<n>`'s number).
pub(crate) fn tos_link(account: u64) -> String {
    format!("https://business.facebook.com/ads/manage/customaudiences/tos/?act={account}")
}

impl GraphError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            subcode: None,
            kind: OAUTH,
            message: message.into(),
            user_title: None,
            user_msg: None,
            is_transient: None,
        }
    }

    fn sub(mut self, subcode: i64) -> Self {
        self.subcode = Some(subcode);
        self
    }

    fn transient(mut self, transient: bool) -> Self {
        self.is_transient = Some(transient);
        self
    }

    /// Code 100: a bad or missing parameter.
    pub fn invalid_param(message: impl std::fmt::Display) -> Self {
        Self::new(100, format!("(#100) {message}"))
    }

    /// Code 100 subcode 33: no such object, or the caller cannot see it.
    pub fn unknown_object(id: &str, method: &str) -> Self {
        let method = method.to_ascii_lowercase();
        let mut error = Self::new(
            100,
            format!(
                "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing \
                 permissions, or does not support this operation. Please read the Graph API documentation at \
                 https://developers.facebook.com/docs/graph-api"
            ),
        )
        .sub(33);
        error.kind = GRAPH_METHOD;
        error
    }

    /// Code 100: a field or edge the node type does not have.
    pub fn nonexisting_field(field: &str, node_type: &str) -> Self {
        Self::new(100, format!("(#100) Tried accessing nonexisting field ({field}) on node type ({node_type})"))
    }

    /// Code 2500: a path Graph cannot parse.
    pub fn unknown_path(path: &str) -> Self {
        Self::new(2500, format!("Unknown path components: {path}"))
    }

    /// Code 2635: a version older than the oldest one served.
    pub fn deprecated_version(version: u32, latest: u32) -> Self {
        Self::new(
            2635,
            format!(
                "(#2635) You are calling a deprecated version of the Ads API (v{version}.0). Please update to the \
                 latest version: v{latest}.0."
            ),
        )
    }

    /// Code 100: a version newer than the newest one served, or not `v{N}.0`.
    pub fn unknown_version(raw: &str, min: u32, max: u32) -> Self {
        Self::invalid_param(format!("Unsupported API version {raw}: this sandbox serves v{min}.0 to v{max}.0"))
    }

    /// Code 104: no access token at all.
    pub fn token_missing() -> Self {
        Self::new(104, "An access token is required to request this resource.")
    }

    /// Code 2500: `/me` without a user or system-user token.
    pub fn no_current_user() -> Self {
        Self::new(2500, "An active access token must be used to query information about the current user.")
    }

    /// Code 190 subcode 467: a token the sandbox never issued.
    pub fn token_invalid() -> Self {
        Self::new(190, "Invalid OAuth access token - Cannot parse access token").sub(467)
    }

    /// Code 190 subcode 463: an expired token.
    pub fn token_expired(expired_at: u64, now: u64) -> Self {
        Self::new(
            190,
            format!(
                "Error validating access token: Session has expired at unix time {expired_at}. The current unix \
                 time is {now}."
            ),
        )
        .sub(463)
    }

    /// Code 190 subcode 460: a revoked session.
    pub fn token_revoked() -> Self {
        Self::new(
            190,
            "Error validating access token: The session has been invalidated because the user changed their \
             password or Facebook has changed the session for security reasons.",
        )
        .sub(460)
    }

    /// Code 294: a write without `ads_management`.
    pub fn missing_ads_management() -> Self {
        Self::new(
            294,
            "(#294) Managing advertisements requires the extended permission ads_management and an application \
             that is allowlisted to access the Marketing API",
        )
    }

    /// Code 200: a read without `ads_read` (or `ads_management`, which includes reading).
    pub fn missing_ads_read() -> Self {
        Self::new(200, "(#200) Requires ads_read or ads_management permission to access this object")
    }

    /// Code 200 subcode 1870090: the account's business has not accepted the Custom Audience
    /// terms.
    pub fn tos_not_accepted(account: u64) -> Self {
        let link = tos_link(account);
        let mut error =
            Self::new(200, format!("(#200) Custom Audience Terms Not Accepted: accept them at {link} and try again."))
                .sub(1_870_090)
                .transient(false);
        error.user_title = Some("Custom Audience Terms Not Accepted".to_owned());
        error.user_msg = Some(format!(
            "You need to accept the Custom Audience Terms before you can create or edit an audience or an ad set \
             with a custom audience. Please go to {link} to accept the Terms and try again."
        ));
        error
    }

    /// Code 100 subcode 1713230: the audience is flagged for integrity (operation_status 471).
    pub fn audience_flagged() -> Self {
        let mut error = Self::invalid_param(
            "This audience has been flagged because its name, description or rule may suggest health or financial \
             information; its members cannot be changed until the flag is resolved",
        )
        .sub(1_713_230);
        error.user_title = Some("Audience Flagged".to_owned());
        error
    }

    /// Code 100: the account holds as many customer-file audiences as allowed.
    pub fn too_many_audiences(max: usize) -> Self {
        Self::invalid_param(format!(
            "This ad account has reached the limit of {max} customer file custom audiences. Delete audiences you no \
             longer use and try again"
        ))
    }

    /// Code 80003 subcode 2446079: the account's `custom_audience` budget is exhausted.
    pub fn custom_audience_throttled() -> Self {
        Self::new(
            80_003,
            "(#80003) There have been too many calls to this ad-account. Wait a bit and try again. For more info, \
             please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#custom-audience.",
        )
        .sub(2_446_079)
        .transient(true)
    }

    /// Code 2650 with one of the session subcodes Meta documents for `usersreplace`.
    pub fn session(subcode: i64, message: &str) -> Self {
        Self::new(2650, format!("(#2650) Failed to update the custom audience: {message}")).sub(subcode)
    }

    /// Code 101: an app id the sandbox does not know.
    pub fn unknown_app() -> Self {
        Self::new(101, "Error validating application. Invalid application ID.")
    }

    /// Code 1 (HTTP 400): a wrong client secret.
    pub fn bad_client_secret() -> Self {
        Self::new(1, "Error validating client secret.")
    }

    /// The error a forced fault answers.
    pub fn forced(fault: &MetaFault) -> Self {
        match fault {
            MetaFault::Unknown => Self::server(1, "An unknown error occurred", false),
            MetaFault::Service => Self::service(StatusCode::INTERNAL_SERVER_ERROR),
            MetaFault::HttpStatus(status) => {
                Self::service(StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE))
            }
            MetaFault::TemporarilyBlocked => Self::new(
                368,
                "(#368) The action attempted has been deemed abusive or is otherwise disallowed (temporarily blocked)",
            )
            .transient(false),
            MetaFault::TokenRevoked => Self::token_revoked(),
            MetaFault::CustomAudienceThrottle => Self::custom_audience_throttled(),
            MetaFault::AdsManagementThrottle => Self::new(
                80_004,
                "(#80004) There have been too many calls to this ad-account. Wait a bit and try again. For more \
                 info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
            )
            .transient(true),
            MetaFault::UserThrottle => Self::new(17, "(#17) User request limit reached").transient(true),
            MetaFault::AppThrottle => Self::new(4, "(#4) Application request limit reached").transient(true),
            MetaFault::Custom { status, code, subcode, message } => {
                let mut error = Self::new(*code, message.clone());
                error.status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
                error.subcode = *subcode;
                error
            }
        }
    }

    fn server(code: i64, message: &str, transient: bool) -> Self {
        let mut error = Self::new(code, message).transient(transient);
        error.status = StatusCode::INTERNAL_SERVER_ERROR;
        error
    }

    /// Code 2 with `status`: Meta's "try again later".
    pub fn service(status: StatusCode) -> Self {
        let mut error = Self::server(2, "An unexpected error has occurred. Please retry your request later.", true);
        error.status = status;
        error
    }

    /// Whether this is one of Meta's throttling codes.
    pub fn is_throttle(&self) -> bool {
        matches!(self.code, 4 | 17 | 32 | 613 | 80_003 | 80_004)
    }

    /// The answer, tagged with `fbtrace_id`.
    pub fn into_response_traced(self, fbtrace_id: &str) -> Response {
        let mut error = Map::new();
        error.insert("message".into(), json!(self.message));
        error.insert("type".into(), json!(self.kind));
        error.insert("code".into(), json!(self.code));
        if let Some(subcode) = self.subcode {
            error.insert("error_subcode".into(), json!(subcode));
        }
        if let Some(transient) = self.is_transient {
            error.insert("is_transient".into(), json!(transient));
        }
        if let Some(title) = self.user_title {
            error.insert("error_user_title".into(), json!(title));
        }
        if let Some(msg) = self.user_msg {
            error.insert("error_user_msg".into(), json!(msg));
        }
        error.insert("fbtrace_id".into(), json!(fbtrace_id));
        (self.status, Json(json!({ "error": Value::Object(error) }))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(error: GraphError) -> (StatusCode, Value) {
        let response = error.into_response_traced("AbCdEfGhIjK");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn error_body_has_meta_shape_and_omits_unset_fields() {
        let (status, json) = body(GraphError::unknown_object("123", "GET")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let error = &json["error"];
        assert_eq!(error["code"], 100);
        assert_eq!(error["error_subcode"], 33);
        assert_eq!(error["type"], "GraphMethodException");
        assert_eq!(error["fbtrace_id"], "AbCdEfGhIjK");
        assert!(error["message"].as_str().is_some_and(|m| m.starts_with("Unsupported get request")));
        assert!(error.get("error_user_title").is_none() && error.get("is_transient").is_none());
    }

    #[tokio::test]
    async fn tos_error_carries_the_link_and_user_title() {
        let (_, json) = body(GraphError::tos_not_accepted(42)).await;
        let error = &json["error"];
        assert_eq!(error["code"], 200);
        assert_eq!(error["error_subcode"], 1_870_090);
        assert_eq!(error["error_user_title"], "Custom Audience Terms Not Accepted");
        assert!(error["error_user_msg"].as_str().is_some_and(|m| m.contains("customaudiences/tos/?act=42")));
    }

    #[test]
    fn service_errors_are_http_500_and_throttles_400() {
        assert_eq!(GraphError::forced(&MetaFault::Service).status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(GraphError::forced(&MetaFault::HttpStatus(503)).status, StatusCode::SERVICE_UNAVAILABLE);
        let throttle = GraphError::forced(&MetaFault::CustomAudienceThrottle);
        assert_eq!(
            (throttle.status, throttle.code, throttle.subcode),
            (StatusCode::BAD_REQUEST, 80_003, Some(2_446_079))
        );
        assert!(throttle.is_throttle());
    }
}
