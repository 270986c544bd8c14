//! ReAct mode: the graph grows turn by turn. Each model turn is a `plan` step; its tool calls
//! are `act` steps run concurrently (up to `max_parallel_tools`); an `observe` step joins them
//! and folds the results back; when the model answers without tools, an `answer` step closes
//! the run. Model and tool misbehaviour becomes observations the model can correct itself from;
//! what a turn's calls may do before they run is decided in `engine/admit.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::admit::{self, Admitted, Verdict};
use super::call::{self, step_traceparent};
use super::checkpoint::{
    ActJournal, ActPoint, Between, Journal, ReactPoint, Settled, TurnJournal, TurnPoint,
};
use super::gaps::Gaps;
use super::recorder::Recorder;
use super::tools::{self, ToolFailure, ToolOutput};
use super::{Answer, RunSpec, Stop};
use crate::domain::{
    ChatMessage, RunEvent, StepIndex, StepKind, StepStatus, StepSummary, TokenUsage, ToolCall,
    ToolDefinition,
};
use crate::llm::{ChatRequest, ChatResponse, StreamEvent, ToolChoice};

/// One call of a turn as it ended: the call (with its unique id), what the model reads of it,
/// its act step.
pub(crate) type ActResult = (ToolCall, Settled, StepIndex);

/// Run the ReAct loop to an answer, from the start or from a checkpoint's `from`.
pub(crate) async fn run(
    spec: &RunSpec,
    recorder: &Recorder,
    journal: &Journal,
    from: Option<ReactPoint>,
) -> Result<Answer, Stop> {
    let (mut messages, mut after, mut repeats, mut gaps, mut resumed) = match from {
        Some(point) => (
            point.messages,
            point.after,
            point
                .repeats
                .into_iter()
                .map(|(tool, arguments, n)| ((tool, arguments), n))
                .collect(),
            point.gaps,
            point.turn,
        ),
        None => (
            initial_messages(spec),
            Vec::new(),
            HashMap::new(),
            Gaps::default(),
            None,
        ),
    };
    loop {
        let turn = match resumed.take() {
            Some(turn) => turn,
            None => match next_turn(spec, recorder, &messages, &after, &mut repeats).await? {
                Next::Turn(turn) => turn,
                Next::Answer(text) => return Ok(Answer { text, gaps }),
            },
        };
        let TurnPoint {
            content,
            calls,
            plan_step,
            acts,
        } = turn;
        let results = {
            let between = Between {
                messages: &messages,
                after: &after,
                repeats: &repeats,
                gaps: &gaps,
            };
            let snapshot = |acts| {
                between.point(Some(TurnPoint {
                    content: content.clone(),
                    calls: calls.clone(),
                    plan_step,
                    acts,
                }))
            };
            let turn = TurnJournal::open(journal, recorder, &snapshot, acts);
            run_turn(spec, recorder, &turn, &calls, plan_step).await
        };
        let act_steps: Vec<StepIndex> = results.iter().map(|(_, _, step)| *step).collect();
        messages.push(ChatMessage::assistant(content, calls));
        let mut folded = Vec::new();
        let mut errors = 0;
        for (call, settled, _) in &results {
            errors += usize::from(settled.is_error);
            folded.push(json!({ "tool": call.name, "call_id": call.id, "is_error": settled.is_error, "content": settled.text }));
            messages.push(ChatMessage::tool_result(
                call.id.clone(),
                settled.text.clone(),
                settled.is_error,
            ));
        }
        gaps.round(
            results
                .iter()
                .map(|(call, settled, _)| (call.name.as_str(), settled.end)),
        );
        let observe = recorder.instant(
            StepKind::Observe,
            "observe",
            json!({ "calls": results.len() }),
            act_steps,
            StepStatus::Succeeded,
            Some(Value::Array(folded)),
            Some(StepSummary::Observation {
                results: results.len(),
                errors,
            }),
            None,
        );
        after = vec![observe];
        let between = Between {
            messages: &messages,
            after: &after,
            repeats: &repeats,
            gaps: &gaps,
        };
        drop(journal.save(recorder, || between.point(None)));
    }
}

/// What the model's next turn is.
enum Next {
    /// Calls to make (those refused before running already settled).
    Turn(TurnPoint),
    /// The answer, recorded.
    Answer(String),
}

/// Ask the model for its next turn and decide what its calls may do: the answer when it calls
/// nothing, else the turn with the calls refused before running already recorded.
async fn next_turn(
    spec: &RunSpec,
    recorder: &Recorder,
    messages: &[ChatMessage],
    after: &[StepIndex],
    repeats: &mut HashMap<(String, String), u32>,
) -> Result<Next, Stop> {
    check_steps(spec, recorder, 1)?;
    let (response, plan_step) =
        model_step(spec, recorder, messages, Offer::Callable, after.to_vec()).await?;
    if response.tool_calls.is_empty() {
        let answer = response.content.clone();
        recorder.instant(
            StepKind::Answer,
            "answer",
            json!({}),
            vec![plan_step],
            StepStatus::Succeeded,
            Some(json!({ "content": answer })),
            Some(StepSummary::ModelTurn {
                text: answer.clone(),
                tool_calls: Vec::new(),
            }),
            None,
        );
        return Ok(Next::Answer(answer));
    }
    let (_, tool_calls_so_far) = recorder.counts();
    let budget = spec.limits.max_tool_calls;
    let turn = admit::admit(
        &response.tool_calls,
        spec.max_argument_bytes,
        budget.saturating_sub(tool_calls_so_far),
        budget,
    );
    if admit::runnable(&turn) > 0 && tool_calls_so_far >= budget {
        return Err(Stop::Budget(format!(
            "the budget of {budget} tool calls would be exceeded"
        )));
    }
    for admitted in turn.iter().filter(|a| a.verdict == Verdict::Run) {
        let call = &admitted.call;
        let key = (
            call.name.clone(),
            admit::canonical_arguments(&call.arguments),
        );
        let seen = repeats.entry(key).or_insert(0);
        *seen += 1;
        if *seen > spec.limits.max_repeats {
            return Err(Stop::Budget(format!(
                "`{}` was called {} times with the same arguments",
                call.name, seen
            )));
        }
    }
    let acts = turn
        .iter()
        .map(|admitted| refuse(recorder, admitted, plan_step))
        .collect();
    Ok(Next::Turn(TurnPoint {
        content: response.content,
        calls: turn.into_iter().map(|admitted| admitted.call).collect(),
        plan_step,
        acts,
    }))
}

/// A call refused before running, recorded as its act step (failed or skipped, never sent);
/// any other call is not started yet.
fn refuse(recorder: &Recorder, admitted: &Admitted, after: StepIndex) -> ActPoint {
    let Verdict::Refuse(failure) = &admitted.verdict else {
        return ActPoint::NotStarted;
    };
    let name = &admitted.call.name;
    let status = match failure {
        ToolFailure::Dropped { .. } | ToolFailure::Duplicate { .. } => StepStatus::Skipped,
        _ => StepStatus::Failed,
    };
    let step = recorder.instant(
        StepKind::Act,
        name,
        admitted.input.clone(),
        vec![after],
        status,
        None,
        None,
        Some(tools::describe_failure(name, failure)),
    );
    ActPoint::Settled {
        step,
        settled: Settled::of(name, &Err(failure.clone())),
    }
}

/// One turn's calls as act steps, in call order: those settled already (refused before running,
/// or done before a restart) as they are, the rest run concurrently (at most
/// `max_parallel_tools` at once).
async fn run_turn(
    spec: &RunSpec,
    recorder: &Recorder,
    turn: &TurnJournal<'_>,
    calls: &[ToolCall],
    plan_step: StepIndex,
) -> Vec<ActResult> {
    let acts = turn.states();
    let permits = Arc::new(Semaphore::new(
        spec.limits.max_parallel_tools.max(1) as usize
    ));
    let mut results: Vec<Option<ActResult>> = vec![None; acts.len()];
    let mut to_run = Vec::new();
    for (position, act) in acts.into_iter().enumerate() {
        match act {
            ActPoint::Settled { step, settled } => {
                results[position] = Some((calls[position].clone(), settled, step));
            }
            act => {
                let permits = permits.clone();
                let call = &calls[position];
                to_run.push(async move {
                    let _permit = permits.acquire_owned().await;
                    let (step, outcome) =
                        run_act(spec, recorder, turn.act(position), call, act, plan_step).await;
                    finish_act(recorder, step, &call.name, &outcome);
                    let settled = Settled::of(&call.name, &outcome);
                    let done = ActPoint::Settled {
                        step,
                        settled: settled.clone(),
                    };
                    drop(turn.set(position, done));
                    (position, (call.clone(), settled, step))
                });
            }
        }
    }
    for (position, result) in futures::future::join_all(to_run).await {
        results[position] = Some(result);
    }
    results.into_iter().flatten().collect()
}

/// Make `call` from where it is: started now, or (in a resumed run) waiting again for the
/// approval it waited on, or in flight when the process stopped.
async fn run_act(
    spec: &RunSpec,
    recorder: &Recorder,
    journal: ActJournal<'_>,
    call: &ToolCall,
    act: ActPoint,
    plan_step: StepIndex,
) -> (StepIndex, Result<ToolOutput, ToolFailure>) {
    let parsed = || serde_json::from_str::<Value>(&call.arguments);
    let arguments = || parsed().unwrap_or_default();
    if let Ok(carried) = call::carry_on(spec, recorder, &call.name, act, arguments, journal).await {
        return carried;
    }
    let input = admit::input_of(&call.arguments);
    let server = spec.tools.server_of(&call.name);
    let step = recorder.start(
        StepKind::Act,
        &call.name,
        server,
        input,
        None,
        vec![plan_step],
    );
    let outcome = match parsed() {
        Ok(arguments) => {
            call::invoke(spec, recorder, step, &call.name, arguments, journal, None).await
        }
        Err(err) => Err(ToolFailure::InvalidArguments {
            errors: vec![format!("the arguments are not valid JSON ({err})")],
        }),
    };
    (step, outcome)
}

pub(crate) fn initial_messages(spec: &RunSpec) -> Vec<ChatMessage> {
    let mut messages = Vec::with_capacity(spec.history.len() + 2);
    if let Some(prompt) = spec.system_prompt.as_deref().filter(|p| !p.is_empty()) {
        messages.push(ChatMessage::system(prompt));
    }
    messages.extend(spec.history.iter().cloned());
    messages.push(ChatMessage::user(spec.user_message.clone()));
    messages
}

/// Whether `more` model calls fit the step budget. `max_steps` counts model calls (plan and
/// answer steps), as its documentation says: the tool calls of a turn are bounded by
/// `max_tool_calls` instead, so a wide turn never exhausts the step budget.
pub(crate) fn check_steps(spec: &RunSpec, recorder: &Recorder, more: u32) -> Result<(), Stop> {
    let (model_calls, _) = recorder.counts();
    if model_calls + more > spec.limits.max_steps {
        return Err(Stop::Budget(format!(
            "the budget of {} steps (model calls) was reached",
            spec.limits.max_steps
        )));
    }
    Ok(())
}

/// Which tools a model call is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Every tool of the run, callable (tool choice `auto`).
    Callable,
    /// Only the definitions of the tools the conversation already called, with tool choice
    /// `none`: a history holding tool calls and their results is then valid on every wire
    /// format (Anthropic refuses tool blocks in a request that defines no tools), and the model
    /// cannot call anything new. Nothing at all when the history has no tool calls.
    HistoryOnly,
}

impl Offer {
    /// The definitions and tool choice this offer sends for `messages`.
    fn tools(self, spec: &RunSpec, messages: &[ChatMessage]) -> (Vec<ToolDefinition>, ToolChoice) {
        match self {
            Offer::Callable => (spec.tools.definitions(), ToolChoice::Auto),
            Offer::HistoryOnly => {
                let called: HashSet<&str> = messages
                    .iter()
                    .flat_map(|m| m.tool_calls.iter().map(|c| c.name.as_str()))
                    .collect();
                let definitions = if called.is_empty() {
                    Vec::new()
                } else {
                    spec.tools
                        .definitions()
                        .into_iter()
                        .filter(|d| called.contains(d.name.as_str()))
                        .collect()
                };
                (definitions, ToolChoice::None)
            }
        }
    }
}

/// One model call as a step, streaming its tokens as events.
pub(crate) async fn model_step(
    spec: &RunSpec,
    recorder: &Recorder,
    messages: &[ChatMessage],
    offer: Offer,
    depends_on: Vec<StepIndex>,
) -> Result<(ChatResponse, StepIndex), Stop> {
    model_step_as(spec, recorder, StepKind::Plan, messages, offer, depends_on).await
}

/// [`model_step`] recorded as `kind` (plan mode's final call is an `answer` step).
pub(crate) async fn model_step_as(
    spec: &RunSpec,
    recorder: &Recorder,
    kind: StepKind,
    messages: &[ChatMessage],
    offer: Offer,
    depends_on: Vec<StepIndex>,
) -> Result<(ChatResponse, StepIndex), Stop> {
    let super::Work::Chat(model) = &spec.work else {
        // `drive` runs a direct call's body instead; no path asks a model for one.
        return Err(Stop::Failed(
            "a direct tool call has no model to ask".to_owned(),
        ));
    };
    let (tools, tool_choice) = offer.tools(spec, messages);
    let input = json!({
        "model": spec.model_name,
        "messages": messages,
        "tools": tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
    });
    let summary = StepSummary::ModelRequest {
        messages: messages.len(),
        tools: tools.len(),
    };
    let step = recorder.start(
        kind,
        &spec.model_name,
        None,
        input,
        Some(summary),
        depends_on,
    );
    let request = ChatRequest {
        messages: messages.to_vec(),
        tools,
        tool_choice,
        temperature: spec.temperature,
        traceparent: step_traceparent(spec, step),
        ..ChatRequest::default()
    };
    let span =
        tracing::debug_span!("model_call", run_id = %spec.run_id, step, model = %spec.model_name);
    let mut stream = model.chat_stream(request);
    let mut completed = None;
    while let Some(item) = tracing::Instrument::instrument(stream.next(), span.clone()).await {
        match item {
            Ok(StreamEvent::TextDelta(text)) => recorder.emit(RunEvent::TokenDelta {
                run_id: recorder.run_id(),
                step,
                text,
            }),
            Ok(StreamEvent::Completed(response)) => completed = Some(response),
            Ok(_) => {}
            Err(err) => {
                let message = err.to_string();
                let error = Some(message.clone());
                recorder.finish(step, StepStatus::Failed, None, None, error, None);
                return Err(Stop::Failed(message));
            }
        }
    }
    let Some(response) = completed else {
        let message = "the model stream ended without an answer".to_owned();
        let error = Some(message.clone());
        recorder.finish(step, StepStatus::Failed, None, None, error, None);
        return Err(Stop::Failed(message));
    };
    let usage = response.usage.map(|u| TokenUsage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
    });
    recorder.finish(
        step,
        StepStatus::Succeeded,
        Some(json!({ "content": response.content, "tool_calls": response.tool_calls, "finish_reason": response.finish_reason })),
        Some(StepSummary::ModelTurn {
            text: response.content.clone(),
            tool_calls: response.tool_calls.iter().map(|c| c.name.clone()).collect(),
        }),
        None,
        usage,
    );
    Ok((response, step))
}

pub(crate) fn finish_act(
    recorder: &Recorder,
    step: StepIndex,
    name: &str,
    outcome: &Result<ToolOutput, ToolFailure>,
) {
    match outcome {
        Ok(output) => recorder.finish(
            step,
            if output.is_error {
                StepStatus::Failed
            } else {
                StepStatus::Succeeded
            },
            Some(output.raw.clone()),
            Some(StepSummary::ToolResult {
                text: tools::result_preview(&output.raw),
            }),
            output.is_error.then(|| tools::cap(&output.text)),
            None,
        ),
        Err(failure) => recorder.finish(
            step,
            StepStatus::Failed,
            None,
            None,
            Some(tools::describe_failure(name, failure)),
            None,
        ),
    }
}
