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
use std::time::Duration;

use url::Url;

use super::error::{child_path, item_path, shown};
use super::fields::{Ctx, Fields};
use super::mcp_servers::{MapKind, string_map};
use super::model::{HealthcheckConfig, ModelConfig, ProviderKind, RetryPolicy, Secret};
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
/// Longest accepted timeout: a day.
const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;
/// Default `retry.max_attempts`.
const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Most attempts `retry.max_attempts` may ask for.
const MAX_ATTEMPTS: u64 = 10;

const TIMEOUT: Millis = Millis {
    key: "timeout_ms",
    min: 1,
    max: MAX_TIMEOUT_MS,
    default: 120_000,
};
const FIRST_TOKEN_TIMEOUT: Millis = Millis {
    key: "first_token_timeout_ms",
    min: 1,
    max: MAX_TIMEOUT_MS,
    default: 30_000,
};
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
const DEADLINE: Millis = Millis {
    key: "deadline_ms",
    min: 1,
    max: MAX_TIMEOUT_MS,
    default: 60_000,
};
/// Probing more often than once a second would only load the provider.
const HEALTH_INTERVAL: Millis = Millis {
    key: "interval_ms",
    min: 1_000,
    max: MAX_TIMEOUT_MS,
    default: 60_000,
};
const HEALTH_TIMEOUT: Millis = Millis {
    key: "timeout_ms",
    min: 1,
    max: MAX_TIMEOUT_MS,
    default: 5_000,
};

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
pub(super) fn models(ctx: &mut Ctx<'_>, node: &Node) -> BTreeMap<String, ModelConfig> {
    let mut table = Table::default();
    match &node.value {
        Value::Null => {}
        Value::Seq(items) => {
            for (index, item) in items.iter().enumerate() {
                let read = entry(ctx, None, item, &item_path("models", index));
                table.add(ctx, read);
            }
        }
        Value::Map(entries) => {
            for entry_node in entries {
                if let Some(name) = ctx.key(entry_node, "models") {
                    let keyed = Some((name, entry_node.key.pos));
                    let path = child_path("models", name);
                    let read = entry(ctx, keyed, &entry_node.value, &path);
                    table.add(ctx, read);
                }
            }
        }
        _ => ctx.expected(node, "models", "a list of models"),
    }
    table.finish(ctx)
}

/// Whether `name` is usable as a model name: 1–64 of `[A-Za-z0-9_.:-]`.
pub(super) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// A millisecond field: its key, accepted range and default.
#[derive(Clone, Copy)]
struct Millis {
    key: &'static str,
    min: u64,
    max: u64,
    default: u64,
}

impl Millis {
    const fn default_duration(self) -> Duration {
        Duration::from_millis(self.default)
    }
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
    let model_name = match fields.get("model_name") {
        Some(n) => ctx
            .non_empty_string(n, &field("model_name"))
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
    };
    let max_tokens = match fields.get("max_tokens") {
        Some(n) => ctx
            .integer(n, &field("max_tokens"), 1, MAX_TOKENS)
            .and_then(|n| u32::try_from(n).ok())
            .map(Some),
        None if provider == Some(ProviderKind::Anthropic) => Some(Some(ANTHROPIC_MAX_TOKENS)),
        None => Some(None),
    };
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
    } else if !valid_name(name) {
        ctx.error(
            pos,
            path,
            format!(
                "invalid model name{}; use 1 to 64 characters from A-Z, a-z, 0-9, `_`, `.`, `:` and `-`",
                shown(name)
            ),
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

/// The value of a millisecond field, `Some(None)` when absent, `None` after an error.
fn given_millis(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    path: &str,
    spec: Millis,
) -> Option<Option<u64>> {
    match fields.get(spec.key) {
        None => Some(None),
        Some(n) => ctx
            .integer(n, &child_path(path, spec.key), spec.min, spec.max)
            .map(Some),
    }
}

/// A millisecond field, its default when absent.
fn millis(ctx: &mut Ctx<'_>, fields: &Fields<'_>, path: &str, spec: Millis) -> Option<Duration> {
    let value = given_millis(ctx, fields, path, spec)?.unwrap_or(spec.default);
    Some(Duration::from_millis(value))
}

/// Two millisecond fields where `low` must not exceed `high` (first token within the whole
/// request, first backoff within the cap, probe within its interval).
///
/// An absent `low` takes its default lowered to fit, so `timeout_ms: 10000` alone is fine. A
/// given `low` above `high` is an error even when `high` is the default: silently raising a
/// limit the user did not write would be a surprise.
fn ordered(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    path: &str,
    low: Millis,
    high: Millis,
) -> Option<(Duration, Duration)> {
    let low_given = given_millis(ctx, fields, path, low);
    let high_given = given_millis(ctx, fields, path, high);
    let (low_given, high_given) = (low_given?, high_given?);
    let high_value = high_given.unwrap_or(high.default);
    let low_value = match low_given {
        None => low.default.min(high_value),
        Some(value) if value > high_value => {
            let by_default = if high_given.is_none() {
                " by default"
            } else {
                ""
            };
            ctx.error(
                fields.get(low.key).and_then(|n| n.pos),
                &child_path(path, low.key),
                format!(
                    "must not exceed `{}` ({high_value}{by_default}), found {value}",
                    high.key
                ),
            );
            return None;
        }
        Some(value) => value,
    };
    Some((
        Duration::from_millis(low_value),
        Duration::from_millis(high_value),
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Config, load, load_str};

    const SENTINEL: &str = "sk-SENTINEL-123";

    fn env(name: &str) -> Option<String> {
        match name {
            "OPENAI_API_KEY" => Some("sk-from-env".to_owned()),
            "T" => Some("2500".to_owned()),
            _ => None,
        }
    }

    /// Loads `models` (lines written under `models:`) and compares the error lines (empty:
    /// must load).
    #[track_caller]
    fn check(models: &str, expected: &[&str]) -> Option<Config> {
        let text = format!("models:\n{models}");
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

    /// The one model named `name` from `models`, which must load.
    #[track_caller]
    fn model(models: &str, name: &str) -> ModelConfig {
        match check(models, &[]) {
            Some(mut config) => config.models.remove(name).expect("model present"),
            None => unreachable!(),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn openai_entry_with_defaults() {
        let m = model(
            "  - name: gpt\n    type: openai\n    base_url: https://api.openai.com/v1\n    model_name: gpt-4o-mini\n",
            "gpt",
        );
        assert_eq!(
            m,
            ModelConfig {
                name: "gpt".to_owned(),
                provider: ProviderKind::OpenAi,
                base_url: Url::parse("https://api.openai.com/v1").unwrap(),
                api_key: None,
                model_name: "gpt-4o-mini".to_owned(),
                max_tokens: None,
                tags: Vec::new(),
                timeout: ms(120_000),
                first_token_timeout: ms(30_000),
                retry: RetryPolicy {
                    max_attempts: 3,
                    initial_backoff: ms(500),
                    max_backoff: ms(8_000),
                    deadline: ms(60_000),
                },
                headers: BTreeMap::new(),
                api_version: None,
                healthcheck: Some(HealthcheckConfig {
                    interval: ms(60_000),
                    timeout: ms(5_000),
                }),
                default: false,
                enabled: true,
            }
        );
        assert_eq!(m.retry, RetryPolicy::default());
        assert_eq!(m.healthcheck, Some(HealthcheckConfig::default()));
    }

    #[test]
    fn anthropic_defaults_its_url_and_max_tokens() {
        let m = model(
            "  - {name: claude, type: anthropic, model_name: claude-sonnet-4-5}\n",
            "claude",
        );
        assert_eq!(m.provider, ProviderKind::Anthropic);
        assert_eq!(m.base_url.as_str(), "https://api.anthropic.com/");
        assert_eq!(m.max_tokens, Some(4096));
        assert_eq!(m.api_key, None);
        let m = model(
            "  - {name: c, type: anthropic, model_name: m, max_tokens: 100, base_url: 'http://127.0.0.1:9/anthropic'}\n",
            "c",
        );
        assert_eq!(m.max_tokens, Some(100));
        assert_eq!(m.base_url.as_str(), "http://127.0.0.1:9/anthropic");
    }

    #[test]
    fn type_aliases_and_case() {
        for (alias, kind) in [
            ("openai", ProviderKind::OpenAi),
            ("openai-compatible", ProviderKind::OpenAi),
            ("openai_compatible", ProviderKind::OpenAi),
            ("OpenAI", ProviderKind::OpenAi),
            ("anthropic", ProviderKind::Anthropic),
            ("claude", ProviderKind::Anthropic),
            ("'${KIND:-claude}'", ProviderKind::Anthropic),
        ] {
            let models =
                format!("  - {{name: m, type: {alias}, base_url: 'http://h/v1', model_name: x}}\n");
            assert_eq!(model(&models, "m").provider, kind, "{alias}");
        }
    }

    #[test]
    fn every_key_is_read() {
        let m = model(
            "  - name: azure-gpt4o
    type: openai-compatible
    base_url: https://res.openai.azure.com/openai/deployments/gpt4o
    api_key: ${OPENAI_API_KEY}
    model_name: gpt-4o
    max_tokens: 1000000
    tags: [azure, 1]
    timeout_ms: ${T}
    first_token_timeout_ms: '2500'
    retry: {max_attempts: 10, initial_backoff_ms: 1, max_backoff_ms: 1, deadline_ms: 86400000}
    headers: {X-Team: search}
    api_version: 2024-10-21
    healthcheck: {interval_ms: 1000, timeout_ms: 1000}
    default: true
    enabled: 'true'
",
            "azure-gpt4o",
        );
        assert_eq!(m.provider, ProviderKind::OpenAi);
        assert_eq!(
            m.base_url.as_str(),
            "https://res.openai.azure.com/openai/deployments/gpt4o"
        );
        assert_eq!(m.api_key.as_ref().map(Secret::expose), Some("sk-from-env"));
        assert_eq!(m.model_name, "gpt-4o");
        assert_eq!(m.max_tokens, Some(1_000_000));
        assert_eq!(m.tags, ["azure", "1"]);
        assert_eq!((m.timeout, m.first_token_timeout), (ms(2500), ms(2500)));
        assert_eq!(
            m.retry,
            RetryPolicy {
                max_attempts: 10,
                initial_backoff: ms(1),
                max_backoff: ms(1),
                deadline: ms(86_400_000),
            }
        );
        assert_eq!(m.headers["X-Team"], "search");
        assert_eq!(m.api_version.as_deref(), Some("2024-10-21"));
        assert_eq!(
            m.healthcheck,
            Some(HealthcheckConfig {
                interval: ms(1000),
                timeout: ms(1000),
            })
        );
        assert!(m.default && m.enabled);
    }

    #[test]
    fn empty_api_key_means_none() {
        for value in ["''", "${ANTHROPIC_API_KEY:-}", "'  '", "~", ""] {
            let models =
                format!("  - name: c\n    type: claude\n    model_name: m\n    api_key: {value}\n");
            assert_eq!(model(&models, "c").api_key, None, "{value}");
        }
        let m = model(
            "  - {name: c, type: claude, model_name: m, api_key: ' sk-abc '}\n",
            "c",
        );
        assert_eq!(m.api_key, Some(Secret::new("sk-abc")));
    }

    #[test]
    fn healthcheck_forms() {
        let hc = |value: &str| {
            let models = format!(
                "  - name: m\n    type: anthropic\n    model_name: x\n    healthcheck: {value}\n"
            );
            model(&models, "m").healthcheck
        };
        let default = Some(HealthcheckConfig::default());
        assert_eq!(hc("true"), default);
        assert_eq!(hc(""), default);
        assert_eq!(hc("{}"), default);
        assert_eq!(hc("false"), None);
        assert_eq!(hc("${HC:-false}"), None);
        assert_eq!(
            hc("{interval_ms: 2000}"),
            Some(HealthcheckConfig {
                interval: ms(2000),
                timeout: ms(2000),
            })
        );
        assert_eq!(
            hc("{timeout_ms: 100}"),
            Some(HealthcheckConfig {
                interval: ms(60_000),
                timeout: ms(100),
            })
        );
    }

    #[test]
    fn defaults_fit_the_limits_that_are_given() {
        let m = model(
            "  - name: m\n    type: claude\n    model_name: x\n    timeout_ms: 10000\n    retry: {max_backoff_ms: 100}\n",
            "m",
        );
        assert_eq!(m.timeout, ms(10_000));
        assert_eq!(m.first_token_timeout, ms(10_000));
        assert_eq!(m.retry.initial_backoff, ms(100));
        assert_eq!(m.retry.max_backoff, ms(100));
    }

    #[test]
    fn missing_required_keys() {
        check(
            "  - tags: [a]\n",
            &[
                "t.yaml:2:5: models[0]: missing `name` (what users pick, such as gpt-4o-mini)",
                "t.yaml:2:5: models[0]: missing `type`; expected one of: openai (any OpenAI-compatible server), anthropic",
                "t.yaml:2:5: models[0]: missing `model_name` (the provider's id for the model, such as gpt-4o-mini)",
            ],
        );
        check(
            "  - name: m\n    type: openai\n    model_name: x\n",
            &[
                "t.yaml:2:5: models[0]: missing `base_url`, which `type: openai` requires, such as https://api.openai.com/v1 or http://127.0.0.1:11434/v1 (Ollama)",
            ],
        );
        check(
            "  - name: m\n  -\n",
            &[
                "t.yaml:2:5: models[0]: missing `type`; expected one of: openai (any OpenAI-compatible server), anthropic",
                "t.yaml:2:5: models[0]: missing `model_name` (the provider's id for the model, such as gpt-4o-mini)",
                "t.yaml:3:4: models[1]: empty model entry; give at least `name`, `type` and `model_name`",
            ],
        );
        check(
            "  - {name: m, type: claude, model_name: ''}\n",
            &["t.yaml:2:41: models[0].model_name: must not be empty"],
        );
    }

    #[test]
    fn misspelled_keys_are_suggested_and_reported_once() {
        check(
            "  - name: m\n    typ: openai\n    baseurl: http://h/v1\n    model: x\n    modelName: x\n",
            &[
                &format!(
                    "t.yaml:3:5: models[0].typ: unknown key `typ` (did you mean `type`?); expected one of: {}",
                    MODEL_KEYS.join(", ")
                ),
                &format!(
                    "t.yaml:4:5: models[0].baseurl: unknown key `baseurl` (did you mean `base_url`?); expected one of: {}",
                    MODEL_KEYS.join(", ")
                ),
                &format!(
                    "t.yaml:5:5: models[0].model: unknown key `model`; expected one of: {}",
                    MODEL_KEYS.join(", ")
                ),
                &format!(
                    "t.yaml:6:5: models[0].modelName: unknown key `modelName` (did you mean `model_name`?); expected one of: {}",
                    MODEL_KEYS.join(", ")
                ),
            ],
        );
        check(
            "  - name: m\n    type: claude\n    model_name: x\n    retry: {max_attemps: 2}\n    healthcheck: {intervall_ms: 2000}\n",
            &[
                "t.yaml:5:13: models[0].retry.max_attemps: unknown key `max_attemps` (did you mean `max_attempts`?); expected one of: max_attempts, initial_backoff_ms, max_backoff_ms, deadline_ms",
                "t.yaml:6:19: models[0].healthcheck.intervall_ms: unknown key `intervall_ms` (did you mean `interval_ms`?); expected one of: interval_ms, timeout_ms",
            ],
        );
    }

    #[test]
    fn unknown_type_lists_the_choices() {
        check(
            "  - {name: m, type: open-ai, base_url: 'http://h/v1', model_name: x}\n  - {name: n, type: gemini, model_name: x}\n",
            &[
                "t.yaml:2:21: models[0].type: unknown model type `open-ai` (did you mean `openai`?); expected one of: openai, anthropic, openai-compatible, openai_compatible, claude",
                "t.yaml:3:21: models[1].type: unknown model type `gemini`; expected one of: openai, anthropic, openai-compatible, openai_compatible, claude",
            ],
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("qwen2.5:7b-instruct_Q4"));
        assert!(valid_name(&"a".repeat(64)));
        assert!(!valid_name(&"a".repeat(65)));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name("gpt/4"));
        check(
            "  - {name: 'my model', type: claude, model_name: x}\n  - {name: 'agent:writer', type: claude, model_name: x}\n  - {name: 'Agent:x', type: claude, model_name: x}\n  - {name: '', type: claude, model_name: x}\n",
            &[
                "t.yaml:2:12: models[0].name: invalid model name `my model`; use 1 to 64 characters from A-Z, a-z, 0-9, `_`, `.`, `:` and `-`",
                "t.yaml:3:12: models[1].name: model names starting with `agent:` are reserved for agents (`agent:NAME` picks an agent); choose another name",
                "t.yaml:4:12: models[2].name: model names starting with `agent:` are reserved for agents (`agent:NAME` picks an agent); choose another name",
                "t.yaml:5:12: models[3].name: invalid model name ``; use 1 to 64 characters from A-Z, a-z, 0-9, `_`, `.`, `:` and `-`",
            ],
        );
        // `agent` alone, or with another separator, is an ordinary name.
        model("  - {name: agent, type: claude, model_name: x}\n", "agent");
        model(
            "  - {name: 'agent.x', type: claude, model_name: x}\n",
            "agent.x",
        );
    }

    #[test]
    fn duplicate_names_point_at_the_first_use() {
        check(
            "  - {name: m, type: claude, model_name: a}
  - {name: n, type: claude, model_name: b}
  - name: m
    type: claude
    model_name: c
",
            &[
                "t.yaml:4:11: models[2].name: model name `m` is already used by models[0] at line 2; model names must be unique",
            ],
        );
        // An invalid duplicate is still found, and named even when disabled.
        check(
            "  - {name: m, type: claude, model_name: a, enabled: false}\n  - {name: m, type: nope, model_name: b}\n",
            &[
                "t.yaml:3:12: models[1].name: model name `m` is already used by models[0] at line 2; model names must be unique",
                "t.yaml:3:21: models[1].type: unknown model type `nope`; expected one of: openai, anthropic, openai-compatible, openai_compatible, claude",
            ],
        );
    }

    #[test]
    fn at_most_one_enabled_default() {
        check(
            "  - {name: a, type: claude, model_name: x, default: true}
  - {name: b, type: claude, model_name: x, default: true, enabled: false}
  - {name: c, type: claude, model_name: x, default: false}
  - {name: d, type: claude, model_name: x, default: true}
  - {name: 'bad name', type: claude, model_name: x, default: 'true'}
",
            &[
                "t.yaml:5:53: models[3].default: 3 enabled models have `default: true`: `a` (models[0] at line 2), `d` (models[3] at line 5), models[4] at line 6; keep it on one of them",
                "t.yaml:6:12: models[4].name: invalid model name `bad name`; use 1 to 64 characters from A-Z, a-z, 0-9, `_`, `.`, `:` and `-`",
            ],
        );
        let config = check(
            "  - {name: a, type: claude, model_name: x, default: true, enabled: false}\n  - {name: b, type: claude, model_name: x, default: true}\n",
            &[],
        )
        .unwrap();
        // A disabled entry is never the default, so at most one loaded model has it.
        assert!(!config.models["a"].default && !config.models["a"].enabled);
        assert!(config.models["b"].default);
        let config = check("  - {name: a, type: claude, model_name: x}\n", &[]).unwrap();
        assert!(!config.models["a"].default);
    }

    #[test]
    fn numeric_limits() {
        check(
            "  - name: m
    type: claude
    model_name: x
    max_tokens: 0
    timeout_ms: 86400001
    retry:
      max_attempts: 11
      initial_backoff_ms: 0
      max_backoff_ms: 600001
      deadline_ms: 0
    healthcheck:
      interval_ms: 999
      timeout_ms: 0
  - {name: n, type: claude, model_name: x, max_tokens: 1000001, first_token_timeout_ms: 0, retry: {max_attempts: 0}}
  - {name: o, type: claude, model_name: x, max_tokens: 1.5, timeout_ms: '${NOPE:-soon}'}
",
            &[
                "t.yaml:5:17: models[0].max_tokens: must be between 1 and 1000000, found 0",
                "t.yaml:6:17: models[0].timeout_ms: must be between 1 and 86400000, found 86400001",
                "t.yaml:8:21: models[0].retry.max_attempts: must be between 1 and 10, found 11",
                "t.yaml:9:27: models[0].retry.initial_backoff_ms: must be between 1 and 60000, found 0",
                "t.yaml:10:23: models[0].retry.max_backoff_ms: must be between 1 and 600000, found 600001",
                "t.yaml:11:20: models[0].retry.deadline_ms: must be between 1 and 86400000, found 0",
                "t.yaml:13:20: models[0].healthcheck.interval_ms: must be between 1000 and 86400000, found 999",
                "t.yaml:14:19: models[0].healthcheck.timeout_ms: must be between 1 and 86400000, found 0",
                "t.yaml:15:56: models[1].max_tokens: must be between 1 and 1000000, found 1000001",
                "t.yaml:15:89: models[1].first_token_timeout_ms: must be between 1 and 86400000, found 0",
                "t.yaml:15:114: models[1].retry.max_attempts: must be between 1 and 10, found 0",
                "t.yaml:16:56: models[2].max_tokens: expected an integer between 1 and 1000000, found a number",
                "t.yaml:16:73: models[2].timeout_ms: expected an integer between 1 and 86400000, found a string",
            ],
        );
    }

    #[test]
    fn limits_must_be_in_order() {
        check(
            "  - name: m
    type: claude
    model_name: x
    timeout_ms: 10000
    first_token_timeout_ms: 20000
    retry: {initial_backoff_ms: 9000}
    healthcheck: {interval_ms: 2000, timeout_ms: 3000}
  - {name: n, type: claude, model_name: x, first_token_timeout_ms: 200000}
",
            &[
                "t.yaml:6:29: models[0].first_token_timeout_ms: must not exceed `timeout_ms` (10000), found 20000",
                "t.yaml:7:33: models[0].retry.initial_backoff_ms: must not exceed `max_backoff_ms` (8000 by default), found 9000",
                "t.yaml:8:50: models[0].healthcheck.timeout_ms: must not exceed `interval_ms` (2000), found 3000",
                "t.yaml:9:68: models[1].first_token_timeout_ms: must not exceed `timeout_ms` (120000 by default), found 200000",
            ],
        );
    }

    #[test]
    fn base_url_problems() {
        check(
            "  - {name: a, type: openai, model_name: x, base_url: api.openai.com/v1}
  - {name: b, type: openai, model_name: x, base_url: 'localhost:11434/v1'}
  - {name: c, type: openai, model_name: x, base_url: 'ftp://h/v1'}
  - {name: d, type: openai, model_name: x, base_url: ''}
  - {name: e, type: openai, model_name: x, base_url: 'http://'}
  - {name: f, type: openai, model_name: x, base_url: 'https://api.openai.com/v1/chat/completions/'}
  - {name: g, type: claude, model_name: x, base_url: 'https://api.anthropic.com/v1/messages'}
  - {name: h, type: openai, model_name: x, base_url: [a]}
",
            &[
                "t.yaml:2:54: models[0].base_url: not a valid URL (relative URL without a base); write it in full, such as https://api.openai.com/v1",
                "t.yaml:3:54: models[1].base_url: URL scheme must be http or https; write it in full, such as http://127.0.0.1:11434/v1",
                "t.yaml:4:54: models[2].base_url: URL scheme must be http or https; write it in full, such as http://127.0.0.1:11434/v1",
                "t.yaml:5:54: models[3].base_url: must not be empty",
                "t.yaml:6:54: models[4].base_url: not a valid URL (empty host)",
                "t.yaml:7:54: models[5].base_url: give the API root without the trailing `/chat/completions`; the client appends it to every request",
                "t.yaml:8:54: models[6].base_url: give the API root without the trailing `/v1/messages`; the client appends it to every request",
                "t.yaml:9:54: models[7].base_url: expected a string, found a list",
            ],
        );
    }

    #[test]
    fn headers_and_api_version() {
        check(
            "  - name: a
    type: openai
    base_url: http://h/v1
    model_name: x
    headers: {'Bad Header': x, X-Ok: \"a\\nb\"}
    api_version: '2024 10'
  - {name: b, type: claude, model_name: x, api_version: 2023-06-01, headers: [a]}
",
            &[
                "t.yaml:6:15: models[0].headers[\"Bad Header\"]: invalid header name; use letters, digits and !#$%&'*+-.^_`|~",
                "t.yaml:6:38: models[0].headers.X-Ok: the value contains a line break or control character",
                "t.yaml:7:18: models[0].api_version: invalid API version; use letters, digits, `.`, `_` and `-`, such as 2024-10-21",
                "t.yaml:8:44: models[1].api_version: `api_version` only applies to `type: openai` (Azure OpenAI)",
                "t.yaml:8:78: models[1].headers: expected a mapping, found a list",
            ],
        );
    }

    #[test]
    fn section_and_entry_shapes() {
        check(
            "  gpt-4o\n",
            &["t.yaml:2:3: models: expected a list of models, found a string"],
        );
        check(
            "  - gpt-4o\n  - [a]\n",
            &[
                "t.yaml:2:5: models[0]: expected a mapping, found a string",
                "t.yaml:3:5: models[1]: expected a mapping, found a list",
            ],
        );
        check(
            "  - {name: m, type: claude, model_name: x, tags: a, enabled: maybe, default: 1, healthcheck: 5}\n",
            &[
                "t.yaml:2:50: models[0].tags: expected a list of strings, found a string",
                "t.yaml:2:62: models[0].enabled: expected true or false, found a string",
                "t.yaml:2:78: models[0].default: expected true or false, found an integer",
                "t.yaml:2:94: models[0].healthcheck: expected true, false or a mapping with interval_ms and timeout_ms, found an integer",
            ],
        );
        let config = check("", &[]).unwrap();
        assert!(config.models.is_empty());
        let config = check("  []\n", &[]).unwrap();
        assert!(config.models.is_empty());
    }

    #[test]
    fn mapping_form_takes_names_from_keys() {
        let config = check(
            "  zeta: {type: claude, model_name: z}
  alpha:
    name: alpha
    type: openai
    base_url: http://127.0.0.1:11434/v1
    model_name: llama3.1
",
            &[],
        )
        .unwrap();
        assert_eq!(config.models.keys().collect::<Vec<_>>(), ["alpha", "zeta"]);
        assert_eq!(config.models["zeta"].name, "zeta");
        check(
            "  'bad name': {type: claude, model_name: z}\n  ok:\n    name: other\n    type: claude\n    model_name: z\n  empty:\n",
            &[
                "t.yaml:2:3: models[\"bad name\"]: invalid model name `bad name`; use 1 to 64 characters from A-Z, a-z, 0-9, `_`, `.`, `:` and `-`",
                "t.yaml:4:11: models.ok.name: differs from the key `ok` above it; in the `models:` mapping the key is the name, so remove `name`",
                "t.yaml:7:3: models.empty: empty model entry; give at least `type` and `model_name`",
            ],
        );
    }

    #[test]
    fn every_error_is_reported_at_once() {
        check(
            "  - name: ok
    type: openai
    base_url: http://127.0.0.1:11434/v1
    model_name: llama3.1
  - name: broken
    type: anthropic
    model_name: x
    max_tokens: -1
    retry: {max_attempts: 0, deadline_ms: 0}
    headers: {'a b': c}
    colour: blue
  - name: ok
    type: openai
    base_url: ${MISSING_URL}
",
            &[
                "t.yaml:9:17: models[1].max_tokens: must be between 1 and 1000000, found -1",
                "t.yaml:10:27: models[1].retry.max_attempts: must be between 1 and 10, found 0",
                "t.yaml:10:43: models[1].retry.deadline_ms: must be between 1 and 86400000, found 0",
                "t.yaml:11:15: models[1].headers[\"a b\"]: invalid header name; use letters, digits and !#$%&'*+-.^_`|~",
                &format!(
                    "t.yaml:12:5: models[1].colour: unknown key `colour`; expected one of: {}",
                    MODEL_KEYS.join(", ")
                ),
                "t.yaml:13:5: models[2]: missing `model_name` (the provider's id for the model, such as gpt-4o-mini)",
                "t.yaml:13:11: models[2].name: model name `ok` is already used by models[0] at line 2; model names must be unique",
                "t.yaml:15:15: models[2].base_url: environment variable `MISSING_URL` is not set (give a default with `${MISSING_URL:-default}`)",
            ],
        );
    }

    #[test]
    fn api_keys_never_appear_in_errors_or_debug_output() {
        let text = format!(
            "\
models:
  - name: one
    type: opneai
    api_key: \"{SENTINEL}\\u0007\\nx\"
    model_name: [x]
  - name: two
    type: openai
    base_url: '{SENTINEL}:x'
    api_key: {SENTINEL}
    model_name: ''
  - name: three
    type: openai
    base_url: 'https://user:{SENTINEL}@h:99999/v1'
    api_key: [{SENTINEL}]
    model_name: x
    headers:
      Authorization: \"Bearer {SENTINEL}\\r\\n\"
      'Bad Header': {SENTINEL}
  - name: four
    type: openai
    base_url: 'http://h/v1?key={SENTINEL}'
    api_key: {SENTINEL}
    model_name: x
  - name: four
    type: claude
    api_key: {SENTINEL}
    model_name: x
    api_version: {SENTINEL}
"
        );
        let errors = load_str(&text, Path::new("t.yaml"), &env).unwrap_err();
        let shown = errors.to_string();
        assert_eq!(errors.0.len(), 11, "{shown}");
        for error in &errors.0 {
            let message = error.to_string();
            assert!(!message.contains(SENTINEL), "{message}");
            assert!(!message.to_lowercase().contains("sentinel"), "{message}");
        }
        assert!(!format!("{errors:?}").contains("SENTINEL"));

        let config = check(
            &format!(
                "  - {{name: a, type: openai, base_url: 'http://h/v1', api_key: '{SENTINEL}', model_name: x}}\n"
            ),
            &[],
        )
        .unwrap();
        assert_eq!(
            config.models["a"].api_key.as_ref().map(Secret::expose),
            Some(SENTINEL)
        );
        let debug = format!("{config:?} {config:#?}");
        assert!(!debug.contains(SENTINEL), "{debug}");
        assert!(debug.contains("Secret(***)"), "{debug}");
    }

    #[test]
    fn odd_values_in_every_field_never_panic_or_leak() {
        const VALUES: &[&str] = &[
            "~",
            "''",
            "0",
            "-1",
            "99999999999999999999",
            "1.5",
            "true",
            "'false'",
            "[a, 1]",
            "{a: b}",
            "{max_attempts: x, interval_ms: 1}",
            "!t x",
            "'${'",
            "${NOPE}",
            "'${X:-sk-SENTINEL-123}'",
            "'sk-SENTINEL-123'",
            "\"sk-SENTINEL-123\\u0007\"",
            "'http://sk-SENTINEL-123:1/v1'",
            "'sk-SENTINEL-123://h'",
            "'agent:x'",
            "anthropic",
        ];
        for key in MODEL_KEYS {
            for value in VALUES {
                let text = format!(
                    "models:\n  - name: m\n    type: openai\n    base_url: http://h/v1\n    model_name: x\n    {key}: {value}\n"
                );
                // Keys given twice are a YAML error; everything else must load or be reported.
                // Errors may quote a bad name or type, never anything else; `Debug` of a loaded
                // config shows everything but the API key.
                let (shown, may_show) = match load_str(&text, Path::new("t.yaml"), &env) {
                    Ok(config) => (format!("{config:?}"), *key != "api_key"),
                    Err(errors) => (errors.to_string(), matches!(*key, "name" | "type")),
                };
                if !may_show {
                    assert!(!shown.contains("SENTINEL"), "{key}: {value}: {shown}");
                }
            }
        }
    }

    #[test]
    fn the_example_config_has_working_models() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.yaml");
        let config = match load(&path, &|_| None) {
            Ok(config) => config,
            Err(errors) => panic!("the example config does not load:\n{errors}"),
        };
        let names: Vec<&String> = config.models.keys().collect();
        assert_eq!(
            names,
            ["claude-sonnet", "fake", "gpt-4o-mini", "local-ollama"]
        );
        // The offline demo's fake model is off unless SWITCHBOARD_FAKE_LLM=true.
        let fake = &config.models["fake"];
        assert!(!fake.enabled && !fake.default);
        let local = &config.models["local-ollama"];
        assert_eq!(local.provider, ProviderKind::OpenAi);
        assert_eq!(local.base_url.as_str(), "http://127.0.0.1:11434/v1");
        assert_eq!(local.model_name, "llama3.1");
        assert_eq!(local.api_key, None);
        assert_eq!(local.tags, ["local"]);
        let claude = &config.models["claude-sonnet"];
        assert_eq!(claude.provider, ProviderKind::Anthropic);
        assert_eq!(claude.base_url.as_str(), "https://api.anthropic.com/");
        assert_eq!(claude.max_tokens, Some(4096));
        assert_eq!(claude.api_key, None);
        assert_eq!(config.models["gpt-4o-mini"].api_key, None);
        assert!(
            config
                .models
                .values()
                .all(|m| (m.enabled || m.name == "fake") && !m.default)
        );

        let env = |name: &str| match name {
            "OLLAMA_BASE_URL" => Some("http://gpu-box:8000/v1".to_owned()),
            "OPENAI_API_KEY" => Some("sk-test".to_owned()),
            _ => None,
        };
        let config = load(&path, &env).unwrap();
        assert_eq!(
            config.models["local-ollama"].base_url.as_str(),
            "http://gpu-box:8000/v1"
        );
        assert_eq!(
            config.models["gpt-4o-mini"].api_key,
            Some(Secret::new("sk-test"))
        );
    }
}
