//! Switchboard as an MCP server at `/mcp`: the merged catalog, filtered by the caller's role,
//! and the agents the caller may run (as `agent__NAME` tools), served over Streamable HTTP to
//! any MCP client (both spec eras, as rmcp serves them).
//!
//! Every `tools/call` is a run of its own (`RunService::call_tool`, or an agent's run), so it
//! is checked by `Hub::invoke_by` like every other call (role, validation, approvals, quota,
//! audit, timeouts, result caps) and traced in `/debug` with its caller; a call the approval
//! policy gates waits for a person — the client's own, by MCP elicitation, when the client can
//! ask one, else as `approval.unattended` says (refused, or waiting for a decision in the UI).
//!
//! The caller is the one the router's authentication layer found for the HTTP request (rmcp
//! hands the request's parts to every handler), so `/mcp` takes the same keys, sessions and
//! `auth: none` rule as the rest of the server, and the Host/Origin gate in front of it.

mod agents;
mod bridge;
mod context;
mod follow;
mod sessions;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::transport::StreamableHttpServerConfig;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::access::{AuditEvent, Caller};
use crate::domain::ConversationId;
use crate::engine::ToolOutput;
use crate::hub::{Hub, InvokeError};
use crate::runs::{CallInput, ChatInput, RunError, RunService};
use crate::tools::ToolEntry;

pub use agents::PREFIX as AGENT_PREFIX;
pub use bridge::{BridgeError, serve_stdio};
use follow::Progress;

/// The `_meta` key of a call's result naming the run it was made as.
pub const RUN_META: &str = "switchboard/run_id";
/// The `_meta` key of a call's result linking to its trace in `/debug`.
pub const TRACE_META: &str = "switchboard/trace";

/// Tools per `tools/list` page.
pub const PAGE_SIZE: usize = 100;

/// The `/mcp` server: one per request or session (cheap: it shares the hub and run service).
#[derive(Clone)]
pub struct Gateway {
    hub: Hub,
    runs: RunService,
    /// Held, never read: when the session's last handle is dropped, it cancels `session`,
    /// which ends the session's `list_changed` watcher.
    _ended: Arc<tokio_util::sync::DropGuard>,
    session: CancellationToken,
}

impl Gateway {
    fn new(hub: Hub, runs: RunService) -> Self {
        let session = CancellationToken::new();
        Self {
            hub,
            runs,
            _ended: Arc::new(session.clone().drop_guard()),
            session,
        }
    }

    /// Everything `caller` may call, in listing order: the catalog's tools their role grants,
    /// then the agents they may run.
    fn tools_for(&self, caller: &Caller) -> Vec<Tool> {
        let catalog = self.hub.catalog();
        let mut tools: Vec<Tool> = catalog
            .iter()
            .filter(|tool| caller.may_use_tool(&tool.exposed_name))
            .map(|tool| tool_of(tool))
            .collect();
        tools.extend(
            self.runs
                .agents_for(caller)
                .iter()
                .filter(|agent| {
                    catalog
                        .get(&format!("{AGENT_PREFIX}{}", agent.name))
                        .is_none()
                })
                .map(agents::tool_of),
        );
        tools
    }

    /// A catalog tool as a run of its own, answered with the tool's result as it gave it.
    async fn call_catalog_tool(
        &self,
        caller: &Caller,
        name: &str,
        arguments: Map<String, Value>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        if let Err(err) = self.hub.tool_for(caller, name) {
            let outcome = match err {
                InvokeError::Forbidden { .. } => "denied",
                _ => "failed",
            };
            self.hub.audit().record(AuditEvent::by(
                caller,
                "tool_invoke",
                Some(name.to_owned()),
                outcome,
            ));
            // Not a tool this caller has: a protocol error, as the spec asks for unknown tools.
            return Err(McpError::invalid_params(err.to_string(), None));
        }
        let attended = follow::client_elicits(context);
        let input = CallInput {
            tool: name.to_owned(),
            arguments: Value::Object(arguments),
            attended,
        };
        let started = self.runs.call_tool(caller, input).map_err(refused)?;
        let ended = follow::follow(
            &self.runs,
            caller,
            started.events,
            context,
            attended,
            Progress::OfTheTool,
        )
        .await?;
        let mut result = match started.result.get() {
            Some(output) => result_of(output),
            // Refused or failed before the tool answered: what the calling model should read.
            None => {
                CallToolResult::error(vec![ContentBlock::text(ended.error.unwrap_or_else(|| {
                    format!("the call ended {} without a result", ended.status.as_str())
                }))])
            }
        };
        let run_id = started.run_id.to_string();
        let meta = result.meta.get_or_insert_with(Default::default);
        meta.0.insert(
            TRACE_META.to_owned(),
            Value::String(trace_link(context, &run_id)),
        );
        meta.0.insert(RUN_META.to_owned(), Value::String(run_id));
        Ok(result)
    }

    /// An agent's whole run, answered with its answer, its run and a link to its trace.
    async fn call_agent(
        &self,
        caller: &Caller,
        agent: &str,
        arguments: &Map<String, Value>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let call = agents::parse(arguments).map_err(|err| McpError::invalid_params(err, None))?;
        let conversation_id = match call.conversation_id.as_deref() {
            None => None,
            Some(text) => Some(text.parse::<ConversationId>().map_err(|_| {
                McpError::invalid_params(
                    format!("`conversation_id` `{text}` is not a conversation id"),
                    None,
                )
            })?),
        };
        let attended = follow::client_elicits(context);
        let input = ChatInput {
            conversation_id,
            agent: Some(agent.to_owned()),
            message: call.message,
            attended,
            ..ChatInput::default()
        };
        let started = self.runs.start(caller, input).await.map_err(refused)?;
        let (run_id, conversation_id) = (started.run_id, started.conversation_id);
        let ended = follow::follow(
            &self.runs,
            caller,
            started.events,
            context,
            attended,
            Progress::PerStep,
        )
        .await?;
        let trace = trace_link(context, &run_id.to_string());
        Ok(agents::result(
            ended.status,
            ended.answer,
            ended.error,
            &run_id.to_string(),
            &conversation_id.to_string(),
            &trace,
        ))
    }
}

/// The `/mcp` service to mount on the router: Streamable HTTP with sessions for the
/// `initialize` era (recorded in the run service's store, so any replica on that store carries
/// a session on) and stateless for 2026-07-28. Host and Origin are checked by the router's
/// gate, not here.
pub fn service(
    hub: Hub,
    runs: RunService,
    max_body_bytes: usize,
    stop: CancellationToken,
) -> StreamableHttpService<Gateway, LocalSessionManager> {
    let mut config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(max_body_bytes)
        .with_cancellation_token(stop);
    config.session_store = Some(Arc::new(sessions::StoredSessions {
        store: runs.store().clone(),
    }));
    StreamableHttpService::new(
        move || Ok(Gateway::new(hub.clone(), runs.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

impl ServerHandler for Gateway {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_resources()
            .enable_prompts()
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
        let mut allowed = self.tools_for(&caller);
        let start = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(cursor) => parse_cursor(&cursor, allowed.len())?,
        };
        let end = (start + PAGE_SIZE).min(allowed.len());
        let more = end < allowed.len();
        allowed.truncate(end);
        let mut page = ListToolsResult::with_all_items(allowed.split_off(start));
        if more {
            page.next_cursor = Some(end.to_string());
        }
        Ok(page)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let caller = caller_of(&context)?;
        Ok(context::resources(self.hub.resources(&caller).await))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let caller = caller_of(&context)?;
        Ok(context::templates(
            self.hub.resource_templates(&caller).await,
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = caller_of(&context)?;
        let (server, uri) = context::split_uri(&request.uri)?;
        let read = self
            .hub
            .read_resource(&caller, server, uri)
            .await
            .map_err(context::error)?;
        Ok(ReadResourceResponse::Complete(context::read(server, read)))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let caller = caller_of(&context)?;
        Ok(context::prompts(self.hub.prompts(&caller).await))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let caller = caller_of(&context)?;
        let (server, name) = context::split_prompt(&request.name)?;
        let prompt = self
            .hub
            .get_prompt(&caller, server, name, request.arguments)
            .await
            .map_err(context::error)?;
        Ok(GetPromptResponse::Complete(prompt))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = caller_of(&context)?;
        let arguments = request.arguments.clone().unwrap_or_default();
        let agent = request
            .name
            .strip_prefix(AGENT_PREFIX)
            .filter(|agent| self.runs.agents().contains_key(*agent))
            .filter(|_| self.hub.catalog().get(&request.name).is_none());
        let result = match agent {
            Some(agent) => {
                self.call_agent(&caller, agent, &arguments, &context)
                    .await?
            }
            None => {
                self.call_catalog_tool(&caller, &request.name, arguments, &context)
                    .await?
            }
        };
        Ok(result.into())
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

/// The tool's result as the client gets it: as the server gave it (redacted and capped as
/// the hub caps results), without what Switchboard adds for its trace.
fn result_of(output: &ToolOutput) -> CallToolResult {
    let mut raw = output.raw.clone();
    if let Value::Object(fields) = &mut raw {
        fields.retain(|key, _| {
            matches!(
                key.as_str(),
                "content" | "structuredContent" | "isError" | "resultType" | "_meta"
            )
        });
    }
    serde_json::from_value(raw).unwrap_or_else(|_| {
        // The hub built `raw` from a result it parsed, so this is not expected; the text is
        // what a model would have read.
        let text = vec![ContentBlock::text(output.text.clone())];
        if output.is_error {
            CallToolResult::error(text)
        } else {
            CallToolResult::success(text)
        }
    })
}

/// A run that could not start, as the client hears it: what the caller cannot do is a
/// protocol error naming it; anything else is the server's.
fn refused(err: RunError) -> McpError {
    match err {
        RunError::AgentNotAllowed { .. }
        | RunError::ModelNotAllowed { .. }
        | RunError::UnknownAgent { .. }
        | RunError::EmptyMessage
        | RunError::Limited(_) => McpError::invalid_params(err.to_string(), None),
        other => McpError::internal_error(other.to_string(), None),
    }
}

/// Where a run's trace is shown, as the client reached this server (its `Host`, and the
/// scheme a proxy in front says it used).
fn trace_link(context: &RequestContext<RoleServer>, run_id: &str) -> String {
    let path = format!("/debug/runs/{run_id}");
    let Some(parts) = context.extensions.get::<axum::http::request::Parts>() else {
        return path;
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match header("host") {
        Some(host) => {
            let scheme = header("x-forwarded-proto").unwrap_or_else(|| "http".to_owned());
            format!("{scheme}://{host}{path}")
        }
        None => path,
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
