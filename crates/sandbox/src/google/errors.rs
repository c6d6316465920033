//! Google's error answers: `google.rpc.Status` for the Data Manager API and Google's front end,
//! `GoogleAdsFailure` for the Google Ads API, and OAuth 2.0 `{"error": ..}` for the token
//! endpoint.
//!
//! Every API failure is `{"error": {code, message, status, details}}` with the HTTP status in
//! `code` and the canonical name in `status`. The Data Manager API puts an `ErrorInfo` (reason
//! from its `ErrorReason` enum, domain `datamanager.googleapis.com`, `metadata.requestId`), a
//! `RequestInfo` (`requestId`) and, for bad input, a `BadRequest` whose `fieldViolations` name
//! every offending field in `details`. Front-end failures (authentication, scopes, a disabled
//! service, quotas) use domain `googleapis.com` and the standard reasons. The Google Ads API
//! wraps its own error codes in a `GoogleAdsFailure` detail carrying the `requestId`. Either
//! way, every failure names a request id (also sent as the `request-id` header).

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{Map, Value, json};

use crate::google::config::GoogleFault;

/// The `ErrorInfo` domain of Data Manager API errors.
pub(crate) const DM_DOMAIN: &str = "datamanager.googleapis.com";
/// The `ErrorInfo` domain of Google's front end (authentication, quotas, service state).
pub(crate) const FRONT_DOMAIN: &str = "googleapis.com";
/// The Data Manager API's service name.
pub(crate) const DM_SERVICE: &str = "datamanager.googleapis.com";
/// The Google Ads API's service name.
pub(crate) const ADS_SERVICE: &str = "googleads.googleapis.com";

/// A fresh request id.
pub(crate) fn request_id() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 22)
}

/// Which API answers, which decides the error body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// The Google Ads API at this version.
    Ads(u32),
    /// The Data Manager API.
    DataManager,
}

impl Api {
    fn service(self) -> &'static str {
        match self {
            Api::Ads(_) => ADS_SERVICE,
            Api::DataManager => DM_SERVICE,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Api::Ads(_) => "Google Ads API",
            Api::DataManager => "Data Manager API",
        }
    }
}

/// One `BadRequest.fieldViolations` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldViolation {
    /// Snake-case path, e.g. `audience_members[3].user_data.user_identifiers[0].email_address`.
    pub field: String,
    /// What is wrong.
    pub description: String,
    /// An `ErrorReason` value.
    pub reason: &'static str,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, reason: &'static str, description: impl Into<String>) -> Self {
        Self { field: field.into(), description: description.into(), reason }
    }
}

/// One error inside a `GoogleAdsFailure`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdsErrorEntry {
    /// The error code's category, e.g. `authorizationError`.
    pub category: &'static str,
    /// Its enum value, e.g. `USER_PERMISSION_DENIED`.
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Body {
    Rpc { domain: &'static str, metadata: Map<String, Value>, violations: Vec<FieldViolation>, retry: Option<Duration> },
    Ads { version: u32, errors: Vec<AdsErrorEntry> },
}

/// One API error answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GoogleError {
    pub http: StatusCode,
    /// The canonical code name (`INVALID_ARGUMENT`, ...).
    pub status: &'static str,
    pub message: String,
    /// The `ErrorInfo` reason, or the Ads error code: what the request log records.
    pub reason: String,
    body: Box<Body>,
}

/// The HTTP status of a canonical code.
fn http_of(status: &str) -> StatusCode {
    match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => StatusCode::BAD_REQUEST,
        "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
        "PERMISSION_DENIED" => StatusCode::FORBIDDEN,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "ALREADY_EXISTS" | "ABORTED" => StatusCode::CONFLICT,
        "RESOURCE_EXHAUSTED" => StatusCode::TOO_MANY_REQUESTS,
        "UNIMPLEMENTED" => StatusCode::NOT_IMPLEMENTED,
        "UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        "DEADLINE_EXCEEDED" => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Google's message for any authentication failure.
const UNAUTHENTICATED_MESSAGE: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, \
                                       login cookie or other valid authentication credential. See \
                                       https://developers.google.com/identity/sign-in/web/devconsole-project.";

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    Missing,
    Unknown,
    Revoked,
    Expired,
}

impl GoogleError {
    fn rpc(status: &'static str, reason: &str, domain: &'static str, message: impl Into<String>) -> Self {
        Self {
            http: http_of(status),
            status,
            message: message.into(),
            reason: reason.to_owned(),
            body: Box::new(Body::Rpc { domain, metadata: Map::new(), violations: Vec::new(), retry: None }),
        }
    }

    fn ads(status: &'static str, version: u32, category: &'static str, code: &'static str, message: &str) -> Self {
        let entry = AdsErrorEntry { category, code, message: message.to_owned() };
        Self {
            http: http_of(status),
            status,
            message: match status {
                "INVALID_ARGUMENT" => "Request contains an invalid argument.".to_owned(),
                "PERMISSION_DENIED" => "The caller does not have permission".to_owned(),
                "UNAUTHENTICATED" => UNAUTHENTICATED_MESSAGE.to_owned(),
                _ => message.to_owned(),
            },
            reason: code.to_owned(),
            body: Box::new(Body::Ads { version, errors: vec![entry] }),
        }
    }

    fn meta(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Body::Rpc { metadata, .. } = &mut *self.body {
            metadata.insert(key.to_owned(), value.into());
        }
        self
    }

    /// 400 INVALID_ARGUMENT from the Data Manager API naming every offending field. The
    /// `ErrorInfo` reason is the first violation's.
    pub fn invalid(violations: Vec<FieldViolation>) -> Self {
        let reason = violations.first().map_or("INVALID_ARGUMENT", |v| v.reason);
        let mut error = Self::rpc("INVALID_ARGUMENT", reason, DM_DOMAIN, "There was a problem with the request.");
        if let Body::Rpc { violations: slot, .. } = &mut *error.body {
            *slot = violations;
        }
        error
    }

    /// 400 INVALID_ARGUMENT with one violation.
    pub fn invalid_field(field: impl Into<String>, reason: &'static str, description: impl Into<String>) -> Self {
        Self::invalid(vec![FieldViolation::new(field, reason, description)])
    }

    /// 403 PERMISSION_DENIED from the Data Manager API: the caller cannot reach the account, or
    /// the resource does not exist (Google does not tell the two apart).
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::rpc("PERMISSION_DENIED", "PERMISSION_DENIED", DM_DOMAIN, message)
    }

    /// 400 INVALID_ARGUMENT, reason INVALID_REQUEST_ID: no retrievable request has this id.
    pub fn invalid_request_id(id: &str) -> Self {
        Self::invalid_field(
            "request_id",
            "INVALID_REQUEST_ID",
            format!(
                "No status for request id '{id}': status exists only for accepted requests sent without \
                 validateOnly."
            ),
        )
    }

    /// 404 NOT_FOUND: no such method or path.
    pub fn no_such_method(api: Api, path: &str) -> Self {
        match api {
            Api::Ads(_) | Api::DataManager => {
                Self::rpc("NOT_FOUND", "NOT_FOUND", FRONT_DOMAIN, format!("Method not found: {path}"))
            }
        }
    }

    /// 401 UNAUTHENTICATED.
    pub fn unauthenticated(api: Api, problem: TokenProblem) -> Self {
        match api {
            Api::Ads(version) => {
                let (code, message) = match problem {
                    TokenProblem::Missing => ("NOT_ADS_USER", "No OAuth 2.0 credentials were sent."),
                    TokenProblem::Unknown => ("OAUTH_TOKEN_INVALID", "The OAuth access token is invalid."),
                    TokenProblem::Revoked => ("OAUTH_TOKEN_REVOKED", "The OAuth access token has been revoked."),
                    TokenProblem::Expired => ("OAUTH_TOKEN_EXPIRED", "The OAuth access token has expired."),
                };
                Self::ads("UNAUTHENTICATED", version, "authenticationError", code, message)
            }
            Api::DataManager => {
                let reason = match problem {
                    TokenProblem::Missing => "CREDENTIALS_MISSING",
                    TokenProblem::Expired => "ACCESS_TOKEN_EXPIRED",
                    TokenProblem::Unknown | TokenProblem::Revoked => "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                };
                Self::rpc("UNAUTHENTICATED", reason, FRONT_DOMAIN, UNAUTHENTICATED_MESSAGE).meta("service", DM_SERVICE)
            }
        }
    }

    /// 403 PERMISSION_DENIED, reason ACCESS_TOKEN_SCOPE_INSUFFICIENT (the same for both APIs:
    /// Google's front end answers it).
    pub fn scope_insufficient(api: Api, method: &str) -> Self {
        Self::rpc(
            "PERMISSION_DENIED",
            "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            FRONT_DOMAIN,
            "Request had insufficient authentication scopes.",
        )
        .meta("service", api.service())
        .meta("method", method)
    }

    /// 403 PERMISSION_DENIED, reason SERVICE_DISABLED: the API is not enabled in the OAuth
    /// client's Cloud project.
    pub fn service_disabled(api: Api, project: u64) -> Self {
        let service = api.service();
        let url = format!("https://console.developers.google.com/apis/api/{service}/overview?project={project}");
        Self::rpc(
            "PERMISSION_DENIED",
            "SERVICE_DISABLED",
            FRONT_DOMAIN,
            format!(
                "{} has not been used in project {project} before or it is disabled. Enable it by visiting {url} \
                 then retry. If you enabled this API recently, wait a few minutes for the action to propagate to \
                 our systems and retry.",
                api.title()
            ),
        )
        .meta("consumer", format!("projects/{project}"))
        .meta("service", service)
        .meta("serviceTitle", api.title())
        .meta("activationUrl", url)
        .meta("containerInfo", project.to_string())
    }

    /// 429 RESOURCE_EXHAUSTED for a Data Manager quota, naming it in `metadata.quota_limit`.
    pub fn quota_exceeded(limit: &str, limit_value: u64, project: u64, retry: Option<Duration>) -> Self {
        let metric = format!("{DM_SERVICE}/{}", limit.trim_end_matches("PerProject"));
        let mut error = Self::rpc(
            "RESOURCE_EXHAUSTED",
            "RATE_LIMIT_EXCEEDED",
            FRONT_DOMAIN,
            format!(
                "Quota exceeded for quota metric '{metric}' and limit '{limit}' of service '{DM_SERVICE}' for \
                 consumer 'project_number:{project}'."
            ),
        )
        .meta("quota_limit", limit)
        .meta("quota_limit_value", limit_value.to_string())
        .meta("quota_metric", metric)
        .meta("quota_location", "global")
        .meta("consumer", format!("projects/{project}"))
        .meta("service", DM_SERVICE);
        if let Body::Rpc { retry: slot, .. } = &mut *error.body {
            *slot = retry;
        }
        error
    }

    /// A Google Ads API error with one `GoogleAdsFailure` entry.
    pub fn ads_error(
        version: u32,
        status: &'static str,
        category: &'static str,
        code: &'static str,
        message: &str,
    ) -> Self {
        Self::ads(status, version, category, code, message)
    }

    /// 403 `authorizationError: USER_PERMISSION_DENIED`.
    pub fn ads_permission_denied(version: u32, customer: u64) -> Self {
        Self::ads(
            "PERMISSION_DENIED",
            version,
            "authorizationError",
            "USER_PERMISSION_DENIED",
            &format!(
                "User doesn't have permission to access customer. Note: If you're accessing a client customer, the \
                 manager's customer id must be set in the 'login-customer-id' header. (customer {customer})"
            ),
        )
    }

    /// 400 `requestError` / `queryError` / `headerError` with the given code.
    pub fn ads_invalid(version: u32, category: &'static str, code: &'static str, message: &str) -> Self {
        Self::ads("INVALID_ARGUMENT", version, category, code, message)
    }

    /// The error an injected fault answers on `api`.
    pub fn forced(fault: &GoogleFault, api: Api) -> Self {
        match fault {
            GoogleFault::Internal => Self::server("INTERNAL", api, "Internal error encountered."),
            GoogleFault::Unavailable => Self::server("UNAVAILABLE", api, "The service is currently unavailable."),
            GoogleFault::DeadlineExceeded => Self::server("DEADLINE_EXCEEDED", api, "Deadline exceeded."),
            GoogleFault::TokenExpired => Self::unauthenticated(api, TokenProblem::Expired),
            GoogleFault::QuotaExhausted if matches!(api, Api::Ads(_)) => {
                let version = if let Api::Ads(version) = api { version } else { 0 };
                Self::ads(
                    "RESOURCE_EXHAUSTED",
                    version,
                    "quotaError",
                    "RESOURCE_TEMPORARILY_EXHAUSTED",
                    "Too many requests. Retry in 30 seconds.",
                )
            }
            GoogleFault::QuotaExhausted => Self::quota_exceeded(
                "IngestionMutateRequestsPerMinutePerProject",
                300,
                0,
                Some(Duration::from_secs(30)),
            ),
            GoogleFault::Custom { http_status, status, reason, message } => {
                let mut error = Self::rpc("INTERNAL", reason, DM_DOMAIN, message.clone());
                error.http = StatusCode::from_u16(*http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                error.status = leak_status(status);
                error
            }
        }
    }

    fn server(status: &'static str, api: Api, message: &str) -> Self {
        match api {
            Api::Ads(version) => {
                let code = if status == "INTERNAL" { "INTERNAL_ERROR" } else { "TRANSIENT_ERROR" };
                Self::ads(status, version, "internalError", code, message)
            }
            Api::DataManager => {
                let reason = match status {
                    "DEADLINE_EXCEEDED" => "DEADLINE_EXCEEDED",
                    _ => "INTERNAL_ERROR",
                };
                Self::rpc(status, reason, DM_DOMAIN, message)
            }
        }
    }

    /// The answer, naming `request_id` in the body and the `request-id` header.
    pub fn into_response_with(self, request_id: &str) -> Response {
        let details = match *self.body {
            Body::Rpc { domain, mut metadata, violations, retry } => {
                metadata.insert("requestId".to_owned(), json!(request_id));
                let mut details = vec![
                    json!({
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": self.reason,
                        "domain": domain,
                        "metadata": metadata,
                    }),
                    json!({"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": request_id}),
                ];
                if !violations.is_empty() {
                    let violations: Vec<Value> = violations
                        .iter()
                        .map(|v| json!({"field": v.field, "description": v.description, "reason": v.reason}))
                        .collect();
                    details.push(json!({
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": violations,
                    }));
                }
                if let Some(retry) = retry {
                    details.push(json!({
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": format!("{}s", retry.as_secs().max(1)),
                    }));
                }
                details
            }
            Body::Ads { version, errors } => {
                let errors: Vec<Value> =
                    errors.iter().map(|e| json!({"errorCode": {e.category: e.code}, "message": e.message})).collect();
                vec![json!({
                    "@type": format!("type.googleapis.com/google.ads.googleads.v{version}.errors.GoogleAdsFailure"),
                    "errors": errors,
                    "requestId": request_id,
                })]
            }
        };
        let body = json!({"error": {
            "code": self.http.as_u16(),
            "message": self.message,
            "status": self.status,
            "details": details,
        }});
        let mut response = (self.http, Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert("request-id", value);
        }
        response
    }
}

/// A canonical code name as a `&'static str` (known names map to themselves, others to
/// `UNKNOWN`), so forced custom errors can name any of Google's codes.
fn leak_status(status: &str) -> &'static str {
    const CODES: &[&str] = &[
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    CODES.iter().copied().find(|c| *c == status).unwrap_or("UNKNOWN")
}

/// An OAuth 2.0 error from the token or revoke endpoint: `{"error", "error_description"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    pub http: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(http: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self { http, error, description: description.into() }
    }

    /// 400 `invalid_grant`: a bad, used or expired code, or a dead refresh token.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 401 `invalid_client`.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        (self.http, Json(json!({"error": self.error, "error_description": self.description}))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(error: GoogleError) -> (StatusCode, Value) {
        let response = error.into_response_with("REQ42");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn invalid_argument_carries_error_info_request_info_and_violations() {
        let error = GoogleError::invalid(vec![
            FieldViolation::new("audience_members[1].user_data", "INVALID_HEX_ENCODING", "bad hex"),
            FieldViolation::new("audience_members[4].user_data", "INVALID_SHA256_FORMAT", "short"),
        ]);
        let (status, json) = body(error).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let error = &json["error"];
        assert_eq!((error["code"].clone(), error["status"].clone()), (json!(400), json!("INVALID_ARGUMENT")));
        let details = error["details"].as_array().cloned().unwrap_or_default();
        assert_eq!(details[0]["reason"], "INVALID_HEX_ENCODING");
        assert_eq!(details[0]["domain"], DM_DOMAIN);
        assert_eq!(details[0]["metadata"]["requestId"], "REQ42");
        assert_eq!(details[1]["requestId"], "REQ42");
        assert_eq!(details[2]["fieldViolations"][1]["field"], "audience_members[4].user_data");
    }

    #[tokio::test]
    async fn quota_errors_name_the_limit_and_retry_delay() {
        let error = GoogleError::quota_exceeded(
            "IngestionMutateRequestsPerMinutePerProject",
            300,
            7,
            Some(Duration::from_secs(17)),
        );
        let (status, json) = body(error).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let details = &json["error"]["details"];
        assert_eq!(details[0]["metadata"]["quota_limit"], "IngestionMutateRequestsPerMinutePerProject");
        assert_eq!(details[0]["metadata"]["consumer"], "projects/7");
        assert_eq!(details[2]["retryDelay"], "17s");
    }

    #[tokio::test]
    async fn ads_errors_wrap_a_google_ads_failure() {
        let (status, json) = body(GoogleError::ads_permission_denied(25, 1)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let failure = &json["error"]["details"][0];
        assert_eq!(failure["@type"], "type.googleapis.com/google.ads.googleads.v25.errors.GoogleAdsFailure");
        assert_eq!(failure["errors"][0]["errorCode"]["authorizationError"], "USER_PERMISSION_DENIED");
        assert_eq!(failure["requestId"], "REQ42");
    }

    #[test]
    fn forced_faults_have_their_statuses() {
        let dm = Api::DataManager;
        assert_eq!(GoogleError::forced(&GoogleFault::Unavailable, dm).http, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(GoogleError::forced(&GoogleFault::DeadlineExceeded, dm).http, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(GoogleError::forced(&GoogleFault::Internal, Api::Ads(25)).http, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(GoogleError::forced(&GoogleFault::TokenExpired, dm).http, StatusCode::UNAUTHORIZED);
        let ads_quota = GoogleError::forced(&GoogleFault::QuotaExhausted, Api::Ads(25));
        assert_eq!(
            (ads_quota.http, ads_quota.reason.as_str()),
            (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_TEMPORARILY_EXHAUSTED")
        );
        let custom = GoogleFault::Custom {
            http_status: 409,
            status: "ABORTED".to_owned(),
            reason: "X".to_owned(),
            message: "m".to_owned(),
        };
        let custom = GoogleError::forced(&custom, dm);
        assert_eq!((custom.http, custom.status), (StatusCode::CONFLICT, "ABORTED"));
    }
}
