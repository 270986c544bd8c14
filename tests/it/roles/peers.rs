//! Test-owned MCP servers (Streamable HTTP, in this process) whose tools tell the test how they
//! were used: a stand-in `clock` that counts its calls, so a test can prove a forbidden tool was
//! never called by any path, and a `gate` whose one tool blocks until the test opens it, so a
//! run stays in progress exactly as long as the test needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use tokio::sync::Semaphore;

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

/// `wait` returns only once the test has opened the gate (one call per [`Gate::open`]).
#[derive(Clone)]
pub(super) struct Gate {
    permits: Arc<Semaphore>,
    entered: Arc<AtomicUsize>,
}

#[tool_router]
impl Gate {
    #[tool(description = "Wait until the gate opens.")]
    async fn wait(&self) -> String {
        self.entered.fetch_add(1, Ordering::SeqCst);
        match self.permits.acquire().await {
            Ok(permit) => {
                permit.forget();
                "the gate opened".to_owned()
            }
            Err(_) => "the gate was closed for good".to_owned(),
        }
    }
}

#[tool_handler]
impl ServerHandler for Gate {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

impl Gate {
    /// Serve a closed gate.
    pub(super) async fn serve() -> (Gate, McpHttpServer) {
        let gate = Gate {
            permits: Arc::new(Semaphore::new(0)),
            entered: Arc::new(AtomicUsize::new(0)),
        };
        let server = McpHttpServer::start(gate.clone()).await;
        (gate, server)
    }

    /// Calls of `wait` that have started.
    pub(super) fn entered(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }

    /// Let one waiting (or the next) call through.
    pub(super) fn open(&self) {
        self.permits.add_permits(1);
    }
}
