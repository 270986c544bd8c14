//! `/mcp`: Switchboard's catalog served to MCP clients, a real rmcp client over Streamable
//! HTTP with each role's key. A role sees exactly the tools it may use (the same names the
//! models see), calls go through the same checks as every other path, and a forbidden tool is
//! refused without reaching its server.

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceError};
use serde_json::{Value, json};
use switchboard::runs::result_text;

use super::peers::CountingClock;
use super::{ADMIN_KEY, Served};

/// An MCP client of `/mcp` with `key` (none: no `Authorization`).
async fn client(
    served: &Served,
    key: Option<&str>,
) -> Result<RunningService<RoleClient, ()>, String> {
    let mut config =
        StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", served.server.base));
    if let Some(key) = key {
        config = config.auth_header(key);
    }
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .map_err(|err| err.to_string())
}

async fn tool_names(client: &RunningService<RoleClient, ()>) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|tool| tool.name.into_owned())
        .collect();
    names.sort();
    names
}

async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> Result<CallToolResult, ServiceError> {
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
}

/// `narrow` (calc's tools only) and the admin through `/mcp`.
pub(super) async fn the_gateway_serves_each_role_its_own_catalog(
    served: &Served,
    clock: &CountingClock,
) {
    assert!(
        client(served, None).await.is_err(),
        "/mcp without a key is refused like the rest of the API"
    );
    the_refusal_points_at_the_protected_resource_metadata(served).await;

    let admin = client(served, Some(ADMIN_KEY)).await.expect("admin client");
    let narrow_key = served.key("gwen", "narrow").await;
    let narrow = client(served, Some(&narrow_key))
        .await
        .expect("narrow client");

    let (_, api) = served
        .call(Some(&narrow_key), reqwest::Method::GET, "/api/tools", None)
        .await;
    let mut expected: Vec<String> = api["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    let (_, agents) = served
        .call(Some(&narrow_key), reqwest::Method::GET, "/api/agents", None)
        .await;
    expected.extend(
        agents["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .filter_map(|a| a["name"].as_str().map(|name| format!("agent__{name}"))),
    );
    expected.sort();
    let (agent_tools, listed): (Vec<String>, Vec<String>) = tool_names(&narrow)
        .await
        .into_iter()
        .partition(|name| name.starts_with("agent__"));
    let mut all = [listed.clone(), agent_tools].concat();
    all.sort();
    assert_eq!(
        all, expected,
        "`narrow` sees what /api/tools and /api/agents show it"
    );
    assert!(
        listed.iter().all(|name| name.starts_with("calc__")),
        "{listed:?}"
    );
    // The stdio gateway with the same key (from SWITCHBOARD_KEY) sees the same catalog.
    let (bridged, _child) =
        crate::gateway_stdio::bridged((), &served.server.base, Some(&narrow_key)).await;
    let mut over_stdio: Vec<String> = bridged
        .list_all_tools()
        .await
        .expect("tools/list over stdio")
        .into_iter()
        .map(|tool| tool.name.into_owned())
        .collect();
    over_stdio.sort();
    assert_eq!(
        over_stdio, expected,
        "the stdio gateway is the key's caller"
    );
    bridged.cancel().await.expect("close the stdio gateway");
    let everything = tool_names(&admin).await;
    assert!(
        everything.contains(&"clock__now".to_owned()),
        "{everything:?}"
    );
    assert!(everything.len() > listed.len());

    let answer = call(&narrow, "calc__evaluate", json!({"expression": "6*7"}))
        .await
        .expect("an allowed call");
    assert_eq!(answer.is_error, Some(false), "{answer:?}");
    assert_eq!(result_text(&answer), "42");

    // Bad arguments are the tool's error, with where they are wrong; nothing is sent.
    let bad = call(&narrow, "calc__evaluate", json!({"expression": 7}))
        .await
        .expect("a result");
    assert_eq!(bad.is_error, Some(true), "{bad:?}");
    assert!(
        result_text(&bad).contains("/expression"),
        "{}",
        result_text(&bad)
    );

    // A tool the role may not use is refused as unknown, and never reaches its server.
    let calls = clock.calls();
    let refused = call(&narrow, "clock__now", json!({})).await;
    let err = refused.expect_err("a forbidden tool is refused");
    assert!(
        err.to_string()
            .contains("may not use the tool `clock__now`"),
        "{err}"
    );
    assert_eq!(clock.calls(), calls, "the refused call reached the clock");
    let allowed = call(&admin, "clock__now", json!({}))
        .await
        .expect("the admin's call");
    assert_eq!(allowed.is_error, Some(false), "{allowed:?}");
    assert_eq!(clock.calls(), calls + 1);

    narrow.cancel().await.expect("close narrow");
    admin.cancel().await.expect("close admin");
}

/// A 401 from `/mcp` carries the challenge the MCP authorization spec asks for, and the
/// metadata it names is public and names `/mcp` as the resource.
async fn the_refusal_points_at_the_protected_resource_metadata(served: &Served) {
    let http = reqwest::Client::new();
    let base = &served.server.base;
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/mcp");
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    for (key, error) in [
        (None, ""),
        (Some("sb_not_a_key"), ", error=\"invalid_token\""),
    ] {
        let mut request = http
            .post(format!("{base}/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let refused = request.send().await.expect("POST /mcp");
        assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
        let challenge = refused.headers()["www-authenticate"]
            .to_str()
            .expect("text");
        assert_eq!(
            challenge,
            format!("Bearer resource_metadata=\"{metadata_url}\"{error}")
        );
    }
    // The notification stream too: a 401, not the sign-in redirect pages get.
    let stream = http
        .get(format!("{base}/mcp"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("GET /mcp");
    assert_eq!(stream.status(), reqwest::StatusCode::UNAUTHORIZED);
    for url in [
        metadata_url.clone(),
        format!("{base}/.well-known/oauth-protected-resource"),
    ] {
        let document: Value = http
            .get(&url)
            .send()
            .await
            .expect("the metadata")
            .error_for_status()
            .expect("public")
            .json()
            .await
            .expect("JSON");
        assert_eq!(document["resource"], format!("{base}/mcp"), "{document:#}");
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    }
}
