//! `GET /api/models`: every configured model with tags, capabilities, availability and health.

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::wire::models::{Model, ModelList};
use crate::access::Caller;

/// Models in name order; API keys are never part of the listing.
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let models = state.models.list();
    let list = ModelList {
        models: models
            .iter()
            .filter(|m| caller.may_use_model(&m.name))
            .map(Model::from)
            .collect(),
    };
    Json(list).into_response()
}
