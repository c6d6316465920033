//! Choosing the records a batch sends (pure).
//!
//! A customer list holds one identifier kind, so each prepared user contributes the first of
//! its identifiers of that kind — one record per user, which keeps a batch of at most 1,900
//! users within Pinterest's 1,900 records per request. Users without one are reported as
//! rejected. A value that is not a SHA-256 hex digest (a prepared user from elsewhere) is never
//! sent: it could carry a comma and split into bogus records.

use std::collections::BTreeSet;

use audience_plugin_sdk::identity::is_sha256_hex;
use audience_plugin_sdk::types::{DestinationError, PreparedUser, RejectedUser};

use crate::list_type::{ListType, kind_name};

/// The most records Pinterest accepts in one request (and this plugin's `max-batch-size`).
pub const MAX_RECORDS: usize = 1900;

/// The records of one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Records {
    /// Distinct hashed identifiers, in user order.
    pub values: Vec<String>,
    /// Users with nothing to send.
    pub rejected: Vec<RejectedUser>,
}

impl Records {
    /// The `records` field: one comma-separated string.
    pub fn joined(&self) -> String {
        self.values.join(",")
    }
}

/// `invalid-request` when a batch has more users than Pinterest takes in one request (the host
/// never sends such a batch; this guards against a misconfigured override).
pub fn check_batch_size(users: usize) -> Result<(), DestinationError> {
    if users > MAX_RECORDS {
        return Err(DestinationError::InvalidRequest(format!(
            "the batch of {users} users exceeds Pinterest's limit of {MAX_RECORDS} records per request"
        )));
    }
    Ok(())
}

/// The records for `users` on a list of `list_type`.
pub fn records_for(users: &[PreparedUser], list_type: ListType) -> Records {
    let kind = list_type.kind();
    // BTreeSet rather than HashSet: no random seed, so no `wasi:random` import.
    let mut seen = BTreeSet::new();
    let mut records = Records { values: Vec::new(), rejected: Vec::new() };
    for user in users {
        let value = user.identifiers.iter().find(|id| id.kind == kind && is_sha256_hex(&id.value));
        match value {
            Some(id) => {
                let value = id.value.to_ascii_lowercase();
                if seen.insert(value.clone()) {
                    records.values.push(value);
                }
            }
            None => records.rejected.push(RejectedUser {
                key: user.key.clone(),
                reason: format!(
                    "the audience is a Pinterest {list_type} customer list and this user has no \
                     usable {} identifier",
                    kind_name(kind)
                ),
            }),
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::types::{Identifier, IdentifierKind};

    use super::*;

    const H1: &str = "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976";
    const H2: &str = "d4181bb455a74b3bc8b37c75ac9b2c702eb6b9930bd040b861403b31ca85634d";

    fn user(key: &str, ids: &[(IdentifierKind, &str)]) -> PreparedUser {
        PreparedUser {
            key: key.into(),
            identifiers: ids.iter().map(|(kind, v)| Identifier { kind: *kind, value: (*v).into() }).collect(),
        }
    }

    #[test]
    fn one_record_per_user_of_the_list_kind() {
        let users = [
            user("a", &[(IdentifierKind::MobileAdId, H2), (IdentifierKind::Email, H1)]),
            user("b", &[(IdentifierKind::MobileAdId, H2)]),
            user("c", &[(IdentifierKind::Email, H1), (IdentifierKind::Email, H2)]),
            user("d", &[(IdentifierKind::Email, "a,b")]),
        ];
        let records = records_for(&users, ListType::Email);
        assert_eq!(records.values, vec![H1.to_string()]);
        assert_eq!(records.joined(), H1);
        let rejected: Vec<&str> = records.rejected.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(rejected, vec!["b", "d"]);
        assert_eq!(
            records.rejected[0].reason,
            "the audience is a Pinterest EMAIL customer list and this user has no usable email identifier"
        );
        let maids = records_for(&users, ListType::Maid);
        assert_eq!(maids.joined(), H2);
        assert_eq!(maids.rejected.len(), 2);
    }

    #[test]
    fn joined_is_one_comma_separated_string() {
        let users = [user("a", &[(IdentifierKind::Idfa, H1)]), user("b", &[(IdentifierKind::Idfa, H2)])];
        assert_eq!(records_for(&users, ListType::Idfa).joined(), format!("{H1},{H2}"));
    }

    #[test]
    fn batch_limit() {
        assert!(check_batch_size(1900).is_ok());
        assert_eq!(
            check_batch_size(1901),
            Err(DestinationError::InvalidRequest(
                "the batch of 1901 users exceeds Pinterest's limit of 1900 records per request".into()
            ))
        );
    }
}
