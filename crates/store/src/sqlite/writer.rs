//! The one writer: a dedicated thread that owns the write connection and commits in groups.
//!
//! Why one thread: SQLite allows one writer at a time anyway. Letting every task open its own
//! write transaction would only turn that into lock contention (`SQLITE_BUSY`, retries,
//! unfair waits). A single owner thread makes writes a queue instead, and keeps the blocking
//! SQLite calls off the async runtime.
//!
//! Why group commit: with `synchronous=FULL` every commit waits for an fsync, which costs
//! milliseconds whatever the transaction's size. So the writer takes the first waiting
//! operation, drains everything else already waiting in the channel (up to [`MAX_GROUP`]),
//! runs them all in ONE transaction and commits once: concurrent callers share one fsync, and
//! the more load, the larger the groups. Each caller is answered only after the commit, so an
//! acknowledged write is durable.
//!
//! Isolation inside a group: each operation runs in its own `SAVEPOINT`; when it fails, its
//! savepoint is rolled back and the others in the group still commit. A panicking operation
//! is caught and fails alone. Only a failure of the transaction itself (commit refused, disk
//! full, I/O error) fails the whole group, and then every caller in it is told.
//!
//! If the thread is gone (the store was dropped), callers get [`StoreError::Closed`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::{StoreError, StoreResult};

/// Most operations committed in one transaction; bounds the latency of a group.
const MAX_GROUP: usize = 1024;
/// Operations that may wait for the writer before senders wait in turn (back-pressure).
const CHANNEL_CAPACITY: usize = 4096;

/// One queued write and where its answer goes.
trait Job: Send {
    /// Runs the operation on the open transaction; returns whether it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the group's commit outcome is known.
    fn reply(self: Box<Self>, commit: &Result<(), String>);
}

type Op<T> = Box<dyn FnOnce(&Connection) -> StoreResult<T> + Send>;

struct TypedJob<T> {
    op: Option<Op<T>>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T: Send> Job for TypedJob<T> {
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(op) = self.op.take() else {
            return false;
        };
        let result = catch_unwind(AssertUnwindSafe(|| op(conn))).unwrap_or_else(|_| {
            Err(StoreError::Database("internal error: a store operation panicked; it was rolled back".into()))
        });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn reply(self: Box<Self>, commit: &Result<(), String>) {
        let answer = match (self.result, commit) {
            // The operation's own failure is the most precise thing to say.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(e)) => Err(StoreError::Database(e.clone())),
            (None, Ok(())) => Err(StoreError::Database("internal error: the operation was not run".into())),
        };
        // The caller may have stopped waiting (its task was cancelled); the write stands.
        let _ = self.reply.send(answer);
    }
}

/// Handle to the writer thread. Dropping it lets the thread finish what was queued, close
/// the connection and exit; the drop waits for that.
pub(crate) struct Writer {
    sender: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread, which takes ownership of `conn`.
    pub(crate) fn start(conn: Connection) -> StoreResult<Self> {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("audience-store-writer".into())
            .spawn(move || writer_loop(conn, receiver))
            .map_err(|e| StoreError::Database(format!("could not start the writer thread: {e}")))?;
        Ok(Self { sender: Some(sender), thread: Some(thread) })
    }

    /// Runs `op` in the next group transaction; answers after the commit.
    pub(crate) async fn run<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let sender = self.sender.as_ref().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(TypedJob { op: Some(Box::new(op)), result: None, reply });
        sender.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the loop once everything queued is committed.
        self.sender.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the store writer thread panicked");
        }
    }
}

fn writer_loop(conn: Connection, mut receiver: mpsc::Receiver<Box<dyn Job>>) {
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = receiver.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let outcome = run_group(&conn, &mut group);
        if let Err(e) = &outcome {
            tracing::error!(error = %e, operations = group.len(), "store write transaction failed");
        }
        for job in group.drain(..) {
            job.reply(&outcome);
        }
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the store's write connection failed");
    }
}

/// Runs every job of the group in one transaction, each in its own savepoint, and commits.
fn run_group(conn: &Connection, group: &mut [Box<dyn Job>]) -> Result<(), String> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| format!("starting a write transaction: {e}"))?;
    let result = run_in_transaction(conn, group);
    match result {
        Ok(()) => match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(()),
            Err(e) => {
                rollback(conn);
                Err(format!("committing: {e}"))
            }
        },
        Err(e) => {
            rollback(conn);
            Err(e)
        }
    }
}

fn run_in_transaction(conn: &Connection, group: &mut [Box<dyn Job>]) -> Result<(), String> {
    for job in group.iter_mut() {
        conn.execute_batch("SAVEPOINT op").map_err(|e| format!("opening a savepoint: {e}"))?;
        if job.run(conn) {
            conn.execute_batch("RELEASE op").map_err(|e| format!("releasing a savepoint: {e}"))?;
        } else {
            if conn.is_autocommit() {
                // SQLite itself rolled the whole transaction back (I/O error, disk full...).
                return Err("the write transaction was rolled back by SQLite after an error \
                            (is the disk full or failing?)"
                    .into());
            }
            conn.execute_batch("ROLLBACK TO op; RELEASE op")
                .map_err(|e| format!("rolling back a failed operation: {e}"))?;
        }
    }
    Ok(())
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::error!(error = %e, "rolling back a failed write transaction failed");
    }
}
