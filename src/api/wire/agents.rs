//! The agents of `agents/*.yaml` as `GET /api/agents` lists them, for pickers and filters.

use serde::Serialize;

use crate::config::model::AgentConfig;

/// `GET /api/agents`: every agent, in name order.
#[derive(Debug, Serialize)]
pub(in crate::api) struct AgentList<'a> {
    pub agents: Vec<Agent<'a>>,
}

/// What a user picks an agent by; its system prompt and limits stay on the server.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Agent<'a> {
    name: &'a str,
    /// One line, possibly empty.
    description: &'a str,
    /// Null: the default model.
    model: Option<&'a str>,
    /// `react` or `plan`.
    mode: &'static str,
    /// The tool globs, as written.
    tools: &'a [String],
}

impl<'a> From<&'a AgentConfig> for Agent<'a> {
    fn from(agent: &'a AgentConfig) -> Self {
        Self {
            name: &agent.name,
            description: &agent.description,
            model: agent.model.as_deref(),
            mode: agent.mode.name(),
            tools: agent.tools.patterns(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Agent, AgentList};
    use crate::config::model::{AgentConfig, AgentLimits, AgentMode, ToolGlobs};

    #[test]
    fn an_agent_has_what_users_pick_it_by() {
        let agent = AgentConfig {
            name: "math".to_owned(),
            description: "Does sums.".to_owned(),
            model: None,
            system_prompt: "You add.".to_owned(),
            tools: ToolGlobs::compile(vec!["calc__*".to_owned()]).unwrap(),
            mode: AgentMode::Plan,
            limits: AgentLimits::default(),
            source: "agents/math.yaml".into(),
        };
        let list = AgentList {
            agents: vec![Agent::from(&agent)],
        };
        assert_eq!(
            serde_json::to_value(list).unwrap(),
            json!({ "agents": [{
                "name": "math",
                "description": "Does sums.",
                "model": null,
                "mode": "plan",
                "tools": ["calc__*"],
            }]})
        );
    }
}
