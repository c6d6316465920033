//! Upload sessions: how `/users` and `/usersreplace` batches belong together.
//!
//! A session is `{session_id, batch_seq, last_batch_flag, estimated_num_total?}`. The client
//! picks `session_id` (an int64, unique within the ad account), numbers batches 1, 2, ... in
//! order and flags the last one. `num_received` and `num_invalid_entries` are cumulative over
//! the session. A session without a last batch closes `session_ttl` (90 minutes) after its
//! first batch, on the sandbox clock.
//!
//! Meta documents error subcodes for these rules only for `usersreplace` (code 2650); the
//! stand-in answers the same ones for `/users`: 1870147 when a new session does not start at
//! `batch_seq` 1, 1870159 for a batch to a finished session, 1870158 for a batch after the 90
//! minutes (the batch is dropped; what arrived before is kept), 1870145 while a replace runs.
//! A batch out of order, or one that changes the schema, audience or operation of its
//! session, is code 100.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::meta::audiences::Change;
use crate::meta::config::MetaConfig;
use crate::meta::errors::GraphError;
use crate::meta::members::MemberRow;
use crate::meta::state::MetaState;

/// What a session does to its audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionOperation {
    /// `POST /<audience_id>/users`.
    Add,
    /// `DELETE /<audience_id>/users` (or `POST` with `method=DELETE`).
    Remove,
    /// `POST /<audience_id>/usersreplace`.
    Replace,
}

/// The `session` parameter of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionParam {
    pub session_id: i64,
    pub batch_seq: u64,
    pub last: bool,
    pub estimated_num_total: Option<u64>,
}

/// A session as the sandbox remembers it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub session_id: i64,
    pub audience: u64,
    pub operation: SessionOperation,
    pub schema: Vec<&'static str>,
    pub started: Instant,
    pub next_seq: u64,
    pub finished: bool,
    pub timed_out: bool,
    pub num_received: u64,
    pub num_invalid: u64,
    pub estimated_num_total: Option<u64>,
    /// Rows of a replace, applied when it ends.
    pub staged: Vec<MemberRow>,
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads `session` (a JSON object, or a string holding one).
pub(crate) fn parse(value: Option<Value>) -> Result<Option<SessionParam>, GraphError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let object = value.as_object().ok_or_else(|| GraphError::invalid_param("Param session must be a JSON object"))?;
    let session_id = object
        .get("session_id")
        .and_then(integer)
        .ok_or_else(|| GraphError::invalid_param("Param session[session_id] must be an integer"))?;
    let batch_seq = object
        .get("batch_seq")
        .and_then(integer)
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| GraphError::invalid_param("Param session[batch_seq] must be a positive integer"))?;
    let last = match object.get("last_batch_flag") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "1" => true,
        Some(Value::String(s)) if s == "false" || s == "0" => false,
        Some(_) => return Err(GraphError::invalid_param("Param session[last_batch_flag] must be a boolean")),
    };
    let estimated_num_total = match object.get("estimated_num_total") {
        None | Some(Value::Null) => None,
        Some(v) => Some(integer(v).and_then(|n| u64::try_from(n).ok()).ok_or_else(|| {
            GraphError::invalid_param("Param session[estimated_num_total] must be a non-negative integer")
        })?),
    };
    Ok(Some(SessionParam { session_id, batch_seq, last, estimated_num_total }))
}

/// What a batch is for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub account: u64,
    pub audience: u64,
    pub operation: SessionOperation,
}

/// The key of the session this batch belongs to, or why it does not: checks the rules,
/// creating the session when `batch_seq` 1 opens it. Nothing else changes; the caller records
/// the batch.
pub(crate) fn admit(
    sessions: &mut BTreeMap<(u64, i64), Session>,
    now: Instant,
    ttl: Duration,
    target: Target,
    schema: &[&'static str],
    param: &SessionParam,
) -> Result<(u64, i64), GraphError> {
    let Target { account, audience, operation } = target;
    let key = (account, param.session_id);
    let Some(session) = sessions.get_mut(&key) else {
        if param.batch_seq != 1 {
            return Err(GraphError::session(1_870_147, "the first batch of a session must have batch_seq 1"));
        }
        sessions.insert(
            key,
            Session {
                session_id: param.session_id,
                audience,
                operation,
                schema: schema.to_vec(),
                started: now,
                next_seq: 1,
                finished: false,
                timed_out: false,
                num_received: 0,
                num_invalid: 0,
                estimated_num_total: param.estimated_num_total,
                staged: Vec::new(),
            },
        );
        return Ok(key);
    };
    if session.audience != audience || session.operation != operation {
        return Err(GraphError::invalid_param(format!(
            "Session {} belongs to another audience or operation in this ad account",
            param.session_id
        )));
    }
    if session.finished {
        let message = if session.timed_out {
            "the session ran out of time (90 minutes after its first batch); start a new session"
        } else {
            "this session has already finished (its last batch arrived); start a new session"
        };
        let subcode = if session.timed_out { 1_870_158 } else { 1_870_159 };
        return Err(GraphError::session(subcode, message));
    }
    if now >= session.started + ttl {
        session.finished = true;
        session.timed_out = true;
        return Err(GraphError::session(
            1_870_158,
            "the session ran out of time (90 minutes after its first batch); this batch was dropped",
        ));
    }
    if param.batch_seq != session.next_seq {
        return Err(GraphError::invalid_param(format!(
            "batch_seq {} is out of order: session {} expects batch_seq {}",
            param.batch_seq, param.session_id, session.next_seq
        )));
    }
    if session.schema != schema {
        return Err(GraphError::invalid_param("The schema must not change within a session"));
    }
    Ok(key)
}

/// Applies what became due: sessions past their time close, a replace that ran out of time
/// completes with what arrived, and delayed membership changes land.
pub(crate) fn settle(world: &mut MetaState, config: &MetaConfig) {
    let now = world.clock.now();
    let ttl = config.session_ttl;
    for session in world.sessions.values_mut().filter(|s| !s.finished && now >= s.started + ttl) {
        session.finished = true;
        session.timed_out = true;
        if session.operation == SessionOperation::Replace
            && let Some(audience) = world.audiences.get_mut(&session.audience)
        {
            audience.replacing = None;
            let due = session.started + ttl + config.membership_delay;
            let rows = std::mem::take(&mut session.staged);
            audience.pending.push_back((due, Change::Replace(rows)));
        }
    }
    for audience in world.audiences.values_mut().filter(|a| !a.pending.is_empty()) {
        audience.apply_due(&world.clock);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn param(id: i64, seq: u64, last: bool) -> SessionParam {
        SessionParam { session_id: id, batch_seq: seq, last, estimated_num_total: None }
    }

    #[test]
    fn session_parameter_accepts_numbers_strings_and_flags() {
        let parsed = parse(Some(json!({"session_id": "42", "batch_seq": 2, "last_batch_flag": "true"})));
        assert_eq!(parsed.ok().flatten(), Some(param(42, 2, true)));
        assert!(parse(Some(json!({"session_id": 1, "batch_seq": 0}))).is_err());
        assert!(parse(Some(json!({"batch_seq": 1}))).is_err());
        assert!(parse(Some(json!("nope"))).is_err());
        assert_eq!(parse(None).ok(), Some(None));
    }

    #[test]
    fn rules_for_first_batch_order_schema_and_time() {
        let mut sessions = BTreeMap::new();
        let start = Instant::now();
        let ttl = Duration::from_secs(90 * 60);
        let target = Target { account: 1, audience: 7, operation: SessionOperation::Add };
        let check = |sessions: &mut BTreeMap<_, _>, at: Duration, p: &SessionParam, schema: &[&'static str]| {
            admit(sessions, start + at, ttl, target, schema, p).map_err(|e| (e.code, e.subcode))
        };
        assert_eq!(check(&mut sessions, Duration::ZERO, &param(5, 2, false), &["EMAIL"]), Err((2650, Some(1_870_147))));
        assert!(check(&mut sessions, Duration::ZERO, &param(5, 1, false), &["EMAIL"]).is_ok());
        if let Some(s) = sessions.get_mut(&(1, 5)) {
            s.next_seq = 2;
        }
        assert_eq!(check(&mut sessions, Duration::ZERO, &param(5, 3, false), &["EMAIL"]), Err((100, None)));
        assert_eq!(check(&mut sessions, Duration::ZERO, &param(5, 2, false), &["PHONE"]), Err((100, None)));
        assert!(check(&mut sessions, Duration::from_secs(60), &param(5, 2, false), &["EMAIL"]).is_ok());
        assert_eq!(check(&mut sessions, ttl, &param(5, 2, false), &["EMAIL"]), Err((2650, Some(1_870_158))));
        assert_eq!(check(&mut sessions, ttl, &param(5, 2, false), &["EMAIL"]), Err((2650, Some(1_870_158))));
    }
}
