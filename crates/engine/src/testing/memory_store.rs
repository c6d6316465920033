//! An in-memory [`Store`] for the engine's tests under tokio's paused time.
//!
//! Why not the SQLite store: it writes through a thread, and while a test waits for that
//! thread tokio sees an idle runtime and jumps the paused clock forward, so timings become
//! arbitrary. This store answers at once, under one lock, so the runtime never idles on it.
//!
//! It implements what lanes use, with the SQLite store's rules (checked by running the store's
//! behaviour suite against it, below): catalog reads and the few catalog writes a lane makes,
//! the queue (`enter`, `claim_batch`, `complete`, `next_due`, `recover_in_flight`, the
//! submissions of asynchronous outcomes) and the ledger it keeps (`member`, `members`,
//! `redrive`, `prune_ledger`), deleting a sync and purging it in chunks, and the
//! counters, which stay conserved after every change (checked after each one). Everything else
//! answers a [`StoreError`].

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use audience_store::{
    ApiKey, Claim, Connection, ConnectionHealth, Counts, EXPIRE_CHUNK, EnterOutcome, Entry, GroupFigures, Health,
    LaneLease, LeaseOutcome, MEMBER_ERRORS, Member, MemberCursor, MemberDetail, MemberState, NewApiKey, NewConnection,
    NewSubmission, NewSync, OauthState, Pruned, Purged, QueuedUser, Redrive, Redriven, RemovalSkip, Removals, Store,
    StoreError, StoreResult, Submission, SyncAction, SyncFigures, SyncRecord, SyncStatus, UserError, UserOutcome,
    UserResult, Workspace, removal,
};

use crate::clock::Clock;

/// Longest error reason kept, in characters (as the SQLite store).
const MAX_REASON_CHARS: usize = 500;

/// The in-memory store.
pub(crate) struct MemoryStore {
    clock: Clock,
    state: Mutex<State>,
    /// Reads a lane makes (see [`MemoryStore::lane_reads`]).
    reads: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct State {
    next_id: u64,
    workspaces: Vec<Workspace>,
    connections: Vec<Connection>,
    /// In creation order (the SQLite store lists syncs in that order).
    syncs: Vec<SyncRecord>,
    queues: HashMap<String, Queue>,
    /// Deleted syncs whose rows are not purged yet, oldest deletion first.
    deleted: Vec<(SyncRecord, Queue)>,
}

/// A page of `items` (sorted by id here): those after `after`, at most `limit`.
fn page<T: Clone>(items: impl Iterator<Item = T>, id: fn(&T) -> &str, after: Option<&str>, limit: u32) -> Vec<T> {
    let mut items: Vec<T> = items.filter(|item| after.is_none_or(|after| id(item) > after)).collect();
    items.sort_by(|a, b| id(a).cmp(id(b)));
    items.truncate(limit as usize);
    items
}

/// One sync's queue (its ledger: every user that entered, one row each), counters and errors.
#[derive(Default)]
struct Queue {
    users: Vec<Row>,
    counts: Counts,
    errors: Vec<UserError>,
    submissions: Vec<Submission>,
}

/// A user of the ledger: pending, in flight, submitted, or done (synced, errored, not synced).
struct Row {
    /// Insertion order (the SQLite rowid), the tie-break of the due order.
    seq: u64,
    key: String,
    payload: Vec<u8>,
    entered_at: i64,
    attempts: u32,
    /// 0 for a user with no wait (new), else the retry time.
    not_before: i64,
    due_at: i64,
    in_flight: bool,
    /// The partner's request id while submitted (then not in flight, not pending).
    submission: Option<String>,
    /// Synced, errored or not synced, and since when: no longer delivered.
    done: Option<(MemberState, i64)>,
    /// The first entry, once the user entered again.
    first_at: Option<i64>,
    entries: u32,
    tried_at: Option<i64>,
    last_error: Option<String>,
    /// The asynchronous request that carried the user to its outcome.
    sent_in: Option<String>,
    /// Being removed (waiting, in flight or submitted while not done; then removed or
    /// removal errored once done).
    removal: bool,
    /// What follows the request the user is in (see `Member::then`).
    then: Option<SyncAction>,
    /// When the removal was last asked.
    asked_at: Option<i64>,
}

impl Row {
    /// Waiting to be added.
    fn pending(&self) -> bool {
        !self.removal && self.waiting()
    }

    /// Waiting to be removed.
    fn waiting_removal(&self) -> bool {
        self.removal && self.waiting()
    }

    fn waiting(&self) -> bool {
        !self.in_flight && self.submission.is_none() && self.done.is_none()
    }

    fn state(&self) -> MemberState {
        match (&self.done, self.removal, self.in_flight, &self.submission) {
            (Some((state, _)), ..) => *state,
            (None, false, true, _) => MemberState::InFlight,
            (None, false, false, Some(_)) => MemberState::Submitted,
            (None, false, false, None) => MemberState::Pending,
            (None, true, true, _) => MemberState::RemovalInFlight,
            (None, true, false, Some(_)) => MemberState::RemovalSubmitted,
            (None, true, false, None) => MemberState::Removing,
        }
    }

    /// The user's removal is asked now, due at `due`: waiting, with the payload they were
    /// added with.
    fn start_removal(&mut self, now: i64, due: i64) {
        self.removal = true;
        (self.in_flight, self.done, self.then, self.tried_at, self.last_error) = (false, None, None, None, None);
        self.sent_in = self.submission.take().or(self.sent_in.take());
        self.asked_at = Some(now);
        self.attempts = 0;
        self.not_before = 0;
        self.due_at = due;
    }

    /// The user entered again while their removal was in a request, which is over: pending,
    /// due now (the entry was counted when they entered).
    fn back_to_adding(&mut self, now: i64) {
        (self.removal, self.in_flight, self.submission, self.done, self.then) = (false, false, None, None, None);
        (self.attempts, self.not_before, self.due_at, self.last_error) = (0, 0, now, None);
    }

    fn member(&self) -> Member {
        Member {
            key: self.key.clone(),
            state: self.state(),
            seq: self.seq as i64,
            first_entered_at: self.first_at.unwrap_or(self.entered_at),
            entered_at: self.entered_at,
            entries: self.entries,
            attempts: self.attempts,
            last_attempt_at: self.tried_at,
            done_at: self.done.map(|(_, at)| at),
            last_error: self.last_error.clone(),
            submission: self.submission.clone().or_else(|| self.sent_in.clone()),
            removal_asked_at: self.asked_at,
            then: self.then,
        }
    }

    /// The user reached `state` (synced or errored) at `now`, after an attempt.
    fn finish(&mut self, state: MemberState, now: i64, error: Option<String>) {
        self.in_flight = false;
        self.sent_in = self.submission.take();
        self.attempts = self.attempts.saturating_add(1);
        self.done = Some((state, now));
        if error.is_some() {
            self.last_error = error;
        }
    }

    /// A fresh entry of a user done with: pending, due at `due`, retry window from `now`.
    fn enter_again(&mut self, payload: Option<Vec<u8>>, now: i64, due: i64) {
        self.first_at = Some(self.first_at.unwrap_or(self.entered_at));
        if let Some(payload) = payload {
            self.payload = payload;
        }
        self.entered_at = now;
        self.not_before = 0;
        self.due_at = due;
        self.attempts = 0;
        self.entries = self.entries.saturating_add(1);
        (self.tried_at, self.done, self.last_error, self.sent_in) = (None, None, None, None);
        (self.removal, self.then, self.asked_at) = (false, None, None);
    }

    fn queued(&self) -> QueuedUser {
        QueuedUser {
            key: self.key.clone(),
            payload: self.payload.clone(),
            entered_at: if self.removal { self.asked_at.unwrap_or(self.entered_at) } else { self.entered_at },
            attempts: self.attempts,
            removal: self.removal,
        }
    }
}

impl Row {
    /// A user new to the ledger, pending, due at `due`.
    fn new(seq: u64, key: &str, payload: Vec<u8>, now: i64, due: i64) -> Self {
        Row {
            seq,
            key: key.to_string(),
            payload,
            entered_at: now,
            attempts: 0,
            not_before: 0,
            due_at: due,
            in_flight: false,
            submission: None,
            done: None,
            first_at: None,
            entries: 1,
            tried_at: None,
            last_error: None,
            sent_in: None,
            removal: false,
            then: None,
            asked_at: None,
        }
    }
}

impl MemoryStore {
    /// An empty store whose own clock (error times) is `clock`.
    pub(crate) fn new(clock: Clock) -> Self {
        Self { clock, state: Mutex::new(State::default()), reads: std::sync::atomic::AtomicU64::new(0) }
    }

    /// How many times a lane's reads (connection, its syncs, next due, claims) were asked.
    pub(crate) fn lane_reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count_read(&self) {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn not_found(kind: &'static str, id: &str) -> StoreError {
    StoreError::NotFound { kind, id: id.to_string() }
}

fn unsupported<T>(what: &str) -> StoreResult<T> {
    Err(StoreError::Database(format!("{what} is not implemented by the engine's in-memory test store")))
}

fn truncate(reason: &str) -> String {
    reason.chars().take(MAX_REASON_CHARS).collect()
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    fn connection_mut(&mut self, id: &str) -> StoreResult<&mut Connection> {
        self.connections.iter_mut().find(|c| c.id == id).ok_or_else(|| not_found("connection", id))
    }

    fn sync_mut(&mut self, id: &str) -> StoreResult<&mut SyncRecord> {
        self.syncs.iter_mut().find(|s| s.id == id).ok_or_else(|| not_found("sync", id))
    }

    /// A sync's queue, after checking the sync exists.
    fn queue(&mut self, sync_id: &str) -> StoreResult<&mut Queue> {
        self.queues.get_mut(sync_id).ok_or_else(|| not_found("sync", sync_id))
    }
}

impl Queue {
    /// Panics (test code) when a change broke the books.
    fn check(&self, sync_id: &str) {
        let c = &self.counts;
        assert!(c.conserved(), "counts of {sync_id} not conserved: {c:?}");
        assert_eq!(c.users, self.users.len() as u64, "users of {sync_id} disagree with its ledger");
        let count = |f: &dyn Fn(&Row) -> bool| self.users.iter().filter(|r| f(r)).count() as u64;
        // A user who entered again while being removed counts as pending from that moment.
        let re_entered = |r: &Row| r.removal && r.done.is_none() && r.then == Some(SyncAction::Add);
        let pending = count(&|r| r.pending() || re_entered(r));
        let in_flight = count(&|r| r.in_flight && !r.removal);
        let submitted = count(&|r| r.submission.is_some() && !r.removal);
        assert_eq!(
            (c.pending, c.in_flight, c.submitted),
            (pending, in_flight, submitted),
            "counters of {sync_id} disagree with its queue"
        );
        let removing = count(&|r| {
            (r.removal && r.done.is_none() && r.then != Some(SyncAction::Add))
                || (!r.removal && r.done.is_none() && r.then == Some(SyncAction::Remove))
        });
        let rows = (
            count(&|r| r.state() == MemberState::Synced),
            removing,
            count(&|r| r.state() == MemberState::Removed),
            count(&|r| r.state() == MemberState::RemovalErrored),
        );
        assert_eq!(
            (c.in_audience, c.removing, c.removed, c.removal_errored),
            rows,
            "audience counters of {sync_id} disagree with its ledger"
        );
    }

    /// Records what happened to users held as `held` says (in flight, or in one submission):
    /// added users are synced or errored and stay in the ledger (or, their removal asked
    /// meanwhile, wait for it), retried ones are pending again; removed users are removed or
    /// removal errored, or wait again. Results for other users are ignored; returns how many
    /// added and removed users left where they were held.
    fn record_outcomes(&mut self, results: Vec<UserResult>, now: i64, held: impl Fn(&Row) -> bool) -> (u64, u64) {
        let (mut adds, mut removals) = (0, 0);
        for result in results {
            let Some(i) = self.users.iter().position(|r| r.key == result.key && held(r)) else { continue };
            if self.users[i].removal {
                self.record_removal(i, result, now);
                removals += 1;
                continue;
            }
            let then_remove = self.users[i].then == Some(SyncAction::Remove);
            match result.outcome {
                UserOutcome::Synced => {
                    self.users[i].finish(MemberState::Synced, now, None);
                    self.counts.synced += 1;
                    if then_remove {
                        let asked = self.users[i].asked_at.unwrap_or(now);
                        self.users[i].start_removal(asked, now);
                    } else {
                        self.counts.in_audience += 1;
                    }
                }
                UserOutcome::Errored(reason) => {
                    self.users[i].finish(MemberState::Errored, now, Some(truncate(&reason)));
                    self.record_error(&result.key, &reason, now);
                    self.counts.errored += 1;
                    if then_remove {
                        let asked = self.users[i].asked_at.unwrap_or(now);
                        self.users[i].start_removal(asked, now);
                    }
                }
                UserOutcome::Retry { not_before_ms, error } => {
                    let row = &mut self.users[i];
                    row.last_error = Some(truncate(&error));
                    row.in_flight = false;
                    row.submission = None;
                    row.attempts = row.attempts.saturating_add(1);
                    row.not_before = not_before_ms;
                    row.due_at = not_before_ms;
                    self.counts.pending += 1;
                    self.counts.retries += 1;
                }
                UserOutcome::Unsent => {
                    let row = &mut self.users[i];
                    row.in_flight = false;
                    row.submission = None;
                    self.counts.pending += 1;
                }
            }
            adds += 1;
        }
        (adds, removals)
    }

    /// A removal's outcome (see [`Queue::record_outcomes`]).
    fn record_removal(&mut self, i: usize, result: UserResult, now: i64) {
        if self.users[i].then == Some(SyncAction::Add) {
            self.users[i].back_to_adding(now);
            return;
        }
        match result.outcome {
            UserOutcome::Synced => {
                self.users[i].finish(MemberState::Removed, now, None);
                self.counts.removing -= 1;
                self.counts.removed += 1;
            }
            UserOutcome::Errored(reason) => {
                let reason = removal::failed_removal_reason(&reason);
                self.users[i].finish(MemberState::RemovalErrored, now, Some(reason.clone()));
                self.record_error(&result.key, &reason, now);
                self.counts.removing -= 1;
                self.counts.removal_errored += 1;
            }
            UserOutcome::Retry { not_before_ms, error } => {
                let row = &mut self.users[i];
                row.last_error = Some(truncate(&error));
                (row.in_flight, row.submission) = (false, None);
                row.attempts = row.attempts.saturating_add(1);
                (row.not_before, row.due_at) = (not_before_ms, not_before_ms);
            }
            UserOutcome::Unsent => {
                let row = &mut self.users[i];
                (row.in_flight, row.submission) = (false, None);
            }
        }
    }

    /// Waiting removals asked before the retry window become removal errored, at most a
    /// chunk, oldest ask first. Returns whether the chunk was full.
    fn expire_removals(&mut self, claim: &Claim) -> bool {
        let mut expired: Vec<(i64, u64, String)> = self
            .users
            .iter()
            .filter(|r| r.waiting_removal() && r.asked_at.is_some_and(|at| at < claim.expire_before_ms))
            .map(|r| (r.due_at, r.seq, r.key.clone()))
            .collect();
        expired.sort();
        expired.truncate(EXPIRE_CHUNK as usize);
        let reason = removal::failed_removal_reason(&claim.expired_reason);
        for (_, seq, key) in &expired {
            if let Some(row) = self.users.iter_mut().find(|r| r.seq == *seq) {
                row.done = Some((MemberState::RemovalErrored, claim.now_ms));
                row.last_error = Some(reason.clone());
            }
            self.record_error(key, &reason, claim.now_ms);
        }
        self.counts.removing -= expired.len() as u64;
        self.counts.removal_errored += expired.len() as u64;
        expired.len() == EXPIRE_CHUNK as usize
    }

    /// The row's user index of `key`.
    fn find(&self, key: &str) -> Option<usize> {
        self.users.iter().position(|r| r.key == key)
    }

    fn record_error(&mut self, key: &str, reason: &str, at: i64) {
        self.errors.push(UserError { key: key.to_string(), reason: truncate(reason), at });
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_workspace(&self, name: &str) -> StoreResult<Workspace> {
        let mut state = self.state.lock();
        let workspace = Workspace { id: state.id("ws_"), name: name.to_string(), created_at: self.clock.now_ms() };
        state.workspaces.push(workspace.clone());
        Ok(workspace)
    }

    async fn workspace(&self, id: &str) -> StoreResult<Workspace> {
        let state = self.state.lock();
        state.workspaces.iter().find(|w| w.id == id).cloned().ok_or_else(|| not_found("workspace", id))
    }

    async fn workspaces(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Workspace>> {
        Ok(page(self.state.lock().workspaces.iter().cloned(), |w| w.id.as_str(), after, limit))
    }

    async fn create_connection(&self, new: NewConnection) -> StoreResult<Connection> {
        let mut state = self.state.lock();
        if !state.workspaces.iter().any(|w| w.id == new.workspace_id) {
            return Err(not_found("workspace", &new.workspace_id));
        }
        let now = self.clock.now_ms();
        let connection = Connection {
            id: state.id("conn_"),
            workspace_id: new.workspace_id,
            destination: new.destination,
            name: new.name,
            credentials: new.credentials,
            credentials_version: 1,
            health: Health::Ok,
            last_error: None,
            created_at: now,
            updated_at: now,
        };
        state.connections.push(connection.clone());
        Ok(connection)
    }

    async fn connection(&self, id: &str) -> StoreResult<Connection> {
        self.count_read();
        let state = self.state.lock();
        state.connections.iter().find(|c| c.id == id).cloned().ok_or_else(|| not_found("connection", id))
    }

    async fn connections(&self, workspace_id: &str, after: Option<&str>, limit: u32) -> StoreResult<Vec<Connection>> {
        let state = self.state.lock();
        if !state.workspaces.iter().any(|w| w.id == workspace_id) {
            return Err(not_found("workspace", workspace_id));
        }
        let mine = state.connections.iter().filter(|c| c.workspace_id == workspace_id).cloned();
        Ok(page(mine, |c| c.id.as_str(), after, limit))
    }

    async fn update_credentials(&self, id: &str, credentials: &[u8]) -> StoreResult<Connection> {
        let now = self.clock.now_ms();
        let mut state = self.state.lock();
        let connection = state.connection_mut(id)?;
        connection.credentials = credentials.to_vec();
        connection.credentials_version += 1;
        connection.health = Health::Ok;
        connection.last_error = None;
        connection.updated_at = now;
        Ok(connection.clone())
    }

    async fn set_connection_health(&self, id: &str, health: Health, last_error: Option<&str>) -> StoreResult<()> {
        let now = self.clock.now_ms();
        let mut state = self.state.lock();
        let connection = state.connection_mut(id)?;
        connection.health = health;
        connection.last_error = last_error.map(str::to_string);
        connection.updated_at = now;
        Ok(())
    }

    async fn delete_connection(&self, _id: &str) -> StoreResult<()> {
        unsupported("delete_connection")
    }

    async fn create_sync(&self, new: NewSync) -> StoreResult<SyncRecord> {
        let mut state = self.state.lock();
        if !state.workspaces.iter().any(|w| w.id == new.workspace_id) {
            return Err(not_found("workspace", &new.workspace_id));
        }
        let connection = state
            .connections
            .iter()
            .find(|c| c.id == new.connection_id && c.workspace_id == new.workspace_id)
            .ok_or_else(|| not_found("connection", &new.connection_id))?;
        if connection.destination != new.destination {
            return Err(StoreError::Conflict(format!(
                "connection {} is for destination {:?}, not {:?}",
                connection.id, connection.destination, new.destination
            )));
        }
        let sync = SyncRecord {
            id: state.id("sync_"),
            workspace_id: new.workspace_id,
            connection_id: new.connection_id,
            destination: new.destination,
            account_id: new.account_id,
            audience: new.audience,
            audience_id: new.audience_id,
            action: new.action,
            match_fields: new.match_fields,
            reentry: new.reentry,
            status: SyncStatus::Active,
            status_reason: None,
            created_at: self.clock.now_ms(),
        };
        state.queues.insert(sync.id.clone(), Queue::default());
        state.syncs.push(sync.clone());
        Ok(sync)
    }

    async fn sync(&self, id: &str) -> StoreResult<SyncRecord> {
        let state = self.state.lock();
        state.syncs.iter().find(|s| s.id == id).cloned().ok_or_else(|| not_found("sync", id))
    }

    async fn syncs(&self, workspace_id: &str, after: Option<&str>, limit: u32) -> StoreResult<Vec<SyncRecord>> {
        let state = self.state.lock();
        if !state.workspaces.iter().any(|w| w.id == workspace_id) {
            return Err(not_found("workspace", workspace_id));
        }
        let mine = state.syncs.iter().filter(|s| s.workspace_id == workspace_id).cloned();
        Ok(page(mine, |s| s.id.as_str(), after, limit))
    }

    async fn syncs_of_connection(&self, connection_id: &str) -> StoreResult<Vec<SyncRecord>> {
        self.count_read();
        let state = self.state.lock();
        if !state.connections.iter().any(|c| c.id == connection_id) {
            return Err(not_found("connection", connection_id));
        }
        Ok(state.syncs.iter().filter(|s| s.connection_id == connection_id).cloned().collect())
    }

    async fn all_syncs(&self) -> StoreResult<Vec<SyncRecord>> {
        Ok(self.state.lock().syncs.clone())
    }

    async fn set_sync_status(&self, id: &str, status: SyncStatus, reason: Option<&str>) -> StoreResult<()> {
        let mut state = self.state.lock();
        let sync = state.sync_mut(id)?;
        sync.status = status;
        sync.status_reason = reason.map(str::to_string);
        Ok(())
    }

    async fn set_audience_id(&self, id: &str, audience_id: &str) -> StoreResult<()> {
        let mut state = self.state.lock();
        state.sync_mut(id)?.audience_id = Some(audience_id.to_string());
        Ok(())
    }

    async fn delete_sync(&self, id: &str) -> StoreResult<()> {
        let mut state = self.state.lock();
        let at = state.syncs.iter().position(|s| s.id == id).ok_or_else(|| not_found("sync", id))?;
        let sync = state.syncs.remove(at);
        let queue = state.queues.remove(id).unwrap_or_default();
        state.deleted.push((sync, queue));
        Ok(())
    }

    async fn purge_deleted(&self, max_rows: u32, connection_id: Option<&str>) -> StoreResult<Purged> {
        let mut state = self.state.lock();
        let mut budget = max_rows.max(1) as usize;
        let mut purged = Purged::default();
        let mine = |s: &SyncRecord| connection_id.is_none_or(|c| s.connection_id == c);
        while let Some(at) = state.deleted.iter().position(|(s, _)| mine(s)) {
            // Rows go from the front of each table, as many as the budget allows.
            let queue = &mut state.deleted[at].1;
            let users = queue.users.len().min(budget);
            queue.users.drain(..users);
            budget -= users;
            let errors = queue.errors.len().min(budget);
            queue.errors.drain(..errors);
            budget -= errors;
            let submissions = queue.submissions.len().min(budget);
            queue.submissions.drain(..submissions);
            budget -= submissions;
            purged.rows += (users + errors + submissions) as u64;
            if !(queue.users.is_empty() && queue.errors.is_empty() && queue.submissions.is_empty()) {
                purged.more = true;
                return Ok(purged);
            }
            state.deleted.remove(at);
            purged.syncs += 1;
        }
        purged.more = state.deleted.iter().any(|(s, _)| mine(s));
        Ok(purged)
    }

    async fn enter(&self, sync_id: &str, entry: Entry) -> StoreResult<EnterOutcome> {
        let mut state = self.state.lock();
        let first_seq = state.next_id;
        let queue = state.queue(sync_id)?;
        let due = entry.now_ms.saturating_add(entry.flush_ms);
        let mut seq = first_seq;
        let (mut queued, mut already) = (0u64, 0u64);
        for user in entry.ready.iter() {
            let Some(i) = queue.find(&user.key) else {
                seq += 1;
                queue.users.push(Row::new(seq, &user.key, user.payload.clone(), entry.now_ms, due));
                queue.counts.users += 1;
                queued += 1;
                continue;
            };
            let row = &mut queue.users[i];
            let c = &mut queue.counts;
            match row.state() {
                MemberState::Pending | MemberState::InFlight | MemberState::Submitted => {
                    if row.then == Some(SyncAction::Remove) {
                        (row.then, row.asked_at) = (None, None);
                        c.removing -= 1;
                    }
                    continue;
                }
                MemberState::Synced if entry.skip_synced => {
                    already += 1;
                    continue;
                }
                MemberState::RemovalInFlight | MemberState::RemovalSubmitted => {
                    if row.then == Some(SyncAction::Add) {
                        continue;
                    }
                    row.then = Some(SyncAction::Add);
                    row.payload = user.payload.clone();
                    row.first_at = Some(row.first_at.unwrap_or(row.entered_at));
                    row.entered_at = entry.now_ms;
                    row.entries = row.entries.saturating_add(1);
                    c.removing -= 1;
                }
                state => {
                    match state {
                        MemberState::Synced => c.in_audience -= 1,
                        MemberState::Removing => c.removing -= 1,
                        MemberState::Removed => c.removed -= 1,
                        MemberState::RemovalErrored => c.removal_errored -= 1,
                        _ => {}
                    }
                    row.enter_again(Some(user.payload.clone()), entry.now_ms, due);
                }
            }
            queued += 1;
        }
        for (key, reason) in &entry.not_synced {
            if queue.find(key).is_none() {
                seq += 1;
                let mut row = Row::new(seq, key, Vec::new(), entry.now_ms, 0);
                row.done = Some((MemberState::NotSynced, entry.now_ms));
                row.last_error = Some(truncate(reason));
                queue.users.push(row);
                queue.counts.users += 1;
            }
        }
        let outcome = EnterOutcome {
            queued,
            deduplicated: entry.ready.len() as u64 - queued - already,
            not_synced: entry.not_synced.len() as u64,
            already_in_audience: already,
        };
        let c = &mut queue.counts;
        c.already_in_audience += already;
        c.proceeded += (entry.ready.len() + entry.not_synced.len()) as u64;
        c.entered += outcome.queued + outcome.not_synced;
        c.pending += outcome.queued;
        c.not_synced += outcome.not_synced;
        c.deduplicated += outcome.deduplicated;
        queue.check(sync_id);
        state.next_id = seq;
        Ok(outcome)
    }

    async fn claim_batch(&self, sync_id: &str, claim: Claim) -> StoreResult<Vec<QueuedUser>> {
        self.count_read();
        let mut state = self.state.lock();
        let queue = state.queue(sync_id)?;
        if claim.lane_owner.is_some() {
            return unsupported("a claim fenced by a lane lease");
        }
        // Pending users past the retry window are errored first, oldest entry first, at most a
        // chunk of them; a claim that errored a full chunk hands out nothing.
        let mut expired: Vec<(i64, u64, String)> = queue
            .users
            .iter()
            .filter(|r| r.pending() && r.entered_at < claim.expire_before_ms)
            .map(|r| (r.entered_at, r.seq, r.key.clone()))
            .collect();
        expired.sort();
        expired.truncate(EXPIRE_CHUNK as usize);
        let gone: std::collections::HashSet<u64> = expired.iter().map(|(_, seq, _)| *seq).collect();
        let reason = truncate(&claim.expired_reason);
        for row in queue.users.iter_mut().filter(|r| gone.contains(&r.seq)) {
            row.done = Some((MemberState::Errored, claim.now_ms));
            row.last_error = Some(reason.clone());
        }
        for (_, _, key) in &expired {
            queue.record_error(key, &claim.expired_reason, claim.now_ms);
        }
        queue.counts.pending -= expired.len() as u64;
        queue.counts.errored += expired.len() as u64;
        queue.check(sync_id);
        if claim.max == 0 || expired.len() == EXPIRE_CHUNK as usize || queue.expire_removals(&claim) {
            queue.check(sync_id);
            return Ok(Vec::new());
        }
        queue.check(sync_id);
        // Removals first, a batch of their own, when the first is due or the batch is full.
        let mut waiting: Vec<usize> = (0..queue.users.len())
            .filter(|&i| {
                let row = &queue.users[i];
                row.waiting_removal() && (row.due_at <= claim.now_ms || row.not_before == 0)
            })
            .collect();
        waiting.sort_by_key(|&i| (queue.users[i].due_at, queue.users[i].seq));
        waiting.truncate(claim.max);
        if waiting.first().is_some_and(|&i| queue.users[i].due_at <= claim.now_ms) || waiting.len() >= claim.max {
            let mut batch = Vec::with_capacity(waiting.len());
            for i in waiting {
                let row = &mut queue.users[i];
                row.in_flight = true;
                row.tried_at = Some(claim.now_ms);
                batch.push(row.queued());
            }
            queue.check(sync_id);
            return Ok(batch);
        }
        let mut pending: Vec<usize> = (0..queue.users.len()).filter(|&i| queue.users[i].pending()).collect();
        pending.sort_by_key(|&i| (queue.users[i].due_at, queue.users[i].seq));
        // Already due, in due order; then, to fill the batch, users with no wait not due yet.
        let mut rows: Vec<usize> =
            pending.iter().copied().filter(|&i| queue.users[i].due_at <= claim.now_ms).take(claim.max).collect();
        if rows.len() < claim.max {
            let first_is_due = !rows.is_empty();
            let room = claim.max - rows.len();
            rows.extend(
                pending
                    .iter()
                    .copied()
                    .filter(|&i| queue.users[i].not_before == 0 && queue.users[i].due_at > claim.now_ms)
                    .take(room),
            );
            if !first_is_due && rows.len() < claim.max {
                // A partial batch whose first user is not due yet waits for its flush time.
                return Ok(Vec::new());
            }
        }
        let mut batch = Vec::with_capacity(rows.len());
        for i in rows {
            let row = &mut queue.users[i];
            row.in_flight = true;
            row.tried_at = Some(claim.now_ms);
            batch.push(row.queued());
        }
        queue.counts.pending -= batch.len() as u64;
        queue.counts.in_flight += batch.len() as u64;
        queue.check(sync_id);
        Ok(batch)
    }

    async fn complete(&self, sync_id: &str, results: Vec<UserResult>) -> StoreResult<()> {
        let now = self.clock.now_ms();
        let mut state = self.state.lock();
        let queue = state.queue(sync_id)?;
        // Outcomes for users not in flight (twice, pending, unknown) are ignored.
        queue.counts.in_flight -= queue.record_outcomes(results, now, |r| r.in_flight).0;
        queue.check(sync_id);
        Ok(())
    }

    async fn next_due(&self, sync_ids: &[String]) -> StoreResult<Option<i64>> {
        self.count_read();
        let state = self.state.lock();
        Ok(sync_ids
            .iter()
            .filter_map(|id| state.queues.get(id))
            .flat_map(|q| q.users.iter().filter(|r| r.pending() || r.waiting_removal()).map(|r| r.due_at))
            .min())
    }

    async fn submit(&self, sync_id: &str, submission: NewSubmission) -> StoreResult<()> {
        let mut state = self.state.lock();
        let queue = state.queue(sync_id)?;
        if queue.submissions.iter().any(|s| s.id == submission.id) {
            return Err(StoreError::Conflict(format!("sync {sync_id} already has a submission {:?}", submission.id)));
        }
        let (mut n, mut adds) = (0, 0);
        for row in queue.users.iter_mut().filter(|r| r.in_flight && submission.keys.contains(&r.key)) {
            row.in_flight = false;
            row.submission = Some(submission.id.clone());
            n += 1;
            adds += u64::from(!row.removal);
        }
        queue.counts.in_flight -= adds;
        queue.counts.submitted += adds;
        queue.submissions.push(Submission {
            sync_id: sync_id.to_string(),
            id: submission.id,
            users: n,
            attempt: submission.attempt,
            submitted_at_ms: submission.now_ms,
            check_at_ms: submission.check_at_ms,
        });
        queue.check(sync_id);
        Ok(())
    }

    async fn submissions(&self, sync_ids: &[String]) -> StoreResult<Vec<Submission>> {
        let state = self.state.lock();
        let mut all: Vec<Submission> =
            sync_ids.iter().filter_map(|id| state.queues.get(id)).flat_map(|q| q.submissions.clone()).collect();
        all.sort_by(|a, b| (a.submitted_at_ms, &a.sync_id, &a.id).cmp(&(b.submitted_at_ms, &b.sync_id, &b.id)));
        Ok(all)
    }

    async fn submission_users(&self, sync_id: &str, submission_id: &str) -> StoreResult<Vec<QueuedUser>> {
        let state = self.state.lock();
        Ok(state.queues.get(sync_id).map_or_else(Vec::new, |q| {
            q.users.iter().filter(|r| r.submission.as_deref() == Some(submission_id)).map(Row::queued).collect()
        }))
    }

    async fn settle_submission(&self, sync_id: &str, submission_id: &str, results: Vec<UserResult>) -> StoreResult<()> {
        let now = self.clock.now_ms();
        let mut state = self.state.lock();
        let queue = state.queue(sync_id)?;
        let Some(at) = queue.submissions.iter().position(|s| s.id == submission_id) else { return Ok(()) };
        queue.submissions.remove(at);
        queue.counts.submitted -=
            queue.record_outcomes(results, now, |r| r.submission.as_deref() == Some(submission_id)).0;
        for row in queue.users.iter_mut().filter(|r| r.submission.as_deref() == Some(submission_id)) {
            if row.removal && row.then == Some(SyncAction::Add) {
                row.back_to_adding(now);
                continue;
            }
            row.submission = None;
            row.due_at = now;
            if row.removal {
                row.not_before = 0;
                continue;
            }
            row.not_before = now;
            queue.counts.submitted -= 1;
            queue.counts.pending += 1;
        }
        queue.check(sync_id);
        Ok(())
    }

    async fn reopen_submission(&self, sync_id: &str, submission_id: &str) -> StoreResult<Vec<QueuedUser>> {
        let mut state = self.state.lock();
        let Ok(queue) = state.queue(sync_id) else { return Ok(Vec::new()) };
        let Some(at) = queue.submissions.iter().position(|s| s.id == submission_id) else { return Ok(Vec::new()) };
        queue.submissions.remove(at);
        let mut users = Vec::new();
        for row in queue.users.iter_mut().filter(|r| r.submission.as_deref() == Some(submission_id)) {
            row.submission = None;
            row.in_flight = true;
            users.push(row.queued());
        }
        let adds = users.iter().filter(|u| !u.removal).count() as u64;
        queue.counts.submitted -= adds;
        queue.counts.in_flight += adds;
        queue.check(sync_id);
        Ok(users)
    }

    async fn recover_in_flight(&self, now_ms: i64) -> StoreResult<u64> {
        let mut state = self.state.lock();
        let mut total = 0;
        for (sync_id, queue) in state.queues.iter_mut() {
            let mut n = 0;
            for row in queue.users.iter_mut().filter(|r| r.in_flight) {
                total += 1;
                if row.removal {
                    if row.then == Some(SyncAction::Add) {
                        row.back_to_adding(now_ms);
                    } else {
                        (row.in_flight, row.not_before, row.due_at) = (false, 0, now_ms);
                    }
                    continue;
                }
                row.in_flight = false;
                row.not_before = now_ms;
                row.due_at = now_ms;
                n += 1;
            }
            queue.counts.in_flight -= n;
            queue.counts.pending += n;
            queue.check(sync_id);
        }
        Ok(total)
    }

    async fn member(&self, sync_id: &str, key: &str) -> StoreResult<MemberDetail> {
        let state = self.state.lock();
        let queue = state.queues.get(sync_id).ok_or_else(|| not_found("sync", sync_id))?;
        let row = queue.users.iter().find(|r| r.key == key).ok_or_else(|| not_found("user", key))?;
        let errors = queue.errors.iter().rev().filter(|e| e.key == key).take(MEMBER_ERRORS).cloned().collect();
        Ok(MemberDetail { member: row.member(), payload: row.payload.clone(), errors })
    }

    async fn members(
        &self,
        sync_id: &str,
        wanted: MemberState,
        after: Option<MemberCursor>,
        limit: u32,
    ) -> StoreResult<Vec<Member>> {
        let state = self.state.lock();
        let queue = state.queues.get(sync_id).ok_or_else(|| not_found("sync", sync_id))?;
        let after = after.map_or((i64::MIN, i64::MIN), |c| (c.entered_at, c.seq));
        let mut found: Vec<Member> = queue
            .users
            .iter()
            .filter(|r| r.state() == wanted && (r.entered_at, r.seq as i64) > after)
            .map(Row::member)
            .collect();
        found.sort_by_key(|m| (m.entered_at, m.seq));
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn redrive(&self, sync_id: &str, which: Redrive, now_ms: i64, max: u32) -> StoreResult<Redriven> {
        let mut state = self.state.lock();
        let queue = state.queue(sync_id)?;
        let mut done = Redriven::default();
        let chosen: Vec<usize> = match &which {
            Redrive::Errored => {
                let max = max.max(1) as usize;
                let mut errored: Vec<usize> =
                    (0..queue.users.len()).filter(|&i| queue.users[i].state() == MemberState::Errored).collect();
                errored.sort_by_key(|&i| (queue.users[i].entered_at, queue.users[i].seq));
                done.more = errored.len() >= max;
                errored.truncate(max);
                errored
            }
            Redrive::Keys(keys) => {
                let mut seen = std::collections::HashSet::new();
                let mut chosen = Vec::new();
                for key in keys.iter().filter(|k| seen.insert(k.as_str())) {
                    match queue.find(key) {
                        Some(i) if matches!(queue.users[i].state(), MemberState::Synced | MemberState::Errored) => {
                            chosen.push(i)
                        }
                        _ => done.skipped += 1,
                    }
                }
                chosen
            }
        };
        for &i in &chosen {
            if queue.users[i].state() == MemberState::Synced {
                queue.counts.in_audience -= 1;
            }
            queue.users[i].enter_again(None, now_ms, now_ms);
        }
        done.users = chosen.len() as u64;
        queue.counts.entered += done.users;
        queue.counts.pending += done.users;
        queue.check(sync_id);
        Ok(done)
    }

    async fn remove_members(
        &self,
        sync_id: &str,
        keys: &[String],
        now_ms: i64,
        flush_ms: i64,
    ) -> StoreResult<Removals> {
        let mut state = self.state.lock();
        let queue = state.queue(sync_id)?;
        let mut done = Removals::default();
        let mut seen = std::collections::HashSet::new();
        for key in keys.iter().filter(|k| seen.insert(k.as_str())) {
            let Some(i) = queue.find(key) else {
                done.skipped.push((key.clone(), RemovalSkip::Unknown));
                continue;
            };
            let row = &mut queue.users[i];
            match removal::step_for(row.state(), row.then) {
                removal::Step::Remove => {
                    match row.state() {
                        MemberState::Synced => queue.counts.in_audience -= 1,
                        MemberState::RemovalErrored => queue.counts.removal_errored -= 1,
                        _ => {}
                    }
                    row.start_removal(now_ms, now_ms.saturating_add(flush_ms));
                }
                removal::Step::RemoveAfter => (row.then, row.asked_at) = (Some(SyncAction::Remove), Some(now_ms)),
                removal::Step::Skip(why) => {
                    done.skipped.push((key.clone(), why));
                    continue;
                }
            }
            queue.counts.removing += 1;
            done.removing += 1;
        }
        queue.check(sync_id);
        Ok(done)
    }

    async fn prune_ledger(&self, before_ms: i64, max_rows: u32) -> StoreResult<Pruned> {
        let mut state = self.state.lock();
        let mut budget = max_rows.max(1) as usize;
        let mut pruned = Pruned::default();
        let ids: Vec<String> = state.syncs.iter().map(|s| s.id.clone()).collect();
        for id in &ids {
            let queue = state.queue(id)?;
            let history = [MemberState::Errored, MemberState::Removed, MemberState::RemovalErrored];
            let mut old: Vec<(i64, u64)> = queue
                .users
                .iter()
                .filter(|r| {
                    history.contains(&r.state())
                        && r.entered_at < before_ms
                        && r.done.is_some_and(|(_, at)| at < before_ms)
                })
                .map(|r| (r.entered_at, r.seq))
                .collect();
            old.sort();
            old.truncate(budget);
            let gone: std::collections::HashSet<u64> = old.iter().map(|(_, seq)| *seq).collect();
            for row in queue.users.iter().filter(|r| gone.contains(&r.seq)) {
                match row.state() {
                    MemberState::Removed => queue.counts.removed -= 1,
                    MemberState::RemovalErrored => queue.counts.removal_errored -= 1,
                    _ => {}
                }
            }
            queue.users.retain(|r| !gone.contains(&r.seq));
            queue.counts.users -= gone.len() as u64;
            queue.check(id);
            pruned.rows += gone.len() as u64;
            budget -= gone.len();
            if budget == 0 {
                pruned.more = true;
                return Ok(pruned);
            }
        }
        for id in &ids {
            let queue = state.queue(id)?;
            let old = queue.errors.iter().take(budget).take_while(|e| e.at < before_ms).count();
            queue.errors.drain(..old);
            pruned.rows += old as u64;
            budget -= old;
            if budget == 0 {
                pruned.more = true;
                return Ok(pruned);
            }
        }
        Ok(pruned)
    }

    async fn take_app_slot(&self, _app: &str, _interval_ms: i64) -> StoreResult<i64> {
        unsupported("take_app_slot")
    }

    async fn heartbeat(&self, _host_id: &str, _ttl_ms: i64) -> StoreResult<u64> {
        unsupported("heartbeat")
    }

    async fn acquire_lane(&self, _connection_id: &str, _host_id: &str, _ttl_ms: i64) -> StoreResult<LeaseOutcome> {
        unsupported("acquire_lane")
    }

    async fn renew_lanes(&self, _host_id: &str, _ttl_ms: i64) -> StoreResult<Vec<String>> {
        unsupported("renew_lanes")
    }

    async fn release_lane(&self, _connection_id: &str, _host_id: &str) -> StoreResult<()> {
        unsupported("release_lane")
    }

    async fn lane_leases(&self) -> StoreResult<Vec<LaneLease>> {
        unsupported("lane_leases")
    }

    async fn counts(&self, sync_id: &str) -> StoreResult<Counts> {
        let state = self.state.lock();
        state.queues.get(sync_id).map(|q| q.counts).ok_or_else(|| not_found("sync", sync_id))
    }

    async fn oldest_pending(&self, sync_id: &str) -> StoreResult<Option<i64>> {
        let state = self.state.lock();
        let queue = state.queues.get(sync_id).ok_or_else(|| not_found("sync", sync_id))?;
        Ok(queue.users.iter().filter(|r| r.state().active()).map(|r| r.entered_at).min())
    }

    async fn record_sync_error(&self, sync_id: &str, reason: &str) -> StoreResult<()> {
        let mut state = self.state.lock();
        let queue = state.queues.get_mut(sync_id).ok_or_else(|| not_found("sync", sync_id))?;
        queue.errors.push(UserError { key: String::new(), reason: truncate(reason), at: audience_model::now_ms() });
        Ok(())
    }

    async fn recent_errors(&self, sync_id: &str, limit: usize) -> StoreResult<Vec<UserError>> {
        let state = self.state.lock();
        let queue = state.queues.get(sync_id).ok_or_else(|| not_found("sync", sync_id))?;
        Ok(queue.errors.iter().rev().take(limit).cloned().collect())
    }

    async fn sync_figures(&self) -> StoreResult<Vec<SyncFigures>> {
        unsupported("sync_figures")
    }

    async fn group_figures(&self, _by: audience_store::GroupBy) -> StoreResult<Vec<GroupFigures>> {
        unsupported("group_figures")
    }

    async fn counts_of(&self, sync_ids: &[String]) -> StoreResult<Vec<(String, Counts)>> {
        let state = self.state.lock();
        Ok(sync_ids.iter().filter_map(|id| Some((id.clone(), state.queues.get(id)?.counts))).collect())
    }

    async fn connection_health(&self) -> StoreResult<Vec<ConnectionHealth>> {
        unsupported("connection_health")
    }

    async fn create_api_key(&self, _new: NewApiKey) -> StoreResult<ApiKey> {
        unsupported("create_api_key")
    }

    async fn api_key_by_hash(&self, _key_hash: &str) -> StoreResult<ApiKey> {
        unsupported("api_key_by_hash")
    }

    async fn api_keys(&self, _workspace_id: &str, _after: Option<&str>, _limit: u32) -> StoreResult<Vec<ApiKey>> {
        unsupported("api_keys")
    }

    async fn delete_api_key(&self, _id: &str) -> StoreResult<()> {
        unsupported("delete_api_key")
    }

    async fn create_oauth_state(&self, _new: OauthState) -> StoreResult<()> {
        unsupported("create_oauth_state")
    }

    async fn take_oauth_state(&self, _state_hash: &str, _now_ms: i64) -> StoreResult<OauthState> {
        unsupported("take_oauth_state")
    }
}

/// The store's behaviour suite, for the parts this store implements: it behaves as the SQLite
/// store does where lanes rely on it.
#[cfg(test)]
mod tests {
    use audience_store::suite;

    use super::*;

    fn store() -> MemoryStore {
        MemoryStore::new(Clock::System)
    }

    macro_rules! suite_cases {
        ($($name:ident),* $(,)?) => {
            $(
                #[tokio::test]
                async fn $name() {
                    suite::$name(&store()).await;
                }
            )*
        };
    }

    suite_cases!(
        new_credentials_clear_a_connection_health_problem,
        sync_status_and_audience_id_are_updated,
        a_sync_needs_a_visible_connection_of_its_destination,
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
        outcomes_for_users_not_in_flight_are_ignored,
        queues_of_syncs_are_separate,
        concurrent_enters_are_all_counted,
        a_submission_moves_in_flight_users_to_submitted,
        submitted_users_survive_a_restart_untouched,
        settling_a_submission_records_its_outcomes_once,
        a_reopened_submission_is_in_flight_again,
        a_large_expired_backlog_is_errored_in_chunks,
        the_ledger_keeps_every_user_with_its_state,
        a_reentry_is_a_new_entry_of_the_same_user,
        members_are_listed_by_state_and_claims_see_only_pending_users,
        redriven_users_are_sent_again_with_a_fresh_window,
        old_errored_history_is_pruned_in_chunks,
    );

    #[tokio::test]
    async fn what_lanes_do_not_use_is_refused() {
        let store = store();
        assert!(matches!(store.heartbeat("h", 1).await, Err(StoreError::Database(_))));
        assert!(matches!(store.delete_connection("conn_1").await, Err(StoreError::Database(_))));
    }
}
