//! Call parameters and field selection, the Graph way.
//!
//! Graph reads parameters from the query string and the body alike: `access_token`, `fields`
//! or `payload` may come in either. The body is normally a form
//! (`application/x-www-form-urlencoded`, what Meta's SDKs send); a JSON object body is accepted
//! too because many clients send one, although Meta's docs do not confirm it (the request log
//! records which kind each call used). Body values win over query values.
//!
//! Nodes answer only `id` unless `fields` names more, and always add `id`; a field the node
//! type does not have is code 100.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use crate::meta::errors::GraphError;
use crate::paging::parse_pairs;

/// How a call's body was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded` (or no content type).
    Form,
    /// A JSON object.
    Json,
}

/// The parameters of one call.
#[derive(Debug, Default)]
pub(crate) struct Params {
    values: HashMap<String, Value>,
    /// The query string's pairs, in order (for `paging.next` links).
    pub query: Vec<(String, String)>,
    /// Whether `access_token` came as a parameter (rather than a header).
    pub token_in_params: bool,
    /// The body's encoding, when there was a body.
    pub body_format: Option<BodyFormat>,
}

impl Params {
    /// Reads the query and the body.
    pub fn parse(raw_query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Self, GraphError> {
        let query = parse_pairs(raw_query.unwrap_or(""))
            .map_err(|e| GraphError::invalid_param(format!("Invalid query string: {e}")))?;
        let mut values: HashMap<String, Value> =
            query.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let mut body_format = None;
        if !body.iter().all(u8::is_ascii_whitespace) {
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            match mime.as_str() {
                "application/json" => {
                    let object: Map<String, Value> = serde_json::from_slice(body)
                        .map_err(|e| GraphError::invalid_param(format!("The JSON body is not an object: {e}")))?;
                    values.extend(object);
                    body_format = Some(BodyFormat::Json);
                }
                "" | "application/x-www-form-urlencoded" => {
                    let text = std::str::from_utf8(body)
                        .map_err(|_| GraphError::invalid_param("The form body is not UTF-8"))?;
                    let pairs =
                        parse_pairs(text).map_err(|e| GraphError::invalid_param(format!("Invalid form body: {e}")))?;
                    values.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v))));
                    body_format = Some(BodyFormat::Form);
                }
                other => {
                    return Err(GraphError::invalid_param(format!(
                        "The sandbox reads application/x-www-form-urlencoded or application/json bodies, not {other}"
                    )));
                }
            }
        }
        let token_in_params = values.contains_key("access_token");
        Ok(Self { values, query, token_in_params, body_format })
    }

    /// A parameter as text (numbers and booleans from a JSON body are rendered).
    pub fn text(&self, name: &str) -> Option<String> {
        match self.values.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// A JSON-valued parameter: a string is parsed as JSON, anything else taken as is.
    pub fn json(&self, name: &str) -> Result<Option<Value>, GraphError> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(raw)) => serde_json::from_str(raw)
                .map(Some)
                .map_err(|e| GraphError::invalid_param(format!("Param {name} must be valid JSON: {e}"))),
            Some(other) => Ok(Some(other.clone())),
        }
    }

    /// The field names `fields` asks for, if it was given.
    pub fn fields(&self) -> Option<Vec<String>> {
        self.text("fields").map(|raw| field_names(&raw))
    }
}

/// The top-level names of a `fields` value: `a,b{c,d},e.limit(5)` gives `a`, `b`, `e`.
pub(crate) fn field_names(raw: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0_u32;
    let mut current = String::new();
    for c in raw.chars() {
        match c {
            '{' | '(' => depth += 1,
            '}' | ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => names.push(std::mem::take(&mut current)),
            _ => {}
        }
        if depth == 0 && c != ',' && c != '}' && c != ')' {
            current.push(c);
        }
    }
    names.push(current);
    names
        .into_iter()
        .map(|n| n.split(['.', '{']).next().unwrap_or("").trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Code 100 for the first asked field not in `known`.
pub(crate) fn check_fields(asked: Option<&[String]>, known: &[&str], node_type: &str) -> Result<(), GraphError> {
    match asked.unwrap_or_default().iter().find(|name| !known.contains(&name.as_str())) {
        Some(name) => Err(GraphError::nonexisting_field(name, node_type)),
        None => Ok(()),
    }
}

/// Picks the asked fields out of `all` (every field the node has a value for). Without
/// `fields` only `id` is answered; `id` is always added; a name not in `known` is code 100.
pub(crate) fn select(
    mut all: Map<String, Value>,
    known: &[&str],
    asked: Option<&[String]>,
    node_type: &str,
) -> Result<Value, GraphError> {
    check_fields(asked, known, node_type)?;
    let mut picked = Map::new();
    for name in asked.unwrap_or_default() {
        if let Some(value) = all.remove(name) {
            picked.insert(name.clone(), value);
        }
    }
    if let Some(id) = all.remove("id") {
        picked.insert("id".to_owned(), id);
    }
    Ok(Value::Object(picked))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn field_names_skip_nested_selections_and_modifiers() {
        assert_eq!(field_names("id, name,business{id,name},insights.limit(5)"), ["id", "name", "business", "insights"]);
        assert_eq!(field_names(""), Vec::<String>::new());
        assert_eq!(field_names("a,,b"), ["a", "b"]);
    }

    #[test]
    fn select_answers_id_only_without_fields_and_refuses_unknown_ones() {
        let all = || json!({"id": "1", "name": "n", "x": 2}).as_object().cloned().unwrap_or_default();
        let known = ["id", "name", "x", "absent"];
        assert_eq!(select(all(), &known, None, "T").ok(), Some(json!({"id": "1"})));
        let asked = vec!["name".to_owned(), "absent".to_owned()];
        assert_eq!(select(all(), &known, Some(&asked), "T").ok(), Some(json!({"id": "1", "name": "n"})));
        let bad = vec!["nope".to_owned()];
        let error = select(all(), &known, Some(&bad), "T").err().map(|e| (e.code, e.message));
        assert_eq!(error, Some((100, "(#100) Tried accessing nonexisting field (nope) on node type (T)".to_owned())));
    }

    #[test]
    fn body_values_win_and_json_bodies_are_read() {
        let mut headers = HeaderMap::new();
        headers
            .insert(header::CONTENT_TYPE, "application/json".parse().unwrap_or(header::HeaderValue::from_static("")));
        let params = Params::parse(Some("a=1&b=2"), &headers, br#"{"b": {"k": 3}}"#).unwrap_or_default();
        assert_eq!(params.text("a").as_deref(), Some("1"));
        assert_eq!(params.json("b").ok().flatten(), Some(json!({"k": 3})));
        assert_eq!(params.body_format, Some(BodyFormat::Json));
        let form = Params::parse(None, &HeaderMap::new(), b"payload=%7B%22x%22%3A1%7D").unwrap_or_default();
        assert_eq!(form.json("payload").ok().flatten(), Some(json!({"x": 1})));
        assert!(form.json("nothing").ok().flatten().is_none());
    }
}
