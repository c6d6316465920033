//! The embedded SQLite backend: [`SqliteStore`].
//!
//! One file, zero setup, and durable: the database runs in WAL mode with
//! `synchronous=FULL`, so a write acknowledged to a caller has been fsynced and survives
//! `kill -9` and a power loss alike.
//!
//! Writes go to ONE writer thread (`sqlite/writer.rs`) that commits concurrent callers' operations
//! together (group commit). Reads use a small pool of separate read-only connections: WAL
//! lets readers run beside the writer on the last committed snapshot, so `counts` for the
//! metrics endpoint or `oldest_pending` never wait behind a large intake commit, and a read
//! made after a write was acknowledged sees it. Readers run on Tokio's blocking pool when a
//! Tokio runtime is present (SQLite calls block), inline otherwise.
//!
//! Memory: pending users live on disk; the writer's page cache is capped at
//! [`WRITER_CACHE_KIB`] and each reader's at [`READER_CACHE_KIB`], so the store's resident size
//! does not grow with the backlog.

mod access;
mod catalog;
mod figures;
mod folder;
mod lanes;
mod ledger;
mod purge;
mod queue;
mod schema;
mod submissions;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};

use crate::crypto::CredentialKey;
use crate::{
    ApiKey, Claim, Connection as ConnectionRecord, ConnectionHealth, Counts, EnterOutcome, Entry, GroupBy,
    GroupFigures, Health, LaneLease, LeaseOutcome, Member, MemberCursor, MemberDetail, MemberState, NewApiKey,
    NewConnection, NewSubmission, NewSync, OauthState, Pruned, Purged, QueuedUser, Redrive, Redriven, Removals, Store,
    StoreError, StoreResult, Submission, SyncFigures, SyncRecord, SyncStatus, UserError, UserResult, Workspace,
};

pub use queue::MAX_REASON_CHARS;
pub(crate) use queue::truncate_reason;

use writer::Writer;

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Page cache of the write connection, in KiB.
pub const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// Page cache of each read connection, in KiB.
pub const READER_CACHE_KIB: i64 = 8 * 1024;
/// Reads under way at once, each on its own read connection; more wait (without holding a
/// thread) for one to finish. Every read connection is kept open once made.
///
/// Why bounded: a host with thousands of connections may start as many reads at once (lanes
/// waking together, a burst of intake). Unbounded, each took a blocking thread and, beyond the
/// connections kept idle, opened a read connection of its own (parsing its settings, preparing
/// its statements, filling its page cache) only to close it after one read.
const MAX_READERS: usize = 8;

/// Adds what was being done to a SQLite error, as a [`StoreError::Database`].
pub(crate) trait Ctx<T> {
    /// Maps the error, saying what was being done.
    fn ctx(self, doing: &str) -> StoreResult<T>;
}

impl<T> Ctx<T> for Result<T, rusqlite::Error> {
    fn ctx(self, doing: &str) -> StoreResult<T> {
        self.map_err(|e| StoreError::Database(format!("{doing}: {e}")))
    }
}

/// A stored value that does not decode (the file was edited, or written by a newer build).
pub(crate) fn conversion_error(column: usize, what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("unknown {what} {value:?} in the database").into(),
    )
}

use audience_model::now_ms;

/// The SQLite implementation of [`Store`]. Share it as `Arc<dyn Store>`; dropping the last
/// handle lets the writer finish what is queued and close the file.
pub struct SqliteStore {
    path: PathBuf,
    /// The database's folder, opened once (see `folder`).
    _folder: folder::StoreFolder,
    key: Arc<CredentialKey>,
    writer: Writer,
    readers: Arc<Readers>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the store at `path` and brings its
    /// schema up to date. `key` encrypts connection credentials; opening with another key
    /// works, but reading credentials then fails with [`StoreError::Decrypt`].
    pub fn open(path: impl AsRef<Path>, key: CredentialKey) -> StoreResult<SqliteStore> {
        let folder = folder::StoreFolder::open(path.as_ref())?;
        let path = folder.path().to_path_buf();
        let opening = format!("opening the store at {}", path.display());
        let mut conn = Connection::open_with_flags(&path, OpenFlags::default() | folder::OPEN_FLAGS).ctx(&opening)?;
        configure(&conn, WRITER_CACHE_KIB).ctx(&opening)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).ctx(&opening)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database(format!(
                "{opening}: the file system does not support SQLite's WAL mode (journal mode \
                 stayed {mode:?}); put the database on a local disk"
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL").ctx(&opening)?;
        conn.pragma_update(None, "foreign_keys", true).ctx(&opening)?;
        conn.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut conn)?;
        let readers = Arc::new(Readers {
            path: path.clone(),
            idle: Mutex::new(Vec::new()),
            turns: tokio::sync::Semaphore::new(MAX_READERS),
        });
        // Fail at open, not at the first read, when readers cannot open the file.
        readers.release(readers.acquire()?);
        Ok(SqliteStore { writer: Writer::start(conn)?, readers, key: Arc::new(key), path, _folder: folder })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.writer.run(op).await
    }

    async fn read<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let _turn = self
                    .readers
                    .turns
                    .acquire()
                    .await
                    .map_err(|e| StoreError::Database(format!("the store's readers are closed: {e}")))?;
                runtime
                    .spawn_blocking(move || readers.run(op))
                    .await
                    .map_err(|e| StoreError::Database(format!("a read task failed: {e}")))?
            }
            Err(_) => readers.run(op),
        }
    }
}

/// Settings every connection needs.
fn configure(conn: &Connection, cache_kib: i64) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Negative: a size in KiB rather than in pages.
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
}

/// Idle read connections, opened on demand, and the turns of the reads (see [`MAX_READERS`]).
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    turns: tokio::sync::Semaphore,
}

impl Readers {
    fn acquire(&self) -> StoreResult<Connection> {
        if let Some(conn) = self.idle.lock().pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | folder::OPEN_FLAGS,
        )
        .ctx("opening a read connection")?;
        configure(&conn, READER_CACHE_KIB).ctx("configuring a read connection")?;
        conn.pragma_update(None, "query_only", true).ctx("configuring a read connection")?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    fn release(&self, conn: Connection) {
        let mut idle = self.idle.lock();
        if idle.len() < MAX_READERS {
            idle.push(conn);
        }
    }

    /// Runs `op` in one read transaction (one consistent snapshot).
    fn run<T>(&self, op: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.acquire()?;
        conn.execute_batch("BEGIN").ctx("starting a read")?;
        let result = op(&conn);
        match conn.execute_batch("COMMIT") {
            Ok(()) => self.release(conn),
            // The connection is in an unknown state: drop it rather than reuse it.
            Err(e) => tracing::warn!(error = %e, "discarding a read connection"),
        }
        result
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_workspace(&self, name: &str) -> StoreResult<Workspace> {
        let (name, now) = (name.to_owned(), now_ms());
        self.write(move |c| catalog::create_workspace(c, &name, now)).await
    }

    async fn workspace(&self, id: &str) -> StoreResult<Workspace> {
        let id = id.to_owned();
        self.read(move |c| catalog::workspace(c, &id)).await
    }

    async fn workspaces(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Workspace>> {
        let after = after.map(str::to_owned);
        self.read(move |c| catalog::workspaces(c, after.as_deref(), limit)).await
    }

    async fn create_connection(&self, new: NewConnection) -> StoreResult<ConnectionRecord> {
        let (key, now) = (Arc::clone(&self.key), now_ms());
        self.write(move |c| catalog::create_connection(c, &key, new, now)).await
    }

    async fn connection(&self, id: &str) -> StoreResult<ConnectionRecord> {
        let (key, id) = (Arc::clone(&self.key), id.to_owned());
        self.read(move |c| catalog::connection(c, &key, &id)).await
    }

    async fn connections_by_id(&self, ids: &[String]) -> StoreResult<Vec<ConnectionRecord>> {
        let (key, ids) = (Arc::clone(&self.key), ids.to_vec());
        self.read(move |c| {
            let mut found = Vec::with_capacity(ids.len());
            for id in &ids {
                match catalog::connection(c, &key, id) {
                    Ok(connection) => found.push(connection),
                    Err(StoreError::NotFound { .. }) => {}
                    Err(other) => return Err(other),
                }
            }
            Ok(found)
        })
        .await
    }

    async fn connections(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        let (key, id, after) = (Arc::clone(&self.key), workspace_id.to_owned(), after.map(str::to_owned));
        self.read(move |c| catalog::connections(c, &key, &id, after.as_deref(), limit)).await
    }

    async fn update_credentials(&self, id: &str, credentials: &[u8]) -> StoreResult<ConnectionRecord> {
        let (key, id, credentials, now) = (Arc::clone(&self.key), id.to_owned(), credentials.to_vec(), now_ms());
        self.write(move |c| catalog::update_credentials(c, &key, &id, &credentials, now)).await
    }

    async fn set_connection_health(&self, id: &str, health: Health, last_error: Option<&str>) -> StoreResult<()> {
        let (id, last_error, now) = (id.to_owned(), last_error.map(str::to_owned), now_ms());
        self.write(move |c| catalog::set_connection_health(c, &id, health, last_error.as_deref(), now)).await
    }

    async fn delete_connection(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| catalog::delete_connection(c, &id)).await
    }

    async fn create_sync(&self, new: NewSync) -> StoreResult<SyncRecord> {
        let now = now_ms();
        self.write(move |c| catalog::create_sync(c, new, now)).await
    }

    async fn sync(&self, id: &str) -> StoreResult<SyncRecord> {
        let id = id.to_owned();
        self.read(move |c| catalog::sync(c, &id)).await
    }

    async fn syncs(&self, workspace_id: &str, after: Option<&str>, limit: u32) -> StoreResult<Vec<SyncRecord>> {
        let (id, after) = (workspace_id.to_owned(), after.map(str::to_owned));
        self.read(move |c| catalog::syncs(c, &id, after.as_deref(), limit)).await
    }

    async fn syncs_of_connection(&self, connection_id: &str) -> StoreResult<Vec<SyncRecord>> {
        let id = connection_id.to_owned();
        self.read(move |c| catalog::syncs_of_connection(c, &id)).await
    }

    async fn all_syncs(&self) -> StoreResult<Vec<SyncRecord>> {
        self.read(catalog::all_syncs).await
    }

    async fn set_sync_status(&self, id: &str, status: SyncStatus, reason: Option<&str>) -> StoreResult<()> {
        let (id, reason) = (id.to_owned(), reason.map(str::to_owned));
        self.write(move |c| catalog::set_sync_status(c, &id, status, reason.as_deref())).await
    }

    async fn set_audience_id(&self, id: &str, audience_id: &str) -> StoreResult<()> {
        let (id, audience_id) = (id.to_owned(), audience_id.to_owned());
        self.write(move |c| catalog::set_audience_id(c, &id, &audience_id)).await
    }

    async fn delete_sync(&self, id: &str) -> StoreResult<()> {
        let (id, now) = (id.to_owned(), now_ms());
        self.write(move |c| purge::mark_deleted(c, &id, now)).await
    }

    async fn purge_deleted(&self, max_rows: u32, connection_id: Option<&str>) -> StoreResult<Purged> {
        let connection_id = connection_id.map(str::to_owned);
        self.write(move |c| purge::purge(c, max_rows, connection_id.as_deref())).await
    }

    async fn enter(&self, sync_id: &str, entry: Entry) -> StoreResult<EnterOutcome> {
        let id = sync_id.to_owned();
        self.write(move |c| queue::enter(c, &id, &entry)).await
    }

    async fn claim_batch(&self, sync_id: &str, claim: Claim) -> StoreResult<Vec<QueuedUser>> {
        let id = sync_id.to_owned();
        // The store's clock is read when the writer runs the claim, not when it was queued.
        self.write(move |c| queue::claim_batch(c, &id, &claim, now_ms())).await
    }

    async fn complete(&self, sync_id: &str, results: Vec<UserResult>) -> StoreResult<()> {
        let (id, now) = (sync_id.to_owned(), now_ms());
        self.write(move |c| queue::complete(c, &id, &results, now)).await
    }

    async fn submit(&self, sync_id: &str, submission: NewSubmission) -> StoreResult<()> {
        let id = sync_id.to_owned();
        self.write(move |c| submissions::submit(c, &id, &submission)).await
    }

    async fn submissions(&self, sync_ids: &[String]) -> StoreResult<Vec<Submission>> {
        let ids = sync_ids.to_vec();
        self.read(move |c| submissions::submissions(c, &ids)).await
    }

    async fn submission_users(&self, sync_id: &str, submission_id: &str) -> StoreResult<Vec<QueuedUser>> {
        let (id, sub) = (sync_id.to_owned(), submission_id.to_owned());
        self.read(move |c| submissions::submission_users(c, &id, &sub)).await
    }

    async fn settle_submission(&self, sync_id: &str, submission_id: &str, results: Vec<UserResult>) -> StoreResult<()> {
        let (id, sub, now) = (sync_id.to_owned(), submission_id.to_owned(), now_ms());
        self.write(move |c| submissions::settle(c, &id, &sub, &results, now)).await
    }

    async fn reopen_submission(&self, sync_id: &str, submission_id: &str) -> StoreResult<Vec<QueuedUser>> {
        let (id, sub) = (sync_id.to_owned(), submission_id.to_owned());
        self.write(move |c| submissions::reopen(c, &id, &sub)).await
    }

    async fn next_due(&self, sync_ids: &[String]) -> StoreResult<Option<i64>> {
        let ids = sync_ids.to_vec();
        self.read(move |c| queue::next_due(c, &ids)).await
    }

    async fn recover_in_flight(&self, now_ms: i64) -> StoreResult<u64> {
        self.write(move |c| queue::recover_in_flight(c, now_ms)).await
    }

    async fn member(&self, sync_id: &str, key: &str) -> StoreResult<MemberDetail> {
        let (id, key) = (sync_id.to_owned(), key.to_owned());
        self.read(move |c| ledger::member(c, &id, &key)).await
    }

    async fn members(
        &self,
        sync_id: &str,
        state: MemberState,
        after: Option<MemberCursor>,
        limit: u32,
    ) -> StoreResult<Vec<Member>> {
        let id = sync_id.to_owned();
        self.read(move |c| ledger::members(c, &id, state, after, limit)).await
    }

    async fn redrive(&self, sync_id: &str, which: Redrive, now_ms: i64, max: u32) -> StoreResult<Redriven> {
        let id = sync_id.to_owned();
        self.write(move |c| ledger::redrive(c, &id, &which, now_ms, max)).await
    }

    async fn remove_members(
        &self,
        sync_id: &str,
        keys: &[String],
        now_ms: i64,
        flush_ms: i64,
    ) -> StoreResult<Removals> {
        let (id, keys) = (sync_id.to_owned(), keys.to_vec());
        self.write(move |c| ledger::remove(c, &id, &keys, now_ms, flush_ms)).await
    }

    async fn prune_ledger(&self, before_ms: i64, max_rows: u32) -> StoreResult<Pruned> {
        self.write(move |c| ledger::prune(c, before_ms, max_rows)).await
    }

    async fn heartbeat(&self, host_id: &str, ttl_ms: i64) -> StoreResult<u64> {
        let host = host_id.to_owned();
        self.write(move |c| lanes::heartbeat(c, &host, ttl_ms, now_ms())).await
    }

    async fn acquire_lane(&self, connection_id: &str, host_id: &str, ttl_ms: i64) -> StoreResult<LeaseOutcome> {
        let (id, host) = (connection_id.to_owned(), host_id.to_owned());
        self.write(move |c| lanes::acquire_lane(c, &id, &host, ttl_ms, now_ms())).await
    }

    async fn renew_lanes(&self, host_id: &str, ttl_ms: i64) -> StoreResult<Vec<String>> {
        let host = host_id.to_owned();
        self.write(move |c| lanes::renew_lanes(c, &host, ttl_ms, now_ms())).await
    }

    async fn release_lane(&self, connection_id: &str, host_id: &str) -> StoreResult<()> {
        let (id, host) = (connection_id.to_owned(), host_id.to_owned());
        self.write(move |c| lanes::release_lane(c, &id, &host, now_ms())).await
    }

    async fn lane_leases(&self) -> StoreResult<Vec<LaneLease>> {
        self.read(lanes::lane_leases).await
    }

    async fn take_app_slot(&self, app: &str, interval_ms: i64) -> StoreResult<i64> {
        let app = app.to_owned();
        self.write(move |c| lanes::take_app_slot(c, &app, interval_ms, now_ms())).await
    }

    async fn counts(&self, sync_id: &str) -> StoreResult<Counts> {
        let id = sync_id.to_owned();
        self.read(move |c| queue::counts(c, &id)).await
    }

    async fn oldest_pending(&self, sync_id: &str) -> StoreResult<Option<i64>> {
        let id = sync_id.to_owned();
        self.read(move |c| queue::oldest_pending(c, &id)).await
    }

    async fn sync_figures(&self) -> StoreResult<Vec<SyncFigures>> {
        self.read(catalog::sync_figures).await
    }

    async fn connection_health(&self) -> StoreResult<Vec<ConnectionHealth>> {
        self.read(catalog::connection_health).await
    }

    async fn group_figures(&self, by: GroupBy) -> StoreResult<Vec<GroupFigures>> {
        self.read(move |c| figures::group_figures(c, by)).await
    }

    async fn counts_of(&self, sync_ids: &[String]) -> StoreResult<Vec<(String, Counts)>> {
        let ids = sync_ids.to_vec();
        self.read(move |c| figures::counts_of(c, &ids)).await
    }

    async fn record_sync_error(&self, sync_id: &str, reason: &str) -> StoreResult<()> {
        let (id, reason) = (sync_id.to_owned(), reason.to_owned());
        self.write(move |c| queue::record_sync_error(c, &id, &reason, now_ms())).await
    }

    async fn recent_errors(&self, sync_id: &str, limit: usize) -> StoreResult<Vec<UserError>> {
        let id = sync_id.to_owned();
        self.read(move |c| queue::recent_errors(c, &id, limit)).await
    }

    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<ApiKey> {
        let now = now_ms();
        self.write(move |c| access::create_api_key(c, new, now)).await
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<ApiKey> {
        let hash = key_hash.to_owned();
        self.read(move |c| access::api_key_by_hash(c, &hash)).await
    }

    async fn api_keys(&self, workspace_id: &str, after: Option<&str>, limit: u32) -> StoreResult<Vec<ApiKey>> {
        let (id, after) = (workspace_id.to_owned(), after.map(str::to_owned));
        self.read(move |c| access::api_keys(c, &id, after.as_deref(), limit)).await
    }

    async fn delete_api_key(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| access::delete_api_key(c, &id)).await
    }

    async fn create_oauth_state(&self, new: OauthState) -> StoreResult<()> {
        self.write(move |c| access::create_oauth_state(c, new)).await
    }

    async fn take_oauth_state(&self, state_hash: &str, now_ms: i64) -> StoreResult<OauthState> {
        let hash = state_hash.to_owned();
        self.write(move |c| access::take_oauth_state(c, &hash, now_ms)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_writer_syncs_fully_and_enforces_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("s.db"), CredentialKey::generate()).unwrap();
        let (synchronous, foreign_keys, mode) = store
            .write(|c| {
                let int = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).ctx(sql);
                let mode = c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0));
                Ok((int("PRAGMA synchronous")?, int("PRAGMA foreign_keys")?, mode.ctx("journal_mode")?))
            })
            .await
            .unwrap();
        // synchronous 2 = FULL.
        assert_eq!((synchronous, foreign_keys, mode.as_str()), (2, 1, "wal"));
    }

    #[tokio::test]
    async fn a_panicking_operation_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("s.db"), CredentialKey::generate()).unwrap();
        let (panicked, created) = tokio::join!(
            store.write(|c| -> StoreResult<()> {
                c.execute_batch("INSERT INTO workspaces VALUES ('ws_x', 'x', 0)").ctx("x")?;
                panic!("boom")
            }),
            store.create_workspace("Acme"),
        );
        assert!(matches!(panicked, Err(StoreError::Database(m)) if m.contains("panicked")));
        let created = created.unwrap();
        assert!(matches!(store.workspace("ws_x").await, Err(StoreError::NotFound { .. })));
        assert_eq!(store.workspaces(None, 10).await.unwrap(), vec![created]);
    }

    #[tokio::test]
    async fn reads_see_acknowledged_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("s.db"), CredentialKey::generate()).unwrap();
        for i in 0..50 {
            let ws = store.create_workspace(&format!("w{i}")).await.unwrap();
            assert_eq!(store.workspace(&ws.id).await.unwrap(), ws);
        }
    }
}
