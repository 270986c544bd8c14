//! The official reference server (`@modelcontextprotocol/server-everything`, a TypeScript SDK 1.x
//! server) over stdio, legacy SSE and Streamable HTTP, through the real hub: negotiation falls
//! back to 2025-11-25, tools are listed and called, progress arrives, and a timed-out call leaves
//! the session usable. Plus a fake legacy SSE server whose endpoint points to another origin.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use futures::StreamExt;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use switchboard::hub::InvokeError;
use switchboard::mcp::{CallOptions, ConnectionState, McpError};
use tokio::sync::mpsc;

use crate::support::{self, EverythingServer, TestHub};

/// Generous: Node start-up on a loaded 2-core CI machine.
const SETTLE: Duration = Duration::from_secs(30);
/// Auto negotiation falls back as soon as the server answers `server/discover` with an error;
/// waiting the full 10 s discovery timeout would be a regression.
const CONNECT_LIMIT: Duration = Duration::from_secs(8);

#[tokio::test]
async fn stdio() {
    let command = support::node_bin_dir().join("mcp-server-everything");
    let yaml = format!(
        "mcpServers:\n  everything:\n    command: {}\n    args: [stdio]\n",
        command.display()
    );
    exercise(&yaml, "stdio").await;
}

#[tokio::test]
async fn legacy_sse() {
    let server = EverythingServer::start("sse").await;
    // No `type`: a URL ending in /sse means legacy SSE.
    let yaml = format!(
        "mcpServers:\n  everything:\n    url: http://127.0.0.1:{}/sse\n",
        server.port
    );
    exercise(&yaml, "sse").await;
}

#[tokio::test]
async fn streamable_http() {
    let server = EverythingServer::start("streamableHttp").await;
    let yaml = format!(
        "mcpServers:\n  everything:\n    url: http://127.0.0.1:{}/mcp\n",
        server.port
    );
    exercise(&yaml, "streamable-http").await;
}

/// Everything the three transports must do alike.
async fn exercise(yaml: &str, transport: &str) {
    let started = Instant::now();
    let t = TestHub::start(yaml, SETTLE).await;
    let connect_time = started.elapsed();
    eprintln!("{transport}: connected to server-everything in {connect_time:?}");

    let status = t.status("everything");
    assert_eq!(status.status, ConnectionState::Ready, "{status:#?}");
    assert_eq!(status.transport, transport);
    assert_eq!(status.protocol_version.as_deref(), Some("2025-11-25"));
    assert!(
        connect_time < CONNECT_LIMIT,
        "{transport}: connecting took {connect_time:?}; the fallback from 2026-07-28 is slow"
    );
    let catalog = t.hub.catalog();
    for name in [
        "everything__echo",
        "everything__get-sum",
        "everything__trigger-long-running-operation",
    ] {
        let tool = catalog
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from {:?}", names(&t)));
        assert_eq!(tool.server, "everything");
    }
    assert_eq!(status.tool_count, catalog.len(), "{status:#?}");

    let echoed = call(
        &t,
        "everything__echo",
        json!({"message": "hello switchboard"}),
    )
    .await;
    assert_eq!(echoed, "Echo: hello switchboard");
    let sum = call(&t, "everything__get-sum", json!({"a": 2, "b": 40})).await;
    assert!(sum.contains("42"), "{sum}");

    long_call_reports_progress(&t).await;
    timeout_leaves_the_session_usable(&t).await;

    let status = t.status("everything");
    assert_eq!(status.status, ConnectionState::Ready, "{status:#?}");
    assert_eq!(status.restarts, 0, "{status:#?}");
}

async fn long_call_reports_progress(t: &TestHub) {
    let (tx, mut rx) = mpsc::channel(64);
    let options = CallOptions {
        progress: Some(tx),
        ..CallOptions::default()
    };
    let local = switchboard::access::Caller::local();
    let call = t.hub.invoke(
        &local,
        "everything__trigger-long-running-operation",
        json!({"duration": 2, "steps": 4}),
        options,
    );
    tokio::pin!(call);
    // The first step ends after 0.5 s, the result after 2 s: progress must come first.
    let first = tokio::select! {
        progress = rx.recv() => progress.expect("progress channel closed before any progress"),
        outcome = &mut call => panic!("result before any progress: {outcome:?}"),
    };
    let outcome = call.await.expect("long-running operation");
    let text = text(&outcome.result);
    assert!(text.contains("completed"), "{text}");
    let mut progress = vec![first];
    while let Ok(more) = rx.try_recv() {
        progress.push(more);
    }
    assert!(
        progress.iter().all(|p| p.total == Some(4.0)),
        "{progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0].progress < w[1].progress),
        "{progress:?}"
    );
}

async fn timeout_leaves_the_session_usable(t: &TestHub) {
    let started = Instant::now();
    let outcome = t
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "everything__trigger-long-running-operation",
            json!({"duration": 30, "steps": 30}),
            CallOptions {
                timeout: Some(Duration::from_secs(1)),
                ..CallOptions::default()
            },
        )
        .await;
    let elapsed = started.elapsed();
    match outcome {
        Err(InvokeError::Mcp(McpError::Timeout { server, timeout })) => {
            assert_eq!(server, "everything");
            assert_eq!(timeout, Duration::from_secs(1));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_millis(2500),
        "timed out after {elapsed:?}"
    );
    // server-everything keeps working on the cancelled call, but the session serves new ones.
    let echoed = call(t, "everything__echo", json!({"message": "still here"})).await;
    assert_eq!(echoed, "Echo: still here");
}

#[tokio::test]
async fn sse_endpoint_on_another_origin_is_refused() {
    // `elsewhere` stands for the other origin we can observe: nothing may reach it.
    let elsewhere = FakeServer::start(None).await;
    let evil = FakeServer::start(Some("http://evil.example/message".to_owned())).await;
    let sideways =
        FakeServer::start(Some(format!("http://127.0.0.1:{}/message", elsewhere.port))).await;
    let yaml = format!(
        "mcpServers:\n  evil:\n    url: http://127.0.0.1:{}/sse\n  sideways:\n    type: sse\n    url: http://127.0.0.1:{}/sse\n",
        evil.port, sideways.port
    );
    let t = TestHub::start(&yaml, SETTLE).await;

    for (name, other_origin, server) in [
        ("evil", "http://evil.example".to_owned(), &evil),
        (
            "sideways",
            format!("http://127.0.0.1:{}", elsewhere.port),
            &sideways,
        ),
    ] {
        let status = t.status(name);
        assert_ne!(status.status, ConnectionState::Ready, "{status:#?}");
        assert_eq!(status.transport, "sse");
        let error = status.last_error.clone().unwrap_or_default();
        assert!(
            error.contains("another origin") && error.contains(&other_origin),
            "{name}: {status:#?}"
        );
        assert!(
            server.requests().iter().all(|r| r == "GET /sse"),
            "{name}: {:?}",
            server.requests()
        );
    }
    assert!(
        elsewhere.requests().is_empty(),
        "a request reached the other origin: {:?}",
        elsewhere.requests()
    );
    assert!(t.hub.catalog().is_empty());
}

/// An HTTP server that records every request as `METHOD /path`; with an endpoint, `GET /sse`
/// announces it as a legacy SSE `endpoint` event and then keeps the stream open.
struct FakeServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeServer {
    async fn start(endpoint: Option<String>) -> FakeServer {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let app = axum::Router::new().fallback(move |request: Request| {
            let seen = seen.clone();
            let endpoint = endpoint.clone();
            async move {
                let line = format!("{} {}", request.method(), request.uri());
                seen.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                match endpoint {
                    Some(endpoint) if request.uri().path() == "/sse" => event_stream(endpoint),
                    _ => Response::builder()
                        .status(404)
                        .body(Body::empty())
                        .expect("response"),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake server");
        let port = listener.local_addr().expect("local addr").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeServer { port, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn event_stream(endpoint: String) -> Response {
    let first = futures::stream::once(async move {
        Ok::<_, Infallible>(Bytes::from(format!(
            "event: endpoint\ndata: {endpoint}\n\n"
        )))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(first.chain(futures::stream::pending())))
        .expect("response")
}

async fn call(t: &TestHub, tool: &str, arguments: Value) -> String {
    let outcome = t
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            tool,
            arguments,
            CallOptions::default(),
        )
        .await
        .unwrap_or_else(|err| panic!("{tool}: {err}"));
    assert_ne!(outcome.result.is_error, Some(true), "{tool}: {outcome:?}");
    text(&outcome.result)
}

/// The text content blocks of a result, joined by newlines.
fn text(result: &CallToolResult) -> String {
    let value = serde_json::to_value(result).expect("serialize result");
    value["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|block| block["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn names(t: &TestHub) -> Vec<String> {
    t.hub
        .catalog()
        .iter()
        .map(|tool| tool.exposed_name.clone())
        .collect()
}

/// What the hub offers as the reference server's client: the configured roots (the server's
/// `get-roots-list` tool exists only for a client that declares roots, and reports what it got),
/// log messages at the configured level in the server's log tail, and elicitation answered by
/// the server's policy (declined: nobody was asked).
#[tokio::test]
async fn roots_logs_and_elicitation_reach_the_reference_server() {
    let workspace = tempfile::tempdir().expect("tempdir");
    let command = support::node_bin_dir().join("mcp-server-everything");
    let yaml = format!(
        "mcpServers:\n  everything:\n    command: {}\n    args: [stdio]\n    roots: [\"{}\"]\n\
         \x20   log_level: info\n    elicitation: decline\n",
        command.display(),
        workspace.path().display()
    );
    let t = TestHub::start(&yaml, SETTLE).await;
    let local = switchboard::access::Caller::local();
    let catalog = t.hub.catalog();
    assert!(
        catalog.get("everything__get-roots-list").is_some(),
        "the server registers its roots tool only for a client with roots"
    );
    // The server fetches the roots, and logs that it did, while this call runs: the call hears
    // the log message too.
    let (logs, mut logged) = mpsc::channel(16);
    let outcome = t
        .hub
        .invoke(
            &local,
            "everything__get-roots-list",
            json!({}),
            CallOptions {
                logs: Some(logs),
                ..CallOptions::default()
            },
        )
        .await
        .expect("get-roots-list");
    let during: Vec<String> = std::iter::from_fn(|| logged.try_recv().ok()).collect();
    assert!(
        during
            .iter()
            .any(|line| line.contains("1 root(s) received")),
        "the log message sent during the call reached it: {during:?}"
    );
    let uri = url::Url::from_directory_path(workspace.path()).expect("file URI");
    let listed = text(&outcome.result);
    assert!(
        listed.contains(uri.as_str().trim_end_matches('/')),
        "the server sees the configured root {uri}: {listed}"
    );
    support::eventually(Duration::from_secs(10), "the roots log message", || {
        t.status("everything")
            .log_tail
            .iter()
            .any(|line| line.starts_with("[info]") && line.contains("1 root(s) received"))
    })
    .await;

    let outcome = t
        .hub
        .invoke(
            &local,
            "everything__trigger-elicitation-request",
            json!({}),
            CallOptions::default(),
        )
        .await
        .expect("trigger-elicitation-request");
    let answer = text(&outcome.result);
    assert!(answer.contains("declined"), "{answer}");
}
