//! What asking to remove a user does, by where the user is: one decision both SQL backends
//! (and the engine's in-memory store) take the same way, written once and tested as a table.
//!
//! Why a removal can wait: a user still being added (pending, in a request, or submitted to an
//! asynchronous partner) may reach the audience with that very request, so their removal is
//! sent right after it finishes, whatever its outcome (partners' removes are idempotent).
//! Removing them at once instead would race with the add in flight.

use crate::{MemberState, RemovalSkip, SyncAction};

/// The step for a user in `state`, with what follows the request they are in (`then`), for a
/// store that keeps states as [`MemberState`]s (the engine's in-memory store).
pub fn step_for(state: MemberState, then: Option<SyncAction>) -> Step {
    let then_op = match then {
        None => 0,
        Some(SyncAction::Remove) => 1,
        Some(SyncAction::Add) => 2,
    };
    removal_step(state.code(), then_op)
}

/// The reason kept for a removal that failed for good: the partner's (or the expiry's) words,
/// said to be about the removal, at most `MAX_REASON_CHARS` characters.
pub fn failed_removal_reason(reason: &str) -> String {
    crate::sqlite::truncate_reason(&format!("removal: {reason}")).to_owned()
}

/// What asking to remove a user does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Queue the removal now (a waiting removal, state 6).
    Remove,
    /// Remove them once the add they are in finished (`then_op = 1`).
    RemoveAfter,
    /// Nothing to do, and why.
    Skip(RemovalSkip),
}

/// The step for a user in queue state `state` (see `MemberState::code`) with `then_op` (0
/// nothing, 1 removal after the add, 2 add after the removal).
pub(crate) fn removal_step(state: i64, then_op: i64) -> Step {
    match (state, then_op) {
        (0..=2, 0) => Step::RemoveAfter,
        (0..=2, _) => Step::Skip(RemovalSkip::AlreadyRemoving),
        (3 | 4 | 10, _) => Step::Remove,
        (5, _) => Step::Skip(RemovalSkip::NotSynced),
        (7 | 8, 2) => Step::Skip(RemovalSkip::Busy),
        (6..=8, _) => Step::Skip(RemovalSkip::AlreadyRemoving),
        (9, _) => Step::Skip(RemovalSkip::AlreadyRemoved),
        _ => Step::Skip(RemovalSkip::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemberState as S;

    #[test]
    fn each_state_has_one_step() {
        use Step::*;
        let table = [
            (S::Pending, 0, RemoveAfter),
            (S::InFlight, 0, RemoveAfter),
            (S::Submitted, 0, RemoveAfter),
            (S::Pending, 1, Skip(RemovalSkip::AlreadyRemoving)),
            (S::Submitted, 1, Skip(RemovalSkip::AlreadyRemoving)),
            (S::Synced, 0, Remove),
            (S::Errored, 0, Remove),
            (S::RemovalErrored, 0, Remove),
            (S::NotSynced, 0, Skip(RemovalSkip::NotSynced)),
            (S::Removing, 0, Skip(RemovalSkip::AlreadyRemoving)),
            (S::RemovalInFlight, 0, Skip(RemovalSkip::AlreadyRemoving)),
            (S::RemovalSubmitted, 0, Skip(RemovalSkip::AlreadyRemoving)),
            (S::RemovalInFlight, 2, Skip(RemovalSkip::Busy)),
            (S::RemovalSubmitted, 2, Skip(RemovalSkip::Busy)),
            (S::Removed, 0, Skip(RemovalSkip::AlreadyRemoved)),
        ];
        for (state, then_op, step) in table {
            assert_eq!(removal_step(state.code(), then_op), step, "{state:?} with then_op {then_op}");
        }
        assert_eq!(removal_step(42, 0), Skip(RemovalSkip::Unknown));
    }
}
