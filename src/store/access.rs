//! API keys, browser sessions and the audit log. Writes go through the writer like every other
//! write (so SQLite never sees two writers); the audit log is only ever appended to.

use super::cap::stored_text;
use super::conversations::Write;
use super::db::{Statement, Tx};
use super::runs::page_size;
use super::{
    AuditEntry, AuditFilter, AuditPage, AuditRecord, KeyRecord, SessionRecord, Store, StoreError,
};
use crate::domain::UnixMillis;

/// Longest stored `target`, `client`, user name or action of an audit line, in bytes.
const MAX_AUDIT_FIELD_BYTES: usize = 512;

/// Key and session writes.
pub(super) enum AccessWrite {
    CreateKey(KeyRecord),
    RevokeKey { id: String, at: UnixMillis },
    CreateSession(SessionRecord),
    DeleteSession { hash: String },
}

impl Store {
    /// Store a new key.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for an id already taken, [`StoreError::Database`],
    /// [`StoreError::Closed`].
    pub async fn create_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        self.write(Write::Access(AccessWrite::CreateKey(key.clone())))
            .await
    }

    /// Every key, revoked ones too, newest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows: Vec<KeyRow> = self
            .reader
            .fetch_all(Statement::new(
                "SELECT id, user_name, role, hash, created_at, expires_at, revoked_at \
                 FROM api_keys ORDER BY created_at DESC, id DESC",
            ))
            .await?;
        Ok(rows.into_iter().map(KeyRow::into_record).collect())
    }

    /// One key by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn get_key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row: Option<KeyRow> = self
            .reader
            .fetch_optional(
                Statement::new(
                    "SELECT id, user_name, role, hash, created_at, expires_at, revoked_at \
                     FROM api_keys WHERE id = $1",
                )
                .bind(id),
            )
            .await?;
        Ok(row.map(KeyRow::into_record))
    }

    /// Revoke a key (a second revocation keeps the first time) and end its sessions.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such key, [`StoreError::Database`],
    /// [`StoreError::Closed`].
    pub async fn revoke_key(&self, id: &str, at: UnixMillis) -> Result<(), StoreError> {
        self.write(Write::Access(AccessWrite::RevokeKey {
            id: id.to_owned(),
            at,
        }))
        .await
    }

    /// Store a new session.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when its key does not exist, [`StoreError::Database`],
    /// [`StoreError::Closed`].
    pub async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.write(Write::Access(AccessWrite::CreateSession(session.clone())))
            .await
    }

    /// A session by the hash of its token.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn get_session(&self, hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> = self
            .reader
            .fetch_optional(
                Statement::new(
                    "SELECT hash, key_id, created_at, expires_at FROM sessions WHERE hash = $1",
                )
                .bind(hash),
            )
            .await?;
        Ok(row.map(|row| SessionRecord {
            hash: row.hash,
            key_id: row.key_id,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }))
    }

    /// End a session; an unknown one is fine.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Closed`].
    pub async fn delete_session(&self, hash: &str) -> Result<(), StoreError> {
        self.write(Write::Access(AccessWrite::DeleteSession {
            hash: hash.to_owned(),
        }))
        .await
    }

    /// Audit lines matching `filter`, newest first, one page at a time.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a cursor this store did not hand out,
    /// [`StoreError::Database`].
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<AuditPage, StoreError> {
        let limit = page_size(filter.limit);
        let mut conditions = Vec::new();
        let mut args: Vec<super::db::Arg> = Vec::new();
        let mut arg = |value: super::db::Arg| {
            args.push(value);
            format!("${}", args.len())
        };
        for (column, value) in [
            ("user_name", &filter.user),
            ("action", &filter.action),
            ("outcome", &filter.outcome),
        ] {
            if let Some(value) = value {
                conditions.push(format!("{column} = {}", arg(value.as_str().into())));
            }
        }
        if let Some(since) = filter.since {
            conditions.push(format!("at >= {}", arg(since.into())));
        }
        if let Some(until) = filter.until {
            conditions.push(format!("at < {}", arg(until.into())));
        }
        if let Some(cursor) = &filter.cursor {
            let before: i64 = cursor.parse().ok().filter(|id| *id > 0).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "cursor {cursor:?} is not one this server handed out"
                ))
            })?;
            conditions.push(format!("id < {}", arg(before.into())));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit_arg = arg((i64::from(limit) + 1).into());
        // Ids grow with insertion, which is time order: one key orders and pages.
        let sql = format!(
            "SELECT id, at, user_name, key_id, action, target, outcome, client, trace_id \
             FROM audit {where_clause} ORDER BY id DESC LIMIT {limit_arg}"
        );
        let rows: Vec<AuditRow> = self
            .reader
            .fetch_all(Statement::assembled(sql, args))
            .await?;
        let more = rows.len() > limit as usize;
        let entries: Vec<AuditRecord> = rows
            .into_iter()
            .take(limit as usize)
            .map(AuditRow::into_record)
            .collect();
        let next_cursor = more
            .then(|| entries.last().map(|last| last.id.to_string()))
            .flatten();
        Ok(AuditPage {
            entries,
            next_cursor,
        })
    }
}

/// Apply one key or session write.
pub(super) async fn apply(
    tx: &mut Tx,
    write: &AccessWrite,
) -> Result<Result<(), StoreError>, sqlx::Error> {
    match write {
        AccessWrite::CreateKey(key) => {
            let inserted = tx
                .execute(
                    Statement::new(
                        "INSERT INTO api_keys (id, user_name, role, hash, created_at, expires_at, revoked_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(key.id.as_str())
                    .bind(key.user.as_str())
                    .bind(key.role.as_str())
                    .bind(key.hash.as_str())
                    .bind(key.created_at)
                    .bind(key.expires_at)
                    .bind(key.revoked_at),
                )
                .await?;
            if inserted == 0 {
                return Ok(Err(StoreError::Conflict(format!(
                    "key {} already exists",
                    key.id
                ))));
            }
        }
        AccessWrite::RevokeKey { id, at } => {
            let exists = tx
                .execute(
                    Statement::new(
                        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
                    )
                    .bind(id.as_str())
                    .bind(*at),
                )
                .await?;
            if exists == 0 {
                return Ok(Err(StoreError::NotFound(format!("key {}", shown_id(id)))));
            }
            tx.execute(Statement::new("DELETE FROM sessions WHERE key_id = $1").bind(id.as_str()))
                .await?;
        }
        AccessWrite::CreateSession(session) => {
            let inserted = tx
                .execute(
                    Statement::new(
                        "INSERT INTO sessions (hash, key_id, created_at, expires_at) \
                         SELECT $1, id, $3, $4 FROM api_keys WHERE id = $2 AND revoked_at IS NULL",
                    )
                    .bind(session.hash.as_str())
                    .bind(session.key_id.as_str())
                    .bind(session.created_at)
                    .bind(session.expires_at),
                )
                .await?;
            if inserted == 0 {
                return Ok(Err(StoreError::NotFound(format!(
                    "key {}",
                    shown_id(&session.key_id)
                ))));
            }
        }
        AccessWrite::DeleteSession { hash } => {
            tx.execute(Statement::new("DELETE FROM sessions WHERE hash = $1").bind(hash.as_str()))
                .await?;
        }
    }
    Ok(Ok(()))
}

/// Append one audit line, its free-text fields capped.
pub(super) async fn insert_audit(
    tx: &mut Tx,
    entry: &AuditEntry,
) -> Result<Result<(), StoreError>, sqlx::Error> {
    let capped = |text: &Option<String>| {
        text.as_deref()
            .map(|t| stored_text(t, MAX_AUDIT_FIELD_BYTES))
    };
    tx.execute(
        Statement::new(
            "INSERT INTO audit (at, user_name, key_id, action, target, outcome, client, trace_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(entry.at)
        .bind(capped(&entry.user))
        .bind(capped(&entry.key_id))
        .bind(stored_text(&entry.action, MAX_AUDIT_FIELD_BYTES))
        .bind(capped(&entry.target))
        .bind(stored_text(&entry.outcome, MAX_AUDIT_FIELD_BYTES))
        .bind(capped(&entry.client))
        .bind(capped(&entry.trace_id)),
    )
    .await?;
    Ok(Ok(()))
}

/// A key id as a message may show it (ids come from requests: bounded, printable).
fn shown_id(id: &str) -> String {
    id.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    user_name: String,
    role: String,
    hash: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl KeyRow {
    fn into_record(self) -> KeyRecord {
        KeyRecord {
            id: self.id,
            user: self.user_name,
            role: self.role,
            hash: self.hash,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    hash: String,
    key_id: String,
    created_at: i64,
    expires_at: i64,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    user_name: Option<String>,
    key_id: Option<String>,
    action: String,
    target: Option<String>,
    outcome: String,
    client: Option<String>,
    trace_id: Option<String>,
}

impl AuditRow {
    fn into_record(self) -> AuditRecord {
        AuditRecord {
            id: self.id,
            entry: AuditEntry {
                at: self.at,
                user: self.user_name,
                key_id: self.key_id,
                action: self.action,
                target: self.target,
                outcome: self.outcome,
                client: self.client,
                trace_id: self.trace_id,
            },
        }
    }
}
