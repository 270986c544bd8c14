//! OpenAI Chat Completions on the wire: `chat.completion` objects, `chat.completion.chunk`
//! events ending in `data: [DONE]`, `{"error": {..}}` bodies, and the model list.
//!
//! Shapes follow the API reference and captured real traffic: the first chunk carries only
//! `role`, tool-call deltas carry `id`/`type`/`name` only in the first delta of their `index`,
//! the finishing chunk has an empty `delta`, and with `stream_options.include_usage` every chunk
//! has `"usage": null` except one last chunk with empty `choices` and the totals.

use axum::http::Method;
use serde_json::{Value, json};

use super::demo::Turn;
use super::{Answer, ChatRequest, SseEvent, split_chars, unix_now};

/// Characters per streamed text delta.
const TEXT_PIECE: usize = 5;
/// Characters per streamed tool-argument fragment.
const ARGUMENT_PIECE: usize = 6;

/// The checks the real API makes first, minimally; `Err` holds the 400 body.
pub(super) fn validate(body: &Value) -> Result<(), Value> {
    let invalid = |message: &str, param: Option<&str>, code: Option<&str>| {
        Err(error(message, "invalid_request_error", param, code))
    };
    if !body.is_object() {
        return invalid(
            "We could not parse the JSON body of your request. The OpenAI API expects a JSON \
             payload, but what was sent was not valid JSON.",
            None,
            None,
        );
    }
    if !body["model"].is_string() {
        return invalid("you must provide a model parameter", None, None);
    }
    if !body["messages"].is_array() {
        return invalid(
            "Missing required parameter: 'messages'.",
            Some("messages"),
            Some("missing_required_parameter"),
        );
    }
    Ok(())
}

/// `GET /v1/models`.
pub(super) fn models() -> Value {
    json!({
        "object": "list",
        "data": [{ "id": "fake-model", "object": "model", "created": 1_700_000_000, "owned_by": "fake-llm" }],
    })
}

/// `{"error": {"message", "type", "param", "code"}}` as the API sends it for `status`.
pub(super) fn error_body(status: u16, message: Option<&str>) -> Value {
    let (kind, code, stock) = match status {
        400 => ("invalid_request_error", None, "Invalid request."),
        401 => (
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided.",
        ),
        403 => (
            "invalid_request_error",
            Some("unsupported_country_region_territory"),
            "Country, region, or territory not supported",
        ),
        404 => (
            "invalid_request_error",
            Some("model_not_found"),
            "The model does not exist or you do not have access to it.",
        ),
        429 => (
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached for requests. Please try again later.",
        ),
        503 => (
            "server_error",
            None,
            "The engine is currently overloaded, please try again later",
        ),
        s if s >= 500 => (
            "server_error",
            None,
            "The server had an error while processing your request. Sorry about that!",
        ),
        _ => ("invalid_request_error", None, "Invalid request."),
    };
    error(message.unwrap_or(stock), kind, None, code)
}

/// The 404 for a URL the API does not have.
pub(super) fn no_route(method: &Method, path: &str) -> Value {
    error(
        &format!("Invalid URL ({method} {path})"),
        "invalid_request_error",
        None,
        None,
    )
}

fn error(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": param, "code": code } })
}

/// A whole `chat.completion`.
pub(super) fn completion(request: &ChatRequest, answer: &Answer) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": answer.text,
        "refusal": null,
        "annotations": [],
    });
    if !answer.calls.is_empty() {
        message["tool_calls"] = answer
            .calls
            .iter()
            .map(|call| {
                json!({
                    "id": call.id,
                    "type": "function",
                    "function": { "name": call.name, "arguments": call.arguments.to_string() },
                })
            })
            .collect();
    }
    json!({
        "id": completion_id(request),
        "object": "chat.completion",
        "created": unix_now(),
        "model": request.model,
        "system_fingerprint": "fp_fake",
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(answer),
        }],
        "usage": usage(answer),
    })
}

/// The `chat.completion.chunk` events of a streamed answer, `[DONE]` included.
pub(super) fn stream(request: &ChatRequest, answer: &Answer) -> Vec<SseEvent> {
    let id = completion_id(request);
    let created = unix_now();
    let chunk = |choices: Value, usage: Option<Value>| {
        let mut chunk = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": request.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
        });
        if request.include_usage {
            chunk["usage"] = usage.unwrap_or(Value::Null);
        }
        chunk.to_string()
    };
    let delta = |delta: Value, finish: Value, is_content: bool| SseEvent {
        event: None,
        data: chunk(
            json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }]),
            None,
        ),
        delta: is_content,
    };

    let mut events = Vec::new();
    let first_content = if answer.text.is_some() {
        json!("")
    } else {
        Value::Null
    };
    events.push(delta(
        json!({ "role": "assistant", "content": first_content, "refusal": null }),
        Value::Null,
        false,
    ));
    if let Some(text) = &answer.text {
        for piece in split_chars(text, TEXT_PIECE) {
            events.push(delta(json!({ "content": piece }), Value::Null, true));
        }
    }
    for tool_calls in tool_call_deltas(answer) {
        events.push(delta(
            json!({ "tool_calls": tool_calls }),
            Value::Null,
            true,
        ));
    }
    events.push(delta(json!({}), json!(finish_reason(answer)), false));
    if request.include_usage {
        events.push(SseEvent {
            event: None,
            data: chunk(json!([]), Some(usage(answer))),
            delta: false,
        });
    }
    events.push(SseEvent {
        event: None,
        data: "[DONE]".to_owned(),
        delta: false,
    });
    events
}

/// The `tool_calls` arrays of successive deltas. Each call contributes its head (`id`, `type`,
/// `name`, empty `arguments`) and then its argument fragments; calls take turns, one entry per
/// delta, and the last fragments of every call arrive together in one final delta.
fn tool_call_deltas(answer: &Answer) -> Vec<Value> {
    let mut lanes: Vec<Vec<Value>> = Vec::new();
    let mut lasts = Vec::new();
    for (index, call) in answer.calls.iter().enumerate() {
        let mut lane = vec![json!({
            "index": index,
            "id": call.id,
            "type": "function",
            "function": { "name": call.name, "arguments": "" },
        })];
        let mut fragments = split_chars(&call.arguments.to_string(), ARGUMENT_PIECE);
        let last = fragments.pop().unwrap_or_default();
        lane.extend(
            fragments
                .into_iter()
                .map(|f| json!({ "index": index, "function": { "arguments": f } })),
        );
        lasts.push(json!({ "index": index, "function": { "arguments": last } }));
        lanes.push(lane);
    }
    let rounds = lanes.iter().map(Vec::len).max().unwrap_or(0);
    let mut deltas = Vec::new();
    for round in 0..rounds {
        for lane in &lanes {
            if let Some(entry) = lane.get(round) {
                deltas.push(json!([entry]));
            }
        }
    }
    if !lasts.is_empty() {
        deltas.push(Value::Array(lasts));
    }
    deltas
}

fn completion_id(request: &ChatRequest) -> String {
    format!("chatcmpl-fake{}", request.serial)
}

fn finish_reason(answer: &Answer) -> &'static str {
    if answer.calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    }
}

fn usage(answer: &Answer) -> Value {
    let usage = answer.usage;
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    })
}

// ---------------------------------------------------------------------------------------------
// Reading requests, for the demo

/// What the conversation ends with: the trailing `tool` messages, or the last message's text.
pub(super) fn last_turn(body: &Value) -> Turn {
    let messages = body["messages"].as_array().map_or(&[][..], Vec::as_slice);
    let results: Vec<String> = messages
        .iter()
        .rev()
        .take_while(|m| m["role"] == "tool")
        .map(|m| text_of(&m["content"]))
        .collect();
    if !results.is_empty() {
        return Turn::ToolResults(results.into_iter().rev().collect());
    }
    match messages.last() {
        Some(last) => Turn::Said {
            by_user: last["role"] == "user",
            text: text_of(&last["content"]),
        },
        None => Turn::Said {
            by_user: false,
            text: String::new(),
        },
    }
}

/// The names of the offered function tools.
pub(super) fn tool_names(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tool| tool["function"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// A message `content`: a string, or an array of parts whose `text` parts are joined.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}
