//! The HTTP API: routes, handlers and wire shapes. The only module that knows status codes.
//!
//! `router(state)` is a plain function so tests can drive it without a socket.

mod agents;
mod chat;
mod conversations;
mod error;
pub mod guard;
mod models;
mod openai;
mod runs;
mod servers;
mod tools;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use futures::future::BoxFuture;

pub use error::{ApiError, AppJson};
pub use servers::ReloadReport;

use crate::hub::Hub;
use crate::llm::ModelRegistry;

/// Applies a fresh config; implemented by the composition root, which owns config loading.
pub trait ConfigReloader: Send + Sync {
    /// Re-read and apply. `Ok` says what changed; `Err` lists every config error (as display
    /// strings with file, line and key) and means nothing changed.
    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, Vec<String>>>;
}

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    pub models: ModelRegistry,
    pub reloader: Arc<dyn ConfigReloader>,
    /// Starts, follows and cancels runs; owns the store they are written to.
    pub runs: crate::runs::RunService,
}

/// The API alone, with its fallbacks: what tests drive without the web UI. The server itself
/// serves `app::router`, which merges the UI's pages in before the fallbacks.
pub fn router(state: AppState) -> Router {
    with_fallbacks(routes()).with_state(state)
}

/// Every API route, without fallbacks, so the composition root can merge other routes (the web
/// UI) in first: a fallback applies to the routes registered before it.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/tools", get(tools::list))
        .route("/api/tools/{name}/invoke", post(tools::invoke))
        .route("/api/mcp/servers", get(servers::list))
        .route("/api/config/reload", post(servers::reload))
        .route("/api/models", get(models::list))
        .route("/api/agents", get(agents::list))
        // Users of the seed project reload models here; it applies the whole config, like above.
        .route("/api/models/reload", post(servers::reload))
        .route("/api/chat", post(chat::chat))
        .route("/api/conversations", get(conversations::list))
        .route(
            "/api/conversations/{id}",
            get(conversations::get)
                .patch(conversations::rename)
                .delete(conversations::delete),
        )
        .route("/api/runs", get(runs::list))
        .route("/api/runs/{id}", get(runs::get))
        .route("/api/runs/{id}/cancel", post(runs::cancel))
        .route("/api/runs/{id}/events", get(runs::events))
        .route("/v1/models", get(openai::models))
        .route("/v1/chat/completions", post(openai::completions))
}

/// Unknown routes and methods answered in the API's one error shape. The method fallback applies
/// to the routes already in `router`, so call this after the last route is merged in.
pub fn with_fallbacks<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method",
            )
        })
        .fallback(|| async { ApiError::not_found("no such route") })
}
