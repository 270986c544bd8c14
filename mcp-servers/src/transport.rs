//! How the bundled servers reach their peers: stdio pipes and Streamable HTTP.
//!
//! Both functions are generic over the handler, so every server gets the same
//! treatment. This module owns performance and lifecycle details (non-blocking pipes,
//! `TCP_NODELAY`, shutdown); it knows nothing about tools.

use std::sync::Arc;

use axum::serve::ListenerExt;
use rmcp::{
    ServerHandler, ServiceExt,
    service::ServerInitializeError,
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    },
};
use tokio_util::sync::CancellationToken;

use crate::Error;

/// Serve `handler` over stdin/stdout until the peer closes.
///
/// `rmcp::transport::stdio_pipes` is the gotcha-15 trick packaged by rmcp itself: when
/// fd 0 and 1 are FIFOs it reopens them through `/proc/self/fd` and registers them with
/// the tokio reactor, and otherwise falls back to the blocking `stdio()` handles. The
/// reopen is better than `try_clone_to_owned`: a dup shares the open file description,
/// so setting `O_NONBLOCK` on it would also flip the process's own fd 0/1 (and those of
/// any child inheriting them), while a reopen keeps the flag private.
pub(crate) async fn stdio<S: ServerHandler>(handler: S) -> Result<(), Error> {
    let running = match handler.serve(rmcp::transport::stdio_pipes()).await {
        Ok(running) => running,
        // The peer went away before finishing the handshake; nothing left to serve.
        Err(ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
        Err(err) => return Err(Error::Handshake(Box::new(err))),
    };
    running.waiting().await.map_err(Error::Session)?;
    Ok(())
}

/// Serve `handler` (cloned once per MCP session or stateless request) at `/mcp`.
pub(crate) async fn http<S>(
    handler: S,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error>
where
    S: ServerHandler + Clone + Send + Sync + 'static,
{
    // A child token: cancelling `shutdown` ends every session (and their SSE streams,
    // which would otherwise keep graceful shutdown waiting forever), while rmcp
    // cancelling its own token cannot cancel the caller's.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(true)
        .with_cancellation_token(shutdown.child_token());
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = listener.tap_io(|stream| {
        // Without it, small SSE writes wait ~40 ms for the delayed ACK (gotcha 14).
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(Error::Http)
}
