//! MCP client side: connecting to configured servers over stdio, Streamable HTTP and legacy SSE,
//! supervising them, and routing tool calls. This module does IO; it knows nothing of the
//! catalog's naming or schema rules (those live in `tools`), and reports tool listings as
//! [`ToolsEvent`]s for the composition root to feed into the catalog.

pub mod asks;
mod client;
mod error;
pub mod guard;
mod lifecycle;
mod manager;
pub mod process;
pub mod procfs;
mod session;
mod status;
mod supervisor;
pub mod sweep;
pub mod transport;

use std::sync::Arc;

pub use error::{ConnectError, McpError};
pub use manager::{ApplySummary, CallOptions, ManagerSettings, McpManager};
pub use process::ChildControl;
pub use status::{ConnectionState, ServerStatus};

use crate::config::model::ToolFilter;

/// A server's tool listing changed (connected, refreshed) or its tools went away.
#[derive(Debug, Clone)]
pub enum ToolsEvent {
    /// The complete current listing of `server`, with the filter its config asks for.
    Listed {
        server: String,
        tools: Arc<crate::tools::Listing>,
        filter: ToolFilter,
    },
    /// `server` was removed, disabled, or its circuit opened.
    Removed { server: String },
}

/// Receives [`ToolsEvent`]s synchronously from supervisors, so that when a server counts as
/// settled its tools are already in the catalog. Called from async tasks: keep it quick.
pub type ToolsSink = Arc<dyn Fn(ToolsEvent) + Send + Sync>;
