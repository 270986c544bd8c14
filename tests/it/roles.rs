//! Roles and per-user limits through the real server (`app::serve_on` with `server.auth: keys`),
//! keys made over `/api/keys` with `SWITCHBOARD_ADMIN_KEY`, the scripted fake LLM and test-owned
//! MCP servers that count their calls. What the tests prove:
//!
//! - `forbidden`: a role decides what `/v1/models`, `/api/models`, `/api/agents` and
//!   `/api/tools` show (exact sets; the admin sees more); a forbidden model, agent or tool is
//!   refused on every path (`/v1/chat/completions` plain and streamed, `/api/chat` by model, by
//!   an agent bound to a forbidden model and by a forbidden agent, direct invoke, a ReAct run
//!   whose model names a forbidden tool, a plan naming one), the fake LLM's recorded requests
//!   show that nothing forbidden was offered, and the forbidden tool's server is never called;
//!   bodies over `server.max_body_bytes` get 413 before anything runs; the official OpenAI
//!   Python SDK works with a key and gets `AuthenticationError` without one.
//! - `limits`: with a [`ManualClock`](switchboard::access::ManualClock), the built-in `user`
//!   role's 10 tool calls then 60 s of cooldown (429 + `Retry-After` on direct invoke, a refusal
//!   observation inside a run that still succeeds), per-user overrides, the request rate per key
//!   and the cap on concurrent runs; one user at a limit never limits another.
//!
//! Each test starts one server and runs its sub-tests in order on it (starting servers costs
//! seconds); every sub-test makes keys for users of its own, so none depends on another's state.

mod forbidden;
mod gateway;
mod limits;
mod peers;
mod sdk;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_fake_llm::{FakeLlm, Recorded};

use crate::support::{self, InProcessServer, ServeExtras};

/// `SWITCHBOARD_ADMIN_KEY` of every server here (at least 32 characters).
const ADMIN_KEY: &str = "roles-test-admin-key-0123456789abcdef";
/// Longest wait for servers to be ready or a run to finish.
const PATIENCE: Duration = Duration::from_secs(20);

/// What a test's config is made of besides the fixed parts (auth, the fake model `fake`).
struct Setup<'a> {
    /// Extra entries under `models:` (YAML, indented as list items).
    models: &'a str,
    /// Entries under `mcpServers:`.
    servers: &'a str,
    /// Agent files: `(name, yaml)`.
    agents: &'a [(&'a str, &'a str)],
    /// Top-level YAML appended to the config (`roles:`, `users:`).
    access: &'a str,
    /// Extra keys under `server:` (indented two spaces).
    server: &'a str,
}

/// Write `dir/switchboard.yaml` (and `dir/agents/*.yaml`) with `auth: keys` and model `fake`
/// (the default) answered by `fake`, plus what `setup` adds.
fn write_config(dir: &Path, fake: &FakeLlm, setup: &Setup<'_>) -> PathBuf {
    let agents = dir.join("agents");
    std::fs::create_dir_all(&agents).expect("agents dir");
    for (name, yaml) in setup.agents {
        std::fs::write(agents.join(format!("{name}.yaml")), yaml).expect("agent file");
    }
    let yaml = format!(
        "server:\n  bind: 127.0.0.1:0\n  data_dir: {data}\n  auth: keys\n{server}\
         agents_dir: {agents}\n\
         models:\n  - name: fake\n    type: openai\n    base_url: {base}\n    model_name: fake-model\n\
         \x20   default: true\n    healthcheck: false\n    retry: {{max_attempts: 1}}\n{models}\
         mcpServers:\n{servers}{access}",
        data = dir.join("data").display(),
        server = setup.server,
        agents = agents.display(),
        base = fake.openai_base_url(),
        models = setup.models,
        servers = setup.servers,
        access = setup.access,
    );
    let path = dir.join("switchboard.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

/// One model entry (under `models:`) answered by `fake` too.
fn fake_model(name: &str, fake: &FakeLlm) -> String {
    format!(
        "  - name: {name}\n    type: openai\n    base_url: {base}\n    model_name: fake-model\n\
         \x20   healthcheck: false\n    retry: {{max_attempts: 1}}\n",
        base = fake.openai_base_url(),
    )
}

/// A `mcpServers:` entry for a Streamable HTTP server at `url`.
fn http_server(name: &str, url: &str) -> String {
    format!("  {name}:\n    url: {url}\n    trusted: true\n")
}

/// The server under test, its fake LLM and its config directory.
struct Served {
    server: InProcessServer,
    fake: FakeLlm,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Serve `config` with the admin key (and `clock`, when given), then wait until the admin
    /// sees every tool of `tools` in the catalog (a run's tool set is taken when it starts).
    async fn start(
        dir: tempfile::TempDir,
        config: &Path,
        fake: FakeLlm,
        clock: Option<Arc<dyn switchboard::access::Clock>>,
        tools: &[&str],
    ) -> Served {
        let extras = ServeExtras {
            admin_key: Some(ADMIN_KEY.to_owned()),
            clock,
            ..ServeExtras::default()
        };
        let server = InProcessServer::start_with(config, extras).await;
        let served = Served {
            server,
            fake,
            _dir: dir,
        };
        served.wait_for_tools(tools).await;
        served
    }

    async fn wait_for_tools(&self, tools: &[&str]) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, body) = self
                .call(Some(ADMIN_KEY), Method::GET, "/api/tools", None)
                .await;
            if status == StatusCode::OK {
                let listed = names(&body["tools"], "name");
                if tools.iter().all(|t| listed.iter().any(|l| l == t)) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the tools {tools:?} never all appeared: {status} {body:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A new key for `user` with `role`, made by the administrator; returns its secret.
    async fn key(&self, user: &str, role: &str) -> String {
        let (status, body) = self
            .call(
                Some(ADMIN_KEY),
                Method::POST,
                "/api/keys",
                Some(json!({ "user": user, "role": role })),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "the admin could not create a key: {body:#}"
        );
        body["secret"]
            .as_str()
            .expect("the created key has a secret")
            .to_owned()
    }

    /// A request with `Authorization: Bearer key` (none when `key` is `None`).
    async fn send(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .server
            .http
            .request(method, format!("{}{path}", self.server.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request to switchboard")
    }

    /// [`Served::send`], the reply read as JSON.
    async fn call(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.call_with_headers(key, method, path, body).await;
        (status, body)
    }

    /// [`Served::call`] with the response headers too.
    async fn call_with_headers(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let response = self.send(key, method, path, body).await;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("response body");
        (status, headers, support::json_or_text(&bytes))
    }

    /// `POST /api/tools/{tool}/invoke` as `key`.
    async fn invoke(
        &self,
        key: &str,
        tool: &str,
        arguments: Value,
    ) -> (StatusCode, HeaderMap, Value) {
        self.call_with_headers(
            Some(key),
            Method::POST,
            &format!("/api/tools/{tool}/invoke"),
            Some(arguments),
        )
        .await
    }

    /// `POST /api/chat` as `key`, which must start a run; returns the run id and the stream.
    async fn start_chat(&self, key: &str, body: Value) -> (String, reqwest::Response) {
        let response = self
            .send(Some(key), Method::POST, "/api/chat", Some(body.clone()))
            .await;
        let status = response.status();
        if status != StatusCode::OK {
            let text = response.text().await.unwrap_or_default();
            panic!("POST /api/chat {body} should start a run, got {status}: {text}");
        }
        let run_id = response.headers()["x-switchboard-run-id"]
            .to_str()
            .expect("run id header")
            .to_owned();
        (run_id, response)
    }

    /// Read a chat stream to its end, then the finished run as its starter (`key`) sees it.
    async fn finish_chat(&self, key: &str, run_id: &str, stream: reqwest::Response) -> Value {
        let text = tokio::time::timeout(PATIENCE, stream.text())
            .await
            .expect("the chat stream ends")
            .expect("reading the chat stream");
        assert!(text.contains("run_finished"), "no run_finished in: {text}");
        self.finished_run(key, run_id).await
    }

    /// [`Served::start_chat`] then [`Served::finish_chat`].
    async fn chat(&self, key: &str, body: Value) -> Value {
        let (run_id, stream) = self.start_chat(key, body).await;
        self.finish_chat(key, &run_id, stream).await
    }

    /// Poll `GET /api/runs/{id}` until the run and all its steps are over.
    async fn finished_run(&self, key: &str, run_id: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, run) = self
                .call(Some(key), Method::GET, &format!("/api/runs/{run_id}"), None)
                .await;
            if status == StatusCode::OK
                && run["status"] != "running"
                && run["steps"]
                    .as_array()
                    .is_some_and(|s| s.iter().all(|s| s["finished_at"].is_i64()))
            {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} never finished: {status} {run:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The chat requests the fake LLM received after the first `skip`.
    fn model_requests_since(&self, skip: usize) -> Vec<Recorded> {
        self.fake
            .requests()
            .into_iter()
            .skip(skip)
            .filter(|r| r.path == "/v1/chat/completions")
            .collect()
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

/// The `field` of every object in the array `list`, sorted.
fn names(list: &Value, field: &str) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("expected a list, got {list:#}"))
        .iter()
        .map(|item| {
            item[field]
                .as_str()
                .unwrap_or_else(|| panic!("no `{field}` in {item:#}"))
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

/// The names of the tools a model request offered (`tools[].function.name`), sorted.
fn offered_tools(request: &Recorded) -> Vec<String> {
    let mut names: Vec<String> = request.body["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The content of the tool message answering `call_id` in a model request.
#[track_caller]
fn tool_message(request: &Recorded, call_id: &str) -> String {
    request.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == call_id)
        .and_then(|m| m["content"].as_str())
        .unwrap_or_else(|| {
            panic!(
                "no tool message for `{call_id}` in the model request: {:#}",
                request.body
            )
        })
        .to_owned()
}

/// `/api`'s error shape (`{"error": {"code", "message", "request_id", …}}`) with `expected`
/// status; returns the error object.
#[track_caller]
fn api_error(status: StatusCode, body: &Value, expected: StatusCode) -> Value {
    assert_eq!(status, expected, "expected {expected}, got: {body:#}");
    let error = &body["error"];
    assert!(
        error["code"].is_string() && error["request_id"].is_string(),
        "not the /api error shape: {body:#}"
    );
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an error without a message: {body:#}"
    );
    error.clone()
}

/// OpenAI's error shape (exactly `message`, `type`, `param`, `code`) with `expected` status;
/// returns the error object.
#[track_caller]
fn openai_error(status: StatusCode, body: &Value, expected: StatusCode) -> Value {
    assert_eq!(status, expected, "expected {expected}, got: {body:#}");
    let error = &body["error"];
    let mut keys: Vec<&str> = error
        .as_object()
        .unwrap_or_else(|| panic!("no error object: {body:#}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["code", "message", "param", "type"],
        "not OpenAI's error shape: {body:#}"
    );
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an error without a message: {body:#}"
    );
    error.clone()
}

/// `Retry-After` as whole seconds; panics when it is missing or not a number.
#[track_caller]
fn retry_after(headers: &HeaderMap) -> u64 {
    let value = headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("a 429 without Retry-After: {headers:?}"));
    value
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After is not a number of seconds: {value:?}"))
}
