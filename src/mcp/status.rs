//! What the status API and CLI show about each server; updated by its supervisor.

/// Where a server is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// `enabled: false` in config; never started.
    Disabled,
    /// First connection attempt in progress.
    Connecting,
    /// Connected; calls are served.
    Ready,
    /// Lost or failed; retrying with backoff.
    Reconnecting,
    /// Too many consecutive failures; circuit open, retried slowly.
    Failed,
    /// Removed from the config (or replaced by a changed one) and being shut down: calls in
    /// flight may finish, then the process is ended; shown until it is gone.
    Stopping,
    /// Removed or shut down.
    Stopped,
}

/// A snapshot of one server for `GET /api/mcp/servers` and `switchboard tools`.
#[derive(Debug, Clone)]
pub struct ServerStatus {
    pub name: String,
    pub transport: &'static str,
    pub status: ConnectionState,
    pub protocol_version: Option<String>,
    /// Tools the server listed, before `tools.allow`/`tools.deny` and schema admission;
    /// `GET /api/tools` has the ones the catalog kept (and why others were dropped).
    pub tool_count: usize,
    pub restarts: u64,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub stderr_tail: Vec<String>,
    /// The last log messages the server sent (`notifications/message`, at `log_level` or more
    /// severe), as `[level] logger: text`.
    pub log_tail: Vec<String>,
    /// OS process id of a stdio server's current child, for operators.
    pub pid: Option<u32>,
    /// Something an operator should know about a ready server that is not an error (it offers
    /// no tools, say).
    pub note: Option<String>,
}
