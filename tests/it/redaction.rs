//! Secrets in tool arguments and results (issue 12, "Logs and traces"): a run whose tool call
//! carries a provider key and a value of a configured secret (an MCP server's credential env)
//! is stored and shown with `[redacted: …]` markers in every place a run is read back (the run
//! record `/debug` draws, its event stream), while the tool got, the model saw, and the caller
//! was answered with the real values.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_fake_llm::{FakeLlm, Reply};

use crate::support;

/// A provider-shaped key the model "found" and passes to a tool.
const PROVIDER_KEY: &str = "sk-proj-Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz";
/// The credential configured in the `vault` server's env: redacted by value, whatever its shape.
const CONFIGURED: &str = "vault-token-5d1c8e0f7a2b";
const PATIENCE: Duration = Duration::from_secs(20);

/// The demo config plus `vault`, a testkit server whose env holds a credential.
fn config(dir: &std::path::Path, fake: &FakeLlm) -> std::path::PathBuf {
    let vault = format!(
        "{}    env: {{ VAULT_TOKEN: \"{CONFIGURED}\" }}\n",
        support::bundled_stdio("vault", "testkit", &[])
    );
    support::write_demo_config(dir, fake, &vault)
}

/// Poll `GET /api/runs/{id}` until the run has finished.
async fn finished_run(server: &support::InProcessServer, id: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, run) = server
            .request(Method::GET, &format!("/api/runs/{id}"), None)
            .await;
        if status == StatusCode::OK && run["status"] != "running" {
            return run;
        }
        assert!(Instant::now() < deadline, "the run never finished: {run:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Until the vault server is ready (a run's catalog is taken when it starts).
async fn wait_for_vault(server: &support::InProcessServer) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, body) = server.request(Method::GET, "/api/tools", None).await;
        if body["tools"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|t| t["name"] == "vault__echo"))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "vault__echo never listed: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_tool_calls_are_redacted_in_every_record_but_reach_tool_and_model() {
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = support::InProcessServer::start(&config(dir.path(), &fake)).await;
    wait_for_vault(&server).await;

    let message = format!("key {PROVIDER_KEY} and token {CONFIGURED}");
    fake.push(Reply::tool_call(
        "call_1",
        "vault__echo",
        json!({ "message": message }),
    ));
    fake.push(Reply::text(format!("The tool said: {CONFIGURED}")));
    let response = server
        .send(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({
                "model": "fake",
                "messages": [{ "role": "user", "content": "echo my secrets" }],
            })),
        )
        .await;
    let status = response.status();
    let run_id = response
        .headers()
        .get("x-switchboard-run-id")
        .and_then(|v| v.to_str().ok())
        .expect("the run id header")
        .to_owned();
    let body: Value = response.json().await.expect("a JSON answer");
    assert_eq!(status, StatusCode::OK, "{body:#}");

    // The model saw the tool's real result: the engine works on real values.
    let requests = fake.requests();
    let second = requests
        .iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .nth(1)
        .expect("a second model request with the tool result")
        .body
        .to_string();
    assert!(
        second.contains(PROVIDER_KEY) && second.contains(CONFIGURED),
        "the tool got and returned the real values: {second}"
    );

    // Every record of the run: the markers, never the values.
    let run = finished_run(&server, &run_id).await;
    let (_, events) = server
        .request(Method::GET, &format!("/api/runs/{run_id}/events"), None)
        .await;
    let records = [
        ("the run record", run.to_string()),
        ("the run's event stream", events.to_string()),
    ];
    for (what, text) in &records {
        assert!(
            !text.contains(PROVIDER_KEY),
            "{what} holds the provider key: {text}"
        );
        assert!(
            !text.contains(CONFIGURED),
            "{what} holds the configured secret: {text}"
        );
    }
    let (_, record) = &records[0];
    assert!(
        record.contains("[redacted: api key]") && record.contains("[redacted: configured secret]"),
        "the run record shows where secrets were: {record}"
    );
    assert_eq!(
        run["answer"], "The tool said: [redacted: configured secret]",
        "the recorded answer is redacted: {run:#}"
    );
    assert_eq!(
        body["choices"][0]["message"]["content"],
        format!("The tool said: {CONFIGURED}"),
        "the caller gets the reply it asked for as the model wrote it: {body:#}"
    );
    server.stop().await;
}
