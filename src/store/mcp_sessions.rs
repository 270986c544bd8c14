//! The sessions of `/mcp` clients (the `initialize` era), shared by every replica on the
//! store: rmcp keeps a session's live half in the process that serves it and asks this table
//! for the client's `initialize` parameters when a request of that session reaches a replica
//! that does not know it (`gateway.rs`). The state is opaque JSON to the store.

use std::time::Duration;

use super::conversations::Write;
use super::db::{Statement, Tx};
use super::{Store, StoreError};
use crate::domain::now_millis;

/// How long a session is kept once begun: a client idle for longer begins a new one (rmcp
/// records a session when it begins and forgets it when the client ends it; it does not say
/// when a session was last used).
pub const MCP_SESSION_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// One write to `mcp_sessions`.
#[derive(Debug)]
pub(super) enum SessionWrite {
    /// Keep `state` for `id` (and prune sessions past the retention).
    Save {
        id: String,
        state: String,
    },
    Delete {
        id: String,
    },
}

impl Store {
    /// The state kept for session `id`, if any (and not past the retention).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn load_mcp_session(&self, id: &str) -> Result<Option<String>, StoreError> {
        let since = now_millis().saturating_sub(retention_ms());
        let row: Option<(String,)> = self
            .reader
            .fetch_optional(
                Statement::new("SELECT state FROM mcp_sessions WHERE id = $1 AND created_at >= $2")
                    .bind(id)
                    .bind(since),
            )
            .await?;
        Ok(row.map(|(state,)| state))
    }

    /// Keep `state` for session `id`, committed when this returns (a replica may be asked for
    /// the session by the client's very next request).
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Closed`].
    pub async fn save_mcp_session(&self, id: &str, state: String) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(Write::McpSession(SessionWrite::Save { id, state }))
            .await
    }

    /// Forget session `id` (the client ended it).
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Closed`].
    pub async fn delete_mcp_session(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(Write::McpSession(SessionWrite::Delete { id }))
            .await
    }
}

fn retention_ms() -> i64 {
    i64::try_from(MCP_SESSION_RETENTION.as_millis()).unwrap_or(i64::MAX)
}

/// Apply [`Write::McpSession`].
pub(super) async fn apply(
    tx: &mut Tx,
    write: &SessionWrite,
) -> Result<Result<(), StoreError>, sqlx::Error> {
    match write {
        SessionWrite::Save { id, state } => {
            let at = now_millis();
            tx.execute(
                Statement::new("DELETE FROM mcp_sessions WHERE created_at < $1")
                    .bind(at.saturating_sub(retention_ms())),
            )
            .await?;
            tx.execute(
                Statement::new(
                    "INSERT INTO mcp_sessions (id, state, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET state = excluded.state",
                )
                .bind(id.as_str())
                .bind(state.as_str())
                .bind(at),
            )
            .await?;
        }
        SessionWrite::Delete { id } => {
            tx.execute(Statement::new("DELETE FROM mcp_sessions WHERE id = $1").bind(id.as_str()))
                .await?;
        }
    }
    Ok(Ok(()))
}
