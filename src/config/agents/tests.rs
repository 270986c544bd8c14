//! Tests of the agent files: what loads, what each agent is offered, and every message a
//! mistake gets.

use std::fs;
use std::time::Duration;

use super::globs::never_matching;
use super::*;
use crate::config::model::AgentLimits;
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
    BUNDLED_TOOLS
        .iter()
        .copied()
        .filter(|t| agent.tools.is_match(t))
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
    assert_eq!(assistant.tools.patterns(), ["*"]);
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
            tools: ToolGlobs::default(),
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
    assert!(a.tools.patterns().is_empty());
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
    assert_eq!(a.tools.patterns(), ["notes__*"]);
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
