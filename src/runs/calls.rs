//! Tool calls a client chose itself (the `/mcp` gateway), each made as a run of its own: one
//! act step, traced in `/debug` with its caller, gated by the approval policy and decided
//! like a model's call (in the UI, or by the client's person through MCP elicitation), and
//! cancelled like any run.
//!
//! Such a run belongs to no conversation and takes no run slot (the hub's tool-call quota
//! counts it); it is never checkpointed (see `engine/direct.rs`).

use std::sync::{Arc, OnceLock};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{RunError, RunEvents, RunHow, RunService};
use crate::access::Caller;
use crate::domain::{RunId, ToolCall, TraceId};
use crate::engine::{DirectCall, ToolOutput, Work};

/// Events a call's broadcast keeps: a call has five besides its progress, and progress a slow
/// client misses is skipped, not waited for.
const CALL_EVENTS: usize = 64;

/// A call as a client asks for it.
#[derive(Debug, Clone)]
pub struct CallInput {
    /// The catalog name (`server__tool`).
    pub tool: String,
    pub arguments: Value,
    /// A person at the client decides approvals and answers the server's questions (the
    /// client supports elicitation): they wait for that person; else the `approval.unattended`
    /// policy and the servers' `elicitation` policies answer.
    pub attended: bool,
}

/// A call that has started: its run, its events, and (once the run ends) the tool's result.
pub struct StartedCall {
    pub run_id: RunId,
    pub trace_id: TraceId,
    pub events: RunEvents,
    /// The tool's result as it gave it, set when the call returned one.
    pub result: Arc<OnceLock<ToolOutput>>,
}

impl RunService {
    /// Make one tool call as its own run. The hub checks it as it checks every call (role,
    /// schema, approval, quota); the refusal becomes the run's error.
    ///
    /// # Errors
    /// The store cannot be written (nothing would be traced).
    pub fn call_tool(&self, caller: &Caller, input: CallInput) -> Result<StartedCall, RunError> {
        if let crate::store::StoreHealth::Unwritable { reason, .. } = self.inner.store.health() {
            return Err(RunError::StoreUnwritable { reason });
        }
        let run_id = RunId::new();
        let trace_id = TraceId::random();
        let cancel = CancellationToken::new();
        let (live, events) = self.register_with(run_id, caller, cancel.clone(), CALL_EVENTS);
        let result = Arc::new(OnceLock::new());
        let user_message = format!("tools/call {}", input.tool);
        let call = ToolCall {
            id: "call".to_owned(),
            name: input.tool,
            arguments: input.arguments.to_string(),
        };
        let how = RunHow {
            caller,
            run_id,
            conversation_id: None,
            agent: None,
            model_name: String::new(),
            work: Work::Call(DirectCall {
                call,
                result: result.clone(),
            }),
            attended: input.attended,
            temperature: None,
            trace_id: trace_id.clone(),
        };
        let mut spec = self.spec(how, &live, cancel);
        spec.user_message = user_message;
        spec.checkpoints = None;
        let task = self.spawn(spec, live, None, None);
        Ok(StartedCall {
            run_id,
            trace_id,
            events: RunEvents::started(run_id, events, task),
            result,
        })
    }
}
