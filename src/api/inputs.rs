//! `POST /api/runs/{id}/inputs/{input}`: the person's answer to a question a run's MCP server
//! asked during a tool call (MCP elicitation). The question arrives as the run's
//! `input_requested` event; the answer is checked against the server's form before it is sent
//! back, and only the run's owner (or an admin) may give it.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::chat;
use super::error::{ApiError, AppJson};
use super::wire::errors::ArgumentError;
use crate::access::Caller;
use crate::domain::{InputAction, RunId};
use crate::mcp::asks::InputAnswer;
use crate::runs::{AnswerError, InputError};

/// The body: `{"action": "accept", "content": {...}}`, or `decline` / `cancel` without content.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AnswerBody {
    action: InputAction,
    #[serde(default)]
    content: Option<Value>,
}

/// Answer one open question; 204 when the server has it.
pub(super) async fn answer(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, input)): Path<(String, String)>,
    AppJson(body): AppJson<Value>,
) -> Result<Response, ApiError> {
    let run_id: RunId = chat::parse_id(&id, "run")?;
    // Whose run it is comes before what the body says: another user's run is 404 whatever
    // they send.
    if !state.runs.is_running_for(&caller, run_id) {
        return Err(not_running(run_id));
    }
    let body: AnswerBody = serde_json::from_value(body).map_err(|err| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("request body: {err}"),
        )
    })?;
    let answer = InputAnswer {
        action: body.action,
        content: body.content,
    };
    match state.runs.answer_input(&caller, run_id, &input, answer) {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(AnswerError::NotRunning(_)) => Err(not_running(run_id)),
        Err(AnswerError::Input(err @ InputError::NotPending { .. })) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "input_not_pending",
            err.to_string(),
        )),
        Err(AnswerError::Input(err @ InputError::ContentWithoutAccept)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("request body: {err}"),
        )),
        Err(AnswerError::Input(InputError::Invalid { errors })) => {
            let details: Vec<ArgumentError<'_>> = errors.iter().map(ArgumentError::from).collect();
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                "the answer does not match the form the server asked for",
            )
            .with_details(details))
        }
    }
}

/// 404: the run is not one of the caller's running here (ended, another user's, or unknown).
fn not_running(run_id: RunId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "run_not_running",
        format!(
            "no running run of yours with id {run_id}: its questions can no longer be answered"
        ),
    )
}
