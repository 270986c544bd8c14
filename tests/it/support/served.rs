//! The real server in-process on the demo config (`support::write_demo_config`: the fake model
//! `fake`, bundled calc, clock and testkit) plus servers of a test's own, for tests that chat
//! with it and read its runs.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_fake_llm::FakeLlm;

use super::InProcessServer;
use super::events::Events;

/// Longest wait for the servers to be ready or a run to end.
const PATIENCE: Duration = Duration::from_secs(30);

/// The server, its fake model and its config directory.
pub struct Served {
    pub server: InProcessServer,
    pub fake: FakeLlm,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Served {
    type Target = InProcessServer;
    fn deref(&self) -> &Self::Target {
        &self.server
    }
}

impl Served {
    /// Start with the demo config plus what `extra` writes for the config directory it is given
    /// (`mcpServers` entries indented two spaces, then any top-level sections), and wait until
    /// the demo's three servers and `extra_servers` more are ready.
    pub async fn demo(extra: impl FnOnce(&Path) -> String, extra_servers: usize) -> Served {
        let fake = FakeLlm::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let extra = extra(dir.path());
        let path = super::write_demo_config(dir.path(), &fake, &extra);
        let served = Served {
            server: InProcessServer::start(&path).await,
            fake,
            _dir: dir,
        };
        served.ready(3 + extra_servers).await;
        served
    }

    /// Wait until `servers` servers are listed, all ready.
    pub async fn ready(&self, servers: usize) {
        wait_ready(&self.server, servers).await;
    }

    /// `POST /api/chat` with model `fake`: its event stream.
    pub async fn chat(&self, message: &str) -> Events {
        let body = json!({"message": message, "model": "fake"});
        let response = self.send(Method::POST, "/api/chat", Some(body)).await;
        assert_eq!(response.status(), StatusCode::OK);
        Events::new(response)
    }

    /// Wait until the testkit's stderr tail (`GET /api/mcp/servers`) shows `needle`, e.g. the
    /// `cancelled` it prints when a call's cancellation reached it.
    pub async fn testkit_said(&self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (_, servers) = self.request(Method::GET, "/api/mcp/servers", None).await;
            let testkit = servers["servers"]
                .as_array()
                .and_then(|all| all.iter().find(|s| s["name"] == "testkit"))
                .cloned()
                .unwrap_or_default();
            if testkit["stderr_tail"].to_string().contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the testkit never said `{needle}`: {testkit:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last user message the fake model was sent, as text.
    pub fn last_user_message(&self) -> String {
        last_user_message(&self.fake)
    }

    /// `GET /api/runs/{id}`.
    pub async fn run(&self, id: &str) -> Value {
        let (status, run) = self
            .request(Method::GET, &format!("/api/runs/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{run:#}");
        run
    }

    /// `GET /api/runs/{id}` once the run has ended.
    pub async fn ended(&self, id: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let run = self.run(id).await;
            if run["status"] != "running" && run["status"] != "waiting" {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} did not end: {run:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Wait until `server` lists `servers` MCP servers, all ready; their statuses
/// (`GET /api/mcp/servers`). Polled: a server's status has no event stream.
pub async fn wait_ready(server: &InProcessServer, servers: usize) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, body) = server.request(Method::GET, "/api/mcp/servers", None).await;
        let all = body["servers"].as_array().cloned().unwrap_or_default();
        if all.len() == servers && all.iter().all(|s| s["status"] == "ready") {
            return body;
        }
        assert!(Instant::now() < deadline, "servers not ready: {body:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last user message `fake` was sent, as text (empty when there is none).
pub fn last_user_message(fake: &FakeLlm) -> String {
    let requests = fake.requests();
    let Some(last) = requests.last() else {
        return String::new();
    };
    last.body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}
