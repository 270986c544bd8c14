//! Anthropic Messages on the wire: `message` objects, the named event stream (`message_start`,
//! `content_block_start`/`_delta`/`_stop`, `ping`, `message_delta`, `message_stop`, `error`),
//! `{"type": "error", "error": {..}}` bodies, and the model list.
//!
//! Shapes follow the streaming reference and captured real traffic: `message_start` carries the
//! message with empty `content` and the input tokens, a `ping` follows the first block start,
//! a `tool_use` block starts with `"input": {}` and its first `input_json_delta` is empty, and
//! `message_delta` carries `stop_reason` with cumulative usage (current API versions repeat
//! `input_tokens` there, so a client must not add it twice). The SSE `event:` name always equals
//! the JSON `type`.

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::demo::Turn;
use super::{Answer, ChatRequest, SseEvent, split_chars};

/// Characters per streamed text delta.
const TEXT_PIECE: usize = 5;
/// Characters per streamed `partial_json` fragment.
const ARGUMENT_PIECE: usize = 6;

/// The checks the real API makes first, minimally (it also insists on `anthropic-version`);
/// `Err` holds the 400 body.
pub(super) fn validate(headers: &HeaderMap, body: &Value) -> Result<(), Value> {
    let invalid = |message: &str| Err(error_body(400, Some(message)));
    if !headers.contains_key("anthropic-version") {
        return invalid("anthropic-version: header is required");
    }
    if !body.is_object() {
        return invalid("The request body is not valid JSON.");
    }
    for field in ["model", "messages", "max_tokens"] {
        if body.get(field).is_none_or(Value::is_null) {
            return invalid(&format!("{field}: Field required"));
        }
    }
    let Some(messages) = body["messages"].as_array() else {
        return invalid("messages: Input should be a valid list");
    };
    // As the real API: tool blocks in the history need tool definitions in the request.
    let tool_blocks = messages.iter().any(|message| {
        message["content"].as_array().is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| matches!(b["type"].as_str(), Some("tool_use" | "tool_result")))
        })
    });
    let defines_tools = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    if tool_blocks && !defines_tools {
        return invalid(
            "Requests which include `tool_use` or `tool_result` blocks must define tools.",
        );
    }
    Ok(())
}

/// `GET /v1/models`.
pub(super) fn models() -> Value {
    json!({
        "data": [{
            "type": "model",
            "id": "fake-model",
            "display_name": "Fake Model (fake-llm)",
            "created_at": "2024-01-01T00:00:00Z",
        }],
        "has_more": false,
        "first_id": "fake-model",
        "last_id": "fake-model",
    })
}

/// `{"type": "error", "error": {"type", "message"}, "request_id"}` as the API sends it.
pub(super) fn error_body(status: u16, message: Option<&str>) -> Value {
    let (kind, stock) = match status {
        400 => ("invalid_request_error", "Invalid request."),
        401 => ("authentication_error", "invalid x-api-key"),
        402 => ("billing_error", "Your credit balance is too low."),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found.",
        ),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed size.",
        ),
        429 => (
            "rate_limit_error",
            "Number of requests has exceeded your per-minute rate limit.",
        ),
        504 => ("timeout_error", "Request timed out."),
        529 => ("overloaded_error", "Overloaded"),
        s if s >= 500 => ("api_error", "Internal server error"),
        _ => ("invalid_request_error", "Invalid request."),
    };
    json!({
        "type": "error",
        "error": { "type": kind, "message": message.unwrap_or(stock) },
        "request_id": "req_fake_llm",
    })
}

/// A whole `message`.
pub(super) fn message(request: &ChatRequest, answer: &Answer) -> Value {
    let mut content = Vec::new();
    if let Some(text) = &answer.text {
        content.push(json!({ "type": "text", "text": text }));
    }
    for call in &answer.calls {
        content.push(json!({
            "type": "tool_use",
            "id": call.id,
            "name": call.name,
            "input": call.arguments,
        }));
    }
    json!({
        "id": message_id(request),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": stop_reason(answer),
        "stop_sequence": null,
        "usage": {
            "input_tokens": answer.usage.input_tokens,
            "output_tokens": answer.usage.output_tokens,
        },
    })
}

/// The events of a streamed answer, `message_stop` included.
pub(super) fn stream(request: &ChatRequest, answer: &Answer) -> Vec<SseEvent> {
    let event = |name: &'static str, data: Value, delta: bool| SseEvent {
        event: Some(name),
        data: data.to_string(),
        delta,
    };
    let mut events = vec![event(
        "message_start",
        json!({
            "type": "message_start",
            "message": {
                "id": message_id(request),
                "type": "message",
                "role": "assistant",
                "model": request.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": { "input_tokens": answer.usage.input_tokens, "output_tokens": 1 },
            },
        }),
        false,
    )];

    // Each block: its start, its deltas.
    let mut blocks: Vec<(Value, Vec<Value>)> = Vec::new();
    if let Some(text) = &answer.text {
        let deltas = split_chars(text, TEXT_PIECE)
            .into_iter()
            .map(|piece| json!({ "type": "text_delta", "text": piece }))
            .collect();
        blocks.push((json!({ "type": "text", "text": "" }), deltas));
    }
    for call in &answer.calls {
        let start = json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": {} });
        let mut fragments = vec![String::new()];
        fragments.extend(split_chars(&call.arguments.to_string(), ARGUMENT_PIECE));
        let deltas = fragments
            .into_iter()
            .map(|f| json!({ "type": "input_json_delta", "partial_json": f }))
            .collect();
        blocks.push((start, deltas));
    }
    for (index, (start, deltas)) in blocks.into_iter().enumerate() {
        events.push(event(
            "content_block_start",
            json!({ "type": "content_block_start", "index": index, "content_block": start }),
            false,
        ));
        if index == 0 {
            events.push(event("ping", json!({ "type": "ping" }), false));
        }
        for delta in deltas {
            events.push(event(
                "content_block_delta",
                json!({ "type": "content_block_delta", "index": index, "delta": delta }),
                true,
            ));
        }
        events.push(event(
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": index }),
            false,
        ));
    }

    events.push(event(
        "message_delta",
        json!({
            "type": "message_delta",
            "delta": { "stop_reason": stop_reason(answer), "stop_sequence": null },
            "usage": {
                "input_tokens": answer.usage.input_tokens,
                "output_tokens": answer.usage.output_tokens,
            },
        }),
        false,
    ));
    events.push(event(
        "message_stop",
        json!({ "type": "message_stop" }),
        false,
    ));
    events
}

fn message_id(request: &ChatRequest) -> String {
    format!("msg_fake{}", request.serial)
}

fn stop_reason(answer: &Answer) -> &'static str {
    if answer.calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    }
}

// ---------------------------------------------------------------------------------------------
// Reading requests, for the demo

/// What the conversation ends with: the `tool_result` blocks of the last user message, or the
/// last message's text.
pub(super) fn last_turn(body: &Value) -> Turn {
    let Some(last) = body["messages"].as_array().and_then(|m| m.last()) else {
        return Turn::Said {
            by_user: false,
            text: String::new(),
        };
    };
    let results: Vec<String> = last["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|block| block["type"] == "tool_result")
        .map(|block| text_of(&block["content"]))
        .collect();
    if last["role"] == "user" && !results.is_empty() {
        return Turn::ToolResults(results);
    }
    Turn::Said {
        by_user: last["role"] == "user",
        text: text_of(&last["content"]),
    }
}

/// The names of the offered tools.
pub(super) fn tool_names(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tool| tool["name"].as_str().map(str::to_owned))
        .collect()
}

/// A `content`: a string, or blocks whose `text` blocks are joined.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|block| block["type"] == "text")
            .filter_map(|block| block["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}
