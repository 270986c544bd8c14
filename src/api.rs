//! The HTTP API: routes, handlers and wire shapes. The only module that knows status codes.
//!
//! `router(state)` is a plain function so tests can drive it without a socket.

mod error;
mod servers;
mod tools;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use futures::future::BoxFuture;

pub use error::{ApiError, AppJson};

use crate::hub::Hub;

/// Applies a fresh config; implemented by the composition root, which owns config loading.
pub trait ConfigReloader: Send + Sync {
    /// Re-read and apply. `Ok` is a JSON report of what changed; `Err` lists every config
    /// error (as display strings with file, line and key) and means nothing changed.
    fn reload(&self) -> BoxFuture<'_, Result<serde_json::Value, Vec<String>>>;
}

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    pub reloader: Arc<dyn ConfigReloader>,
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/tools", get(tools::list))
        .route("/api/tools/{name}/invoke", post(tools::invoke))
        .route("/api/mcp/servers", get(servers::list))
        .route("/api/config/reload", post(servers::reload))
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(state)
}
