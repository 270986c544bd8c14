//! Run events as they go on the wire: the SSE streams of `POST /api/chat` and
//! `GET /api/runs/{id}/events` share these shapes.
//!
//! Event names are the [`RunEvent`] types (`run_started`, `step_started`, `token_delta`,
//! `tool_progress`, `step_finished`, `run_finished`); each event's data is one JSON object that
//! repeats its name under `type`. Step events carry summaries (kind, name, server, status,
//! duration, short previews of input, output and error) rather than whole inputs and outputs: a
//! model step's input is the whole conversation, and `GET /api/runs/{id}` has every byte. The
//! exception is a tool call: its `step_started` also carries the whole `arguments` and its
//! `step_finished` the whole `output` (already capped at `tools.max_result_bytes`), so a chat can
//! show each call completely as it happens.

use std::collections::HashMap;

use axum::response::sse::Event;
use serde::Serialize;
use serde_json::Value;

use crate::domain::{
    ApprovalDecision, ApprovalRequest, ConversationId, InputAction, RunEvent, RunId, RunStatus,
    StepIndex, StepKind, StepStatus, StepSummary, TokenUsage, UnixMillis,
};

/// Characters of a step's input or output shown in its events.
pub(in crate::api) const PREVIEW_CHARS: usize = 240;
/// Characters of a step's error shown in its events.
pub(in crate::api) const ERROR_PREVIEW_CHARS: usize = 1000;

/// The data of one run event on the wire.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(in crate::api) enum WireEvent<'a> {
    RunStarted {
        run_id: RunId,
        conversation_id: Option<ConversationId>,
        trace_id: Option<&'a str>,
        agent: Option<&'a str>,
        model: &'a str,
        user_message: &'a str,
        at: UnixMillis,
    },
    StepStarted {
        run_id: RunId,
        step: StepIndex,
        kind: StepKind,
        name: &'a str,
        server: Option<&'a str>,
        depends_on: &'a [StepIndex],
        attempt: u32,
        at: UnixMillis,
        input_preview: Option<String>,
        /// A tool call's whole arguments: what its card shows while it runs. They are the
        /// model's own (bounded) output, unlike a model step's input, which is the whole
        /// conversation and stays a preview.
        #[serde(skip_serializing_if = "Option::is_none")]
        arguments: Option<&'a Value>,
    },
    TokenDelta {
        run_id: RunId,
        step: StepIndex,
        text: &'a str,
    },
    ToolProgress {
        run_id: RunId,
        step: StepIndex,
        progress: f64,
        total: Option<f64>,
        message: Option<&'a str>,
    },
    /// The act's server asks the person: the chat shows `schema` as a form and posts the
    /// answer to `/api/runs/{run_id}/inputs/{id}`.
    InputRequested {
        run_id: RunId,
        step: StepIndex,
        id: &'a str,
        server: &'a str,
        message: &'a str,
        schema: &'a Value,
    },
    InputAnswered {
        run_id: RunId,
        step: StepIndex,
        id: &'a str,
        action: InputAction,
    },
    /// The run goes on after a restart from its stored checkpoint; steps from `from_step` on
    /// are redone (a page showing them drops what it had of them).
    RunResumed {
        run_id: RunId,
        from_step: StepIndex,
        at: UnixMillis,
    },
    /// Act `step`'s call waits for a person: the chat shows an approval card deciding it at
    /// `/api/runs/{run_id}/approvals/{id}`.
    ApprovalRequested {
        run_id: RunId,
        step: StepIndex,
        #[serde(flatten)]
        request: &'a ApprovalRequest,
        at: UnixMillis,
    },
    ApprovalDecided {
        run_id: RunId,
        step: StepIndex,
        id: &'a str,
        #[serde(flatten)]
        decision: &'a ApprovalDecision,
        at: UnixMillis,
    },
    StepFinished {
        run_id: RunId,
        step: StepIndex,
        /// `None` (null) when this reader missed the step's start (it lagged).
        kind: Option<StepKind>,
        name: Option<&'a str>,
        server: Option<&'a str>,
        status: StepStatus,
        at: UnixMillis,
        duration_ms: Option<i64>,
        output_preview: Option<String>,
        error: Option<String>,
        usage: Option<TokenUsage>,
        /// A tool call's whole result (already capped at `tools.max_result_bytes`): what its
        /// card shows once it returns; a model step's output stays a preview.
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<&'a Value>,
    },
    RunFinished(RunFinishedData<'a>),
}

/// The `run_finished` data; the stored final state of a finished run has the same shape.
#[derive(Debug, Serialize)]
pub(in crate::api) struct RunFinishedData<'a> {
    pub run_id: RunId,
    pub status: RunStatus,
    pub answer: Option<&'a str>,
    pub error: Option<&'a str>,
    pub usage: TokenUsage,
    pub at: UnixMillis,
    pub duration_ms: Option<i64>,
    /// Some of the run's writes could not be stored: its record (the trace `/debug` shows) is
    /// incomplete. Absent when it is complete.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub trace_incomplete: bool,
}

/// Turns run events into wire events, remembering what each step started as so its
/// `step_finished` can say what it was and how long it took.
#[derive(Default)]
pub(in crate::api) struct WireEvents {
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
    /// A translator for a reader that will not see the run's `RunStarted` (a stored run), told
    /// when the run started so `run_finished` still says how long it took.
    pub(in crate::api) fn starting_at(run_started_at: Option<UnixMillis>) -> Self {
        Self {
            run_started_at,
            steps: HashMap::new(),
        }
    }

    /// The SSE event for `event`.
    pub(in crate::api) fn event(&mut self, event: &RunEvent) -> Event {
        let data = self.data(event);
        let json = serde_json::to_string(&data).unwrap_or_else(|err| {
            tracing::error!(error = %err, "a run event could not be serialized");
            String::from("{}")
        });
        Event::default().event(event.type_name()).data(json)
    }

    /// The wire data of `event`.
    pub(in crate::api) fn data<'a>(&'a mut self, event: &'a RunEvent) -> WireEvent<'a> {
        match event {
            RunEvent::RunStarted {
                run_id,
                conversation_id,
                agent,
                model,
                user_message,
                trace_id,
                at,
                ..
            } => {
                self.run_started_at = Some(*at);
                WireEvent::RunStarted {
                    run_id: *run_id,
                    conversation_id: *conversation_id,
                    trace_id: trace_id.as_deref(),
                    agent: agent.as_deref(),
                    model,
                    user_message,
                    at: *at,
                }
            }
            RunEvent::StepStarted { .. } => self.step_started(event),
            RunEvent::TokenDelta { run_id, step, text } => WireEvent::TokenDelta {
                run_id: *run_id,
                step: *step,
                text,
            },
            RunEvent::ToolProgress {
                run_id,
                step,
                progress,
            } => WireEvent::ToolProgress {
                run_id: *run_id,
                step: *step,
                progress: progress.progress,
                total: progress.total,
                message: progress.message.as_deref(),
            },
            RunEvent::InputRequested {
                run_id,
                step,
                request,
            } => WireEvent::InputRequested {
                run_id: *run_id,
                step: *step,
                id: &request.id,
                server: &request.server,
                message: &request.message,
                schema: &request.schema,
            },
            RunEvent::InputAnswered {
                run_id,
                step,
                id,
                action,
            } => WireEvent::InputAnswered {
                run_id: *run_id,
                step: *step,
                id,
                action: *action,
            },
            RunEvent::RunResumed {
                run_id,
                from_step,
                at,
            } => WireEvent::RunResumed {
                run_id: *run_id,
                from_step: *from_step,
                at: *at,
            },
            RunEvent::ApprovalRequested {
                run_id,
                step,
                request,
                at,
            } => WireEvent::ApprovalRequested {
                run_id: *run_id,
                step: *step,
                request,
                at: *at,
            },
            RunEvent::ApprovalDecided {
                run_id,
                step,
                id,
                decision,
                at,
            } => WireEvent::ApprovalDecided {
                run_id: *run_id,
                step: *step,
                id,
                decision,
                at: *at,
            },
            RunEvent::StepFinished { .. } => self.step_finished(event),
            RunEvent::RunFinished {
                run_id,
                status,
                answer,
                error,
                usage,
                at,
            } => WireEvent::RunFinished(RunFinishedData {
                run_id: *run_id,
                status: *status,
                answer: answer.as_deref(),
                error: error.as_deref(),
                usage: *usage,
                at: *at,
                duration_ms: self.run_started_at.map(|start| at - start),
                trace_incomplete: crate::store::is_incomplete(error.as_deref()),
            }),
        }
    }

    fn step_started<'a>(&mut self, event: &'a RunEvent) -> WireEvent<'a> {
        let RunEvent::StepStarted {
            run_id,
            step,
            kind,
            name,
            server,
            input,
            summary,
            depends_on,
            attempt,
            at,
        } = event
        else {
            unreachable!("called for step_started events only")
        };
        self.steps.insert(
            *step,
            StepInfo {
                kind: *kind,
                name: name.clone(),
                server: server.clone(),
                at: *at,
            },
        );
        WireEvent::StepStarted {
            run_id: *run_id,
            step: *step,
            kind: *kind,
            name,
            server: server.as_deref(),
            depends_on,
            attempt: *attempt,
            at: *at,
            input_preview: input_preview(summary.as_ref(), input),
            arguments: (*kind == StepKind::Act).then_some(input),
        }
    }

    fn step_finished<'a>(&'a self, event: &'a RunEvent) -> WireEvent<'a> {
        let RunEvent::StepFinished {
            run_id,
            step,
            status,
            output,
            summary,
            error,
            usage,
            at,
        } = event
        else {
            unreachable!("called for step_finished events only")
        };
        // A lagging reader may have missed the start; then kind and name are null.
        let info = self.steps.get(step);
        let kind = info.map(|i| i.kind);
        WireEvent::StepFinished {
            run_id: *run_id,
            step: *step,
            kind,
            name: info.map(|i| i.name.as_str()),
            server: info.and_then(|i| i.server.as_deref()),
            status: *status,
            at: *at,
            duration_ms: info.map(|i| at - i.at),
            output_preview: output.as_ref().map(|o| output_preview(summary.as_ref(), o)),
            error: error.as_deref().map(|e| excerpt(e, ERROR_PREVIEW_CHARS)),
            usage: *usage,
            output: output.as_ref().filter(|_| kind == Some(StepKind::Act)),
        }
    }
}

/// What a step was asked: for model steps the size of the conversation, else its input.
fn input_preview(summary: Option<&StepSummary>, input: &Value) -> Option<String> {
    if let Some(StepSummary::ModelRequest { messages, tools }) = summary {
        return Some(format!("{messages} messages, {tools} tools"));
    }
    match input {
        Value::Null => None,
        Value::Object(map) if map.is_empty() => None,
        other => Some(excerpt(&other.to_string(), PREVIEW_CHARS)),
    }
}

/// What a step produced, in a line: a model's text or the tools it called, a tool's text
/// content, an observation's count of results and errors; else the output itself.
fn output_preview(summary: Option<&StepSummary>, output: &Value) -> String {
    let text = match summary {
        Some(StepSummary::ModelTurn { text, tool_calls }) => {
            Some(match (text.is_empty(), tool_calls.is_empty()) {
                (_, true) => text.clone(),
                (true, false) => format!("calls {}", tool_calls.join(", ")),
                (false, false) => format!("{text} (calls {})", tool_calls.join(", ")),
            })
        }
        Some(StepSummary::ToolResult { text }) => text.clone(),
        Some(StepSummary::Observation { results, errors }) => {
            Some(format!("{results} results, {errors} errors"))
        }
        Some(StepSummary::ModelRequest { .. }) | None => None,
    };
    excerpt(&text.unwrap_or_else(|| output.to_string()), PREVIEW_CHARS)
}

/// At most `max_chars` characters of `text`, ending in `…` when cut.
pub(in crate::api) fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn data(wire: &mut WireEvents, event: &RunEvent) -> Value {
        serde_json::to_value(wire.data(event)).expect("wire events serialize")
    }

    #[test]
    fn previews_say_what_a_step_did() {
        let request = StepSummary::ModelRequest {
            messages: 2,
            tools: 3,
        };
        assert_eq!(
            input_preview(Some(&request), &json!({"messages": [{}, {}]})).as_deref(),
            Some("2 messages, 3 tools")
        );
        assert_eq!(input_preview(None, &json!({})), None);
        assert_eq!(
            input_preview(None, &json!({"ms": 5})).as_deref(),
            Some(r#"{"ms":5}"#)
        );
        let calls = StepSummary::ModelTurn {
            text: String::new(),
            tool_calls: vec!["a__b".into(), "c__d".into()],
        };
        assert_eq!(output_preview(Some(&calls), &json!({})), "calls a__b, c__d");
        let answer = StepSummary::ModelTurn {
            text: "Four.".into(),
            tool_calls: vec![],
        };
        assert_eq!(output_preview(Some(&answer), &json!({})), "Four.");
        let tool = StepSummary::ToolResult {
            text: Some("slept\n[image]".into()),
        };
        assert_eq!(output_preview(Some(&tool), &json!({})), "slept\n[image]");
        let observe = StepSummary::Observation {
            results: 2,
            errors: 1,
        };
        assert_eq!(
            output_preview(Some(&observe), &json!([])),
            "2 results, 1 errors"
        );
        assert_eq!(output_preview(None, &json!([1])), "[1]");
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
        let act = data(
            &mut wire,
            &RunEvent::StepStarted {
                run_id,
                step: 1,
                kind: StepKind::Act,
                name: "notes__add_note".into(),
                server: Some("notes".into()),
                input: json!({"text": long}),
                summary: None,
                depends_on: vec![0],
                attempt: 1,
                at: 1,
            },
        );
        assert_eq!(act["arguments"]["text"], long.as_str());
        let preview = act["input_preview"].as_str().unwrap();
        assert_eq!(preview.chars().count(), PREVIEW_CHARS + 1, "{preview}");
        let plan = data(
            &mut wire,
            &RunEvent::StepStarted {
                run_id,
                step: 0,
                kind: StepKind::Plan,
                name: "m".into(),
                server: None,
                input: json!({"messages": [{"role": "user", "content": "secret history"}]}),
                summary: Some(StepSummary::ModelRequest {
                    messages: 1,
                    tools: 0,
                }),
                depends_on: vec![],
                attempt: 1,
                at: 0,
            },
        );
        assert!(plan.get("arguments").is_none(), "{plan}");
        let answered = data(
            &mut wire,
            &RunEvent::StepFinished {
                run_id,
                step: 0,
                status: StepStatus::Succeeded,
                output: Some(json!({"content": "Noted.", "tool_calls": []})),
                summary: Some(StepSummary::ModelTurn {
                    text: "Noted.".into(),
                    tool_calls: vec![],
                }),
                error: None,
                usage: None,
                at: 2,
            },
        );
        assert!(answered.get("output").is_none(), "{answered}");
    }

    #[test]
    fn step_finished_repeats_what_the_step_was() {
        let run_id = RunId::new();
        let mut wire = WireEvents::default();
        let started = data(
            &mut wire,
            &RunEvent::StepStarted {
                run_id,
                step: 1,
                kind: StepKind::Act,
                name: "testkit__sleep".into(),
                server: Some("testkit".into()),
                input: json!({"ms": 10}),
                summary: None,
                depends_on: vec![0],
                attempt: 1,
                at: 1000,
            },
        );
        let finished = data(
            &mut wire,
            &RunEvent::StepFinished {
                run_id,
                step: 1,
                status: StepStatus::Succeeded,
                output: Some(json!({"content": [{"type": "text", "text": "slept 10 ms"}]})),
                summary: Some(StepSummary::ToolResult {
                    text: Some("slept 10 ms".into()),
                }),
                error: None,
                usage: None,
                at: 1012,
            },
        );
        assert_eq!(finished["type"], "step_finished");
        assert_eq!(started["arguments"], json!({"ms": 10}));
        assert_eq!(started["input_preview"], r#"{"ms":10}"#);
        assert_eq!(finished["kind"], "act");
        assert_eq!(finished["name"], "testkit__sleep");
        assert_eq!(finished["server"], "testkit");
        assert_eq!(finished["duration_ms"], 12);
        assert_eq!(finished["output_preview"], "slept 10 ms");
        assert_eq!(finished["output"]["content"][0]["text"], "slept 10 ms");
        // A step this reader never saw start still gets through.
        let unknown = data(
            &mut wire,
            &RunEvent::StepFinished {
                run_id,
                step: 9,
                status: StepStatus::Failed,
                output: None,
                summary: None,
                error: Some("x".repeat(5000)),
                usage: None,
                at: 1,
            },
        );
        assert_eq!(unknown["kind"], Value::Null);
        assert_eq!(
            unknown["error"].as_str().unwrap().chars().count(),
            ERROR_PREVIEW_CHARS + 1
        );
    }

    #[test]
    fn run_finished_says_how_long_a_stored_run_took() {
        let run_id = RunId::new();
        let mut wire = WireEvents::starting_at(Some(1000));
        let finished = data(
            &mut wire,
            &RunEvent::RunFinished {
                run_id,
                status: RunStatus::Succeeded,
                answer: Some("done".into()),
                error: None,
                usage: TokenUsage::default(),
                at: 1250,
            },
        );
        assert_eq!(finished["type"], "run_finished");
        assert_eq!(finished["duration_ms"], 250);
        assert_eq!(finished["answer"], "done");
    }
}
