//! The tool hub: the MCP manager and the merged catalog kept in step, and the one path every
//! tool call takes (HTTP API, CLI, and later the engine): look up → validate → call → cap.
//!
//! It joins `mcp` (IO) and `tools` (pure) so neither has to know the other.

mod truncate;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rmcp::model::CallToolResult;
use serde_json::Value;
use tokio::sync::watch;

use crate::config::model::{McpServerConfig, ToolSettings};
use crate::mcp::{ApplySummary, CallOptions, ManagerSettings, McpError, McpManager, ToolsEvent};
use crate::tools::{ArgumentError, Catalog, ServerTools, ToolEntry};

pub use truncate::Truncation;

/// Why a tool call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("no tool named `{name}` in the catalog")]
    UnknownTool { name: String },
    #[error("arguments for `{tool}` do not match its input schema")]
    InvalidArguments {
        tool: String,
        errors: Vec<ArgumentError>,
    },
    #[error(transparent)]
    Mcp(#[from] McpError),
}

/// A finished call: the tool's result (possibly truncated) and how long it took.
#[derive(Debug)]
pub struct InvokeOutcome {
    pub tool: Arc<ToolEntry>,
    pub result: CallToolResult,
    pub truncated: Option<Truncation>,
    pub duration: Duration,
}

/// Cheap to clone; shares the manager and catalog.
#[derive(Clone)]
pub struct Hub {
    mcp: McpManager,
    catalog: watch::Sender<Arc<Catalog>>,
    settings: Arc<RwLock<ToolSettings>>,
}

impl Hub {
    /// A hub with no servers yet; call [`Hub::apply`] with the configured servers.
    pub fn new(manager: ManagerSettings, settings: ToolSettings) -> Self {
        let catalog = watch::channel(Arc::new(Catalog::default())).0;
        let settings = Arc::new(RwLock::new(settings));
        let sink_catalog = catalog.clone();
        let sink_settings = settings.clone();
        let sink = Arc::new(move |event: ToolsEvent| {
            let settings = sink_settings
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            apply_event(&sink_catalog, &settings, event);
        });
        Self {
            mcp: McpManager::new(manager, sink),
            catalog,
            settings,
        }
    }

    /// Start, stop and restart servers to match `servers`; new catalog limits apply to the
    /// next listing of each server.
    pub fn apply(
        &self,
        servers: &BTreeMap<String, McpServerConfig>,
        settings: ToolSettings,
    ) -> ApplySummary {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
        self.mcp.apply(servers)
    }

    /// The MCP manager, for status and shutdown.
    pub fn mcp(&self) -> &McpManager {
        &self.mcp
    }

    /// The current catalog (a cheap snapshot).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// Look up, validate, call and cap one tool call.
    ///
    /// # Errors
    /// Unknown tool, arguments that fail the input schema (nothing is sent then), or the MCP
    /// manager's errors.
    pub async fn invoke(
        &self,
        name: &str,
        mut arguments: Value,
        options: CallOptions,
    ) -> Result<InvokeOutcome, InvokeError> {
        let tool = self
            .catalog()
            .get(name)
            .cloned()
            .ok_or_else(|| InvokeError::UnknownTool {
                name: name.to_owned(),
            })?;
        tool.strip_nulls_for_optional(&mut arguments);
        tool.validate_arguments(&arguments)
            .map_err(|errors| InvokeError::InvalidArguments {
                tool: name.to_owned(),
                errors,
            })?;
        let Value::Object(arguments) = arguments else {
            // validate_arguments only accepts objects; keep the invariant visible.
            return Err(InvokeError::InvalidArguments {
                tool: name.to_owned(),
                errors: Vec::new(),
            });
        };
        let started = Instant::now();
        let result = self
            .mcp
            .call(&tool.server, &tool.tool_name, arguments, options)
            .await?;
        let duration = started.elapsed();
        let limit = self
            .settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .max_result_bytes;
        let (result, truncated) = truncate::cap_result(result, limit);
        Ok(InvokeOutcome {
            tool,
            result,
            truncated,
            duration,
        })
    }
}

fn apply_event(catalog: &watch::Sender<Arc<Catalog>>, settings: &ToolSettings, event: ToolsEvent) {
    match event {
        ToolsEvent::Listed {
            server,
            tools,
            filter,
        } => {
            let built = ServerTools::build(&server, tools.as_ref().clone(), &filter, settings);
            for dropped in built.dropped() {
                tracing::warn!(server = %server, tool = ?dropped.tool, reason = %dropped.reason, "tool left out of the catalog");
            }
            let built = Arc::new(built);
            catalog.send_modify(|current| *current = Arc::new(current.with_server(built)));
            let catalog = catalog.borrow();
            for rejected in catalog.rejected().iter().filter(|r| r.server == server) {
                tracing::warn!(server = %server, tool = ?rejected.tool, reason = %rejected.reason, "tool refused by the catalog");
            }
        }
        ToolsEvent::Removed { server } => {
            catalog.send_modify(|current| *current = Arc::new(current.without_server(&server)));
        }
    }
}
