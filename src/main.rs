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
    /// Run one chat turn in this process: steps are printed as they happen, the answer streams.
    Chat(ChatArgs),
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
    /// Serve the web UI from this directory instead of the copy embedded at build time, so edits
    /// to `web/` show on reload without rebuilding (development only).
    #[arg(long, env = "SWITCHBOARD_WEB_DIR")]
    web_dir: Option<PathBuf>,
    /// Directory for state (beats `server.data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ChatArgs {
    /// What to ask.
    message: String,
    /// Run as this agent (a file in the agents directory).
    #[arg(long, conflicts_with = "model")]
    agent: Option<String>,
    /// Use this model (default: the agent's model, else the default model).
    #[arg(long)]
    model: Option<String>,
    /// How long to wait for MCP servers to connect before the run starts.
    #[arg(long, default_value_t = 30_000)]
    wait_ms: u64,
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
        Command::Serve(args) => {
            if let Some(dir) = args.web_dir {
                tracing::warn!(dir = %dir.display(), "serving the web UI from disk, not the embedded copy");
                switchboard::web::serve_from_disk(dir);
            }
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
        Command::Chat(args) => chat::run(&config, &env, args).await,
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

/// `switchboard chat`: one run in this process, with the same hub, models and store as `serve`.
mod chat {
    use std::collections::HashMap;
    use std::io::Write;
    use std::process::ExitCode;
    use std::time::Duration;

    use switchboard::app::{self, Environment};
    use switchboard::config::Config;
    use switchboard::domain::{RunEvent, RunStatus, StepIndex, StepKind, UnixMillis};
    use switchboard::llm::ModelRegistry;
    use switchboard::runs::{ChatInput, RunService, StartedRun};
    use tokio::sync::broadcast::error::RecvError;

    use super::ChatArgs;

    /// Exit code 0 when the run succeeds, 1 otherwise. Ctrl-C cancels the run.
    pub(super) async fn run(
        config: &Config,
        env: &Environment,
        args: ChatArgs,
    ) -> anyhow::Result<ExitCode> {
        let hub = app::start_hub(config, env)?;
        let models = ModelRegistry::default();
        models.apply(&config.models, &reqwest::Client::new());
        let runs = app::start_runs(config, &hub, &models).await?;
        hub.mcp()
            .wait_settled(Duration::from_millis(args.wait_ms))
            .await;
        let input = ChatInput {
            model: args.model,
            agent: args.agent,
            message: args.message,
            ..ChatInput::default()
        };
        let succeeded = match runs.start(input).await {
            Ok(started) => follow(&runs, started).await,
            Err(err) => {
                eprintln!("error: {err}");
                false
            }
        };
        app::stop_runs(&runs).await;
        models.shutdown();
        hub.mcp().shutdown().await;
        runs.store().close().await;
        Ok(if succeeded {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    /// Print the run's events until it ends; true when it succeeded.
    async fn follow(runs: &RunService, mut started: StartedRun) -> bool {
        let mut printer = Printer::default();
        let ctrl_c = super::shutdown_signal();
        tokio::pin!(ctrl_c);
        let mut cancelled = false;
        loop {
            let event = tokio::select! {
                event = started.events.recv() => event,
                () = &mut ctrl_c, if !cancelled => {
                    cancelled = true;
                    let _ = runs.cancel(started.run_id);
                    continue;
                }
            };
            match event {
                Ok(event) => {
                    if let Some(succeeded) = printer.print(&event) {
                        return succeeded;
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
        match started.done.await {
            Ok(outcome) => {
                if let Some(error) = &outcome.error {
                    eprintln!("run {}: {error}", outcome.status.as_str());
                }
                outcome.status == RunStatus::Succeeded
            }
            Err(_) => false,
        }
    }

    /// One line per step start and finish; model text as it streams.
    #[derive(Default)]
    struct Printer {
        steps: HashMap<StepIndex, (StepKind, String, UnixMillis)>,
        run_started: UnixMillis,
        /// Model text printed since the last step line.
        streamed: String,
        /// What the last model turn to finish streamed (the answer, if that turn answered).
        last_turn: String,
    }

    impl Printer {
        /// Print `event`; `Some(succeeded)` once the run has finished.
        fn print(&mut self, event: &RunEvent) -> Option<bool> {
            let mut out = std::io::stdout().lock();
            match event {
                RunEvent::RunStarted {
                    run_id,
                    model,
                    agent,
                    at,
                    ..
                } => {
                    self.run_started = *at;
                    let agent = agent
                        .as_deref()
                        .map(|a| format!(", agent {a}"))
                        .unwrap_or_default();
                    let _ = writeln!(out, "run {run_id} (model {model}{agent})");
                }
                RunEvent::StepStarted {
                    step,
                    kind,
                    name,
                    server,
                    at,
                    ..
                } => {
                    self.end_text(&mut out);
                    if *kind == StepKind::Plan {
                        self.last_turn.clear();
                    }
                    let name = match server {
                        Some(server) => format!("{name} [{server}]"),
                        None => name.clone(),
                    };
                    let _ = writeln!(out, "[{step}] {:<7} {name} started", kind.as_str());
                    self.steps.insert(*step, (*kind, name, *at));
                }
                RunEvent::TokenDelta { text, .. } => {
                    self.streamed.push_str(text);
                    let _ = write!(out, "{text}");
                }
                RunEvent::ToolProgress {
                    step,
                    progress,
                    total,
                    message,
                    ..
                } => {
                    self.end_text(&mut out);
                    let total = total.map(|t| format!("/{t}")).unwrap_or_default();
                    let message = message.as_deref().unwrap_or("");
                    let _ = writeln!(out, "[{step}] progress {progress}{total} {message}");
                }
                RunEvent::StepFinished {
                    step,
                    status,
                    error,
                    at,
                    ..
                } => {
                    if !self.streamed.is_empty() {
                        self.last_turn = self.streamed.clone();
                    }
                    self.end_text(&mut out);
                    let (kind, name, started) = self
                        .steps
                        .get(step)
                        .map_or(("step", "?", *at), |(k, n, s)| (k.as_str(), n.as_str(), *s));
                    let error = error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "[{step}] {kind:<7} {name} {} in {} ms{error}",
                        status.as_str(),
                        at - started
                    );
                }
                RunEvent::RunFinished {
                    status,
                    answer,
                    error,
                    usage,
                    at,
                    ..
                } => {
                    self.end_text(&mut out);
                    if let Some(answer) = answer.as_deref().filter(|a| *a != self.last_turn) {
                        let _ = writeln!(out, "{answer}");
                    }
                    let _ = writeln!(
                        out,
                        "run {} in {} ms ({} input + {} output tokens)",
                        status.as_str(),
                        at - self.run_started,
                        usage.input_tokens,
                        usage.output_tokens
                    );
                    if let Some(error) = error {
                        eprintln!("error: {error}");
                    }
                    return Some(*status == RunStatus::Succeeded);
                }
            }
            let _ = out.flush();
            None
        }

        /// End a line of streamed text before the next step line.
        fn end_text(&mut self, out: &mut impl Write) {
            if !self.streamed.is_empty() && !self.streamed.ends_with('\n') {
                let _ = writeln!(out);
            }
            self.streamed.clear();
        }
    }
}
