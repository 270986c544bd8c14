//! `/api/runs`: the listing with filters and pages, one run as its DAG, cancellation, and the
//! live event stream of one run. Also how store failures become HTTP errors.
//!
//! `GET /api/runs/{id}/events` replays what the run did so far and then follows it, with the
//! event shapes of `POST /api/chat`. For a run that already ended it sends the stored final
//! state as one `run_finished` event and closes. A run the store says is running but this
//! process is not executing (a `switchboard chat` on the same database, say) is polled in the
//! store until it ends; only its `run_finished` is sent.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::chat;
use super::error::ApiError;
use super::wire::runs::{Cancelling, RunDetail, RunPage};
use crate::access::Caller;
use crate::domain::{RunId, RunStatus};
use crate::store::{RunFilter, Scope, StoreError};

/// Query of `GET /api/runs`; every filter is optional and they combine with AND.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    status: Option<String>,
    agent: Option<String>,
    model: Option<String>,
    /// Started at or after (Unix milliseconds).
    since: Option<String>,
    /// Started before (Unix milliseconds).
    until: Option<String>,
    /// Case-insensitive substring of the user message.
    q: Option<String>,
    /// Page size (default 50, at most 200).
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Runs of this user only (admins; everyone else sees only their own runs anyway).
    user: Option<String>,
}

/// Runs matching the query, newest first, one page at a time.
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| invalid_query(rejection.body_text()))?;
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => Some(RunStatus::parse(raw).ok_or_else(|| {
            let known: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
            invalid_query(format!("status `{raw}` is not one of {}", known.join(", ")))
        })?),
        None => None,
    };
    let filter = RunFilter {
        status,
        agent: non_empty(query.agent),
        model: non_empty(query.model),
        since: number(query.since.as_deref(), "since")?,
        until: number(query.until.as_deref(), "until")?,
        search: non_empty(query.q),
        limit: number(query.limit.as_deref(), "limit")?.unwrap_or(0),
        cursor: non_empty(query.cursor),
        user: match caller.owner() {
            Some(own) => Some(own.to_owned()),
            None => non_empty(query.user),
        },
    };
    let page = state.runs.store().list_runs(&filter).await?;
    Ok(Json(RunPage::from(&page)).into_response())
}

/// One run with its steps (input, output, error, timing, tokens) and the DAG's edges.
pub(super) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: RunId = chat::parse_id(&id, "run")?;
    let run = state
        .runs
        .store()
        .get_run(Scope::of(caller.owner()), id)
        .await?;
    Ok(Json(RunDetail::from(&run)).into_response())
}

/// Cancel a running run: 202 at once; its stream and record end `cancelled` shortly after
/// (model request aborted, MCP cancellation sent for tool calls in flight).
pub(super) async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: RunId = chat::parse_id(&id, "run")?;
    if state.runs.cancel(&caller, id).is_ok() {
        return Ok((StatusCode::ACCEPTED, Json(Cancelling::new(id))).into_response());
    }
    let run = state
        .runs
        .store()
        .get_run(Scope::of(caller.owner()), id)
        .await?;
    let message = match run.summary.status {
        RunStatus::Running | RunStatus::Waiting => {
            format!("run {id} is not running in this process")
        }
        status => format!("run {id} already ended ({})", status.as_str()),
    };
    Err(ApiError::new(StatusCode::CONFLICT, "not_running", message))
}

/// Live events of one run (see the module docs).
pub(super) async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: RunId = chat::parse_id(&id, "run")?;
    let events = state.runs.follow(&caller, id).await?;
    Ok(chat::sse(chat::follow(events)).into_response())
}

fn invalid_query(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message)
}

pub(super) fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

pub(super) fn number<T: std::str::FromStr>(
    raw: Option<&str>,
    name: &str,
) -> Result<Option<T>, ApiError> {
    match raw.filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(raw) => raw.parse().map(Some).map_err(|_| {
            invalid_query(format!("{name} `{raw}` is not a non-negative whole number"))
        }),
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::NotFound(_) => ApiError::not_found(err.to_string()),
            StoreError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", err.to_string())
            }
            StoreError::Invalid(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_argument", err.to_string())
            }
            StoreError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            ),
            // Database failures: logged with their whole chain, never sent.
            _ => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                error_chain(&err),
            ),
        }
    }
}

/// `err: its source: its source's source…`, for the log.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
