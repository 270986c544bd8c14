//! Protocol fidelity of the hub's own client, through the real server (`app::serve_on` on port
//! 0): a new-era (2026-07-28) Streamable HTTP server (the bundled testkit with `--http`) that
//! must stay up through a 45 s call, a stdio server that answers its first message after 12 s,
//! and a legacy server that answers the `server/discover` probe with an empty result (both the
//! raw test server, `servers/raw_mcp.py`).

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::raw::{Scenario, raw_server_with};
use crate::support::{self, InProcessServer};

/// Serve `servers` (entries under `mcpServers:`) with no model; returns the server and its dir.
async fn serve(
    servers: impl FnOnce(&std::path::Path) -> String,
) -> (InProcessServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "server:\n  bind: 127.0.0.1:0\n  data_dir: {}\nmodels: []\nmcpServers:\n{}",
        dir.path().join("data").display(),
        servers(dir.path())
    );
    let path = dir.path().join("switchboard.yaml");
    std::fs::write(&path, yaml).expect("write config");
    (InProcessServer::start(&path).await, dir)
}

/// `name`'s entry of `GET /api/mcp/servers`.
async fn server_status(server: &InProcessServer, name: &str) -> Value {
    let (_, body) = server.request(Method::GET, "/api/mcp/servers", None).await;
    body["servers"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no server {name}: {body:#}"))
}

/// Wait until `name` is ready, asserting every status seen before is `wanted_before`.
async fn ready(
    server: &InProcessServer,
    name: &str,
    limit: Duration,
    wanted_before: &str,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let status = server_status(server, name).await;
        if status["status"] == "ready" {
            return status;
        }
        assert_eq!(status["status"], wanted_before, "{status:#}");
        assert!(
            Instant::now() < deadline,
            "{name} never became ready: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn tool(name: &str) -> Value {
    json!({ "name": name, "description": format!("The {name} tool."), "inputSchema": { "type": "object" } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_server_that_answers_after_12_s_connects_within_its_init_timeout() {
    let scenario = Scenario {
        pages: vec![json!({ "tools": [tool("late")] }).to_string()],
        start_delay_ms: 12_000,
        ..Scenario::default()
    };
    let started = Instant::now();
    let (server, _dir) =
        serve(|dir| raw_server_with(dir, "slow", &scenario, "    init_timeout_ms: 40000\n")).await;
    // Meanwhile it is starting, not failed or reconnecting.
    let status = ready(&server, "slow", Duration::from_secs(40), "connecting").await;
    assert!(started.elapsed() >= Duration::from_secs(12));
    assert_eq!(status["protocol_version"], "2025-11-25", "{status:#}");
    assert_eq!(status["consecutive_failures"], 0, "{status:#}");
    assert_eq!(status["restarts"], 0, "{status:#}");
    let (_, tools) = server.request(Method::GET, "/api/tools", None).await;
    assert!(
        tools["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "slow__late")),
        "{tools:#}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_server_that_answers_the_probe_with_an_empty_result_connects() {
    let scenario = Scenario {
        pages: vec![json!({ "tools": [tool("old")] }).to_string()],
        discover: Some("{}".to_owned()),
        ..Scenario::default()
    };
    let (server, _dir) = serve(|dir| raw_server_with(dir, "legacy", &scenario, "")).await;
    let status = ready(&server, "legacy", Duration::from_secs(20), "connecting").await;
    assert_eq!(status["protocol_version"], "2025-11-25", "{status:#}");
    let (status, body) = server.request(Method::GET, "/api/tools", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "legacy__old")),
        "{body:#}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_server_that_ignores_the_probe_connects_within_its_init_timeout() {
    let scenario = Scenario {
        pages: vec![json!({ "tools": [tool("quiet")] }).to_string()],
        silent_discover: true,
        ..Scenario::default()
    };
    let started = Instant::now();
    let (server, _dir) =
        serve(|dir| raw_server_with(dir, "quiet", &scenario, "    init_timeout_ms: 8000\n")).await;
    // The probe gets half the budget (4 s), then a fresh child gets `initialize`.
    let status = ready(&server, "quiet", Duration::from_secs(8), "connecting").await;
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status["protocol_version"], "2025-11-25", "{status:#}");
    assert_eq!(status["consecutive_failures"], 0, "{status:#}");
    server.stop().await;
}

/// The bundled testkit served over Streamable HTTP by our own binary, ended on drop.
struct HttpTestkit {
    child: std::process::Child,
    url: String,
}

impl HttpTestkit {
    async fn start() -> HttpTestkit {
        let port = support::free_port();
        let child = std::process::Command::new(support::switchboard_bin())
            .args([
                "mcp-server",
                "testkit",
                "--http",
                &format!("127.0.0.1:{port}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the testkit over HTTP");
        support::wait_for_tcp(port, Duration::from_secs(20)).await;
        HttpTestkit {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }
}

impl Drop for HttpTestkit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_era_http_server_stays_up_through_a_45_second_call() {
    let testkit = HttpTestkit::start().await;
    let url = testkit.url.clone();
    let (server, _dir) = serve(move |_| {
        format!("  remote:\n    type: streamable-http\n    url: {url}\n    timeout_ms: 90000\n")
    })
    .await;
    let status = ready(&server, "remote", Duration::from_secs(20), "connecting").await;
    assert_eq!(status["protocol_version"], "2026-07-28", "{status:#}");

    let started = Instant::now();
    let (code, body) = server
        .request(
            Method::POST,
            "/api/tools/remote__sleep/invoke",
            Some(json!({ "ms": 45_000 })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "the 45 s call completes: {body:#}");
    assert!(
        started.elapsed() >= Duration::from_secs(45),
        "{:?}",
        started.elapsed()
    );
    assert_ne!(body["result"]["isError"], true, "{body:#}");

    // Past a ping interval and still the same session.
    let status = server_status(&server, "remote").await;
    assert_eq!(status["status"], "ready", "{status:#}");
    assert_eq!(status["restarts"], 0, "{status:#}");
    assert_eq!(status["consecutive_failures"], 0, "{status:#}");
    assert_eq!(status["last_error"], Value::Null, "{status:#}");
    server.stop().await;
}
