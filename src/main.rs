//! The `switchboard` binary: parse the command line, load config, start logging, hand over to
//! `app`. `anyhow` lives here and in `app` only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod conformance;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::access::Caller;
use switchboard::app::{self, Environment, Overrides, ServeOptions};
use switchboard::config::EnvSettings;
use switchboard::mcp::CallOptions;
use switchboard::web::WebAssets;
use switchboard_mcp_servers::BundledServer;

/// Where the config file is when neither `--config` nor `SWITCHBOARD_CONFIG` says.
const DEFAULT_CONFIG_FILE: &str = "config/switchboard.yaml";

/// MCP-native hub between language models and tools.
///
/// Flags beat the environment (`SWITCHBOARD_CONFIG`, `SWITCHBOARD_BIND`, `SWITCHBOARD_WEB_DIR`),
/// which beats the config file.
// The environment is read by `config::environment`, not by clap (no `env = ...` here), so it is
// read and checked the same way whether a subcommand is given or not.
#[derive(Parser)]
#[command(name = "switchboard", version)]
struct Cli {
    /// Config file (YAML) [env: SWITCHBOARD_CONFIG] [default: config/switchboard.yaml].
    #[arg(long, global = true)]
    config: Option<PathBuf>,
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
        /// An admin API key for a server with `auth: keys` (default: SWITCHBOARD_ADMIN_KEY).
        #[arg(long)]
        key: Option<String>,
    },
    /// Manage API keys in the configured database (the same as admins do over `/api/keys`).
    #[command(subcommand)]
    Keys(KeysCommand),
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
    /// Serve a running Switchboard's `/mcp` (its catalog, agents and policies, with your key)
    /// as an MCP server on stdio, for clients that launch commands (Claude Desktop).
    Gateway(GatewayArgs),
    /// Client mode for the MCP conformance suite: acts on `MCP_CONFORMANCE_SCENARIO` against URL.
    #[command(hide = true)]
    ConformanceClient {
        /// The fixture server's URL (the suite passes it last).
        url: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a key and print it once (it cannot be shown again).
    Create {
        /// Who the key belongs to: runs and conversations made with it are theirs.
        #[arg(long)]
        user: String,
        /// A role from `roles:` (or the built-in `admin` or `user`).
        #[arg(long)]
        role: String,
        /// How long the key is valid: 90s, 45m, 12h, 30d, 2w (default: until revoked).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id: refused from now on, its sessions end.
    Revoke {
        /// The key's id (the 12 hex digits after `sb_`, as `keys list` shows).
        id: String,
    },
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Address to listen on (beats `server.bind`) [env: SWITCHBOARD_BIND].
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// Serve the web UI from this directory instead of the copy embedded at build time, so edits
    /// to `web/` show on reload without rebuilding (development only) [env: SWITCHBOARD_WEB_DIR].
    #[arg(long)]
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
struct GatewayArgs {
    /// Speak MCP on stdin/stdout (the one transport of this command; say it, so a later one
    /// is not chosen by surprise).
    #[arg(long, required = true)]
    stdio: bool,
    /// The running server's base URL; `/mcp` is appended.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The API key to call it with (default: SWITCHBOARD_KEY; none for `auth: none`).
    #[arg(long)]
    key: Option<String>,
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
    // A guard between us and a stdio MCP server (`mcp::guard`): before anything else, while
    // this process has one thread.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    switchboard::mcp::guard::run_if_requested(&args);
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
    // Every variable of ours is read and checked here, once, whatever the command.
    let settings = EnvSettings::from_env(&env)?;
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    if let Command::McpServer(args) = command {
        switchboard::trace::init("warn,rmcp=error");
        return run_bundled(args, &settings).await;
    }
    if let Command::Gateway(args) = command {
        switchboard::trace::init("warn,rmcp=error");
        let key = args
            .key
            .or_else(|| settings.key.as_ref().map(|k| k.expose().to_owned()));
        let url = format!("{}/mcp", args.server.trim_end_matches('/'));
        switchboard::gateway::serve_stdio(url, key).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::ConformanceClient { url } = command {
        switchboard::trace::init("info");
        let scenario = env.get("MCP_CONFORMANCE_SCENARIO");
        let context = env.get("MCP_CONFORMANCE_CONTEXT");
        return conformance::run_client(&url, scenario.as_deref(), context.as_deref())
            .await
            .map(|()| ExitCode::SUCCESS);
    }
    switchboard::trace::init("info,rmcp=warn");
    let config_file = cli
        .config
        .or_else(|| settings.config_file.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    let overrides = match &command {
        Command::Serve(args) => Overrides {
            bind: args.bind.or(settings.bind),
            data_dir: args.data_dir.clone(),
        },
        _ => Overrides::default(),
    };
    let config = match app::load_config(&config_file, &env, &overrides) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s) in the configuration", errors.0.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    match command {
        Command::Serve(args) => {
            let web = match args.web_dir.or(settings.web_dir) {
                Some(dir) => {
                    tracing::warn!(dir = %dir.display(), "serving the web UI from disk, not the embedded copy");
                    WebAssets::Disk(dir)
                }
                None => WebAssets::Embedded,
            };
            let telemetry = settings.telemetry;
            let admin_key = settings.admin_key;
            let options = ServeOptions {
                env,
                overrides,
                web,
                telemetry,
                admin_key,
                clock: None,
                child_guard: app::own_guard(),
            };
            app::serve(config, options, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            println!(
                "{}: ok ({} mcp server(s), {} model(s))",
                config_file.display(),
                config.mcp_servers.len(),
                config.models.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Tools { json, wait_ms } => {
            let (hub, _store) =
                app::start_hub_on_store(&config, &env, app::own_guard().as_deref()).await?;
            hub.mcp().wait_settled(Duration::from_millis(wait_ms)).await;
            let report = switchboard::cli::tools_report(&hub, json);
            hub.mcp().shutdown().await;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Reload { server, key } => {
            let key = key.or_else(|| settings.admin_key.as_ref().map(|k| k.expose().to_owned()));
            reload(&server, key.as_deref()).await
        }
        Command::Keys(command) => keys(&config, command).await,
        Command::Call {
            name,
            args,
            wait_ms,
        } => call(&config, &env, &name, &args, wait_ms).await,
        Command::Chat(args) => chat::run(&config, &env, args).await,
        Command::McpServer(_) | Command::Gateway(_) | Command::ConformanceClient { .. } => {
            unreachable!("handled before config loading")
        }
    }
}

async fn run_bundled(args: McpServerArgs, settings: &EnvSettings) -> anyhow::Result<ExitCode> {
    let data_dir = settings
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("data"));
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

/// `switchboard reload`: ask a running server to re-read its config, print its answer.
async fn reload(server: &str, key: Option<&str>) -> anyhow::Result<ExitCode> {
    let url = format!("{}/api/config/reload", server.trim_end_matches('/'));
    let mut request = reqwest::Client::new().post(&url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("reaching {url}"))?;
    let ok = response.status().is_success();
    let body: serde_json::Value = response.json().await.context("reading the reply")?;
    println!(
        "{}",
        serde_json::to_string_pretty(&body).unwrap_or_default()
    );
    Ok(exit_code(ok))
}

/// `switchboard keys …`: key management on the configured database.
async fn keys(
    config: &switchboard::config::Config,
    command: KeysCommand,
) -> anyhow::Result<ExitCode> {
    let store = app::open_store(config).await?;
    let auth = app::authenticator(config, &store, None);
    let result = match command {
        KeysCommand::Create {
            user,
            role,
            expires,
        } => {
            let expires = expires
                .as_deref()
                .map(switchboard::auth::parse_duration)
                .transpose()
                .map_err(|message| anyhow::anyhow!("--expires: {message}"))?;
            let created = auth.create_key(&user, &role, expires).await?;
            store.audit(switchboard::store::AuditEntry {
                at: switchboard::domain::now_millis(),
                user: None,
                key_id: None,
                action: "key_create".to_owned(),
                target: Some(created.record.id.clone()),
                outcome: "ok".to_owned(),
                client: Some("cli".to_owned()),
                trace_id: None,
            });
            println!("{}", switchboard::cli::created_key(&created));
            Ok(())
        }
        KeysCommand::List => {
            let keys = auth.list_keys().await?;
            println!(
                "{}",
                switchboard::cli::key_table(&keys, switchboard::domain::now_millis())
            );
            Ok(())
        }
        KeysCommand::Revoke { id } => match auth.revoke_key(&id).await {
            Ok(()) => {
                store.audit(switchboard::store::AuditEntry {
                    at: switchboard::domain::now_millis(),
                    user: None,
                    key_id: None,
                    action: "key_revoke".to_owned(),
                    target: Some(id.clone()),
                    outcome: "ok".to_owned(),
                    client: Some("cli".to_owned()),
                    trace_id: None,
                });
                println!("revoked key {id}");
                Ok(())
            }
            Err(err) => Err(anyhow::Error::new(err)),
        },
    };
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

/// `switchboard call`: one tool call through `Hub::invoke`, the path every call takes.
async fn call(
    config: &switchboard::config::Config,
    env: &Environment,
    name: &str,
    args: &str,
    wait_ms: u64,
) -> anyhow::Result<ExitCode> {
    let arguments: serde_json::Value =
        serde_json::from_str(args).context("--args is not valid JSON")?;
    let (hub, _store) = app::start_hub_on_store(config, env, app::own_guard().as_deref()).await?;
    hub.mcp().wait_settled(Duration::from_millis(wait_ms)).await;
    // The command line is the machine's operator (it reads the config and the database
    // directly), so it calls as the local administrator, as `auth: none` does.
    let outcome = hub
        .invoke(&Caller::local(), name, arguments, CallOptions::default())
        .await;
    hub.mcp().shutdown().await;
    let (text, ok) = switchboard::cli::call_report(outcome);
    println!("{text}");
    Ok(exit_code(ok))
}

fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
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
    use std::io::Write;
    use std::process::ExitCode;
    use std::time::Duration;

    use switchboard::app::{self, Environment};
    use switchboard::cli::RunPrinter;
    use switchboard::config::Config;
    use switchboard::llm::ModelRegistry;
    use switchboard::runs::{ChatInput, RunEvents, RunService};

    use super::ChatArgs;

    /// Exit code 0 when the run succeeds, 1 otherwise. Ctrl-C cancels the run.
    pub(super) async fn run(
        config: &Config,
        env: &Environment,
        args: ChatArgs,
    ) -> anyhow::Result<ExitCode> {
        let (hub, store) =
            app::start_hub_on_store(config, env, app::own_guard().as_deref()).await?;
        let models = ModelRegistry::default();
        models.apply(
            &config.models,
            &app::model_http_client(&config.server.outbound)?,
        );
        let runs = app::run_service(
            config,
            &hub,
            &models,
            store,
            switchboard::telemetry::Telemetry::off(),
        );
        hub.mcp()
            .wait_settled(Duration::from_millis(args.wait_ms))
            .await;
        let input = ChatInput {
            model: args.model,
            agent: args.agent,
            message: args.message,
            ..ChatInput::default()
        };
        let caller = switchboard::access::Caller::local();
        let succeeded = match runs.start(&caller, input).await {
            Ok(started) => follow(&runs, started.events).await,
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
    async fn follow(runs: &RunService, mut events: RunEvents) -> bool {
        let mut printer = RunPrinter::default();
        let ctrl_c = super::shutdown_signal();
        tokio::pin!(ctrl_c);
        let mut cancelled = false;
        loop {
            let item = tokio::select! {
                item = events.next() => item,
                () = &mut ctrl_c, if !cancelled => {
                    cancelled = true;
                    let _ = runs.cancel(&switchboard::access::Caller::local(), events.run_id());
                    continue;
                }
            };
            let Some(item) = item else {
                // Only when the store failed while following: the run's end is unknown.
                return false;
            };
            let printed = printer.print(&item);
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(printed.stdout.as_bytes());
            let _ = out.flush();
            eprint!("{}", printed.stderr);
            if let Some(succeeded) = printed.finished {
                return succeeded;
            }
        }
    }
}
