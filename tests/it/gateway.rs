//! `/mcp` with `auth: none` on loopback, a real rmcp client over Streamable HTTP and the bundled
//! testkit behind it: a long call's progress notifications reach the client, the client's
//! cancellation reaches the upstream server (the testkit says so on its stderr), and a change
//! of the catalog reaches the client as `notifications/tools/list_changed`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientRequest, ProgressNotificationParam,
};
use rmcp::service::{NotificationContext, PeerRequestOptions};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::json;

use crate::support::served::Served;

/// Keeps the progress values it is notified of, and counts list changes.
#[derive(Clone, Default)]
struct Progressed(Arc<Mutex<Vec<f64>>>, Arc<std::sync::atomic::AtomicUsize>);

impl ClientHandler for Progressed {
    async fn on_progress(&self, p: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.0.lock().expect("lock").push(p.progress);
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Progressed {
    fn seen(&self) -> Vec<f64> {
        self.0.lock().expect("lock").clone()
    }
}

fn sleep(ms: u64, steps: u32) -> CallToolRequestParams {
    let arguments = json!({"ms": ms, "steps": steps});
    CallToolRequestParams::new("testkit__sleep")
        .with_arguments(arguments.as_object().cloned().expect("an object"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_cancellation_pass_through_the_gateway() {
    let t = Served::demo(|_| String::new(), 0).await;
    let progressed = Progressed::default();
    let transport = StreamableHttpClientTransport::from_uri(format!("{}/mcp", t.base));
    let client = progressed
        .clone()
        .serve(transport)
        .await
        .expect("an MCP client of /mcp");

    let done = client.call_tool(sleep(300, 3)).await.expect("the sleep");
    assert_eq!(done.is_error, Some(false), "{done:?}");
    // rmcp runs a client's notification handlers on tasks of their own: the last one may be
    // handled after the answer, so wait for it (its order is not the point here).
    let deadline = Instant::now() + Duration::from_secs(5);
    while progressed.seen().len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut seen = progressed.seen();
    seen.sort_by(f64::total_cmp);
    assert_eq!(seen, [1.0, 2.0, 3.0], "every step's progress arrived");

    // A long sleep, cancelled by the client after its first progress.
    let before = progressed.seen().len();
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(sleep(30_000, 300)));
    let handle = client
        .send_request_with_option(request, PeerRequestOptions::no_options())
        .await
        .expect("sent");
    let deadline = Instant::now() + Duration::from_secs(10);
    while progressed.seen().len() == before {
        assert!(Instant::now() < deadline, "no progress from the long sleep");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle
        .cancel(Some("enough".to_owned()))
        .await
        .expect("cancel sent");
    t.testkit_said("cancelled").await;

    // The testkit grows a tool: the catalog changes, and the client hears of it.
    let arguments = json!({"name": "fresh"});
    let added = client
        .call_tool(
            CallToolRequestParams::new("testkit__add_tool")
                .with_arguments(arguments.as_object().cloned().expect("an object")),
        )
        .await
        .expect("add_tool");
    assert_eq!(added.is_error, Some(false), "{added:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while progressed.1.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "no tools/list_changed reached the client"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(
        tools.iter().any(|t| t.name == "testkit__fresh"),
        "{:?}",
        tools.iter().map(|t| t.name.clone()).collect::<Vec<_>>()
    );
    client.cancel().await.expect("close the client");
}

/// A config reload that adds a server changes the catalog: a connected client hears
/// `notifications/tools/list_changed` and lists the new server's tools.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_adds_a_server_reaches_a_connected_client() {
    let config_dir = Arc::new(Mutex::new(None));
    let seen_dir = config_dir.clone();
    let t = Served::demo(
        move |dir| {
            *seen_dir.lock().expect("lock") = Some(dir.to_owned());
            String::new()
        },
        0,
    )
    .await;
    let progressed = Progressed::default();
    let transport = StreamableHttpClientTransport::from_uri(format!("{}/mcp", t.base));
    let client = progressed
        .clone()
        .serve(transport)
        .await
        .expect("an MCP client of /mcp");
    let before = client.list_all_tools().await.expect("tools/list");
    assert!(!before.iter().any(|tool| tool.name == "calc2__evaluate"));

    let dir = config_dir
        .lock()
        .expect("lock")
        .clone()
        .expect("the config dir");
    let path = dir.join("switchboard.yaml");
    let yaml = std::fs::read_to_string(&path).expect("config");
    let calc2 = crate::support::bundled_stdio("calc2", "calc", &[]);
    std::fs::write(
        &path,
        yaml.replacen("mcpServers:\n", &format!("mcpServers:\n{calc2}"), 1),
    )
    .expect("config with calc2");
    let (status, body) = t.request(Method::POST, "/api/config/reload", None).await;
    assert!(status.is_success(), "{status} {body:#}");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if progressed.1.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            let tools = client.list_all_tools().await.expect("tools/list again");
            if tools.iter().any(|tool| tool.name == "calc2__evaluate") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no list_changed with calc2's tools after the reload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.cancel().await.expect("close the client");
}

/// Shutdown ends `/mcp` sessions: a client with its notification stream open does not hold
/// the server for the drain timeout (5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_mcp_sessions_at_once() {
    let t = Served::demo(|_| String::new(), 0).await;
    let transport = StreamableHttpClientTransport::from_uri(format!("{}/mcp", t.base));
    let client = Progressed::default()
        .serve(transport)
        .await
        .expect("an MCP client of /mcp");
    client.list_all_tools().await.expect("tools/list");
    let began = Instant::now();
    t.server.stop().await;
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "shutdown waited {:?} for an open /mcp session",
        began.elapsed()
    );
    drop(client);
}
