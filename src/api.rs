//! The HTTP API: routes, handlers and wire shapes. The only module that knows status codes.
//!
//! `router(state)` is a plain function so tests can drive it without a socket.

mod access;
mod agents;
mod approvals;
pub mod auth;
mod chat;
mod context;
mod conversations;
mod error;
pub mod guard;
mod inputs;
mod models;
mod openai;
mod protected_resource;
mod runs;
mod servers;
mod tools;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};
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
    /// Turns keys and session cookies into callers; manages keys.
    pub auth: crate::auth::Authenticator,
}

/// The API alone, with its fallbacks and authentication: what tests drive without the web UI.
/// The server itself serves `app::router`, which merges the UI's pages in before the
/// fallbacks and puts the gate in front.
pub fn router(state: AppState) -> Router {
    with_authentication(with_fallbacks(routes()), state.clone()).with_state(state)
}

/// `router` behind the authentication layer (`api::auth`), which every request passes: the
/// public list is decided there, admin-only routes are marked in [`routes`].
pub fn with_authentication(router: Router<AppState>, state: AppState) -> Router<AppState> {
    router.layer(axum::middleware::from_fn_with_state(
        state,
        auth::authenticate,
    ))
}

/// Every API route, without fallbacks, so the composition root can merge other routes (the web
/// UI) in first: a fallback applies to the routes registered before it.
pub fn routes() -> Router<AppState> {
    // Server status (with stderr tails), config reload, keys and the audit log.
    let admin = Router::new()
        .route("/api/mcp/servers", get(servers::list))
        .route(
            "/api/mcp/servers/{server}/tools/{tool}/accept",
            post(servers::accept_tool),
        )
        .route("/api/config/reload", post(servers::reload))
        // Users of the seed project reload models here; it applies the whole config, like above.
        .route("/api/models/reload", post(servers::reload))
        .route("/api/keys", get(access::list_keys).post(access::create_key))
        .route("/api/keys/{id}", delete(access::revoke_key))
        .route("/api/audit", get(access::audit))
        .route_layer(axum::middleware::from_fn(auth::require_admin));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(servers::ready))
        // `protected_resource::{MCP,ROOT}_METADATA_PATH`, written out for the access tests'
        // route table (a unit test there checks they agree).
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(protected_resource::metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource::metadata),
        )
        .route(
            "/api/session",
            get(access::current)
                .post(access::sign_in)
                .delete(access::sign_out),
        )
        .route("/api/tools", get(tools::list))
        .route("/api/tools/{name}/invoke", post(tools::invoke))
        .route("/api/models", get(models::list))
        .route("/api/agents", get(agents::list))
        .route("/api/context", get(context::list))
        .route("/api/context/read", post(context::read))
        .route("/api/context/prompt", post(context::prompt))
        .merge(admin)
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
        .route("/api/runs/{id}/inputs/{input}", post(inputs::answer))
        .route(
            "/api/runs/{id}/approvals/{approval}",
            post(approvals::decide),
        )
        .route("/api/approvals", get(approvals::list))
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
