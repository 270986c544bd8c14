//! Agent files: `agents/*.yaml`, one agent per file, read after `models:` so `model` can be
//! checked against it.
//!
//! The directory is the top-level `agents_dir` (default `./agents`). Like `server.data_dir`, a
//! relative path is taken from the working directory, which is the repository root under `cargo
//! run`. Files ending in `.yaml` or `.yml` are read in name order; hidden files and other names
//! are skipped and subdirectories are not searched. A missing default directory means no
//! agents; a missing directory that `agents_dir` names is an error.
//!
//! Each file is read with the same readers as the main config, so its errors carry the agent
//! file's path, line and key path and are reported together with everything else. `${VAR}` is
//! expanded in every value except `system_prompt` and `description`: those are prose, where `$`
//! and `${` are ordinary text and expanding them would be a surprise.
//!
//! Nothing here knows the tool catalog, which only exists once servers run: `tools` globs are
//! compiled here, once, and checked to be able to match an exposed name (`server__tool`);
//! which tools they select is decided per run by matching the catalog against them.
//!
//! Submodules: `dir` (finding the agent files), `globs` (`tools`), `limits` (`limits:`).

mod dir;
pub(super) mod globs;
mod limits;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::shown;
use super::fields::{Ctx, Fields};
use super::files;
use super::model::{AgentConfig, AgentMode, ModelConfig, ToolGlobs};
use super::models::AGENT_PREFIX;
use super::specs::PLAIN_NAME;
use super::suggest;
use super::yaml::{self, Node, Pos, Value};

use dir::{Dir, agent_files};

/// `agents_dir` when the config gives none.
pub(super) const DEFAULT_AGENTS_DIR: &str = "./agents";

/// Longest accepted `system_prompt`, in bytes: far above any sensible prompt, well below what
/// would crowd out a model's context.
const MAX_SYSTEM_PROMPT_BYTES: usize = 256 * 1024;
/// Longest accepted `description`, in characters (it is shown in listings).
const MAX_DESCRIPTION_CHARS: usize = 2048;

const AGENT_KEYS: &[&str] = &[
    "name",
    "description",
    "model",
    "system_prompt",
    "tools",
    "mode",
    "limits",
];
const MODE_NAMES: &[&str] = &["react", "plan"];

/// Reads every agent file of the directory named by `setting` (the `agents_dir` value, if
/// given). Agents with problems are reported and left out; the result is only meaningful when
/// no error was recorded.
pub(super) fn agents(
    ctx: &mut Ctx<'_>,
    setting: Option<&Node>,
    models: &BTreeMap<String, ModelConfig>,
) -> BTreeMap<String, AgentConfig> {
    // A model entry with an error is missing from `models`; naming it is then not the agent
    // file's fault, and the load fails anyway.
    let main_file = ctx.file;
    let models_complete = !ctx
        .errors
        .iter()
        .any(|e| e.file == main_file && is_models_path(&e.key_path));
    let known = Models {
        configs: models,
        complete: models_complete,
    };
    let dir = match setting {
        None => Dir {
            path: PathBuf::from(DEFAULT_AGENTS_DIR),
            explicit: None,
        },
        Some(node) => match ctx.non_empty_string(node, "agents_dir") {
            Some(text) => Dir {
                path: PathBuf::from(text),
                explicit: Some(node.pos),
            },
            None => return BTreeMap::new(),
        },
    };
    let mut table = Table::default();
    for file in agent_files(ctx, &dir) {
        let mut file_ctx = Ctx {
            file: &file,
            env: ctx.env,
            errors: &mut *ctx.errors,
        };
        if let Some(read) = read_file(&mut file_ctx, &known) {
            table.add(&mut file_ctx, read);
        }
    }
    table.configs
}

/// The configured models, and whether that table is complete (no entry was rejected).
struct Models<'a> {
    configs: &'a BTreeMap<String, ModelConfig>,
    complete: bool,
}

/// What one file contributes to the checks across files.
struct Read {
    /// The agent's name and where it is written, when valid.
    name: Option<(String, Option<Pos>)>,
    /// The agent, when its file has no problem.
    config: Option<AgentConfig>,
}

/// The agents read so far, and where each name was first used.
#[derive(Default)]
struct Table {
    configs: BTreeMap<String, AgentConfig>,
    places: BTreeMap<String, (PathBuf, Option<Pos>)>,
}

impl Table {
    /// Adds one file's agent unless its name is taken; a repeated name is reported in the
    /// later file (files are read in name order) and names the earlier one.
    fn add(&mut self, ctx: &mut Ctx<'_>, read: Read) {
        let mut unique = true;
        if let Some((name, pos)) = read.name {
            if let Some((file, earlier)) = self.places.get(&name) {
                ctx.error(
                    pos,
                    "name",
                    format!(
                        "agent name `{name}` is already used by {}; agent names must be unique across the agent files",
                        place(file, *earlier)
                    ),
                );
                unique = false;
            } else {
                self.places.insert(name, (ctx.file.to_path_buf(), pos));
            }
        }
        if let Some(config) = read.config
            && unique
        {
            self.configs.insert(config.name.clone(), config);
        }
    }
}

/// `file:line:column`, or as much of it as is known.
fn place(file: &Path, pos: Option<Pos>) -> String {
    match pos {
        Some(pos) => format!("{}:{}:{}", file.display(), pos.line, pos.column),
        None => file.display().to_string(),
    }
}

/// Whether an error's key path lies inside `models:` (`models`, `models[1].type`,
/// `models.gpt.base_url`, `models["a b"]`).
pub(super) fn is_models_path(path: &str) -> bool {
    path.strip_prefix("models")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// Reads and parses the file `ctx` names; `None` when it cannot be read or parsed at all.
fn read_file(ctx: &mut Ctx<'_>, models: &Models<'_>) -> Option<Read> {
    let text = match files::read_text(ctx.file) {
        Ok(text) => text,
        Err(e) => {
            ctx.error(e.pos, "", format!("cannot read agent file: {}", e.message));
            return None;
        }
    };
    let root = match yaml::parse(&text) {
        Ok(root) => root,
        Err(e) => {
            ctx.error(e.pos, "", format!("invalid YAML: {}", e.message));
            return None;
        }
    };
    let mut read = Read {
        name: None,
        config: None,
    };
    let errors_before = ctx.errors.len();
    let config = agent(ctx, &root, models, &mut read);
    read.config = config.filter(|_| ctx.errors.len() == errors_before);
    Some(read)
}

/// Reads every field of one agent, filling `read.name` on the way so duplicate names are
/// found even when another field is wrong. `None` after an error.
fn agent(
    ctx: &mut Ctx<'_>,
    root: &Node,
    models: &Models<'_>,
    read: &mut Read,
) -> Option<AgentConfig> {
    if matches!(root.value, Value::Null) {
        ctx.error(
            root.pos,
            "",
            "empty agent file; give at least `name` and `system_prompt`",
        );
        return None;
    }
    if !matches!(root.value, Value::Map(_)) {
        ctx.expected(
            root,
            "",
            "a mapping with keys such as `name` and `system_prompt`",
        );
        return None;
    }
    let fields = ctx.fields(root, "", AGENT_KEYS)?;
    read.name = name(ctx, &fields);
    let description = match fields.get("description") {
        None => Some(String::new()),
        Some(node) => prose(ctx, node, "description", MAX_DESCRIPTION_CHARS, false),
    };
    let model = match fields.get("model") {
        None => Some(None),
        Some(node) => model(ctx, node, models),
    };
    let system_prompt = match fields.get("system_prompt") {
        Some(node) => prose(ctx, node, "system_prompt", MAX_SYSTEM_PROMPT_BYTES, true),
        None => {
            if !fields.misspelled("system_prompt") {
                ctx.error(
                    fields.pos,
                    "",
                    "missing `system_prompt` (the instructions that give the agent its role)",
                );
            }
            None
        }
    };
    let tools = match fields.get("tools") {
        None => Some(ToolGlobs::default()),
        Some(node) => globs::tools(ctx, node),
    };
    let mode = match fields.get("mode") {
        None => Some(AgentMode::React),
        Some(node) => mode(ctx, node),
    };
    let limits = limits::limits(ctx, fields.get("limits"), mode);
    Some(AgentConfig {
        name: read.name.as_ref()?.0.clone(),
        description: description?,
        model: model?,
        system_prompt: system_prompt?,
        tools: tools?,
        mode: mode?,
        limits: limits?,
        source: ctx.file.to_path_buf(),
    })
}

/// The required `name`, when valid, with where it is written.
fn name(ctx: &mut Ctx<'_>, fields: &Fields<'_>) -> Option<(String, Option<Pos>)> {
    let Some(node) = fields.get("name") else {
        if !fields.misspelled("name") {
            ctx.error(
                fields.pos,
                "",
                "missing `name` (what users pick, such as `researcher`; the API calls it `agent:researcher`)",
            );
        }
        return None;
    };
    let name = ctx.string(node, "name")?;
    if PLAIN_NAME.accepts(&name) {
        Some((name, node.pos))
    } else {
        ctx.error(
            node.pos,
            "name",
            format!("invalid agent name{}; {}", shown(&name), PLAIN_NAME.rule()),
        );
        None
    }
}

/// Literal text (no `${VAR}` expansion) with surrounding blanks removed; `limit` is in bytes
/// when `bytes`, else in characters.
fn prose(ctx: &mut Ctx<'_>, node: &Node, path: &str, limit: usize, bytes: bool) -> Option<String> {
    let mut literal = Ctx {
        file: ctx.file,
        env: None,
        errors: &mut *ctx.errors,
    };
    let text = literal.string(node, path)?;
    let text = text.trim();
    let (size, unit) = if bytes {
        (text.len(), "bytes")
    } else {
        (text.chars().count(), "characters")
    };
    let problem = if text.is_empty() {
        "must not be empty".to_owned()
    } else if text.contains('\0') {
        "must not contain a NUL character".to_owned()
    } else if size > limit {
        format!("is {size} {unit} long; at most {limit} are allowed")
    } else {
        return Some(text.to_owned());
    };
    literal.error(node.pos, path, problem);
    None
}

/// `model`: a name under `models:`; null or empty (`${AGENT_MODEL:-}` unset) means the
/// default model. `Some(None)` is the default, `None` an error.
fn model(ctx: &mut Ctx<'_>, node: &Node, models: &Models<'_>) -> Option<Option<String>> {
    if matches!(node.value, Value::Null) {
        return Some(None);
    }
    let text = ctx.string(node, "model")?;
    let name = text.trim();
    if name.is_empty() {
        return Some(None);
    }
    let is_agent = name
        .get(..AGENT_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(AGENT_PREFIX));
    let problem = if is_agent {
        "an agent runs on a model, not on another agent; name an entry of `models:`, or leave `model` out for the default model".to_owned()
    } else if models.configs.contains_key(name) || !models.complete {
        return Some(Some(name.to_owned()));
    } else if models.configs.is_empty() {
        format!(
            "unknown model{}; no models are configured (add them under `models:`, or leave `model` out)",
            shown(name)
        )
    } else {
        let names: Vec<&str> = models.configs.keys().map(String::as_str).collect();
        suggest::unknown("model", name, &names)
    };
    ctx.error(node.pos, "model", problem);
    None
}

/// `mode: react | plan`, in any letter case.
fn mode(ctx: &mut Ctx<'_>, node: &Node) -> Option<AgentMode> {
    let text = ctx.string(node, "mode")?;
    match text.trim().to_ascii_lowercase().as_str() {
        "react" => Some(AgentMode::React),
        "plan" => Some(AgentMode::Plan),
        _ => {
            ctx.error(
                node.pos,
                "mode",
                suggest::unknown("mode", &text, MODE_NAMES),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests;
