//! `GET /api/tools` (the catalog) and `POST /api/tools/{name}/invoke`.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, AppJson};
use super::wire::catalog::{ApprovalView, Invoked, ToolList};
use crate::access::Caller;
use crate::mcp::CallOptions;

/// The catalog with schemas and origin, plus tools left out and why.
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let catalog = state.hub.catalog();
    let judge = |tool: &crate::tools::ToolEntry| {
        ApprovalView::new(state.hub.verdict(&caller, tool), state.hub.risk(tool))
    };
    Json(ToolList::new(&catalog, &caller, judge)).into_response()
}

/// Validate and call one tool; the body is the arguments object.
pub(super) async fn invoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    AppJson(arguments): AppJson<Value>,
) -> Result<Response, ApiError> {
    if !arguments.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "request body: the arguments must be a JSON object",
        ));
    }
    let outcome = state
        .hub
        .invoke(&caller, &name, arguments, CallOptions::default())
        .await?;
    // Serialized straight from the call's result: building a `Value` tree first would copy
    // every result once more on the hot path of every tool call.
    let body = serde_json::to_vec(&Invoked::from(&outcome)).map_err(|err| {
        tracing::error!(tool = %name, error = %err, "serializing a tool result");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the tool's result could not be encoded as JSON",
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
