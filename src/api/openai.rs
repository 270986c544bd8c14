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
//! - both kinds of response carry `x-switchboard-run-id` and `x-switchboard-trace-id`, and the
//!   run is stored as a new conversation like any other.
//!
//! Errors use OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::AppState;
use super::chat::{run_headers, sse};
use crate::domain::{RunEvent, RunId, RunStatus, StepIndex, StepKind, TokenUsage, now_millis};
use crate::engine::RunOutcome;
use crate::llm::{ChatMessage, LlmError, Role, ToolCall};
use crate::runs::{ChatInput, RunError, role_of};

/// What `model` starts with to name an agent.
const AGENT_PREFIX: &str = "agent:";

/// An error in OpenAI's shape.
#[derive(Debug)]
pub(super) struct OpenAiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
}

impl OpenAiError {
    fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_owned),
            code: None,
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
        }
    }

    fn server(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: Some(code),
        }
    }

    fn body(&self) -> Value {
        json!({ "error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.message, "chat completion failed");
        }
        (self.status, Json(self.body())).into_response()
    }
}

impl From<RunError> for OpenAiError {
    fn from(err: RunError) -> Self {
        match &err {
            RunError::EmptyMessage => {
                OpenAiError::invalid("the last user message is empty", Some("messages"))
            }
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
            RunError::NotRunning(_) => OpenAiError::server(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                err.to_string(),
            ),
        }
    }
}

/// The models that can answer now, and every agent as `agent:NAME`.
pub(super) async fn models(State(state): State<AppState>) -> Json<Value> {
    let created = now_millis() / 1000;
    let mut data: Vec<Value> = state
        .models
        .list()
        .into_iter()
        .filter(|m| m.available)
        .map(|m| json!({ "id": m.name, "object": "model", "created": created, "owned_by": m.provider }))
        .collect();
    data.extend(state.runs.agents().values().map(|agent| {
        json!({
            "id": format!("{AGENT_PREFIX}{}", agent.name),
            "object": "model",
            "created": created,
            "owned_by": "switchboard",
        })
    }));
    Json(json!({ "object": "list", "data": data }))
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
pub(super) async fn completions(State(state): State<AppState>, body: Bytes) -> Response {
    match complete(state, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn complete(state: AppState, body: &[u8]) -> Result<Response, OpenAiError> {
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
    let (history, message) = split_messages(&request.messages)?;
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
        .start(ChatInput {
            conversation_id: None,
            model,
            agent,
            message,
            history: Some(history),
            temperature: request.temperature,
        })
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
        let stream = completion_stream(
            reply,
            include_usage,
            started.run_id,
            started.events,
            started.done,
        );
        return Ok((headers, sse(stream)).into_response());
    }
    drop(started.events);
    let outcome = started.done.await.map_err(|_| {
        OpenAiError::server(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!(
                "run {} stopped unexpectedly; the server log has details",
                started.run_id
            ),
        )
    })?;
    if outcome.status != RunStatus::Succeeded {
        return Ok((headers, run_failure(started.run_id, &outcome)).into_response());
    }
    let body = json!({
        "id": reply.id,
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model,
        "system_fingerprint": null,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": outcome.answer.unwrap_or_default(), "refusal": null },
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": usage_json(outcome.usage),
    });
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

/// The run's message (the last user message) and its history (everything before it).
fn split_messages(messages: &[Value]) -> Result<(Vec<ChatMessage>, String), OpenAiError> {
    let mut parsed = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        parsed.push(parse_message(message, i)?);
    }
    let Some(last_user) = parsed.iter().rposition(|m| m.role == Role::User) else {
        return Err(OpenAiError::invalid(
            "messages must contain a user message",
            Some("messages"),
        ));
    };
    if last_user + 1 != parsed.len() {
        return Err(OpenAiError::invalid(
            format!(
                "messages[{}] follows the last user message; Switchboard runs the tools itself, \
                 so a conversation must end with the user's message",
                last_user + 1
            ),
            Some("messages"),
        ));
    }
    let message = parsed.pop().map(|m| m.content).unwrap_or_default();
    Ok((parsed, message))
}

fn parse_message(message: &Value, i: usize) -> Result<ChatMessage, OpenAiError> {
    let param = format!("messages[{i}]");
    let role_name = message["role"]
        .as_str()
        .ok_or_else(|| OpenAiError::invalid(format!("{param}.role is missing"), Some(&param)))?;
    let role = role_of(role_name).ok_or_else(|| {
        OpenAiError::invalid(
            format!(
                "{param}.role `{role_name}` is not one of system, developer, user, assistant, tool"
            ),
            Some(&param),
        )
    })?;
    let content = text_of(&message["content"], &param)?;
    Ok(match role {
        Role::System => ChatMessage::system(content),
        Role::User => ChatMessage::user(content),
        Role::Assistant => ChatMessage::assistant(content, tool_calls_of(message, &param)?),
        Role::Tool => {
            let id = message["tool_call_id"].as_str().ok_or_else(|| {
                OpenAiError::invalid(format!("{param}.tool_call_id is missing"), Some(&param))
            })?;
            ChatMessage::tool_result(id, content, false)
        }
    })
}

/// Text of a message's content: a string, null, or text parts (joined by newlines).
fn text_of(content: &Value, param: &str) -> Result<String, OpenAiError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(text) => Ok(text.clone()),
        Value::Array(parts) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                match (part["type"].as_str(), part["text"].as_str()) {
                    (Some("text"), Some(text)) => texts.push(text),
                    (kind, _) => {
                        return Err(OpenAiError::invalid(
                            format!(
                                "{param}.content[{j}] is a `{}` part; only text parts are supported",
                                kind.unwrap_or("untyped")
                            ),
                            Some(&format!("{param}.content")),
                        ));
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        _ => Err(OpenAiError::invalid(
            format!("{param}.content must be a string or an array of text parts"),
            Some(&format!("{param}.content")),
        )),
    }
}

/// An assistant message's earlier tool calls, kept so the history stays consistent.
fn tool_calls_of(message: &Value, param: &str) -> Result<Vec<ToolCall>, OpenAiError> {
    let Some(calls) = message.get("tool_calls").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    calls
        .iter()
        .enumerate()
        .map(|(j, call)| {
            let function = &call["function"];
            match (call["id"].as_str(), function["name"].as_str()) {
                (Some(id), Some(name)) => Ok(ToolCall {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    arguments: function["arguments"].as_str().unwrap_or("{}").to_owned(),
                }),
                _ => Err(OpenAiError::invalid(
                    format!("{param}.tool_calls[{j}] needs an id and a function name"),
                    Some(&format!("{param}.tool_calls")),
                )),
            }
        })
        .collect()
}

fn usage_json(usage: TokenUsage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    })
}

/// What every chunk of one completion repeats.
struct Reply {
    id: String,
    created: i64,
    model: String,
}

/// `chat.completion.chunk` events of a run, then `[DONE]`.
fn completion_stream(
    reply: Reply,
    include_usage: bool,
    run_id: RunId,
    events: broadcast::Receiver<RunEvent>,
    done: JoinHandle<RunOutcome>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let mut state = Chunks {
        reply,
        include_usage,
        run_id,
        events: Some(events),
        done: Some(done),
        out: VecDeque::new(),
        held: HashMap::new(),
        live: Vec::new(),
        sent: String::new(),
        ended: false,
    };
    state.push_chunk(json!({ "role": "assistant", "content": "" }), None);
    futures::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((Ok(event), state))
    })
}

struct Chunks {
    reply: Reply,
    include_usage: bool,
    run_id: RunId,
    events: Option<broadcast::Receiver<RunEvent>>,
    done: Option<JoinHandle<RunOutcome>>,
    /// Data of the events ready to send.
    out: VecDeque<String>,
    /// Text deltas of model turns not yet known to be the answer.
    held: HashMap<StepIndex, Vec<String>>,
    /// Model steps known to write the answer (plan mode's `answer` step): streamed as they come.
    live: Vec<StepIndex>,
    /// Answer text sent so far.
    sent: String,
    ended: bool,
}

impl Chunks {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(data) = self.out.pop_front() {
                return Some(Event::default().data(data));
            }
            if self.ended {
                return None;
            }
            let event = match &mut self.events {
                Some(events) => match events.recv().await {
                    Ok(event) => event,
                    // The end reconciles the text with the answer, so skipping ahead is safe.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => {
                        self.events = None;
                        continue;
                    }
                },
                None => self.outcome_event().await,
            };
            self.on_event(event);
        }
    }

    /// The run's end from its task, when the broadcast closed without `run_finished`.
    async fn outcome_event(&mut self) -> RunEvent {
        let outcome = match self.done.take() {
            Some(done) => done.await.ok(),
            None => None,
        };
        let outcome = outcome.unwrap_or(RunOutcome {
            status: RunStatus::Failed,
            answer: None,
            error: Some("the run stopped unexpectedly; the server log has details".to_owned()),
            usage: TokenUsage::default(),
        });
        RunEvent::RunFinished {
            run_id: self.run_id,
            status: outcome.status,
            answer: outcome.answer,
            error: outcome.error,
            usage: outcome.usage,
            at: now_millis(),
        }
    }

    fn on_event(&mut self, event: RunEvent) {
        match event {
            RunEvent::StepStarted {
                step,
                kind: StepKind::Plan,
                ..
            } => {
                self.held.insert(step, Vec::new());
            }
            RunEvent::StepStarted {
                step,
                kind: StepKind::Answer,
                depends_on,
                ..
            } => {
                // ReAct records the answer as an instant step after the model turn that wrote
                // it; plan mode's answer step is itself a model call, streamed live.
                for turn in depends_on {
                    for text in self.held.remove(&turn).unwrap_or_default() {
                        self.send_text(&text);
                    }
                }
                self.live.push(step);
            }
            RunEvent::TokenDelta { step, text, .. } => {
                if self.live.contains(&step) {
                    self.send_text(&text);
                } else {
                    self.held.entry(step).or_default().push(text);
                }
            }
            RunEvent::StepFinished { step, output, .. } => {
                let called_tools = output
                    .as_ref()
                    .and_then(|o| o.get("tool_calls"))
                    .and_then(Value::as_array)
                    .is_some_and(|calls| !calls.is_empty());
                if called_tools {
                    self.held.remove(&step);
                }
            }
            RunEvent::RunFinished {
                status,
                answer,
                error,
                usage,
                ..
            } => self.finish(status, answer, error, usage),
            RunEvent::RunStarted { .. }
            | RunEvent::StepStarted { .. }
            | RunEvent::ToolProgress { .. } => {}
        }
    }

    fn finish(
        &mut self,
        status: RunStatus,
        answer: Option<String>,
        error: Option<String>,
        usage: TokenUsage,
    ) {
        self.ended = true;
        self.events = None;
        if status != RunStatus::Succeeded {
            let outcome = RunOutcome {
                status,
                answer,
                error,
                usage,
            };
            let err = run_failure(self.run_id, &outcome);
            self.out.push_back(err.body().to_string());
            self.out.push_back("[DONE]".to_owned());
            return;
        }
        let answer = answer.unwrap_or_default();
        match answer.strip_prefix(self.sent.as_str()) {
            Some(rest) if !rest.is_empty() => {
                let rest = rest.to_owned();
                self.send_text(&rest);
            }
            Some(_) => {}
            None => tracing::warn!(
                run_id = %self.run_id,
                "the streamed text differs from the run's answer (events were skipped)"
            ),
        }
        self.push_chunk(json!({}), Some("stop"));
        if self.include_usage {
            let mut chunk = self.chunk_body(Vec::new());
            chunk["usage"] = usage_json(usage);
            self.out.push_back(chunk.to_string());
        }
        self.out.push_back("[DONE]".to_owned());
    }

    fn send_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.sent.push_str(text);
        self.push_chunk(json!({ "content": text }), None);
    }

    fn push_chunk(&mut self, delta: Value, finish_reason: Option<&str>) {
        let chunk = self.chunk_body(vec![json!({
            "index": 0,
            "delta": delta,
            "logprobs": null,
            "finish_reason": finish_reason,
        })]);
        self.out.push_back(chunk.to_string());
    }

    fn chunk_body(&self, choices: Vec<Value>) -> Value {
        let mut chunk = json!({
            "id": self.reply.id,
            "object": "chat.completion.chunk",
            "created": self.reply.created,
            "model": self.reply.model,
            "system_fingerprint": null,
            "choices": choices,
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_user_message_is_the_run_and_the_rest_history() {
        let messages = vec![
            json!({"role": "system", "content": "Be brief."}),
            json!({"role": "user", "content": "Hi"}),
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
            ]}),
            json!({"role": "tool", "tool_call_id": "c1", "content": "ok"}),
            json!({"role": "assistant", "content": "Hello"}),
            json!({"role": "user", "content": [
                {"type": "text", "text": "What is"}, {"type": "text", "text": "6*7?"}
            ]}),
        ];
        let (history, message) = split_messages(&messages).unwrap();
        assert_eq!(message, "What is\n6*7?");
        assert_eq!(history.len(), 5);
        assert_eq!(history[0].role, Role::System);
        assert_eq!(history[2].tool_calls[0].name, "t");
        assert_eq!(history[3].tool_call_id.as_deref(), Some("c1"));
    }

    #[test]
    fn unusable_messages_name_the_offending_field() {
        let cases = [
            (vec![json!({"role": "system", "content": "x"})], "messages"),
            (
                vec![
                    json!({"role": "user", "content": "x"}),
                    json!({"role": "assistant", "content": "y"}),
                ],
                "messages",
            ),
            (
                vec![json!({"role": "user", "content": [{"type": "image_url", "image_url": {}}]})],
                "messages[0].content",
            ),
            (
                vec![json!({"role": "robot", "content": "x"})],
                "messages[0]",
            ),
            (
                vec![
                    json!({"role": "tool", "content": "x"}),
                    json!({"role": "user", "content": "x"}),
                ],
                "messages[0]",
            ),
        ];
        for (messages, param) in cases {
            let err = split_messages(&messages).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert_eq!(err.param.as_deref(), Some(param), "{}", err.message);
        }
    }

    fn chunks() -> Chunks {
        Chunks {
            reply: Reply {
                id: "chatcmpl-x".into(),
                created: 0,
                model: "m".into(),
            },
            include_usage: true,
            run_id: RunId::new(),
            events: None,
            done: None,
            out: VecDeque::new(),
            held: HashMap::new(),
            live: Vec::new(),
            sent: String::new(),
            ended: false,
        }
    }

    fn step_started(step: StepIndex, kind: StepKind, depends_on: Vec<StepIndex>) -> RunEvent {
        RunEvent::StepStarted {
            run_id: RunId::new(),
            step,
            kind,
            name: "m".into(),
            server: None,
            input: json!({}),
            depends_on,
            attempt: 1,
            at: 0,
        }
    }

    fn delta(step: StepIndex, text: &str) -> RunEvent {
        RunEvent::TokenDelta {
            run_id: RunId::new(),
            step,
            text: text.into(),
        }
    }

    fn contents(chunks: &Chunks) -> Vec<Value> {
        chunks
            .out
            .iter()
            .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.clone())))
            .collect()
    }

    #[test]
    fn only_the_answering_turn_is_streamed() {
        let mut c = chunks();
        c.on_event(step_started(0, StepKind::Plan, vec![]));
        c.on_event(delta(0, "Let me check. "));
        c.on_event(RunEvent::StepFinished {
            run_id: c.run_id,
            step: 0,
            status: crate::domain::StepStatus::Succeeded,
            output: Some(json!({"content": "Let me check. ", "tool_calls": [{"name": "t"}]})),
            error: None,
            usage: None,
            at: 0,
        });
        c.on_event(step_started(3, StepKind::Plan, vec![2]));
        c.on_event(delta(3, "Forty"));
        c.on_event(delta(3, "-two."));
        assert!(c.out.is_empty(), "{:?}", contents(&c));
        c.on_event(step_started(4, StepKind::Answer, vec![3]));
        assert_eq!(c.sent, "Forty-two.");
        c.on_event(RunEvent::RunFinished {
            run_id: c.run_id,
            status: RunStatus::Succeeded,
            answer: Some("Forty-two.".into()),
            error: None,
            usage: TokenUsage {
                input_tokens: 3,
                output_tokens: 4,
            },
            at: 0,
        });
        assert_eq!(c.sent, "Forty-two.");
        let all = contents(&c);
        let texts: Vec<&str> = all
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(texts, ["Forty", "-two."]);
        let n = all.len();
        assert_eq!(
            all[n - 3]["choices"][0]["finish_reason"],
            "stop",
            "{all:#?}"
        );
        assert_eq!(all[n - 2]["usage"]["total_tokens"], 7, "{all:#?}");
        assert_eq!(all[n - 2]["choices"], json!([]), "{all:#?}");
        assert_eq!(all[n - 1], "[DONE]");
    }

    #[test]
    fn missing_text_is_sent_at_the_end_and_failures_become_error_chunks() {
        let mut c = chunks();
        c.on_event(RunEvent::RunFinished {
            run_id: c.run_id,
            status: RunStatus::Succeeded,
            answer: Some("All of it".into()),
            error: None,
            usage: TokenUsage::default(),
            at: 0,
        });
        assert_eq!(c.sent, "All of it");

        let mut c = chunks();
        c.on_event(RunEvent::RunFinished {
            run_id: c.run_id,
            status: RunStatus::BudgetExhausted,
            answer: None,
            error: Some("the budget of 2 steps was reached".into()),
            usage: TokenUsage::default(),
            at: 0,
        });
        let all = contents(&c);
        assert_eq!(all.len(), 2, "{all:#?}");
        assert_eq!(all[0]["error"]["code"], "run_budget_exhausted", "{all:#?}");
        let message = all[0]["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("the budget of 2 steps") && message.contains(&c.run_id.to_string()),
            "{message}"
        );
        assert_eq!(all[1], "[DONE]");
    }
}
