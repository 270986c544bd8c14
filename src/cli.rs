//! Text the command line prints for `tools` and `call`: formatting only, no IO.

use serde_json::{Value, json};

use crate::hub::{Hub, InvokeError, InvokeOutcome};

/// The catalog and each server's health, as a table or JSON.
pub fn tools_report(hub: &Hub, as_json: bool) -> String {
    let catalog = hub.catalog();
    let statuses = hub.mcp().statuses();
    if as_json {
        let tools: Vec<Value> = catalog
            .iter()
            .map(|t| json!({"name": t.exposed_name, "server": t.server, "tool": t.tool_name, "description": t.description}))
            .collect();
        return serde_json::to_string_pretty(&json!({"servers": statuses, "tools": tools}))
            .unwrap_or_default();
    }
    let mut out = String::from("SERVERS\n");
    for s in &statuses {
        let status = serde_json::to_value(s.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<20} {:<16} {:<13} tools={:<4} protocol={}",
            s.name,
            s.transport,
            status,
            s.tool_count,
            s.protocol_version.as_deref().unwrap_or("-"),
        ));
        if let Some(err) = &s.last_error {
            out.push_str(&format!("  last error: {err}"));
        }
        out.push('\n');
    }
    out.push_str(&format!("\nTOOLS ({})\n", catalog.len()));
    for tool in catalog.iter() {
        let summary: String = tool
            .description
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(80)
            .collect();
        out.push_str(&format!("  {:<40} {}\n", tool.exposed_name, summary));
    }
    let dropped: Vec<_> = catalog.dropped().collect();
    if !dropped.is_empty() {
        out.push_str("\nLEFT OUT\n");
        for d in dropped {
            out.push_str(&format!("  {}/{:?}: {}\n", d.server, d.tool, d.reason));
        }
    }
    out
}

/// The result of `switchboard call` as pretty JSON, and whether it succeeded.
pub fn call_report(outcome: Result<InvokeOutcome, InvokeError>) -> (String, bool) {
    match outcome {
        Ok(outcome) => {
            let ok = outcome.result.is_error != Some(true);
            let body = json!({
                "tool": outcome.tool.exposed_name,
                "duration_ms": outcome.duration.as_secs_f64() * 1000.0,
                "truncated": outcome.truncated,
                "result": outcome.result,
            });
            (serde_json::to_string_pretty(&body).unwrap_or_default(), ok)
        }
        Err(InvokeError::InvalidArguments { tool, errors }) => {
            let mut text = format!("error: arguments for `{tool}` do not match its input schema");
            for e in errors {
                let path = if e.path.is_empty() {
                    "(root)"
                } else {
                    e.path.as_str()
                };
                text.push_str(&format!("\n  at {path}: {}", e.message));
            }
            (text, false)
        }
        Err(err) => (format!("error: {err}"), false),
    }
}
