//! Runs through the real server (`app::serve_on` on port 0) with bundled MCP servers and the
//! scripted fake LLM: the chat event stream, runs and conversations APIs, cancellation, client
//! disconnects, the OpenAI-compatible API (also through the official Python SDK), and the
//! `switchboard chat` command.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_fake_llm::{FakeLlm, FakeToolCall, Fallback, Reply, Usage};

use crate::support::events::{Events, Received};
use crate::support::{self};

const SETTLE: Duration = Duration::from_secs(20);
/// Longest wait for any one event or state in these tests.
const PATIENCE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Harness

/// The server with calc, clock and testkit, model `fake` (the fake LLM), model `hosted` (no key,
/// so unavailable) and agent `calc` (calc tools only).
struct Served {
    server: support::InProcessServer,
    fake: FakeLlm,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Served {
    type Target = support::InProcessServer;
    fn deref(&self) -> &Self::Target {
        &self.server
    }
}

impl Served {
    async fn start() -> Served {
        let fake = FakeLlm::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = support::write_demo_config(dir.path(), &fake, "");
        let served = Served {
            server: support::InProcessServer::start(&path).await,
            fake,
            _dir: dir,
        };
        served.wait_ready().await;
        served
    }

    /// Until calc, clock and testkit are ready (the catalog a run sees is taken at its start).
    async fn wait_ready(&self) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let (_, body) = self.request(Method::GET, "/api/mcp/servers", None).await;
            let servers = body["servers"].as_array().cloned().unwrap_or_default();
            if servers.len() == 3 && servers.iter().all(|s| s["status"] == "ready") {
                return;
            }
            assert!(Instant::now() < deadline, "servers not ready: {body:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `POST /api/chat`, expecting an event stream.
    async fn chat(&self, body: Value) -> Events {
        let response = self.send(Method::POST, "/api/chat", Some(body)).await;
        assert_eq!(response.status(), StatusCode::OK);
        Events::new(response)
    }

    /// Poll `GET /api/runs/{id}` until `done` holds for it.
    async fn run_when(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, run) = self
                .request(Method::GET, &format!("/api/runs/{id}"), None)
                .await;
            if status == StatusCode::OK && done(&run) {
                return run;
            }
            assert!(Instant::now() < deadline, "run never got there: {run:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Poll `GET /api/conversations/{id}` until it has `n` messages.
    async fn conversation_with(&self, id: &str, n: usize) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, conversation) = self
                .request(Method::GET, &format!("/api/conversations/{id}"), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{conversation:#}");
            if conversation["messages"].as_array().map(Vec::len) == Some(n) {
                return conversation;
            }
            assert!(
                Instant::now() < deadline,
                "messages never came: {conversation:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

fn named<'a>(events: &'a [Received], name: &str) -> Vec<&'a Received> {
    events
        .iter()
        .filter(|e| e.name.as_deref() == Some(name))
        .collect()
}

fn sleep_call(id: &str, ms: u64) -> FakeToolCall {
    FakeToolCall::new(id, "testkit__sleep", json!({ "ms": ms }))
}

/// The one error shape of `/api`; returns its code.
#[track_caller]
fn api_error(status: StatusCode, body: &Value, expected: StatusCode) -> String {
    assert_eq!(status, expected, "{body:#}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body:#}"
    );
    body["error"]["code"]
        .as_str()
        .expect("error code")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// /api/chat, runs and conversations

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_streams_a_run_with_parallel_tools_and_stores_it() {
    let served = Served::start().await;
    served.fake.push(Reply::ToolCalls {
        calls: vec![sleep_call("call_a", 300), sleep_call("call_b", 300)],
        text: None,
    });
    served.fake.push(Reply::text("Both naps are over."));

    let began = Instant::now();
    let mut stream = served
        .chat(json!({ "message": "Take two naps", "model": "fake" }))
        .await;
    let run_id = stream
        .header("x-switchboard-run-id")
        .expect("run id header");
    assert!(stream.header("x-switchboard-trace-id").is_some());
    let events = stream.all().await;
    let elapsed = began.elapsed();
    let names: Vec<&str> = events.iter().filter_map(|e| e.name.as_deref()).collect();

    // Started, with the ids a client needs.
    let started = &events[0];
    assert_eq!(started.name.as_deref(), Some("run_started"), "{names:?}");
    assert_eq!(started.data["type"], "run_started");
    assert_eq!(started.data["run_id"], run_id.as_str());
    assert_eq!(started.data["model"], "fake");
    let conversation_id = started.data["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_owned();
    assert_eq!(
        started.data["trace_id"].as_str().map(str::len),
        Some(32),
        "{:#}",
        started.data
    );

    // Both acts started before either finished: they overlapped.
    let acts: Vec<&Received> = named(&events, "step_started")
        .into_iter()
        .filter(|e| e.data["kind"] == "act")
        .collect();
    assert_eq!(acts.len(), 2, "{names:?}");
    let act_steps: Vec<u64> = acts
        .iter()
        .map(|e| e.data["step"].as_u64().unwrap())
        .collect();
    let position = |pred: &dyn Fn(&Received) -> bool| events.iter().position(pred).unwrap();
    let second_act_started =
        position(&|e| e.name.as_deref() == Some("step_started") && e.data["step"] == act_steps[1]);
    let first_act_finished = position(&|e| {
        e.name.as_deref() == Some("step_finished")
            && act_steps.contains(&e.data["step"].as_u64().unwrap_or(u64::MAX))
    });
    assert!(second_act_started < first_act_finished, "{names:?}");
    for act in &acts {
        assert_eq!(act.data["name"], "testkit__sleep");
        assert_eq!(act.data["server"], "testkit");
        assert_eq!(act.data["input_preview"], r#"{"ms":300}"#);
    }
    let finished_acts: Vec<&Received> = named(&events, "step_finished")
        .into_iter()
        .filter(|e| e.data["kind"] == "act")
        .collect();
    assert_eq!(finished_acts.len(), 2);
    for act in &finished_acts {
        assert_eq!(act.data["status"], "succeeded", "{:#}", act.data);
        assert_eq!(act.data["name"], "testkit__sleep");
        assert_eq!(act.data["output_preview"], "slept 300 ms");
        let duration = act.data["duration_ms"].as_i64().expect("duration");
        assert!((300..1500).contains(&duration), "{:#}", act.data);
    }
    let window = finished_acts.iter().map(|e| e.at).max().unwrap()
        - acts.iter().map(|e| e.at).min().unwrap();
    assert!(
        window < Duration::from_millis(550),
        "acts ran one after the other: {window:?}"
    );
    assert!(elapsed < Duration::from_millis(600 + 1400), "{elapsed:?}");
    assert!(!named(&events, "tool_progress").is_empty(), "{names:?}");

    // The answer streamed as token deltas, and ended the run.
    let answer: String = named(&events, "token_delta")
        .iter()
        .map(|e| e.data["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(answer, "Both naps are over.");
    let finished = events.last().expect("events");
    assert_eq!(finished.name.as_deref(), Some("run_finished"), "{names:?}");
    assert_eq!(finished.data["status"], "succeeded");
    assert_eq!(finished.data["answer"], "Both naps are over.");
    assert!(finished.data["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(finished.data["duration_ms"].as_i64().is_some());

    // The stored DAG: plan → {act, act} → observe → plan → answer.
    let run = served
        .run_when(&run_id, |run| {
            run["status"] == "succeeded" && run["steps"].as_array().map(Vec::len) == Some(6)
        })
        .await;
    let kinds: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["plan", "act", "act", "observe", "plan", "answer"],
        "{run:#}"
    );
    let edges: BTreeSet<(u64, u64)> = run["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from"].as_u64().unwrap(), e["to"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        edges,
        BTreeSet::from([(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (4, 5)]),
        "{run:#}"
    );
    for step in run["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "succeeded", "{step:#}");
        assert!(step["finished_at"].as_i64().is_some(), "{step:#}");
    }
    assert_eq!(run["steps"][1]["input"], json!({ "ms": 300 }));
    assert_eq!(
        run["steps"][1]["output"]["content"][0]["text"],
        "slept 300 ms"
    );
    assert_eq!(run["answer"], "Both naps are over.");
    assert_eq!(run["conversation_id"], conversation_id.as_str());

    // The conversation has the question and the answer, tied to the run.
    let conversation = served.conversation_with(&conversation_id, 2).await;
    let messages = conversation["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["content"], "Take two naps");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["content"], "Both naps are over.");
    assert_eq!(messages[1]["run_id"], run_id.as_str());

    // The listing finds it by status and by text, and refuses a bad filter.
    let (status, page) = served
        .request(Method::GET, "/api/runs?status=succeeded", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page:#}");
    assert!(
        page["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == run_id.as_str()),
        "{page:#}"
    );
    let (_, page) = served
        .request(Method::GET, "/api/runs?q=TWO%20NAPS&model=fake", None)
        .await;
    assert_eq!(page["runs"][0]["id"], run_id.as_str(), "{page:#}");
    assert_eq!(page["runs"][0]["tool_call_count"], 2, "{page:#}");
    let (_, page) = served
        .request(Method::GET, "/api/runs?status=failed", None)
        .await;
    assert_eq!(page["runs"], json!([]), "{page:#}");
    let (status, body) = served
        .request(Method::GET, "/api/runs?status=done", None)
        .await;
    assert_eq!(
        api_error(status, &body, StatusCode::BAD_REQUEST),
        "invalid_query"
    );
    let (status, body) = served
        .request(Method::GET, "/api/runs?since=yesterday", None)
        .await;
    assert_eq!(
        api_error(status, &body, StatusCode::BAD_REQUEST),
        "invalid_query"
    );
    let (status, body) = served
        .request(Method::GET, "/api/runs?colour=red", None)
        .await;
    assert_eq!(
        api_error(status, &body, StatusCode::BAD_REQUEST),
        "invalid_query"
    );
    let (status, body) = served
        .request(Method::GET, "/api/runs?cursor=nonsense", None)
        .await;
    assert_eq!(
        api_error(status, &body, StatusCode::BAD_REQUEST),
        "invalid_argument"
    );

    // Following a finished run gives its stored end, once.
    let response = served
        .send(Method::GET, &format!("/api/runs/{run_id}/events"), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let replay = Events::new(response).all().await;
    assert_eq!(replay.len(), 1, "{replay:#?}");
    assert_eq!(replay[0].name.as_deref(), Some("run_finished"));
    assert_eq!(replay[0].data["status"], "succeeded");
    assert_eq!(replay[0].data["answer"], "Both naps are over.");

    // Bad and unknown ids.
    for path in [
        "/api/runs/nope",
        "/api/runs/nope/events",
        "/api/conversations/nope",
    ] {
        let (status, body) = served.request(Method::GET, path, None).await;
        assert_eq!(
            api_error(status, &body, StatusCode::BAD_REQUEST),
            "invalid_id",
            "{path}"
        );
    }
    let unknown = "0190f5c2-7a4e-7c3e-8000-000000000000";
    for path in [
        format!("/api/runs/{unknown}"),
        format!("/api/runs/{unknown}/events"),
        format!("/api/conversations/{unknown}"),
    ] {
        let (status, body) = served.request(Method::GET, &path, None).await;
        assert_eq!(
            api_error(status, &body, StatusCode::NOT_FOUND),
            "not_found",
            "{path}"
        );
    }
    let (status, body) = served
        .request(Method::POST, &format!("/api/runs/{unknown}/cancel"), None)
        .await;
    assert_eq!(api_error(status, &body, StatusCode::NOT_FOUND), "not_found");
    let (status, body) = served
        .request(Method::POST, &format!("/api/runs/{run_id}/cancel"), None)
        .await;
    assert_eq!(
        api_error(status, &body, StatusCode::CONFLICT),
        "not_running"
    );

    // Continue the conversation: the earlier turn is history for the model.
    served.fake.push(Reply::text("You asked for naps."));
    let mut stream = served
        .chat(json!({ "message": "What did I ask?", "conversation_id": conversation_id }))
        .await;
    let events = stream.all().await;
    assert_eq!(
        events.last().unwrap().data["status"],
        "succeeded",
        "{events:#?}"
    );
    let last_request = served
        .fake
        .requests()
        .last()
        .cloned()
        .expect("a model request");
    let sent = last_request.body["messages"].to_string();
    assert!(
        sent.contains("Take two naps") && sent.contains("Both naps are over."),
        "{sent}"
    );
    served.conversation_with(&conversation_id, 4).await;

    // Rename, list, delete; the runs stay.
    let (status, renamed) = served
        .request(
            Method::PATCH,
            &format!("/api/conversations/{conversation_id}"),
            Some(json!({ "title": "  Naps  " })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed:#}");
    assert_eq!(renamed["title"], "Naps");
    let (status, body) = served
        .request(
            Method::PATCH,
            &format!("/api/conversations/{conversation_id}"),
            Some(json!({ "title": " " })),
        )
        .await;
    assert_eq!(
        api_error(status, &body, StatusCode::BAD_REQUEST),
        "invalid_title"
    );
    let (status, list) = served
        .request(Method::GET, "/api/conversations", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list:#}");
    assert_eq!(list["conversations"][0]["title"], "Naps", "{list:#}");
    let (status, _) = served
        .request(
            Method::DELETE,
            &format!("/api/conversations/{conversation_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = served
        .request(
            Method::GET,
            &format!("/api/conversations/{conversation_id}"),
            None,
        )
        .await;
    assert_eq!(api_error(status, &body, StatusCode::NOT_FOUND), "not_found");
    let run = served
        .run_when(&run_id, |run| run["conversation_id"].is_null())
        .await;
    assert_eq!(run["status"], "succeeded");

    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_run_stops_its_tool_call() {
    let served = Served::start().await;
    served.fake.push(Reply::ToolCalls {
        calls: vec![sleep_call("call_long", 30_000)],
        text: None,
    });
    let mut stream = served
        .chat(json!({ "message": "Sleep for a long time" }))
        .await;
    let mut events = stream.until("step_started").await;
    while !events.iter().any(|e| e.data["kind"] == "act") {
        events.extend(stream.until("step_started").await);
    }
    let run_id = events[0].data["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();

    // A second client follows the same run: it gets what happened so far, then the rest.
    let response = served
        .send(Method::GET, &format!("/api/runs/{run_id}/events"), None)
        .await;
    let mut follower = Events::new(response);
    let replayed = follower.until("step_started").await;
    assert_eq!(
        replayed[0].name.as_deref(),
        Some("run_started"),
        "{replayed:#?}"
    );

    let cancelled_at = Instant::now();
    let (status, body) = served
        .request(Method::POST, &format!("/api/runs/{run_id}/cancel"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body:#}");
    assert_eq!(body["status"], "cancelling");
    let rest = stream.all().await;
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(3),
        "{:?}",
        cancelled_at.elapsed()
    );
    let finished = rest.last().expect("events after cancel");
    assert_eq!(finished.name.as_deref(), Some("run_finished"), "{rest:#?}");
    assert_eq!(finished.data["status"], "cancelled", "{rest:#?}");
    let act_end = named(&rest, "step_finished");
    assert!(
        act_end
            .iter()
            .any(|e| e.data["kind"] == "act" && e.data["status"] == "cancelled"),
        "{rest:#?}"
    );
    let followed = follower.all().await;
    assert_eq!(
        followed.last().unwrap().data["status"],
        "cancelled",
        "{followed:#?}"
    );

    // The server got the MCP cancellation.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = served.request(Method::GET, "/api/mcp/servers", None).await;
        let testkit = body["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "testkit")
            .cloned()
            .expect("testkit");
        let tail = testkit["stderr_tail"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if tail
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.starts_with("cancelled")))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no cancellation reached testkit: {testkit:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run = served
        .run_when(&run_id, |run| run["status"] == "cancelled")
        .await;
    assert_eq!(run["error"], "the run was cancelled", "{run:#}");
    let (status, body) = served
        .request(Method::POST, &format!("/api/runs/{run_id}/cancel"), None)
        .await;
    assert_eq!(
        api_error(status, &body, StatusCode::CONFLICT),
        "not_running"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_does_not_stop_its_run() {
    let served = Served::start().await;
    served.fake.push(Reply::tool_call(
        "call_1",
        "testkit__sleep",
        json!({ "ms": 300 }),
    ));
    served.fake.push(Reply::text("Finished without you."));
    let mut stream = served
        .chat(json!({ "message": "Nap while I am away" }))
        .await;
    let started = stream.until("run_started").await;
    let run_id = started[0].data["run_id"].as_str().unwrap().to_owned();
    let conversation_id = started[0].data["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(stream);

    let run = served
        .run_when(&run_id, |run| run["status"] != "running")
        .await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["answer"], "Finished without you.");
    let conversation = served.conversation_with(&conversation_id, 2).await;
    assert_eq!(
        conversation["messages"][1]["content"],
        "Finished without you."
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_refuses_bad_requests_before_any_run() {
    let served = Served::start().await;
    let cases = [
        (
            json!({ "message": "  " }),
            StatusCode::BAD_REQUEST,
            "empty_message",
        ),
        (
            json!({ "message": "hi", "model": "nope" }),
            StatusCode::NOT_FOUND,
            "model_not_found",
        ),
        (
            json!({ "message": "hi", "agent": "nope" }),
            StatusCode::NOT_FOUND,
            "agent_not_found",
        ),
        (
            json!({ "message": "hi", "model": "hosted" }),
            StatusCode::SERVICE_UNAVAILABLE,
            "model_unavailable",
        ),
        (
            json!({ "message": "hi", "conversation_id": "x" }),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            json!({ "message": "hi", "conversation_id": "0190f5c2-7a4e-7c3e-8000-000000000000" }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            json!({ "message": "hi", "colour": "red" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({ "message": "hi", "temperature": 7 }),
            StatusCode::BAD_REQUEST,
            "invalid_temperature",
        ),
    ];
    for (body, status, code) in cases {
        let (got, reply) = served
            .request(Method::POST, "/api/chat", Some(body.clone()))
            .await;
        assert_eq!(api_error(got, &reply, status), code, "{body}");
    }
    assert!(served.fake.requests().is_empty(), "a model was called");
    let (_, page) = served.request(Method::GET, "/api/runs", None).await;
    assert_eq!(page["runs"], json!([]), "{page:#}");
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The OpenAI-compatible API

/// `{"error": {"message", "type", "param", "code"}}` and nothing else; returns the error.
#[track_caller]
fn openai_error(status: StatusCode, body: &Value, expected: StatusCode) -> Value {
    assert_eq!(status, expected, "{body:#}");
    let error = &body["error"];
    let mut keys: Vec<&str> = error
        .as_object()
        .expect("error object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message", "param", "type"], "{body:#}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body:#}"
    );
    error.clone()
}

/// `GET /api/agents` lists the agent files with what pickers show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_listed_for_pickers() {
    let served = Served::start().await;
    let (status, body) = served.request(Method::GET, "/api/agents", None).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(
        body,
        json!({"agents": [{
            "name": "calc",
            "description": "Arithmetic.",
            "model": null,
            "mode": "react",
            "tools": ["calc__*"],
        }]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_compatible_completions_run_the_tool_chain() {
    let served = Served::start().await;

    let (status, models) = served.request(Method::GET, "/v1/models", None).await;
    assert_eq!(status, StatusCode::OK, "{models:#}");
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["fake", "agent:calc"],
        "unavailable models are not listed"
    );
    assert_eq!(models["data"][0]["object"], "model");

    // Not streamed: the whole chain runs, the answer and summed usage come back.
    served.fake.push(Reply::tool_call(
        "call_1",
        "calc__evaluate",
        json!({ "expression": "6*7" }),
    ));
    served.fake.push(Reply::Text {
        text: "6 times 7 is 42.".into(),
        usage: Some(Usage {
            input_tokens: 100,
            output_tokens: 7,
        }),
    });
    let request = json!({
        "model": "agent:calc",
        "messages": [
            { "role": "system", "content": "Answer briefly." },
            { "role": "user", "content": "Hello" },
            { "role": "assistant", "content": "Hi! What shall I compute?" },
            { "role": "user", "content": [{ "type": "text", "text": "What is 6*7?" }] }
        ],
        "tools": [{ "type": "function", "function": { "name": "client_side", "parameters": {} } }],
        "tool_choice": "auto",
        "temperature": 0.2
    });
    let response = served
        .send(Method::POST, "/v1/chat/completions", Some(request))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let run_id = response.headers()["x-switchboard-run-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(response.headers().contains_key("x-switchboard-trace-id"));
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["object"], "chat.completion", "{body:#}");
    assert_eq!(body["model"], "agent:calc");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["message"]["content"], "6 times 7 is 42.");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let run = served
        .run_when(&run_id, |run| run["status"] == "succeeded")
        .await;
    assert_eq!(run["agent"], "calc", "{run:#}");
    assert_eq!(run["steps"][1]["name"], "calc__evaluate", "{run:#}");
    assert_eq!(
        run["steps"][1]["output"]["content"][0]["text"], "42",
        "{run:#}"
    );
    let sum = |key: &str| -> u64 {
        run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s[key].as_u64())
            .sum()
    };
    assert_eq!(
        body["usage"]["prompt_tokens"].as_u64(),
        Some(sum("input_tokens")),
        "{body:#}"
    );
    assert_eq!(
        body["usage"]["completion_tokens"].as_u64(),
        Some(sum("output_tokens"))
    );
    assert!(
        body["usage"]["prompt_tokens"].as_u64().unwrap() > 100,
        "not summed: {body:#}"
    );
    assert_eq!(
        body["usage"]["total_tokens"].as_u64(),
        Some(sum("input_tokens") + sum("output_tokens"))
    );
    // The history went to the model; the client's own tools did not.
    let first = &served
        .fake
        .requests()
        .iter()
        .rev()
        .nth(1)
        .cloned()
        .unwrap()
        .body;
    let sent = first["messages"].to_string();
    assert!(
        sent.contains("Hi! What shall I compute?") && sent.contains("Answer briefly."),
        "{sent}"
    );
    assert!(
        !first["tools"].to_string().contains("client_side"),
        "{first:#}"
    );
    assert_eq!(
        first["temperature"], 0.2,
        "sent exactly as given: {first:#}"
    );

    // Streamed: content deltas of the answer, the finish, the usage, [DONE].
    served.fake.push(Reply::tool_call(
        "call_2",
        "calc__evaluate",
        json!({ "expression": "2+2" }),
    ));
    served.fake.push(Reply::text("Two and two make four."));
    let response = served
        .send(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({
                "model": "fake",
                "messages": [{ "role": "user", "content": "What is 2+2?" }],
                "stream": true,
                "stream_options": { "include_usage": true }
            })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = Events::new(response);
    let stream_run = stream
        .header("x-switchboard-run-id")
        .expect("run id header");
    assert!(stream.header("x-switchboard-trace-id").is_some());
    let events = stream.all().await;
    let (last, chunks) = events.split_last().expect("events");
    assert_eq!(last.data, "[DONE]", "{events:#?}");
    for chunk in chunks {
        assert_eq!(chunk.name, None, "OpenAI chunks are unnamed: {chunk:?}");
        assert_eq!(
            chunk.data["object"], "chat.completion.chunk",
            "{:#}",
            chunk.data
        );
        assert_eq!(chunk.data["id"], chunks[0].data["id"]);
    }
    assert_eq!(chunks[0].data["choices"][0]["delta"]["role"], "assistant");
    let texts: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c.data["choices"][0]["delta"]["content"].as_str())
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(texts.concat(), "Two and two make four.");
    assert!(texts.len() > 1, "the answer came in one piece: {texts:?}");
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(
        usage_chunk.data["choices"],
        json!([]),
        "{:#}",
        usage_chunk.data
    );
    let run = served
        .run_when(&stream_run, |run| run["status"] == "succeeded")
        .await;
    assert_eq!(
        usage_chunk.data["usage"]["prompt_tokens"], run["input_tokens"],
        "{:#}",
        usage_chunk.data
    );
    assert_eq!(
        rest.last().unwrap().data["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(run["tool_call_count"], 1, "{run:#}");

    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_compatible_errors_have_openai_shape() {
    let served = Served::start().await;
    let user = json!([{ "role": "user", "content": "hi" }]);
    let (status, body) = served
        .request(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({ "model": "nope", "messages": user })),
        )
        .await;
    let error = openai_error(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "model_not_found");
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["param"], "model");
    let (status, body) = served
        .request(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({ "model": "agent:nope", "messages": user })),
        )
        .await;
    assert_eq!(
        openai_error(status, &body, StatusCode::NOT_FOUND)["code"],
        "model_not_found"
    );
    let (status, body) = served
        .request(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({ "model": "hosted", "messages": user })),
        )
        .await;
    assert_eq!(
        openai_error(status, &body, StatusCode::SERVICE_UNAVAILABLE)["code"],
        "model_unavailable"
    );
    for bad in [
        json!({ "model": "fake" }),
        json!({ "model": "fake", "messages": [] }),
        json!({ "model": "fake", "messages": [{ "role": "assistant", "content": "hi" }] }),
        json!({ "model": "fake", "messages": [{ "role": "user", "content": [{ "type": "image_url" }] }] }),
        json!({ "model": "fake", "messages": user, "n": 2 }),
    ] {
        let (status, body) = served
            .request(Method::POST, "/v1/chat/completions", Some(bad.clone()))
            .await;
        let error = openai_error(status, &body, StatusCode::BAD_REQUEST);
        assert_eq!(error["type"], "invalid_request_error", "{bad}");
    }
    let response = served
        .http
        .post(format!("{}/v1/chat/completions", served.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    openai_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(served.fake.requests().is_empty(), "a model was called");

    // A run that fails: 502 naming the run, or an error chunk then [DONE].
    served.fake.push(Reply::status(400));
    let response = served
        .send(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({ "model": "fake", "messages": user })),
        )
        .await;
    let run_id = response.headers()["x-switchboard-run-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    let error = openai_error(status, &body, StatusCode::BAD_GATEWAY);
    assert_eq!(error["code"], "run_failed");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&run_id) && message.contains("failed"),
        "{message}"
    );

    served.fake.push(Reply::status(400));
    let response = served
        .send(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({ "model": "fake", "messages": user, "stream": true })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let events = Events::new(response).all().await;
    let n = events.len();
    assert!(n >= 2, "{events:#?}");
    assert_eq!(
        events[n - 2].data["error"]["code"],
        "run_failed",
        "{events:#?}"
    );
    assert_eq!(events[n - 1].data, "[DONE]");
    served.stop().await;
}

/// The official `openai` Python package as a real client (`tests/python/test_openai_sdk.py`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_works_against_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("tests/python/.venv/bin/python");
    if !python.exists() {
        let install = "python3 -m venv tests/python/.venv && \
                       tests/python/.venv/bin/pip install -r tests/python/requirements.txt";
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing; CI must install it: {install}",
            python.display()
        );
        eprintln!(
            "skipping: {} is missing (install: {install})",
            python.display()
        );
        return;
    }
    let served = Served::start().await;
    served.fake.set_fallback(Fallback::Demo);
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&python)
            .args([
                "-m",
                "pytest",
                "tests/python",
                "-q",
                "-p",
                "no:cacheprovider",
            ])
            .current_dir(root)
            .env("OPENAI_BASE_URL", format!("{}/v1", served.base))
            .env("OPENAI_API_KEY", "not-checked")
            .env("SWITCHBOARD_BASE_URL", &served.base)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("pytest finishes within 2 minutes")
    .expect("run pytest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pytest failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("passed"), "{stdout}");
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The command line

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_command_prints_steps_and_the_answer() {
    let fake = FakeLlm::start().await;
    fake.set_fallback(Fallback::Demo);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = support::write_demo_config(dir.path(), &fake, "");
    let run = |args: &[&str]| {
        let mut command = tokio::process::Command::new(support::switchboard_bin());
        command
            .arg("--config")
            .arg(&config)
            .arg("chat")
            .args(args)
            .env_remove("SWITCHBOARD_CONFIG")
            .env_remove("SWITCHBOARD_DATABASE_URL")
            .env("SWITCHBOARD_BIN", support::switchboard_bin())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        async move {
            tokio::time::timeout(Duration::from_secs(60), command.output())
                .await
                .expect("switchboard chat finishes within 60 s")
                .expect("run switchboard chat")
        }
    };
    let output = run(&["--agent", "calc", "What is 6*7?"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for expected in [
        "[0] plan    fake started",
        "[0] plan    fake succeeded in",
        "[1] act     calc__evaluate [calc] started",
        "[1] act     calc__evaluate [calc] succeeded in",
        "[2] observe observe succeeded in",
        "(fake model) Tool results: 42",
        "run succeeded in",
    ] {
        assert!(
            stdout.contains(expected),
            "`{expected}` missing:\n{stdout}\n{stderr}"
        );
    }
    assert_eq!(
        stdout.matches("Tool results: 42").count(),
        1,
        "answer printed twice:\n{stdout}"
    );

    // The run was stored where the server would find it.
    let (store, _) = switchboard::store::Store::open(&switchboard::store::Store::sqlite_url_for(
        &dir.path().join("data"),
    ))
    .await
    .expect("open the store");
    let page = store
        .list_runs(&switchboard::store::RunFilter::default())
        .await
        .expect("list runs");
    assert_eq!(page.runs.len(), 1);
    assert_eq!(page.runs[0].agent.as_deref(), Some("calc"));
    store.close().await;

    let output = run(&["--model", "nope", "hi"]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no model named `nope`"),
        "{output:?}"
    );

    fake.push(Reply::status(400));
    let output = run(&["--model", "fake", "hi"]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("run failed"),
        "{output:?}"
    );
}
