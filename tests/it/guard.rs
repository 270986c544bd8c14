//! The request gate (`api::guard`) against the real server, sending what a hostile page or a
//! DNS-rebinding attack sends: a foreign `Host`, a foreign `Origin`, form and `text/plain`
//! bodies. Each attack must change nothing (no run started, no reload applied), and the same
//! requests from a legitimate client keep working.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HOST, ORIGIN};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use switchboard_fake_llm::{FakeLlm, Fallback};

use crate::support::{self, InProcessServer};

/// A server with the fake model, no MCP servers, and one public host and allowed origin.
struct Guarded {
    server: InProcessServer,
    fake: FakeLlm,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

fn config_yaml(dir: &Path, fake: &FakeLlm, extra_model: bool) -> String {
    let extra = if extra_model {
        "  - name: added-later\n    type: openai\n    base_url: http://127.0.0.1:9/v1\n    \
         model_name: x\n    healthcheck: false\n"
    } else {
        ""
    };
    format!(
        "server:\n  bind: 127.0.0.1:0\n  data_dir: {data}\n  public_hosts: [switchboard.internal]\n  \
         allowed_origins: [\"https://tools.example.test\"]\n\
         models:\n  - name: fake\n    type: openai\n    base_url: {base}\n    model_name: fake-model\n    \
         default: true\n    healthcheck: false\n    retry: {{max_attempts: 1}}\n{extra}\
         mcpServers: {{}}\n",
        data = dir.join("data").display(),
        base = fake.openai_base_url(),
    )
}

impl Guarded {
    async fn start() -> Guarded {
        let fake = FakeLlm::start().await;
        fake.set_fallback(Fallback::Demo);
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("switchboard.yaml");
        std::fs::write(&config, config_yaml(dir.path(), &fake, false)).expect("config");
        let server = InProcessServer::start(&config).await;
        Guarded {
            server,
            fake,
            config,
            _dir: dir,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(reqwest::header::HeaderName, &str)],
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .server
            .http
            .request(method, format!("{}{path}", self.server.base));
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        let response = request.send().await.expect("request to switchboard");
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        (status, support::json_or_text(&bytes))
    }

    async fn run_count(&self) -> usize {
        let (_, runs) = self.server.request(Method::GET, "/api/runs", None).await;
        runs["runs"].as_array().map_or(0, Vec::len)
    }

    async fn model_names(&self) -> Vec<String> {
        let (_, models) = self.server.request(Method::GET, "/api/models", None).await;
        models["models"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["name"].as_str().map(str::to_owned))
            .collect()
    }
}

const COMPLETION: &str =
    r#"{"model": "fake", "messages": [{"role": "user", "content": "what is 2+3?"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_is_refused_on_every_surface() {
    let served = Guarded::start().await;
    for path in ["/api/tools", "/v1/models", "/", "/debug", "/no/such/route"] {
        let (status, body) = served
            .send(Method::GET, path, &[(HOST, "rebind.test")], None)
            .await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["code"], "host_not_allowed", "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("rebind.test") && message.contains("server.public_hosts"),
            "{path}: {message}"
        );
    }
    // Under /v1 the refusal is in OpenAI's shape.
    let (_, body) = served
        .send(
            Method::GET,
            "/v1/models",
            &[(HOST, "rebind.test:8080")],
            None,
        )
        .await;
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    // A name the config lists, on any port, and loopback names pass.
    for host in ["switchboard.internal:8080", "localhost", "[::1]:1234"] {
        let (status, body) = served
            .send(Method::GET, "/api/tools", &[(HOST, host)], None)
            .await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
    served.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_writes_start_nothing_and_reload_nothing() {
    let served = Guarded::start().await;
    // What a page's `<form enctype=text/plain>` or `fetch(…, {mode: "no-cors"})` sends.
    for content_type in [
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
    ] {
        let (status, body) = served
            .send(
                Method::POST,
                "/v1/chat/completions",
                &[(CONTENT_TYPE, content_type)],
                Some(COMPLETION),
            )
            .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
        assert_eq!(body["error"]["code"], "unsupported_media_type", "{body}");
    }
    let (status, body) = served
        .send(
            Method::POST,
            "/api/chat",
            &[
                (ORIGIN, "http://evil.test"),
                (CONTENT_TYPE, "application/json"),
            ],
            Some(r#"{"message": "2+2?"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "cross_origin_refused", "{body}");
    assert_eq!(
        served.run_count().await,
        0,
        "a refused request started a run"
    );
    assert!(served.fake.requests().is_empty(), "the model was called");

    // A reload from another origin (a no-cors POST without a body) must not apply the file.
    std::fs::write(
        &served.config,
        config_yaml(served.config.parent().expect("dir"), &served.fake, true),
    )
    .expect("rewrite config");
    let (status, body) = served
        .send(
            Method::POST,
            "/api/config/reload",
            &[(ORIGIN, "http://127.0.0.1:1")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        !served
            .model_names()
            .await
            .contains(&"added-later".to_owned()),
        "the refused reload was applied"
    );
    // From a listed origin it is applied.
    let (status, body) = served
        .send(
            Method::POST,
            "/api/config/reload",
            &[(ORIGIN, "https://tools.example.test")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        served
            .model_names()
            .await
            .contains(&"added-later".to_owned())
    );
    served.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legitimate_clients_keep_working() {
    let served = Guarded::start().await;
    let own_origin = served.server.base.clone();
    // The web UI: same-origin JSON.
    let (status, body) = served
        .send(
            Method::POST,
            "/v1/chat/completions",
            &[
                (ORIGIN, own_origin.as_str()),
                (CONTENT_TYPE, "application/json"),
            ],
            Some(COMPLETION),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // An SDK or curl: JSON, no Origin.
    let (status, body) = served
        .send(
            Method::POST,
            "/v1/chat/completions",
            &[(CONTENT_TYPE, "application/json; charset=utf-8")],
            Some(COMPLETION),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // `switchboard reload`: a POST with neither header.
    let (status, body) = served
        .send(Method::POST, "/api/config/reload", &[], None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::timeout(Duration::from_secs(10), served.server.stop())
        .await
        .expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_refused_before_a_model_sees_them() {
    let served = Guarded::start().await;
    // 10 001 messages (the default cap is 1 000), each small: the body is well under 2 MB.
    let mut messages: Vec<Value> = (0..10_000)
        .map(|i| serde_json::json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": "hi"}))
        .collect();
    messages.push(serde_json::json!({"role": "user", "content": "and now?"}));
    let body = serde_json::json!({"model": "fake", "messages": messages}).to_string();
    let (status, reply) = served
        .send(
            Method::POST,
            "/v1/chat/completions",
            &[(CONTENT_TYPE, "application/json")],
            Some(&body),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");
    assert_eq!(reply["error"]["code"], "too_many_messages", "{reply}");
    assert_eq!(reply["error"]["param"], "messages", "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("10001") && message.contains("server.max_messages"),
        "{message}"
    );
    // One message over the default 200 000 characters.
    let long = "x".repeat(200_001);
    let body = serde_json::json!({"message": long}).to_string();
    let (status, reply) = served
        .send(
            Method::POST,
            "/api/chat",
            &[(CONTENT_TYPE, "application/json")],
            Some(&body),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");
    assert_eq!(reply["error"]["code"], "message_too_long", "{reply}");
    assert_eq!(
        served.run_count().await,
        0,
        "a refused request started a run"
    );
    assert!(served.fake.requests().is_empty(), "the model was called");
    served.server.stop().await;
}
