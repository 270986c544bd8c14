//! One task per configured server: connect, list tools, watch the connection, and reconnect with
//! capped exponential backoff and jitter; after repeated failures the circuit opens and the server
//! is retried slowly. The supervisor is the only writer of its server's connection and status.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::model::{
    ClientRequest, CustomResult, ListToolsRequest, PaginatedRequestParams, ServerResult,
};
use rmcp::service::{Peer, RunningService, ServiceError};
use tokio::sync::{Notify, Semaphore, watch};
use tokio_util::sync::CancellationToken;

use super::ToolsEvent;
use super::asks::AskRoutes;
use super::client::{HubClient, LogRoutes, ProgressRoutes, Routes, ServerLogs, wire_level};
use super::error::ConnectError;
use super::process::{ExitInfo, StderrTail};
use super::session::{self, ConnectContext, Session};
use super::status::{ConnectionState, ServerStatus};
use super::transport::stdio::FrameOverflow;
use crate::config::model::McpServerConfig;
use crate::tools::{Listing, ListingError, Page, read_page};

/// First reconnect delay; doubled per consecutive failure up to [`BACKOFF_CAP`].
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// Consecutive failures after which the circuit opens.
pub(crate) const CIRCUIT_THRESHOLD: u32 = 5;
/// Retry interval while the circuit is open.
const CIRCUIT_RETRY: Duration = Duration::from_secs(60);
/// A connection that stayed up this long resets the failure count.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How often a connection is checked for a closed transport.
const LIVENESS_POLL: Duration = Duration::from_millis(200);
/// How often remote servers of an era with `ping` are pinged; a failed ping reconnects unless
/// calls are in flight (their own deadlines decide then).
const PING_EVERY: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// Stop paging `tools/list` after this many pages (a server looping on cursors).
const MAX_TOOL_PAGES: usize = 100;

/// A live session as callers see it. Replaced, never mutated, on reconnect.
pub(crate) struct Connection {
    pub(crate) peer: Peer<RoleClient>,
    /// Cancelled as soon as the session is known to be gone, so calls in flight fail at once.
    pub(crate) closed: CancellationToken,
    /// A stdio child's exit status, once it has exited.
    pub(crate) exit: Option<watch::Receiver<Option<ExitInfo>>>,
    /// Why a stdio session broke its stdout frame cap, once it has (see `Session::overflow`).
    pub(crate) overflow: Option<FrameOverflow>,
}

impl Connection {
    /// The frame-cap failure that ended this session, if that is what ended it.
    pub(crate) fn overflowed(&self) -> Option<String> {
        self.overflow.as_ref().and_then(FrameOverflow::message)
    }
}

/// State shared between a server's supervisor and its callers.
pub(crate) struct ServerShared {
    pub(crate) config: McpServerConfig,
    pub(crate) connection: watch::Sender<Option<Arc<Connection>>>,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) progress: Arc<ProgressRoutes>,
    pub(crate) stderr_tail: StderrTail,
    /// The server's last log messages (`notifications/message`).
    pub(crate) logs: ServerLogs,
    /// The calls in flight that want the server's log messages.
    pub(crate) log_routes: Arc<LogRoutes>,
    /// The calls in flight that answer the server's requests (elicitation, sampling).
    pub(crate) asks: Arc<AskRoutes>,
    /// Turns true once the first connection attempt has finished, either way.
    pub(crate) settled: watch::Sender<bool>,
    tools_changed: Arc<Notify>,
    state: Mutex<MutableState>,
    /// Set when the server was removed or replaced: it shows as `stopping` until stopped,
    /// whatever its supervisor still writes meanwhile.
    retiring: AtomicBool,
}

#[derive(Debug)]
struct MutableState {
    status: ConnectionState,
    protocol_version: Option<String>,
    tool_count: usize,
    restarts: u64,
    consecutive_failures: u32,
    last_error: Option<String>,
    pid: Option<u32>,
}

impl ServerShared {
    /// Fresh shared state for a server that has not connected yet.
    pub(crate) fn new(config: McpServerConfig) -> Arc<Self> {
        let status = if config.enabled {
            ConnectionState::Connecting
        } else {
            ConnectionState::Disabled
        };
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(config.max_concurrency)),
            config,
            connection: watch::channel(None).0,
            progress: Arc::default(),
            stderr_tail: StderrTail::default(),
            logs: ServerLogs::default(),
            log_routes: Arc::default(),
            asks: Arc::default(),
            settled: watch::channel(false).0,
            tools_changed: Arc::default(),
            state: Mutex::new(MutableState {
                status,
                protocol_version: None,
                tool_count: 0,
                restarts: 0,
                consecutive_failures: 0,
                last_error: None,
                pid: None,
            }),
            retiring: AtomicBool::new(false),
        })
    }

    /// The status as shown: `stopping` from retirement until the supervisor is done.
    fn shown(&self, status: ConnectionState) -> ConnectionState {
        if self.retiring.load(Ordering::Relaxed) && status != ConnectionState::Stopped {
            ConnectionState::Stopping
        } else {
            status
        }
    }

    /// A snapshot for the status API.
    pub(crate) fn status(&self) -> ServerStatus {
        let state = self.lock();
        ServerStatus {
            name: self.config.name.clone(),
            transport: self.config.transport.kind(),
            status: self.shown(state.status),
            protocol_version: state.protocol_version.clone(),
            tool_count: state.tool_count,
            restarts: state.restarts,
            consecutive_failures: state.consecutive_failures,
            last_error: state.last_error.clone(),
            stderr_tail: self.stderr_tail.lines(),
            log_tail: self.logs.lines(),
            pid: state.pid,
            note: self.note(state.status),
        }
    }

    /// What the status adds about a ready session: that it offers no tools, when it does not.
    fn note(&self, status: ConnectionState) -> Option<String> {
        let connection = self.connection.borrow();
        let peer = &connection.as_ref()?.peer;
        (status == ConnectionState::Ready && !session::offers_tools(peer))
            .then(|| session::NO_TOOLS_NOTE.to_owned())
    }

    /// Why calls cannot be served right now, in words for users.
    pub(crate) fn unavailable_reason(&self) -> String {
        let state = self.lock();
        let what = match self.shown(state.status) {
            ConnectionState::Disabled => "disabled in config",
            ConnectionState::Connecting => "still connecting",
            ConnectionState::Ready => "connection just closed",
            ConnectionState::Reconnecting => "reconnecting",
            ConnectionState::Failed => "failed repeatedly; retrying slowly",
            ConnectionState::Stopping => "being stopped",
            ConnectionState::Stopped => "stopped",
        };
        match &state.last_error {
            Some(err) => format!("{what} (last error: {err})"),
            None => what.to_owned(),
        }
    }

    /// The server was removed or replaced: from now on it shows as `stopping`.
    pub(super) fn set_stopping(&self) {
        self.retiring.store(true, Ordering::Relaxed);
    }

    pub(super) fn set_stopped(&self) {
        let mut state = self.lock();
        state.status = ConnectionState::Stopped;
        state.pid = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MutableState> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Everything a supervisor needs that is the same for all servers.
pub(crate) struct SupervisorDeps {
    pub(crate) http: reqwest::Client,
    pub(crate) inherited_env: Vec<(String, String)>,
    pub(crate) child_env: Vec<(String, String)>,
    pub(crate) sink: super::ToolsSink,
    /// How stdio children are run (guard) and recorded.
    pub(crate) children: super::process::ChildControl,
}

/// Run until `stop` is cancelled: connect, serve, reconnect.
pub(crate) async fn supervise(
    shared: Arc<ServerShared>,
    deps: Arc<SupervisorDeps>,
    stop: CancellationToken,
) {
    let name = shared.config.name.clone();
    let mut failures: u32 = 0;
    let mut connected_before = false;
    loop {
        let started = Instant::now();
        let attempt = tokio::select! {
            () = stop.cancelled() => break,
            attempt = tokio::time::timeout(shared.config.init_timeout, open(&shared, &deps)) => attempt,
        };
        let failure = match attempt {
            Ok(Ok((session, tools))) => {
                let elapsed_ms = started.elapsed().as_millis() as u64;
                // Publish the session before anyone can see the server ready or its tools in
                // the catalog, so a call made right after `settled` finds a connection.
                let connection = publish(&shared, &session);
                let tool_count = tools.tools.len() + tools.unreadable.len();
                // The catalog gets the tools before the status says `ready`, so whoever sees
                // `ready` also sees the tools.
                (deps.sink)(ToolsEvent::Listed {
                    server: name.clone(),
                    tools: Arc::new(tools),
                    filter: shared.config.tools.clone(),
                });
                {
                    let mut state = shared.lock();
                    if connected_before {
                        state.restarts += 1;
                    }
                    state.status = ConnectionState::Ready;
                    state.protocol_version = Some(session.protocol_version.clone());
                    state.tool_count = tool_count;
                    state.pid = session.child.as_ref().and_then(|c| c.pid());
                }
                connected_before = true;
                tracing::info!(server = %name, tools = tool_count, elapsed_ms, protocol = %session.protocol_version, "mcp server connected");
                shared.settled.send_replace(true);
                let up_since = Instant::now();
                let ended = serve(&shared, &deps, session, connection, &stop).await;
                if up_since.elapsed() >= STABLE_AFTER {
                    failures = 0;
                }
                match ended {
                    None => break,
                    Some(reason) => reason,
                }
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => ConnectError::InitTimeout {
                timeout: shared.config.init_timeout,
            }
            .to_string(),
        };
        failures += 1;
        let delay = {
            let mut state = shared.lock();
            state.consecutive_failures = failures;
            state.last_error = Some(failure.clone());
            state.pid = None;
            if failures >= CIRCUIT_THRESHOLD {
                state.status = ConnectionState::Failed;
                CIRCUIT_RETRY
            } else {
                state.status = ConnectionState::Reconnecting;
                backoff(failures)
            }
        };
        if failures == CIRCUIT_THRESHOLD {
            // The catalog should not offer tools that cannot be called for a long while.
            (deps.sink)(ToolsEvent::Removed {
                server: name.clone(),
            });
            tracing::error!(server = %name, failures, error = %failure, "mcp server failed repeatedly; circuit open");
        } else {
            tracing::warn!(server = %name, failures, retry_in_ms = delay.as_millis() as u64, error = %failure, "mcp server unavailable");
        }
        shared.settled.send_replace(true);
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    shared.connection.send_replace(None);
    shared.set_stopped();
}

/// Backoff for the n-th consecutive failure: doubling from the base, capped, with ±20% jitter
/// so many servers failing together do not retry in lockstep.
fn backoff(failures: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let capped = exp.min(BACKOFF_CAP);
    capped.mul_f64(0.8 + fastrand::f64() * 0.4)
}

async fn open(
    shared: &ServerShared,
    deps: &SupervisorDeps,
) -> Result<(Session, Listing), ConnectError> {
    let handler = HubClient::new(
        &shared.config.name,
        shared.progress.clone(),
        shared.tools_changed.clone(),
        Arc::new(shared.config.client.clone()),
        Routes {
            logs: shared.logs.clone(),
            log_routes: shared.log_routes.clone(),
            asks: shared.asks.clone(),
        },
    );
    let ctx = ConnectContext {
        http: &deps.http,
        inherited_env: &deps.inherited_env,
        child_env: &deps.child_env,
        stderr_tail: &shared.stderr_tail,
        children: &deps.children,
    };
    let session = session::connect(&shared.config, handler, &ctx).await?;
    ask_for_logs(shared, session.service.peer()).await;
    match list_tools(session.service.peer()).await {
        Ok(tools) => Ok((session, tools)),
        Err(err) => {
            close(session).await;
            Err(match err {
                ListToolsError::Service(err) => ConnectError::ListTools(err),
                ListToolsError::Listing(err) => ConnectError::ToolListing(err),
            })
        }
    }
}

/// Ask the server for log messages at the configured `log_level`, when it declared `logging` and
/// the session's era has `logging/setLevel` (the stateless era carries the level per request).
/// A server that refuses is logged and otherwise left alone.
async fn ask_for_logs(shared: &ServerShared, peer: &Peer<RoleClient>) {
    let Some(level) = shared.config.client.log_level else {
        return;
    };
    let Some(info) = peer.peer_info() else {
        return;
    };
    if info.capabilities.logging.is_none() || !session::defines_ping(info.protocol_version.as_str())
    {
        return;
    }
    #[allow(deprecated)]
    let request = ClientRequest::SetLevelRequest(rmcp::model::SetLevelRequest::new(
        rmcp::model::SetLevelRequestParams::new(wire_level(level)),
    ));
    if let Err(err) = peer.send_request(request).await {
        tracing::warn!(server = %shared.config.name, error = %err, "logging/setLevel refused");
    }
}

/// Page through `tools/list`, stopping on a repeated cursor or too many pages. Each page is read
/// entry by entry ([`crate::tools::read_page`]) when rmcp could not decode it whole, so one
/// malformed tool is refused alone instead of failing the listing.
async fn list_tools(peer: &Peer<RoleClient>) -> Result<Listing, ListToolsError> {
    // A server without the `tools` capability is never asked (a `list_changed` from it too).
    if !session::offers_tools(peer) {
        return Ok(Listing::default());
    }
    let mut listing = Listing::default();
    let mut cursor: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..MAX_TOOL_PAGES {
        let params = PaginatedRequestParams::default().with_cursor(cursor.clone());
        let request = ClientRequest::ListToolsRequest(ListToolsRequest::with_param(params));
        let page = match peer.send_request(request).await? {
            ServerResult::ListToolsResult(page) => Page::from(page),
            ServerResult::CustomResult(CustomResult(raw)) => read_page(raw)?,
            // Another shape the untagged decoding happened to match: read what it holds.
            other => read_page(serde_json::to_value(other).unwrap_or_default())?,
        };
        listing.extend(page.listing);
        match page.next_cursor {
            Some(next) if seen.insert(next.clone()) => cursor = Some(next),
            Some(_) => {
                tracing::warn!("mcp server repeated a tools/list cursor; stopped paging");
                break;
            }
            None => break,
        }
    }
    Ok(listing)
}

/// Why `tools/list` failed as a whole.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ListToolsError {
    /// The request failed (transport, JSON-RPC error, timeout).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The answer is not a listing at all.
    #[error(transparent)]
    Listing(#[from] ListingError),
}

/// Make `session` the one callers use.
fn publish(shared: &ServerShared, session: &Session) -> Arc<Connection> {
    let connection = Arc::new(Connection {
        peer: session.service.peer().clone(),
        closed: CancellationToken::new(),
        exit: session.child.as_ref().map(|c| c.exit_watch()),
        overflow: session.overflow.clone(),
    });
    shared.connection.send_replace(Some(connection.clone()));
    connection
}

/// Serve one published session until it ends. Returns `None` when stopped, or the reason it
/// ended.
async fn serve(
    shared: &ServerShared,
    deps: &SupervisorDeps,
    session: Session,
    connection: Arc<Connection>,
    stop: &CancellationToken,
) -> Option<String> {
    let closed = connection.closed.clone();
    let mut exit = connection.exit.clone();
    // `ping` belongs to the eras with sessions: a 2026-07-28 server answers it with "method not
    // found" (there is no connection to keep alive), so pinging one would reset it every time.
    let pings = session.child.is_none() && session::defines_ping(&session.protocol_version);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut poll = tokio::time::interval(LIVENESS_POLL);
    let reason = loop {
        tokio::select! {
            () = stop.cancelled() => break None,
            () = shared.tools_changed.notified() => {
                // Bounded, and given up when we are stopped: a server that announces a change
                // and never lists its tools must not keep its supervisor (and its process).
                let limit = shared.config.init_timeout;
                let listed = tokio::select! {
                    () = stop.cancelled() => break None,
                    listed = tokio::time::timeout(limit, list_tools(&connection.peer)) => listed,
                };
                let Ok(listed) = listed else {
                    break Some(format!(
                        "no answer to tools/list within {} ms after tools/list_changed",
                        limit.as_millis()
                    ));
                };
                match listed {
                    Ok(tools) => {
                        let count = tools.tools.len() + tools.unreadable.len();
                        shared.lock().tool_count = count;
                        tracing::info!(server = %shared.config.name, tools = count, "mcp server tools refreshed");
                        (deps.sink)(ToolsEvent::Listed {
                            server: shared.config.name.clone(),
                            tools: Arc::new(tools),
                            filter: shared.config.tools.clone(),
                        });
                    }
                    Err(err) => tracing::warn!(server = %shared.config.name, error = %err, "refreshing tools failed"),
                }
            }
            info = wait_for_exit(&mut exit) => {
                break Some(connection.overflowed().unwrap_or_else(|| format!("server exited ({})", info.0)));
            }
            _ = poll.tick() => {
                if connection.peer.is_transport_closed() {
                    break Some(connection.overflowed().unwrap_or_else(|| "connection closed".to_owned()));
                }
            }
            _ = ping.tick(), if pings => {
                let pinged = tokio::select! {
                    () = stop.cancelled() => break None,
                    pinged = tokio::time::timeout(PING_TIMEOUT, connection.peer.send_request(
                        rmcp::model::ClientRequest::PingRequest(Default::default()),
                    )) => pinged,
                };
                let busy = shared.permits.available_permits() < shared.config.max_concurrency;
                if !matches!(pinged, Ok(Ok(_))) {
                    if busy {
                        // A call in flight may be what keeps the server from answering; its
                        // own deadline ends it if the server is really gone.
                        tracing::debug!(server = %shared.config.name, "ping missed while calls are in flight; keeping the session");
                        continue;
                    }
                    break Some("server stopped answering pings".to_owned());
                }
            }
        }
    };
    // Calls in flight see `closed` and fail now, with the exit status if there is one.
    closed.cancel();
    shared.connection.send_replace(None);
    close(session).await;
    reason
}

async fn wait_for_exit(exit: &mut Option<watch::Receiver<Option<ExitInfo>>>) -> ExitInfo {
    match exit {
        Some(rx) => loop {
            if let Some(info) = rx.borrow_and_update().clone() {
                return info;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        },
        None => std::future::pending().await,
    }
}

/// Close the session: transport first (closes a child's stdin), then the child's process group.
async fn close(session: Session) {
    let Session {
        mut service, child, ..
    } = session;
    let _ = service.close_with_timeout(Duration::from_secs(2)).await;
    drop::<RunningService<RoleClient, HubClient>>(service);
    if let Some(child) = child {
        child.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for failures in 1..40 {
            let delay = backoff(failures);
            let nominal = BACKOFF_BASE
                .saturating_mul(1 << (failures - 1).min(16))
                .min(BACKOFF_CAP);
            assert!(
                delay >= nominal.mul_f64(0.79) && delay <= nominal.mul_f64(1.21),
                "{failures}: {delay:?}"
            );
        }
        assert!(backoff(30) <= BACKOFF_CAP.mul_f64(1.21));
    }
}
