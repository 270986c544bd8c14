//! What the engine needs from the tool side, as a small trait so it runs with real MCP servers or
//! test fakes alike, and how tool outcomes are turned into observations the model can read.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::domain::{ApprovalDecision, ApprovalRequest, StepIndex, ToolDefinition, ToolUpdate};

/// A tool call that returned (possibly with `is_error`, which the model should see).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    /// Text the model reads (text blocks joined; structured content as JSON; media described).
    pub text: String,
    /// The full result as JSON, for the trace.
    pub raw: Value,
    pub is_error: bool,
    /// The MCP server that ran it.
    pub server: String,
}

/// Why a tool call produced no result. Every variant becomes an observation, never a crash.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolFailure {
    UnknownTool {
        available: Vec<String>,
    },
    InvalidArguments {
        errors: Vec<String>,
    },
    /// The tool answered with a result that breaks its declared output schema (or lacks the
    /// `structuredContent` the schema promises); the result is not used.
    InvalidOutput {
        errors: Vec<String>,
    },
    Timeout {
        after: Duration,
    },
    /// Server down, exited mid-call, protocol error…: a message for the model.
    Unavailable {
        message: String,
    },
    /// The caller's role or limits refused the call; nothing was sent.
    Refused {
        message: String,
    },
    /// The arguments' JSON text is larger than `tools.max_argument_bytes`; nothing was sent.
    ArgumentsTooLarge {
        bytes: usize,
        limit: usize,
    },
    /// Not run because the turn asked for more calls than the tool-call budget had left.
    Dropped {
        message: String,
    },
    /// Not run because it repeats call `of` of the same turn exactly (same id, tool and
    /// arguments): a duplicated emission, so its side effects must not happen twice.
    Duplicate {
        of: String,
    },
    /// Sent before the run's process stopped, and not sent again after the run was resumed
    /// (its tool is not read-only): whether it took effect is unknown.
    OutcomeUnknown,
}

/// What the approval policy says of a call before it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Allow,
    /// A person must approve first.
    Ask {
        reason: String,
    },
    Deny {
        reason: String,
    },
}

/// How one call is made.
pub struct CallContext {
    /// The call's hard deadline.
    pub timeout: Duration,
    /// What the call reports while it runs (progress, questions for the person, sampling).
    pub updates: mpsc::Sender<ToolUpdate>,
    /// Names the act step's span, so the server's own spans nest under the step that called it.
    pub traceparent: Option<String>,
    /// A person approved exactly these arguments (the policy asked for it).
    pub approved: bool,
}

/// A gated call, as the engine asks a person to decide it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalAsk {
    pub step: StepIndex,
    pub tool: String,
    pub server: String,
    pub arguments: Value,
    pub reason: String,
    /// The approval a resumed run waited on before its restart: it waits on that one again.
    pub existing: Option<ApprovalRequest>,
}

/// Who decides gated calls: the run service, with the run's person (or its `unattended` rule).
pub trait Approver: Send + Sync {
    /// Open an approval for `ask`: the request as the faces show it, and the decision to come
    /// (an edited approval's arguments are already checked against the tool's schema).
    fn open(&self, ask: ApprovalAsk) -> (ApprovalRequest, BoxFuture<'static, ApprovalDecision>);
}

/// The tools one run may use.
pub trait ToolInvoker: Send + Sync {
    /// Definitions to offer the model (already filtered to what this run may use).
    fn definitions(&self) -> Vec<ToolDefinition>;

    /// The MCP server behind `name`, if it is offered.
    fn server_of(&self, name: &str) -> Option<String>;

    /// Check arguments without calling (plan validation).
    ///
    /// # Errors
    /// Unknown tool, or the schema violations with their JSON paths.
    fn validate(&self, name: &str, arguments: &Value) -> Result<(), ToolFailure>;

    /// What the approval policy says of calling `name` (before its arguments are known to be
    /// valid: a denied tool is refused without looking further).
    fn gate(&self, _name: &str) -> Gate {
        Gate::Allow
    }

    /// Whether a call of `name` that was in flight when the run's process stopped may be sent
    /// again after the run is resumed: only when the tool is believed read-only.
    fn rerun_safe(&self, _name: &str) -> bool {
        false
    }

    /// Call `name`. Invalid calls must be refused before reaching the server.
    fn invoke(
        &self,
        name: &str,
        arguments: Value,
        context: CallContext,
    ) -> BoxFuture<'static, Result<ToolOutput, ToolFailure>>;
}

/// Largest tool result fed back to the model; longer ones keep head and tail with a marker.
pub const MAX_OBSERVATION_CHARS: usize = 8_000;

/// The tool message the model sees for one call.
pub fn observation(name: &str, outcome: &Result<ToolOutput, ToolFailure>) -> (String, bool) {
    match outcome {
        Ok(output) if output.is_error => (cap(&format!("Tool error: {}", output.text)), true),
        Ok(output) => (cap(&output.text), false),
        Err(failure) => (describe_failure(name, failure), true),
    }
}

/// A failure in words the model can correct itself from.
pub fn describe_failure(name: &str, failure: &ToolFailure) -> String {
    match failure {
        ToolFailure::UnknownTool { available } => {
            let mut shown: Vec<&str> = available.iter().map(String::as_str).take(40).collect();
            shown.sort_unstable();
            format!(
                "Error: there is no tool named `{name}`. Available tools: {}.",
                shown.join(", ")
            )
        }
        ToolFailure::InvalidArguments { errors } => format!(
            "Error: the arguments for `{name}` do not match its schema: {}. Fix the arguments and call it again.",
            errors.join("; ")
        ),
        ToolFailure::InvalidOutput { errors } => format!(
            "Error: `{name}` answered, but its result does not match the output schema it \
             declares, so the result was not used: {}.",
            errors.join("; ")
        ),
        ToolFailure::Timeout { after } => format!(
            "Error: `{name}` did not finish within {} ms and was cancelled.",
            after.as_millis()
        ),
        ToolFailure::Unavailable { message } => format!("Error: `{name}` could not run: {message}"),
        ToolFailure::Refused { message } => format!(
            "Error: the call to `{name}` was refused and not made: {message}. Do not retry it now; answer with what you have."
        ),
        ToolFailure::ArgumentsTooLarge { bytes, limit } => format!(
            "Error: the arguments for `{name}` are {bytes} bytes, over the cap of {limit} bytes \
             (tools.max_argument_bytes); the call was not made and its arguments are left out of \
             this conversation. Send smaller arguments, for example by splitting the work into \
             several calls."
        ),
        ToolFailure::Dropped { message } => {
            format!("Error: `{name}` was not called: {message}.")
        }
        ToolFailure::OutcomeUnknown => format!(
            "Error: `{name}` was running when the server stopped, and it was not run again \
             (it is not read-only), so whether it took effect is unknown. Check its effect \
             before calling it again."
        ),
        ToolFailure::Duplicate { of } => format!(
            "Error: not run: this call repeats call `{of}` of the same turn exactly (same id, \
             tool and arguments), which ran once; its result is that call's."
        ),
    }
}

/// A tool result in a line for readers of its step: its text blocks (other kinds as `[kind]`),
/// else its structured content; `None` when it has no `content` list.
pub fn result_preview(raw: &Value) -> Option<String> {
    let blocks = raw.get("content")?.as_array()?;
    let parts: Vec<String> = blocks
        .iter()
        .map(|block| match block["text"].as_str() {
            Some(text) => text.to_owned(),
            None => format!("[{}]", block["type"].as_str().unwrap_or("content")),
        })
        .collect();
    if parts.is_empty() {
        return raw.get("structuredContent").map(Value::to_string);
    }
    Some(parts.join("\n"))
}

/// Keep the head and tail of a long text with a marker saying how much was left out.
pub fn cap(text: &str) -> String {
    let chars = text.chars().count();
    if chars <= MAX_OBSERVATION_CHARS {
        return text.to_owned();
    }
    let keep = MAX_OBSERVATION_CHARS / 2;
    let head: String = text.chars().take(keep).collect();
    let tail: String = text.chars().skip(chars - keep).collect();
    format!(
        "{head}\n[… {} characters omitted …]\n{tail}",
        chars - 2 * keep
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_results_keep_head_and_tail() {
        let text = format!("HEAD{}TAIL", "x".repeat(20_000));
        let capped = cap(&text);
        assert!(capped.starts_with("HEAD") && capped.ends_with("TAIL"));
        assert!(capped.contains("characters omitted"));
        assert!(capped.chars().count() < MAX_OBSERVATION_CHARS + 100);
    }

    #[test]
    fn failures_name_what_is_available() {
        let text = describe_failure(
            "nope",
            &ToolFailure::UnknownTool {
                available: vec!["calc__evaluate".into()],
            },
        );
        assert!(text.contains("calc__evaluate"));
    }
}
