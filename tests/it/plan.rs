//! Plan mode through the real server (`app::serve_on` on port 0), the scripted fake LLM as the
//! planner and the real bundled calc server: dependencies and `{{id}}` substitution, plans with
//! problems fed back before anything runs, dependents of a failed step skipped, and such a run
//! reported `partial` by the runs API, its filter, and the OpenAI-compatible path.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_fake_llm::{FakeLlm, Reply};

use crate::support::{self};

/// Longest wait for servers to be ready or a run to finish.
const PATIENCE: Duration = Duration::from_secs(20);

/// The server with calc only, model `fake` (the fake LLM) and plan-mode agent `plan`.
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

fn write_config(dir: &Path, fake: &FakeLlm) -> PathBuf {
    let agents = dir.join("agents");
    std::fs::create_dir_all(&agents).expect("agents dir");
    std::fs::write(
        agents.join("plan.yaml"),
        "name: plan\ndescription: Plans calculations.\nsystem_prompt: You plan.\nmode: plan\n\
         tools: [\"calc__*\"]\nlimits:\n  max_replans: 2\n",
    )
    .expect("agent file");
    let yaml = format!(
        "server:\n  bind: 127.0.0.1:0\n  data_dir: {data}\nagents_dir: {agents}\n\
         models:\n  - name: fake\n    type: openai\n    base_url: {base}\n    model_name: fake-model\n\
         \x20   default: true\n    healthcheck: false\n    retry: {{max_attempts: 1}}\n\
         mcpServers:\n{calc}",
        data = dir.join("data").display(),
        agents = agents.display(),
        base = fake.openai_base_url(),
        calc = support::bundled_stdio("calc", "calc", &[]),
    );
    let path = dir.join("switchboard.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

impl Served {
    async fn start() -> Served {
        let fake = FakeLlm::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_config(dir.path(), &fake);
        let served = Served {
            server: support::InProcessServer::start(&path).await,
            fake,
            _dir: dir,
        };
        served.wait_ready().await;
        served
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (_, body) = self.get("/api/mcp/servers").await;
            let servers = body["servers"].as_array().cloned().unwrap_or_default();
            // A server can report `ready` a moment before its tools are in the catalog a run
            // takes at its start, so wait for the tool itself too.
            let (_, tools) = self.get("/api/tools").await;
            let listed = tools["tools"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["name"] == "calc__evaluate"));
            if servers.len() == 1 && servers[0]["status"] == "ready" && listed {
                return;
            }
            assert!(Instant::now() < deadline, "calc not ready: {body:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, None).await
    }

    /// `POST /api/chat` to agent `plan`, reading the event stream to its end; then the finished
    /// run from `GET /api/runs/{id}`.
    async fn chat_run(&self, message: &str) -> Value {
        let response = self
            .http
            .post(format!("{}/api/chat", self.base))
            .json(&json!({ "message": message, "agent": "plan" }))
            .send()
            .await
            .expect("request to switchboard");
        assert_eq!(response.status(), StatusCode::OK);
        let run_id = response.headers()["x-switchboard-run-id"]
            .to_str()
            .expect("run id header")
            .to_owned();
        let stream = tokio::time::timeout(PATIENCE, response.bytes())
            .await
            .expect("the event stream ends")
            .expect("reading the event stream");
        let stream = String::from_utf8_lossy(&stream);
        assert!(stream.contains("run_finished"), "{stream}");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, run) = self.get(&format!("/api/runs/{run_id}")).await;
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

    async fn stop(self) {
        self.server.stop().await;
    }
}

fn steps_of<'a>(run: &'a Value, kind: &str) -> Vec<&'a Value> {
    run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == kind)
        .collect()
}

/// The act step whose input expression is `expression`.
fn act_with<'a>(run: &'a Value, expression: &str) -> &'a Value {
    steps_of(run, "act")
        .into_iter()
        .find(|s| s["input"]["expression"] == expression)
        .unwrap_or_else(|| panic!("no act step for `{expression}`: {run:#}"))
}

/// The steps `step` depends on, by the run's edges.
fn sources(run: &Value, step: &Value) -> Vec<u64> {
    let to = step["index"].as_u64().expect("index");
    let mut from: Vec<u64> = run["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter(|e| e["to"].as_u64() == Some(to))
        .map(|e| e["from"].as_u64().expect("from"))
        .collect();
    from.sort_unstable();
    from
}

fn text_of(step: &Value) -> String {
    step["output"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_runs_dependencies_and_substitutes_outputs() {
    let served = Served::start().await;
    let plan = json!({ "steps": [
        { "id": "a", "tool": "calc__evaluate", "args": { "expression": "2+3" }, "depends_on": [] },
        { "id": "b", "tool": "calc__evaluate", "args": { "expression": "10*10" }, "depends_on": [] },
        { "id": "c", "tool": "calc__evaluate", "args": { "expression": "{{a}} * 2" }, "depends_on": ["a"] }
    ]});
    served.fake.push(Reply::text(plan.to_string()));
    served.fake.push(Reply::text("c is 10 and b is 100."));

    let run = served.chat_run("Compute some things").await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["answer"], "c is 10 and b is 100.", "{run:#}");
    let acts = steps_of(&run, "act");
    assert_eq!(acts.len(), 3, "{run:#}");
    for act in &acts {
        assert_eq!(act["status"], "succeeded", "{act:#}");
        assert_eq!(act["name"], "calc__evaluate", "{act:#}");
    }
    let plan_step = steps_of(&run, "plan")[0]["index"].as_u64().unwrap();
    let a = act_with(&run, "2+3");
    let b = act_with(&run, "10*10");
    let c = act_with(&run, "5 * 2");
    assert_eq!(text_of(a), "5", "{run:#}");
    assert_eq!(text_of(b), "100", "{run:#}");
    assert!(text_of(c).contains("10"), "{run:#}");
    assert_eq!(sources(&run, a), vec![plan_step], "{run:#}");
    assert_eq!(sources(&run, b), vec![plan_step], "{run:#}");
    assert_eq!(
        sources(&run, c),
        vec![a["index"].as_u64().unwrap()],
        "{run:#}"
    );
    assert_eq!(steps_of(&run, "answer").len(), 1, "{run:#}");
    // The answer call saw the results.
    let requests = served.fake.requests();
    assert_eq!(requests.len(), 2);
    let last = requests[1].body["messages"].to_string();
    assert!(last.contains("The plan ran"), "{last}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_with_a_cycle_and_an_unknown_tool_is_fed_back_before_anything_runs() {
    let served = Served::start().await;
    let bad = json!({ "steps": [
        { "id": "a", "tool": "calc__evaluate", "args": { "expression": "1+1" }, "depends_on": ["b"] },
        { "id": "b", "tool": "calc__evaluate", "args": { "expression": "2+2" }, "depends_on": ["a"] },
        { "id": "x", "tool": "nope__x", "args": {}, "depends_on": [] }
    ]});
    let good = json!({ "steps": [
        { "id": "a", "tool": "calc__evaluate", "args": { "expression": "6*7" }, "depends_on": [] }
    ]});
    served.fake.push(Reply::text(bad.to_string()));
    served.fake.push(Reply::text(good.to_string()));
    served.fake.push(Reply::text("It is 42."));

    let run = served.chat_run("What is 6*7?").await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["answer"], "It is 42.", "{run:#}");
    let requests = served.fake.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    let feedback: Vec<String> = requests[1].body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_str())
        .filter(|text| text.contains("The plan has problems"))
        .map(str::to_owned)
        .collect();
    assert_eq!(feedback.len(), 1, "{:#}", requests[1].body);
    assert!(feedback[0].contains("cycle"), "{}", feedback[0]);
    assert!(feedback[0].contains("nope__x"), "{}", feedback[0]);
    let acts = steps_of(&run, "act");
    assert_eq!(acts.len(), 1, "{run:#}");
    assert_eq!(acts[0]["input"], json!({ "expression": "6*7" }), "{run:#}");
    assert_eq!(acts[0]["status"], "succeeded", "{run:#}");
    assert_eq!(text_of(acts[0]), "42", "{run:#}");
    assert_eq!(steps_of(&run, "plan").len(), 2, "{run:#}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_skips_the_dependents_of_a_failed_step() {
    let served = Served::start().await;
    let plan = json!({ "steps": [
        { "id": "a", "tool": "calc__evaluate", "args": { "expression": "1/0" }, "depends_on": [] },
        { "id": "b", "tool": "calc__evaluate", "args": { "expression": "{{a}} + 1" }, "depends_on": ["a"] },
        { "id": "c", "tool": "calc__evaluate", "args": { "expression": "3+4" }, "depends_on": [] }
    ]});
    served.fake.push(Reply::text(plan.to_string()));
    served.fake.push(Reply::text("a failed; c is 7."));

    let run = served.chat_run("Divide and add").await;
    // It answered, but from a plan with a failed and a skipped step: `partial`, not `succeeded`.
    assert_eq!(run["status"], "partial", "{run:#}");
    assert_eq!(run["answer"], "a failed; c is 7.", "{run:#}");
    assert!(
        run["error"]
            .as_str()
            .is_some_and(|e| e.contains("`calc__evaluate` (1 failed, 1 not run)")),
        "the run says which tool calls are missing: {run:#}"
    );
    let acts = steps_of(&run, "act");
    assert_eq!(acts.len(), 3, "{run:#}");
    let a = act_with(&run, "1/0");
    let b = act_with(&run, "{{a}} + 1");
    let c = act_with(&run, "3+4");
    assert_eq!(a["status"], "failed", "{run:#}");
    assert_eq!(b["status"], "skipped", "{run:#}");
    assert!(
        b["error"].as_str().is_some_and(|e| e.contains("`a`")),
        "{run:#}"
    );
    assert_eq!(
        sources(&run, b),
        vec![a["index"].as_u64().unwrap()],
        "{run:#}"
    );
    assert_eq!(c["status"], "succeeded", "{run:#}");
    assert_eq!(text_of(c), "7", "{run:#}");
    // The answer call hears each step's outcome as the result of that step's call, in the tool
    // role, with the failure and the skip said plainly.
    let answer_request = &served.fake.requests()[1].body;
    let tool_results: Vec<&str> = answer_request["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(tool_results.len(), 3, "{answer_request:#}");
    assert!(
        tool_results[0].contains("division by zero"),
        "{answer_request:#}"
    );
    assert_eq!(tool_results[1], "skipped because step `a` failed");
    assert_eq!(tool_results[2], "7");
    served.stop().await;
}

/// A plan whose first step fails (dividing by zero) and whose second depends on it.
fn failing_plan() -> Value {
    json!({ "steps": [
        { "id": "a", "tool": "calc__evaluate", "args": { "expression": "1/0" }, "depends_on": [] },
        { "id": "b", "tool": "calc__evaluate", "args": { "expression": "{{a}} + 1" }, "depends_on": ["a"] }
    ]})
}

/// The JSON data of every SSE event of a streamed completion (`[DONE]` as a string).
fn sse_data(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| {
            let data = data.trim();
            serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_run_says_so_in_the_runs_api_and_the_openai_path() {
    let served = Served::start().await;

    // /api/runs: the status filter accepts `partial` and finds the run; an unknown status is
    // refused with a message that lists `partial`.
    served.fake.push(Reply::text(failing_plan().to_string()));
    served.fake.push(Reply::text("a could not be computed."));
    let run = served.chat_run("Divide").await;
    assert_eq!(run["status"], "partial", "{run:#}");
    let (status, page) = served.get("/api/runs?status=partial").await;
    assert_eq!(status, StatusCode::OK, "{page:#}");
    let listed = page["runs"].as_array().expect("runs");
    assert_eq!(listed.len(), 1, "{page:#}");
    assert_eq!(listed[0]["id"], run["id"], "{page:#}");
    assert_eq!(listed[0]["status"], "partial", "{page:#}");
    let (status, page) = served.get("/api/runs?status=succeeded").await;
    assert_eq!(status, StatusCode::OK, "{page:#}");
    assert_eq!(page["runs"], json!([]), "{page:#}");
    let (status, refused) = served.get("/api/runs?status=half").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused:#}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("partial")),
        "{refused:#}"
    );

    // A whole completion: 200 with the answer, the status in a header and in `switchboard`.
    served.fake.push(Reply::text(failing_plan().to_string()));
    served.fake.push(Reply::text("Half an answer."));
    let response = served
        .http
        .post(format!("{}/v1/chat/completions", served.base))
        .json(&json!({ "model": "agent:plan", "messages": [{ "role": "user", "content": "Divide" }] }))
        .send()
        .await
        .expect("request to switchboard");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["x-switchboard-run-status"],
        "partial",
        "{:?}",
        response.headers()
    );
    let run_id = response.headers()["x-switchboard-run-id"]
        .to_str()
        .expect("run id")
        .to_owned();
    let body: Value = response.json().await.expect("a JSON completion");
    assert_eq!(
        body["choices"][0]["message"]["content"], "Half an answer.",
        "{body:#}"
    );
    assert_eq!(body["switchboard"]["status"], "partial", "{body:#}");
    assert_eq!(body["switchboard"]["run_id"], run_id.as_str(), "{body:#}");
    assert!(
        body["switchboard"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("calc__evaluate")),
        "{body:#}"
    );

    // A streamed completion: the answer, then `switchboard.status` on the finishing chunk.
    served.fake.push(Reply::text(failing_plan().to_string()));
    served.fake.push(Reply::text("Streamed half."));
    let response = served
        .http
        .post(format!("{}/v1/chat/completions", served.base))
        .json(&json!({
            "model": "agent:plan",
            "stream": true,
            "messages": [{ "role": "user", "content": "Divide" }]
        }))
        .send()
        .await
        .expect("request to switchboard");
    assert_eq!(response.status(), StatusCode::OK);
    let body = tokio::time::timeout(PATIENCE, response.text())
        .await
        .expect("the stream ends")
        .expect("reading the stream");
    let chunks = sse_data(&body);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Streamed half.", "{body}");
    let last = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"] == "stop")
        .unwrap_or_else(|| panic!("no finishing chunk: {body}"));
    assert_eq!(last["switchboard"]["status"], "partial", "{body}");
    assert!(chunks.iter().all(|c| c.get("error").is_none()), "{body}");
    served.stop().await;
}
