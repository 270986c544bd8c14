//! Outbound HTTP (`server.outbound`, redirects): what Switchboard sends to remote MCP servers
//! and model providers, checked against real local servers. Two servers on different ports are
//! different origins; `localhost` resolves to loopback through the system resolver, so a policy
//! that refuses loopback shows the check made when a name is resolved, without real DNS.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use switchboard_fake_llm::{FakeLlm, Reply};
use tokio_util::sync::CancellationToken;

use crate::support::{self, InProcessServer, TestHub, eventually};

/// A header value the tests configure and look for where it must not arrive.
const SECRET_HEADER: &str = "hdr-7c1e5b2d-never-elsewhere";

/// One request a [`Recorder`] received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// An HTTP server that records every request and answers 200 `{}`; stops when dropped.
struct Recorder {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
}

impl Recorder {
    async fn start() -> Recorder {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push(Seen {
                        method,
                        path: uri.path().to_owned(),
                        headers,
                        body,
                    });
                    axum::Json(json!({}))
                }
            },
        );
        let stop = CancellationToken::new();
        let base = support::serve_local(app, &stop).await;
        Recorder { base, seen, stop }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// An HTTP server that answers every request with `307 Temporary Redirect` to `target` + the
/// request's path (a 307 keeps the method, the body and, within reqwest, custom headers).
struct Redirector {
    base: String,
    stop: CancellationToken,
}

impl Redirector {
    async fn start(target: &str) -> Redirector {
        let target = target.to_owned();
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let location = format!("{target}{}", uri.path());
            async move {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, location)],
                )
                    .into_response()
            }
        });
        let stop = CancellationToken::new();
        let base = support::serve_local(app, &stop).await;
        Redirector { base, stop }
    }
}

impl Drop for Redirector {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Wait for the first connection failure of `server` and return it.
async fn first_failure(hub: &TestHub, server: &str) -> String {
    eventually(
        Duration::from_secs(20),
        "the server's first connection error",
        || hub.status(server).last_error.is_some(),
    )
    .await;
    hub.status(server).last_error.unwrap_or_default()
}

/// `seen` is empty; otherwise says what arrived, and whether the secret header was in it.
fn assert_nothing_arrived(seen: &[Seen], what: &str) {
    let leaked = seen.iter().any(|s| {
        s.headers
            .values()
            .any(|v| v.to_str().is_ok_and(|v| v.contains(SECRET_HEADER)))
    });
    assert!(
        seen.is_empty(),
        "{what}: the other origin received {} request(s) (secret header leaked: {leaked}): {:?}",
        seen.len(),
        seen.iter()
            .map(|s| format!("{} {} ({} body bytes)", s.method, s.path, s.body.len()))
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// Redirects

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamable_http_server_cannot_redirect_our_requests_to_another_origin() {
    let elsewhere = Recorder::start().await;
    let redirector = Redirector::start(&elsewhere.base).await;
    let yaml = format!(
        "mcpServers:\n  remote:\n    url: {}/mcp\n    headers: {{X-Api-Key: {SECRET_HEADER}}}\n    init_timeout_ms: 10000\n",
        redirector.base
    );
    let hub = TestHub::start(&yaml, Duration::from_secs(15)).await;
    let error = first_failure(&hub, "remote").await;
    assert_nothing_arrived(&elsewhere.seen(), "streamable http");
    assert!(
        error.contains("redirect") && error.contains(&elsewhere.base),
        "the failure should name the refused redirect and its target origin: {error}"
    );
    assert!(!error.contains(SECRET_HEADER), "{error}");
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_sse_server_cannot_redirect_our_requests_to_another_origin() {
    let elsewhere = Recorder::start().await;
    let redirector = Redirector::start(&elsewhere.base).await;
    let yaml = format!(
        "mcpServers:\n  legacy:\n    url: {}/sse\n    headers: {{X-Api-Key: {SECRET_HEADER}}}\n    init_timeout_ms: 10000\n",
        redirector.base
    );
    let hub = TestHub::start(&yaml, Duration::from_secs(15)).await;
    let error = first_failure(&hub, "legacy").await;
    assert_nothing_arrived(&elsewhere.seen(), "legacy sse");
    assert!(
        error.contains("redirect") && error.contains(&elsewhere.base),
        "the failure should name the refused redirect and its target origin: {error}"
    );
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_within_the_same_origin_is_followed() {
    use rmcp::transport::StreamableHttpService;
    use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

    // One origin: `/old/mcp` answers 308 to `/mcp`, where an MCP server listens.
    let stop = CancellationToken::new();
    let handler = support::RoutedTools {
        router: rmcp::handler::server::router::tool::ToolRouter::new(),
    };
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token()),
    );
    let app = axum::Router::new()
        .route(
            "/old/mcp",
            axum::routing::any(|| async {
                (
                    StatusCode::PERMANENT_REDIRECT,
                    [(axum::http::header::LOCATION, "/mcp")],
                )
            }),
        )
        .nest_service("/mcp", service);
    let base = support::serve_local(app, &stop).await;
    let yaml = format!("mcpServers:\n  moved:\n    url: {base}/old/mcp\n");
    let hub = TestHub::start(&yaml, Duration::from_secs(15)).await;
    let status = hub.status("moved");
    assert_eq!(
        status.status,
        switchboard::mcp::ConnectionState::Ready,
        "{:?}",
        status.last_error
    );
    hub.hub.mcp().shutdown().await;
    stop.cancel();
}

/// The demo-style config of the provider tests: one OpenAI-compatible model at `base_url` with
/// a secret header, probed at start-up, plus `server_extra` under `server:`.
fn provider_config(
    dir: &std::path::Path,
    base_url: &str,
    server_extra: &str,
) -> std::path::PathBuf {
    let yaml = format!(
        "server:\n  bind: 127.0.0.1:0\n  data_dir: {data}\n{server_extra}\
         models:\n  - name: remote\n    type: openai\n    base_url: {base_url}\n    model_name: m\n\
         \x20   api_key: sk-test-0000\n    default: true\n    retry: {{max_attempts: 1}}\n\
         \x20   headers: {{X-Api-Key: {SECRET_HEADER}}}\n\
         \x20   healthcheck: {{interval_ms: 600000, timeout_ms: 5000}}\n",
        data = dir.join("data").display(),
    );
    let path = dir.join("switchboard.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

/// The `remote` model's health once its first probe has finished.
async fn probed_health(served: &InProcessServer) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = served
            .request(reqwest::Method::GET, "/api/models", None)
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body:#}");
        let health = body["models"]
            .as_array()
            .and_then(|models| models.iter().find(|m| m["name"] == "remote"))
            .map(|m| m["health"].clone())
            .unwrap_or_else(|| panic!("no model `remote` in {body:#}"));
        if health["status"] != "unknown" {
            return health;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no health probe finished within 20 s: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A non-streamed `/v1/chat/completions` to `remote`: (status, body).
async fn chat(served: &InProcessServer) -> (reqwest::StatusCode, Value) {
    served
        .request(
            reqwest::Method::POST,
            "/v1/chat/completions",
            Some(json!({ "model": "remote", "messages": [{ "role": "user", "content": "hi" }] })),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_provider_cannot_redirect_our_requests_to_another_origin() {
    let elsewhere = Recorder::start().await;
    let redirector = Redirector::start(&elsewhere.base).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = provider_config(dir.path(), &format!("{}/v1", redirector.base), "");
    let served = InProcessServer::start(&config).await;
    let health = probed_health(&served).await;
    let (status, body) = chat(&served).await;
    assert_nothing_arrived(&elsewhere.seen(), "model provider");
    let error = health["error"].as_str().unwrap_or_default();
    assert!(
        health["status"] != "ok" && error.contains("redirect") && error.contains(&elsewhere.base),
        "the probe should fail naming the refused redirect: {health:#}"
    );
    assert!(!status.is_success(), "{body:#}");
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The address policy: literal addresses in the config

async fn check_config(text: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("switchboard.yaml");
    std::fs::write(&path, text).expect("write");
    let output = tokio::process::Command::new(support::switchboard_bin())
        .args(["check", "--config"])
        .arg(&path)
        .env_remove("SWITCHBOARD_CONFIG")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("switchboard check finishes within 60 s")
        .expect("run switchboard check");
    (
        output.status.success(),
        path.display().to_string(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn check_reports_urls_whose_literal_address_the_policy_refuses() {
    // Each of these is 169.254.169.254 (or a metadata name); the url crate normalizes the
    // encodings, and the policy classifies what it gives.
    let refused = [
        "http://169.254.169.254/mcp",
        "http://2852039166/mcp",
        "http://0xA9FEA9FE/mcp",
        "http://0251.0376.0251.0376/mcp",
        "http://169.254.43518/mcp",
        "http://[::ffff:169.254.169.254]/mcp",
        "http://[::ffff:a9fe:a9fe]/mcp",
        "http://[fe80::1]/mcp",
        "http://metadata.google.internal/computeMetadata/v1/",
    ];
    let mut text = String::from("mcpServers:\n");
    for (i, url) in refused.iter().enumerate() {
        text.push_str(&format!("  s{i}:\n    url: '{url}'\n"));
    }
    text.push_str(
        "  fine:\n    url: http://10.1.2.3:8080/mcp\n  local:\n    url: http://127.0.0.1:9/mcp\n\
         models:\n  - name: meta\n    type: openai\n    base_url: http://169.254.169.254/v1\n    model_name: m\n",
    );
    let (ok, path, stderr) = check_config(&text).await;
    assert!(!ok, "check accepted refused addresses:\n{stderr}");
    for (i, url) in refused.iter().enumerate() {
        let line = text.lines().position(|l| l.contains(url)).expect("line") + 1;
        let location = format!("{path}:{line}:");
        let key = format!("mcpServers.s{i}.url");
        assert!(
            stderr.lines().any(|l| l.starts_with(&location)
                && l.contains(&key)
                && l.contains("server.outbound")),
            "no `{location} {key}: … server.outbound …` for {url} in:\n{stderr}"
        );
    }
    let line = text
        .lines()
        .position(|l| l.contains("base_url"))
        .expect("line")
        + 1;
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&format!("{path}:{line}:")) && l.contains("models[0].base_url")),
        "the model's base_url is not reported:\n{stderr}"
    );
    assert!(
        !stderr.contains("fine.url") && !stderr.contains("local.url"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{} error(s)", refused.len() + 1)),
        "{stderr}"
    );

    // Private networks and loopback are configurable.
    let (ok, path, stderr) = check_config(
        "server:\n  outbound:\n    allow_private: false\n    allow_loopback: false\n    deny: [203.0.113.0/24]\n\
         mcpServers:\n  a:\n    url: http://10.1.2.3/mcp\n  b:\n    url: http://127.0.0.1:9/mcp\n  c:\n    url: http://203.0.113.7/mcp\n  d:\n    url: http://[fd12::1]/mcp\n",
    )
    .await;
    assert!(!ok, "{stderr}");
    for (line, key, rule) in [
        (8, "mcpServers.a.url", "allow_private"),
        (10, "mcpServers.b.url", "allow_loopback"),
        (12, "mcpServers.c.url", "deny"),
        (14, "mcpServers.d.url", "allow_private"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("{path}:{line}:"))
                    && l.contains(key)
                    && l.contains(rule)),
            "no `{path}:{line}: {key} … {rule}` in:\n{stderr}"
        );
    }

    // An explicit allow entry reaches a refused range; deny still wins over it.
    let (ok, _, stderr) = check_config(
        "server:\n  outbound:\n    allow: [169.254.10.0/24]\n    deny: [169.254.10.9]\n\
         mcpServers:\n  a:\n    url: http://169.254.10.1/mcp\n  b:\n    url: http://169.254.10.9/mcp\n",
    )
    .await;
    assert!(!ok, "{stderr}");
    assert!(!stderr.contains("mcpServers.a.url"), "{stderr}");
    assert!(stderr.contains("mcpServers.b.url"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// The address policy: names, checked when they are resolved

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_a_refused_address_is_refused_at_connect_time() {
    let target = Recorder::start().await;
    let port = target.base.rsplit(':').next().expect("port").to_owned();
    let yaml = format!(
        "server:\n  outbound:\n    allow_loopback: false\n\
         mcpServers:\n  local:\n    url: http://localhost:{port}/mcp\n    init_timeout_ms: 10000\n"
    );
    let hub = TestHub::start(&yaml, Duration::from_secs(15)).await;
    let error = first_failure(&hub, "local").await;
    assert_nothing_arrived(&target.seen(), "refused name");
    assert!(
        error.contains("server.outbound")
            && error.contains("loopback")
            && error.contains("localhost"),
        "the failure should say the address was refused by server.outbound and which rule: {error}"
    );
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_address_of_a_name_is_used_and_refused_ones_are_dropped() {
    // `localhost` resolves to 127.0.0.1 (allowed explicitly) and usually ::1 (still refused):
    // the connection goes to the allowed address.
    let server = support::McpHttpServer::start(support::RoutedTools {
        router: rmcp::handler::server::router::tool::ToolRouter::new(),
    })
    .await;
    let url = server.url.replace("127.0.0.1", "localhost");
    let yaml = format!(
        "server:\n  outbound:\n    allow_loopback: false\n    allow: [127.0.0.0/8]\n\
         mcpServers:\n  local:\n    url: {url}\n    init_timeout_ms: 10000\n"
    );
    let hub = TestHub::start(&yaml, Duration::from_secs(15)).await;
    let status = hub.status("local");
    assert_eq!(
        status.status,
        switchboard::mcp::ConnectionState::Ready,
        "{:?}",
        status.last_error
    );
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_whose_name_resolves_to_a_refused_address_is_unavailable_with_the_rule() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::text("must not be asked"));
    let base = fake.openai_base_url().replace("127.0.0.1", "localhost");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = provider_config(
        dir.path(),
        &base,
        "  outbound:\n    allow_loopback: false\n",
    );
    let served = InProcessServer::start(&config).await;
    let health = probed_health(&served).await;
    let (status, body) = chat(&served).await;
    assert!(fake.requests().is_empty(), "the provider was reached");
    let error = health["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("server.outbound") && error.contains("loopback"),
        "{health:#}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !status.is_success() && message.contains("server.outbound") && message.contains("loopback"),
        "{status} {body:#}"
    );
    served.stop().await;
}
