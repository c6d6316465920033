//! The one durable place of audience-host: workspaces, connections (credentials encrypted at
//! rest), syncs, the user queue and the per-sync counters.
//!
//! The store knows nothing of plugins, partners or HTTP: users are opaque payloads with a key,
//! credentials are opaque bytes. That keeps the engine's rules in one place (the engine) and
//! lets a second backend (PostgreSQL, for several hosts) implement the same trait without
//! touching the engine.
//!
//! Every state change of a user and the counters it moves are written in one transaction, so
//! `entered = not_synced + pending + in_flight + submitted + synced + errored` holds at every
//! instant and across crashes. The queue is also the sync's ledger: a user's row stays after
//! delivery (synced, errored), so the store can say what happened to any user.
//!
//! Several hosts may share one PostgreSQL database: each connection's delivery lane is then
//! held by one live host at a time through a lease with an expiry (see
//! [`Store::acquire_lane`]), and claims can be fenced by that lease ([`Claim::lane_owner`]),
//! so a host that lost a lane cannot claim users from it any more.
//!
//! Backends: [`SqliteStore`] (embedded, the default) and [`PostgresStore`] (one database
//! shared by several hosts). [`suite`] (feature `test-suite`) is
//! the behaviour suite every backend must pass.

mod crypto;
mod deletion;
mod groups;
mod ids;
pub mod postgres;
pub mod removal;
pub mod sqlite;
#[cfg(any(test, feature = "test-suite"))]
pub mod suite;
mod types;

pub use crypto::{CredentialKey, KeyError};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use types::*;

use async_trait::async_trait;

/// A failure of the store. Messages say what to do where the user can do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist (or is not visible to that workspace).
    #[error("{kind} {id} not found")]
    NotFound {
        /// "workspace", "connection", "sync", ...
        kind: &'static str,
        /// The id looked up.
        id: String,
    },
    /// A uniqueness or consistency rule was broken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored credentials could not be decrypted (wrong or changed encryption key).
    #[error(
        "stored credentials could not be decrypted: is the credentials encryption key the one they were written with?"
    )]
    Decrypt,
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// The store is shutting down or its writer stopped.
    #[error("the store is closed")]
    Closed,
    /// A claim was made for a host that does not hold the lane of the sync's connection (its
    /// lease expired, was released, or another host took it over). Nothing was changed.
    #[error(
        "this host no longer holds the lane of connection {connection_id}: its lease expired or another host \
         took it over; stop delivering for it (acquire the lane again to resume)"
    )]
    LeaseLost {
        /// The connection whose lane was lost.
        connection_id: String,
    },
}

/// Result type of the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// The durable store. Implementations must be safe to share between tasks (`Arc<dyn Store>`).
#[async_trait]
pub trait Store: Send + Sync {
    // ---- workspaces ----

    /// Create a workspace.
    async fn create_workspace(&self, name: &str) -> StoreResult<Workspace>;
    /// One workspace.
    async fn workspace(&self, id: &str) -> StoreResult<Workspace>;
    /// A page of the workspaces: at most `limit` of them, by id, those after `after` (an id
    /// of a previous page's last item; it need not exist any more).
    async fn workspaces(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Workspace>>;

    // ---- connections ----

    /// Create a connection with its credentials (stored encrypted), health `ok`.
    async fn create_connection(&self, new: NewConnection) -> StoreResult<Connection>;
    /// One connection, with decrypted credentials.
    async fn connection(&self, id: &str) -> StoreResult<Connection>;
    /// These connections (unknown ones left out), in one read where the backend can: what a
    /// page of syncs shows of their connections costs one read, not one per connection.
    async fn connections_by_id(&self, ids: &[String]) -> StoreResult<Vec<Connection>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            match self.connection(id).await {
                Ok(connection) => found.push(connection),
                Err(StoreError::NotFound { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(found)
    }
    /// A page of the connections of a workspace: at most `limit`, by id, after `after` (as
    /// [`Store::workspaces`]). `NotFound` for an unknown workspace.
    async fn connections(&self, workspace_id: &str, after: Option<&str>, limit: u32) -> StoreResult<Vec<Connection>>;
    /// Replace a connection's credentials (refresh or re-authorization); sets health `ok`,
    /// clears the last error and bumps `credentials_version`.
    async fn update_credentials(&self, id: &str, credentials: &[u8]) -> StoreResult<Connection>;
    /// Set a connection's health and last error.
    async fn set_connection_health(&self, id: &str, health: Health, last_error: Option<&str>) -> StoreResult<()>;
    /// Delete a connection. Refused with `Conflict` while syncs use it, deleted syncs whose
    /// rows [`Store::purge_deleted`] has not removed yet included (purge those first, with
    /// `connection_id`).
    async fn delete_connection(&self, id: &str) -> StoreResult<()>;

    // ---- syncs ----

    /// Create a sync (status `active`) and its zeroed counters.
    async fn create_sync(&self, new: NewSync) -> StoreResult<SyncRecord>;
    /// One sync (`NotFound` once deleted).
    async fn sync(&self, id: &str) -> StoreResult<SyncRecord>;
    /// A page of the syncs of a workspace: at most `limit`, by id, after `after` (as
    /// [`Store::workspaces`]). `NotFound` for an unknown workspace.
    async fn syncs(&self, workspace_id: &str, after: Option<&str>, limit: u32) -> StoreResult<Vec<SyncRecord>>;
    /// The syncs using a connection.
    async fn syncs_of_connection(&self, connection_id: &str) -> StoreResult<Vec<SyncRecord>>;
    /// Every sync (for the engine at start-up).
    async fn all_syncs(&self) -> StoreResult<Vec<SyncRecord>>;
    /// Set a sync's status and its reason (shown to people).
    async fn set_sync_status(&self, id: &str, status: SyncStatus, reason: Option<&str>) -> StoreResult<()>;
    /// Record the partner's audience handle once known (found, created, or created with the
    /// first batch).
    async fn set_audience_id(&self, id: &str, audience_id: &str) -> StoreResult<()>;
    /// Delete a sync, at once whatever its backlog: from the moment this returns the sync is
    /// gone for every other call (`NotFound` for `sync`, `enter`, `claim_batch`, `complete`,
    /// `counts`...; left out of every listing), and its rows (queued users, errors,
    /// submissions) wait for [`Store::purge_deleted`] to remove them, a chunk at a time.
    async fn delete_sync(&self, id: &str) -> StoreResult<()>;
    /// Removes at most about `max_rows` rows of deleted syncs (of the syncs of connection
    /// `connection_id` only, when given), in one short transaction, and forgets the deleted
    /// syncs left with no rows (their counters are kept in the totals of
    /// [`Store::group_figures`]). Call it again while [`Purged::more`] says so: between calls
    /// other writers get the store. A purge interrupted (by a crash, say) goes on at the next
    /// call, after a restart too.
    async fn purge_deleted(&self, max_rows: u32, connection_id: Option<&str>) -> StoreResult<Purged>;

    // ---- the user queue ----

    /// Users enter a sync. In one transaction: `ready` users are queued as pending unless the
    /// same key is already pending, in flight or submitted in that sync (then they count as
    /// `deduplicated`; a key twice in one entry counts once); a key the sync's ledger holds as
    /// synced, errored or not synced is queued again (its row becomes pending with the new
    /// payload, attempts reset, its first entry kept). `not_synced` users are counted and not
    /// queued; a key the ledger does not hold yet gets a not-synced row. Counters: proceeded +=
    /// all; entered += queued + not_synced; pending += queued; not_synced += not_synced.len();
    /// users += keys new to the ledger. New users are due at `now_ms + flush_ms`. Returns only
    /// after the transaction is durable.
    async fn enter(&self, sync_id: &str, entry: Entry) -> StoreResult<EnterOutcome>;

    /// Claim the next batch of a sync for delivery, or nothing when none is ready. When
    /// `claim.lane_owner` is `Some(host)`, the claim first checks, in its transaction, that
    /// `host` holds an unexpired lease (store clock) on the lane of the sync's connection; if
    /// not it changes nothing and fails with [`StoreError::LeaseLost`]. A takeover of the lane
    /// is ordered with the claim: either the claim commits first and the takeover then recovers
    /// the users it claimed, or the takeover commits first and the claim fails. Then, pending
    /// users that entered before `claim.expire_before_ms` become errored with
    /// `claim.expired_reason`, at most [`EXPIRE_CHUNK`] of them per claim (the oldest first):
    /// when that many were errored the claim returns nothing, and the next claim goes on.
    /// Removals waiting since before `claim.expire_before_ms` become `removal_errored` the same
    /// way. Then removals go first, in a batch of their own ([`QueuedUser::removal`]): among
    /// waiting removals due or with no retry wait, ordered by due time, when the first is due
    /// or `max` are there, up to `max` move to a removal in flight and are returned.
    /// Otherwise, among pending users with `not_before_ms <= now_ms`,
    /// ordered by `due_at_ms`: when at least `max` are available, or the first is due
    /// (`due_at_ms <= now_ms`), up to `max` of them move to in-flight and are returned.
    async fn claim_batch(&self, sync_id: &str, claim: Claim) -> StoreResult<Vec<QueuedUser>>;

    /// Record what happened to in-flight users of a sync, in one transaction: synced and
    /// errored users stay in the ledger in that state with `attempts + 1` (errored with their
    /// reason kept, also in the sync's errors); retried users go back to pending with
    /// `attempts + 1` and the given `not_before_ms` (also their new due time).
    async fn complete(&self, sync_id: &str, results: Vec<UserResult>) -> StoreResult<()>;

    /// The partner accepted in-flight users of a sync as one request it finishes later, in
    /// one transaction: the submission is recorded, its users (those of `submission.keys`
    /// still in flight; others are ignored) move to `submitted`, and the counters follow. A
    /// restart or a lane takeover leaves submitted users as they are: whoever runs the lane
    /// next asks the partner about the same request. `NotFound` for an unknown sync,
    /// `Conflict` when the sync already has a submission with that id.
    async fn submit(&self, sync_id: &str, submission: NewSubmission) -> StoreResult<()>;

    /// The submissions of these syncs (unknown syncs have none), oldest first.
    async fn submissions(&self, sync_ids: &[String]) -> StoreResult<Vec<Submission>>;

    /// The users of a submission, as they were claimed (`attempts` counts the write that
    /// submitted them as not yet done). Empty when the submission is unknown.
    async fn submission_users(&self, sync_id: &str, submission_id: &str) -> StoreResult<Vec<QueuedUser>>;

    /// The partner finished a submission (or failed it): in one transaction, what happened to
    /// its users is recorded as [`Store::complete`] records it for in-flight users (only users
    /// of this submission are touched; results for others are ignored), and the submission
    /// is forgotten. Users of the submission without a result go back to pending, due now.
    /// Nothing happens for an unknown submission (already settled).
    async fn settle_submission(&self, sync_id: &str, submission_id: &str, results: Vec<UserResult>) -> StoreResult<()>;

    /// A submission the partner failed in a way that needs its users sent again now (split, or
    /// without the users it named): its users go back to in flight and are returned, and the
    /// submission is forgotten, in one transaction. The caller then delivers them and records
    /// their outcomes with [`Store::complete`]. Empty for an unknown submission.
    async fn reopen_submission(&self, sync_id: &str, submission_id: &str) -> StoreResult<Vec<QueuedUser>>;

    /// The earliest `due_at_ms` among the pending users of these syncs (when the next batch
    /// will be ready even if it is not full), or `None` when none is pending.
    async fn next_due(&self, sync_ids: &[String]) -> StoreResult<Option<i64>>;

    /// After a restart: every in-flight user (of every sync) becomes pending again, due now.
    /// Returns how many.
    async fn recover_in_flight(&self, now_ms: i64) -> StoreResult<u64>;

    // ---- the ledger ----
    //
    // Every user that entered a sync keeps one row in its ledger (the queue: rows in states
    // pending, in flight and submitted are the backlog; synced, errored and not synced rows
    // are the history), until the sync is deleted or, for errored users, until pruned.

    /// One user of a sync, with what is sent for them and their last errors. `NotFound` (kind
    /// "sync") for an unknown or deleted sync, (kind "user") for a key the ledger does not hold.
    async fn member(&self, sync_id: &str, key: &str) -> StoreResult<MemberDetail>;

    /// A page of a sync's users in one state: at most `limit`, ordered by (`entered_at`,
    /// `seq`), those after `after` (the previous page's last user). One index range per page
    /// whatever the ledger's size. A user whose state or entry changes between two pages may
    /// be listed twice or not at all. `NotFound` for an unknown sync.
    async fn members(
        &self,
        sync_id: &str,
        state: MemberState,
        after: Option<MemberCursor>,
        limit: u32,
    ) -> StoreResult<Vec<Member>>;

    /// Re-drives users of a sync in one transaction: synced or errored users (for
    /// [`Redrive::Errored`], the errored ones, at most `max` per call, oldest entry first)
    /// become pending again, due at `now_ms`, with a fresh retry window (`entered_at = now_ms`,
    /// attempts 0, no wait); their payload is the one they were sent with. Each counts as a new
    /// entry (entered += n, pending += n; the previous outcome stays counted), so the counters
    /// only grow and stay conserved. Users unknown, not synced or still being delivered are
    /// skipped. `NotFound` for an unknown sync.
    async fn redrive(&self, sync_id: &str, which: Redrive, now_ms: i64, max: u32) -> StoreResult<Redriven>;

    /// Queues the removal of these users of a sync that adds users, in one transaction, each
    /// key once: the host removes them from the audience with the payload they were added with
    /// (`QueuedUser::removal`). A synced or errored user (or one whose removal failed) becomes
    /// `removing`, due at `now_ms + flush_ms` (`in_audience` goes down for a synced user); a
    /// user still being added (pending, in flight, submitted) is removed right after that
    /// delivery finishes, whatever its outcome (removes are idempotent). The others are
    /// skipped with the reason. `removing` goes up by the users queued. `NotFound` for an
    /// unknown sync.
    async fn remove_members(&self, sync_id: &str, keys: &[String], now_ms: i64, flush_ms: i64)
    -> StoreResult<Removals>;

    /// Removes at most about `max_rows` rows of history older than `before_ms`, in one short
    /// transaction: errored, removed and removal-errored users whose last entry and outcome
    /// are older (their ledger rows; `users`, `removed` and `removal_errored` go down by as many) and the sync errors recorded before it. Call it again while
    /// [`Pruned::more`] says so.
    async fn prune_ledger(&self, before_ms: i64, max_rows: u32) -> StoreResult<Pruned>;

    // ---- hosts and lanes (several hosts on one database) ----
    //
    // Each connection has one delivery lane. With several hosts on one database, a lane is
    // delivered by the host holding its lease; a host renews its leases well within their
    // time-to-live, and when a host dies its leases expire and another host takes the lanes
    // over, recovering the users the dead host had in flight (they may be delivered twice:
    // delivery is at least once). "Now" is the store's clock (SQLite: the system clock;
    // PostgreSQL: the database's clock, so hosts with skewed clocks agree), in ms since the
    // epoch. A `ttl_ms` below 1 records a lease (or heartbeat) that has already expired.

    /// Records host `host_id` as alive until now + `ttl_ms` (creating or refreshing its row),
    /// forgets hosts whose heartbeat expired more than [`HOST_RETENTION_MS`] ago, and returns
    /// how many hosts are alive now (heartbeat not expired), this one included.
    async fn heartbeat(&self, host_id: &str, ttl_ms: i64) -> StoreResult<u64>;

    /// Asks for the lane of a connection, atomically. When the lane is free, its lease expired
    /// or was released, or `host_id` already holds it, it becomes `host_id`'s until now +
    /// `ttl_ms` and the answer is [`LeaseOutcome::Acquired`]. When `host_id` did not already
    /// hold it unexpired (the lane was free, or taken over, including from `host_id`'s own
    /// expired lease), every in-flight user of the syncs of that connection becomes pending
    /// again, due now (as [`Store::recover_in_flight`] does, for this connection only), with
    /// the counters moved in the same transaction; `recovered` says how many. A host that
    /// already holds the lane only extends it: its in-flight users stay in flight. When
    /// another host holds an unexpired lease the answer is [`LeaseOutcome::Held`] and nothing
    /// changes. Of any number of hosts asking at once for the same free or expired lane,
    /// exactly one acquires it. `NotFound` (kind "connection") for an unknown connection.
    async fn acquire_lane(&self, connection_id: &str, host_id: &str, ttl_ms: i64) -> StoreResult<LeaseOutcome>;

    /// Extends every unexpired lease held by `host_id` to now + `ttl_ms`, and returns the ids
    /// of the connections whose lanes it still holds, sorted. A lease that already expired is
    /// not renewed (another host may be about to take it over): the host must stop delivering
    /// for that lane and call [`Store::acquire_lane`] again, which recovers its in-flight
    /// users.
    async fn renew_lanes(&self, host_id: &str, ttl_ms: i64) -> StoreResult<Vec<String>>;

    /// Gives up `host_id`'s lease on the lane of a connection (it expires now), so another
    /// host can take the lane at once; its in-flight users are recovered by whoever takes it
    /// next. Nothing happens when `host_id` does not hold that lane (or the connection is
    /// unknown).
    async fn release_lane(&self, connection_id: &str, host_id: &str) -> StoreResult<()>;

    /// Reserves the next departure of a request counted against application `app`'s budget of
    /// one request per `interval_ms`, shared by every host on this store: atomically, the
    /// app's next free time `t` becomes `max(t, now) + interval_ms`, and the answer is how long
    /// (ms, 0 or more) the caller waits before sending, `max(t, now) - now`, on the store's
    /// clock (so hosts whose clocks disagree still space the app's requests exactly).
    async fn take_app_slot(&self, app: &str, interval_ms: i64) -> StoreResult<i64>;

    /// Every lease (expired and released ones included: compare `expires_at` with the store's
    /// clock), sorted by connection id; for distributing lanes among hosts and for metrics. A
    /// connection that was never asked for has no lease.
    async fn lane_leases(&self) -> StoreResult<Vec<LaneLease>>;

    // ---- counters ----

    /// The counters of a sync.
    async fn counts(&self, sync_id: &str) -> StoreResult<Counts>;
    /// The entry time of the oldest pending or in-flight user of a sync.
    async fn oldest_pending(&self, sync_id: &str) -> StoreResult<Option<i64>>;
    /// The most recent errored users of a sync (newest first), at most `limit`, with the
    /// errors of whole calls recorded by [`Store::record_sync_error`] among them.
    async fn recent_errors(&self, sync_id: &str, limit: usize) -> StoreResult<Vec<UserError>>;
    /// Record an error of a whole call for a sync (its plugin crashed, say), shown among its
    /// recent errors with an empty key. No user's state or counter changes: the users of that
    /// call are retried as the engine decided. The reason is cut like users' reasons.
    async fn record_sync_error(&self, sync_id: &str, reason: &str) -> StoreResult<()>;
    /// Every sync with its counters and oldest pending entry, in one statement (what
    /// `/metrics` reads when it shows every sync, an opt-in: it grows with the syncs).
    async fn sync_figures(&self) -> StoreResult<Vec<SyncFigures>>;
    /// The figures of every destination (`by` [`GroupBy::Destination`]) or every (workspace,
    /// destination) pair (`by` [`GroupBy::Workspace`]) that has syncs or connections:
    /// counters summed, syncs broken, degraded and paused counted, oldest pending entry, and
    /// connections needing re-authorization (what `/metrics` reads at each scrape). Three
    /// statements with `GROUP BY`, whatever the number of syncs.
    async fn group_figures(&self, by: GroupBy) -> StoreResult<Vec<GroupFigures>>;
    /// The counters of these syncs (unknown or deleted ones are left out), in one read.
    async fn counts_of(&self, sync_ids: &[String]) -> StoreResult<Vec<(String, Counts)>>;
    /// Every connection's health, in one statement, without decrypting credentials.
    async fn connection_health(&self) -> StoreResult<Vec<ConnectionHealth>>;

    // ---- API keys ----

    /// Create an API key of a workspace from its hash. `NotFound` for an unknown workspace,
    /// `Conflict` when a key with the same hash exists.
    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<ApiKey>;
    /// The API key with this hash (the request's authentication), `NotFound` (kind
    /// "api key") when none.
    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<ApiKey>;
    /// A page of the API keys of a workspace: at most `limit`, by id, after `after` (as
    /// [`Store::workspaces`]). `NotFound` for an unknown workspace.
    async fn api_keys(&self, workspace_id: &str, after: Option<&str>, limit: u32) -> StoreResult<Vec<ApiKey>>;
    /// Delete (revoke) an API key: it stops working at once.
    async fn delete_api_key(&self, id: &str) -> StoreResult<()>;

    // ---- OAuth states ----

    /// Record an OAuth authorization in progress. `NotFound` for an unknown workspace,
    /// `Conflict` when the state hash exists. States that expired more than
    /// [`OAUTH_STATE_RETENTION_MS`] before `new.created_at` are purged in passing.
    async fn create_oauth_state(&self, new: OauthState) -> StoreResult<()>;
    /// Consume a state, atomically: exactly one caller gets it, however many try at once.
    /// `NotFound` (kind "oauth state") when unknown or purged, `Conflict` when it was already
    /// consumed. An expired state is consumed and returned like any other: the caller
    /// compares `expires_at` with its clock and refuses it.
    async fn take_oauth_state(&self, state_hash: &str, now_ms: i64) -> StoreResult<OauthState>;

    // ---- announcements between hosts ----

    /// Tell every host sharing this store that `connection_id`'s lane has news (users entered,
    /// a person paused, deleted or reconnected), so the host running that lane looks at once.
    /// A backend serving one host has nobody to tell and does nothing.
    async fn announce(&self, connection_id: &str) -> StoreResult<()> {
        let _ = connection_id;
        Ok(())
    }

    /// The announcements of every host sharing this store (this one's included), as they
    /// come, from a listener of their own; `None` for a backend serving one host. The
    /// listener says [`Announcement::Missed`] when it (re)connects: anything announced
    /// meanwhile is unknown.
    fn announcements(&self) -> Option<tokio::sync::mpsc::Receiver<Announcement>> {
        None
    }
}

/// What another host announced through the store (see [`Store::announcements`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// This connection's lane has news.
    Connection(String),
    /// The listener was not listening for a while: any lane may have news.
    Missed,
}

/// The most users one claim errors for being past their retry window, so a large backlog
/// that expires at once is errored in many short transactions, not one long one.
pub const EXPIRE_CHUNK: u32 = 5_000;

/// How long a host whose heartbeat expired is remembered before [`Store::heartbeat`] purges
/// it: one hour.
pub const HOST_RETENTION_MS: i64 = 3600 * 1000;

/// How long a consumed or expired OAuth state is kept (so a replay is told "already used"
/// rather than "unknown") before it is purged: one day.
pub const OAUTH_STATE_RETENTION_MS: i64 = 24 * 3600 * 1000;
