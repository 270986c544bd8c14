//! The single writer: every write of the store goes through one task, in the order it was asked
//! for, several commands per transaction.
//!
//! Why one writer: SQLite allows one writer at a time, and a second one waiting on the lock is
//! what surfaces as `database is locked`. Funnelling writes through one task (over one
//! connection on SQLite) removes the contention instead of retrying it, and batching many small
//! event writes into one transaction makes them cheap (one fsync per batch, not per event). The
//! same path serves Postgres, so both backends order writes the same way.
//!
//! Failures come in three kinds, told apart by [`unwritable_reason`]:
//!
//! - A lock held by another process (or a Postgres serialization failure) passes by itself: the
//!   batch is retried whole, with backoff.
//! - A failure of one statement (say, a step of a run whose `RunStarted` was lost): the batch is
//!   written again one command at a time, so one bad event costs only itself.
//! - A failure of the database itself (a full disk, a lost connection, a read-only file): the
//!   store is marked unwritable ([`Health`]) at once, with the reason. The batch is lost (a
//!   transaction that failed is rolled back; a connection left inside one is closed, never
//!   reused, see `Store::open`), and so is every write until the store can write again: the
//!   writer does not wait on a database that is gone, it fails each write at once (callers that
//!   wait get [`StoreError::Unavailable`]) and checks every [`PROBE_INTERVAL`] with a real write
//!   whether it can write again. When the probe succeeds the store is writable again: no restart.
//!
//! Failures are logged and counted, never raised to the engine: a run goes on when its history
//! cannot be written. But its end is not reported as if nothing happened: the writer counts each
//! run's lost writes, and a run's `RunFinished` ([`Command::End`]) is written after everything
//! queued before it, marked incomplete ([`incomplete_end`]) when some were lost, and its waiter is
//! told what was stored. An end that cannot be written is kept (bounded) and written once the
//! store can write again, so the run is not left `running`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::access::insert_audit;
use super::conversations::{Write, apply_write};
use super::db::{Db, Statement};
use super::error::StoreError;
use super::events::{apply_event, interrupt_orphaned, renew_leases};
use super::health::{Health, ROW_REFUSED, TraceGap, incomplete_end, unwritable_reason};
use super::records::AuditEntry;
use crate::domain::{RunEvent, RunId, now_millis};

/// Most commands written in one transaction. Large enough to amortize the commit, small enough
/// that a batch retried one by one after a failure stays quick.
const MAX_BATCH: usize = 256;

/// Attempts at a batch that fails on a lock another process holds (beyond SQLite's busy
/// timeout) or a Postgres serialization failure, before it is given up, and the pause before the
/// first retry (doubling, at most [`MAX_PAUSE`]). With SQLite's 5 s busy timeout that is about
/// 35 s of waiting for a lock.
const TRANSIENT_ATTEMPTS: u32 = 6;
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// How often an unwritable store tries a real write to learn whether it can write again, and
/// how long one try may take (a Postgres that is down makes a connection attempt wait).
pub(super) const PROBE_INTERVAL: Duration = Duration::from_millis(500);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most run ends kept while the store cannot write. Beyond it the oldest are dropped (logged):
/// those runs stay `running` until this process stops and their lease runs out.
const MAX_PENDING_ENDS: usize = 10_000;

/// Where the outcome of a [`Command::Write`] goes.
pub(super) type Reply = oneshot::Sender<Result<(), StoreError>>;

/// What was stored as a run's end: the `RunFinished` to report (the one given, or that end
/// marked incomplete) and why the run's trace is incomplete, if it is.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEnd {
    pub event: RunEvent,
    pub gap: Option<TraceGap>,
}

/// What the writer task is asked to do.
pub(super) enum Command {
    /// A durable run event other than `RunFinished`; nobody waits for it.
    Event(RunEvent),
    /// A run's `RunFinished`: written after everything before it, marked incomplete when some of
    /// the run's writes were lost; the waiter (if any) learns what was stored.
    End(RunEvent, Option<oneshot::Sender<RecordedEnd>>),
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
    health: Arc<Health>,
    owner: Arc<str>,
    lease: Duration,
) -> mpsc::UnboundedSender<Command> {
    // Unbounded: `Store::record` is called from the engine's hot path and must neither block nor
    // drop a durable event. The queue only grows if the database is slower than the engine for
    // a long time; batching makes that unlikely (see the throughput test), and a database that
    // cannot write at all fails each command at once instead of holding it.
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let mut writer = Writer {
        db,
        owner,
        failures,
        health,
        lost: HashMap::new(),
        pending_ends: VecDeque::new(),
    };
    tokio::spawn(async move {
        let mut commands = Vec::with_capacity(MAX_BATCH);
        let mut heartbeat = tokio::time::interval(lease / 3);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        let mut probe = tokio::time::interval(PROBE_INTERVAL);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let writable = writer.health.get().is_writable();
            let open = !writer.db.is_closed();
            tokio::select! {
                received = receiver.recv_many(&mut commands, MAX_BATCH) => {
                    if received == 0 {
                        break;
                    }
                    writer.write_batch(std::mem::take(&mut commands)).await;
                }
                _ = heartbeat.tick(), if open && writable => {
                    keep_leases(&writer.db, &writer.owner, lease).await;
                }
                _ = probe.tick(), if open && !writable => writer.probe().await,
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

impl Work {
    /// The run this write belongs to (its events, its answer in the conversation).
    fn run_id(&self) -> Option<RunId> {
        match self {
            Work::Event(event) => Some(event.run_id()),
            Work::Write(Write::AppendMessage { run_id, .. }, _) => *run_id,
            Work::Audit(_) | Work::Write(..) => None,
        }
    }
}

/// Writes of one run that could not be stored.
#[derive(Debug, Clone, Copy)]
struct Lost {
    count: u64,
    /// The first reason.
    reason: &'static str,
}

/// The writer task's state.
struct Writer {
    db: Db,
    owner: Arc<str>,
    failures: Arc<AtomicU64>,
    health: Arc<Health>,
    /// Lost writes per run, until the run's end is written (bounded by the runs in progress).
    lost: HashMap<RunId, Lost>,
    /// Ends that could not be written, oldest first, written once the store can write again.
    pending_ends: VecDeque<RunEvent>,
}

impl Writer {
    async fn write_batch(&mut self, commands: Vec<Command>) {
        let mut flushes = Vec::new();
        let mut work = Vec::with_capacity(commands.len());
        for command in commands {
            match command {
                Command::Event(event) => work.push(Work::Event(event)),
                Command::Audit(entry) => work.push(Work::Audit(entry)),
                Command::Write(write, reply) => work.push(Work::Write(write, reply)),
                Command::Flush(done) => flushes.push(done),
                Command::End(event, reply) => {
                    // Everything before the end first, so its lost writes are known.
                    self.write_work(std::mem::take(&mut work)).await;
                    self.write_end(event, reply).await;
                }
            }
        }
        self.write_work(work).await;
        for done in flushes {
            // The flusher may have stopped waiting; nothing to do then.
            let _ = done.send(());
        }
    }

    /// Write `work` in one transaction (see the module docs for what happens when that fails).
    async fn write_work(&mut self, mut work: Vec<Work>) {
        if work.is_empty() {
            return;
        }
        if let Some(reason) = self.unwritable() {
            // The probe says when the store can write again; until then nothing waits on it.
            for item in work {
                self.finish(item, Err(unavailable(reason)));
            }
            return;
        }
        match write_patiently(&self.db, &self.owner, &work).await {
            Ok(outcomes) => {
                self.wrote();
                for (item, outcome) in work.into_iter().zip(outcomes) {
                    self.finish(item, outcome);
                }
            }
            Err(err) => match unwritable_reason(&err) {
                Some(reason) => {
                    tracing::error!(
                        error = %err,
                        commands = work.len(),
                        "store batch not written: {reason}"
                    );
                    self.cannot_write(reason);
                    for item in work {
                        self.finish(item, Err(unavailable(reason)));
                    }
                }
                None if work.len() == 1 => {
                    let item = work.pop().expect("one command in the batch");
                    self.finish(item, Err(err.into()));
                }
                None => {
                    // Most likely one bad command: find it by writing each alone.
                    tracing::warn!(
                        error = %err,
                        commands = work.len(),
                        "store batch failed, writing one by one"
                    );
                    for item in work {
                        let outcome = match self.unwritable() {
                            Some(reason) => Err(unavailable(reason)),
                            None => write_alone(&self.db, &self.owner, &item).await,
                        };
                        self.finish(item, outcome);
                    }
                }
            },
        }
    }

    /// Write a run's end (marked incomplete when some of its writes were lost, or when its waiter
    /// gave up) and tell the waiter what was stored.
    async fn write_end(&mut self, end: RunEvent, reply: Option<oneshot::Sender<RecordedEnd>>) {
        let run_id = end.run_id();
        let mut gap = self.lost.remove(&run_id).map(|lost| TraceGap {
            lost: Some(lost.count),
            reason: lost.reason,
        });
        if gap.is_none() && reply.as_ref().is_some_and(oneshot::Sender::is_closed) {
            // Its waiter was told the run's trace is incomplete; store what it was told.
            gap = Some(TraceGap::unconfirmed());
        }
        let event = match &gap {
            Some(gap) => incomplete_end(end.clone(), gap),
            None => end.clone(),
        };
        let item = Work::Event(event);
        let outcome = match self.unwritable() {
            Some(reason) => Err(unavailable(reason)),
            None => write_alone(&self.db, &self.owner, &item).await,
        };
        let Work::Event(event) = item else {
            unreachable!("the end is an event")
        };
        let recorded = match outcome {
            Ok(()) => {
                self.wrote();
                RecordedEnd { event, gap }
            }
            Err(err) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let reason = match &err {
                    StoreError::Unavailable { reason, .. } => {
                        self.cannot_write(reason);
                        reason
                    }
                    _ => ROW_REFUSED,
                };
                tracing::error!(
                    run_id = %run_id,
                    error = %error_chain(&err),
                    "run end not stored"
                );
                let gap = TraceGap::and_one(gap, reason);
                let event = incomplete_end(end, &gap);
                if matches!(err, StoreError::Unavailable { .. }) {
                    self.keep_end(event.clone());
                }
                RecordedEnd {
                    event,
                    gap: Some(gap),
                }
            }
        };
        if let Some(reply) = reply {
            // The waiter may have stopped waiting; it reported the run as incomplete then.
            let _ = reply.send(recorded);
        }
    }

    /// Keep an end to write once the store can write again.
    fn keep_end(&mut self, end: RunEvent) {
        if self.pending_ends.len() >= MAX_PENDING_ENDS
            && let Some(dropped) = self.pending_ends.pop_front()
        {
            tracing::error!(
                run_id = %dropped.run_id(),
                "too many run ends waiting for the store to write again; this run stays running"
            );
        }
        self.pending_ends.push_back(end);
    }

    /// While the store cannot write: try a real write; when it succeeds, the store is writable
    /// again and the ends kept meanwhile are written.
    async fn probe(&mut self) {
        let outcome = tokio::time::timeout(PROBE_TIMEOUT, probe_write(&self.db)).await;
        match outcome {
            Ok(Ok(())) => {
                self.wrote();
                self.write_pending_ends().await;
            }
            Ok(Err(err)) => {
                if let Some(reason) = unwritable_reason(&err) {
                    self.cannot_write(reason);
                }
                tracing::debug!(error = %err, "the store still cannot write");
            }
            Err(_) => tracing::debug!("the store's write probe timed out"),
        }
    }

    async fn write_pending_ends(&mut self) {
        while let Some(end) = self.pending_ends.pop_front() {
            let item = Work::Event(end);
            match write_alone(&self.db, &self.owner, &item).await {
                Ok(()) => {}
                Err(StoreError::Unavailable { reason, .. }) => {
                    self.cannot_write(reason);
                    if let Work::Event(end) = item {
                        self.pending_ends.push_front(end);
                    }
                    return;
                }
                Err(err) => {
                    // Its run was never stored (its `RunStarted` was lost too): nothing to end.
                    if let Work::Event(end) = &item {
                        tracing::warn!(run_id = %end.run_id(), error = %error_chain(&err), "a kept run end was not stored");
                    }
                }
            }
        }
    }

    /// The reason writes fail now, if they do.
    fn unwritable(&self) -> Option<&'static str> {
        match self.health.get() {
            super::StoreHealth::Writable => None,
            super::StoreHealth::Unwritable { reason, .. } => Some(reason),
        }
    }

    fn cannot_write(&self, reason: &'static str) {
        if self.health.unwritable(reason) {
            tracing::error!(
                "the store cannot write ({reason}): new runs are refused and writes fail until \
                 it can; checking every {} ms",
                PROBE_INTERVAL.as_millis()
            );
        }
    }

    fn wrote(&self) {
        if let Some(since) = self.health.writable() {
            tracing::warn!(
                unwritable_ms = now_millis().saturating_sub(since),
                "the store can write again"
            );
        }
    }

    /// Report one item's outcome: to its waiter, and for writes that were not stored, to the
    /// log, the failure count and the run's lost writes. Missing and conflicting rows are
    /// answers for a waiting caller, not failures of the store.
    fn finish(&mut self, item: Work, outcome: Result<(), StoreError>) {
        let failed = match (&item, &outcome) {
            (_, Ok(())) => false,
            (Work::Write(..), Err(StoreError::NotFound(_) | StoreError::Conflict(_))) => false,
            (_, Err(_)) => true,
        };
        if let Err(StoreError::Unavailable { reason, .. }) = &outcome {
            self.cannot_write(reason);
        }
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
            if let Some(run_id) = item.run_id() {
                let reason = match &outcome {
                    Err(StoreError::Unavailable { reason, .. }) => reason,
                    _ => ROW_REFUSED,
                };
                self.lost
                    .entry(run_id)
                    .and_modify(|lost| lost.count += 1)
                    .or_insert(Lost { count: 1, reason });
            }
        }
        // While the store cannot write, each lost write is not logged alone: the change of
        // state was (see `cannot_write`), and the run's end says how many of its writes were lost.
        let quiet = matches!(outcome, Err(StoreError::Unavailable { source: None, .. }));
        match item {
            Work::Write(_, reply) => {
                if let Err(err @ (StoreError::Database(_) | StoreError::Unavailable { .. })) =
                    &outcome
                    && !quiet
                {
                    tracing::error!(error = %error_chain(err), "store write failed");
                }
                let _ = reply.send(outcome);
            }
            Work::Audit(entry) => {
                if let Err(err) = outcome
                    && !quiet
                {
                    tracing::error!(error = %error_chain(&err), action = %entry.action, "audit line not stored");
                }
            }
            Work::Event(event) => {
                if let Err(err) = outcome
                    && !quiet
                {
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
}

/// A failure of a write that was not attempted, because the store cannot write.
fn unavailable(reason: &'static str) -> StoreError {
    StoreError::Unavailable {
        reason,
        source: None,
    }
}

/// [`write_together`], retried while it fails on a lock that may be released.
async fn write_patiently(
    db: &Db,
    owner: &str,
    work: &[Work],
) -> Result<Vec<Result<(), StoreError>>, sqlx::Error> {
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match write_together(db, owner, work).await {
            Err(err) if attempt < TRANSIENT_ATTEMPTS && is_contention(&err) => {
                tracing::warn!(error = %err, attempt, "store batch failed, will retry");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Whether `err` is contention that passes by itself: a busy or locked SQLite file, a Postgres
/// serialization failure or deadlock. (A lost connection or a full disk does not pass by being
/// retried at once; the store is marked unwritable and probed instead.)
fn is_contention(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    let code = db.code().unwrap_or_default();
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // Extended result codes keep the primary code in their low byte.
        let primary = code.parse::<i32>().map_or(0, |code| code & 0xff);
        primary == 5 || primary == 6 // SQLITE_BUSY, SQLITE_LOCKED
    } else {
        code == "40001" || code == "40P01"
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

/// A real write (one row rewritten and committed): what tells an unwritable store that it can
/// write again. A ping would not: a full disk still answers reads.
async fn probe_write(db: &Db) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    tx.execute(
        Statement::new(
            "INSERT INTO store_probe (id, written_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at",
        )
        .bind(now_millis()),
    )
    .await?;
    tx.commit().await
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
