//! The body of a `/users` request: the multi-key `payload` and the one-request `session`.
//!
//! **Schema.** The keys present in the batch (any user has a value for it), in the fixed
//! order of [`Key::ORDER`]; each user's row has its value for every key, `""` where it has
//! none. Prepared kinds are mapped to keys here ([`Key::of_prepared`]); a prepared identifier
//! of a kind this plugin never prepares is ignored, and a user left with no key is rejected
//! without being sent. A user with two values for one key (possible only in hand-made
//! prepared users) sends the first.
//!
//! **Session.** Every batch is its own session, normally of one request: `batch_seq` 1,
//! `last_batch_flag` true, `estimated_num_total` = the rows sent (a body too big for the host
//! is sent as several requests of one session, see [`crate::sync`]). The `session_id` is derived from the batch: the
//! first 53 bits of SHA-256 over the ad account, audience, operation, `batch.id` **and
//! `batch.attempt`** (0 is never used). Including the attempt matters: a retry of a batch
//! whose one-request session Meta already finished would be refused as a finished session,
//! so each attempt opens a fresh session, while the same attempt always names the same one.
//! Unique within the ad account as Meta asks (a 53-bit hash collision is negligible), and kept
//! below 2^53 so that any JSON reader holds it exactly.

use audience_plugin_sdk::types::{PreparedUser, RejectedUser};
use sha2::{Digest, Sha256};

use crate::kinds::Key;
use crate::wire::{UsersPayload, UsersSession};

/// Add or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /<audience_id>/users`.
    Add,
    /// `DELETE /<audience_id>/users`.
    Remove,
}

impl Operation {
    /// The HTTP method.
    pub fn method(self) -> &'static str {
        match self {
            Operation::Add => "POST",
            Operation::Remove => "DELETE",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Operation::Add => "add",
            Operation::Remove => "remove",
        }
    }
}

/// One user's row, aligned with [`Rows::schema`]. It borrows the batch's strings: a batch of
/// 10,000 users must not be copied (see [`crate::form`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<'a> {
    /// The user's key.
    pub key: &'a str,
    /// One value per schema key, `""` where the user has none.
    pub values: Vec<&'a str>,
}

/// A batch as Meta rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows<'a> {
    /// The keys, in [`Key::ORDER`].
    pub schema: Vec<Key>,
    /// The rows to send.
    pub rows: Vec<Row<'a>>,
    /// Users not sent: nothing of theirs fits a key.
    pub rejected: Vec<RejectedUser>,
}

impl Rows<'_> {
    /// The `payload` form field.
    pub fn payload(&self) -> UsersPayload<'_> {
        self.payload_of(&self.rows)
    }

    /// The `payload` form field of `part` of the rows (same schema).
    pub fn payload_of<'b>(&'b self, part: &'b [Row<'_>]) -> UsersPayload<'b> {
        UsersPayload {
            schema: self.schema.iter().map(|k| k.name()).collect(),
            data: part.iter().map(|r| r.values.as_slice()).collect(),
            is_raw: true,
        }
    }
}

/// The rows for `users`.
pub fn rows(users: &[PreparedUser]) -> Rows<'_> {
    let mut keyed: Vec<(&str, Vec<(Key, &str)>)> = Vec::with_capacity(users.len());
    let mut rejected = Vec::new();
    let mut present: Vec<Key> = Vec::new();
    for user in users {
        let mut values: Vec<(Key, &str)> = Vec::new();
        for id in &user.identifiers {
            let Some(key) = Key::of_prepared(&id.kind) else { continue };
            if id.value.is_empty() || values.iter().any(|(k, _)| *k == key) {
                continue;
            }
            values.push((key, id.value.as_str()));
            if !present.contains(&key) {
                present.push(key);
            }
        }
        if values.is_empty() {
            let kinds: Vec<&str> = user.identifiers.iter().map(|i| i.kind.as_str()).collect();
            let kinds = if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") };
            rejected.push(RejectedUser {
                key: user.key.clone(),
                reason: format!("no identifier Meta can take (prepared kinds: {kinds}); prepare the user again"),
            });
        } else {
            keyed.push((user.key.as_str(), values));
        }
    }
    present.sort();
    let rows = keyed
        .into_iter()
        .map(|(key, values)| Row {
            key,
            values: present.iter().map(|k| values.iter().find(|(vk, _)| vk == k).map_or("", |(_, v)| *v)).collect(),
        })
        .collect();
    Rows { schema: present, rows, rejected }
}

/// The session id of attempt `attempt` of batch `batch_id` (see the module documentation).
pub fn session_id(account: &str, audience: &str, operation: Operation, batch_id: &str, attempt: u32) -> i64 {
    let mut hasher = Sha256::new();
    for part in ["audience-host meta session", account, audience, operation.name(), batch_id] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hasher.update(attempt.to_be_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let id = u64::from_be_bytes(first) & ((1u64 << 53) - 1);
    i64::try_from(id.max(1)).unwrap_or(1)
}

/// The `session` form field for a one-request session of `rows` rows.
pub fn session(session_id: i64, rows: usize) -> UsersSession {
    session_part(session_id, 1, true, rows)
}

/// The `session` form field of request `seq` (from 1) of a session of `rows` rows in all.
pub fn session_part(session_id: i64, seq: u32, last: bool, rows: usize) -> UsersSession {
    UsersSession { session_id, batch_seq: seq, last_batch_flag: last, estimated_num_total: rows }
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::types::Identifier;

    use super::*;

    fn user(key: &str, ids: &[(&str, &str)]) -> PreparedUser {
        PreparedUser {
            key: key.into(),
            identifiers: ids.iter().map(|(k, v)| Identifier { kind: (*k).into(), value: (*v).into() }).collect(),
            consent: None,
        }
    }

    #[test]
    fn schema_in_fixed_order_with_blanks_for_missing_values() {
        let users = [
            user("a", &[("phone", "p1"), ("email", "e1")]),
            user("b", &[("country", "c2"), ("idfa", "m2"), ("dob-year", "y2")]),
            user(
                "c",
                &[("email", "e3"), ("email", "e3b"), ("external-id", "x3"), ("mobile-ad-id", "m3"), ("idfa", "m3b")],
            ),
        ];
        let rows = rows(&users);
        assert_eq!(rows.schema, vec![Key::ExternId, Key::Email, Key::Phone, Key::Doby, Key::Madid, Key::Country]);
        let values: Vec<Vec<&str>> = rows.rows.iter().map(|r| r.values.clone()).collect();
        assert_eq!(
            values,
            vec![
                vec!["", "e1", "p1", "", "", ""],
                vec!["", "", "", "y2", "m2", "c2"],
                vec!["x3", "e3", "", "", "m3", ""]
            ]
        );
        assert!(rows.rejected.is_empty());
        assert_eq!(
            serde_json::to_value(rows.payload()).unwrap(),
            serde_json::json!({
                "schema": ["EXTERN_ID", "EMAIL", "PHONE", "DOBY", "MADID", "COUNTRY"],
                "data": [["", "e1", "p1", "", "", ""], ["", "", "", "y2", "m2", "c2"], ["x3", "e3", "", "", "m3", ""]],
                "is_raw": true
            })
        );
    }

    #[test]
    fn users_without_a_known_kind_are_rejected_not_sent() {
        let users = [user("a", &[("shoe-size", "9")]), user("b", &[("email", "e")]), user("c", &[])];
        let rows = rows(&users);
        assert_eq!(rows.rows.len(), 1);
        assert_eq!(rows.rejected.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), vec!["a", "c"]);
        assert!(rows.rejected[0].reason.contains("shoe-size"));
        assert_eq!(rows.schema, vec![Key::Email]);
    }

    #[test]
    fn session_ids_are_stable_per_attempt_and_fresh_per_retry() {
        let first = session_id("1", "6001", Operation::Add, "batch-7", 1);
        assert_eq!(first, session_id("1", "6001", Operation::Add, "batch-7", 1));
        assert_ne!(first, session_id("1", "6001", Operation::Add, "batch-7", 2));
        assert_ne!(first, session_id("1", "6001", Operation::Remove, "batch-7", 1));
        assert_ne!(first, session_id("1", "6001", Operation::Add, "batch-8", 1));
        assert_ne!(first, session_id("1", "6002", Operation::Add, "batch-7", 1));
        for attempt in 0..200 {
            let id = session_id("1", "2", Operation::Add, "b", attempt);
            assert!(id > 0 && id < (1 << 53), "{id}");
        }
        let s = session(first, 3);
        assert_eq!((s.batch_seq, s.last_batch_flag, s.estimated_num_total), (1, true, 3));
    }
}
