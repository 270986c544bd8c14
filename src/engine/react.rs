//! ReAct mode: the graph grows turn by turn. Each model turn is a `plan` step; its tool calls
//! are `act` steps run concurrently (up to `max_parallel_tools`); an `observe` step joins them
//! and folds the results back; when the model answers without tools, an `answer` step closes
//! the run. Model and tool misbehaviour becomes observations the model can correct itself from.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use super::recorder::Recorder;
use super::tools::{self, ToolFailure, ToolOutput};
use super::{RunSpec, Stop};
use crate::domain::{
    ChatMessage, RunEvent, StepIndex, StepKind, StepStatus, StepSummary, TokenUsage, ToolCall,
};
use crate::llm::{ChatRequest, ChatResponse, StreamEvent};

/// Run the ReAct loop to an answer.
pub(crate) async fn run(spec: &RunSpec, recorder: &Recorder) -> Result<String, Stop> {
    let mut messages = initial_messages(spec);
    let mut after: Vec<StepIndex> = Vec::new();
    let mut repeats: HashMap<(String, String), u32> = HashMap::new();
    loop {
        check_steps(spec, recorder, 1)?;
        let (response, plan_step) =
            model_step(spec, recorder, &messages, true, after.clone()).await?;
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
            return Ok(answer);
        }
        let (_, tool_calls_so_far) = recorder.counts();
        if tool_calls_so_far as usize + response.tool_calls.len()
            > spec.limits.max_tool_calls as usize
        {
            return Err(Stop::Budget(format!(
                "the budget of {} tool calls would be exceeded",
                spec.limits.max_tool_calls
            )));
        }
        check_steps(spec, recorder, response.tool_calls.len() as u32 + 2)?;
        for call in &response.tool_calls {
            let key = (call.name.clone(), canonical_arguments(&call.arguments));
            let seen = repeats.entry(key).or_insert(0);
            *seen += 1;
            if *seen > spec.limits.max_repeats {
                return Err(Stop::Budget(format!(
                    "`{}` was called {} times with the same arguments",
                    call.name, seen
                )));
            }
        }
        let results = run_acts(spec, recorder, &response.tool_calls, plan_step).await;
        let act_steps: Vec<StepIndex> = results.iter().map(|(_, _, step)| *step).collect();
        messages.push(ChatMessage::assistant(
            response.content.clone(),
            response.tool_calls.clone(),
        ));
        let mut folded = Vec::new();
        let mut errors = 0;
        for (call, outcome, _) in &results {
            let (text, is_error) = tools::observation(&call.name, outcome);
            errors += usize::from(is_error);
            folded.push(json!({ "tool": call.name, "call_id": call.id, "is_error": is_error, "content": text }));
            messages.push(ChatMessage::tool_result(call.id.clone(), text, is_error));
        }
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
    }
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

pub(crate) fn check_steps(spec: &RunSpec, recorder: &Recorder, more: u32) -> Result<(), Stop> {
    let (steps, _) = recorder.counts();
    if steps + more > spec.limits.max_steps {
        return Err(Stop::Budget(format!(
            "the budget of {} steps was reached",
            spec.limits.max_steps
        )));
    }
    Ok(())
}

/// JSON arguments with keys sorted, so `{"a":1,"b":2}` and `{"b":2,"a":1}` count as the same call.
fn canonical_arguments(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .map_or_else(|_| arguments.to_owned(), |v| v.to_string())
}

/// One model call as a step, streaming its tokens as events.
pub(crate) async fn model_step(
    spec: &RunSpec,
    recorder: &Recorder,
    messages: &[ChatMessage],
    offer_tools: bool,
    depends_on: Vec<StepIndex>,
) -> Result<(ChatResponse, StepIndex), Stop> {
    model_step_as(
        spec,
        recorder,
        StepKind::Plan,
        messages,
        offer_tools,
        depends_on,
    )
    .await
}

/// [`model_step`] recorded as `kind` (plan mode's final call is an `answer` step).
pub(crate) async fn model_step_as(
    spec: &RunSpec,
    recorder: &Recorder,
    kind: StepKind,
    messages: &[ChatMessage],
    offer_tools: bool,
    depends_on: Vec<StepIndex>,
) -> Result<(ChatResponse, StepIndex), Stop> {
    let tools = if offer_tools {
        spec.tools.definitions()
    } else {
        Vec::new()
    };
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
        temperature: spec.temperature,
        traceparent: step_traceparent(spec, step),
        ..ChatRequest::default()
    };
    let span =
        tracing::debug_span!("model_call", run_id = %spec.run_id, step, model = %spec.model_name);
    let mut stream = spec.model.chat_stream(request);
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

/// Run tool calls as concurrent `act` steps (at most `max_parallel_tools` at once), in call order.
pub(crate) async fn run_acts(
    spec: &RunSpec,
    recorder: &Recorder,
    calls: &[ToolCall],
    after: StepIndex,
) -> Vec<(ToolCall, Result<ToolOutput, ToolFailure>, StepIndex)> {
    let permits = Arc::new(Semaphore::new(
        spec.limits.max_parallel_tools.max(1) as usize
    ));
    let acts = calls.iter().map(|call| {
        let permits = permits.clone();
        async move {
            let parsed = serde_json::from_str::<Value>(&call.arguments);
            let input = match &parsed {
                Ok(arguments) => arguments.clone(),
                Err(_) => json!({ "raw_arguments": call.arguments }),
            };
            let server = spec.tools.server_of(&call.name);
            let _permit = permits.acquire_owned().await;
            let step = recorder.start(StepKind::Act, &call.name, server, input, None, vec![after]);
            let outcome = match parsed {
                Ok(arguments) => invoke(spec, recorder, step, &call.name, arguments).await,
                Err(err) => Err(ToolFailure::InvalidArguments {
                    errors: vec![format!("the arguments are not valid JSON ({err})")],
                }),
            };
            finish_act(recorder, step, &call.name, &outcome);
            (call.clone(), outcome, step)
        }
    });
    futures::future::join_all(acts).await
}

/// The `traceparent` naming step `step`'s span as the parent, sent to the model or MCP server
/// the step calls.
fn step_traceparent(spec: &RunSpec, step: StepIndex) -> Option<String> {
    spec.trace_id
        .as_ref()
        .map(|trace| crate::domain::traceparent(trace, crate::domain::step_span_id(step)))
}

/// Invoke one tool, forwarding its progress notifications as events.
pub(crate) async fn invoke(
    spec: &RunSpec,
    recorder: &Recorder,
    step: StepIndex,
    name: &str,
    arguments: Value,
) -> Result<ToolOutput, ToolFailure> {
    let (progress_tx, mut progress_rx) = mpsc::channel(32);
    let span = tracing::debug_span!("tool_call", run_id = %spec.run_id, step, tool = %name);
    let call = tracing::Instrument::instrument(
        spec.tools.invoke(
            name,
            arguments,
            spec.limits.tool_timeout,
            progress_tx,
            step_traceparent(spec, step),
        ),
        span,
    );
    tokio::pin!(call);
    loop {
        tokio::select! {
            outcome = &mut call => return outcome,
            Some(progress) = progress_rx.recv() => recorder.emit(RunEvent::ToolProgress {
                run_id: recorder.run_id(),
                step,
                progress,
            }),
        }
    }
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
