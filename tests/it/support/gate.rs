//! A test-owned MCP server (Streamable HTTP, in this process) whose one tool, `wait`, blocks
//! until the test opens the gate: a run stays in its tool call exactly as long as the test needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use tokio::sync::Semaphore;

use super::McpHttpServer;

/// `wait` returns only once the test has opened the gate (one call per permit).
#[derive(Clone)]
pub struct Gate {
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
    pub async fn serve() -> (Gate, McpHttpServer) {
        let gate = Gate {
            permits: Arc::new(Semaphore::new(0)),
            entered: Arc::new(AtomicUsize::new(0)),
        };
        let server = McpHttpServer::start(gate.clone()).await;
        (gate, server)
    }

    /// Calls of `wait` that have started.
    pub fn entered(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }

    /// Let `calls` waiting (or later) calls through.
    pub fn open(&self, calls: usize) {
        self.permits.add_permits(calls);
    }
}
