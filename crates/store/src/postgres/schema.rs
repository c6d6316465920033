//! The PostgreSQL schema and its migrations.
//!
//! Applied migrations are rows of `schema_migrations`. [`MIGRATIONS`] is an append-only list;
//! migration `i` takes the schema from version `i` to `i + 1` and runs, with its row, in one
//! transaction. Each migration transaction first takes a transaction-scoped advisory lock
//! ([`MIGRATION_LOCK`]), so two hosts starting together against a new database wait for each
//! other instead of both applying the same migration; the second one then sees the version
//! the first wrote and applies nothing. A database from a newer build is refused.
//!
//! The layout mirrors the SQLite one (see `sqlite/schema.rs` for why each index exists):
//! syncs have an integer `no` that the queue, counters and errors refer to; `queue` is keyed
//! by `(sync_no, user_key)`, the dedup check of `enter`; `queue_due`, `queue_fresh` (partial)
//! and `queue_entered_id` serve claims, expiry, `next_due`, `oldest_pending` and the ledger's
//! listings (the queue is each sync's ledger: see `sqlite/schema.rs`); `counters` has
//! one row per sync; `hosts` and `lane_leases` say which hosts are alive and which holds
//! each connection's delivery lane (see `lanes.rs`). Where SQLite orders ties by `rowid`, tables here have an identity column
//! (`seq`, or `id` for the queue and errors) so the order is the same.

use tokio_postgres::Client;

use super::{Ctx, Fail};
use crate::StoreError;

/// The advisory lock key that serializes migrations ("audience" in ASCII, as a number).
pub(crate) const MIGRATION_LOCK: i64 = 0x6175_6469_656e_6365;

/// Ordered migrations; index `i` upgrades schema version `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's version 1 has.
    r#"
    CREATE TABLE workspaces (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        created_at  BIGINT NOT NULL,
        seq         BIGINT GENERATED ALWAYS AS IDENTITY
    );

    CREATE TABLE connections (
        id                   TEXT PRIMARY KEY,
        workspace_id         TEXT NOT NULL REFERENCES workspaces(id),
        destination          TEXT NOT NULL,
        name                 TEXT NOT NULL,
        credentials          BYTEA NOT NULL,     -- nonce || XChaCha20-Poly1305 ciphertext
        credentials_version  BIGINT NOT NULL,
        health               TEXT NOT NULL,      -- 'ok' | 'needs_reauthorization'
        last_error           TEXT,
        created_at           BIGINT NOT NULL,
        updated_at           BIGINT NOT NULL,
        seq                  BIGINT GENERATED ALWAYS AS IDENTITY
    );
    CREATE INDEX connections_workspace ON connections(workspace_id);

    CREATE TABLE syncs (
        no                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id                    TEXT NOT NULL UNIQUE,
        workspace_id          TEXT NOT NULL REFERENCES workspaces(id),
        connection_id         TEXT NOT NULL REFERENCES connections(id),
        destination           TEXT NOT NULL,
        account_id            TEXT NOT NULL,
        audience_name         TEXT NOT NULL,
        audience_description  TEXT,
        create_if_missing     BOOLEAN NOT NULL,
        audience_id           TEXT,
        action                TEXT NOT NULL,     -- 'add' | 'remove'
        match_fields          TEXT NOT NULL,     -- JSON array of strings
        status                TEXT NOT NULL,     -- 'active' | 'paused' | 'broken'
        status_reason         TEXT,
        created_at            BIGINT NOT NULL
    );
    CREATE INDEX syncs_workspace ON syncs(workspace_id);
    CREATE INDEX syncs_connection ON syncs(connection_id);

    CREATE TABLE counters (
        sync_no       BIGINT PRIMARY KEY REFERENCES syncs(no),
        entered       BIGINT NOT NULL DEFAULT 0,
        proceeded     BIGINT NOT NULL DEFAULT 0,
        not_synced    BIGINT NOT NULL DEFAULT 0,
        pending       BIGINT NOT NULL DEFAULT 0,
        in_flight     BIGINT NOT NULL DEFAULT 0,
        synced        BIGINT NOT NULL DEFAULT 0,
        errored       BIGINT NOT NULL DEFAULT 0,
        deduplicated  BIGINT NOT NULL DEFAULT 0,
        retries       BIGINT NOT NULL DEFAULT 0
    );

    CREATE TABLE queue (
        id          BIGINT GENERATED ALWAYS AS IDENTITY,
        sync_no     BIGINT NOT NULL REFERENCES syncs(no),
        user_key    TEXT NOT NULL,
        state       BIGINT NOT NULL,             -- 0 pending, 1 in flight
        payload     BYTEA NOT NULL,
        entered_at  BIGINT NOT NULL,
        not_before  BIGINT NOT NULL,             -- 0: no wait; else equal to due_at (a retry)
        due_at      BIGINT NOT NULL,
        attempts    BIGINT NOT NULL DEFAULT 0,
        last_error  TEXT,
        PRIMARY KEY (sync_no, user_key)
    );
    CREATE UNIQUE INDEX queue_id ON queue(id);
    CREATE INDEX queue_due ON queue(sync_no, state, due_at, id);
    CREATE INDEX queue_fresh ON queue(sync_no, due_at, id) WHERE state = 0 AND not_before = 0;
    CREATE INDEX queue_entered ON queue(sync_no, state, entered_at);

    CREATE TABLE errors (
        id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        sync_no   BIGINT NOT NULL REFERENCES syncs(no),
        user_key  TEXT NOT NULL,
        reason    TEXT NOT NULL,
        at        BIGINT NOT NULL
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
        created_at    BIGINT NOT NULL,
        seq           BIGINT GENERATED ALWAYS AS IDENTITY
    );
    CREATE INDEX api_keys_workspace ON api_keys(workspace_id);

    CREATE TABLE oauth_states (
        state_hash     TEXT PRIMARY KEY,
        workspace_id   TEXT NOT NULL REFERENCES workspaces(id),
        destination    TEXT NOT NULL,
        name           TEXT NOT NULL,
        connection_id  TEXT,                     -- set when re-authorizing a connection
        redirect_uri   TEXT NOT NULL,
        created_at     BIGINT NOT NULL,
        expires_at     BIGINT NOT NULL,
        used_at        BIGINT                    -- set once, by the callback
    );
    CREATE INDEX oauth_states_expiry ON oauth_states(expires_at);
    "#,
    // 3: hosts and lane leases, for several hosts sharing one database. A lease goes away
    // with its connection.
    r#"
    CREATE TABLE hosts (
        host_id      TEXT PRIMARY KEY,
        alive_until  BIGINT NOT NULL             -- ms, database clock
    );
    CREATE INDEX hosts_alive ON hosts(alive_until);

    CREATE TABLE lane_leases (
        connection_id  TEXT PRIMARY KEY REFERENCES connections(id) ON DELETE CASCADE,
        owner          TEXT NOT NULL,            -- a host id
        expires_at     BIGINT NOT NULL           -- ms, database clock; released: set to the release time
    );
    CREATE INDEX lane_leases_owner ON lane_leases(owner, expires_at);
    "#,
    // 4: asynchronous outcomes, as SQLite's version 4 (see `sqlite/schema.rs`).
    r#"
    ALTER TABLE counters ADD COLUMN submitted BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE queue ADD COLUMN submission TEXT;  -- state 2: the partner's request id
    CREATE INDEX queue_submission ON queue(sync_no, submission) WHERE state = 2;

    CREATE TABLE submissions (
        sync_no       BIGINT NOT NULL REFERENCES syncs(no),
        id            TEXT NOT NULL,             -- the partner's id for the request
        users         BIGINT NOT NULL,
        attempt       BIGINT NOT NULL,
        submitted_at  BIGINT NOT NULL,
        check_at      BIGINT NOT NULL,
        PRIMARY KEY (sync_no, id)
    );

    CREATE TABLE app_pacing (
        app      TEXT PRIMARY KEY,
        next_at  BIGINT NOT NULL                 -- ms, database clock
    );
    "#,
    // 5: bounded costs per call, as SQLite's version 5 (see `sqlite/schema.rs`): listings
    // paged by id, deleted syncs marked and purged in chunks, their growing counters kept.
    r#"
    ALTER TABLE syncs ADD COLUMN deleted_at BIGINT;    -- set: deleted, rows being purged
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
        entered       BIGINT NOT NULL DEFAULT 0,
        proceeded     BIGINT NOT NULL DEFAULT 0,
        not_synced    BIGINT NOT NULL DEFAULT 0,
        synced        BIGINT NOT NULL DEFAULT 0,
        errored       BIGINT NOT NULL DEFAULT 0,
        deduplicated  BIGINT NOT NULL DEFAULT 0,
        retries       BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (workspace_id, destination)
    );
    "#,
    // 6: the ledger, as SQLite's version 6 (see `sqlite/schema.rs`): synced, errored and
    // not-synced users keep their queue row. `queue_entered` gains `id`, so a listing by state
    // paged by `(entered_at, id)` is one index range even when thousands of users entered in
    // the same millisecond (this rebuilds the index once).
    r#"
    ALTER TABLE queue ADD COLUMN first_at BIGINT;             -- first entry, when entered again
    ALTER TABLE queue ADD COLUMN entries BIGINT NOT NULL DEFAULT 1;
    ALTER TABLE queue ADD COLUMN tried_at BIGINT;             -- last put in a request
    ALTER TABLE queue ADD COLUMN done_at BIGINT;              -- reached synced/errored/not synced
    ALTER TABLE counters ADD COLUMN users BIGINT NOT NULL DEFAULT 0;
    UPDATE counters SET users = (SELECT COUNT(*) FROM queue q WHERE q.sync_no = counters.sync_no);
    CREATE INDEX queue_entered_id ON queue(sync_no, state, entered_at, id);
    DROP INDEX queue_entered;
    CREATE INDEX errors_user ON errors(sync_no, user_key, id);
    "#,
    // 7: removal by key and the re-entry policy, as SQLite's version 7 (see `sqlite/schema.rs`).
    // Adding columns with constant defaults rewrites no row; `in_audience` starts as the synced
    // rows, one `queue_entered_id` range per sync.
    r#"
    ALTER TABLE queue ADD COLUMN asked_at BIGINT;
    ALTER TABLE queue ADD COLUMN then_op BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE counters ADD COLUMN in_audience BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE counters ADD COLUMN removing BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE counters ADD COLUMN removed BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE counters ADD COLUMN removal_errored BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE counters ADD COLUMN already_in_audience BIGINT NOT NULL DEFAULT 0;
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

/// Brings the database to [`current_version`], one transaction per migration, each under the
/// migration advisory lock. Returns the number of migrations applied.
pub(crate) async fn migrate(client: &mut Client) -> Result<usize, Fail> {
    let mut applied = 0;
    loop {
        let tx = client.transaction().await.ctx("starting a schema migration")?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .ctx("waiting for the migration lock")?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .ctx("creating the migrations table")?;
        let found: i64 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
            .await
            .ctx("reading the schema version")?
            .try_get(0)
            .ctx("reading the schema version")?;
        if found > current_version() {
            return Err(StoreError::Database(format!(
                "the database has schema version {found} but this build knows only up to {}: \
                 run a newer audience-host, or restore a backup made by this version",
                current_version()
            ))
            .into());
        }
        let Some(sql) = MIGRATIONS.get(found.max(0) as usize) else {
            tx.commit().await.ctx("finishing the schema check")?;
            return Ok(applied);
        };
        let to = found + 1;
        tx.batch_execute(sql).await.ctx(&format!("migrating the schema to version {to}"))?;
        tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&to])
            .await
            .ctx("recording the schema version")?;
        tx.commit().await.ctx(&format!("committing schema version {to}"))?;
        tracing::info!(version = to, "store schema migrated");
        applied += 1;
    }
}
