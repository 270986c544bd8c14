//! The messages of a completion request: the last user message is the run's message and the
//! messages before it its history; each unusable message is refused naming its field.

use serde_json::Value;

use super::OpenAiError;
use crate::domain::{ChatMessage, Role, ToolCall};
use crate::runs::role_of;

/// The run's message (the last user message) and its history (everything before it).
pub(super) fn split_messages(
    messages: &[Value],
) -> Result<(Vec<ChatMessage>, String), OpenAiError> {
    let mut parsed = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        parsed.push(parse_message(message, i)?);
    }
    let Some(last_user) = parsed.iter().rposition(|m| m.role == Role::User) else {
        return Err(OpenAiError::invalid(
            "messages must contain a user message",
            Some("messages"),
        ));
    };
    if last_user + 1 != parsed.len() {
        return Err(OpenAiError::invalid(
            format!(
                "messages[{}] follows the last user message; Switchboard runs the tools itself, \
                 so a conversation must end with the user's message",
                last_user + 1
            ),
            Some("messages"),
        ));
    }
    let message = parsed.pop().map(|m| m.content).unwrap_or_default();
    Ok((parsed, message))
}

fn parse_message(message: &Value, i: usize) -> Result<ChatMessage, OpenAiError> {
    let param = format!("messages[{i}]");
    let role_name = message["role"]
        .as_str()
        .ok_or_else(|| OpenAiError::invalid(format!("{param}.role is missing"), Some(&param)))?;
    let role = role_of(role_name).ok_or_else(|| {
        OpenAiError::invalid(
            format!(
                "{param}.role `{role_name}` is not one of system, developer, user, assistant, tool"
            ),
            Some(&param),
        )
    })?;
    let content = text_of(&message["content"], &param)?;
    Ok(match role {
        Role::System => ChatMessage::system(content),
        Role::User => ChatMessage::user(content),
        Role::Assistant => ChatMessage::assistant(content, tool_calls_of(message, &param)?),
        Role::Tool => {
            let id = message["tool_call_id"].as_str().ok_or_else(|| {
                OpenAiError::invalid(format!("{param}.tool_call_id is missing"), Some(&param))
            })?;
            ChatMessage::tool_result(id, content, false)
        }
    })
}

/// Text of a message's content: a string, null, or text parts (joined by newlines).
fn text_of(content: &Value, param: &str) -> Result<String, OpenAiError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(text) => Ok(text.clone()),
        Value::Array(parts) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                match (part["type"].as_str(), part["text"].as_str()) {
                    (Some("text"), Some(text)) => texts.push(text),
                    (kind, _) => {
                        return Err(OpenAiError::invalid(
                            format!(
                                "{param}.content[{j}] is a `{}` part; only text parts are supported",
                                kind.unwrap_or("untyped")
                            ),
                            Some(&format!("{param}.content")),
                        ));
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        _ => Err(OpenAiError::invalid(
            format!("{param}.content must be a string or an array of text parts"),
            Some(&format!("{param}.content")),
        )),
    }
}

/// An assistant message's earlier tool calls, kept so the history stays consistent.
fn tool_calls_of(message: &Value, param: &str) -> Result<Vec<ToolCall>, OpenAiError> {
    let Some(calls) = message.get("tool_calls").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    calls
        .iter()
        .enumerate()
        .map(|(j, call)| {
            let function = &call["function"];
            match (call["id"].as_str(), function["name"].as_str()) {
                (Some(id), Some(name)) => Ok(ToolCall {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    arguments: function["arguments"].as_str().unwrap_or("{}").to_owned(),
                }),
                _ => Err(OpenAiError::invalid(
                    format!("{param}.tool_calls[{j}] needs an id and a function name"),
                    Some(&format!("{param}.tool_calls")),
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use super::*;

    #[test]
    fn the_last_user_message_is_the_run_and_the_rest_history() {
        let messages = vec![
            json!({"role": "system", "content": "Be brief."}),
            json!({"role": "user", "content": "Hi"}),
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
            ]}),
            json!({"role": "tool", "tool_call_id": "c1", "content": "ok"}),
            json!({"role": "assistant", "content": "Hello"}),
            json!({"role": "user", "content": [
                {"type": "text", "text": "What is"}, {"type": "text", "text": "6*7?"}
            ]}),
        ];
        let (history, message) = split_messages(&messages).unwrap();
        assert_eq!(message, "What is\n6*7?");
        assert_eq!(history.len(), 5);
        assert_eq!(history[0].role, Role::System);
        assert_eq!(history[2].tool_calls[0].name, "t");
        assert_eq!(history[3].tool_call_id.as_deref(), Some("c1"));
    }

    #[test]
    fn unusable_messages_name_the_offending_field() {
        let cases = [
            (vec![json!({"role": "system", "content": "x"})], "messages"),
            (
                vec![
                    json!({"role": "user", "content": "x"}),
                    json!({"role": "assistant", "content": "y"}),
                ],
                "messages",
            ),
            (
                vec![json!({"role": "user", "content": [{"type": "image_url", "image_url": {}}]})],
                "messages[0].content",
            ),
            (
                vec![json!({"role": "robot", "content": "x"})],
                "messages[0]",
            ),
            (
                vec![
                    json!({"role": "tool", "content": "x"}),
                    json!({"role": "user", "content": "x"}),
                ],
                "messages[0]",
            ),
        ];
        for (messages, param) in cases {
            let err = split_messages(&messages).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert_eq!(err.param.as_deref(), Some(param), "{}", err.message);
        }
    }
}
