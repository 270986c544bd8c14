//! Shared vocabulary of runs: ids, statuses, step kinds and the [`RunEvent`] every state change
//! is reported as. A leaf module: the engine produces these, the store, the live streams and
//! telemetry consume them, and none of them has to import another to name a type.

mod asks;
mod chat;
mod pins;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use asks::{ApprovalDecision, ApprovalRequest, InputAction, InputRequest, ToolUpdate};
pub use chat::{ChatMessage, Role, ToolCall, ToolDefinition, ToolProgress};
pub use pins::{Pin, Pinned};

/// A run (one chat turn executed as a DAG of steps). UUID v7: sortable by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub uuid::Uuid);

impl RunId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for RunId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// A conversation (a sequence of user messages and answers, each answer produced by a run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(pub uuid::Uuid);

impl ConversationId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl Default for ConversationId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for ConversationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for ConversationId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// A run's W3C trace id: 32 lowercase hex digits, shown by the API, sent in `traceparent`, and
/// the id its OpenTelemetry spans are exported under. A newtype so a trace id is never confused
/// with another string (a run id, a span id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceId(String);

impl TraceId {
    /// A fresh random trace id (never all zeros, which W3C reserves as invalid).
    pub fn random() -> Self {
        loop {
            let id = u128::from(fastrand::u64(..)) << 64 | u128::from(fastrand::u64(..));
            if id != 0 {
                return Self(format!("{id:032x}"));
            }
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for TraceId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for TraceId {
    /// A trace id read back (store, tests); readers that need a valid one check it
    /// (telemetry falls back to an id derived from the run id).
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for TraceId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

/// A step's position in its run (0, 1, 2… in the order steps were created); with the run id it
/// identifies the step.
pub type StepIndex = u32;

/// Milliseconds since the Unix epoch; portable across SQLite and Postgres and JSON.
pub type UnixMillis = i64;

/// Now, in [`UnixMillis`].
pub fn now_millis() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The span id of step `step` in its run's trace: `step + 1`, so never zero (an invalid span id).
/// The engine names it as the parent in the `traceparent` the step sends (its model request or
/// MCP call), and telemetry exports the step's span under it, so the two always agree.
pub fn step_span_id(step: StepIndex) -> u64 {
    u64::from(step) + 1
}

/// A W3C `traceparent` (version 00, sampled) naming span `span_id` of trace `trace_id` (32 hex
/// digits) as the parent.
pub fn traceparent(trace_id: &str, span_id: u64) -> String {
    format!("00-{trace_id}-{span_id:016x}-01")
}

/// Terminal or running state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// Running, with a tool call waiting for a person's approval.
    Waiting,
    /// Answered, and every tool call the answer rests on succeeded.
    Succeeded,
    /// Answered, but some tool calls failed, were skipped or were not run, and no later call of
    /// the same tool made them good: the answer may be missing what they would have given. Kept
    /// apart from `succeeded` so a user, a dashboard or an API client is not told everything
    /// worked when part of the work did not happen (the run's `error` says which tools).
    Partial,
    Failed,
    Cancelled,
    /// The process stopped while the run was running (found at start-up).
    Interrupted,
    /// A budget (steps, tool calls, time, repetition) ended the run.
    BudgetExhausted,
}

impl RunStatus {
    /// Every status, in the order lists and filters offer them (the API's error for an unknown
    /// status filter names them from here, so a new status cannot be forgotten there).
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Running,
        RunStatus::Waiting,
        RunStatus::Succeeded,
        RunStatus::Partial,
        RunStatus::Failed,
        RunStatus::Cancelled,
        RunStatus::Interrupted,
        RunStatus::BudgetExhausted,
    ];

    /// The wire/storage name (`running`, `budget_exhausted`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
            RunStatus::BudgetExhausted => "budget_exhausted",
        }
    }

    /// Parse a storage name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether the run ended with an answer for the user (`succeeded` or `partial`): what the
    /// faces check before showing an answer as the run's result.
    pub fn is_answered(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Partial)
    }

    /// Whether the run has not ended (`running`, or `waiting` for an approval).
    pub fn is_live(self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::Waiting)
    }
}

/// What a step does (design.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A model call that plans (asks for tools or writes a plan).
    Plan,
    /// One tool call.
    Act,
    /// Joins acts and folds their results back into the conversation.
    Observe,
    /// The model call that produced the final answer.
    Answer,
    /// A model call an MCP server asked for during an act (sampling), under that act.
    Sample,
}

impl StepKind {
    /// The wire/storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Plan => "plan",
            StepKind::Act => "act",
            StepKind::Observe => "observe",
            StepKind::Answer => "answer",
            StepKind::Sample => "sample",
        }
    }

    /// Parse a storage name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            StepKind::Plan,
            StepKind::Act,
            StepKind::Observe,
            StepKind::Answer,
            StepKind::Sample,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == s)
    }
}

/// State of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Running,
    Succeeded,
    Failed,
    /// Not run because a step it depends on failed.
    Skipped,
    Cancelled,
    /// Still running when the process stopped.
    Interrupted,
    /// An act whose call waits for a person's approval.
    WaitingApproval,
}

impl StepStatus {
    /// The wire/storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Running => "running",
            StepStatus::WaitingApproval => "waiting_approval",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Interrupted => "interrupted",
        }
    }

    /// Parse a storage name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            StepStatus::Running,
            StepStatus::Succeeded,
            StepStatus::Failed,
            StepStatus::Skipped,
            StepStatus::Cancelled,
            StepStatus::Interrupted,
            StepStatus::WaitingApproval,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// Tokens used by one model call or summed over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl std::ops::AddAssign for TokenUsage {
    fn add_assign(&mut self, other: Self) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }
}

/// What a step asked or produced, typed, so readers that show steps as they happen (chat
/// previews, the OpenAI-compatible stream) need not probe the step's JSON input and output.
/// The engine fills it from the values it already has; the store keeps the JSON only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepSummary {
    /// A model call's request (on `StepStarted` of plan and answer steps).
    ModelRequest { messages: usize, tools: usize },
    /// A model turn's text and the tools it asked for, in order.
    ModelTurn {
        text: String,
        tool_calls: Vec<String>,
    },
    /// A tool result in a line (text blocks, other kinds as `[kind]`), when it has content.
    ToolResult { text: Option<String> },
    /// An observation joining tool results: how many, and how many were errors.
    Observation { results: usize, errors: usize },
}

/// How a run ended: what its `RunFinished` event says, and what its task returns.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub answer: Option<String>,
    pub error: Option<String>,
    pub usage: TokenUsage,
}

/// Every state change of a run, in order. The store, SSE streams and telemetry consume the same
/// events, so what `/debug` shows is exactly what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    RunStarted {
        run_id: RunId,
        /// `None` for a run outside any conversation (a tool call made through `/mcp`).
        conversation_id: Option<ConversationId>,
        agent: Option<String>,
        model: String,
        user_message: String,
        /// W3C trace id of the run's span, for linking to a tracing backend.
        trace_id: Option<TraceId>,
        /// The user who started the run (its owner); `None` for runs from before users existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        at: UnixMillis,
    },
    /// The run goes on in this process from its stored checkpoint (after a restart, or its
    /// process died): steps from `from_step` on that the store holds are dropped (they ran past
    /// the checkpoint and are redone or replaced), and the events that follow continue the run.
    RunResumed {
        run_id: RunId,
        from_step: StepIndex,
        at: UnixMillis,
    },
    StepStarted {
        run_id: RunId,
        step: StepIndex,
        kind: StepKind,
        /// Tool name for acts (`server__tool`), model name for plan/answer, `observe` for observes.
        name: String,
        /// MCP server of an act.
        server: Option<String>,
        input: Value,
        /// What the step asks, typed (model steps).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<StepSummary>,
        /// Steps this one depends on (the DAG's incoming edges).
        depends_on: Vec<StepIndex>,
        attempt: u32,
        at: UnixMillis,
    },
    /// A piece of model output while a plan/answer step runs.
    TokenDelta {
        run_id: RunId,
        step: StepIndex,
        text: String,
    },
    /// A progress notification from the MCP server while an act runs.
    ToolProgress {
        run_id: RunId,
        step: StepIndex,
        #[serde(flatten)]
        progress: ToolProgress,
    },
    /// An act's server asks the person for input (MCP elicitation); the run waits for the
    /// answer (`POST /api/runs/{id}/inputs/{input}`) while the call runs.
    InputRequested {
        run_id: RunId,
        step: StepIndex,
        #[serde(flatten)]
        request: InputRequest,
    },
    /// Act `step`'s call needs a person's approval before it runs; the run is `waiting` until
    /// every such call is decided.
    ApprovalRequested {
        run_id: RunId,
        step: StepIndex,
        #[serde(flatten)]
        request: ApprovalRequest,
        at: UnixMillis,
    },
    /// The approval of act `step` was decided (or expired); the call runs or is refused.
    ApprovalDecided {
        run_id: RunId,
        step: StepIndex,
        id: String,
        #[serde(flatten)]
        decision: ApprovalDecision,
        at: UnixMillis,
    },
    /// The input request `id` of step `step` was answered, or dropped (`cancel`).
    InputAnswered {
        run_id: RunId,
        step: StepIndex,
        id: String,
        action: InputAction,
    },
    StepFinished {
        run_id: RunId,
        step: StepIndex,
        status: StepStatus,
        /// Capped output (tool result or model response).
        output: Option<Value>,
        /// What the step produced, typed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<StepSummary>,
        error: Option<String>,
        usage: Option<TokenUsage>,
        at: UnixMillis,
    },
    RunFinished {
        run_id: RunId,
        status: RunStatus,
        answer: Option<String>,
        error: Option<String>,
        usage: TokenUsage,
        at: UnixMillis,
    },
}

impl RunEvent {
    /// The run this event belongs to.
    pub fn run_id(&self) -> RunId {
        match self {
            RunEvent::RunStarted { run_id, .. }
            | RunEvent::RunResumed { run_id, .. }
            | RunEvent::StepStarted { run_id, .. }
            | RunEvent::TokenDelta { run_id, .. }
            | RunEvent::ToolProgress { run_id, .. }
            | RunEvent::InputRequested { run_id, .. }
            | RunEvent::InputAnswered { run_id, .. }
            | RunEvent::ApprovalRequested { run_id, .. }
            | RunEvent::ApprovalDecided { run_id, .. }
            | RunEvent::StepFinished { run_id, .. }
            | RunEvent::RunFinished { run_id, .. } => *run_id,
        }
    }

    /// The event's type name (`run_started`, `step_finished`, …), as its serde tag says: the
    /// SSE event name on the wire and the name logs use.
    pub fn type_name(&self) -> &'static str {
        match self {
            RunEvent::RunStarted { .. } => "run_started",
            RunEvent::RunResumed { .. } => "run_resumed",
            RunEvent::StepStarted { .. } => "step_started",
            RunEvent::TokenDelta { .. } => "token_delta",
            RunEvent::ToolProgress { .. } => "tool_progress",
            RunEvent::InputRequested { .. } => "input_requested",
            RunEvent::InputAnswered { .. } => "input_answered",
            RunEvent::ApprovalRequested { .. } => "approval_requested",
            RunEvent::ApprovalDecided { .. } => "approval_decided",
            RunEvent::StepFinished { .. } => "step_finished",
            RunEvent::RunFinished { .. } => "run_finished",
        }
    }

    /// Whether the store must persist it (token deltas, progress ticks and input requests are
    /// live-only: an act step's output records the questions asked and how they were answered).
    pub fn is_durable(&self) -> bool {
        !matches!(
            self,
            RunEvent::TokenDelta { .. }
                | RunEvent::ToolProgress { .. }
                | RunEvent::InputRequested { .. }
                | RunEvent::InputAnswered { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_status_round_trips_and_only_answers_are_answered() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_value(status).expect("statuses serialize");
            assert_eq!(json, status.as_str(), "the wire name is the storage name");
        }
        assert_eq!(RunStatus::parse("partial"), Some(RunStatus::Partial));
        let answered: Vec<RunStatus> = RunStatus::ALL
            .into_iter()
            .filter(|s| s.is_answered())
            .collect();
        assert_eq!(answered, [RunStatus::Succeeded, RunStatus::Partial]);
    }

    #[test]
    fn an_events_type_name_is_its_serde_tag() {
        let run_id = RunId::new();
        let events = [
            RunEvent::TokenDelta {
                run_id,
                step: 0,
                text: "x".into(),
            },
            RunEvent::ToolProgress {
                run_id,
                step: 1,
                progress: ToolProgress {
                    progress: 0.5,
                    total: None,
                    message: None,
                },
            },
            RunEvent::RunFinished {
                run_id,
                status: RunStatus::Succeeded,
                answer: None,
                error: None,
                usage: TokenUsage::default(),
                at: 0,
            },
        ];
        for event in events {
            let json = serde_json::to_value(&event).expect("events serialize");
            assert_eq!(json["type"], event.type_name(), "{json}");
        }
    }
}
