//! Persistence: conversations, messages, runs, steps and step edges, in SQLite (a file under the
//! data dir, the default) or Postgres (by URL). The only module that contains SQL.
//!
//! Writes go through one writer task ([`writer`]) in the order they were made, batched into
//! transactions; reads use a pool. A run's rows are written as its [`RunEvent`]s arrive, so a
//! crash loses at most what was still queued (the step in flight); [`Store::open`] marks runs
//! left `running` as `interrupted`.
//!
//! When the database cannot take writes (a full disk, a lost connection) the store says so
//! ([`Store::health`]) until a write succeeds again, and a run whose writes were lost ends
//! marked incomplete ([`Store::end_run`], [`TraceGap`]); see [`health`] and [`writer`].
//!
//! Deliberately not here: the wire shapes of the HTTP API (the records serialize, but `api`
//! decides what to expose), and live streaming of run events (the engine's broadcast does that).

mod access;
mod cap;
mod conversations;
mod db;
mod error;
mod events;
mod health;
mod mcp_sessions;
mod pins;
mod records;
mod resume;
mod runs;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot};

pub use cap::{MAX_STORED_ERROR_BYTES, MAX_STORED_JSON_BYTES, PREVIEW_BYTES};
pub use error::StoreError;
pub use health::{StoreHealth, TRACE_INCOMPLETE, TraceGap, incomplete_end, is_incomplete};
pub use records::{
    AuditEntry, AuditFilter, AuditPage, AuditRecord, ConversationDetail, ConversationRecord,
    DEFAULT_RUN_PAGE, EXCERPT_CHARS, KeyRecord, MAX_RUN_PAGE, MessageRecord, RunDetail, RunFilter,
    RunPage, RunSummary, Scope, SessionRecord, StepEdge, StepRecord,
};

use crate::domain::{RunEvent, now_millis};
use db::Db;
use health::Health;
pub use mcp_sessions::MCP_SESSION_RETENTION;
pub use resume::ResumableRun;
use writer::Command;
pub use writer::RecordedEnd;

/// File name of the SQLite database inside the data dir.
pub const SQLITE_FILE_NAME: &str = "switchboard.sqlite";

/// How long a SQLite connection waits for a lock held by another process before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read connections to a SQLite file (writes use the writer's single connection).
const SQLITE_READERS: u32 = 4;
/// Connections to Postgres, shared by readers and the writer.
const POSTGRES_CONNECTIONS: u32 = 8;
/// How long a Postgres read or write waits for a connection. sqlx keeps reconnecting to a
/// server that refuses connections until then (its default is 30 s), so this bounds how long a
/// request waits on a database that is down before it is answered 503.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Handle to the database. Cheap to clone; all clones share the pools and the writer.
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads. On SQLite a separate pool from the writer's connection; on Postgres the same pool.
    reader: Db,
    /// Every write, including conversation writes, goes through the writer task.
    writer: mpsc::UnboundedSender<Command>,
    /// Closed when the store is closed; the writer's own pool.
    writer_db: Db,
    /// Commands the writer could not store (logged at error level when they happen).
    write_failures: Arc<AtomicU64>,
    /// Whether writes succeed now (the writer updates it).
    health: Arc<Health>,
    /// This store's instance id: the owner of the runs it starts or claims.
    owner: Arc<str>,
    /// [`StoreOptions::run_lease`].
    lease: Duration,
}

/// How a [`Store`] shares its database with other processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a run whose owner stopped renewing its lease stays `running` before another
    /// store marks it `interrupted` (`server.run_lease_ms`, default 30 s).
    pub run_lease: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            run_lease: crate::config::model::DEFAULT_RUN_LEASE,
        }
    }
}

impl Store {
    /// Open (creating if missing) the database at `url`, bring its schema up to date, and mark
    /// the runs orphaned by a stopped process as `interrupted` (and their running steps).
    /// Returns the store and how many runs were interrupted.
    ///
    /// `url` is `sqlite://PATH` (see [`Store::sqlite_url_for`]; the parent directory is created)
    /// or `postgres://…` / `postgresql://…`.
    ///
    /// Several processes may share one database (replicas on Postgres, `switchboard chat` beside
    /// a server on SQLite): each store owns the runs it starts and renews their lease every
    /// `run_lease / 3`; a run is orphaned only when its lease has not been renewed for
    /// [`StoreOptions::run_lease`], so a live process's runs are never interrupted. A run
    /// orphaned by a crash is marked at the next open after its lease ran out, or by any live
    /// store's next renewal.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidUrl`] for an unsupported or malformed URL, [`StoreError::Database`]
    /// when the database cannot be reached or created, [`StoreError::Migrate`] when the schema
    /// cannot be migrated (including a changed, already-applied migration).
    pub async fn open(url: &str) -> Result<(Store, u64), StoreError> {
        Self::open_with(url, StoreOptions::default()).await
    }

    /// [`Store::open`] with explicit options.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub async fn open_with(url: &str, options: StoreOptions) -> Result<(Store, u64), StoreError> {
        let (reader, writer_db) = if url.starts_with("sqlite:") {
            open_sqlite(url).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = open_postgres(url).await?;
            (pool.clone(), pool)
        } else {
            let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
            return Err(StoreError::InvalidUrl(format!(
                "unsupported scheme {scheme:?} (expected sqlite or postgres)"
            )));
        };
        let owner: Arc<str> = uuid::Uuid::now_v7().to_string().into();
        let interrupted =
            events::interrupt_orphaned(&writer_db, now_millis(), options.run_lease, &owner).await?;
        if interrupted > 0 {
            tracing::warn!(
                runs = interrupted,
                "runs of a stopped process marked interrupted"
            );
        }
        let write_failures = Arc::new(AtomicU64::new(0));
        let health = Arc::new(Health::new());
        let writer = writer::spawn(
            writer_db.clone(),
            write_failures.clone(),
            health.clone(),
            owner.clone(),
            options.run_lease,
        );
        let store = Store {
            reader,
            writer,
            writer_db,
            write_failures,
            health,
            owner,
            lease: options.run_lease,
        };
        Ok((store, interrupted))
    }

    /// `sqlite://DATA_DIR/switchboard.sqlite`, the default database.
    pub fn sqlite_url_for(data_dir: &Path) -> String {
        let path = data_dir.join(SQLITE_FILE_NAME);
        // The URL parser percent-decodes the path, so these must be encoded to survive.
        let mut encoded = String::new();
        for c in path.to_string_lossy().chars() {
            match c {
                '%' => encoded.push_str("%25"),
                '?' => encoded.push_str("%3F"),
                '#' => encoded.push_str("%23"),
                c => encoded.push(c),
            }
        }
        format!("sqlite://{encoded}")
    }

    /// Persist a durable run event: `RunStarted` inserts the run, `StepStarted` inserts the
    /// step (or restarts it, for a retry) and its edges, `StepFinished` and `RunFinished`
    /// update them. Token deltas and progress ticks are ignored.
    ///
    /// Returns at once: the event is queued for the writer, committed within milliseconds. Use
    /// [`Store::flush`] to wait for it. A failure is logged and counted
    /// ([`Store::write_failures`]), never returned: the run goes on. A `RunFinished` is stored
    /// as [`Store::end_run`] stores it (marked incomplete when some of the run's writes were
    /// lost), without waiting.
    pub fn record(&self, event: &RunEvent) {
        match event {
            RunEvent::RunFinished { .. } => {
                self.send(Command::End(event.clone(), None));
            }
            event if event.is_durable() => {
                self.send(Command::Event(event.clone()));
            }
            _ => {}
        }
    }

    /// Store a run's end (its `RunFinished`) after everything queued before it, and say what was
    /// stored: the end as given, or, when some of the run's writes could not be stored (a full
    /// disk, a lost connection), the same end marked incomplete ([`incomplete_end`]: never
    /// `succeeded`, the error saying how many writes were lost and why). That is the end to report
    /// to the run's clients, so they are told exactly what the store keeps.
    ///
    /// Waits at most `wait`; past it (or when the store is closed) the end is reported
    /// incomplete ([`TraceGap::unconfirmed`]), and the writer stores it so when it gets to it. An
    /// end that cannot be written now is written once the store can write again, so the run is
    /// not left `running`.
    pub async fn end_run(&self, end: RunEvent, wait: Duration) -> RecordedEnd {
        let (reply, recorded) = oneshot::channel();
        let unconfirmed = |end: RunEvent| {
            let gap = TraceGap::unconfirmed();
            RecordedEnd {
                event: incomplete_end(end, &gap),
                gap: Some(gap),
            }
        };
        if !self.send(Command::End(end.clone(), Some(reply))) {
            return unconfirmed(end);
        }
        match tokio::time::timeout(wait, recorded).await {
            Ok(Ok(recorded)) => recorded,
            Ok(Err(_)) | Err(_) => unconfirmed(end),
        }
    }

    /// Whether the database takes writes now: [`StoreHealth::Unwritable`] (with the reason)
    /// from the first write that failed for a reason about the database itself until a write
    /// succeeds again (the writer tries one every 500 ms meanwhile). The run service refuses new
    /// runs and `/readyz` says not ready while it is unwritable.
    pub fn health(&self) -> StoreHealth {
        self.health.get()
    }

    /// Append a line to the audit log. Returns at once, like [`Store::record`]: the line is
    /// written with the next batch; a failure is logged and counted, never returned.
    pub fn audit(&self, entry: AuditEntry) {
        self.send(Command::Audit(entry));
    }

    /// Whether the database answers a trivial query (readiness).
    ///
    /// # Errors
    /// [`StoreError::Database`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.reader.ping().await.map_err(StoreError::from)
    }

    /// Wait until everything queued before this call is committed (or has failed and been
    /// logged). Returns at once if the store is closed.
    pub async fn flush(&self) {
        let (done, committed) = oneshot::channel();
        if self.send(Command::Flush(done)) {
            // An error means the writer stopped, which happens only when the runtime shuts down.
            let _ = committed.await;
        }
    }

    /// Flush, then close the database connections. Later reads and writes fail.
    pub async fn close(&self) {
        self.flush().await;
        self.writer_db.close().await;
        self.reader.close().await;
    }

    /// How many writes could not be stored since the store was opened.
    pub fn write_failures(&self) -> u64 {
        self.write_failures.load(Ordering::Relaxed)
    }

    /// Queue a command for the writer; false if the writer is gone.
    fn send(&self, command: Command) -> bool {
        let sent = self.writer.send(command).is_ok();
        if !sent {
            self.write_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!("store writer is gone, write dropped");
        }
        sent
    }

    /// Queue a write and wait for its outcome.
    async fn write(&self, write: conversations::Write) -> Result<(), StoreError> {
        let (reply, outcome) = oneshot::channel();
        if !self.send(Command::Write(write, reply)) {
            return Err(StoreError::Closed);
        }
        outcome.await.unwrap_or(Err(StoreError::Closed))
    }
}

/// The reader pool and the writer's one-connection pool of a SQLite file.
async fn open_sqlite(url: &str) -> Result<(Db, Db), StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|err| StoreError::InvalidUrl(err.to_string()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true);
    if let Some(parent) = options
        .get_filename()
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|err| StoreError::Database(sqlx::Error::Io(err)))?;
    }
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        // A write that fails on a full disk may make SQLite roll the transaction back by itself;
        // sqlx's own ROLLBACK then fails and it goes on believing the connection is inside a
        // transaction, so every later BEGIN on it would fail until a restart. A connection that
        // comes back to the pool still inside a transaction is closed instead, and the next
        // write opens a fresh one. (The ping first runs the rollback sqlx queued on release.)
        .after_release(|conn, _| {
            Box::pin(async move {
                conn.ping().await?;
                Ok(!conn.is_in_transaction())
            })
        })
        .connect_with(options.clone())
        .await?;
    SQLITE_MIGRATIONS.run(&writer).await?;
    let reader = SqlitePoolOptions::new()
        .max_connections(SQLITE_READERS)
        .connect_with(options)
        .await?;
    Ok((Db::Sqlite(reader), Db::Sqlite(writer)))
}

/// One pool for a Postgres database.
async fn open_postgres(url: &str) -> Result<Db, StoreError> {
    let options =
        PgConnectOptions::from_str(url).map_err(|err| StoreError::InvalidUrl(err.to_string()))?;
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_CONNECTIONS)
        .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    POSTGRES_MIGRATIONS.run(&pool).await?;
    Ok(Db::Postgres(pool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_url_survives_awkward_paths() {
        let url = Store::sqlite_url_for(Path::new("/data/50% done?#x"));
        assert_eq!(url, "sqlite:///data/50%25 done%3F%23x/switchboard.sqlite");
        let options = SqliteConnectOptions::from_str(&url).unwrap();
        assert_eq!(
            options.get_filename(),
            Path::new("/data/50% done?#x/switchboard.sqlite")
        );
    }

    #[test]
    fn relative_data_dirs_stay_relative() {
        assert_eq!(
            Store::sqlite_url_for(Path::new("./data")),
            "sqlite://./data/switchboard.sqlite"
        );
    }

    #[tokio::test]
    async fn unsupported_urls_are_refused_without_echoing_them() {
        let err = Store::open("mysql://user:secret@host/db")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidUrl(_)), "{err:?}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
