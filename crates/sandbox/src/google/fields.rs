//! Reading Google's JSON request bodies the way Google's JSON mapping does.
//!
//! Proto3 JSON accepts a field under its lowerCamelCase name and under its original
//! snake_case name, and refuses names the message does not have ("Invalid JSON payload
//! received. Unknown name ..."). Errors name fields by their snake_case proto path, e.g.
//! `audience_members[3].user_data.user_identifiers[0].email_address`, which is what
//! [`path`] builds.

use serde_json::{Map, Value};

use crate::google::errors::FieldViolation;

/// `lowerCamel` -> `lower_snake`.
pub(crate) fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The field `camel` of `object`, under either of its names.
pub(crate) fn get<'a>(object: &'a Map<String, Value>, camel: &str) -> Option<&'a Value> {
    object.get(camel).or_else(|| object.get(&snake(camel)))
}

/// A string field (absent, null and non-strings are `None`).
pub(crate) fn text<'a>(object: &'a Map<String, Value>, camel: &str) -> Option<&'a str> {
    get(object, camel).and_then(Value::as_str)
}

/// `parent.child` in snake_case (`child` alone when `parent` is empty).
pub(crate) fn path(parent: &str, camel: &str) -> String {
    if parent.is_empty() { snake(camel) } else { format!("{parent}.{}", snake(camel)) }
}

/// One violation per name in `object` that is not among `allowed` (lowerCamel names).
pub(crate) fn unknown(object: &Map<String, Value>, allowed: &[&str], at: &str, out: &mut Vec<FieldViolation>) {
    for key in object.keys() {
        let known = allowed.iter().any(|a| a == key || snake(a) == *key);
        if !known {
            let place = if at.is_empty() { String::new() } else { format!(" at '{at}'") };
            out.push(FieldViolation::new(
                if at.is_empty() { key.clone() } else { format!("{at}.{key}") },
                "INVALID_ARGUMENT",
                format!("Invalid JSON payload received. Unknown name \"{key}\"{place}: Cannot find field."),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn both_names_are_read_and_unknown_names_reported() {
        let value = json!({"audienceMembers": [], "validate_only": true, "bogus": 1});
        let object = value.as_object().cloned().unwrap_or_default();
        assert!(get(&object, "audienceMembers").is_some());
        assert!(get(&object, "validateOnly").is_some());
        let mut out = Vec::new();
        unknown(&object, &["audienceMembers", "validateOnly"], "", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].field, "bogus");
        assert_eq!(path("audience_members[2]", "userData"), "audience_members[2].user_data");
        assert_eq!(snake("productDestinationId"), "product_destination_id");
    }
}
