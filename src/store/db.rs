//! The two backends behind one small surface: a statement is SQL text with `$1`-style parameters
//! plus owned arguments, and [`Db`]/[`Tx`] run it on SQLite or Postgres.
//!
//! Why not `sqlx::Any`: it re-encodes every value through its own narrow type set and hides the
//! backend-specific connection options we need (WAL, busy timeout). Why not generic functions over
//! `sqlx::Database`: the executor bounds must be repeated on every function. Here the only
//! duplicated code is the `match` in each method, and every query is written once: SQLite accepts
//! `$N` parameters too, and both dialects share the SQL the store uses.

use std::borrow::Cow;

use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, FromRow, Postgres, Sqlite, Transaction};

/// A connection pool of either backend.
#[derive(Debug, Clone)]
pub(super) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// An open transaction of either backend; dropped without [`Tx::commit`], it rolls back.
pub(super) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// One argument: every column the store uses is an integer or text (ids, JSON and enums are text).
#[derive(Debug, Clone)]
pub(super) enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
}

/// SQL (with `$1`, `$2`, … parameters) and its arguments.
#[derive(Debug, Clone)]
pub(super) struct Statement {
    sql: Cow<'static, str>,
    args: Vec<Arg>,
}

/// A row type both backends can decode (what `#[derive(sqlx::FromRow)]` gives).
pub(super) trait FromEitherRow:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> FromEitherRow for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl Statement {
    /// A statement with fixed text.
    pub(super) fn new(sql: &'static str) -> Self {
        Self {
            sql: Cow::Borrowed(sql),
            args: Vec::new(),
        }
    }

    /// A statement whose text was assembled at run time (from fixed fragments only: values are
    /// always arguments, never spliced into the text).
    pub(super) fn assembled(sql: String, args: Vec<Arg>) -> Self {
        Self {
            sql: Cow::Owned(sql),
            args,
        }
    }

    /// Append the next argument (`$N` where N is the number bound so far plus one).
    pub(super) fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self
    }
}

/// Bind every argument of `$args` to the sqlx query `$query` (the same code for both backends).
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Int(value) => query.bind(value),
                Arg::Text(value) => query.bind(value),
            };
        }
        query
    }};
}

impl Db {
    /// All rows of a query.
    pub(super) async fn fetch_all<T: FromEitherRow>(
        &self,
        statement: Statement,
    ) -> Result<Vec<T>, sqlx::Error> {
        let Statement { sql, args } = statement;
        match self {
            Db::Sqlite(pool) => {
                bind_all!(sqlx::query_as::<_, T>(AssertSqlSafe(sql)), args)
                    .fetch_all(pool)
                    .await
            }
            Db::Postgres(pool) => {
                bind_all!(sqlx::query_as::<_, T>(AssertSqlSafe(sql)), args)
                    .fetch_all(pool)
                    .await
            }
        }
    }

    /// The first row of a query, if any.
    pub(super) async fn fetch_optional<T: FromEitherRow>(
        &self,
        statement: Statement,
    ) -> Result<Option<T>, sqlx::Error> {
        let Statement { sql, args } = statement;
        match self {
            Db::Sqlite(pool) => {
                bind_all!(sqlx::query_as::<_, T>(AssertSqlSafe(sql)), args)
                    .fetch_optional(pool)
                    .await
            }
            Db::Postgres(pool) => {
                bind_all!(sqlx::query_as::<_, T>(AssertSqlSafe(sql)), args)
                    .fetch_optional(pool)
                    .await
            }
        }
    }

    /// Start a write transaction.
    pub(super) async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            // IMMEDIATE takes the write lock now, waiting up to the busy timeout for another
            // process to release it. A deferred transaction would take it at its first write,
            // and could then fail at once with SQLITE_BUSY instead of waiting.
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Close every connection (waits for connections in use to be returned).
    pub(super) async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }

    /// Run `SELECT 1` (is the database there?).
    pub(super) async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Db::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }

    /// Whether [`Db::close`] was called.
    pub(super) fn is_closed(&self) -> bool {
        match self {
            Db::Sqlite(pool) => pool.is_closed(),
            Db::Postgres(pool) => pool.is_closed(),
        }
    }
}

impl Tx {
    /// Run a statement in this transaction; returns the rows affected.
    pub(super) async fn execute(&mut self, statement: Statement) -> Result<u64, sqlx::Error> {
        let Statement { sql, args } = statement;
        Ok(match self {
            Tx::Sqlite(tx) => bind_all!(sqlx::query(AssertSqlSafe(sql)), args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            Tx::Postgres(tx) => bind_all!(sqlx::query(AssertSqlSafe(sql)), args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    /// Make the transaction's writes durable.
    pub(super) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Arg::Int(Some(value))
    }
}

impl From<Option<i64>> for Arg {
    fn from(value: Option<i64>) -> Self {
        Arg::Int(value)
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Self {
        Arg::Text(Some(value))
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Arg::Text(Some(value.to_owned()))
    }
}

impl From<Option<String>> for Arg {
    fn from(value: Option<String>) -> Self {
        Arg::Text(value)
    }
}

impl From<Option<&str>> for Arg {
    fn from(value: Option<&str>) -> Self {
        Arg::Text(value.map(str::to_owned))
    }
}
