//! The records the store keeps. Times are milliseconds since the Unix epoch.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use audience_model::{IdentifierKind, Reentry, SyncAction};

/// A tenant: its own connections, syncs and API keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// Id, `ws_...`.
    pub id: String,
    /// Name shown to people.
    pub name: String,
    /// Creation time (ms).
    pub created_at: i64,
}

/// Whether a connection's credentials work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Usable.
    Ok,
    /// The partner refused the credentials and a refresh did not help: a person must connect
    /// again. Users stay pending meanwhile.
    NeedsReauthorization,
}

/// What is needed to create a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConnection {
    /// Owning workspace.
    pub workspace_id: String,
    /// Destination (plugin) name, e.g. "pinterest".
    pub destination: String,
    /// Name shown to people.
    pub name: String,
    /// Credentials, opaque to the store; stored encrypted.
    pub credentials: Vec<u8>,
}

/// A connection to a partner: one partner user's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Id, `conn_...`.
    pub id: String,
    /// Owning workspace.
    pub workspace_id: String,
    /// Destination (plugin) name.
    pub destination: String,
    /// Name shown to people.
    pub name: String,
    /// Decrypted credentials (opaque bytes).
    pub credentials: Vec<u8>,
    /// Bumped each time the credentials change.
    pub credentials_version: i64,
    /// Whether the credentials work.
    pub health: Health,
    /// The last error seen on this connection.
    pub last_error: Option<String>,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
}

/// A sync's state, as shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    /// Delivering.
    Active,
    /// Paused by a person: users are accepted and queued, nothing is sent.
    Paused,
    /// The partner says the account or audience is gone; deliveries keep retrying until their
    /// window ends, and the reason is shown.
    Broken,
    /// The destination's plugin failed several calls in a row (crashed, ran out of time or
    /// memory, broke the contract): deliveries keep retrying with backoff, the last failure is
    /// the reason shown, and the first call that works makes the sync active again.
    Degraded,
}

/// What is needed to create a sync.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSync {
    /// Owning workspace.
    pub workspace_id: String,
    /// Connection used.
    pub connection_id: String,
    /// Destination (plugin) name.
    pub destination: String,
    /// Partner ad account id.
    pub account_id: String,
    /// The audience: name, description, whether to create it.
    pub audience: AudienceConfig,
    /// The partner's audience handle when already known (an existing audience was chosen).
    pub audience_id: Option<String>,
    /// Add or remove.
    pub action: SyncAction,
    /// Identifier kinds to match on, in priority order.
    pub match_fields: Vec<IdentifierKind>,
    /// What a user entering again while synced becomes (sent again, or skipped).
    pub reentry: Reentry,
}

/// The audience a sync writes to, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudienceConfig {
    /// Name at the partner.
    pub name: String,
    /// Description set on creation.
    pub description: Option<String>,
    /// Create it when missing.
    pub create_if_missing: bool,
}

/// A configured sync: destination + connection + account + audience + action + match fields.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRecord {
    /// Id, `sync_...`.
    pub id: String,
    /// Owning workspace.
    pub workspace_id: String,
    /// Connection used.
    pub connection_id: String,
    /// Destination (plugin) name.
    pub destination: String,
    /// Partner ad account id.
    pub account_id: String,
    /// The audience as configured.
    pub audience: AudienceConfig,
    /// The partner's audience handle, once known.
    pub audience_id: Option<String>,
    /// Add or remove.
    pub action: SyncAction,
    /// Identifier kinds to match on.
    pub match_fields: Vec<IdentifierKind>,
    /// What a user entering again while synced becomes (sent again, or skipped).
    pub reentry: Reentry,
    /// Current status.
    pub status: SyncStatus,
    /// Why it is broken or paused, for people.
    pub status_reason: Option<String>,
    /// Creation time (ms).
    pub created_at: i64,
}

/// A user ready to be queued: its key and its prepared payload (opaque to the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyUser {
    /// The caller's key.
    pub key: String,
    /// The prepared user, serialized by the engine.
    pub payload: Vec<u8>,
}

/// One intake call's users, after preparation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Users to queue.
    pub ready: Vec<ReadyUser>,
    /// Users with no usable match field: (key, reason).
    pub not_synced: Vec<(String, String)>,
    /// Entry time (ms).
    pub now_ms: i64,
    /// The flush interval (ms): new users are due at `now_ms + flush_ms`.
    pub flush_ms: i64,
    /// The sync's re-entry policy is [`Reentry::Skip`]: a user entering again while synced is
    /// left synced and counted in `already_in_audience`, not queued.
    pub skip_synced: bool,
}

/// What `enter` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EnterOutcome {
    /// Newly queued.
    pub queued: u64,
    /// Already pending or in flight in this sync; not queued again.
    pub deduplicated: u64,
    /// Counted as not synced.
    pub not_synced: u64,
    /// Synced already and not sent again (the sync's re-entry policy is `skip`).
    pub already_in_audience: u64,
}

/// Parameters of `claim_batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Now (ms).
    pub now_ms: i64,
    /// Most users to claim (the partner's batch limit).
    pub max: usize,
    /// Pending users that entered before this time are errored instead (retry window over).
    pub expire_before_ms: i64,
    /// The reason recorded for them.
    pub expired_reason: String,
    /// The host delivering this batch, when several hosts share the database: the claim then
    /// first checks, in its transaction, that this host holds an unexpired lease on the lane of
    /// the sync's connection, and fails with [`StoreError::LeaseLost`] (changing nothing) when
    /// it does not. `None` skips the check: only for a single host, which owns every lane.
    ///
    /// [`StoreError::LeaseLost`]: crate::StoreError::LeaseLost
    pub lane_owner: Option<String>,
}

/// A claimed (in-flight) user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedUser {
    /// The caller's key.
    pub key: String,
    /// The prepared payload.
    pub payload: Vec<u8>,
    /// When the user entered (ms).
    pub entered_at: i64,
    /// Delivery attempts so far (0 on the first).
    pub attempts: u32,
    /// A removal asked through [`crate::Store::remove_members`]: sent with the partner's
    /// remove call whatever the sync's action, with the payload the user was added with.
    /// `entered_at` is then when the removal was asked (its retry window runs from there).
    pub removal: bool,
}

/// In-flight users the partner accepted as one request that it finishes later (an
/// asynchronous partner's `submitted` answer), for [`crate::Store::submit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubmission {
    /// The partner's id for the request (what the plugin's `check-submission` takes).
    pub id: String,
    /// The users it carried (their keys; they must be in flight).
    pub keys: Vec<String>,
    /// The attempt number of the write that submitted them (1 on the first try).
    pub attempt: u32,
    /// When it was submitted (ms).
    pub now_ms: i64,
    /// When to ask the partner about it first (ms).
    pub check_at_ms: i64,
}

/// A request the partner accepted and has not finished, with its users in the `submitted`
/// state; recorded before anything else, so a restart resumes asking about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The sync it belongs to.
    pub sync_id: String,
    /// The partner's id for the request.
    pub id: String,
    /// How many users it carries now.
    pub users: u64,
    /// The attempt number of the write that submitted it.
    pub attempt: u32,
    /// When it was submitted (ms).
    pub submitted_at_ms: i64,
    /// When the host planned to ask about it first (ms).
    pub check_at_ms: i64,
}

/// What happened to one in-flight user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserOutcome {
    /// The partner has it.
    Synced,
    /// Refused for good, or out of retry window: the reason. Shared (`Arc`), because one
    /// reason often stands for a whole batch: the users of a batch hold one copy of it.
    Errored(Arc<str>),
    /// Try again no earlier than `not_before_ms`; `error` is the failure seen.
    Retry {
        /// Earliest next attempt (ms); also the user's new due time.
        not_before_ms: i64,
        /// What failed (shared by the users of a batch, as above).
        error: Arc<str>,
    },
    /// Not sent after all (its sync was paused or deleted between the claim and the request
    /// leaving): pending again exactly as before the claim (same due time, so due at once),
    /// with no attempt, retry or error counted.
    Unsent,
}

/// An outcome for one user key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserResult {
    /// The caller's key.
    pub key: String,
    /// What happened.
    pub outcome: UserOutcome,
}

/// The counters of a sync. `entered = not_synced + pending + in_flight + submitted + synced +
/// errored`: each entry of a user is counted once, in the state it reached (a user synced,
/// then entered again, counts once in `synced` and once where the second entry is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Entries (queued or not synced): a user's first entry, and each re-entry or re-drive
    /// after they were synced, errored or not synced. Distinct users are `users`.
    pub entered: u64,
    /// Users the intake accepted, including deduplicated re-entries.
    pub proceeded: u64,
    /// No usable match field.
    pub not_synced: u64,
    /// Waiting for a batch or a retry.
    pub pending: u64,
    /// In a request right now.
    pub in_flight: u64,
    /// Sent in a request the partner accepted but has not finished (asynchronous partners);
    /// the host asks how it went later.
    pub submitted: u64,
    /// Accepted by the partner.
    pub synced: u64,
    /// Refused for good or out of the retry window.
    pub errored: u64,
    /// Re-entries of a user already pending, not queued twice.
    pub deduplicated: u64,
    /// Delivery attempts that will be retried.
    pub retries: u64,
    /// Distinct users in the sync's ledger now (every key that entered, once, until an errored
    /// user's history is pruned). The other counters count entries: a user entering again
    /// after being synced or errored is a second entry of the same user.
    pub users: u64,
    /// Distinct users the host knows to be in the audience now: synced by their last delivery
    /// and not removed since (a user entering again is pending until sent again). Counts the
    /// ledger's rows, like `users`, not entries.
    pub in_audience: u64,
    /// Distinct users whose removal was asked and is not finished: waiting, in a request, or
    /// submitted, or still being added (they are removed right after).
    pub removing: u64,
    /// Distinct users the host removed from the audience (until pruned, or until they enter
    /// again).
    pub removed: u64,
    /// Distinct users whose removal the partner refused, or that did not finish within the
    /// retry window (until pruned, asked again, or until they enter again).
    pub removal_errored: u64,
    /// Re-entries of a user already synced that were not sent again (re-entry policy `skip`).
    /// Like `deduplicated`, proceeded but not an entry.
    pub already_in_audience: u64,
}

impl Counts {
    /// Whether the conservation invariant holds.
    pub fn conserved(&self) -> bool {
        self.entered == self.not_synced + self.pending + self.in_flight + self.submitted + self.synced + self.errored
    }
}

/// An errored user and why, or an error of a whole call of the sync's plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserError {
    /// The caller's key; empty for an error of a whole call (see `Store::record_sync_error`).
    pub key: String,
    /// Why.
    pub reason: String,
    /// When (ms).
    pub at: i64,
}

/// What is needed to create an API key. The store never sees the key itself, only a hash of
/// it chosen by the caller (the API uses SHA-256, hex), so a copy of the database does not
/// give access to any workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// The workspace the key acts for.
    pub workspace_id: String,
    /// Name shown to people ("CI", "journey engine").
    pub name: String,
    /// The hash of the key; unique across all workspaces.
    pub key_hash: String,
}

/// A workspace's API key, as stored: its hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Id, `key_...`; names the key in listings and revocation, and is not a secret.
    pub id: String,
    /// The workspace the key acts for.
    pub workspace_id: String,
    /// Name shown to people.
    pub name: String,
    /// The hash of the key.
    pub key_hash: String,
    /// Creation time (ms).
    pub created_at: i64,
}

/// An OAuth authorization in progress: created when a person is sent to the partner's
/// authorization page, consumed (once) by the callback. It is found by a hash of the `state`
/// parameter, chosen by the caller, so the database holds nothing that completes a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthState {
    /// The hash of the `state` parameter; unique.
    pub state_hash: String,
    /// The workspace the connection will belong to.
    pub workspace_id: String,
    /// Destination (plugin) name.
    pub destination: String,
    /// Name of the connection to create.
    pub name: String,
    /// The connection to re-authorize, when this flow reconnects an existing one.
    pub connection_id: Option<String>,
    /// The redirect URI sent to the partner (the code exchange must repeat it).
    pub redirect_uri: String,
    /// Creation time (ms).
    pub created_at: i64,
    /// After this time (ms) the callback refuses the state.
    pub expires_at: i64,
}

/// A host's hold on a connection's delivery lane (the task that claims and sends that
/// connection's batches). With several hosts on one database, each lane has at most one
/// holder at a time: the host whose lease has not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneLease {
    /// The connection whose lane this is.
    pub connection_id: String,
    /// The host holding (or, once expired or released, last holding) the lane.
    pub owner: String,
    /// The lease ends at this time (ms, store clock); expired once the store's clock reaches it.
    pub expires_at: i64,
}

/// What asking for a lane gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// This host holds the lane until `expires_at` (ms, store clock).
    Acquired {
        /// The end of the lease (ms, store clock).
        expires_at: i64,
        /// The previous owner whose lease had expired or been released, if this was a
        /// takeover; `None` if the lane was free or already ours.
        taken_over_from: Option<String>,
        /// In-flight users of this connection's syncs moved back to pending (0 when already
        /// ours).
        recovered: u64,
    },
    /// Another host holds it.
    Held(LaneLease),
}

/// One sync's figures for the metrics endpoint, read for every sync in one statement.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncFigures {
    /// The sync.
    pub sync: SyncRecord,
    /// Its counters.
    pub counts: Counts,
    /// Entry time (ms) of its oldest user still pending or in flight.
    pub oldest_pending_at: Option<i64>,
}

/// A connection's health, without its credentials (nothing is decrypted to read it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionHealth {
    /// Its id.
    pub connection_id: String,
    /// Its destination.
    pub destination: String,
    /// Whether its credentials work.
    pub health: Health,
}

/// The figures of one workspace's syncs and connections on one destination, summed by the
/// store in one pass whatever the number of syncs (what `/metrics` reads at each scrape).
///
/// The user counters that only grow (`entered`, `proceeded`, `not_synced`, `synced`,
/// `errored`, `deduplicated`, `retries`) include the syncs deleted since the database was
/// made, so a sum never goes down when a sync is deleted (Prometheus would read that as a
/// counter reset and count the whole total again). The gauges (`pending`, `in_flight`, `users`,
/// `submitted`) and the sync counts cover the syncs that exist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupFigures {
    /// The workspace.
    pub workspace_id: String,
    /// The destination (plugin) name.
    pub destination: String,
    /// Syncs (deleted ones excluded).
    pub syncs: u64,
    /// Of them, broken.
    pub broken: u64,
    /// Of them, degraded.
    pub degraded: u64,
    /// Of them, paused.
    pub paused: u64,
    /// The users' counters, summed.
    pub counts: Counts,
    /// Entry time (ms) of the oldest user still pending, in flight or submitted in any of
    /// these syncs.
    pub oldest_pending_at: Option<i64>,
    /// Connections.
    pub connections: u64,
    /// Of them, those a person must connect again.
    pub needs_reauthorization: u64,
}

/// How [`crate::Store::group_figures`] groups its sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// One group per destination (`workspace_id` is empty): the cheapest, a few groups
    /// whatever the number of tenants.
    Destination,
    /// One group per workspace and destination.
    Workspace,
}

impl GroupBy {
    /// The SQL expression of the groups' workspace, and the `GROUP BY` columns, for a table
    /// aliased `prefix` (`"s."` or `""`).
    pub(crate) fn sql(self, prefix: &str) -> (String, String) {
        match self {
            GroupBy::Destination => ("''".into(), format!("{prefix}destination")),
            GroupBy::Workspace => {
                (format!("{prefix}workspace_id"), format!("{prefix}workspace_id, {prefix}destination"))
            }
        }
    }
}

/// What one call of [`crate::Store::purge_deleted`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    /// Rows removed (queued users, errors, submissions).
    pub rows: u64,
    /// Deleted syncs whose last rows went, and which are now forgotten.
    pub syncs: u64,
    /// Whether deleted syncs still have rows to remove (call again).
    pub more: bool,
}

/// How many items a page of a listing holds when the caller does not say.
pub const DEFAULT_PAGE: u32 = 100;
/// The most items a page of a listing holds.
pub const MAX_PAGE: u32 = 1_000;

/// Where a user of a sync's ledger is. A user has one row in its sync's ledger from its first
/// entry until the sync is deleted (errored users: until pruned, see [`crate::Store::prune_ledger`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Entered with no usable match field; nothing was sent.
    NotSynced,
    /// Waiting for a batch or a retry.
    Pending,
    /// In a request right now.
    InFlight,
    /// In a request an asynchronous partner accepted and has not finished.
    Submitted,
    /// Accepted by the partner.
    Synced,
    /// Refused for good, or not delivered within the retry window.
    Errored,
    /// Their removal was asked: waiting for a removal request or a retry.
    Removing,
    /// In a removal request right now.
    RemovalInFlight,
    /// In a removal request an asynchronous partner accepted and has not finished.
    RemovalSubmitted,
    /// Removed from the audience by the host.
    Removed,
    /// Their removal was refused for good, or did not finish within the retry window.
    RemovalErrored,
}

impl MemberState {
    /// Every state, in the order of a user's life.
    pub const ALL: [MemberState; 11] = [
        MemberState::NotSynced,
        MemberState::Pending,
        MemberState::InFlight,
        MemberState::Submitted,
        MemberState::Synced,
        MemberState::Errored,
        MemberState::Removing,
        MemberState::RemovalInFlight,
        MemberState::RemovalSubmitted,
        MemberState::Removed,
        MemberState::RemovalErrored,
    ];

    /// The state's number in the SQL backends' `queue.state` column. A removal's states are
    /// the add's plus 6 (waiting, in flight, submitted), then 9 (done) and 10 (errored).
    pub(crate) fn code(self) -> i64 {
        match self {
            MemberState::Pending => 0,
            MemberState::InFlight => 1,
            MemberState::Submitted => 2,
            MemberState::Synced => 3,
            MemberState::Errored => 4,
            MemberState::NotSynced => 5,
            MemberState::Removing => 6,
            MemberState::RemovalInFlight => 7,
            MemberState::RemovalSubmitted => 8,
            MemberState::Removed => 9,
            MemberState::RemovalErrored => 10,
        }
    }

    /// The state of a `queue.state` number, `None` for an unknown one.
    pub(crate) fn from_code(code: i64) -> Option<MemberState> {
        MemberState::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether the host is still delivering the user (pending, in flight or submitted).
    pub fn active(self) -> bool {
        matches!(self, MemberState::Pending | MemberState::InFlight | MemberState::Submitted)
    }

    /// Its name in the API (`not_synced`, `in_flight`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::NotSynced => "not_synced",
            MemberState::Pending => "pending",
            MemberState::InFlight => "in_flight",
            MemberState::Submitted => "submitted",
            MemberState::Synced => "synced",
            MemberState::Errored => "errored",
            MemberState::Removing => "removing",
            MemberState::RemovalInFlight => "removal_in_flight",
            MemberState::RemovalSubmitted => "removal_submitted",
            MemberState::Removed => "removed",
            MemberState::RemovalErrored => "removal_errored",
        }
    }
}

/// One user of a sync's ledger: where they are and how they got there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The caller's key.
    pub key: String,
    /// Where the user is.
    pub state: MemberState,
    /// The user's position in the ledger (a row number), the tie-break of listings.
    pub seq: i64,
    /// When the user first entered the sync (ms).
    pub first_entered_at: i64,
    /// When the user last entered, or was last re-driven (ms): the retry window runs from here.
    pub entered_at: i64,
    /// Entries of the user into the sync (re-entries and re-drives of a user already synced or
    /// errored included; a deduplicated re-entry of a user still being delivered is not one).
    pub entries: u32,
    /// Delivery attempts of the current entry (requests that carried the user and came back).
    pub attempts: u32,
    /// When the user was last put in a request (ms).
    pub last_attempt_at: Option<i64>,
    /// When the user reached its state, for synced, errored and not synced users (ms).
    pub done_at: Option<i64>,
    /// The last failure seen: the reason of a retry, of an error, or why the user was not synced.
    pub last_error: Option<String>,
    /// The asynchronous partner's request that carries (or carried) the user.
    pub submission: Option<String>,
    /// When the user's removal was last asked (ms).
    pub removal_asked_at: Option<i64>,
    /// What follows the request the user is in: their removal was asked while they were being
    /// added (`Remove`), or they entered again while being removed (`Add`).
    pub then: Option<SyncAction>,
}

/// One user of a sync's ledger with what was sent and its error history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDetail {
    /// The user.
    pub member: Member,
    /// What the host sends for the user: the prepared payload of its current entry (the
    /// identifiers in the partner's format, as the plugin prepared them); empty for a user not
    /// synced.
    pub payload: Vec<u8>,
    /// The user's most recent errors, newest first, at most [`MEMBER_ERRORS`].
    pub errors: Vec<UserError>,
}

/// How many of a user's errors [`crate::Store::member`] returns.
pub const MEMBER_ERRORS: usize = 5;

/// Where a page of a ledger listing starts: after the user last entered at `entered_at` with
/// position `seq` (the last of the previous page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberCursor {
    /// The previous page's last user's `entered_at`.
    pub entered_at: i64,
    /// The previous page's last user's `seq`.
    pub seq: i64,
}

/// Which users to re-drive (send again with a fresh retry window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redrive {
    /// Every errored user of the sync (a chunk per call).
    Errored,
    /// These users, if synced or errored.
    Keys(Vec<String>),
}

/// What one call of [`crate::Store::redrive`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Redriven {
    /// Users pending again.
    pub users: u64,
    /// Keys given that were not re-driven: unknown, not synced, or still being delivered.
    pub skipped: u64,
    /// Whether errored users are left for another call ([`Redrive::Errored`] only).
    pub more: bool,
}

/// Why [`crate::Store::remove_members`] did not queue a user's removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalSkip {
    /// The key is not in the sync's ledger (never entered, or pruned).
    Unknown,
    /// The user entered with no usable match field: nothing was sent for them.
    NotSynced,
    /// Their removal was asked already and is not finished.
    AlreadyRemoving,
    /// Removed already.
    AlreadyRemoved,
    /// They entered again while their removal is in a request: ask again once it finished.
    Busy,
}

impl RemovalSkip {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalSkip::Unknown => "unknown",
            RemovalSkip::NotSynced => "not_synced",
            RemovalSkip::AlreadyRemoving => "already_removing",
            RemovalSkip::AlreadyRemoved => "already_removed",
            RemovalSkip::Busy => "busy",
        }
    }
}

/// What one call of [`crate::Store::remove_members`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Removals {
    /// Users whose removal is now queued (or follows the add they are in).
    pub removing: u64,
    /// The keys not queued, and why, in the order given (each key once).
    pub skipped: Vec<(String, RemovalSkip)>,
}

/// What one call of [`crate::Store::prune_ledger`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Rows removed: errored users and errors.
    pub rows: u64,
    /// Whether more rows are old enough (call again).
    pub more: bool,
}
