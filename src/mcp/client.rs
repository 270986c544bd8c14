//! Our side of each MCP session: the rmcp `ClientHandler` that receives the server's
//! notifications (progress, tool-list changes, logs) and routes them to whoever waits for them.

// Logging notifications are deprecated by SEP-2577 but servers still send them; we log them.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    ClientCapabilities, ClientConfig, Implementation, LoggingMessageNotificationParam,
    ProgressNotificationParam, ProgressToken, ProtocolVersion,
};
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient};
use tokio::sync::{Notify, mpsc};

use crate::domain::ToolProgress;

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

/// The handler rmcp calls for server-initiated messages on one session.
#[derive(Clone)]
pub(crate) struct HubClient {
    server: Arc<str>,
    info: ClientConfig,
    progress: Arc<ProgressRoutes>,
    tools_changed: Arc<Notify>,
}

impl HubClient {
    /// A handler for `server`; `tools_changed` is notified on `notifications/tools/list_changed`.
    pub(crate) fn new(
        server: &str,
        progress: Arc<ProgressRoutes>,
        tools_changed: Arc<Notify>,
    ) -> Self {
        // 2025-11-25 is what we offer when the server falls back to `initialize`; rmcp's default
        // (the newest revision) would be rejected by strict legacy servers.
        let info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("switchboard", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE);
        Self {
            server: server.into(),
            info,
            progress,
            tools_changed,
        }
    }
}

impl ClientHandler for HubClient {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let sink = self.progress.lock().get(&params.progress_token).cloned();
        if let Some(sink) = sink {
            // A full channel means the consumer is behind; dropping a progress tick is harmless.
            let _ = sink.try_send(ToolProgress {
                progress: params.progress,
                total: params.total,
                message: params.message,
            });
        }
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::debug!(server = %self.server, "tool list changed");
        self.tools_changed.notify_one();
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        tracing::debug!(server = %self.server, level = ?params.level, data = %params.data, "mcp server log");
    }
}
