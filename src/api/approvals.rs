//! Approvals of tool calls the policy gates (`approval:`): `GET /api/approvals` lists the ones
//! waiting that the caller may decide (their own runs; all for an admin), and
//! `POST /api/runs/{id}/approvals/{approval}` decides one: `{"decision": "approve"}` (with
//! `"arguments"` to run it with edited arguments, checked against the tool's schema first) or
//! `{"decision": "deny", "reason": "..."}` (the model hears the reason).

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::chat;
use super::error::{ApiError, AppJson};
use super::wire::approvals::PendingList;
use super::wire::errors::ArgumentError;
use crate::access::Caller;
use crate::domain::RunId;
use crate::runs::{ApprovalError, DecideError, DecisionInput};

/// What a person decided.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Decision {
    Approve,
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    decision: Decision,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
}

/// Longest denial reason kept (it goes to the model).
const MAX_REASON_CHARS: usize = 2_000;

/// The approvals the caller may decide.
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    Json(PendingList::new(&state.runs.pending_approvals(&caller))).into_response()
}

/// Decide one approval; 204 once the run has the decision.
pub(super) async fn decide(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, approval)): Path<(String, String)>,
    AppJson(body): AppJson<Value>,
) -> Result<Response, ApiError> {
    let run_id: RunId = chat::parse_id(&id, "run")?;
    // Whose run it is comes before what the body says.
    if !state.runs.is_running_for(&caller, run_id) {
        return Err(not_running(run_id));
    }
    let body: DecideBody = serde_json::from_value(body).map_err(|err| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("request body: {err}"),
        )
    })?;
    if body
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("request body: `reason` may have at most {MAX_REASON_CHARS} characters"),
        ));
    }
    let input = DecisionInput {
        approve: matches!(body.decision, Decision::Approve),
        reason: body.reason,
        arguments: body.arguments,
    };
    match state
        .runs
        .decide_approval(&caller, run_id, &approval, input)
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(DecideError::NotRunning(_)) => Err(not_running(run_id)),
        Err(DecideError::Approval(err @ ApprovalError::NotPending { .. })) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "approval_not_pending",
            err.to_string(),
        )),
        Err(DecideError::Approval(err @ ApprovalError::ArgumentsWithDeny)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("request body: {err}"),
        )),
        Err(DecideError::Approval(ApprovalError::Invalid { errors })) => {
            let details: Vec<ArgumentError<'_>> = errors.iter().map(ArgumentError::from).collect();
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_arguments",
                "the edited arguments do not match the tool's input schema",
            )
            .with_details(details))
        }
    }
}

/// 404: not one of the caller's runs executing here.
fn not_running(run_id: RunId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "run_not_running",
        format!("no running run of yours with id {run_id}: its approvals can no longer be decided"),
    )
}
