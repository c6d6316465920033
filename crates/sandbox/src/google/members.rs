//! Exact user list membership, which Google never shows.
//!
//! A member is a set of identifier keys, each one of:
//! `email:<sha256 hex>`, `phone:<sha256 hex>`,
//! `address:<given name hex>|<family name hex>|<REGION>|<postal code>`, `mobile:<id, lowercase>`
//! and `user_id:<id>`. Hashes are stored as lowercase hex whatever encoding (HEX in either case,
//! or BASE64) the request used, so a test compares them with plain `sha256` hex strings.
//!
//! Google matches people on any identifier, so the stand-in does too: ingesting a member that
//! shares an identifier with existing members merges them into one (the union of their
//! identifiers) and refreshes it; removing a member removes every member sharing one of its
//! identifiers. Each identifier also counts how many times it was ingested (accepted and
//! processed), so a test can prove nobody was sent twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use serde::Serialize;

/// One member of a user list, as [`GoogleHandle::members`](crate::GoogleHandle::members)
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoogleMember {
    /// Identifier keys (`email:<hex>`, `phone:<hex>`, `address:..`, `mobile:..`, `user_id:..`),
    /// sorted.
    pub identifiers: Vec<String>,
    /// How many processed ingest requests carried any of its identifiers.
    pub times_ingested: u32,
}

#[derive(Debug, Clone)]
struct Member {
    identifiers: BTreeSet<String>,
    /// When the last ingest request carrying it was sent (drives `removeAll`'s
    /// `removeAsOfTime`).
    last_added: Instant,
    times_ingested: u32,
}

/// The members of one list, indexed by identifier.
#[derive(Debug, Clone, Default)]
pub(crate) struct Members {
    members: BTreeMap<u64, Member>,
    by_identifier: HashMap<String, u64>,
    /// Identifier key -> times it was ingested (kept after removal).
    ingested: HashMap<String, u32>,
    next: u64,
}

impl Members {
    /// How many members the list holds.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    fn sharing(&self, identifiers: &[String]) -> BTreeSet<u64> {
        identifiers.iter().filter_map(|i| self.by_identifier.get(i).copied()).collect()
    }

    fn take(&mut self, id: u64) -> Option<Member> {
        let member = self.members.remove(&id)?;
        for identifier in &member.identifiers {
            self.by_identifier.remove(identifier);
        }
        Some(member)
    }

    /// Adds (or refreshes and merges) a member sent at `sent`.
    pub fn ingest(&mut self, identifiers: &[String], sent: Instant) {
        if identifiers.is_empty() {
            return;
        }
        for identifier in identifiers {
            *self.ingested.entry(identifier.clone()).or_default() += 1;
        }
        let mut merged =
            Member { identifiers: identifiers.iter().cloned().collect(), last_added: sent, times_ingested: 1 };
        for id in self.sharing(identifiers) {
            if let Some(old) = self.take(id) {
                merged.identifiers.extend(old.identifiers);
                merged.last_added = merged.last_added.max(old.last_added);
                merged.times_ingested += old.times_ingested;
            }
        }
        let id = self.next;
        self.next += 1;
        for identifier in &merged.identifiers {
            self.by_identifier.insert(identifier.clone(), id);
        }
        self.members.insert(id, merged);
    }

    /// Removes every member sharing an identifier; returns how many went.
    pub fn remove(&mut self, identifiers: &[String]) -> usize {
        self.sharing(identifiers).into_iter().filter_map(|id| self.take(id)).count()
    }

    /// Removes every member last added before `before`; returns how many went.
    pub fn remove_added_before(&mut self, before: Instant) -> usize {
        let old: Vec<u64> = self.members.iter().filter(|(_, m)| m.last_added < before).map(|(id, _)| *id).collect();
        old.into_iter().filter_map(|id| self.take(id)).count()
    }

    /// Whether a member carries this identifier key.
    pub fn contains(&self, identifier: &str) -> bool {
        self.by_identifier.contains_key(identifier)
    }

    /// How many times an identifier was ingested (0 when never).
    pub fn times_ingested(&self, identifier: &str) -> u32 {
        self.ingested.get(identifier).copied().unwrap_or(0)
    }

    /// The most times any identifier was ingested.
    pub fn max_times_ingested(&self) -> u32 {
        self.ingested.values().copied().max().unwrap_or(0)
    }

    /// Every member, oldest first.
    pub fn list(&self) -> Vec<GoogleMember> {
        self.members
            .values()
            .map(|m| GoogleMember {
                identifiers: m.identifiers.iter().cloned().collect(),
                times_ingested: m.times_ingested,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn keys(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn members_merge_on_any_shared_identifier_and_leave_by_any() {
        let start = Instant::now();
        let mut members = Members::default();
        members.ingest(&keys(&["email:a", "phone:1"]), start);
        members.ingest(&keys(&["email:b"]), start);
        members.ingest(&keys(&["phone:1", "email:c"]), start);
        assert_eq!(members.len(), 2);
        assert_eq!(members.times_ingested("phone:1"), 2);
        assert_eq!(members.max_times_ingested(), 2);
        assert!(members.contains("email:c"));
        assert_eq!(members.remove(&keys(&["email:a"])), 1);
        assert!(!members.contains("phone:1") && !members.contains("email:c"));
        assert_eq!(members.len(), 1);
        assert_eq!(members.times_ingested("email:a"), 1, "counts survive removal");
    }

    #[test]
    fn remove_added_before_keeps_later_members() {
        let start = Instant::now();
        let mut members = Members::default();
        members.ingest(&keys(&["email:old"]), start);
        members.ingest(&keys(&["email:new"]), start + Duration::from_secs(10));
        assert_eq!(members.remove_added_before(start + Duration::from_secs(5)), 1);
        assert_eq!(members.list()[0].identifiers, vec!["email:new".to_owned()]);
    }
}
