//! Conversations and their messages. Writes go through the writer (ordered with run events);
//! reads use the reader pool.

use super::access::AccessWrite;
use super::db::{Statement, Tx};
use super::error::corrupt;
use super::runs::page_size;
use super::{ConversationDetail, ConversationRecord, MessageRecord, Scope, Store, StoreError};
use crate::domain::{ConversationId, RunId, UnixMillis, now_millis};

/// Roles a stored message may have.
const ROLES: [&str; 2] = ["user", "assistant"];

/// Conversation writes (run writes arrive as [`RunEvent`](crate::domain::RunEvent)s).
pub(super) enum Write {
    CreateConversation {
        id: ConversationId,
        title: String,
        user: Option<String>,
        at: UnixMillis,
    },
    RenameConversation {
        id: ConversationId,
        title: String,
        at: UnixMillis,
        /// Only if it is this user's.
        user: Option<String>,
    },
    DeleteConversation {
        id: ConversationId,
        /// Only if it is this user's.
        user: Option<String>,
    },
    /// Keys and sessions (`store::access`).
    Access(AccessWrite),
    /// Pinned tool definitions (`store::pins`).
    Pins(Vec<(String, String, crate::domain::Pinned)>),
    /// Checkpoints and claims of resumable runs (`store::resume`).
    Resume(super::resume::ResumeWrite),
    /// Sessions of `/mcp` clients (`store::mcp_sessions`).
    McpSession(super::mcp_sessions::SessionWrite),
    AppendMessage {
        conversation: ConversationId,
        role: String,
        content: String,
        run_id: Option<RunId>,
        at: UnixMillis,
    },
}

impl Store {
    /// Create an empty conversation.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] or [`StoreError::Closed`].
    pub async fn create_conversation(
        &self,
        title: &str,
        user: Option<&str>,
    ) -> Result<ConversationRecord, StoreError> {
        let at = now_millis();
        let record = ConversationRecord {
            id: ConversationId::new(),
            title: title.to_owned(),
            created_at: at,
            updated_at: at,
            user: user.map(str::to_owned),
        };
        self.write(Write::CreateConversation {
            id: record.id,
            title: record.title.clone(),
            user: record.user.clone(),
            at,
        })
        .await?;
        Ok(record)
    }

    /// Up to `limit` conversations, newest first, created before `before` when given (pass the
    /// last id of the previous page). A `limit` of 0 means [`super::DEFAULT_RUN_PAGE`]; it is
    /// at most [`super::MAX_RUN_PAGE`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn list_conversations(
        &self,
        scope: Scope<'_>,
        limit: u32,
        before: Option<ConversationId>,
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        // Ids are UUID v7 strings: their text order is their creation order. An absent filter
        // is a NULL parameter, so one statement serves every case.
        let statement = Statement::new(
            "SELECT id, title, created_at, updated_at, user_name FROM conversations \
             WHERE ($1 IS NULL OR id < $1) AND ($2 IS NULL OR user_name = $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(before.map(|id| id.to_string()))
        .bind(scope.user())
        .bind(i64::from(page_size(limit)));
        let rows: Vec<ConversationRow> = self.reader.fetch_all(statement).await?;
        Ok(rows
            .into_iter()
            .map(ConversationRow::into_record)
            .collect::<Result<_, _>>()?)
    }

    /// A conversation with all its messages, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] or [`StoreError::Database`].
    pub async fn get_conversation(
        &self,
        scope: Scope<'_>,
        id: ConversationId,
    ) -> Result<ConversationDetail, StoreError> {
        let row: Option<ConversationRow> = self
            .reader
            .fetch_optional(
                Statement::new(
                    "SELECT id, title, created_at, updated_at, user_name FROM conversations \
                     WHERE id = $1 AND ($2 IS NULL OR user_name = $2)",
                )
                .bind(id.to_string())
                .bind(scope.user()),
            )
            .await?;
        let conversation = row
            .ok_or_else(|| conversation_not_found(id))?
            .into_record()?;
        let rows: Vec<MessageRow> = self
            .reader
            .fetch_all(
                Statement::new(
                    "SELECT role, content, run_id, created_at FROM messages \
                     WHERE conversation_id = $1 ORDER BY id",
                )
                .bind(id.to_string()),
            )
            .await?;
        let messages = rows
            .into_iter()
            .map(MessageRow::into_record)
            .collect::<Result<_, _>>()?;
        Ok(ConversationDetail {
            conversation,
            messages,
        })
    }

    /// Change a conversation's title.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::Database`] or [`StoreError::Closed`].
    pub async fn rename_conversation(
        &self,
        scope: Scope<'_>,
        id: ConversationId,
        title: &str,
    ) -> Result<(), StoreError> {
        self.write(Write::RenameConversation {
            id,
            title: title.to_owned(),
            at: now_millis(),
            user: scope.user().map(str::to_owned),
        })
        .await
    }

    /// Delete a conversation and its messages. Its runs are kept (for `/debug`) with
    /// `conversation_id` set to null.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::Database`] or [`StoreError::Closed`].
    pub async fn delete_conversation(
        &self,
        scope: Scope<'_>,
        id: ConversationId,
    ) -> Result<(), StoreError> {
        self.write(Write::DeleteConversation {
            id,
            user: scope.user().map(str::to_owned),
        })
        .await
    }

    /// Append a message (`role` is `user` or `assistant`). Written in order with the run events
    /// recorded before it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for another role, [`StoreError::NotFound`] when the conversation
    /// does not exist, [`StoreError::Database`] or [`StoreError::Closed`].
    pub async fn append_message(
        &self,
        conversation: ConversationId,
        role: &str,
        content: &str,
        run_id: Option<RunId>,
    ) -> Result<(), StoreError> {
        if !ROLES.contains(&role) {
            return Err(StoreError::Invalid(format!(
                "message role {role:?} (expected user or assistant)"
            )));
        }
        self.write(Write::AppendMessage {
            conversation,
            role: role.to_owned(),
            content: content.to_owned(),
            run_id,
            at: now_millis(),
        })
        .await
    }
}

#[derive(sqlx::FromRow)]
struct ConversationRow {
    id: String,
    title: String,
    created_at: i64,
    updated_at: i64,
    user_name: Option<String>,
}

impl ConversationRow {
    fn into_record(self) -> Result<ConversationRecord, sqlx::Error> {
        Ok(ConversationRecord {
            id: self
                .id
                .parse()
                .map_err(|_| corrupt("conversation id", &self.id))?,
            title: self.title,
            created_at: self.created_at,
            updated_at: self.updated_at,
            user: self.user_name,
        })
    }
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    role: String,
    content: String,
    run_id: Option<String>,
    created_at: UnixMillis,
}

impl MessageRow {
    fn into_record(self) -> Result<MessageRecord, sqlx::Error> {
        let run_id = match self.run_id {
            Some(id) => Some(id.parse().map_err(|_| corrupt("run id", &id))?),
            None => None,
        };
        Ok(MessageRecord {
            role: self.role,
            content: self.content,
            run_id,
            created_at: self.created_at,
        })
    }
}

/// Apply one conversation write; `Ok(Err(NotFound))` when the conversation does not exist.
pub(super) async fn apply_write(
    tx: &mut Tx,
    write: &Write,
) -> Result<Result<(), StoreError>, sqlx::Error> {
    match write {
        Write::CreateConversation {
            id,
            title,
            user,
            at,
        } => {
            tx.execute(
                Statement::new(
                    "INSERT INTO conversations (id, title, created_at, updated_at, user_name) \
                     VALUES ($1, $2, $3, $3, $4)",
                )
                .bind(id.to_string())
                .bind(title.as_str())
                .bind(*at)
                .bind(user.as_deref()),
            )
            .await?;
        }
        Write::Access(write) => return super::access::apply(tx, write).await,
        Write::Pins(pins) => return super::pins::apply(tx, pins).await,
        Write::Resume(write) => return super::resume::apply(tx, write).await,
        Write::McpSession(write) => return super::mcp_sessions::apply(tx, write).await,
        Write::RenameConversation {
            id,
            title,
            at,
            user,
        } => {
            let updated = tx
                .execute(
                    Statement::new(
                        "UPDATE conversations SET title = $2, updated_at = $3 \
                         WHERE id = $1 AND ($4 IS NULL OR user_name = $4)",
                    )
                    .bind(id.to_string())
                    .bind(title.as_str())
                    .bind(*at)
                    .bind(user.as_deref()),
                )
                .await?;
            if updated == 0 {
                return Ok(Err(conversation_not_found(*id)));
            }
        }
        Write::DeleteConversation { id, user } => {
            let id = id.to_string();
            // The owner check comes first, so nothing of another user's conversation is touched.
            let deleted = tx
                .execute(
                    Statement::new(
                        "DELETE FROM conversations WHERE id = $1 AND ($2 IS NULL OR user_name = $2)",
                    )
                    .bind(id.as_str())
                    .bind(user.as_deref()),
                )
                .await?;
            if deleted == 0 {
                return Ok(Err(StoreError::NotFound(format!("conversation {id}"))));
            }
            tx.execute(
                Statement::new("DELETE FROM messages WHERE conversation_id = $1").bind(id.as_str()),
            )
            .await?;
            // Runs stay for debugging, detached from the conversation that no longer exists.
            tx.execute(
                Statement::new("UPDATE runs SET conversation_id = NULL WHERE conversation_id = $1")
                    .bind(id),
            )
            .await?;
        }
        Write::AppendMessage {
            conversation,
            role,
            content,
            run_id,
            at,
        } => {
            let updated = tx
                .execute(
                    Statement::new("UPDATE conversations SET updated_at = $2 WHERE id = $1")
                        .bind(conversation.to_string())
                        .bind(*at),
                )
                .await?;
            if updated == 0 {
                return Ok(Err(conversation_not_found(*conversation)));
            }
            tx.execute(
                Statement::new(
                    "INSERT INTO messages (conversation_id, role, content, run_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(conversation.to_string())
                .bind(role.as_str())
                .bind(content.as_str())
                .bind(run_id.map(|id| id.to_string()))
                .bind(*at),
            )
            .await?;
        }
    }
    Ok(Ok(()))
}

pub(super) fn conversation_not_found(id: ConversationId) -> StoreError {
    StoreError::NotFound(format!("conversation {id}"))
}
