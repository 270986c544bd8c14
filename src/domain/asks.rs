//! What a running tool call reports besides its result (progress, a question its server puts to
//! the person, a model completion its server asked for), and what a call waiting for a person's
//! approval asks and is told. The MCP client and the run service produce these, the engine turns
//! them into run events and steps, and the faces show them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{TokenUsage, ToolProgress};

/// How a person answered an input request (MCP elicitation's actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputAction {
    /// Submitted the form.
    Accept,
    /// Said no.
    Decline,
    /// Dismissed it without choosing (or nobody answered before the call ended).
    Cancel,
}

impl InputAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            InputAction::Accept => "accept",
            InputAction::Decline => "decline",
            InputAction::Cancel => "cancel",
        }
    }
}

/// A server's request for input from the person running the chat, while one of its calls runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputRequest {
    /// Names the request in `POST /api/runs/{run}/inputs/{id}`; unique within the run.
    pub id: String,
    /// The MCP server asking.
    pub server: String,
    /// What the server says it wants, shown above the form (the server's text: untrusted).
    pub message: String,
    /// The form's JSON Schema: an object of primitive fields.
    pub schema: Value,
}

/// One update of a tool call in flight.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolUpdate {
    Progress(ToolProgress),
    /// The server asks the person; the answer comes back through the run service.
    InputRequested(InputRequest),
    /// The request `id` was answered (or dropped, as `cancel`).
    InputAnswered {
        id: String,
        action: InputAction,
    },
    /// The server asked for a model completion (MCP sampling), now being served: a step of its
    /// own, under the act step. `id` pairs it with its [`ToolUpdate::SampleFinished`].
    SampleStarted {
        id: u64,
        model: String,
        input: Value,
    },
    SampleFinished {
        id: u64,
        output: Option<Value>,
        error: Option<String>,
        usage: Option<TokenUsage>,
    },
}

/// A tool call that waits for a person's approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Names the approval in `POST /api/runs/{run}/approvals/{id}`; unique within the run.
    pub id: String,
    /// The exposed tool name.
    pub tool: String,
    pub server: String,
    /// The arguments the model sent, exactly: an approval is for these.
    pub arguments: Value,
    /// SHA-256 of the arguments' JSON text, which binds the decision to them.
    pub arguments_hash: String,
    /// Why the call was gated, in words (the approval rule, or the tool's risk).
    pub reason: String,
    /// When the approval expires and the call is denied.
    pub expires_at: super::UnixMillis,
}

/// How an approval was decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// The call runs with `arguments` (the model's, or as the person edited them).
    Approved {
        by: String,
        arguments: Value,
        edited: bool,
    },
    /// The call is refused; the model hears `reason` when one was given.
    Denied { by: String, reason: Option<String> },
    /// Nobody decided in time; the call is refused.
    Expired,
    /// Nobody can decide here (`approval.unattended: deny`): the call is refused.
    Unattended,
}
