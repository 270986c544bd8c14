//! The MCP handshake and what follows from it, against servers that get it wrong: a protocol
//! version no revision defines (the bundled `testkit` over stdio, pinned by
//! `SWITCHBOARD_TESTKIT_PROTOCOL`), a server without the `tools` capability (a test-local HTTP
//! server that counts the `tools/list` it is sent), an unreachable server (its error text), and
//! a call whose answer is lost on the way back (a TCP proxy that forwards the `tools/call` and
//! then drops the client's connection), over the real HTTP API.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rmcp::handler::server::common::schema_for_empty_input;
use rmcp::handler::server::router::tool::{ToolRoute, ToolRouter};
use rmcp::model::{
    Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::support::{self, InProcessServer, McpHttpServer, RoutedTools, TestHub};

const SETTLE: Duration = Duration::from_secs(20);
const SOON: Duration = Duration::from_secs(10);

/// A stdio testkit that speaks only `version`, over `initialize`.
fn pinned_testkit(name: &str, version: &str) -> String {
    format!(
        "mcpServers:\n{}    env:\n      SWITCHBOARD_TESTKIT_PROTOCOL: \"{version}\"\n",
        support::bundled_stdio(name, "testkit", &[])
    )
}

/// Words that only our internals put in a message: Rust paths and types of rmcp and reqwest.
fn assert_no_internals(text: &str) {
    for internal in [
        "rmcp",
        "::",
        "WorkerTransport",
        "reqwest",
        "Client error",
        "Some(",
    ] {
        assert!(
            !text.contains(internal),
            "`{internal}` is an internal and must not be shown: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Protocol versions

/// A server answering `initialize` with a version no MCP revision defines is not marked ready:
/// the handshake fails, saying which version it answered and which ones we speak, and none of
/// its tools reach the catalog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initialize_answer_with_an_undefined_version_fails_the_handshake() {
    for version in ["2025-02-30", "1.0"] {
        let t = TestHub::start(&pinned_testkit("odd", version), SETTLE).await;
        let status = t.status("odd");
        assert_ne!(
            status.status,
            switchboard::mcp::ConnectionState::Ready,
            "{version}: {status:#?}"
        );
        let error = status.last_error.clone().unwrap_or_default();
        assert!(
            error.contains(&format!("protocol version `{version}`"))
                && error.contains("does not speak")
                && error.contains("2025-11-25"),
            "{version}: the error should name the version and what we speak: {error}"
        );
        assert_no_internals(&error);
        assert_eq!(status.pid, None, "{status:#?}");
        assert!(
            t.hub.catalog().iter().all(|tool| tool.server != "odd"),
            "{version}: tools of a refused server reached the catalog"
        );
        t.hub.mcp().shutdown().await;
    }
}

/// The fallback the spec allows: a server that answers `initialize` with another revision we
/// speak (older than the one offered) is used at that revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initialize_answer_with_an_older_revision_we_speak_is_accepted() {
    let t = TestHub::start(&pinned_testkit("older", "2025-03-26"), SETTLE).await;
    let status = t.status("older");
    assert_eq!(
        status.status,
        switchboard::mcp::ConnectionState::Ready,
        "{status:#?}"
    );
    assert_eq!(status.protocol_version.as_deref(), Some("2025-03-26"));
    assert!(status.tool_count > 0, "{status:#?}");
    assert_eq!(status.note, None, "{status:#?}");
    t.hub.mcp().shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Capabilities

/// A server that declares no `tools` capability but would list a tool if asked.
#[derive(Clone)]
struct NoToolsCapability {
    lists: Arc<AtomicUsize>,
}

impl ServerHandler for NoToolsCapability {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_prompts().build())
            .with_server_info(Implementation::new("no-tools", "1.0.0"))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            "hidden",
            "Listed although the server declared no tools capability.",
            schema_for_empty_input(),
        )]))
    }
}

/// A server without the `tools` capability is never sent `tools/list`, shows no tools, and is
/// ready with a note saying why it has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_tools_capability_is_not_asked_for_tools() {
    let lists = Arc::new(AtomicUsize::new(0));
    let server = McpHttpServer::start(NoToolsCapability {
        lists: lists.clone(),
    })
    .await;
    let yaml = format!("mcpServers:\n  quiet:\n    url: {}\n", server.url);
    let t = TestHub::start(&yaml, SETTLE).await;
    let status = t.status("quiet");
    assert_eq!(
        status.status,
        switchboard::mcp::ConnectionState::Ready,
        "{status:#?}"
    );
    assert_eq!(lists.load(Ordering::SeqCst), 0, "tools/list was sent");
    assert_eq!(status.tool_count, 0, "{status:#?}");
    assert!(
        t.hub.catalog().iter().all(|tool| tool.server != "quiet"),
        "the server's tools reached the catalog"
    );
    let note = status.note.clone().unwrap_or_default();
    assert!(note.contains("`tools` capability"), "{status:#?}");
    t.hub.mcp().shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Errors: no internals, outcome unknown

/// A remote server that cannot be reached: the status says so in words, without the rmcp
/// transport's type names (which also reached 503 bodies through "last error").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_described_without_internals() {
    let port = support::free_port();
    let yaml = format!("mcpServers:\n  gone:\n    url: http://127.0.0.1:{port}/mcp\n");
    let t = TestHub::start(&yaml, SETTLE).await;
    let status = t.status("gone");
    let error = status.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("handshake failed") && error.contains("could not connect"),
        "{status:#?}"
    );
    assert_no_internals(&error);
    t.hub.mcp().shutdown().await;
}

/// A TCP proxy in front of an HTTP server. Once armed, it forwards the next whole request that
/// carries a `tools/call`, then closes the client's connection without a byte of the answer
/// (the server keeps its connection until it has answered): the call was delivered and its
/// answer lost. Everything else passes through.
struct CuttingProxy {
    url: String,
    armed: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl CuttingProxy {
    async fn start(upstream_url: &str) -> CuttingProxy {
        let parsed = url::Url::parse(upstream_url).expect("upstream url");
        let upstream: SocketAddr = format!(
            "{}:{}",
            parsed.host_str().expect("host"),
            parsed.port().expect("port")
        )
        .parse()
        .expect("upstream address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let armed = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let (task_armed, task_cuts, task_stop) = (armed.clone(), cuts.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = task_stop.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { break };
                tokio::spawn(relay(
                    client,
                    upstream,
                    task_armed.clone(),
                    task_cuts.clone(),
                    task_stop.clone(),
                ));
            }
        });
        CuttingProxy {
            url: format!("http://{addr}{}", parsed.path()),
            armed,
            cuts,
            stop,
        }
    }

    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    armed: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
    stop: CancellationToken,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let cut = CancellationToken::new();
    let down_cut = cut.clone();
    let down = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            tokio::select! {
                () = down_cut.cancelled() => break,
                read = from_server.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => if to_client.write_all(&buf[..n]).await.is_err() { return },
                },
            }
        }
        // Cut: the client's connection closes now; the server's stays open until its answer
        // (a JSON-RPC message) has arrived, so the call is not cut off on the server's side.
        drop(to_client);
        let mut answer = Vec::new();
        while !contains(&answer, b"\"jsonrpc\"") {
            let read = tokio::select! {
                () = stop.cancelled() => return,
                read = from_server.read(&mut buf) => read,
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    });
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from_client.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to_server.write_all(&buf[..n]).await.is_err() {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if armed.load(Ordering::SeqCst)
            && holds_whole_tools_call(&seen)
            && armed.swap(false, Ordering::SeqCst)
        {
            cuts.fetch_add(1, Ordering::SeqCst);
            cut.cancel();
            break;
        }
    }
    drop(from_client);
    let _ = down.await;
    drop(to_server);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find_last(haystack, needle).is_some()
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Whether `seen` (what a client sent on one connection) ends with a complete request whose
/// body is a `tools/call`: its headers and as many body bytes as its `Content-Length` says.
fn holds_whole_tools_call(seen: &[u8]) -> bool {
    let Some(call) = find_last(seen, b"\"tools/call\"") else {
        return false;
    };
    let Some(head_end) = find_last(&seen[..call], b"\r\n\r\n") else {
        return false;
    };
    let head_start = find_last(&seen[..head_end], b"POST ").unwrap_or(0);
    let head = String::from_utf8_lossy(&seen[head_start..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    seen.len() >= head_end + 4 + length
}

/// An HTTP MCP server with `record` (counts its calls) and `count` (says how many).
async fn counting_server(calls: Arc<AtomicUsize>) -> McpHttpServer {
    let mut router = ToolRouter::new();
    let recorded = calls.clone();
    router.add_route(ToolRoute::new(
        Tool::new("record", "Counts one call.", schema_for_empty_input()),
        move || {
            recorded.fetch_add(1, Ordering::SeqCst);
            "recorded".to_owned()
        },
    ));
    router.add_route(ToolRoute::new(
        Tool::new(
            "count",
            "How many times record ran.",
            schema_for_empty_input(),
        ),
        move || calls.load(Ordering::SeqCst).to_string(),
    ));
    McpHttpServer::start(RoutedTools { router }).await
}

fn config_file(dir: &Path, servers: &str) -> std::path::PathBuf {
    let path = dir.join("switchboard.yaml");
    std::fs::write(
        &path,
        format!(
            "server:\n  bind: 127.0.0.1:0\n  data_dir: {}\nmcpServers:\n{servers}",
            dir.join("data").display()
        ),
    )
    .expect("write config");
    path
}

async fn wait_ready(served: &InProcessServer, name: &str) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let (_, body) = served
            .request(reqwest::Method::GET, "/api/mcp/servers", None)
            .await;
        let ready = body["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"] == name && s["status"] == "ready");
        if ready {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{name}` not ready within {SETTLE:?}: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `tools/call` that reached the server but whose answer never came back: the client gets a
/// 502 that says "outcome unknown" in words (no rmcp type names, no URL), the call is not
/// retried (the server ran it exactly once), and the session goes on serving calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_answer_is_lost_is_outcome_unknown_and_never_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = counting_server(calls.clone()).await;
    let proxy = CuttingProxy::start(&server.url).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config_file(dir.path(), &format!("  lost:\n    url: {}\n", proxy.url));
    let served = InProcessServer::start(&path).await;
    wait_ready(&served, "lost").await;

    proxy.arm();
    let (status, body) = served
        .request(
            reqwest::Method::POST,
            "/api/tools/lost__record/invoke",
            Some(json!({})),
        )
        .await;
    assert_eq!(
        proxy.cuts.load(Ordering::SeqCst),
        1,
        "the proxy cut no call"
    );
    assert_eq!(status, reqwest::StatusCode::BAD_GATEWAY, "{body:#}");
    assert_eq!(body["error"]["code"], "tool_outcome_unknown", "{body:#}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("outcome unknown") && message.contains("lost"),
        "{message}"
    );
    assert!(message.contains("not retried"), "{message}");
    assert_no_internals(&body.to_string());
    let port = url::Url::parse(&proxy.url)
        .ok()
        .and_then(|u| u.port())
        .expect("proxy port");
    assert!(
        !body.to_string().contains(&port.to_string()),
        "the server's address leaked: {body:#}"
    );
    assert!(
        body["error"]["request_id"].as_str().is_some(),
        "the log has the details under the request id: {body:#}"
    );

    // The server ran the call once. The client's error is the call's end: a retry would have
    // happened before it (rmcp answers a request once), so what the server saw is final.
    support::eventually(SOON, "the server to have run the call", || {
        calls.load(Ordering::SeqCst) >= 1
    })
    .await;
    let (status, body) = served
        .request(
            reqwest::Method::POST,
            "/api/tools/lost__count/invoke",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body:#}");
    assert_eq!(
        body["result"]["content"][0]["text"],
        Value::from("1"),
        "the lost call ran again: {body:#}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    served.stop().await;
}
