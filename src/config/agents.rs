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
//! checked to compile and to be able to match an exposed name (`server__tool`); which tools they
//! select is decided per run with [`agent_tool_filter`].

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::error::{child_path, item_path, shown};
use super::fields::{Ctx, Fields};
use super::files;
use super::model::{AgentConfig, AgentLimits, AgentMode, ModelConfig};
use super::models::AGENT_PREFIX;
use super::suggest;
use super::yaml::{self, Node, Pos, Value};

/// `agents_dir` when the config gives none.
pub(super) const DEFAULT_AGENTS_DIR: &str = "./agents";

/// Longest accepted `system_prompt`, in bytes: far above any sensible prompt, well below what
/// would crowd out a model's context.
const MAX_SYSTEM_PROMPT_BYTES: usize = 256 * 1024;
/// Longest accepted `description`, in characters (it is shown in listings).
const MAX_DESCRIPTION_CHARS: usize = 2048;
/// Longest accepted timeout: a day.
const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

const AGENT_KEYS: &[&str] = &[
    "name",
    "description",
    "model",
    "system_prompt",
    "tools",
    "mode",
    "limits",
];
const LIMIT_KEYS: &[&str] = &[
    "max_steps",
    "max_tool_calls",
    "max_parallel_tools",
    "tool_timeout_ms",
    "run_timeout_ms",
    "max_repeats",
    "max_replans",
];
const MODE_NAMES: &[&str] = &["react", "plan"];

const MAX_STEPS: Count = Count {
    key: "max_steps",
    min: 1,
    max: 200,
    default: 16,
};
const MAX_TOOL_CALLS: Count = Count {
    key: "max_tool_calls",
    min: 0,
    max: 1000,
    default: 32,
};
const MAX_PARALLEL_TOOLS: Count = Count {
    key: "max_parallel_tools",
    min: 1,
    max: 64,
    default: 4,
};
const MAX_REPEATS: Count = Count {
    key: "max_repeats",
    min: 1,
    max: 1000,
    default: 3,
};
const MAX_REPLANS: Count = Count {
    key: "max_replans",
    min: 0,
    max: 10,
    default: 2,
};
const TOOL_TIMEOUT: Millis = Millis {
    key: "tool_timeout_ms",
    default: 60_000,
};
const RUN_TIMEOUT: Millis = Millis {
    key: "run_timeout_ms",
    default: 300_000,
};

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits {
            max_steps: MAX_STEPS.default,
            max_tool_calls: MAX_TOOL_CALLS.default,
            max_parallel_tools: MAX_PARALLEL_TOOLS.default,
            tool_timeout: Duration::from_millis(TOOL_TIMEOUT.default),
            run_timeout: Duration::from_millis(RUN_TIMEOUT.default),
            max_repeats: MAX_REPEATS.default,
            max_replans: MAX_REPLANS.default,
        }
    }
}

/// The tools `agent` may use, as a set matched against exposed catalog names
/// (`calc__evaluate`): a tool is offered when `set.is_match(name)`. Empty `tools` gives a set
/// that matches nothing, `["*"]` one that matches everything.
///
/// # Errors
/// A glob that does not compile. Agents from [`crate::config::load`] never fail here: their
/// globs were compiled the same way while loading.
pub fn agent_tool_filter(agent: &AgentConfig) -> Result<GlobSet, globset::Error> {
    let mut builder = GlobSetBuilder::new();
    for pattern in &agent.tools {
        builder.add(Glob::new(pattern)?);
    }
    builder.build()
}

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

/// Whether `name` is usable as an agent name: 1–64 of `[A-Za-z0-9_.-]`.
pub(super) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A count limit: its key, accepted range and default.
#[derive(Clone, Copy)]
struct Count {
    key: &'static str,
    min: u32,
    max: u32,
    default: u32,
}

/// A timeout limit in milliseconds (1 ms to a day): its key and default.
#[derive(Clone, Copy)]
struct Millis {
    key: &'static str,
    default: u64,
}

/// The agents directory and, when `agents_dir` gave it, where that value is written.
struct Dir {
    path: PathBuf,
    explicit: Option<Option<Pos>>,
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
fn is_models_path(path: &str) -> bool {
    path.strip_prefix("models")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// The agent files of `dir`, in name order; directory problems are reported against
/// `agents_dir` in the main config file.
fn agent_files(ctx: &mut Ctx<'_>, dir: &Dir) -> Vec<PathBuf> {
    let shown_dir = dir.path.display();
    let (pos, what) = match dir.explicit {
        Some(pos) => (pos, format!("agents directory `{shown_dir}`")),
        None => (
            None,
            format!("default agents directory `{shown_dir}` (set `agents_dir` to use another)"),
        ),
    };
    let entries = match fs::read_dir(&dir.path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound && dir.explicit.is_none() => {
            return Vec::new();
        }
        Err(e) => {
            ctx.error(
                pos,
                "agents_dir",
                format!("cannot read the {what}: {}", io_message(&e)),
            );
            return Vec::new();
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                if is_agent_file(&path) {
                    paths.push(path);
                }
            }
            Err(e) => {
                let message = format!("cannot list the {what}: {}", io_message(&e));
                ctx.error(pos, "agents_dir", message);
            }
        }
    }
    paths.sort();
    paths
}

/// `*.yaml` and `*.yml` (any case), except hidden files such as editor lock files.
fn is_agent_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    yaml && !hidden
}

fn io_message(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "it does not exist".to_owned(),
        io::ErrorKind::NotADirectory => "it is not a directory".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => {
            let text = e.to_string();
            let mut chars = text.chars();
            chars.next().map_or(text.clone(), |first| {
                first.to_lowercase().chain(chars).collect()
            })
        }
    }
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
        None => Some(Vec::new()),
        Some(node) => tools(ctx, node),
    };
    let mode = match fields.get("mode") {
        None => Some(AgentMode::React),
        Some(node) => mode(ctx, node),
    };
    let limits = limits(ctx, fields.get("limits"), mode);
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
    if valid_name(&name) {
        Some((name, node.pos))
    } else {
        ctx.error(
            node.pos,
            "name",
            format!(
                "invalid agent name{}; use 1 to 64 characters from A-Z, a-z, 0-9, `_`, `.` and `-`",
                shown(&name)
            ),
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

/// `tools`: a list of globs (one glob alone is accepted too); each must compile and be able to
/// match an exposed tool name.
fn tools(ctx: &mut Ctx<'_>, node: &Node) -> Option<Vec<String>> {
    let (patterns, items): (Vec<String>, Vec<(Option<Pos>, String)>) = match &node.value {
        Value::Str(_) | Value::Int(..) | Value::Float(_) | Value::Bool(..) => {
            let pattern = ctx.string(node, "tools")?;
            (vec![pattern], vec![(node.pos, "tools".to_owned())])
        }
        Value::Seq(items) => {
            let patterns = ctx.string_list(node, "tools")?;
            let places = items
                .iter()
                .enumerate()
                .map(|(i, item)| (item.pos, item_path("tools", i)))
                .collect();
            (patterns, places)
        }
        Value::Null => return Some(Vec::new()),
        _ => {
            ctx.expected(node, "tools", "a list of tool name globs such as `calc__*`");
            return None;
        }
    };
    let mut builder = GlobSetBuilder::new();
    let mut ok = true;
    for (pattern, (pos, path)) in patterns.iter().zip(&items) {
        match tool_glob(pattern) {
            Ok(glob) => {
                builder.add(glob);
            }
            Err(problem) => {
                ctx.error(*pos, path, problem);
                ok = false;
            }
        }
    }
    if ok && let Err(e) = builder.build() {
        let message = format!("the globs cannot be combined: {}", e.kind());
        ctx.error(node.pos, "tools", message);
        ok = false;
    }
    ok.then_some(patterns)
}

/// One `tools` glob, compiled as [`agent_tool_filter`] compiles it, or why it is unusable.
fn tool_glob(pattern: &str) -> Result<Glob, String> {
    if pattern.trim().is_empty() {
        return Err("must not be empty; `*` offers every tool".to_owned());
    }
    let glob =
        Glob::new(pattern).map_err(|e| format!("invalid glob{}: {}", shown(pattern), e.kind()))?;
    if let Some(fixed) = never_matching(pattern) {
        let hint = fixed
            .filter(|f| Glob::new(f).is_ok())
            .map(|f| format!(" (did you mean `{f}`?)"))
            .unwrap_or_default();
        return Err(format!(
            "glob{} can never match a tool{hint}; exposed tool names are `server__tool` with only A-Z, a-z, 0-9, `_` and `-`",
            shown(pattern)
        ));
    }
    Ok(glob)
}

/// When `pattern` needs, outside a `[...]` class, a character that no exposed name contains
/// (`files.read_file`, `calc/*`): `Some` of the pattern with that character run replaced by the
/// `__` separator, when there is exactly one such run.
fn never_matching(pattern: &str) -> Option<Option<String>> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    let mut fixed = String::new();
    let mut runs = 0;
    let mut in_bad_run = false;
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let bad = match c {
            _ if in_class => {
                in_class = c != ']';
                false
            }
            '[' => {
                in_class = true;
                false
            }
            '*' | '?' | '{' | '}' | ',' => false,
            '\\' => match chars.next() {
                Some(next) if allowed(next) => {
                    fixed.push(c);
                    fixed.push(next);
                    in_bad_run = false;
                    continue;
                }
                _ => true,
            },
            _ => !allowed(c),
        };
        if bad {
            if !in_bad_run {
                runs += 1;
                fixed.push_str("__");
            }
            in_bad_run = true;
        } else {
            fixed.push(c);
            in_bad_run = false;
        }
    }
    (runs > 0).then(|| (runs == 1).then_some(fixed))
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

/// `limits:`, every key optional. `mode` is `None` when it was invalid (then `max_replans`
/// is not checked against it).
fn limits(ctx: &mut Ctx<'_>, node: Option<&Node>, mode: Option<AgentMode>) -> Option<AgentLimits> {
    let Some(node) = node else {
        return Some(AgentLimits::default());
    };
    let fields = ctx.fields(node, "limits", LIMIT_KEYS)?;
    let max_steps = count(ctx, &fields, MAX_STEPS);
    let max_tool_calls = count(ctx, &fields, MAX_TOOL_CALLS);
    let max_parallel_tools = count(ctx, &fields, MAX_PARALLEL_TOOLS);
    let max_repeats = count(ctx, &fields, MAX_REPEATS);
    let max_replans = match (fields.entry(MAX_REPLANS.key), mode) {
        (Some(entry), Some(AgentMode::React)) => {
            ctx.error(
                entry.key.pos,
                &child_path("limits", MAX_REPLANS.key),
                "`max_replans` only applies to `mode: plan`",
            );
            None
        }
        _ => count(ctx, &fields, MAX_REPLANS),
    };
    let (tool_timeout, run_timeout) = timeouts(ctx, &fields)?;
    Some(AgentLimits {
        max_steps: max_steps?,
        max_tool_calls: max_tool_calls?,
        max_parallel_tools: max_parallel_tools?,
        tool_timeout,
        run_timeout,
        max_repeats: max_repeats?,
        max_replans: max_replans?,
    })
}

/// A count limit, its default when absent.
fn count(ctx: &mut Ctx<'_>, fields: &Fields<'_>, spec: Count) -> Option<u32> {
    let Some(node) = fields.get(spec.key) else {
        return Some(spec.default);
    };
    let path = child_path("limits", spec.key);
    let n = ctx.integer(node, &path, u64::from(spec.min), u64::from(spec.max))?;
    u32::try_from(n).ok()
}

/// A timeout limit: `Some(None)` when absent, `None` after an error.
fn given_millis(ctx: &mut Ctx<'_>, fields: &Fields<'_>, spec: Millis) -> Option<Option<u64>> {
    match fields.get(spec.key) {
        None => Some(None),
        Some(node) => {
            let path = child_path("limits", spec.key);
            ctx.integer(node, &path, 1, MAX_TIMEOUT_MS).map(Some)
        }
    }
}

/// `tool_timeout_ms` and `run_timeout_ms`, where one tool call must fit in the run. An absent
/// tool timeout takes its default lowered to fit, so `run_timeout_ms: 10000` alone is fine; a
/// given one above the run timeout is an error, since silently changing a written limit would
/// surprise.
fn timeouts(ctx: &mut Ctx<'_>, fields: &Fields<'_>) -> Option<(Duration, Duration)> {
    let tool = given_millis(ctx, fields, TOOL_TIMEOUT);
    let run = given_millis(ctx, fields, RUN_TIMEOUT);
    let (tool, run) = (tool?, run?);
    let run_value = run.unwrap_or(RUN_TIMEOUT.default);
    let tool_value = match tool {
        None => TOOL_TIMEOUT.default.min(run_value),
        Some(value) if value > run_value => {
            let by_default = if run.is_none() { " by default" } else { "" };
            ctx.error(
                fields.get(TOOL_TIMEOUT.key).and_then(|n| n.pos),
                &child_path("limits", TOOL_TIMEOUT.key),
                format!(
                    "must not exceed `{}` ({run_value}{by_default}), found {value}",
                    RUN_TIMEOUT.key
                ),
            );
            return None;
        }
        Some(value) => value,
    };
    Some((
        Duration::from_millis(tool_value),
        Duration::from_millis(run_value),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, load, load_str};

    const MODELS: &str = "\
models:
  - {name: gpt, type: openai, base_url: 'http://127.0.0.1:1/v1', model_name: m}
  - {name: claude, type: anthropic, model_name: c}
";

    fn env(name: &str) -> Option<String> {
        match name {
            "AGENT_MODEL" => Some("claude".to_owned()),
            "STEPS" => Some("40".to_owned()),
            _ => None,
        }
    }

    /// Writes `files` into a fresh directory, loads `config` (with `{dir}` replaced by that
    /// directory) as `t.yaml`, and compares the error lines with the directory shown as
    /// `agents` (empty: must load).
    #[track_caller]
    fn check_with(config: &str, files: &[(&str, &str)], expected: &[&str]) -> Option<Config> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            fs::write(dir.path().join(name), text).unwrap();
        }
        let dir_text = dir.path().display().to_string();
        let text = config.replace("{dir}", &dir_text);
        match load_str(&text, Path::new("t.yaml"), &env) {
            Ok(config) => {
                assert!(expected.is_empty(), "loaded, but expected {expected:#?}");
                Some(config)
            }
            Err(errors) => {
                let lines: Vec<String> = errors
                    .0
                    .iter()
                    .map(|e| e.to_string().replace(&dir_text, "agents"))
                    .collect();
                assert_eq!(lines, expected, "\n{errors}");
                None
            }
        }
    }

    /// [`check_with`] under a config with two models (`gpt`, `claude`).
    #[track_caller]
    fn check(files: &[(&str, &str)], expected: &[&str]) -> Option<Config> {
        check_with(&format!("{MODELS}agents_dir: '{{dir}}'\n"), files, expected)
    }

    /// The one agent of `text`, loaded as `a.yaml`.
    #[track_caller]
    fn agent(text: &str) -> AgentConfig {
        let config = check(&[("a.yaml", text)], &[]).unwrap();
        assert_eq!(config.agents.len(), 1);
        config.agents.into_values().next().unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Exposed names of the bundled servers' tools, as the catalog names them.
    const BUNDLED_TOOLS: &[&str] = &[
        "calc__evaluate",
        "calc__evaluate_many",
        "clock__now",
        "clock__convert_time",
        "clock__date_add",
        "clock__date_diff",
        "files__list_directory",
        "files__read_file",
        "files__search_files",
        "files__file_info",
        "notes__add_note",
        "notes__search_notes",
        "notes__get_note",
        "notes__list_notes",
        "notes__delete_note",
    ];

    /// The bundled tools `agent` is offered.
    fn offered(agent: &AgentConfig) -> Vec<&'static str> {
        let set = agent_tool_filter(agent).unwrap();
        BUNDLED_TOOLS
            .iter()
            .copied()
            .filter(|t| set.is_match(t))
            .collect()
    }

    #[test]
    fn the_shipped_agents_load_with_the_example_config() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let source = root.join("config/switchboard.yaml");
        let text = fs::read_to_string(&source).unwrap();
        // Name the repository's directory explicitly, so the test does not depend on the
        // working directory (the default `./agents` is checked below).
        let dir = root.join("agents");
        let text = format!("{text}\nagents_dir: '{}'\n", dir.display());
        let config = match load_str(&text, &source, &|_| None) {
            Ok(config) => config,
            Err(errors) => panic!("the shipped agents do not load:\n{errors}"),
        };
        let names: Vec<&str> = config.agents.keys().map(String::as_str).collect();
        assert_eq!(names, ["assistant", "planner", "researcher"]);
        for agent in config.agents.values() {
            assert_eq!(agent.source, dir.join(format!("{}.yaml", agent.name)));
            assert!(!agent.description.is_empty(), "{}", agent.name);
            assert_eq!(agent.model, None, "shipped agents use the default model");
            // Every tool a prompt mentions exists and is offered to that agent.
            let offered = offered(agent);
            for word in agent
                .system_prompt
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.contains("__") && !w.ends_with("__"))
            {
                assert!(
                    offered.contains(&word),
                    "{}: the prompt mentions `{word}`, which is not an offered bundled tool",
                    agent.name
                );
            }
        }
        let assistant = &config.agents["assistant"];
        assert_eq!(assistant.mode, AgentMode::React);
        assert_eq!(assistant.tools, ["*"]);
        assert_eq!(offered(assistant), BUNDLED_TOOLS);
        let researcher = &config.agents["researcher"];
        assert_eq!(researcher.mode, AgentMode::React);
        assert!(
            offered(researcher)
                .iter()
                .all(|t| t.starts_with("files__") || t.starts_with("notes__"))
        );
        assert_eq!(offered(researcher).len(), 9);
        let planner = &config.agents["planner"];
        assert_eq!(planner.mode, AgentMode::Plan);
        assert_eq!(offered(planner).len(), 11);
        assert!(!offered(planner).contains(&"files__read_file"));
    }

    #[test]
    fn the_default_directory_is_agents_in_the_working_directory() {
        // `cargo test` runs in the package root, where `cargo run` runs too.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.yaml");
        let config = load(&path, &|_| None).unwrap();
        assert!(config.agents.contains_key("assistant"));
        assert_eq!(
            config.agents["assistant"].source,
            Path::new(DEFAULT_AGENTS_DIR).join("assistant.yaml")
        );
    }

    #[test]
    fn minimal_agent_gets_the_defaults() {
        let a = agent("name: a\nsystem_prompt: '  Be brief.  '\n");
        assert_eq!(
            a,
            AgentConfig {
                name: "a".to_owned(),
                description: String::new(),
                model: None,
                system_prompt: "Be brief.".to_owned(),
                tools: Vec::new(),
                mode: AgentMode::React,
                limits: AgentLimits {
                    max_steps: 16,
                    max_tool_calls: 32,
                    max_parallel_tools: 4,
                    tool_timeout: ms(60_000),
                    run_timeout: ms(300_000),
                    max_repeats: 3,
                    max_replans: 2,
                },
                source: a.source.clone(),
            }
        );
        assert_eq!(a.limits, AgentLimits::default());
        assert!(a.source.ends_with("a.yaml"));
        assert!(agent_tool_filter(&a).unwrap().is_empty());
    }

    #[test]
    fn every_key_is_read() {
        let a = agent(
            "\
name: My.agent-1
description: Costs $5 ${NOT_EXPANDED}
model: ${AGENT_MODEL}
system_prompt: |
  Use $$ and ${HOME} literally.
tools: ['calc__*', 'clock__{now,date_add}', 'files__read_[a-z]*']
mode: Plan
limits:
  max_steps: ${STEPS}
  max_tool_calls: 0
  max_parallel_tools: 64
  tool_timeout_ms: 1
  run_timeout_ms: 86400000
  max_repeats: '1'
  max_replans: 0
",
        );
        assert_eq!(a.name, "My.agent-1");
        assert_eq!(a.description, "Costs $5 ${NOT_EXPANDED}");
        assert_eq!(a.model.as_deref(), Some("claude"));
        assert_eq!(a.system_prompt, "Use $$ and ${HOME} literally.");
        assert_eq!(a.mode, AgentMode::Plan);
        assert_eq!(
            a.limits,
            AgentLimits {
                max_steps: 40,
                max_tool_calls: 0,
                max_parallel_tools: 64,
                tool_timeout: ms(1),
                run_timeout: ms(86_400_000),
                max_repeats: 1,
                max_replans: 0,
            }
        );
        assert_eq!(
            offered(&a),
            [
                "calc__evaluate",
                "calc__evaluate_many",
                "clock__now",
                "clock__date_add",
                "files__read_file"
            ]
        );
    }

    #[test]
    fn model_may_be_left_to_the_default() {
        for model in ["", "model:", "model: ~", "model: ${UNSET:-}", "model: '  '"] {
            let a = agent(&format!("name: a\nsystem_prompt: x\n{model}\n"));
            assert_eq!(a.model, None, "{model}");
        }
        assert_eq!(
            agent("name: a\nsystem_prompt: x\nmodel: gpt\n")
                .model
                .as_deref(),
            Some("gpt")
        );
    }

    #[test]
    fn a_single_glob_and_the_wildcard() {
        let a = agent("name: a\nsystem_prompt: x\ntools: 'notes__*'\n");
        assert_eq!(a.tools, ["notes__*"]);
        assert_eq!(offered(&a).len(), 5);
        let a = agent("name: a\nsystem_prompt: x\ntools: ['*']\n");
        assert_eq!(offered(&a), BUNDLED_TOOLS);
    }

    #[test]
    fn tool_timeout_defaults_within_a_short_run_timeout() {
        let a = agent("name: a\nsystem_prompt: x\nlimits: {run_timeout_ms: 5000}\n");
        assert_eq!(a.limits.tool_timeout, ms(5000));
        assert_eq!(a.limits.run_timeout, ms(5000));
    }

    #[test]
    fn all_mistakes_in_all_files_are_reported_at_once() {
        check_with(
            &format!("{MODELS}agents_dir: '{{dir}}'\nserver: {{bind: nowhere}}\n"),
            &[
                (
                    "a.yaml",
                    "\
name: bad name
descripton: typo
model: gtp
system_prompt: ''
tools: [calc__*, 'files.read_file', 'x[', 3, '']
mode: ract
limits:
  max_steps: 0
  max_paralel_tools: 2
  max_replans: 1
",
                ),
                ("b.yml", "name: b\nsystem_promt: hi\nmode: [plan]\n"),
                ("c.yaml", "- just\n- a list\n"),
                ("d.yaml", "name: d\nsystem_prompt: [unclosed\n"),
                ("e.yaml", ""),
            ],
            &[
                "t.yaml:5:16: server.bind: not a valid socket address `nowhere`; expected IP:PORT such as 127.0.0.1:8080 or [::1]:8080 (host names are not resolved)",
                "agents/a.yaml:1:7: name: invalid agent name `bad name`; use 1 to 64 characters from A-Z, a-z, 0-9, `_`, `.` and `-`",
                "agents/a.yaml:2:1: descripton: unknown key `descripton` (did you mean `description`?); expected one of: name, description, model, system_prompt, tools, mode, limits",
                "agents/a.yaml:3:8: model: unknown model `gtp` (did you mean `gpt`?); expected one of: claude, gpt",
                "agents/a.yaml:4:16: system_prompt: must not be empty",
                "agents/a.yaml:5:18: tools[1]: glob `files.read_file` can never match a tool (did you mean `files__read_file`?); exposed tool names are `server__tool` with only A-Z, a-z, 0-9, `_` and `-`",
                "agents/a.yaml:5:37: tools[2]: invalid glob `x[`: unclosed character class; missing ']'",
                "agents/a.yaml:5:46: tools[4]: must not be empty; `*` offers every tool",
                "agents/a.yaml:6:7: mode: unknown mode `ract` (did you mean `react`?); expected one of: react, plan",
                "agents/a.yaml:8:14: limits.max_steps: must be between 1 and 200, found 0",
                "agents/a.yaml:9:3: limits.max_paralel_tools: unknown key `max_paralel_tools` (did you mean `max_parallel_tools`?); expected one of: max_steps, max_tool_calls, max_parallel_tools, tool_timeout_ms, run_timeout_ms, max_repeats, max_replans",
                "agents/b.yml:2:1: system_promt: unknown key `system_promt` (did you mean `system_prompt`?); expected one of: name, description, model, system_prompt, tools, mode, limits",
                "agents/b.yml:3:7: mode: expected a string, found a list",
                "agents/c.yaml:1:1: expected a mapping with keys such as `name` and `system_prompt`, found a list",
                "agents/d.yaml:3:1: invalid YAML: while parsing a flow sequence, expected ',' or ']'",
                "agents/e.yaml: empty agent file; give at least `name` and `system_prompt`",
            ],
        );
    }

    #[test]
    fn missing_required_keys() {
        check(
            &[("a.yaml", "description: nothing else\n")],
            &[
                "agents/a.yaml:1:1: missing `name` (what users pick, such as `researcher`; the API calls it `agent:researcher`)",
                "agents/a.yaml:1:1: missing `system_prompt` (the instructions that give the agent its role)",
            ],
        );
    }

    #[test]
    fn names_are_unique_across_files() {
        check(
            &[
                ("a.yaml", "name: helper\nsystem_prompt: x\n"),
                ("b.yaml", "system_prompt: y\nname: helper\n"),
                ("c.yaml", "name: helper\nsystem_prompt: ''\n"),
            ],
            &[
                "agents/b.yaml:2:7: name: agent name `helper` is already used by agents/a.yaml:1:7; agent names must be unique across the agent files",
                "agents/c.yaml:1:7: name: agent name `helper` is already used by agents/a.yaml:1:7; agent names must be unique across the agent files",
                "agents/c.yaml:2:16: system_prompt: must not be empty",
            ],
        );
    }

    #[test]
    fn model_must_be_configured() {
        check(
            &[("a.yaml", "name: a\nsystem_prompt: x\nmodel: claud\n")],
            &[
                "agents/a.yaml:3:8: model: unknown model `claud` (did you mean `claude`?); expected one of: claude, gpt",
            ],
        );
        check(
            &[("a.yaml", "name: a\nsystem_prompt: x\nmodel: Agent:helper\n")],
            &[
                "agents/a.yaml:3:8: model: an agent runs on a model, not on another agent; name an entry of `models:`, or leave `model` out for the default model",
            ],
        );
        check_with(
            "agents_dir: '{dir}'\n",
            &[("a.yaml", "name: a\nsystem_prompt: x\nmodel: gpt\n")],
            &[
                "agents/a.yaml:3:8: model: unknown model `gpt`; no models are configured (add them under `models:`, or leave `model` out)",
            ],
        );
        // A disabled model is still configured (enabling it is a matter of the environment).
        let config = check_with(
            "models:\n  - {name: gpt, type: openai, base_url: 'http://h/v1', model_name: m, enabled: false}\nagents_dir: '{dir}'\n",
            &[("a.yaml", "name: a\nsystem_prompt: x\nmodel: gpt\n")],
            &[],
        )
        .unwrap();
        assert_eq!(config.agents["a"].model.as_deref(), Some("gpt"));
    }

    #[test]
    fn a_broken_model_entry_does_not_make_agents_naming_it_fail_too() {
        check_with(
            "models:\n  - {name: gpt, type: openai, model_name: m}\nagents_dir: '{dir}'\n",
            &[("a.yaml", "name: a\nsystem_prompt: x\nmodel: gpt\n")],
            &[
                "t.yaml:2:5: models[0]: missing `base_url`, which `type: openai` requires, such as https://api.openai.com/v1 or http://127.0.0.1:11434/v1 (Ollama)",
            ],
        );
    }

    #[test]
    fn bad_globs() {
        check(
            &[(
                "a.yaml",
                "name: a\nsystem_prompt: x\ntools: ['calc__{a,b', 'calc/*', 'a.b/c', '\\.x', 'n[.]x', 'ok\\_x']\n",
            )],
            &[
                "agents/a.yaml:3:9: tools[0]: invalid glob `calc__{a,b`: unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)",
                "agents/a.yaml:3:23: tools[1]: glob `calc/*` can never match a tool (did you mean `calc__*`?); exposed tool names are `server__tool` with only A-Z, a-z, 0-9, `_` and `-`",
                "agents/a.yaml:3:33: tools[2]: glob `a.b/c` can never match a tool; exposed tool names are `server__tool` with only A-Z, a-z, 0-9, `_` and `-`",
                "agents/a.yaml:3:42: tools[3]: glob `\\.x` can never match a tool (did you mean `__x`?); exposed tool names are `server__tool` with only A-Z, a-z, 0-9, `_` and `-`",
            ],
        );
        check(
            &[("a.yaml", "name: a\nsystem_prompt: x\ntools: {calc: '*'}\n")],
            &[
                "agents/a.yaml:3:8: tools: expected a list of tool name globs such as `calc__*`, found a mapping",
            ],
        );
    }

    #[test]
    fn bad_limits() {
        let limits = |text: &str| format!("name: a\nsystem_prompt: x\nlimits:\n{text}");
        check(
            &[(
                "a.yaml",
                &limits(
                    "  max_steps: 201\n  max_tool_calls: -1\n  max_parallel_tools: 65\n  max_repeats: 0\n  tool_timeout_ms: 0\n  run_timeout_ms: 86400001\n  max_replans: 1\n",
                ),
            )],
            &[
                "agents/a.yaml:4:14: limits.max_steps: must be between 1 and 200, found 201",
                "agents/a.yaml:5:19: limits.max_tool_calls: must be between 0 and 1000, found -1",
                "agents/a.yaml:6:23: limits.max_parallel_tools: must be between 1 and 64, found 65",
                "agents/a.yaml:7:16: limits.max_repeats: must be between 1 and 1000, found 0",
                "agents/a.yaml:8:20: limits.tool_timeout_ms: must be between 1 and 86400000, found 0",
                "agents/a.yaml:9:19: limits.run_timeout_ms: must be between 1 and 86400000, found 86400001",
                "agents/a.yaml:10:3: limits.max_replans: `max_replans` only applies to `mode: plan`",
            ],
        );
        check(
            &[
                (
                    "a.yaml",
                    &limits("  tool_timeout_ms: 2000\n  run_timeout_ms: 1000\n"),
                ),
                (
                    "b.yaml",
                    "name: b\nsystem_prompt: x\nmode: plan\nlimits: {tool_timeout_ms: 300001, max_replans: 11}\n",
                ),
                ("c.yaml", "name: c\nsystem_prompt: x\nlimits: 5\n"),
            ],
            &[
                "agents/a.yaml:4:20: limits.tool_timeout_ms: must not exceed `run_timeout_ms` (1000), found 2000",
                "agents/b.yaml:4:27: limits.tool_timeout_ms: must not exceed `run_timeout_ms` (300000 by default), found 300001",
                "agents/b.yaml:4:48: limits.max_replans: must be between 0 and 10, found 11",
                "agents/c.yaml:3:9: limits: expected a mapping, found an integer",
            ],
        );
    }

    #[test]
    fn directory_rules() {
        // Only visible *.yaml / *.yml files, in name order; subdirectories are not searched.
        let config = check(
            &[
                ("z.yml", "name: zed\nsystem_prompt: x\n"),
                ("a.YAML", "name: a\nsystem_prompt: x\n"),
                (".hidden.yaml", "garbage: ["),
                ("notes.txt", "garbage: ["),
                ("b.yaml~", "garbage: ["),
            ],
            &[],
        )
        .unwrap();
        let files: Vec<&str> = config
            .agents
            .values()
            .map(|a| a.source.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(files, ["a.YAML", "z.yml"]);

        check_with(
            "agents_dir: '{dir}/missing'\n",
            &[],
            &[
                "t.yaml:1:13: agents_dir: cannot read the agents directory `agents/missing`: it does not exist",
            ],
        );
        check_with(
            "agents_dir: '{dir}/a.yaml'\n",
            &[("a.yaml", "")],
            &[
                "t.yaml:1:13: agents_dir: cannot read the agents directory `agents/a.yaml`: it is not a directory",
            ],
        );
        check_with(
            "agents_dir: ''\n",
            &[],
            &["t.yaml:1:13: agents_dir: must not be empty"],
        );
        check_with(
            "agents_dir: '${AGENTS:-{dir}}'\n",
            &[("x.yaml", "name: x\nsystem_prompt: x\n")],
            &[],
        );
    }

    #[test]
    fn a_missing_default_directory_means_no_agents() {
        let mut errors = Vec::new();
        let mut ctx = Ctx {
            file: Path::new("t.yaml"),
            env: None,
            errors: &mut errors,
        };
        let dir = tempfile::tempdir().unwrap();
        let missing = Dir {
            path: dir.path().join("agents"),
            explicit: None,
        };
        assert!(agent_files(&mut ctx, &missing).is_empty());
        assert!(errors.is_empty());
    }

    #[test]
    fn unreadable_agent_files_are_reported_in_that_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.yaml"), b"name: a\nsystem_prompt: \xff\n").unwrap();
        let text = format!("agents_dir: '{}'\n", dir.path().display());
        let errors = load_str(&text, Path::new("t.yaml"), &env).unwrap_err();
        assert_eq!(
            errors.to_string(),
            format!(
                "{}:2:16: cannot read agent file: the file is not valid UTF-8",
                dir.path().join("a.yaml").display()
            )
        );
    }

    #[test]
    fn never_matching_globs() {
        assert_eq!(never_matching("calc__*"), None);
        assert_eq!(never_matching("[a.]x"), None);
        assert_eq!(never_matching("{calc,clock}__?ow"), None);
        assert_eq!(never_matching("files.*"), Some(Some("files__*".to_owned())));
        assert_eq!(never_matching("a.b.c"), Some(None));
    }

    #[test]
    fn agent_modes_have_names() {
        assert_eq!(AgentMode::React.name(), "react");
        assert_eq!(AgentMode::Plan.name(), "plan");
        assert_eq!(AgentMode::default(), AgentMode::React);
    }
}
