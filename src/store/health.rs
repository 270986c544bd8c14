//! Whether the store can write, and what a run whose writes were lost is reported as.
//!
//! The writer learns that the database cannot take writes from the writes themselves (a full
//! disk, a lost connection, a read-only file); it records that here, with the reason in words a
//! user can act on, and the rest of the server reads it: the run service refuses new runs,
//! `/readyz` says not ready. The writer then checks with a real write every
//! [`PROBE_INTERVAL`](super::writer) until one succeeds, and the store is writable again without
//! a restart.
//!
//! A run whose events were not all stored is never reported as succeeded: its `RunFinished` is
//! rewritten by [`incomplete_end`] (status `failed` when it had succeeded, the error saying how
//! many events were lost and why) before it is stored and before any client sees it.

use std::sync::Mutex;

use crate::domain::{RunEvent, RunStatus, UnixMillis, now_millis};

/// What a reader of the store's state is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreHealth {
    /// The last write succeeded (or none failed yet).
    Writable,
    /// Writes fail, for `reason` (a fixed phrase such as "the disk is full"), since `since`.
    Unwritable {
        reason: &'static str,
        since: UnixMillis,
    },
}

impl StoreHealth {
    /// Whether writes are expected to succeed.
    pub fn is_writable(self) -> bool {
        matches!(self, StoreHealth::Writable)
    }
}

/// The shared cell the writer updates and everyone else reads.
#[derive(Debug)]
pub(super) struct Health {
    state: Mutex<StoreHealth>,
}

impl Health {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::new(StoreHealth::Writable),
        }
    }

    pub(super) fn get(&self) -> StoreHealth {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes fail for `reason`; returns whether this is news (the store was writable), so the
    /// change is logged once, not at every failed write.
    pub(super) fn unwritable(&self, reason: &'static str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match *state {
            StoreHealth::Writable => {
                *state = StoreHealth::Unwritable {
                    reason,
                    since: now_millis(),
                };
                true
            }
            StoreHealth::Unwritable { since, .. } => {
                // The reason may change (the disk was freed, then the file became read-only).
                *state = StoreHealth::Unwritable { reason, since };
                false
            }
        }
    }

    /// A write succeeded; returns since when the store had been unwritable, if it had been.
    pub(super) fn writable(&self) -> Option<UnixMillis> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *state, StoreHealth::Writable) {
            StoreHealth::Writable => None,
            StoreHealth::Unwritable { since, .. } => Some(since),
        }
    }
}

/// Why a run's stored trace is incomplete: told to the client with the run's end, and stored as
/// the run's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceGap {
    /// How many of the run's writes (events, its answer in the conversation, its end) could not
    /// be stored; `None` when the store did not say in time.
    pub lost: Option<u64>,
    /// Why, as a fixed phrase ("the disk is full").
    pub reason: &'static str,
}

/// The reason of a gap the store did not confirm in time.
pub(super) const NOT_CONFIRMED: &str = "the store did not answer in time";

/// The reason of writes the database refused one at a time (a row it updates is missing).
pub(super) const ROW_REFUSED: &str = "the database refused them";

impl TraceGap {
    /// The store did not say in time whether the run's writes were stored.
    pub fn unconfirmed() -> Self {
        Self {
            lost: None,
            reason: NOT_CONFIRMED,
        }
    }

    /// One more write lost (the end itself), for `reason` when none was known.
    pub(super) fn and_one(gap: Option<Self>, reason: &'static str) -> Self {
        match gap {
            Some(TraceGap {
                lost: Some(lost),
                reason,
            }) => TraceGap {
                lost: Some(lost + 1),
                reason,
            },
            Some(unknown) => unknown,
            None => TraceGap {
                lost: Some(1),
                reason,
            },
        }
    }
}

impl std::fmt::Display for TraceGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.lost {
            Some(1) => write!(f, "1 of this run's writes could not be stored")?,
            Some(lost) => write!(f, "{lost} of this run's writes could not be stored")?,
            None => write!(f, "this run's writes could not be confirmed as stored")?,
        }
        write!(f, " ({}), {TRACE_INCOMPLETE}", self.reason)
    }
}

/// The phrase every incomplete run's error carries: what [`is_incomplete`] looks for, so a
/// stored run read back later says so as well as its live end did.
pub const TRACE_INCOMPLETE: &str = "so its trace is incomplete";

/// Whether a run's error says that its trace is incomplete.
pub fn is_incomplete(error: Option<&str>) -> bool {
    error.is_some_and(|error| error.contains(TRACE_INCOMPLETE))
}

/// `end` (a `RunFinished`) as a run with `gap` is reported and stored: never `succeeded` (it
/// becomes `failed`, its answer kept), its error saying what was lost and why. Other events are
/// returned unchanged.
pub fn incomplete_end(end: RunEvent, gap: &TraceGap) -> RunEvent {
    match end {
        RunEvent::RunFinished {
            run_id,
            status,
            answer,
            error,
            usage,
            at,
        } => {
            let (status, error) = match (status, error) {
                (RunStatus::Succeeded, _) => (
                    RunStatus::Failed,
                    format!("the answer is complete, but {gap}"),
                ),
                (status, Some(error)) => (status, format!("{error}; also, {gap}")),
                (status, None) => (status, gap.to_string()),
            };
            RunEvent::RunFinished {
                run_id,
                status,
                answer,
                error: Some(error),
                usage,
                at,
            }
        }
        other => other,
    }
}

/// The phrase for a database failure that is about the database, not about one row: a full
/// disk, a lost connection, a read-only or damaged file, a lock held too long. `None` for
/// failures of one statement (a constraint, a value that does not decode).
pub(super) fn unwritable_reason(err: &sqlx::Error) -> Option<&'static str> {
    match err {
        sqlx::Error::Io(_) => Some("the connection to the database was lost"),
        sqlx::Error::PoolTimedOut => Some("the database does not answer"),
        sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => {
            Some("the connection to the database failed")
        }
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Extended result codes keep the primary code in their low byte.
                sqlite_reason(code.parse::<i32>().map_or(0, |code| code & 0xff))
            } else {
                postgres_reason(&code)
            }
        }
        _ => None,
    }
}

fn sqlite_reason(primary: i32) -> Option<&'static str> {
    Some(match primary {
        5 | 6 => "the database is locked by another process", // SQLITE_BUSY, SQLITE_LOCKED
        8 => "the database file is read-only",                // SQLITE_READONLY
        10 => "the database file cannot be written (I/O error)", // SQLITE_IOERR
        11 | 26 => "the database file is damaged",            // SQLITE_CORRUPT, SQLITE_NOTADB
        13 => "the disk is full",                             // SQLITE_FULL
        14 => "the database file cannot be opened",           // SQLITE_CANTOPEN
        _ => return None,
    })
}

fn postgres_reason(code: &str) -> Option<&'static str> {
    Some(match code {
        "53100" => "the database server's disk is full",
        "53200" => "the database server is out of memory",
        "53300" => "the database server has no free connections",
        "25006" => "the database is read-only",
        "57P01" | "57P02" | "57P03" => "the database server is shutting down or starting",
        code if code.starts_with("08") => "the connection to the database was lost",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{RunId, TokenUsage};

    fn end(status: RunStatus, error: Option<&str>) -> RunEvent {
        RunEvent::RunFinished {
            run_id: RunId::new(),
            status,
            answer: Some("42".into()),
            error: error.map(str::to_owned),
            usage: TokenUsage::default(),
            at: 1,
        }
    }

    fn status_and_error(event: &RunEvent) -> (RunStatus, String) {
        match event {
            RunEvent::RunFinished { status, error, .. } => {
                (*status, error.clone().unwrap_or_default())
            }
            other => panic!("not a RunFinished: {other:?}"),
        }
    }

    #[test]
    fn a_run_with_lost_writes_is_never_succeeded() {
        let gap = TraceGap {
            lost: Some(3),
            reason: "the disk is full",
        };
        let (status, error) =
            status_and_error(&incomplete_end(end(RunStatus::Succeeded, None), &gap));
        assert_eq!(status, RunStatus::Failed);
        assert_eq!(
            error,
            "the answer is complete, but 3 of this run's writes could not be stored \
             (the disk is full), so its trace is incomplete"
        );
        // Other ends keep their status and their own error first.
        let (status, error) = status_and_error(&incomplete_end(
            end(RunStatus::Cancelled, Some("stop")),
            &gap,
        ));
        assert_eq!(status, RunStatus::Cancelled);
        assert!(error.starts_with("stop; also, 3 of this run's"), "{error}");
        // The answer is kept: only the record is incomplete.
        match incomplete_end(end(RunStatus::Succeeded, None), &TraceGap::unconfirmed()) {
            RunEvent::RunFinished { answer, error, .. } => {
                assert_eq!(answer.as_deref(), Some("42"));
                assert!(error.unwrap().contains(NOT_CONFIRMED));
            }
            other => panic!("not a RunFinished: {other:?}"),
        }
    }

    #[test]
    fn health_changes_are_reported_once() {
        let health = Health::new();
        assert!(health.get().is_writable());
        assert!(health.unwritable("the disk is full"));
        assert!(!health.unwritable("the disk is full"));
        assert!(matches!(
            health.get(),
            StoreHealth::Unwritable {
                reason: "the disk is full",
                ..
            }
        ));
        assert!(health.writable().is_some());
        assert!(health.writable().is_none());
    }

    #[test]
    fn database_failures_are_told_from_row_failures() {
        assert_eq!(sqlite_reason(13), Some("the disk is full"));
        assert_eq!(sqlite_reason(19), None, "a constraint is about one row");
        assert_eq!(
            postgres_reason("53100"),
            Some("the database server's disk is full")
        );
        assert_eq!(
            postgres_reason("08006"),
            Some("the connection to the database was lost")
        );
        assert_eq!(
            postgres_reason("23505"),
            None,
            "a unique violation is about one row"
        );
        assert!(unwritable_reason(&sqlx::Error::PoolTimedOut).is_some());
        assert!(unwritable_reason(&sqlx::Error::RowNotFound).is_none());
    }
}
