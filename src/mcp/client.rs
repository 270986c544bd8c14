//! Our side of each MCP session: the rmcp `ClientHandler` that receives the server's
//! notifications (progress, tool-list changes, logs) and routes them to whoever waits for them,
//! and answers its requests: roots from config; elicitation and sampling by the run whose call
//! is in flight (`mcp::asks`), else by the server's policy.

// Logging notifications and sampling are deprecated by SEP-2577 but servers still use them.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::collections::VecDeque;

use rmcp::model::{
    ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult,
    ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationCapability, ErrorData,
    FormElicitationCapability, Implementation, ListRootsResult, LoggingLevel,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken, ProtocolVersion,
    Root, RootsCapabilities, SamplingCapability, SamplingMessage, SamplingMessageContentBlock,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ClientHandler, RoleClient};
use tokio::sync::{Notify, mpsc, oneshot};

use super::asks::{Answerer, AskRoutes, InputAnswer, SampleRequest, ServerAsk};
use crate::config::model::{ClientFeatures, ElicitationPolicy, LogLevel};
use crate::domain::{InputAction, ToolProgress};

/// Routes progress notifications to the call that owns the progress token.
#[derive(Debug, Default)]
pub(crate) struct ProgressRoutes(Mutex<HashMap<ProgressToken, mpsc::Sender<ToolProgress>>>);

impl ProgressRoutes {
    /// Deliver progress for `token` to `sink` until the returned guard is dropped.
    pub(crate) fn register(
        self: &Arc<Self>,
        token: ProgressToken,
        sink: mpsc::Sender<ToolProgress>,
    ) -> ProgressRouteGuard {
        self.lock().insert(token.clone(), sink);
        ProgressRouteGuard {
            routes: self.clone(),
            token,
        }
    }

    /// Hand `params` to the call that owns its token (called by the transport tap, in order).
    pub(crate) fn deliver(&self, params: &ProgressNotificationParam) {
        let sink = self.lock().get(&params.progress_token).cloned();
        if let Some(sink) = sink {
            // A full channel means the consumer is behind; dropping a progress tick is harmless.
            let _ = sink.try_send(ToolProgress {
                progress: params.progress,
                total: params.total,
                message: params.message.clone(),
            });
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ProgressToken, mpsc::Sender<ToolProgress>>> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Unregisters a progress route when the call ends, however it ends.
pub(crate) struct ProgressRouteGuard {
    routes: Arc<ProgressRoutes>,
    token: ProgressToken,
}

impl Drop for ProgressRouteGuard {
    fn drop(&mut self) {
        self.routes.lock().remove(&self.token);
    }
}

/// Where a server's log messages go besides its log tail: every call of that server in flight
/// (a message that arrives during a call is shown on the step that made it; with several calls
/// in flight, on each of them, since MCP does not say which call a log message belongs to).
#[derive(Debug, Default)]
pub(crate) struct LogRoutes {
    routes: Mutex<HashMap<u64, mpsc::Sender<String>>>,
    next: std::sync::atomic::AtomicU64,
}

impl LogRoutes {
    /// Deliver log lines to `sink` until the returned guard is dropped.
    pub(crate) fn register(self: &Arc<Self>, sink: mpsc::Sender<String>) -> LogRouteGuard {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().insert(id, sink);
        LogRouteGuard {
            routes: self.clone(),
            id,
        }
    }

    fn send(&self, line: &str) {
        for sink in self.lock().values() {
            // A full channel drops the line for that call; the tail still has it.
            let _ = sink.try_send(line.to_owned());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::Sender<String>>> {
        self.routes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Unregisters a log route when the call ends, however it ends.
pub(crate) struct LogRouteGuard {
    routes: Arc<LogRoutes>,
    id: u64,
}

impl Drop for LogRouteGuard {
    fn drop(&mut self) {
        self.routes.lock().remove(&self.id);
    }
}

/// The handler rmcp calls for server-initiated messages on one session.
#[derive(Clone)]
pub(crate) struct HubClient {
    server: Arc<str>,
    info: ClientConfig,
    progress: Arc<ProgressRoutes>,
    tools_changed: Arc<Notify>,
    features: Arc<ClientFeatures>,
    logs: ServerLogs,
    log_routes: Arc<LogRoutes>,
    asks: Arc<AskRoutes>,
}

/// Where one session's server-side traffic goes: its log tail, the calls in flight that want
/// its log lines, and those that answer its requests.
pub(crate) struct Routes {
    pub(crate) logs: ServerLogs,
    pub(crate) log_routes: Arc<LogRoutes>,
    pub(crate) asks: Arc<AskRoutes>,
}

impl HubClient {
    /// A handler for `server` offering `features`; `tools_changed` is notified on
    /// `notifications/tools/list_changed`, server log messages go to the log tail and to the
    /// calls in flight, its requests to the call that can answer them (`routes`).
    pub(crate) fn new(
        server: &str,
        progress: Arc<ProgressRoutes>,
        tools_changed: Arc<Notify>,
        features: Arc<ClientFeatures>,
        routes: Routes,
    ) -> Self {
        // 2025-11-25 is what we offer when the server falls back to `initialize`; rmcp's default
        // (the newest revision) would be rejected by strict legacy servers.
        let info = ClientConfig::new(
            session_capabilities(&features),
            Implementation::new("switchboard", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE);
        Self {
            server: server.into(),
            info,
            progress,
            tools_changed,
            features,
            logs: routes.logs,
            log_routes: routes.log_routes,
            asks: routes.asks,
        }
    }

    /// The same handler declaring what it implements in the stateless 2026-07-28 era: nothing.
    /// There a server cannot send the client requests (roots, elicitation and sampling come
    /// back as `input_required` results, which the hub does not answer yet), so offering them
    /// would be a promise we do not keep.
    pub(crate) fn stateless(&self) -> Self {
        let mut handler = self.clone();
        handler.info.capabilities = ClientCapabilities::default();
        handler
    }
}

/// What we declare in `initialize` (eras with sessions): roots when some are configured, form
/// elicitation, which is always answered (by the person of the run whose call asks, else by the
/// server's `elicitation` policy), and sampling when the server has a `sampling` model (text
/// only: no tools or context inclusion in sampling).
fn session_capabilities(features: &ClientFeatures) -> ClientCapabilities {
    let mut capabilities = ClientCapabilities::default();
    if !features.roots.is_empty() {
        capabilities.roots = Some(RootsCapabilities::default());
    }
    if features.sampling.is_some() {
        capabilities.sampling = Some(SamplingCapability::default());
    }
    let mut elicitation = ElicitationCapability::new();
    elicitation.form = Some(FormElicitationCapability::new());
    capabilities.elicitation = Some(elicitation);
    capabilities
}

impl ClientHandler for HubClient {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_progress(
        &self,
        _params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        // Routed in order as the message arrives, by the transport tap (`ProgressRoutes::deliver`).
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::debug!(server = %self.server, "tool list changed");
        self.tools_changed.notify_one();
    }

    async fn on_logging_message(
        &self,
        _params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        // Taken in order as the message arrives, by the transport tap (`ServerLogSink`): rmcp
        // runs this handler on a task of its own, possibly after the answer of the call the
        // message was logged during.
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        let roots = self
            .features
            .roots
            .iter()
            .filter_map(|path| {
                let uri = url::Url::from_directory_path(path).ok()?;
                let mut root = Root::new(uri.to_string());
                root.name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                Some(root)
            })
            .collect();
        Ok(ListRootsResult::new(roots))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } = &request
        {
            match self.asks.answerer() {
                Answerer::One(sink) => {
                    let (reply, answer) = oneshot::channel();
                    let ask = ServerAsk::Input {
                        server: self.server.to_string(),
                        message: message.clone(),
                        schema: serde_json::to_value(requested_schema).unwrap_or_default(),
                        reply,
                    };
                    if sink.send(ask).await.is_ok()
                        && let Ok(answer) = answer.await
                    {
                        tracing::info!(server = %self.server, action = answer.action.as_str(), "a person answered an elicitation request");
                        return Ok(elicit_result(answer));
                    }
                    // Nobody attends the run, or its call ended unanswered: the policy answers.
                }
                Answerer::Ambiguous => tracing::warn!(
                    server = %self.server,
                    "an elicitation request arrived with calls of several runs in flight; answered by policy, since which person it is for is unknown"
                ),
                Answerer::Nobody => {}
            }
        }
        let answer = answer_elicitation(self.features.elicitation, &request);
        tracing::info!(server = %self.server, action = ?answer.action, "answered an elicitation request by policy");
        Ok(answer)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let Some(config) = &self.features.sampling else {
            return Err(ErrorData::invalid_request(
                format!(
                    "sampling is not enabled for this server (set mcpServers.{}.sampling.model)",
                    self.server
                ),
                None,
            ));
        };
        let sink = match self.asks.answerer() {
            Answerer::One(sink) => sink,
            Answerer::Nobody => {
                return Err(ErrorData::invalid_request(
                    "sampling is served only during a tool call made by a run, under that run's caller",
                    None,
                ));
            }
            Answerer::Ambiguous => {
                return Err(ErrorData::invalid_request(
                    "sampling refused: calls of several runs are in flight on this server, so whose model budget to use is unknown",
                    None,
                ));
            }
        };
        let request = sample_request(&params, config.max_tokens);
        let (reply, answer) = oneshot::channel();
        let ask = ServerAsk::Sample {
            server: self.server.to_string(),
            model: config.model.clone(),
            request,
            reply,
        };
        if sink.send(ask).await.is_err() {
            return Err(ErrorData::internal_error(
                "the tool call that asked for sampling has ended",
                None,
            ));
        }
        match answer.await {
            Ok(Ok(answer)) => {
                let mut result = CreateMessageResult::new(
                    SamplingMessage::assistant_text(answer.text),
                    answer.model,
                );
                result.stop_reason = answer.stop_reason;
                Ok(result)
            }
            Ok(Err(reason)) => Err(ErrorData::internal_error(reason, None)),
            Err(_) => Err(ErrorData::internal_error(
                "the tool call that asked for sampling has ended",
                None,
            )),
        }
    }
}

/// A person's answer in MCP's shape; content only with `accept`.
fn elicit_result(answer: InputAnswer) -> ElicitResult {
    let action = match answer.action {
        InputAction::Accept => ElicitationAction::Accept,
        InputAction::Decline => ElicitationAction::Decline,
        InputAction::Cancel => ElicitationAction::Cancel,
    };
    let result = ElicitResult::new(action);
    match (answer.action, answer.content) {
        (InputAction::Accept, Some(content)) => result.with_content(content),
        _ => result,
    }
}

/// A sampling request in the terms a chat model takes: text, with other content described, and
/// `maxTokens` lowered to the server's `sampling.max_tokens`.
fn sample_request(params: &CreateMessageRequestParams, max_tokens: u32) -> SampleRequest {
    let messages = params
        .messages
        .iter()
        .map(|message| {
            let text: Vec<String> = message
                .content
                .clone()
                .into_vec()
                .into_iter()
                .map(|block| match block {
                    SamplingMessageContentBlock::Text(text) => text.text,
                    SamplingMessageContentBlock::Image(image) => {
                        format!("[image {} not forwarded]", image.mime_type)
                    }
                    SamplingMessageContentBlock::Audio(audio) => {
                        format!("[audio {} not forwarded]", audio.mime_type)
                    }
                    _ => "[content of a kind sampling does not forward]".to_owned(),
                })
                .collect();
            (
                message.role == rmcp::model::Role::Assistant,
                text.join("\n"),
            )
        })
        .collect();
    SampleRequest {
        system_prompt: params.system_prompt.clone(),
        messages,
        max_tokens: params.max_tokens.clamp(1, max_tokens),
        temperature: params.temperature.map(f64::from),
    }
}

/// The answer `policy` gives `request` with nobody to ask: decline, or (with `defaults`) accept
/// a form whose every required field has a default, with every default it has.
pub(crate) fn answer_elicitation(
    policy: ElicitationPolicy,
    request: &ElicitRequestParams,
) -> ElicitResult {
    let decline = ElicitResult::new(ElicitationAction::Decline);
    let ElicitRequestParams::FormElicitationParams {
        requested_schema, ..
    } = request
    else {
        return decline;
    };
    if policy != ElicitationPolicy::Defaults {
        return decline;
    }
    let schema = serde_json::to_value(requested_schema).unwrap_or_default();
    let properties = schema
        .get("properties")
        .and_then(serde_json::Value::as_object);
    let defaults: serde_json::Map<String, serde_json::Value> = properties
        .into_iter()
        .flatten()
        .filter_map(|(name, property)| Some((name.clone(), property.get("default")?.clone())))
        .collect();
    let required = schema
        .get("required")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str);
    if required
        .into_iter()
        .any(|name| !defaults.contains_key(name))
    {
        return decline;
    }
    ElicitResult::new(ElicitationAction::Accept).with_content(serde_json::Value::Object(defaults))
}

impl HubClient {
    /// Where the transport tap delivers this server's log messages.
    /// Where the transport tap routes this server's progress notifications.
    pub(crate) fn progress_routes(&self) -> Arc<ProgressRoutes> {
        self.progress.clone()
    }

    pub(crate) fn log_sink(&self) -> ServerLogSink {
        ServerLogSink {
            server: self.server.clone(),
            min: self.features.log_level,
            logs: self.logs.clone(),
            routes: self.log_routes.clone(),
        }
    }
}

/// Records a server's log messages (`notifications/message`): filtered by `log_level`, written
/// to our log, kept in the server's tail and handed to every call of the server in flight.
/// Called by the transport tap as messages arrive, so a message logged before a call's answer
/// reaches that call.
#[derive(Clone)]
pub(crate) struct ServerLogSink {
    server: Arc<str>,
    min: Option<LogLevel>,
    logs: ServerLogs,
    routes: Arc<LogRoutes>,
}

impl ServerLogSink {
    /// Record one message.
    pub(crate) fn record(&self, params: &LoggingMessageNotificationParam) {
        let level = log_level(params.level);
        if self.min.is_some_and(|min| level < min) {
            return;
        }
        let text = match &params.data {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let line = match &params.logger {
            Some(logger) => format!("[{}] {logger}: {text}", level.name()),
            None => format!("[{}] {text}", level.name()),
        };
        tracing::info!(server = %self.server, level = level.name(), message = %text, "mcp server log");
        self.routes.send(&line);
        self.logs.push(line);
    }
}

/// rmcp's level as ours.
fn log_level(level: LoggingLevel) -> LogLevel {
    match level {
        LoggingLevel::Debug => LogLevel::Debug,
        LoggingLevel::Info => LogLevel::Info,
        LoggingLevel::Notice => LogLevel::Notice,
        LoggingLevel::Warning => LogLevel::Warning,
        LoggingLevel::Error => LogLevel::Error,
        LoggingLevel::Critical => LogLevel::Critical,
        LoggingLevel::Alert => LogLevel::Alert,
        LoggingLevel::Emergency => LogLevel::Emergency,
    }
}

/// Ours as rmcp's, for `logging/setLevel`.
pub(crate) fn wire_level(level: LogLevel) -> LoggingLevel {
    match level {
        LogLevel::Debug => LoggingLevel::Debug,
        LogLevel::Info => LoggingLevel::Info,
        LogLevel::Notice => LoggingLevel::Notice,
        LogLevel::Warning => LoggingLevel::Warning,
        LogLevel::Error => LoggingLevel::Error,
        LogLevel::Critical => LoggingLevel::Critical,
        LogLevel::Alert => LoggingLevel::Alert,
        LogLevel::Emergency => LoggingLevel::Emergency,
    }
}

/// The last log messages a server sent (`notifications/message`), for the status API: at most
/// [`ServerLogs::KEPT`] lines, each cut to a few hundred characters and made printable.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerLogs(Arc<Mutex<VecDeque<String>>>);

impl ServerLogs {
    /// Lines kept.
    pub(crate) const KEPT: usize = 40;
    /// Longest line kept, in characters.
    const MAX_CHARS: usize = 400;

    fn push(&self, line: String) {
        let line =
            crate::mcp::error::printable(&line.chars().take(Self::MAX_CHARS).collect::<String>());
        let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == Self::KEPT {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The kept lines, oldest first.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn form(schema: serde_json::Value) -> ElicitRequestParams {
        serde_json::from_value(json!({
            "mode": "form",
            "message": "Who are you?",
            "requestedSchema": schema,
        }))
        .expect("a form request")
    }

    #[test]
    fn elicitation_is_declined_unless_defaults_cover_every_required_field() {
        let covered = form(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "default": "Ada"},
                "age": {"type": "integer", "default": 36},
                "nick": {"type": "string"},
            },
            "required": ["name"],
        }));
        let accepted = answer_elicitation(ElicitationPolicy::Defaults, &covered);
        assert_eq!(accepted.action, ElicitationAction::Accept);
        assert_eq!(accepted.content, Some(json!({"name": "Ada", "age": 36})));
        assert_eq!(
            answer_elicitation(ElicitationPolicy::Decline, &covered).action,
            ElicitationAction::Decline
        );
        let uncovered = form(json!({
            "type": "object",
            "properties": {"token": {"type": "string"}},
            "required": ["token"],
        }));
        assert_eq!(
            answer_elicitation(ElicitationPolicy::Defaults, &uncovered).action,
            ElicitationAction::Decline
        );
    }
}
