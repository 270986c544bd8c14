//! `/mcp` sessions behind several replicas: two real servers on one Postgres store (the
//! machine's, as in CI). A client initializes with replica A; its next requests, with A's
//! `Mcp-Session-Id`, reach replica B, which carries the session on (it finds the client's
//! `initialize` in the store) instead of answering 404; a DELETE on B ends the session for
//! both.

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_fake_llm::FakeLlm;

use crate::support::served::wait_ready;
use crate::support::testdb::TestDb;
use crate::support::{self, InProcessServer};

/// One JSON-RPC message to `base/mcp` in `session`; the status and the JSON-RPC reply (read
/// from an SSE body's `data:` line, or a JSON body).
async fn post(
    http: &reqwest::Client,
    base: &str,
    session: Option<&str>,
    message: Value,
) -> (StatusCode, Option<String>, Value) {
    let mut request = http
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&message);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.expect("POST /mcp");
    let status = response.status();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.expect("body");
    let reply = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
        .or_else(|| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    (status, session, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_begun_on_one_replica_goes_on_on_another() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = support::write_demo_config(dir.path(), &fake, "");
    let yaml = std::fs::read_to_string(&path).expect("config");
    let yaml = yaml.replacen(
        "server:\n",
        &format!("server:\n  database_url: \"{}\"\n", db.url),
        1,
    );
    std::fs::write(&path, yaml).expect("config with the database");
    let a = InProcessServer::start(&path).await;
    let b = InProcessServer::start(&path).await;
    wait_ready(&a, 3).await;
    wait_ready(&b, 3).await;
    let http = reqwest::Client::new();

    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "replicas", "version": "1"}}});
    let (status, session, reply) = post(&http, &a.base, None, initialize).await;
    assert_eq!(status, StatusCode::OK, "{reply:#}");
    let session = session.expect("A gives a session id");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _, _) = post(&http, &a.base, Some(&session), initialized).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (status, _, reply) = post(&http, &b.base, Some(&session), list.clone()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "B carries A's session on: {reply:#}"
    );
    let names: Vec<&str> = reply["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    assert!(names.contains(&"calc__evaluate"), "{names:?}");
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "calc__evaluate", "arguments": {"expression": "6*7"}}});
    let (status, _, reply) = post(&http, &b.base, Some(&session), call).await;
    assert_eq!(status, StatusCode::OK, "{reply:#}");
    assert_eq!(reply["result"]["content"][0]["text"], "42", "{reply:#}");

    // Ended on B: neither replica knows it any more.
    let ended = http
        .delete(format!("{}/mcp", b.base))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("DELETE /mcp");
    assert!(ended.status().is_success(), "{}", ended.status());
    let fresh = InProcessServer::start(&path).await;
    wait_ready(&fresh, 3).await;
    let (status, _, reply) = post(&http, &fresh.base, Some(&session), list).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an ended session is gone: {reply:#}"
    );
    fresh.stop().await;
    b.stop().await;
    a.stop().await;
}
