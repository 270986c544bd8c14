//! `GET /api/mcp/servers` and `POST /api/config/reload`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

/// Every configured server with status, protocol version, restarts, last error and stderr tail.
pub(super) async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "servers": state.hub.mcp().statuses() }))
}

/// Re-read the config file and apply it; an invalid file changes nothing and returns its errors.
pub(super) async fn reload(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.reloader.reload().await {
        Ok(report) => Ok(Json(report)),
        Err(errors) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_config",
            format!(
                "the config has {} error(s); nothing was changed",
                errors.len()
            ),
        )
        .with_details(errors)),
    }
}
