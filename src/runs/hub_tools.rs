//! The engine's [`ToolInvoker`] over the real tool hub: the catalog snapshot taken when the run
//! starts, filtered by the agent's globs, with calls going through `Hub::invoke` (so arguments
//! are validated before anything reaches an MCP server).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::access::Caller;
use crate::config::model::ToolGlobs;
use crate::domain::{ToolDefinition, ToolProgress};
use crate::engine::{ToolFailure, ToolInvoker, ToolOutput};
use crate::hub::{Hub, InvokeError};
use crate::mcp::{CallOptions, McpError};
use crate::tools::ToolEntry;

/// The tools one run may use, called as the run's starter.
pub struct HubTools {
    hub: Hub,
    caller: Caller,
    tools: BTreeMap<String, Arc<ToolEntry>>,
}

impl HubTools {
    /// Tools of the current catalog that `caller`'s role grants and whose exposed names match
    /// `globs` (compiled when the config was loaded, so starting a run compiles nothing;
    /// [`ToolGlobs::all`] for every tool): role ∩ agent ∩ the servers' own filters (already
    /// applied to the catalog).
    pub fn new(hub: Hub, caller: Caller, globs: &ToolGlobs) -> Self {
        let tools = hub
            .catalog()
            .iter()
            .filter(|t| globs.is_match(&t.exposed_name) && caller.may_use_tool(&t.exposed_name))
            .map(|t| (t.exposed_name.clone(), t.clone()))
            .collect();
        Self { hub, caller, tools }
    }
}

impl ToolInvoker for HubTools {
    fn definitions(&self) -> Vec<ToolDefinition> {
        self.tools
            .values()
            .map(|tool| ToolDefinition {
                name: tool.exposed_name.clone(),
                description: tool.description.clone(),
                parameters: tool
                    .openai_tool
                    .pointer("/function/parameters")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(tool.input_schema.as_ref().clone())),
                strict: false,
            })
            .collect()
    }

    fn server_of(&self, name: &str) -> Option<String> {
        self.tools.get(name).map(|t| t.server.clone())
    }

    fn validate(&self, name: &str, arguments: &Value) -> Result<(), ToolFailure> {
        let tool = self
            .tools
            .get(name)
            .ok_or_else(|| ToolFailure::UnknownTool {
                available: self.tools.keys().cloned().collect(),
            })?;
        let mut arguments = arguments.clone();
        tool.strip_nulls_for_optional(&mut arguments);
        tool.validate_arguments(&arguments)
            .map_err(|errors| ToolFailure::InvalidArguments {
                errors: errors.iter().map(ToString::to_string).collect(),
            })
    }

    fn invoke(
        &self,
        name: &str,
        arguments: Value,
        timeout: Duration,
        progress: mpsc::Sender<ToolProgress>,
        traceparent: Option<String>,
    ) -> BoxFuture<'static, Result<ToolOutput, ToolFailure>> {
        let hub = self.hub.clone();
        let caller = self.caller.clone();
        let name = name.to_owned();
        let known = self.tools.contains_key(&name);
        let available: Vec<String> = if known {
            Vec::new()
        } else {
            self.tools.keys().cloned().collect()
        };
        async move {
            if !known {
                return Err(ToolFailure::UnknownTool { available });
            }
            let (logs, mut logged) = mpsc::channel(MAX_LOG_LINES);
            let options = CallOptions {
                progress: Some(progress),
                timeout: Some(timeout),
                traceparent,
                logs: Some(logs),
            };
            let outcome = hub.invoke(&caller, &name, arguments, options).await;
            match outcome {
                Ok(outcome) => {
                    let mut raw = serde_json::to_value(&outcome.result).unwrap_or(Value::Null);
                    let mut lines = Vec::new();
                    while let Ok(line) = logged.try_recv() {
                        lines.push(Value::String(line));
                    }
                    if !lines.is_empty()
                        && let Value::Object(raw) = &mut raw
                    {
                        raw.insert(SERVER_LOGS.to_owned(), Value::Array(lines));
                    }
                    Ok(ToolOutput {
                        text: result_text(&outcome.result),
                        raw,
                        is_error: outcome.result.is_error == Some(true),
                        server: outcome.tool.server.clone(),
                    })
                }
                Err(InvokeError::UnknownTool { .. }) => Err(ToolFailure::UnknownTool {
                    available: Vec::new(),
                }),
                Err(err @ (InvokeError::Forbidden { .. } | InvokeError::Limited(_))) => {
                    Err(ToolFailure::Refused {
                        message: err.to_string(),
                    })
                }
                Err(InvokeError::InvalidArguments { errors, .. }) => {
                    Err(ToolFailure::InvalidArguments {
                        errors: errors.iter().map(ToString::to_string).collect(),
                    })
                }
                Err(InvokeError::InvalidOutput { errors, .. }) => Err(ToolFailure::InvalidOutput {
                    errors: errors.iter().map(ToString::to_string).collect(),
                }),
                Err(InvokeError::Mcp(McpError::Timeout { timeout, .. })) => {
                    Err(ToolFailure::Timeout { after: timeout })
                }
                Err(InvokeError::Mcp(err)) => Err(ToolFailure::Unavailable {
                    message: err.to_string(),
                }),
            }
        }
        .boxed()
    }
}

/// Most server log lines kept on one act step (the server's log tail has the rest).
const MAX_LOG_LINES: usize = 64;

/// The key of the act step's output under which the server's log messages during the call are
/// kept, beside the MCP result's own fields (not sent to the model).
const SERVER_LOGS: &str = "serverLogs";

/// What the model reads of a tool result: text blocks, else structured content, media described.
pub fn result_text(result: &CallToolResult) -> String {
    let mut parts = Vec::new();
    for block in &result.content {
        match block {
            ContentBlock::Text(text) => parts.push(text.text.clone()),
            ContentBlock::Image(image) => parts.push(format!(
                "[image {} ({} base64 characters)]",
                image.mime_type,
                image.data.len()
            )),
            ContentBlock::Audio(audio) => parts.push(format!(
                "[audio {} ({} base64 characters)]",
                audio.mime_type,
                audio.data.len()
            )),
            ContentBlock::Resource(resource) => parts.push(
                serde_json::to_value(&resource.resource)
                    .ok()
                    .and_then(|v| v.get("text").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_else(|| "[embedded resource]".to_owned()),
            ),
            ContentBlock::ResourceLink(link) => parts.push(format!("[resource {}]", link.uri)),
            _ => parts.push("[content of a kind this version does not show]".to_owned()),
        }
    }
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        return structured.to_string();
    }
    parts.join("\n")
}
