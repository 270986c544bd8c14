//! The OpenAI-compatible API's response shapes (`/v1/models`, `/v1/chat/completions` whole and
//! streamed, and OpenAI's error shape), as OpenAI's SDKs read them.

use serde::Serialize;

use crate::domain::{RunId, RunStatus, TokenUsage};

/// `GET /v1/models`.
#[derive(Debug, Serialize)]
pub(in crate::api) struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelEntry>,
}

/// One model (or agent, as `agent:NAME`) of `GET /v1/models`.
#[derive(Debug, Serialize)]
pub(in crate::api) struct ModelEntry {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    pub owned_by: &'static str,
}

/// What every response and chunk of one completion repeats.
#[derive(Debug, Clone, Serialize)]
pub(in crate::api) struct Reply {
    pub id: String,
    pub created: i64,
    pub model: String,
}

/// A whole `chat.completion`.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Completion<'a> {
    #[serde(flatten)]
    pub reply: &'a Reply,
    pub object: &'static str,
    pub system_fingerprint: Option<&'static str>,
    pub choices: [CompletionChoice; 1],
    pub usage: Usage,
    /// How the run behind the answer ended (a vendor field; OpenAI's SDKs keep unknown ones).
    pub switchboard: RunMeta<'a>,
}

/// Switchboard's own facts about the run behind a completion, under the key `switchboard` of a
/// whole completion and of the streamed chunk that carries `finish_reason`. An answer is
/// `succeeded` or `partial`; `partial` tells a client that some tool calls behind the answer
/// failed or did not run, which `finish_reason: "stop"` alone would hide.
#[derive(Debug, Clone, Copy, Serialize)]
pub(in crate::api) struct RunMeta<'a> {
    pub run_id: RunId,
    pub status: RunStatus,
    /// For `partial`: which tool calls failed or did not run.
    pub note: Option<&'a str>,
}

/// The one choice of a whole completion.
#[derive(Debug, Serialize)]
pub(in crate::api) struct CompletionChoice {
    pub index: u32,
    pub message: AssistantMessage,
    pub logprobs: Option<()>,
    pub finish_reason: &'static str,
}

/// The answer of a whole completion.
#[derive(Debug, Serialize)]
pub(in crate::api) struct AssistantMessage {
    pub role: &'static str,
    pub content: String,
    pub refusal: Option<()>,
}

/// One `chat.completion.chunk` of a streamed completion.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Chunk<'a> {
    #[serde(flatten)]
    pub reply: &'a Reply,
    pub object: &'static str,
    pub system_fingerprint: Option<&'static str>,
    pub choices: Vec<ChunkChoice<'a>>,
    /// Present (null until the last chunk) only when the client asked for usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
    /// Only on the chunk with `finish_reason`: how the run ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switchboard: Option<RunMeta<'a>>,
}

/// The one choice of a chunk.
#[derive(Debug, Serialize)]
pub(in crate::api) struct ChunkChoice<'a> {
    pub index: u32,
    pub delta: Delta<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

/// What a chunk adds to the answer.
#[derive(Debug, Default, Serialize)]
pub(in crate::api) struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
}

/// Tokens of the whole run, in OpenAI's names.
#[derive(Debug, Clone, Copy, Serialize)]
pub(in crate::api) struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl From<TokenUsage> for Usage {
    fn from(usage: TokenUsage) -> Self {
        Self {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.input_tokens + usage.output_tokens,
        }
    }
}

/// OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Serialize)]
pub(in crate::api) struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Serialize)]
pub(in crate::api) struct ErrorDetail<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub param: Option<&'a str>,
    pub code: Option<&'static str>,
}
