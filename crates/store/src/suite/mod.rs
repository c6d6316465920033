//! The behaviour suite every [`Store`] backend must pass, independent of the backend.
//!
//! Why a shared suite: the engine is written against the trait, not against SQLite, so a
//! second backend (PostgreSQL, for several hosts) is only a drop-in if it behaves the same
//! in every corner the engine relies on: dedup, flush timing, expiry, conservation. Each
//! `pub async fn` here checks one behaviour and panics when it does not hold.
//!
//! A backend runs all of it by implementing [`Harness`] and invoking [`store_suite!`] in an
//! integration test (which needs `tokio` with the `macros` and `rt-multi-thread` features):
//!
//! ```ignore
//! audience_store::store_suite!(MyHarness::new());
//! ```
//!
//! The expression is evaluated once per test, and must give a fresh, empty database.
//! Compiled under `cfg(test)` and with the `test-suite` feature.
//!
//! [`store_suite!`]: crate::store_suite

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test suite: a step that fails is a failed test")]

mod access;
mod bounded;
mod catalog;
mod lanes;
mod ledger;
mod model;
mod queue;
mod removal;
mod submissions;

pub use access::*;
pub use bounded::*;
pub use catalog::*;
pub use lanes::*;
pub use ledger::*;
pub use model::{Op, random_operations_keep_the_books};
pub use queue::*;
pub use removal::*;
pub use submissions::*;

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    AudienceConfig, Claim, Connection, Counts, CredentialKey, Entry, IdentifierKind, NewConnection, NewSync, ReadyUser,
    Store, SyncAction, SyncRecord, Workspace,
};

/// What a backend provides to run the suite: one fresh database per harness.
#[async_trait]
pub trait Harness: Send + Sync {
    /// Opens a store on this harness's database (the same one on every call) with `key`.
    /// Panics when it cannot: this is test code.
    async fn open(&self, key: CredentialKey) -> Arc<dyn Store>;

    /// Whether the bytes the backend stores (files, table dumps) contain `needle`; used to
    /// check that credentials are not stored in clear.
    async fn stored_bytes_contain(&self, needle: &[u8]) -> bool;
}

/// Generates one test per behaviour of the suite for a backend. `$harness` is an expression
/// giving a fresh [`Harness`]; it is evaluated once per test (and per proptest case).
#[macro_export]
macro_rules! store_suite {
    ($harness:expr) => {
        $crate::store_suite!(@store $harness;
            workspaces_are_created_found_and_listed,
            unknown_ids_are_not_found,
            connections_are_created_listed_and_updated,
            new_credentials_clear_a_connection_health_problem,
            a_connection_used_by_syncs_cannot_be_deleted,
            syncs_are_created_with_zeroed_counters_and_listed,
            sync_status_and_audience_id_are_updated,
            a_sync_needs_a_visible_connection_of_its_destination,
            deleting_a_sync_removes_its_queue_counters_and_errors,
            enter_queues_ready_users_and_counts_not_synced,
            enter_deduplicates_users_pending_or_in_flight,
            a_synced_or_errored_user_can_enter_again,
            a_partial_batch_waits_for_its_flush_time,
            a_full_batch_is_claimed_at_once,
            claims_never_exceed_max_and_follow_due_order,
            complete_moves_users_to_synced_errored_or_retry,
            a_retried_user_waits_until_not_before,
            claim_expires_users_past_the_retry_window,
            recover_in_flight_returns_users_to_pending,
            next_due_is_the_earliest_due_of_the_given_syncs,
            oldest_pending_covers_pending_and_in_flight,
            figures_of_every_sync_match_the_per_sync_reads,
            recent_errors_are_newest_first_limited_and_truncated,
            an_error_of_a_whole_call_is_shown_with_no_key_and_moves_no_counter,
            outcomes_for_users_not_in_flight_are_ignored,
            queues_of_syncs_are_separate,
            concurrent_enters_are_all_counted,
            a_failed_write_does_not_fail_concurrent_writes,
            a_submission_moves_in_flight_users_to_submitted,
            submitted_users_survive_a_restart_untouched,
            settling_a_submission_records_its_outcomes_once,
            a_reopened_submission_is_in_flight_again,
            deleting_a_sync_removes_its_submissions,
            api_keys_are_found_by_hash_listed_and_revoked,
            an_oauth_state_is_taken_once,
            concurrent_takes_of_an_oauth_state_give_it_once,
            old_oauth_states_are_purged,
            a_free_lane_is_acquired_and_another_host_is_told_who_holds_it,
            an_expired_lease_is_taken_over_and_its_in_flight_users_are_pending_again,
            acquiring_a_lane_again_extends_it_without_recovering_its_users,
            renewing_keeps_unexpired_leases_and_drops_expired_ones,
            a_released_lane_can_be_acquired_at_once,
            a_claim_fenced_by_a_lost_lease_fails_and_changes_nothing,
            a_claim_fenced_by_the_lane_holder_works,
            heartbeat_counts_live_hosts_and_forgets_expired_ones,
            deleting_a_connection_removes_its_lease,
            app_slots_are_spaced_by_the_interval,
            listings_are_paged_by_id_without_gaps_or_repeats,
            a_deleted_sync_is_gone_at_once_and_purged_in_chunks,
            a_connection_is_deleted_once_its_deleted_syncs_are_purged,
            figures_are_summed_per_workspace_and_destination,
            a_large_expired_backlog_is_errored_in_chunks,
            the_ledger_keeps_every_user_with_its_state,
            a_reentry_is_a_new_entry_of_the_same_user,
            members_are_listed_by_state_and_claims_see_only_pending_users,
            redriven_users_are_sent_again_with_a_fresh_window,
            old_errored_history_is_pruned_in_chunks,
            a_large_ledger_is_paged_without_gaps_or_repeats,
            users_are_removed_by_key_with_what_was_sent,
            a_user_entering_during_their_removal_is_added_after_it,
            submitted_adds_and_removals_settle_in_order,
            removals_expire_after_the_retry_window,
            a_sync_that_skips_reentries_leaves_synced_users_alone,
            old_removed_users_are_pruned,
        );
        $crate::store_suite!(@harness $harness;
            credentials_round_trip_and_are_encrypted_at_rest,
            a_wrong_key_cannot_read_credentials,
            everything_survives_reopening,
            concurrent_acquires_of_a_free_lane_have_one_winner,
            concurrent_takeovers_of_an_expired_lane_recover_its_users_once,
            a_takeover_racing_with_the_holders_claims_strands_no_user,
        );
        #[test]
        fn random_operations_keep_the_books() {
            $crate::suite::random_operations_keep_the_books(|| $harness);
        }
    };
    (@store $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $harness;
                let store = $crate::suite::Harness::open(
                    &harness,
                    $crate::CredentialKey::generate(),
                )
                .await;
                $crate::suite::$name(&*store).await;
            }
        )*
    };
    (@harness $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $harness;
                $crate::suite::$name(&harness).await;
            }
        )*
    };
}

// ---- helpers shared by the behaviours ----

/// A start time far from zero, so "before" and "after" are never negative.
pub const T0: i64 = 1_700_000_000_000;
/// The flush interval the suite enters users with.
pub const FLUSH: i64 = 5_000;

/// A workspace, a "test-destination" connection and a sync on it.
pub async fn setup(store: &dyn Store) -> (Workspace, Connection, SyncRecord) {
    let ws = store.create_workspace("Acme").await.expect("create workspace");
    let conn = store.create_connection(new_connection(&ws.id, b"token-1")).await.expect("create connection");
    let sync = store.create_sync(new_sync(&ws.id, &conn.id)).await.expect("create sync");
    (ws, conn, sync)
}

/// A sync on the setup's workspace and connection.
pub async fn another_sync(store: &dyn Store, ws: &Workspace, conn: &Connection) -> SyncRecord {
    store.create_sync(new_sync(&ws.id, &conn.id)).await.expect("create sync")
}

/// A "test-destination" connection to create.
pub fn new_connection(workspace_id: &str, credentials: &[u8]) -> NewConnection {
    NewConnection {
        workspace_id: workspace_id.to_owned(),
        destination: "test-destination".into(),
        name: "Main account".into(),
        credentials: credentials.to_vec(),
    }
}

/// A sync to create on a "test-destination" connection.
pub fn new_sync(workspace_id: &str, connection_id: &str) -> NewSync {
    NewSync {
        workspace_id: workspace_id.to_owned(),
        connection_id: connection_id.to_owned(),
        destination: "test-destination".into(),
        account_id: "acct-1".into(),
        audience: AudienceConfig {
            name: "Churn risk".into(),
            description: Some("users at risk".into()),
            create_if_missing: true,
        },
        audience_id: None,
        action: SyncAction::Add,
        match_fields: vec![IdentifierKind::Email, IdentifierKind::MobileAdId],
        reentry: crate::Reentry::Resend,
    }
}

/// Ready users `prefix0..prefixN` whose payload names them.
pub fn users(prefix: &str, n: usize) -> Vec<ReadyUser> {
    (0..n).map(|i| user(&format!("{prefix}{i}"))).collect()
}

/// One ready user whose payload names it.
pub fn user(key: &str) -> ReadyUser {
    ReadyUser { key: key.to_owned(), payload: format!("payload of {key}").into_bytes() }
}

/// An entry of `ready` users at `now`, due `FLUSH` later.
pub fn entry(ready: Vec<ReadyUser>, now: i64) -> Entry {
    Entry { ready, not_synced: Vec::new(), now_ms: now, flush_ms: FLUSH, skip_synced: false }
}

/// A claim at `now` of at most `max` users, with no expiry.
pub fn claim(now: i64, max: usize) -> Claim {
    Claim { now_ms: now, max, expire_before_ms: i64::MIN, expired_reason: "retry window over".into(), lane_owner: None }
}

/// The sync's counters, checked for conservation.
pub async fn conserved(store: &dyn Store, sync_id: &str) -> Counts {
    let counts = store.counts(sync_id).await.expect("counts");
    assert!(counts.conserved(), "counts not conserved: {counts:?}");
    counts
}

/// Purges every deleted sync, a few rows per call.
pub async fn purge_everything(store: &dyn Store) {
    for _ in 0..10_000 {
        if !store.purge_deleted(7, None).await.expect("purge").more {
            return;
        }
    }
    panic!("the purge never finished");
}

/// The keys of claimed users, in claim order.
pub fn keys(users: &[crate::QueuedUser]) -> Vec<String> {
    users.iter().map(|u| u.key.clone()).collect()
}
