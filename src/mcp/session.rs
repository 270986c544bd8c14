//! Opening one MCP session over any transport: spawn or dial, negotiate the protocol version,
//! and hand back the running rmcp service plus the child process, if any.

use std::time::Duration;

use rmcp::model::ProtocolVersion;
use rmcp::service::RunningService;
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient};

use super::client::HubClient;
use super::error::ConnectError;
use super::process::{self, ChildProcess, ExitInfo, SpawnSpec, StderrTail};
use super::transport::{http, sse, stdio};
use crate::config::model::{McpServerConfig, TransportConfig};

/// A connected server: the rmcp service (whose peer we call) and, for stdio, the child.
pub(crate) struct Session {
    pub(crate) service: RunningService<RoleClient, HubClient>,
    pub(crate) protocol_version: String,
    pub(crate) child: Option<ChildProcess>,
    /// A stdio session's stdout guard: set once the child broke the frame cap, which ends the
    /// session and is the real reason it ended (the child then exits cleanly on EPIPE).
    pub(crate) overflow: Option<stdio::FrameOverflow>,
}

/// What every connect needs besides the server's own config.
pub(crate) struct ConnectContext<'a> {
    pub(crate) http: &'a reqwest::Client,
    pub(crate) inherited_env: &'a [(String, String)],
    pub(crate) child_env: &'a [(String, String)],
    pub(crate) stderr_tail: &'a StderrTail,
}

/// The lifecycle we ask for: the stateless 2026-07-28 revision where the server has it,
/// otherwise the `initialize` handshake at 2025-11-25.
fn lifecycle() -> ClientLifecycleMode {
    ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::V_2025_11_25),
    }
}

/// Connect to `config`'s server and complete the handshake (no time limit here: the caller
/// wraps this in the server's `init_timeout`).
///
/// # Errors
/// Spawn failures, handshake failures, and a child that exits during start-up (with its stderr).
pub(crate) async fn connect(
    config: &McpServerConfig,
    handler: HubClient,
    ctx: &ConnectContext<'_>,
) -> Result<Session, ConnectError> {
    match &config.transport {
        TransportConfig::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let spec = SpawnSpec {
                server: &config.name,
                command,
                args,
                env,
                cwd: cwd.as_deref(),
                inherited: ctx.inherited_env,
                extra: ctx.child_env,
            };
            let spawned =
                process::spawn(&spec, ctx.stderr_tail).map_err(|source| ConnectError::Spawn {
                    command: command.clone(),
                    source,
                })?;
            let mut exit = spawned.process.exit_watch();
            let transport =
                stdio::StdioTransport::new(spawned.stdout, spawned.stdin, stdio::MAX_FRAME_BYTES);
            // Checked first on failure: a flooding child exits (cleanly) only because we closed
            // its stdout, so its exit status would hide the real reason.
            let overflow = transport.overflow();
            let overflowed = || overflow.message().map(ConnectError::FrameOverflow);
            let child = spawned.process;
            let handshake = handler.serve_with_lifecycle(transport, lifecycle());
            tokio::pin!(handshake);
            // A child that dies during the handshake is reported with its exit status and stderr
            // right away, instead of after the init timeout.
            let result = tokio::select! {
                result = &mut handshake => result,
                info = wait_exit(&mut exit) => {
                    child.shutdown().await;
                    if let Some(err) = overflowed() {
                        return Err(err);
                    }
                    return Err(exited_during_init(info, ctx.stderr_tail).await);
                }
            };
            match result {
                Ok(service) => Ok(finish(service, Some(child), Some(overflow))),
                Err(err) => {
                    child.shutdown().await;
                    if let Some(err) = overflowed() {
                        return Err(err);
                    }
                    let info = exit.borrow().clone();
                    match info {
                        Some(info) => Err(exited_during_init(info, ctx.stderr_tail).await),
                        None => Err(ConnectError::Handshake(Box::new(err))),
                    }
                }
            }
        }
        TransportConfig::StreamableHttp { url, headers } => {
            let transport =
                http::transport(ctx.http.clone(), url, headers).map_err(ConnectError::Config)?;
            let service = handler
                .serve_with_lifecycle(transport, lifecycle())
                .await
                .map_err(|err| ConnectError::Handshake(Box::new(err)))?;
            Ok(finish(service, None, None))
        }
        TransportConfig::Sse { url, headers } => {
            let headers: ::http::HeaderMap = http::header_map(headers)
                .map_err(ConnectError::Config)?
                .into_iter()
                .collect();
            let pair = sse::connect(ctx.http.clone(), url, headers).await?;
            let service = handler
                .serve_with_lifecycle(pair, lifecycle())
                .await
                .map_err(|err| ConnectError::Handshake(Box::new(err)))?;
            Ok(finish(service, None, None))
        }
    }
}

fn finish(
    service: RunningService<RoleClient, HubClient>,
    child: Option<ChildProcess>,
    overflow: Option<stdio::FrameOverflow>,
) -> Session {
    let protocol_version = service
        .peer()
        .peer_info()
        .map(|info| info.protocol_version.to_string())
        .unwrap_or_else(|| ProtocolVersion::V_2026_07_28.to_string());
    Session {
        service,
        protocol_version,
        child,
        overflow,
    }
}

async fn wait_exit(exit: &mut tokio::sync::watch::Receiver<Option<ExitInfo>>) -> ExitInfo {
    loop {
        if let Some(info) = exit.borrow_and_update().clone() {
            return info;
        }
        if exit.changed().await.is_err() {
            return ExitInfo("unknown status".to_owned());
        }
    }
}

async fn exited_during_init(info: ExitInfo, tail: &StderrTail) -> ConnectError {
    // The stderr reader may still be draining the child's last words.
    tokio::time::sleep(Duration::from_millis(50)).await;
    ConnectError::ExitedDuringInit {
        exit: info.0,
        stderr_tail: tail.lines(),
    }
}

/// Shared by the supervisor and tests: how long to wait for an exit status after the transport closed.
pub(crate) const EXIT_STATUS_WAIT: Duration = Duration::from_millis(500);

/// Wait briefly for the child's exit status (used when a call fails because the pipe closed).
pub(crate) async fn exit_status_soon(
    exit: &mut tokio::sync::watch::Receiver<Option<ExitInfo>>,
) -> Option<ExitInfo> {
    tokio::time::timeout(EXIT_STATUS_WAIT, wait_exit(exit))
        .await
        .ok()
}
