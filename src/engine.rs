//! The run engine: a chat turn executed as a plan–act–observe DAG (design.md §3).
//!
//! ReAct mode grows the graph turn by turn (`plan → {act, act} → observe → plan → … → answer`);
//! plan mode asks for a whole JSON plan, checks it before anything runs (petgraph toposort for
//! cycles), executes it with maximal parallelism and writes the answer. Every state change is a
//! [`RunEvent`] handed to an [`EventSink`]; the engine knows neither HTTP nor SQL and talks to
//! models and tools only through the `ChatModel` and [`ToolInvoker`] traits.

mod admit;
mod call;
mod checkpoint;
mod direct;
mod gaps;
mod plan;
mod react;
mod recorder;
pub mod tools;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::model::{AgentLimits, AgentMode};
use crate::domain::{ChatMessage, ToolCall};
use crate::domain::{ConversationId, RunEvent, RunId, RunOutcome, RunStatus, TraceId, now_millis};
use crate::llm::ChatModel;

pub use checkpoint::{Checkpoint, CheckpointError, Checkpoints};
pub use recorder::Recorder;
pub use tools::{ToolFailure, ToolInvoker, ToolOutput};

/// Receives every event of a run, in order.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: RunEvent);
}

/// Everything one run needs; built by the caller from config, registry and catalog.
pub struct RunSpec {
    pub run_id: RunId,
    /// `None`: a run outside any conversation (a direct call through `/mcp`).
    pub conversation_id: Option<ConversationId>,
    pub agent: Option<String>,
    /// The configured model name (for traces; empty for a direct call).
    pub model_name: String,
    /// What the run does: a chat turn a model plans, or one call a client chose.
    pub work: Work,
    pub tools: Arc<dyn ToolInvoker>,
    pub system_prompt: Option<String>,
    /// Earlier turns of the conversation.
    pub history: Vec<ChatMessage>,
    pub user_message: String,
    pub mode: AgentMode,
    pub limits: AgentLimits,
    pub cancel: CancellationToken,
    pub trace_id: Option<TraceId>,
    pub temperature: Option<f64>,
    /// Who started the run: recorded on `RunStarted`, so the store knows the run's owner.
    pub user: Option<String>,
    /// Largest tool-call arguments (JSON text, bytes) sent to a tool (`tools.max_argument_bytes`):
    /// a larger call is refused before it runs and the model is told the cap and the size.
    pub max_argument_bytes: usize,
    /// Who decides calls the approval policy gates; `None`: nobody can, so they are refused.
    pub approver: Option<Arc<dyn tools::Approver>>,
    /// Where the run's checkpoints go once it is durable (see `engine/checkpoint.rs`); `None`:
    /// the run cannot be resumed, and ends with its process.
    pub checkpoints: Option<Arc<dyn Checkpoints>>,
}

/// What a run does.
pub enum Work {
    /// A chat turn: `model` decides the calls, in the spec's mode.
    Chat(Arc<dyn ChatModel>),
    /// One tool call a client chose itself (the `/mcp` gateway): no model is asked; the call
    /// is the run's only step, through the same gate, approvals and invoker as a model's call,
    /// so it is traced, audited and approved like one.
    Call(DirectCall),
}

/// One call a client chose, and where its full result is left for that client (the run's
/// events carry it redacted and its answer as text; the client wants the result as the tool
/// gave it).
pub struct DirectCall {
    pub call: ToolCall,
    pub result: Arc<std::sync::OnceLock<ToolOutput>>,
}

/// What a run body that answered hands back: the answer, and which tool calls it may lack.
pub(crate) struct Answer {
    pub text: String,
    pub gaps: gaps::Gaps,
}

/// Why the run body stopped before an answer (budgets and failures, not crashes).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stop {
    Budget(String),
    Failed(String),
}

/// Execute one run to its end, emitting every event to `sink`. Never panics on model or tool
/// behaviour; budgets, cancellation and the run timeout all end with a terminal status. A run
/// that answered ends `succeeded`, or `partial` (with `error` naming the tools) when some tool
/// calls failed or did not run and nothing made them good (see `engine/gaps.rs`).
pub async fn execute(spec: RunSpec, sink: Arc<dyn EventSink>) -> RunOutcome {
    let recorder = Recorder::new(spec.run_id, sink.clone());
    sink.emit(RunEvent::RunStarted {
        run_id: spec.run_id,
        conversation_id: spec.conversation_id,
        agent: spec.agent.clone(),
        model: spec.model_name.clone(),
        user_message: spec.user_message.clone(),
        trace_id: spec.trace_id.clone(),
        user: spec.user.clone(),
        at: now_millis(),
    });
    drive(spec, recorder, None).await
}

/// Go on with a run from its stored `checkpoint` (its process is gone), emitting the rest of
/// its events to `sink` after a `RunResumed`. `spec` is rebuilt by the caller from the stored
/// run (its mode, system prompt and history are the checkpoint's; the rest is as for
/// [`execute`]). Nothing the checkpoint records as done is done again (see
/// `engine/checkpoint.rs`).
pub async fn resume(spec: RunSpec, checkpoint: Checkpoint, sink: Arc<dyn EventSink>) -> RunOutcome {
    let recorder = Recorder::resumed(spec.run_id, sink.clone(), checkpoint.counts);
    sink.emit(RunEvent::RunResumed {
        run_id: spec.run_id,
        from_step: checkpoint.next_step(),
        at: now_millis(),
    });
    drive(spec, recorder, Some(checkpoint.body)).await
}

/// Run the body (fresh, or from a checkpoint's `from`) under the run's timeout and
/// cancellation, and finish the run.
async fn drive(spec: RunSpec, recorder: Recorder, from: Option<checkpoint::Body>) -> RunOutcome {
    let journal = checkpoint::Journal::new(spec.checkpoints.clone(), from.is_some());
    let timeout = spec.limits.run_timeout;
    let cancel = spec.cancel.clone();
    let span = tracing::info_span!(
        "run",
        run_id = %spec.run_id,
        agent = spec.agent.as_deref().unwrap_or("-"),
        model = %spec.model_name,
        trace_id = spec.trace_id.as_deref().unwrap_or("-"),
    );
    let body = async {
        if let Work::Call(direct) = &spec.work {
            return direct::run(&spec, &recorder, &journal, direct).await;
        }
        match (from, spec.mode) {
            (Some(checkpoint::Body::React(point)), _) => {
                react::run(&spec, &recorder, &journal, Some(point)).await
            }
            (Some(checkpoint::Body::Plan(point)), _) => {
                plan::run(&spec, &recorder, &journal, Some(point)).await
            }
            (None, AgentMode::React) => react::run(&spec, &recorder, &journal, None).await,
            (None, AgentMode::Plan) => plan::run(&spec, &recorder, &journal, None).await,
        }
    };
    let body = tracing::Instrument::instrument(body, span);
    tokio::pin!(body);
    // Time spent waiting for a person's approval is not the run's to spend: the deadline moves
    // by it, so a run waiting for a decision is never cut by its own timeout. A resumed run
    // counts the time it worked before.
    let result = loop {
        let left = timeout.saturating_sub(recorder.active());
        tokio::select! {
            result = &mut body => break result,
            () = tokio::time::sleep(left) => {
                if recorder.active() >= timeout {
                    break Err(Stop::Budget(format!("the run timeout of {} ms was reached", timeout.as_millis())));
                }
            }
            () = cancel.cancelled() => {
                recorder.abort_running(crate::domain::StepStatus::Cancelled, "the run was cancelled");
                return finish(&recorder, RunStatus::Cancelled, None, Some("the run was cancelled".to_owned()));
            }
        }
    };
    match result {
        Ok(Answer { text, gaps }) => match gaps.summary() {
            None => finish(&recorder, RunStatus::Succeeded, Some(text), None),
            Some(note) => finish(&recorder, RunStatus::Partial, Some(text), Some(note)),
        },
        Err(Stop::Budget(reason)) => {
            recorder.abort_running(crate::domain::StepStatus::Cancelled, &reason);
            finish(&recorder, RunStatus::BudgetExhausted, None, Some(reason))
        }
        Err(Stop::Failed(reason)) => {
            recorder.abort_running(crate::domain::StepStatus::Failed, &reason);
            finish(&recorder, RunStatus::Failed, None, Some(reason))
        }
    }
}

fn finish(
    recorder: &Recorder,
    status: RunStatus,
    answer: Option<String>,
    error: Option<String>,
) -> RunOutcome {
    let usage = recorder.usage();
    recorder.emit(RunEvent::RunFinished {
        run_id: recorder.run_id(),
        status,
        answer: answer.clone(),
        error: error.clone(),
        usage,
        at: now_millis(),
    });
    RunOutcome {
        status,
        answer,
        error,
        usage,
    }
}

#[cfg(test)]
mod tests;
