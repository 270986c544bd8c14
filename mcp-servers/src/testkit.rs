//! The `testkit` server: deliberately awkward tools for Switchboard's own fault tests.
//!
//! Not for the default configuration. Tools: `echo`, `sleep` (progress and
//! cancellation), `fail` (isError), `exit` (crash mid-call), `big` (huge result),
//! `rich` (every content kind plus structured content), `pid`, `flood` (corrupts stdout
//! after the handshake), and `add_tool`
//! (registers a tool at runtime and sends `notifications/tools/list_changed`).
//!
//! When `sleep` sees its request cancelled it writes the line `cancelled <request id>`
//! to stderr (the JSON-RPC id as a bare number or string), so a test can tell the
//! cancellation reached the server.
//!
//! Environment variables, read once at start:
//!
//! - `SWITCHBOARD_TESTKIT_MODE` (stdio only; ignored by `serve_http`):
//!   - unset, empty or `normal`: behave.
//!   - `never-init`: read and discard stdin until EOF, never answer, then return.
//!   - `flood`: write `x` bytes without any newline to stdout until the pipe closes.
//!   - `exit-on-start`: write `testkit: exit-on-start` to stderr and exit with code 3.
//!   - `stderr-flood`: behave, while a thread writes `SWITCHBOARD_TESTKIT_STDERR_LINES`
//!     lines (default 200000, at most 10000000) `stderr flood line <i> of <n>` to stderr
//!     as fast as the pipe takes them (tests of the client's stderr rate limit).
//!   - `stderr-forge`: write [`FORGED_STDERR`] (a carriage return that would forge a
//!     line, ANSI colour and title sequences, C0/C1 controls, bidi overrides) to stderr,
//!     then `testkit: stderr-forge done`, then behave (tests of log escaping).
//!   - `ignore-eof`: behave, but keep running after the client closes stdin (until a
//!     signal ends the process), like a server that never notices its client left.
//!   - `descendants`: like `ignore-eof`, after starting three `sleep 600` processes: one
//!     in the testkit's process group, one in a process group of its own, and one in a
//!     session of its own (through util-linux `setsid`, which must be on `PATH`).
//!   - `wedge-tools-list`: like `ignore-eof`; answers the first `tools/list`, then sends
//!     `notifications/tools/list_changed` and never answers another `tools/list` (it
//!     writes `testkit: not answering tools/list` to stderr when one arrives).
//!   - anything else: a warning on stderr, then behave.
//! - `SWITCHBOARD_TESTKIT_PID_FILE=PATH` (`descendants` only): where the mode writes the
//!   pids it knows, one `<role> <pid>` line each (`server`, `group`, `own-group`,
//!   `session`); the file appears complete or not at all (written, then renamed).
//! - `SWITCHBOARD_TESTKIT_TOOLS=N`: add N trivial tools `t000`, `t001`, … (at least
//!   three digits; at most 10000 tools) that return their own name, for catalog-cap
//!   tests.
//! - `SWITCHBOARD_TESTKIT_PROTOCOL=VERSION` (tests of version negotiation): act as a
//!   server of the `initialize` era that speaks only `VERSION`: `server/discover` is
//!   answered "method not found", and `initialize` is answered with `VERSION` whatever
//!   the client offered. Any string works, real revision or not, as long as it sorts
//!   before `2026-07-28` (rmcp's server side replaces later ones).
//!
//! The tool list lives in an `Arc<RwLock<ToolRouter>>` shared by every clone of the
//! handler, so tools added at runtime survive the per-request handler instances of
//! stateless HTTP. `list_tools`/`call_tool` work on a snapshot (a cheap clone of a map
//! of `Arc`s), so no lock is held across an `.await`.

use std::{
    io::Write as _,
    sync::{
        Arc, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use base64::Engine as _;
use rmcp::{
    RoleServer, ServerHandler,
    handler::server::{
        common::{schema_for_empty_input, schema_for_input},
        router::tool::{ToolRoute, ToolRouter},
        wrapper::Parameters,
    },
    model::{
        CallToolResult, ContentBlock, Implementation, ProgressNotificationParam,
        ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
    },
    service::RequestContext,
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Name of the misbehaviour-mode variable.
pub const MODE_ENV: &str = "SWITCHBOARD_TESTKIT_MODE";
/// Name of the extra-tools variable.
pub const TOOLS_ENV: &str = "SWITCHBOARD_TESTKIT_TOOLS";
/// Name of the variable that pins the protocol version `initialize` is answered with.
pub const PROTOCOL_ENV: &str = "SWITCHBOARD_TESTKIT_PROTOCOL";
/// Name of the variable naming the file the `descendants` mode writes its pids to.
pub const PID_FILE_ENV: &str = "SWITCHBOARD_TESTKIT_PID_FILE";
/// How long the processes the `descendants` mode starts live, in seconds, if nobody ends
/// them: far longer than any test, short enough that a leak ends by itself.
pub const DESCENDANT_SECONDS: u32 = 600;
/// Name of the variable giving how many lines the `stderr-flood` mode writes.
pub const STDERR_LINES_ENV: &str = "SWITCHBOARD_TESTKIT_STDERR_LINES";
/// Lines the `stderr-flood` mode writes when [`STDERR_LINES_ENV`] is unset.
pub const DEFAULT_STDERR_LINES: u64 = 200_000;
/// Most lines [`STDERR_LINES_ENV`] may ask for.
pub const MAX_STDERR_LINES: u64 = 10_000_000;
/// What the `stderr-forge` mode writes to stderr, one entry a line: each would change what a
/// terminal shows if a client logged it raw.
pub const FORGED_STDERR: &[&str] = &[
    "ok\rFORGED",
    "\u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7}",
    "bidi \u{202e}desrever\u{202c} isolate \u{2066}x\u{2069}",
    "c1 \u{9b}31m nul \u{0} bs \u{8} del \u{7f}",
];
/// Most extra tools `SWITCHBOARD_TESTKIT_TOOLS` may add.
pub const MAX_EXTRA_TOOLS: usize = 10_000;
/// Largest `big` result, in bytes.
pub const MAX_BIG_BYTES: u64 = 64 * 1024 * 1024;
/// Longest `sleep`, in milliseconds.
pub const MAX_SLEEP_MS: u64 = 3_600_000;
/// Most progress steps of one `sleep`.
pub const MAX_SLEEP_STEPS: u32 = 1000;

/// A 1×1 PNG.
const TINY_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// The `testkit` MCP server.
#[derive(Clone)]
pub struct Testkit {
    router: Arc<RwLock<ToolRouter<Testkit>>>,
    /// Set in the `wedge-tools-list` mode: how many `tools/list` requests arrived.
    wedged_lists: Option<Arc<AtomicUsize>>,
    /// Set by `SWITCHBOARD_TESTKIT_PROTOCOL`: the only version spoken, over `initialize`.
    pinned_version: Option<rmcp::model::ProtocolVersion>,
}

impl std::fmt::Debug for Testkit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testkit")
            .field("tools", &self.snapshot().list_all().len())
            .finish()
    }
}

/// Arguments of `echo`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EchoArgs {
    /// Text to send back unchanged.
    pub message: String,
}

/// Arguments of `sleep`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SleepArgs {
    /// How long to sleep, in milliseconds (at most 3600000).
    pub ms: u64,
    /// In how many equal steps to sleep; a progress notification follows each step
    /// when the request has a progress token. Defaults to one step per 100 ms (at
    /// least 1, at most 1000).
    #[serde(default)]
    pub steps: Option<u32>,
}

/// Arguments of `fail`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FailArgs {
    /// The error text to return.
    pub message: String,
}

/// Arguments of `exit`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExitArgs {
    /// The process exit code.
    pub code: i32,
}

/// Arguments of `big`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct BigArgs {
    /// Size of the returned text in bytes (at most 67108864).
    pub bytes: u64,
}

/// Arguments of `add_tool`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddToolArgs {
    /// Name of the new echo tool: 1 to 64 characters of `A-Z a-z 0-9 _ - .`, not
    /// already taken.
    pub name: String,
}

/// Structured part of `rich`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RichSummary {
    /// The content kinds in the result, in order.
    pub kinds: Vec<String>,
    /// Always 42, so a test can check a number survived.
    pub answer: u32,
}

impl Testkit {
    /// A testkit with `extra_tools` trivial tools `t000…` besides the real ones.
    pub fn new(extra_tools: usize) -> Self {
        let mut router = Self::tool_router();
        for i in 0..extra_tools.min(MAX_EXTRA_TOOLS) {
            router.add_route(trivial_tool(format!("t{i:03}")));
        }
        Self {
            router: Arc::new(RwLock::new(router)),
            wedged_lists: None,
            pinned_version: None,
        }
    }

    /// A testkit configured from `SWITCHBOARD_TESTKIT_TOOLS` and, for the
    /// `wedge-tools-list` mode, `SWITCHBOARD_TESTKIT_MODE` (see the module docs).
    pub fn from_env() -> Self {
        let extra = std::env::var(TOOLS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut kit = Self::new(extra);
        if start_mode() == "wedge-tools-list" {
            kit.wedged_lists = Some(Arc::default());
        }
        kit.pinned_version = std::env::var(PROTOCOL_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .and_then(|v| {
                serde_json::from_value(serde_json::Value::String(v.trim().to_owned())).ok()
            });
        kit
    }

    /// `tools/list` in the `wedge-tools-list` mode: the first is answered and followed by
    /// `notifications/tools/list_changed`; every later one waits forever.
    async fn wedged_list(&self, lists: &AtomicUsize, context: &RequestContext<RoleServer>) {
        if lists.fetch_add(1, Ordering::SeqCst) == 0 {
            let peer = context.peer.clone();
            tokio::spawn(async move {
                // After the answer to this request has gone out.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let sent = peer.notify_tool_list_changed().await.is_ok();
                let _ = writeln!(
                    std::io::stderr(),
                    "testkit: tools/list_changed sent: {sent}"
                );
            });
            return;
        }
        let _ = writeln!(std::io::stderr(), "testkit: not answering tools/list");
        std::future::pending::<()>().await;
    }

    /// A copy of the current tool table.
    fn snapshot(&self) -> ToolRouter<Self> {
        // A poisoned lock only means a writer panicked mid-insert; the map is still
        // usable.
        match self.router.read() {
            Ok(router) => router.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Apply `SWITCHBOARD_TESTKIT_MODE` before serving stdio. Returns `true` when the
/// server should go on to serve, `false` when the mode has already played out.
/// `exit-on-start` does not return.
pub(crate) async fn apply_start_mode() -> bool {
    let mode = start_mode();
    match mode.as_str() {
        "" | "normal" => true,
        "ignore-eof" | "wedge-tools-list" => true,
        "descendants" => {
            if let Err(err) = start_descendants() {
                let _ = writeln!(std::io::stderr(), "testkit: descendants: {err}");
            }
            true
        }
        "never-init" => {
            let mut stdin = tokio::io::stdin();
            let _ = tokio::io::copy(&mut stdin, &mut tokio::io::sink()).await;
            false
        }
        "flood" => {
            let _ = tokio::task::spawn_blocking(flood_stdout).await;
            false
        }
        "stderr-flood" => {
            let lines = std::env::var(STDERR_LINES_ENV)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(DEFAULT_STDERR_LINES)
                .min(MAX_STDERR_LINES);
            std::thread::spawn(move || flood_stderr(lines));
            true
        }
        "stderr-forge" => {
            let mut stderr = std::io::stderr().lock();
            for line in FORGED_STDERR {
                let _ = writeln!(stderr, "{line}");
            }
            let _ = writeln!(stderr, "testkit: stderr-forge done");
            true
        }
        "exit-on-start" => {
            let _ = writeln!(std::io::stderr(), "testkit: exit-on-start");
            std::process::exit(3);
        }
        other => {
            let _ = writeln!(
                std::io::stderr(),
                "testkit: unknown {MODE_ENV} `{other}`, behaving normally"
            );
            true
        }
    }
}

/// `SWITCHBOARD_TESTKIT_MODE`, trimmed.
fn start_mode() -> String {
    std::env::var(MODE_ENV)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// What the testkit does once its client closed the session: return, or, in the modes
/// that ignore stdin EOF, wait until a signal ends the process.
pub(crate) async fn after_session() {
    if matches!(
        start_mode().as_str(),
        "ignore-eof" | "descendants" | "wedge-tools-list"
    ) {
        let _ = writeln!(std::io::stderr(), "testkit: stdin closed; staying alive");
        std::future::pending::<()>().await;
    }
}

/// The `descendants` mode: start a `sleep` in our process group, one in a group of its
/// own and one in a session of its own, and write the pids to `SWITCHBOARD_TESTKIT_PID_FILE`.
/// The children are never waited for: they are meant to outlive whoever forgets them.
fn start_descendants() -> std::io::Result<()> {
    let seconds = DESCENDANT_SECONDS.to_string();
    let quiet = |command: &mut std::process::Command| {
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
    };
    let mut group = std::process::Command::new("sleep");
    group.arg(&seconds);
    quiet(&mut group);
    let mut own_group = std::process::Command::new("sleep");
    own_group.arg(&seconds);
    quiet(&mut own_group);
    std::os::unix::process::CommandExt::process_group(&mut own_group, 0);
    // util-linux `setsid` calls setsid(2) and execs in place (it only forks when it leads a
    // process group, which a child in our group does not), so the pid is the sleeper's.
    let mut session = std::process::Command::new("setsid");
    session.args(["sleep", &seconds]);
    quiet(&mut session);
    let mut lines = format!("server {}\n", std::process::id());
    for (role, command) in [
        ("group", &mut group),
        ("own-group", &mut own_group),
        ("session", &mut session),
    ] {
        let child = command
            .spawn()
            .map_err(|err| std::io::Error::new(err.kind(), format!("starting {role}: {err}")))?;
        lines.push_str(&format!("{role} {}\n", child.id()));
    }
    if let Some(path) = std::env::var_os(PID_FILE_ENV) {
        let path = std::path::PathBuf::from(path);
        let partial = path.with_extension("partial");
        std::fs::write(&partial, lines)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(())
}

/// Write `x` to stdout, never a newline, until the reader closes the pipe (EPIPE; Rust ignores
/// SIGPIPE).
fn flood_stdout() {
    let chunk = vec![b'x'; 64 * 1024];
    let mut stdout = std::io::stdout().lock();
    while stdout.write_all(&chunk).is_ok() {}
}

/// Write `lines` numbered lines to stderr through one buffer, so the pipe, not our syscalls,
/// sets the pace.
fn flood_stderr(lines: u64) {
    let mut stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr().lock());
    for i in 1..=lines {
        if writeln!(stderr, "stderr flood line {i} of {lines}").is_err() {
            return;
        }
    }
    let _ = stderr.flush();
}

fn trivial_tool(name: String) -> ToolRoute<Testkit> {
    let reply = name.clone();
    let tool = Tool::new(
        name,
        "Trivial tool for catalog tests; returns its own name.",
        schema_for_empty_input(),
    )
    .with_annotations(read_only());
    ToolRoute::new(tool, move || reply.clone())
}

fn echo_tool(name: String) -> Result<ToolRoute<Testkit>, String> {
    let schema = schema_for_input::<EchoArgs>()?;
    let tool = Tool::new(
        name,
        "Echo tool added at runtime; returns `message`.",
        schema,
    )
    .with_annotations(read_only());
    Ok(ToolRoute::new(
        tool,
        |Parameters(args): Parameters<EchoArgs>| args.message,
    ))
}

fn read_only() -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(false)
}

fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn text_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// A tiny valid WAV: 8 kHz, 8-bit mono, 8 samples of silence.
fn tiny_wav() -> Vec<u8> {
    let samples = [0x80u8; 8];
    let data_len = samples.len() as u32;
    let mut wav = Vec::with_capacity(44 + samples.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // channels
    wav.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
    wav.extend_from_slice(&8000u32.to_le_bytes()); // byte rate
    wav.extend_from_slice(&1u16.to_le_bytes()); // block align
    wav.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    wav.extend_from_slice(&samples);
    wav
}

#[tool_router]
impl Testkit {
    #[tool(
        description = "Return `message` unchanged.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        args.message
    }

    #[tool(
        description = "Sleep for `ms` milliseconds in `steps` steps, sending a progress \
                       notification after each step when the request carries a progress \
                       token. Stops early when the request is cancelled and logs \
                       `cancelled <request id>` to stderr.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn sleep(
        &self,
        Parameters(args): Parameters<SleepArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        if args.ms > MAX_SLEEP_MS {
            return text_error(format!("ms must be at most {MAX_SLEEP_MS}"));
        }
        let steps = args
            .steps
            .unwrap_or((args.ms / 100).clamp(1, u64::from(MAX_SLEEP_STEPS)) as u32)
            .clamp(1, MAX_SLEEP_STEPS);
        let step = Duration::from_millis(args.ms) / steps;
        let token = ctx.meta.get_progress_token();
        for done in 1..=steps {
            tokio::select! {
                () = ctx.ct.cancelled() => {
                    let _ = writeln!(std::io::stderr(), "cancelled {}", ctx.id);
                    return text_error("cancelled");
                }
                () = tokio::time::sleep(step) => {}
            }
            if let Some(token) = &token {
                let progress = ProgressNotificationParam::new(token.clone(), f64::from(done))
                    .with_total(f64::from(steps))
                    .with_message(format!("step {done} of {steps}"));
                let _ = ctx.peer.notify_progress(progress).await;
            }
        }
        CallToolResult::success(vec![ContentBlock::text(format!("slept {} ms", args.ms))])
    }

    #[tool(
        description = "Always fail with `message` as a tool error (isError: true).",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn fail(&self, Parameters(args): Parameters<FailArgs>) -> CallToolResult {
        text_error(args.message)
    }

    #[tool(
        description = "Exit the server process immediately with `code`, without answering: \
                       simulates a crash in the middle of a call.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    fn exit(&self, Parameters(args): Parameters<ExitArgs>) -> CallToolResult {
        let _ = writeln!(std::io::stderr(), "testkit: exit {}", args.code);
        std::process::exit(args.code)
    }

    #[tool(
        description = "Return a text of exactly `bytes` bytes (ASCII lines of 64 bytes; at most \
                       64 MiB).",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn big(&self, Parameters(args): Parameters<BigArgs>) -> CallToolResult {
        if args.bytes > MAX_BIG_BYTES {
            return text_error(format!("bytes must be at most {MAX_BIG_BYTES}"));
        }
        const LINE: &[u8; 64] =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.\n";
        // Bounded by MAX_BIG_BYTES above, so the cast cannot truncate.
        let len = args.bytes as usize;
        let text: String = LINE
            .iter()
            .cycle()
            .take(len)
            .map(|&b| char::from(b))
            .collect();
        CallToolResult::success(vec![ContentBlock::text(text)])
    }

    #[tool(
        description = "Return one content block of each kind (text, image/png, audio/wav, \
                       embedded resource) plus structured content matching the output schema.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<RichSummary>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    fn rich(&self) -> CallToolResult {
        let summary = RichSummary {
            kinds: ["text", "image", "audio", "resource"]
                .map(str::to_owned)
                .to_vec(),
            answer: 42,
        };
        let wav = base64::engine::general_purpose::STANDARD.encode(tiny_wav());
        let mut result = CallToolResult::success(vec![
            ContentBlock::text("rich result"),
            ContentBlock::image(TINY_PNG, "image/png"),
            ContentBlock::audio(wav, "audio/wav"),
            ContentBlock::embedded_text("testkit://rich/resource.txt", "embedded resource text"),
        ]);
        result.structured_content = serde_json::to_value(summary).ok();
        result
    }

    #[tool(
        description = "Corrupt the session: write `x` bytes without any newline to stdout until \
                       the pipe closes (tests of the client's stdout frame cap). Never answers.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn flood(&self) -> String {
        let _ = tokio::task::spawn_blocking(flood_stdout).await;
        "unreachable: the client closed the pipe".to_owned()
    }

    #[tool(
        description = "Return the server's process id.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn pid(&self) -> String {
        std::process::id().to_string()
    }

    #[tool(
        description = "Register a new echo tool called `name` and notify the client with \
                       notifications/tools/list_changed.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn add_tool(
        &self,
        Parameters(args): Parameters<AddToolArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        if !valid_tool_name(&args.name) {
            return text_error(format!(
                "invalid tool name `{}`: use 1 to 64 characters of A-Z a-z 0-9 _ - .",
                args.name
            ));
        }
        let route = match echo_tool(args.name.clone()) {
            Ok(route) => route,
            Err(err) => return text_error(format!("cannot build the tool schema: {err}")),
        };
        {
            let mut router = match self.router.write() {
                Ok(router) => router,
                Err(poisoned) => poisoned.into_inner(),
            };
            if router.has_route(&args.name) {
                return text_error(format!("a tool named `{}` already exists", args.name));
            }
            router.add_route(route);
        }
        if let Err(err) = ctx.peer.notify_tool_list_changed().await {
            tracing::warn!(error = %err, "cannot send tools/list_changed");
        }
        CallToolResult::success(vec![ContentBlock::text(format!(
            "added tool {}",
            args.name
        ))])
    }
}

#[tool_handler(router = self.snapshot())]
impl ServerHandler for Testkit {
    // `SWITCHBOARD_TESTKIT_PROTOCOL`: the pinned version over `initialize`. 2026-07-28 is listed
    // too only so that rmcp lets the `server/discover` probe reach `discover` below, which
    // refuses it as a server of the `initialize` era does ("method not found"), instead of
    // answering "unsupported protocol version" itself, which a client reads as a modern server.
    fn supported_protocol_versions(
        &self,
    ) -> std::borrow::Cow<'static, [rmcp::model::ProtocolVersion]> {
        match &self.pinned_version {
            Some(version) => std::borrow::Cow::Owned(vec![
                version.clone(),
                rmcp::model::ProtocolVersion::V_2026_07_28,
            ]),
            None => std::borrow::Cow::Borrowed(rmcp::model::ProtocolVersion::KNOWN_VERSIONS),
        }
    }

    async fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::DiscoverResult, rmcp::ErrorData> {
        if self.pinned_version.is_some() {
            return Err(rmcp::ErrorData::method_not_found::<
                rmcp::model::DiscoverRequestMethod,
            >());
        }
        Ok(rmcp::model::DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            self.get_info(),
        ))
    }

    async fn initialize(
        &self,
        request: rmcp::model::InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::InitializeResult, rmcp::ErrorData> {
        context.peer.set_peer_info(request.clone());
        let Some(version) = &self.pinned_version else {
            return self.negotiate_initialize(&request);
        };
        // The serve loop negotiates once more and keeps this answer, since the client's
        // offer is not among the supported versions.
        let mut info = self.get_info();
        info.protocol_version = version.clone();
        Ok(info)
    }

    // What `#[tool_handler]` would generate, plus the `wedge-tools-list` mode.
    async fn list_tools(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, rmcp::ErrorData> {
        if let Some(lists) = &self.wedged_lists {
            self.wedged_list(lists, &context).await;
        }
        let supports_cache_hints = context
            .protocol_version()
            .is_some_and(|version| version >= rmcp::model::ProtocolVersion::V_2026_07_28);
        Ok(rmcp::model::ListToolsResult {
            result_type: Some(rmcp::model::ResultType::COMPLETE),
            tools: self.snapshot().list_all(),
            meta: None,
            next_cursor: None,
            ttl_ms: supports_cache_hints.then_some(0),
            cache_scope: supports_cache_hints.then_some(rmcp::model::CacheScope::Public),
        })
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("testkit", env!("CARGO_PKG_VERSION")))
        .with_instructions("Fault-injection tools for Switchboard's tests.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_tools_are_numbered() {
        let kit = Testkit::new(12);
        let names: Vec<String> = kit
            .snapshot()
            .list_all()
            .into_iter()
            .map(|t| t.name.into_owned())
            .collect();
        assert!(names.contains(&"t000".to_owned()));
        assert!(names.contains(&"t011".to_owned()));
        assert!(!names.contains(&"t012".to_owned()));
        for name in [
            "echo", "sleep", "fail", "exit", "big", "rich", "pid", "flood", "add_tool",
        ] {
            assert!(names.contains(&name.to_owned()), "{name} missing");
        }
        assert_eq!(names.len(), 12 + 9);
    }

    #[test]
    fn big_has_the_exact_size() {
        let kit = Testkit::new(0);
        for bytes in [0u64, 1, 63, 64, 65, 100_000] {
            let result = kit.big(Parameters(BigArgs { bytes }));
            let len = result.content[0].as_text().map(|t| t.text.len());
            assert_eq!(len, Some(bytes as usize));
        }
        let too_big = kit.big(Parameters(BigArgs {
            bytes: MAX_BIG_BYTES + 1,
        }));
        assert_eq!(too_big.is_error, Some(true));
    }

    #[test]
    fn rich_has_every_kind_and_matching_structure() {
        let kit = Testkit::new(0);
        let result = kit.rich();
        assert_eq!(result.content.len(), 4);
        assert!(result.content[1].as_image().is_some());
        assert!(result.content[2].as_audio().is_some());
        assert!(result.content[3].as_resource().is_some());
        let summary: RichSummary =
            serde_json::from_value(result.structured_content.clone().unwrap_or_default())
                .expect("structured content matches RichSummary");
        assert_eq!(summary.answer, 42);
        let tool = kit.snapshot().get("rich").cloned().expect("rich tool");
        assert!(tool.output_schema.is_some());
        let wav = tiny_wav();
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(wav.len(), 52);
    }

    #[test]
    fn tool_names_are_validated() {
        assert!(valid_tool_name("my-tool_1.v2"));
        assert!(!valid_tool_name(""));
        assert!(!valid_tool_name("has space"));
        assert!(!valid_tool_name(&"x".repeat(65)));
    }

    #[test]
    fn clones_share_added_tools() {
        let kit = Testkit::new(0);
        let other = kit.clone();
        let route = echo_tool("dynamic".into()).expect("route");
        kit.router.write().expect("lock").add_route(route);
        assert!(other.snapshot().has_route("dynamic"));
    }
}
