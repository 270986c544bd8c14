//! What MCP servers ask of the hub during a call, through the real server and the reference
//! server (`@modelcontextprotocol/server-everything`): a question (elicitation) reaches the
//! person of a web chat, whose answer is checked against the server's form and goes back to the
//! server; with nobody to ask (the OpenAI-compatible API) the server's policy answers at once;
//! sampling is served by the server's configured model as a `sample` step of the run.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_fake_llm::Reply;

use crate::support::served::Served;
use crate::support::{self};

/// The demo servers, model `fake`, and the reference server `everything` with `sampling`
/// served by `fake`.
async fn start() -> Served {
    let command = support::node_bin_dir().join("mcp-server-everything");
    let everything = format!(
        "  everything:\n    command: {}\n    args: [stdio]\n    trusted: true\n    sampling:\n      model: fake\n      max_tokens: 50\n",
        command.display()
    );
    Served::demo(|_| everything, 1).await
}

fn steps_of<'a>(run: &'a Value, kind: &str) -> Vec<&'a Value> {
    run["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["kind"] == kind)
        .collect()
}

/// A web chat's run: the server's question arrives as `input_requested` with its form; an
/// answer the form refuses is 422 with the field's path and the question stays open; a valid
/// one goes back to the server (which reports what it got), answering twice is 409, and the act
/// step's stored output records what was asked and answered.
#[tokio::test]
async fn a_servers_question_reaches_the_chat_and_the_checked_answer_reaches_the_server() {
    let t = start().await;
    t.fake.push(Reply::tool_call(
        "call_ask",
        "everything__trigger-elicitation-request",
        json!({}),
    ));
    // The next turn naps, so the run is still going when the question is answered again.
    t.fake.push(Reply::tool_call(
        "call_nap",
        "testkit__sleep",
        json!({"ms": 1500}),
    ));
    t.fake.push(Reply::text("Thanks, noted."));
    let mut events = t.chat("Ask me for my details.").await;
    let asked = events.until("input_requested").await;
    let request = asked.last().expect("input_requested").data.clone();
    let run_id = request["run_id"].as_str().expect("run id").to_owned();
    let id = request["id"].as_str().expect("input id").to_owned();
    assert_eq!(request["server"], "everything");
    assert!(
        request["message"]
            .as_str()
            .is_some_and(|m| m.contains("provide inputs")),
        "{request:#}"
    );
    assert_eq!(
        request["schema"]["required"],
        json!(["name"]),
        "{request:#}"
    );
    let answer_path = format!("/api/runs/{run_id}/inputs/{id}");

    // The form requires a string `name`.
    let (status, body) = t
        .request(
            Method::POST,
            &answer_path,
            Some(json!({"action": "accept", "content": {"name": 42}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:#}");
    assert_eq!(body["error"]["code"], "invalid_input");
    assert_eq!(body["error"]["details"][0]["path"], "/name", "{body:#}");
    let (status, body) = t
        .request(
            Method::POST,
            &answer_path,
            Some(json!({"action": "decline", "content": {"name": "x"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    let (status, body) = t
        .request(
            Method::POST,
            &format!("/api/runs/{run_id}/inputs/in-99"),
            Some(json!({"action": "decline"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body:#}");

    let (status, body) = t
        .request(
            Method::POST,
            &answer_path,
            Some(json!({"action": "accept", "content": {"name": "Ada Lovelace", "check": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body:#}");
    let (status, body) = t
        .request(
            Method::POST,
            &answer_path,
            Some(json!({"action": "decline"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a question is answered once: {body:#}"
    );
    let rest = events.all().await;
    let answered = rest
        .iter()
        .find(|e| e.name.as_deref() == Some("input_answered"))
        .expect("input_answered");
    assert_eq!(answered.data["action"], "accept");
    assert_eq!(answered.data["id"], id.as_str());
    let (status, _) = t
        .request(
            Method::POST,
            &answer_path,
            Some(json!({"action": "decline"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the run has ended");

    let run = t.ended(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let act = steps_of(&run, "act")[0];
    let output = &act["output"];
    let text = output.to_string();
    assert!(
        text.contains("Name: Ada Lovelace") && text.contains("Agreed to terms: true"),
        "the server got the answer: {output:#}"
    );
    assert_eq!(output["serverRequests"][0]["type"], "elicitation");
    assert_eq!(output["serverRequests"][0]["action"], "accept");
    t.server.stop().await;
}

/// Nobody attends a `/v1` run: the server's question is answered by its policy (declined) at
/// once, and no `input_requested` is waited on.
#[tokio::test]
async fn with_nobody_to_ask_the_servers_policy_answers() {
    let t = start().await;
    t.fake.push(Reply::tool_call(
        "call_ask",
        "everything__trigger-elicitation-request",
        json!({}),
    ));
    t.fake.push(Reply::text("Declined, fine."));
    let body = json!({"model": "fake", "messages": [{"role": "user", "content": "Ask me."}]});
    let (status, reply) = tokio::time::timeout(
        Duration::from_secs(30),
        t.request(Method::POST, "/v1/chat/completions", Some(body)),
    )
    .await
    .expect("answered without waiting for a person");
    assert_eq!(status, StatusCode::OK, "{reply:#}");
    let requests = t.fake.requests();
    let observed = requests
        .last()
        .expect("the model's second turn")
        .body
        .to_string();
    assert!(
        observed.contains("declined"),
        "the model hears that the server's question was declined: {observed}"
    );
    t.server.stop().await;
}

/// The reference server's `trigger-sampling-request` exists only for a client that declares
/// sampling; its request is served by `fake` (its `maxTokens` lowered to the configured 50) as
/// a `sample` step depending on the act step, whose text the server gets back.
#[tokio::test]
async fn sampling_is_served_by_the_configured_model_as_a_step_of_the_run() {
    let t = start().await;
    t.fake.push(Reply::tool_call(
        "call_sample",
        "everything__trigger-sampling-request",
        json!({"prompt": "a haiku about pipes", "maxTokens": 500}),
    ));
    t.fake.push(Reply::text("Water finds its way"));
    t.fake.push(Reply::text("The server wrote a haiku."));
    let mut events = t.chat("Have the server sample.").await;
    let all = events.all().await;
    let run_id = all
        .iter()
        .find_map(|e| e.data["run_id"].as_str())
        .expect("run id")
        .to_owned();
    let run = t.ended(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let act = steps_of(&run, "act")[0];
    let sample = steps_of(&run, "sample");
    assert_eq!(sample.len(), 1, "{run:#}");
    let sample = sample[0];
    assert_eq!(sample["name"], "fake");
    assert_eq!(sample["status"], "succeeded", "{sample:#}");
    assert!(
        run["edges"].as_array().is_some_and(
            |edges| edges.contains(&json!({"from": act["index"], "to": sample["index"]}))
        ),
        "the sample step depends on the act step: {run:#}"
    );
    assert_eq!(sample["input"]["maxTokens"], 50, "{sample:#}");
    assert!(
        sample["input"].to_string().contains("a haiku about pipes"),
        "{sample:#}"
    );
    assert_eq!(sample["output"]["text"], "Water finds its way");
    assert!(
        act["output"].to_string().contains("Water finds its way"),
        "the server got the completion: {act:#}"
    );
    let sampled = &t.fake.requests()[1];
    assert_eq!(sampled.body["max_tokens"], 50, "{:#}", sampled.body);
    t.server.stop().await;
}
