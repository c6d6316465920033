//! Choosing the records a batch sends (pure).
//!
//! A customer list holds one identifier kind, so each prepared user contributes the first of
//! its identifiers of that kind — one record per user, which keeps a batch of at most 1,900
//! users within Pinterest's 1,900 records per request. Users without one are reported as
//! rejected. A value that is not a SHA-256 hex digest (a prepared user from elsewhere) is never
//! sent: it could carry a comma and split into bogus records.
//!
//! When the audience id does not say the list's type (an audience picked with
//! `search-audiences`, see [`crate::audience_ref`]), the batch says it: `prepare-users` gives
//! every user of a sync one identifier of the same kind, so [`batch_list_type`] takes the kind
//! of the first user's first supported identifier.

use std::collections::BTreeSet;

use audience_plugin_sdk::identity::is_sha256_hex;
use audience_plugin_sdk::types::{DestinationError, PreparedUser, RejectedUser};

use crate::list_type::ListType;

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

/// The list type a batch's prepared users were made for: the kind of the first supported
/// identifier of the first user that has one; `None` when no user has any.
pub fn batch_list_type(users: &[PreparedUser]) -> Option<ListType> {
    users.iter().flat_map(|u| u.identifiers.iter()).find_map(|id| ListType::for_kind(&id.kind))
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
                     usable {kind} identifier"
                ),
            }),
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::kinds::{EMAIL, IDFA, MOBILE_AD_ID};
    use audience_plugin_sdk::types::Identifier;

    use super::*;

    const H1: &str = "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976";
    const H2: &str = "d4181bb455a74b3bc8b37c75ac9b2c702eb6b9930bd040b861403b31ca85634d";

    fn user(key: &str, ids: &[(&str, &str)]) -> PreparedUser {
        PreparedUser {
            key: key.into(),
            identifiers: ids.iter().map(|(kind, v)| Identifier { kind: (*kind).into(), value: (*v).into() }).collect(),
            consent: None,
        }
    }

    #[test]
    fn one_record_per_user_of_the_list_kind() {
        let users = [
            user("a", &[(MOBILE_AD_ID, H2), (EMAIL, H1)]),
            user("b", &[(MOBILE_AD_ID, H2)]),
            user("c", &[(EMAIL, H1), (EMAIL, H2)]),
            user("d", &[(EMAIL, "a,b")]),
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
        let users = [user("a", &[(IDFA, H1)]), user("b", &[(IDFA, H2)])];
        assert_eq!(records_for(&users, ListType::Idfa).joined(), format!("{H1},{H2}"));
    }

    #[test]
    fn the_batch_says_the_type_when_the_id_does_not() {
        assert_eq!(batch_list_type(&[user("a", &[("phone", H1)]), user("b", &[(IDFA, H1)])]), Some(ListType::Idfa));
        assert_eq!(batch_list_type(&[user("a", &[(MOBILE_AD_ID, H1), (EMAIL, H2)])]), Some(ListType::Maid));
        assert_eq!(batch_list_type(&[user("a", &[])]), None);
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
