//! `GET /api/tools` (the catalog) and `POST /api/tools/{name}/invoke`.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, AppJson};
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
) -> Result<Json<Value>, ApiError> {
    if !arguments.is_object() {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_body",
            "request body: the arguments must be a JSON object",
        ));
    }
    let outcome = state
        .hub
        .invoke(&name, arguments, CallOptions::default())
        .await?;
    Ok(Json(json!({
        "tool": outcome.tool.exposed_name,
        "server": outcome.tool.server,
        "duration_ms": outcome.duration.as_secs_f64() * 1000.0,
        "truncated": outcome.truncated,
        "result": outcome.result,
    })))
}
