//! `POST /api/chat`: start a run and answer with a Server-Sent Events stream of its events. Also
//! the wire shape of run events, which `GET /api/runs/{id}/events` shares.
//!
//! The event shapes are in `wire::events`.
//!
//! A client that disconnects does not cancel its run: the run goes on and is stored, and
//! `GET /api/runs/{id}/events` picks it up again. Cancelling is explicit
//! (`POST /api/runs/{id}/cancel`). A client too slow to keep up skips ahead (an SSE comment says
//! how many events it missed) instead of slowing the run down or failing it.
//!
//! Failures before the run starts (empty message, unknown model or agent, unavailable model) are
//! ordinary JSON errors, not streams.

use std::convert::Infallible;
use std::str::FromStr;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, AppJson};
use super::wire::events::WireEvents;
use crate::access::Caller;
use crate::domain::{ConversationId, RunId};
use crate::llm::LlmError;
use crate::runs::{ChatInput, Followed, RunError, RunEvents};

/// Header naming the run a response belongs to (chat streams and the OpenAI-compatible API).
pub(super) const RUN_ID_HEADER: &str = "x-switchboard-run-id";
/// Header with the run's W3C trace id.
pub(super) const TRACE_ID_HEADER: &str = "x-switchboard-trace-id";

/// Body of `POST /api/chat`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChatRequest {
    message: String,
    /// Continue this conversation; absent starts a new one.
    conversation_id: Option<String>,
    /// A configured model; absent means the agent's model or the default model.
    model: Option<String>,
    /// An agent; absent means plain chat with every tool.
    agent: Option<String>,
    temperature: Option<f64>,
    /// Resources to attach (`GET /api/context` lists them): read now, with the caller's role,
    /// and given to the model after the message.
    #[serde(default)]
    attachments: Vec<Attachment>,
}

/// One resource to attach to a message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Attachment {
    server: String,
    uri: String,
}

/// Most resources one message may attach.
const MAX_ATTACHMENTS: usize = 8;

/// `message` with each attachment's text after it, each marked with where it is from; a
/// binary part is named, not inlined. Too many, unreadable or forbidden ones are the request's
/// error (nothing is sent), and the message caps apply to the result.
async fn with_attachments(
    state: &AppState,
    caller: &Caller,
    message: String,
    attachments: &[Attachment],
) -> Result<String, ApiError> {
    if attachments.len() > MAX_ATTACHMENTS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!(
                "request body: attachments: {} resources, at most {MAX_ATTACHMENTS} may be attached",
                attachments.len()
            ),
        ));
    }
    let mut text = message;
    for attachment in attachments {
        let read = state
            .hub
            .read_resource(caller, &attachment.server, &attachment.uri)
            .await?;
        let view = super::wire::context::ReadView::new(&read);
        for part in view.contents {
            let body = match (&part.text, part.bytes) {
                (Some(body), _) => body.clone(),
                (None, bytes) => format!("(binary, {} bytes, not included)", bytes.unwrap_or(0)),
            };
            let kind = part.mime_type.as_deref().unwrap_or("text/plain");
            text.push_str(&format!(
                "\n\n--- attached resource {} from {} ({kind}) ---\n{body}",
                part.uri, attachment.server
            ));
        }
    }
    Ok(text)
}

/// Start a run and stream its events.
pub(super) async fn chat(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppJson(request): AppJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let conversation_id = request
        .conversation_id
        .as_deref()
        .map(|id| parse_id::<ConversationId>(id, "conversation"))
        .transpose()?;
    if let Some(model) = &request.model {
        check_model_known(&state, &caller, model)?;
    }
    check_temperature(request.temperature)?;
    let message = with_attachments(&state, &caller, request.message, &request.attachments).await?;
    let started = state
        .runs
        .start(
            &caller,
            ChatInput {
                conversation_id,
                model: request.model,
                agent: request.agent,
                message,
                history: None,
                temperature: request.temperature,
                // The chat's person answers the servers' questions as the run goes.
                attended: true,
            },
        )
        .await?;
    let headers = run_headers(started.run_id, &started.trace_id);
    Ok((headers, sse(follow(started.events))).into_response())
}

/// The SSE events of a followed run: each run event in its wire shape; a reader that fell
/// behind gets a comment saying how many events it skipped.
pub(super) fn follow(
    events: RunEvents,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let wire = WireEvents::starting_at(events.started_at());
    futures::stream::unfold((events, wire), |(mut events, mut wire)| async move {
        let event = match events.next().await? {
            Followed::Event(event) => wire.event(&event),
            Followed::Skipped(missed) => Event::default().comment(format!(
                "lagged: {missed} events were skipped because this client read too slowly"
            )),
        };
        Some((Ok(event), (events, wire)))
    })
}

/// An SSE response with keep-alive comments (proxies close idle connections).
pub(super) fn sse<S>(stream: S) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `x-switchboard-run-id` and `x-switchboard-trace-id`.
pub(super) fn run_headers(run_id: RunId, trace_id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&run_id.to_string()) {
        headers.insert(HeaderName::from_static(RUN_ID_HEADER), value);
    }
    if let Ok(value) = HeaderValue::from_str(trace_id) {
        headers.insert(HeaderName::from_static(TRACE_ID_HEADER), value);
    }
    headers
}

/// Parse a path or body id; a malformed one is a 400 that says why.
pub(super) fn parse_id<T>(raw: &str, what: &str) -> Result<T, ApiError>
where
    T: FromStr<Err = uuid::Error>,
{
    raw.parse().map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("`{raw}` is not a valid {what} id ({err}); ids are UUIDs"),
        )
    })
}

/// 404 for a model name that is not configured (the registry cannot tell "unknown" from
/// "unavailable" in its error, and they deserve different statuses). Only the models
/// `caller`'s role grants are named, as `/api/models` lists them.
pub(super) fn check_model_known(
    state: &AppState,
    caller: &Caller,
    model: &str,
) -> Result<(), ApiError> {
    if state.models.get(Some(model)).is_ok() {
        return Ok(());
    }
    let configured: Vec<String> = state
        .models
        .list()
        .into_iter()
        .map(|m| m.name)
        .filter(|name| caller.may_use_model(name))
        .collect();
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "model_not_found",
        format!(
            "no model named `{model}`; configured: {}",
            if configured.is_empty() {
                "none".to_owned()
            } else {
                configured.join(", ")
            }
        ),
    ))
}

/// Temperatures outside 0–2 are refused by every provider; say so before a run starts.
pub(super) fn check_temperature(temperature: Option<f64>) -> Result<(), ApiError> {
    match temperature {
        Some(t) if !(0.0..=2.0).contains(&t) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_temperature",
            format!("temperature must be between 0 and 2, not {t}"),
        )),
        _ => Ok(()),
    }
}

impl From<RunError> for ApiError {
    fn from(err: RunError) -> Self {
        match err {
            RunError::EmptyMessage => {
                ApiError::new(StatusCode::BAD_REQUEST, "empty_message", err.to_string())
            }
            RunError::TooManyMessages { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_messages",
                err.to_string(),
            ),
            RunError::MessageTooLong { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "message_too_long",
                err.to_string(),
            ),
            RunError::UnknownAgent { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "agent_not_found", err.to_string())
            }
            RunError::Model(LlmError::Unavailable { .. }) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "model_unavailable",
                err.to_string(),
            ),
            RunError::Model(model) => {
                ApiError::new(StatusCode::BAD_GATEWAY, model.code(), model.to_string())
            }
            RunError::Store(store) => store.into(),
            RunError::StoreUnwritable { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                err.to_string(),
            ),
            RunError::NotRunning(_) => {
                ApiError::new(StatusCode::CONFLICT, "not_running", err.to_string())
            }
            RunError::AgentNotAllowed { .. } => {
                ApiError::forbidden("agent_not_allowed", err.to_string())
            }
            RunError::ModelNotAllowed { .. } => {
                ApiError::forbidden("model_not_allowed", err.to_string())
            }
            RunError::Limited(refused) => ApiError::limited(&refused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperatures_outside_what_providers_accept_are_refused() {
        assert!(check_temperature(Some(0.2)).is_ok());
        assert!(check_temperature(None).is_ok());
        let err = check_temperature(Some(2.5)).unwrap_err();
        assert_eq!(err.code, "invalid_temperature");
        assert!(err.message.contains("2.5"), "{}", err.message);
    }
}
