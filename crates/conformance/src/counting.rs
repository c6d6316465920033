//! Counting users in the requests a plugin sent, without knowing the partner's wire format.
//!
//! A prepared identifier value is what the partner receives ("already in the partner's
//! format"), so a request that carries a user carries at least one of that user's prepared
//! values verbatim, in its body or its URL. The suite gives every user distinct values, so the
//! number of users in a request is the number of users with a value found in it. Values more
//! than one user carries (a hashed gender or country, since contract 0.2.0's multi-key
//! partners) say nothing about who was sent, so they are not counted. A plugin that compresses
//! or re-encodes bodies defeats this; the suite then reports that it could not count.

use std::collections::{HashMap, HashSet};

use aho_corasick::AhoCorasick;

use super::standin::RecordedRequest;
use audience_runtime::types::PreparedUser;

/// Finds which users a request carries.
pub struct UserCounter {
    matcher: Option<AhoCorasick>,
    /// For each pattern, the index of its user.
    owners: Vec<usize>,
}

impl UserCounter {
    /// A counter for `users` (their prepared identifier values).
    pub fn new(users: &[PreparedUser]) -> Self {
        let mut carriers: HashMap<&str, HashSet<usize>> = HashMap::new();
        for (index, user) in users.iter().enumerate() {
            for identifier in &user.identifiers {
                carriers.entry(identifier.value.as_str()).or_default().insert(index);
            }
        }
        let mut patterns = Vec::new();
        let mut owners = Vec::new();
        let mut taken: HashSet<&str> = HashSet::new();
        for (index, user) in users.iter().enumerate() {
            for identifier in &user.identifiers {
                // Very short values would match by accident (the suite's countable values never
                // are), and a value several users share tells none of them apart.
                let unique = carriers.get(identifier.value.as_str()).is_some_and(|c| c.len() == 1);
                if identifier.value.len() >= 6 && unique && taken.insert(identifier.value.as_str()) {
                    patterns.push(identifier.value.clone());
                    owners.push(index);
                }
            }
        }
        let matcher = if patterns.is_empty() { None } else { AhoCorasick::new(&patterns).ok() };
        Self { matcher, owners }
    }

    /// The indexes of the users whose values appear in `request` (body or path).
    pub fn users_in(&self, request: &RecordedRequest) -> HashSet<usize> {
        let mut found = HashSet::new();
        let Some(matcher) = &self.matcher else { return found };
        for haystack in [request.body.as_slice(), request.path.as_bytes()] {
            for m in matcher.find_overlapping_iter(haystack) {
                if let Some(&owner) = self.owners.get(m.pattern().as_usize()) {
                    found.insert(owner);
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audience_runtime::types::Identifier;

    fn user(key: &str, values: &[&str]) -> PreparedUser {
        PreparedUser {
            key: key.into(),
            identifiers: values.iter().map(|v| Identifier { kind: "external-id".into(), value: (*v).into() }).collect(),
            consent: None,
        }
    }

    fn request(body: &str, path: &str) -> RecordedRequest {
        RecordedRequest { method: "POST".into(), path: path.into(), headers: vec![], body: body.as_bytes().to_vec() }
    }

    #[test]
    fn finds_users_in_body_and_path() {
        let users = [user("a", &["value-aaaa", "other-aaaa"]), user("b", &["value-bbbb"]), user("c", &["value-cccc"])];
        let counter = UserCounter::new(&users);
        let found = counter.users_in(&request(r#"{"records":"value-aaaa,other-aaaa,value-bbbb"}"#, "/x?u=value-cccc"));
        assert_eq!(found, HashSet::from([0, 1, 2]));
        assert!(counter.users_in(&request("{}", "/")).is_empty());
    }

    #[test]
    fn shared_values_are_not_counted() {
        let users = [user("a", &["value-aaaa", "shared-hash"]), user("b", &["value-bbbb", "shared-hash"])];
        let counter = UserCounter::new(&users);
        assert_eq!(counter.users_in(&request("shared-hash,value-bbbb", "/")), HashSet::from([1]));
    }

    #[test]
    fn no_values_counts_nothing() {
        let counter = UserCounter::new(&[user("a", &[])]);
        assert!(counter.users_in(&request("anything", "/")).is_empty());
    }
}
