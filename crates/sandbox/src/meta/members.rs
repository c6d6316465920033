//! Exact audience membership, which Meta never shows.
//!
//! A member is one accepted row: a map from canonical schema key (`EMAIL`, `PHONE`, `MADID`,
//! `EXTERN_ID`, `FN`, ...) to the value sent, empty values left out. `EMAIL_SHA256`,
//! `PHONE_SHA256` and `MOBILE_ADVERTISER_ID` single-key rows are stored under `EMAIL`, `PHONE`
//! and `MADID`, so a person added by one schema can be compared with one added by another.
//!
//! Adding a row that is already a member changes nothing. Removing a row removes every member
//! equal to it and every member sharing one of its identifying values (`EMAIL`, `PHONE`,
//! `MADID`, `EXTERN_ID`), the way Meta matches people: removing `{EMAIL: h}` takes out a member
//! added as `{EMAIL: h, PHONE: p, FN: f}`. `FN`, `LN`, `ZIP` and the like identify nobody alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One audience member: schema key -> value (hashes are lowercase hex), empty values left out.
pub type MemberRow = BTreeMap<String, String>;

/// The keys whose value alone identifies a person.
const IDENTIFYING: [&str; 4] = ["EMAIL", "PHONE", "MADID", "EXTERN_ID"];

/// The members of one audience, indexed for removal by identifier.
#[derive(Debug, Clone, Default)]
pub(crate) struct Membership {
    rows: BTreeMap<u64, MemberRow>,
    exact: HashMap<MemberRow, u64>,
    by_identifier: HashMap<(String, String), BTreeSet<u64>>,
    next: u64,
}

fn identifiers(row: &MemberRow) -> impl Iterator<Item = (String, String)> + '_ {
    row.iter().filter(|(k, _)| IDENTIFYING.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone()))
}

impl Membership {
    /// How many distinct rows are members.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Adds a row; false when it already was a member.
    pub fn add(&mut self, row: MemberRow) -> bool {
        if row.is_empty() || self.exact.contains_key(&row) {
            return false;
        }
        let id = self.next;
        self.next += 1;
        for identifier in identifiers(&row) {
            self.by_identifier.entry(identifier).or_default().insert(id);
        }
        self.exact.insert(row.clone(), id);
        self.rows.insert(id, row);
        true
    }

    /// Removes the members matching `row`; returns how many.
    pub fn remove_matching(&mut self, row: &MemberRow) -> usize {
        let mut ids: BTreeSet<u64> = self.exact.get(row).copied().into_iter().collect();
        for identifier in identifiers(row) {
            if let Some(matching) = self.by_identifier.get(&identifier) {
                ids.extend(matching.iter().copied());
            }
        }
        for id in &ids {
            let Some(removed) = self.rows.remove(id) else {
                continue;
            };
            for identifier in identifiers(&removed) {
                if let Some(set) = self.by_identifier.get_mut(&identifier) {
                    set.remove(id);
                    if set.is_empty() {
                        self.by_identifier.remove(&identifier);
                    }
                }
            }
            self.exact.remove(&removed);
        }
        ids.len()
    }

    /// Every member row, sorted.
    pub fn rows(&self) -> Vec<MemberRow> {
        let mut rows: Vec<MemberRow> = self.rows.values().cloned().collect();
        rows.sort_unstable();
        rows
    }

    /// A membership holding exactly `rows`.
    pub fn from_rows(rows: impl IntoIterator<Item = MemberRow>) -> Self {
        let mut membership = Self::default();
        for row in rows {
            membership.add(row);
        }
        membership
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> MemberRow {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn adding_twice_keeps_one_member() {
        let mut members = Membership::default();
        assert!(members.add(row(&[("EMAIL", "a")])));
        assert!(!members.add(row(&[("EMAIL", "a")])));
        assert!(!members.add(MemberRow::new()));
        assert_eq!(members.len(), 1);
    }

    #[test]
    fn removal_matches_exact_rows_and_shared_identifiers_only() {
        let mut members = Membership::from_rows([
            row(&[("EMAIL", "a"), ("PHONE", "p"), ("FN", "f")]),
            row(&[("EMAIL", "b"), ("FN", "f")]),
            row(&[("FN", "f"), ("LN", "l")]),
            row(&[("MADID", "m")]),
        ]);
        // A shared first name identifies nobody.
        assert_eq!(members.remove_matching(&row(&[("FN", "f")])), 0);
        assert_eq!(members.remove_matching(&row(&[("PHONE", "p")])), 1);
        assert_eq!(members.remove_matching(&row(&[("FN", "f"), ("LN", "l")])), 1);
        assert_eq!(members.len(), 2);
        assert_eq!(members.rows(), vec![row(&[("EMAIL", "b"), ("FN", "f")]), row(&[("MADID", "m")])]);
        assert_eq!(members.remove_matching(&row(&[("EMAIL", "b"), ("MADID", "m")])), 2);
        assert_eq!(members.len(), 0);
        assert!(members.by_identifier.is_empty() && members.exact.is_empty());
    }
}
