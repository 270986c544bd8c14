//! Calls through `/mcp` are runs: a real rmcp client over Streamable HTTP against the real
//! server, the bundled notes server (trusted for its annotations: its writes and deletes need
//! a person's approval) and the scripted fake model.
//!
//! - a client that can ask its person (MCP elicitation) is asked; an approval runs the write,
//!   a denial (with the person's reason) leaves the notes untouched; each call is a run in the
//!   store with its caller and its act step, linked from the result's `_meta`;
//! - a client that cannot ask waits, with `approval.unattended: wait`, for a decision in the
//!   API, and hears a denial made there;
//! - an agent called as a tool runs a whole run (its tool calls included), with a progress
//!   notification per step, and answers with its run, conversation and trace link; cancelling
//!   the call cancels the run.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig,
    ClientRequest, ElicitRequestParams, ElicitResult, ElicitationAction, Implementation,
    ProgressNotificationParam, ProtocolVersion,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use switchboard::gateway::{RUN_META, TRACE_META};
use switchboard_fake_llm::Reply;

use crate::support;
use crate::support::served::Served;

/// A client whose person answers each form with the next scripted answer, and that keeps the
/// forms' messages and the progress it is told.
#[derive(Clone, Default)]
struct Person {
    answers: Arc<Mutex<Vec<Value>>>,
    asked: Arc<Mutex<Vec<String>>>,
    progress: Arc<Mutex<Vec<Progressed>>>,
    elicits: bool,
}

/// One progress notification: its value and message.
type Progressed = (f64, Option<String>);

impl ClientHandler for Person {
    fn get_info(&self) -> ClientConfig {
        let capabilities = if self.elicits {
            ClientCapabilities::builder().enable_elicitation().build()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(capabilities, Implementation::new("person", "1"))
            .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = request {
            self.asked.lock().expect("lock").push(message);
        }
        let answer = self.answers.lock().expect("lock").remove(0);
        let mut result = ElicitResult::new(ElicitationAction::Accept);
        result.content = Some(answer);
        Ok(result)
    }

    async fn on_progress(&self, p: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.progress
            .lock()
            .expect("lock")
            .push((p.progress, p.message));
    }
}

impl Person {
    fn asking(answers: Vec<Value>) -> Person {
        Person {
            answers: Arc::new(Mutex::new(answers)),
            elicits: true,
            ..Person::default()
        }
    }

    async fn connect(&self, t: &Served) -> RunningService<RoleClient, Person> {
        let transport = StreamableHttpClientTransport::from_uri(format!("{}/mcp", t.base));
        self.clone()
            .serve(transport)
            .await
            .expect("an MCP client of /mcp")
    }
}

fn params(tool: &str, arguments: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(tool.to_owned())
        .with_arguments(arguments.as_object().cloned().expect("an object"))
}

fn text(result: &CallToolResult) -> String {
    switchboard::runs::result_text(result)
}

/// The demo servers plus notes, trusted for its annotations, and `approval` as the config's
/// `approval:` section.
async fn start(approval: &str) -> Served {
    let notes = support::bundled_stdio("notes", "notes", &[])
        .replace("    trusted: true\n", "    trusted: annotations\n");
    let approval = approval.to_owned();
    Served::demo(move |_| format!("{notes}approval:\n{approval}"), 1).await
}

/// The run a call's result names in its `_meta`, once it has ended.
async fn run_of(t: &Served, result: &CallToolResult) -> Value {
    let meta = result.meta.as_ref().expect("the result's _meta");
    let id = meta.0[RUN_META].as_str().expect("a run id");
    let trace = meta.0[TRACE_META].as_str().expect("a trace link");
    assert!(trace.ends_with(&format!("/debug/runs/{id}")), "{trace}");
    t.ended(id).await
}

async fn note_titles(client: &RunningService<RoleClient, Person>) -> Vec<String> {
    let listed = client
        .call_tool(params("notes__list_notes", json!({})))
        .await
        .expect("list_notes");
    assert_eq!(listed.is_error, Some(false), "{listed:?}");
    let text = text(&listed);
    ["kept", "never"]
        .iter()
        .filter(|title| text.contains(*title))
        .map(|title| (*title).to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_call_asks_the_clients_person_and_every_call_is_a_traced_run() {
    let t = start("  rules: []\n").await;
    let person = Person::asking(vec![
        json!({"approve": true}),
        json!({"approve": false, "reason": "not this one"}),
    ]);
    let client = person.connect(&t).await;

    let saved = client
        .call_tool(params(
            "notes__add_note",
            json!({"title": "kept", "body": "b"}),
        ))
        .await
        .expect("add_note");
    assert_eq!(saved.is_error, Some(false), "{saved:?}");
    let asked = person.asked.lock().expect("lock").clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].contains("notes__add_note"), "{asked:?}");
    assert!(
        asked[0].contains("\"kept\""),
        "the form shows the arguments: {asked:?}"
    );

    let run = run_of(&t, &saved).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["user"], "local", "{run:#}");
    assert_eq!(run["conversation_id"], Value::Null, "{run:#}");
    let steps = run["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "one act step: {run:#}");
    assert_eq!(steps[0]["name"], "notes__add_note");
    assert_eq!(steps[0]["kind"], "act");
    assert_eq!(steps[0]["status"], "succeeded");

    let denied = client
        .call_tool(params(
            "notes__add_note",
            json!({"title": "never", "body": "b"}),
        ))
        .await
        .expect("a result");
    assert_eq!(denied.is_error, Some(true), "{denied:?}");
    assert!(text(&denied).contains("not this one"), "{}", text(&denied));
    assert_eq!(run_of(&t, &denied).await["status"], "failed");
    assert_eq!(
        note_titles(&client).await,
        ["kept"],
        "the denied note was not written"
    );

    // A tool the catalog lacks is a protocol error, and no run.
    let (_, before) = t.request(Method::GET, "/api/runs", None).await;
    let unknown = client.call_tool(params("notes__nope", json!({}))).await;
    assert!(unknown.is_err(), "{unknown:?}");
    let (_, after) = t.request(Method::GET, "/api/runs", None).await;
    assert_eq!(
        before["runs"].as_array().map(Vec::len),
        after["runs"].as_array().map(Vec::len)
    );
    client.cancel().await.expect("close");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_cannot_ask_waits_for_a_decision_in_the_api() {
    let t = start("  unattended: wait\n  rules: []\n").await;
    let client = Person::default().connect(&t).await;
    let arguments = json!({"title": "never", "body": "b"});
    let call = {
        let peer = client.peer().clone();
        tokio::spawn(async move { peer.call_tool(params("notes__add_note", arguments)).await })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let pending = loop {
        let (_, listed) = t.request(Method::GET, "/api/approvals", None).await;
        if let Some(first) = listed["approvals"].as_array().and_then(|a| a.first()) {
            break first.clone();
        }
        assert!(Instant::now() < deadline, "no approval opened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(pending["tool"], "notes__add_note", "{pending:#}");
    assert!(!call.is_finished(), "the call waits for the decision");
    let path = format!(
        "/api/runs/{}/approvals/{}",
        pending["run_id"].as_str().expect("run"),
        pending["id"].as_str().expect("id")
    );
    let body = json!({"decision": "deny", "reason": "decided in the UI"});
    let (status, _) = t.request(Method::POST, &path, Some(body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let denied = call.await.expect("joined").expect("a result");
    assert_eq!(denied.is_error, Some(true), "{denied:?}");
    assert!(
        text(&denied).contains("decided in the UI"),
        "{}",
        text(&denied)
    );
    client.cancel().await.expect("close");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_is_a_tool_with_progress_per_step_and_cancellation() {
    let t = Served::demo(|_| String::new(), 0).await;
    let person = Person::default();
    let client = person.connect(&t).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let agent = tools
        .iter()
        .find(|tool| tool.name == "agent__calc")
        .expect("the calc agent is a tool");
    assert_eq!(agent.input_schema["required"], json!(["message"]));

    t.fake.push(Reply::tool_call(
        "c1",
        "calc__evaluate",
        json!({"expression": "6*7"}),
    ));
    t.fake.push(Reply::text("It is 42."));
    let answer = client
        .call_tool(params("agent__calc", json!({"message": "What is 6*7?"})))
        .await
        .expect("the agent's answer");
    assert_eq!(answer.is_error, Some(false), "{answer:?}");
    assert_eq!(text(&answer), "It is 42.");
    let structured = answer.structured_content.clone().expect("structured");
    assert_eq!(structured["status"], "succeeded");
    let run_id = structured["run_id"].as_str().expect("run id");
    assert!(
        structured["trace"]
            .as_str()
            .is_some_and(|link| link.ends_with(&format!("/debug/runs/{run_id}"))),
        "{structured:#}"
    );
    let run = t.ended(run_id).await;
    assert_eq!(run["agent"], "calc");
    assert_eq!(run["conversation_id"], structured["conversation_id"]);
    let names: Vec<&str> = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"calc__evaluate"), "{names:?}");
    // The client's handler may run after the answer (rmcp runs each on a task of its own).
    let deadline = Instant::now() + Duration::from_secs(5);
    while person.progress.lock().expect("lock").len() < names.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let progress = person.progress.lock().expect("lock").clone();
    assert_eq!(
        progress.len(),
        names.len(),
        "one progress per step: {progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|(_, m)| m.as_deref().is_some_and(|m| m.contains("succeeded"))),
        "{progress:?}"
    );

    // A slow model: the client gives up, and the run is cancelled.
    t.fake.push(Reply::SlowFirstToken {
        delay: Duration::from_secs(30),
        then: Box::new(Reply::text("too late")),
    });
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params(
        "agent__calc",
        json!({"message": "Think long."}),
    )));
    let handle = client
        .send_request_with_option(request, PeerRequestOptions::no_options())
        .await
        .expect("sent");
    let deadline = Instant::now() + Duration::from_secs(30);
    let running = loop {
        let (_, runs) = t
            .request(Method::GET, "/api/runs?status=running", None)
            .await;
        if let Some(first) = runs["runs"].as_array().and_then(|r| r.first()) {
            break first["id"].as_str().expect("id").to_owned();
        }
        assert!(Instant::now() < deadline, "the agent's run never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    handle
        .cancel(Some("enough".to_owned()))
        .await
        .expect("cancel sent");
    assert_eq!(t.ended(&running).await["status"], "cancelled");

    let bad = client
        .call_tool(params("agent__calc", json!({"text": "hi"})))
        .await;
    let err = bad.expect_err("bad arguments are a protocol error");
    assert!(
        err.to_string().contains("`text` is not an argument"),
        "{err}"
    );
    client.cancel().await.expect("close");
    t.server.stop().await;
}

/// On 2026-07-28 a server may not ask the client anything mid-request, so a client of that era
/// is unattended even when it declares elicitation: with `unattended: deny` the gated call is
/// refused at once, saying so, and the client is never asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_era_client_is_unattended_even_if_it_declares_elicitation() {
    use rmcp::{ClientLifecycleMode, ClientServiceExt};

    let t = start("  rules: []\n").await;
    let person = Person::asking(Vec::new());
    let transport = StreamableHttpClientTransport::from_uri(format!("{}/mcp", t.base));
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let client = person
        .clone()
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .expect("a 2026-07-28 client of /mcp");
    let refused = client
        .call_tool(params(
            "notes__add_note",
            json!({"title": "never", "body": "b"}),
        ))
        .await
        .expect("a result");
    assert_eq!(refused.is_error, Some(true), "{refused:?}");
    assert!(
        text(&refused).contains("approval.unattended"),
        "{}",
        text(&refused)
    );
    assert!(
        person.asked.lock().expect("lock").is_empty(),
        "nobody was asked"
    );
    client.cancel().await.expect("close");
    t.server.stop().await;
}
