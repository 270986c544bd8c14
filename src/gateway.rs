//! Switchboard as an MCP server at `/mcp`: the merged catalog, filtered by the caller's role,
//! served over Streamable HTTP to any MCP client (both spec eras, as rmcp serves them), each
//! call made through `Hub::invoke_by` like every other path (role, validation, approvals,
//! quota, audit, timeouts, result caps).
//!
//! The caller is the one the router's authentication layer found for the HTTP request (rmcp
//! hands the request's parts to every handler), so `/mcp` takes the same keys, sessions and
//! `auth: none` rule as the rest of the server, and the Host/Origin gate in front of it.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::transport::StreamableHttpServerConfig;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::access::Caller;
use crate::hub::{Hub, Initiator, InvokeError};
use crate::mcp::CallOptions;
use crate::tools::ToolEntry;

/// Tools per `tools/list` page.
pub const PAGE_SIZE: usize = 100;

/// Progress notifications one call may have queued before they are forwarded.
const PROGRESS_BUFFER: usize = 32;

/// The `/mcp` server: one per request or session (cheap: it shares the hub).
#[derive(Clone)]
pub struct Gateway {
    hub: Hub,
    /// Held, never read: when the session's last handle is dropped, it cancels `session`,
    /// which ends the session's `list_changed` watcher.
    _ended: Arc<tokio_util::sync::DropGuard>,
    session: CancellationToken,
}

impl Gateway {
    fn new(hub: Hub) -> Self {
        let session = CancellationToken::new();
        Self {
            hub,
            _ended: Arc::new(session.clone().drop_guard()),
            session,
        }
    }
}

/// The `/mcp` service to mount on the router: Streamable HTTP with sessions for the
/// `initialize` era (kept in this process: a client must come back to the same replica) and
/// stateless for 2026-07-28. Host and Origin are checked by the router's gate, not here.
pub fn service(
    hub: Hub,
    max_body_bytes: usize,
    stop: CancellationToken,
) -> StreamableHttpService<Gateway, LocalSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(max_body_bytes)
        .with_cancellation_token(stop);
    StreamableHttpService::new(
        move || Ok(Gateway::new(hub.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

impl ServerHandler for Gateway {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        ServerConfig::new(capabilities).with_server_info(Implementation::new(
            "switchboard",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    /// A client with a session hears `notifications/tools/list_changed` whenever the catalog
    /// changes, until the session ends (it lists again and sees its role's view).
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let mut changes = self.hub.catalog_changes();
        changes.mark_unchanged();
        let session = self.session.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = changes.changed() => {
                        if changed.is_err() || context.peer.notify_tool_list_changed().await.is_err() {
                            return;
                        }
                    }
                    () = session.cancelled() => return,
                }
            }
        });
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = caller_of(&context)?;
        let catalog = self.hub.catalog();
        let allowed: Vec<&Arc<ToolEntry>> = catalog
            .iter()
            .filter(|tool| caller.may_use_tool(&tool.exposed_name))
            .collect();
        let start = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(cursor) => parse_cursor(&cursor, allowed.len())?,
        };
        let end = (start + PAGE_SIZE).min(allowed.len());
        let mut page = ListToolsResult::with_all_items(
            allowed[start..end].iter().map(|t| tool_of(t)).collect(),
        );
        if end < allowed.len() {
            page.next_cursor = Some(end.to_string());
        }
        Ok(page)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = caller_of(&context)?;
        let arguments = Value::Object(request.arguments.clone().unwrap_or_default());
        let (progress, mut updates) = mpsc::channel(PROGRESS_BUFFER);
        let options = CallOptions {
            progress: Some(progress),
            ..CallOptions::default()
        };
        // The client's model chose the call: a call the approval policy gates needs a person,
        // and nobody here can approve it.
        let initiator = Initiator::Model { approved: None };
        let call = self
            .hub
            .invoke_by(&caller, initiator, &request.name, arguments, options);
        tokio::pin!(call);
        let token = context.meta.get_progress_token();
        let outcome = loop {
            tokio::select! {
                outcome = &mut call => break outcome,
                Some(update) = updates.recv() => {
                    if let Some(token) = &token {
                        let mut note = ProgressNotificationParam::new(token.clone(), update.progress);
                        note.total = update.total;
                        note.message = update.message;
                        let _ = context.peer.notify_progress(note).await;
                    }
                }
                // The client cancelled: dropping the call sends the upstream its cancellation.
                () = context.ct.cancelled() => {
                    return Err(McpError::internal_error("the call was cancelled", None));
                }
            }
        };
        match outcome {
            Ok(outcome) => Ok(outcome.result.into()),
            // Not a tool this caller has: a protocol error, as the spec asks for unknown tools.
            Err(err @ (InvokeError::UnknownTool { .. } | InvokeError::Forbidden { .. })) => {
                Err(McpError::invalid_params(err.to_string(), None))
            }
            // Everything else the calling model should read and can correct itself from.
            Err(err) => Ok(CallToolResult::error(vec![ContentBlock::text(describe(&err))]).into()),
        }
    }
}

/// The caller the router's authentication found for this request.
fn caller_of(context: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| McpError::internal_error("the request has no authenticated caller", None))
}

/// A `tools/list` cursor: the position of the page's first tool.
fn parse_cursor(cursor: &str, len: usize) -> Result<usize, McpError> {
    cursor
        .parse::<usize>()
        .ok()
        .filter(|&start| start <= len)
        .ok_or_else(|| {
            McpError::invalid_params(format!("`{cursor}` is not a cursor this server gave"), None)
        })
}

/// A catalog entry as MCP lists it: the name and schemas the models see.
fn tool_of(entry: &ToolEntry) -> Tool {
    let mut tool = Tool::new(
        entry.exposed_name.clone(),
        entry.description.clone(),
        entry.input_schema.clone(),
    );
    tool.title = entry.title.clone();
    tool.output_schema = entry.output_schema.clone();
    tool.annotations = entry.annotations.clone();
    tool
}

/// A refused or failed call in words, with what the caller can do about it.
fn describe(err: &InvokeError) -> String {
    match err {
        InvokeError::InvalidArguments { errors, .. }
        | InvokeError::InvalidOutput { errors, .. } => {
            let details: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect();
            format!("{err}: {}", details.join("; "))
        }
        InvokeError::ApprovalRequired { .. } => format!(
            "{err}. Nobody can approve a call made through /mcp; a person can make it from \
             Switchboard's chat or call it directly."
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_positions_within_the_list() {
        assert_eq!(parse_cursor("0", 3).unwrap(), 0);
        assert_eq!(parse_cursor("3", 3).unwrap(), 3);
        assert!(parse_cursor("4", 3).is_err());
        assert!(parse_cursor("abc", 3).is_err());
        assert!(parse_cursor("-1", 3).is_err());
    }
}
