//! The engine's [`ToolInvoker`] over the real tool hub: the catalog snapshot taken when the run
//! starts, filtered by the agent's globs, with calls going through `Hub::invoke` (so arguments
//! are validated before anything reaches an MCP server).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::inputs::PendingInputs;
use crate::access::Caller;
use crate::config::model::ToolGlobs;
use crate::domain::{ChatMessage, InputRequest, RunId, TokenUsage, ToolDefinition, ToolUpdate};
use crate::engine::tools::{CallContext, Gate};
use crate::engine::{ToolFailure, ToolInvoker, ToolOutput};
use crate::hub::{Hub, Initiator, InvokeError, arguments_hash};
use crate::llm::{ChatRequest, FinishReason, ModelRegistry, ToolChoice};
use crate::mcp::asks::{Asker, SampleAnswer, SampleRequest, ServerAsk};
use crate::mcp::{CallOptions, McpError};
use crate::tools::ToolEntry;
use crate::tools::approval::Verdict;

/// The tools one run may use, called as the run's starter.
pub struct HubTools {
    hub: Hub,
    caller: Caller,
    tools: BTreeMap<String, Arc<ToolEntry>>,
    run: Option<Arc<RunContext>>,
}

/// What a run's calls need to answer their servers' requests: the run (whose calls' requests
/// go to its person), its open questions (`None`: nobody attends the run, so questions are
/// left to each server's `elicitation` policy), and the models that serve sampling.
pub struct RunContext {
    pub run_id: RunId,
    pub inputs: Option<Arc<PendingInputs>>,
    pub models: ModelRegistry,
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
        Self {
            hub,
            caller,
            tools,
            run: None,
        }
    }

    /// The same tools, for the run `run`: its calls answer their servers' requests.
    pub fn for_run(mut self, run: RunContext) -> Self {
        self.run = Some(Arc::new(run));
        self
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

    fn gate(&self, name: &str) -> Gate {
        let Some(tool) = self.tools.get(name) else {
            // Unknown: the call fails as such when it is made.
            return Gate::Allow;
        };
        match self.hub.verdict(&self.caller, tool) {
            Verdict::Allow => Gate::Allow,
            Verdict::Ask { reason } => Gate::Ask { reason },
            Verdict::Deny { reason } => Gate::Deny { reason },
        }
    }

    fn rerun_safe(&self, name: &str) -> bool {
        // Read-only as its server is believed for: a second call changes nothing.
        self.tools.get(name).is_some_and(|tool| {
            let risk = self.hub.risk(tool);
            risk.believed && risk.read_only
        })
    }

    fn invoke(
        &self,
        name: &str,
        arguments: Value,
        context: CallContext,
    ) -> BoxFuture<'static, Result<ToolOutput, ToolFailure>> {
        let CallContext {
            timeout,
            updates,
            traceparent,
            approved,
        } = context;
        let hub = self.hub.clone();
        let caller = self.caller.clone();
        let run = self.run.clone();
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
            let (progress, progress_rx) = mpsc::channel(MAX_LOG_LINES);
            let forward_progress = forward_progress(progress_rx, updates.clone());
            let (asks, asks_rx) = mpsc::channel(4);
            let asker = run.as_ref().map(|run| Asker {
                owner: run.run_id.to_string(),
                sink: asks,
            });
            let options = CallOptions {
                progress: Some(progress),
                timeout: Some(timeout),
                traceparent,
                logs: Some(logs),
                asker,
            };
            // What a person approved is exactly what is sent: the hub checks the hash.
            let initiator = Initiator::Model {
                approved: approved.then(|| arguments_hash(&arguments)),
            };
            let call = hub.invoke_by(&caller, initiator, &name, arguments, options);
            let mut answerer = Answerer {
                hub: &hub,
                caller: &caller,
                run: run.as_deref(),
                updates: &updates,
                exchanges: Vec::new(),
                asked: 0,
            };
            let (outcome, ()) = tokio::join!(answerer.serve(call, asks_rx), forward_progress);
            let exchanges = answerer.exchanges;
            match outcome {
                Ok(outcome) => {
                    let mut raw = serde_json::to_value(&outcome.result).unwrap_or(Value::Null);
                    let mut lines = Vec::new();
                    while let Ok(line) = logged.try_recv() {
                        lines.push(Value::String(line));
                    }
                    if let Value::Object(raw) = &mut raw {
                        if !lines.is_empty() {
                            raw.insert(SERVER_LOGS.to_owned(), Value::Array(lines));
                        }
                        if !exchanges.is_empty() {
                            raw.insert(SERVER_REQUESTS.to_owned(), Value::Array(exchanges));
                        }
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
                Err(
                    err @ (InvokeError::Forbidden { .. }
                    | InvokeError::Limited(_)
                    | InvokeError::ApprovalDenied { .. }
                    | InvokeError::ApprovalRequired { .. }),
                ) => Err(ToolFailure::Refused {
                    message: err.to_string(),
                }),
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

/// The key of the act step's output under which what the server asked during the call (input
/// from the person, sampling) and how it was answered are kept (not sent to the model).
const SERVER_REQUESTS: &str = "serverRequests";

/// Progress ticks of the call, as updates, until the call drops its sender.
async fn forward_progress(
    mut progress: mpsc::Receiver<crate::domain::ToolProgress>,
    updates: mpsc::Sender<ToolUpdate>,
) {
    while let Some(tick) = progress.recv().await {
        // A full channel means the engine is behind; a dropped tick is harmless.
        let _ = updates.try_send(ToolUpdate::Progress(tick));
    }
}

/// Answers what a call's server asks while the call runs: questions go to the run's person,
/// sampling to the server's configured model under the run's caller.
struct Answerer<'a> {
    hub: &'a Hub,
    caller: &'a Caller,
    run: Option<&'a RunContext>,
    updates: &'a mpsc::Sender<ToolUpdate>,
    /// What was asked and answered, for the act step's output.
    exchanges: Vec<Value>,
    /// Requests received so far: numbers each (a sampling step's id).
    asked: u64,
}

impl Answerer<'_> {
    /// Run `call` to its end, answering the server's requests meanwhile (several may be open
    /// at once: a question and a completion, say). When the call ends, open requests are
    /// dropped: their server has stopped waiting.
    async fn serve<T>(
        &mut self,
        call: impl std::future::Future<Output = T>,
        mut asks: mpsc::Receiver<ServerAsk>,
    ) -> T {
        tokio::pin!(call);
        let mut open = FuturesUnordered::new();
        loop {
            tokio::select! {
                outcome = &mut call => return outcome,
                Some(ask) = asks.recv() => {
                    self.asked += 1;
                    open.push(answer(self.hub, self.caller, self.run, self.updates, ask, self.asked));
                }
                Some(exchange) = open.next(), if !open.is_empty() => {
                    if let Some(exchange) = exchange {
                        self.exchanges.push(exchange);
                    }
                }
            }
        }
    }
}

/// Answer one server request; what to record of it on the act step.
async fn answer(
    hub: &Hub,
    caller: &Caller,
    run: Option<&RunContext>,
    updates: &mpsc::Sender<ToolUpdate>,
    ask: ServerAsk,
    n: u64,
) -> Option<Value> {
    match ask {
        ServerAsk::Input {
            server,
            message,
            schema,
            reply,
        } => {
            // Nobody attends the run: dropping `reply` leaves it to the server's policy.
            let inputs = run?.inputs.as_ref()?;
            let (id, answer, _open) = inputs.open(schema.clone());
            let request = InputRequest {
                id: id.clone(),
                server: server.clone(),
                message: message.clone(),
                schema,
            };
            updates
                .send(ToolUpdate::InputRequested(request))
                .await
                .ok()?;
            let answer = answer.await.ok()?;
            let action = answer.action;
            let _ = updates
                .send(ToolUpdate::InputAnswered {
                    id: id.clone(),
                    action,
                })
                .await;
            let record = json!({
                "type": "elicitation",
                "id": id,
                "server": server,
                "message": message,
                "action": action.as_str(),
                "content": answer.content,
            });
            let _ = reply.send(answer);
            Some(record)
        }
        ServerAsk::Sample {
            server,
            model,
            request,
            reply,
        } => {
            let input = sample_input(&server, &request);
            let _ = updates
                .send(ToolUpdate::SampleStarted {
                    id: n,
                    model: model.clone(),
                    input,
                })
                .await;
            let served = sample(hub, caller, run, &server, &model, request).await;
            let (output, error, usage) = match &served {
                Ok((answer, usage)) => (
                    Some(json!({"text": answer.text, "stopReason": answer.stop_reason})),
                    None,
                    *usage,
                ),
                Err(reason) => (None, Some(reason.clone()), None),
            };
            let _ = updates
                .send(ToolUpdate::SampleFinished {
                    id: n,
                    output,
                    error: error.clone(),
                    usage,
                })
                .await;
            let _ = reply.send(served.map(|(answer, _)| answer));
            Some(json!({
                "type": "sampling",
                "server": server,
                "model": model,
                "error": error,
            }))
        }
    }
}

/// The sample step's input: what the server asked the model.
fn sample_input(server: &str, request: &SampleRequest) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|(assistant, text)| {
            json!({"role": if *assistant { "assistant" } else { "user" }, "content": text})
        })
        .collect();
    json!({
        "server": server,
        "systemPrompt": request.system_prompt,
        "messages": messages,
        "maxTokens": request.max_tokens,
        "temperature": request.temperature,
    })
}

/// Serve a sampling request with `model`, as `caller`: their role must allow the model, and
/// the request counts against their request rate.
async fn sample(
    hub: &Hub,
    caller: &Caller,
    run: Option<&RunContext>,
    server: &str,
    model: &str,
    request: SampleRequest,
) -> Result<(SampleAnswer, Option<TokenUsage>), String> {
    let Some(run) = run else {
        return Err("sampling is served only during a run".to_owned());
    };
    if !caller.may_use_model(model) {
        return Err(format!(
            "the role `{}` may not use the model `{model}` (the sampling model of server `{server}`)",
            caller.role()
        ));
    }
    hub.limiter()
        .request(caller)
        .map_err(|refused| format!("sampling refused: {refused}"))?;
    let client = run
        .models
        .get(Some(model))
        .and_then(|entry| entry.client())
        .map_err(|err| format!("the sampling model `{model}` cannot be used: {err}"))?;
    let mut messages = Vec::new();
    if let Some(system) = &request.system_prompt {
        messages.push(ChatMessage::system(system));
    }
    for (assistant, text) in &request.messages {
        messages.push(if *assistant {
            ChatMessage::assistant(text, Vec::new())
        } else {
            ChatMessage::user(text)
        });
    }
    let response = client
        .chat(ChatRequest {
            messages,
            tools: Vec::new(),
            tool_choice: ToolChoice::None,
            temperature: request.temperature,
            max_tokens: Some(request.max_tokens),
            traceparent: None,
        })
        .await
        .map_err(|err| format!("the sampling model `{model}` failed: {err}"))?;
    let stop_reason = match response.finish_reason {
        FinishReason::Length => "maxTokens",
        _ => "endTurn",
    };
    let usage = response.usage.map(|u| TokenUsage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
    });
    Ok((
        SampleAnswer {
            model: model.to_owned(),
            text: response.content,
            stop_reason: Some(stop_reason.to_owned()),
        },
        usage,
    ))
}

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

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::access::Identity;
    use crate::config::model::{Limits, RoleConfig, ToolSettings};
    use crate::mcp::ManagerSettings;

    fn caller_allowed(models: &[&str]) -> Caller {
        let role = RoleConfig {
            name: "narrow".to_owned(),
            admin: false,
            models: ToolGlobs::compile(models.iter().map(|m| (*m).to_owned()).collect())
                .expect("globs"),
            agents: ToolGlobs::default(),
            tools: ToolGlobs::all(),
            limits: Limits::default(),
        };
        let identity = Identity {
            user: "nora".to_owned(),
            key_id: None,
        };
        Caller::new(
            identity,
            Arc::new(role),
            Limits::default(),
            CancellationToken::new(),
        )
    }

    fn request() -> SampleRequest {
        SampleRequest {
            system_prompt: None,
            messages: vec![(false, "hi".to_owned())],
            max_tokens: 10,
            temperature: None,
        }
    }

    /// A server's sampling request spends the run's caller's model budget, so it is held to
    /// what their role may use, like every model call they make; and it needs a run.
    #[tokio::test]
    async fn sampling_is_refused_for_a_model_the_callers_role_may_not_use() {
        let settings = ManagerSettings {
            inherited_env: Vec::new(),
            child_env: Vec::new(),
            outbound: Default::default(),
            children: Default::default(),
        };
        let hub = Hub::new(settings, ToolSettings::default());
        let run = RunContext {
            run_id: RunId::new(),
            inputs: None,
            models: ModelRegistry::default(),
        };
        let caller = caller_allowed(&["small"]);
        let refused = sample(&hub, &caller, Some(&run), "everything", "big", request())
            .await
            .expect_err("a model outside the role");
        assert!(
            refused.contains("the role `narrow` may not use the model `big`")
                && refused.contains("server `everything`"),
            "{refused}"
        );
        let missing = sample(&hub, &caller, Some(&run), "everything", "small", request())
            .await
            .expect_err("no such model is configured");
        assert!(missing.contains("`small` cannot be used"), "{missing}");
        let outside = sample(&hub, &caller, None, "everything", "small", request())
            .await
            .expect_err("no run");
        assert!(outside.contains("only during a run"), "{outside}");
    }
}
