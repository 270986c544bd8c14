//! `include:` — Claude Desktop / Cursor JSON files whose `mcpServers` are merged in.
//!
//! Paths are relative to the YAML file's directory (`~/` means `$HOME`). Only the
//! `mcpServers` object of each file is read; the other top-level keys belong to the tool that
//! owns the file and are ignored. Values in these files are taken literally (no `${VAR}`),
//! exactly as their own tools read them. Errors inside a file name that file.

use std::path::{Path, PathBuf};

use super::document::Servers;
use super::error::item_path;
use super::fields::Ctx;
use super::files;
use super::json;
use super::yaml::{Node, Value};

/// Reads every file listed by the `include` node and adds its servers.
pub(super) fn include(ctx: &mut Ctx<'_>, node: &Node, base: &Path, servers: &mut Servers) {
    let items: Vec<(&Node, String)> = match &node.value {
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| (item, item_path("include", i)))
            .collect(),
        Value::Null => Vec::new(),
        _ if node.scalar_text().is_some() => vec![(node, "include".to_owned())],
        _ => {
            ctx.expected(node, "include", "a path or a list of paths");
            return;
        }
    };
    let mut seen: Vec<PathBuf> = Vec::new();
    for (item, path) in items {
        let Some(text) = ctx.non_empty_string(item, &path) else {
            continue;
        };
        let Some(file) = resolve(ctx, &text, base, item, &path) else {
            continue;
        };
        let identity = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
        if seen.contains(&identity) {
            ctx.error(
                item.pos,
                &path,
                format!("`{}` is already included", file.display()),
            );
            continue;
        }
        seen.push(identity);
        let text = match files::read_text(&file) {
            Ok(text) => text,
            Err(e) => {
                match e.pos {
                    // An encoding error is inside the included file: point there.
                    Some(pos) => Ctx {
                        file: &file,
                        env: None,
                        errors: &mut *ctx.errors,
                    }
                    .error(Some(pos), "", e.message),
                    None => {
                        let message = format!(
                            "cannot read included file `{}`: {}",
                            file.display(),
                            e.message
                        );
                        ctx.error(item.pos, &path, message);
                    }
                }
                continue;
            }
        };
        let mut file_ctx = Ctx {
            file: &file,
            env: None,
            errors: &mut *ctx.errors,
        };
        read_file(&mut file_ctx, &text, servers);
    }
}

/// `text` as a path: `~/` is `$HOME`, relative paths start at `base`.
fn resolve(ctx: &mut Ctx<'_>, text: &str, base: &Path, item: &Node, path: &str) -> Option<PathBuf> {
    let home_relative = text == "~" || text.starts_with("~/");
    if !home_relative {
        return Some(base.join(text));
    }
    let home = ctx
        .env
        .and_then(|env| env("HOME"))
        .filter(|h| !h.is_empty());
    let Some(home) = home else {
        ctx.error(
            item.pos,
            path,
            "`~` needs the HOME environment variable, which is not set",
        );
        return None;
    };
    let rest = text.trim_start_matches('~').trim_start_matches('/');
    Some(Path::new(&home).join(rest))
}

/// Parses one included file and adds its servers.
fn read_file(ctx: &mut Ctx<'_>, text: &str, servers: &mut Servers) {
    let root = match json::parse(text) {
        Ok(root) => root,
        Err(e) => {
            ctx.error(e.pos, "", e.message);
            return;
        }
    };
    let Value::Map(entries) = &root.value else {
        let message = format!(
            "expected a JSON object with an `mcpServers` object, found {}",
            root.value.describe()
        );
        ctx.error(root.pos, "", message);
        return;
    };
    let Some(mcp) = entries
        .iter()
        .find(|e| e.key.scalar_text() == Some("mcpServers"))
    else {
        ctx.error(
            root.pos,
            "",
            "no `mcpServers` object; an included file must be a Claude Desktop or Cursor config",
        );
        return;
    };
    let Some(entries) = ctx.mapping(&mcp.value, "mcpServers") else {
        return;
    };
    for entry in entries {
        if let Some(name) = ctx.key(entry, "mcpServers") {
            servers.add(ctx, name, entry.key.pos, &entry.value, "mcpServers");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use crate::config::{Config, TransportConfig, load};

    /// A temp dir with `switchboard.yaml` and the given JSON files.
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new(yaml: &str, files: &[(&str, &str)]) -> Fixture {
            let dir = tempfile::tempdir().expect("temp dir");
            fs::write(dir.path().join("switchboard.yaml"), yaml).expect("write yaml");
            for (name, text) in files {
                let path = dir.path().join(name);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).expect("mkdir");
                }
                fs::write(path, text).expect("write json");
            }
            Fixture { dir }
        }

        /// Loads the YAML; `{dir}` in expected errors stands for the temp dir.
        #[track_caller]
        fn check(&self, expected: &[&str]) -> Option<Config> {
            let root = self.dir.path().to_string_lossy().into_owned();
            let home = root.clone() + "/home";
            let env = move |name: &str| (name == "HOME").then(|| home.clone());
            match load(&self.dir.path().join("switchboard.yaml"), &env) {
                Ok(config) => {
                    assert!(expected.is_empty(), "loaded, but expected {expected:#?}");
                    Some(config)
                }
                Err(errors) => {
                    let lines: Vec<String> = errors
                        .0
                        .iter()
                        .map(|e| e.to_string().replace(&root, "{dir}"))
                        .collect();
                    assert_eq!(lines, expected, "\n{errors}");
                    None
                }
            }
        }
    }

    const CLAUDE: &str = r#"{
  "globalShortcut": "Ctrl+Space",
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "${HOME}"],
      "env": {"PORT": 3000}
    }
  }
}
"#;

    const CURSOR: &str = r#"{
  "mcpServers": {
    "remote": {"url": "https://example.com/sse", "headers": {"Authorization": "Bearer x"}},
    "http": {"type": "streamableHttp", "url": "https://example.com/mcp"}
  }
}
"#;

    #[test]
    fn single_include_merges_servers_and_ignores_other_keys() {
        let fixture = Fixture::new(
            "include: claude.json\nmcpServers:\n  own: {command: x}\n",
            &[("claude.json", CLAUDE)],
        );
        let config = fixture.check(&[]).unwrap();
        assert_eq!(
            config.mcp_servers.keys().collect::<Vec<_>>(),
            ["filesystem", "own"]
        );
        let TransportConfig::Stdio { args, env, .. } = &config.mcp_servers["filesystem"].transport
        else {
            panic!("stdio expected")
        };
        // Included files are taken literally, as Claude Desktop reads them.
        assert_eq!(args[2], "${HOME}");
        assert_eq!(env["PORT"], "3000");
    }

    #[test]
    fn list_of_includes_with_home_and_subdirectories() {
        let fixture = Fixture::new(
            "include:\n  - ~/claude.json\n  - cursor/mcp.json\n",
            &[("home/claude.json", CLAUDE), ("cursor/mcp.json", CURSOR)],
        );
        let config = fixture.check(&[]).unwrap();
        assert_eq!(config.mcp_servers.len(), 3);
        assert_eq!(config.mcp_servers["remote"].transport.kind(), "sse");
        assert_eq!(
            config.mcp_servers["http"].transport.kind(),
            "streamable-http"
        );
    }

    #[test]
    fn duplicates_name_both_places() {
        let fixture = Fixture::new(
            "include: [a.json, b.json]\nmcpServers:\n  filesystem: {command: x}\n",
            &[
                ("a.json", CLAUDE),
                (
                    "b.json",
                    CURSOR.replace("\"http\"", "\"filesystem\"").as_str(),
                ),
            ],
        );
        fixture.check(&[
            "{dir}/a.json:4:5: mcpServers.filesystem: server `filesystem` is already defined at {dir}/switchboard.yaml:3:3; server names must be unique across the config and its included files",
            "{dir}/b.json:4:5: mcpServers.filesystem: server `filesystem` is already defined at {dir}/switchboard.yaml:3:3; server names must be unique across the config and its included files",
        ]);
        let fixture = Fixture::new(
            "include: [a.json, b.json]\n",
            &[
                ("a.json", CURSOR),
                ("b.json", CURSOR.replace("\"http\"", "\"other\"").as_str()),
            ],
        );
        fixture.check(&[
            "{dir}/b.json:3:5: mcpServers.remote: server `remote` is already defined at {dir}/a.json:3:5; server names must be unique across the config and its included files",
        ]);
    }

    #[test]
    fn errors_inside_json_name_the_json_file_and_line() {
        let json = r#"{
  "mcpServers": {
    "fs": {
      "comand": "npx",
      "args": "-y"
    }
  }
}"#;
        let fixture = Fixture::new("include: c.json\n", &[("c.json", json)]);
        fixture.check(&[
            "{dir}/c.json:4:7: mcpServers.fs.comand: unknown key `comand` (did you mean `command`?); expected one of: command, args, env, cwd, url, headers, type, enabled, disabled, tools, timeout_ms, init_timeout_ms, max_concurrency, roots, elicitation, log_level, sampling, trusted",
            "{dir}/c.json:5:15: mcpServers.fs.args: expected a list of strings, found a string",
        ]);
    }

    #[test]
    fn json_without_positions_still_reports_paths() {
        // YAML reads the surrogate-pair escape differently, so this file has no positions.
        let json = r#"{"mcpServers": {"fs": {"command": "\ud83d\ude00", "bogus": 1}}}"#;
        let fixture = Fixture::new("include: c.json\n", &[("c.json", json)]);
        fixture.check(&[
            "{dir}/c.json: mcpServers.fs.bogus: unknown key `bogus`; expected one of: command, args, env, cwd, url, headers, type, enabled, disabled, tools, timeout_ms, init_timeout_ms, max_concurrency, roots, elicitation, log_level, sampling, trusted",
        ]);
    }

    #[test]
    fn file_level_problems() {
        let fixture = Fixture::new(
            "include:\n  - missing.json\n  - broken.json\n  - list.json\n  - nothing.json\n  - broken.json\n  - ~/x.json\n  - 42\n",
            &[
                ("broken.json", "{\n  \"mcpServers\": {},\n}\n"),
                ("list.json", "[]"),
                ("nothing.json", "{\"globalShortcut\": \"x\"}"),
            ],
        );
        fixture.check(&[
            "{dir}/switchboard.yaml:2:5: include[0]: cannot read included file `{dir}/missing.json`: no such file",
            "{dir}/switchboard.yaml:6:5: include[4]: `{dir}/broken.json` is already included",
            "{dir}/switchboard.yaml:7:5: include[5]: cannot read included file `{dir}/home/x.json`: no such file",
            "{dir}/switchboard.yaml:8:5: include[6]: cannot read included file `{dir}/42`: no such file",
            "{dir}/broken.json:3:1: invalid JSON: trailing comma",
            "{dir}/list.json:1:1: expected a JSON object with an `mcpServers` object, found a list",
            "{dir}/nothing.json:1:1: no `mcpServers` object; an included file must be a Claude Desktop or Cursor config",
        ]);
        let fixture = Fixture::new("include: {a: b}\n", &[]);
        fixture.check(&[
            "{dir}/switchboard.yaml:1:10: include: expected a path or a list of paths, found a mapping",
        ]);
    }

    #[test]
    fn include_paths_are_interpolated_and_encoding_errors_point_into_the_file() {
        let fixture = Fixture::new("include: ${HOME}/bad.json\n", &[]);
        fs::create_dir_all(fixture.dir.path().join("home")).unwrap();
        fs::write(
            fixture.dir.path().join("home/bad.json"),
            b"{\"mcpServers\": {\"\xff\": {}}}",
        )
        .unwrap();
        fixture.check(&["{dir}/home/bad.json:1:18: the file is not valid UTF-8"]);
    }

    #[test]
    fn home_must_be_known_for_tilde() {
        let fixture = Fixture::new("include: ~/claude.json\n", &[]);
        let errors = load(&fixture.dir.path().join("switchboard.yaml"), &|_| None).unwrap_err();
        assert!(
            errors
                .to_string()
                .ends_with("include: `~` needs the HOME environment variable, which is not set"),
            "{errors}"
        );
    }
}
