//! `GET /api/models`: every configured model with tags, capabilities, availability and health.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;

/// Models in name order; API keys are never part of the listing.
pub(super) async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "models": state.models.list() }))
}
