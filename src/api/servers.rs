//! `GET /api/mcp/servers` (with tools held for review), accepting a held tool,
//! `POST /api/config/reload` and `GET /readyz`.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::wire::catalog::{HeldTool, Server, ServerList};
use super::wire::reload::Reloaded;
use crate::access::{AuditEvent, Caller};
use crate::mcp::ApplySummary;

/// What an applied reload changed, as a [`ConfigReloader`](super::ConfigReloader) reports it.
/// Plain data: the reloader says what happened, and `api::wire` decides how clients see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// The MCP servers started, stopped, restarted and left alone.
    pub servers: ApplySummary,
    /// Every model of the new config, by name.
    pub models: Vec<String>,
    /// Config keys that changed but apply only after a restart (`server.bind`, say).
    pub restart_required: Vec<&'static str>,
}

/// Every configured server with status, protocol version, restarts, last error and stderr tail.
pub(super) async fn list(State(state): State<AppState>) -> Response {
    let statuses = state.hub.mcp().statuses();
    let catalog = state.hub.catalog();
    let list = ServerList {
        servers: statuses
            .iter()
            .map(|status| {
                let held = state.hub.held_tools(&status.name);
                Server::new(status, &catalog).with_held(
                    held.into_iter()
                        .map(|(tool, pinned)| HeldTool::new(tool, pinned))
                        .collect(),
                )
            })
            .collect(),
    };
    Json(list).into_response()
}

/// Accept the held definition of one tool (admin): pinned from now on, and offered.
pub(super) async fn accept_tool(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((server, tool)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let accepted = state.hub.accept_tool(&server, &tool);
    let outcome = if accepted.is_ok() { "ok" } else { "failed" };
    state.hub.audit().record(AuditEvent::by(
        &caller,
        "tool_accept",
        Some(format!("{server}/{tool}")),
        outcome,
    ));
    match accepted {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(err) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "tool_not_held",
            err.to_string(),
        )),
    }
}

/// Re-read the config file and apply it; an invalid file changes nothing and returns its errors.
pub(super) async fn reload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let reloaded = state.reloader.reload().await;
    let outcome = if reloaded.is_ok() { "ok" } else { "failed" };
    state
        .hub
        .audit()
        .record(AuditEvent::by(&caller, "config_reload", None, outcome));
    match reloaded {
        Ok(report) => Ok(Json(Reloaded::from(&report)).into_response()),
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

/// Ready to serve: the database answers. (Liveness is `/healthz`, which answers while the
/// process runs.) MCP servers are not required: they connect in the background and a server
/// that is down is a degraded catalog, not an unready process.
pub(super) async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.runs.store().ping().await.map_err(|err| {
        tracing::warn!(error = %err, "readiness check: the database does not answer");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the database does not answer",
        )
    })?;
    if let crate::store::StoreHealth::Unwritable { reason, .. } = state.runs.store().health() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("the store cannot write ({reason}); new runs are refused until it can"),
        ));
    }
    Ok("ready".into_response())
}
