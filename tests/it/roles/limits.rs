//! Per-user limits with a clock the test moves (`ManualClock`): the built-in `user` role's 10 tool
//! calls then 60 s of cooldown on direct invoke (429 + `Retry-After`, the 1st call after the
//! cooldown allowed) and lifted for one user by `users:`; a tiny quota inside a run (a refusal
//! observation, the run still answers); the request rate per key (OpenAI's shape under `/v1`);
//! the cap on concurrent runs. In each, another user at the same time is not limited.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::access::{Clock, ManualClock};
use switchboard_fake_llm::{FakeLlm, Reply};

use super::{
    PATIENCE, Served, Setup, api_error, http_server, openai_error, retry_after, tool_message,
    write_config,
};
use crate::support;
use crate::support::gate::Gate;

/// `tiny`: two calc calls a minute, then a minute's cooldown. `paced`: five requests a minute.
/// `single`: one run at a time (the gate's tool to hold it open). `alice` (role `user`) has no
/// tool-call quota.
const ACCESS: &str = "\
roles:
  tiny:
    models: [fake]
    tools: [\"calc__*\"]
    limits:
      tool_calls: { calls: 2, window_ms: 60000, cooldown_ms: 60000 }
  paced:
    models: [\"*\"]
    agents: [\"*\"]
    tools: [\"*\"]
    limits:
      requests_per_minute: 5
  single:
    models: [fake]
    tools: [\"gate__*\"]
    limits:
      concurrent_runs: 1
users:
  alice:
    limits: { tool_calls: unlimited }
";

/// Model `fake`, bundled calc, the gate at `gate_url`, the roles above, and `clock`.
async fn start(gate_url: &str, clock: Arc<ManualClock>) -> Served {
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let servers = format!(
        "{}{}",
        support::bundled_stdio("calc", "calc", &[]),
        http_server("gate", gate_url)
    );
    let config = write_config(
        dir.path(),
        &fake,
        &Setup {
            models: "",
            servers: &servers,
            agents: &[],
            access: ACCESS,
            server: "",
        },
    );
    let clock: Arc<dyn Clock> = clock;
    Served::start(
        dir,
        &config,
        fake,
        Some(clock),
        &["calc__evaluate", "gate__wait"],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_limits_hold_on_every_path_with_a_manual_clock() {
    let (gate, gate_server) = Gate::serve().await;
    let clock = Arc::new(ManualClock::default());
    let served = start(&gate_server.url, clock.clone()).await;

    ten_tool_calls_then_a_cooldown_then_calls_again(&served, &clock).await;
    a_run_over_its_quota_is_told_and_still_answers(&served).await;
    the_request_rate_is_per_key(&served, &clock).await;
    one_run_at_a_time_then_the_next(&served, &gate).await;

    served.stop().await;
    drop(gate_server);
}

/// One direct invoke of `calc__evaluate` as `key`.
async fn add(served: &Served, key: &str) -> (StatusCode, HeaderMap, Value) {
    served
        .invoke(key, "calc__evaluate", json!({ "expression": "1+1" }))
        .await
}

/// The 429 of a tool-call quota: our error shape, the limit named; returns `Retry-After`.
#[track_caller]
fn quota_refusal(status: StatusCode, headers: &HeaderMap, body: &Value, quota: &str) -> u64 {
    let error = api_error(status, body, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error["code"], "rate_limited", "{body:#}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("tool call limit reached") && message.contains(quota),
        "the message names the limit `{quota}`: {message}"
    );
    retry_after(headers)
}

/// Role `user` (10 calls per 60 s, then 60 s of cooldown): the 11th call is 429 with
/// `Retry-After` ≈ 60; before the cooldown ends still 429; after it the next call is allowed.
/// Another user is not limited meanwhile, and `alice`'s override lifts the quota for her only.
async fn ten_tool_calls_then_a_cooldown_then_calls_again(served: &Served, clock: &ManualClock) {
    let ursula = served.key("ursula", "user").await;
    let victor = served.key("victor", "user").await;
    let alice = served.key("alice", "user").await;
    for call in 1..=10 {
        let (status, _, body) = add(served, &ursula).await;
        assert_eq!(status, StatusCode::OK, "call {call} of 10: {body:#}");
        assert_eq!(body["result"]["content"][0]["text"], "2", "{body:#}");
    }
    let (status, headers, body) = add(served, &ursula).await;
    let wait = quota_refusal(status, &headers, &body, "10 calls per 60 s");
    assert!(
        (59..=60).contains(&wait),
        "Retry-After is the cooldown, about 60 s: {wait}"
    );

    let (status, _, body) = add(served, &victor).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another user is not limited by ursula's quota: {body:#}"
    );
    for call in 1..=15 {
        let (status, _, body) = add(served, &alice).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "alice's override lifts the quota (call {call}): {body:#}"
        );
    }

    clock.advance(Duration::from_secs(30));
    let (status, headers, body) = add(served, &ursula).await;
    let wait = quota_refusal(status, &headers, &body, "10 calls per 60 s");
    assert!(
        (29..=30).contains(&wait),
        "30 s into the cooldown, about 30 s are left: {wait}"
    );
    clock.advance(Duration::from_secs(31));
    let (status, _, body) = add(served, &ursula).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the first call after the cooldown is allowed: {body:#}"
    );
}

/// Role `tiny` (2 calls, then a cooldown): a model asking for three tools, one turn after
/// another, gets the third refused as an observation it reads in its next request, and the run
/// still succeeds with its answer. Another `tiny` user calls meanwhile; the runner's own direct
/// call is refused (the run's calls counted).
async fn a_run_over_its_quota_is_told_and_still_answers(served: &Served) {
    let tina = served.key("tina", "tiny").await;
    let theo = served.key("theo", "tiny").await;
    let before = served.fake.requests().len();
    for (id, expression) in [("call_1", "1+1"), ("call_2", "2+2"), ("call_3", "3+3")] {
        served.fake.push(Reply::tool_call(
            id,
            "calc__evaluate",
            json!({ "expression": expression }),
        ));
    }
    served
        .fake
        .push(Reply::text("2 and 4; the third call was refused."));
    let run = served
        .chat(
            &tina,
            json!({ "message": "Add three times.", "model": "fake" }),
        )
        .await;
    assert_eq!(
        run["status"], "partial",
        "the run goes on and answers, honest that a call failed: {run:#}"
    );
    assert_eq!(
        run["answer"], "2 and 4; the third call was refused.",
        "{run:#}"
    );

    let requests = served.model_requests_since(before);
    assert_eq!(requests.len(), 4, "{requests:#?}");
    assert_eq!(tool_message(&requests[1], "call_1"), "2");
    assert_eq!(tool_message(&requests[2], "call_2"), "4");
    let refusal = tool_message(&requests[3], "call_3");
    assert!(
        refusal.contains("was refused and not made")
            && refusal.contains("tool call limit reached: 2 calls per 60 s"),
        "the model is told the third call was refused by the limit: {refusal}"
    );

    let (status, _, body) = add(served, &theo).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another user of the role is not limited: {body:#}"
    );
    let (status, headers, body) = add(served, &tina).await;
    let wait = quota_refusal(status, &headers, &body, "2 calls per 60 s");
    assert!((1..=60).contains(&wait), "{wait}");
}

/// Role `paced` (5 requests a minute per key): the 6th request is 429 with `Retry-After`, in
/// OpenAI's shape under `/v1` and ours under `/api`, and reaches no model; another key is not
/// limited; a minute later requests pass again.
async fn the_request_rate_is_per_key(served: &Served, clock: &ManualClock) {
    let paula = served.key("paula", "paced").await;
    let peter = served.key("peter", "paced").await;
    let before = served.fake.requests().len();
    for request in 1..=5 {
        let (status, body) = served
            .call(Some(&paula), Method::GET, "/v1/models", None)
            .await;
        assert_eq!(status, StatusCode::OK, "request {request} of 5: {body:#}");
    }

    let (status, headers, body) = served
        .call_with_headers(Some(&paula), Method::GET, "/v1/models", None)
        .await;
    let error = openai_error(status, &body, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error["code"], "rate_limited", "{body:#}");
    assert_eq!(
        error["type"], "rate_limit_error",
        "the same type as a run refused for its limits: {body:#}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("5 requests per minute"),
        "the message names the limit: {body:#}"
    );
    let wait = retry_after(&headers);
    assert!(
        (1..=12).contains(&wait),
        "one request comes back every 12 s: Retry-After {wait}"
    );
    let (status, headers, body) = served
        .call_with_headers(
            Some(&paula),
            Method::POST,
            "/v1/chat/completions",
            Some(json!({ "model": "fake", "messages": [{ "role": "user", "content": "hi" }] })),
        )
        .await;
    let error = openai_error(status, &body, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error["code"], "rate_limited", "{body:#}");
    retry_after(&headers);
    let (status, headers, body) = served
        .call_with_headers(Some(&paula), Method::GET, "/api/models", None)
        .await;
    let error = api_error(status, &body, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error["code"], "rate_limited", "{body:#}");
    retry_after(&headers);
    assert_eq!(
        served.fake.requests().len(),
        before,
        "a limited request reached the model"
    );

    let (status, body) = served
        .call(Some(&peter), Method::GET, "/v1/models", None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another key is not limited by paula's rate: {body:#}"
    );

    clock.advance(Duration::from_secs(60));
    for request in 1..=5 {
        let (status, body) = served
            .call(Some(&paula), Method::GET, "/v1/models", None)
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a minute later the rate is back (request {request}): {body:#}"
        );
    }
}

/// Role `single` (one run at a time): while sam's run waits at the gate, his second chat is
/// 429 and reaches no model, and sally (same role) chats meanwhile; once the gate opens and the
/// run ends, sam's next chat starts.
async fn one_run_at_a_time_then_the_next(served: &Served, gate: &Gate) {
    let sam = served.key("sam", "single").await;
    let sally = served.key("sally", "single").await;
    served
        .fake
        .push(Reply::tool_call("call_gate", "gate__wait", json!({})));
    let entered = gate.entered();
    let (first_id, first) = served
        .start_chat(&sam, json!({ "message": "Wait at the gate." }))
        .await;
    support::eventually(PATIENCE, "sam's run reaches the gate", || {
        gate.entered() > entered
    })
    .await;

    let before = served.fake.requests().len();
    let (status, headers, body) = served
        .call_with_headers(
            Some(&sam),
            Method::POST,
            "/api/chat",
            Some(json!({ "message": "A second run." })),
        )
        .await;
    let error = api_error(status, &body, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error["code"], "rate_limited", "{body:#}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("already has 1 runs in progress"),
        "the message names the limit: {body:#}"
    );
    retry_after(&headers);
    assert_eq!(
        served.fake.requests().len(),
        before,
        "the refused run reached the model"
    );

    served.fake.push(Reply::text("Hello, Sally."));
    let run = served.chat(&sally, json!({ "message": "Hello." })).await;
    assert_eq!(
        run["status"], "succeeded",
        "another user of the role runs meanwhile: {run:#}"
    );

    served.fake.push(Reply::text("The gate opened."));
    gate.open(1);
    let run = served.finish_chat(&sam, &first_id, first).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["answer"], "The gate opened.", "{run:#}");

    // The slot is freed as the run's task ends, a moment after its stream; poll for it.
    served.fake.push(Reply::text("The next run."));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (run_id, stream) = loop {
        let response = served
            .send(
                Some(&sam),
                Method::POST,
                "/api/chat",
                Some(json!({ "message": "The next run." })),
            )
            .await;
        if response.status() == StatusCode::OK {
            let run_id = response.headers()["x-switchboard-run-id"]
                .to_str()
                .expect("run id header")
                .to_owned();
            break (run_id, response);
        }
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "only the run slot may hold the next run back: {body}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run slot was never freed after the run ended: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let run = served.finish_chat(&sam, &run_id, stream).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["answer"], "The next run.", "{run:#}");
}
