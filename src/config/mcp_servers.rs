//! One `mcpServers.<name>` entry: the Claude Desktop / Cursor object plus our additions.
//!
//! Works out the transport (explicit `type`, or inferred from `command` / `url`), rejects
//! fields that do not apply to it, and applies the per-server defaults. The same code reads
//! entries from the YAML file and from included JSON files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use url::Url;

use super::error::{child_path, item_path, shown};
use super::fields::{Ctx, Fields};
use super::model::{
    ClientFeatures, DEFAULT_SAMPLING_MAX_TOKENS, ElicitationPolicy, LogLevel, McpServerConfig,
    SamplingConfig, ToolFilter, TransportConfig, Trust,
};
use super::specs::{Millis, PLAIN_NAME, millis};
use super::suggest;
use super::yaml::{Node, Pos, Value};

/// Default `timeout_ms`.
pub(super) const DEFAULT_CALL_TIMEOUT_MS: u64 = 60_000;
/// Default `init_timeout_ms`.
pub(super) const DEFAULT_INIT_TIMEOUT_MS: u64 = 30_000;
/// Default `max_concurrency`.
pub(super) const DEFAULT_MAX_CONCURRENCY: u64 = 16;
/// Most calls in flight on one server.
const MAX_CONCURRENCY: u64 = 1024;
const CALL_TIMEOUT: Millis = Millis::timeout("timeout_ms", DEFAULT_CALL_TIMEOUT_MS);
const INIT_TIMEOUT: Millis = Millis::timeout("init_timeout_ms", DEFAULT_INIT_TIMEOUT_MS);

pub(super) const SERVER_KEYS: &[&str] = &[
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "type",
    "enabled",
    "disabled",
    "tools",
    "timeout_ms",
    "init_timeout_ms",
    "max_concurrency",
    "roots",
    "elicitation",
    "log_level",
    "sampling",
    "trusted",
];
const SAMPLING_KEYS: &[&str] = &["model", "max_tokens"];
const ELICITATION_NAMES: &[&str] = &["decline", "defaults"];
const TOOLS_KEYS: &[&str] = &["allow", "deny"];
const STDIO_ONLY: &[&str] = &["command", "args", "env", "cwd"];
const TYPE_NAMES: &[&str] = &["stdio", "sse", "streamable-http", "http", "streamableHttp"];

/// The transports, before their fields are assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stdio,
    Sse,
    StreamableHttp,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Stdio => "stdio",
            Kind::Sse => "sse",
            Kind::StreamableHttp => "streamable-http",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        match text {
            "stdio" => Some(Kind::Stdio),
            "sse" => Some(Kind::Sse),
            "streamable-http" | "http" | "streamableHttp" => Some(Kind::StreamableHttp),
            _ => None,
        }
    }
}

/// Reads one entry; `None` after recording at least one error.
pub(super) fn server(
    ctx: &mut Ctx<'_>,
    name: &str,
    name_pos: Option<Pos>,
    node: &Node,
    path: &str,
) -> Option<McpServerConfig> {
    let errors_before = ctx.errors.len();
    if !PLAIN_NAME.accepts(name) {
        ctx.error(
            name_pos,
            path,
            format!("invalid server name{}; {}", shown(name), PLAIN_NAME.rule()),
        );
    }
    if matches!(node.value, Value::Null) {
        ctx.error(
            name_pos,
            path,
            "empty server entry; give `command` (a local stdio server) or `url` (a remote server)",
        );
        return None;
    }
    let fields = ctx.fields(node, path, SERVER_KEYS)?;
    let field = |key: &str| child_path(path, key);

    let command = fields
        .get("command")
        .and_then(|n| ctx.non_empty_string(n, &field("command")));
    let args = fields
        .get("args")
        .and_then(|n| ctx.string_list(n, &field("args")));
    let env = fields
        .get("env")
        .and_then(|n| string_map(ctx, n, &field("env"), MapKind::Env));
    let cwd = fields
        .get("cwd")
        .and_then(|n| ctx.non_empty_string(n, &field("cwd")));
    let url = fields
        .get("url")
        .and_then(|n| remote_url(ctx, n, &field("url")));
    let headers = fields
        .get("headers")
        .and_then(|n| string_map(ctx, n, &field("headers"), MapKind::Headers));
    let explicit_kind = fields
        .get("type")
        .and_then(|n| transport_type(ctx, n, &field("type")));
    let enabled = enabled(ctx, &fields, path);
    let tools = fields
        .get("tools")
        .map(|n| tool_filter(ctx, n, &field("tools")));
    let call_timeout = millis(ctx, &fields, path, CALL_TIMEOUT);
    let init_timeout = millis(ctx, &fields, path, INIT_TIMEOUT);
    let max_concurrency = match fields.get("max_concurrency") {
        None => Some(DEFAULT_MAX_CONCURRENCY),
        Some(n) => ctx.integer(n, &field("max_concurrency"), 1, MAX_CONCURRENCY),
    };

    let client = client_features(ctx, &fields, path);
    let trusted = match fields.get("trusted") {
        None => Some(Trust::None),
        Some(n) => trust(ctx, n, &field("trusted")),
    };

    let kind = transport_kind(ctx, &fields, explicit_kind, url.as_ref(), name_pos, path);
    let transport = match kind? {
        Kind::Stdio => TransportConfig::Stdio {
            command: command?,
            args: args.unwrap_or_default(),
            env: env.unwrap_or_default(),
            cwd: cwd.map(PathBuf::from),
        },
        Kind::Sse => TransportConfig::Sse {
            url: url?,
            headers: headers.unwrap_or_default(),
        },
        Kind::StreamableHttp => TransportConfig::StreamableHttp {
            url: url?,
            headers: headers.unwrap_or_default(),
        },
    };
    let config = McpServerConfig {
        name: name.to_owned(),
        transport,
        enabled: enabled?,
        tools: tools.unwrap_or(Some(ToolFilter::default()))?,
        call_timeout: call_timeout?,
        init_timeout: init_timeout?,
        max_concurrency: usize::try_from(max_concurrency?).ok()?,
        client: client?,
        trusted: trusted?,
    };
    // Fields that failed but are not needed by the transport still invalidate the entry.
    (ctx.errors.len() == errors_before).then_some(config)
}

/// Decides the transport and reports fields that contradict it. `None` after an error.
///
/// Without `type`: `command` means stdio; `url` means streamable-http, or sse when the URL's
/// path ends in `/sse` (a trailing `/` and the query are ignored).
fn transport_kind(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    explicit: Option<Kind>,
    url: Option<&Url>,
    name_pos: Option<Pos>,
    path: &str,
) -> Option<Kind> {
    let has_command = fields.has("command");
    let has_url = fields.has("url");
    if let Some(type_node) = fields.get("type") {
        let kind = explicit?;
        let required = if kind == Kind::Stdio {
            "command"
        } else {
            "url"
        };
        let mut ok = true;
        if !fields.has(required) && !fields.misspelled(required) {
            ctx.error(
                type_node.pos,
                &child_path(path, "type"),
                format!("`type: {}` requires `{required}`", kind.name()),
            );
            ok = false;
        }
        ok &= reject_inapplicable(ctx, fields, kind, path);
        return ok.then_some(kind);
    }
    if has_command && has_url {
        let at = fields.entry("url").and_then(|e| e.key.pos);
        ctx.error(
            at,
            path,
            "both `command` and `url` are given; use `command` for a local stdio server or `url` for a remote one",
        );
        return None;
    }
    let kind = if has_command {
        Kind::Stdio
    } else if has_url {
        let Some(url) = url else {
            // The unusable URL was already reported; still check the other fields.
            reject_inapplicable(ctx, fields, Kind::StreamableHttp, path);
            return None;
        };
        if url.path().trim_end_matches('/').ends_with("/sse") {
            Kind::Sse
        } else {
            Kind::StreamableHttp
        }
    } else if fields.misspelled("command") || fields.misspelled("url") {
        // "unknown key `comand` (did you mean `command`?)" already says it.
        return None;
    } else {
        ctx.error(
            name_pos.or(fields.pos),
            path,
            "missing `command` (to run a local stdio server) or `url` (to connect to a remote server)",
        );
        return None;
    };
    reject_inapplicable(ctx, fields, kind, path).then_some(kind)
}

/// Reports each field that does not apply to `kind`; `false` if there was one.
fn reject_inapplicable(ctx: &mut Ctx<'_>, fields: &Fields<'_>, kind: Kind, path: &str) -> bool {
    let (wrong, applies_to): (&[&str], &str) = match kind {
        Kind::Stdio => (&["url", "headers"], "remote servers (sse, streamable-http)"),
        Kind::Sse | Kind::StreamableHttp => (STDIO_ONLY, "stdio servers"),
    };
    let mut ok = true;
    for key in wrong {
        if let Some(entry) = fields.entry(key) {
            let message = format!("`{key}` only applies to {applies_to}");
            ctx.error(entry.key.pos, &child_path(path, key), message);
            ok = false;
        }
    }
    ok
}

fn transport_type(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Kind> {
    let text = ctx.string(node, path)?;
    let kind = Kind::parse(&text);
    if kind.is_none() {
        ctx.error(
            node.pos,
            path,
            suggest::unknown("transport type", &text, TYPE_NAMES),
        );
    }
    kind
}

/// An absolute http(s) URL. The URL itself is never echoed: it may carry a token.
fn remote_url(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Url> {
    let text = ctx.string(node, path)?;
    match Url::parse(text.trim()) {
        Err(e) => {
            ctx.error(node.pos, path, format!("not a valid URL ({e})"));
            None
        }
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            ctx.error(
                node.pos,
                path,
                format!(
                    "URL scheme must be http or https, found{}",
                    shown(url.scheme())
                ),
            );
            None
        }
        Ok(url) => Some(url),
    }
}

/// `roots`, `elicitation` and `log_level`: what the hub offers the server as its client.
fn client_features(ctx: &mut Ctx<'_>, fields: &Fields<'_>, path: &str) -> Option<ClientFeatures> {
    let errors_before = ctx.errors.len();
    let mut features = ClientFeatures::default();
    if let Some(node) = fields.get("roots") {
        let roots_path = child_path(path, "roots");
        let items: &[Node] = match &node.value {
            Value::Seq(items) => items,
            _ => &[],
        };
        if let Some(list) = ctx.string_list(node, &roots_path) {
            for (i, root) in list.into_iter().enumerate() {
                let root = PathBuf::from(root);
                if root.is_absolute() {
                    features.roots.push(root);
                } else {
                    ctx.error(
                        items.get(i).and_then(|n| n.pos),
                        &item_path(&roots_path, i),
                        "a root must be an absolute directory path (it is sent as a file:// URI)",
                    );
                }
            }
        }
    }
    if let Some(node) = fields.get("elicitation") {
        let at = child_path(path, "elicitation");
        if let Some(text) = ctx.string(node, &at) {
            match text.as_str() {
                "decline" => features.elicitation = ElicitationPolicy::Decline,
                "defaults" => features.elicitation = ElicitationPolicy::Defaults,
                other => ctx.error(
                    node.pos,
                    &at,
                    suggest::unknown("elicitation policy", other, ELICITATION_NAMES),
                ),
            }
        }
    }
    if let Some(node) = fields.get("log_level") {
        let at = child_path(path, "log_level");
        if let Some(text) = ctx.string(node, &at) {
            match LogLevel::ALL.iter().find(|(_, name)| *name == text) {
                Some((level, _)) => features.log_level = Some(*level),
                None => {
                    let names: Vec<&str> = LogLevel::ALL.iter().map(|(_, n)| *n).collect();
                    ctx.error(node.pos, &at, suggest::unknown("log level", &text, &names));
                }
            }
        }
    }
    if let Some(node) = fields.get("sampling") {
        features.sampling = sampling(ctx, node, &child_path(path, "sampling"));
    }
    (ctx.errors.len() == errors_before).then_some(features)
}

/// `sampling: {model, max_tokens}`. That `model` names an entry of `models:` is checked by the
/// caller, which knows the models.
fn sampling(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<SamplingConfig> {
    let fields = ctx.fields(node, path, SAMPLING_KEYS)?;
    let model_path = child_path(path, "model");
    let Some(model_node) = fields.get("model") else {
        ctx.error(
            node.pos,
            &model_path,
            "missing: the model (a name under `models:`) that serves this server's sampling requests",
        );
        return None;
    };
    let model = ctx.non_empty_string(model_node, &model_path)?;
    let max_tokens = match fields.get("max_tokens") {
        Some(n) => {
            u32::try_from(ctx.integer(n, &child_path(path, "max_tokens"), 1, 1_000_000)?).ok()?
        }
        None => DEFAULT_SAMPLING_MAX_TOKENS,
    };
    Some(SamplingConfig { model, max_tokens })
}

/// `trusted: true | false | annotations`.
fn trust(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Trust> {
    if node.scalar_text() == Some("annotations") {
        return Some(Trust::Annotations);
    }
    match &node.value {
        Value::Bool(..) => Some(if ctx.boolean(node, path)? {
            Trust::Full
        } else {
            Trust::None
        }),
        _ => {
            ctx.expected(node, path, "true, false or `annotations`");
            None
        }
    }
}

/// `enabled` and its inverse `disabled` (Cline / Cursor spelling); contradictions are errors.
fn enabled(ctx: &mut Ctx<'_>, fields: &Fields<'_>, path: &str) -> Option<bool> {
    let enabled = fields
        .get("enabled")
        .map(|n| ctx.boolean(n, &child_path(path, "enabled")));
    let disabled = fields
        .get("disabled")
        .map(|n| ctx.boolean(n, &child_path(path, "disabled")));
    match (enabled, disabled) {
        (None, None) => Some(true),
        (Some(e), None) => e,
        (None, Some(d)) => d.map(|d| !d),
        (Some(e), Some(d)) => {
            let (e, d) = (e?, d?);
            if e == d {
                let at = fields.entry("disabled").and_then(|e| e.key.pos);
                ctx.error(
                    at,
                    &child_path(path, "disabled"),
                    format!("`disabled: {d}` contradicts `enabled: {e}`; keep only one of them"),
                );
                None
            } else {
                Some(e)
            }
        }
    }
}

/// `tools: {allow: [glob], deny: [glob]}`; every glob must compile.
fn tool_filter(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<ToolFilter> {
    let fields = ctx.fields(node, path, TOOLS_KEYS)?;
    let mut globs = |key: &str| -> Option<Vec<String>> {
        let Some(node) = fields.get(key) else {
            return Some(Vec::new());
        };
        let list_path = child_path(path, key);
        let list = ctx.string_list(node, &list_path)?;
        let items: &[Node] = match &node.value {
            Value::Seq(items) => items,
            _ => &[],
        };
        let mut ok = true;
        for (i, glob) in list.iter().enumerate() {
            if let Err(e) = globset::Glob::new(glob) {
                let pos = items.get(i).and_then(|n| n.pos);
                ctx.error(
                    pos,
                    &item_path(&list_path, i),
                    format!("invalid glob{}: {}", shown(glob), e.kind()),
                );
                ok = false;
            }
        }
        ok.then_some(list)
    };
    let allow = globs("allow");
    let deny = globs("deny");
    Some(ToolFilter {
        allow: allow?,
        deny: deny?,
    })
}

/// Which rules [`string_map`] applies to names and values.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum MapKind {
    Env,
    Headers,
}

/// `env:` or `headers:`: names to string values. Values are secrets: errors name the key only.
pub(super) fn string_map(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    kind: MapKind,
) -> Option<BTreeMap<String, String>> {
    let entries = ctx.mapping(node, path)?;
    let mut map = BTreeMap::new();
    let mut ok = true;
    for entry in entries {
        let Some(key) = ctx.key(entry, path) else {
            ok = false;
            continue;
        };
        let key_path = child_path(path, key);
        let name_problem = match kind {
            MapKind::Env if key.is_empty() || key.contains(['=', '\0']) => {
                Some("invalid environment variable name; it must be non-empty without `=` or NUL")
            }
            MapKind::Headers if !is_header_name(key) => {
                Some("invalid header name; use letters, digits and !#$%&'*+-.^_`|~")
            }
            _ => None,
        };
        if let Some(problem) = name_problem {
            ctx.error(entry.key.pos, &key_path, problem);
            ok = false;
        }
        let Some(value) = ctx.string(&entry.value, &key_path) else {
            ok = false;
            continue;
        };
        let value_problem = match kind {
            MapKind::Env if value.contains('\0') => Some("the value contains a NUL character"),
            MapKind::Headers if value.chars().any(|c| c.is_control() && c != '\t') => {
                Some("the value contains a line break or control character")
            }
            _ => None,
        };
        if let Some(problem) = value_problem {
            ctx.error(entry.value.pos, &key_path, problem);
            ok = false;
        }
        map.insert(key.to_owned(), value);
    }
    ok.then_some(map)
}

/// RFC 9110 token characters.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::config::{Config, load_str};

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("3000".to_owned()),
            "T" => Some("1500".to_owned()),
            _ => None,
        }
    }

    /// Loads one server written under `mcpServers:` (each line indented by the caller) and
    /// compares the error lines (empty: must load).
    #[track_caller]
    fn check(servers: &str, expected: &[&str]) -> Option<Config> {
        let text = format!("mcpServers:\n{servers}");
        match load_str(&text, Path::new("t.yaml"), &env) {
            Ok(config) => {
                assert!(expected.is_empty(), "loaded, but expected {expected:#?}");
                Some(config)
            }
            Err(errors) => {
                let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
                assert_eq!(lines, expected, "\n{errors}");
                None
            }
        }
    }

    #[track_caller]
    fn server(servers: &str, name: &str) -> McpServerConfig {
        match check(servers, &[]) {
            Some(mut config) => config.mcp_servers.remove(name).expect("server present"),
            None => unreachable!(),
        }
    }

    #[track_caller]
    fn kind_of(servers: &str) -> &'static str {
        server(servers, "s").transport.kind()
    }

    #[test]
    fn claude_desktop_entry_with_defaults() {
        let s = server(
            "  s:\n    command: npx\n    args: [-y, '@modelcontextprotocol/server-everything']\n    env:\n      PORT: 3000\n      DEBUG: true\n",
            "s",
        );
        assert_eq!(s.name, "s");
        assert!(s.enabled);
        assert_eq!(s.tools, ToolFilter::default());
        assert_eq!(s.call_timeout, Duration::from_secs(60));
        assert_eq!(s.init_timeout, Duration::from_secs(30));
        assert_eq!(s.max_concurrency, 16);
        let TransportConfig::Stdio {
            command,
            args,
            env,
            cwd,
        } = s.transport
        else {
            panic!("stdio expected")
        };
        assert_eq!(command, "npx");
        assert_eq!(args, ["-y", "@modelcontextprotocol/server-everything"]);
        assert_eq!(env["PORT"], "3000");
        assert_eq!(env["DEBUG"], "true");
        assert_eq!(cwd, None);
    }

    #[test]
    fn our_additions_are_read() {
        let s = server(
            "  s:\n    command: x\n    cwd: /srv\n    enabled: false\n    tools:\n      allow: ['read_*', 'list_?']\n      deny: ['*delete*']\n    timeout_ms: ${T}\n    init_timeout_ms: '2000'\n    max_concurrency: 1024\n",
            "s",
        );
        assert!(!s.enabled);
        assert_eq!(s.tools.allow, ["read_*", "list_?"]);
        assert_eq!(s.tools.deny, ["*delete*"]);
        assert_eq!(s.call_timeout, Duration::from_millis(1500));
        assert_eq!(s.init_timeout, Duration::from_millis(2000));
        assert_eq!(s.max_concurrency, 1024);
        assert!(
            matches!(s.transport, TransportConfig::Stdio { cwd: Some(ref c), .. } if c == Path::new("/srv"))
        );
    }

    #[test]
    fn transport_inference() {
        assert_eq!(kind_of("  s: {command: x}\n"), "stdio");
        assert_eq!(kind_of("  s: {url: 'http://h/mcp'}\n"), "streamable-http");
        assert_eq!(kind_of("  s: {url: 'https://h/v1/sse'}\n"), "sse");
        assert_eq!(kind_of("  s: {url: 'https://h/sse/'}\n"), "sse");
        assert_eq!(kind_of("  s: {url: 'https://h/sse?key=1'}\n"), "sse");
        assert_eq!(kind_of("  s: {url: 'https://h/ssex'}\n"), "streamable-http");
        assert_eq!(kind_of("  s: {url: 'http://h:${PORT}/sse'}\n"), "sse");
    }

    #[test]
    fn explicit_types_and_aliases() {
        assert_eq!(kind_of("  s: {type: stdio, command: x}\n"), "stdio");
        assert_eq!(kind_of("  s: {type: sse, url: 'http://h/events'}\n"), "sse");
        for alias in ["streamable-http", "http", "streamableHttp"] {
            let servers = format!("  s: {{type: {alias}, url: 'http://h/sse'}}\n");
            assert_eq!(kind_of(&servers), "streamable-http", "{alias}");
        }
        let s = server(
            "  s:\n    type: sse\n    url: https://h/sse\n    headers: {Authorization: Bearer x}\n",
            "s",
        );
        assert!(
            matches!(s.transport, TransportConfig::Sse { ref headers, .. } if headers["Authorization"] == "Bearer x")
        );
    }

    #[test]
    fn unknown_type_suggests() {
        check(
            "  s:\n    type: streamable_http\n    url: http://h/mcp\n",
            &[
                "t.yaml:3:11: mcpServers.s.type: unknown transport type `streamable_http` (did you mean `streamable-http`?); expected one of: stdio, sse, streamable-http, http, streamableHttp",
            ],
        );
    }

    #[test]
    fn command_and_url_conflicts() {
        check(
            "  s:\n    command: x\n    url: http://h/mcp\n",
            &[
                "t.yaml:4:5: mcpServers.s: both `command` and `url` are given; use `command` for a local stdio server or `url` for a remote one",
            ],
        );
        check(
            "  s:\n    args: [a]\n",
            &[
                "t.yaml:2:3: mcpServers.s: missing `command` (to run a local stdio server) or `url` (to connect to a remote server)",
            ],
        );
        check(
            "  s:\n",
            &[
                "t.yaml:2:3: mcpServers.s: empty server entry; give `command` (a local stdio server) or `url` (a remote server)",
            ],
        );
    }

    #[test]
    fn a_misspelled_command_is_reported_once() {
        for servers in [
            "  s:\n    comand: x\n",
            "  s:\n    type: stdio\n    comand: x\n",
        ] {
            let line = servers.lines().count() + 1;
            let expected = format!(
                "t.yaml:{line}:5: mcpServers.s.comand: unknown key `comand` (did you mean `command`?); expected one of: {}",
                SERVER_KEYS.join(", ")
            );
            check(servers, &[expected.as_str()]);
        }
    }

    #[test]
    fn fields_that_do_not_apply_to_the_transport() {
        check(
            "  s:\n    command: x\n    headers: {A: b}\n",
            &[
                "t.yaml:4:5: mcpServers.s.headers: `headers` only applies to remote servers (sse, streamable-http)",
            ],
        );
        check(
            "  s:\n    url: http://h/mcp\n    args: [a]\n    env: {A: b}\n    cwd: /tmp\n",
            &[
                "t.yaml:4:5: mcpServers.s.args: `args` only applies to stdio servers",
                "t.yaml:5:5: mcpServers.s.env: `env` only applies to stdio servers",
                "t.yaml:6:5: mcpServers.s.cwd: `cwd` only applies to stdio servers",
            ],
        );
        check(
            "  s:\n    type: sse\n    command: x\n",
            &[
                "t.yaml:3:11: mcpServers.s.type: `type: sse` requires `url`",
                "t.yaml:4:5: mcpServers.s.command: `command` only applies to stdio servers",
            ],
        );
        check(
            "  s:\n    type: stdio\n    url: http://h/mcp\n",
            &[
                "t.yaml:3:11: mcpServers.s.type: `type: stdio` requires `command`",
                "t.yaml:4:5: mcpServers.s.url: `url` only applies to remote servers (sse, streamable-http)",
            ],
        );
        // A bad URL is reported and the other fields are still checked.
        check(
            "  s:\n    url: ://nope\n    args: [a]\n",
            &[
                "t.yaml:3:10: mcpServers.s.url: not a valid URL (relative URL without a base)",
                "t.yaml:4:5: mcpServers.s.args: `args` only applies to stdio servers",
            ],
        );
    }

    #[test]
    fn urls_must_be_absolute_http() {
        check(
            "  a: {url: /mcp}\n  b: {url: 'ws://h/mcp'}\n  c: {url: 'http://'}\n",
            &[
                "t.yaml:2:12: mcpServers.a.url: not a valid URL (relative URL without a base)",
                "t.yaml:3:12: mcpServers.b.url: URL scheme must be http or https, found `ws`",
                "t.yaml:4:12: mcpServers.c.url: not a valid URL (empty host)",
            ],
        );
    }

    #[test]
    fn enabled_and_disabled() {
        assert!(!server("  s: {command: x, disabled: true}\n", "s").enabled);
        assert!(server("  s: {command: x, disabled: false}\n", "s").enabled);
        assert!(server("  s: {command: x, enabled: true, disabled: false}\n", "s").enabled);
        assert!(!server("  s: {command: x, enabled: 'false'}\n", "s").enabled);
        check(
            "  s:\n    command: x\n    enabled: true\n    disabled: true\n",
            &[
                "t.yaml:5:5: mcpServers.s.disabled: `disabled: true` contradicts `enabled: true`; keep only one of them",
            ],
        );
        check(
            "  s:\n    command: x\n    enabled: yes please\n",
            &["t.yaml:4:14: mcpServers.s.enabled: expected true or false, found a string"],
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(PLAIN_NAME.accepts("a.b-c_D9"));
        assert!(PLAIN_NAME.accepts(&"a".repeat(64)));
        assert!(!PLAIN_NAME.accepts(&"a".repeat(65)));
        assert!(!PLAIN_NAME.accepts(""));
        assert!(!PLAIN_NAME.accepts("a b"));
        assert!(!PLAIN_NAME.accepts("é"));
        check(
            "  'my server': {command: x}\n",
            &[
                "t.yaml:2:3: mcpServers[\"my server\"]: invalid server name `my server`; use 1 to 64 characters from A-Z, a-z, 0-9, `_`, `.` and `-`",
            ],
        );
        check(
            "  ? [a]\n  : {command: x}\n",
            &["t.yaml:2:5: mcpServers: expected a string key, found a list"],
        );
    }

    #[test]
    fn client_features() {
        let s = server(
            "  s:\n    command: x\n    roots: [/srv/a, /srv/b]\n    elicitation: defaults\n    log_level: warning\n",
            "s",
        );
        assert_eq!(
            s.client.roots,
            [PathBuf::from("/srv/a"), PathBuf::from("/srv/b")]
        );
        assert_eq!(s.client.elicitation, ElicitationPolicy::Defaults);
        assert_eq!(s.client.log_level, Some(LogLevel::Warning));
        let s = server("  s:\n    command: x\n", "s");
        assert_eq!(s.client, ClientFeatures::default());
        check(
            "  s:\n    command: x\n    roots: [relative/dir]\n    elicitation: ask\n    log_level: verbose\n",
            &[
                "t.yaml:4:13: mcpServers.s.roots[0]: a root must be an absolute directory path (it is sent as a file:// URI)",
                "t.yaml:5:18: mcpServers.s.elicitation: unknown elicitation policy `ask`; expected one of: decline, defaults",
                "t.yaml:6:16: mcpServers.s.log_level: unknown log level `verbose`; expected one of: debug, info, notice, warning, error, critical, alert, emergency",
            ],
        );
    }

    #[test]
    fn sampling_names_a_configured_model() {
        let models = "models:\n  - name: small\n    type: openai\n    base_url: http://127.0.0.1:9/v1\n    model_name: s\n";
        let load = |servers: &str| {
            load_str(
                &format!("{models}mcpServers:\n{servers}"),
                Path::new("t.yaml"),
                &env,
            )
        };
        let config = load("  s:\n    command: x\n    sampling: {model: small}\n").expect("loads");
        assert_eq!(
            config.mcp_servers["s"].client.sampling,
            Some(SamplingConfig {
                model: "small".to_owned(),
                max_tokens: DEFAULT_SAMPLING_MAX_TOKENS,
            })
        );
        assert_eq!(
            config.mcp_servers["s"]
                .client
                .sampling
                .as_ref()
                .map(|s| s.max_tokens),
            Some(1024)
        );
        let errors = load(
            "  s:\n    command: x\n    sampling: {model: smal, max_tokens: 0}\n  t:\n    command: x\n    sampling: {max_tokens: 5}\n  u:\n    command: x\n    sampling: {model: small}\n",
        )
        .expect_err("bad sampling");
        let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "t.yaml:9:41: mcpServers.s.sampling.max_tokens: must be between 1 and 1000000, found 0",
                "t.yaml:12:15: mcpServers.t.sampling.model: missing: the model (a name under `models:`) that serves this server's sampling requests",
            ],
            "\n{errors}"
        );
        let errors =
            load("  s:\n    command: x\n    sampling: {model: smal}\n").expect_err("unknown");
        assert_eq!(
            errors.0[0].to_string(),
            "t.yaml:9:23: mcpServers.s.sampling.model: unknown model `smal` (did you mean `small`?); expected one of: small"
        );
    }

    #[test]
    fn numeric_limits() {
        check(
            "  s:\n    command: x\n    timeout_ms: 0\n    init_timeout_ms: 86400001\n    max_concurrency: 0\n",
            &[
                "t.yaml:4:17: mcpServers.s.timeout_ms: must be between 1 and 86400000, found 0",
                "t.yaml:5:22: mcpServers.s.init_timeout_ms: must be between 1 and 86400000, found 86400001",
                "t.yaml:6:22: mcpServers.s.max_concurrency: must be between 1 and 1024, found 0",
            ],
        );
        check(
            "  s:\n    command: x\n    max_concurrency: 1025\n    timeout_ms: ${NOPE:-abc}\n",
            &[
                "t.yaml:4:22: mcpServers.s.max_concurrency: must be between 1 and 1024, found 1025",
                "t.yaml:5:17: mcpServers.s.timeout_ms: expected an integer between 1 and 86400000, found a string",
            ],
        );
    }

    #[test]
    fn args_and_env_shapes() {
        check(
            "  s:\n    command: x\n    args: --verbose\n    env: [A]\n",
            &[
                "t.yaml:4:11: mcpServers.s.args: expected a list of strings, found a string",
                "t.yaml:5:10: mcpServers.s.env: expected a mapping, found a list",
            ],
        );
        check(
            "  s:\n    command: ''\n    env:\n      A:\n      '': b\n",
            &[
                "t.yaml:3:14: mcpServers.s.command: must not be empty",
                "t.yaml:5:8: mcpServers.s.env.A: expected a string, found null",
                "t.yaml:6:7: mcpServers.s.env[\"\"]: invalid environment variable name; it must be non-empty without `=` or NUL",
            ],
        );
    }

    #[test]
    fn tool_globs_must_compile() {
        check(
            "  s:\n    command: x\n    tools:\n      allow: ['ok_*', 'bad[']\n      deny: '*'\n      only: [x]\n",
            &[
                "t.yaml:5:23: mcpServers.s.tools.allow[1]: invalid glob `bad[`: unclosed character class; missing ']'",
                "t.yaml:6:13: mcpServers.s.tools.deny: expected a list of strings, found a string",
                "t.yaml:7:7: mcpServers.s.tools.only: unknown key `only`; expected one of: allow, deny",
            ],
        );
    }
}
