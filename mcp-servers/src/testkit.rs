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
//!   - anything else: a warning on stderr, then behave.
//! - `SWITCHBOARD_TESTKIT_TOOLS=N`: add N trivial tools `t000`, `t001`, … (at least
//!   three digits; at most 10000 tools) that return their own name, for catalog-cap
//!   tests.
//!
//! The tool list lives in an `Arc<RwLock<ToolRouter>>` shared by every clone of the
//! handler, so tools added at runtime survive the per-request handler instances of
//! stateless HTTP. `list_tools`/`call_tool` work on a snapshot (a cheap clone of a map
//! of `Arc`s), so no lock is held across an `.await`.

use std::{
    io::Write as _,
    sync::{Arc, RwLock},
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
        }
    }

    /// A testkit configured from `SWITCHBOARD_TESTKIT_TOOLS` (see the module docs).
    pub fn from_env() -> Self {
        let extra = std::env::var(TOOLS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        Self::new(extra)
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
    let mode = std::env::var(MODE_ENV).unwrap_or_default();
    match mode.trim() {
        "" | "normal" => true,
        "never-init" => {
            let mut stdin = tokio::io::stdin();
            let _ = tokio::io::copy(&mut stdin, &mut tokio::io::sink()).await;
            false
        }
        "flood" => {
            let _ = tokio::task::spawn_blocking(flood_stdout).await;
            false
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

/// Write `x` to stdout, never a newline, until the reader closes the pipe (EPIPE; Rust ignores
/// SIGPIPE).
fn flood_stdout() {
    let chunk = vec![b'x'; 64 * 1024];
    let mut stdout = std::io::stdout().lock();
    while stdout.write_all(&chunk).is_ok() {}
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
