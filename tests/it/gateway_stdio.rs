//! `switchboard gateway --stdio`: the real binary as a child process, an rmcp client on its
//! stdin/stdout, the real server behind it. The client sees the server's catalog and agents,
//! its calls are runs the server stored, progress reaches it under its own token, its
//! cancellation reaches the upstream tool, and a catalog change reaches it as
//! `notifications/tools/list_changed`; a key from `SWITCHBOARD_KEY` is the caller (see
//! `roles/gateway.rs`).

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientRequest, ProgressNotificationParam,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::support;
use crate::support::served::Served;

/// Keeps the progress values it is told, and counts list changes.
#[derive(Clone, Default)]
pub(crate) struct Heard(Arc<Mutex<Vec<f64>>>, Arc<AtomicUsize>);

impl ClientHandler for Heard {
    async fn on_progress(&self, p: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.0.lock().expect("lock").push(p.progress);
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

/// An MCP client of `switchboard gateway --stdio --server BASE`, with `key` in the child's
/// `SWITCHBOARD_KEY`; the child is killed with the client.
pub(crate) async fn bridged<H: ClientHandler>(
    handler: H,
    base: &str,
    key: Option<&str>,
) -> (RunningService<RoleClient, H>, tokio::process::Child) {
    let mut command = tokio::process::Command::new(support::switchboard_bin());
    command
        .args(["gateway", "--stdio", "--server", base])
        .env_remove("SWITCHBOARD_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(key) = key {
        command.env("SWITCHBOARD_KEY", key);
    }
    let mut child = command.spawn().expect("switchboard gateway --stdio");
    let stdout = child.stdout.take().expect("stdout");
    let stdin = child.stdin.take().expect("stdin");
    let client = handler
        .serve((stdout, stdin))
        .await
        .expect("an MCP session over the gateway's stdio");
    (client, child)
}

pub(crate) fn params(tool: &str, arguments: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(tool.to_owned())
        .with_arguments(arguments.as_object().cloned().expect("an object"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stdio_gateway_passes_calls_progress_cancellation_and_list_changes() {
    let t = Served::demo(|_| String::new(), 0).await;
    let heard = Heard::default();
    let (client, _child) = bridged(heard.clone(), &t.base, None).await;

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    for expected in ["calc__evaluate", "testkit__sleep", "agent__calc"] {
        assert!(names.contains(&expected), "{expected}: {names:?}");
    }

    let done = client
        .call_tool(params("testkit__sleep", json!({"ms": 300, "steps": 3})))
        .await
        .expect("the sleep");
    assert_eq!(done.is_error, Some(false), "{done:?}");
    // The client's own handler may run after the answer (rmcp runs each on a task of its own).
    let deadline = Instant::now() + Duration::from_secs(5);
    while heard.0.lock().expect("lock").len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut seen = heard.0.lock().expect("lock").clone();
    seen.sort_by(f64::total_cmp);
    assert_eq!(seen, [1.0, 2.0, 3.0], "every step's progress came through");
    let meta = done.meta.as_ref().expect("_meta");
    let run = t
        .ended(meta.0["switchboard/run_id"].as_str().expect("run id"))
        .await;
    assert_eq!(run["status"], "succeeded", "{run:#}");

    // A long sleep, cancelled after its first progress: the testkit hears it.
    let before = heard.0.lock().expect("lock").len();
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params(
        "testkit__sleep",
        json!({"ms": 30_000, "steps": 300}),
    )));
    let handle = client
        .send_request_with_option(request, PeerRequestOptions::no_options())
        .await
        .expect("sent");
    let deadline = Instant::now() + Duration::from_secs(15);
    while heard.0.lock().expect("lock").len() == before {
        assert!(Instant::now() < deadline, "no progress from the long sleep");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle
        .cancel(Some("enough".to_owned()))
        .await
        .expect("cancel sent");
    t.testkit_said("cancelled").await;

    let added = client
        .call_tool(params("testkit__add_tool", json!({"name": "bridged"})))
        .await
        .expect("add_tool");
    assert_eq!(added.is_error, Some(false), "{added:?}");
    while heard.1.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "no list_changed through the gateway"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tools = client.list_all_tools().await.expect("tools/list again");
    assert!(tools.iter().any(|tool| tool.name == "testkit__bridged"));
    client.cancel().await.expect("close");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stdio_gateway_says_which_server_it_cannot_reach() {
    let port = support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (client, _child) = bridged((), &base, None).await;
    let err = client
        .list_all_tools()
        .await
        .expect_err("nothing listens there");
    assert!(err.to_string().contains(&format!("{base}/mcp")), "{err}");
    client.cancel().await.expect("close");
}
