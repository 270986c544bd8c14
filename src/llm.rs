//! The model gateway: one small trait over chat providers, the two wire protocols (OpenAI Chat
//! Completions, Anthropic Messages), retries, streaming with reassembled tool calls, and the
//! registry of configured models with their health. Provider quirks stop here.

mod anthropic;
mod assemble;
mod error;
mod http;
mod openai;
mod provider;
mod registry;
mod streaming;
pub mod types;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

pub use error::LlmError;
pub use registry::{Health, ModelEntry, ModelInfo, ModelRegistry};
pub use types::{
    Capabilities, ChatRequest, ChatResponse, FinishReason, StreamEvent, ToolChoice, Usage,
};

/// A chat model behind any provider. Kept to chat, streamed chat and capabilities on purpose.
pub trait ChatModel: Send + Sync {
    /// What this client supports.
    fn capabilities(&self) -> Capabilities;

    /// One complete answer (retried on transient failures).
    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, LlmError>>;

    /// The answer as it is produced; ends with [`StreamEvent::Completed`] or an error. Dropping
    /// the stream aborts the request.
    fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> BoxStream<'static, Result<StreamEvent, LlmError>>;
}
