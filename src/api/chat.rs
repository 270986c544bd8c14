//! `POST /api/chat`: start a run and answer with a Server-Sent Events stream of its events. Also
//! the wire shape of run events, which `GET /api/runs/{id}/events` shares.
//!
//! Event names are the [`RunEvent`] types (`run_started`, `step_started`, `token_delta`,
//! `tool_progress`, `step_finished`, `run_finished`); each event's data is one JSON object that
//! repeats its name under `type`. Step events carry summaries (kind, name, server, status,
//! duration, short previews of input, output and error) rather than whole inputs and outputs: a
//! model step's input is the whole conversation, and `GET /api/runs/{id}` has every byte. The
//! exception is a tool call: its `step_started` also carries the whole `arguments` and its
//! `step_finished` the whole `output` (already capped at `tools.max_result_bytes`), so a chat can
//! show each call completely as it happens.
//!
//! A client that disconnects does not cancel its run: the run goes on and is stored, and
//! `GET /api/runs/{id}/events` picks it up again. Cancelling is explicit
//! (`POST /api/runs/{id}/cancel`). A client too slow to keep up skips ahead (an SSE comment says
//! how many events it missed) instead of slowing the run down or failing it.
//!
//! Failures before the run starts (empty message, unknown model or agent, unavailable model) are
//! ordinary JSON errors, not streams.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::str::FromStr;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::AppState;
use super::error::{ApiError, AppJson};
use crate::domain::{
    ConversationId, RunEvent, RunId, RunStatus, StepIndex, StepKind, TokenUsage, UnixMillis,
    now_millis,
};
use crate::llm::LlmError;
use crate::runs::{ChatInput, RunError};

/// Characters of a step's input or output shown in its events.
const PREVIEW_CHARS: usize = 240;
/// Characters of a step's error shown in its events.
const ERROR_PREVIEW_CHARS: usize = 1000;

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
}

/// Start a run and stream its events.
pub(super) async fn chat(
    State(state): State<AppState>,
    AppJson(request): AppJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let conversation_id = request
        .conversation_id
        .as_deref()
        .map(|id| parse_id::<ConversationId>(id, "conversation"))
        .transpose()?;
    if let Some(model) = &request.model {
        check_model_known(&state, model)?;
    }
    check_temperature(request.temperature)?;
    let started = state
        .runs
        .start(ChatInput {
            conversation_id,
            model: request.model,
            agent: request.agent,
            message: request.message,
            history: None,
            temperature: request.temperature,
        })
        .await?;
    let run_id = started.run_id;
    let done = started.done;
    // Only used if the broadcast closes without a `run_finished` (the run task died): its
    // outcome, or the panic, is then the last event.
    let fallback: Fallback = Box::new(move || {
        Box::pin(async move {
            let (status, answer, error, usage) = match done.await {
                Ok(outcome) => (outcome.status, outcome.answer, outcome.error, outcome.usage),
                Err(_) => (
                    RunStatus::Failed,
                    None,
                    Some("the run stopped unexpectedly; the server log has details".to_owned()),
                    TokenUsage::default(),
                ),
            };
            Some(RunEvent::RunFinished {
                run_id,
                status,
                answer,
                error,
                usage,
                at: now_millis(),
            })
        })
    });
    let stream = follow(Vec::new(), Some(started.events), Some(fallback));
    Ok((run_headers(run_id, &started.trace_id), sse(stream)).into_response())
}

/// The final event when a live stream closes without one.
pub(super) type Fallback = Box<dyn FnOnce() -> BoxFuture<'static, Option<RunEvent>> + Send>;

/// Replay `replay`, then follow `live` until `run_finished` (or, when the broadcast closes
/// without it, whatever `fallback` finds). Lagging skips ahead with a comment.
pub(super) fn follow(
    replay: Vec<RunEvent>,
    live: Option<broadcast::Receiver<RunEvent>>,
    fallback: Option<Fallback>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let state = Follow {
        queue: replay.into(),
        live,
        fallback,
        wire: WireEvents::default(),
        finished: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((Ok(event), state))
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
/// "unavailable" in its error, and they deserve different statuses).
pub(super) fn check_model_known(state: &AppState, model: &str) -> Result<(), ApiError> {
    if state.models.get(Some(model)).is_ok() {
        return Ok(());
    }
    let configured: Vec<String> = state.models.list().into_iter().map(|m| m.name).collect();
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
            RunError::NotRunning(_) => {
                ApiError::new(StatusCode::CONFLICT, "not_running", err.to_string())
            }
        }
    }
}

/// The `run_finished` data, shared with the stored final state of a finished run.
pub(super) fn run_finished_data(
    run_id: RunId,
    status: RunStatus,
    answer: Option<&str>,
    error: Option<&str>,
    usage: TokenUsage,
    at: UnixMillis,
    duration_ms: Option<i64>,
) -> Value {
    json!({
        "type": "run_finished",
        "run_id": run_id,
        "status": status,
        "answer": answer,
        "error": error,
        "usage": usage,
        "at": at,
        "duration_ms": duration_ms,
    })
}

/// A named SSE event with JSON data.
pub(super) fn named_event(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

struct Follow {
    queue: VecDeque<RunEvent>,
    live: Option<broadcast::Receiver<RunEvent>>,
    fallback: Option<Fallback>,
    wire: WireEvents,
    finished: bool,
}

impl Follow {
    async fn next(&mut self) -> Option<Event> {
        if self.finished {
            return None;
        }
        let event = match self.queue.pop_front() {
            Some(event) => event,
            None => loop {
                if let Some(live) = &mut self.live {
                    match live.recv().await {
                        Ok(event) => break event,
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            return Some(Event::default().comment(format!(
                                "lagged: {missed} events were skipped because this client read too slowly"
                            )));
                        }
                        Err(broadcast::error::RecvError::Closed) => self.live = None,
                    }
                } else {
                    let fallback = self.fallback.take()?;
                    match fallback().await {
                        Some(event) => break event,
                        None => return None,
                    }
                }
            },
        };
        if matches!(event, RunEvent::RunFinished { .. }) {
            self.finished = true;
        }
        Some(self.wire.event(&event))
    }
}

/// Turns run events into wire events, remembering what each step started as so its
/// `step_finished` can say what it was and how long it took.
#[derive(Default)]
pub(super) struct WireEvents {
    run_started_at: Option<UnixMillis>,
    steps: HashMap<StepIndex, StepInfo>,
}

struct StepInfo {
    kind: StepKind,
    name: String,
    server: Option<String>,
    at: UnixMillis,
}

impl WireEvents {
    /// The SSE event for `event`.
    pub(super) fn event(&mut self, event: &RunEvent) -> Event {
        let data = self.data(event);
        let name = data["type"].as_str().unwrap_or("message").to_owned();
        named_event(&name, &data)
    }

    /// The JSON data of `event` (with its name under `type`).
    pub(super) fn data(&mut self, event: &RunEvent) -> Value {
        match event {
            RunEvent::RunStarted {
                run_id,
                conversation_id,
                agent,
                model,
                user_message,
                trace_id,
                at,
            } => {
                self.run_started_at = Some(*at);
                json!({
                    "type": "run_started",
                    "run_id": run_id,
                    "conversation_id": conversation_id,
                    "trace_id": trace_id,
                    "agent": agent,
                    "model": model,
                    "user_message": user_message,
                    "at": at,
                })
            }
            RunEvent::StepStarted {
                run_id,
                step,
                kind,
                name,
                server,
                input,
                depends_on,
                attempt,
                at,
            } => {
                self.steps.insert(
                    *step,
                    StepInfo {
                        kind: *kind,
                        name: name.clone(),
                        server: server.clone(),
                        at: *at,
                    },
                );
                let mut data = json!({
                    "type": "step_started",
                    "run_id": run_id,
                    "step": step,
                    "kind": kind,
                    "name": name,
                    "server": server,
                    "depends_on": depends_on,
                    "attempt": attempt,
                    "at": at,
                    "input_preview": input_preview(*kind, input),
                });
                // A tool call's arguments are what its card shows while it runs; they are the
                // model's own (bounded) output, unlike a model step's input, which is the whole
                // conversation and stays a preview.
                if *kind == StepKind::Act {
                    data["arguments"] = input.clone();
                }
                data
            }
            RunEvent::TokenDelta { run_id, step, text } => json!({
                "type": "token_delta",
                "run_id": run_id,
                "step": step,
                "text": text,
            }),
            RunEvent::ToolProgress {
                run_id,
                step,
                progress,
                total,
                message,
            } => json!({
                "type": "tool_progress",
                "run_id": run_id,
                "step": step,
                "progress": progress,
                "total": total,
                "message": message,
            }),
            RunEvent::StepFinished {
                run_id,
                step,
                status,
                output,
                error,
                usage,
                at,
            } => {
                // A lagging client may have missed the start; then kind and name are null.
                let info = self.steps.get(step);
                let kind = info.map(|i| i.kind);
                let mut data = json!({
                    "type": "step_finished",
                    "run_id": run_id,
                    "step": step,
                    "kind": kind,
                    "name": info.map(|i| i.name.as_str()),
                    "server": info.and_then(|i| i.server.as_deref()),
                    "status": status,
                    "at": at,
                    "duration_ms": info.map(|i| at - i.at),
                    "output_preview": output.as_ref().map(|o| output_preview(kind, o)),
                    "error": error.as_deref().map(|e| excerpt(e, ERROR_PREVIEW_CHARS)),
                    "usage": usage,
                });
                // A tool call's result is what its card shows once it returns, and it is
                // already capped (`tools.max_result_bytes`); a model step's output stays a preview.
                if let (Some(StepKind::Act), Some(output)) = (kind, output) {
                    data["output"] = output.clone();
                }
                data
            }
            RunEvent::RunFinished {
                run_id,
                status,
                answer,
                error,
                usage,
                at,
            } => run_finished_data(
                *run_id,
                *status,
                answer.as_deref(),
                error.as_deref(),
                *usage,
                *at,
                self.run_started_at.map(|start| at - start),
            ),
        }
    }
}

/// What a step was asked: tool arguments; for model steps only the size of the conversation.
fn input_preview(kind: StepKind, input: &Value) -> Option<String> {
    if let (StepKind::Plan | StepKind::Answer, Some(messages)) =
        (kind, input.get("messages").and_then(Value::as_array))
    {
        let tools = input
            .get("tools")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        return Some(format!("{} messages, {tools} tools", messages.len()));
    }
    match input {
        Value::Null => None,
        Value::Object(map) if map.is_empty() => None,
        other => Some(excerpt(&other.to_string(), PREVIEW_CHARS)),
    }
}

/// What a step produced, in a line: a model's text or the tools it called, a tool's text
/// content, an observation's count of results and errors.
fn output_preview(kind: Option<StepKind>, output: &Value) -> String {
    let text = match kind {
        Some(StepKind::Plan | StepKind::Answer) => model_output_preview(output),
        Some(StepKind::Act) => tool_output_preview(output),
        Some(StepKind::Observe) => output.as_array().map(|results| {
            let errors = results.iter().filter(|r| r["is_error"] == true).count();
            format!("{} results, {errors} errors", results.len())
        }),
        None => None,
    };
    excerpt(&text.unwrap_or_else(|| output.to_string()), PREVIEW_CHARS)
}

fn model_output_preview(output: &Value) -> Option<String> {
    let content = output.get("content")?.as_str().unwrap_or_default();
    let calls: Vec<&str> = output
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| calls.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    Some(match (content.is_empty(), calls.is_empty()) {
        (_, true) => content.to_owned(),
        (true, false) => format!("calls {}", calls.join(", ")),
        (false, false) => format!("{content} (calls {})", calls.join(", ")),
    })
}

fn tool_output_preview(output: &Value) -> Option<String> {
    let blocks = output.get("content")?.as_array()?;
    let parts: Vec<String> = blocks
        .iter()
        .map(|block| match block["text"].as_str() {
            Some(text) => text.to_owned(),
            None => format!("[{}]", block["type"].as_str().unwrap_or("content")),
        })
        .collect();
    if parts.is_empty() {
        return output.get("structuredContent").map(Value::to_string);
    }
    Some(parts.join("\n"))
}

/// At most `max_chars` characters of `text`, ending in `…` when cut.
fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_say_what_a_step_did() {
        let plan_input = json!({"model": "m", "messages": [{}, {}], "tools": ["a", "b", "c"]});
        assert_eq!(
            input_preview(StepKind::Plan, &plan_input).as_deref(),
            Some("2 messages, 3 tools")
        );
        assert_eq!(input_preview(StepKind::Answer, &json!({})), None);
        assert_eq!(
            input_preview(StepKind::Act, &json!({"ms": 5})).as_deref(),
            Some(r#"{"ms":5}"#)
        );
        let calls = json!({"content": "", "tool_calls": [{"name": "a__b"}, {"name": "c__d"}]});
        assert_eq!(
            output_preview(Some(StepKind::Plan), &calls),
            "calls a__b, c__d"
        );
        let answer = json!({"content": "Four.", "tool_calls": []});
        assert_eq!(output_preview(Some(StepKind::Plan), &answer), "Four.");
        let tool = json!({"content": [{"type": "text", "text": "slept"}, {"type": "image"}]});
        assert_eq!(output_preview(Some(StepKind::Act), &tool), "slept\n[image]");
        let observe = json!([{"is_error": false}, {"is_error": true}]);
        assert_eq!(
            output_preview(Some(StepKind::Observe), &observe),
            "2 results, 1 errors"
        );
        assert_eq!(output_preview(None, &json!([1])), "[1]");
    }

    fn finished(run_id: RunId) -> RunEvent {
        RunEvent::RunFinished {
            run_id,
            status: RunStatus::Succeeded,
            answer: Some("done".into()),
            error: None,
            usage: TokenUsage::default(),
            at: 2,
        }
    }

    async fn collect(stream: impl Stream<Item = Result<Event, Infallible>>) -> Vec<String> {
        use futures::StreamExt;
        // `Event` keeps its bytes private; its debug form shows them.
        stream
            .map(|event| format!("{:?}", event.expect("infallible")))
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_lagging_client_skips_ahead_and_still_sees_the_end() {
        let run_id = RunId::new();
        let (sender, receiver) = broadcast::channel(2);
        for step in 0..5 {
            let text = format!("piece {step}");
            sender
                .send(RunEvent::TokenDelta { run_id, step, text })
                .unwrap();
        }
        sender.send(finished(run_id)).unwrap();
        let events = collect(follow(Vec::new(), Some(receiver), None)).await;
        assert!(
            events[0].contains("lagged: 4 events were skipped"),
            "{events:#?}"
        );
        assert!(events[1].contains("piece 4"), "{events:#?}");
        assert!(events[2].contains("run_finished"), "{events:#?}");
        assert_eq!(
            events.len(),
            3,
            "the stream ends after run_finished: {events:#?}"
        );
    }

    #[tokio::test]
    async fn a_broadcast_that_closes_early_ends_with_the_fallback() {
        let run_id = RunId::new();
        let (sender, receiver) = broadcast::channel(8);
        let replayed = RunEvent::TokenDelta {
            run_id,
            step: 0,
            text: "replayed".into(),
        };
        sender
            .send(RunEvent::TokenDelta {
                run_id,
                step: 0,
                text: "live".into(),
            })
            .unwrap();
        drop(sender);
        let fallback: Fallback = Box::new(move || Box::pin(async move { Some(finished(run_id)) }));
        let events = collect(follow(vec![replayed], Some(receiver), Some(fallback))).await;
        assert_eq!(events.len(), 3, "{events:#?}");
        assert!(
            events[0].contains("replayed") && events[1].contains("live"),
            "{events:#?}"
        );
        assert!(events[2].contains("run_finished"), "{events:#?}");
    }

    #[test]
    fn excerpts_cut_on_characters() {
        assert_eq!(excerpt("héllo", 10), "héllo");
        assert_eq!(excerpt("héllo", 2), "hé…");
    }

    #[test]
    fn only_tool_calls_carry_their_whole_arguments_and_output() {
        let run_id = RunId::new();
        let mut wire = WireEvents::default();
        let long = "x".repeat(PREVIEW_CHARS * 2);
        let act = wire.data(&RunEvent::StepStarted {
            run_id,
            step: 1,
            kind: StepKind::Act,
            name: "notes__add_note".into(),
            server: Some("notes".into()),
            input: json!({"text": long}),
            depends_on: vec![0],
            attempt: 1,
            at: 1,
        });
        assert_eq!(act["arguments"]["text"], long.as_str());
        let preview = act["input_preview"].as_str().unwrap();
        assert_eq!(preview.chars().count(), PREVIEW_CHARS + 1, "{preview}");
        let plan = wire.data(&RunEvent::StepStarted {
            run_id,
            step: 0,
            kind: StepKind::Plan,
            name: "m".into(),
            server: None,
            input: json!({"messages": [{"role": "user", "content": "secret history"}]}),
            depends_on: vec![],
            attempt: 1,
            at: 0,
        });
        assert!(plan.get("arguments").is_none(), "{plan}");
        let answered = wire.data(&RunEvent::StepFinished {
            run_id,
            step: 0,
            status: crate::domain::StepStatus::Succeeded,
            output: Some(json!({"content": "Noted.", "tool_calls": []})),
            error: None,
            usage: None,
            at: 2,
        });
        assert!(answered.get("output").is_none(), "{answered}");
    }

    #[test]
    fn step_finished_repeats_what_the_step_was() {
        let run_id = RunId::new();
        let mut wire = WireEvents::default();
        let started = wire.data(&RunEvent::StepStarted {
            run_id,
            step: 1,
            kind: StepKind::Act,
            name: "testkit__sleep".into(),
            server: Some("testkit".into()),
            input: json!({"ms": 10}),
            depends_on: vec![0],
            attempt: 1,
            at: 1000,
        });
        let data = wire.data(&RunEvent::StepFinished {
            run_id,
            step: 1,
            status: crate::domain::StepStatus::Succeeded,
            output: Some(json!({"content": [{"type": "text", "text": "slept 10 ms"}]})),
            error: None,
            usage: None,
            at: 1012,
        });
        assert_eq!(data["type"], "step_finished");
        assert_eq!(started["arguments"], json!({"ms": 10}));
        assert_eq!(started["input_preview"], r#"{"ms":10}"#);
        assert_eq!(data["kind"], "act");
        assert_eq!(data["name"], "testkit__sleep");
        assert_eq!(data["server"], "testkit");
        assert_eq!(data["duration_ms"], 12);
        assert_eq!(data["output_preview"], "slept 10 ms");
        assert_eq!(data["output"]["content"][0]["text"], "slept 10 ms");
        // A step this client never saw start still gets through.
        let unknown = wire.data(&RunEvent::StepFinished {
            run_id,
            step: 9,
            status: crate::domain::StepStatus::Failed,
            output: None,
            error: Some("x".repeat(5000)),
            usage: None,
            at: 1,
        });
        assert_eq!(unknown["kind"], Value::Null);
        assert_eq!(
            unknown["error"].as_str().unwrap().chars().count(),
            ERROR_PREVIEW_CHARS + 1
        );
    }
}
