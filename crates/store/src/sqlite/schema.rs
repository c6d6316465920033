//! The SQLite schema and its migrations.
//!
//! The schema version is SQLite's own `PRAGMA user_version`: it lives in the database header,
//! so it cannot disagree with the file it describes. [`MIGRATIONS`] is an append-only list;
//! migration `i` takes the schema from version `i` to `i + 1` and runs, with the version bump,
//! in one transaction, so a crash mid-migration leaves the previous version intact. Opening a
//! file runs only the migrations it has not seen; a file from a newer build is refused rather
//! than misread.
//!
//! Layout choices, for 10 million pending users on disk:
//! - syncs have an integer `no` besides their text id; the queue, counters and errors refer
//!   to it, so each of the millions of queue index entries carries 8 bytes, not a 25-byte id;
//! - `queue` is keyed by `(sync_no, user_key)`, which is also the dedup check of `enter`; it
//!   is the sync's ledger: a user's row stays once synced, errored or not synced (states 3, 4,
//!   5), and every index a claim uses starts with `(sync_no, state)` or is partial on
//!   `state = 0`, so claims only ever read pending rows;
//! - `queue_due (sync_no, state, due_at)` serves `claim_batch` (users already due, in due
//!   order) and `next_due` (first entry);
//! - `queue_fresh (sync_no, due_at) WHERE state = 0 AND not_before = 0` holds only pending
//!   users with no retry wait, so "fill a batch with users not yet due" is a range scan
//!   that never wades through users waiting for a retry;
//! - `queue_entered (sync_no, state, entered_at)` serves retry-window expiry,
//!   `oldest_pending`, the ledger's listings by state (paged by `(entered_at, rowid)`) and the
//!   pruning of old errored users;
//! - `errors_user (sync_no, user_key, id)` serves a user's last errors in a lookup;
//! - `counters` has one row per sync, updated in the transaction of every state change;
//! - `submissions` (one row per partner request not finished yet) and `queue_submission`
//!   (only `submitted` users, by request) serve asynchronous outcomes;
//! - `hosts` and `lane_leases` are small (one row per host, per connection): who is alive,
//!   and which host holds each connection's delivery lane until when;
//! - listings are paged by id: `(workspace_id, id)` indexes on syncs, connections and API
//!   keys make each page an index range;
//! - a deleted sync keeps its row (with `deleted_at`) until its queue, errors and
//!   submissions are purged in chunks; `retired_counters` then keeps its growing counters, per
//!   workspace and destination, for the metrics' totals.

use rusqlite::Connection;

use super::Ctx;
use crate::{StoreError, StoreResult};

/// Ordered migrations; index `i` upgrades schema version `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    // 1: everything.
    r#"
    CREATE TABLE workspaces (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );

    CREATE TABLE connections (
        id                   TEXT PRIMARY KEY,
        workspace_id         TEXT NOT NULL REFERENCES workspaces(id),
        destination          TEXT NOT NULL,
        name                 TEXT NOT NULL,
        credentials          BLOB NOT NULL,      -- nonce || XChaCha20-Poly1305 ciphertext
        credentials_version  INTEGER NOT NULL,
        health               TEXT NOT NULL,      -- 'ok' | 'needs_reauthorization'
        last_error           TEXT,
        created_at           INTEGER NOT NULL,
        updated_at           INTEGER NOT NULL
    );
    CREATE INDEX connections_workspace ON connections(workspace_id);

    CREATE TABLE syncs (
        no                    INTEGER PRIMARY KEY,
        id                    TEXT NOT NULL UNIQUE,
        workspace_id          TEXT NOT NULL REFERENCES workspaces(id),
        connection_id         TEXT NOT NULL REFERENCES connections(id),
        destination           TEXT NOT NULL,
        account_id            TEXT NOT NULL,
        audience_name         TEXT NOT NULL,
        audience_description  TEXT,
        create_if_missing     INTEGER NOT NULL,
        audience_id           TEXT,
        action                TEXT NOT NULL,     -- 'add' | 'remove'
        match_fields          TEXT NOT NULL,     -- JSON array of strings
        status                TEXT NOT NULL,     -- 'active' | 'paused' | 'broken'
        status_reason         TEXT,
        created_at            INTEGER NOT NULL
    );
    CREATE INDEX syncs_workspace ON syncs(workspace_id);
    CREATE INDEX syncs_connection ON syncs(connection_id);

    CREATE TABLE counters (
        sync_no       INTEGER PRIMARY KEY REFERENCES syncs(no),
        entered       INTEGER NOT NULL DEFAULT 0,
        proceeded     INTEGER NOT NULL DEFAULT 0,
        not_synced    INTEGER NOT NULL DEFAULT 0,
        pending       INTEGER NOT NULL DEFAULT 0,
        in_flight     INTEGER NOT NULL DEFAULT 0,
        synced        INTEGER NOT NULL DEFAULT 0,
        errored       INTEGER NOT NULL DEFAULT 0,
        deduplicated  INTEGER NOT NULL DEFAULT 0,
        retries       INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE queue (
        sync_no     INTEGER NOT NULL REFERENCES syncs(no),
        user_key    TEXT NOT NULL,
        state       INTEGER NOT NULL,            -- 0 pending, 1 in flight
        payload     BLOB NOT NULL,
        entered_at  INTEGER NOT NULL,
        not_before  INTEGER NOT NULL,            -- 0: no wait; else equal to due_at (a retry)
        due_at      INTEGER NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        last_error  TEXT,
        PRIMARY KEY (sync_no, user_key)
    );
    CREATE INDEX queue_due ON queue(sync_no, state, due_at);
    CREATE INDEX queue_fresh ON queue(sync_no, due_at) WHERE state = 0 AND not_before = 0;
    CREATE INDEX queue_entered ON queue(sync_no, state, entered_at);

    CREATE TABLE errors (
        id        INTEGER PRIMARY KEY,
        sync_no   INTEGER NOT NULL REFERENCES syncs(no),
        user_key  TEXT NOT NULL,
        reason    TEXT NOT NULL,
        at        INTEGER NOT NULL
    );
    CREATE INDEX errors_sync ON errors(sync_no, id);
    "#,
    // 2: API keys and OAuth states, for the HTTP API. Both hold hashes only.
    r#"
    CREATE TABLE api_keys (
        id            TEXT PRIMARY KEY,
        workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
        name          TEXT NOT NULL,
        key_hash      TEXT NOT NULL UNIQUE,
        created_at    INTEGER NOT NULL
    );
    CREATE INDEX api_keys_workspace ON api_keys(workspace_id);

    CREATE TABLE oauth_states (
        state_hash     TEXT PRIMARY KEY,
        workspace_id   TEXT NOT NULL REFERENCES workspaces(id),
        destination    TEXT NOT NULL,
        name           TEXT NOT NULL,
        connection_id  TEXT,                     -- set when re-authorizing a connection
        redirect_uri   TEXT NOT NULL,
        created_at     INTEGER NOT NULL,
        expires_at     INTEGER NOT NULL,
        used_at        INTEGER                   -- set once, by the callback
    );
    CREATE INDEX oauth_states_expiry ON oauth_states(expires_at);
    "#,
    // 3: hosts and lane leases, for several hosts sharing one database. A lease goes away
    // with its connection.
    r#"
    CREATE TABLE hosts (
        host_id      TEXT PRIMARY KEY,
        alive_until  INTEGER NOT NULL            -- ms, store clock
    );
    CREATE INDEX hosts_alive ON hosts(alive_until);

    CREATE TABLE lane_leases (
        connection_id  TEXT PRIMARY KEY REFERENCES connections(id) ON DELETE CASCADE,
        owner          TEXT NOT NULL,            -- a host id
        expires_at     INTEGER NOT NULL          -- ms, store clock; released: set to the release time
    );
    CREATE INDEX lane_leases_owner ON lane_leases(owner, expires_at);
    "#,
    // 4: asynchronous outcomes. A user the partner accepted in a request it finishes later is
    // `submitted` (queue state 2, with the request's id); the request itself is a row of
    // `submissions`, written in the same transaction, so a restart asks about it again.
    r#"
    ALTER TABLE counters ADD COLUMN submitted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE queue ADD COLUMN submission TEXT;  -- state 2: the partner's request id
    CREATE INDEX queue_submission ON queue(sync_no, submission) WHERE state = 2;

    CREATE TABLE submissions (
        sync_no       INTEGER NOT NULL REFERENCES syncs(no),
        id            TEXT NOT NULL,             -- the partner's id for the request
        users         INTEGER NOT NULL,
        attempt       INTEGER NOT NULL,
        submitted_at  INTEGER NOT NULL,
        check_at      INTEGER NOT NULL,
        PRIMARY KEY (sync_no, id)
    );

    -- Budgets a partner counts per application (Google: per Cloud project), shared by hosts:
    -- the earliest time the app's next request may leave.
    CREATE TABLE app_pacing (
        app      TEXT PRIMARY KEY,
        next_at  INTEGER NOT NULL                -- ms, store clock
    );
    "#,
    // 5: bounded costs per call. Listings are paged by id, so each workspace's listing is an
    // index range (`(workspace_id, id)` replaces the `workspace_id` indexes). A deleted sync
    // is marked (`deleted_at`) and its rows are purged later, a chunk per transaction
    // (`syncs_deleted` finds them); when its last row goes, the counters that only grow are
    // added to `retired_counters`, so the totals per workspace and destination never shrink.
    r#"
    ALTER TABLE syncs ADD COLUMN deleted_at INTEGER;   -- set: deleted, rows being purged
    CREATE INDEX syncs_deleted ON syncs(deleted_at, no) WHERE deleted_at IS NOT NULL;
    CREATE INDEX syncs_workspace_id ON syncs(workspace_id, id);
    DROP INDEX syncs_workspace;
    CREATE INDEX connections_workspace_id ON connections(workspace_id, id);
    DROP INDEX connections_workspace;
    CREATE INDEX api_keys_workspace_id ON api_keys(workspace_id, id);
    DROP INDEX api_keys_workspace;

    CREATE TABLE retired_counters (
        workspace_id  TEXT NOT NULL,
        destination   TEXT NOT NULL,
        entered       INTEGER NOT NULL DEFAULT 0,
        proceeded     INTEGER NOT NULL DEFAULT 0,
        not_synced    INTEGER NOT NULL DEFAULT 0,
        synced        INTEGER NOT NULL DEFAULT 0,
        errored       INTEGER NOT NULL DEFAULT 0,
        deduplicated  INTEGER NOT NULL DEFAULT 0,
        retries       INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (workspace_id, destination)
    );
    "#,
    // 6: the ledger. Synced, errored and not-synced users keep their queue row (states 3, 4
    // and 5) instead of leaving it, so the queue is each sync's ledger. The columns added here
    // say how a user got where they are; `first_at` is NULL until a user enters again (their
    // first entry is then `entered_at`), so this migration rewrites no row. `counters.users`
    // counts the ledger's rows (distinct users); today's rows are all pending or in flight.
    // `errors_user` finds a user's errors for a lookup.
    r#"
    ALTER TABLE queue ADD COLUMN first_at INTEGER;            -- first entry, when entered again
    ALTER TABLE queue ADD COLUMN entries INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE queue ADD COLUMN tried_at INTEGER;            -- last put in a request
    ALTER TABLE queue ADD COLUMN done_at INTEGER;             -- reached synced/errored/not synced
    ALTER TABLE counters ADD COLUMN users INTEGER NOT NULL DEFAULT 0;
    UPDATE counters SET users = (SELECT COUNT(*) FROM queue q WHERE q.sync_no = counters.sync_no);
    CREATE INDEX errors_user ON errors(sync_no, user_key, id);
    "#,
    // 7: removal by key and the re-entry policy. A removal has its own states: 6 waiting, 7 in
    // a request, 8 submitted to an asynchronous partner, 9 removed, 10 refused or out of its
    // window, so every claim and listing stays a range of `(sync_no, state)`. `asked_at` is
    // when the removal was asked (its retry window runs from there); `then_op` says what
    // follows the request a user is in (1: remove them, asked while they were being added; 2:
    // add them again, they entered while being removed). The counters of users in the
    // audience and being removed count rows, like `users`; `in_audience` starts as the synced
    // rows (one `queue_entered` range per sync). The submissions' index now also holds
    // submitted removals (state 8).
    r#"
    ALTER TABLE queue ADD COLUMN asked_at INTEGER;
    ALTER TABLE queue ADD COLUMN then_op INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE counters ADD COLUMN in_audience INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE counters ADD COLUMN removing INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE counters ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE counters ADD COLUMN removal_errored INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE counters ADD COLUMN already_in_audience INTEGER NOT NULL DEFAULT 0;
    UPDATE counters SET in_audience = (SELECT COUNT(*) FROM queue q WHERE q.sync_no = counters.sync_no AND q.state = 3);
    ALTER TABLE syncs ADD COLUMN reentry TEXT NOT NULL DEFAULT 'resend';
    DROP INDEX queue_submission;
    CREATE INDEX queue_submission ON queue(sync_no, submission) WHERE state IN (2, 8);
    "#,
];

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database to [`current_version`], one transaction per migration. The version is
/// read inside each migration's write transaction, so two processes opening a new file at
/// once cannot both apply the same migration. Returns the number of migrations applied.
pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<usize> {
    let mut applied = 0;
    loop {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("starting a schema migration")?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0)).ctx("reading the schema version")?;
        if found > current_version() {
            return Err(StoreError::Database(format!(
                "the database has schema version {found} but this build knows only up to {}: \
                 run a newer audience-host, or restore a backup made by this version",
                current_version()
            )));
        }
        let Some(sql) = MIGRATIONS.get(found.max(0) as usize) else {
            return Ok(applied);
        };
        let to = found + 1;
        tx.execute_batch(sql).ctx(&format!("migrating the schema to version {to}"))?;
        tx.pragma_update(None, "user_version", to).ctx("recording the schema version")?;
        tx.commit().ctx(&format!("committing schema version {to}"))?;
        tracing::info!(version = to, "store schema migrated");
        applied += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database of version 5 with users queued keeps them, pending, and counts them as the
    /// sync's distinct users once migrated to the ledger.
    #[test]
    fn the_ledger_migration_counts_the_users_already_queued() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..5] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        conn.execute_batch(
            "INSERT INTO workspaces VALUES ('ws_1', 'Acme', 0);
             INSERT INTO connections (id, workspace_id, destination, name, credentials, credentials_version, health, \
               created_at, updated_at) VALUES ('conn_1', 'ws_1', 'test', 'c', x'00', 1, 'ok', 0, 0);
             INSERT INTO syncs (no, id, workspace_id, connection_id, destination, account_id, audience_name, \
               create_if_missing, action, match_fields, status, created_at) \
               VALUES (1, 'sync_1', 'ws_1', 'conn_1', 'test', 'a', 'n', 1, 'add', '[]', 'active', 0);
             INSERT INTO counters (sync_no, entered, pending, in_flight) VALUES (1, 3, 2, 1);
             INSERT INTO queue (sync_no, user_key, state, payload, entered_at, not_before, due_at) VALUES \
               (1, 'a', 0, x'01', 10, 0, 20), (1, 'b', 0, x'01', 10, 0, 20), (1, 'c', 1, x'01', 10, 0, 20);",
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 2, "to the ledger, then to removals");
        let users: i64 = conn.query_row("SELECT users FROM counters WHERE sync_no = 1", [], |r| r.get(0)).unwrap();
        assert_eq!(users, 3);
        let (first, entries): (Option<i64>, i64) = conn
            .query_row("SELECT first_at, entries FROM queue WHERE user_key = 'a'", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((first, entries), (None, 1), "a user's first entry is its entry until it enters again");
    }
}
