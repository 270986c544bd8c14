//! `GET /api/agents`: the agents of `agents/*.yaml`, for pickers and filters.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::wire::agents::{Agent, AgentList};

/// Agents in name order, with what a user picks them by: description, model, mode and tool globs.
pub(super) async fn list(State(state): State<AppState>) -> Response {
    let agents = state.runs.agents();
    let list = AgentList {
        agents: agents.values().map(Agent::from).collect(),
    };
    Json(list).into_response()
}
