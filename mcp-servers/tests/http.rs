//! Every bundled server over `serve_http` on port 0, driven by a real rmcp client.
//!
//! Stdio is covered by the `switchboard` integration tests, which spawn
//! `switchboard mcp-server <name>`; this file checks the HTTP path, protocol
//! negotiation, shared state across stateless requests, and `tools/list_changed`.

use std::{path::Path, time::Duration};

use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult, ProtocolVersion},
    service::{NotificationContext, Peer, RunningService},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use switchboard_mcp_servers::{BundledServer, Error, serve_http};
use tokio::{sync::mpsc, task::JoinHandle, time::timeout};
use tokio_util::sync::CancellationToken;

const STEP: Duration = Duration::from_secs(20);

struct Running {
    url: String,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), Error>>,
}

async fn start(server: BundledServer) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let url = format!("http://{}/mcp", listener.local_addr().expect("local addr"));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_http(server, listener, shutdown.clone()));
    Running {
        url,
        shutdown,
        task,
    }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        let outcome = timeout(STEP, self.task)
            .await
            .expect("server stops promptly after shutdown");
        outcome.expect("server task").expect("server ends cleanly");
    }
}

/// A client handler that reports `tools/list_changed`.
#[derive(Clone)]
struct Watcher(mpsc::UnboundedSender<()>);

impl ClientHandler for Watcher {
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.0.send(());
    }
}

async fn connect(url: &str) -> RunningService<RoleClient, ()> {
    timeout(STEP, ().serve(StreamableHttpClientTransport::from_uri(url)))
        .await
        .expect("connect in time")
        .expect("connect")
}

async fn call(peer: &Peer<RoleClient>, tool: &'static str, args: Value) -> CallToolResult {
    let mut params = CallToolRequestParams::new(tool);
    if let Value::Object(map) = args {
        params = params.with_arguments(map);
    }
    timeout(STEP, peer.call_tool(params))
        .await
        .expect("call in time")
        .expect("call succeeds at the protocol level")
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn tool_names(peer: &Peer<RoleClient>) -> Vec<String> {
    let tools = timeout(STEP, peer.list_all_tools())
        .await
        .expect("list in time")
        .expect("list tools");
    assert!(
        tools
            .iter()
            .all(|t| t.description.is_some() && t.annotations.is_some()),
        "every tool has a description and annotations"
    );
    tools.into_iter().map(|t| t.name.into_owned()).collect()
}

#[tokio::test]
async fn clock_over_http() {
    let server = start(BundledServer::Clock).await;
    let client = connect(&server.url).await;
    let names = tool_names(&client).await;
    assert_eq!(names, ["convert_time", "date_add", "date_diff", "now"]);
    let now = call(&client, "now", json!({"timezone": "Europe/Paris"})).await;
    assert_eq!(now.is_error, Some(false));
    let zone = now
        .structured_content
        .as_ref()
        .and_then(|s| s.get("timezone"))
        .and_then(Value::as_str);
    assert_eq!(zone, Some("Europe/Paris"));
    let bad = call(&client, "now", json!({"timezone": "Nowhere/Special"})).await;
    assert_eq!(bad.is_error, Some(true));
    assert!(text(&bad).contains("unknown time zone"));
    // A schema violation is a tool error too, not a protocol error.
    let missing = call(&client, "convert_time", json!({"time": "now"})).await;
    assert_eq!(missing.is_error, Some(true));
    client.cancel().await.expect("close client");
    server.stop().await;
}

#[tokio::test]
async fn calc_over_http() {
    let server = start(BundledServer::Calc).await;
    let client = connect(&server.url).await;
    assert_eq!(tool_names(&client).await, ["evaluate", "evaluate_many"]);
    let ok = call(&client, "evaluate", json!({"expression": "2 + 3 * 4 ^ 2"})).await;
    assert_eq!(text(&ok), "50");
    let err = call(&client, "evaluate", json!({"expression": "1 / (2 - 2)"})).await;
    assert_eq!(err.is_error, Some(true));
    assert_eq!(text(&err), "division by zero at column 3");
    // Shut the server down while the client is still connected: must not hang.
    server.stop().await;
    drop(client);
}

#[tokio::test]
async fn notes_over_stateless_http_keep_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(BundledServer::Notes {
        db_path: dir.path().join("sub/notes.db"),
    })
    .await;
    // A client that prefers 2026-07-28 gets it, which makes every request stateless.
    let client = timeout(
        STEP,
        ().serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(server.url.as_str()),
            ClientLifecycleMode::Auto {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                legacy_version: Some(ProtocolVersion::V_2025_11_25),
            },
        ),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    let version = client.peer_info().map(|info| info.protocol_version.clone());
    assert_eq!(version, Some(ProtocolVersion::V_2026_07_28));
    let added = call(
        &client,
        "add_note",
        json!({"title": "Meeting", "body": "Quarterly review on Friday", "tags": ["work"]}),
    )
    .await;
    assert_eq!(text(&added), "added note #1");
    let found = call(
        &client,
        "search_notes",
        json!({"query": "quarterly", "tag": "WORK"}),
    )
    .await;
    assert!(
        text(&found).starts_with("#1 Meeting [work]"),
        "{}",
        text(&found)
    );
    let missing = call(&client, "get_note", json!({"id": 99})).await;
    assert_eq!(missing.is_error, Some(true));
    client.cancel().await.expect("close client");
    server.stop().await;
    assert!(dir.path().join("sub/notes.db").exists());
}

#[tokio::test]
async fn files_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.txt"), "alpha\n").expect("write");
    let server = start(BundledServer::Files {
        root: dir.path().to_path_buf(),
    })
    .await;
    let client = connect(&server.url).await;
    assert_eq!(
        tool_names(&client).await,
        ["file_info", "list_directory", "read_file", "search_files"]
    );
    let read = call(&client, "read_file", json!({"path": "a.txt"})).await;
    assert_eq!(text(&read), "alpha\n");
    let escape = call(&client, "read_file", json!({"path": "../a.txt"})).await;
    assert_eq!(escape.is_error, Some(true));
    assert_eq!(text(&escape), "path escapes the shared directory");
    client.cancel().await.expect("close client");
    server.stop().await;
}

#[tokio::test]
async fn files_refuses_a_missing_root() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let result = serve_http(
        BundledServer::Files {
            root: Path::new("/definitely/not/here").to_path_buf(),
        },
        listener,
        CancellationToken::new(),
    )
    .await;
    assert!(matches!(result, Err(Error::FilesRoot { .. })), "{result:?}");
}

#[tokio::test]
async fn testkit_over_http_adds_tools_at_runtime() {
    let server = start(BundledServer::Testkit).await;
    let (tx, mut changed) = mpsc::unbounded_channel();
    let client = timeout(
        STEP,
        Watcher(tx).serve(StreamableHttpClientTransport::from_uri(server.url.as_str())),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    let echo = call(&client, "echo", json!({"message": "hi"})).await;
    assert_eq!(text(&echo), "hi");
    let fail = call(&client, "fail", json!({"message": "boom"})).await;
    assert_eq!((fail.is_error, text(&fail).as_str()), (Some(true), "boom"));
    let rich = call(&client, "rich", json!({})).await;
    assert_eq!(rich.content.len(), 4);
    assert_eq!(
        rich.structured_content
            .as_ref()
            .and_then(|s| s.get("answer")),
        Some(&json!(42))
    );
    let pid = call(&client, "pid", json!({})).await;
    assert_eq!(text(&pid), std::process::id().to_string());
    let big = call(&client, "big", json!({"bytes": 100_000})).await;
    assert_eq!(text(&big).len(), 100_000);

    let added = call(&client, "add_tool", json!({"name": "late_echo"})).await;
    assert_eq!(text(&added), "added tool late_echo");
    timeout(STEP, changed.recv())
        .await
        .expect("tools/list_changed arrives")
        .expect("channel open");
    assert!(tool_names(&client).await.contains(&"late_echo".to_owned()));
    let late = call(&client, "late_echo", json!({"message": "later"})).await;
    assert_eq!(text(&late), "later");
    let again = call(&client, "add_tool", json!({"name": "late_echo"})).await;
    assert_eq!(again.is_error, Some(true));
    client.cancel().await.expect("close client");
    server.stop().await;
}
