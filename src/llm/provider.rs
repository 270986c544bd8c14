//! The request/response plumbing every wire protocol shares, written once: build the payload,
//! decorate and authorize the POST, then either send it with retries and parse the JSON, or hand
//! it to the streaming driver with the wire's event parser. A protocol only says how it differs.

use std::marker::PhantomData;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde_json::Value;

use super::ChatModel;
use super::error::LlmError;
use super::http::{self, ModelContext};
use super::streaming::{self, StreamParser};
use super::types::{Capabilities, ChatRequest, ChatResponse, StreamEvent};

/// What distinguishes one chat wire protocol from another. Associated functions only, so a wire
/// is a zero-sized marker and its functions can be handed to `http`/`streaming` as plain `fn`s.
pub(crate) trait Wire: Send + Sync + 'static {
    /// The chat path under the base URL, as passed to [`Wire::endpoint`].
    const CHAT_PATH: &'static str;

    /// The full URL of `path` (shared with the health probe, so vendor URL quirks live here).
    fn endpoint(ctx: &ModelContext, path: &str) -> String;

    /// Attach credentials and protocol headers; applied on every attempt of a retried request.
    fn authorize(ctx: &ModelContext, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder;

    /// The JSON payload for `request`; `stream` selects the streamed variant.
    fn body(ctx: &ModelContext, request: &ChatRequest, stream: bool) -> Value;

    /// The human-readable message of an error body, for classifying failed responses.
    fn error_message(body: &Value) -> Option<String>;

    /// Parse a non-streamed answer; `Err` carries why it is malformed.
    ///
    /// # Errors
    /// A message describing malformed data.
    fn parse(value: &Value) -> Result<ChatResponse, String>;

    /// A fresh stream parser; called per attempt, since a retried stream starts over.
    fn parser() -> Box<dyn StreamParser>;

    /// What a client speaking this wire supports. Both current wires support everything.
    fn capabilities() -> Capabilities {
        Capabilities {
            streaming: true,
            tools: true,
            parallel_tool_calls: true,
        }
    }
}

/// A client for one configured model over wire `W`: the single [`ChatModel`] implementation.
pub(crate) struct ProviderModel<W: Wire> {
    ctx: Arc<ModelContext>,
    // `fn() -> W` keeps the model `Send + Sync` whatever the marker is, and owns no `W`.
    wire: PhantomData<fn() -> W>,
}

impl<W: Wire> ProviderModel<W> {
    pub(crate) fn new(ctx: ModelContext) -> Self {
        Self {
            ctx: Arc::new(ctx),
            wire: PhantomData,
        }
    }
}

impl<W: Wire> ChatModel for ProviderModel<W> {
    fn capabilities(&self) -> Capabilities {
        W::capabilities()
    }

    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, LlmError>> {
        async move {
            let ctx = &*self.ctx;
            let payload = W::body(ctx, &request, false);
            let url = W::endpoint(ctx, W::CHAT_PATH);
            let build = || {
                let builder = ctx.decorate(ctx.http.post(&url), request.traceparent.as_deref());
                W::authorize(ctx, builder).json(&payload)
            };
            let response = http::send_with_retry(ctx, W::error_message, build).await?;
            let value = http::read_json(ctx, response).await?;
            W::parse(&value).map_err(|message| ctx.malformed(message))
        }
        .boxed()
    }

    fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> BoxStream<'static, Result<StreamEvent, LlmError>> {
        let ctx = self.ctx.clone();
        let payload = W::body(&ctx, &request, true);
        let url = W::endpoint(&ctx, W::CHAT_PATH);
        let traceparent = request.traceparent.clone();
        let build_ctx = ctx.clone();
        let build = move || {
            let builder = build_ctx.decorate(build_ctx.http.post(&url), traceparent.as_deref());
            W::authorize(&build_ctx, builder)
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .json(&payload)
        };
        streaming::run(ctx, W::error_message, build, W::parser)
    }
}
