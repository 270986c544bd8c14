//! Composition root: builds every part from a loaded `Config`, serves HTTP, applies reloads, and
//! orders shutdown (stop accepting HTTP, then stop MCP servers and their children).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::access::{AuditEvent, AuditLog, Clock, Limiter, SystemClock};
use crate::api::guard::{GuardLayer, Policy};
use crate::api::{self, AppState, ConfigReloader, ReloadReport};
use crate::auth::Authenticator;
use crate::config::model::{AuthMode, ServerSettings};
use crate::config::{self, Config};
use crate::hub::Hub;
use crate::llm::ModelRegistry;
use crate::mcp::ManagerSettings;
use crate::runs::{MessageCaps, RunService};
use crate::store::Store;
use crate::telemetry::{Telemetry, TelemetryConfig};
use crate::web::WebAssets;

/// How long open HTTP connections (event streams, say) may drain after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long cancelled runs get to record their end before the store is flushed.
const RUNS_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The process environment snapshot (it lives in `config`, which reads it); re-exported here,
/// where `main` and the tests have always found it.
pub use crate::config::Environment;

/// Values that beat the file, from the command line or the environment (`--bind` or
/// `SWITCHBOARD_BIND`, `--data-dir`); kept so reloads apply them too.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Beats `server.bind`.
    pub bind: Option<SocketAddr>,
    /// Beats `server.data_dir`.
    pub data_dir: Option<PathBuf>,
}

/// What [`serve`] needs besides the config file, all decided at start-up: nothing in the
/// server reads the environment or a global afterwards.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// The process environment: what stdio MCP servers may inherit, and `${VAR}` on reload.
    pub env: Environment,
    /// Values that beat the file, on every reload too.
    pub overrides: Overrides,
    /// Where the web UI's files come from.
    pub web: WebAssets,
    /// The OTLP exporter to start; `None` exports nothing.
    pub telemetry: Option<TelemetryConfig>,
    /// `SWITCHBOARD_ADMIN_KEY`: an administrator key with no database row.
    pub admin_key: Option<crate::config::Secret>,
    /// The time limits are counted in; `None` is the system's monotonic clock (tests pass a
    /// clock they move, to cross a cooldown without waiting for it).
    pub clock: Option<Arc<dyn Clock>>,
    /// The `switchboard` binary that runs each stdio child under its guard ([`own_guard`] in
    /// the binary); `None` runs children directly (library use, in-process tests).
    pub child_guard: Option<PathBuf>,
}

/// Audit events into the store's audit table (queued, never blocking the action).
struct StoreAudit(Store);

impl AuditLog for StoreAudit {
    fn record(&self, event: AuditEvent) {
        self.0.audit(crate::store::AuditEntry {
            at: crate::domain::now_millis(),
            user: event.user,
            key_id: event.key_id,
            action: event.action.to_owned(),
            target: event.target,
            outcome: event.outcome.to_owned(),
            client: event.client,
            trace_id: event.trace_id,
        });
    }
}

/// Refuse `auth: none` on an address anyone else can reach.
///
/// # Errors
/// `auth: none` with a non-loopback bind address, saying what to do instead.
pub fn check_auth_mode(server: &ServerSettings, bound: SocketAddr) -> anyhow::Result<()> {
    if server.auth == AuthMode::None && !bound.ip().is_loopback() {
        anyhow::bail!(
            "server.auth is `none` but the server would listen on {bound}, which is not a loopback address: anyone who can reach it could run every tool. Set `server.auth: keys` (and create a key with `switchboard keys create --user NAME --role admin`, or set SWITCHBOARD_ADMIN_KEY), or bind 127.0.0.1"
        );
    }
    Ok(())
}

/// The store's audit log, for the hub and everything that records through it.
pub fn store_audit(store: &Store) -> Arc<dyn AuditLog> {
    Arc::new(StoreAudit(store.clone()))
}

/// The authenticator for `config` over `store`.
pub fn authenticator(
    config: &Config,
    store: &Store,
    admin_key: Option<&crate::config::Secret>,
) -> Authenticator {
    Authenticator::new(
        config.server.auth,
        store.clone(),
        config.roles.clone(),
        config.users.clone(),
        admin_key,
    )
}

/// Load the config file with this environment, then apply command-line overrides.
///
/// # Errors
/// Every config error, with file, line and key path.
pub fn load_config(
    path: &Path,
    env: &Environment,
    overrides: &Overrides,
) -> Result<Config, config::ConfigErrors> {
    let mut config = config::load(path, &|key| env.get(key))?;
    if let Some(bind) = overrides.bind {
        config.server.bind = bind;
    }
    if let Some(dir) = &overrides.data_dir {
        config.server.data_dir = dir.clone();
    }
    Ok(config)
}

/// Build the tool hub and start the configured servers (start-up does not wait for them),
/// running children directly (see [`start_hub_with`]).
///
/// # Errors
/// When the data directory cannot be created.
pub fn start_hub(config: &Config, env: &Environment) -> anyhow::Result<Hub> {
    start_hub_with(config, env, None, None)
}

/// The guard program of the `switchboard` binary: the running binary itself, by the path that
/// names it even after it was replaced on disk (an upgrade in place). Only the binary may pass
/// this on (its `main` answers `mcp-guard`); in a library user it would name that program.
pub fn own_guard() -> Option<PathBuf> {
    let path = PathBuf::from("/proc/self/exe");
    path.exists().then_some(path)
}

/// [`start_hub`], with each stdio child run under `guard` when given, and recorded under the
/// data dir (`processes/`). First ends what a previous Switchboard on this data dir left
/// running (the start-up sweep, `mcp::sweep`).
///
/// # Errors
/// When the data directory cannot be created.
pub fn start_hub_with(
    config: &Config,
    env: &Environment,
    guard: Option<&Path>,
    pins: Option<(crate::tools::pins::PinBook, crate::hub::PinSaver)>,
) -> anyhow::Result<Hub> {
    let data_dir = prepare_data_dir(&config.server.data_dir)?;
    let records = data_dir.join(crate::mcp::sweep::RECORDS_DIR);
    sweep_children(&records);
    let settings = ManagerSettings {
        inherited_env: env.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        child_env: vec![(
            "SWITCHBOARD_DATA_DIR".to_owned(),
            data_dir.display().to_string(),
        )],
        outbound: config.server.outbound.clone(),
        children: crate::mcp::ChildControl {
            guard: guard.map(Path::to_path_buf),
            records: Some(records),
        },
    };
    let hub = Hub::new(settings, config.tools.clone());
    hub.set_approval_policy(config.approval.clone());
    if let Some((book, save)) = pins {
        hub.load_pins(book, save);
    }
    hub.apply(&config.mcp_servers, config.tools.clone());
    Ok(hub)
}

/// The pins stored in `store`, and a saver writing changed ones back in order (one writer
/// task: a later change of a pin never lands before an earlier one).
///
/// # Errors
/// When the pins cannot be read.
pub async fn stored_pins(
    store: &Store,
) -> anyhow::Result<(crate::tools::pins::PinBook, crate::hub::PinSaver)> {
    let entries = store
        .load_pins()
        .await
        .context("reading the pinned tool definitions")?;
    let (sender, mut changes) =
        tokio::sync::mpsc::unbounded_channel::<crate::tools::pins::PinWrites>();
    let writer = store.clone();
    tokio::spawn(async move {
        while let Some(pins) = changes.recv().await {
            if let Err(err) = writer.save_pins(pins).await {
                tracing::error!(error = %err, "a pinned tool definition could not be stored");
            }
        }
    });
    let save: crate::hub::PinSaver = Arc::new(move |pins| {
        let _ = sender.send(pins);
    });
    Ok((crate::tools::pins::PinBook::from_entries(entries), save))
}

/// The start-up sweep, with what it did in the log.
fn sweep_children(records: &Path) {
    let report = crate::mcp::sweep::sweep(records);
    for (server, pid) in &report.ended {
        tracing::warn!(server = %server, pid, "ended a process a previous switchboard left running");
    }
    for (server, pgid) in &report.ended_groups {
        tracing::warn!(server = %server, pgid, "ended the remains of a process group a previous switchboard left");
    }
    for problem in &report.unreadable {
        tracing::warn!(record = %problem, "removed an unreadable child record");
    }
}

/// Open the store: `server.database_url`, else SQLite under the data dir.
///
/// # Errors
/// When the data directory cannot be created or the database cannot be opened or migrated.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = match &config.server.database_url {
        Some(url) => url.clone(),
        None => Store::sqlite_url_for(&prepare_data_dir(&config.server.data_dir)?),
    };
    let options = crate::store::StoreOptions {
        run_lease: config.server.run_lease,
    };
    let (store, _interrupted) = Store::open_with(&url, options)
        .await
        .context("opening the database")?;
    Ok(store)
}

/// The store, and a hub started on it: its servers' tools checked against the pinned
/// definitions from the first listing on (what the command line uses; `serve_on` does the same).
///
/// # Errors
/// As [`open_store`], [`stored_pins`] and [`start_hub_with`].
pub async fn start_hub_on_store(
    config: &Config,
    env: &Environment,
    guard: Option<&Path>,
) -> anyhow::Result<(Hub, Store)> {
    let store = open_store(config).await?;
    let pins = stored_pins(&store).await?;
    let hub = start_hub_with(config, env, guard, Some(pins))?;
    Ok((hub, store))
}

/// The run service over parts already built.
pub fn run_service(
    config: &Config,
    hub: &Hub,
    models: &ModelRegistry,
    store: Store,
    telemetry: Telemetry,
) -> RunService {
    let runs = RunService::new(
        hub.clone(),
        models.clone(),
        store,
        config.agents.clone(),
        telemetry,
    );
    runs.set_message_caps(message_caps(&config.server));
    runs.set_redactor(crate::redact::Redactor::for_config(config));
    runs
}

/// How long the first pass over resumable runs waits for the MCP servers' first listings (a
/// resumed call needs its tool in the catalog).
const RESUME_WAITS_FOR_SERVERS: Duration = Duration::from_secs(30);

/// Resume the runs whose process is gone (see `runs::RunService::resume_orphaned`): once the
/// servers have settled, then at every lease renewal (`server.run_lease_ms / 3`), until `stop`.
fn spawn_resumer(
    runs: &RunService,
    hub: &Hub,
    auth: &Authenticator,
    lease: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let (runs, hub, callers) = (runs.clone(), hub.clone(), KeyCallers(auth.clone()));
    tokio::spawn(async move {
        tokio::select! {
            () = hub.mcp().wait_settled(RESUME_WAITS_FOR_SERVERS) => {}
            () = stop.cancelled() => return,
        }
        loop {
            runs.resume_orphaned(&callers).await;
            tokio::select! {
                () = tokio::time::sleep(lease / 3) => {}
                () = stop.cancelled() => return,
            }
        }
    });
}

/// A resumed run's caller: the key it was started with, as the authenticator knows it now.
struct KeyCallers(Authenticator);

impl crate::runs::CallerLookup for KeyCallers {
    fn caller(&self, key_id: Option<&str>) -> BoxFuture<'_, Result<crate::access::Caller, String>> {
        let key_id = key_id.map(str::to_owned);
        Box::pin(async move {
            self.0
                .caller_for_key(key_id.as_deref())
                .await
                .map_err(|failure| format!("its key is {}", failure.reason()))
        })
    }
}

/// What one run may be sent (`server.max_messages`, `server.max_message_chars`).
fn message_caps(server: &ServerSettings) -> MessageCaps {
    MessageCaps {
        max_messages: server.max_messages,
        max_message_chars: server.max_message_chars,
    }
}

/// Cancel every run, give them a moment to record how they ended, and flush the store.
pub async fn stop_runs(runs: &RunService) {
    runs.shutdown(RUNS_STOP_TIMEOUT).await;
}

fn prepare_data_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    dir.canonicalize()
        .with_context(|| format!("resolving the data directory {}", dir.display()))
}

/// The whole HTTP surface of the server: the JSON API, the web UI's pages and assets, then the
/// API's fallbacks (they apply to every route merged before them), all behind the request gate
/// (`api::guard`: Host allowlist, cross-site writes), the one place every request passes.
/// Composed here so that neither `api` nor `web` knows the other.
pub fn router(
    state: AppState,
    web: WebAssets,
    gate: Policy,
    max_body_bytes: usize,
    stopping: tokio_util::sync::CancellationToken,
) -> axum::Router {
    // Cancelled when shutdown begins: `/mcp` sessions end and their open streams close, so
    // the connections can drain.
    let mcp = crate::gateway::service(
        state.hub.clone(),
        state.runs.clone(),
        max_body_bytes,
        stopping,
    );
    let routes = api::with_fallbacks(
        api::routes()
            .merge(crate::web::router(web))
            .nest_service("/mcp", mcp),
    );
    api::with_authentication(routes, state.clone())
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .layer(GuardLayer::new(gate))
        .with_state(state)
}

/// The gate's policy: the configured names and origins, and the address actually bound (a
/// request to it by IP is to this server).
pub fn gate_policy(server: &ServerSettings, bound: SocketAddr) -> Policy {
    Policy {
        public_hosts: server.public_hosts.clone(),
        allowed_origins: server.allowed_origins.clone(),
        bound_ip: (!bound.ip().is_unspecified()).then_some(bound.ip()),
    }
}

/// Serve until `shutdown` resolves, then stop everything in order.
///
/// # Errors
/// When the address cannot be bound or the data directory cannot be created.
pub async fn serve(
    config: Config,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = bind_listener(config.server.bind).await?;
    serve_on(listener, config, options, shutdown).await
}

/// [`serve`] on a listener the caller has bound (tests bind port 0 and read the port first).
///
/// # Errors
/// When the data directory cannot be created.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: Config,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let ServeOptions {
        env,
        overrides,
        web,
        telemetry,
        admin_key,
        clock,
        child_guard,
    } = options;
    let local = listener.local_addr().context("reading the bound address")?;
    check_auth_mode(&config.server, local)?;
    let clock = clock.unwrap_or_else(|| Arc::new(SystemClock::default()));
    let (hub, store) = start_hub_on_store(&config, &env, child_guard.as_deref()).await?;
    let hub = hub.with_access(Limiter::new(clock), store_audit(&store));
    let http = model_http_client(&config.server.outbound)?;
    let models = ModelRegistry::default();
    models.apply(&config.models, &http);
    let telemetry = Telemetry::from_config(telemetry.as_ref());
    let runs = run_service(&config, &hub, &models, store.clone(), telemetry.clone());
    let auth = authenticator(&config, &store, admin_key.as_ref());
    let stop_refresh = tokio_util::sync::CancellationToken::new();
    auth.spawn_refresh(stop_refresh.clone());
    spawn_resumer(
        &runs,
        &hub,
        &auth,
        config.server.run_lease,
        stop_refresh.clone(),
    );
    tracing::info!(address = %local, servers = config.mcp_servers.len(), auth = config.server.auth.name(), "switchboard listening");
    let gate = gate_policy(&config.server, local);
    let max_body_bytes = config.server.max_body_bytes;
    let reloader = Arc::new(FileReloader {
        hub: hub.clone(),
        models: models.clone(),
        http,
        runs: runs.clone(),
        auth: auth.clone(),
        env,
        overrides,
        current: Mutex::new(config),
    });
    // Runs are cancelled as soon as shutdown begins, so their event streams end and the
    // connections can drain; a connection still open after the drain timeout is dropped.
    let stopping = tokio_util::sync::CancellationToken::new();
    let router = router(
        AppState {
            hub: hub.clone(),
            models: models.clone(),
            reloader,
            runs: runs.clone(),
            auth,
        },
        web,
        gate,
        max_body_bytes,
        stopping.clone(),
    );
    // Nagle would hold small streamed responses back ~40 ms waiting for delayed ACKs.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let signal = {
        let (stopping, runs) = (stopping.clone(), runs.clone());
        async move {
            shutdown.await;
            runs.cancel_all();
            stopping.cancel();
        }
    };
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal);
    tokio::select! {
        served = served.into_future() => served.context("serving HTTP")?,
        () = async { stopping.cancelled().await; tokio::time::sleep(DRAIN_TIMEOUT).await } => {
            tracing::warn!("connections still open {} s after shutdown began; closing them", DRAIN_TIMEOUT.as_secs());
        }
    }
    stop_refresh.cancel();
    stop_runs(&runs).await;
    telemetry.stop().await;
    models.shutdown();
    tracing::info!("shutting down mcp servers");
    if tokio::time::timeout(Duration::from_secs(10), hub.mcp().shutdown())
        .await
        .is_err()
    {
        tracing::warn!("mcp servers did not stop within 10 s");
    }
    runs.store().close().await;
    Ok(())
}

/// One HTTP client for all model providers: pooled connections, no Nagle delay on small
/// writes, and `server.outbound` (`policy`) applied to every connection and redirect.
///
/// # Errors
/// When the TLS backend cannot start.
pub fn model_http_client(policy: &crate::outbound::Policy) -> anyhow::Result<reqwest::Client> {
    crate::outbound::client_builder(policy)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client for model providers")
}

async fn bind_listener(bind: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))
}

/// Reloads from the file the running config came from.
struct FileReloader {
    hub: Hub,
    models: ModelRegistry,
    http: reqwest::Client,
    runs: RunService,
    auth: Authenticator,
    env: Environment,
    overrides: Overrides,
    current: Mutex<Config>,
}

impl ConfigReloader for FileReloader {
    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, Vec<String>>> {
        async move {
            let source = self
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .source
                .clone();
            let env = self.env.clone();
            let overrides = self.overrides.clone();
            let loaded = tokio::task::spawn_blocking(move || load_config(&source, &env, &overrides))
                .await
                .map_err(|err| vec![format!("config loader failed: {err}")])?;
            let fresh = loaded.map_err(|errors| errors.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            self.hub.set_approval_policy(fresh.approval.clone());
            let summary = self.hub.apply(&fresh.mcp_servers, fresh.tools.clone());
            self.models.apply(&fresh.models, &self.http);
            self.runs.set_agents(fresh.agents.clone());
            self.runs.set_message_caps(message_caps(&fresh.server));
            self.runs
                .set_redactor(crate::redact::Redactor::for_config(&fresh));
            self.auth.set_policy(fresh.roles.clone(), fresh.users.clone());
            let model_names: Vec<String> = fresh.models.keys().cloned().collect();
            let mut restart_required = Vec::new();
            if fresh.server.bind != current.server.bind {
                restart_required.push("server.bind");
            }
            if fresh.server.data_dir != current.server.data_dir {
                restart_required.push("server.data_dir");
            }
            if fresh.server.database_url != current.server.database_url {
                restart_required.push("server.database_url");
            }
            if fresh.server.run_lease != current.server.run_lease {
                restart_required.push("server.run_lease_ms");
            }
            if fresh.server.public_hosts != current.server.public_hosts {
                restart_required.push("server.public_hosts");
            }
            if fresh.server.allowed_origins != current.server.allowed_origins {
                restart_required.push("server.allowed_origins");
            }
            if fresh.server.auth != current.server.auth {
                restart_required.push("server.auth");
            }
            if fresh.server.max_body_bytes != current.server.max_body_bytes {
                restart_required.push("server.max_body_bytes");
            }
            // The HTTP clients of servers and models were built with the policy at start-up.
            if fresh.server.outbound != current.server.outbound {
                restart_required.push("server.outbound");
            }
            tracing::info!(started = ?summary.started, stopped = ?summary.stopped, restarted = ?summary.restarted, "config reloaded");
            *current = fresh;
            Ok(ReloadReport {
                servers: summary,
                models: model_names,
                restart_required,
            })
        }
        .boxed()
    }
}
