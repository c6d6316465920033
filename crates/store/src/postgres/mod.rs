//! The PostgreSQL backend: [`PostgresStore`], for several hosts sharing one database.
//!
//! Why it differs from SQLite: SQLite has one writer thread per file, so "read, decide,
//! write" is atomic by construction. Here several hosts (and several pooled connections per
//! host) write at once, so each operation is one PostgreSQL transaction (READ COMMITTED) that
//! relies on row locks and single statements instead:
//! - every user state change and the counters it moves commit in one transaction; the
//!   `counters` row of a sync is updated last, so transactions queue on it only briefly;
//! - `enter` deduplicates with `INSERT ... ON CONFLICT DO NOTHING` and counts the rows it
//!   actually inserted: a concurrent `enter` of the same key waits for the other to commit
//!   and then counts it as deduplicated;
//! - `claim_batch` selects with `FOR UPDATE SKIP LOCKED`: two hosts claiming from the same
//!   sync each take rows the other has not locked, instead of waiting on (and then
//!   double-claiming, or failing on) the same rows; see `queue.rs`;
//! - `take_oauth_state` is one conditional `UPDATE ... RETURNING`, so exactly one caller
//!   consumes a state;
//! - lane leases are taken with a row lock on the lease (`SELECT ... FOR UPDATE`, or the
//!   insert of a missing one), and fenced claims share-lock that row, so a takeover and the
//!   previous holder's claims are ordered; times are the database's clock (see `lanes.rs`);
//! - migrations run under an advisory lock (see `schema.rs`).
//!
//! Two transactions can still deadlock when they touch the same queue rows in different
//! orders (two intake calls sharing keys in different order, say); PostgreSQL then aborts
//! one, and the store runs it again from the start ([`MAX_ATTEMPTS`] times), which is
//! invisible to the caller because nothing of an aborted transaction was kept.
//!
//! Credentials are encrypted exactly as by SQLite (the crate's `crypto` module, bound to the
//! connection id), so a database copy holds no usable credentials.

mod announce;
mod catalog;
mod figures;
mod lanes;
mod ledger;
mod purge;
mod queue;
mod schema;
mod submissions;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::crypto::CredentialKey;
use crate::{
    ApiKey, Claim, Connection as ConnectionRecord, ConnectionHealth, Counts, EnterOutcome, Entry, GroupBy,
    GroupFigures, Health, LaneLease, LeaseOutcome, Member, MemberCursor, MemberDetail, MemberState, NewApiKey,
    NewConnection, NewSubmission, NewSync, OauthState, Pruned, Purged, QueuedUser, Redrive, Redriven, Removals, Store,
    StoreError, StoreResult, Submission, SyncFigures, SyncRecord, SyncStatus, UserError, UserResult, Workspace,
};

/// Connections each store keeps at most.
const POOL_SIZE: usize = 16;
/// How many times a transaction aborted by a deadlock or a serialization failure is run.
pub const MAX_ATTEMPTS: u32 = 5;

/// A failure inside the backend: the store error, and PostgreSQL's code when it has one (to
/// retry deadlocks).
#[derive(Debug)]
pub(crate) struct Fail {
    error: StoreError,
    code: Option<SqlState>,
}

impl From<StoreError> for Fail {
    fn from(error: StoreError) -> Self {
        Fail { error, code: None }
    }
}

impl Fail {
    fn retryable(&self) -> bool {
        matches!(&self.code, Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
    }
}

/// Adds what was being done to a PostgreSQL error.
pub(crate) trait Ctx<T> {
    /// Maps the error, saying what was being done.
    fn ctx(self, doing: &str) -> Result<T, Fail>;
}

impl<T> Ctx<T> for Result<T, tokio_postgres::Error> {
    fn ctx(self, doing: &str) -> Result<T, Fail> {
        self.map_err(|e| {
            let code = e.code().cloned();
            // `Display` of a server error is only "db error"; the server's message is in the source.
            let detail = match e.as_db_error() {
                Some(db) => db.to_string(),
                None => with_causes(&e),
            };
            Fail { error: StoreError::Database(format!("{doing}: {detail}")), code }
        })
    }
}

/// An error and its causes, `: `-separated (tokio-postgres puts the useful part, such as
/// "connection refused", in the causes).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

use audience_model::now_ms;

/// The PostgreSQL implementation of [`Store`]: a pool of connections to one database. Any
/// number of stores (in one host or several) may share the database.
pub struct PostgresStore {
    pool: Pool,
    /// Where to open the announcement listener's own connection.
    config: tokio_postgres::Config,
    key: Arc<CredentialKey>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/database`,
    /// without TLS) and brings its schema up to date. `key` encrypts connection credentials;
    /// connecting with another key works, but reading credentials then fails with
    /// [`StoreError::Decrypt`].
    pub async fn connect(url: &str, key: CredentialKey) -> StoreResult<PostgresStore> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Database(format!("the PostgreSQL store URL is not valid: {e}")))?;
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Database(format!("creating the PostgreSQL connection pool: {e}")))?;
        let store = PostgresStore { pool, config, key: Arc::new(key) };
        let mut client = store.client().await?;
        schema::migrate(&mut client).await.map_err(|f| f.error)?;
        Ok(store)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| {
            StoreError::Database(format!(
                "connecting to PostgreSQL (is the server running and the URL right?): {}",
                with_causes(&e)
            ))
        })
    }
}

/// Runs `$body` (using `$tx`, a `&tokio_postgres::Transaction`) in one transaction of
/// `$store`, committing on success and running it again when PostgreSQL aborted it for a
/// deadlock or a serialization failure.
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 1;
        loop {
            let outcome: Result<_, Fail> = async {
                let mut client = $store.client().await?;
                let tx = client.transaction().await.ctx("starting a transaction")?;
                let value = {
                    let $tx: &tokio_postgres::Transaction<'_> = &tx;
                    $body.await?
                };
                tx.commit().await.ctx("committing")?;
                Ok(value)
            }
            .await;
            match outcome {
                Err(fail) if fail.retryable() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, error = %fail.error, "transaction aborted by PostgreSQL; running it again");
                    attempt += 1;
                }
                other => break other.map_err(|f| f.error),
            }
        }
    }};
}

/// Runs `$body` (using `$c`, a `&tokio_postgres::Client`) on a pooled connection.
macro_rules! read {
    ($store:expr, |$c:ident| $body:expr) => {{
        let outcome: Result<_, Fail> = async {
            let client = $store.client().await?;
            let $c: &tokio_postgres::Client = &client;
            $body.await
        }
        .await;
        outcome.map_err(|f| f.error)
    }};
}

#[async_trait]
impl Store for PostgresStore {
    async fn announce(&self, connection_id: &str) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute("SELECT pg_notify($1, $2)", &[&announce::CHANNEL, &connection_id])
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Database(format!("announcing news for a connection's lane: {e}")))
    }

    fn announcements(&self) -> Option<tokio::sync::mpsc::Receiver<crate::Announcement>> {
        Some(announce::listen(self.config.clone()))
    }

    async fn create_workspace(&self, name: &str) -> StoreResult<Workspace> {
        let now = now_ms();
        in_tx!(self, |tx| catalog::create_workspace(tx, name, now))
    }

    async fn workspace(&self, id: &str) -> StoreResult<Workspace> {
        read!(self, |c| catalog::workspace(c, id))
    }

    async fn workspaces(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Workspace>> {
        read!(self, |c| catalog::workspaces(c, after, limit))
    }

    async fn create_connection(&self, new: NewConnection) -> StoreResult<ConnectionRecord> {
        let now = now_ms();
        in_tx!(self, |tx| catalog::create_connection(tx, &self.key, new.clone(), now))
    }

    async fn connection(&self, id: &str) -> StoreResult<ConnectionRecord> {
        read!(self, |c| catalog::connection(c, &self.key, id))
    }

    async fn connections(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        read!(self, |c| catalog::connections(c, &self.key, workspace_id, after, limit))
    }

    async fn update_credentials(&self, id: &str, credentials: &[u8]) -> StoreResult<ConnectionRecord> {
        let now = now_ms();
        in_tx!(self, |tx| catalog::update_credentials(tx, &self.key, id, credentials, now))
    }

    async fn set_connection_health(&self, id: &str, health: Health, last_error: Option<&str>) -> StoreResult<()> {
        let now = now_ms();
        in_tx!(self, |tx| catalog::set_connection_health(tx, id, health, last_error, now))
    }

    async fn delete_connection(&self, id: &str) -> StoreResult<()> {
        in_tx!(self, |tx| catalog::delete_connection(tx, id))
    }

    async fn create_sync(&self, new: NewSync) -> StoreResult<SyncRecord> {
        let now = now_ms();
        in_tx!(self, |tx| catalog::create_sync(tx, new.clone(), now))
    }

    async fn sync(&self, id: &str) -> StoreResult<SyncRecord> {
        read!(self, |c| catalog::sync(c, id))
    }

    async fn syncs(&self, workspace_id: &str, after: Option<&str>, limit: u32) -> StoreResult<Vec<SyncRecord>> {
        read!(self, |c| catalog::syncs(c, workspace_id, after, limit))
    }

    async fn syncs_of_connection(&self, connection_id: &str) -> StoreResult<Vec<SyncRecord>> {
        read!(self, |c| catalog::syncs_of_connection(c, connection_id))
    }

    async fn all_syncs(&self) -> StoreResult<Vec<SyncRecord>> {
        read!(self, |c| catalog::all_syncs(c))
    }

    async fn set_sync_status(&self, id: &str, status: SyncStatus, reason: Option<&str>) -> StoreResult<()> {
        in_tx!(self, |tx| catalog::set_sync_status(tx, id, status, reason))
    }

    async fn set_audience_id(&self, id: &str, audience_id: &str) -> StoreResult<()> {
        in_tx!(self, |tx| catalog::set_audience_id(tx, id, audience_id))
    }

    async fn delete_sync(&self, id: &str) -> StoreResult<()> {
        let now = now_ms();
        in_tx!(self, |tx| purge::mark_deleted(tx, id, now))
    }

    async fn purge_deleted(&self, max_rows: u32, connection_id: Option<&str>) -> StoreResult<Purged> {
        in_tx!(self, |tx| purge::purge(tx, max_rows, connection_id))
    }

    async fn enter(&self, sync_id: &str, entry: Entry) -> StoreResult<EnterOutcome> {
        in_tx!(self, |tx| queue::enter(tx, sync_id, &entry))
    }

    async fn claim_batch(&self, sync_id: &str, claim: Claim) -> StoreResult<Vec<QueuedUser>> {
        in_tx!(self, |tx| queue::claim_batch(tx, sync_id, &claim))
    }

    async fn complete(&self, sync_id: &str, results: Vec<UserResult>) -> StoreResult<()> {
        let now = now_ms();
        in_tx!(self, |tx| queue::complete(tx, sync_id, &results, now))
    }

    async fn next_due(&self, sync_ids: &[String]) -> StoreResult<Option<i64>> {
        read!(self, |c| queue::next_due(c, sync_ids))
    }

    async fn submit(&self, sync_id: &str, submission: NewSubmission) -> StoreResult<()> {
        in_tx!(self, |tx| submissions::submit(tx, sync_id, &submission))
    }

    async fn submissions(&self, sync_ids: &[String]) -> StoreResult<Vec<Submission>> {
        read!(self, |c| submissions::submissions(c, sync_ids))
    }

    async fn submission_users(&self, sync_id: &str, submission_id: &str) -> StoreResult<Vec<QueuedUser>> {
        read!(self, |c| submissions::submission_users(c, sync_id, submission_id))
    }

    async fn settle_submission(&self, sync_id: &str, submission_id: &str, results: Vec<UserResult>) -> StoreResult<()> {
        let now = now_ms();
        in_tx!(self, |tx| submissions::settle(tx, sync_id, submission_id, &results, now))
    }

    async fn reopen_submission(&self, sync_id: &str, submission_id: &str) -> StoreResult<Vec<QueuedUser>> {
        in_tx!(self, |tx| submissions::reopen(tx, sync_id, submission_id))
    }

    async fn recover_in_flight(&self, now_ms: i64) -> StoreResult<u64> {
        in_tx!(self, |tx| queue::recover_in_flight(tx, now_ms))
    }

    async fn member(&self, sync_id: &str, key: &str) -> StoreResult<MemberDetail> {
        read!(self, |c| ledger::member(c, sync_id, key))
    }

    async fn members(
        &self,
        sync_id: &str,
        state: MemberState,
        after: Option<MemberCursor>,
        limit: u32,
    ) -> StoreResult<Vec<Member>> {
        read!(self, |c| ledger::members(c, sync_id, state, after, limit))
    }

    async fn redrive(&self, sync_id: &str, which: Redrive, now_ms: i64, max: u32) -> StoreResult<Redriven> {
        in_tx!(self, |tx| ledger::redrive(tx, sync_id, &which, now_ms, max))
    }

    async fn remove_members(
        &self,
        sync_id: &str,
        keys: &[String],
        now_ms: i64,
        flush_ms: i64,
    ) -> StoreResult<Removals> {
        in_tx!(self, |tx| ledger::remove(tx, sync_id, keys, now_ms, flush_ms))
    }

    async fn prune_ledger(&self, before_ms: i64, max_rows: u32) -> StoreResult<Pruned> {
        in_tx!(self, |tx| ledger::prune(tx, before_ms, max_rows))
    }

    async fn heartbeat(&self, host_id: &str, ttl_ms: i64) -> StoreResult<u64> {
        in_tx!(self, |tx| lanes::heartbeat(tx, host_id, ttl_ms))
    }

    async fn acquire_lane(&self, connection_id: &str, host_id: &str, ttl_ms: i64) -> StoreResult<LeaseOutcome> {
        in_tx!(self, |tx| lanes::acquire_lane(tx, connection_id, host_id, ttl_ms))
    }

    async fn renew_lanes(&self, host_id: &str, ttl_ms: i64) -> StoreResult<Vec<String>> {
        in_tx!(self, |tx| lanes::renew_lanes(tx, host_id, ttl_ms))
    }

    async fn release_lane(&self, connection_id: &str, host_id: &str) -> StoreResult<()> {
        in_tx!(self, |tx| lanes::release_lane(tx, connection_id, host_id))
    }

    async fn lane_leases(&self) -> StoreResult<Vec<LaneLease>> {
        read!(self, |c| lanes::lane_leases(c))
    }

    async fn take_app_slot(&self, app: &str, interval_ms: i64) -> StoreResult<i64> {
        read!(self, |c| lanes::take_app_slot(c, app, interval_ms))
    }

    async fn sync_figures(&self) -> StoreResult<Vec<SyncFigures>> {
        read!(self, |c| catalog::sync_figures(c))
    }

    async fn connection_health(&self) -> StoreResult<Vec<ConnectionHealth>> {
        read!(self, |c| catalog::connection_health(c))
    }

    async fn group_figures(&self, by: GroupBy) -> StoreResult<Vec<GroupFigures>> {
        read!(self, |c| figures::group_figures(c, by))
    }

    async fn counts_of(&self, sync_ids: &[String]) -> StoreResult<Vec<(String, Counts)>> {
        read!(self, |c| figures::counts_of(c, sync_ids))
    }

    async fn counts(&self, sync_id: &str) -> StoreResult<Counts> {
        read!(self, |c| queue::counts(c, sync_id))
    }

    async fn oldest_pending(&self, sync_id: &str) -> StoreResult<Option<i64>> {
        read!(self, |c| queue::oldest_pending(c, sync_id))
    }

    async fn record_sync_error(&self, sync_id: &str, reason: &str) -> StoreResult<()> {
        let now = now_ms();
        in_tx!(self, |tx| queue::record_sync_error(tx, sync_id, reason, now))
    }

    async fn recent_errors(&self, sync_id: &str, limit: usize) -> StoreResult<Vec<UserError>> {
        read!(self, |c| queue::recent_errors(c, sync_id, limit))
    }

    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<ApiKey> {
        let now = now_ms();
        in_tx!(self, |tx| catalog::create_api_key(tx, new.clone(), now))
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<ApiKey> {
        read!(self, |c| catalog::api_key_by_hash(c, key_hash))
    }

    async fn api_keys(&self, workspace_id: &str, after: Option<&str>, limit: u32) -> StoreResult<Vec<ApiKey>> {
        read!(self, |c| catalog::api_keys(c, workspace_id, after, limit))
    }

    async fn delete_api_key(&self, id: &str) -> StoreResult<()> {
        in_tx!(self, |tx| catalog::delete_api_key(tx, id))
    }

    async fn create_oauth_state(&self, new: OauthState) -> StoreResult<()> {
        in_tx!(self, |tx| catalog::create_oauth_state(tx, new.clone()))
    }

    async fn take_oauth_state(&self, state_hash: &str, now_ms: i64) -> StoreResult<OauthState> {
        in_tx!(self, |tx| catalog::take_oauth_state(tx, state_hash, now_ms))
    }
}
