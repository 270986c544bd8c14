//! `GET /api/agents`: the agents of `agents/*.yaml`, for pickers and filters.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;

/// Agents in name order, with what a user picks them by: description, model, mode and tool globs.
pub(super) async fn list(State(state): State<AppState>) -> Json<Value> {
    let agents: Vec<Value> = state
        .runs
        .agents()
        .values()
        .map(|agent| {
            json!({
                "name": agent.name,
                "description": agent.description,
                "model": agent.model,
                "mode": agent.mode.name(),
                "tools": agent.tools,
            })
        })
        .collect();
    Json(json!({ "agents": agents }))
}
