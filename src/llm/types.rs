//! The provider-neutral chat vocabulary: what we send to any model and what comes back.
//! Providers translate these to and from their wire formats; nothing else sees a wire format.

use serde::Serialize;

use crate::domain::{ChatMessage, ToolCall, ToolDefinition};

/// Whether and which tools the model may call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    #[default]
    Auto,
    None,
    Required,
    Tool(String),
}

/// One chat request, provider-neutral.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolDefinition>,
    pub tool_choice: ToolChoice,
    pub temperature: Option<f64>,
    /// Overrides the model's configured `max_tokens`.
    pub max_tokens: Option<u32>,
    /// W3C trace context to propagate to the provider.
    pub traceparent: Option<String>,
}

/// Token counts as the provider reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    ToolCalls,
    Length,
    ContentFilter,
    Other(String),
}

/// A complete answer (also the last event of a stream).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatResponse {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: FinishReason,
    pub usage: Option<Usage>,
}

/// What a streamed chat yields, in order; always ends with `Completed` or an error.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A piece of answer text.
    TextDelta(String),
    /// The model started a tool call (`index` is its position in this turn).
    ToolCallStarted {
        index: usize,
        id: String,
        name: String,
    },
    /// A fragment of a tool call's argument JSON.
    ToolCallDelta { index: usize, fragment: String },
    /// The whole turn, with tool calls reassembled exactly.
    Completed(ChatResponse),
}

/// What a provider client can do, for listings and request shaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub streaming: bool,
    pub tools: bool,
    pub parallel_tool_calls: bool,
}
