//! The `server:` and `tools:` sections: listen address, data directory and catalog limits.
//!
//! Each field falls back to its documented default when absent; an invalid field is reported
//! and also replaced by its default so the rest of the file is still checked.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::error::{child_path, shown};
use super::fields::Ctx;
use super::model::{ServerSettings, ToolSettings};
use super::yaml::Node;

/// Default `server.bind`.
pub(super) const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Default `server.data_dir`.
pub(super) const DEFAULT_DATA_DIR: &str = "./data";
/// Default `tools.max_result_bytes` (256 KiB).
pub(super) const DEFAULT_MAX_RESULT_BYTES: usize = 256 * 1024;
/// Default `tools.max_tools_per_server`.
pub(super) const DEFAULT_MAX_TOOLS_PER_SERVER: usize = 256;
/// Default `tools.max_description_chars`.
pub(super) const DEFAULT_MAX_DESCRIPTION_CHARS: usize = 2048;

const SERVER_KEYS: &[&str] = &[
    "bind",
    "data_dir",
    "database_url",
    "run_lease_ms",
    "public_hosts",
    "allowed_origins",
    "max_messages",
    "max_message_chars",
    "max_body_bytes",
    "auth",
    "outbound",
];
const TOOLS_KEYS: &[&str] = &[
    "max_result_bytes",
    "max_tools_per_server",
    "max_description_chars",
    "max_argument_bytes",
    "drop_steering",
];

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database_url: None,
            run_lease: super::model::DEFAULT_RUN_LEASE,
            public_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_messages: super::model::DEFAULT_MAX_MESSAGES,
            max_message_chars: super::model::DEFAULT_MAX_MESSAGE_CHARS,
            max_body_bytes: super::model::DEFAULT_MAX_BODY_BYTES,
            auth: super::model::AuthMode::None,
            outbound: crate::outbound::Policy::default(),
        }
    }
}

impl Default for ToolSettings {
    fn default() -> Self {
        ToolSettings {
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
            max_tools_per_server: DEFAULT_MAX_TOOLS_PER_SERVER,
            max_description_chars: DEFAULT_MAX_DESCRIPTION_CHARS,
            max_argument_bytes: super::model::DEFAULT_MAX_ARGUMENT_BYTES,
            drop_steering: false,
        }
    }
}

/// Reads `server:`; `None` (absent section) gives the defaults.
pub(super) fn server(ctx: &mut Ctx<'_>, node: Option<&Node>) -> ServerSettings {
    let mut settings = ServerSettings::default();
    let Some(fields) = node.and_then(|n| ctx.fields(n, "server", SERVER_KEYS)) else {
        return settings;
    };
    if let Some(node) = fields.get("bind") {
        let path = child_path("server", "bind");
        if let Some(text) = ctx.string(node, &path) {
            match text.trim().parse::<SocketAddr>() {
                Ok(addr) => settings.bind = addr,
                Err(_) => ctx.error(
                    node.pos,
                    &path,
                    format!(
                        "not a valid socket address{}; expected IP:PORT such as {DEFAULT_BIND} or [::1]:8080 (host names are not resolved)",
                        shown(&text)
                    ),
                ),
            }
        }
    }
    if let Some(node) = fields.get("data_dir") {
        let path = child_path("server", "data_dir");
        if let Some(text) = ctx.non_empty_string(node, &path) {
            settings.data_dir = PathBuf::from(text);
        }
    }
    if let Some(node) = fields.get("database_url") {
        let path = child_path("server", "database_url");
        if let Some(text) = ctx.string(node, &path) {
            let text = text.trim();
            if text.is_empty() {
                // `${SWITCHBOARD_DATABASE_URL:-}` with the variable unset: the SQLite default.
            } else if text.starts_with("sqlite:")
                || text.starts_with("postgres://")
                || text.starts_with("postgresql://")
            {
                settings.database_url = Some(text.to_owned());
            } else {
                // The URL may hold a password: name the accepted schemes, never echo it.
                ctx.error(
                    node.pos,
                    &path,
                    "expected a `sqlite:` or `postgres://` URL".to_owned(),
                );
            }
        }
    }
    if let Some(node) = fields.get("run_lease_ms")
        && let Some(ms) = ctx.integer(
            node,
            &child_path("server", "run_lease_ms"),
            1_000,
            3_600_000,
        )
    {
        settings.run_lease = std::time::Duration::from_millis(ms);
    }
    let mut cap = |key: &str, max: u64, target: &mut usize| {
        if let Some(node) = fields.get(key)
            && let Some(n) = ctx.integer(node, &child_path("server", key), 1, max)
            && let Ok(n) = usize::try_from(n)
        {
            *target = n;
        }
    };
    cap("max_messages", 100_000, &mut settings.max_messages);
    cap(
        "max_message_chars",
        10_000_000,
        &mut settings.max_message_chars,
    );
    cap("max_body_bytes", 1 << 30, &mut settings.max_body_bytes);
    if settings.max_body_bytes < 1024
        && let Some(node) = fields.get("max_body_bytes")
    {
        ctx.error(
            node.pos,
            &child_path("server", "max_body_bytes"),
            format!("must be at least 1024, found {}", settings.max_body_bytes),
        );
        settings.max_body_bytes = super::model::DEFAULT_MAX_BODY_BYTES;
    }
    if let Some(node) = fields.get("auth") {
        let path = child_path("server", "auth");
        if let Some(text) = ctx.string(node, &path) {
            match text.trim() {
                "none" => settings.auth = super::model::AuthMode::None,
                "keys" => settings.auth = super::model::AuthMode::Keys,
                _ => ctx.error(
                    node.pos,
                    &path,
                    format!("expected `none` or `keys`{}", shown(&text)),
                ),
            }
        }
    }
    if let Some(node) = fields.get("outbound") {
        settings.outbound = super::outbound::outbound(ctx, node);
    }
    if let Some(node) = fields.get("public_hosts") {
        settings.public_hosts = checked_list(ctx, node, "public_hosts", host_problem);
    }
    if let Some(node) = fields.get("allowed_origins") {
        settings.allowed_origins = checked_list(ctx, node, "allowed_origins", origin_problem);
    }
    settings
}

/// A list of strings under `server.KEY`, each checked by `problem` (which says what is wrong
/// with a bad one); the good ones, lower-cased.
fn checked_list(
    ctx: &mut Ctx<'_>,
    node: &Node,
    key: &str,
    problem: fn(&str) -> Option<&'static str>,
) -> Vec<String> {
    let path = child_path("server", key);
    let Some(items) = ctx.string_list(node, &path) else {
        return Vec::new();
    };
    let mut good = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item = item.trim();
        if item.is_empty() {
            ctx.error(node.pos, &format!("{path}[{i}]"), "must not be empty");
            continue;
        }
        match problem(item) {
            Some(why) => ctx.error(
                node.pos,
                &format!("{path}[{i}]"),
                format!("{why}{}", shown(item)),
            ),
            None => good.push(item.to_ascii_lowercase()),
        }
    }
    good
}

/// What is wrong with a `server.public_hosts` entry: a bare host name or IP address.
fn host_problem(host: &str) -> Option<&'static str> {
    let valid = !host.is_empty()
        && host.len() <= 253
        && (host.parse::<std::net::IpAddr>().is_ok()
            || host.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    (!valid).then_some("expected a host name or IP address without scheme, port or path")
}

/// What is wrong with a `server.allowed_origins` entry: `http(s)://host[:port]`, nothing more.
fn origin_problem(origin: &str) -> Option<&'static str> {
    const EXPECTED: &str =
        "expected an origin such as https://tools.example.com (http or https, no path)";
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return Some(EXPECTED);
    };
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, tail)) => (host, Some(tail.strip_prefix(':').unwrap_or(""))),
            None => return Some(EXPECTED),
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    (host_problem(host).is_some() || !port_ok).then_some(EXPECTED)
}

/// Reads `tools:`; `None` (absent section) gives the defaults.
pub(super) fn tools(ctx: &mut Ctx<'_>, node: Option<&Node>) -> ToolSettings {
    let mut settings = ToolSettings::default();
    let Some(fields) = node.and_then(|n| ctx.fields(n, "tools", TOOLS_KEYS)) else {
        return settings;
    };
    let mut limit = |key: &str, max: u64, target: &mut usize| {
        if let Some(node) = fields.get(key)
            && let Some(n) = ctx.integer(node, &child_path("tools", key), 1, max)
            && let Ok(n) = usize::try_from(n)
        {
            *target = n;
        }
    };
    limit("max_result_bytes", 1 << 30, &mut settings.max_result_bytes);
    limit(
        "max_tools_per_server",
        65_536,
        &mut settings.max_tools_per_server,
    );
    limit(
        "max_description_chars",
        1 << 20,
        &mut settings.max_description_chars,
    );
    limit(
        "max_argument_bytes",
        1 << 30,
        &mut settings.max_argument_bytes,
    );
    if let Some(node) = fields.get("drop_steering")
        && let Some(drop) = ctx.boolean(node, &child_path("tools", "drop_steering"))
    {
        settings.drop_steering = drop;
    }
    settings
}
