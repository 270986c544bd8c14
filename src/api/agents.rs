//! `GET /api/agents`: the agents of `agents/*.yaml`, for pickers and filters.

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::wire::agents::{Agent, AgentList};
use crate::access::Caller;

/// Agents in name order, with what a user picks them by: description, model, mode and tool globs.
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let agents = state.runs.agents_for(&caller);
    let list = AgentList {
        agents: agents.iter().map(Agent::from).collect(),
    };
    Json(list).into_response()
}
