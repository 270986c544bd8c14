//! `GET /api/context`, `POST /api/context/read`, `POST /api/context/prompt`: the upstream
//! servers' resources and prompts the caller may use (`hub::context`), for the chat (a prompt
//! to start a message, resources to attach) and `/servers`.

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::AppState;
use super::error::{ApiError, AppJson};
use super::wire::context::{ContextList, PromptMessages, ReadView};
use crate::access::Caller;

/// Everything the caller may use, from every connected server that offers it.
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let (resources, templates, prompts) = tokio::join!(
        state.hub.resources(&caller),
        state.hub.resource_templates(&caller),
        state.hub.prompts(&caller),
    );
    Json(ContextList::new(resources, templates, prompts)).into_response()
}

/// Body of `POST /api/context/read`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReadRequest {
    server: String,
    uri: String,
}

/// Read one resource.
pub(super) async fn read(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppJson(request): AppJson<ReadRequest>,
) -> Result<Response, ApiError> {
    let read = state
        .hub
        .read_resource(&caller, &request.server, &request.uri)
        .await?;
    Ok(Json(ReadView::new(&read)).into_response())
}

/// Body of `POST /api/context/prompt`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PromptRequest {
    server: String,
    name: String,
    #[serde(default)]
    arguments: Map<String, Value>,
}

/// Get one prompt with its arguments.
pub(super) async fn prompt(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppJson(request): AppJson<PromptRequest>,
) -> Result<Response, ApiError> {
    if let Some((key, _)) = request.arguments.iter().find(|(_, v)| !v.is_string()) {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("request body: arguments.{key}: prompt arguments are strings"),
        ));
    }
    let arguments = (!request.arguments.is_empty()).then_some(request.arguments);
    let prompt = state
        .hub
        .get_prompt(&caller, &request.server, &request.name, arguments)
        .await?;
    Ok(Json(PromptMessages::new(&prompt)).into_response())
}
