//! Deleting a sync without holding the store: what both backends share.
//!
//! Why in two steps: a sync's rows (its queued users, errors and submissions) can number in
//! the millions, and removing them in one transaction held SQLite's single writer for 17 s
//! with 9.7 M users, so every other workspace's intake waited as long. So
//! [`Store::delete_sync`] only marks the sync deleted (`deleted_at`), which every read and
//! write of a sync then treats as gone, and [`Store::purge_deleted`] removes the rows a
//! bounded chunk per transaction, other writers getting the store between chunks. The mark is
//! durable, so a purge cut short by a crash continues after the restart; the sync's row goes
//! last, with its growing counters added to the totals of its workspace and destination
//! (`retired_counters`), so the metrics' sums never go down.
//!
//! [`Store::delete_sync`]: crate::Store::delete_sync
//! [`Store::purge_deleted`]: crate::Store::purge_deleted

use crate::StoreError;

/// The tables holding a sync's rows, purged in this order (the sync's `counters` and `syncs`
/// rows go once all of these are empty).
pub(crate) const SYNC_ROW_TABLES: [&str; 3] = ["queue", "errors", "submissions"];

/// The counters of `counters` that only grow, kept for deleted syncs in `retired_counters`.
pub(crate) const GROWING_COUNTERS: [&str; 7] =
    ["entered", "proceeded", "not_synced", "synced", "errored", "deduplicated", "retries"];

/// Why connection `id` cannot be deleted, given some of the syncs that use it (id, whether
/// deleted; live ones first, at most six), or `None` when none does.
pub(crate) fn in_use_conflict(id: &str, users: &[(String, bool)]) -> Option<StoreError> {
    let live: Vec<&str> = users.iter().filter(|(_, deleted)| !deleted).map(|(s, _)| s.as_str()).collect();
    if !live.is_empty() {
        let mut listed = live.iter().take(5).copied().collect::<Vec<_>>().join(", ");
        if users.len() > 5 {
            listed.push_str(", ...");
        }
        return Some(StoreError::Conflict(format!(
            "connection {id} is used by syncs ({listed}): delete those syncs first"
        )));
    }
    if !users.is_empty() {
        return Some(StoreError::Conflict(format!(
            "connection {id} has deleted syncs whose users are still being removed: try again in a moment"
        )));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(users: &[(&str, bool)]) -> Option<String> {
        let users: Vec<(String, bool)> = users.iter().map(|(s, d)| (s.to_string(), *d)).collect();
        in_use_conflict("conn_1", &users).map(|e| e.to_string())
    }

    #[test]
    fn a_connection_is_in_use_by_live_syncs_first_then_by_syncs_being_purged() {
        assert_eq!(message(&[]), None);
        assert_eq!(
            message(&[("sync_a", false), ("sync_b", true)]).as_deref(),
            Some("conflict: connection conn_1 is used by syncs (sync_a): delete those syncs first")
        );
        let six: Vec<(&str, bool)> = ["s1", "s2", "s3", "s4", "s5", "s6"].iter().map(|s| (*s, false)).collect();
        assert_eq!(
            message(&six).as_deref(),
            Some("conflict: connection conn_1 is used by syncs (s1, s2, s3, s4, s5, ...): delete those syncs first")
        );
        let purging = message(&[("sync_b", true)]).expect("a conflict");
        assert!(purging.contains("still being removed: try again"), "{purging}");
    }
}
