//! Extractors whose failures are [`ApiError`]s: a JSON body, a query string, and the caller's
//! identity (operator or workspace) from `Authorization: Bearer <key>`.
//!
//! Why custom extractors rather than axum's: axum's rejections answer in plain text, and
//! some with statuses a caller cannot act on. Here every way a body can be wrong — no or
//! the wrong content type, too large, not UTF-8, not JSON, JSON of the wrong shape — is a
//! 4xx JSON error whose message names the place to fix (line and column, or the field's path
//! such as `users[3].identifiers[0].kind`).
//!
//! **Control characters** (Unicode `Cc`: NUL, line breaks, tabs, ESC, DEL, U+0080–U+009F) are
//! refused here, once for every route: in any string of a JSON body and in any path id, with a
//! 422 naming the field (`users[3].key`, `name`, `credentials.access_token`, `id`), before
//! anything reaches the engine or the store. Why: PostgreSQL cannot store NUL in text (it
//! failed as a 503 "try again later", which a retrying client repeats forever), CR/LF in a
//! credential breaks every later request's headers, and in keys, names and identifiers they
//! are always a caller's bug. The one exception is free text people write: a field named in
//! [`MULTILINE_FIELDS`] (a sync's `description`) may hold line breaks and tabs, never NUL or
//! the other controls. Query strings are not checked: the OAuth callback's come from the
//! partner, and a bad `cursor` is answered by the accounts route itself.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::ApiState;
use super::error::ApiError;
use super::secrets::hash_secret;
use audience_engine::Problem;

/// A JSON request body, parsed into `T`.
pub(crate) struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_content_type(req.headers().get(header::CONTENT_TYPE))?;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is larger than this host accepts; send fewer users per call \
                     (at most 10,000) or shorter values",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    format!("the request body could not be read: {}", rejection.body_text()),
                )
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Only `application/json` (or a `+json` type) is accepted; the charset, if named, must be UTF-8.
fn check_content_type(value: Option<&header::HeaderValue>) -> Result<(), ApiError> {
    let unsupported = |what: String| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("{what}; send the body as JSON with `Content-Type: application/json`"),
        )
    };
    let Some(value) = value else {
        return Err(unsupported("the request has no Content-Type".into()));
    };
    let text = value.to_str().map_err(|_| unsupported("the Content-Type header is not readable text".into()))?;
    let mut parts = text.split(';').map(str::trim);
    let essence = parts.next().unwrap_or("").to_ascii_lowercase();
    if essence != "application/json" && !(essence.starts_with("application/") && essence.ends_with("+json")) {
        return Err(unsupported(format!("Content-Type {essence:?} is not JSON")));
    }
    for param in parts {
        if let Some((name, value)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("charset")
        {
            let charset = value.trim().trim_matches('"').to_ascii_lowercase();
            if charset != "utf-8" && charset != "utf8" {
                return Err(unsupported(format!("charset {charset:?} is not supported (only UTF-8)")));
            }
        }
    }
    Ok(())
}

/// Parses a JSON body: UTF-8 first, then syntax (400 `invalid_json` with line and column),
/// then shape (422 `invalid_request` naming the field's path).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Err(err) = std::str::from_utf8(bytes) {
        return Err(ApiError::invalid_json(format!(
            "the request body is not valid UTF-8 (the first invalid byte is at offset {}); send JSON encoded \
             as UTF-8",
            err.valid_up_to()
        )));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_json("the request body is empty; send a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    match parsed {
        Ok(value) => match deserializer.end() {
            Ok(()) => {
                check_control_characters(bytes)?;
                Ok(value)
            }
            Err(err) => Err(ApiError::invalid_json(format!("the request body is not valid JSON: {err}"))),
        },
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = if path.is_empty() || path == "." { "body".to_string() } else { path };
                    ApiError::invalid(vec![Problem::new(field, strip_position(&inner.to_string()))])
                }
                _ => ApiError::invalid_json(format!("the request body is not valid JSON: {inner}")),
            })
        }
    }
}

/// Fields (by their last name) where free text may hold line breaks and tabs.
pub(crate) const MULTILINE_FIELDS: &[&str] = &["description"];

/// Characters a multi-line field may hold besides printable ones.
const MULTILINE_CONTROLS: &[char] = &['\n', '\r', '\t'];

/// Every string of a valid JSON body that holds a control character, as 422 problems by field.
///
/// JSON forbids raw U+0000–U+001F inside strings (serde_json has refused them already), so a
/// control character can only arrive escaped (`\u0000`, `\n`, ...) or as raw DEL or a raw C1
/// character. Bodies with none of those (nearly all) are not looked at again; the others are
/// walked once more to name the fields.
fn check_control_characters(bytes: &[u8]) -> Result<(), ApiError> {
    if !may_hold_control_characters(bytes) {
        return Ok(());
    }
    let Ok(tree) = serde_json::from_slice::<serde_json::Value>(bytes) else { return Ok(()) };
    let mut problems = Vec::new();
    walk(&tree, &mut String::new(), &mut problems);
    if problems.is_empty() {
        return Ok(());
    }
    if problems.len() > audience_engine::MAX_PROBLEMS {
        problems.truncate(audience_engine::MAX_PROBLEMS);
        problems.push(Problem::new("body", "more problems not listed; fix these first"));
    }
    Err(ApiError::invalid(problems))
}

/// Whether a JSON text may hold a control character in a string: an escape other than `\"`,
/// `\\` and `\/` (a `\u` escape only when it names one), a raw DEL, or a raw C1 character.
fn may_hold_control_characters(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => match bytes.get(i + 1) {
                Some(b'"' | b'\\' | b'/') => i += 2,
                Some(b'u') => {
                    let code = bytes
                        .get(i + 2..i + 6)
                        .and_then(|hex| std::str::from_utf8(hex).ok())
                        .and_then(|hex| u32::from_str_radix(hex, 16).ok());
                    if code.is_none_or(|c| char::from_u32(c).is_none_or(char::is_control)) {
                        return true;
                    }
                    i += 6;
                }
                _ => return true,
            },
            0x7f => return true,
            0xc2 if bytes.get(i + 1).is_some_and(|b| (0x80..=0x9f).contains(b)) => return true,
            _ => i += 1,
        }
    }
    false
}

/// Collects the control characters under `value`, whose path is `path` (serde_path_to_error's
/// notation: `users[3].identifiers[0].value`).
fn walk(value: &serde_json::Value, path: &mut String, problems: &mut Vec<Problem>) {
    if problems.len() > audience_engine::MAX_PROBLEMS {
        return;
    }
    match value {
        serde_json::Value::String(text) => {
            let field = path.rsplit(['.', '[']).next().unwrap_or("");
            let allowed: &[char] = if MULTILINE_FIELDS.contains(&field) { MULTILINE_CONTROLS } else { &[] };
            if let Some(message) = control_character(text, allowed) {
                let field = if path.is_empty() { "body".to_string() } else { path.clone() };
                problems.push(Problem::new(field, message));
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, problems);
                path.truncate(len);
            }
        }
        serde_json::Value::Object(members) => {
            for (name, member) in members {
                if let Some(message) = control_character(name, &[]) {
                    let field = if path.is_empty() { "body".to_string() } else { path.clone() };
                    problems.push(Problem::new(field, format!("a member name {message}")));
                    continue;
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
                walk(member, path, problems);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// What is wrong with `text` if it holds a control character not in `allowed`.
pub(crate) fn control_character(text: &str, allowed: &[char]) -> Option<String> {
    let (at, c) = text.chars().enumerate().find(|(_, c)| c.is_control() && !allowed.contains(c))?;
    let what =
        if c == '\0' { "a NUL character".to_string() } else { format!("a control character (U+{:04X})", u32::from(c)) };
    let rule = if allowed.is_empty() {
        "control characters (NUL, line breaks, tabs, ...) are not accepted here"
    } else {
        "only line breaks and tabs are accepted here, no other control characters"
    };
    Some(format!("contains {what} at character {at}; {rule}"))
}

/// serde_json appends " at line L column C" to data errors; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// A query string parsed into `T`; a wrong one is a 400 naming the parameter.
pub(crate) struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", rejection.body_text()))
    }
}

/// Path parameters parsed into `T`; a wrong one (e.g. not UTF-8 once decoded) is a 400.
pub(crate) struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let path = axum::extract::Path::<T>::from_request_parts(parts, state).await.map_err(|rejection| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("{}; ids are ASCII, as returned by this API", rejection.body_text()),
            )
        })?;
        // Decoded already (the typed extraction above succeeded), so this cannot fail.
        if let Ok(raw) = axum::extract::RawPathParams::from_request_parts(parts, state).await {
            let problems: Vec<Problem> = raw
                .iter()
                .filter_map(|(name, value)| {
                    control_character(value, &[])
                        .map(|m| Problem::new(name, format!("{m}; ids are as returned by this API")))
                })
                .collect();
            if !problems.is_empty() {
                return Err(ApiError::invalid(problems));
            }
        }
        Ok(Path(path.0))
    }
}

/// The bearer token of a request, or 401 saying what is missing.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("missing `Authorization: Bearer <key>` header; send an API key of your workspace")
    })?;
    let text = value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not readable text"))?;
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized("the Authorization header must be `Bearer <key>`"));
    }
    Ok(token.trim())
}

/// The caller is the operator (the key from the host's configuration).
pub(crate) struct Operator;

impl FromRequestParts<Arc<ApiState>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        if state.operator_key.matches(token) {
            return Ok(Operator);
        }
        match state.engine.store().api_key_by_hash(&hash_secret(token)).await {
            Ok(_) => Err(ApiError::forbidden(
                "this route needs the operator key; a workspace API key cannot manage workspaces or read \
                 host metrics",
            )),
            Err(audience_store::StoreError::NotFound { .. }) => Err(ApiError::unauthorized("unknown API key")),
            Err(other) => Err(other.into()),
        }
    }
}

/// The caller acts for one workspace, with one of its API keys.
pub(crate) struct Tenant {
    /// The workspace.
    pub workspace_id: String,
}

impl FromRequestParts<Arc<ApiState>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        match state.engine.store().api_key_by_hash(&hash_secret(token)).await {
            Ok(key) => Ok(Tenant { workspace_id: key.workspace_id }),
            Err(audience_store::StoreError::NotFound { .. }) if state.operator_key.matches(token) => {
                Err(ApiError::forbidden(
                    "this route acts inside a workspace: use one of its API keys (the operator creates them \
                     with POST /v1/workspaces/{id}/keys), not the operator key",
                ))
            }
            Err(audience_store::StoreError::NotFound { .. }) => {
                Err(ApiError::unauthorized("unknown API key; it may have been revoked: ask the operator for a new one"))
            }
            Err(other) => Err(other.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<u32>,
    }

    #[test]
    fn json_errors_name_the_place_to_fix() {
        let err = parse_json::<Body>(b"{\"name\": \"x\", \"items\": [1, \"two\"]}").unwrap_err();
        assert_eq!((err.status, err.code), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"));
        assert_eq!(err.problems[0].field, "items[1]");
        assert!(err.problems[0].message.contains("expected u32"), "{err}");

        let err = parse_json::<Body>(b"{\"name\": ").unwrap_err();
        assert_eq!((err.status, err.code), (StatusCode::BAD_REQUEST, "invalid_json"));
        assert!(err.message.contains("line 1"), "{err}");

        let err = parse_json::<Body>(b"{\"name\": \"\xff\"}").unwrap_err();
        assert!(err.message.contains("UTF-8") && err.message.contains("offset 10"), "{err}");

        let err = parse_json::<Body>(b"{\"name\": \"x\", \"items\": []} trailing").unwrap_err();
        assert_eq!(err.code, "invalid_json", "{err}");

        let err = parse_json::<Body>(b"  ").unwrap_err();
        assert!(err.message.contains("empty"), "{err}");

        let err = parse_json::<Body>(b"{\"items\": []}").unwrap_err();
        assert!(err.message.contains("missing field `name`"), "{err}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Sync {
        name: String,
        description: Option<String>,
        users: Vec<Body>,
    }

    #[test]
    fn control_characters_are_refused_by_field_except_line_breaks_in_free_text() {
        let fields = |body: &str| -> Vec<String> {
            match parse_json::<Sync>(body.as_bytes()) {
                Ok(_) => Vec::new(),
                Err(err) => {
                    assert_eq!((err.status, err.code), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), "{err}");
                    err.problems.iter().map(|p| p.field.clone()).collect()
                }
            }
        };
        let ok = r#"{"name": "a\/b \"q\" \\n", "description": "two\nlines\tand a tab", "users": []}"#;
        assert_eq!(fields(ok), Vec::<String>::new());
        assert!(!may_hold_control_characters(br#"{"name": "a\/b \"q\" \\n \u00e9"}"#));
        let bad = r#"{"name": "a\u0000", "description": "x\u0000", "users": [{"name": "ok", "items": []},
            {"name": "esc\u001b", "items": []}, {"name": "c1", "items": []}, {"name": "del", "items": []}]}"#;
        // Members in name order (serde_json's map), array items in order.
        assert_eq!(fields(bad), ["description", "name", "users[1].name", "users[2].name", "users[3].name"]);
        let err = parse_json::<Sync>(br#"{"name": "x\r\ny", "users": []}"#).unwrap_err();
        assert!(err.message.contains("(U+000D) at character 1"), "{err}");
        let err = parse_json::<Sync>(br#"{"name": "\u0000", "users": []}"#).unwrap_err();
        assert!(err.message.starts_with("name: contains a NUL character"), "{err}");
    }

    #[test]
    fn only_json_content_types_pass() {
        let ok = |v: &str| check_content_type(Some(&header::HeaderValue::from_str(v).unwrap())).is_ok();
        assert!(ok("application/json"));
        assert!(ok("application/json; charset=utf-8"));
        assert!(ok("application/merge-patch+json"));
        assert!(!ok("text/plain"));
        assert!(!ok("application/json; charset=latin1"));
        assert!(check_content_type(None).is_err());
    }
}
