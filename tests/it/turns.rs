//! Model turns the engine must not trust, through the real server (`app::serve_on` on port 0),
//! the scripted fake LLM speaking OpenAI's streamed protocol, and the bundled testkit server:
//! tool calls that share an id, an argument of a megabyte, and a turn of a hundred calls.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_fake_llm::{FakeLlm, FakeToolCall, Reply};

use crate::support;

/// Longest wait for servers to be ready or a run to finish.
const PATIENCE: Duration = Duration::from_secs(30);

struct Served {
    server: support::InProcessServer,
    fake: FakeLlm,
    _dir: tempfile::TempDir,
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
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (_, tools) = served.server.request(Method::GET, "/api/tools", None).await;
            let listed = tools["tools"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["name"] == "testkit__echo"));
            if listed {
                break;
            }
            assert!(Instant::now() < deadline, "testkit not ready: {tools:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        served
    }

    /// `POST /api/chat` (plain chat: every tool), the event stream read to its end; then the
    /// stored run once it and all its steps are finished.
    async fn chat_run(&self, message: &str) -> Value {
        let response = self
            .server
            .send(
                Method::POST,
                "/api/chat",
                Some(json!({ "message": message, "model": "fake" })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let run_id = response.headers()["x-switchboard-run-id"]
            .to_str()
            .expect("run id header")
            .to_owned();
        let stream = tokio::time::timeout(PATIENCE, response.bytes())
            .await
            .expect("the event stream ends")
            .expect("reading the event stream");
        assert!(
            String::from_utf8_lossy(&stream).contains("run_finished"),
            "the stream ends with the run"
        );
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, run) = self
                .server
                .request(Method::GET, &format!("/api/runs/{run_id}"), None)
                .await;
            if status == StatusCode::OK
                && run["status"] != "running"
                && run["steps"]
                    .as_array()
                    .is_some_and(|s| s.iter().all(|s| s["finished_at"].is_i64()))
            {
                return run;
            }
            assert!(Instant::now() < deadline, "run never finished: {run:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn acts(run: &Value) -> Vec<&Value> {
    run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "act")
        .collect()
}

fn count(steps: &[&Value], status: &str) -> usize {
    steps.iter().filter(|s| s["status"] == status).count()
}

/// The messages the fake model received in its request `n`.
fn messages(fake: &FakeLlm, n: usize) -> Vec<Value> {
    fake.requests()[n].body["messages"]
        .as_array()
        .expect("messages")
        .clone()
}

fn echo(id: &str, message: &str) -> FakeToolCall {
    FakeToolCall::new(id, "testkit__echo", json!({ "message": message }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_ids_a_megabyte_argument_and_a_hundred_calls_in_one_turn() {
    let served = Served::start().await;

    // One turn: two different calls sharing `call_1`, an exact repeat of the first, and a call
    // with a 1 MiB argument.
    let huge = "x".repeat(1 << 20);
    served.fake.push(Reply::ToolCalls {
        calls: vec![
            echo("call_1", "one"),
            echo("call_1", "two"),
            echo("call_1", "one"),
            echo("call_big", &huge),
        ],
        text: None,
    });
    served.fake.push(Reply::text("done"));
    let run = served.chat_run("echo things").await;
    let steps = acts(&run);
    assert_eq!(steps.len(), 4, "{run:#}");
    assert_eq!(count(&steps, "succeeded"), 2, "one and two ran: {run:#}");
    assert_eq!(count(&steps, "skipped"), 1, "the repeat did not: {run:#}");
    let big = steps
        .iter()
        .find(|s| s["status"] == "failed")
        .expect("the big call failed");
    let error = big["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("262144") && error.contains("over the cap"),
        "{error}"
    );
    assert!(
        big["input"]["arguments_omitted"]["bytes"].as_u64() > Some(1 << 20),
        "the step keeps the size, not the megabyte: {big:#}"
    );
    assert_eq!(run["status"], "partial", "{run:#}");

    // What went back to the model: unique ids, one result per call, no megabyte.
    let second = messages(&served.fake, 1);
    let assistant = second
        .iter()
        .rev()
        .find(|m| m["role"] == "assistant")
        .expect("the assistant turn");
    let calls = assistant["tool_calls"].as_array().expect("tool calls");
    let ids: Vec<&str> = calls.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids.len(), 4, "{assistant:#}");
    let distinct: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 4, "ids are unique: {ids:?}");
    let answered: Vec<&str> = second
        .iter()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["tool_call_id"].as_str())
        .collect();
    assert_eq!(answered, ids, "each call has its one result");
    assert!(
        assistant.to_string().len() < 10_000,
        "the megabyte is not sent back to the model"
    );

    // A turn of a hundred calls: the first 32 (the default budget) run, the rest are dropped
    // with a message, and the run answers.
    let hundred: Vec<FakeToolCall> = (0..100)
        .map(|i| echo(&format!("call_{i}"), &format!("m{i}")))
        .collect();
    served.fake.push(Reply::ToolCalls {
        calls: hundred,
        text: None,
    });
    served.fake.push(Reply::text("what fitted"));
    let run = served.chat_run("a hundred echoes").await;
    let steps = acts(&run);
    assert_eq!(steps.len(), 100, "{run:#}");
    assert_eq!(count(&steps, "succeeded"), 32, "{run:#}");
    assert_eq!(count(&steps, "skipped"), 68, "{run:#}");
    assert_eq!(run["answer"], "what fitted", "{run:#}");
    assert_eq!(run["status"], "partial", "{run:#}");
    let results: Vec<Value> = messages(&served.fake, 3)
        .into_iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert_eq!(results.len(), 100);
    assert!(
        results[99]["content"]
            .as_str()
            .is_some_and(|c| c.contains("dropped") && c.contains("budget of 32")),
        "{:#}",
        results[99]
    );
    served.server.stop().await;
}
