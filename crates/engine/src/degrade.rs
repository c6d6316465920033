//! When a sync's plugin keeps failing: the decision to show it on the sync, and to clear it.
//!
//! Why: a plugin that traps, runs out of time or memory, or breaks the contract on every call
//! fails nothing the partner said, so none of the partner-driven states (broken, needs
//! re-authorization) applies, and its users only retry with backoff. Without this, such a sync
//! looked `active` with no recent error while nothing was delivered. Each failed call is
//! recorded among the sync's recent errors; after [`DEGRADED_AFTER`] failed calls in a row the
//! sync is `degraded` with the last failure as its reason; the first call that works (whatever
//! the partner answered) makes it active again. Only the plugin's own failures count: the
//! host's (no free instance) and the partner's are shown elsewhere.

use audience_store::SyncStatus;

/// Failed calls in a row after which a sync is shown as degraded.
pub(crate) const DEGRADED_AFTER: u32 = 3;

/// What to do with a sync's status after one call of its plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusChange {
    /// Leave it.
    Keep,
    /// Show it as degraded.
    Degrade,
    /// Show it as active again.
    Recover,
}

/// After a call of the plugin for a sync with `status` that had failed `failures` calls in a
/// row: how many failures in a row now, and what becomes of the status. A paused or broken
/// sync keeps its status (a person's pause, or the partner's word, says more than this).
pub(crate) fn after_call(failures: u32, status: SyncStatus, failed: bool) -> (u32, StatusChange) {
    if !failed {
        let change = if status == SyncStatus::Degraded { StatusChange::Recover } else { StatusChange::Keep };
        return (0, change);
    }
    let failures = failures.saturating_add(1);
    let change = if failures >= DEGRADED_AFTER && status == SyncStatus::Active {
        StatusChange::Degrade
    } else {
        StatusChange::Keep
    };
    (failures, change)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_degrades_after_failures_in_a_row_and_recovers_at_the_first_success() {
        use StatusChange::*;
        use SyncStatus::*;
        let cases = [
            // (failures before, status, this call failed) -> (failures after, change)
            ((0, Active, true), (1, Keep)),
            ((1, Active, true), (2, Keep)),
            ((2, Active, true), (3, Degrade)),
            ((7, Active, true), (8, Degrade)),
            ((3, Degraded, true), (4, Keep)),
            ((2, Active, false), (0, Keep)),
            ((9, Degraded, false), (0, Recover)),
            ((5, Paused, true), (6, Keep)),
            ((5, Broken, true), (6, Keep)),
            ((5, Broken, false), (0, Keep)),
            ((u32::MAX, Active, true), (u32::MAX, Degrade)),
        ];
        for ((failures, status, failed), expected) in cases {
            assert_eq!(after_call(failures, status, failed), expected, "{failures} {status:?} {failed}");
        }
    }
}
