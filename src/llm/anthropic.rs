//! Anthropic Messages, spoken natively: system prompt apart, `tool_use` / `tool_result` content
//! blocks, and its typed stream events.

use serde_json::{Value, json};

use super::assemble::ToolCallAssembler;
use super::http::ModelContext;
use super::provider::{ProviderModel, Wire};
use super::streaming::StreamParser;
use super::types::{ChatRequest, ChatResponse, FinishReason, StreamEvent, ToolChoice, Usage};
use crate::domain::{Role, ToolCall};
use crate::sse::SseEvent;

/// The API version header value this client speaks.
const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; used when neither the request nor the config sets one.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The Messages wire.
pub(crate) struct Anthropic;

/// A Messages API client for one configured model.
pub(crate) type AnthropicModel = ProviderModel<Anthropic>;

/// A GET of the models list, used as the health probe.
pub(crate) fn health_request(ctx: &ModelContext) -> reqwest::RequestBuilder {
    Anthropic::authorize(ctx, ctx.http.get(Anthropic::endpoint(ctx, "models")))
}

impl Wire for Anthropic {
    const CHAT_PATH: &'static str = "messages";

    fn endpoint(ctx: &ModelContext, path: &str) -> String {
        format!(
            "{}/v1/{path}",
            ctx.config.base_url.as_str().trim_end_matches('/')
        )
    }

    fn authorize(ctx: &ModelContext, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let request = request.header("anthropic-version", API_VERSION);
        match ctx.key() {
            Some(key) => request.header("x-api-key", key),
            None => request,
        }
    }

    fn body(ctx: &ModelContext, request: &ChatRequest, stream: bool) -> Value {
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let mut body = json!({
            "model": ctx.config.model_name,
            "max_tokens": request.max_tokens.or(ctx.config.max_tokens).unwrap_or(DEFAULT_MAX_TOKENS),
            "messages": messages(request),
            "stream": stream,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if let Some(temperature) = request.temperature {
            body["temperature"] = json!(temperature);
        }
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|tool| json!({"name": tool.name, "description": tool.description, "input_schema": tool.parameters}))
                .collect();
            body["tool_choice"] = match &request.tool_choice {
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Required => json!({"type": "any"}),
                ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
            };
        }
        body
    }

    /// The message of an Anthropic error body `{"type":"error","error":{"type":..,"message":..}}`.
    fn error_message(body: &Value) -> Option<String> {
        body.get("error")?
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    fn parse(value: &Value) -> Result<ChatResponse, String> {
        parse_message(value)
    }

    fn parser() -> Box<dyn StreamParser> {
        Box::new(EventParser::default())
    }
}

/// Conversation turns as Messages expects them: tool results travel as `tool_result` blocks in a
/// user turn, and consecutive turns of the same role are merged (the API requires alternation).
fn messages(request: &ChatRequest) -> Vec<Value> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in &request.messages {
        let (role, blocks) = match message.role {
            Role::System => continue,
            Role::User => (
                "user",
                vec![json!({"type": "text", "text": message.content})],
            ),
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id,
                    "content": message.content,
                    "is_error": message.is_error,
                })],
            ),
            Role::Assistant => {
                let mut blocks = Vec::new();
                if !message.content.is_empty() {
                    blocks.push(json!({"type": "text", "text": message.content}));
                }
                for call in &message.tool_calls {
                    // The model's argument text may be malformed; Messages needs an object.
                    let input = serde_json::from_str::<Value>(&call.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
                }
                ("assistant", blocks)
            }
        };
        match out.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("end_turn") | Some("stop_sequence") | None => FinishReason::Stop,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("max_tokens") => FinishReason::Length,
        Some("refusal") => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_owned()),
    }
}

fn parse_message(value: &Value) -> Result<ChatResponse, String> {
    let blocks = value
        .get("content")
        .and_then(Value::as_array)
        .ok_or("no `content` array in the response")?;
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                content.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""))
            }
            Some("tool_use") => tool_calls.push(ToolCall {
                id: block
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                name: block
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or("a tool_use block has no name")?
                    .to_owned(),
                arguments: block
                    .get("input")
                    .map_or_else(|| "{}".to_owned(), Value::to_string),
            }),
            _ => {}
        }
    }
    let usage = value.get("usage").map(|u| Usage {
        input_tokens: u.get("input_tokens").and_then(Value::as_u64).unwrap_or(0),
        output_tokens: u.get("output_tokens").and_then(Value::as_u64).unwrap_or(0),
    });
    Ok(ChatResponse {
        content,
        tool_calls,
        finish_reason: finish_reason(value.get("stop_reason").and_then(Value::as_str)),
        usage,
    })
}

/// The Messages event stream up to `message_stop`.
#[derive(Default)]
struct EventParser {
    content: String,
    tools: ToolCallAssembler,
    /// Content-block index → tool-call index, for `tool_use` blocks.
    tool_blocks: std::collections::HashMap<u64, usize>,
    stop_reason: Option<String>,
    usage: Usage,
    saw_usage: bool,
}

impl StreamParser for EventParser {
    fn feed(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<bool, String> {
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|err| format!("a stream event is not JSON ({err})"))?;
        let kind = event
            .event
            .as_deref()
            .or_else(|| data.get("type").and_then(Value::as_str))
            .unwrap_or("");
        match kind {
            "message_start" => {
                if let Some(tokens) = data
                    .pointer("/message/usage/input_tokens")
                    .and_then(Value::as_u64)
                {
                    self.usage.input_tokens = tokens;
                    self.saw_usage = true;
                }
            }
            "content_block_start" => {
                let block_index = data
                    .get("index")
                    .and_then(Value::as_u64)
                    .ok_or("content_block_start without index")?;
                let block = data
                    .get("content_block")
                    .ok_or("content_block_start without content_block")?;
                if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                    let index = self.tool_blocks.len();
                    self.tool_blocks.insert(block_index, index);
                    let id = block.get("id").and_then(Value::as_str).unwrap_or("");
                    let name = block
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or("tool_use block without name")?;
                    self.tools.start(index, Some(id), Some(name));
                    out.push(StreamEvent::ToolCallStarted {
                        index,
                        id: id.to_owned(),
                        name: name.to_owned(),
                    });
                }
            }
            "content_block_delta" => {
                let block_index = data
                    .get("index")
                    .and_then(Value::as_u64)
                    .ok_or("content_block_delta without index")?;
                let delta = data
                    .get("delta")
                    .ok_or("content_block_delta without delta")?;
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let text = delta.get("text").and_then(Value::as_str).unwrap_or("");
                        if !text.is_empty() {
                            self.content.push_str(text);
                            out.push(StreamEvent::TextDelta(text.to_owned()));
                        }
                    }
                    Some("input_json_delta") => {
                        let fragment = delta
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let index = *self
                            .tool_blocks
                            .get(&block_index)
                            .ok_or("input_json_delta for a block that is not a tool_use")?;
                        if !fragment.is_empty() {
                            self.tools.append(index, fragment);
                            out.push(StreamEvent::ToolCallDelta {
                                index,
                                fragment: fragment.to_owned(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(reason.to_owned());
                }
                if let Some(tokens) = data.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    self.usage.output_tokens = tokens;
                    self.saw_usage = true;
                }
            }
            "message_stop" => return Ok(true),
            "error" => {
                let message =
                    Anthropic::error_message(&data).unwrap_or_else(|| "unknown error".to_owned());
                return Err(format!(
                    "the provider reported an error mid-stream: {message}"
                ));
            }
            _ => {}
        }
        Ok(false)
    }

    fn finish(self: Box<Self>) -> ChatResponse {
        ChatResponse {
            content: self.content,
            tool_calls: self.tools.finish(),
            finish_reason: finish_reason(self.stop_reason.as_deref()),
            usage: self.saw_usage.then_some(self.usage),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChatMessage;

    #[test]
    fn tool_results_become_one_user_turn_of_tool_result_blocks() {
        let request = ChatRequest {
            messages: vec![
                ChatMessage::system("be brief"),
                ChatMessage::user("hi"),
                ChatMessage::assistant(
                    "",
                    vec![
                        ToolCall {
                            id: "a".into(),
                            name: "x".into(),
                            arguments: "{\"n\":1}".into(),
                        },
                        ToolCall {
                            id: "b".into(),
                            name: "y".into(),
                            arguments: "not json".into(),
                        },
                    ],
                ),
                ChatMessage::tool_result("a", "1", false),
                ChatMessage::tool_result("b", "boom", true),
            ],
            ..ChatRequest::default()
        };
        let turns = messages(&request);
        assert_eq!(turns.len(), 3);
        assert_eq!(turns[1]["content"][0]["input"], json!({"n": 1}));
        assert_eq!(turns[1]["content"][1]["input"], json!({}));
        assert_eq!(turns[2]["role"], "user");
        assert_eq!(turns[2]["content"][1]["is_error"], true);
    }

    #[test]
    fn parses_tool_use_blocks() {
        let value = json!({"content": [{"type": "text", "text": "ok"}, {"type": "tool_use", "id": "t1", "name": "calc", "input": {"e": "1"}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4}});
        let response = parse_message(&value).expect("valid");
        assert_eq!(response.content, "ok");
        assert_eq!(response.tool_calls[0].arguments, "{\"e\":\"1\"}");
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    }
}
