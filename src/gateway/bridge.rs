//! `switchboard gateway --stdio`: an MCP server on stdin/stdout that passes everything to a
//! running Switchboard's `/mcp` with an API key, so a client that only launches commands (a
//! Claude Desktop `mcpServers` entry) reaches the same catalog, agents, policies and traces.
//!
//! It proxies rather than running a hub in-process on purpose: the role, quota, approvals,
//! audit and `/debug` traces are the server's, kept by one process and one store, and a desktop
//! client does not start its own copy of every configured MCP server.
//!
//! Passed through: `tools/list` (page by page), `tools/call` with its progress notifications
//! (rmcp gives each upstream request a token of its own, so tokens are mapped back) and its
//! cancellation, `notifications/tools/list_changed`, and the server's elicitation requests
//! (approvals, servers' questions) when the client declared elicitation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use futures::future::BoxFuture;
use rmcp::model::ServerNotification;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, CancelledNotificationParam,
    ClientCapabilities, ClientConfig, ClientRequest, ElicitRequestParams, ElicitResult,
    Implementation, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ProgressToken, ProtocolVersion, ServerCapabilities, ServerConfig, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{
    ClientHandler, ErrorData as McpError, Peer, RoleClient, RoleServer, ServerHandler, ServiceExt,
};
use tokio::sync::OnceCell;

use crate::mcp::transport::tap::{Tap, Tapped};

/// Why the bridge stopped.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("serving MCP on stdio failed: {0}")]
    Stdio(String),
}

/// Serve MCP on stdin/stdout until the client closes them, passing every request to the
/// Switchboard `/mcp` at `url` with `key` (none: a server with `auth: none`).
///
/// # Errors
/// The stdio session could not start (the upstream is connected at the client's
/// `initialized`, and its failures are the client's errors, naming the URL).
pub async fn serve_stdio(url: String, key: Option<String>) -> Result<(), BridgeError> {
    let bridge = Bridge {
        link: Arc::new(Link {
            url,
            key,
            upstream: OnceCell::new(),
            shared: Arc::default(),
        }),
    };
    let running = bridge
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|err| BridgeError::Stdio(err.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|err| BridgeError::Stdio(err.to_string()))?;
    Ok(())
}

/// The downstream side: what the launching client talks to.
#[derive(Clone)]
struct Bridge {
    link: Arc<Link>,
}

/// The downstream side's link to the upstream.
struct Link {
    url: String,
    key: Option<String>,
    upstream: OnceCell<RunningService<RoleClient, Upstream>>,
    shared: Arc<Shared>,
}

/// What both sides know.
#[derive(Default)]
struct Shared {
    /// The launching client, once it is initialized.
    client: OnceLock<Peer<RoleServer>>,
    /// Upstream progress token → the client's token for the same call.
    progress: Mutex<HashMap<ProgressToken, ProgressToken>>,
}

impl Shared {
    fn routes(&self) -> std::sync::MutexGuard<'_, HashMap<ProgressToken, ProgressToken>> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Link {
    /// The upstream session, connected on first use with the client's elicitation capability.
    async fn upstream(&self) -> Result<&RunningService<RoleClient, Upstream>, McpError> {
        self.upstream
            .get_or_try_init(|| async {
                let elicits = self
                    .shared
                    .client
                    .get()
                    .and_then(Peer::peer_info)
                    .is_some_and(|info| info.capabilities.elicitation.is_some());
                let mut config = StreamableHttpClientTransportConfig::with_uri(self.url.clone());
                if let Some(key) = &self.key {
                    config = config.auth_header(key.clone());
                }
                let upstream = Upstream {
                    shared: self.shared.clone(),
                    elicits,
                };
                let transport = Tapped::new(
                    StreamableHttpClientTransport::from_config(config),
                    self.shared.clone(),
                );
                upstream.serve(transport).await.map_err(|err| {
                    McpError::internal_error(
                        format!("cannot reach Switchboard at {}: {err}", self.url),
                        None,
                    )
                })
            })
            .await
    }
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        ServerConfig::new(capabilities).with_server_info(Implementation::new(
            "switchboard-gateway",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let _ = self.link.shared.client.set(context.peer.clone());
        // Connect now, so a wrong URL or key shows in the client's log at once.
        if let Err(err) = self.link.upstream().await {
            tracing::error!(error = %err.message, "the gateway cannot reach Switchboard");
        }
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let upstream = self.link.upstream().await?;
        upstream.list_tools(request).await.map_err(upstream_error)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let upstream = self.link.upstream().await?;
        let handle = upstream
            .send_request_with_option(
                ClientRequest::CallToolRequest(CallToolRequest::new(request)),
                PeerRequestOptions::no_options(),
            )
            .await
            .map_err(upstream_error)?;
        let routed = handle.progress_token.clone();
        let id = handle.id.clone();
        if let Some(token) = context.meta.get_progress_token() {
            self.link.shared.routes().insert(routed.clone(), token);
        }
        let response = tokio::select! {
            response = handle.await_response() => response,
            () = context.ct.cancelled() => {
                self.link.shared.routes().remove(&routed);
                let cancelled = CancelledNotificationParam::new(
                    Some(id),
                    Some("cancelled by the gateway's client".to_owned()),
                );
                let _ = upstream.peer().notify_cancelled(cancelled).await;
                return Err(McpError::internal_error("the call was cancelled", None));
            }
        };
        self.link.shared.routes().remove(&routed);
        match response.map_err(upstream_error)? {
            ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
            other => Err(McpError::internal_error(
                format!("Switchboard answered tools/call with {other:?}"),
                None,
            )),
        }
    }
}

/// The upstream side: the client of Switchboard's `/mcp`, passing what it hears to the
/// launching client.
struct Upstream {
    shared: Arc<Shared>,
    /// The launching client declared elicitation: so does this client, upstream.
    elicits: bool,
}

impl ClientHandler for Upstream {
    fn get_info(&self) -> ClientConfig {
        let capabilities = if self.elicits {
            ClientCapabilities::builder().enable_elicitation().build()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(
            capabilities,
            Implementation::new("switchboard-gateway", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn on_progress(&self, _: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        // Passed on in order as the message arrives, by the transport tap (`Tap for Shared`).
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        if let Some(client) = self.shared.client.get() {
            let _ = client.notify_tool_list_changed().await;
        }
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let client = self.shared.client.get().ok_or_else(|| {
            McpError::internal_error("the gateway's client is not connected", None)
        })?;
        client
            .create_elicitation(request)
            .await
            .map_err(upstream_error)
    }
}

/// The bridge's tap on the upstream session: each progress notification is passed to the
/// launching client as it arrives, queued before the answer that follows it (rmcp's handler
/// tasks could deliver it after the answer, or find its route gone).
impl Tap for Shared {
    fn notified(&self, notification: &ServerNotification) -> Option<BoxFuture<'static, ()>> {
        let ServerNotification::ProgressNotification(note) = notification else {
            return None;
        };
        let token = self.routes().get(&note.params.progress_token).cloned()?;
        let client = self.client.get()?.clone();
        let mut params = note.params.clone();
        params.progress_token = token;
        Some(Box::pin(async move {
            let _ = client.notify_progress(params).await;
        }))
    }
}

fn upstream_error(err: rmcp::ServiceError) -> McpError {
    match err {
        rmcp::ServiceError::McpError(err) => err,
        other => McpError::internal_error(format!("Switchboard: {other}"), None),
    }
}
