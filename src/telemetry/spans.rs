//! Run events → finished OpenTelemetry spans (pure: no IO, no clock).
//!
//! A run becomes one `invoke_agent` span, each of its steps a child span: `chat {model}` for model
//! calls, `execute_tool {tool}` for acts, a plain internal span for observes. Spans are emitted
//! when they end (`StepFinished`, `RunFinished`) with the times the events carry, so they match
//! what the store and `/debug` show. Ids are deterministic: the trace id is the run's `trace_id`,
//! a step's span id is `step + 1` (what the engine already sends to providers as the parent in
//! `traceparent`), and the run's span id is derived from the run id.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use serde_json::Value as Json;

use crate::domain::{
    ConversationId, RunEvent, RunId, RunStatus, StepIndex, StepKind, StepStatus, StepSummary,
    TokenUsage, UnixMillis,
};

/// Attribute keys: GenAI and MCP semantic conventions, then ours.
pub(crate) mod keys {
    pub(crate) const OPERATION: &str = "gen_ai.operation.name";
    pub(crate) const AGENT_NAME: &str = "gen_ai.agent.name";
    pub(crate) const REQUEST_MODEL: &str = "gen_ai.request.model";
    pub(crate) const CONVERSATION_ID: &str = "gen_ai.conversation.id";
    pub(crate) const INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    pub(crate) const OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    pub(crate) const FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
    pub(crate) const TOOL_NAME: &str = "gen_ai.tool.name";
    pub(crate) const MCP_METHOD: &str = "mcp.method.name";
    pub(crate) const ERROR_TYPE: &str = "error.type";
    pub(crate) const MCP_SERVER: &str = "switchboard.mcp.server";
    pub(crate) const RUN_ID: &str = "switchboard.run.id";
    pub(crate) const RUN_STATUS: &str = "switchboard.run.status";
    pub(crate) const STEP_INDEX: &str = "switchboard.step.index";
    pub(crate) const STEP_KIND: &str = "switchboard.step.kind";
    pub(crate) const STEP_STATUS: &str = "switchboard.step.status";
    pub(crate) const STEP_DEPENDS_ON: &str = "switchboard.step.depends_on";
}

/// `gen_ai.operation.name` values.
pub(crate) const INVOKE_AGENT: &str = "invoke_agent";
pub(crate) const CHAT: &str = "chat";
pub(crate) const EXECUTE_TOOL: &str = "execute_tool";

/// Runs followed at once; beyond it the oldest is forgotten (its spans are not exported).
pub(crate) const MAX_OPEN_RUNS: usize = 4096;
/// Steps of one run open at once; beyond it new steps are not traced.
pub(crate) const MAX_OPEN_STEPS: usize = 1024;

/// The trace id of a run: its `trace_id` when that is 32 hex digits and not all zero, else one
/// derived from the run id (so a run always has a valid, stable trace).
pub fn trace_id_of(run_id: RunId, trace_id: Option<&str>) -> TraceId {
    trace_id
        .filter(|hex| hex.len() == 32)
        .and_then(|hex| TraceId::from_hex(hex).ok())
        .filter(|id| *id != TraceId::INVALID)
        .unwrap_or_else(|| TraceId::from(run_id.0.as_u128()))
}

/// The span id of a run's root span: the run id's low 64 bits with the top bit set, so it is
/// never zero and never equal to a step's span id.
pub fn run_span_id(run_id: RunId) -> SpanId {
    SpanId::from(run_id.0.as_u64_pair().1 | 1 << 63)
}

/// The span id of step `step` ([`crate::domain::step_span_id`], the parent the engine names in
/// the `traceparent` the step sends).
pub fn step_span_id(step: StepIndex) -> SpanId {
    SpanId::from(crate::domain::step_span_id(step))
}

/// Turns one run's events into finished spans; followed runs are kept in a bounded map.
#[derive(Debug)]
pub(crate) struct RunSpans {
    runs: BTreeMap<RunId, OpenRun>,
    scope: InstrumentationScope,
    max_runs: usize,
}

#[derive(Debug)]
struct OpenRun {
    trace_id: TraceId,
    span_id: SpanId,
    started: UnixMillis,
    conversation_id: Option<ConversationId>,
    agent: Option<String>,
    model: String,
    steps: BTreeMap<StepIndex, OpenStep>,
}

#[derive(Debug)]
struct OpenStep {
    kind: StepKind,
    name: String,
    server: Option<String>,
    /// Set for model calls (their input names the model).
    model: Option<String>,
    depends_on: Vec<StepIndex>,
    started: UnixMillis,
}

impl RunSpans {
    pub(crate) fn new(scope: InstrumentationScope) -> Self {
        Self::with_capacity(scope, MAX_OPEN_RUNS)
    }

    pub(crate) fn with_capacity(scope: InstrumentationScope, max_runs: usize) -> Self {
        Self {
            runs: BTreeMap::new(),
            scope,
            max_runs: max_runs.max(1),
        }
    }

    /// Runs started and not finished.
    pub(crate) fn open_runs(&self) -> usize {
        self.runs.len()
    }

    /// Feed one event; returns the spans it finished (none, one step, or the run with any step
    /// that never reported its end).
    pub(crate) fn on_event(&mut self, event: &RunEvent) -> Vec<SpanData> {
        match event {
            RunEvent::RunStarted { .. } => {
                self.run_started(event);
                Vec::new()
            }
            RunEvent::StepStarted { .. } => {
                self.step_started(event);
                Vec::new()
            }
            RunEvent::StepFinished {
                run_id,
                step,
                status,
                output,
                error,
                usage,
                at,
                ..
            } => {
                let Some(run) = self.runs.get_mut(run_id) else {
                    return Vec::new();
                };
                let Some(open) = run.steps.remove(step) else {
                    return Vec::new();
                };
                let end = Ending {
                    status: *status,
                    error: error.as_deref(),
                    usage: *usage,
                    output: output.as_ref(),
                    at: *at,
                };
                vec![step_span(&self.scope, *run_id, run, *step, &open, &end)]
            }
            RunEvent::RunFinished { .. } => self.run_finished(event),
            RunEvent::TokenDelta { .. }
            | RunEvent::ToolProgress { .. }
            | RunEvent::InputRequested { .. }
            | RunEvent::InputAnswered { .. }
            | RunEvent::RunResumed { .. }
            | RunEvent::ApprovalRequested { .. }
            | RunEvent::ApprovalDecided { .. } => Vec::new(),
        }
    }

    fn run_started(&mut self, event: &RunEvent) {
        let RunEvent::RunStarted {
            run_id,
            conversation_id,
            agent,
            model,
            trace_id,
            at,
            ..
        } = event
        else {
            return;
        };
        while self.runs.len() >= self.max_runs {
            // Run ids are UUID v7: the first key is the oldest run.
            if let Some((forgotten, _)) = self.runs.pop_first() {
                tracing::debug!(run_id = %forgotten, "telemetry forgot a run that never finished");
            }
        }
        self.runs.insert(
            *run_id,
            OpenRun {
                trace_id: trace_id_of(*run_id, trace_id.as_deref()),
                span_id: run_span_id(*run_id),
                started: *at,
                conversation_id: *conversation_id,
                agent: agent.clone(),
                model: model.clone(),
                steps: BTreeMap::new(),
            },
        );
    }

    fn step_started(&mut self, event: &RunEvent) {
        let RunEvent::StepStarted {
            run_id,
            step,
            kind,
            name,
            server,
            summary,
            depends_on,
            at,
            ..
        } = event
        else {
            return;
        };
        let Some(run) = self.runs.get_mut(run_id) else {
            return;
        };
        if run.steps.len() >= MAX_OPEN_STEPS {
            return;
        }
        // A step that calls a model is named after it (an instant answer step is not).
        let model = matches!(summary, Some(StepSummary::ModelRequest { .. })).then(|| name.clone());
        run.steps.insert(
            *step,
            OpenStep {
                kind: *kind,
                name: name.clone(),
                server: server.clone(),
                model,
                depends_on: depends_on.clone(),
                started: *at,
            },
        );
    }

    /// The run's span, after spans for the steps that never reported their end.
    fn run_finished(&mut self, event: &RunEvent) -> Vec<SpanData> {
        let RunEvent::RunFinished {
            run_id,
            status,
            error,
            usage,
            at,
            ..
        } = event
        else {
            return Vec::new();
        };
        let Some(run) = self.runs.remove(run_id) else {
            return Vec::new();
        };
        let mut spans: Vec<SpanData> = run
            .steps
            .iter()
            .map(|(step, open)| {
                let end = Ending {
                    status: StepStatus::Interrupted,
                    error: Some("the step did not report its end before the run finished"),
                    usage: None,
                    output: None,
                    at: *at,
                };
                step_span(&self.scope, *run_id, &run, *step, open, &end)
            })
            .collect();
        spans.push(run_span(
            &self.scope,
            *run_id,
            &run,
            *status,
            error.as_deref(),
            *usage,
            *at,
        ));
        spans
    }
}

/// How a step ended.
struct Ending<'a> {
    status: StepStatus,
    error: Option<&'a str>,
    usage: Option<TokenUsage>,
    output: Option<&'a Json>,
    at: UnixMillis,
}

fn run_span(
    scope: &InstrumentationScope,
    run_id: RunId,
    run: &OpenRun,
    status: RunStatus,
    error: Option<&str>,
    usage: TokenUsage,
    at: UnixMillis,
) -> SpanData {
    let target = run.agent.as_deref().unwrap_or(&run.model);
    let mut attributes = vec![
        KeyValue::new(keys::OPERATION, INVOKE_AGENT),
        KeyValue::new(keys::REQUEST_MODEL, run.model.clone()),
        KeyValue::new(keys::RUN_ID, run_id.to_string()),
        KeyValue::new(keys::RUN_STATUS, status.as_str()),
        tokens(keys::INPUT_TOKENS, usage.input_tokens),
        tokens(keys::OUTPUT_TOKENS, usage.output_tokens),
    ];
    if let Some(conversation_id) = run.conversation_id {
        attributes.push(KeyValue::new(
            keys::CONVERSATION_ID,
            conversation_id.to_string(),
        ));
    }
    if let Some(agent) = &run.agent {
        attributes.push(KeyValue::new(keys::AGENT_NAME, agent.clone()));
    }
    let failed = matches!(
        status,
        RunStatus::Failed | RunStatus::BudgetExhausted | RunStatus::Interrupted
    );
    if failed {
        attributes.push(KeyValue::new(keys::ERROR_TYPE, status.as_str()));
    }
    SpanData {
        span_context: context(run.trace_id, run.span_id),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Owned(format!("{INVOKE_AGENT} {target}")),
        start_time: time(run.started),
        end_time: time(at.max(run.started)),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: if failed {
            Status::error(error.unwrap_or(status.as_str()).to_owned())
        } else {
            Status::Unset
        },
        instrumentation_scope: scope.clone(),
    }
}

fn step_span(
    scope: &InstrumentationScope,
    run_id: RunId,
    run: &OpenRun,
    step: StepIndex,
    open: &OpenStep,
    end: &Ending<'_>,
) -> SpanData {
    let mut attributes = vec![
        KeyValue::new(keys::RUN_ID, run_id.to_string()),
        KeyValue::new(keys::STEP_INDEX, i64::from(step)),
        KeyValue::new(keys::STEP_KIND, open.kind.as_str()),
        KeyValue::new(keys::STEP_STATUS, end.status.as_str()),
    ];
    if !open.depends_on.is_empty() {
        let ids = open.depends_on.iter().map(|s| i64::from(*s)).collect();
        attributes.push(KeyValue::new(
            keys::STEP_DEPENDS_ON,
            Value::Array(Array::I64(ids)),
        ));
    }
    let (name, kind) = match (open.kind, &open.model) {
        (StepKind::Plan | StepKind::Answer | StepKind::Sample, Some(model)) => {
            attributes.push(KeyValue::new(keys::OPERATION, CHAT));
            attributes.push(KeyValue::new(keys::REQUEST_MODEL, model.clone()));
            if let Some(usage) = end.usage {
                attributes.push(tokens(keys::INPUT_TOKENS, usage.input_tokens));
                attributes.push(tokens(keys::OUTPUT_TOKENS, usage.output_tokens));
            }
            if let Some(reason) = end
                .output
                .and_then(|o| o.get("finish_reason"))
                .and_then(Json::as_str)
            {
                let reasons = vec![StringValue::from(reason.to_owned())];
                attributes.push(KeyValue::new(
                    keys::FINISH_REASONS,
                    Value::Array(Array::String(reasons)),
                ));
            }
            (format!("{CHAT} {model}"), SpanKind::Client)
        }
        (StepKind::Act, _) => {
            attributes.push(KeyValue::new(keys::OPERATION, EXECUTE_TOOL));
            attributes.push(KeyValue::new(keys::TOOL_NAME, open.name.clone()));
            attributes.push(KeyValue::new(keys::MCP_METHOD, "tools/call"));
            if let Some(server) = &open.server {
                attributes.push(KeyValue::new(keys::MCP_SERVER, server.clone()));
            }
            (format!("{EXECUTE_TOOL} {}", open.name), SpanKind::Internal)
        }
        // Observes, and the ReAct answer marker (the model call was the plan before it).
        _ => (open.kind.as_str().to_owned(), SpanKind::Internal),
    };
    let failed = matches!(end.status, StepStatus::Failed | StepStatus::Interrupted);
    if failed {
        attributes.push(KeyValue::new(keys::ERROR_TYPE, end.status.as_str()));
    }
    SpanData {
        span_context: context(run.trace_id, step_span_id(step)),
        parent_span_id: run.span_id,
        parent_span_is_remote: false,
        span_kind: kind,
        name: Cow::Owned(name),
        start_time: time(open.started),
        end_time: time(end.at.max(open.started)),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: if failed {
            Status::error(end.error.unwrap_or(end.status.as_str()).to_owned())
        } else {
            Status::Unset
        },
        instrumentation_scope: scope.clone(),
    }
}

fn context(trace_id: TraceId, span_id: SpanId) -> SpanContext {
    SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

fn tokens(key: &'static str, count: u64) -> KeyValue {
    KeyValue::new(key, i64::try_from(count).unwrap_or(i64::MAX))
}

fn time(at: UnixMillis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    fn started(run_id: RunId, trace_id: Option<&str>, at: UnixMillis) -> RunEvent {
        RunEvent::RunStarted {
            run_id,
            conversation_id: Some(ConversationId::new()),
            agent: Some("helper".into()),
            model: "gpt".into(),
            user_message: "hi".into(),
            trace_id: trace_id.map(crate::domain::TraceId::from),
            user: None,
            at,
        }
    }

    fn step(
        run_id: RunId,
        step: StepIndex,
        kind: StepKind,
        name: &str,
        input: Json,
        at: UnixMillis,
    ) -> RunEvent {
        RunEvent::StepStarted {
            run_id,
            step,
            kind,
            name: name.into(),
            server: (kind == StepKind::Act).then(|| "calc".to_owned()),
            // A model call's step says so in its summary (and names the model in its input).
            summary: input.get("model").map(|_| StepSummary::ModelRequest {
                messages: 1,
                tools: 0,
            }),
            input,
            depends_on: if step == 0 { vec![] } else { vec![step - 1] },
            attempt: 1,
            at,
        }
    }

    fn done(
        run_id: RunId,
        step: StepIndex,
        status: StepStatus,
        error: Option<&str>,
        at: UnixMillis,
    ) -> RunEvent {
        RunEvent::StepFinished {
            run_id,
            step,
            status,
            output: Some(json!({"finish_reason": "tool_calls"})),
            summary: None,
            error: error.map(str::to_owned),
            usage: Some(TokenUsage {
                input_tokens: 7,
                output_tokens: 3,
            }),
            at,
        }
    }

    #[test]
    fn a_run_becomes_a_tree_with_exact_times_and_ids() {
        let mut spans = RunSpans::new(InstrumentationScope::builder("test").build());
        let run = RunId::new();
        let trace = "0af7651916cd43dd8448eb211c80319c";
        assert!(spans.on_event(&started(run, Some(trace), 1_000)).is_empty());
        spans.on_event(&step(
            run,
            0,
            StepKind::Plan,
            "gpt",
            json!({"model": "gpt"}),
            1_010,
        ));
        let plan = spans
            .on_event(&done(run, 0, StepStatus::Succeeded, None, 1_050))
            .remove(0);
        spans.on_event(&step(run, 1, StepKind::Act, "calc__add", json!({}), 1_060));
        let act = spans
            .on_event(&done(run, 1, StepStatus::Failed, Some("boom"), 1_070))
            .remove(0);
        let finished = spans.on_event(&RunEvent::RunFinished {
            run_id: run,
            status: RunStatus::Succeeded,
            answer: Some("ok".into()),
            error: None,
            usage: TokenUsage {
                input_tokens: 7,
                output_tokens: 3,
            },
            at: 1_100,
        });
        assert_eq!(spans.open_runs(), 0);
        let root = &finished[0];
        assert_eq!(root.span_context.trace_id().to_string(), trace);
        assert_eq!(root.span_context.span_id(), run_span_id(run));
        assert_eq!(root.parent_span_id, SpanId::INVALID);
        assert_eq!(root.name, "invoke_agent helper");
        assert_eq!(root.start_time, UNIX_EPOCH + Duration::from_millis(1_000));
        assert_eq!(root.end_time, UNIX_EPOCH + Duration::from_millis(1_100));
        assert_eq!(attr(root, keys::INPUT_TOKENS), Some(&Value::I64(7)));

        assert_eq!(plan.name, "chat gpt");
        assert_eq!(plan.span_kind, SpanKind::Client);
        assert_eq!(plan.parent_span_id, run_span_id(run));
        assert_eq!(plan.span_context.span_id(), SpanId::from(1));
        assert_eq!(plan.span_context.trace_id().to_string(), trace);
        assert_eq!(attr(&plan, keys::OPERATION), Some(&Value::from("chat")));

        assert_eq!(act.name, "execute_tool calc__add");
        assert_eq!(act.span_context.span_id(), SpanId::from(2));
        assert_eq!(attr(&act, keys::MCP_SERVER), Some(&Value::from("calc")));
        assert_eq!(act.status, Status::error("boom"));
        assert_eq!(
            act.end_time.duration_since(act.start_time).ok(),
            Some(Duration::from_millis(10))
        );
    }

    #[test]
    fn missing_or_bad_trace_ids_fall_back_to_the_run_id() {
        let run = RunId::new();
        let derived = TraceId::from(run.0.as_u128());
        assert_eq!(trace_id_of(run, None), derived);
        assert_eq!(trace_id_of(run, Some("xyz")), derived);
        assert_eq!(trace_id_of(run, Some(&"0".repeat(32))), derived);
        assert_ne!(run_span_id(run), SpanId::INVALID);
        assert_eq!(
            crate::domain::traceparent(
                &TraceId::from(0xab).to_string(),
                u64::from_be_bytes(step_span_id(4).to_bytes())
            ),
            "00-000000000000000000000000000000ab-0000000000000005-01"
        );
    }

    #[test]
    fn unfinished_steps_close_with_the_run_and_the_map_is_bounded() {
        let mut spans = RunSpans::with_capacity(InstrumentationScope::default(), 2);
        let runs: Vec<RunId> = (0..3).map(|_| RunId::new()).collect();
        for run in &runs {
            spans.on_event(&started(*run, None, 5));
        }
        assert_eq!(spans.open_runs(), 2, "the oldest run was forgotten");
        assert!(
            spans
                .on_event(&step(runs[0], 0, StepKind::Plan, "gpt", json!({}), 6))
                .is_empty()
        );
        spans.on_event(&step(
            runs[2],
            0,
            StepKind::Observe,
            "observe",
            json!({}),
            6,
        ));
        let finished = spans.on_event(&RunEvent::RunFinished {
            run_id: runs[2],
            status: RunStatus::Failed,
            answer: None,
            error: Some("model down".into()),
            usage: TokenUsage::default(),
            at: 9,
        });
        assert_eq!(finished.len(), 2);
        assert_eq!(finished[0].name, "observe");
        assert!(matches!(finished[0].status, Status::Error { .. }));
        assert_eq!(finished[1].status, Status::error("model down"));
    }
}
