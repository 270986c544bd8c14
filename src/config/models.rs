//! The `models:` section: which language models Switchboard may call, and how to reach them.
//!
//! `models:` is a list in the shape of the seed project's `models.yaml` (`name, type, base_url,
//! api_key, model_name, max_tokens, tags`) plus timeouts, `retry`, `headers`, Azure's
//! `api_version`, `healthcheck`, `default` and `enabled`; a mapping keyed by name is accepted too.
//! Each entry is checked in full, then the list as a whole (unique names, at most one default).
//! Nothing here talks to a provider: clients and probes belong to `llm`.
//!
//! API keys, header values and URLs are never copied into messages, because each may carry a
//! credential.

use std::collections::BTreeMap;

use url::Url;

use super::error::{child_path, item_path, shown};
use super::fields::{Ctx, Fields};
use super::mcp_servers::{MapKind, string_map};
use super::model::{HealthcheckConfig, ModelConfig, ProviderKind, RetryPolicy, Secret};
use super::specs::{MAX_TIMEOUT_MS, MODEL_NAME, Millis, millis, ordered};
use super::suggest;
use super::yaml::{Node, Pos, Value};

/// `base_url` of `type: anthropic` entries that give none.
pub(super) const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// `max_tokens` of `type: anthropic` entries that give none (the Messages API requires one).
pub(super) const ANTHROPIC_MAX_TOKENS: u32 = 4096;
/// Model names starting with this (in any case) are reserved: `agent:NAME` picks an agent.
pub(super) const AGENT_PREFIX: &str = "agent:";

/// Largest accepted `max_tokens`.
const MAX_TOKENS: u64 = 1_000_000;
/// Default `retry.max_attempts`.
const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Most attempts `retry.max_attempts` may ask for.
const MAX_ATTEMPTS: u64 = 10;

const TIMEOUT: Millis = Millis::timeout("timeout_ms", 120_000);
const FIRST_TOKEN_TIMEOUT: Millis = Millis::timeout("first_token_timeout_ms", 30_000);
const INITIAL_BACKOFF: Millis = Millis {
    key: "initial_backoff_ms",
    min: 1,
    max: 60_000,
    default: 500,
};
const MAX_BACKOFF: Millis = Millis {
    key: "max_backoff_ms",
    min: 1,
    max: 600_000,
    default: 8_000,
};
const DEADLINE: Millis = Millis::timeout("deadline_ms", 60_000);
/// Probing more often than once a second would only load the provider.
const HEALTH_INTERVAL: Millis = Millis {
    key: "interval_ms",
    min: 1_000,
    max: MAX_TIMEOUT_MS,
    default: 60_000,
};
const HEALTH_TIMEOUT: Millis = Millis::timeout("timeout_ms", 5_000);

const MODEL_KEYS: &[&str] = &[
    "name",
    "type",
    "base_url",
    "api_key",
    "model_name",
    "max_tokens",
    "tags",
    "timeout_ms",
    "first_token_timeout_ms",
    "retry",
    "headers",
    "api_version",
    "healthcheck",
    "default",
    "enabled",
];
const RETRY_KEYS: &[&str] = &[
    "max_attempts",
    "initial_backoff_ms",
    "max_backoff_ms",
    "deadline_ms",
];
const HEALTHCHECK_KEYS: &[&str] = &["interval_ms", "timeout_ms"];
const TYPE_NAMES: &[&str] = &[
    "openai",
    "anthropic",
    "openai-compatible",
    "openai_compatible",
    "claude",
];

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: INITIAL_BACKOFF.default_duration(),
            max_backoff: MAX_BACKOFF.default_duration(),
            deadline: DEADLINE.default_duration(),
        }
    }
}

impl Default for HealthcheckConfig {
    fn default() -> Self {
        HealthcheckConfig {
            interval: HEALTH_INTERVAL.default_duration(),
            timeout: HEALTH_TIMEOUT.default_duration(),
        }
    }
}

/// Reads `models:` (a list, or a mapping from name to entry). Entries with problems are
/// reported and left out; the result is only meaningful when no error was recorded.
/// Each `base_url` whose host is a literal address must pass `outbound` (`server.outbound`).
pub(super) fn models(
    ctx: &mut Ctx<'_>,
    node: &Node,
    outbound: &crate::outbound::Policy,
) -> BTreeMap<String, ModelConfig> {
    let mut table = Table::default();
    let check = |ctx: &mut Ctx<'_>, read: &Read, item: &Node| {
        if let Some(config) = &read.config {
            let path = child_path(&read.path, "base_url");
            super::outbound::check_url(ctx, outbound, item, "base_url", &path, &config.base_url);
        }
    };
    match &node.value {
        Value::Null => {}
        Value::Seq(items) => {
            for (index, item) in items.iter().enumerate() {
                let read = entry(ctx, None, item, &item_path("models", index));
                check(ctx, &read, item);
                table.add(ctx, read);
            }
        }
        Value::Map(entries) => {
            for entry_node in entries {
                if let Some(name) = ctx.key(entry_node, "models") {
                    let keyed = Some((name, entry_node.key.pos));
                    let path = child_path("models", name);
                    let read = entry(ctx, keyed, &entry_node.value, &path);
                    check(ctx, &read, &entry_node.value);
                    table.add(ctx, read);
                }
            }
        }
        _ => ctx.expected(node, "models", "a list of models"),
    }
    table.finish(ctx)
}

/// A valid model name and where it is written, for "already used" messages.
struct Named {
    name: String,
    pos: Option<Pos>,
    path: String,
}

/// What one entry contributes to the checks across entries.
struct Read {
    /// The entry's key path (`models[1]`, `models.gpt`).
    path: String,
    /// The entry's name, when it is valid.
    name: Option<Named>,
    /// Whether the entry is enabled and has `default: true`.
    is_default: bool,
    /// Where that `default: true` is written.
    default_pos: Option<Pos>,
    /// The model, when the entry has no problem of its own.
    config: Option<ModelConfig>,
}

/// The models read so far, with what is needed to check names and defaults across entries.
#[derive(Default)]
struct Table {
    configs: BTreeMap<String, ModelConfig>,
    /// Where each name was first used: its entry's path and position.
    places: BTreeMap<String, (String, Option<Pos>)>,
    /// Enabled entries with `default: true`: a label for messages, the path and position.
    defaults: Vec<(String, String, Option<Pos>)>,
}

impl Table {
    fn add(&mut self, ctx: &mut Ctx<'_>, read: Read) {
        let mut unique = true;
        if let Some(named) = &read.name {
            if let Some((earlier_path, earlier_pos)) = self.places.get(&named.name) {
                ctx.error(
                    named.pos,
                    &named.path,
                    format!(
                        "model name `{}` is already used by {}; model names must be unique",
                        named.name,
                        at_line(earlier_path, *earlier_pos)
                    ),
                );
                unique = false;
            } else {
                let place = (read.path.clone(), named.pos);
                self.places.insert(named.name.clone(), place);
            }
        }
        if read.is_default {
            let pos = read.default_pos;
            let label = match &read.name {
                Some(named) => format!("`{}` ({})", named.name, at_line(&read.path, pos)),
                None => at_line(&read.path, pos),
            };
            let path = child_path(&read.path, "default");
            self.defaults.push((label, path, pos));
        }
        if let Some(config) = read.config
            && unique
        {
            self.configs.insert(config.name.clone(), config);
        }
    }

    /// Reports more than one default (once, at the second) and hands over the models.
    fn finish(self, ctx: &mut Ctx<'_>) -> BTreeMap<String, ModelConfig> {
        if let [_, (_, path, pos), ..] = self.defaults.as_slice() {
            let labels: Vec<&str> = self.defaults.iter().map(|d| d.0.as_str()).collect();
            ctx.error(
                *pos,
                path,
                format!(
                    "{} enabled models have `default: true`: {}; keep it on one of them",
                    labels.len(),
                    labels.join(", ")
                ),
            );
        }
        self.configs
    }
}

/// `models[0] at line 3`, or just the path when the position is unknown.
fn at_line(path: &str, pos: Option<Pos>) -> String {
    match pos {
        Some(pos) => format!("{path} at line {}", pos.line),
        None => path.to_owned(),
    }
}

/// Reads one entry; `keyed` is the name and its position in the mapping form.
fn entry(ctx: &mut Ctx<'_>, keyed: Option<(&str, Option<Pos>)>, node: &Node, path: &str) -> Read {
    let mut read = Read {
        path: path.to_owned(),
        name: None,
        is_default: false,
        default_pos: None,
        config: None,
    };
    let errors_before = ctx.errors.len();
    let config = model(ctx, keyed, node, &mut read);
    read.config = config.filter(|_| ctx.errors.len() == errors_before);
    read
}

/// Reads every field of one entry, filling `read.name` and `read.is_default` on the way so
/// the checks across entries see them even when another field is wrong. `None` after an error.
fn model(
    ctx: &mut Ctx<'_>,
    keyed: Option<(&str, Option<Pos>)>,
    node: &Node,
    read: &mut Read,
) -> Option<ModelConfig> {
    let path = read.path.clone();
    let path = path.as_str();
    if let Some((name, pos)) = keyed
        && check_name(ctx, name, pos, path)
    {
        read.name = Some(Named {
            name: name.to_owned(),
            pos,
            path: path.to_owned(),
        });
    }
    if matches!(node.value, Value::Null) {
        let message = if keyed.is_some() {
            "empty model entry; give at least `type` and `model_name`"
        } else {
            "empty model entry; give at least `name`, `type` and `model_name`"
        };
        ctx.error(keyed.and_then(|k| k.1).or(node.pos), path, message);
        return None;
    }
    let fields = ctx.fields(node, path, MODEL_KEYS)?;
    // Missing-key errors point at the entry: its key in the mapping form, else its first field.
    let at = keyed.and_then(|k| k.1).or(fields.pos);
    let field = |key: &str| child_path(path, key);

    match keyed {
        None => read.name = listed_name(ctx, &fields, at, path),
        Some((key, _)) => name_agrees(ctx, &fields, key, path),
    }
    let provider = provider(ctx, &fields, at, path);
    let base_url = base_url(ctx, &fields, provider, at, path);
    let api_key = match fields.get("api_key") {
        None => Some(None),
        Some(n) => api_key(ctx, n, &field("api_key")),
    };
    let model_name = model_name(ctx, &fields, at, path);
    let max_tokens = max_tokens(ctx, &fields, provider, path);
    let tags = match fields.get("tags") {
        Some(n) => ctx.string_list(n, &field("tags")),
        None => Some(Vec::new()),
    };
    let timeouts = ordered(ctx, &fields, path, FIRST_TOKEN_TIMEOUT, TIMEOUT);
    let retry = retry(ctx, fields.get("retry"), &field("retry"));
    let headers = match fields.get("headers") {
        Some(n) => string_map(ctx, n, &field("headers"), MapKind::Headers),
        None => Some(BTreeMap::new()),
    };
    let api_version = api_version(ctx, &fields, provider, path);
    let healthcheck = healthcheck(ctx, fields.get("healthcheck"), &field("healthcheck"));
    let enabled = flag(ctx, &fields, path, "enabled", true);
    let default = flag(ctx, &fields, path, "default", false);
    if default == Some(true) && enabled != Some(false) {
        read.is_default = true;
        read.default_pos = fields.get("default").and_then(|n| n.pos);
    }

    let (first_token_timeout, timeout) = timeouts?;
    let enabled = enabled?;
    Some(ModelConfig {
        name: read.name.as_ref()?.name.clone(),
        provider: provider?,
        base_url: base_url?,
        api_key: api_key?,
        model_name: model_name?,
        max_tokens: max_tokens?,
        tags: tags?,
        timeout,
        first_token_timeout,
        retry: retry?,
        headers: headers?,
        api_version: api_version?,
        healthcheck: healthcheck?,
        // A disabled entry keeps its line but is never the default, so at most one model in
        // the loaded config has `default` set.
        default: default? && enabled,
        enabled,
    })
}

/// `model_name`, required: the provider's id for the model.
fn model_name(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    at: Option<Pos>,
    path: &str,
) -> Option<String> {
    match fields.get("model_name") {
        Some(n) => ctx
            .non_empty_string(n, &child_path(path, "model_name"))
            .map(|s| s.trim().to_owned()),
        None => {
            if !fields.misspelled("model_name") {
                ctx.error(
                    at,
                    path,
                    "missing `model_name` (the provider's id for the model, such as gpt-4o-mini)",
                );
            }
            None
        }
    }
}

/// `max_tokens`, with [`ANTHROPIC_MAX_TOKENS`] for `type: anthropic` entries that give none.
fn max_tokens(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    provider: Option<ProviderKind>,
    path: &str,
) -> Option<Option<u32>> {
    match fields.get("max_tokens") {
        Some(n) => ctx
            .integer(n, &child_path(path, "max_tokens"), 1, MAX_TOKENS)
            .and_then(|n| u32::try_from(n).ok())
            .map(Some),
        None if provider == Some(ProviderKind::Anthropic) => Some(Some(ANTHROPIC_MAX_TOKENS)),
        None => Some(None),
    }
}

/// Checks a name from either form; `false` after an error.
fn check_name(ctx: &mut Ctx<'_>, name: &str, pos: Option<Pos>, path: &str) -> bool {
    let reserved = name
        .get(..AGENT_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(AGENT_PREFIX));
    if reserved {
        ctx.error(
            pos,
            path,
            "model names starting with `agent:` are reserved for agents (`agent:NAME` picks an agent); choose another name",
        );
        false
    } else if !MODEL_NAME.accepts(name) {
        ctx.error(
            pos,
            path,
            format!("invalid model name{}; {}", shown(name), MODEL_NAME.rule()),
        );
        false
    } else {
        true
    }
}

/// The required `name` of a list entry, when valid.
fn listed_name(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    at: Option<Pos>,
    path: &str,
) -> Option<Named> {
    let Some(node) = fields.get("name") else {
        if !fields.misspelled("name") {
            ctx.error(
                at,
                path,
                "missing `name` (what users pick, such as gpt-4o-mini)",
            );
        }
        return None;
    };
    let name_path = child_path(path, "name");
    let name = ctx.string(node, &name_path)?;
    check_name(ctx, &name, node.pos, &name_path).then_some(Named {
        name,
        pos: node.pos,
        path: name_path,
    })
}

/// In the mapping form the key is the name; a `name` field may repeat it but not differ.
fn name_agrees(ctx: &mut Ctx<'_>, fields: &Fields<'_>, key: &str, path: &str) {
    let Some(node) = fields.get("name") else {
        return;
    };
    let name_path = child_path(path, "name");
    if let Some(name) = ctx.string(node, &name_path)
        && name != key
    {
        ctx.error(
            node.pos,
            &name_path,
            format!(
                "differs from the key{} above it; in the `models:` mapping the key is the name, so remove `name`",
                shown(key)
            ),
        );
    }
}

/// `type`, required; aliases and any letter case are accepted.
fn provider(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    at: Option<Pos>,
    path: &str,
) -> Option<ProviderKind> {
    let Some(node) = fields.get("type") else {
        if !fields.misspelled("type") {
            ctx.error(
                at,
                path,
                "missing `type`; expected one of: openai (any OpenAI-compatible server), anthropic",
            );
        }
        return None;
    };
    let type_path = child_path(path, "type");
    let text = ctx.string(node, &type_path)?;
    let kind = match text.trim().to_ascii_lowercase().as_str() {
        "openai" | "openai-compatible" | "openai_compatible" => Some(ProviderKind::OpenAi),
        "anthropic" | "claude" => Some(ProviderKind::Anthropic),
        _ => None,
    };
    if kind.is_none() {
        ctx.error(
            node.pos,
            &type_path,
            suggest::unknown("model type", &text, TYPE_NAMES),
        );
    }
    kind
}

/// `base_url`: required for `type: openai`, [`ANTHROPIC_BASE_URL`] by default for anthropic.
fn base_url(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    provider: Option<ProviderKind>,
    at: Option<Pos>,
    path: &str,
) -> Option<Url> {
    if let Some(node) = fields.get("base_url") {
        return http_url(ctx, node, provider, &child_path(path, "base_url"));
    }
    match provider {
        Some(ProviderKind::Anthropic) => {
            Some(Url::parse(ANTHROPIC_BASE_URL).expect("the built-in Anthropic URL parses"))
        }
        Some(ProviderKind::OpenAi) if !fields.misspelled("base_url") => {
            ctx.error(
                at,
                path,
                "missing `base_url`, which `type: openai` requires, such as https://api.openai.com/v1 or http://127.0.0.1:11434/v1 (Ollama)",
            );
            None
        }
        // Without a usable type, or after "did you mean `base_url`", there is nothing to add.
        _ => None,
    }
}

/// An absolute http(s) URL for the API root. No part of it is echoed: it may carry a key.
fn http_url(
    ctx: &mut Ctx<'_>,
    node: &Node,
    provider: Option<ProviderKind>,
    path: &str,
) -> Option<Url> {
    let text = ctx.string(node, path)?;
    let text = text.trim();
    if text.is_empty() {
        ctx.error(node.pos, path, "must not be empty");
        return None;
    }
    let problem = match Url::parse(text) {
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            "not a valid URL (relative URL without a base); write it in full, such as https://api.openai.com/v1".to_owned()
        }
        Err(e) => format!("not a valid URL ({e})"),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            // `localhost:11434/v1` parses with the scheme `localhost`, hence the hint.
            "URL scheme must be http or https; write it in full, such as http://127.0.0.1:11434/v1"
                .to_owned()
        }
        Ok(url) => {
            let endpoint = match provider {
                Some(ProviderKind::OpenAi) => "/chat/completions",
                Some(ProviderKind::Anthropic) => "/v1/messages",
                None => return Some(url),
            };
            if !url.path().trim_end_matches('/').ends_with(endpoint) {
                return Some(url);
            }
            format!(
                "give the API root without the trailing `{endpoint}`; the client appends it to every request"
            )
        }
    };
    ctx.error(node.pos, path, problem);
    None
}

/// `api_key`: surrounding blanks are dropped and empty means none, so `${OPENAI_API_KEY:-}`
/// works with the variable unset. The value is never echoed.
fn api_key(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Option<Secret>> {
    if matches!(node.value, Value::Null) {
        return Some(None);
    }
    let text = ctx.string(node, path)?;
    let key = text.trim();
    if key.chars().any(char::is_control) {
        ctx.error(
            node.pos,
            path,
            "the value contains a line break or control character",
        );
        return None;
    }
    Some((!key.is_empty()).then(|| Secret::new(key)))
}

/// `api_version`, Azure OpenAI's `api-version` query parameter.
fn api_version(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    provider: Option<ProviderKind>,
    path: &str,
) -> Option<Option<String>> {
    let Some(entry) = fields.entry("api_version") else {
        return Some(None);
    };
    let version_path = child_path(path, "api_version");
    if provider == Some(ProviderKind::Anthropic) {
        ctx.error(
            entry.key.pos,
            &version_path,
            "`api_version` only applies to `type: openai` (Azure OpenAI)",
        );
        return None;
    }
    let text = ctx.non_empty_string(&entry.value, &version_path)?;
    let text = text.trim();
    let valid = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid {
        ctx.error(
            entry.value.pos,
            &version_path,
            "invalid API version; use letters, digits, `.`, `_` and `-`, such as 2024-10-21",
        );
        return None;
    }
    Some(Some(text.to_owned()))
}

/// `retry:`, a mapping of its four keys, each with a default.
fn retry(ctx: &mut Ctx<'_>, node: Option<&Node>, path: &str) -> Option<RetryPolicy> {
    let Some(node) = node else {
        return Some(RetryPolicy::default());
    };
    let fields = ctx.fields(node, path, RETRY_KEYS)?;
    let max_attempts = match fields.get("max_attempts") {
        None => Some(DEFAULT_MAX_ATTEMPTS),
        Some(n) => ctx
            .integer(n, &child_path(path, "max_attempts"), 1, MAX_ATTEMPTS)
            .and_then(|n| u32::try_from(n).ok()),
    };
    let backoff = ordered(ctx, &fields, path, INITIAL_BACKOFF, MAX_BACKOFF);
    let deadline = millis(ctx, &fields, path, DEADLINE);
    let (initial_backoff, max_backoff) = backoff?;
    Some(RetryPolicy {
        max_attempts: max_attempts?,
        initial_backoff,
        max_backoff,
        deadline: deadline?,
    })
}

/// `healthcheck: false | true | {interval_ms, timeout_ms}`; absent or null means the defaults.
/// `Some(None)` is a disabled probe, `None` an error.
fn healthcheck(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    path: &str,
) -> Option<Option<HealthcheckConfig>> {
    let Some(node) = node else {
        return Some(Some(HealthcheckConfig::default()));
    };
    match &node.value {
        Value::Bool(..) | Value::Str(_) => {
            let on = ctx.boolean(node, path)?;
            Some(on.then(HealthcheckConfig::default))
        }
        Value::Map(_) | Value::Null => {
            let fields = ctx.fields(node, path, HEALTHCHECK_KEYS)?;
            let (timeout, interval) = ordered(ctx, &fields, path, HEALTH_TIMEOUT, HEALTH_INTERVAL)?;
            Some(Some(HealthcheckConfig { interval, timeout }))
        }
        _ => {
            ctx.expected(
                node,
                path,
                "true, false or a mapping with interval_ms and timeout_ms",
            );
            None
        }
    }
}

/// A boolean field with a default.
fn flag(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    path: &str,
    key: &str,
    default: bool,
) -> Option<bool> {
    match fields.get(key) {
        None => Some(default),
        Some(n) => ctx.boolean(n, &child_path(path, key)),
    }
}

#[cfg(test)]
mod tests;
