//! The typed, already-validated configuration that the rest of Switchboard receives.
//!
//! Everything here is produced by [`crate::config::load`]; no other module parses files or reads
//! the environment. Values are final: defaults applied, durations converted, names checked.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole configuration, as loaded from one YAML file (plus any included Claude Desktop files).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this configuration came from; reload reads it again.
    pub source: PathBuf,
    /// HTTP server and storage settings.
    pub server: ServerSettings,
    /// Limits applied to the tool catalog and to tool results.
    pub tools: ToolSettings,
    /// MCP servers by their configured name, in name order so start-up and listings are stable.
    pub mcp_servers: BTreeMap<String, McpServerConfig>,
}

/// `server:` section: where we listen and where we keep state.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// Address the HTTP server binds (`server.bind`, default `127.0.0.1:8080`).
    pub bind: SocketAddr,
    /// Directory for the SQLite file and the bundled servers' state (`server.data_dir`, default `./data`).
    pub data_dir: PathBuf,
}

/// `tools:` section: catalog-wide caps that protect the models' context and our memory.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSettings {
    /// Results larger than this many bytes (serialized JSON) are truncated with a marker (`tools.max_result_bytes`, default 256 KiB).
    pub max_result_bytes: usize,
    /// At most this many tools are taken from one server (`tools.max_tools_per_server`, default 256).
    pub max_tools_per_server: usize,
    /// Tool descriptions are cut to this many characters (`tools.max_description_chars`, default 2048).
    pub max_description_chars: usize,
}

/// One entry of `mcpServers:`.
#[derive(Debug, Clone, PartialEq)]
pub struct McpServerConfig {
    /// The key under `mcpServers:`; unique, 1–64 characters of `[A-Za-z0-9_.-]`.
    pub name: String,
    /// How to reach the server.
    pub transport: TransportConfig,
    /// `enabled: false` keeps the entry in the file but never starts it (default true).
    pub enabled: bool,
    /// Glob filters over the server's own tool names (not the exposed `server__tool` names).
    pub tools: ToolFilter,
    /// Per-call hard timeout (`timeout_ms`, default 60 000).
    pub call_timeout: Duration,
    /// Time allowed for connect + handshake + first tool listing (`init_timeout_ms`, default 30 000).
    pub init_timeout: Duration,
    /// Calls in flight at once on this server (`max_concurrency`, default 16, at least 1).
    pub max_concurrency: usize,
}

/// The three ways to reach an MCP server; one variant per transport so code must handle each.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportConfig {
    /// A child process speaking JSON-RPC over stdin/stdout.
    Stdio {
        /// Program to run (looked up on `PATH` when it has no slash).
        command: String,
        /// Arguments, after interpolation.
        args: Vec<String>,
        /// Extra environment for the child, on top of a small allowlisted base environment.
        env: BTreeMap<String, String>,
        /// Working directory for the child; ours when absent.
        cwd: Option<PathBuf>,
    },
    /// Legacy HTTP+SSE (protocol 2024-11-05): `GET url` opens the event stream.
    Sse {
        /// The SSE endpoint, usually ending in `/sse`.
        url: url::Url,
        /// Headers sent on every request (e.g. `Authorization`).
        headers: BTreeMap<String, String>,
    },
    /// Streamable HTTP (protocol 2025-03-26 and later).
    StreamableHttp {
        /// The MCP endpoint, usually ending in `/mcp`.
        url: url::Url,
        /// Headers sent on every request (e.g. `Authorization`).
        headers: BTreeMap<String, String>,
    },
}

/// `tools.allow` / `tools.deny` globs; deny wins, and an empty allow list allows everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolFilter {
    /// Glob patterns (`*`, `?`, `[..]`) a tool name must match one of, when non-empty.
    pub allow: Vec<String>,
    /// Glob patterns that remove a tool even when it is allowed.
    pub deny: Vec<String>,
}

impl TransportConfig {
    /// Short label used in logs and the status API.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportConfig::Stdio { .. } => "stdio",
            TransportConfig::Sse { .. } => "sse",
            TransportConfig::StreamableHttp { .. } => "streamable-http",
        }
    }
}
