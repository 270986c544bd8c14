//! Choosing the protocol era with a server: the stateless 2026-07-28 revision where the server
//! has it, otherwise the `initialize` handshake at 2025-11-25, with the server's start-up bounded
//! only by its `init_timeout_ms`.
//!
//! rmcp's own `ClientLifecycleMode::Auto` probes with `server/discover` for a fixed 10 s and then
//! sends `initialize` on the same connection. A server that takes longer to answer its first
//! message (any `npx -y …` on its first run, a `docker run`) then answers the probe while rmcp
//! waits for the `initialize` answer, and the connection fails whatever `init_timeout_ms` says;
//! and a legacy server that answers the probe with an empty result is not recognised as legacy.
//! So we run the two phases ourselves: `server/discover` with no time limit of its own (the
//! caller's `init_timeout` bounds the whole handshake), then, when the answer says the server is
//! legacy, `initialize` on the same transport, which [`Reclaimable`] hands back after rmcp gave
//! up on it.
//!
//! What counts as a legacy answer ([`is_legacy_answer`]), following the revision's
//! backward-compatibility rules: a JSON-RPC error that is not one of the new era's own
//! rejections (method not found, "server not initialized", anything else an old server says),
//! or any result that is not a `server/discover` result (an empty result, say).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::model::{ErrorCode, ProtocolVersion, ServerNotification};
use rmcp::service::{ClientInitializeError, RunningService, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient};

use super::client::{HubClient, ProgressRoutes, ServerLogSink};
use super::transport::tap::{Tap, Tapped};

/// What to do when the server does not answer `server/discover` at all within the probe's part
/// of the start-up budget (the spec lets a client take silence for a legacy server, but silence
/// is also what a slow starter looks like, so the probe gets only part of the budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnSilence {
    /// Send `initialize` on the same transport: each HTTP request has its own answer, so a late
    /// answer to the probe cannot be taken for the `initialize` answer.
    SameTransport,
    /// Give up on this transport: on stdio the probe's late answer would arrive first on the
    /// same pipe, so the caller starts the child again and uses [`legacy_handshake`].
    FreshTransport,
}

/// How a negotiation ended.
pub(crate) enum Negotiated {
    /// Connected, in whichever era the server speaks.
    Connected(RunningService<RoleClient, HubClient>),
    /// The server did not answer the probe within its budget and [`OnSilence::FreshTransport`]
    /// applies: connect again with [`legacy_handshake`].
    SilentProbe,
}

/// Connect over `transport`: `server/discover` (answered within `probe_limit`), then
/// `initialize` if the answer is a legacy one, or after silence as `on_silence` says.
///
/// # Errors
/// The handshake failed in the era the server turned out to speak; for a legacy server whose
/// `initialize` failed too, that error.
pub(crate) async fn handshake<T>(
    handler: HubClient,
    transport: T,
    probe_limit: Duration,
    on_silence: OnSilence,
) -> Result<Negotiated, ClientInitializeError>
where
    T: Transport<RoleClient> + 'static,
{
    let slot = Arc::new(Mutex::new(None));
    let transport = tapped(&handler, transport);
    let probe = Reclaimable {
        inner: Some(transport),
        slot: slot.clone(),
    };
    let discover = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let probed = tokio::time::timeout(
        probe_limit,
        handler.stateless().serve_with_lifecycle(probe, discover),
    )
    .await;
    let reason = match probed {
        Ok(Ok(service)) => return Ok(Negotiated::Connected(service)),
        Ok(Err(error)) if is_legacy_answer(&error) => error.to_string(),
        Ok(Err(error)) => return Err(error),
        Err(_) if on_silence == OnSilence::FreshTransport => return Ok(Negotiated::SilentProbe),
        Err(_) => format!("no answer within {} ms", probe_limit.as_millis()),
    };
    let Some(transport) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return Err(ClientInitializeError::ConnectionClosed(reason));
    };
    tracing::debug!(probe = %reason, "server/discover answered as a legacy server does; using initialize");
    handler
        .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
        .await
        .map(Negotiated::Connected)
}

/// The `initialize` handshake alone, for a server that stayed silent on the probe.
///
/// # Errors
/// The handshake failed.
pub(crate) async fn legacy_handshake<T>(
    handler: HubClient,
    transport: T,
) -> Result<RunningService<RoleClient, HubClient>, ClientInitializeError>
where
    T: Transport<RoleClient> + 'static,
{
    let transport = tapped(&handler, transport);
    handler
        .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
        .await
}

/// The part of the start-up budget the probe may take: half, so that `initialize` after a
/// silent probe still has the other half.
pub(crate) fn probe_limit(init_timeout: Duration) -> Duration {
    init_timeout / 2
}

/// Whether a failed `server/discover` says the server is of an earlier era (see the module
/// docs), so `initialize` may follow on the same connection.
pub(crate) fn is_legacy_answer(error: &ClientInitializeError) -> bool {
    match error {
        ClientInitializeError::JsonRpcError(data) => !matches!(
            data.code,
            ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY | ErrorCode::HEADER_MISMATCH
        ),
        ClientInitializeError::ExpectedInitResult(Some(_)) => true,
        _ => false,
    }
}

/// A transport that, when rmcp drops it, leaves what it wraps in `slot` so the next phase of the
/// handshake can use the same connection (or child process). Delegates everything else.
struct Reclaimable<T> {
    inner: Option<T>,
    slot: Arc<Mutex<Option<T>>>,
}

impl<T> Reclaimable<T> {
    fn inner(&mut self) -> &mut T {
        self.inner
            .as_mut()
            .expect("the transport is only taken when the wrapper is dropped")
    }
}

impl<T> Drop for Reclaimable<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(inner);
        }
    }
}

impl<T: Transport<RoleClient> + 'static> Transport<RoleClient> for Reclaimable<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner().send(item)
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleClient>>> + Send {
        self.inner().receive()
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner().close()
    }
}

/// The hub's tap on a server's session: log messages recorded and progress routed as they
/// arrive, in order with the answers that follow them.
struct HubTap {
    logs: ServerLogSink,
    progress: Arc<ProgressRoutes>,
}

impl Tap for HubTap {
    fn notified(&self, notification: &ServerNotification) -> Option<BoxFuture<'static, ()>> {
        #[allow(deprecated)]
        match notification {
            ServerNotification::LoggingMessageNotification(logged) => {
                self.logs.record(&logged.params);
            }
            ServerNotification::ProgressNotification(note) => self.progress.deliver(&note.params),
            _ => {}
        }
        None
    }
}

/// `transport` with the hub's tap for `handler`'s server.
fn tapped<T>(handler: &HubClient, transport: T) -> Tapped<T> {
    let tap = HubTap {
        logs: handler.log_sink(),
        progress: handler.progress_routes(),
    };
    Tapped::new(transport, Arc::new(tap))
}
