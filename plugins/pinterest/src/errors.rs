//! Turning Pinterest's error responses into `destination-error`.
//!
//! The host's retry policy hangs on the variant, and Pinterest's error codes are not unique
//! (code 2 is both "Authentication failed." and "AdAccount not found."), so the mapping
//! branches on the HTTP status first and uses the code only to refine 401/403:
//!
//! | response                          | error                                                  |
//! |-----------------------------------|--------------------------------------------------------|
//! | 429, message mentions "spam"      | `invalid-request` (a spam verdict is not a rate limit) |
//! | 429                               | `rate-limited(Retry-After in ms, when present)`        |
//! | 401/403 with code 3               | `unauthorized`: the token lacks a scope                |
//! | 401/403 with code 29              | `action-required`: Pinterest's "not permitted"; an admin of the ad account must give the user access (re-authorizing the same user cannot help) |
//! | other 403                         | `unauthorized`: not permitted                          |
//! | other 401 (codes 2, 1104, ...)    | `unauthorized("access token invalid or expired ...")`  |
//! | 401 at the token endpoint         | `unauthorized`: app credentials or grant refused       |
//! | 404                               | `not-found`                                            |
//! | 400                               | `invalid-request` with Pinterest's message             |
//! | 408, 5xx                          | `transient`                                            |
//! | anything else                     | the SDK's [`default_status_error`]                     |
//!
//! Messages carry Pinterest's code, message and `x-pinterest-rid` (Pinterest support asks for
//! it); they never carry a token or secret, since none is ever put in a request Pinterest
//! could echo back in an error.

use audience_plugin_sdk::http::{Response, default_status_error, retry_after_ms};
use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::DestinationError;

/// The longest part of a Pinterest message carried into an error, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// How an `unauthorized` error for a missing scope begins (see [`is_missing_scope`]).
pub const LACKS_SCOPE: &str = "the access token lacks a required scope";

/// How an error for a call the connected user may not make begins.
pub const NOT_PERMITTED: &str = "the connected Pinterest user is not permitted to";

/// Whether `err` says the token lacks a scope (as opposed to being invalid or expired).
pub fn is_missing_scope(err: &DestinationError) -> bool {
    matches!(err, DestinationError::Unauthorized(m) if m.starts_with(LACKS_SCOPE))
}

/// Which Pinterest call failed, for messages and scope hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// What the call does, completing "could not ..." ("update the customer list").
    pub what: &'static str,
    /// The OAuth scope the call needs; `None` for the token endpoint (Basic auth).
    pub scope: Option<&'static str>,
}

impl Call {
    /// `POST /oauth/token`.
    pub const TOKEN: Call = Call { what: "exchange the OAuth grant for a token", scope: None };
    /// `GET /ad_accounts`.
    pub const LIST_AD_ACCOUNTS: Call = Call { what: "list ad accounts", scope: Some("ads:read") };
    /// `GET /ad_accounts/{id}`.
    pub const GET_AD_ACCOUNT: Call = Call { what: "read the ad account", scope: Some("ads:read") };
    /// `GET /ad_accounts/{id}/customer_lists/{list_id}`.
    pub const GET_CUSTOMER_LIST: Call = Call { what: "read the customer list", scope: Some("ads:read") };
    /// `GET /ad_accounts/{id}/audiences/{audience_id}`.
    pub const GET_AUDIENCE: Call = Call { what: "read the audience", scope: Some("ads:read") };
    /// `GET /ad_accounts/{id}/customer_lists`.
    pub const LIST_CUSTOMER_LISTS: Call = Call { what: "list customer lists", scope: Some("ads:read") };
    /// `POST /ad_accounts/{id}/customer_lists`.
    pub const CREATE_CUSTOMER_LIST: Call = Call { what: "create the customer list", scope: Some("ads:write") };
    /// `PATCH /ad_accounts/{id}/customer_lists/{list_id}`.
    pub const UPDATE_CUSTOMER_LIST: Call = Call { what: "update the customer list", scope: Some("ads:write") };
    /// `GET /ad_accounts/{id}/audiences`.
    pub const LIST_AUDIENCES: Call = Call { what: "list audiences", scope: Some("ads:read") };
    /// `POST /ad_accounts/{id}/audiences`.
    pub const CREATE_AUDIENCE: Call = Call { what: "create the audience", scope: Some("ads:write") };
}

/// Pinterest's `Error` body (`{code, message}`), read leniently; OAuth-style
/// `{error, error_description}` and non-JSON bodies are understood too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// Pinterest's error code, when given.
    pub code: Option<i64>,
    /// Pinterest's message (shortened), when given.
    pub message: Option<String>,
}

impl ErrorBody {
    /// Read an error body.
    pub fn parse(body: &[u8]) -> Self {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(v) => {
                let text = |key: &str| v.get(key).and_then(|m| m.as_str()).map(str::to_string);
                let message = text("message").or_else(|| text("error_description")).or_else(|| text("error"));
                Self {
                    code: v.get("code").and_then(serde_json::Value::as_i64),
                    message: message.map(|m| excerpt(m.trim(), MAX_MESSAGE_CHARS)),
                }
            }
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                Self { code: None, message: (!text.is_empty()).then(|| excerpt(text, MAX_MESSAGE_CHARS)) }
            }
        }
    }
}

/// The `x-pinterest-rid` of a response, if any.
pub fn request_id(response: &Response) -> Option<&str> {
    response.header("x-pinterest-rid")
}

/// " (Pinterest code 3: message; x-pinterest-rid abc)", or "" when there is nothing to say.
fn detail(body: &ErrorBody, rid: Option<&str>) -> String {
    let mut parts = Vec::new();
    match (body.code, body.message.as_deref()) {
        (Some(code), Some(message)) => parts.push(format!("Pinterest code {code}: {message}")),
        (Some(code), None) => parts.push(format!("Pinterest code {code}")),
        (None, Some(message)) => parts.push(format!("Pinterest: {message}")),
        (None, None) => {}
    }
    if let Some(rid) = rid {
        parts.push(format!("x-pinterest-rid {}", excerpt(rid, 80)));
    }
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join("; ")) }
}

/// The error for a non-2xx Pinterest `response` to `call`.
pub fn map_error(call: Call, response: &Response) -> DestinationError {
    let body = ErrorBody::parse(&response.body);
    let detail = detail(&body, request_id(response));
    let what = call.what;
    let spam = body.message.as_deref().is_some_and(|m| m.to_lowercase().contains("spam"));
    match (response.status, body.code) {
        (429, _) if spam => DestinationError::InvalidRequest(format!(
            "Pinterest refused to {what} as suspected spam; this is not a rate limit{detail}"
        )),
        (429, _) => DestinationError::RateLimited(response.header("retry-after").and_then(retry_after_ms)),
        (401 | 403, Some(3)) => DestinationError::Unauthorized(match call.scope {
            Some(scope) => format!("{LACKS_SCOPE} (ads:read / ads:write); to {what} it needs {scope}{detail}"),
            None => format!("the app lacks a required scope (ads:read / ads:write){detail}"),
        }),
        (401, Some(283)) if call.scope.is_none() => DestinationError::Unauthorized(format!(
            "the authorization code or refresh token is invalid, expired or already used{detail}"
        )),
        (401, _) if call.scope.is_none() => DestinationError::Unauthorized(format!(
            "Pinterest refused the app credentials (client-id / client-secret) or the grant{detail}"
        )),
        (401 | 403, Some(29)) if call.scope.is_some() => DestinationError::ActionRequired(format!(
            "{NOT_PERMITTED} {what} in this ad account: an admin of the ad \
             account must give the user access that allows it (Pinterest Business Access){detail}"
        )),
        (401, _) => DestinationError::Unauthorized(format!("access token invalid or expired{detail}")),
        (403, _) => DestinationError::Unauthorized(format!("{NOT_PERMITTED} {what} in this ad account{detail}")),
        (404, _) => DestinationError::NotFound(format!("Pinterest could not {what}: not found{detail}")),
        (400, _) => DestinationError::InvalidRequest(format!("Pinterest refused to {what}{detail}")),
        (408 | 500..=599, _) => {
            DestinationError::Transient(format!("Pinterest could not {what}: HTTP {}{detail}", response.status))
        }
        _ => default_status_error(response, &format!("Pinterest could not {what}{detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, code: i64, message: &str) -> Response {
        Response::new(status)
            .with_header("x-pinterest-rid", "rid-42")
            .with_body(serde_json::json!({"code": code, "message": message}).to_string())
    }

    fn map(status: u16, code: i64, message: &str) -> DestinationError {
        map_error(Call::UPDATE_CUSTOMER_LIST, &response(status, code, message))
    }

    #[test]
    fn rate_limits() {
        assert_eq!(map(429, 8, "This request exceeded a rate limit."), DestinationError::RateLimited(None));
        let with_retry = response(429, 8, "rate limit").with_header("retry-after", "3");
        assert_eq!(map_error(Call::LIST_AUDIENCES, &with_retry), DestinationError::RateLimited(Some(3000)));
    }

    #[test]
    fn spam_is_not_a_rate_limit() {
        assert_eq!(
            map(429, 8, "Your request was blocked as SPAM."),
            DestinationError::InvalidRequest(
                "Pinterest refused to update the customer list as suspected spam; this is not a rate \
                 limit (Pinterest code 8: Your request was blocked as SPAM.; x-pinterest-rid rid-42)"
                    .into()
            )
        );
    }

    #[test]
    fn expired_tokens() {
        for code in [2, 1104] {
            assert_eq!(
                map(401, code, "Authentication failed."),
                DestinationError::Unauthorized(format!(
                    "access token invalid or expired (Pinterest code {code}: Authentication failed.; \
                     x-pinterest-rid rid-42)"
                ))
            );
        }
    }

    #[test]
    fn missing_scopes() {
        for status in [401, 403] {
            match map(status, 3, "Insufficient scope.") {
                DestinationError::Unauthorized(m) => {
                    assert!(m.starts_with("the access token lacks a required scope (ads:read / ads:write)"), "{m}");
                    assert!(m.contains("it needs ads:write"), "{m}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn not_permitted_needs_a_person() {
        for status in [401, 403] {
            match map(status, 29, "You are not permitted to access that resource.") {
                DestinationError::ActionRequired(m) => {
                    assert!(m.contains("not permitted") && m.contains("an admin"), "{status}: {m}")
                }
                other => panic!("{other:?}"),
            }
        }
        // Without Pinterest's code 29 a 403 stays `unauthorized`, as before.
        for code in [2, 0] {
            match map(403, code, "Forbidden") {
                DestinationError::Unauthorized(m) => assert!(m.contains("not permitted"), "{code}: {m}"),
                other => panic!("{other:?}"),
            }
        }
        let bare = map_error(Call::UPDATE_CUSTOMER_LIST, &Response::new(403));
        assert!(matches!(bare, DestinationError::Unauthorized(_)), "{bare:?}");
    }

    #[test]
    fn scope_errors_are_recognisable() {
        assert!(is_missing_scope(&map(401, 3, "Insufficient scope.")));
        assert!(!is_missing_scope(&map(401, 2, "Authentication failed.")));
        assert!(!is_missing_scope(&map(404, 3, "x")));
    }

    #[test]
    fn not_found_bad_request_and_server_errors() {
        assert!(matches!(map(404, 2, "AdAccount not found."), DestinationError::NotFound(_)));
        assert_eq!(
            map(400, 1, "Invalid records."),
            DestinationError::InvalidRequest(
                "Pinterest refused to update the customer list (Pinterest code 1: Invalid records.; \
                 x-pinterest-rid rid-42)"
                    .into()
            )
        );
        for status in [408, 500, 502, 503] {
            assert!(matches!(map(status, 0, "oops"), DestinationError::Transient(_)), "{status}");
        }
        assert!(matches!(map(409, 0, "conflict"), DestinationError::InvalidRequest(_)));
    }

    #[test]
    fn token_endpoint_401_blames_app_or_grant() {
        match map_error(Call::TOKEN, &response(401, 2, "Authentication failed.")) {
            DestinationError::Unauthorized(m) => assert!(m.contains("client-id / client-secret"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn odd_bodies() {
        assert_eq!(ErrorBody::parse(b""), ErrorBody::default());
        assert_eq!(
            ErrorBody::parse(b"<html>Bad Gateway</html>"),
            ErrorBody { code: None, message: Some("<html>Bad Gateway</html>".into()) }
        );
        assert_eq!(
            ErrorBody::parse(br#"{"error":"invalid_grant","error_description":"Code expired"}"#),
            ErrorBody { code: None, message: Some("Code expired".into()) }
        );
        assert_eq!(
            map_error(Call::LIST_AD_ACCOUNTS, &Response::new(503)),
            DestinationError::Transient("Pinterest could not list ad accounts: HTTP 503".into())
        );
    }
}
