//! What `POST /api/config/reload` answers when the new config was applied. (An invalid config
//! is an error: `invalid_config`, with every message in `details`.)

use serde::Serialize;

use crate::api::ReloadReport;
use crate::mcp::ApplySummary;

/// The answer of a reload that was applied.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Reloaded<'a> {
    servers: ServerChanges<'a>,
    /// Every model of the new config.
    models: &'a [String],
    /// Keys that changed but apply only after a restart (`server.bind`, say).
    restart_required: &'a [&'static str],
}

/// What the reload did to the MCP servers, by name.
#[derive(Debug, Serialize)]
pub(in crate::api) struct ServerChanges<'a> {
    started: &'a [String],
    stopped: &'a [String],
    restarted: &'a [String],
    unchanged: &'a [String],
}

impl<'a> From<&'a ReloadReport> for Reloaded<'a> {
    fn from(report: &'a ReloadReport) -> Self {
        Self {
            servers: ServerChanges::from(&report.servers),
            models: &report.models,
            restart_required: &report.restart_required,
        }
    }
}

impl<'a> From<&'a ApplySummary> for ServerChanges<'a> {
    fn from(summary: &'a ApplySummary) -> Self {
        Self {
            started: &summary.started,
            stopped: &summary.stopped,
            restarted: &summary.restarted,
            unchanged: &summary.unchanged,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Reloaded;
    use crate::api::ReloadReport;
    use crate::mcp::ApplySummary;

    #[test]
    fn a_reload_says_what_changed_and_what_needs_a_restart() {
        let summary = ApplySummary {
            started: vec!["testkit".to_owned()],
            stopped: vec!["old".to_owned()],
            restarted: Vec::new(),
            unchanged: vec!["calc".to_owned()],
        };
        let report = ReloadReport {
            servers: summary,
            models: vec!["gpt".to_owned()],
            restart_required: vec!["server.bind"],
        };
        assert_eq!(
            serde_json::to_value(Reloaded::from(&report)).unwrap(),
            json!({
                "servers": {
                    "started": ["testkit"],
                    "stopped": ["old"],
                    "restarted": [],
                    "unchanged": ["calc"],
                },
                "models": ["gpt"],
                "restart_required": ["server.bind"],
            })
        );
    }
}
