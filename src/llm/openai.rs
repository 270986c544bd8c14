//! OpenAI Chat Completions, the protocol of OpenAI, DeepSeek, Qwen (compatible mode), vLLM,
//! TGI, Ollama, llama.cpp, LM Studio, OpenRouter and Azure OpenAI. Vendors differ only in URL,
//! headers and key placement, which are config, not code.

use serde_json::{Value, json};

use super::assemble::ToolCallAssembler;
use super::http::ModelContext;
use super::provider::{ProviderModel, Wire};
use super::streaming::StreamParser;
use super::types::{ChatRequest, ChatResponse, FinishReason, StreamEvent, ToolChoice, Usage};
use crate::domain::{ChatMessage, Role, ToolCall};
use crate::sse::SseEvent;

/// The Chat Completions wire.
pub(crate) struct OpenAi;

/// A Chat Completions client for one configured model.
pub(crate) type OpenAiModel = ProviderModel<OpenAi>;

/// A GET of the models list, used as the health probe.
pub(crate) fn health_request(ctx: &ModelContext) -> reqwest::RequestBuilder {
    OpenAi::authorize(ctx, ctx.http.get(OpenAi::endpoint(ctx, "models")))
}

impl Wire for OpenAi {
    const CHAT_PATH: &'static str = "chat/completions";

    /// `POST {base_url}/chat/completions` (plus `?api-version=` for Azure).
    fn endpoint(ctx: &ModelContext, path: &str) -> String {
        let base = ctx.config.base_url.as_str().trim_end_matches('/');
        match &ctx.config.api_version {
            Some(version) => format!("{base}/{path}?api-version={version}"),
            None => format!("{base}/{path}"),
        }
    }

    fn authorize(ctx: &ModelContext, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (ctx.key(), &ctx.config.api_version) {
            (Some(key), Some(_)) => request.header("api-key", key),
            (Some(key), None) => request.bearer_auth(key),
            (None, _) => request,
        }
    }

    fn body(ctx: &ModelContext, request: &ChatRequest, stream: bool) -> Value {
        let mut body = json!({
            "model": ctx.config.model_name,
            "messages": request.messages.iter().map(message).collect::<Vec<_>>(),
            "stream": stream,
        });
        if stream {
            body["stream_options"] = json!({ "include_usage": true });
        }
        if let Some(max_tokens) = request.max_tokens.or(ctx.config.max_tokens) {
            body["max_tokens"] = json!(max_tokens);
        }
        if let Some(temperature) = request.temperature {
            body["temperature"] = json!(temperature);
        }
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|tool| {
                    json!({
                        "type": "function",
                        "function": {
                            "name": tool.name,
                            "description": tool.description,
                            "parameters": tool.parameters,
                            "strict": tool.strict,
                        }
                    })
                })
                .collect();
            body["tool_choice"] = match &request.tool_choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
            };
        }
        body
    }

    /// The message of an OpenAI-shaped error body `{"error": {"message": ...}}`.
    fn error_message(body: &Value) -> Option<String> {
        let error = body.get("error")?;
        error
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| error.as_str().map(str::to_owned))
    }

    fn parse(value: &Value) -> Result<ChatResponse, String> {
        parse_completion(value)
    }

    fn parser() -> Box<dyn StreamParser> {
        Box::new(ChunkParser::default())
    }
}

fn message(message: &ChatMessage) -> Value {
    match message.role {
        Role::System => json!({"role": "system", "content": message.content}),
        Role::User => json!({"role": "user", "content": message.content}),
        Role::Assistant => {
            let mut out = json!({"role": "assistant", "content": message.content});
            if !message.tool_calls.is_empty() {
                if message.content.is_empty() {
                    out["content"] = Value::Null;
                }
                out["tool_calls"] = message
                    .tool_calls
                    .iter()
                    .map(|call| {
                        json!({
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        })
                    })
                    .collect();
            }
            out
        }
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.content,
        }),
    }
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("stop") | None => FinishReason::Stop,
        Some("tool_calls") | Some("function_call") => FinishReason::ToolCalls,
        Some("length") => FinishReason::Length,
        Some("content_filter") => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_owned()),
    }
}

fn usage(value: &Value) -> Option<Usage> {
    let usage = value.get("usage").filter(|u| u.is_object())?;
    Some(Usage {
        input_tokens: usage
            .get("prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output_tokens: usage
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
}

/// Parse a non-streamed `chat.completion`.
fn parse_completion(value: &Value) -> Result<ChatResponse, String> {
    let choice = value
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or("no `choices[0]` in the response")?;
    let message = choice
        .get("message")
        .ok_or("no `message` in `choices[0]`")?;
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut tool_calls = Vec::new();
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for (index, call) in calls.iter().enumerate() {
            let function = call
                .get("function")
                .ok_or("a tool call has no `function`")?;
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .ok_or("a tool call has no function name")?;
            let arguments = match function.get("arguments") {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => "{}".to_owned(),
            };
            tool_calls.push(ToolCall {
                id: call
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("call_{index}"), str::to_owned),
                name: name.to_owned(),
                arguments,
            });
        }
    }
    let mut finish = finish_reason(choice.get("finish_reason").and_then(Value::as_str));
    if !tool_calls.is_empty() && finish == FinishReason::Stop {
        finish = FinishReason::ToolCalls;
    }
    Ok(ChatResponse {
        content,
        tool_calls,
        finish_reason: finish,
        usage: usage(value),
    })
}

/// Streamed `chat.completion.chunk`s up to `data: [DONE]`.
#[derive(Default)]
struct ChunkParser {
    content: String,
    tools: ToolCallAssembler,
    finish: Option<String>,
    usage: Option<Usage>,
}

impl StreamParser for ChunkParser {
    fn feed(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<bool, String> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|err| format!("a stream chunk is not JSON ({err})"))?;
        if let Some(message) = OpenAi::error_message(&chunk) {
            return Err(format!(
                "the provider reported an error mid-stream: {message}"
            ));
        }
        if let Some(usage) = usage(&chunk) {
            self.usage = Some(usage);
        }
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
            return Ok(false);
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(reason.to_owned());
        }
        let Some(delta) = choice.get("delta") else {
            return Ok(false);
        };
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.content.push_str(text);
            out.push(StreamEvent::TextDelta(text.to_owned()));
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (position, call) in calls.iter().enumerate() {
                let index = call
                    .get("index")
                    .and_then(Value::as_u64)
                    .map_or(position, |i| i as usize);
                let function = call.get("function");
                let id = call.get("id").and_then(Value::as_str);
                let name = function.and_then(|f| f.get("name")).and_then(Value::as_str);
                if self.tools.start(index, id, name)
                    && let Some((id, name)) = self.tools.header(index)
                {
                    out.push(StreamEvent::ToolCallStarted {
                        index,
                        id: id.to_owned(),
                        name: name.to_owned(),
                    });
                }
                if let Some(fragment) = function
                    .and_then(|f| f.get("arguments"))
                    .and_then(Value::as_str)
                    .filter(|f| !f.is_empty())
                {
                    self.tools.append(index, fragment);
                    out.push(StreamEvent::ToolCallDelta {
                        index,
                        fragment: fragment.to_owned(),
                    });
                }
            }
        }
        Ok(false)
    }

    fn finish(self: Box<Self>) -> ChatResponse {
        let tool_calls = self.tools.finish();
        let mut finish = finish_reason(self.finish.as_deref());
        if !tool_calls.is_empty() && finish == FinishReason::Stop {
            finish = FinishReason::ToolCalls;
        }
        ChatResponse {
            content: self.content,
            tool_calls,
            finish_reason: finish,
            usage: self.usage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_completion_with_parallel_tool_calls() {
        let value = json!({"choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "x", "arguments": "{\"n\":1}"}},
            {"id": "b", "type": "function", "function": {"name": "y", "arguments": "{}"}}
        ]}, "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 5, "completion_tokens": 7}});
        let response = parse_completion(&value).expect("valid");
        assert_eq!(response.tool_calls.len(), 2);
        assert_eq!(response.tool_calls[0].arguments, "{\"n\":1}");
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            response.usage,
            Some(Usage {
                input_tokens: 5,
                output_tokens: 7
            })
        );
    }

    #[test]
    fn a_completion_without_choices_is_malformed() {
        assert!(parse_completion(&json!({"id": "x"})).is_err());
    }

    #[test]
    fn tool_results_and_calls_serialize_in_the_openai_shape() {
        let call = ToolCall {
            id: "c1".into(),
            name: "t".into(),
            arguments: "{}".into(),
        };
        let assistant = message(&ChatMessage::assistant("", vec![call]));
        assert_eq!(assistant["content"], Value::Null);
        assert_eq!(assistant["tool_calls"][0]["function"]["name"], "t");
        let tool = message(&ChatMessage::tool_result("c1", "42", false));
        assert_eq!(
            tool,
            json!({"role": "tool", "tool_call_id": "c1", "content": "42"})
        );
    }
}
