//! The `switchboard` binary: parse the command line, load config, start logging, hand over to
//! `app`. `anyhow` lives here and in `app` only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::app::{self, Environment, Overrides};
use switchboard::mcp::CallOptions;
use switchboard_mcp_servers::BundledServer;

/// MCP-native hub between language models and tools.
#[derive(Parser)]
#[command(name = "switchboard", version)]
struct Cli {
    /// Config file (YAML).
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_CONFIG",
        default_value = "config/switchboard.yaml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Validate the config; print every error with its location; exit non-zero on errors.
    Check,
    /// Connect to every configured MCP server and print the merged catalog with each server's health.
    Tools {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// How long to wait for servers to connect.
        #[arg(long, default_value_t = 30_000)]
        wait_ms: u64,
    },
    /// Ask a running server to re-read its config (models and MCP servers), like `POST /api/config/reload`.
    Reload {
        /// The running server's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// Invoke one tool through the same path the API uses.
    Call {
        /// Exposed tool name (`server__tool`), as `switchboard tools` lists it.
        name: String,
        /// Arguments as a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        /// How long to wait for servers to connect.
        #[arg(long, default_value_t = 30_000)]
        wait_ms: u64,
    },
    /// Run one of the bundled MCP servers over stdio (or Streamable HTTP with --http).
    McpServer(McpServerArgs),
    /// Client mode for the MCP conformance suite: acts on `MCP_CONFORMANCE_SCENARIO` against URL.
    #[command(hide = true)]
    ConformanceClient {
        /// The fixture server's URL (the suite passes it last).
        url: String,
    },
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Address to listen on (beats `server.bind`).
    #[arg(long, env = "SWITCHBOARD_BIND")]
    bind: Option<SocketAddr>,
    /// Directory for state (beats `server.data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct McpServerArgs {
    /// clock | calc | notes | files | testkit
    name: String,
    /// `files`: the directory to share read-only.
    #[arg(long)]
    root: Option<PathBuf>,
    /// `notes`: the SQLite file (default: $SWITCHBOARD_DATA_DIR/notes.sqlite, else ./data/notes.sqlite).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Serve Streamable HTTP at /mcp on this address instead of stdio.
    #[arg(long)]
    http: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let env = Environment::capture(std::env::vars());
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    if let Command::McpServer(args) = command {
        switchboard::trace::init("warn,rmcp=error");
        return run_bundled(args, &env).await;
    }
    if let Command::ConformanceClient { url } = command {
        switchboard::trace::init("info");
        let scenario = env.get("MCP_CONFORMANCE_SCENARIO");
        let context = env.get("MCP_CONFORMANCE_CONTEXT");
        return switchboard::conformance::run_client(&url, scenario.as_deref(), context.as_deref())
            .await
            .map(|()| ExitCode::SUCCESS);
    }
    switchboard::trace::init("info,rmcp=warn");
    let overrides = match &command {
        Command::Serve(args) => Overrides {
            bind: args
                .bind
                .or_else(|| env.get("SWITCHBOARD_BIND").and_then(|b| b.parse().ok())),
            data_dir: args.data_dir.clone(),
        },
        _ => Overrides::default(),
    };
    let config = match app::load_config(&cli.config, &env, &overrides) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s) in the configuration", errors.0.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    match command {
        Command::Serve(_) => {
            app::serve(config, env, overrides, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            println!(
                "{}: ok ({} mcp server(s), {} model(s))",
                cli.config.display(),
                config.mcp_servers.len(),
                config.models.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Tools { json, wait_ms } => {
            let hub = app::start_hub(&config, &env)?;
            hub.mcp().wait_settled(Duration::from_millis(wait_ms)).await;
            let report = switchboard::cli::tools_report(&hub, json);
            hub.mcp().shutdown().await;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Reload { server } => {
            let url = format!("{}/api/config/reload", server.trim_end_matches('/'));
            let response = reqwest::Client::new()
                .post(&url)
                .send()
                .await
                .with_context(|| format!("reaching {url}"))?;
            let ok = response.status().is_success();
            let body: serde_json::Value = response.json().await.context("reading the reply")?;
            println!(
                "{}",
                serde_json::to_string_pretty(&body).unwrap_or_default()
            );
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Call {
            name,
            args,
            wait_ms,
        } => {
            let arguments: serde_json::Value =
                serde_json::from_str(&args).context("--args is not valid JSON")?;
            let hub = app::start_hub(&config, &env)?;
            hub.mcp().wait_settled(Duration::from_millis(wait_ms)).await;
            let outcome = hub.invoke(&name, arguments, CallOptions::default()).await;
            hub.mcp().shutdown().await;
            let (text, ok) = switchboard::cli::call_report(outcome);
            println!("{text}");
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::McpServer(_) | Command::ConformanceClient { .. } => {
            unreachable!("handled before config loading")
        }
    }
}

async fn run_bundled(args: McpServerArgs, env: &Environment) -> anyhow::Result<ExitCode> {
    let data_dir = env
        .get("SWITCHBOARD_DATA_DIR")
        .map_or_else(|| PathBuf::from("data"), PathBuf::from);
    let server = match args.name.as_str() {
        "clock" => BundledServer::Clock,
        "calc" => BundledServer::Calc,
        "testkit" => BundledServer::Testkit,
        "notes" => BundledServer::Notes {
            db_path: args.db.unwrap_or_else(|| data_dir.join("notes.sqlite")),
        },
        "files" => BundledServer::Files {
            root: args.root.unwrap_or_else(|| PathBuf::from(".")),
        },
        other => anyhow::bail!(
            "unknown bundled server `{other}`; expected one of: clock, calc, notes, files, testkit"
        ),
    };
    match args.http {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let shutdown = tokio_util::sync::CancellationToken::new();
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                trigger.cancel();
            });
            switchboard_mcp_servers::serve_http(server, listener, shutdown).await?;
        }
        None => switchboard_mcp_servers::serve_stdio(server).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
