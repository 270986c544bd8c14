//! The HTTP API over a real hub with bundled servers: in process through `tower`'s `oneshot`, and
//! over a real socket (`app::serve_on`) for config reload and shutdown. Also the `check`, `call`
//! and `tools` commands of the binary.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use switchboard::api::{self, AppState, ConfigReloader};
use switchboard::llm::ModelRegistry;
use switchboard::runs::RunService;
use switchboard::store::Store;
use tower::ServiceExt;

use crate::support::InProcessServer as Served;
use crate::support::json_or_text as parse_body;
use crate::support::{self, TestHub};

const SETTLE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// In process

/// Reload is covered over a real socket with the real file reloader; here it must not be used.
struct NoReload;

impl ConfigReloader for NoReload {
    fn reload(&self) -> BoxFuture<'_, Result<api::ReloadReport, Vec<String>>> {
        Box::pin(async { Err(vec!["reload is not wired in this test".to_owned()]) })
    }
}

/// A hub with `yaml`'s servers (all expected to connect) and the API router over it.
async fn start(yaml: &str) -> (TestHub, Router) {
    let t = TestHub::start(yaml, SETTLE).await;
    for status in t.hub.mcp().statuses() {
        assert_eq!(
            status.status,
            switchboard::mcp::ConnectionState::Ready,
            "{status:#?}"
        );
    }
    let router = router_over(&t).await;
    (t, router)
}

/// The API router over `t`'s hub, with no models, no agents and no reload (runs are stored in
/// `t`'s data dir).
async fn router_over(t: &TestHub) -> Router {
    let models = ModelRegistry::default();
    let (store, _) = Store::open(&Store::sqlite_url_for(t.dir.path()))
        .await
        .expect("open the store");
    api::router(AppState {
        hub: t.hub.clone(),
        models: models.clone(),
        reloader: Arc::new(NoReload),
        runs: RunService::new(
            t.hub.clone(),
            models,
            store.clone(),
            Default::default(),
            switchboard::telemetry::Telemetry::off(),
        ),
        auth: switchboard::auth::Authenticator::new(
            switchboard::config::AuthMode::None,
            store,
            Default::default(),
            Default::default(),
            None,
        ),
    })
}

fn calc_and_testkit() -> String {
    format!(
        "mcpServers:\n{}{}    timeout_ms: 400\n",
        support::bundled_stdio("calc", "calc", &[]),
        support::bundled_stdio("testkit", "testkit", &[]),
    )
}

/// Send one request; the body is JSON when the response says so, else a JSON string.
async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    body: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    let body = match body {
        Some((content_type, body)) => {
            request = request.header("content-type", content_type);
            Body::from(body.to_owned())
        }
        None => Body::empty(),
    };
    let response = router
        .clone()
        .oneshot(request.body(body).expect("request"))
        .await
        .expect("the router is infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("response body");
    (status, parse_body(&bytes))
}

async fn invoke(router: &Router, tool: &str, arguments: Value) -> (StatusCode, Value) {
    let uri = format!("/api/tools/{tool}/invoke");
    let body = arguments.to_string();
    send(
        router,
        Method::POST,
        &uri,
        Some(("application/json", body.as_str())),
    )
    .await
}

/// The one error shape: `{"error": {"code", "message", "request_id", "details"?}}`, nothing
/// else; a 5xx carries no internals. Returns the `error` object.
#[track_caller]
fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) -> Value {
    assert_eq!(status, expected, "{body:#}");
    let object = body.as_object().expect("error body is an object");
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        ["error"],
        "top level: {body:#}"
    );
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body:#}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body:#}"
    );
    let request_id = error["request_id"].as_str().unwrap_or_default();
    assert!(
        request_id.len() == 16 && request_id.chars().all(|c| c.is_ascii_hexdigit()),
        "request_id: {body:#}"
    );
    for key in error.as_object().expect("error object").keys() {
        assert!(
            ["code", "message", "request_id", "details"].contains(&key.as_str()),
            "unexpected key `{key}`: {body:#}"
        );
    }
    if status.is_server_error() {
        assert_no_internals(body);
    }
    error.clone()
}

/// Nothing of our implementation leaks into a 5xx: no source paths, panics, debug dumps, or
/// library error types.
#[track_caller]
fn assert_no_internals(body: &Value) {
    let text = body.to_string();
    for leak in [
        "src/",
        ".rs:",
        "panicked",
        "backtrace",
        "rmcp",
        "reqwest",
        "tokio",
        "ServiceError",
        "Some(",
        "Error {",
        "/target/",
    ] {
        assert!(!text.contains(leak), "5xx body leaks `{leak}`: {body:#}");
    }
}

#[tokio::test]
async fn tools_are_listed_with_schemas_and_origin() {
    let (_t, router) = start(&calc_and_testkit()).await;
    let (status, body) = send(&router, Method::GET, "/api/tools", None).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let tools = body["tools"].as_array().expect("tools array");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    for name in [
        "calc__evaluate",
        "calc__evaluate_many",
        "testkit__echo",
        "testkit__sleep",
        "testkit__exit",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    for tool in tools {
        let name = tool["name"].as_str().unwrap_or_default();
        let (server, own) = name.split_once("__").expect("server__tool");
        assert_eq!(tool["server"], server, "{tool:#}");
        assert_eq!(tool["tool"], own, "{tool:#}");
        assert_eq!(tool["input_schema"]["type"], "object", "{tool:#}");
        assert_eq!(tool["openai"]["function"]["name"], name, "{tool:#}");
    }
    let evaluate = tools
        .iter()
        .find(|t| t["name"] == "calc__evaluate")
        .expect("calc__evaluate");
    assert_eq!(
        evaluate["input_schema"]["properties"]["expression"]["type"], "string",
        "{evaluate:#}"
    );
    assert_eq!(evaluate["input_schema"]["required"], json!(["expression"]));
    assert!(
        evaluate["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(
        evaluate["annotations"]["readOnlyHint"], true,
        "{evaluate:#}"
    );
    assert_eq!(body["dropped"], json!([]));
}

#[tokio::test]
async fn invoke_returns_the_tool_result() {
    let (_t, router) = start(&calc_and_testkit()).await;
    let (status, body) = invoke(&router, "calc__evaluate", json!({"expression": "2*(3+4)"})).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["tool"], "calc__evaluate");
    assert_eq!(body["server"], "calc");
    assert_eq!(body["truncated"], Value::Null);
    assert!(body["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert_eq!(
        body["result"]["content"],
        json!([{"type": "text", "text": "14"}])
    );
    assert_ne!(body["result"]["isError"], true, "{body:#}");

    // A tool's own failure is a result for the model, not an HTTP error.
    let (status, body) = invoke(&router, "calc__evaluate", json!({"expression": "1/0"})).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["result"]["isError"], true, "{body:#}");
}

#[tokio::test]
async fn bad_requests_use_the_error_shape() {
    let (_t, router) = start(&calc_and_testkit()).await;

    let (status, body) = invoke(&router, "calc__nope", json!({})).await;
    let error = assert_error(status, &body, StatusCode::NOT_FOUND, "tool_not_found");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("calc__nope")
    );

    // Wrong type and a missing required property: each error has a JSON pointer.
    let (status, body) = invoke(&router, "calc__evaluate", json!({"expression": 5})).await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_arguments",
    );
    assert_eq!(error["details"][0]["path"], "/expression", "{body:#}");
    assert!(
        error["details"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    let (status, body) = invoke(&router, "calc__evaluate", json!({})).await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_arguments",
    );
    let details = error["details"].as_array().expect("details");
    assert!(!details.is_empty(), "{body:#}");
    assert!(details.iter().all(|d| d["path"].is_string()), "{body:#}");
    assert!(
        details[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expression"),
        "{body:#}"
    );

    let uri = "/api/tools/calc__evaluate/invoke";
    for bad in ["{not json", "", "[1, 2]", "\"2*3\"", "null"] {
        let (status, body) =
            send(&router, Method::POST, uri, Some(("application/json", bad))).await;
        let error = assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("request body"),
            "{bad}: {body:#}"
        );
    }
    // Without a JSON content type axum answers 415, still in our shape.
    let (status, body) = send(
        &router,
        Method::POST,
        uri,
        Some(("text/plain", "{\"expression\": \"1\"}")),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "invalid_body",
    );

    let (status, body) = send(&router, Method::GET, "/api/nothing/here", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = send(&router, Method::POST, "/api/tools", None).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    let response = router
        .clone()
        .oneshot(
            Request::builder()
                .method(Method::GET)
                .uri("/api/config/reload")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("the router is infallible");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");

    let (status, body) = send(&router, Method::GET, "/healthz", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!("ok")));
}

#[tokio::test]
async fn a_slow_tool_times_out_with_504() {
    let (t, router) = start(&calc_and_testkit()).await;
    let started = Instant::now();
    let (status, body) = invoke(&router, "testkit__sleep", json!({"ms": 20_000})).await;
    let elapsed = started.elapsed();
    let error = assert_error(status, &body, StatusCode::GATEWAY_TIMEOUT, "tool_timeout");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("400 ms"), "{message}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    // The cancellation reached the server, and the server is still in service.
    support::eventually(
        Duration::from_secs(5),
        "testkit logs the cancellation",
        || {
            t.status("testkit")
                .stderr_tail
                .iter()
                .any(|l| l.starts_with("cancelled"))
        },
    )
    .await;
    let (status, body) = invoke(&router, "testkit__echo", json!({"message": "hi"})).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
}

/// A testkit that serves once; every restart exits during start-up (exit code 3), so after it
/// crashes the server stays down (until its circuit opens, seconds later).
fn serves_once(name: &str, marker: &Path) -> String {
    let bin = support::switchboard_bin();
    let marker = marker.display();
    let script = format!(
        "if [ -e {marker} ]; then SWITCHBOARD_TESTKIT_MODE=exit-on-start exec {bin} mcp-server testkit; fi; touch {marker}; exec {bin} mcp-server testkit"
    );
    format!("  {name}:\n    command: sh\n    args: [\"-c\", \"{script}\"]\n")
}

#[tokio::test]
async fn a_server_that_is_down_answers_503_with_the_reason() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "mcpServers:\n{}",
        serves_once("flaky", &scratch.path().join("started"))
    );
    let (t, router) = start(&yaml).await;

    // It crashes in the middle of the call: the exit status and its stderr explain why.
    let (status, body) = invoke(&router, "flaky__exit", json!({"code": 7})).await;
    let error = assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "server_exited",
    );
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("flaky") && message.contains("code 7"),
        "{message}"
    );
    assert!(message.contains("testkit: exit 7"), "{message}");

    // Its restart failed; calls are refused at once with the reason, while its tools are still
    // listed (the circuit has not opened yet).
    support::eventually(Duration::from_secs(5), "a failed restart", || {
        t.status("flaky")
            .last_error
            .is_some_and(|e| e.contains("exit-on-start"))
    })
    .await;
    let started = Instant::now();
    let (status, body) = invoke(&router, "flaky__echo", json!({"message": "anyone?"})).await;
    let error = assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "server_unavailable",
    );
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("unavailable") && message.contains("exit-on-start"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    let (status, body) = send(&router, Method::GET, "/api/mcp/servers", None).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let flaky = &body["servers"][0];
    assert_eq!(flaky["name"], "flaky", "{body:#}");
    assert_eq!(flaky["transport"], "stdio");
    assert!(
        ["reconnecting", "failed"].contains(&flaky["status"].as_str().unwrap_or_default()),
        "{flaky:#}"
    );
    assert_eq!(
        flaky["restarts"], 0,
        "only successful reconnects count: {flaky:#}"
    );
    assert!(
        flaky["consecutive_failures"]
            .as_u64()
            .is_some_and(|n| n >= 2),
        "{flaky:#}"
    );
    assert!(
        flaky["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("exit-on-start")),
        "{flaky:#}"
    );
    let tail: Vec<&str> = flaky["stderr_tail"]
        .as_array()
        .expect("stderr_tail")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tail.contains(&"testkit: exit 7"), "{tail:?}");
    assert!(tail.contains(&"testkit: exit-on-start"), "{tail:?}");
    assert_eq!(flaky["pid"], Value::Null, "{flaky:#}");
}

#[tokio::test]
async fn server_statuses_have_every_field() {
    let yaml = format!(
        "mcpServers:\n{}  off:\n    command: /nonexistent\n    enabled: false\n",
        support::bundled_stdio("calc", "calc", &[])
    );
    let t = TestHub::start(&yaml, SETTLE).await;
    let router = router_over(&t).await;
    let (status, body) = send(&router, Method::GET, "/api/mcp/servers", None).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let servers = body["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 2, "{body:#}");

    let calc = &servers[0];
    let keys: Vec<&str> = calc
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "name",
        "transport",
        "status",
        "protocol_version",
        "tool_count",
        "restarts",
        "consecutive_failures",
        "last_error",
        "stderr_tail",
        "pid",
    ] {
        assert!(keys.contains(&key), "{key} missing: {calc:#}");
    }
    assert_eq!(calc["name"], "calc");
    assert_eq!(calc["transport"], "stdio");
    assert_eq!(calc["status"], "ready");
    assert!(
        calc["protocol_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("20")),
        "{calc:#}"
    );
    assert_eq!(calc["tool_count"], 2);
    assert_eq!(calc["restarts"], 0);
    assert_eq!(calc["last_error"], Value::Null);
    assert!(calc["stderr_tail"].is_array());
    assert!(calc["pid"].as_u64().is_some(), "{calc:#}");

    let off = &servers[1];
    assert_eq!(off["name"], "off");
    assert_eq!(off["status"], "disabled");
    assert_eq!(off["tool_count"], 0);
    assert_eq!(off["protocol_version"], Value::Null);
    assert_eq!(off["pid"], Value::Null);
}

// ---------------------------------------------------------------------------------------------
// Over a real socket: the binary's composition (file reloader, graceful shutdown)

impl Served {
    async fn servers(&self) -> Vec<Value> {
        let (status, body) = self.request(Method::GET, "/api/mcp/servers", None).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        body["servers"].as_array().cloned().unwrap_or_default()
    }

    /// Poll the status API until every server in `names` (and no other) is ready.
    async fn wait_ready(&self, names: &[&str]) -> Vec<Value> {
        let deadline = Instant::now() + SETTLE;
        loop {
            let servers = self.servers().await;
            let ready: Vec<&str> = servers
                .iter()
                .filter(|s| s["status"] == "ready")
                .filter_map(|s| s["name"].as_str())
                .collect();
            if ready == names && servers.len() == names.len() {
                return servers;
            }
            assert!(
                Instant::now() < deadline,
                "servers not ready within {SETTLE:?}: {servers:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn config_file(dir: &Path, servers: &str) -> String {
    format!(
        "server:\n  bind: 127.0.0.1:0\n  data_dir: {}\nmcpServers:\n{servers}",
        dir.join("data").display()
    )
}

#[tokio::test]
async fn reload_over_a_real_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("switchboard.yaml");
    let calc = support::bundled_stdio("calc", "calc", &[]);
    let testkit = support::bundled_stdio("testkit", "testkit", &[]);
    std::fs::write(&path, config_file(dir.path(), &calc)).expect("write config");
    let served = Served::start(&path).await;
    let before = served.wait_ready(&["calc"]).await;
    let calc_pid = before[0]["pid"].clone();

    // Add a server: it starts, the other one is left alone.
    std::fs::write(&path, config_file(dir.path(), &format!("{calc}{testkit}"))).expect("write");
    let (status, body) = served
        .request(Method::POST, "/api/config/reload", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["servers"]["started"], json!(["testkit"]), "{body:#}");
    assert_eq!(body["servers"]["unchanged"], json!(["calc"]), "{body:#}");
    assert_eq!(body["servers"]["stopped"], json!([]), "{body:#}");
    assert_eq!(body["servers"]["restarted"], json!([]), "{body:#}");
    assert_eq!(body["restart_required"], json!([]), "{body:#}");
    let after = served.wait_ready(&["calc", "testkit"]).await;
    assert_eq!(after[0]["pid"], calc_pid, "calc was restarted: {after:#?}");

    let (status, body) = served
        .request(
            Method::POST,
            "/api/tools/testkit__echo/invoke",
            Some(json!({"message": "over the wire"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["result"]["content"][0]["text"], "over the wire");

    // An invalid file changes nothing and names every error with its file and line.
    let broken =
        format!("{calc}    timeout_ms: soon\n  broken:\n    url: \"not a url\"\n{testkit}");
    let text = config_file(dir.path(), &broken);
    std::fs::write(&path, &text).expect("write");
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .expect("needle in config")
    };
    let (status, body) = served
        .request(Method::POST, "/api/config/reload", None)
        .await;
    let error = assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_config");
    let details: Vec<&str> = error["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(details.len(), 2, "{details:#?}");
    for (detail, needle, key) in [
        (details[0], "timeout_ms: soon", "mcpServers.calc.timeout_ms"),
        (details[1], "not a url", "mcpServers.broken.url"),
    ] {
        let location = format!("switchboard.yaml:{}:", line_of(needle));
        assert!(
            detail.contains(&location) && detail.contains(key),
            "{detail} lacks {location} / {key}"
        );
    }
    let unchanged = served.wait_ready(&["calc", "testkit"]).await;
    assert_eq!(unchanged[0]["pid"], calc_pid);
    assert_eq!(unchanged[1]["pid"], after[1]["pid"]);

    let (status, body) = served.request(Method::GET, "/nope", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // Graceful shutdown stops the children too.
    let pids: Vec<i32> = unchanged
        .iter()
        .filter_map(|s| s["pid"].as_i64())
        .map(|p| p as i32)
        .collect();
    assert_eq!(pids.len(), 2);
    served.stop().await;
    for pid in pids {
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        assert!(!alive, "child {pid} outlived shutdown");
    }
}

// ---------------------------------------------------------------------------------------------
// The command line

async fn run_cli(args: &[&str]) -> std::process::Output {
    let mut command = tokio::process::Command::new(support::switchboard_bin());
    command
        .args(args)
        .env_remove("SWITCHBOARD_CONFIG")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .unwrap_or_else(|_| panic!("switchboard {args:?} did not finish within 60 s"))
        .expect("run switchboard")
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn check_prints_every_error_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    let text = config_file(
        dir.path(),
        "  calc:\n    command: /bin/true\n    timeout_ms: soon\n  broken:\n    url: \"not a url\"\n  worse:\n    comand: x\n",
    );
    std::fs::write(&path, &text).expect("write");
    let config = path.to_str().expect("utf-8 path");
    let output = run_cli(&["check", "--config", config]).await;
    let stderr = text_of(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    for (needle, key) in [
        ("timeout_ms: soon", "mcpServers.calc.timeout_ms"),
        ("not a url", "mcpServers.broken.url"),
        ("comand: x", "mcpServers.worse.comand"),
    ] {
        let line = text.lines().position(|l| l.contains(needle)).expect("line") + 1;
        let location = format!("{config}:{line}:");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&location) && l.contains(key)),
            "no `{location} … {key}` in:\n{stderr}"
        );
    }
    assert!(stderr.contains("3 error(s)"), "{stderr}");

    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        config_file(dir.path(), "  calc:\n    command: /bin/true\n"),
    )
    .expect("write");
    let output = run_cli(&["check", "--config", good.to_str().expect("utf-8")]).await;
    assert!(output.status.success(), "{}", text_of(&output.stderr));
    let stdout = text_of(&output.stdout);
    assert!(stdout.contains(": ok (1 mcp server(s)"), "{stdout}");
}

#[tokio::test]
async fn call_and_tools_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("switchboard.yaml");
    let servers = support::bundled_stdio("calc", "calc", &[]);
    std::fs::write(&path, config_file(dir.path(), &servers)).expect("write");
    let config = path.to_str().expect("utf-8 path");

    let output = run_cli(&[
        "call",
        "calc__evaluate",
        "--args",
        r#"{"expression":"1+1"}"#,
        "--config",
        config,
        "--wait-ms",
        "20000",
    ])
    .await;
    let stdout = text_of(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text_of(&output.stderr)
    );
    let printed: Value = serde_json::from_str(&stdout).expect("call prints JSON");
    assert_eq!(printed["tool"], "calc__evaluate");
    assert_eq!(
        printed["result"]["content"],
        json!([{"type": "text", "text": "2"}])
    );

    let output = run_cli(&["call", "calc__evaluate", "--args", "{}", "--config", config]).await;
    let stdout = text_of(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("do not match its input schema") && stdout.contains("expression"),
        "{stdout}"
    );

    let output = run_cli(&["tools", "--config", config, "--wait-ms", "20000"]).await;
    let stdout = text_of(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text_of(&output.stderr)
    );
    let calc = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("calc "))
        .unwrap_or_else(|| panic!("no calc line in:\n{stdout}"));
    assert!(
        calc.contains("stdio") && calc.contains("ready") && calc.contains("tools=2"),
        "{calc}"
    );
    assert!(stdout.contains("TOOLS (2)"), "{stdout}");
    assert!(stdout.contains("calc__evaluate "), "{stdout}");
    assert!(stdout.contains("calc__evaluate_many"), "{stdout}");
}
