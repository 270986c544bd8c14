//! `/api/conversations`: list, read (messages with the runs that produced or answered them),
//! rename and delete. Conversations are created by `POST /api/chat`; deleting one keeps its runs
//! for `/debug`, with their conversation unset.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::chat::parse_id;
use super::error::{ApiError, AppJson};
use super::wire::conversations::{Conversation, ConversationDetail, ConversationList};
use crate::access::{AuditEvent, Caller};
use crate::domain::ConversationId;
use crate::store::{DEFAULT_RUN_PAGE, MAX_RUN_PAGE, Scope};

/// Longest title, in characters.
const MAX_TITLE_CHARS: usize = 200;

/// Query of `GET /api/conversations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Page size (default 50, at most 200).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Body of `PATCH /api/conversations/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Rename {
    title: String,
}

/// Conversations, newest first: `{"conversations": [...], "next_cursor": "..." | null}`.
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            rejection.body_text(),
        )
    })?;
    let before = query
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| parse_id::<ConversationId>(c, "conversation"))
        .transpose()?;
    let limit = match query.limit.unwrap_or(0) {
        0 => DEFAULT_RUN_PAGE,
        n => n.min(MAX_RUN_PAGE),
    };
    let conversations = state
        .runs
        .store()
        .list_conversations(Scope::of(caller.owner()), limit, before)
        .await?;
    // A full page may have a successor; the next request finds out (an empty page ends it).
    let next_cursor = (conversations.len() == limit as usize)
        .then(|| conversations.last().map(|c| c.id.to_string()))
        .flatten();
    let list = ConversationList {
        conversations: conversations.iter().map(Conversation::from).collect(),
        next_cursor,
    };
    Ok(Json(list).into_response())
}

/// One conversation with every message, oldest first.
pub(super) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id::<ConversationId>(&id, "conversation")?;
    let detail = state
        .runs
        .store()
        .get_conversation(Scope::of(caller.owner()), id)
        .await?;
    Ok(Json(ConversationDetail::from(&detail)).into_response())
}

/// Rename; answers with the updated conversation (without its messages).
pub(super) async fn rename(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    AppJson(body): AppJson<Rename>,
) -> Result<Response, ApiError> {
    let id = parse_id::<ConversationId>(&id, "conversation")?;
    let title = body.title.trim();
    if title.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_title",
            "the title is empty",
        ));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_title",
            format!("the title is longer than {MAX_TITLE_CHARS} characters"),
        ));
    }
    let store = state.runs.store();
    let scope = Scope::of(caller.owner());
    store.rename_conversation(scope, id, title).await?;
    let detail = store.get_conversation(scope, id).await?;
    Ok(Json(Conversation::from(&detail.conversation)).into_response())
}

/// Delete a conversation and its messages (204); its runs stay.
pub(super) async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id::<ConversationId>(&id, "conversation")?;
    let deleted = state
        .runs
        .store()
        .delete_conversation(Scope::of(caller.owner()), id)
        .await;
    let outcome = if deleted.is_ok() { "ok" } else { "failed" };
    state.hub.audit().record(AuditEvent::by(
        &caller,
        "conversation_delete",
        Some(id.to_string()),
        outcome,
    ));
    deleted?;
    Ok(StatusCode::NO_CONTENT)
}
