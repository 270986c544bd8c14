//! Pinned tool definitions (`tools::pins`): loaded once at start-up into the hub's book, and
//! each changed entry written back through the writer.

use serde_json::Value;

use super::cap::stored_json;
use super::conversations::Write;
use super::db::{Statement, Tx};
use super::{Store, StoreError};
use crate::domain::{Pin, Pinned, now_millis};

impl Store {
    /// Every pin, as (server, tool, what is pinned).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn load_pins(&self) -> Result<Vec<(String, String, Pinned)>, StoreError> {
        let rows: Vec<PinRow> = self
            .reader
            .fetch_all(Statement::new(
                "SELECT server, tool, accepted_hash, accepted, pending_hash, pending \
                 FROM tool_pins ORDER BY server, tool",
            ))
            .await?;
        Ok(rows.into_iter().map(PinRow::into_entry).collect())
    }

    /// Write the pins of these tools.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Closed`].
    pub async fn save_pins(&self, pins: Vec<(String, String, Pinned)>) -> Result<(), StoreError> {
        self.write(Write::Pins(pins)).await
    }
}

/// Apply [`Write::Pins`].
pub(super) async fn apply(
    tx: &mut Tx,
    pins: &[(String, String, Pinned)],
) -> Result<Result<(), StoreError>, sqlx::Error> {
    let at = now_millis();
    for (server, tool, pinned) in pins {
        let hash = |pin: &Option<Pin>| pin.as_ref().map(|p| p.hash.clone());
        let json = |pin: &Option<Pin>| pin.as_ref().map(|p| stored_json(&p.definition));
        tx.execute(
            Statement::new(
                "INSERT INTO tool_pins (server, tool, accepted_hash, accepted, pending_hash, \
                 pending, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (server, tool) DO UPDATE SET accepted_hash = excluded.accepted_hash, \
                 accepted = excluded.accepted, pending_hash = excluded.pending_hash, \
                 pending = excluded.pending, updated_at = excluded.updated_at",
            )
            .bind(server.as_str())
            .bind(tool.as_str())
            .bind(hash(&pinned.accepted))
            .bind(json(&pinned.accepted))
            .bind(hash(&pinned.pending))
            .bind(json(&pinned.pending))
            .bind(at),
        )
        .await?;
    }
    Ok(Ok(()))
}

#[derive(sqlx::FromRow)]
struct PinRow {
    server: String,
    tool: String,
    accepted_hash: Option<String>,
    accepted: Option<String>,
    pending_hash: Option<String>,
    pending: Option<String>,
}

impl PinRow {
    fn into_entry(self) -> (String, String, Pinned) {
        let pin = |hash: Option<String>, json: Option<String>| {
            hash.map(|hash| Pin {
                hash,
                definition: json
                    .and_then(|text| serde_json::from_str(&text).ok())
                    .unwrap_or(Value::Null),
            })
        };
        (
            self.server,
            self.tool,
            Pinned {
                accepted: pin(self.accepted_hash, self.accepted),
                pending: pin(self.pending_hash, self.pending),
            },
        )
    }
}
