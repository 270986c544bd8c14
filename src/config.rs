//! Loading `switchboard.yaml` into a validated [`Config`].
//!
//! The file is parsed with saphyr's marked YAML so every value has a line and column, then
//! walked by hand into [`model`] types. Nothing stops at the first problem: every error is
//! collected with its file, position and dotted key path, and any error fails the load.
//!
//! Submodules, each with one job: `files` (reading from disk), `yaml` / `json` (text to a
//! positioned tree), `interpolate` (`${VAR}`), `fields` (typed reads that record errors),
//! `suggest` (did-you-mean), `settings` (`server:` / `tools:`), `models` (the `models:` list),
//! `mcp_servers` (one server entry), `include` (Claude Desktop / Cursor JSON files), `agents`
//! (the `agents/*.yaml` files), `document` (the top level), `error` (the error types),
//! `specs` (field specs the sections share), `outbound` (`server.outbound`, and the check of
//! each remote URL's literal host against it).
//!
//! [`environment`] is the other half of start-up: the process environment, captured once, and
//! the typed settings read from it (listen address, directories, the OTLP exporter).

pub mod environment;
pub mod model;

mod access;
mod agents;
mod approval;
mod document;
mod error;
mod fields;
mod files;
mod include;
mod interpolate;
mod json;
mod mcp_servers;
mod models;
mod outbound;
mod settings;
mod specs;
mod suggest;
mod yaml;

use std::path::Path;

pub use environment::{EnvError, EnvSettings, Environment};
pub use error::{ConfigError, ConfigErrors};
pub use model::{
    AgentConfig, AgentLimits, AgentMode, AuthMode, CallQuota, Config, HealthcheckConfig,
    LimitOverrides, Limits, McpServerConfig, ModelConfig, ProviderKind, RetryPolicy, RoleConfig,
    Secret, ServerSettings, TelemetryConfig, ToolFilter, ToolGlobs, ToolSettings, TransportConfig,
};

use fields::Ctx;

/// Variable that `${SWITCHBOARD_BIN}` falls back to `std::env::current_exe()` for, so the
/// default config can run the bundled servers from the same binary.
pub const SWITCHBOARD_BIN: &str = "SWITCHBOARD_BIN";

/// Loads and validates the config file at `path`.
///
/// `env` looks up environment variables for `${VAR}` (`app::load_config` passes the
/// [`Environment`] snapshot taken in `main`, tests pass a map), which keeps loading deterministic
/// under test.
///
/// # Errors
/// Every problem found, each with file, line, column and key path.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let text = files::read_text(path).map_err(|e| {
        ConfigErrors::file(
            path,
            e.pos,
            format!("cannot read config file: {}", e.message),
        )
    })?;
    load_str(&text, path, env)
}

/// Like [`load`] for text already in memory; `source` names the file in errors and its
/// directory anchors relative `include` paths.
///
/// # Errors
/// Every problem found, each with file, line, column and key path.
pub fn load_str(
    text: &str,
    source: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    files::check_size(text.len()).map_err(|message| ConfigErrors::file(source, None, message))?;
    let root = yaml::parse(files::strip_bom(text))
        .map_err(|e| ConfigErrors::file(source, e.pos, format!("invalid YAML: {}", e.message)))?;
    let lookup = |name: &str| env(name).or_else(|| builtin(name));
    let mut errors = Vec::new();
    let mut ctx = Ctx {
        file: source,
        env: Some(&lookup),
        errors: &mut errors,
    };
    let config = document::build(&mut ctx, &root, source);
    if errors.is_empty() {
        Ok(config)
    } else {
        let mut errors = ConfigErrors(errors);
        errors.sort();
        Err(errors)
    }
}

/// Variables we define ourselves when the environment does not.
fn builtin(name: &str) -> Option<String> {
    if name != SWITCHBOARD_BIN {
        return None;
    }
    own_binary().map(str::to_owned)
}

/// This binary's path, read once. Once the file is replaced while we run (a rebuild, an upgrade
/// in place), Linux names the running image `PATH (deleted)`: every bundled server would then
/// look changed on reload and fail to start. The config means the path, so that is what we keep.
fn own_binary() -> Option<&'static str> {
    static PATH: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::current_exe()
            .ok()?
            .into_os_string()
            .into_string()
            .ok()?;
        Some(without_deleted_marker(path))
    })
    .as_deref()
}

/// `path` without the ` (deleted)` Linux appends to a replaced executable, when a file is back
/// at the original path.
fn without_deleted_marker(path: String) -> String {
    match path.strip_suffix(" (deleted)") {
        Some(original) if Path::new(original).is_file() => original.to_owned(),
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn a_replaced_binary_keeps_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let binary = dir.path().join("switchboard");
        let marked = format!("{} (deleted)", binary.display());
        assert_eq!(
            without_deleted_marker(marked.clone()),
            marked,
            "nothing at the path yet"
        );
        std::fs::write(&binary, b"new build").expect("write");
        assert_eq!(without_deleted_marker(marked), binary.display().to_string());
        let plain = binary.display().to_string();
        assert_eq!(without_deleted_marker(plain.clone()), plain);
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".to_owned()),
            "PORT" => Some("3000".to_owned()),
            "API_TOKEN" => Some("sk-secret-token-value".to_owned()),
            _ => None,
        }
    }

    /// Loads `text` as `t.yaml` and compares the error lines (empty: must load).
    #[track_caller]
    fn check(text: &str, expected: &[&str]) -> Option<Config> {
        match load_str(text, Path::new("t.yaml"), &env) {
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

    #[test]
    fn empty_file_is_a_valid_config_with_defaults() {
        for text in ["", "# only a comment\n", "server:\ntools:\nmcpServers:\n"] {
            let config = check(text, &[]).unwrap();
            assert!(config.mcp_servers.is_empty());
            assert_eq!(config.server.bind, SocketAddr::from(([127, 0, 0, 1], 8080)));
            assert_eq!(config.server.data_dir, PathBuf::from("./data"));
            assert_eq!(config.tools.max_result_bytes, 256 * 1024);
            assert_eq!(config.tools.max_tools_per_server, 256);
            assert_eq!(config.tools.max_description_chars, 2048);
            assert_eq!(config.tools.max_argument_bytes, 256 * 1024);
            assert_eq!(config.source, PathBuf::from("t.yaml"));
        }
    }

    #[test]
    fn sections_are_read() {
        let config = check(
            "server:\n  bind: '[::1]:${PORT}'\n  data_dir: ${HOME}/sb\n  run_lease_ms: 5000\ntools:\n  max_result_bytes: 1000\n  max_tools_per_server: '10'\n  max_description_chars: ${N:-99}\n  max_argument_bytes: 4096\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.server.bind, "[::1]:3000".parse().unwrap());
        assert_eq!(config.server.data_dir, PathBuf::from("/home/me/sb"));
        assert_eq!(config.server.run_lease, std::time::Duration::from_secs(5));
        assert_eq!(config.server.max_messages, 1000);
        assert_eq!(config.server.max_message_chars, 200_000);
        assert_eq!(config.tools.max_result_bytes, 1000);
        assert_eq!(config.tools.max_tools_per_server, 10);
        assert_eq!(config.tools.max_description_chars, 99);
        assert_eq!(config.tools.max_argument_bytes, 4096);
    }

    #[test]
    fn section_errors() {
        check(
            "server:\n  bind: localhost:80\n  data_dir: ''\n  run_lease_ms: 50\ntools:\n  max_result_bytes: 0\n  max_tools: 5\n  max_argument_bytes: 0\n",
            &[
                "t.yaml:2:9: server.bind: not a valid socket address `localhost:80`; expected IP:PORT such as 127.0.0.1:8080 or [::1]:8080 (host names are not resolved)",
                "t.yaml:3:13: server.data_dir: must not be empty",
                "t.yaml:4:17: server.run_lease_ms: must be between 1000 and 3600000, found 50",
                "t.yaml:6:21: tools.max_result_bytes: must be between 1 and 1073741824, found 0",
                "t.yaml:7:3: tools.max_tools: unknown key `max_tools`; expected one of: max_result_bytes, max_tools_per_server, max_description_chars, max_argument_bytes, drop_steering",
                "t.yaml:8:23: tools.max_argument_bytes: must be between 1 and 1073741824, found 0",
            ],
        );
        check(
            "server: 8080\n",
            &["t.yaml:1:9: server: expected a mapping, found an integer"],
        );
    }

    #[test]
    fn public_hosts_and_allowed_origins_are_checked_one_by_one() {
        let config = check(
            "server:\n  public_hosts: [Switchboard.Internal, 10.0.0.5, '::1']\n  allowed_origins: ['https://Tools.Example.com', 'http://[::1]:8080', 'http://a.test:3000']\n  max_messages: 20\n  max_message_chars: 300\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            config.server.public_hosts,
            ["switchboard.internal", "10.0.0.5", "::1"]
        );
        assert_eq!(
            config.server.allowed_origins,
            [
                "https://tools.example.com",
                "http://[::1]:8080",
                "http://a.test:3000"
            ]
        );
        assert_eq!(
            (config.server.max_messages, config.server.max_message_chars),
            (20, 300)
        );
        check(
            "server:\n  public_hosts: [ok.test, 'http://x.test', 'a.test:80', '']\n  allowed_origins: [a.test, 'https://a.test/', 'ftp://a.test', 'https://a.test:99999']\n",
            &[
                "t.yaml:2:17: server.public_hosts[1]: expected a host name or IP address without scheme, port or path `http://x.test`",
                "t.yaml:2:17: server.public_hosts[2]: expected a host name or IP address without scheme, port or path `a.test:80`",
                "t.yaml:2:17: server.public_hosts[3]: must not be empty",
                "t.yaml:3:20: server.allowed_origins[0]: expected an origin such as https://tools.example.com (http or https, no path) `a.test`",
                "t.yaml:3:20: server.allowed_origins[1]: expected an origin such as https://tools.example.com (http or https, no path) `https://a.test/`",
                "t.yaml:3:20: server.allowed_origins[2]: expected an origin such as https://tools.example.com (http or https, no path) `ftp://a.test`",
                "t.yaml:3:20: server.allowed_origins[3]: expected an origin such as https://tools.example.com (http or https, no path) `https://a.test:99999`",
            ],
        );
    }

    #[test]
    fn top_level_must_be_a_mapping_of_known_sections() {
        check(
            "- a\n",
            &[
                "t.yaml:1:1: expected a mapping with sections such as `mcpServers:` at the top level, found a list",
            ],
        );
        check(
            "mcp_servers: {}\nservers: {}\n",
            &[
                "t.yaml:1:1: mcp_servers: unknown key `mcp_servers` (did you mean `mcpServers`?); expected one of: server, tools, models, mcpServers, include, agents_dir, roles, users, approval",
                "t.yaml:2:1: servers: unknown key `servers` (did you mean `server`?); expected one of: server, tools, models, mcpServers, include, agents_dir, roles, users, approval",
            ],
        );
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let text = "\
mcpServers:
  everything:
    comand: npx
    args: [a, b, {c: d}]
  remote:
    url: not a url
    timeout_ms: 0
";
        check(
            text,
            &[
                "t.yaml:3:5: mcpServers.everything.comand: unknown key `comand` (did you mean `command`?); expected one of: command, args, env, cwd, url, headers, type, enabled, disabled, tools, timeout_ms, init_timeout_ms, max_concurrency, roots, elicitation, log_level, sampling, trusted",
                "t.yaml:4:18: mcpServers.everything.args[2]: expected a string, found a mapping",
                "t.yaml:6:10: mcpServers.remote.url: not a valid URL (relative URL without a base)",
                "t.yaml:7:17: mcpServers.remote.timeout_ms: must be between 1 and 86400000, found 0",
            ],
        );
    }

    #[test]
    fn yaml_syntax_error_has_a_position() {
        let errors = load_str("mcpServers:\n  a: [1, 2\n", Path::new("t.yaml"), &env).unwrap_err();
        assert_eq!(errors.0.len(), 1);
        let e = &errors.0[0];
        assert!(e.line.is_some() && e.column.is_some(), "{e}");
        assert!(e.message.starts_with("invalid YAML: "), "{e}");
        check(
            "mcpServers:\n  a: {command: x}\n  a: {command: y}\n",
            &["t.yaml:3:3: invalid YAML: duplicated key in mapping"],
        );
    }

    #[test]
    fn missing_file_is_one_error_naming_the_path() {
        let errors = load(Path::new("/nonexistent/switchboard.yaml"), &env).unwrap_err();
        assert_eq!(
            errors.to_string(),
            "/nonexistent/switchboard.yaml: cannot read config file: no such file"
        );
    }

    #[test]
    fn load_reads_the_file_and_keeps_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.yaml");
        std::fs::write(&path, "mcpServers:\n  fs:\n    command: npx\n").unwrap();
        let config = load(&path, &env).unwrap();
        assert_eq!(config.source, path);
        assert!(config.mcp_servers.contains_key("fs"));
    }

    #[test]
    fn interpolation_in_args_urls_and_env() {
        let config = check(
            "\
mcpServers:
  local:
    command: ${SWITCHBOARD_BIN}
    args: [--port, '${PORT}', '${LEVEL:-info}', 'cost=$$5']
    env:
      TOKEN: ${API_TOKEN}
      PLAIN: $$HOME
  remote:
    url: http://127.0.0.1:${PORT}/mcp
    headers:
      Authorization: Bearer ${API_TOKEN}
",
            &[],
        )
        .unwrap();
        let TransportConfig::Stdio {
            command, args, env, ..
        } = &config.mcp_servers["local"].transport
        else {
            panic!("stdio expected")
        };
        let exe = std::env::current_exe().unwrap();
        assert_eq!(Path::new(command), exe);
        assert_eq!(args, &["--port", "3000", "info", "cost=$5"]);
        assert_eq!(env["TOKEN"], "sk-secret-token-value");
        assert_eq!(env["PLAIN"], "$HOME");
        let TransportConfig::StreamableHttp { url, headers } =
            &config.mcp_servers["remote"].transport
        else {
            panic!("streamable-http expected")
        };
        assert_eq!(url.as_str(), "http://127.0.0.1:3000/mcp");
        assert_eq!(headers["Authorization"], "Bearer sk-secret-token-value");
    }

    #[test]
    fn env_can_override_switchboard_bin() {
        let env = |name: &str| (name == SWITCHBOARD_BIN).then(|| "/opt/sb".to_owned());
        let config = load_str(
            "mcpServers:\n  a:\n    command: ${SWITCHBOARD_BIN}\n",
            Path::new("t.yaml"),
            &env,
        )
        .unwrap();
        assert!(matches!(
            &config.mcp_servers["a"].transport,
            TransportConfig::Stdio { command, .. } if command == "/opt/sb"
        ));
    }

    #[test]
    fn interpolation_errors_are_located_and_do_not_leak_values() {
        check(
            "\
mcpServers:
  a:
    command: ${MISSING_BIN}
    args: ['${A}${B}', '${oops']
    env:
      KEY: 'sk-${API_TOKEN}-${NOPE}'
",
            &[
                "t.yaml:3:14: mcpServers.a.command: environment variable `MISSING_BIN` is not set (give a default with `${MISSING_BIN:-default}`)",
                "t.yaml:4:12: mcpServers.a.args[0]: environment variable `A` is not set (give a default with `${A:-default}`)",
                "t.yaml:4:12: mcpServers.a.args[0]: environment variable `B` is not set (give a default with `${B:-default}`)",
                "t.yaml:4:24: mcpServers.a.args[1]: unclosed `${` (write `$$` for a literal `$`)",
                "t.yaml:6:12: mcpServers.a.env.KEY: environment variable `NOPE` is not set (give a default with `${NOPE:-default}`)",
            ],
        );
    }

    #[test]
    fn interpolated_values_cannot_inject_yaml() {
        let env = |name: &str| (name == "EVIL").then(|| "x\n  url: http://evil/".to_owned());
        let config = load_str(
            "mcpServers:\n  a:\n    command: ${EVIL}\n",
            Path::new("t.yaml"),
            &env,
        )
        .unwrap();
        assert!(matches!(
            &config.mcp_servers["a"].transport,
            TransportConfig::Stdio { command, .. } if command == "x\n  url: http://evil/"
        ));
    }

    #[test]
    fn keys_are_not_interpolated() {
        let config = check(
            "mcpServers:\n  a:\n    command: x\n    env:\n      ${HOME}: v\n",
            &[],
        )
        .unwrap();
        let TransportConfig::Stdio { env, .. } = &config.mcp_servers["a"].transport else {
            panic!()
        };
        assert_eq!(env.keys().collect::<Vec<_>>(), ["${HOME}"]);
    }

    #[test]
    fn custom_tags_are_rejected_with_a_hint() {
        check(
            "mcpServers:\n  a:\n    command: !env BIN\n",
            &[
                "t.yaml:3:14: mcpServers.a.command: YAML tags such as `!env` are not supported; use `${VAR}` to insert environment variables",
            ],
        );
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let secret = "sk-live-0123456789abcdefghijklmnopqrstuvwxyz";
        let text = format!(
            "\
mcpServers:
  a:
    command: x
    env:
      KEY: [{secret}]
      'BAD=NAME': {secret}
      NUL: \"{secret}\\0\"
    headers:
      Authorization: Bearer {secret}
  b:
    url: https://user:{secret}@
    headers:
      X-Key: \"{secret}\\r\\nInjected: 1\"
      'Bad Header': {secret}
  c:
    url: ftp://host/{secret}
"
        );
        let errors = load_str(&text, Path::new("t.yaml"), &env).unwrap_err();
        let shown = errors.to_string();
        assert_eq!(errors.0.len(), 8, "{shown}");
        assert!(!shown.contains("sk-live"), "{shown}");
        assert!(!shown.contains("0123456789"), "{shown}");
    }

    #[test]
    fn the_full_fixture_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config/testdata/full.yaml");
        let config = match load(&path, &|_| None) {
            Ok(config) => config,
            Err(errors) => panic!("fixture does not load:\n{errors}"),
        };
        assert_eq!(
            config.mcp_servers.keys().collect::<Vec<_>>(),
            ["everything", "filesystem", "legacy-sse", "remote-docs"]
        );
        assert_eq!(config.server.bind, SocketAddr::from(([127, 0, 0, 1], 8080)));
        let kinds: Vec<&str> = config
            .mcp_servers
            .values()
            .map(|s| s.transport.kind())
            .collect();
        assert_eq!(kinds, ["stdio", "stdio", "sse", "streamable-http"]);
        assert!(!config.mcp_servers["legacy-sse"].enabled);
        assert_eq!(
            config.mcp_servers["remote-docs"].call_timeout,
            std::time::Duration::from_secs(10)
        );
    }

    #[test]
    fn the_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.yaml");
        // Only the builtin SWITCHBOARD_BIN: the example must load on a clean machine.
        match load(&path, &|_| None) {
            Ok(config) => assert_eq!(config.source, path),
            Err(errors) => panic!("the example config does not load:\n{errors}"),
        }
    }

    /// A tiny deterministic generator, so failures reproduce without an extra crate.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next()).unwrap_or(0) % n
        }
    }

    /// Fragments the second kind of round strings together.
    const PIECES: &[&str] = &[
        "mcpServers:",
        "server:",
        "tools:",
        "include:",
        "\n",
        "  ",
        "    ",
        "- ",
        ": ",
        "command: ",
        "url: ",
        "args: ",
        "env: ",
        "headers: ",
        "type: ",
        "http://a/sse",
        "${",
        "}",
        "${X:-",
        "$$",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&a ",
        "*a",
        "!!int ",
        "!t ",
        "\"",
        "'",
        "#",
        "~",
        "?",
        "0",
        "-1",
        "1e9",
        "true",
        "null",
        "é",
        "\t",
        "\r",
        "---\n",
        "...",
        "|\n",
        ">-\n",
        "max_concurrency: ",
        "timeout_ms: ",
        "tools: {allow: [",
        "\u{feff}",
        "\\",
    ];
    /// A misspelled server key, beside the known ones (`mcp_servers::SERVER_KEYS`), for the
    /// skeleton rounds.
    const MISSPELLED_KEY: &str = "comand";
    /// Values, good and bad, for the skeleton rounds.
    const VALUES: &[&str] = &[
        "x",
        "''",
        "[a, 1, {b: c}]",
        "{A: b, 'B=C': 1, N: ~}",
        "http://h/sse",
        "'ws://x'",
        "https://h/mcp",
        "${PORT}",
        "${NOPE}",
        "${X:-5}",
        "'${'",
        "0",
        "1025",
        "86400001",
        "true",
        "'false'",
        "~",
        "{allow: ['a*', 'b['], deny: x}",
        "sse",
        "stdio",
        "http",
        "streamableHttp",
        "!t x",
        "&a [1]",
        "*a",
        "[[[]]]",
        "1.5",
        "-3",
        "'a\\nb'",
        "{Authorization: Bearer x, 'Bad H': y}",
        "/tmp",
        "no such.json",
        "[a.json, 3]",
        "'[::1]:80'",
        "localhost:1",
    ];

    /// Random bytes, random YAML-ish fragments, or a well-formed skeleton with random values.
    fn random_config(rng: &mut Lcg, round: usize) -> String {
        let mut text = String::new();
        match round % 3 {
            0 => {
                for _ in 0..rng.below(60) {
                    let byte = u8::try_from(rng.below(256)).unwrap_or(b'?');
                    text.push_str(&String::from_utf8_lossy(&[byte]));
                }
            }
            1 => {
                for _ in 0..rng.below(60) {
                    text.push_str(PIECES[rng.below(PIECES.len())]);
                }
            }
            _ => {
                let value = |rng: &mut Lcg| VALUES[rng.below(VALUES.len())];
                if rng.below(3) == 0 {
                    let (a, b) = (value(rng), value(rng));
                    text.push_str(&format!("server: {{bind: {a}, data_dir: {b}}}\n"));
                }
                if rng.below(3) == 0 {
                    let a = value(rng);
                    text.push_str(&format!("tools: {{max_result_bytes: {a}}}\ninclude: {a}\n"));
                }
                text.push_str("mcpServers:\n");
                for server in 0..rng.below(4) {
                    text.push_str(&format!("  s{server}:\n"));
                    for _ in 0..rng.below(5) {
                        let known = super::mcp_servers::SERVER_KEYS;
                        let key = known.get(rng.below(known.len() + 1)).copied();
                        let key = key.unwrap_or(MISSPELLED_KEY);
                        text.push_str(&format!("    {key}: {}\n", value(rng)));
                    }
                }
            }
        }
        text
    }

    #[test]
    fn garbage_input_never_panics() {
        // SWITCHBOARD_FUZZ_ROUNDS=100000 runs a longer search locally.
        let rounds = std::env::var("SWITCHBOARD_FUZZ_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(600);
        let mut rng = Lcg(0x5eed);
        let (mut accepted, mut rejected) = (0, 0);
        for round in 0..rounds {
            let text = random_config(&mut rng, round);
            // Ok or Err are both fine; reaching the next round means nothing panicked.
            match load_str(&text, Path::new("fuzz.yaml"), &env) {
                Ok(_) => accepted += 1,
                Err(errors) => {
                    assert!(!errors.0.is_empty());
                    rejected += 1;
                }
            }
        }
        assert_eq!(accepted + rejected, rounds);
        assert!(rejected > 0);
    }

    #[test]
    fn config_maps_are_in_name_order() {
        let config = check(
            "mcpServers:\n  zeta: {command: z}\n  alpha: {command: a}\n",
            &[],
        )
        .unwrap();
        let names: Vec<&String> = config.mcp_servers.keys().collect();
        assert_eq!(names, ["alpha", "zeta"]);
        let _: &BTreeMap<String, McpServerConfig> = &config.mcp_servers;
    }
}
