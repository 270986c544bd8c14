//! Engine tests with in-memory fakes: a scripted model and scripted tools, no IO.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::model::{AgentLimits, AgentMode};
use crate::domain::{RunEvent, RunStatus, StepKind, StepStatus};
use crate::domain::{ToolCall, ToolDefinition};
use crate::llm::{Capabilities, ChatRequest, ChatResponse, FinishReason, LlmError, StreamEvent};

struct ScriptedModel {
    replies: Mutex<VecDeque<ChatResponse>>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl ScriptedModel {
    fn new(replies: Vec<ChatResponse>) -> Arc<Self> {
        Arc::new(Self {
            replies: Mutex::new(replies.into()),
            requests: Mutex::new(Vec::new()),
        })
    }
}

fn text(content: &str) -> ChatResponse {
    ChatResponse {
        content: content.to_owned(),
        tool_calls: Vec::new(),
        finish_reason: FinishReason::Stop,
        usage: None,
    }
}

fn calls(calls: &[(&str, &str, Value)]) -> ChatResponse {
    ChatResponse {
        content: String::new(),
        tool_calls: calls
            .iter()
            .map(|(id, name, args)| ToolCall {
                id: (*id).to_owned(),
                name: (*name).to_owned(),
                arguments: args.to_string(),
            })
            .collect(),
        finish_reason: FinishReason::ToolCalls,
        usage: Some(crate::llm::Usage {
            input_tokens: 10,
            output_tokens: 5,
        }),
    }
}

impl ChatModel for ScriptedModel {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            streaming: true,
            tools: true,
            parallel_tool_calls: true,
        }
    }

    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, LlmError>> {
        self.requests.lock().expect("lock").push(request);
        let reply = self.replies.lock().expect("lock").pop_front();
        async move {
            reply.ok_or_else(|| LlmError::ProviderDown {
                model: "fake".into(),
                message: "script exhausted".into(),
            })
        }
        .boxed()
    }

    fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> BoxStream<'static, Result<StreamEvent, LlmError>> {
        self.requests.lock().expect("lock").push(request);
        let reply = self.replies.lock().expect("lock").pop_front();
        let items: Vec<Result<StreamEvent, LlmError>> = match reply {
            Some(reply) => {
                let mut items = Vec::new();
                if !reply.content.is_empty() {
                    items.push(Ok(StreamEvent::TextDelta(reply.content.clone())));
                }
                items.push(Ok(StreamEvent::Completed(reply)));
                items
            }
            None => vec![Err(LlmError::ProviderDown {
                model: "fake".into(),
                message: "script exhausted".into(),
            })],
        };
        Box::pin(futures::stream::iter(items))
    }
}

/// Tools: `slow` sleeps `ms` then echoes; `fail` returns an error result; `echo` echoes.
struct FakeTools {
    invoked: Mutex<Vec<(String, Value)>>,
    /// Whether `slow` may be sent again after a restart (`rerun_safe`).
    slow_is_read_only: std::sync::atomic::AtomicBool,
}

impl ToolInvoker for FakeTools {
    fn definitions(&self) -> Vec<ToolDefinition> {
        ["slow", "fail", "echo", "gated", "banned"]
            .into_iter()
            .map(|name| ToolDefinition {
                name: name.to_owned(),
                description: String::new(),
                parameters: json!({"type": "object"}),
                strict: false,
            })
            .collect()
    }

    fn server_of(&self, name: &str) -> Option<String> {
        ["slow", "fail", "echo", "gated", "banned"]
            .contains(&name)
            .then(|| "fake".to_owned())
    }

    fn validate(&self, name: &str, arguments: &Value) -> Result<(), ToolFailure> {
        if self.server_of(name).is_none() {
            return Err(ToolFailure::UnknownTool {
                available: vec!["slow".into(), "fail".into(), "echo".into()],
            });
        }
        if name == "slow" && !arguments.get("ms").is_some_and(Value::is_u64) {
            return Err(ToolFailure::InvalidArguments {
                errors: vec!["/ms: required integer".into()],
            });
        }
        Ok(())
    }

    fn rerun_safe(&self, name: &str) -> bool {
        name == "slow"
            && self
                .slow_is_read_only
                .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn gate(&self, name: &str) -> tools::Gate {
        match name {
            "gated" => tools::Gate::Ask {
                reason: "test".to_owned(),
            },
            "banned" => tools::Gate::Deny {
                reason: "test".to_owned(),
            },
            _ => tools::Gate::Allow,
        }
    }

    fn invoke(
        &self,
        name: &str,
        arguments: Value,
        context: tools::CallContext,
    ) -> BoxFuture<'static, Result<ToolOutput, ToolFailure>> {
        let timeout = context.timeout;
        let check = self.validate(name, &arguments);
        self.invoked
            .lock()
            .expect("lock")
            .push((name.to_owned(), arguments.clone()));
        let name = name.to_owned();
        async move {
            check?;
            let ms = arguments.get("ms").and_then(Value::as_u64).unwrap_or(0);
            if Duration::from_millis(ms) > timeout {
                tokio::time::sleep(timeout).await;
                return Err(ToolFailure::Timeout { after: timeout });
            }
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(ToolOutput {
                text: format!("{name}:{arguments}"),
                raw: json!({"content": [{"type": "text", "text": format!("{name}:{arguments}")}]}),
                is_error: name == "fail",
                server: "fake".to_owned(),
            })
        }
        .boxed()
    }
}

#[derive(Default)]
struct Collect(Mutex<Vec<RunEvent>>);

impl EventSink for Collect {
    fn emit(&self, event: RunEvent) {
        self.0.lock().expect("lock").push(event);
    }
}

fn make_spec(
    model: Arc<ScriptedModel>,
    mode: AgentMode,
    limits: AgentLimits,
) -> (RunSpec, Arc<FakeTools>) {
    let tools = Arc::new(FakeTools {
        invoked: Mutex::new(Vec::new()),
        slow_is_read_only: std::sync::atomic::AtomicBool::new(false),
    });
    let spec = RunSpec {
        run_id: crate::domain::RunId::new(),
        conversation_id: Some(crate::domain::ConversationId::new()),
        agent: None,
        model_name: "fake".to_owned(),
        work: crate::engine::Work::Chat(model),
        tools: tools.clone(),
        system_prompt: Some("test".to_owned()),
        history: Vec::new(),
        user_message: "go".to_owned(),
        mode,
        limits,
        cancel: CancellationToken::new(),
        trace_id: None,
        temperature: None,
        user: None,
        max_argument_bytes: crate::config::model::DEFAULT_MAX_ARGUMENT_BYTES,
        approver: None,
        checkpoints: None,
    };
    (spec, tools)
}

async fn run(spec: RunSpec) -> (RunOutcome, Vec<RunEvent>) {
    let sink = Arc::new(Collect::default());
    let outcome = execute(spec, sink.clone()).await;
    let events = sink.0.lock().expect("lock").clone();
    (outcome, events)
}

fn steps(events: &[RunEvent]) -> Vec<(StepKind, String, Vec<u32>)> {
    events
        .iter()
        .filter_map(|e| match e {
            RunEvent::StepStarted {
                kind,
                name,
                depends_on,
                ..
            } => Some((*kind, name.clone(), depends_on.clone())),
            _ => None,
        })
        .collect()
}

fn finished(events: &[RunEvent]) -> Vec<StepStatus> {
    events
        .iter()
        .filter_map(|e| match e {
            RunEvent::StepFinished { status, .. } => Some(*status),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn react_runs_parallel_tools_concurrently_and_answers() {
    let model = ScriptedModel::new(vec![
        calls(&[
            ("a", "slow", json!({"ms": 200})),
            ("b", "slow", json!({"ms": 200})),
            ("c", "slow", json!({"ms": 200})),
        ]),
        text("done"),
    ]);
    let (spec, _) = make_spec(model.clone(), AgentMode::React, AgentLimits::default());
    let started = Instant::now();
    let (outcome, events) = run(spec).await;
    let elapsed = started.elapsed();
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_eq!(outcome.answer.as_deref(), Some("done"));
    assert!(
        elapsed < Duration::from_millis(450),
        "3 × 200 ms tools took {elapsed:?}"
    );
    let shape: Vec<StepKind> = steps(&events).iter().map(|s| s.0).collect();
    assert_eq!(
        shape,
        [
            StepKind::Plan,
            StepKind::Act,
            StepKind::Act,
            StepKind::Act,
            StepKind::Observe,
            StepKind::Plan,
            StepKind::Answer
        ]
    );
    let all = steps(&events);
    assert_eq!(all[4].2, vec![1, 2, 3], "observe joins the acts");
    assert_eq!(all[5].2, vec![4], "the next plan follows the observe");
    assert_eq!(outcome.usage.input_tokens, 10);
    // The second model call saw both tool results.
    let second = &model.requests.lock().expect("lock")[1];
    assert_eq!(
        second
            .messages
            .iter()
            .filter(|m| m.role == crate::domain::Role::Tool)
            .count(),
        3
    );
}

#[tokio::test]
async fn tool_problems_become_observations_and_the_model_corrects_itself() {
    let model = ScriptedModel::new(vec![
        calls(&[
            ("a", "slow", json!({"ms": "soon"})),
            ("b", "nope", json!({})),
            ("c", "echo", json!("not an object")),
        ]),
        calls(&[("d", "slow", json!({"ms": 1}))]),
        text("fixed"),
    ]);
    let (mut spec, tools) = make_spec(model.clone(), AgentMode::React, AgentLimits::default());
    spec.tools = tools.clone();
    let (outcome, events) = run(spec).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);
    let second = &model.requests.lock().expect("lock")[1];
    let tool_texts: Vec<&str> = second
        .messages
        .iter()
        .filter(|m| m.role == crate::domain::Role::Tool)
        .map(|m| m.content.as_str())
        .collect();
    assert!(
        tool_texts[0].contains("do not match its schema"),
        "{tool_texts:?}"
    );
    assert!(
        tool_texts[1].contains("no tool named `nope`") && tool_texts[1].contains("echo"),
        "{tool_texts:?}"
    );
    assert!(finished(&events).contains(&StepStatus::Failed));
}

#[tokio::test]
async fn malformed_json_arguments_never_reach_the_tool() {
    let mut bad = calls(&[("a", "echo", json!({}))]);
    bad.tool_calls[0].arguments = "{not json".to_owned();
    let model = ScriptedModel::new(vec![bad, text("ok")]);
    let (spec, tools) = make_spec(model.clone(), AgentMode::React, AgentLimits::default());
    let (outcome, _) = run(spec).await;
    // Answered without retrying the call it botched: the answer lacks that call's result.
    assert_eq!(outcome.status, RunStatus::Partial, "{outcome:?}");
    assert!(tools.invoked.lock().expect("lock").is_empty());
    let second = &model.requests.lock().expect("lock")[1];
    assert!(
        second
            .messages
            .iter()
            .any(|m| m.content.contains("not valid JSON"))
    );
}

#[tokio::test]
async fn budgets_end_runs_with_a_terminal_status() {
    let limits = AgentLimits {
        max_steps: 3,
        ..AgentLimits::default()
    };
    let model = ScriptedModel::new(vec![calls(&[("a", "echo", json!({}))]); 10]);
    let (spec, _) = make_spec(model, AgentMode::React, limits);
    let (outcome, _) = run(spec).await;
    assert_eq!(outcome.status, RunStatus::BudgetExhausted);
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("steps"))
    );

    let limits = AgentLimits {
        max_tool_calls: 2,
        ..AgentLimits::default()
    };
    // The two calls that fit run and the third is dropped; asking again once the budget is used
    // up ends the run.
    let model = ScriptedModel::new(vec![
        calls(&[
            ("a", "echo", json!({"n": 1})),
            ("b", "echo", json!({"n": 2})),
            ("c", "echo", json!({"n": 3})),
        ]),
        calls(&[("d", "echo", json!({"n": 4}))]),
    ]);
    let (spec, tools) = make_spec(model, AgentMode::React, limits);
    let (outcome, _) = run(spec).await;
    assert_eq!(tools.invoked.lock().expect("lock").len(), 2);
    assert_eq!(outcome.status, RunStatus::BudgetExhausted);
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("tool calls"))
    );

    let limits = AgentLimits {
        max_repeats: 2,
        ..AgentLimits::default()
    };
    let model = ScriptedModel::new(vec![calls(&[("a", "echo", json!({"same": true}))]); 10]);
    let (spec, _) = make_spec(model, AgentMode::React, limits);
    let (outcome, _) = run(spec).await;
    assert_eq!(outcome.status, RunStatus::BudgetExhausted);
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("same arguments"))
    );

    let limits = AgentLimits {
        run_timeout: Duration::from_millis(100),
        ..AgentLimits::default()
    };
    let model = ScriptedModel::new(vec![calls(&[("a", "slow", json!({"ms": 5000}))])]);
    let (spec, _) = make_spec(model, AgentMode::React, limits);
    let (outcome, events) = run(spec).await;
    assert_eq!(outcome.status, RunStatus::BudgetExhausted);
    assert!(
        finished(&events).contains(&StepStatus::Cancelled),
        "the act in flight is closed"
    );
}

#[tokio::test]
async fn cancelling_stops_the_run_and_closes_running_steps() {
    let model = ScriptedModel::new(vec![calls(&[("a", "slow", json!({"ms": 5000}))])]);
    let (spec, _) = make_spec(model, AgentMode::React, AgentLimits::default());
    let cancel = spec.cancel.clone();
    let sink = Arc::new(Collect::default());
    let task = tokio::spawn(execute(spec, sink.clone()));
    // Cancel once the tool call is in flight, whatever the machine's load.
    let act_started = || {
        sink.0.lock().expect("lock").iter().any(|e| {
            matches!(
                e,
                RunEvent::StepStarted {
                    kind: StepKind::Act,
                    ..
                }
            )
        })
    };
    tokio::time::timeout(Duration::from_secs(5), async {
        while !act_started() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the act starts");
    cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("stops promptly")
        .expect("no panic");
    assert_eq!(outcome.status, RunStatus::Cancelled);
    let events = sink.0.lock().expect("lock").clone();
    assert!(finished(&events).contains(&StepStatus::Cancelled));
    assert!(matches!(
        events.last(),
        Some(RunEvent::RunFinished {
            status: RunStatus::Cancelled,
            ..
        })
    ));
}

#[tokio::test]
async fn plan_mode_runs_dependencies_in_order_and_independent_steps_in_parallel() {
    let plan = json!({"steps": [
        {"id": "a", "tool": "slow", "args": {"ms": 150}},
        {"id": "b", "tool": "slow", "args": {"ms": 150}},
        {"id": "c", "tool": "echo", "args": {"from_a": "{{a}}"}, "depends_on": ["b"]}
    ]});
    let model = ScriptedModel::new(vec![text(&plan.to_string()), text("the answer")]);
    let (spec, tools) = make_spec(model, AgentMode::Plan, AgentLimits::default());
    let started = Instant::now();
    let (outcome, events) = run(spec).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    assert_eq!(outcome.answer.as_deref(), Some("the answer"));
    assert!(
        started.elapsed() < Duration::from_millis(290),
        "a and b overlap: {:?}",
        started.elapsed()
    );
    let invoked = tools.invoked.lock().expect("lock").clone();
    assert_eq!(invoked[2].0, "echo");
    assert!(
        invoked[2].1["from_a"]
            .as_str()
            .is_some_and(|s| s.contains("slow:")),
        "{invoked:?}"
    );
    let shape = steps(&events);
    let c = shape.iter().find(|s| s.1 == "echo").expect("c ran");
    assert_eq!(
        c.2.len(),
        2,
        "c depends on a (reference) and b (depends_on)"
    );
    assert_eq!(shape.last().map(|s| s.0), Some(StepKind::Answer));
}

#[tokio::test]
async fn plan_mode_rejects_cycles_and_unknown_tools_before_running_anything() {
    let bad = json!({"steps": [
        {"id": "a", "tool": "echo", "args": {}, "depends_on": ["b"]},
        {"id": "b", "tool": "echo", "args": {}, "depends_on": ["a"]},
        {"id": "c", "tool": "nope", "args": {}},
        {"id": "d", "tool": "slow", "args": {}, "depends_on": ["zzz"]}
    ]});
    let good = json!({"steps": [{"id": "a", "tool": "echo", "args": {}}]});
    let model = ScriptedModel::new(vec![
        text(&bad.to_string()),
        text(&good.to_string()),
        text("ok"),
    ]);
    let (spec, tools) = make_spec(model.clone(), AgentMode::Plan, AgentLimits::default());
    let (outcome, _) = run(spec).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_eq!(
        tools.invoked.lock().expect("lock").len(),
        1,
        "only the corrected plan ran"
    );
    let feedback = &model.requests.lock().expect("lock")[1];
    let last = &feedback.messages.last().expect("feedback").content;
    for expected in [
        "cycle",
        "unknown tool `nope`",
        "`zzz` that does not exist",
        "do not match its schema",
    ] {
        assert!(last.contains(expected), "missing {expected:?} in {last}");
    }
}

#[tokio::test]
async fn plan_mode_skips_dependents_of_a_failed_step() {
    let plan = json!({"steps": [
        {"id": "a", "tool": "fail", "args": {}},
        {"id": "b", "tool": "echo", "args": {"x": "{{a}}"}},
        {"id": "c", "tool": "echo", "args": {}, "depends_on": ["b"]},
        {"id": "d", "tool": "echo", "args": {}}
    ]});
    let model = ScriptedModel::new(vec![text(&plan.to_string()), text("partial answer")]);
    let (spec, tools) = make_spec(model, AgentMode::Plan, AgentLimits::default());
    let (outcome, events) = run(spec).await;
    // It answered, but `a` failed and `b`, `c` never ran: not `succeeded`.
    assert_eq!(outcome.status, RunStatus::Partial, "{outcome:?}");
    assert_eq!(outcome.answer.as_deref(), Some("partial answer"));
    let note = outcome.error.as_deref().unwrap_or_default();
    assert!(
        note.contains("`fail` (1 failed)") && note.contains("`echo` (2 not run)"),
        "{note}"
    );
    let invoked: Vec<String> = tools
        .invoked
        .lock()
        .expect("lock")
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(
        invoked.iter().filter(|n| *n == "echo").count(),
        1,
        "only d ran: {invoked:?}"
    );
    assert_eq!(
        finished(&events)
            .iter()
            .filter(|s| **s == StepStatus::Skipped)
            .count(),
        2
    );
}

/// The tool messages of request `n` of the scripted model: (tool_call_id, content).
fn tool_messages(model: &ScriptedModel, n: usize) -> Vec<(String, String)> {
    model.requests.lock().expect("lock")[n]
        .messages
        .iter()
        .filter(|m| m.role == crate::domain::Role::Tool)
        .map(|m| {
            (
                m.tool_call_id.clone().unwrap_or_default(),
                m.content.clone(),
            )
        })
        .collect()
}

/// The tool calls of the last assistant message of request `n`.
fn echoed_calls(model: &ScriptedModel, n: usize) -> Vec<ToolCall> {
    model.requests.lock().expect("lock")[n]
        .messages
        .iter()
        .rev()
        .find(|m| m.role == crate::domain::Role::Assistant)
        .map(|m| m.tool_calls.clone())
        .unwrap_or_default()
}

fn act_statuses(events: &[RunEvent]) -> Vec<StepStatus> {
    let acts: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::StepStarted {
                step,
                kind: StepKind::Act,
                ..
            } => Some(*step),
            _ => None,
        })
        .collect();
    events
        .iter()
        .filter_map(|e| match e {
            RunEvent::StepFinished { step, status, .. } if acts.contains(step) => Some(*status),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn duplicate_tool_call_ids_are_made_unique_before_anything_runs() {
    // Two different calls sharing id `a`, an exact repeat of the first (a duplicated emission),
    // and a call without an id.
    let model = ScriptedModel::new(vec![
        calls(&[
            ("a", "echo", json!({"n": 1})),
            ("a", "echo", json!({"n": 2})),
            ("a", "echo", json!({"n": 1})),
            ("", "echo", json!({"n": 3})),
        ]),
        text("done"),
    ]);
    let (spec, tools) = make_spec(model.clone(), AgentMode::React, AgentLimits::default());
    let (outcome, events) = run(spec).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    let invoked: Vec<Value> = tools
        .invoked
        .lock()
        .expect("lock")
        .iter()
        .map(|(_, args)| args["n"].clone())
        .collect();
    assert_eq!(invoked.len(), 3, "the exact repeat never runs: {invoked:?}");
    for n in 1..=3 {
        assert!(invoked.contains(&json!(n)), "{invoked:?}");
    }
    // The history sent back pairs every call with exactly one result, by unique ids.
    let echoed = echoed_calls(&model, 1);
    let ids: Vec<&str> = echoed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    let distinct: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 4, "ids are unique: {ids:?}");
    assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
    assert_eq!(ids[0], "a", "the first call keeps its id");
    let results = tool_messages(&model, 1);
    let answered: Vec<&str> = results.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(answered, ids, "one result per call, in order");
    assert!(
        results[2].1.contains("repeats call `a`"),
        "the duplicate is told why: {results:?}"
    );
    assert_eq!(
        act_statuses(&events)
            .iter()
            .filter(|s| **s == StepStatus::Skipped)
            .count(),
        1
    );
}

#[tokio::test]
async fn an_oversized_argument_never_reaches_the_tool_and_the_model_is_told_the_cap() {
    let huge = "x".repeat(1 << 20);
    let model = ScriptedModel::new(vec![
        calls(&[
            ("big", "echo", json!({ "text": huge })),
            ("small", "echo", json!({ "n": 1 })),
        ]),
        text("done"),
    ]);
    let (spec, tools) = make_spec(model.clone(), AgentMode::React, AgentLimits::default());
    let cap = crate::config::model::DEFAULT_MAX_ARGUMENT_BYTES;
    let size = json!({ "text": huge }).to_string().len();
    let (outcome, events) = run(spec).await;
    let invoked = tools.invoked.lock().expect("lock").clone();
    assert_eq!(invoked.len(), 1, "only the small call ran");
    assert_eq!(invoked[0].1, json!({ "n": 1 }));
    let results = tool_messages(&model, 1);
    assert!(
        results[0].1.contains(&cap.to_string()) && results[0].1.contains(&size.to_string()),
        "the observation names the cap and the size: {}",
        results[0].1
    );
    assert!(
        echoed_calls(&model, 1)[0].arguments.len() < 100,
        "the megabyte is not sent back to the model"
    );
    assert_eq!(act_statuses(&events)[0], StepStatus::Failed);
    let recorded = events.iter().find_map(|e| match e {
        RunEvent::StepStarted {
            kind: StepKind::Act,
            input,
            ..
        } if input.get("arguments_omitted").is_some() => Some(input.clone()),
        _ => None,
    });
    assert!(
        recorded.is_some(),
        "the step records the size, not the bytes"
    );
    // Answered, but one call did not run and nothing made it good.
    assert_eq!(outcome.status, RunStatus::Partial, "{outcome:?}");

    // Plan mode: refused when the plan is checked, before anything runs.
    let big =
        json!({"steps": [{"id": "a", "tool": "echo", "args": {"text": "y".repeat(1 << 20)}}]});
    let good = json!({"steps": [{"id": "a", "tool": "echo", "args": {"text": "y"}}]});
    let model = ScriptedModel::new(vec![
        text(&big.to_string()),
        text(&good.to_string()),
        text("ok"),
    ]);
    let (spec, tools) = make_spec(model.clone(), AgentMode::Plan, AgentLimits::default());
    let (outcome, _) = run(spec).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    let invoked = tools.invoked.lock().expect("lock").clone();
    assert_eq!(invoked, vec![("echo".to_owned(), json!({"text": "y"}))]);
    let feedback = &model.requests.lock().expect("lock")[1];
    let last = &feedback.messages.last().expect("feedback").content;
    assert!(
        last.contains("over the cap of") && last.contains(&cap.to_string()),
        "{last}"
    );
}

/// A reply with `n` distinct echo calls.
fn wide_turn(n: usize) -> ChatResponse {
    let calls: Vec<(String, Value)> = (0..n)
        .map(|i| (format!("c{i}"), json!({ "i": i })))
        .collect();
    let borrowed: Vec<(&str, &str, Value)> = calls
        .iter()
        .map(|(id, args)| (id.as_str(), "echo", args.clone()))
        .collect();
    self::calls(&borrowed)
}

#[tokio::test]
async fn a_turn_of_thirty_calls_runs_them_all_under_the_default_budgets() {
    let model = ScriptedModel::new(vec![wide_turn(30), text("all thirty")]);
    let (spec, tools) = make_spec(model.clone(), AgentMode::React, AgentLimits::default());
    let (outcome, events) = run(spec).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    assert_eq!(outcome.answer.as_deref(), Some("all thirty"));
    assert_eq!(tools.invoked.lock().expect("lock").len(), 30);
    assert_eq!(tool_messages(&model, 1).len(), 30);
    assert!(
        act_statuses(&events)
            .iter()
            .all(|s| *s == StepStatus::Succeeded)
    );
}

#[tokio::test]
async fn a_turn_of_a_hundred_calls_runs_what_fits_and_tells_the_model_the_rest_were_dropped() {
    let model = ScriptedModel::new(vec![wide_turn(100), text("what I could")]);
    let (spec, tools) = make_spec(model.clone(), AgentMode::React, AgentLimits::default());
    let budget = AgentLimits::default().max_tool_calls as usize;
    let (outcome, events) = run(spec).await;
    assert_eq!(
        outcome.answer.as_deref(),
        Some("what I could"),
        "{outcome:?}"
    );
    let invoked = tools.invoked.lock().expect("lock").clone();
    assert_eq!(invoked.len(), budget);
    let ran: Vec<Value> = invoked.iter().map(|(_, a)| a["i"].clone()).collect();
    let first: Vec<Value> = (0..budget).map(|i| json!(i)).collect();
    let mut sorted = ran.clone();
    sorted.sort_by_key(|v| v.as_u64());
    assert_eq!(sorted, first, "the first calls of the turn ran");
    let results = tool_messages(&model, 1);
    assert_eq!(results.len(), 100, "every call has its result");
    for (_, dropped) in &results[budget..] {
        assert!(
            dropped.contains("dropped") && dropped.contains(&format!("budget of {budget}")),
            "{dropped}"
        );
    }
    let statuses = act_statuses(&events);
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StepStatus::Skipped)
            .count(),
        100 - budget
    );
    // It answered, but without what the dropped calls would have given.
    assert_eq!(outcome.status, RunStatus::Partial, "{outcome:?}");
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("`echo`") && e.contains("68 not run")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_plan_wider_than_the_step_budget_runs() {
    let steps: Vec<Value> = (0..20)
        .map(|i| json!({"id": format!("s{i}"), "tool": "echo", "args": {"i": i}}))
        .collect();
    let model = ScriptedModel::new(vec![
        text(&json!({ "steps": steps }).to_string()),
        text("twenty"),
    ]);
    let (spec, tools) = make_spec(model, AgentMode::Plan, AgentLimits::default());
    let (outcome, _) = run(spec).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    assert_eq!(tools.invoked.lock().expect("lock").len(), 20);
}

#[tokio::test]
async fn react_runs_that_answer_after_unrepaired_failures_are_partial() {
    // `fail` fails and is never called again: partial, naming it.
    let model = ScriptedModel::new(vec![
        calls(&[("a", "fail", json!({})), ("b", "echo", json!({}))]),
        text("half"),
    ]);
    let (spec, _) = make_spec(model, AgentMode::React, AgentLimits::default());
    let (outcome, events) = run(spec).await;
    assert_eq!(outcome.status, RunStatus::Partial, "{outcome:?}");
    assert_eq!(outcome.answer.as_deref(), Some("half"));
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("`fail` (1 failed)") && !e.contains("`echo`")),
        "{outcome:?}"
    );
    assert!(matches!(
        events.last(),
        Some(RunEvent::RunFinished {
            status: RunStatus::Partial,
            answer: Some(_),
            ..
        })
    ));

    // A failure the model repairs in a later turn leaves the run succeeded.
    let model = ScriptedModel::new(vec![
        calls(&[("a", "slow", json!({"ms": "soon"}))]),
        calls(&[("b", "slow", json!({"ms": 1}))]),
        text("fixed"),
    ]);
    let (spec, _) = make_spec(model, AgentMode::React, AgentLimits::default());
    let (outcome, _) = run(spec).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    assert_eq!(outcome.error, None);
}

/// Approves (or denies) every gated call once `release` is notified, noting when each opened.
struct HeldApprover {
    release: Arc<tokio::sync::Notify>,
    approve: bool,
    opened: Mutex<Vec<Instant>>,
}

impl tools::Approver for HeldApprover {
    fn open(
        &self,
        ask: tools::ApprovalAsk,
    ) -> (
        crate::domain::ApprovalRequest,
        BoxFuture<'static, crate::domain::ApprovalDecision>,
    ) {
        self.opened.lock().expect("lock").push(Instant::now());
        let request = crate::domain::ApprovalRequest {
            id: format!("ap-{}", ask.step),
            tool: ask.tool,
            server: ask.server,
            arguments: ask.arguments.clone(),
            arguments_hash: String::new(),
            reason: ask.reason,
            expires_at: 0,
        };
        let release = self.release.clone();
        let approve = self.approve;
        let decision = async move {
            release.notified().await;
            if approve {
                crate::domain::ApprovalDecision::Approved {
                    by: "alice".to_owned(),
                    arguments: ask.arguments,
                    edited: false,
                }
            } else {
                crate::domain::ApprovalDecision::Denied {
                    by: "alice".to_owned(),
                    reason: Some("not on a Friday".to_owned()),
                }
            }
        };
        (request, decision.boxed())
    }
}

#[tokio::test]
async fn a_gated_call_waits_while_the_turns_free_calls_run_and_the_model_waits_for_the_decision() {
    let model = ScriptedModel::new(vec![
        calls(&[
            ("g", "gated", json!({"ms": 0})),
            ("a", "slow", json!({"ms": 50})),
            ("b", "slow", json!({"ms": 50})),
        ]),
        text("done"),
    ]);
    // Shorter than the wait: time spent waiting for a person is not the run's to spend.
    let limits = AgentLimits {
        run_timeout: Duration::from_millis(300),
        ..AgentLimits::default()
    };
    let (mut spec, tools) = make_spec(model.clone(), AgentMode::React, limits);
    let approver = Arc::new(HeldApprover {
        release: Arc::new(tokio::sync::Notify::new()),
        approve: true,
        opened: Mutex::new(Vec::new()),
    });
    spec.approver = Some(approver.clone());
    let sink = Arc::new(Collect::default());
    let run = tokio::spawn(execute(spec, sink.clone()));
    tokio::time::sleep(Duration::from_millis(600)).await;
    {
        let events = sink.0.lock().expect("lock").clone();
        let free_done = events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    RunEvent::StepFinished {
                        status: StepStatus::Succeeded,
                        ..
                    }
                )
            })
            .count();
        assert!(
            free_done >= 3,
            "the free calls finished while the gated one waits: {events:#?}"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, RunEvent::ApprovalRequested { .. }))
        );
        assert_eq!(
            model.requests.lock().expect("lock").len(),
            1,
            "the model is not called again before the decision"
        );
        assert!(
            tools
                .invoked
                .lock()
                .expect("lock")
                .iter()
                .all(|(n, _)| n != "gated")
        );
    }
    approver.release.notify_one();
    let outcome = run.await.expect("run task");
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    assert!(
        tools
            .invoked
            .lock()
            .expect("lock")
            .iter()
            .any(|(n, _)| n == "gated")
    );
    assert_eq!(model.requests.lock().expect("lock").len(), 2);
}

#[tokio::test]
async fn a_denial_reaches_the_model_with_its_reason_and_a_policy_deny_never_runs() {
    let model = ScriptedModel::new(vec![
        calls(&[("g", "gated", json!({})), ("x", "banned", json!({}))]),
        text("ok"),
    ]);
    let (mut spec, tools) = make_spec(model.clone(), AgentMode::React, AgentLimits::default());
    let approver = Arc::new(HeldApprover {
        release: Arc::new(tokio::sync::Notify::new()),
        approve: false,
        opened: Mutex::new(Vec::new()),
    });
    approver.release.notify_one();
    spec.approver = Some(approver);
    let (_, events) = run(spec).await;
    assert!(
        tools.invoked.lock().expect("lock").is_empty(),
        "neither call ran"
    );
    let second = model.requests.lock().expect("lock")[1].clone();
    let tool_text: Vec<String> = second
        .messages
        .iter()
        .filter(|m| m.role == crate::domain::Role::Tool)
        .map(|m| m.content.clone())
        .collect();
    assert!(
        tool_text
            .iter()
            .any(|t| t.contains("alice denied this call, saying: not on a Friday")),
        "{tool_text:?}"
    );
    assert!(
        tool_text
            .iter()
            .any(|t| t.contains("approval policy refuses `banned`")),
        "{tool_text:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RunEvent::ApprovalDecided { .. }))
    );
}

/// Keeps every checkpoint a run saves, as the store would (through their JSON).
#[derive(Default)]
struct KeptCheckpoints(Mutex<Vec<String>>);

impl Checkpoints for KeptCheckpoints {
    fn save(&self, checkpoint: &Checkpoint) -> BoxFuture<'static, Result<(), String>> {
        self.0.lock().expect("lock").push(checkpoint.to_json());
        futures::future::ready(Ok(())).boxed()
    }
}

impl KeptCheckpoints {
    /// Wait until the last checkpoint's turn has its calls in these states (by `state` tag).
    async fn until(&self, states: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(last) = self.0.lock().expect("lock").last().cloned() {
                let value: Value = serde_json::from_str(&last).expect("json");
                // A ReAct turn's calls, or an executing plan's steps.
                let round = &value["body"][if value["body"]["mode"] == "plan" {
                    "exec"
                } else {
                    "turn"
                }];
                let acts: Vec<&str> = round["acts"]
                    .as_array()
                    .map(|acts| acts.iter().filter_map(|a| a["state"].as_str()).collect())
                    .unwrap_or_default();
                if acts == states {
                    return last;
                }
            }
            assert!(Instant::now() < deadline, "no checkpoint with {states:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A run of `replies` whose gated calls wait for nobody, saving its checkpoints: the run as a
/// process that will die saw it.
async fn waiting_run(mode: AgentMode, replies: Vec<ChatResponse>, states: &[&str]) -> String {
    let model = ScriptedModel::new(replies);
    let (mut spec, _) = make_spec(model, mode, AgentLimits::default());
    spec.approver = Some(Arc::new(HeldApprover {
        release: Arc::new(tokio::sync::Notify::new()),
        approve: true,
        opened: Mutex::new(Vec::new()),
    }));
    let kept = Arc::new(KeptCheckpoints::default());
    spec.checkpoints = Some(kept.clone());
    let run = tokio::spawn(execute(spec, Arc::new(Collect::default())));
    let checkpoint = kept.until(states).await;
    // The process is gone.
    run.abort();
    checkpoint
}

/// The run of `checkpoint` in a new process whose model answers `rest` and whose person
/// approves at once.
async fn resumed(
    checkpoint: &str,
    rest: Vec<ChatResponse>,
    slow_is_read_only: bool,
) -> (
    RunOutcome,
    Vec<RunEvent>,
    Arc<FakeTools>,
    Arc<ScriptedModel>,
) {
    let model = ScriptedModel::new(rest);
    let (mut spec, tools) = make_spec(model.clone(), AgentMode::React, AgentLimits::default());
    tools
        .slow_is_read_only
        .store(slow_is_read_only, std::sync::atomic::Ordering::Relaxed);
    let approver = Arc::new(HeldApprover {
        release: Arc::new(tokio::sync::Notify::new()),
        approve: true,
        opened: Mutex::new(Vec::new()),
    });
    approver.release.notify_one();
    spec.approver = Some(approver);
    spec.checkpoints = Some(Arc::new(KeptCheckpoints::default()));
    let checkpoint = Checkpoint::from_json(checkpoint).expect("a checkpoint");
    let sink = Arc::new(Collect::default());
    let outcome = resume(spec, checkpoint, sink.clone()).await;
    let events = sink.0.lock().expect("lock").clone();
    (outcome, events, tools, model)
}

fn tool_texts(request: &ChatRequest) -> Vec<String> {
    request
        .messages
        .iter()
        .filter(|m| m.role == crate::domain::Role::Tool)
        .map(|m| m.content.clone())
        .collect()
}

#[tokio::test]
async fn a_resumed_run_waits_again_on_its_approval_and_redoes_nothing_that_ran() {
    let checkpoint = waiting_run(
        AgentMode::React,
        vec![
            calls(&[
                ("a", "echo", json!({"n": 1})),
                ("g", "gated", json!({"n": 2})),
            ]),
            text("never asked"),
        ],
        &["settled", "awaiting"],
    )
    .await;
    let (outcome, events, tools, model) = resumed(&checkpoint, vec![text("done")], false).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    assert_eq!(outcome.answer.as_deref(), Some("done"));
    assert_eq!(
        *tools.invoked.lock().expect("lock"),
        vec![("gated".to_owned(), json!({"n": 2}))],
        "only the approved call ran; the settled one was not sent again"
    );
    assert!(
        matches!(events[0], RunEvent::RunResumed { from_step: 3, .. }),
        "{:?}",
        events[0]
    );
    let reopened: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::ApprovalRequested { request, step, .. } => {
                assert_eq!(*step, 2);
                Some(request.id.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(reopened, ["ap-2"], "the same approval, on the same step");
    let new_steps: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::StepStarted { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(
        new_steps,
        [3, 4, 5],
        "observe, plan and answer after the checkpoint"
    );
    let requests = model.requests.lock().expect("lock");
    assert_eq!(requests.len(), 1);
    let texts = tool_texts(&requests[0]);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].starts_with("echo:"), "{texts:?}");
    assert!(texts[1].starts_with("gated:"), "{texts:?}");
    assert_eq!(
        requests[0].messages.first().map(|m| m.content.as_str()),
        Some("test"),
        "the conversation is the checkpoint's, system prompt first"
    );
}

#[tokio::test]
async fn a_call_in_flight_at_the_restart_is_sent_again_only_when_read_only() {
    let checkpoint = waiting_run(
        AgentMode::React,
        vec![calls(&[
            ("s", "slow", json!({"ms": 60000})),
            ("g", "gated", json!({})),
        ])],
        &["in_flight", "awaiting"],
    )
    .await;
    let (outcome, _, tools, model) = resumed(&checkpoint, vec![text("done")], false).await;
    assert_eq!(outcome.status, RunStatus::Partial, "{outcome:?}");
    assert_eq!(
        *tools.invoked.lock().expect("lock"),
        vec![("gated".to_owned(), json!({}))],
        "a call that may have taken effect is not sent twice"
    );
    let texts = tool_texts(&model.requests.lock().expect("lock")[0]);
    assert!(
        texts[0].contains("whether it took effect is unknown"),
        "{texts:?}"
    );

    // A read-only call is simply sent again (quicker this time).
    let quick = checkpoint.replace("60000", "1");
    let (outcome, _, tools, _) = resumed(&quick, vec![text("done")], true).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    let invoked: Vec<String> = tools
        .invoked
        .lock()
        .expect("lock")
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    assert_eq!(invoked.len(), 2);
    assert!(invoked.contains(&"slow".to_owned()) && invoked.contains(&"gated".to_owned()));
}

#[tokio::test]
async fn a_run_that_never_waited_saves_no_checkpoint_and_a_foreign_one_is_refused() {
    let model = ScriptedModel::new(vec![calls(&[("a", "echo", json!({}))]), text("ok")]);
    let (mut spec, _) = make_spec(model, AgentMode::React, AgentLimits::default());
    let kept = Arc::new(KeptCheckpoints::default());
    spec.checkpoints = Some(kept.clone());
    let (outcome, _) = run(spec).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert!(kept.0.lock().expect("lock").is_empty(), "nothing to resume");
    let err = Checkpoint::from_json(r#"{"version": 99}"#).unwrap_err();
    assert!(err.to_string().contains("version 99"), "{err}");
    assert!(Checkpoint::from_json("{").is_err());
}

#[tokio::test]
async fn a_resumed_plan_carries_on_with_its_waiting_step_and_what_depends_on_it() {
    let plan = json!({"steps": [
        {"id": "a", "tool": "echo", "args": {"n": 1}},
        {"id": "g", "tool": "gated", "args": {"n": 2}},
        {"id": "b", "tool": "echo", "args": {"after": "{{g}}"}},
    ]});
    let checkpoint = waiting_run(
        AgentMode::Plan,
        vec![text(&plan.to_string()), text("never asked")],
        &["settled", "awaiting", "not_started"],
    )
    .await;
    let value: Value = serde_json::from_str(&checkpoint).expect("json");
    assert_eq!(value["body"]["mode"], "plan", "{value:#}");
    let (outcome, _, tools, model) = resumed(&checkpoint, vec![text("done")], false).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    let invoked = tools.invoked.lock().expect("lock").clone();
    assert_eq!(
        invoked,
        vec![
            ("gated".to_owned(), json!({"n": 2})),
            ("echo".to_owned(), json!({"after": "gated:{\"n\":2}"})),
        ],
        "step a is not run again; b runs on g's output"
    );
    let texts = tool_texts(&model.requests.lock().expect("lock")[0]);
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(texts[0].starts_with("echo:{\"n\":1}"), "{texts:?}");
}
