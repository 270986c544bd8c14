//! [`StoreError`]: what callers of the store can tell apart (missing row, conflicting row, bad
//! argument, closed store, a database that cannot be used now) and the database failures
//! underneath, with their source kept.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (the message names it, e.g. `conversation 0190…`).
    #[error("{0} not found")]
    NotFound(String),
    /// The write conflicts with an existing row (a unique key).
    #[error("conflict: {0}")]
    Conflict(String),
    /// An argument the store cannot use (a malformed cursor, an unknown message role).
    #[error("invalid {0}")]
    Invalid(String),
    /// The database failed on this statement (SQL, a constraint, decoding a row).
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// The database cannot be used now, for a reason about the database rather than one row: a
    /// full disk, a lost connection, a read-only file. `reason` is a fixed phrase that is safe to
    /// show users; the cause (if this failure had one of its own) is kept as the source.
    #[error("the store is unavailable: {reason}")]
    Unavailable {
        reason: &'static str,
        #[source]
        source: Option<sqlx::Error>,
    },
    /// The schema could not be brought up to date.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The URL is neither `sqlite://…` nor `postgres://…`, or does not parse. The URL itself is
    /// never part of the message: it may hold a password.
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    /// The store was closed (shutdown) before the write could be made.
    #[error("the store is closed")]
    Closed,
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            _ => match super::health::unwritable_reason(&err) {
                Some(reason) => StoreError::Unavailable {
                    reason,
                    source: Some(err),
                },
                None => StoreError::Database(err),
            },
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(err)
    }
}

/// A stored value that does not decode (an id that is not a UUID, an unknown status name): the
/// row was written by something other than this store, or by a newer version of it.
pub(super) fn corrupt(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored {what} {value:?} is not valid").into())
}
