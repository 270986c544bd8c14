//! Agents as tools: each agent a caller may run is listed as `agent__NAME`, whose call runs a
//! whole run of that agent and returns its answer with the run's id and a link to its trace.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, Tool};
use serde_json::{Map, Value, json};

use crate::config::model::AgentConfig;
use crate::domain::RunStatus;

/// The prefix that makes an agent's name a tool name.
pub const PREFIX: &str = "agent__";

/// The tool an agent is listed as.
pub(super) fn tool_of(agent: &AgentConfig) -> Tool {
    let description = if agent.description.is_empty() {
        format!(
            "Run the Switchboard agent `{}` on a message and return its answer.",
            agent.name
        )
    } else {
        format!(
            "{} (a Switchboard agent: runs a whole run and returns its answer)",
            agent.description
        )
    };
    let input = json!({
        "type": "object",
        "properties": {
            "message": {"type": "string", "minLength": 1, "description": "What to ask the agent."},
            "conversation_id": {"type": "string", "description": "Continue this conversation (from an earlier answer)."}
        },
        "required": ["message"],
        "additionalProperties": false
    });
    let output = json!({
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "status": {"type": "string"},
            "run_id": {"type": "string"},
            "conversation_id": {"type": "string"},
            "trace": {"type": "string", "description": "Where the run's trace is shown."}
        },
        "required": ["answer", "status", "run_id", "conversation_id", "trace"]
    });
    let mut tool = Tool::new(
        format!("{PREFIX}{}", agent.name),
        description,
        Arc::new(object(input)),
    );
    tool.output_schema = Some(Arc::new(object(output)));
    tool
}

/// An agent tool's arguments, checked.
pub(super) struct AgentCall {
    pub message: String,
    pub conversation_id: Option<String>,
}

/// Read an agent tool's arguments.
///
/// # Errors
/// What is wrong with them, naming the argument.
pub(super) fn parse(arguments: &Map<String, Value>) -> Result<AgentCall, String> {
    if let Some(unknown) = arguments
        .keys()
        .find(|k| !matches!(k.as_str(), "message" | "conversation_id"))
    {
        return Err(format!(
            "`{unknown}` is not an argument of an agent (message, conversation_id)"
        ));
    }
    let message = match arguments.get("message") {
        Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
        Some(Value::String(_)) => return Err("`message` is empty".to_owned()),
        Some(_) => return Err("`message` must be a string".to_owned()),
        None => return Err("`message` is required".to_owned()),
    };
    let conversation_id = match arguments.get("conversation_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return Err("`conversation_id` must be a string".to_owned()),
    };
    Ok(AgentCall {
        message,
        conversation_id,
    })
}

/// The result of an agent's run: its answer (or why it has none) as text, and the run's ids
/// and trace link as structured content.
pub(super) fn result(
    status: RunStatus,
    answer: Option<String>,
    error: Option<String>,
    run_id: &str,
    conversation_id: &str,
    trace: &str,
) -> CallToolResult {
    let failed = !matches!(status, RunStatus::Succeeded | RunStatus::Partial);
    let text = match (&answer, &error) {
        (Some(answer), None) => answer.clone(),
        (Some(answer), Some(note)) => format!("{answer}\n\n({note})"),
        (None, Some(error)) => format!("The run ended {}: {error}", status.as_str()),
        (None, None) => format!("The run ended {} without an answer", status.as_str()),
    };
    let structured = json!({
        "answer": answer.unwrap_or_default(),
        "status": status.as_str(),
        "run_id": run_id,
        "conversation_id": conversation_id,
        "trace": trace,
    });
    let mut result = if failed {
        CallToolResult::error(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::success(vec![ContentBlock::text(text)])
    };
    result.structured_content = Some(structured);
    result
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked_by_name() {
        let ok = parse(
            json!({"message": "hi", "conversation_id": "c"})
                .as_object()
                .unwrap(),
        )
        .expect("valid");
        assert_eq!(
            (ok.message.as_str(), ok.conversation_id.as_deref()),
            ("hi", Some("c"))
        );
        for (bad, says) in [
            (json!({}), "`message` is required"),
            (json!({"message": "  "}), "`message` is empty"),
            (json!({"message": 3}), "`message` must be a string"),
            (
                json!({"message": "x", "conversation_id": 1}),
                "`conversation_id` must be a string",
            ),
            (
                json!({"message": "x", "other": 1}),
                "`other` is not an argument",
            ),
        ] {
            let err = parse(bad.as_object().unwrap()).err().expect("refused");
            assert!(err.starts_with(says), "{err}");
        }
    }
}
