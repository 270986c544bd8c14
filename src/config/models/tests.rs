//! Tests of the `models:` section: what loads, and every message a mistake gets.

use std::path::Path;
use std::time::Duration;

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
    assert!(MODEL_NAME.accepts("qwen2.5:7b-instruct_Q4"));
    assert!(MODEL_NAME.accepts(&"a".repeat(64)));
    assert!(!MODEL_NAME.accepts(&"a".repeat(65)));
    assert!(!MODEL_NAME.accepts(""));
    assert!(!MODEL_NAME.accepts("a b"));
    assert!(!MODEL_NAME.accepts("gpt/4"));
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
