//! One tool call: the approval policy's gate first (a call that needs a person waits for their
//! decision, and its waiting does not count against the run's time budget), then the call in
//! flight, whose updates (progress, a question for the person, a model completion its server
//! asked for) become run events and steps while it runs.

use std::collections::HashMap;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::RunSpec;
use super::checkpoint::{ActJournal, ActPoint};
use super::recorder::Recorder;
use super::tools::{ApprovalAsk, CallContext, Gate, ToolFailure, ToolOutput};
use crate::domain::{
    ApprovalDecision, RunEvent, StepIndex, StepKind, StepStatus, StepSummary, ToolUpdate,
    now_millis,
};

/// Updates one call may have queued before the engine reads them.
const UPDATE_BUFFER: usize = 32;

/// Invoke one tool as act step `step`, forwarding its updates as they come; `journal` learns
/// where the call is (waiting for a person, sent), and `reopen` is the approval a resumed run
/// waited on for this step.
pub(crate) async fn invoke(
    spec: &RunSpec,
    recorder: &Recorder,
    step: StepIndex,
    name: &str,
    arguments: Value,
    journal: ActJournal<'_>,
    reopen: Option<crate::domain::ApprovalRequest>,
) -> Result<ToolOutput, ToolFailure> {
    let (arguments, approved) = match spec.tools.gate(name) {
        Gate::Allow => (arguments, None),
        Gate::Deny { reason } => {
            return Err(ToolFailure::Refused {
                message: format!("the approval policy refuses `{name}` ({reason}); it was not run"),
            });
        }
        Gate::Ask { reason } => {
            let ask = ApprovalAsk {
                step,
                tool: name.to_owned(),
                server: spec.tools.server_of(name).unwrap_or_default(),
                arguments,
                reason,
                existing: reopen,
            };
            let (arguments, edited) = approval(spec, recorder, ask, journal).await?;
            (arguments, Some(edited))
        }
    };
    let edited = (approved == Some(true)).then_some(&arguments);
    sent(journal, step, edited, approved.is_some()).await?;
    let outcome = call(
        spec,
        recorder,
        step,
        name,
        arguments.clone(),
        approved.is_some(),
    )
    .await;
    match (outcome, approved) {
        // The model hears that its arguments were not the ones used.
        (Ok(mut output), Some(true)) => {
            output.text = format!(
                "(A person changed the arguments before the call ran; it ran with {arguments}.)\n{}",
                output.text
            );
            Ok(output)
        }
        (outcome, _) => outcome,
    }
}

/// Carry on with a call a resumed run finds started: waiting again on the approval it waited
/// on, or in flight when the process stopped (sent with `arguments` unless a person edited
/// them). Any other state is handed back.
pub(crate) async fn carry_on(
    spec: &RunSpec,
    recorder: &Recorder,
    name: &str,
    act: ActPoint,
    arguments: impl FnOnce() -> Value,
    journal: ActJournal<'_>,
) -> Result<(StepIndex, Result<ToolOutput, ToolFailure>), ActPoint> {
    match act {
        ActPoint::Awaiting { step, request } => {
            recorder.adopt(step);
            let arguments = request.arguments.clone();
            let outcome = invoke(
                spec,
                recorder,
                step,
                name,
                arguments,
                journal,
                Some(request),
            );
            Ok((step, outcome.await))
        }
        ActPoint::InFlight {
            step,
            arguments: edited,
            approved,
        } => {
            recorder.adopt(step);
            let was_edited = edited.is_some();
            let sent = (edited.unwrap_or_else(arguments), was_edited, approved);
            Ok((step, again(spec, recorder, step, name, sent, journal).await))
        }
        other => Err(other),
    }
}

/// A call that was in flight when the run's process stopped, in a resumed run: sent again (with
/// the arguments it was sent with) when its tool is read-only, else its outcome is unknown.
async fn again(
    spec: &RunSpec,
    recorder: &Recorder,
    step: StepIndex,
    name: &str,
    (arguments, edited, approved): (Value, bool, bool),
    journal: ActJournal<'_>,
) -> Result<ToolOutput, ToolFailure> {
    if !spec.tools.rerun_safe(name) {
        return Err(ToolFailure::OutcomeUnknown);
    }
    sent(journal, step, edited.then_some(&arguments), approved).await?;
    call(spec, recorder, step, name, arguments, approved).await
}

/// Record that the call of `step` is being sent, and wait until that is stored: a call is never
/// sent before a resumed run could know it may have taken effect.
async fn sent(
    journal: ActJournal<'_>,
    step: StepIndex,
    edited: Option<&Value>,
    approved: bool,
) -> Result<(), ToolFailure> {
    let Some(saving) = journal.in_flight(step, edited, approved) else {
        return Ok(());
    };
    saving.await.map_err(|err| ToolFailure::Refused {
        message: format!("the run's state could not be stored ({err}), so it was not sent"),
    })
}

/// Ask a person to decide the gated call `ask`; the arguments to call with (and whether the
/// person edited them), or the refusal the model hears.
async fn approval(
    spec: &RunSpec,
    recorder: &Recorder,
    ask: ApprovalAsk,
    journal: ActJournal<'_>,
) -> Result<(Value, bool), ToolFailure> {
    let step = ask.step;
    let Some(approver) = &spec.approver else {
        return Err(refusal(&ApprovalDecision::Unattended));
    };
    let (request, decision) = approver.open(ask);
    journal.awaiting(step, &request);
    let id = request.id.clone();
    recorder.emit(RunEvent::ApprovalRequested {
        run_id: recorder.run_id(),
        step,
        request,
        at: now_millis(),
    });
    let decision = {
        let _waiting = recorder.begin_wait();
        decision.await
    };
    recorder.emit(RunEvent::ApprovalDecided {
        run_id: recorder.run_id(),
        step,
        id,
        decision: decision.clone(),
        at: now_millis(),
    });
    match decision {
        ApprovalDecision::Approved {
            arguments, edited, ..
        } => Ok((arguments, edited)),
        other => Err(refusal(&other)),
    }
}

/// What the model hears of a call nobody approved.
fn refusal(decision: &ApprovalDecision) -> ToolFailure {
    let message = match decision {
        ApprovalDecision::Denied { by, reason } => match reason {
            Some(reason) => format!("{by} denied this call, saying: {reason}"),
            None => format!("{by} denied this call"),
        },
        ApprovalDecision::Expired => {
            "this call needed a person's approval and nobody approved it in time; it was not run".to_owned()
        }
        ApprovalDecision::Unattended | ApprovalDecision::Approved { .. } => {
            "this call needs a person's approval, and nobody can approve it here (approval.unattended: deny); it was not run".to_owned()
        }
    };
    ToolFailure::Refused { message }
}

/// Make the call, forwarding its updates as they come.
async fn call(
    spec: &RunSpec,
    recorder: &Recorder,
    step: StepIndex,
    name: &str,
    arguments: Value,
    approved: bool,
) -> Result<ToolOutput, ToolFailure> {
    let (updates_tx, mut updates) = mpsc::channel(UPDATE_BUFFER);
    let span = tracing::debug_span!("tool_call", run_id = %spec.run_id, step, tool = %name);
    let context = CallContext {
        timeout: spec.limits.tool_timeout,
        updates: updates_tx,
        traceparent: step_traceparent(spec, step),
        approved,
    };
    let call = tracing::Instrument::instrument(spec.tools.invoke(name, arguments, context), span);
    tokio::pin!(call);
    let mut forwarder = Forwarder {
        recorder,
        act: step,
        samples: HashMap::new(),
    };
    let outcome = loop {
        tokio::select! {
            outcome = &mut call => break outcome,
            Some(update) = updates.recv() => forwarder.forward(update),
        }
    };
    // What the call reported just before it returned.
    while let Ok(update) = updates.try_recv() {
        forwarder.forward(update);
    }
    forwarder.close();
    outcome
}

/// The `traceparent` naming step `step`'s span as the parent, sent to the model or MCP server
/// the step calls.
pub(crate) fn step_traceparent(spec: &RunSpec, step: StepIndex) -> Option<String> {
    spec.trace_id
        .as_ref()
        .map(|trace| crate::domain::traceparent(trace, crate::domain::step_span_id(step)))
}

/// Turns one act's updates into events, and its sampling requests into `sample` steps under it.
struct Forwarder<'a> {
    recorder: &'a Recorder,
    act: StepIndex,
    /// Sampling steps started and not yet finished, by the invoker's id.
    samples: HashMap<u64, StepIndex>,
}

impl Forwarder<'_> {
    fn forward(&mut self, update: ToolUpdate) {
        let run_id = self.recorder.run_id();
        let step = self.act;
        match update {
            ToolUpdate::Progress(progress) => self.recorder.emit(RunEvent::ToolProgress {
                run_id,
                step,
                progress,
            }),
            ToolUpdate::InputRequested(request) => self.recorder.emit(RunEvent::InputRequested {
                run_id,
                step,
                request,
            }),
            ToolUpdate::InputAnswered { id, action } => {
                self.recorder.emit(RunEvent::InputAnswered {
                    run_id,
                    step,
                    id,
                    action,
                });
            }
            ToolUpdate::SampleStarted { id, model, input } => {
                let messages = input
                    .get("messages")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let sample = self.recorder.start(
                    StepKind::Sample,
                    &model,
                    None,
                    input,
                    Some(StepSummary::ModelRequest { messages, tools: 0 }),
                    vec![step],
                );
                self.samples.insert(id, sample);
            }
            ToolUpdate::SampleFinished {
                id,
                output,
                error,
                usage,
            } => {
                let Some(sample) = self.samples.remove(&id) else {
                    return;
                };
                let status = if error.is_some() {
                    StepStatus::Failed
                } else {
                    StepStatus::Succeeded
                };
                let summary = output
                    .as_ref()
                    .and_then(|o| o.get("text"))
                    .and_then(Value::as_str)
                    .map(|text| StepSummary::ModelTurn {
                        text: text.to_owned(),
                        tool_calls: Vec::new(),
                    });
                self.recorder
                    .finish(sample, status, output, summary, error, usage);
            }
        }
    }

    /// Sampling steps the call left open (it ended while the model answered) end cancelled.
    fn close(&mut self) {
        for (_, sample) in self.samples.drain() {
            self.recorder.finish(
                sample,
                StepStatus::Cancelled,
                Some(json!({})),
                None,
                Some("the tool call ended before the model answered".to_owned()),
                None,
            );
        }
    }
}
