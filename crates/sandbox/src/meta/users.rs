//! The data path: `POST|DELETE /<audience_id>/users` and `POST /<audience_id>/usersreplace`.
//!
//! Parameters are `payload` and `session`, each JSON (form fields holding JSON text, or values
//! of a JSON body). `payload.schema` is either one key (`EMAIL_SHA256`, `PHONE_SHA256`,
//! `MOBILE_ADVERTISER_ID`, `EXTERN_ID`) with `data` a flat list of strings, or a list of keys
//! (`EXTERN_ID EMAIL PHONE GEN DOBY DOBM DOBD LN FN FI CT ST ZIP MADID COUNTRY`, plus
//! `LOOKALIKE_VALUE` and the `DATA_PROCESSING_OPTIONS` keys, which are accepted and not stored)
//! with `data` a list of rows in schema order.
//!
//! Structural problems fail the call with code 100: an unknown or repeated key, a row whose
//! length differs from the schema's, more than `max_rows_per_request` rows (10,000; Meta
//! documents the limit, not its error). Bad values do not: hashed keys must be 64 lowercase hex
//! characters (an empty string is a missing value in a multi-key row), `MADID` a lowercase
//! advertising id (8-4-4-4-12 hex with hyphens, never hashed), `EXTERN_ID` any non-empty
//! string. A row with a bad value is dropped and counted in `num_invalid_entries`;
//! `invalid_entry_samples` maps up to 100 offending values to why they were refused (the map
//! form of Meta's reference).

use std::collections::BTreeMap;

use rand::RngExt;
use serde_json::{Value, json};

use crate::meta::audiences::Change;
use crate::meta::config::MetaConfig;
use crate::meta::errors::GraphError;
use crate::meta::members::MemberRow;
use crate::meta::params::Params;
use crate::meta::sessions::{self, SessionOperation, SessionParam, Target};
use crate::meta::state::MetaState;

/// Most entries in `invalid_entry_samples`.
const MAX_SAMPLES: usize = 100;

/// How a key's values are checked and whether they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// SHA-256, lowercase hex.
    Hashed,
    /// An advertising id, lowercase, unhashed.
    Madid,
    /// The advertiser's own id, as is.
    Extern,
    /// Accepted, not part of who the person is (`LOOKALIKE_VALUE`, `DATA_PROCESSING_OPTIONS*`).
    Extra,
}

/// A schema key under its canonical (stored) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    name: &'static str,
    kind: Kind,
}

const MULTI_KEYS: &[(&str, &str, Kind)] = &[
    ("EXTERN_ID", "EXTERN_ID", Kind::Extern),
    ("EMAIL", "EMAIL", Kind::Hashed),
    ("EMAIL_SHA256", "EMAIL", Kind::Hashed),
    ("PHONE", "PHONE", Kind::Hashed),
    ("PHONE_SHA256", "PHONE", Kind::Hashed),
    ("GEN", "GEN", Kind::Hashed),
    ("DOBY", "DOBY", Kind::Hashed),
    ("DOBM", "DOBM", Kind::Hashed),
    ("DOBD", "DOBD", Kind::Hashed),
    ("LN", "LN", Kind::Hashed),
    ("FN", "FN", Kind::Hashed),
    ("FI", "FI", Kind::Hashed),
    ("CT", "CT", Kind::Hashed),
    ("ST", "ST", Kind::Hashed),
    ("ZIP", "ZIP", Kind::Hashed),
    ("COUNTRY", "COUNTRY", Kind::Hashed),
    ("MADID", "MADID", Kind::Madid),
    ("MOBILE_ADVERTISER_ID", "MADID", Kind::Madid),
    ("LOOKALIKE_VALUE", "LOOKALIKE_VALUE", Kind::Extra),
    ("DATA_PROCESSING_OPTIONS", "DATA_PROCESSING_OPTIONS", Kind::Extra),
    ("DATA_PROCESSING_OPTIONS_COUNTRY", "DATA_PROCESSING_OPTIONS_COUNTRY", Kind::Extra),
    ("DATA_PROCESSING_OPTIONS_STATE", "DATA_PROCESSING_OPTIONS_STATE", Kind::Extra),
];

const SINGLE_KEYS: &[&str] = &["EMAIL_SHA256", "PHONE_SHA256", "MOBILE_ADVERTISER_ID", "EXTERN_ID"];

fn key(name: &str) -> Option<Key> {
    MULTI_KEYS.iter().find(|(n, _, _)| *n == name).map(|(_, canonical, kind)| Key { name: canonical, kind: *kind })
}

/// One request's rows after checking.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    schema: Vec<&'static str>,
    received: usize,
    valid: Vec<MemberRow>,
    invalid: usize,
    samples: BTreeMap<String, String>,
}

/// Why a value is refused for `kind`, if it is; `multi` allows empty (missing) values.
fn problem(kind: Kind, value: &Value, multi: bool) -> Option<&'static str> {
    let text = match value {
        Value::String(s) => s.as_str(),
        Value::Null if multi => "",
        _ if kind == Kind::Extra => return None,
        _ => return Some("not a string"),
    };
    if text.is_empty() {
        return (!multi).then_some("empty value");
    }
    match kind {
        Kind::Extra | Kind::Extern => None,
        Kind::Hashed if text.len() != 64 => Some("not a SHA-256 hash: a hash has 64 hex characters"),
        Kind::Hashed if !text.bytes().all(|b| b.is_ascii_hexdigit()) => Some("not a SHA-256 hash: not hexadecimal"),
        Kind::Hashed if text.bytes().any(|b| b.is_ascii_uppercase()) => Some("hash must be lowercase hex"),
        Kind::Hashed => None,
        Kind::Madid => madid_problem(text),
    }
}

fn madid_problem(text: &str) -> Option<&'static str> {
    let groups: Vec<&str> = text.split('-').collect();
    let shaped = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    if !shaped {
        Some("not an advertising id (8-4-4-4-12 hex digits with hyphens, unhashed)")
    } else if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Some("advertising id must be lowercase")
    } else {
        None
    }
}

fn sample_key(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Batch {
    fn note_invalid(&mut self, value: &Value, reason: &str) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.entry(sample_key(value)).or_insert_with(|| reason.to_owned());
        }
    }

    /// Checks one row; keeps it when every value is good and one identifies someone.
    fn take_row(&mut self, keys: &[Key], values: &[Value], multi: bool) {
        self.received += 1;
        let mut row = MemberRow::new();
        let mut bad = false;
        for (key, value) in keys.iter().zip(values) {
            if let Some(reason) = problem(key.kind, value, multi) {
                self.note_invalid(value, reason);
                bad = true;
            } else if key.kind != Kind::Extra
                && let Some(text) = value.as_str().filter(|t| !t.is_empty())
            {
                row.insert(key.name.to_owned(), text.to_owned());
            }
        }
        if !bad && row.is_empty() {
            self.note_invalid(&Value::String(String::new()), "row has no values");
            bad = true;
        }
        if bad {
            self.invalid += 1;
        } else {
            self.valid.push(row);
        }
    }
}

/// How many rows `payload` carries, for the request log, when it can tell.
fn rows_in(payload: &Value) -> Option<usize> {
    payload.get("data").and_then(Value::as_array).map(Vec::len)
}

/// Parses and checks `payload`.
fn parse_payload(payload: &Value, max_rows: usize) -> Result<Batch, GraphError> {
    let object = payload.as_object().ok_or_else(|| GraphError::invalid_param("Param payload must be a JSON object"))?;
    if let Some(raw) = object.get("is_raw")
        && !raw.is_boolean()
    {
        return Err(GraphError::invalid_param("Param payload[is_raw] must be a boolean"));
    }
    let (keys, multi) = match object.get("schema") {
        None => return Err(GraphError::invalid_param("The parameter payload[schema] is required")),
        Some(Value::String(name)) if SINGLE_KEYS.contains(&name.as_str()) => {
            (key(name).into_iter().collect::<Vec<_>>(), false)
        }
        Some(Value::String(name)) => {
            return Err(GraphError::invalid_param(format!(
                "Invalid schema {name}: a single-key schema is one of {}",
                SINGLE_KEYS.join(", ")
            )));
        }
        Some(Value::Array(names)) if !names.is_empty() => {
            let mut keys = Vec::new();
            for name in names {
                let name = name.as_str().unwrap_or("");
                let key = key(name).ok_or_else(|| GraphError::invalid_param(format!("Invalid schema key {name:?}")))?;
                if keys.iter().any(|k: &Key| k.name == key.name) {
                    return Err(GraphError::invalid_param(format!("Schema key {name} appears twice")));
                }
                keys.push(key);
            }
            (keys, true)
        }
        Some(_) => return Err(GraphError::invalid_param("Param payload[schema] must be a key or a list of keys")),
    };
    let data = object
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| GraphError::invalid_param("Param payload[data] must be an array"))?;
    if data.is_empty() {
        return Err(GraphError::invalid_param("Param payload[data] must not be empty"));
    }
    if data.len() > max_rows {
        return Err(GraphError::invalid_param(format!(
            "Too many rows: {} in one request, at most {max_rows} are allowed",
            data.len()
        )));
    }
    let mut batch = Batch { schema: keys.iter().map(|k| k.name).collect(), ..Batch::default() };
    for (i, row) in data.iter().enumerate() {
        if !multi {
            batch.take_row(&keys, std::slice::from_ref(row), false);
            continue;
        }
        let values = row.as_array().ok_or_else(|| GraphError::invalid_param(format!("Row {i} is not an array")))?;
        if values.len() != keys.len() {
            return Err(GraphError::invalid_param(format!(
                "Row {i} has {} values but the schema has {} keys",
                values.len(),
                keys.len()
            )));
        }
        batch.take_row(&keys, values, true);
    }
    Ok(batch)
}

/// One `/users` or `/usersreplace` call; `rows` learns how many rows it carried.
pub(crate) fn edit(
    config: &MetaConfig,
    world: &mut MetaState,
    audience_id: u64,
    params: &Params,
    operation: SessionOperation,
    rows: &mut Option<usize>,
) -> Result<Value, GraphError> {
    let missing = || GraphError::unknown_object(&audience_id.to_string(), "POST");
    let audience = world.audiences.get(&audience_id).ok_or_else(missing)?;
    let account = audience.account;
    if world.accounts.get(&account).is_some_and(|a| !a.tos_accepted) {
        return Err(GraphError::tos_not_accepted(account));
    }
    if audience.flagged {
        return Err(GraphError::audience_flagged());
    }
    let payload =
        params.json("payload")?.ok_or_else(|| GraphError::invalid_param("The parameter payload is required"))?;
    *rows = rows_in(&payload);
    let batch = parse_payload(&payload, config.max_rows_per_request)?;
    let session = match sessions::parse(params.json("session")?)? {
        Some(session) => session,
        None if config.require_session || operation == SessionOperation::Replace => {
            return Err(GraphError::invalid_param("The parameter session is required"));
        }
        None => SessionParam {
            session_id: rand::rng().random_range(1..i64::MAX),
            batch_seq: 1,
            last: true,
            estimated_num_total: None,
        },
    };
    if let Some(running) = audience.replacing
        && (operation != SessionOperation::Replace || running != session.session_id)
    {
        return Err(GraphError::session(1_870_145, "a replace is in progress on this audience; wait until it ends"));
    }
    let now = world.clock.now();
    let target = Target { account, audience: audience_id, operation };
    let key = sessions::admit(&mut world.sessions, now, config.session_ttl, target, &batch.schema, &session)?;
    let (Some(record), Some(audience)) = (world.sessions.get_mut(&key), world.audiences.get_mut(&audience_id)) else {
        return Err(missing());
    };
    record.next_seq += 1;
    record.num_received += batch.received as u64;
    record.num_invalid += batch.invalid as u64;
    record.finished = session.last;
    let delay = config.membership_delay;
    match operation {
        SessionOperation::Add => {
            audience.uploaded = true;
            audience.queue(&world.clock, delay, Change::Add(batch.valid));
        }
        SessionOperation::Remove => audience.queue(&world.clock, delay, Change::Remove(batch.valid)),
        SessionOperation::Replace => {
            audience.uploaded = true;
            record.staged.extend(batch.valid);
            if session.last {
                audience.replacing = None;
                let staged = std::mem::take(&mut record.staged);
                audience.queue(&world.clock, delay, Change::Replace(staged));
            } else {
                audience.replacing = Some(session.session_id);
            }
        }
    }
    Ok(json!({
        "audience_id": audience_id.to_string(),
        "session_id": session.session_id,
        "num_received": record.num_received,
        "num_invalid_entries": record.num_invalid,
        "invalid_entry_samples": batch.samples,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79";

    fn parse(payload: Value) -> Result<Batch, (i64, String)> {
        parse_payload(&payload, 3).map_err(|e| (e.code, e.message))
    }

    #[test]
    fn single_key_rows_are_checked_and_bad_ones_sampled() {
        let upper = H.to_uppercase();
        let batch =
            parse(json!({"schema": "EMAIL_SHA256", "data": [H, upper, "mary@example.com"]})).unwrap_or_default();
        assert_eq!((batch.received, batch.invalid, batch.valid.len()), (3, 2, 1));
        assert_eq!(batch.valid[0].get("EMAIL").map(String::as_str), Some(H));
        assert_eq!(batch.samples.get(&upper).map(String::as_str), Some("hash must be lowercase hex"));
        assert!(batch.samples.contains_key("mary@example.com"));
    }

    #[test]
    fn multi_key_rows_allow_missing_values_but_not_empty_rows() {
        let madid = "6d92078a-8246-4ba4-ae5b-76104861e7dc";
        let batch = parse(json!({
            "schema": ["EMAIL", "MADID", "EXTERN_ID"],
            "data": [[H, "", ""], ["", madid.to_uppercase(), "x"], ["", "", ""]],
        }))
        .unwrap_or_default();
        assert_eq!((batch.received, batch.invalid, batch.valid.len()), (3, 2, 1));
        assert_eq!(batch.samples.get(""), Some(&"row has no values".to_owned()));
        let batch = parse(json!({"schema": ["MADID", "FN"], "data": [[madid, H]]})).unwrap_or_default();
        assert_eq!(batch.valid[0].get("MADID").map(String::as_str), Some(madid));
    }

    #[test]
    fn structural_problems_fail_the_call_with_code_100() {
        for payload in [
            json!({"schema": ["EMAIL", "PHONE"], "data": [[H]]}),
            json!({"schema": ["EMAIL", "NOSE"], "data": [[H, H]]}),
            json!({"schema": ["EMAIL", "EMAIL_SHA256"], "data": [[H, H]]}),
            json!({"schema": "EMAIL", "data": [H]}),
            json!({"schema": "EMAIL_SHA256", "data": [H, H, H, H]}),
            json!({"schema": "EMAIL_SHA256", "data": []}),
            json!({"data": [H]}),
        ] {
            assert_eq!(parse(payload.clone()).err().map(|e| e.0), Some(100), "{payload}");
        }
    }

    #[test]
    fn madid_shape_is_uuid_like() {
        assert_eq!(madid_problem("6d92078a-8246-4ba4-ae5b-76104861e7dc"), None);
        assert!(madid_problem("6d92078a82464ba4ae5b76104861e7dc").is_some());
        assert!(madid_problem(H).is_some());
    }
}
