//! The provider-neutral streaming driver: send (with retries), read SSE events, let the
//! provider's parser turn them into [`StreamEvent`]s, and decide what a failure means.
//!
//! A failure before any output is retried like a failed request; once output has been emitted
//! a failure ends the stream with [`LlmError::Interrupted`], so the caller knows it saw a partial
//! answer and nothing is silently repeated.

use std::sync::Arc;
use std::time::Instant;

use futures::stream::BoxStream;
use reqwest::RequestBuilder;
use tokio::sync::mpsc;

use super::error::LlmError;
use super::http::{self, ErrorMessage, ModelContext, SseReadError, SseReader};
use super::types::{ChatResponse, StreamEvent};
use crate::sse::SseEvent;

/// Turns one provider's SSE events into stream events.
pub(crate) trait StreamParser: Send + 'static {
    /// Handle one event, pushing what it yields to `out`. Returns `Ok(true)` at the end marker.
    ///
    /// # Errors
    /// A message describing malformed data.
    fn feed(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<bool, String>;

    /// The assembled turn.
    fn finish(self: Box<Self>) -> ChatResponse;
}

/// Start a streamed call; dropping the returned stream aborts the request.
pub(crate) fn run(
    ctx: Arc<ModelContext>,
    error_message: ErrorMessage,
    build: impl Fn() -> RequestBuilder + Send + Sync + 'static,
    parser: impl Fn() -> Box<dyn StreamParser> + Send + Sync + 'static,
) -> BoxStream<'static, Result<StreamEvent, LlmError>> {
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let outcome = attempt_stream(&ctx, error_message, &build, parser(), &tx).await;
            let error = match outcome {
                Ok(()) => return,
                Err(Failure::Emitted(error)) => {
                    let _ = tx.send(Err(error)).await;
                    return;
                }
                Err(Failure::Clean(error)) => error,
            };
            match http::next_delay(&ctx.config.retry, attempt, started, &error) {
                Some(delay) => {
                    tracing::warn!(model = %ctx.name, attempt, delay_ms = delay.as_millis() as u64, error = %error, "model stream failed before output; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                None => {
                    let _ = tx.send(Err(error)).await;
                    return;
                }
            }
        }
    });
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

enum Failure {
    /// Nothing was emitted yet: retrying is safe.
    Clean(LlmError),
    /// Output was emitted: must not be retried.
    Emitted(LlmError),
}

async fn attempt_stream(
    ctx: &ModelContext,
    error_message: ErrorMessage,
    build: &(impl Fn() -> RequestBuilder + Send + Sync),
    mut parser: Box<dyn StreamParser>,
    tx: &mpsc::Sender<Result<StreamEvent, LlmError>>,
) -> Result<(), Failure> {
    let started = tokio::time::Instant::now();
    // Retries are decided by the caller, which knows whether output was already emitted.
    let response = http::send_once(ctx, error_message, build)
        .await
        .map_err(Failure::Clean)?;
    let mut reader = SseReader::new(response, ctx, started);
    let mut emitted = false;
    let fail = |emitted: bool, error: LlmError| {
        if emitted {
            Failure::Emitted(error)
        } else {
            Failure::Clean(error)
        }
    };
    let mut out = Vec::new();
    loop {
        let event = match reader.next().await {
            Ok(Some(event)) => event,
            Ok(None) => {
                let message = "the stream ended before the answer was complete".to_owned();
                return Err(if emitted {
                    Failure::Emitted(LlmError::Interrupted {
                        model: ctx.name.clone(),
                        message,
                    })
                } else {
                    Failure::Clean(LlmError::ProviderDown {
                        model: ctx.name.clone(),
                        message,
                    })
                });
            }
            Err(SseReadError::FirstTokenTimeout) => {
                return Err(fail(
                    emitted,
                    ctx.timeout("first token", ctx.config.first_token_timeout),
                ));
            }
            Err(SseReadError::Deadline) => {
                return Err(Failure::Emitted(ctx.timeout("request", ctx.config.timeout)));
            }
            Err(SseReadError::Broken(message)) => {
                let error = if emitted {
                    LlmError::Interrupted {
                        model: ctx.name.clone(),
                        message,
                    }
                } else {
                    ctx.malformed(message)
                };
                return Err(Failure::Emitted(error));
            }
        };
        let done = parser
            .feed(&event, &mut out)
            .map_err(|message| Failure::Emitted(ctx.malformed(message)))?;
        for item in out.drain(..) {
            if !emitted {
                emitted = true;
                reader.got_first_token();
            }
            if tx.send(Ok(item)).await.is_err() {
                // The caller dropped the stream: stop reading, which closes the connection.
                return Ok(());
            }
        }
        if done {
            let _ = tx.send(Ok(StreamEvent::Completed(parser.finish()))).await;
            return Ok(());
        }
    }
}
