//! `bench`: what Switchboard adds to a tool call. One trivial tool (`testkit__echo`, the bundled
//! testkit server over stdio) is called (a) directly with an rmcp client over stdio and (b)
//! through `POST /api/tools/testkit__echo/invoke` on a Switchboard served in-process, at each
//! concurrency level; prints p50/p99 latency, calls/s and CPU per call for each path, the ratios,
//! and PASS/FAIL against the targets (added p50 ≤ 100 µs at concurrency 1, throughput at 64 ≥
//! 0.5× direct). The judged invoke is also made on a second server with `server.auth: keys`, a
//! bearer key and counted limits, against the target that auth adds ≤ 5 µs p50 (issue 11).
//! `--breakdown` adds paths that split the overhead: `Hub::invoke` in-process (no
//! HTTP), the same invoke with hyper's and with reqwest's client as the load generator, and
//! `GET /healthz` (HTTP alone). The judged HTTP load generator is a wrk-style HTTP/1.1 client
//! (`rawhttp.rs`).
//!
//! `cargo build --release --workspace --bins && target/release/bench [--calls N]
//! [--duration-secs S]`; see `docs/benchmarks.md`.

mod hyperhttp;
mod idle;
mod measure;
mod rawhttp;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::future::BoxFuture;
use measure::{Budget, Sample};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::service::{Peer, RoleClient};
use rmcp::transport::TokioChildProcess;
use serde_json::json;
use switchboard::app::{self, Environment};
use switchboard::config::Config;
use switchboard::hub::Hub;
use switchboard::mcp::CallOptions;
use tokio_util::sync::CancellationToken;

/// The tool as Switchboard exposes it, and as the testkit server names it.
const EXPOSED_TOOL: &str = "testkit__echo";
const SERVER_TOOL: &str = "echo";
/// Targets from the issue.
const MAX_ADDED_P50: Duration = Duration::from_micros(100);
const MIN_THROUGHPUT_RATIO: f64 = 0.5;
/// `--breakdown` path names the report refers to.
const HYPER_PATH: &str = "invoke with hyper's client as the load generator";
const REQWEST_PATH: &str = "invoke with reqwest as the load generator";
const HEALTHZ_PATH: &str = "GET /healthz (HTTP alone, no tool call)";
/// The judged path again, on a second server with `server.auth: keys`.
const KEYS_PATH: &str = "invoke with auth: keys (bearer key checked, limits counted)";
/// Issue 11's target: what the key check and the limit accounting may add to an invoke.
const MAX_AUTH_ADDED_P50: Duration = Duration::from_micros(5);
/// Issue 14's path: the same tool through Switchboard's own MCP server, an rmcp client over
/// Streamable HTTP (each call a run of its own, traced), and its targets against direct.
const MCP_PATH: &str = "/mcp with an rmcp client (Streamable HTTP)";
const MAX_MCP_ADDED_P50: Duration = Duration::from_micros(50);
/// The administrator key the `auth: keys` server is started with (it creates the bench's key).
const BENCH_ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef0123456789";

/// Measure a trivial tool called directly over stdio and through Switchboard's HTTP API.
#[derive(Parser, Debug)]
#[command(name = "bench")]
struct Args {
    /// Calls per measurement (one path, one concurrency level, one repetition).
    #[arg(long, default_value_t = 10_000)]
    calls: u64,
    /// Run each measurement for this many seconds instead of a number of calls.
    #[arg(long)]
    duration_secs: Option<f64>,
    /// Repetitions; every figure is the median over them.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Warm-up calls on each path before measuring.
    #[arg(long, default_value_t = 2_000)]
    warmup: u64,
    /// Concurrency levels (callers in flight).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Also measure paths that split the overhead: `Hub::invoke` in-process (no HTTP), invoke
    /// with hyper's and with reqwest's client as the load generator, and `GET /healthz`.
    #[arg(long)]
    breakdown: bool,
    /// The switchboard binary that runs the testkit server (default: next to this binary).
    #[arg(long)]
    switchboard: Option<PathBuf>,
    /// Measure only the paths whose name starts with this (`direct`, `switchboard`, `Hub`,
    /// `GET`…) and print their per-repetition lines, no report: for profiling one path.
    #[arg(long)]
    only: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    switchboard::trace::init("warn");
    // One multi-threaded runtime (a worker per core) for the clients and the in-process server.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// One way of calling the tool, with the processes whose CPU time its calls cost.
struct CallPath {
    name: &'static str,
    call: Caller,
    processes: Vec<u32>,
}

type Caller = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

impl CallPath {
    async fn measure(&self, concurrency: usize, budget: Budget) -> anyhow::Result<Sample> {
        let call = self.call.clone();
        measure::run(move || call(), concurrency, budget, &self.processes)
            .await
            .with_context(|| format!("{} at concurrency {concurrency}", self.name))
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.reps > 0, "--reps must be at least 1");
    anyhow::ensure!(
        !args.concurrency.is_empty() && args.concurrency.iter().all(|&c| c > 0),
        "--concurrency needs levels of at least 1"
    );
    let budget = match args.duration_secs {
        Some(secs) if secs > 0.0 => Budget::Time(Duration::from_secs_f64(secs)),
        Some(_) => anyhow::bail!("--duration-secs must be positive"),
        None => Budget::Calls(args.calls.max(1)),
    };
    let bin = match &args.switchboard {
        Some(path) => path.clone(),
        None => sibling_switchboard()?,
    };
    anyhow::ensure!(
        bin.is_file(),
        "no switchboard binary at {} (build it: cargo build --release --bins)",
        bin.display()
    );
    let max_concurrency = args.concurrency.iter().copied().max().unwrap_or(1).max(64);
    let data_dir = std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()));
    let env = Environment::capture(std::env::vars());
    let config = bench_config(&bin, &data_dir, max_concurrency, &env)?;
    let me = std::process::id();

    let mut children = ChildWatch::new();
    let direct = DirectClient::start(&bin).await?;
    let direct_path = CallPath {
        name: "direct",
        call: direct.caller(),
        processes: vec![me, children.new_ones()?],
    };
    let via = ViaSwitchboard::start(config.clone(), env.clone(), None).await?;
    let via_path = CallPath {
        name: "switchboard",
        call: via.caller(),
        processes: vec![me, children.new_ones()?],
    };
    let keys_config = bench_config_with_keys(&bin, &data_dir, max_concurrency, &env)?;
    let keyed = ViaSwitchboard::start(keys_config, env.clone(), Some(BENCH_ADMIN_KEY)).await?;
    let keyed_path = CallPath {
        name: KEYS_PATH,
        call: keyed.caller(),
        processes: vec![me, children.new_ones()?],
    };
    let gateway = GatewayClient::start(via.addr).await?;
    let gateway_path = CallPath {
        name: MCP_PATH,
        call: gateway.caller(),
        processes: via_path.processes.clone(),
    };
    let mut paths = vec![direct_path, via_path, keyed_path, gateway_path];
    let hub = if args.breakdown {
        let hub = app::start_hub(&config, &env)?;
        hub.mcp().wait_settled(Duration::from_secs(30)).await;
        anyhow::ensure!(
            hub.catalog().get(EXPOSED_TOOL).is_some(),
            "the in-process hub did not list {EXPOSED_TOOL}"
        );
        paths.push(CallPath {
            name: "Hub::invoke in-process (no HTTP)",
            call: hub_caller(hub.clone()),
            processes: vec![me, children.new_ones()?],
        });
        let via_child = paths[1].processes.clone();
        paths.push(CallPath {
            name: HYPER_PATH,
            call: via.hyper_caller(),
            processes: via_child.clone(),
        });
        paths.push(CallPath {
            name: REQWEST_PATH,
            call: via.reqwest_caller(),
            processes: via_child.clone(),
        });
        paths.push(CallPath {
            name: HEALTHZ_PATH,
            call: via.healthz_caller(),
            processes: via_child,
        });
        Some(hub)
    } else {
        None
    };
    eprintln!(
        "bench: {} (direct, and via http://{}), warming up…",
        bin.display(),
        via.addr
    );

    let warm = Budget::Calls(args.warmup.max(1));
    let selected = |path: &CallPath| {
        args.only
            .as_ref()
            .is_none_or(|only| path.name.starts_with(only.as_str()))
    };
    for path in paths.iter().filter(|p| selected(p)) {
        path.measure(16, warm).await.context("warm-up")?;
    }

    let levels = args.concurrency.clone();
    // samples[level][path][rep]
    let mut samples = vec![vec![Vec::new(); paths.len()]; levels.len()];
    for rep in 1..=args.reps {
        for (i, &level) in levels.iter().enumerate() {
            // Interleaved, so slow drift (other load, frequency) hits every path alike.
            let mut line = format!("bench: rep {rep}/{} concurrency {level}:", args.reps);
            for (j, path) in paths.iter().enumerate() {
                if !selected(path) {
                    continue;
                }
                let sample = path.measure(level, budget).await?;
                line.push_str(&format!(
                    " {} p50 {} µs {:.0}/s;",
                    path.name.split(' ').next().unwrap_or(path.name),
                    micros(sample.p50),
                    sample.calls_per_sec
                ));
                samples[i][j].push(sample);
            }
            eprintln!("{line}");
        }
    }

    if args.only.is_some() {
        return Ok(());
    }
    let rows: Vec<Row> = levels
        .iter()
        .zip(&samples)
        .map(|(&level, per_path)| Row {
            level,
            direct: measure::median(&per_path[0]),
            via: measure::median(&per_path[1]),
            extra: paths
                .iter()
                .zip(per_path)
                .skip(2)
                .map(|(path, samples)| (path.name, measure::median(samples)))
                .collect(),
        })
        .collect();
    print_report(&args, budget, &rows);

    drop(paths);
    if let Some(hub) = hub {
        hub.mcp().shutdown().await;
    }
    gateway.stop().await;
    via.stop().await;
    keyed.stop().await;
    direct.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}

/// `switchboard` in the directory of this executable (`target/release/` next to `bench`).
fn sibling_switchboard() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let dir = exe.parent().context("the bench binary has no directory")?;
    Ok(dir.join(format!("switchboard{}", std::env::consts::EXE_SUFFIX)))
}

/// The one-server config, through the real loader so defaults apply as in production.
fn bench_config(
    bin: &Path,
    data_dir: &Path,
    max_concurrency: usize,
    env: &Environment,
) -> anyhow::Result<Config> {
    // JSON strings are valid YAML double-quoted scalars, so any path survives quoting.
    let yaml = format!(
        "server:\n  bind: 127.0.0.1:0\n  data_dir: {dir}\nmcpServers:\n  testkit:\n    command: {bin}\n    args: [\"mcp-server\", \"testkit\"]\n    max_concurrency: {max_concurrency}\n    trusted: true\n",
        dir = json!(data_dir.display().to_string()),
        bin = json!(bin.display().to_string()),
    );
    switchboard::config::load_str(&yaml, &data_dir.join("bench.yaml"), &|key| env.get(key))
        .map_err(|errors| anyhow::anyhow!("bench config: {errors}"))
}

/// [`bench_config`] with `server.auth: keys` and a role whose limits are counted but never
/// reached, so the keyed path pays for the key check and the accounting, not for refusals.
fn bench_config_with_keys(
    bin: &Path,
    data_dir: &Path,
    max_concurrency: usize,
    env: &Environment,
) -> anyhow::Result<Config> {
    let data_dir = data_dir.join("keys");
    let yaml = format!(
        "server:\n  bind: 127.0.0.1:0\n  auth: keys\n  data_dir: {dir}\n\
         roles:\n  bench:\n    tools: [\"*\"]\n    limits:\n\
         \x20     tool_calls: {{calls: 1000000, window_ms: 60000, cooldown_ms: 1000}}\n\
         \x20     requests_per_minute: 1000000\n      concurrent_runs: 1000\n\
         mcpServers:\n  testkit:\n    command: {bin}\n    args: [\"mcp-server\", \"testkit\"]\n    max_concurrency: {max_concurrency}\n    trusted: true\n",
        dir = json!(data_dir.display().to_string()),
        bin = json!(bin.display().to_string()),
    );
    switchboard::config::load_str(&yaml, &data_dir.join("bench.yaml"), &|key| env.get(key))
        .map_err(|errors| anyhow::anyhow!("bench config (auth: keys): {errors}"))
}

/// Finds the child process each path started (each starts exactly one testkit server).
struct ChildWatch {
    seen: Vec<u32>,
}

impl ChildWatch {
    fn new() -> Self {
        Self {
            seen: children_of(std::process::id()),
        }
    }

    /// The one child started since the last call.
    fn new_ones(&mut self) -> anyhow::Result<u32> {
        let now = children_of(std::process::id());
        let fresh: Vec<u32> = now
            .iter()
            .copied()
            .filter(|p| !self.seen.contains(p))
            .collect();
        self.seen = now;
        match fresh.as_slice() {
            [pid] => Ok(*pid),
            other => anyhow::bail!("expected one new testkit process, found {other:?}"),
        }
    }
}

/// Live child processes of `parent`, from `/proc/*/stat`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = stat.get(stat.rfind(')')? + 2..)?.to_owned();
                    let mut fields = rest.split(' ');
                    let state = fields.next()?;
                    let ppid: u32 = fields.next()?.parse().ok()?;
                    Some(ppid == parent && state != "Z")
                })
                .unwrap_or(false)
        })
        .collect()
}

/// (a) An rmcp client talking to its own `switchboard mcp-server testkit` child over stdio.
struct DirectClient {
    service: rmcp::service::RunningService<RoleClient, ()>,
}

impl DirectClient {
    async fn start(bin: &Path) -> anyhow::Result<Self> {
        let mut command = tokio::process::Command::new(bin);
        command.args(["mcp-server", "testkit"]);
        let transport = TokioChildProcess::new(command).context("spawning the testkit server")?;
        let service = ().serve(transport).await.context("initialize with the testkit server")?;
        Ok(Self { service })
    }

    fn caller(&self) -> Caller {
        echo_caller(self.service.peer().clone(), SERVER_TOOL)
    }

    async fn stop(self) {
        let _ = self.service.cancel().await;
    }
}

/// Call the echo tool `tool` (named as `peer` knows it) with an rmcp client; a result with
/// `isError` fails the call, with what it said.
fn echo_caller(peer: Peer<RoleClient>, tool: &'static str) -> Caller {
    let arguments: JsonObject = json!({"message": "hi"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    Arc::new(move || {
        let peer = peer.clone();
        let params = CallToolRequestParams::new(tool).with_arguments(arguments.clone());
        Box::pin(async move {
            let result = peer.call_tool(params).await?;
            anyhow::ensure!(
                result.is_error != Some(true),
                "{tool} returned isError: {:?}",
                result.content
            );
            Ok(())
        })
    })
}

/// (c) An rmcp client of the (b) server's `/mcp`, over Streamable HTTP with a session.
struct GatewayClient {
    service: rmcp::service::RunningService<RoleClient, ()>,
}

impl GatewayClient {
    async fn start(addr: std::net::SocketAddr) -> anyhow::Result<Self> {
        let transport =
            rmcp::transport::StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
        let service = ().serve(transport).await.context("initialize with /mcp")?;
        Ok(Self { service })
    }

    fn caller(&self) -> Caller {
        echo_caller(self.service.peer().clone(), EXPOSED_TOOL)
    }

    async fn stop(self) {
        let _ = self.service.cancel().await;
    }
}

/// (b) The real server (`app::serve_on`) on 127.0.0.1:0 with one stdio server, the testkit,
/// and a pooled keep-alive HTTP client.
struct ViaSwitchboard {
    addr: std::net::SocketAddr,
    raw: rawhttp::RawClient,
    hyper: hyperhttp::HyperClient,
    http: reqwest::Client,
    /// The key every request carries (`auth: keys`), none with `auth: none`.
    bearer: Option<String>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl ViaSwitchboard {
    /// Serve `config`; with `admin_key` the server runs `auth: keys` and the bench signs its
    /// calls with a key made for it through `POST /api/keys`.
    async fn start(
        config: Config,
        env: Environment,
        admin_key: Option<&str>,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app::serve_on(
            listener,
            config,
            app::ServeOptions {
                env,
                admin_key: admin_key.map(switchboard::config::Secret::new),
                ..app::ServeOptions::default()
            },
            shutdown.clone().cancelled_owned(),
        ));
        // Plain keep-alive HTTP/1.1 to one local address: no proxy from the environment, no
        // redirect or retry layers.
        let http = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .referer(false)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .pool_idle_timeout(None)
            .build()
            .context("building the HTTP client")?;
        let mut via = Self {
            addr,
            raw: rawhttp::RawClient::new(addr),
            hyper: hyperhttp::HyperClient::new(addr),
            http,
            bearer: admin_key.map(str::to_owned),
            shutdown,
            server,
        };
        if admin_key.is_some() {
            via.bearer = Some(via.create_key().await?);
        }
        via.wait_for_tool().await?;
        Ok(via)
    }

    /// A key for user `bench` of role `bench`, made with the administrator key.
    async fn create_key(&self) -> anyhow::Result<String> {
        let url = format!("http://{}/api/keys", self.addr);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let sent = self
                .authorized(self.http.post(&url))
                .json(&json!({"user": "bench", "role": "bench"}))
                .send()
                .await;
            if let Ok(response) = sent {
                let status = response.status();
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                anyhow::ensure!(
                    status.is_success(),
                    "POST /api/keys answered {status}: {body}"
                );
                return body["secret"]
                    .as_str()
                    .map(str::to_owned)
                    .context("POST /api/keys answered without a secret");
            }
            anyhow::ensure!(
                !self.server.is_finished(),
                "the switchboard server (auth: keys) stopped during start-up"
            );
            anyhow::ensure!(
                Instant::now() < deadline,
                "the switchboard server (auth: keys) did not answer within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `request` with this server's key, if it has one.
    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.bearer {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Until the catalog lists the tool (the testkit connected and listed its tools).
    async fn wait_for_tool(&self) -> anyhow::Result<()> {
        let url = format!("http://{}/api/tools", self.addr);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.authorized(self.http.get(&url)).send().await
                && let Ok(body) = response.json::<serde_json::Value>().await
                && body["tools"]
                    .as_array()
                    .is_some_and(|tools| tools.iter().any(|t| t["name"] == EXPOSED_TOOL))
            {
                return Ok(());
            }
            anyhow::ensure!(
                !self.server.is_finished(),
                "the switchboard server stopped during start-up"
            );
            anyhow::ensure!(
                Instant::now() < deadline,
                "{EXPOSED_TOOL} did not appear in {url} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `POST /api/tools/testkit__echo/invoke` through the wrk-style client: the judged path.
    fn caller(&self) -> Caller {
        let client = self.raw.clone();
        let request = client.request_as(
            "POST",
            &format!("/api/tools/{EXPOSED_TOOL}/invoke"),
            br#"{"message":"hi"}"#,
            self.bearer.as_deref(),
        );
        Arc::new(move || {
            let (client, request) = (client.clone(), request.clone());
            Box::pin(async move { client.send(&request).await })
        })
    }

    /// The same invoke through hyper's HTTP/1.1 client connection.
    fn hyper_caller(&self) -> Caller {
        let client = self.hyper.clone();
        let path: Arc<str> = format!("/api/tools/{EXPOSED_TOOL}/invoke").into();
        let body = bytes::Bytes::from_static(br#"{"message":"hi"}"#);
        Arc::new(move || {
            let (client, path, body) = (client.clone(), path.clone(), body.clone());
            Box::pin(async move { client.send(&http::Method::POST, &path, Some(&body)).await })
        })
    }

    /// The same invoke with reqwest (pooled, keep-alive) as the load generator.
    fn reqwest_caller(&self) -> Caller {
        let http = self.http.clone();
        let url = format!("http://{}/api/tools/{EXPOSED_TOOL}/invoke", self.addr);
        let body = bytes::Bytes::from_static(br#"{"message":"hi"}"#);
        Arc::new(move || {
            let request = http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            Box::pin(async move {
                let response = request.send().await?;
                let status = response.status();
                let body = response.bytes().await?;
                anyhow::ensure!(
                    status.is_success(),
                    "invoke answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
                Ok(())
            })
        })
    }

    /// `GET /healthz`: the HTTP round trip with no tool call behind it.
    fn healthz_caller(&self) -> Caller {
        let client = self.raw.clone();
        let request = client.request("GET", "/healthz", b"");
        Arc::new(move || {
            let (client, request) = (client.clone(), request.clone());
            Box::pin(async move { client.send(&request).await })
        })
    }

    async fn stop(self) {
        self.shutdown.cancel();
        match tokio::time::timeout(Duration::from_secs(20), self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => eprintln!("bench: the server ended with an error: {err:#}"),
            Ok(Err(err)) => eprintln!("bench: the server task failed: {err}"),
            Err(_) => eprintln!("bench: the server did not stop within 20 s"),
        }
    }
}

/// (c) `Hub::invoke` in-process: lookup, validation, the MCP call and the result cap, no HTTP.
fn hub_caller(hub: Hub) -> Caller {
    Arc::new(move || {
        let hub = hub.clone();
        Box::pin(async move {
            let outcome = hub
                .invoke(
                    &switchboard::access::Caller::local(),
                    EXPOSED_TOOL,
                    json!({"message": "hi"}),
                    CallOptions::default(),
                )
                .await?;
            anyhow::ensure!(
                outcome.result.is_error != Some(true),
                "echo returned isError"
            );
            Ok(())
        })
    })
}

/// The medians at one concurrency level.
struct Row {
    level: usize,
    direct: Sample,
    via: Sample,
    /// `--breakdown` paths, by name.
    extra: Vec<(&'static str, Sample)>,
}

fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn print_report(args: &Args, budget: Budget, rows: &[Row]) {
    let per = match budget {
        Budget::Calls(n) => format!("{n} calls"),
        Budget::Time(d) => format!("{:.1} s", d.as_secs_f64()),
    };
    println!();
    println!(
        "{EXPOSED_TOOL}: {per} per measurement, median of {} repetition(s); {}",
        args.reps,
        machine()
    );
    println!();
    println!(
        "| concurrency | direct p50 µs | direct p99 µs | direct calls/s | switchboard p50 µs | switchboard p99 µs | switchboard calls/s | added p50 µs | throughput ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for Row {
        level, direct, via, ..
    } in rows
    {
        println!(
            "| {level} | {} | {} | {:.0} | {} | {} | {:.0} | {:.1} | {:.2}× |",
            micros(direct.p50),
            micros(direct.p99),
            direct.calls_per_sec,
            micros(via.p50),
            micros(via.p99),
            via.calls_per_sec,
            (via.p50.as_secs_f64() - direct.p50.as_secs_f64()) * 1e6,
            via.calls_per_sec / direct.calls_per_sec,
        );
    }
    println!();
    println!(
        "CPU time per call (user + system of this process and of the testkit child that answered):"
    );
    println!();
    println!("| concurrency | direct µs | switchboard µs | switchboard / direct |");
    println!("|---:|---:|---:|---:|");
    for Row {
        level, direct, via, ..
    } in rows
    {
        println!(
            "| {level} | {} | {} | {:.2}× |",
            micros(direct.cpu_per_call),
            micros(via.cpu_per_call),
            via.cpu_per_call.as_secs_f64() / direct.cpu_per_call.as_secs_f64().max(1e-9),
        );
    }
    if rows.iter().any(|r| !r.extra.is_empty()) {
        println!();
        println!("Other paths (ratios against direct at the same concurrency):");
        println!();
        println!(
            "| path | concurrency | p50 µs | p99 µs | calls/s | CPU µs/call | added p50 µs | throughput ratio |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for row in rows {
            for (name, sample) in &row.extra {
                // /healthz makes no tool call, so comparing it with a call means nothing.
                let versus_direct = if *name == HEALTHZ_PATH {
                    "— | —".to_owned()
                } else {
                    format!(
                        "{:.1} | {:.2}×",
                        (sample.p50.as_secs_f64() - row.direct.p50.as_secs_f64()) * 1e6,
                        sample.calls_per_sec / row.direct.calls_per_sec
                    )
                };
                println!(
                    "| {name} | {} | {} | {} | {:.0} | {} | {versus_direct} |",
                    row.level,
                    micros(sample.p50),
                    micros(sample.p99),
                    sample.calls_per_sec,
                    micros(sample.cpu_per_call),
                );
            }
        }
    }
    println!();
    match rows.iter().find(|r| r.level == 1) {
        Some(Row { direct, via, .. }) => {
            let added = via.p50.saturating_sub(direct.p50);
            let verdict = if added <= MAX_ADDED_P50 {
                "PASS"
            } else {
                "FAIL"
            };
            println!(
                "{verdict}: added p50 latency at concurrency 1 = {} µs (target ≤ {} µs)",
                micros(added),
                MAX_ADDED_P50.as_micros()
            );
            if via.p50 > Duration::from_millis(20) {
                println!(
                    "      switchboard p50 is {} µs: ~40 ms would mean Nagle (TCP_NODELAY off)",
                    micros(via.p50)
                );
            }
        }
        None => println!("n/a: added p50 latency needs concurrency 1 in --concurrency"),
    }
    match rows.iter().find(|r| r.level == 64) {
        Some(Row { direct, via, .. }) => {
            let ratio = via.calls_per_sec / direct.calls_per_sec;
            let verdict = if ratio >= MIN_THROUGHPUT_RATIO {
                "PASS"
            } else {
                "FAIL"
            };
            println!(
                "{verdict}: throughput at concurrency 64 = {ratio:.2}× direct ({:.0} vs {:.0} calls/s; target ≥ {MIN_THROUGHPUT_RATIO}×)",
                via.calls_per_sec, direct.calls_per_sec
            );
        }
        None => println!("n/a: the throughput ratio needs concurrency 64 in --concurrency"),
    }
    print_auth_verdict(rows);
    print_mcp_verdict(rows);
    // For the record: the same targets with the other load generators.
    for (client, path) in [("hyper's client", HYPER_PATH), ("reqwest", REQWEST_PATH)] {
        let with = |level: usize| {
            let row = rows.iter().find(|r| r.level == level)?;
            let (_, sample) = row.extra.iter().find(|(n, _)| *n == path)?;
            Some((row.direct, *sample))
        };
        if let (Some((d1, s1)), Some((d64, s64))) = (with(1), with(64)) {
            println!(
                "info: with {client} as the load generator: added p50 at 1 = {} µs, throughput at 64 = {:.2}× direct",
                micros(s1.p50.saturating_sub(d1.p50)),
                s64.calls_per_sec / d64.calls_per_sec
            );
        }
    }
}

/// `auth: keys` against `auth: none`, both through the judged client: the p50 the key check and
/// the limit accounting add at concurrency 1 (the target), and the throughput kept at each level.
fn print_auth_verdict(rows: &[Row]) {
    let keyed = |row: &Row| {
        row.extra
            .iter()
            .find(|(name, _)| *name == KEYS_PATH)
            .map(|(_, sample)| *sample)
    };
    for row in rows {
        if let Some(sample) = keyed(row) {
            println!(
                "info: auth: keys at concurrency {}: p50 {} µs vs {} µs with auth: none, throughput {:.3}× auth: none",
                row.level,
                micros(sample.p50),
                micros(row.via.p50),
                sample.calls_per_sec / row.via.calls_per_sec
            );
        }
    }
    match rows
        .iter()
        .find(|r| r.level == 1)
        .and_then(|row| Some((row, keyed(row)?)))
    {
        Some((row, sample)) => {
            let added = sample.p50.as_secs_f64() - row.via.p50.as_secs_f64();
            let verdict = if added <= MAX_AUTH_ADDED_P50.as_secs_f64() {
                "PASS"
            } else {
                "FAIL"
            };
            println!(
                "{verdict}: auth: keys adds {:.1} µs p50 to an invoke at concurrency 1 (target ≤ {} µs)",
                added * 1e6,
                MAX_AUTH_ADDED_P50.as_micros()
            );
        }
        None => println!("n/a: the auth: keys verdict needs concurrency 1 in --concurrency"),
    }
}

/// Issue 14's targets for a call through `/mcp`, against the direct call.
fn print_mcp_verdict(rows: &[Row]) {
    let mcp = |level: usize| {
        let row = rows.iter().find(|r| r.level == level)?;
        let (_, sample) = row.extra.iter().find(|(name, _)| *name == MCP_PATH)?;
        Some((row.direct, *sample))
    };
    match mcp(1) {
        Some((direct, sample)) => {
            let added = sample.p50.saturating_sub(direct.p50);
            let verdict = if added <= MAX_MCP_ADDED_P50 {
                "PASS"
            } else {
                "FAIL"
            };
            println!(
                "{verdict}: /mcp adds {} µs p50 at concurrency 1 (target ≤ {} µs)",
                micros(added),
                MAX_MCP_ADDED_P50.as_micros()
            );
        }
        None => println!("n/a: the /mcp latency verdict needs concurrency 1 in --concurrency"),
    }
    match mcp(64) {
        Some((direct, sample)) => {
            let ratio = sample.calls_per_sec / direct.calls_per_sec;
            let verdict = if ratio >= MIN_THROUGHPUT_RATIO {
                "PASS"
            } else {
                "FAIL"
            };
            println!(
                "{verdict}: /mcp throughput at concurrency 64 = {ratio:.2}× direct ({:.0} vs {:.0} calls/s; target ≥ {MIN_THROUGHPUT_RATIO}×)",
                sample.calls_per_sec, direct.calls_per_sec
            );
        }
        None => println!("n/a: the /mcp throughput verdict needs concurrency 64 in --concurrency"),
    }
}

/// CPU model and count, for the record.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    format!("{cpus} CPU(s), {model}, {}", std::env::consts::OS)
}
