//! The top level of the YAML file: its sections, and the server table shared with includes.
//!
//! `mcpServers` from the YAML file are read first, then each included file in order, so a
//! name defined twice is reported at its later definition and names the earlier one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::error::{child_path, shown};
use super::fields::Ctx;
use super::model::{Config, McpServerConfig};
use super::yaml::{Node, Pos, Value};
use super::{access, agents, approval, include, mcp_servers, models, outbound, settings};

const TOP_KEYS: &[&str] = &[
    "server",
    "tools",
    "models",
    "mcpServers",
    "include",
    "agents_dir",
    "roles",
    "users",
    "approval",
];

/// Reads the whole document; problems go to `ctx.errors` and the result is only meaningful
/// when none were recorded.
pub(super) fn build(ctx: &mut Ctx<'_>, root: &Node, source: &Path) -> Config {
    let mut servers = Servers::default();
    let mut config = Config {
        source: source.to_path_buf(),
        server: Default::default(),
        tools: Default::default(),
        mcp_servers: BTreeMap::new(),
        models: BTreeMap::new(),
        agents: BTreeMap::new(),
        roles: BTreeMap::new(),
        users: BTreeMap::new(),
        approval: Default::default(),
    };
    if !matches!(root.value, Value::Map(_) | Value::Null) {
        let message = format!(
            "expected a mapping with sections such as `mcpServers:` at the top level, found {}",
            root.value.describe()
        );
        ctx.error(root.pos, "", message);
        return config;
    }
    let Some(fields) = ctx.fields(root, "", TOP_KEYS) else {
        return config;
    };
    config.server = settings::server(ctx, fields.get("server"));
    config.tools = settings::tools(ctx, fields.get("tools"));
    // Remote URLs, here and in included files, are checked against `server.outbound`.
    servers.outbound = config.server.outbound.clone();
    if let Some(node) = fields.get("models") {
        config.models = models::models(ctx, node, &config.server.outbound);
    }
    // Servers' `sampling.model` must name one of these (unless a model entry was rejected).
    servers.models = Some(config.models.keys().cloned().collect()).filter(|_| {
        !ctx.errors
            .iter()
            .any(|e| agents::is_models_path(&e.key_path))
    });
    if let Some(node) = fields.get("mcpServers")
        && let Some(entries) = ctx.mapping(node, "mcpServers")
    {
        for entry in entries {
            if let Some(name) = ctx.key(entry, "mcpServers") {
                servers.add(ctx, name, entry.key.pos, &entry.value, "mcpServers");
            }
        }
    }
    if let Some(node) = fields.get("include") {
        let base = source.parent().unwrap_or(Path::new(""));
        include::include(ctx, node, base, &mut servers);
    }
    config.mcp_servers = servers.configs;
    config.agents = agents::agents(ctx, fields.get("agents_dir"), &config.models);
    config.roles = access::roles(ctx, fields.get("roles"));
    config.users = access::users(ctx, fields.get("users"));
    config.approval = approval::approval(ctx, fields.get("approval"));
    config
}

/// Where `sampling.model` is written in a server's entry.
fn sampling_model_pos(node: &Node) -> Option<Pos> {
    let Value::Map(entries) = &node.value else {
        return node.pos;
    };
    let sampling = entries
        .iter()
        .find(|e| e.key.scalar_text() == Some("sampling"))?;
    let Value::Map(fields) = &sampling.value.value else {
        return sampling.value.pos;
    };
    fields
        .iter()
        .find(|e| e.key.scalar_text() == Some("model"))
        .and_then(|e| e.value.pos)
}

/// Where a server was defined, for "already defined at" messages.
struct Place {
    file: PathBuf,
    pos: Option<Pos>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(pos) = self.pos {
            write!(f, ":{}:{}", pos.line, pos.column)?;
        }
        Ok(())
    }
}

/// Every server read so far, from any file, with where each name was first defined.
#[derive(Default)]
pub(super) struct Servers {
    configs: BTreeMap<String, McpServerConfig>,
    places: BTreeMap<String, Place>,
    /// The policy each remote server's URL must pass (`server.outbound`).
    outbound: crate::outbound::Policy,
    /// The configured model names, when that table is complete (no model entry rejected).
    models: Option<std::collections::BTreeSet<String>>,
}

impl Servers {
    /// Validates one `mcpServers` entry of the file `ctx` reads and adds it, unless its name
    /// was taken; the entry is checked either way so all its problems are reported.
    pub(super) fn add(
        &mut self,
        ctx: &mut Ctx<'_>,
        name: &str,
        name_pos: Option<Pos>,
        node: &Node,
        parent_path: &str,
    ) {
        let path = child_path(parent_path, name);
        let errors_before = ctx.errors.len();
        if let Some(earlier) = self.places.get(name) {
            ctx.error(
                name_pos,
                &path,
                format!(
                    "server{} is already defined at {earlier}; server names must be unique across the config and its included files",
                    shown(name)
                ),
            );
        } else {
            self.places.insert(
                name.to_owned(),
                Place {
                    file: ctx.file.to_path_buf(),
                    pos: name_pos,
                },
            );
        }
        let server = mcp_servers::server(ctx, name, name_pos, node, &path);
        if let Some(url) = server.as_ref().and_then(|s| s.transport.url()) {
            let url_path = child_path(&path, "url");
            outbound::check_url(ctx, &self.outbound, node, "url", &url_path, url);
        }
        if let Some(sampling) = server.as_ref().and_then(|s| s.client.sampling.as_ref())
            && let Some(models) = &self.models
            && !models.contains(&sampling.model)
        {
            let at = child_path(&child_path(&path, "sampling"), "model");
            let names: Vec<&str> = models.iter().map(String::as_str).collect();
            let message = if names.is_empty() {
                format!(
                    "unknown model{}; no models are configured (add them under `models:`)",
                    shown(&sampling.model)
                )
            } else {
                super::suggest::unknown("model", &sampling.model, &names)
            };
            ctx.error(sampling_model_pos(node), &at, message);
        }
        match server {
            Some(server) if ctx.errors.len() == errors_before => {
                self.configs.insert(name.to_owned(), server);
            }
            Some(_) => {}
            None if ctx.errors.len() > errors_before => {}
            None => ctx.error(
                name_pos,
                &path,
                "internal error: entry rejected without a reason",
            ),
        }
    }
}
