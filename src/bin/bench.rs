//! `bench`: what Switchboard adds to a tool call. One trivial tool (`testkit__echo`, the bundled
//! testkit server over stdio) is called (a) directly with an rmcp client over stdio and (b)
//! through `POST /api/tools/testkit__echo/invoke` on a Switchboard served in-process, at each
//! concurrency level; prints p50/p99 latency and calls/s per path, the ratios, and PASS/FAIL
//! against the targets (added p50 ≤ 100 µs at concurrency 1, throughput at 64 ≥ 0.5× direct).
//!
//! `cargo build --release --bins && target/release/bench [--calls N] [--duration-secs S]`;
//! see `docs/benchmarks.md`.

#[path = "bench/measure.rs"]
mod measure;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use measure::{Budget, Sample};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::service::{Peer, RoleClient};
use rmcp::transport::TokioChildProcess;
use serde_json::json;
use switchboard::app::{self, Environment, Overrides};
use tokio_util::sync::CancellationToken;

/// The tool as Switchboard exposes it, and as the testkit server names it.
const EXPOSED_TOOL: &str = "testkit__echo";
const SERVER_TOOL: &str = "echo";
/// Targets from the issue.
const MAX_ADDED_P50: Duration = Duration::from_micros(100);
const MIN_THROUGHPUT_RATIO: f64 = 0.5;

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
    /// The switchboard binary that runs the testkit server (default: next to this binary).
    #[arg(long)]
    switchboard: Option<PathBuf>,
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

    let direct = DirectClient::start(&bin).await?;
    let data_dir = std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()));
    let via = ViaSwitchboard::start(&bin, &data_dir, max_concurrency).await?;
    eprintln!(
        "bench: {} (direct and via http://{}), warming up…",
        bin.display(),
        via.addr
    );

    let warm = Budget::Calls(args.warmup.max(1));
    measure::run(direct.caller(), 16, warm)
        .await
        .context("direct warm-up")?;
    measure::run(via.caller(), 16, warm)
        .await
        .context("switchboard warm-up")?;

    let levels = args.concurrency.clone();
    let mut direct_samples = vec![Vec::new(); levels.len()];
    let mut via_samples = vec![Vec::new(); levels.len()];
    for rep in 1..=args.reps {
        for (i, &level) in levels.iter().enumerate() {
            // Interleaved, so slow drift (thermal, other load) hits both paths alike.
            let d = measure::run(direct.caller(), level, budget)
                .await
                .context("direct")?;
            let v = measure::run(via.caller(), level, budget)
                .await
                .context("switchboard")?;
            eprintln!(
                "bench: rep {rep}/{} concurrency {level}: direct p50 {} µs {:.0}/s, switchboard p50 {} µs {:.0}/s",
                args.reps,
                micros(d.p50),
                d.calls_per_sec,
                micros(v.p50),
                v.calls_per_sec
            );
            direct_samples[i].push(d);
            via_samples[i].push(v);
        }
    }

    let rows: Vec<(usize, Sample, Sample)> = levels
        .iter()
        .zip(direct_samples.iter().zip(&via_samples))
        .map(|(&level, (d, v))| (level, measure::median(d), measure::median(v)))
        .collect();
    print_report(&args, budget, &rows);

    via.stop().await;
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

    fn caller(
        &self,
    ) -> impl Fn() -> futures::future::BoxFuture<'static, anyhow::Result<()>>
    + Clone
    + Send
    + Sync
    + 'static {
        let peer: Peer<RoleClient> = self.service.peer().clone();
        let arguments: JsonObject = json!({"message": "hi"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        move || {
            let peer = peer.clone();
            let params = CallToolRequestParams::new(SERVER_TOOL).with_arguments(arguments.clone());
            Box::pin(async move {
                let result = peer.call_tool(params).await?;
                anyhow::ensure!(result.is_error != Some(true), "echo returned isError");
                Ok(())
            })
        }
    }

    async fn stop(self) {
        let _ = self.service.cancel().await;
    }
}

/// (b) The real server (`app::serve_on`) on 127.0.0.1:0 with one stdio server, the testkit,
/// and a pooled keep-alive HTTP client.
struct ViaSwitchboard {
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl ViaSwitchboard {
    async fn start(bin: &Path, data_dir: &Path, max_concurrency: usize) -> anyhow::Result<Self> {
        let source = data_dir.join("bench.yaml");
        // JSON strings are valid YAML double-quoted scalars, so any path survives quoting.
        let yaml = format!(
            "server:\n  bind: 127.0.0.1:0\n  data_dir: {dir}\nmcpServers:\n  testkit:\n    command: {bin}\n    args: [\"mcp-server\", \"testkit\"]\n    max_concurrency: {max_concurrency}\n",
            dir = json!(data_dir.display().to_string()),
            bin = json!(bin.display().to_string()),
        );
        let env = Environment::capture(std::env::vars());
        let config = switchboard::config::load_str(&yaml, &source, &|key| env.get(key))
            .map_err(|errors| anyhow::anyhow!("bench config: {errors}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app::serve_on(
            listener,
            config,
            env,
            Overrides::default(),
            shutdown.clone().cancelled_owned(),
        ));
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .pool_idle_timeout(None)
            .build()
            .context("building the HTTP client")?;
        let via = Self {
            addr,
            http,
            shutdown,
            server,
        };
        via.wait_for_tool().await?;
        Ok(via)
    }

    /// Until the catalog lists the tool (the testkit connected and listed its tools).
    async fn wait_for_tool(&self) -> anyhow::Result<()> {
        let url = format!("http://{}/api/tools", self.addr);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.http.get(&url).send().await
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

    fn caller(
        &self,
    ) -> impl Fn() -> futures::future::BoxFuture<'static, anyhow::Result<()>>
    + Clone
    + Send
    + Sync
    + 'static {
        let http = self.http.clone();
        let url = format!("http://{}/api/tools/{EXPOSED_TOOL}/invoke", self.addr);
        let body = bytes::Bytes::from_static(br#"{"message":"hi"}"#);
        move || {
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
        }
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

fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn print_report(args: &Args, budget: Budget, rows: &[(usize, Sample, Sample)]) {
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
        "| concurrency | direct p50 µs | direct p99 µs | direct calls/s | switchboard p50 µs | switchboard p99 µs | switchboard calls/s | added p50 µs | p50 ratio | throughput ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (level, d, v) in rows {
        println!(
            "| {level} | {} | {} | {:.0} | {} | {} | {:.0} | {:.1} | {:.2}× | {:.2}× |",
            micros(d.p50),
            micros(d.p99),
            d.calls_per_sec,
            micros(v.p50),
            micros(v.p99),
            v.calls_per_sec,
            (v.p50.as_secs_f64() - d.p50.as_secs_f64()) * 1e6,
            v.p50.as_secs_f64() / d.p50.as_secs_f64(),
            v.calls_per_sec / d.calls_per_sec,
        );
    }
    println!();
    let at = |level: usize| rows.iter().find(|(l, _, _)| *l == level);
    match at(1) {
        Some((_, d, v)) => {
            let added = v.p50.saturating_sub(d.p50);
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
            if v.p50 > Duration::from_millis(20) {
                println!(
                    "      switchboard p50 is {} µs: ~40 ms would mean Nagle (TCP_NODELAY off)",
                    micros(v.p50)
                );
            }
        }
        None => println!("n/a: added p50 latency needs concurrency 1 in --concurrency"),
    }
    match at(64) {
        Some((_, d, v)) => {
            let ratio = v.calls_per_sec / d.calls_per_sec;
            let verdict = if ratio >= MIN_THROUGHPUT_RATIO {
                "PASS"
            } else {
                "FAIL"
            };
            println!(
                "{verdict}: throughput at concurrency 64 = {ratio:.2}× direct ({:.0} vs {:.0} calls/s; target ≥ {MIN_THROUGHPUT_RATIO}×)",
                v.calls_per_sec, d.calls_per_sec
            );
        }
        None => println!("n/a: the throughput ratio needs concurrency 64 in --concurrency"),
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
