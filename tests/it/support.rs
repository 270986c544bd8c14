//! Shared launchers for the integration tests.

#![allow(dead_code, unreachable_pub)]

pub mod events;
pub mod gate;
pub mod raw;
pub mod served;
pub mod testdb;
pub mod webdriver;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use switchboard::app::Environment;
use switchboard::config::{self, Config};
use switchboard::hub::Hub;
use switchboard::mcp::ManagerSettings;

/// The `switchboard` binary Cargo built for these tests (it runs the bundled servers).
pub fn switchboard_bin() -> &'static str {
    env!("CARGO_BIN_EXE_switchboard")
}

/// `tests/node/node_modules/.bin`, where `tests/run.sh` installs the npm test peers.
pub fn node_bin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/node_modules/.bin")
}

/// The environment the tests give the config loader: ours, plus `SWITCHBOARD_BIN`.
pub fn test_env() -> HashMap<String, String> {
    let mut env: HashMap<String, String> = std::env::vars().collect();
    env.insert(
        config::SWITCHBOARD_BIN.to_owned(),
        switchboard_bin().to_owned(),
    );
    env
}

/// Parse a YAML config as if it were the file `dir/switchboard.yaml`, panicking with every error.
pub fn config_from_yaml(yaml: &str, dir: &Path) -> Config {
    let env = test_env();
    let source = dir.join("switchboard.yaml");
    std::fs::write(&source, yaml).expect("write test config");
    match config::load(&source, &|k| env.get(k).cloned()) {
        Ok(config) => config,
        Err(errors) => panic!("test config is invalid:\n{errors}"),
    }
}

/// A hub running the servers of `yaml`, with its own temporary data dir.
pub struct TestHub {
    pub hub: Hub,
    pub config: Config,
    pub dir: tempfile::TempDir,
}

impl TestHub {
    /// Start the servers of `yaml` and wait (up to `settle`) for each first connection attempt.
    pub async fn start(yaml: &str, settle: Duration) -> TestHub {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config_from_yaml(yaml, dir.path());
        let env = Environment::capture(test_env());
        let hub = Hub::new(
            ManagerSettings {
                inherited_env: env.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                child_env: vec![(
                    "SWITCHBOARD_DATA_DIR".to_owned(),
                    dir.path().display().to_string(),
                )],
                outbound: config.server.outbound.clone(),
                children: Default::default(),
            },
            config.tools.clone(),
        );
        hub.apply(&config.mcp_servers, config.tools.clone());
        hub.mcp().wait_settled(settle).await;
        TestHub { hub, config, dir }
    }

    /// Apply a new YAML config to the running hub, as a reload does.
    pub fn reload(&mut self, yaml: &str) -> switchboard::mcp::ApplySummary {
        self.config = config_from_yaml(yaml, self.dir.path());
        self.hub
            .apply(&self.config.mcp_servers, self.config.tools.clone())
    }

    /// Status of one server.
    pub fn status(&self, server: &str) -> switchboard::mcp::ServerStatus {
        self.hub
            .mcp()
            .statuses()
            .into_iter()
            .find(|s| s.name == server)
            .unwrap_or_else(|| panic!("no server `{server}`"))
    }
}

/// Wait until `check` is true, polling every 20 ms, or panic with `what` after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A stdio server entry running one bundled server from the test binary, `trusted: true` (no
/// call of it waits for an approval; the approval tests write entries of their own).
pub fn bundled_stdio(name: &str, server: &str, extra_args: &[&str]) -> String {
    let mut args = vec![format!("\"mcp-server\""), format!("\"{server}\"")];
    args.extend(extra_args.iter().map(|a| format!("\"{a}\"")));
    format!(
        "  {name}:\n    command: ${{SWITCHBOARD_BIN}}\n    args: [{}]\n    trusted: true\n",
        args.join(", ")
    )
}

/// [`test_env`] plus `extra`, without touching our own process environment (tests run in
/// parallel threads, and `std::env::set_var` would leak into every other test).
pub fn test_env_with(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = test_env();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

impl TestHub {
    /// Like [`TestHub::start`], but in an existing data dir (so state survives a hub restart)
    /// and with `extra_env` added to the environment the hub sees as its own.
    pub async fn start_in(
        dir: tempfile::TempDir,
        yaml: &str,
        settle: Duration,
        extra_env: &[(&str, &str)],
    ) -> TestHub {
        let config = config_from_yaml(yaml, dir.path());
        let env = Environment::capture(test_env_with(extra_env));
        let hub = Hub::new(
            ManagerSettings {
                inherited_env: env.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                child_env: vec![(
                    "SWITCHBOARD_DATA_DIR".to_owned(),
                    dir.path().display().to_string(),
                )],
                outbound: config.server.outbound.clone(),
                children: Default::default(),
            },
            config.tools.clone(),
        );
        hub.apply(&config.mcp_servers, config.tools.clone());
        hub.mcp().wait_settled(settle).await;
        TestHub { hub, config, dir }
    }

    /// Shut every server down and start the same YAML again in the same data dir.
    pub async fn restart(self, yaml: &str, settle: Duration) -> TestHub {
        let TestHub { hub, dir, .. } = self;
        hub.mcp().shutdown().await;
        TestHub::start_in(dir, yaml, settle, &[]).await
    }
}

/// A port on 127.0.0.1 that was free a moment ago (bind port 0, read the port, let it go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Wait until something accepts TCP connections on `127.0.0.1:port`, or panic after `limit`.
pub async fn wait_for_tcp(port: u16, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if tokio::time::Instant::now() >= deadline {
            panic!("nothing accepted connections on 127.0.0.1:{port} within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The reference server (`mcp-server-everything sse|streamableHttp`) on a free port, in its own
/// process group, which is SIGKILLed when this is dropped.
pub struct EverythingServer {
    pub port: u16,
    child: tokio::process::Child,
}

impl EverythingServer {
    /// Start it in `mode` (`sse` or `streamableHttp`) and wait until it accepts connections.
    pub async fn start(mode: &str) -> EverythingServer {
        let port = free_port();
        let child = tokio::process::Command::new(node_bin_dir().join("mcp-server-everything"))
            .arg(mode)
            .env("PORT", port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("start mcp-server-everything (run `npm ci --prefix tests/node`)");
        let server = EverythingServer { port, child };
        wait_for_tcp(port, Duration::from_secs(20)).await;
        server
    }
}

impl Drop for EverythingServer {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let group = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.child.start_kill();
    }
}

/// What [`InProcessServer::start_with`] adds to the test defaults.
#[derive(Default)]
pub struct ServeExtras {
    /// `SWITCHBOARD_ADMIN_KEY` as the binary would read it (at least 32 characters).
    pub admin_key: Option<String>,
    /// The clock limits count in; keep an `Arc<ManualClock>` to move it.
    pub clock: Option<std::sync::Arc<dyn switchboard::access::Clock>>,
    /// Extra variables of the process environment (`${VAR}` in the config).
    pub env: Vec<(String, String)>,
}

/// The real server (`app::serve_on`) serving `config_file` in-process on a port-0 listener;
/// stopped by [`InProcessServer::stop`] (graceful, checked) or by dropping it (aborted).
pub struct InProcessServer {
    pub base: String,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcessServer {
    /// Load `config_file` with the test environment and serve it.
    pub async fn start(config_file: &Path) -> InProcessServer {
        InProcessServer::start_with(config_file, ServeExtras::default()).await
    }

    /// [`InProcessServer::start`] with an administrator key, a clock the test moves, or extra
    /// environment variables.
    pub async fn start_with(config_file: &Path, extras: ServeExtras) -> InProcessServer {
        use switchboard::app::{self, Overrides};
        let mut vars = test_env();
        vars.extend(extras.env);
        let env = Environment::capture(vars);
        let config = app::load_config(config_file, &env, &Overrides::default())
            .unwrap_or_else(|errors| panic!("test config is invalid:\n{errors}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app::serve_on(
            listener,
            config,
            app::ServeOptions {
                env,
                admin_key: extras.admin_key.map(switchboard::config::Secret::new),
                clock: extras.clock,
                ..app::ServeOptions::default()
            },
            async move {
                let _ = stopped.await;
            },
        ));
        InProcessServer {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            stop: Some(stop),
            task,
        }
    }

    /// Send a request with an optional JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request to switchboard")
    }

    /// Send a request and read the reply as JSON (a JSON string when it is not JSON).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self.send(method, path, body).await;
        let status = response.status();
        let bytes = response.bytes().await.expect("response body");
        (status, json_or_text(&bytes))
    }

    /// Shut down gracefully and check that `serve_on` returned `Ok` in time.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("serve_on returns after shutdown")
            .expect("serve task");
        served.expect("serve_on");
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A reply body as JSON, or as a JSON string when it is not JSON.
pub fn json_or_text(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// An MCP server over Streamable HTTP at `url` (`http://127.0.0.1:PORT/mcp`), serving a clone of
/// `handler` per session, for tests that need a remote server of their own; stops when dropped.
pub struct McpHttpServer {
    pub url: String,
    stop: tokio_util::sync::CancellationToken,
}

impl McpHttpServer {
    pub async fn start<H>(handler: H) -> McpHttpServer
    where
        H: rmcp::ServerHandler + Clone + Send + Sync + 'static,
    {
        Self::start_answering(handler, false).await
    }

    /// The same, answering requests with plain JSON bodies instead of SSE streams when
    /// `json_response` (the two shapes a Streamable HTTP server may answer in).
    pub async fn start_answering<H>(handler: H, json_response: bool) -> McpHttpServer
    where
        H: rmcp::ServerHandler + Clone + Send + Sync + 'static,
    {
        use rmcp::transport::StreamableHttpService;
        use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
        use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

        let stop = tokio_util::sync::CancellationToken::new();
        let config = StreamableHttpServerConfig::default()
            .with_cancellation_token(stop.child_token())
            .with_json_response(json_response);
        let service = StreamableHttpService::new(
            move || Ok(handler.clone()),
            std::sync::Arc::new(LocalSessionManager::default()),
            config,
        );
        let app = axum::Router::new().nest_service("/mcp", service);
        let url = format!("{}/mcp", serve_local(app, &stop).await);
        McpHttpServer { url, stop }
    }
}

impl Drop for McpHttpServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A server handler whose tools are whatever routes a test adds to `router`.
#[derive(Clone)]
pub struct RoutedTools {
    pub router: rmcp::handler::server::router::tool::ToolRouter<RoutedTools>,
}

#[rmcp::tool_handler(router = self.router.clone())]
impl rmcp::ServerHandler for RoutedTools {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(
            rmcp::model::ServerCapabilities::builder()
                .enable_tools()
                .build(),
        )
    }
}

/// The demo config the chat and browser tests serve, written to `dir/switchboard.yaml`: the fake
/// model (default) and a hosted one, the `calc` agent, the bundled calc, clock and testkit
/// servers, plus `extra_servers` (YAML entries under `mcpServers:`).
pub fn write_demo_config(
    dir: &Path,
    fake: &switchboard_fake_llm::FakeLlm,
    extra_servers: &str,
) -> PathBuf {
    let agents = dir.join("agents");
    std::fs::create_dir_all(&agents).expect("agents dir");
    std::fs::write(
        agents.join("calc.yaml"),
        "name: calc\ndescription: Arithmetic.\nsystem_prompt: You compute.\ntools: [\"calc__*\"]\n",
    )
    .expect("agent file");
    let yaml = format!(
        "server:\n  bind: 127.0.0.1:0\n  data_dir: {data}\nagents_dir: {agents}\n\
         models:\n  - name: fake\n    type: openai\n    base_url: {base}\n    model_name: fake-model\n\
         \x20   default: true\n    healthcheck: false\n    retry: {{max_attempts: 1}}\n\
         \x20 - name: hosted\n    type: openai\n    base_url: https://api.example.com/v1\n\
         \x20   model_name: gpt-x\n    healthcheck: false\n\
         mcpServers:\n{calc}{clock}{testkit}{extra_servers}",
        data = dir.join("data").display(),
        agents = agents.display(),
        base = fake.openai_base_url(),
        calc = bundled_stdio("calc", "calc", &[]),
        clock = bundled_stdio("clock", "clock", &[]),
        testkit = bundled_stdio("testkit", "testkit", &[]),
    );
    let path = dir.join("switchboard.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

/// Serve `app` on a fresh loopback port until `stop` is cancelled; returns `http://127.0.0.1:PORT`.
pub async fn serve_local(app: axum::Router, stop: &tokio_util::sync::CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    base
}
