//! The single writer: every write of the store goes through one task, in the order it was asked
//! for, several commands per transaction.
//!
//! Why one writer: SQLite allows one writer at a time, and a second one waiting on the lock is
//! what surfaces as `database is locked`. Funnelling writes through one task (over one
//! connection on SQLite) removes the contention instead of retrying it, and batching many small
//! event writes into one transaction makes them cheap (one fsync per batch, not per event). The
//! same path serves Postgres, so both backends order writes the same way.
//!
//! A batch that fails for a reason that passes (a lock, a lost connection) is retried whole, with
//! backoff; one that fails otherwise is written again one command at a time, so one bad event
//! (say, a step of a run whose `RunStarted` was lost) costs only itself. Failures are logged and
//! counted, never raised: the engine must not stop because its history could not be written.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::access::insert_audit;
use super::conversations::{Write, apply_write};
use super::db::Db;
use super::error::StoreError;
use super::events::{apply_event, interrupt_orphaned, renew_leases};
use super::records::AuditEntry;
use crate::domain::{RunEvent, now_millis};

/// Most commands written in one transaction. Large enough to amortize the commit, small enough
/// that a batch retried one by one after a failure stays quick.
const MAX_BATCH: usize = 256;

/// Attempts at a batch that fails for a reason that passes (another process holding the SQLite
/// write lock beyond the busy timeout, a dropped Postgres connection) before it is given up, and
/// the pause before the first retry (doubling, at most [`MAX_PAUSE`]). With SQLite's 5 s busy
/// timeout that is about 35 s of waiting for a lock.
const TRANSIENT_ATTEMPTS: u32 = 6;
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Where the outcome of a [`Command::Write`] goes.
pub(super) type Reply = oneshot::Sender<Result<(), StoreError>>;

/// What the writer task is asked to do.
pub(super) enum Command {
    /// A durable run event; nobody waits for it.
    Event(RunEvent),
    /// An audit line; nobody waits for it either.
    Audit(AuditEntry),
    /// A conversation write; the caller waits for its outcome.
    Write(Write, Reply),
    /// Answered once everything sent before it is committed (or has failed and been logged).
    Flush(oneshot::Sender<()>),
}

/// Start the writer task on `db`. It ends when every sender is dropped, after writing what was
/// queued.
///
/// The writer also keeps this instance's runs alive for other processes sharing the database:
/// every `lease / 3` it renews the lease of the runs it owns (`owner`) and marks runs whose
/// owner stopped renewing (a crashed process) `interrupted`.
pub(super) fn spawn(
    db: Db,
    failures: Arc<AtomicU64>,
    owner: Arc<str>,
    lease: Duration,
) -> mpsc::UnboundedSender<Command> {
    // Unbounded: `Store::record` is called from the engine's hot path and must neither block nor
    // drop a durable event. The queue only grows if the database is slower than the engine for
    // a long time; batching makes that unlikely (see the throughput test).
    let (sender, mut receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut commands = Vec::with_capacity(MAX_BATCH);
        let mut heartbeat = tokio::time::interval(lease / 3);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                received = receiver.recv_many(&mut commands, MAX_BATCH) => {
                    if received == 0 {
                        break;
                    }
                    write_batch(&db, &owner, std::mem::take(&mut commands), &failures).await;
                }
                _ = heartbeat.tick(), if !db.is_closed() => keep_leases(&db, &owner, lease).await,
            }
        }
    });
    sender
}

/// Renew our runs' leases and interrupt the runs of processes that stopped renewing theirs.
/// Failures are logged: a missed renewal is repaired by the next one, well within the lease.
async fn keep_leases(db: &Db, owner: &str, lease: Duration) {
    let now = now_millis();
    if let Err(err) = renew_leases(db, now, owner).await {
        tracing::warn!(error = %err, "renewing run leases failed");
    }
    match interrupt_orphaned(db, now, lease, owner).await {
        Ok(0) => {}
        Ok(runs) => tracing::warn!(runs, "runs of a stopped process marked interrupted"),
        Err(err) => tracing::warn!(error = %err, "checking for orphaned runs failed"),
    }
}

/// A command that changes rows, with whoever waits for its outcome.
enum Work {
    Event(RunEvent),
    Audit(AuditEntry),
    Write(Write, Reply),
}

async fn write_batch(db: &Db, owner: &str, commands: Vec<Command>, failures: &AtomicU64) {
    let mut flushes = Vec::new();
    let mut work = Vec::with_capacity(commands.len());
    for command in commands {
        match command {
            Command::Event(event) => work.push(Work::Event(event)),
            Command::Audit(entry) => work.push(Work::Audit(entry)),
            Command::Write(write, reply) => work.push(Work::Write(write, reply)),
            Command::Flush(done) => flushes.push(done),
        }
    }
    if !work.is_empty() {
        match write_patiently(db, owner, &work).await {
            Ok(outcomes) => {
                for (item, outcome) in work.into_iter().zip(outcomes) {
                    finish(item, outcome, failures);
                }
            }
            Err(err) if is_transient(&err) => {
                // Still failing after the retries: the database is down or locked for long.
                // The events are lost (counted); each write a caller waits for gets one more try
                // of its own, so that caller sees its own outcome.
                tracing::error!(error = %err, commands = work.len(), "store batch not written");
                for item in work {
                    match item {
                        Work::Event(_) | Work::Audit(_) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        Work::Write(..) => {
                            let outcome = write_alone(db, owner, &item).await;
                            finish(item, outcome, failures);
                        }
                    }
                }
            }
            Err(err) if work.len() == 1 => {
                let item = work.pop().expect("one command in the batch");
                finish(item, Err(err.into()), failures);
            }
            Err(err) => {
                // Most likely one bad command: find it by writing each alone.
                tracing::warn!(
                    error = %err,
                    commands = work.len(),
                    "store batch failed, writing one by one"
                );
                for item in work {
                    let outcome = write_alone(db, owner, &item).await;
                    finish(item, outcome, failures);
                }
            }
        }
    }
    for done in flushes {
        // The flusher may have stopped waiting; nothing to do then.
        let _ = done.send(());
    }
}

/// [`write_together`], retried while it fails for a reason that may pass.
async fn write_patiently(
    db: &Db,
    owner: &str,
    work: &[Work],
) -> Result<Vec<Result<(), StoreError>>, sqlx::Error> {
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match write_together(db, owner, work).await {
            Err(err) if attempt < TRANSIENT_ATTEMPTS && is_transient(&err) => {
                tracing::warn!(error = %err, attempt, "store batch failed, will retry");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Whether `err` may pass by itself: a busy or locked SQLite file, a lost connection, a
/// Postgres serialization failure or deadlock.
fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Extended result codes keep the primary code in their low byte.
                let primary = code.parse::<i32>().map_or(0, |code| code & 0xff);
                primary == 5 || primary == 6 // SQLITE_BUSY, SQLITE_LOCKED
            } else {
                code == "40001" || code == "40P01" || code.starts_with("08") || code == "57P01"
            }
        }
        _ => false,
    }
}

/// Apply `work` in one transaction: the outcome of each item, or the error that rolled it back.
async fn write_together(
    db: &Db,
    owner: &str,
    work: &[Work],
) -> Result<Vec<Result<(), StoreError>>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let mut outcomes = Vec::with_capacity(work.len());
    for item in work {
        outcomes.push(match item {
            Work::Event(event) => apply_event(&mut tx, event, owner).await?,
            Work::Audit(entry) => insert_audit(&mut tx, entry).await?,
            Work::Write(write, _) => apply_write(&mut tx, write).await?,
        });
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// One command in its own transaction, without retries.
async fn write_alone(db: &Db, owner: &str, item: &Work) -> Result<(), StoreError> {
    match write_together(db, owner, std::slice::from_ref(item)).await {
        Ok(mut outcomes) => outcomes.pop().expect("one outcome per command"),
        Err(err) => Err(err.into()),
    }
}

/// Report one item's outcome: to its waiter, and for events that were not stored, to the log.
/// Missing and conflicting rows are answers for a waiting caller, not failures of the store.
fn finish(item: Work, outcome: Result<(), StoreError>, failures: &AtomicU64) {
    let failed = match (&item, &outcome) {
        (_, Ok(())) => false,
        (Work::Write(..), Err(StoreError::NotFound(_) | StoreError::Conflict(_))) => false,
        (_, Err(_)) => true,
    };
    if failed {
        failures.fetch_add(1, Ordering::Relaxed);
    }
    match item {
        Work::Write(_, reply) => {
            if let Err(err @ StoreError::Database(_)) = &outcome {
                tracing::error!(error = %error_chain(err), "store write failed");
            }
            let _ = reply.send(outcome);
        }
        Work::Audit(entry) => {
            if let Err(err) = outcome {
                tracing::error!(error = %error_chain(&err), action = %entry.action, "audit line not stored");
            }
        }
        Work::Event(event) => {
            if let Err(err) = outcome {
                tracing::error!(
                    error = %error_chain(&err),
                    run_id = %event.run_id(),
                    event = event.type_name(),
                    "run event not stored"
                );
            }
        }
    }
}

/// `err` and its sources, `: `-separated (the log line shows why, not just "database error").
fn error_chain(err: &StoreError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
