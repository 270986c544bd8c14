//! Errors of the MCP client manager, split by what the caller does with them: a user-facing
//! status (unknown, unavailable, timed out, exited) or a protocol/transport failure.

use std::time::Duration;

/// A tool call or status request that could not be served.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("mcp server `{server}` is not configured")]
    UnknownServer { server: String },
    #[error("mcp server `{server}` is unavailable: {reason}")]
    Unavailable { server: String, reason: String },
    #[error(
        "mcp server `{server}` exited ({exit}) during the call{}",
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
    #[error("connection to mcp server `{server}` failed: {source}")]
    Transport {
        server: String,
        #[source]
        source: rmcp::ServiceError,
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
    #[error("handshake failed: {0}")]
    Handshake(#[source] Box<rmcp::service::ClientInitializeError>),
    /// A stdio child broke the stdout frame cap during the handshake; the text says how.
    #[error("handshake failed: {0}")]
    FrameOverflow(String),
    #[error("listing tools failed: {0}")]
    ListTools(#[source] rmcp::ServiceError),
    #[error("{0}")]
    Config(String),
    #[error("legacy sse: {0}")]
    Sse(#[from] super::transport::sse::SseConnectError),
}
