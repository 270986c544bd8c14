//! The catalog and its servers: `GET /api/tools`, `POST /api/tools/{name}/invoke` and
//! `GET /api/mcp/servers`, and `switchboard tools --json`, which prints the same servers.
//!
//! The MCP protocol's own values (a tool's `annotations`, a call's `result`) go out as rmcp
//! serializes them, in MCP's camelCase: clients that know MCP read them as MCP defines them.
//! The server and CLI items are public because the command line prints them too.

use rmcp::model::{CallToolResult, ToolAnnotations};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::access::Caller;
use crate::hub::{self, InvokeOutcome};
use crate::mcp::{ConnectionState, ServerStatus};
use crate::tools::approval::{Risk, Verdict};
use crate::tools::{Catalog, DroppedTool, Steering, ToolEntry};

/// `GET /api/tools`: the catalog models see, plus the tools left out and why.
#[derive(Debug, Serialize)]
pub(in crate::api) struct ToolList<'a> {
    tools: Vec<Tool<'a>>,
    dropped: Vec<Dropped<'a>>,
}

/// One tool of the catalog: its names, origin, schemas, and what models are sent for it.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Tool<'a> {
    /// The name models call (`<server>__<tool>`).
    name: &'a str,
    server: &'a str,
    /// The name the server listed it under.
    tool: &'a str,
    title: Option<&'a str>,
    description: &'a str,
    input_schema: &'a Map<String, Value>,
    output_schema: Option<&'a Map<String, Value>>,
    annotations: Option<&'a ToolAnnotations>,
    /// The OpenAI function tool as sent to models, non-strict.
    openai: &'a Value,
    /// The strict form, when the schema can be expressed that way.
    openai_strict: Option<&'a Value>,
    /// Set when the description steers the model around other tools: shown as a warning.
    steering: Option<SteeringWarning<'a>>,
    /// What the approval policy says of a model calling it for this caller, and whether its
    /// annotations are believed (an untrusted server's `readOnlyHint` is not shown as such).
    approval: ApprovalView,
}

/// The approval policy's view of one tool, for one caller.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(in crate::api) struct ApprovalView {
    /// `allow`, `ask` or `deny`.
    action: &'static str,
    /// Why `ask` or `deny`.
    reason: Option<String>,
    /// Whether the server is trusted for its annotations.
    annotations_believed: bool,
}

impl ApprovalView {
    /// The view of `verdict` for a tool whose risk is `risk`.
    pub(in crate::api) fn new(verdict: Verdict, risk: Risk) -> Self {
        let (action, reason) = match verdict {
            Verdict::Allow => ("allow", None),
            Verdict::Ask { reason } => ("ask", Some(reason)),
            Verdict::Deny { reason } => ("deny", Some(reason)),
        };
        Self {
            action,
            reason,
            annotations_believed: risk.believed,
        }
    }
}

/// A tool description flagged as steering the model around other tools.
#[derive(Debug, Serialize)]
pub struct SteeringWarning<'a> {
    /// The exposed name of the flagged tool.
    tool: &'a str,
    /// What the description does, in words.
    why: &'a str,
    /// The text of the description that matched.
    matched: &'a str,
}

impl<'a> SteeringWarning<'a> {
    fn new(tool: &'a ToolEntry, found: &'a Steering) -> Self {
        Self {
            tool: &tool.exposed_name,
            why: &found.why,
            matched: &found.matched,
        }
    }
}

/// A tool the catalog left out.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Dropped<'a> {
    server: &'a str,
    /// As the server listed it (may be empty or odd: it is untrusted).
    tool: &'a str,
    /// For operators.
    reason: String,
}

/// The answer of `POST /api/tools/{name}/invoke`.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Invoked<'a> {
    tool: &'a str,
    server: &'a str,
    duration_ms: f64,
    /// Present when the result was cut to `tools.max_result_bytes`.
    truncated: Option<Truncation>,
    result: &'a CallToolResult,
}

/// How big a cut result really was.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Truncation {
    original_bytes: usize,
    limit_bytes: usize,
}

/// `GET /api/mcp/servers`: every configured server.
#[derive(Debug, Serialize)]
pub(in crate::api) struct ServerList<'a> {
    pub servers: Vec<Server<'a>>,
}

/// One configured MCP server and its health, as the API lists it and `switchboard tools --json`
/// prints it.
#[derive(Debug, Serialize)]
pub struct Server<'a> {
    name: &'a str,
    /// `stdio`, `streamable-http` or `sse`.
    transport: &'static str,
    status: ServerState,
    /// Negotiated at the last connection.
    protocol_version: Option<&'a str>,
    /// Tools the server listed, before filters and schema admission; `GET /api/tools` has the
    /// ones the catalog kept.
    tool_count: usize,
    restarts: u64,
    consecutive_failures: u32,
    last_error: Option<&'a str>,
    /// The last lines a stdio server wrote to stderr.
    stderr_tail: &'a [String],
    /// The last log messages the server sent over MCP, `[level] logger: text`.
    log_tail: &'a [String],
    /// OS process id of a stdio server's current child, for operators.
    pid: Option<u32>,
    /// Something to know about a ready server that is not an error (it offers no tools, say).
    note: Option<&'a str>,
    /// Tools this server listed that the catalog left out, each with its reason (a malformed
    /// entry, a refused schema, a filter): the rest of its tools are offered.
    refused_tools: Vec<Dropped<'a>>,
    /// Offered tools of this server whose descriptions steer the model around other tools.
    steering: Vec<SteeringWarning<'a>>,
    /// Tools held out by their pins until an admin accepts them: the definition in force
    /// (`null` for a tool never accepted) beside the one the server now lists.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    held_tools: Vec<HeldTool>,
}

/// A tool held for review, its two definitions side by side.
#[derive(Debug, Serialize)]
pub struct HeldTool {
    tool: String,
    accepted: Option<Value>,
    pending: Option<Value>,
}

impl HeldTool {
    /// The view of `tool`'s pins.
    pub fn new(tool: String, pinned: crate::domain::Pinned) -> Self {
        Self {
            tool,
            accepted: pinned.accepted.map(|p| p.definition),
            pending: pinned.pending.map(|p| p.definition),
        }
    }
}

/// Where a server is in its lifecycle, as the API and CLI name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    /// `enabled: false`; never started.
    Disabled,
    /// First connection attempt in progress.
    Connecting,
    /// Connected; calls are served.
    Ready,
    /// Lost or failed; retrying with backoff.
    Reconnecting,
    /// Too many consecutive failures; retried slowly.
    Failed,
    /// Removed by a reload and being shut down; listed until its process is gone.
    Stopping,
    /// Removed or shut down.
    Stopped,
}

/// What `switchboard tools --json` prints: the servers as `GET /api/mcp/servers` lists them,
/// and each tool in short (the API has the schemas).
#[derive(Debug, Serialize)]
pub struct ToolsReport<'a> {
    servers: Vec<Server<'a>>,
    tools: Vec<ToolSummary<'a>>,
}

/// A tool of the catalog in short, for the command line.
#[derive(Debug, Serialize)]
pub struct ToolSummary<'a> {
    name: &'a str,
    server: &'a str,
    tool: &'a str,
    description: &'a str,
}

impl<'a> ToolList<'a> {
    /// The listing of `catalog` as `caller` may see it: the tools its role grants; the tools
    /// the catalog refused (with server names and reasons) only for admins.
    /// `judge` gives each tool's approval view for `caller`.
    pub(in crate::api) fn new(
        catalog: &'a Catalog,
        caller: &Caller,
        judge: impl Fn(&ToolEntry) -> ApprovalView,
    ) -> Self {
        Self {
            tools: catalog
                .iter()
                .filter(|tool| caller.may_use_tool(&tool.exposed_name))
                .map(|tool| Tool::new(tool, catalog, judge(tool)))
                .collect(),
            dropped: if caller.is_admin() {
                catalog.dropped().map(Dropped::from).collect()
            } else {
                Vec::new()
            },
        }
    }
}

impl<'a> Tool<'a> {
    fn new(tool: &'a ToolEntry, catalog: &'a Catalog, approval: ApprovalView) -> Self {
        Self {
            approval,
            steering: catalog
                .steering(&tool.exposed_name)
                .map(|found| SteeringWarning::new(tool, found)),
            name: &tool.exposed_name,
            server: &tool.server,
            tool: &tool.tool_name,
            title: tool.title.as_deref(),
            description: &tool.description,
            input_schema: &tool.input_schema,
            output_schema: tool.output_schema.as_deref(),
            annotations: tool.annotations.as_ref(),
            openai: &tool.openai_tool,
            openai_strict: tool.openai_strict_tool.as_ref(),
        }
    }
}

impl<'a> From<&'a DroppedTool> for Dropped<'a> {
    fn from(dropped: &'a DroppedTool) -> Self {
        Self {
            server: &dropped.server,
            tool: &dropped.tool,
            reason: dropped.reason.to_string(),
        }
    }
}

impl<'a> From<&'a InvokeOutcome> for Invoked<'a> {
    fn from(outcome: &'a InvokeOutcome) -> Self {
        Self {
            tool: &outcome.tool.exposed_name,
            server: &outcome.tool.server,
            duration_ms: outcome.duration.as_secs_f64() * 1000.0,
            truncated: outcome.truncated.as_ref().map(Truncation::from),
            result: &outcome.result,
        }
    }
}

impl From<&hub::Truncation> for Truncation {
    fn from(truncation: &hub::Truncation) -> Self {
        Self {
            original_bytes: truncation.original_bytes,
            limit_bytes: truncation.limit_bytes,
        }
    }
}

impl<'a> Server<'a> {
    /// `status` with the tools of this server that `catalog` left out.
    pub fn new(status: &'a ServerStatus, catalog: &'a Catalog) -> Self {
        Self {
            name: &status.name,
            transport: status.transport,
            status: ServerState::from(status.status),
            protocol_version: status.protocol_version.as_deref(),
            tool_count: status.tool_count,
            restarts: status.restarts,
            consecutive_failures: status.consecutive_failures,
            last_error: status.last_error.as_deref(),
            stderr_tail: &status.stderr_tail,
            log_tail: &status.log_tail,
            pid: status.pid,
            note: status.note.as_deref(),
            refused_tools: catalog
                .dropped()
                .filter(|dropped| dropped.server == status.name)
                .map(Dropped::from)
                .collect(),
            steering: catalog
                .flagged()
                .filter(|(tool, _)| tool.server == status.name)
                .map(|(tool, found)| SteeringWarning::new(tool, found))
                .collect(),
            held_tools: Vec::new(),
        }
    }

    /// This server with its tools held for review.
    #[must_use]
    pub fn with_held(mut self, held: Vec<HeldTool>) -> Self {
        self.held_tools = held;
        self
    }
}

impl ServerState {
    /// The name it goes on the wire as, for text that shows the same word.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Disabled => "disabled",
            ServerState::Connecting => "connecting",
            ServerState::Ready => "ready",
            ServerState::Reconnecting => "reconnecting",
            ServerState::Failed => "failed",
            ServerState::Stopping => "stopping",
            ServerState::Stopped => "stopped",
        }
    }
}

impl From<ConnectionState> for ServerState {
    fn from(state: ConnectionState) -> Self {
        match state {
            ConnectionState::Disabled => ServerState::Disabled,
            ConnectionState::Connecting => ServerState::Connecting,
            ConnectionState::Ready => ServerState::Ready,
            ConnectionState::Reconnecting => ServerState::Reconnecting,
            ConnectionState::Failed => ServerState::Failed,
            ConnectionState::Stopping => ServerState::Stopping,
            ConnectionState::Stopped => ServerState::Stopped,
        }
    }
}

impl<'a> ToolsReport<'a> {
    /// The report of `servers` and `catalog`.
    pub fn new(servers: &'a [ServerStatus], catalog: &'a Catalog) -> Self {
        Self {
            servers: servers
                .iter()
                .map(|status| Server::new(status, catalog))
                .collect(),
            tools: catalog
                .iter()
                .map(|tool| ToolSummary::from(&**tool))
                .collect(),
        }
    }
}

impl<'a> From<&'a ToolEntry> for ToolSummary<'a> {
    fn from(tool: &'a ToolEntry) -> Self {
        Self {
            name: &tool.exposed_name,
            server: &tool.server,
            tool: &tool.tool_name,
            description: &tool.description,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::access::Caller;

    use std::sync::Arc;
    use std::time::Duration;

    use rmcp::model::{CallToolResult, ContentBlock, Tool, ToolAnnotations};
    use serde_json::{Value, json};

    use super::{Invoked, Server, ServerList, ServerState, ToolList, ToolsReport};
    use crate::config::model::{ToolFilter, ToolSettings};
    use crate::hub::{InvokeOutcome, Truncation};
    use crate::mcp::{ConnectionState, ServerStatus};
    use crate::tools::{Catalog, ServerTools};

    fn object(value: Value) -> Arc<serde_json::Map<String, Value>> {
        let Value::Object(map) = value else {
            panic!("a test schema is an object")
        };
        Arc::new(map)
    }

    fn settings() -> ToolSettings {
        ToolSettings {
            max_result_bytes: 1 << 18,
            max_tools_per_server: 256,
            max_description_chars: 2048,
            ..ToolSettings::default()
        }
    }

    /// `calc` with `add` (title, output schema, annotations) and `rm` (denied).
    fn catalog() -> Catalog {
        let add = Tool::new(
            "add",
            "Adds two numbers.",
            object(json!({"type": "object", "properties": {"a": {"type": "number"}}})),
        )
        .with_title("Add")
        .with_raw_output_schema(object(json!({"type": "object"})))
        .with_annotations(ToolAnnotations::new().read_only(true));
        let rm = Tool::new("rm", "Removes.", object(json!({"type": "object"})));
        let filter = ToolFilter {
            allow: Vec::new(),
            deny: vec!["r*".to_owned()],
        };
        let calc = ServerTools::build("calc", vec![add, rm], &filter, &settings());
        Catalog::merge([Arc::new(calc)])
    }

    fn status() -> ServerStatus {
        ServerStatus {
            name: "calc".to_owned(),
            transport: "stdio",
            status: ConnectionState::Reconnecting,
            protocol_version: Some("2025-06-18".to_owned()),
            tool_count: 3,
            restarts: 1,
            consecutive_failures: 2,
            last_error: Some("exited with status 1".to_owned()),
            stderr_tail: vec!["panic".to_owned()],
            log_tail: Vec::new(),
            pid: Some(42),
            note: None,
        }
    }

    fn status_json() -> Value {
        json!({
            "name": "calc",
            "transport": "stdio",
            "status": "reconnecting",
            "protocol_version": "2025-06-18",
            "tool_count": 3,
            "restarts": 1,
            "consecutive_failures": 2,
            "last_error": "exited with status 1",
            "stderr_tail": ["panic"],
            "log_tail": [],
            "pid": 42,
            "note": null,
            "refused_tools": [],
            "steering": [],
        })
    }

    fn allow_all(_: &crate::tools::ToolEntry) -> super::ApprovalView {
        super::ApprovalView {
            action: "allow",
            reason: None,
            annotations_believed: true,
        }
    }

    #[test]
    fn a_tool_has_its_origin_schemas_and_provider_payloads() {
        let catalog = catalog();
        let entry = catalog.get("calc__add").expect("listed");
        assert_eq!(
            serde_json::to_value(ToolList::new(&catalog, &Caller::local(), allow_all)).unwrap(),
            json!({
                "tools": [{
                    "name": "calc__add",
                    "server": "calc",
                    "tool": "add",
                    "title": "Add",
                    "description": "Adds two numbers.",
                    "input_schema": {"type": "object", "properties": {"a": {"type": "number"}}},
                    "output_schema": {"type": "object"},
                    "annotations": {"readOnlyHint": true},
                    "openai": entry.openai_tool,
                    "openai_strict": entry.openai_strict_tool,
                    "steering": null,
                    "approval": {"action": "allow", "reason": null, "annotations_believed": true},
                }],
                "dropped": [{
                    "server": "calc",
                    "tool": "rm",
                    "reason": "denied by tools.deny pattern \"r*\"",
                }],
            })
        );
        assert_eq!(entry.openai_tool["type"], "function");
        assert_eq!(
            entry.openai_strict_tool.as_ref().unwrap()["function"]["strict"],
            true
        );
    }

    #[test]
    fn a_bare_tool_has_nulls_for_what_it_lacks() {
        let tool = Tool::new("echo", "", object(json!({"type": "object"})));
        let tools = ServerTools::build("t", vec![tool], &ToolFilter::default(), &settings());
        let catalog = Catalog::merge([Arc::new(tools)]);
        let json =
            serde_json::to_value(ToolList::new(&catalog, &Caller::local(), allow_all)).unwrap();
        let json = &json["tools"][0];
        assert_eq!(json["title"], Value::Null);
        assert_eq!(json["output_schema"], Value::Null);
        assert_eq!(json["annotations"], Value::Null);
        assert_eq!(json["description"], "");
    }

    #[test]
    fn an_invoke_answer_has_the_result_as_mcp_sent_it() {
        let catalog = catalog();
        let outcome = InvokeOutcome {
            tool: catalog.get("calc__add").expect("listed").clone(),
            result: CallToolResult::success(vec![ContentBlock::text("4")]),
            truncated: Some(Truncation {
                original_bytes: 300_000,
                limit_bytes: 262_144,
            }),
            duration: Duration::from_micros(1_500),
        };
        let expected = json!({
            "tool": "calc__add",
            "server": "calc",
            "duration_ms": 1.5,
            "truncated": {"original_bytes": 300_000, "limit_bytes": 262_144},
            "result": {
                "content": [{"type": "text", "text": "4"}],
                "isError": false,
                "resultType": "complete",
            },
        });
        assert_eq!(
            serde_json::to_value(Invoked::from(&outcome)).unwrap(),
            expected
        );
        let whole = InvokeOutcome {
            truncated: None,
            ..outcome
        };
        assert_eq!(
            serde_json::to_value(Invoked::from(&whole)).unwrap()["truncated"],
            Value::Null
        );
    }

    #[test]
    fn servers_are_listed_with_their_state() {
        let statuses = [status()];
        let catalog = Catalog::default();
        let list = ServerList {
            servers: statuses
                .iter()
                .map(|status| Server::new(status, &catalog))
                .collect(),
        };
        assert_eq!(
            serde_json::to_value(list).unwrap(),
            json!({ "servers": [status_json()] })
        );
        for (state, name) in [
            (ConnectionState::Disabled, "disabled"),
            (ConnectionState::Connecting, "connecting"),
            (ConnectionState::Ready, "ready"),
            (ConnectionState::Reconnecting, "reconnecting"),
            (ConnectionState::Failed, "failed"),
            (ConnectionState::Stopping, "stopping"),
            (ConnectionState::Stopped, "stopped"),
        ] {
            let state = ServerState::from(state);
            assert_eq!(serde_json::to_value(state).unwrap(), json!(name));
            assert_eq!(state.as_str(), name);
        }
    }

    #[test]
    fn the_cli_prints_servers_as_listed_and_tools_in_short() {
        let catalog = catalog();
        let statuses = [status()];
        let mut server = status_json();
        server["refused_tools"] = json!([{
            "server": "calc",
            "tool": "rm",
            "reason": "denied by tools.deny pattern \"r*\"",
        }]);
        assert_eq!(
            serde_json::to_value(ToolsReport::new(&statuses, &catalog)).unwrap(),
            json!({
                "servers": [server],
                "tools": [{
                    "name": "calc__add",
                    "server": "calc",
                    "tool": "add",
                    "description": "Adds two numbers.",
                }],
            })
        );
    }
}
