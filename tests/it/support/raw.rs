//! The stdio server written for tests that need answers no SDK server would send
//! (`tests/it/servers/raw_mcp.py`): a scenario of raw JSON texts, written to a file, and the
//! config entry that runs it.

use std::path::Path;

use serde_json::{Value, json};

/// What the raw server answers: `tools/list` pages (raw JSON text each), `tools/call` results by
/// tool name, optionally a `server/discover` result (else "method not found", as an old server
/// answers) and a delay before its first answer.
#[derive(Default)]
pub struct Scenario {
    pub pages: Vec<String>,
    pub calls: Vec<(&'static str, Value)>,
    pub discover: Option<String>,
    pub start_delay_ms: u64,
    /// Logged by the server (`notifications/message`, level `warning`) before each call's result.
    pub log: Option<String>,
    /// Never answer `server/discover`, as some old servers ignore what they do not know.
    pub silent_discover: bool,
}

/// A stdio entry (under `mcpServers:`) named `name` running the raw server with `scenario`,
/// written under `dir`; `extra` is more YAML for the entry (indented four spaces).
pub fn raw_server(dir: &Path, name: &str, scenario: &Scenario) -> String {
    raw_server_with(dir, name, scenario, "")
}

/// [`raw_server`] with more keys for the entry.
pub fn raw_server_with(dir: &Path, name: &str, scenario: &Scenario, extra: &str) -> String {
    let file = dir.join(format!("{name}.json"));
    let calls: serde_json::Map<String, Value> = scenario
        .calls
        .iter()
        .map(|(tool, result)| ((*tool).to_owned(), Value::String(result.to_string())))
        .collect();
    let mut text = json!({ "pages": scenario.pages, "calls": calls, "start_delay_ms": scenario.start_delay_ms });
    if let Some(discover) = &scenario.discover {
        text["discover"] = Value::String(discover.clone());
    }
    if scenario.silent_discover {
        text["silent_discover"] = Value::Bool(true);
    }
    if let Some(log) = &scenario.log {
        text["log"] = Value::String(log.clone());
    }
    std::fs::write(&file, text.to_string()).expect("write scenario");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/servers/raw_mcp.py");
    // Trusted unless the entry says otherwise: these tests are not about approvals.
    let trust = if extra.contains("trusted:") {
        ""
    } else {
        "    trusted: true\n"
    };
    format!(
        "  {name}:\n    command: python3\n    args: [\"{}\", \"{}\"]\n{trust}{extra}",
        script.display(),
        file.display()
    )
}
