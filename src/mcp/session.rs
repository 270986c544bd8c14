//! Opening one MCP session over any transport: spawn or dial, negotiate the protocol version,
//! and hand back the running rmcp service plus the child process, if any.

use std::time::Duration;

use rmcp::RoleClient;
use rmcp::model::ProtocolVersion;
use rmcp::service::{Peer, RunningService};
use rmcp::transport::IntoTransport;

use super::client::HubClient;
use super::error::{ConnectError, printable};
use super::lifecycle::{self, Negotiated, OnSilence};
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
    /// How stdio children are run (guard) and recorded.
    pub(crate) children: &'a process::ChildControl,
}

/// The protocol versions we speak, oldest first: every revision rmcp implements. A server may
/// answer `initialize` with another version than the 2025-11-25 we offer (the spec's fallback:
/// "the server MUST respond with another protocol version it supports"); we go on with any of
/// these and disconnect on anything else, as the spec says a client that does not support the
/// answer should. `server/discover` only ever selects one of our preferred versions.
pub(crate) const SUPPORTED_VERSIONS: &[ProtocolVersion] = ProtocolVersion::KNOWN_VERSIONS;

/// Whether we speak `version` (see [`SUPPORTED_VERSIONS`]).
pub(crate) fn speaks(version: &ProtocolVersion) -> bool {
    SUPPORTED_VERSIONS.contains(version)
}

/// Whether the negotiated revision defines `ping`: every one before 2026-07-28 (which is
/// stateless: no session to keep alive, and `ping` is gone from it).
pub(crate) fn defines_ping(protocol_version: &str) -> bool {
    protocol_version < ProtocolVersion::V_2026_07_28.as_str()
}

/// Whether the server declared the `tools` capability at the handshake. A server that did not
/// is never sent `tools/list`: it offers no tools, and asking is a protocol violation some
/// servers answer by closing the session.
pub(crate) fn offers_tools(peer: &Peer<RoleClient>) -> bool {
    peer.peer_info()
        .is_none_or(|info| info.capabilities.tools.is_some())
}

/// What the status API says about a ready server that offers no tools.
pub(crate) const NO_TOOLS_NOTE: &str =
    "the server did not declare the `tools` capability, so it offers no tools";

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
        TransportConfig::Stdio { .. } => {
            let limit = lifecycle::probe_limit(config.init_timeout);
            if let Some(session) = connect_stdio(config, handler.clone(), ctx, Some(limit)).await? {
                return Ok(session);
            }
            // Silent on the probe: the child was ended; a fresh one gets `initialize` alone.
            tracing::debug!(server = %config.name, "no answer to server/discover; starting again with initialize");
            connect_stdio(config, handler, ctx, None)
                .await?
                .ok_or_else(|| {
                    ConnectError::Config("the server stayed silent on initialize".to_owned())
                })
        }
        TransportConfig::StreamableHttp { url, headers } => {
            let transport =
                http::transport(ctx.http.clone(), url, headers).map_err(ConnectError::Config)?;
            let service = remote_handshake(config, handler, transport).await?;
            accept(service, None, None).await
        }
        TransportConfig::Sse { url, headers } => {
            let headers: ::http::HeaderMap = http::header_map(headers)
                .map_err(ConnectError::Config)?
                .into_iter()
                .collect();
            let pair = sse::connect(ctx.http.clone(), url, headers).await?;
            let transport = IntoTransport::<RoleClient, _, _>::into_transport(pair);
            let service = remote_handshake(config, handler, transport).await?;
            accept(service, None, None).await
        }
    }
}

/// Start the stdio child and negotiate: with `probe`, `server/discover` first (answered within
/// that limit; `None` back when it stayed silent, the child ended); without, `initialize`.
async fn connect_stdio(
    config: &McpServerConfig,
    handler: HubClient,
    ctx: &ConnectContext<'_>,
    probe: Option<Duration>,
) -> Result<Option<Session>, ConnectError> {
    let TransportConfig::Stdio {
        command,
        args,
        env,
        cwd,
    } = &config.transport
    else {
        return Err(ConnectError::Config("not a stdio server".to_owned()));
    };
    let spec = SpawnSpec {
        server: &config.name,
        command,
        args,
        env,
        cwd: cwd.as_deref(),
        inherited: ctx.inherited_env,
        extra: ctx.child_env,
        children: ctx.children,
    };
    let spawned = process::spawn(&spec, ctx.stderr_tail).map_err(|source| ConnectError::Spawn {
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
    let handshake = async {
        match probe {
            Some(limit) => {
                lifecycle::handshake(handler, transport, limit, OnSilence::FreshTransport).await
            }
            None => lifecycle::legacy_handshake(handler, transport)
                .await
                .map(Negotiated::Connected),
        }
    };
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
        Ok(Negotiated::Connected(service)) => {
            accept(service, Some(child), Some(overflow)).await.map(Some)
        }
        Ok(Negotiated::SilentProbe) => {
            child.shutdown().await;
            Ok(None)
        }
        Err(err) => {
            child.shutdown().await;
            if let Some(err) = overflowed() {
                return Err(err);
            }
            let info = exit.borrow().clone();
            match info {
                Some(info) => Err(exited_during_init(info, ctx.stderr_tail).await),
                None => Err(handshake_failed(&config.name, err)),
            }
        }
    }
}

/// Negotiate over a remote transport (Streamable HTTP, legacy SSE): a silent probe is followed
/// by `initialize` on the same transport.
async fn remote_handshake<T>(
    config: &McpServerConfig,
    handler: HubClient,
    transport: T,
) -> Result<RunningService<RoleClient, HubClient>, ConnectError>
where
    T: rmcp::transport::Transport<RoleClient> + 'static,
{
    let limit = lifecycle::probe_limit(config.init_timeout);
    match lifecycle::handshake(handler, transport, limit, OnSilence::SameTransport).await {
        Ok(Negotiated::Connected(service)) => Ok(service),
        Ok(Negotiated::SilentProbe) => Err(ConnectError::Config(
            "the server did not answer server/discover".to_owned(),
        )),
        Err(err) => Err(handshake_failed(&config.name, err)),
    }
}

/// A failed handshake as a [`ConnectError`], with its whole cause chain logged (the error's
/// message, which the status API and 503 bodies show, leaves the internals out).
fn handshake_failed(server: &str, err: rmcp::service::ClientInitializeError) -> ConnectError {
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::debug!(server, error = %chain, "mcp handshake failed");
    ConnectError::Handshake(Box::new(err))
}

/// Finish a completed handshake: go on with a protocol version we speak, or close the session
/// (and end the child) and say which version the server answered.
async fn accept(
    mut service: RunningService<RoleClient, HubClient>,
    child: Option<ChildProcess>,
    overflow: Option<stdio::FrameOverflow>,
) -> Result<Session, ConnectError> {
    let answered = service
        .peer()
        .peer_info()
        .map(|info| info.protocol_version.clone());
    match answered {
        Some(version) if !speaks(&version) => {
            let _ = service.close_with_timeout(CLOSE_WAIT).await;
            drop(service);
            if let Some(child) = child {
                child.shutdown().await;
            }
            Err(ConnectError::UnsupportedProtocolVersion {
                answered: printable(version.as_str()),
                offered: ProtocolVersion::LATEST_WITH_INITIALIZE.to_string(),
                supported: SUPPORTED_VERSIONS.iter().map(ToString::to_string).collect(),
            })
        }
        _ => Ok(finish(service, child, overflow)),
    }
}

/// How long closing a refused session may take before we drop it.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

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
