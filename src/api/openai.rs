//! The OpenAI-compatible API: `GET /v1/models` and `POST /v1/chat/completions`, so any OpenAI
//! SDK (or Open WebUI) can use Switchboard and get answers that already used the tools.
//!
//! A completion is a whole run on the server: the model may call Switchboard's MCP tools, turn
//! after turn, and the client sees only the final answer. Therefore:
//!
//! - `model` is a configured model name or `agent:NAME`;
//! - the last `user` message is the run's message and the messages before it are its history
//!   (text only: content is a string or `{"type": "text"}` parts); nothing may follow it;
//! - `tools`, `tool_choice`, `functions` and other fields we do not list here are ignored:
//!   Switchboard offers its own tools and runs them itself; `temperature` is passed on;
//! - `usage` is summed over every model call of the run;
//! - streaming forwards the text of the model turn that turns out to be the answer. In ReAct
//!   mode that is known only when the turn ends without tool calls, so its text is held back
//!   until then; a plan-mode answer streams as it is written;
//! - a run that fails answers 502 with the run's error and id (streaming: an error chunk, then
//!   `[DONE]`);
//! - a run that answered (`succeeded`, or `partial`: some tool calls behind the answer failed
//!   or did not run) answers 200 with a vendor field `switchboard: {run_id, status, note}` on
//!   the completion (streaming: on the chunk with `finish_reason`), and a whole completion also
//!   says the status in `x-switchboard-run-status`;
//! - both kinds of response carry `x-switchboard-run-id` and `x-switchboard-trace-id`, and the
//!   run is stored as a new conversation like any other.
//!
//! Errors use OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

mod messages;
mod stream;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::chat::{run_headers, sse};
use super::wire::openai::{
    AssistantMessage, Completion, CompletionChoice, ErrorBody, ErrorDetail, ModelEntry, ModelList,
    Reply, RunMeta, Usage,
};
use crate::access::Caller;
use crate::domain::{RunId, RunOutcome, RunStatus, now_millis};
use crate::llm::LlmError;
use crate::runs::{ChatInput, RunError};

/// What `model` starts with to name an agent.
const AGENT_PREFIX: &str = "agent:";

/// How the run of a whole (not streamed) completion ended: `succeeded`, `partial`, `failed`…
/// A streamed completion's headers leave before the run ends, so it carries the status in its
/// last chunk's `switchboard` field instead.
const RUN_STATUS_HEADER: &str = "x-switchboard-run-status";

/// An error in OpenAI's shape.
#[derive(Debug)]
pub(super) struct OpenAiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
    /// `Retry-After` of a 429.
    retry_after: Option<std::time::Duration>,
}

impl OpenAiError {
    fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_owned),
            code: None,
            retry_after: None,
        }
    }

    fn model_not_found(model: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "The model `{model}` does not exist; GET /v1/models lists the models and agents"
            ),
            kind: "invalid_request_error",
            param: Some("model".to_owned()),
            code: Some("model_not_found"),
            retry_after: None,
        }
    }

    fn too_large(code: &'static str, message: String, param: String) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message,
            kind: "invalid_request_error",
            param: Some(param),
            code: Some(code),
            retry_after: None,
        }
    }

    fn server(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: Some(code),
            retry_after: None,
        }
    }

    fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorDetail {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code,
            },
        }
    }

    /// The body as JSON text (an error chunk of a stream).
    fn body_json(&self) -> String {
        to_json(&self.body())
    }
}

/// JSON text of a wire value; these types always serialize.
fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|err| {
        tracing::error!(error = %err, "a completion could not be serialized");
        String::from("{}")
    })
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.message, "chat completion failed");
        }
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(after) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<RunError> for OpenAiError {
    fn from(err: RunError) -> Self {
        match &err {
            RunError::EmptyMessage => {
                OpenAiError::invalid("the last user message is empty", Some("messages"))
            }
            RunError::TooManyMessages { .. } => {
                OpenAiError::too_large("too_many_messages", err.to_string(), "messages".to_owned())
            }
            RunError::MessageTooLong { index, .. } => OpenAiError::too_large(
                "message_too_long",
                err.to_string(),
                format!("messages[{index}].content"),
            ),
            RunError::UnknownAgent { name, .. } => {
                OpenAiError::model_not_found(&format!("{AGENT_PREFIX}{name}"))
            }
            RunError::Model(LlmError::Unavailable { .. }) => OpenAiError::server(
                StatusCode::SERVICE_UNAVAILABLE,
                "model_unavailable",
                err.to_string(),
            ),
            RunError::Model(model) => {
                OpenAiError::server(StatusCode::BAD_GATEWAY, model.code(), err.to_string())
            }
            RunError::Store(store) => {
                tracing::error!(error = %store, "starting a run failed in the store");
                OpenAiError::server(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the run could not be recorded; the server log has details",
                )
            }
            RunError::StoreUnwritable { .. } => OpenAiError::server(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                err.to_string(),
            ),
            RunError::NotRunning(_) => OpenAiError::server(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                err.to_string(),
            ),
            RunError::AgentNotAllowed { .. } | RunError::ModelNotAllowed { .. } => OpenAiError {
                kind: "invalid_request_error",
                param: Some("model".to_owned()),
                ..OpenAiError::server(StatusCode::FORBIDDEN, "model_not_allowed", err.to_string())
            },
            RunError::Limited(refused) => OpenAiError {
                retry_after: Some(refused.retry_after()),
                kind: "rate_limit_error",
                ..OpenAiError::server(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    err.to_string(),
                )
            },
        }
    }
}

/// A request the gate refused (`api::guard`), in OpenAI's error shape.
pub(super) fn refusal(status: StatusCode, code: &'static str, message: String) -> Response {
    OpenAiError {
        status,
        message,
        // The same type as a run refused for its limits, so clients handle 429s alike.
        kind: if status == StatusCode::TOO_MANY_REQUESTS {
            "rate_limit_error"
        } else {
            "invalid_request_error"
        },
        param: None,
        code: Some(code),
        retry_after: None,
    }
    .into_response()
}

/// The models that can answer now, and every agent as `agent:NAME`.
pub(super) async fn models(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<ModelList> {
    let created = now_millis() / 1000;
    let mut data: Vec<ModelEntry> = state
        .models
        .list()
        .into_iter()
        .filter(|m| m.available && caller.may_use_model(&m.name))
        .map(|m| ModelEntry {
            id: m.name,
            object: "model",
            created,
            owned_by: m.provider,
        })
        .collect();
    data.extend(
        state
            .runs
            .agents_for(&caller)
            .iter()
            .map(|agent| ModelEntry {
                id: format!("{AGENT_PREFIX}{}", agent.name),
                object: "model",
                created,
                owned_by: "switchboard",
            }),
    );
    Json(ModelList {
        object: "list",
        data,
    })
}

/// The fields of a completion request we use; everything else is ignored.
#[derive(Debug, Deserialize)]
struct CompletionRequest {
    model: String,
    messages: Vec<Value>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    temperature: Option<f64>,
    n: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// Run the chain server-side and answer with its final answer.
pub(super) async fn completions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return OpenAiError::too_large(
                "body_too_large",
                "the request body is larger than this server accepts (server.max_body_bytes)"
                    .to_owned(),
                "messages".to_owned(),
            )
            .into_response();
        }
        Err(rejection) => {
            return OpenAiError::invalid(
                format!("invalid request body: {}", rejection.body_text()),
                None,
            )
            .into_response();
        }
    };
    match complete(state, &caller, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn complete(state: AppState, caller: &Caller, body: &[u8]) -> Result<Response, OpenAiError> {
    let request: CompletionRequest = serde_json::from_slice(body)
        .map_err(|err| OpenAiError::invalid(format!("invalid request body: {err}"), None))?;
    if request.n.is_some_and(|n| n != 1) {
        return Err(OpenAiError::invalid("only n = 1 is supported", Some("n")));
    }
    if let Some(t) = request.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
        return Err(OpenAiError::invalid(
            format!("temperature must be between 0 and 2, not {t}"),
            Some("temperature"),
        ));
    }
    let (history, message) = messages::split_messages(&request.messages)?;
    let (model, agent) = match request.model.strip_prefix(AGENT_PREFIX) {
        Some(agent) => {
            if !state.runs.agents().contains_key(agent) {
                return Err(OpenAiError::model_not_found(&request.model));
            }
            (None, Some(agent.to_owned()))
        }
        None => {
            if state.models.get(Some(&request.model)).is_err() {
                return Err(OpenAiError::model_not_found(&request.model));
            }
            (Some(request.model.clone()), None)
        }
    };
    let started = state
        .runs
        .start(
            caller,
            ChatInput {
                conversation_id: None,
                model,
                agent,
                message,
                history: Some(history),
                temperature: request.temperature,
                attended: false,
            },
        )
        .await?;
    let headers = run_headers(started.run_id, &started.trace_id);
    let reply = Reply {
        id: format!("chatcmpl-{}", started.run_id.0.simple()),
        created: now_millis() / 1000,
        model: request.model,
    };
    if request.stream.unwrap_or(false) {
        let include_usage = request
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let stream = stream::completion_stream(reply, include_usage, started.events);
        return Ok((headers, sse(stream)).into_response());
    }
    let outcome = started.events.outcome().await;
    let mut headers = headers;
    headers.insert(
        header::HeaderName::from_static(RUN_STATUS_HEADER),
        HeaderValue::from_static(outcome.status.as_str()),
    );
    if crate::store::is_incomplete(outcome.error.as_deref()) {
        // Answered or not, what the run did is not all on record: not a success to report.
        let error = OpenAiError::server(
            StatusCode::SERVICE_UNAVAILABLE,
            "run_trace_incomplete",
            format!(
                "run {}: {}",
                started.run_id,
                outcome.error.as_deref().unwrap_or_default()
            ),
        );
        return Ok((headers, error).into_response());
    }
    if !outcome.status.is_answered() {
        return Ok((headers, run_failure(started.run_id, &outcome)).into_response());
    }
    let body = Completion {
        reply: &reply,
        object: "chat.completion",
        system_fingerprint: None,
        choices: [CompletionChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: outcome.answer.unwrap_or_default(),
                refusal: None,
            },
            logprobs: None,
            finish_reason: "stop",
        }],
        usage: Usage::from(outcome.usage),
        switchboard: RunMeta {
            run_id: started.run_id,
            status: outcome.status,
            note: outcome.error.as_deref(),
        },
    };
    Ok((headers, Json(body)).into_response())
}

/// The error a run that did not succeed ends a completion with.
fn run_failure(run_id: RunId, outcome: &RunOutcome) -> OpenAiError {
    let status = outcome.status.as_str();
    let code = match outcome.status {
        RunStatus::Cancelled => "run_cancelled",
        RunStatus::BudgetExhausted => "run_budget_exhausted",
        RunStatus::Interrupted => "run_interrupted",
        _ => "run_failed",
    };
    OpenAiError::server(
        StatusCode::BAD_GATEWAY,
        code,
        format!(
            "run {run_id} ended {status}: {}",
            outcome.error.as_deref().unwrap_or("no reason was given")
        ),
    )
}
