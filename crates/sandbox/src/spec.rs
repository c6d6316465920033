//! Conformance checks against Pinterest's own OpenAPI description.
//!
//! A sandbox that accepts whatever its authors believed Pinterest accepts proves nothing about
//! the real API. So the bodies the sandbox accepts are checked against the request schemas in
//! Pinterest's published `openapi.json` (embedded from `spec/`, see `spec/README.md`): required
//! fields, enum values, basic types and simple bounds, following `$ref`, `allOf` and
//! discriminator mappings. The checker is deliberately small: it covers the JSON-Schema
//! subset these request schemas use, not all of OpenAPI.

use std::collections::HashSet;
use std::sync::LazyLock;

use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use serde::de::DeserializeOwned;

use crate::customer_lists::split_records;
use crate::error::{ApiError, LogExtras};

/// Pinterest's OpenAPI description of API v5 (version 5.23.0, MIT licence), as published in
/// the `pinterest/api-description` repository (`v5/openapi.json`).
pub const PINTEREST_OPENAPI_JSON: &str = include_str!("../spec/pinterest-openapi-v5.23.json");

static SPEC: LazyLock<Option<Value>> = LazyLock::new(|| {
    serde_json::from_str(PINTEREST_OPENAPI_JSON)
        .map_err(|e| tracing::error!("embedded OpenAPI description does not parse: {e}"))
        .ok()
});

/// Deepest schema nesting followed; guards against reference cycles.
const MAX_DEPTH: usize = 32;
/// Array elements checked per array; enough to catch a wrong element type.
const MAX_ITEMS_CHECKED: usize = 100;

/// The request bodies the sandbox checks, named by the spec's path and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    OauthToken,
    OauthRevoke,
    CustomerListCreate,
    CustomerListUpdate,
    AudienceCreate,
    AudienceUpdate,
}

impl Operation {
    fn spec_path(self) -> (&'static str, &'static str) {
        match self {
            Self::OauthToken => ("/oauth/token", "post"),
            Self::OauthRevoke => ("/oauth/token/revoke", "post"),
            Self::CustomerListCreate => ("/ad_accounts/{ad_account_id}/customer_lists", "post"),
            Self::CustomerListUpdate => ("/ad_accounts/{ad_account_id}/customer_lists/{customer_list_id}", "patch"),
            Self::AudienceCreate => ("/ad_accounts/{ad_account_id}/audiences", "post"),
            Self::AudienceUpdate => ("/ad_accounts/{ad_account_id}/audiences/{audience_id}", "patch"),
        }
    }

    fn is_form(self) -> bool {
        matches!(self, Self::OauthToken | Self::OauthRevoke)
    }

    fn media_type(self) -> &'static str {
        if self.is_form() { "application/x-www-form-urlencoded" } else { "application/json" }
    }
}

/// A request body after parsing and checking.
#[derive(Debug, Default)]
pub(crate) struct CheckedBody {
    /// The parsed body (a form becomes an object of strings); `None` when it did not parse.
    pub value: Option<Value>,
    /// Every way the request broke the spec.
    pub violations: Vec<String>,
}

/// Parses `body` as `op` expects (JSON or form) and checks it and its `Content-Type` against
/// the spec.
pub(crate) fn check_request(op: Operation, headers: &HeaderMap, body: &[u8]) -> CheckedBody {
    let mut violations = Vec::new();
    let expected = op.media_type();
    let actual = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let actual_media = actual.split(';').next().unwrap_or("").trim();
    if !actual_media.eq_ignore_ascii_case(expected) {
        violations.push(format!("Content-Type is `{actual}`, the spec requires `{expected}`"));
    }
    let value = if op.is_form() {
        match serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) {
            Ok(pairs) => {
                Some(Value::Object(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<Map<_, _>>()))
            }
            Err(e) => {
                violations.push(format!("body is not a valid form: {e}"));
                None
            }
        }
    } else if body.iter().all(u8::is_ascii_whitespace) {
        violations.push("body is required but empty".to_owned());
        None
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => Some(v),
            Err(e) => {
                violations.push(format!("body is not valid JSON: {e}"));
                None
            }
        }
    };
    if let Some(v) = &value {
        violations.extend(check_body(op, v));
    }
    CheckedBody { value, violations }
}

/// The 400 answered for a body that breaks the spec, naming every violation.
pub(crate) fn violations_error(violations: &[String]) -> ApiError {
    ApiError::invalid(format!("Request does not match the Pinterest API description: {}", violations.join("; ")))
}

/// Parses and checks a request body and deserializes it, recording in `extras` how many
/// records it carried and how it broke the spec. Any violation is answered 400.
pub(crate) fn checked_body<T: DeserializeOwned>(
    op: Operation,
    headers: &HeaderMap,
    body: &[u8],
    extras: &mut LogExtras,
) -> Result<T, ApiError> {
    let checked = check_request(op, headers, body);
    extras.records = checked
        .value
        .as_ref()
        .and_then(|v| v.get("records"))
        .and_then(Value::as_str)
        .map(|raw| split_records(raw).count());
    extras.violations = checked.violations;
    if !extras.violations.is_empty() {
        return Err(violations_error(&extras.violations));
    }
    serde_json::from_value(checked.value.unwrap_or_default())
        .map_err(|e| ApiError::invalid(format!("Invalid request body: {e}")))
}

/// Checks an already parsed body against the request schema of `op`.
pub(crate) fn check_body(op: Operation, body: &Value) -> Vec<String> {
    let Some(spec) = SPEC.as_ref() else {
        return vec!["the embedded OpenAPI description is unavailable".to_owned()];
    };
    let (path, method) = op.spec_path();
    let schema = spec
        .get("paths")
        .and_then(|p| p.get(path))
        .and_then(|p| p.get(method))
        .and_then(|m| m.pointer("/requestBody/content"))
        .and_then(|c| c.get(op.media_type()))
        .and_then(|c| c.get("schema"));
    let Some(schema) = schema else {
        return vec![format!("no request schema in the spec for {method} {path}")];
    };
    let mut checker = Checker { spec, form: op.is_form(), out: Vec::new() };
    checker.check(schema, body, "body", 0);
    let mut seen = HashSet::new();
    checker.out.retain(|v| seen.insert(v.clone()));
    checker.out
}

/// OAuth scopes the spec defines for the authorization-code flow.
pub(crate) fn known_scopes() -> Option<HashSet<String>> {
    let scopes =
        SPEC.as_ref()?.pointer("/components/securitySchemes/pinterest_oauth2/flows/authorizationCode/scopes")?;
    Some(scopes.as_object()?.keys().cloned().collect())
}

/// The `maximum` of the spec's shared `page_size` query parameter.
#[cfg(test)]
pub(crate) fn max_page_size_in_spec() -> Option<u64> {
    SPEC.as_ref()?.pointer("/components/parameters/query_page_size/schema/maximum")?.as_u64()
}

struct Checker<'s> {
    spec: &'s Value,
    /// Form bodies carry every value as a string; scalars are parsed before type checks.
    form: bool,
    out: Vec<String>,
}

impl<'s> Checker<'s> {
    fn resolve(&mut self, reference: &str, at: &str) -> Option<&'s Value> {
        let found = reference.strip_prefix('#').and_then(|pointer| self.spec.pointer(pointer));
        if found.is_none() {
            self.out.push(format!("{at}: unresolvable schema reference {reference}"));
        }
        found
    }

    fn check(&mut self, schema: &'s Value, value: &Value, at: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            if let Some(target) = self.resolve(reference, at) {
                self.check(target, value, at, depth + 1);
            }
            return;
        }
        if value.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }
        if let Some(kind) = schema.get("type").and_then(Value::as_str)
            && !self.has_type(value, kind)
        {
            self.out.push(format!("{at}: expected {kind}, got {}", describe(value)));
            return;
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.iter().any(|o| self.same_scalar(o, value))
        {
            let allowed: Vec<String> = options.iter().map(scalar_text).collect();
            self.out.push(format!("{at}: `{}` is not one of [{}]", scalar_text(value), allowed.join(", ")));
        }
        self.check_bounds(schema, value, at);
        if let Some(object) = value.as_object() {
            self.check_object(schema, object, at, depth);
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().take(MAX_ITEMS_CHECKED).enumerate() {
                self.check(items, item, &format!("{at}[{i}]"), depth + 1);
            }
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for part in all {
                self.check(part, value, at, depth + 1);
            }
        }
        for keyword in ["oneOf", "anyOf"] {
            if let Some(options) = schema.get(keyword).and_then(Value::as_array) {
                self.check_alternatives(keyword, options, value, at, depth);
            }
        }
        self.check_discriminator(schema, value, at, depth);
    }

    fn check_object(&mut self, schema: &'s Value, object: &Map<String, Value>, at: &str, depth: usize) {
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    self.out.push(format!("{at}.{name}: required property is missing"));
                }
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, sub) in properties {
                if let Some(v) = object.get(name) {
                    self.check(sub, v, &format!("{at}.{name}"), depth + 1);
                }
            }
        }
    }

    fn check_alternatives(&mut self, keyword: &str, options: &'s [Value], value: &Value, at: &str, depth: usize) {
        let matches = options.iter().any(|option| {
            let mut trial = Checker { spec: self.spec, form: self.form, out: Vec::new() };
            trial.check(option, value, at, depth + 1);
            trial.out.is_empty()
        });
        if !matches {
            self.out.push(format!("{at}: matches none of the {keyword} alternatives"));
        }
    }

    fn check_discriminator(&mut self, schema: &'s Value, value: &Value, at: &str, depth: usize) {
        let Some(discriminator) = schema.get("discriminator") else {
            return;
        };
        let Some(property) = discriminator.get("propertyName").and_then(Value::as_str) else {
            return;
        };
        let Some(tag) = value.get(property).and_then(Value::as_str) else {
            return;
        };
        let target = discriminator.get("mapping").and_then(|m| m.get(tag)).and_then(Value::as_str);
        if let Some(reference) = target
            && let Some(mapped) = self.resolve(reference, at)
        {
            self.check(mapped, value, at, depth + 1);
        }
    }

    fn check_bounds(&mut self, schema: &Value, value: &Value, at: &str) {
        if let Some(text) = value.as_str() {
            let len = text.chars().count() as u64;
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                self.out.push(format!("{at}: longer than maxLength {max} ({len})"));
            }
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                self.out.push(format!("{at}: shorter than minLength {min} ({len})"));
            }
            // The only pattern these request schemas use; others are not checked.
            if schema.get("pattern").and_then(Value::as_str) == Some("^\\d+$")
                && (text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()))
            {
                self.out.push(format!("{at}: `{}` is not a numeric id", prefix(text)));
            }
        }
        if let Some(number) = self.as_number(value) {
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && number > max
            {
                self.out.push(format!("{at}: {number} exceeds maximum {max}"));
            }
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && number < min
            {
                self.out.push(format!("{at}: {number} is below minimum {min}"));
            }
        }
    }

    fn as_number(&self, value: &Value) -> Option<f64> {
        match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) if self.form => s.parse().ok(),
            _ => None,
        }
    }

    fn has_type(&self, value: &Value, kind: &str) -> bool {
        if self.form
            && let Value::String(s) = value
        {
            return match kind {
                "integer" => s.parse::<i64>().is_ok(),
                "number" => s.parse::<f64>().is_ok(),
                "boolean" => s == "true" || s == "false",
                "string" => true,
                _ => false,
            };
        }
        match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        }
    }

    fn same_scalar(&self, option: &Value, value: &Value) -> bool {
        option == value || (self.form && value.as_str() == Some(scalar_text(option).as_str()))
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => prefix(s),
        other => other.to_string(),
    }
}

/// At most 32 characters of `text`: violation messages must not echo whole user records.
fn prefix(text: &str) -> String {
    match text.char_indices().nth(32) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn embedded_spec_is_pinterest_v5_23() {
        let spec = SPEC.as_ref().map(|s| s.pointer("/info/version").cloned());
        assert_eq!(spec, Some(Some(json!("5.23.0"))));
    }

    #[test]
    fn conforming_bodies_have_no_violations() {
        let ok = [
            (Operation::CustomerListCreate, json!({"name": "n", "records": "a@b.c", "list_type": "EMAIL"})),
            (Operation::CustomerListUpdate, json!({"operation_type": "REMOVE", "records": "a@b.c"})),
            (
                Operation::AudienceCreate,
                json!({"name": "n", "audience_type": "CUSTOMER_LIST",
                       "rule": {"customer_list_id": "123"}, "description": "d"}),
            ),
            (Operation::AudienceUpdate, json!({"operation_type": "REMOVE"})),
            (
                Operation::OauthToken,
                json!({"grant_type": "refresh_token", "refresh_token": "pinr_x",
                       "continuous_refresh": "true"}),
            ),
        ];
        for (op, body) in ok {
            assert_eq!(check_body(op, &body), Vec::<String>::new(), "{op:?}");
        }
    }

    #[test]
    fn missing_operation_type_is_a_violation() {
        let v = check_body(Operation::CustomerListUpdate, &json!({"records": "x"}));
        assert_eq!(v, vec!["body.operation_type: required property is missing"]);
    }

    #[test]
    fn enum_and_type_errors_are_violations() {
        let v =
            check_body(Operation::CustomerListCreate, &json!({"name": "n", "records": ["a"], "list_type": "PHONE"}));
        assert!(v.iter().any(|m| m.starts_with("body.records: expected string")));
        assert!(v.iter().any(|m| m.starts_with("body.list_type: `PHONE` is not one of")));
    }

    #[test]
    fn audience_rule_needs_a_numeric_string_list_id() {
        let v = check_body(
            Operation::AudienceCreate,
            &json!({"name": "n", "audience_type": "CUSTOMER_LIST", "rule": {"customer_list_id": 5}}),
        );
        assert!(v.iter().any(|m| m.starts_with("body.rule.customer_list_id: expected string")));
        let v = check_body(Operation::AudienceCreate, &json!({"name": "n"}));
        assert!(v.contains(&"body.audience_type: required property is missing".to_owned()));
        assert!(v.contains(&"body.rule: required property is missing".to_owned()));
    }

    #[test]
    fn oauth_form_follows_the_grant_type_discriminator() {
        let v = check_body(Operation::OauthToken, &json!({"grant_type": "authorization_code"}));
        assert!(v.contains(&"body.code: required property is missing".to_owned()));
        assert!(v.contains(&"body.redirect_uri: required property is missing".to_owned()));
        let v = check_body(Operation::OauthToken, &json!({"grant_type": "password"}));
        assert!(v.iter().any(|m| m.starts_with("body.grant_type: `password` is not one of")));
    }

    #[test]
    fn wrong_content_type_is_a_violation() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        let checked = check_request(Operation::AudienceUpdate, &headers, br#"{"operation_type":"REMOVE"}"#);
        assert_eq!(checked.violations.len(), 1);
        assert!(checked.violations[0].contains("application/json"));
    }

    #[test]
    fn spec_defines_the_scopes_and_page_size_the_sandbox_uses() {
        let scopes = known_scopes().unwrap_or_default();
        assert!(scopes.contains("ads:read") && scopes.contains("ads:write"));
        assert_eq!(max_page_size_in_spec(), Some(crate::paging::MAX_PAGE_SIZE as u64));
    }
}
