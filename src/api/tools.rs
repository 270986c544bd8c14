//! `GET /api/tools` (the catalog) and `POST /api/tools/{name}/invoke`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, AppJson};
use crate::hub::Truncation;
use crate::mcp::CallOptions;
use crate::tools::ToolEntry;

/// The catalog with schemas and origin, plus tools left out and why.
pub(super) async fn list(State(state): State<AppState>) -> Json<Value> {
    let catalog = state.hub.catalog();
    let tools: Vec<Value> = catalog.iter().map(|t| tool_json(t)).collect();
    let dropped: Vec<Value> = catalog
        .dropped()
        .map(|d| json!({ "server": d.server, "tool": d.tool, "reason": d.reason.to_string() }))
        .collect();
    Json(json!({ "tools": tools, "dropped": dropped }))
}

fn tool_json(tool: &ToolEntry) -> Value {
    json!({
        "name": tool.exposed_name,
        "server": tool.server,
        "tool": tool.tool_name,
        "title": tool.title,
        "description": tool.description,
        "input_schema": *tool.input_schema,
        "output_schema": tool.output_schema.as_deref(),
        "annotations": tool.annotations,
        "openai": tool.openai_tool,
        "openai_strict": tool.openai_strict_tool,
    })
}

/// Validate and call one tool; the body is the arguments object.
pub(super) async fn invoke(
    State(state): State<AppState>,
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
        .invoke(&name, arguments, CallOptions::default())
        .await?;
    let body = serde_json::to_vec(&Invoked {
        tool: &outcome.tool.exposed_name,
        server: &outcome.tool.server,
        duration_ms: outcome.duration.as_secs_f64() * 1000.0,
        truncated: outcome.truncated.as_ref(),
        result: &outcome.result,
    })
    .map_err(|err| {
        tracing::error!(tool = %name, error = %err, "serializing a tool result");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the tool's result could not be encoded as JSON",
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The invoke answer, serialized straight from the call's result: building a `Value` tree first
/// would copy every result once more on the hot path of every tool call.
#[derive(serde::Serialize)]
struct Invoked<'a> {
    tool: &'a str,
    server: &'a str,
    duration_ms: f64,
    truncated: Option<&'a Truncation>,
    result: &'a CallToolResult,
}
