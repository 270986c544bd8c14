//! The typed, already-validated configuration that the rest of Switchboard receives.
//!
//! Everything here is produced by [`crate::config::load`]; no other module parses files or reads
//! the environment. Values are final: defaults applied, durations converted, names checked.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};

/// The whole configuration, as loaded from one YAML file (plus any included Claude Desktop files).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this configuration came from; reload reads it again.
    pub source: PathBuf,
    /// HTTP server and storage settings.
    pub server: ServerSettings,
    /// Limits applied to the tool catalog and to tool results.
    pub tools: ToolSettings,
    /// MCP servers by their configured name, in name order so start-up and listings are stable.
    pub mcp_servers: BTreeMap<String, McpServerConfig>,
    /// Models by name (`models:` list), in name order.
    pub models: BTreeMap<String, ModelConfig>,
    /// Agents by name, one per file of the agents directory (`agents_dir`, default `./agents`),
    /// in name order.
    pub agents: BTreeMap<String, AgentConfig>,
    /// Roles by name (`roles:`), always with the built-in [`ADMIN_ROLE`] and [`DEFAULT_ROLE`]
    /// (the latter may be redefined).
    pub roles: BTreeMap<String, RoleConfig>,
    /// Per-user limit overrides (`users:`), by user name.
    pub users: BTreeMap<String, LimitOverrides>,
    /// Which tool calls a person approves first (`approval:`).
    pub approval: ApprovalPolicy,
}

/// `approval:` — rules deciding which tool calls need a person's approval, checked in order
/// (first match wins) before the built-in default (see `tools::approval`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalPolicy {
    pub rules: Vec<ApprovalRule>,
    /// What a call that needs approval does where nobody can be asked (`/v1`, the CLI).
    pub unattended: Unattended,
    /// How long a pending approval waits before the call is denied (`expire_after_ms`).
    pub expire_after: Duration,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            unattended: Unattended::Deny,
            expire_after: Duration::from_millis(DEFAULT_APPROVAL_EXPIRY_MS),
        }
    }
}

/// `approval.expire_after_ms` when not given: 10 minutes.
pub const DEFAULT_APPROVAL_EXPIRY_MS: u64 = 600_000;

/// One `approval.rules` entry: it matches a call when every matcher it has matches.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRule {
    /// Globs over exposed tool names.
    pub tools: Option<ToolGlobs>,
    /// A configured server name.
    pub server: Option<String>,
    /// An annotation the tool must have, as the policy reads it (untrusted servers' hints
    /// only raise risk).
    pub when: Option<ApprovalWhen>,
    /// Globs over the caller's role name: a per-role override.
    pub roles: Option<ToolGlobs>,
    pub action: ApprovalAction,
}

/// `when:` — an MCP annotation a rule can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalWhen {
    Destructive,
    ReadOnly,
    OpenWorld,
}

/// What a rule decides for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalAction {
    /// Run it.
    Allow,
    /// Run it once a person approves it.
    Ask,
    /// Never run it.
    Deny,
}

impl ApprovalAction {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalAction::Allow => "allow",
            ApprovalAction::Ask => "ask",
            ApprovalAction::Deny => "deny",
        }
    }
}

/// `approval.unattended` — a call that needs approval where no person follows the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unattended {
    /// The model is told the call needs approval (the default).
    #[default]
    Deny,
    /// The run waits (its response stream kept open) until someone decides in the UI or the
    /// approval expires.
    Wait,
}

/// How callers prove who they are (`server.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Nobody signs in; every caller is the local administrator. Only for a server that binds
    /// loopback addresses alone (checked when it starts).
    #[default]
    None,
    /// Every request but the public ones carries an API key (`Authorization: Bearer`) or a
    /// session cookie made from one.
    Keys,
}

impl AuthMode {
    /// As written in config.
    pub fn name(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Keys => "keys",
        }
    }
}

/// The built-in role that may do everything, unlimited; cannot be redefined.
pub const ADMIN_ROLE: &str = "admin";
/// The built-in role for ordinary users (every model, agent and tool; at most 10 tool calls,
/// then a 60 s cooldown); a `roles.user` entry replaces it.
pub const DEFAULT_ROLE: &str = "user";

/// One role: which models, agents and tools its users may use, and their default limits.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleConfig {
    pub name: String,
    /// Only the built-in `admin`: sees everyone's runs, manages keys, reloads config.
    pub admin: bool,
    /// Model names this role may use (absent in config = none).
    pub models: ToolGlobs,
    /// Agent names this role may run (absent = none).
    pub agents: ToolGlobs,
    /// Exposed tool names (`server__tool`) this role may call (absent = none).
    pub tools: ToolGlobs,
    pub limits: Limits,
}

impl RoleConfig {
    /// The built-in `admin`.
    pub fn admin() -> Self {
        Self {
            name: ADMIN_ROLE.to_owned(),
            admin: true,
            models: ToolGlobs::all(),
            agents: ToolGlobs::all(),
            tools: ToolGlobs::all(),
            limits: Limits::default(),
        }
    }

    /// The built-in `user`: everything, with the seed product's tool-call quota.
    pub fn default_user() -> Self {
        Self {
            name: DEFAULT_ROLE.to_owned(),
            admin: false,
            models: ToolGlobs::all(),
            agents: ToolGlobs::all(),
            tools: ToolGlobs::all(),
            limits: Limits {
                tool_calls: Some(CallQuota::DEFAULT),
                requests_per_minute: Some(DEFAULT_REQUESTS_PER_MINUTE),
                concurrent_runs: Some(DEFAULT_CONCURRENT_RUNS),
            },
        }
    }
}

/// Requests per minute per key of the built-in `user` role.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 600;
/// Runs in progress at once per user of the built-in `user` role.
pub const DEFAULT_CONCURRENT_RUNS: u32 = 8;

/// A user's limits; `None` in a field means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Tool calls (direct invokes and a run's calls alike).
    pub tool_calls: Option<CallQuota>,
    /// Requests per minute per API key (any route but the public ones).
    pub requests_per_minute: Option<u32>,
    /// Runs in progress at once.
    pub concurrent_runs: Option<u32>,
}

impl Limits {
    /// These limits with a user's overrides applied.
    pub fn with(self, overrides: &LimitOverrides) -> Limits {
        Limits {
            tool_calls: overrides.tool_calls.unwrap_or(self.tool_calls),
            requests_per_minute: overrides
                .requests_per_minute
                .unwrap_or(self.requests_per_minute),
            concurrent_runs: overrides.concurrent_runs.unwrap_or(self.concurrent_runs),
        }
    }
}

/// `users.NAME.limits`: each given field replaces the role's (`Some(None)` = `unlimited`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitOverrides {
    pub tool_calls: Option<Option<CallQuota>>,
    pub requests_per_minute: Option<Option<u32>>,
    pub concurrent_runs: Option<Option<u32>>,
}

/// At most `calls` tool calls within `window`; the call that reaches it starts a `cooldown`
/// during which every call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallQuota {
    pub calls: u32,
    pub window: Duration,
    pub cooldown: Duration,
}

impl CallQuota {
    /// The seed product's numbers: 10 calls, then 60 s of cooldown.
    pub const DEFAULT: CallQuota = CallQuota {
        calls: 10,
        window: Duration::from_secs(60),
        cooldown: Duration::from_secs(60),
    };
}

/// One entry of `models:`, in the shape of the seed project's `models.yaml` plus our additions.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// What users pick (`name`); unique, 1–64 characters of `[A-Za-z0-9_.:-]`.
    pub name: String,
    /// Wire protocol (`type`): `openai` (Chat Completions) or `anthropic` (Messages).
    pub provider: ProviderKind,
    /// API root (`base_url`), e.g. `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`,
    /// `https://api.anthropic.com`; the client appends `/chat/completions` or `/v1/messages`.
    pub base_url: url::Url,
    /// `api_key`; `None` when absent or empty (e.g. `${OPENAI_API_KEY:-}` with the variable unset).
    pub api_key: Option<Secret>,
    /// The provider's model id (`model_name`).
    pub model_name: String,
    /// Default `max_tokens` for requests (`max_tokens`); Anthropic requires one, default 4096 there.
    pub max_tokens: Option<u32>,
    /// Free-form labels shown in listings (`tags`).
    pub tags: Vec<String>,
    /// Whole-request timeout (`timeout_ms`, default 120 000).
    pub timeout: Duration,
    /// Time allowed until the first streamed token (`first_token_timeout_ms`, default 30 000).
    pub first_token_timeout: Duration,
    /// Retry policy (`retry:`).
    pub retry: RetryPolicy,
    /// Extra headers on every request (`headers`); values are secrets for logging purposes.
    pub headers: BTreeMap<String, String>,
    /// Azure OpenAI's `api-version` query parameter (`api_version`); when set, the key is sent
    /// in the `api-key` header instead of `Authorization: Bearer`.
    pub api_version: Option<String>,
    /// Periodic health probe (`healthcheck:`); `None` when `healthcheck: false`.
    pub healthcheck: Option<HealthcheckConfig>,
    /// The model used when a request names none (`default: true`; at most one model).
    pub default: bool,
    /// `enabled: false` keeps the entry but hides the model.
    pub enabled: bool,
}

/// The two wire protocols; vendors that differ only in URL are data, not variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI Chat Completions (OpenAI, DeepSeek, Qwen, vLLM, TGI, Ollama, llama.cpp, LM Studio, OpenRouter, Azure).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

/// `retry:` — how transient provider failures (429, 5xx, connection errors) are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, first included (`max_attempts`, default 3, 1 = no retries).
    pub max_attempts: u32,
    /// First backoff (`initial_backoff_ms`, default 500), doubled per attempt with jitter.
    pub initial_backoff: Duration,
    /// Backoff cap (`max_backoff_ms`, default 8 000); a longer `Retry-After` is honoured up to `deadline`.
    pub max_backoff: Duration,
    /// No retry starts after this much time since the first attempt (`deadline_ms`, default 60 000).
    pub deadline: Duration,
}

/// `healthcheck:` — a cheap probe (list models) run at start-up and then periodically.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthcheckConfig {
    /// Time between probes (`interval_ms`, default 60 000).
    pub interval: Duration,
    /// Time allowed for one probe (`timeout_ms`, default 5 000).
    pub timeout: Duration,
}

/// A secret string (API key): never printed by `Debug`, only read through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `server:` section: where we listen and where we keep state.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// Address the HTTP server binds (`server.bind`, default `127.0.0.1:8080`).
    pub bind: SocketAddr,
    /// Directory for the SQLite file and the bundled servers' state (`server.data_dir`, default `./data`).
    pub data_dir: PathBuf,
    /// Where runs and conversations are stored (`server.database_url`): `postgres://…` or
    /// `sqlite:…`; `None` = the SQLite file `switchboard.sqlite` under `data_dir`.
    pub database_url: Option<String>,
    /// How long a run whose process stopped renewing its lease stays `running` before another
    /// process sharing the database marks it `interrupted` (`server.run_lease_ms`, 1 s – 1 h,
    /// default 30 s). Shorter finds crashed runs sooner; longer tolerates longer stalls.
    pub run_lease: std::time::Duration,
    /// Host names this server answers to besides the loopback ones (`server.public_hosts`,
    /// lower-case, no port): a request whose `Host` names any other host is refused, so a web
    /// page cannot reach this server by re-pointing its own name at it (DNS rebinding).
    pub public_hosts: Vec<String>,
    /// Origins besides the server's own whose pages may send state-changing requests
    /// (`server.allowed_origins`, `scheme://host[:port]`, lower-case). No CORS grant is sent for
    /// them; this only lets their requests through the cross-site check.
    pub allowed_origins: Vec<String>,
    /// Most messages one run may be given, its history included (`server.max_messages`,
    /// 1 – 100 000, default 1 000): a request over it is refused before anything reaches a model.
    pub max_messages: usize,
    /// Most characters in any one of those messages (`server.max_message_chars`,
    /// 1 – 10 000 000, default 200 000).
    pub max_message_chars: usize,
    /// Largest request body in bytes (`server.max_body_bytes`, 1 KiB – 1 GiB, default 4 MiB):
    /// a bigger one is refused with 413 before it is read.
    pub max_body_bytes: usize,
    /// How callers authenticate (`server.auth`, default `none`).
    pub auth: AuthMode,
    /// Which addresses remote MCP servers and model providers may be reached at
    /// (`server.outbound`; default: link-local and cloud-metadata addresses refused, loopback
    /// and private networks allowed). Read at start-up; a reload that changes it says a restart
    /// is required.
    pub outbound: crate::outbound::Policy,
}

/// Default `server.max_body_bytes`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Default `server.max_messages`.
pub const DEFAULT_MAX_MESSAGES: usize = 1_000;
/// Default `server.max_message_chars`.
pub const DEFAULT_MAX_MESSAGE_CHARS: usize = 200_000;

/// Default `server.run_lease_ms` (and of the store's own options).
pub const DEFAULT_RUN_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// `tools:` section: catalog-wide caps that protect the models' context and our memory.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSettings {
    /// Results larger than this many bytes (serialized JSON) are truncated with a marker (`tools.max_result_bytes`, default 256 KiB).
    pub max_result_bytes: usize,
    /// At most this many tools are taken from one server (`tools.max_tools_per_server`, default 256).
    pub max_tools_per_server: usize,
    /// Tool descriptions are cut to this many characters (`tools.max_description_chars`, default 2048).
    pub max_description_chars: usize,
    /// A model's tool call whose arguments (the JSON text it wrote) are larger than this many
    /// bytes is refused before it reaches a server, and the model is told the cap and the size
    /// (`tools.max_argument_bytes`, default 256 KiB): a runaway or hostile model must not be able
    /// to push megabytes into a server, a log or the store through one call.
    pub max_argument_bytes: usize,
    /// Drop, instead of only flagging, a tool whose description steers the model around other
    /// tools ("use this instead of …", naming another server's tool; `tools.drop_steering`,
    /// default false).
    pub drop_steering: bool,
}

/// Default `tools.max_argument_bytes` (256 KiB), also what a run uses when no config says
/// otherwise (tests, the engine's own defaults).
pub const DEFAULT_MAX_ARGUMENT_BYTES: usize = 256 * 1024;

/// One entry of `mcpServers:`.
#[derive(Debug, Clone, PartialEq)]
pub struct McpServerConfig {
    /// The key under `mcpServers:`; unique, 1–64 characters of `[A-Za-z0-9_.-]`.
    pub name: String,
    /// How to reach the server.
    pub transport: TransportConfig,
    /// `enabled: false` keeps the entry in the file but never starts it (default true).
    pub enabled: bool,
    /// Glob filters over the server's own tool names (not the exposed `server__tool` names).
    pub tools: ToolFilter,
    /// Per-call hard timeout (`timeout_ms`, default 60 000).
    pub call_timeout: Duration,
    /// Time allowed for connect + handshake + first tool listing (`init_timeout_ms`, default 30 000).
    pub init_timeout: Duration,
    /// Calls in flight at once on this server (`max_concurrency`, default 16, at least 1).
    pub max_concurrency: usize,
    /// What the hub, as this server's MCP client, offers it: roots, how elicitation requests
    /// are answered, which log messages it asks for.
    pub client: ClientFeatures,
    /// `trusted:` — how far the server is believed; [`Trust::None`] unless said.
    pub trusted: Trust,
}

/// How far a server is believed (`trusted: false | annotations | true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trust {
    /// Its annotations can only raise risk: every call of it needs approval by default.
    #[default]
    None,
    /// Its annotations are believed (`readOnlyHint` makes a call `allow` by default); the
    /// shipped config says this of the bundled servers, whose hints we wrote.
    Annotations,
    /// Believed, and its calls need no approval by default (`trusted: true`).
    Full,
}

/// The client side of one server's session: what Switchboard declares and then does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientFeatures {
    /// `roots:` — directories (absolute paths, sent as `file://` URIs) the server may consider
    /// its workspace. Empty: the `roots` capability is not declared.
    pub roots: Vec<PathBuf>,
    /// `elicitation:` — how a request for input from the server is answered when no person is
    /// asked.
    pub elicitation: ElicitationPolicy,
    /// `log_level:` — the least severe server log message asked for (`logging/setLevel`) and
    /// kept in the server's log tail; `None` keeps the server's own default.
    pub log_level: Option<LogLevel>,
    /// `sampling:` — the model that serves the server's `sampling/createMessage` requests
    /// during a run's tool call; `None` (the default) does not declare sampling at all.
    pub sampling: Option<SamplingConfig>,
}

/// `sampling: {model, max_tokens}`: off unless configured, since a server that samples spends
/// the caller's model budget on prompts the caller did not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplingConfig {
    /// A name under `models:`; the caller's role must allow it when a request is served.
    pub model: String,
    /// The most tokens one request may ask for (`max_tokens`, default 1024): a larger
    /// `maxTokens` from the server is lowered to this.
    pub max_tokens: u32,
}

/// `sampling.max_tokens` when not given.
pub const DEFAULT_SAMPLING_MAX_TOKENS: u32 = 1024;

/// How an elicitation request is answered without a person (`elicitation:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ElicitationPolicy {
    /// Decline every request (the default): nobody was asked, so nothing is agreed to.
    #[default]
    Decline,
    /// Accept a form whose every required field has a `default`, with those defaults
    /// (SEP-1034); decline anything else.
    Defaults,
}

/// MCP's log severities (RFC 5424), least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    /// Every level with its config (and wire) name, least severe first.
    pub const ALL: [(LogLevel, &'static str); 8] = [
        (LogLevel::Debug, "debug"),
        (LogLevel::Info, "info"),
        (LogLevel::Notice, "notice"),
        (LogLevel::Warning, "warning"),
        (LogLevel::Error, "error"),
        (LogLevel::Critical, "critical"),
        (LogLevel::Alert, "alert"),
        (LogLevel::Emergency, "emergency"),
    ];

    /// The config and wire name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(level, _)| *level == self)
            .map_or("info", |(_, name)| name)
    }
}

/// The three ways to reach an MCP server; one variant per transport so code must handle each.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportConfig {
    /// A child process speaking JSON-RPC over stdin/stdout.
    Stdio {
        /// Program to run (looked up on `PATH` when it has no slash).
        command: String,
        /// Arguments, after interpolation.
        args: Vec<String>,
        /// Extra environment for the child, on top of a small allowlisted base environment.
        env: BTreeMap<String, String>,
        /// Working directory for the child; ours when absent.
        cwd: Option<PathBuf>,
    },
    /// Legacy HTTP+SSE (protocol 2024-11-05): `GET url` opens the event stream.
    Sse {
        /// The SSE endpoint, usually ending in `/sse`.
        url: url::Url,
        /// Headers sent on every request (e.g. `Authorization`).
        headers: BTreeMap<String, String>,
    },
    /// Streamable HTTP (protocol 2025-03-26 and later).
    StreamableHttp {
        /// The MCP endpoint, usually ending in `/mcp`.
        url: url::Url,
        /// Headers sent on every request (e.g. `Authorization`).
        headers: BTreeMap<String, String>,
    },
}

/// `tools.allow` / `tools.deny` globs; deny wins, and an empty allow list allows everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolFilter {
    /// Glob patterns (`*`, `?`, `[..]`) a tool name must match one of, when non-empty.
    pub allow: Vec<String>,
    /// Glob patterns that remove a tool even when it is allowed.
    pub deny: Vec<String>,
}

impl TransportConfig {
    /// Short label used in logs and the status API.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportConfig::Stdio { .. } => "stdio",
            TransportConfig::Sse { .. } => "sse",
            TransportConfig::StreamableHttp { .. } => "streamable-http",
        }
    }

    /// The remote server's URL; `None` for a stdio server. Where `server.outbound` applies.
    pub fn url(&self) -> Option<&url::Url> {
        match self {
            TransportConfig::Stdio { .. } => None,
            TransportConfig::Sse { url, .. } | TransportConfig::StreamableHttp { url, .. } => {
                Some(url)
            }
        }
    }
}

/// One agent: a file `agents/NAME.yaml` giving a model a role, a set of tools and budgets.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// What users pick (`name`; `agent:NAME` in the OpenAI-compatible API); unique across the
    /// agent files, 1–64 characters of `[A-Za-z0-9_.-]`.
    pub name: String,
    /// One line for listings (`description`, default empty).
    pub description: String,
    /// The model to run with (`model`, a name under `models:`); `None` means the default model.
    pub model: Option<String>,
    /// Instructions sent as the system message (`system_prompt`, required, non-empty).
    pub system_prompt: String,
    /// Globs over exposed catalog names such as `calc__*` (`tools`), compiled while loading; a
    /// tool is offered when any glob matches it. Empty offers no tools, `["*"]` offers all.
    pub tools: ToolGlobs,
    /// How runs of this agent proceed (`mode`, default `react`).
    pub mode: AgentMode,
    /// Budgets that end a run (`limits:`).
    pub limits: AgentLimits,
    /// The file this agent came from.
    pub source: PathBuf,
}

/// Tool name globs (an agent's `tools`), compiled once when the config is loaded so that a run
/// only matches names against them: a glob that does not compile is a config error at load,
/// never a silently empty tool list at run time.
///
/// Compared, printed and serialized (the agents listing) as the patterns were written.
#[derive(Clone, Default)]
pub struct ToolGlobs {
    patterns: Vec<String>,
    /// Shared: a run takes a copy of its agent, and a compiled set is not small.
    set: Arc<GlobSet>,
}

impl ToolGlobs {
    /// Compile `patterns` (`*`, `?`, `[..]`, `{a,b}`; `*` also matches `_`).
    ///
    /// # Errors
    /// A pattern that is not a glob, or a set globset cannot build. The config loader reports
    /// both with their position; other callers pass patterns they wrote themselves.
    pub fn compile(patterns: Vec<String>) -> Result<Self, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        for pattern in &patterns {
            builder.add(Glob::new(pattern)?);
        }
        Ok(Self {
            patterns,
            set: Arc::new(builder.build()?),
        })
    }

    /// `["*"]`: every tool (plain chat, with no agent, offers all of them).
    pub fn all() -> Self {
        Self::compile(vec!["*".to_owned()]).expect("`*` is a valid glob")
    }

    /// Whether the exposed tool name `name` (`calc__evaluate`) is offered.
    pub fn is_match(&self, name: &str) -> bool {
        self.set.is_match(name)
    }

    /// The patterns as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl PartialEq for ToolGlobs {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl std::fmt::Debug for ToolGlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.patterns).finish()
    }
}

impl serde::Serialize for ToolGlobs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.patterns)
    }
}

/// How an agent's run is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentMode {
    /// `react`: the model asks for tool calls turn by turn until it answers.
    #[default]
    React,
    /// `plan`: the model writes a whole plan of tool calls up front, which runs as a DAG and
    /// may be re-planned up to `limits.max_replans` times.
    Plan,
}

impl AgentMode {
    /// The name used in agent files and listings (`react`, `plan`).
    pub fn name(self) -> &'static str {
        match self {
            AgentMode::React => "react",
            AgentMode::Plan => "plan",
        }
    }
}

/// `limits:` of an agent: every run ends with a terminal status before exceeding one. The
/// [`Default`] values also apply to plain model chat, where no agent is involved.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentLimits {
    /// Model calls (plan steps) per run (`max_steps`, default 16, 1–200).
    pub max_steps: u32,
    /// Tool calls per run (`max_tool_calls`, default 32, 0–1000; 0 allows none).
    pub max_tool_calls: u32,
    /// Tool calls in flight at once (`max_parallel_tools`, default 4, 1–64).
    pub max_parallel_tools: u32,
    /// Time allowed for one tool call (`tool_timeout_ms`, default 60 000, at most `run_timeout`).
    pub tool_timeout: Duration,
    /// Time allowed for the whole run (`run_timeout_ms`, default 300 000, at most a day).
    pub run_timeout: Duration,
    /// Calls of the same tool with the same arguments per run (`max_repeats`, default 3, 1–1000);
    /// stops a model that loops.
    pub max_repeats: u32,
    /// Times a plan-mode run may ask for a new plan (`max_replans`, default 2, 0–10; only
    /// accepted with `mode: plan`).
    pub max_replans: u32,
}

/// Where and as whom run spans are exported over OTLP (http/protobuf). Read from the
/// `OTEL_*` variables at start-up (see [`crate::config::EnvSettings`]); `None` there means no
/// export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The full URL spans are posted to (`…/v1/traces`).
    pub traces_endpoint: String,
    /// `service.name` of the exported spans (`OTEL_SERVICE_NAME`, default `switchboard`).
    pub service_name: String,
    /// Time allowed for one export (`OTEL_EXPORTER_OTLP_TIMEOUT` in ms, default 10 s).
    pub timeout: Duration,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` when it asks for something other than `http/protobuf`,
    /// which is used anyway; kept so the exporter can say so when it starts.
    pub unsupported_protocol: Option<String>,
}

/// Default [`TelemetryConfig::service_name`].
pub const DEFAULT_SERVICE_NAME: &str = "switchboard";
/// Default [`TelemetryConfig::timeout`].
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

impl TelemetryConfig {
    /// Export to the collector at `base` (e.g. `http://localhost:4318`), as `switchboard`.
    pub fn new(base: &str) -> Self {
        Self {
            traces_endpoint: format!("{}/v1/traces", base.trim_end_matches('/')),
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            timeout: DEFAULT_EXPORT_TIMEOUT,
            unsupported_protocol: None,
        }
    }
}
