//! Turning Graph API errors into `destination-error`.
//!
//! Graph answers `{"error": {"message", "type", "code", "error_subcode", "error_user_title",
//! "error_user_msg", "fbtrace_id", "is_transient"}}`, and throttles arrive with HTTP 400 as
//! often as 429, so the mapping branches on `code` / `error_subcode`, not on the status:
//!
//! | code (/ subcode)                          | error                                                          |
//! |-------------------------------------------|----------------------------------------------------------------|
//! | at the OAuth endpoints: 1 (`OAuthException`), 100, 101 | `unauthorized`: the app credentials, the redirect URI or the code were refused |
//! | 190 (any subcode), 102                    | `unauthorized`: the token is expired, revoked or invalid (the subcode says which) |
//! | 200 / 1870090                             | `action-required`: accept the Custom Audience terms (link)     |
//! | 200 / 1870050                             | `action-required`: link the ad account to a business (terms link) |
//! | 10, 200-299 (294: no `ads_management`)    | `unauthorized`: a permission or role is missing                |
//! | 100 / 33                                  | `not-found`                                                    |
//! | 100 / 1713230                             | `action-required`: the audience is flagged (appeal or replace) |
//! | 100, 194, 105                             | `invalid-request`                                              |
//! | 2635                                      | `invalid-request`: the API version is deprecated (set `api_version`) |
//! | 4, 17, 32, 613, 80000-80014               | `rate-limited(wait)`: the usage header's regain time (minutes × 60,000 ms), else its reset time, else `Retry-After` |
//! | 368                                       | `transient`, saying it is a policy block that lasts a while    |
//! | 2650, 1, 2                                | `transient`                                                    |
//! | any other with `is_transient: true`       | `transient`                                                    |
//! | no Graph error: 429 / 408, 5xx / 401, 403 / 404 / other | `rate-limited` / `transient` / `unauthorized` / `not-found` / `invalid-request` |
//! | anything else                             | by HTTP status as in the row above                             |
//!
//! The notes list 80003 (custom audience) and 80004 (ads management) among the throttles; the
//! rest of 80000-80014 are the same Business Use Case throttle for other use cases, so they are
//! treated alike. Messages carry Meta's code, subcode and `fbtrace_id` (Meta support asks for
//! it); they never carry a token: none is ever echoed by Graph, and [`crate::client`] redacts
//! the connection's secrets from every message besides.

use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::DestinationError;
use serde::Deserialize;

/// The longest part of a Graph message carried into an error, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// Where the Custom Audience terms of ad account `account` (the bare number) are accepted.
pub fn tos_link(account: &str) -> String {
    format!("https://business.facebook.com/ads/manage/customaudiences/tos/?act={account}")
}

/// Which endpoint family a call belongs to: the OAuth endpoints refuse app credentials and
/// grants with codes that mean something else elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/oauth/access_token`, `/debug_token`.
    OAuth,
    /// Everything else.
    Api,
}

/// Which Graph call failed, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// What the call does, completing "could not ..." ("list ad accounts").
    pub what: &'static str,
    /// Its endpoint family.
    pub endpoint: Endpoint,
}

impl Call {
    /// The authorization-code exchange.
    pub const CODE_EXCHANGE: Call =
        Call { what: "exchange the authorization code for a token", endpoint: Endpoint::OAuth };
    /// `grant_type=fb_exchange_token`.
    pub const LONG_LIVED: Call = Call { what: "exchange the token for a long-lived one", endpoint: Endpoint::OAuth };
    /// `GET /debug_token`.
    pub const DEBUG_TOKEN: Call = Call { what: "inspect the access token", endpoint: Endpoint::OAuth };
    /// `GET /me/adaccounts`.
    pub const LIST_AD_ACCOUNTS: Call = Call { what: "list ad accounts", endpoint: Endpoint::Api };
    /// `GET /act_<n>`.
    pub const READ_AD_ACCOUNT: Call = Call { what: "read the ad account", endpoint: Endpoint::Api };
    /// `GET /act_<n>/customaudiences`.
    pub const LIST_AUDIENCES: Call = Call { what: "list custom audiences", endpoint: Endpoint::Api };
    /// `GET /<audience_id>`.
    pub const READ_AUDIENCE: Call = Call { what: "read the custom audience", endpoint: Endpoint::Api };
    /// `POST /act_<n>/customaudiences`.
    pub const CREATE_AUDIENCE: Call = Call { what: "create the custom audience", endpoint: Endpoint::Api };
    /// `POST /<audience_id>/users`.
    pub const ADD_USERS: Call = Call { what: "add users to the custom audience", endpoint: Endpoint::Api };
    /// `DELETE /<audience_id>/users`.
    pub const REMOVE_USERS: Call = Call { what: "remove users from the custom audience", endpoint: Endpoint::Api };
}

/// Graph's `error` object, read leniently.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GraphError {
    /// Meta's message (for developers).
    #[serde(default)]
    pub message: Option<String>,
    /// Usually `OAuthException`.
    #[serde(default, rename = "type")]
    pub error_type: Option<String>,
    /// The error code.
    #[serde(default)]
    pub code: Option<i64>,
    /// The subcode, when given.
    #[serde(default)]
    pub error_subcode: Option<i64>,
    /// A title for people, when given.
    #[serde(default)]
    pub error_user_title: Option<String>,
    /// A message for people, when given.
    #[serde(default)]
    pub error_user_msg: Option<String>,
    /// Meta's trace id, for support.
    #[serde(default)]
    pub fbtrace_id: Option<String>,
    /// Whether Meta says a retry may work.
    #[serde(default)]
    pub is_transient: Option<bool>,
}

#[derive(Deserialize)]
struct Envelope {
    error: GraphError,
}

impl GraphError {
    /// The `error` object of a response body, if it has one.
    pub fn parse(body: &[u8]) -> Option<GraphError> {
        serde_json::from_slice::<Envelope>(body).ok().map(|e| e.error)
    }

    /// " (Meta: title: user message; message; code 100/33; fbtrace_id X)".
    pub fn detail(&self) -> String {
        let clean = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let mut parts = Vec::new();
        let user = match (clean(&self.error_user_title), clean(&self.error_user_msg)) {
            (Some(title), Some(msg)) => Some(format!("{title}: {msg}")),
            (title, msg) => title.or(msg),
        };
        let mut words: Vec<String> = user.into_iter().collect();
        if let Some(message) = clean(&self.message) {
            words.push(message);
        }
        if !words.is_empty() {
            parts.push(format!("Meta: {}", excerpt(&words.join("; "), MAX_MESSAGE_CHARS)));
        }
        match (self.code, self.error_subcode) {
            (Some(code), Some(sub)) => parts.push(format!("code {code}/{sub}")),
            (Some(code), None) => parts.push(format!("code {code}")),
            _ => {}
        }
        if let Some(trace) = clean(&self.fbtrace_id) {
            parts.push(format!("fbtrace_id {}", excerpt(&trace, 80)));
        }
        if parts.is_empty() { String::new() } else { format!(" ({})", parts.join("; ")) }
    }
}

/// What else the mapping needs to know about a failed call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context<'a> {
    /// The ad account involved (bare number), for the terms link.
    pub account: Option<&'a str>,
    /// How long to wait, from the usage headers ([`crate::usage::Usage::throttle_wait_ms`]).
    pub usage_wait_ms: Option<u32>,
    /// `Retry-After` in milliseconds, when the response had one.
    pub retry_after_ms: Option<u32>,
}

/// Why Meta refused the token, from a code 190 subcode.
fn token_problem(subcode: Option<i64>) -> &'static str {
    match subcode {
        Some(458) => "the user removed the app",
        Some(459) => "the user must log in to Facebook to pass a security checkpoint",
        Some(460) => "the user changed their password or Meta revoked the session",
        Some(463) => "the access token expired",
        Some(464) => "the user has not confirmed their Facebook account",
        Some(467) => "the access token is invalid",
        Some(492) => "the user's session is no longer valid",
        _ => "the access token is invalid, expired or revoked",
    }
}

/// The error for a Graph failure of `call` answered with HTTP `status` and, when the body
/// had one, Graph's `error` object.
pub fn map_error(call: Call, status: u16, error: Option<&GraphError>, context: Context<'_>) -> DestinationError {
    let what = call.what;
    let detail = error.map(GraphError::detail).unwrap_or_default();
    let wait = context.usage_wait_ms.or(context.retry_after_ms);
    let account = context.account.unwrap_or("<ad account>");
    let code = error.and_then(|e| e.code);
    let subcode = error.and_then(|e| e.error_subcode);
    let oauth_type = error.and_then(|e| e.error_type.as_deref()) == Some("OAuthException");
    use DestinationError as E;
    match (code, subcode) {
        (Some(1), _) if call.endpoint == Endpoint::OAuth && oauth_type => {
            E::Unauthorized(format!("Meta refused to {what}: check the app's client-id and client-secret{detail}"))
        }
        (Some(100 | 101), _) if call.endpoint == Endpoint::OAuth => E::Unauthorized(format!(
            "Meta refused to {what}: the app credentials (client-id / client-secret), the redirect URI \
             or the authorization code or token were not accepted; the user may need to log in again{detail}"
        )),
        (Some(190), sub) => E::Unauthorized(format!(
            "Meta refused the access token: {}; the user must log in again if renewing it fails{detail}",
            token_problem(sub)
        )),
        (Some(102), _) => E::Unauthorized(format!("Meta refused the session of the access token{detail}")),
        (Some(200), Some(1_870_090)) => E::ActionRequired(format!(
            "the Custom Audience terms are not accepted for ad account {account}: someone in the business that \
             owns it must accept them at {}, then resume the sync{detail}",
            tos_link(account)
        )),
        (Some(200), Some(1_870_050)) => E::ActionRequired(format!(
            "ad account {account} is not linked to a business, which customer-file audiences need: link it in \
             Business Settings and accept the Custom Audience terms at {}, then resume the sync{detail}",
            tos_link(account)
        )),
        (Some(294), _) => E::Unauthorized(format!(
            "the connection lacks the ads_management permission needed to {what}: log in again and grant it{detail}"
        )),
        (Some(270), _) => E::Unauthorized(format!(
            "a development-tier app may only {what} when the user is an admin of both the app and the ad account \
             (or the app needs Advanced access){detail}"
        )),
        (Some(10 | 200..=299), _) => E::Unauthorized(format!(
            "Meta refused to {what}: the connection lacks a permission or role in this ad account; log in again \
             granting ads_management, ads_read and business_management, or ask for a role on the account{detail}"
        )),
        (Some(100), Some(33)) => E::NotFound(format!(
            "Meta could not {what}: the object does not exist or this connection cannot see it{detail}"
        )),
        (Some(100), Some(1_713_230)) => E::ActionRequired(format!(
            "Meta flagged the custom audience under its integrity policy (health or financial wording in its name or \
             description), so its members cannot change: appeal in Ads Manager or use another audience, then resume \
             the sync{detail}"
        )),
        (Some(2635), _) => E::InvalidRequest(format!(
            "Meta no longer serves this Graph API version: set the plugin setting `api_version` to a current one \
             (e.g. v25.0 or later){detail}"
        )),
        (Some(100 | 194 | 105), _) => E::InvalidRequest(format!("Meta refused to {what}{detail}")),
        (Some(4 | 17 | 32 | 613 | 80_000..=80_014), _) => E::RateLimited(wait),
        (Some(368), _) => E::Transient(format!(
            "Meta temporarily blocked this connection for a policy reason, usually for hours; the host keeps \
             retrying with backoff; if it persists, check the account's quality and Meta's notices{detail}"
        )),
        (Some(2650 | 1 | 2), _) => E::Transient(format!("Meta could not {what} just now{detail}")),
        _ if error.and_then(|e| e.is_transient) == Some(true) => {
            E::Transient(format!("Meta could not {what} just now{detail}"))
        }
        _ => match status {
            429 => E::RateLimited(wait),
            408 | 500..=599 => E::Transient(format!("Meta could not {what}: HTTP {status}{detail}")),
            401 | 403 => E::Unauthorized(format!("Meta refused to {what}: HTTP {status}{detail}")),
            404 => E::NotFound(format!("Meta could not {what}: HTTP 404{detail}")),
            _ => E::InvalidRequest(format!("Meta refused to {what}: HTTP {status}{detail}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: i64, subcode: Option<i64>) -> GraphError {
        GraphError {
            message: Some("Some message".into()),
            error_type: Some("OAuthException".into()),
            code: Some(code),
            error_subcode: subcode,
            fbtrace_id: Some("AbCdEf".into()),
            ..GraphError::default()
        }
    }

    fn variant(err: &DestinationError) -> &'static str {
        match err {
            DestinationError::RateLimited(_) => "rate-limited",
            DestinationError::Unauthorized(_) => "unauthorized",
            DestinationError::NotFound(_) => "not-found",
            DestinationError::InvalidRequest(_) => "invalid-request",
            DestinationError::ActionRequired(_) => "action-required",
            DestinationError::Transient(_) => "transient",
            DestinationError::RejectedUsers(_) => "rejected-users",
        }
    }

    fn message(err: &DestinationError) -> &str {
        match err {
            DestinationError::RateLimited(_) => "",
            DestinationError::Unauthorized(m)
            | DestinationError::NotFound(m)
            | DestinationError::InvalidRequest(m)
            | DestinationError::ActionRequired(m)
            | DestinationError::Transient(m) => m,
            DestinationError::RejectedUsers(_) => "",
        }
    }

    const CONTEXT: Context<'static> = Context { account: Some("1234"), usage_wait_ms: None, retry_after_ms: None };

    #[test]
    fn the_error_table() {
        let table: &[(u16, i64, Option<i64>, &str)] = &[
            (400, 190, Some(463), "unauthorized"),
            (400, 190, Some(460), "unauthorized"),
            (400, 190, None, "unauthorized"),
            (400, 102, None, "unauthorized"),
            (400, 10, None, "unauthorized"),
            (400, 200, None, "unauthorized"),
            (403, 294, None, "unauthorized"),
            (400, 270, None, "unauthorized"),
            (400, 299, None, "unauthorized"),
            (400, 200, Some(1_870_090), "action-required"),
            (400, 200, Some(1_870_050), "action-required"),
            (400, 100, Some(33), "not-found"),
            (400, 100, Some(1_713_230), "action-required"),
            (400, 100, None, "invalid-request"),
            (400, 100, Some(1_487_301), "invalid-request"),
            (400, 194, None, "invalid-request"),
            (400, 105, None, "invalid-request"),
            (400, 2635, None, "invalid-request"),
            (400, 2650, Some(1_870_145), "transient"),
            (400, 2650, Some(1_870_148), "transient"),
            (500, 1, None, "transient"),
            (500, 2, None, "transient"),
            (400, 368, Some(1_390_008), "transient"),
            (400, 4, None, "rate-limited"),
            (400, 17, Some(2_446_079), "rate-limited"),
            (400, 32, None, "rate-limited"),
            (400, 613, Some(1_487_742), "rate-limited"),
            (400, 613, None, "rate-limited"),
            (400, 80_003, Some(2_446_079), "rate-limited"),
            (400, 80_004, None, "rate-limited"),
            (200, 80_000, None, "rate-limited"),
        ];
        for (status, code, subcode, expected) in table {
            let err = map_error(Call::ADD_USERS, *status, Some(&error(*code, *subcode)), CONTEXT);
            assert_eq!(variant(&err), *expected, "{code}/{subcode:?}: {err:?}");
            if *expected != "rate-limited" {
                assert!(message(&err).contains("fbtrace_id AbCdEf"), "{code}: {err:?}");
                assert!(message(&err).contains(&format!("code {code}")), "{code}: {err:?}");
            }
        }
    }

    #[test]
    fn throttles_wait_as_the_usage_header_says() {
        let with_usage = Context { usage_wait_ms: Some(420_000), retry_after_ms: Some(5_000), ..CONTEXT };
        let err = map_error(Call::ADD_USERS, 400, Some(&error(80_003, Some(2_446_079))), with_usage);
        assert_eq!(err, DestinationError::RateLimited(Some(420_000)));
        let retry_after = Context { retry_after_ms: Some(5_000), ..CONTEXT };
        assert_eq!(map_error(Call::ADD_USERS, 429, None, retry_after), DestinationError::RateLimited(Some(5_000)));
        assert_eq!(
            map_error(Call::ADD_USERS, 400, Some(&error(17, None)), CONTEXT),
            DestinationError::RateLimited(None)
        );
    }

    #[test]
    fn terms_and_flags_say_what_to_do() {
        let err = map_error(Call::CREATE_AUDIENCE, 400, Some(&error(200, Some(1_870_090))), CONTEXT);
        assert!(message(&err).contains("https://business.facebook.com/ads/manage/customaudiences/tos/?act=1234"));
        let err = map_error(Call::ADD_USERS, 400, Some(&error(100, Some(1_713_230))), CONTEXT);
        assert!(message(&err).contains("appeal"), "{err:?}");
        let err = map_error(Call::LIST_AUDIENCES, 400, Some(&error(2635, None)), CONTEXT);
        assert!(message(&err).contains("`api_version`"), "{err:?}");
        let err = map_error(Call::ADD_USERS, 400, Some(&error(368, None)), CONTEXT);
        assert!(message(&err).contains("policy"), "{err:?}");
        let err = map_error(Call::ADD_USERS, 400, Some(&error(190, Some(463))), CONTEXT);
        assert!(message(&err).contains("expired"), "{err:?}");
        let err = map_error(Call::ADD_USERS, 403, Some(&error(294, None)), CONTEXT);
        assert!(message(&err).contains("ads_management"), "{err:?}");
    }

    #[test]
    fn oauth_endpoints_blame_credentials_or_grant() {
        for code in [1, 100, 101, 190] {
            let err = map_error(Call::CODE_EXCHANGE, 400, Some(&error(code, None)), Context::default());
            assert_eq!(variant(&err), "unauthorized", "{code}");
        }
        let mut unknown = error(1, None);
        unknown.error_type = None;
        assert_eq!(variant(&map_error(Call::CODE_EXCHANGE, 500, Some(&unknown), Context::default())), "transient");
    }

    #[test]
    fn without_a_graph_error_the_status_decides() {
        for (status, expected) in [
            (429, "rate-limited"),
            (500, "transient"),
            (503, "transient"),
            (408, "transient"),
            (401, "unauthorized"),
            (403, "unauthorized"),
            (404, "not-found"),
            (400, "invalid-request"),
        ] {
            assert_eq!(variant(&map_error(Call::READ_AUDIENCE, status, None, CONTEXT)), expected, "{status}");
        }
        let mut odd = error(123_456, None);
        odd.is_transient = Some(true);
        assert_eq!(variant(&map_error(Call::READ_AUDIENCE, 400, Some(&odd), CONTEXT)), "transient");
        odd.is_transient = None;
        assert_eq!(variant(&map_error(Call::READ_AUDIENCE, 400, Some(&odd), CONTEXT)), "invalid-request");
    }

    #[test]
    fn parsing_and_detail() {
        let body = br#"{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100,
            "error_subcode":33,"error_user_title":"Missing","error_user_msg":"Gone.","fbtrace_id":"T1"}}"#;
        let parsed = GraphError::parse(body).unwrap();
        assert_eq!(parsed.detail(), " (Meta: Missing: Gone.; (#100) Invalid parameter; code 100/33; fbtrace_id T1)");
        assert_eq!(GraphError::parse(b"<html>"), None);
        assert_eq!(GraphError::parse(br#"{"data": []}"#), None);
        assert_eq!(GraphError::default().detail(), "");
    }
}
