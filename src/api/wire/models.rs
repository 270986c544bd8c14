//! The configured models as `GET /api/models` lists them. API keys are never part of it.

use serde::Serialize;

use crate::llm;

/// `GET /api/models`: every configured model, in name order.
#[derive(Debug, Serialize)]
pub(in crate::api) struct ModelList<'a> {
    pub models: Vec<Model<'a>>,
}

/// One model: what pickers show, whether it can be used, and how its last probe went.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Model<'a> {
    name: &'a str,
    /// The provider (`openai` or `anthropic`), under the config's key for it.
    #[serde(rename = "type")]
    provider: &'static str,
    /// The provider's name for the model.
    model_name: &'a str,
    tags: &'a [String],
    /// Whether requests naming no model use this one.
    default: bool,
    available: bool,
    /// Why the model cannot be used at all (no API key, say), independent of health.
    unavailable_reason: Option<&'a str>,
    capabilities: Capabilities,
    health: Health<'a>,
}

/// What the model's client can do.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Capabilities {
    streaming: bool,
    tools: bool,
    parallel_tool_calls: bool,
}

/// The latest health probe.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Health<'a> {
    /// `unknown` before the first probe, then `ok`, `unreachable`, `auth_failed` or `error`.
    status: &'static str,
    /// Unix seconds of the last probe.
    last_check: Option<u64>,
    latency_ms: Option<f64>,
    error: Option<&'a str>,
}

impl<'a> From<&'a llm::ModelInfo> for Model<'a> {
    fn from(model: &'a llm::ModelInfo) -> Self {
        Self {
            name: &model.name,
            provider: model.provider,
            model_name: &model.model_name,
            tags: &model.tags,
            default: model.default,
            available: model.available,
            unavailable_reason: model.unavailable_reason.as_deref(),
            capabilities: Capabilities::from(model.capabilities),
            health: Health::from(&model.health),
        }
    }
}

impl From<llm::Capabilities> for Capabilities {
    fn from(capabilities: llm::Capabilities) -> Self {
        Self {
            streaming: capabilities.streaming,
            tools: capabilities.tools,
            parallel_tool_calls: capabilities.parallel_tool_calls,
        }
    }
}

impl<'a> From<&'a llm::Health> for Health<'a> {
    fn from(health: &'a llm::Health) -> Self {
        Self {
            status: health.status,
            last_check: health.last_check,
            latency_ms: health.latency_ms,
            error: health.error.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Model, ModelList};
    use crate::llm::{Capabilities, Health, ModelInfo};

    #[test]
    fn a_model_has_its_provider_as_type_capabilities_and_health() {
        let model = ModelInfo {
            name: "gpt".to_owned(),
            provider: "openai",
            model_name: "gpt-4o-mini".to_owned(),
            tags: vec!["fast".to_owned()],
            default: true,
            available: false,
            unavailable_reason: Some("OPENAI_API_KEY is not set".to_owned()),
            capabilities: Capabilities {
                streaming: true,
                tools: true,
                parallel_tool_calls: false,
            },
            health: Health {
                status: "ok",
                last_check: Some(1_700_000_000),
                latency_ms: Some(12.5),
                error: None,
            },
        };
        let list = ModelList {
            models: vec![Model::from(&model)],
        };
        assert_eq!(
            serde_json::to_value(list).unwrap(),
            json!({ "models": [{
                "name": "gpt",
                "type": "openai",
                "model_name": "gpt-4o-mini",
                "tags": ["fast"],
                "default": true,
                "available": false,
                "unavailable_reason": "OPENAI_API_KEY is not set",
                "capabilities": { "streaming": true, "tools": true, "parallel_tool_calls": false },
                "health": {
                    "status": "ok",
                    "last_check": 1_700_000_000,
                    "latency_ms": 12.5,
                    "error": null,
                },
            }]})
        );
    }
}
