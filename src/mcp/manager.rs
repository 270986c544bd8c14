//! The MCP client manager: owns one supervisor per configured server, applies config changes as
//! a diff (start added, stop removed, restart changed, leave the rest alone), and routes tool
//! calls to the right live session with a per-server concurrency limit and a hard timeout.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, CancelledNotification,
    CancelledNotificationParam, ClientRequest, JsonObject, RequestMetaObject, ServerResult,
};
use rmcp::service::{PeerRequestOptions, ServiceError};
use tokio::sync::{TryAcquireError, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::asks::Asker;
use super::error::McpError;
use super::session;
use super::status::ServerStatus;
use super::supervisor::{self, Connection, ServerShared, SupervisorDeps};
use super::{ToolsEvent, ToolsSink};
use crate::config::model::McpServerConfig;
use crate::domain::ToolProgress;

/// Settings that are the same for every server the manager runs.
pub struct ManagerSettings {
    /// Our environment; children inherit only an allowlisted subset of it.
    pub inherited_env: Vec<(String, String)>,
    /// Variables every stdio child gets (e.g. `SWITCHBOARD_DATA_DIR`).
    pub child_env: Vec<(String, String)>,
    /// Where remote servers may be reached (`server.outbound`): the HTTP client of every
    /// remote session resolves names through it and follows redirects only within an origin.
    pub outbound: crate::outbound::Policy,
    /// How stdio children are run (under a guard or not) and recorded for the start-up sweep.
    pub children: super::process::ChildControl,
}

/// How long stopping one server may take before its supervisor is aborted (which still ends
/// its process: dropping a child ends its group). The stop sequence itself is bounded well
/// below this (transport close 2 s, then exit grace, SIGTERM, guard grace, SIGKILL).
const STOP_LIMIT: Duration = Duration::from_secs(15);
/// After an abort, how long to wait for the process to be reaped before reporting `stopped`.
const ABORTED_EXIT_WAIT: Duration = Duration::from_secs(5);

/// What [`McpManager::apply`] did, for logs and the reload API.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplySummary {
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    pub restarted: Vec<String>,
    pub unchanged: Vec<String>,
}

/// Cheap to clone; all clones share the same servers.
#[derive(Clone)]
pub struct McpManager {
    inner: Arc<Inner>,
}

struct Inner {
    servers: RwLock<BTreeMap<String, Arc<ServerEntry>>>,
    /// Removed or replaced servers still stopping, shown as `stopping` until they are gone.
    retiring: std::sync::Mutex<Vec<Arc<ServerEntry>>>,
    /// The tasks stopping them, so shutdown can wait for them too.
    stopping: TaskTracker,
    deps: Arc<SupervisorDeps>,
}

struct ServerEntry {
    shared: Arc<ServerShared>,
    stop: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// Options of one call.
#[derive(Default)]
pub struct CallOptions {
    /// Receives progress notifications while the call runs.
    pub progress: Option<mpsc::Sender<ToolProgress>>,
    /// Overrides the server's `timeout_ms` when shorter (an engine budget, say).
    pub timeout: Option<Duration>,
    /// W3C trace context for the server, sent as `_meta.traceparent` of `tools/call` (the MCP
    /// convention, so it works over every transport).
    pub traceparent: Option<String>,
    /// Receives the server's log messages (`notifications/message`, at its `log_level`) while
    /// the call runs, as `[level] logger: text`.
    pub logs: Option<mpsc::Sender<String>>,
    /// Answers the server's requests during the call (elicitation, sampling); `None` leaves
    /// them to the server's policy (declined, or refused for sampling).
    pub asker: Option<Asker>,
}

impl McpManager {
    /// A manager with no servers; tool listings are reported to `sink`, synchronously, before a server counts as settled.
    pub fn new(settings: ManagerSettings, sink: ToolsSink) -> Self {
        // Building fails only when the TLS backend cannot start, where `Client::new()` panics
        // too; a client without the outbound policy is no fallback.
        let http = crate::outbound::client_builder(&settings.outbound)
            .build()
            .expect("the HTTP client for remote MCP servers could not be built (TLS backend)");
        let deps = Arc::new(SupervisorDeps {
            http,
            inherited_env: settings.inherited_env,
            child_env: settings.child_env,
            sink,
            children: settings.children,
        });
        let inner = Arc::new(Inner {
            servers: RwLock::new(BTreeMap::new()),
            retiring: std::sync::Mutex::default(),
            stopping: TaskTracker::new(),
            deps,
        });
        Self { inner }
    }

    /// Make the running servers match `configs`: start added ones, stop removed ones, restart
    /// changed ones; untouched servers keep their sessions and calls in flight.
    /// Stopped servers drain in the background: their calls in flight may finish.
    pub fn apply(&self, configs: &BTreeMap<String, McpServerConfig>) -> ApplySummary {
        let mut summary = ApplySummary::default();
        let mut retired = Vec::new();
        {
            let mut servers = self.write();
            let names: Vec<String> = servers.keys().cloned().collect();
            for name in names {
                if !configs.contains_key(&name)
                    && let Some(entry) = servers.remove(&name)
                {
                    summary.stopped.push(name.clone());
                    retired.push(entry);
                    (self.inner.deps.sink)(ToolsEvent::Removed { server: name });
                }
            }
            for (name, config) in configs {
                match servers.get(name) {
                    Some(entry) if entry.shared.config == *config => {
                        summary.unchanged.push(name.clone());
                        continue;
                    }
                    Some(_) => summary.restarted.push(name.clone()),
                    None => summary.started.push(name.clone()),
                }
                let entry = self.start(config.clone());
                if !config.enabled {
                    (self.inner.deps.sink)(ToolsEvent::Removed {
                        server: name.clone(),
                    });
                }
                if let Some(old) = servers.insert(name.clone(), entry) {
                    retired.push(old);
                }
            }
        }
        for entry in retired {
            entry.shared.set_stopping();
            self.retiring().push(entry.clone());
            let inner = self.inner.clone();
            self.inner.stopping.spawn(async move {
                drain_and_stop(entry.clone()).await;
                inner
                    .retiring
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|e| !Arc::ptr_eq(e, &entry));
            });
        }
        summary
    }

    fn retiring(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ServerEntry>>> {
        self.inner
            .retiring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn start(&self, config: McpServerConfig) -> Arc<ServerEntry> {
        let shared = ServerShared::new(config);
        let stop = CancellationToken::new();
        let task = if shared.config.enabled {
            Some(tokio::spawn(supervisor::supervise(
                shared.clone(),
                self.inner.deps.clone(),
                stop.clone(),
            )))
        } else {
            shared.settled.send_replace(true);
            None
        };
        Arc::new(ServerEntry {
            shared,
            stop,
            task: std::sync::Mutex::new(task),
        })
    }

    /// Status of every configured server, in name order, and of every removed one until it
    /// has stopped (`stopping`). A replaced server's old instance is not shown: its name is
    /// the new one's.
    pub fn statuses(&self) -> Vec<ServerStatus> {
        let mut statuses: Vec<ServerStatus> =
            self.read().values().map(|e| e.shared.status()).collect();
        let retiring: Vec<Arc<ServerEntry>> = self.retiring().clone();
        for entry in retiring {
            let name = &entry.shared.config.name;
            if !statuses.iter().any(|s| &s.name == name) {
                statuses.push(entry.shared.status());
            }
        }
        statuses.sort_by(|a, b| a.name.cmp(&b.name));
        statuses
    }

    /// Wait until every enabled server has finished its first connection attempt (either way),
    /// or `limit` passes. Start-up never waits on this; the CLI and tests do.
    pub async fn wait_settled(&self, limit: Duration) {
        let receivers: Vec<_> = self
            .read()
            .values()
            .map(|e| e.shared.settled.subscribe())
            .collect();
        let all = futures::future::join_all(receivers.into_iter().map(|mut rx| async move {
            let _ = rx.wait_for(|settled| *settled).await;
        }));
        let _ = tokio::time::timeout(limit, all).await;
    }

    /// Call `tool` on `server`.
    ///
    /// # Errors
    /// See [`McpError`]: unknown or unavailable server, timeout (a cancellation is sent), the
    /// server exiting mid-call (with its exit status and stderr), or a JSON-RPC error.
    pub async fn call(
        &self,
        server: &str,
        tool: &str,
        arguments: JsonObject,
        options: CallOptions,
    ) -> Result<CallToolResult, McpError> {
        let shared = self.shared_of(server)?;
        let timeout = options.timeout.map_or(shared.config.call_timeout, |t| {
            t.min(shared.config.call_timeout)
        });
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = || McpError::Timeout {
            server: server.to_owned(),
            timeout,
        };
        let stopped = || McpError::Unavailable {
            server: server.to_owned(),
            reason: "stopped".to_owned(),
        };
        // A free permit is taken without arming a timer: most calls find one.
        let _permit = match shared.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(stopped()),
            Err(TryAcquireError::NoPermits) => {
                tokio::time::timeout_at(deadline, shared.permits.clone().acquire_owned())
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|_| stopped())?
            }
        };
        let connection = connection_of(server, &shared)?;

        // Before the request goes out, so a message the server logs as it starts is kept.
        let _log_route = options.logs.map(|sink| shared.log_routes.register(sink));
        let _ask_route = options.asker.map(|asker| shared.asks.register(asker));
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(
            CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments),
        ));
        let handle = connection
            .peer
            .send_request_with_option(request, request_options(options.traceparent.as_deref()))
            .await
            .map_err(|err| service_error(server, &shared, err))?;
        let _progress_route = options.progress.map(|sink| {
            shared
                .progress
                .register(handle.progress_token.clone(), sink)
        });
        let mut cancel = CancelOnDrop {
            connection: Some(connection.clone()),
            request_id: handle.id.clone(),
            reason: "caller went away",
        };
        let response = handle.rx;
        let outcome = tokio::select! {
            response = response => match response {
                Ok(Ok(ServerResult::CallToolResult(result))) => Ok(result),
                Ok(Ok(_)) => Err(McpError::Protocol {
                    server: server.to_owned(),
                    code: -32603,
                    message: "answered tools/call with a different result type".to_owned(),
                }),
                // Sent, and the session ended before the answer: an exit status or a broken
                // frame cap explains it, else the outcome is unknown.
                Ok(Err(ServiceError::TransportClosed)) | Err(_) => {
                    Err(exited_or_closed(server, &shared, &connection).await)
                }
                // Sent: whether the server can have acted on it is decided in one place.
                Ok(Err(err)) => Err(McpError::after_send(server, err)),
            },
            () = tokio::time::sleep_until(deadline) => {
                cancel.reason = "timeout";
                return Err(timed_out());
            }
            () = connection.closed.cancelled() => Err(exited_or_closed(server, &shared, &connection).await),
        };
        cancel.connection = None;
        outcome
    }

    /// The servers connected now that declared `resources` / `prompts`, by name, as
    /// `(server, offers resources, offers prompts)`.
    pub fn offering_context(&self) -> Vec<(String, bool, bool)> {
        self.read()
            .iter()
            .filter_map(|(name, entry)| {
                let connection = entry.shared.connection.borrow().clone()?;
                let info = connection.peer.peer_info()?;
                let capabilities = &info.capabilities;
                Some((
                    name.clone(),
                    capabilities.resources.is_some(),
                    capabilities.prompts.is_some(),
                ))
            })
            .collect()
    }

    /// Send one request other than `tools/call` (resources, prompts) to `server` and wait for
    /// its answer, within the server's `call_timeout` (a cancellation is sent on timeout or when
    /// the caller goes away).
    ///
    /// # Errors
    /// As [`McpManager::call`].
    pub async fn request(
        &self,
        server: &str,
        request: ClientRequest,
    ) -> Result<ServerResult, McpError> {
        let shared = self.shared_of(server)?;
        let timeout = shared.config.call_timeout;
        let connection = connection_of(server, &shared)?;
        let handle = connection
            .peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await
            .map_err(|err| service_error(server, &shared, err))?;
        let mut cancel = CancelOnDrop {
            connection: Some(connection.clone()),
            request_id: handle.id.clone(),
            reason: "caller went away",
        };
        let outcome = tokio::select! {
            response = handle.rx => match response {
                Ok(Ok(result)) => Ok(result),
                Ok(Err(ServiceError::TransportClosed)) | Err(_) => {
                    Err(exited_or_closed(server, &shared, &connection).await)
                }
                Ok(Err(err)) => Err(McpError::after_send(server, err)),
            },
            () = tokio::time::sleep(timeout) => {
                cancel.reason = "timeout";
                return Err(McpError::Timeout { server: server.to_owned(), timeout });
            }
            () = connection.closed.cancelled() => Err(exited_or_closed(server, &shared, &connection).await),
        };
        cancel.connection = None;
        outcome
    }

    /// The shared state of `server`.
    fn shared_of(&self, server: &str) -> Result<Arc<ServerShared>, McpError> {
        self.read()
            .get(server)
            .map(|e| e.shared.clone())
            .ok_or_else(|| McpError::UnknownServer {
                server: server.to_owned(),
            })
    }

    /// Stop every server (transports closed, children terminated) and wait for them, also
    /// for removed ones still stopping (their drain is cut short).
    pub async fn shutdown(&self) {
        let entries: Vec<_> = std::mem::take(&mut *self.write()).into_values().collect();
        for entry in self.retiring().iter() {
            entry.stop.cancel();
            entry.shared.permits.close();
        }
        futures::future::join_all(entries.into_iter().map(stop_now)).await;
        self.inner.stopping.close();
        if tokio::time::timeout(STOP_LIMIT, self.inner.stopping.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "removed mcp servers did not stop within {} s",
                STOP_LIMIT.as_secs()
            );
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ServerEntry>>> {
        self.inner.servers.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<ServerEntry>>> {
        self.inner
            .servers
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// Options of a `tools/call` request: its `_meta` carries `traceparent` when there is one.
fn request_options(traceparent: Option<&str>) -> PeerRequestOptions {
    let mut options = PeerRequestOptions::no_options();
    if let Some(traceparent) = traceparent {
        let mut meta = RequestMetaObject::new();
        meta.set_traceparent(traceparent);
        options = options.with_meta(meta);
    }
    options
}

/// Sends `notifications/cancelled` for a request whose caller stopped waiting (dropped future or
/// timeout), so the server can stop the work.
struct CancelOnDrop {
    connection: Option<Arc<Connection>>,
    request_id: rmcp::model::RequestId,
    reason: &'static str,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        let notification = CancelledNotification::new(CancelledNotificationParam::new(
            Some(self.request_id.clone()),
            Some(self.reason.to_owned()),
        ));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = connection.peer.send_notification(notification.into()).await;
            });
        }
    }
}

/// Let calls in flight finish (bounded by the server's call timeout), then stop the server.
async fn drain_and_stop(entry: Arc<ServerEntry>) {
    let permits = entry.shared.config.max_concurrency as u32;
    let _ = tokio::time::timeout(
        entry.shared.config.call_timeout,
        entry.shared.permits.acquire_many(permits),
    )
    .await;
    stop_now(entry).await;
}

/// Stop the supervisor and wait for it, bounded by [`STOP_LIMIT`]: a supervisor still not done
/// by then is aborted, which drops its session and so ends its process.
async fn stop_now(entry: Arc<ServerEntry>) {
    entry.stop.cancel();
    entry.shared.permits.close();
    // Before the supervisor clears it: how to tell when an aborted one's child is gone.
    let exit = entry
        .shared
        .connection
        .borrow()
        .as_ref()
        .and_then(|c| c.exit.clone());
    let task = entry.task.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(mut task) = task
        && tokio::time::timeout(STOP_LIMIT, &mut task).await.is_err()
    {
        tracing::error!(server = %entry.shared.config.name, limit_s = STOP_LIMIT.as_secs(), "mcp server supervisor did not stop in time; aborting it");
        task.abort();
        let _ = task.await;
        if let Some(mut exit) = exit {
            let _ = tokio::time::timeout(ABORTED_EXIT_WAIT, exit.wait_for(Option::is_some)).await;
        }
    }
    entry.shared.set_stopped();
}

/// A request that never left (the session would not take it).
/// The session `server` has now, or why it has none.
fn connection_of(server: &str, shared: &ServerShared) -> Result<Arc<Connection>, McpError> {
    shared
        .connection
        .borrow()
        .clone()
        .ok_or_else(|| McpError::Unavailable {
            server: server.to_owned(),
            reason: shared.unavailable_reason(),
        })
}

fn service_error(server: &str, shared: &ServerShared, err: ServiceError) -> McpError {
    McpError::before_send(server, err, || shared.unavailable_reason())
}

async fn exited_or_closed(
    server: &str,
    shared: &ServerShared,
    connection: &Connection,
) -> McpError {
    // A flooding child exits cleanly once we close its stdout: its exit status is not the reason.
    if let Some(reason) = connection.overflowed() {
        return McpError::Unavailable {
            server: server.to_owned(),
            reason,
        };
    }
    if let Some(mut exit) = connection.exit.clone()
        && let Some(info) = session::exit_status_soon(&mut exit).await
    {
        return McpError::ServerExited {
            server: server.to_owned(),
            exit: info.0,
            stderr_tail: shared.stderr_tail.lines(),
        };
    }
    McpError::OutcomeUnknown {
        server: server.to_owned(),
        reason: "the connection closed during the call".to_owned(),
        source: None,
    }
}
