//! Errors of the MCP client manager, split by what the caller does with them: a user-facing
//! status (unknown, unavailable, timed out, exited) or a protocol/transport failure.
//!
//! Messages are for users and may reach HTTP bodies: they never embed the text of an rmcp or
//! reqwest error (which names Rust types such as `rmcp::transport::worker::WorkerTransport<…>`
//! and carries URLs); such errors stay attached as `#[source]`, for the log. A call that fails
//! after its request left says whether the server can have acted on it ([`McpError::OutcomeUnknown`]
//! when it may have), decided in one place ([`McpError::after_send`]).

use std::time::Duration;

use rmcp::ServiceError;
use rmcp::service::ClientInitializeError;
use rmcp::transport::DynamicTransportError;
use rmcp::transport::streamable_http_client::StreamableHttpError;

/// A tool call or status request that could not be served.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("mcp server `{server}` is not configured")]
    UnknownServer { server: String },
    #[error("mcp server `{server}` is unavailable: {reason}")]
    Unavailable { server: String, reason: String },
    #[error(
        "mcp server `{server}` exited ({exit}) during the call, so its outcome is unknown{}",
        tail_suffix(stderr_tail)
    )]
    ServerExited {
        server: String,
        exit: String,
        stderr_tail: Vec<String>,
    },
    #[error("tool call on mcp server `{server}` timed out after {} ms; cancellation sent", timeout.as_millis())]
    Timeout { server: String, timeout: Duration },
    #[error("mcp server `{server}` answered with error {code}: {message}")]
    Protocol {
        server: String,
        code: i32,
        message: String,
    },
    /// The request could not be delivered (or was refused before the tool ran): retrying is safe.
    #[error("the call was not delivered to mcp server `{server}`: {reason}")]
    Transport {
        server: String,
        /// What went wrong, in words without internals.
        reason: String,
        #[source]
        source: rmcp::ServiceError,
    },
    /// The request was sent, but its answer was lost: the tool may or may not have run. Never
    /// retried automatically, since running a tool twice can do harm (a payment, a message).
    #[error(
        "tool call on mcp server `{server}`: outcome unknown. The request was sent but its answer \
         was lost ({reason}); the tool may have run, and the call was not retried"
    )]
    OutcomeUnknown {
        server: String,
        /// How the answer was lost, in words without internals.
        reason: String,
        #[source]
        source: Option<rmcp::ServiceError>,
    },
    #[error("tool call on mcp server `{server}` was cancelled")]
    Cancelled { server: String },
}

fn tail_suffix(tail: &[String]) -> String {
    // The last few lines are usually the panic or stack trace that explains the exit.
    let last: Vec<&str> = tail
        .iter()
        .rev()
        .take(5)
        .rev()
        .map(String::as_str)
        .collect();
    if last.is_empty() {
        String::new()
    } else {
        format!("; stderr: {}", last.join(" | "))
    }
}

/// Why connecting (spawn + handshake + first tool listing) failed; kept as the server's last error.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("could not start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("process exited ({exit}) during start-up{}", tail_suffix(stderr_tail))]
    ExitedDuringInit {
        exit: String,
        stderr_tail: Vec<String>,
    },
    #[error("no answer to the handshake within {} ms", timeout.as_millis())]
    InitTimeout { timeout: Duration },
    /// Boxed: rmcp's error is large, and would make every `Result<_, ConnectError>` as large.
    #[error("handshake failed: {}", describe_handshake(.0))]
    Handshake(#[source] Box<rmcp::service::ClientInitializeError>),
    /// The server answered `initialize` with a protocol version we do not speak. The spec lets a
    /// server answer with another version than the one offered, and the client disconnect when
    /// it does not support that one; this is that disconnect.
    #[error(
        "handshake failed: the server answered `initialize` with protocol version `{answered}`, \
         which Switchboard does not speak (we offered {offered}; we speak {})",
        supported.join(", ")
    )]
    UnsupportedProtocolVersion {
        /// The version the server answered, made printable (control characters escaped, cut).
        answered: String,
        /// The version we offered in `initialize`.
        offered: String,
        /// Every version we accept, oldest first.
        supported: Vec<String>,
    },
    /// A stdio child broke the stdout frame cap during the handshake; the text says how.
    #[error("handshake failed: {0}")]
    FrameOverflow(String),
    #[error("listing tools failed: {}", describe_service(.0))]
    ListTools(#[source] rmcp::ServiceError),
    /// The `tools/list` answer is not a listing at all (no `tools` array).
    #[error("listing tools failed: {0}")]
    ToolListing(#[source] crate::tools::ListingError),
    #[error("{0}")]
    Config(String),
    #[error("legacy sse: {0}")]
    Sse(#[from] super::transport::sse::SseConnectError),
}

impl McpError {
    /// The error for a request that could not be handed to the session at all (it never left),
    /// so the server cannot have acted on it; `unavailable` says why the server is not usable.
    pub(crate) fn before_send(
        server: &str,
        err: ServiceError,
        unavailable: impl FnOnce() -> String,
    ) -> Self {
        let server = server.to_owned();
        match err {
            ServiceError::McpError(data) => McpError::Protocol {
                server,
                code: data.code.0,
                message: data.message.to_string(),
            },
            ServiceError::Timeout { timeout } => McpError::Timeout { server, timeout },
            ServiceError::Cancelled { .. } => McpError::Cancelled { server },
            ServiceError::TransportClosed => McpError::Unavailable {
                server,
                reason: unavailable(),
            },
            other => McpError::Transport {
                server,
                reason: describe_service(&other),
                source: other,
            },
        }
    }

    /// The error for a `tools/call` whose request was handed to the session and whose answer
    /// is `err`. The one place that decides whether the server can have acted on it: a JSON-RPC
    /// error, a timeout or a cancellation are answers; a failure we can show happened before
    /// the server read the request (no connection, refused, session expired) is
    /// [`McpError::Transport`]; anything else (the connection dropped after the request was
    /// written, an unreadable or cut-off answer) is [`McpError::OutcomeUnknown`].
    pub(crate) fn after_send(server: &str, err: ServiceError) -> Self {
        let server_name = server.to_owned();
        match err {
            ServiceError::TransportSend(transport) => match delivery(&transport) {
                Delivery::NotDelivered(reason) => McpError::Transport {
                    server: server_name,
                    reason: reason.to_owned(),
                    source: ServiceError::TransportSend(transport),
                },
                Delivery::Unknown(reason) => McpError::OutcomeUnknown {
                    server: server_name,
                    reason: reason.to_owned(),
                    source: Some(ServiceError::TransportSend(transport)),
                },
            },
            ServiceError::TransportClosed => McpError::OutcomeUnknown {
                server: server_name,
                reason: "the connection closed before the answer".to_owned(),
                source: Some(ServiceError::TransportClosed),
            },
            other => McpError::before_send(server, other, || "connection closed".to_owned()),
        }
    }
}

/// Whether a request whose transport failed can have reached the server's tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// It provably did not (no connection; refused before it was read): safe to try again.
    NotDelivered(&'static str),
    /// It may have: the request was written and the answer did not arrive intact.
    Unknown(&'static str),
}

/// Classify a transport failure of a sent request. Unknown shapes count as "may have run": the
/// safe answer, since a caller told "not delivered" would feel free to retry.
fn delivery(err: &DynamicTransportError) -> Delivery {
    let inner: &(dyn std::error::Error + 'static) = err.error.as_ref();
    if let Some(http) = inner.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
        return http_delivery(http);
    }
    if let Some(io) = inner.downcast_ref::<std::io::Error>() {
        // Our stdio transport fails a write only when the child's stdin is closed: the child
        // is gone and a partial line is not a request it can act on.
        return match io.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::NotConnected => {
                Delivery::NotDelivered("the server's input is closed")
            }
            _ => Delivery::Unknown("the connection failed"),
        };
    }
    Delivery::Unknown("the connection failed")
}

fn http_delivery(err: &StreamableHttpError<reqwest::Error>) -> Delivery {
    match err {
        StreamableHttpError::Client(err) => reqwest_delivery(err),
        StreamableHttpError::HttpStatus(status) if status.status >= 500 => {
            Delivery::Unknown("the server answered with an HTTP server error")
        }
        StreamableHttpError::HttpStatus(_) => {
            Delivery::NotDelivered("the server refused the request (HTTP 429)")
        }
        StreamableHttpError::AuthRequired(_) | StreamableHttpError::InsufficientScope(_) => {
            Delivery::NotDelivered("the server refused the request as unauthorized")
        }
        StreamableHttpError::SessionExpired => {
            Delivery::NotDelivered("the server no longer knows the session (HTTP 404)")
        }
        StreamableHttpError::ReservedHeaderConflict(_) => {
            Delivery::NotDelivered("a configured header conflicts with a protocol header")
        }
        StreamableHttpError::TransportChannelClosed => {
            Delivery::NotDelivered("the connection is closed")
        }
        StreamableHttpError::SessionRecoveryTimeout => {
            Delivery::Unknown("the session was lost while the request was in flight")
        }
        _ => Delivery::Unknown("the answer could not be read"),
    }
}

fn reqwest_delivery(err: &reqwest::Error) -> Delivery {
    if err.is_connect() {
        Delivery::NotDelivered("could not connect to the server")
    } else if err.is_builder() {
        Delivery::NotDelivered("the request could not be built")
    } else if err.is_redirect() {
        Delivery::NotDelivered("the server answered with a redirect that was not followed")
    } else if err.is_timeout() {
        Delivery::Unknown("the HTTP request timed out")
    } else {
        Delivery::Unknown("the connection dropped before the answer")
    }
}

/// A failed request in words, without the Rust type names and URLs rmcp's `Display` carries.
pub(crate) fn describe_service(err: &ServiceError) -> String {
    match err {
        ServiceError::McpError(data) => {
            format!(
                "the server answered with error {}: {}",
                data.code.0,
                printable(&data.message)
            )
        }
        ServiceError::TransportSend(transport) => describe_transport(transport),
        ServiceError::TransportClosed => "the connection closed".to_owned(),
        ServiceError::UnexpectedResponse => {
            "the server answered with another result type".to_owned()
        }
        ServiceError::Timeout { timeout } => {
            format!("no answer within {} ms", timeout.as_millis())
        }
        ServiceError::Cancelled { .. } => "the request was cancelled".to_owned(),
        _ => "the request failed".to_owned(),
    }
}

/// A failed transport in words, without internals.
fn describe_transport(err: &DynamicTransportError) -> String {
    // A request `server.outbound` stopped says which address or redirect, and which rule.
    if let Some(blocked) = super::transport::http::blocked(err.error.as_ref()) {
        return blocked.to_string();
    }
    match delivery(err) {
        Delivery::NotDelivered(reason) | Delivery::Unknown(reason) => reason.to_owned(),
    }
}

/// A failed handshake in words, without internals (rmcp's own text has Rust type names and
/// `Debug` dumps of messages).
fn describe_handshake(err: &ClientInitializeError) -> String {
    match err {
        ClientInitializeError::LegacyFallbackFailed { fallback, .. } => {
            format!(
                "falling back to `initialize` failed: {}",
                describe_handshake(fallback)
            )
        }
        ClientInitializeError::TransportError { error, context } => {
            format!("{} ({context})", describe_transport(error))
        }
        ClientInitializeError::ConnectionClosed(context) => {
            format!("the server closed the connection ({})", printable(context))
        }
        ClientInitializeError::JsonRpcError(data) => {
            format!(
                "the server answered with error {}: {}",
                data.code.0,
                printable(&data.message)
            )
        }
        ClientInitializeError::ExpectedInitResponse(_)
        | ClientInitializeError::ExpectedInitResult(_)
        | ClientInitializeError::ConflictInitResponseId(..)
        | ClientInitializeError::UncorrelatedErrorResponse { .. } => {
            "the server answered the handshake with something else".to_owned()
        }
        ClientInitializeError::NoCompatibleProtocolVersion {
            client_supported,
            server_supported,
        } => format!(
            "no protocol version in common (we offered {}; the server offers {})",
            versions(client_supported),
            versions(server_supported)
        ),
        ClientInitializeError::Cancelled => "cancelled".to_owned(),
        _ => "the handshake failed".to_owned(),
    }
}

fn versions(list: &[rmcp::model::ProtocolVersion]) -> String {
    if list.is_empty() {
        return "none".to_owned();
    }
    list.iter()
        .map(|v| printable(v.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text from a server, fit for one line of a message: control characters escaped, at most
/// 200 characters.
pub(crate) fn printable(text: &str) -> String {
    const MAX: usize = 200;
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
