//! Test-owned MCP servers (Streamable HTTP, in this process) whose tools tell the test how they
//! were used: a stand-in `clock` that counts its calls, so a test can prove a forbidden tool was
//! never called by any path. (The `gate` that holds a run in its tool call is
//! `support::gate::Gate`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

use crate::support::McpHttpServer;

/// Answers `now` with a fixed instant and counts every call it receives.
#[derive(Clone, Default)]
pub(super) struct CountingClock {
    calls: Arc<AtomicUsize>,
}

#[tool_router]
impl CountingClock {
    #[tool(description = "The current time (RFC 3339).")]
    fn now(&self) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        "2026-01-01T00:00:00Z".to_owned()
    }
}

#[tool_handler]
impl ServerHandler for CountingClock {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

impl CountingClock {
    /// Serve a fresh counter; the returned handle reads the count of the served copies.
    pub(super) async fn serve() -> (CountingClock, McpHttpServer) {
        let clock = CountingClock::default();
        let server = McpHttpServer::start(clock.clone()).await;
        (clock, server)
    }

    /// Calls received so far.
    pub(super) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}
