//! Client mode for the MCP conformance suite (`@modelcontextprotocol/conformance`): the suite
//! starts a fixture server and runs `switchboard conformance-client URL` with the scenario name in
//! `MCP_CONFORMANCE_SCENARIO`. Dev tooling, so `anyhow` is fine here.
//!
//! The client under test is the hub itself, so that what passes is what users run: a
//! one-server config pointing at the fixture's URL goes through the same `Hub`, supervisor,
//! era negotiation, Streamable HTTP transport and `HubClient` (its declared capabilities and
//! answers) as `switchboard serve`, and then every tool of the catalog is called through
//! `Hub::invoke`, with arguments made up from its input schema. What differs per scenario is
//! the fixture server:
//!
//! - `initialize`: checks the `initialize` request (protocol version, client info).
//! - `tools_call`: lists `add_numbers {a, b}` and checks that it is called.
//! - `elicitation-sep1034-client-defaults`: its tool sends `elicitation/create`; the server
//!   entry says `elicitation: defaults`, so the hub accepts with the schema's defaults
//!   (SEP-1034), as it does for any server configured so.
//! - `sse-retry`: its tool closes the response stream; rmcp's transport resumes with
//!   `Last-Event-ID` after the server's `retry:` delay.
//! - `auth/*`: need an OAuth client, which we do not have yet (see
//!   `tests/conformance/expected-failures.yml`).
//!
//! Unknown scenarios get the same flow rather than an error, so new fixture scenarios are tried.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value, json};
use switchboard::access::Caller;
use switchboard::hub::Hub;
use switchboard::mcp::{CallOptions, ConnectionState, ManagerSettings};

/// The whole scenario must finish well within the suite's own 30 s per-scenario timeout.
const SCENARIO_LIMIT: Duration = Duration::from_secs(20);
/// How long the server may take to connect and list its tools.
const CONNECT_LIMIT: Duration = Duration::from_secs(15);
/// The server's name in the one-server config.
const SERVER: &str = "conformance";

/// The config the scenario runs with: the fixture server, reached over Streamable HTTP.
const CONFIG: &str = "mcpServers:\n  conformance:\n    type: streamable-http\n    url: ${SWITCHBOARD_CONFORMANCE_URL}\n    init_timeout_ms: 15000\n    elicitation: defaults\n";

/// Scenarios whose fixture the generic flow is known to satisfy (see the module docs).
const KNOWN_SCENARIOS: &[&str] = &[
    "initialize",
    "tools_call",
    "elicitation-sep1034-client-defaults",
    "sse-retry",
];

/// Run one conformance scenario against `url`.
///
/// # Errors
/// Any failure to connect or to perform the scenario's steps.
pub(crate) async fn run_client(
    url: &str,
    scenario: Option<&str>,
    context: Option<&str>,
) -> anyhow::Result<()> {
    let scenario = scenario.unwrap_or("");
    if scenario.starts_with("auth/") {
        tracing::warn!(
            scenario,
            has_context = context.is_some(),
            "no OAuth client yet; running the unauthenticated flow"
        );
    } else if !KNOWN_SCENARIOS.contains(&scenario) {
        tracing::warn!(scenario, "unknown scenario; running the generic flow");
    }
    tokio::time::timeout(SCENARIO_LIMIT, through_the_hub(url))
        .await
        .with_context(|| {
            format!("scenario {scenario:?} did not finish within {SCENARIO_LIMIT:?}")
        })?
}

/// Connect the hub to `url`, call every tool it lists, shut it down.
async fn through_the_hub(url: &str) -> anyhow::Result<()> {
    let env = |name: &str| (name == "SWITCHBOARD_CONFORMANCE_URL").then(|| url.to_owned());
    let config = switchboard::config::load_str(CONFIG, Path::new("conformance.yaml"), &env)
        .map_err(|errors| anyhow::anyhow!("the conformance config is invalid:\n{errors}"))?;
    let hub = Hub::new(
        ManagerSettings {
            inherited_env: Vec::new(),
            child_env: Vec::new(),
            outbound: config.server.outbound.clone(),
            children: Default::default(),
        },
        config.tools.clone(),
    );
    hub.apply(&config.mcp_servers, config.tools.clone());
    hub.mcp().wait_settled(CONNECT_LIMIT).await;
    let outcome = call_every_tool(&hub).await;
    hub.mcp().shutdown().await;
    outcome
}

async fn call_every_tool(hub: &Hub) -> anyhow::Result<()> {
    let status = hub
        .mcp()
        .statuses()
        .into_iter()
        .find(|s| s.name == SERVER)
        .context("the conformance server is not configured")?;
    anyhow::ensure!(
        status.status == ConnectionState::Ready,
        "the hub did not connect: {:?} ({})",
        status.status,
        status.last_error.as_deref().unwrap_or("no error recorded")
    );
    tracing::info!(protocol = ?status.protocol_version, "connected");
    let catalog = hub.catalog();
    for dropped in catalog.dropped() {
        tracing::warn!(tool = %dropped.tool, reason = %dropped.reason, "tool left out of the catalog");
    }
    let local = Caller::local();
    let mut failed = Vec::new();
    for tool in catalog.iter() {
        let arguments = Value::Object(sample_arguments(&tool.input_schema));
        tracing::info!(tool = %tool.exposed_name, arguments = %arguments, "calling");
        match hub
            .invoke(
                &local,
                &tool.exposed_name,
                arguments,
                CallOptions::default(),
            )
            .await
        {
            Ok(outcome) => {
                let text: Vec<&str> = outcome
                    .result
                    .content
                    .iter()
                    .filter_map(|c| c.as_text())
                    .map(|t| t.text.as_str())
                    .collect();
                tracing::info!(tool = %tool.exposed_name, is_error = ?outcome.result.is_error, text = ?text, "result");
            }
            Err(err) => {
                tracing::error!(tool = %tool.exposed_name, error = %err, "tools/call failed");
                failed.push(tool.exposed_name.clone());
            }
        }
    }
    anyhow::ensure!(failed.is_empty(), "tools/call failed for {failed:?}");
    Ok(())
}

/// Arguments for a tool we know nothing about: every required property gets its schema's
/// `default`, first `enum` value, or a plain value of its type.
fn sample_arguments(schema: &Map<String, Value>) -> Map<String, Value> {
    let properties = schema.get("properties").and_then(Value::as_object);
    let required = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    let mut arguments = Map::new();
    for name in required {
        let property = properties.and_then(|p| p.get(name)).unwrap_or(&Value::Null);
        arguments.insert(name.to_owned(), sample_value(property));
    }
    arguments
}

fn sample_value(schema: &Value) -> Value {
    if let Some(default) = schema.get("default") {
        return default.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let kind = match schema.get("type") {
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null"),
        Some(Value::String(kind)) => Some(kind.as_str()),
        _ => None,
    };
    match kind {
        Some("number" | "integer") => json!(1),
        Some("boolean") => json!(true),
        Some("array") => json!([]),
        Some("object") => Value::Object(
            schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|name| {
                    let sub = schema
                        .get("properties")
                        .and_then(|p| p.get(name))
                        .unwrap_or(&Value::Null);
                    (name.to_owned(), sample_value(sub))
                })
                .collect(),
        ),
        Some("null") => Value::Null,
        _ => json!("test"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_arguments_fill_required_properties_by_type() {
        let schema = json!({
                "type": "object",
                "properties": {
                    "a": {"type": "number"},
                    "b": {"type": "integer"},
                    "s": {"type": ["string", "null"]},
                    "e": {"enum": ["x", "y"]},
                    "d": {"type": "string", "default": "dflt"},
                    "o": {"type": "object", "properties": {"f": {"type": "boolean"}}, "required": ["f"]},
                    "optional": {"type": "string"}
                },
                "required": ["a", "b", "s", "e", "d", "o"]
        });
        assert_eq!(
            Value::Object(sample_arguments(schema.as_object().expect("object"))),
            json!({"a": 1, "b": 1, "s": "test", "e": "x", "d": "dflt", "o": {"f": true}})
        );
    }
}
