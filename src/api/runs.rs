//! `/api/runs`: the listing with filters and pages, one run as its DAG, cancellation, and the
//! live event stream of one run. Also how store failures become HTTP errors.
//!
//! `GET /api/runs/{id}/events` replays what the run did so far and then follows it, with the
//! event shapes of `POST /api/chat`. For a run that already ended it sends the stored final
//! state as one `run_finished` event and closes. A run the store says is running but this
//! process is not executing (a `switchboard chat` on the same database, say) is polled in the
//! store until it ends; only its `run_finished` is sent.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::chat::{self, Fallback};
use super::error::ApiError;
use crate::domain::{RunEvent, RunId, RunStatus, TokenUsage};
use crate::store::{RunDetail, RunFilter, RunPage, Store, StoreError};

/// How often a run executing elsewhere is looked up while a client follows it.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

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
}

/// Runs matching the query, newest first, one page at a time.
pub(super) async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<RunPage>, ApiError> {
    let Query(query) = query.map_err(|rejection| invalid_query(rejection.body_text()))?;
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => Some(RunStatus::parse(raw).ok_or_else(|| {
            invalid_query(format!(
                "status `{raw}` is not one of running, succeeded, failed, cancelled, \
                 interrupted, budget_exhausted"
            ))
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
    };
    Ok(Json(state.runs.store().list_runs(&filter).await?))
}

/// One run with its steps (input, output, error, timing, tokens) and the DAG's edges.
pub(super) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    let id: RunId = chat::parse_id(&id, "run")?;
    Ok(Json(state.runs.store().get_run(id).await?))
}

/// Cancel a running run: 202 at once; its stream and record end `cancelled` shortly after
/// (model request aborted, MCP cancellation sent for tool calls in flight).
pub(super) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: RunId = chat::parse_id(&id, "run")?;
    if state.runs.cancel(id).is_ok() {
        let body = json!({ "run_id": id, "status": "cancelling" });
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }
    let run = state.runs.store().get_run(id).await?;
    let message = match run.summary.status {
        RunStatus::Running => format!("run {id} is not running in this process"),
        status => format!("run {id} already ended ({})", status.as_str()),
    };
    Err(ApiError::new(StatusCode::CONFLICT, "not_running", message))
}

/// Live events of one run (see the module docs).
pub(super) async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: RunId = chat::parse_id(&id, "run")?;
    if let Some((history, live)) = state.runs.subscribe(id) {
        let store = state.runs.store().clone();
        let fallback: Fallback = Box::new(move || Box::pin(stored_end(store, id)));
        let stream = chat::follow(history, Some(live), Some(fallback));
        return Ok(chat::sse(stream).into_response());
    }
    let store = state.runs.store();
    let mut run = store.get_run(id).await?;
    if run.summary.status == RunStatus::Running {
        // It may have ended a moment ago, with its last rows still queued for the writer.
        store.flush().await;
        run = store.get_run(id).await?;
    }
    if run.summary.status != RunStatus::Running {
        let event = chat::named_event("run_finished", &finished_data(&run));
        let stream = futures::stream::once(async move { Ok(event) });
        return Ok(chat::sse(stream).into_response());
    }
    let store = store.clone();
    let stream = futures::stream::unfold(Some(store), move |store| async move {
        let store = store?;
        let event = loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            match store.get_run(id).await {
                Ok(run) if run.summary.status == RunStatus::Running => {}
                Ok(run) => break chat::named_event("run_finished", &finished_data(&run)),
                Err(err) => {
                    tracing::warn!(run_id = %id, error = %err, "following a run in the store failed");
                    return None;
                }
            }
        };
        Some((Ok(event), None))
    });
    Ok(chat::sse(stream).into_response())
}

/// The stored end of a run whose live broadcast closed without `run_finished`.
async fn stored_end(store: Store, id: RunId) -> Option<RunEvent> {
    store.flush().await;
    let run = store.get_run(id).await.ok()?;
    let summary = run.summary;
    (summary.status != RunStatus::Running).then(|| RunEvent::RunFinished {
        run_id: id,
        status: summary.status,
        answer: summary.answer,
        error: summary.error,
        usage: TokenUsage {
            input_tokens: summary.input_tokens,
            output_tokens: summary.output_tokens,
        },
        at: summary.finished_at.unwrap_or(summary.started_at),
    })
}

/// `run_finished` data of a stored run.
fn finished_data(run: &RunDetail) -> Value {
    let summary = &run.summary;
    chat::run_finished_data(
        summary.id,
        summary.status,
        summary.answer.as_deref(),
        summary.error.as_deref(),
        TokenUsage {
            input_tokens: summary.input_tokens,
            output_tokens: summary.output_tokens,
        },
        summary.finished_at.unwrap_or(summary.started_at),
        summary.duration_ms,
    )
}

fn invalid_query(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn number<T: std::str::FromStr>(raw: Option<&str>, name: &str) -> Result<Option<T>, ApiError> {
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
