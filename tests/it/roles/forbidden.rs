//! A role decides what is shown and what may be used, on every path: listings show exactly what
//! the role grants; a forbidden model, agent or tool is refused by `/v1`, `/api/chat`, direct
//! invoke, ReAct runs and plan-mode plans; nothing forbidden reaches the model (the fake LLM's
//! recorded requests) or the tool's server (the counting `clock`). Bodies over
//! `server.max_body_bytes` are refused before anything runs, and the official OpenAI Python SDK
//! authenticates with a key (see `sdk`).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_fake_llm::{FakeLlm, Reply};

use super::peers::CountingClock;
use super::{
    ADMIN_KEY, Served, Setup, api_error, fake_model, http_server, names, offered_tools,
    openai_error, tool_message, write_config,
};
use crate::support;

/// The role under test: model `fake`, agents `calc`, `otherbot` (bound to the forbidden model
/// `other`) and `planner`, calc's tools only.
const ROLES: &str = "roles:\n  narrow:\n    models: [fake]\n    agents: [calc, otherbot, planner]\n\
                     \x20   tools: [\"calc__*\"]\n";

/// `calc` (calc's tools), `otherbot` (model `other`), `clockbot` (clock's tools; not granted to
/// `narrow`) and `planner` (plan mode over calc's and clock's tools, one replan).
const AGENTS: &[(&str, &str)] = &[
    (
        "calc",
        "name: calc\ndescription: Arithmetic.\nsystem_prompt: You compute.\ntools: [\"calc__*\"]\n",
    ),
    (
        "otherbot",
        "name: otherbot\ndescription: Arithmetic on the other model.\nmodel: other\n\
         system_prompt: You compute.\ntools: [\"calc__*\"]\n",
    ),
    (
        "clockbot",
        "name: clockbot\ndescription: Tells the time.\nsystem_prompt: You read clocks.\n\
         tools: [\"clock__*\"]\n",
    ),
    (
        "planner",
        "name: planner\ndescription: Plans.\nsystem_prompt: You plan.\nmode: plan\n\
         tools: [\"calc__*\", \"clock__*\"]\nlimits:\n  max_replans: 1\n",
    ),
];

/// The `/v1/models` ids of role `narrow`: its model and the agents whose model it may use.
pub(super) const NARROW_MODEL_IDS: &[&str] = &["agent:calc", "agent:planner", "fake"];

/// Models `fake` and `other` (both the fake LLM), bundled calc, the counting clock at
/// `clock_url`, the agents above, role `narrow`, and a 2 KiB body cap.
async fn start(clock_url: &str) -> Served {
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let models = fake_model("other", &fake);
    let servers = format!(
        "{}{}",
        support::bundled_stdio("calc", "calc", &[]),
        http_server("clock", clock_url)
    );
    let config = write_config(
        dir.path(),
        &fake,
        &Setup {
            models: &models,
            servers: &servers,
            agents: AGENTS,
            access: ROLES,
            server: "  max_body_bytes: 2048\n",
        },
    );
    Served::start(dir, &config, fake, None, &["calc__evaluate", "clock__now"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_decides_what_is_shown_and_what_is_refused_on_every_path() {
    let (clock, clock_server) = CountingClock::serve().await;
    let served = start(&clock_server.url).await;

    // The counter sees calls that are allowed: the administrator may call the clock.
    let (status, _, body) = served.invoke(ADMIN_KEY, "clock__now", json!({})).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the admin may call clock__now: {body:#}"
    );
    assert_eq!(
        clock.calls(),
        1,
        "the counting clock counts the admin's call"
    );

    listings_show_exactly_what_the_role_grants(&served).await;
    forbidden_models_and_agents_are_refused_before_any_model_call(&served).await;
    direct_invoke_of_a_forbidden_tool_is_refused(&served, &clock).await;
    a_run_never_offers_or_calls_a_forbidden_tool(&served, &clock).await;
    a_plan_naming_a_forbidden_tool_is_refused(&served, &clock).await;
    bodies_over_the_cap_are_refused_with_413(&served).await;
    super::gateway::the_gateway_serves_each_role_its_own_catalog(&served, &clock).await;
    super::sdk::the_official_python_sdk_needs_a_key(&served, NARROW_MODEL_IDS).await;

    served.stop().await;
    drop(clock_server);
}

/// `/v1/models`, `/api/models`, `/api/agents` and `/api/tools` as `narrow` and as the admin.
async fn listings_show_exactly_what_the_role_grants(served: &Served) {
    let narrow = served.key("nora", "narrow").await;
    let listing = |key: String, path: &'static str, list: &'static str, field: &'static str| async move {
        let (status, body) = served.call(Some(&key), Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body:#}");
        names(&body[list], field)
    };

    let v1 = listing(narrow.clone(), "/v1/models", "data", "id").await;
    assert_eq!(
        v1, NARROW_MODEL_IDS,
        "/v1/models shows the role's models and agents only"
    );
    let v1_admin = listing(ADMIN_KEY.to_owned(), "/v1/models", "data", "id").await;
    assert_eq!(
        v1_admin,
        [
            "agent:calc",
            "agent:clockbot",
            "agent:otherbot",
            "agent:planner",
            "fake",
            "other"
        ],
        "the admin sees every model and agent"
    );

    let models = listing(narrow.clone(), "/api/models", "models", "name").await;
    assert_eq!(models, ["fake"], "/api/models shows the role's models only");
    let models_admin = listing(ADMIN_KEY.to_owned(), "/api/models", "models", "name").await;
    assert_eq!(
        models_admin,
        ["fake", "other"],
        "the admin sees every model"
    );

    let agents = listing(narrow.clone(), "/api/agents", "agents", "name").await;
    assert_eq!(
        agents,
        ["calc", "planner"],
        "/api/agents shows the role's agents, without `otherbot`, whose model it may not use"
    );
    let agents_admin = listing(ADMIN_KEY.to_owned(), "/api/agents", "agents", "name").await;
    assert_eq!(
        agents_admin,
        ["calc", "clockbot", "otherbot", "planner"],
        "the admin sees every agent"
    );

    let tools = listing(narrow, "/api/tools", "tools", "name").await;
    let tools_admin = listing(ADMIN_KEY.to_owned(), "/api/tools", "tools", "name").await;
    let calc_tools: Vec<String> = tools_admin
        .iter()
        .filter(|t| t.starts_with("calc__"))
        .cloned()
        .collect();
    assert!(
        calc_tools.contains(&"calc__evaluate".to_owned()),
        "{tools_admin:?}"
    );
    assert_eq!(
        tools, calc_tools,
        "/api/tools shows exactly calc's tools to `narrow`"
    );
    assert!(
        tools_admin.contains(&"clock__now".to_owned()),
        "the admin sees the clock: {tools_admin:?}"
    );
}

/// `model: other`, the agent bound to it and a forbidden agent, by `/v1` (plain and streamed)
/// and `/api/chat`: 403 each time, and the model is never called.
async fn forbidden_models_and_agents_are_refused_before_any_model_call(served: &Served) {
    let narrow = served.key("ned", "narrow").await;
    let before = served.fake.requests().len();
    let user = json!([{ "role": "user", "content": "What is 6*7?" }]);
    let completion =
        |model: &str, stream: bool| json!({ "model": model, "messages": user, "stream": stream });

    for stream in [false, true] {
        let response = served
            .send(
                Some(&narrow),
                Method::POST,
                "/v1/chat/completions",
                Some(completion("other", stream)),
            )
            .await;
        let status = response.status();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        let body: Value = response.json().await.expect("a JSON error, not a stream");
        assert!(
            content_type.starts_with("application/json"),
            "refused before any stream (stream: {stream}): {content_type}"
        );
        let error = openai_error(status, &body, StatusCode::FORBIDDEN);
        assert_eq!(
            error["code"], "model_not_allowed",
            "stream: {stream}: {body:#}"
        );
        assert_eq!(error["type"], "invalid_request_error", "{body:#}");
        assert_eq!(error["param"], "model", "{body:#}");
        assert!(
            error["message"].as_str().unwrap().contains("`other`"),
            "the message names the model: {body:#}"
        );
    }

    let (status, body) = served
        .call(
            Some(&narrow),
            Method::POST,
            "/v1/chat/completions",
            Some(completion("agent:otherbot", false)),
        )
        .await;
    let error = openai_error(status, &body, StatusCode::FORBIDDEN);
    assert_eq!(error["code"], "model_not_allowed", "{body:#}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("(the model of agent `otherbot`)"),
        "the refusal says it came through the agent: {body:#}"
    );
    let (status, body) = served
        .call(
            Some(&narrow),
            Method::POST,
            "/v1/chat/completions",
            Some(completion("agent:clockbot", true)),
        )
        .await;
    let error = openai_error(status, &body, StatusCode::FORBIDDEN);
    assert_eq!(
        error["code"], "model_not_allowed",
        "a forbidden agent: {body:#}"
    );

    let chat = |body: Value| {
        let narrow = narrow.clone();
        async move {
            served
                .call(Some(&narrow), Method::POST, "/api/chat", Some(body))
                .await
        }
    };
    let (status, body) = chat(json!({ "message": "What is 6*7?", "model": "other" })).await;
    let error = api_error(status, &body, StatusCode::FORBIDDEN);
    assert_eq!(error["code"], "model_not_allowed", "{body:#}");
    let (status, body) = chat(json!({ "message": "What is 6*7?", "agent": "otherbot" })).await;
    let error = api_error(status, &body, StatusCode::FORBIDDEN);
    assert_eq!(error["code"], "model_not_allowed", "{body:#}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("`other`") && message.contains("(the model of agent `otherbot`)"),
        "the refusal names the model and says it came through the agent: {body:#}"
    );
    let (status, body) = chat(json!({ "message": "What time is it?", "agent": "clockbot" })).await;
    let error = api_error(status, &body, StatusCode::FORBIDDEN);
    assert_eq!(error["code"], "agent_not_allowed", "{body:#}");
    assert!(
        error["message"].as_str().unwrap().contains("`clockbot`"),
        "{body:#}"
    );
    // An unknown model or agent: the 404 names what the role may use, never what it may not.
    let (status, body) = chat(json!({ "message": "Hi.", "model": "nope" })).await;
    let error = api_error(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "model_not_found", "{body:#}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("fake") && !message.contains("other"),
        "the 404 names the role's models only: {message}"
    );
    let (status, body) = chat(json!({ "message": "Hi.", "agent": "nope" })).await;
    let error = api_error(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "agent_not_found", "{body:#}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("calc") && !message.contains("clockbot"),
        "the 404 names the role's agents only: {message}"
    );

    assert_eq!(
        served.fake.requests().len(),
        before,
        "a refused request reached the model: {:#?}",
        served.model_requests_since(before)
    );

    // The same agent and model work for a role that grants them (the admin).
    served.fake.push(Reply::text("42, from the other model."));
    let run = served
        .chat(
            ADMIN_KEY,
            json!({ "message": "What is 6*7?", "agent": "otherbot" }),
        )
        .await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(
        run["model"], "other",
        "the agent runs on its model: {run:#}"
    );
}

/// `POST /api/tools/clock__now/invoke` is 403 for `narrow` and never reaches the clock; an
/// allowed calc tool answers.
async fn direct_invoke_of_a_forbidden_tool_is_refused(served: &Served, clock: &CountingClock) {
    let narrow = served.key("nick", "narrow").await;
    let calls = clock.calls();
    let (status, _, body) = served.invoke(&narrow, "clock__now", json!({})).await;
    let error = api_error(status, &body, StatusCode::FORBIDDEN);
    assert_eq!(error["code"], "tool_not_allowed", "{body:#}");
    assert!(
        error["message"].as_str().unwrap().contains("`clock__now`"),
        "{body:#}"
    );
    let (status, _, body) = served
        .invoke(&narrow, "calc__evaluate", json!({ "expression": "6*7" }))
        .await;
    assert_eq!(status, StatusCode::OK, "an allowed tool answers: {body:#}");
    assert_eq!(body["result"]["content"][0]["text"], "42", "{body:#}");
    assert_eq!(
        clock.calls(),
        calls,
        "the refused call reached the clock server"
    );
}

/// A ReAct run of `narrow`: the model is offered calc's tools only; when it names
/// `clock__now` anyway, the next request carries an observation saying there is no such tool,
/// the clock is never called, and the run still answers.
async fn a_run_never_offers_or_calls_a_forbidden_tool(served: &Served, clock: &CountingClock) {
    // What the admin's plain chat is offered: the clock too.
    let before = served.fake.requests().len();
    served.fake.push(Reply::text("I could use any tool."));
    let run = served
        .chat(
            ADMIN_KEY,
            json!({ "message": "Which tools?", "model": "fake" }),
        )
        .await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let admin_offered = offered_tools(&served.model_requests_since(before)[0]);
    assert!(
        admin_offered.contains(&"clock__now".to_owned()),
        "the admin's run is offered the clock: {admin_offered:?}"
    );
    let calc_tools: Vec<String> = admin_offered
        .iter()
        .filter(|t| t.starts_with("calc__"))
        .cloned()
        .collect();

    let narrow = served.key("nell", "narrow").await;
    let calls = clock.calls();
    let before = served.fake.requests().len();
    served
        .fake
        .push(Reply::tool_call("call_clock", "clock__now", json!({})));
    served.fake.push(Reply::text("I may not read the clock."));
    let run = served
        .chat(&narrow, json!({ "message": "What time is it?" }))
        .await;
    assert_eq!(run["status"], "succeeded", "the run goes on: {run:#}");
    assert_eq!(run["answer"], "I may not read the clock.", "{run:#}");

    let requests = served.model_requests_since(before);
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for request in &requests {
        assert_eq!(
            offered_tools(request),
            calc_tools,
            "`narrow` is offered exactly calc's tools: {:#}",
            request.body
        );
    }
    let observation = tool_message(&requests[1], "call_clock");
    assert!(
        observation.contains("no tool named `clock__now`")
            && observation.contains("calc__evaluate"),
        "the model is told the tool is not available to it: {observation}"
    );
    assert!(
        !observation.contains("2026-01-01"),
        "the clock's answer leaked into the observation: {observation}"
    );
    let act = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["kind"] == "act")
        .unwrap_or_else(|| panic!("no act step: {run:#}"));
    assert_eq!(act["name"], "clock__now", "{run:#}");
    assert_eq!(
        act["status"], "failed",
        "the forbidden call failed: {act:#}"
    );
    assert_eq!(
        clock.calls(),
        calls,
        "the forbidden tool's server was called"
    );
}

/// Plan mode for `narrow` through an agent that lists clock's tools: the planner is not shown
/// the clock, a plan naming it is fed back with the reason and nothing of it runs; a planner
/// that insists fails the run with that reason. The clock is never called.
async fn a_plan_naming_a_forbidden_tool_is_refused(served: &Served, clock: &CountingClock) {
    let narrow = served.key("noel", "narrow").await;
    let calls = clock.calls();
    let bad = json!({ "steps": [
        { "id": "a", "tool": "calc__evaluate", "args": { "expression": "6*7" }, "depends_on": [] },
        { "id": "t", "tool": "clock__now", "args": {}, "depends_on": [] }
    ]})
    .to_string();
    let good = json!({ "steps": [
        { "id": "a", "tool": "calc__evaluate", "args": { "expression": "6*7" }, "depends_on": [] }
    ]})
    .to_string();

    let before = served.fake.requests().len();
    served.fake.push(Reply::text(bad.clone()));
    served.fake.push(Reply::text(good));
    served
        .fake
        .push(Reply::text("6*7 is 42; the time I may not read."));
    let run = served
        .chat(
            &narrow,
            json!({ "message": "Compute 6*7 and tell the time.", "agent": "planner" }),
        )
        .await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(
        run["answer"], "6*7 is 42; the time I may not read.",
        "{run:#}"
    );
    let requests = served.model_requests_since(before);
    assert_eq!(
        requests.len(),
        3,
        "plan, corrected plan, answer: {requests:#?}"
    );
    let first = requests[0].body.to_string();
    assert!(
        first.contains("calc__evaluate") && !first.contains("clock__"),
        "the planner is shown calc's tools and not the clock's: {first}"
    );
    let feedback: Vec<String> = requests[1].body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .filter(|text| text.contains("The plan has problems"))
        .map(str::to_owned)
        .collect();
    assert_eq!(feedback.len(), 1, "{:#}", requests[1].body);
    assert!(
        feedback[0].contains("step `t` uses an unknown tool `clock__now`"),
        "the feedback names the step and the tool: {}",
        feedback[0]
    );
    let acts: Vec<&Value> = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "act")
        .collect();
    assert_eq!(acts.len(), 1, "only the corrected plan ran: {run:#}");
    assert_eq!(acts[0]["name"], "calc__evaluate", "{run:#}");
    assert_eq!(acts[0]["status"], "succeeded", "{run:#}");

    // A planner that keeps naming the clock: the run fails, saying why; nothing ran.
    served.fake.push(Reply::text(bad.clone()));
    served.fake.push(Reply::text(bad));
    let run = served
        .chat(
            &narrow,
            json!({ "message": "Tell the time.", "agent": "planner" }),
        )
        .await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("uses an unknown tool `clock__now`"),
        "the run's error says why: {run:#}"
    );
    assert!(
        !run["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .any(|s| s["kind"] == "act"),
        "no step of a refused plan ran: {run:#}"
    );
    assert_eq!(clock.calls(), calls, "a plan called the forbidden tool");
}

/// 413 with the cap named, in each route's error shape; a body just under the cap is read.
async fn bodies_over_the_cap_are_refused_with_413(served: &Served) {
    let narrow = served.key("nina", "narrow").await;
    let before = served.fake.requests().len();
    let over = "x".repeat(3000);
    let under = "x".repeat(1500);

    let (status, body) = served
        .call(
            Some(&narrow),
            Method::POST,
            "/api/chat",
            Some(json!({ "message": over })),
        )
        .await;
    let error = api_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["code"], "body_too_large", "{body:#}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("server.max_body_bytes"),
        "the message names the cap: {body:#}"
    );
    let (status, body) = served
        .call(
            Some(&narrow),
            Method::POST,
            "/v1/chat/completions",
            Some(json!({ "model": "fake", "messages": [{ "role": "user", "content": over }] })),
        )
        .await;
    let error = openai_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["code"], "body_too_large", "{body:#}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("server.max_body_bytes"),
        "the message names the cap: {body:#}"
    );

    // Under the cap the body is read: these fail later, on the unknown model.
    let (status, body) = served
        .call(
            Some(&narrow),
            Method::POST,
            "/api/chat",
            Some(json!({ "message": under, "model": "nope" })),
        )
        .await;
    let error = api_error(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "model_not_found", "{body:#}");
    let (status, body) = served
        .call(
            Some(&narrow),
            Method::POST,
            "/v1/chat/completions",
            Some(json!({ "model": "nope", "messages": [{ "role": "user", "content": under }] })),
        )
        .await;
    let error = openai_error(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "model_not_found", "{body:#}");
    assert_eq!(
        served.fake.requests().len(),
        before,
        "a refused body reached the model"
    );
}
