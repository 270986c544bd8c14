//! Resources and prompts through `/mcp`: the official reference server (server-everything,
//! over stdio) behind the real server, an rmcp client in front. Its resources, templates and
//! prompts are listed named per server (`switchboard://everything/…`, `everything__…`), a
//! listed resource and an expanded template are read back through the gateway, a prompt is
//! got with its arguments, and names the gateway never gave out are refused.

use rmcp::ServiceExt;
use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::json;

use crate::support;
use crate::support::served::Served;

fn text_of(result: &rmcp::model::ReadResourceResult) -> String {
    serde_json::to_value(result).expect("json")["contents"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_servers_resources_and_prompts_pass_through_named_per_server() {
    let everything = support::node_bin_dir().join("mcp-server-everything");
    let entry = format!(
        "  everything:\n    command: {}\n    args: [stdio]\n",
        everything.display()
    );
    let t = Served::demo(move |_| entry, 1).await;
    let transport = StreamableHttpClientTransport::from_uri(format!("{}/mcp", t.base));
    let client = ().serve(transport).await.expect("an MCP client of /mcp");

    let resources = client.list_all_resources().await.expect("resources/list");
    let document = resources
        .iter()
        .find(|r| {
            r.uri
                .starts_with("switchboard://everything/demo://resource/static/document/")
        })
        .unwrap_or_else(|| panic!("a static document: {resources:#?}"));
    assert!(document.name.starts_with("everything__"), "{document:?}");
    let read = client
        .read_resource(ReadResourceRequestParams::new(document.uri.clone()))
        .await
        .expect("resources/read");
    assert!(!text_of(&read).is_empty(), "{read:?}");
    let read_uri = serde_json::to_value(&read).expect("json")["contents"][0]["uri"].clone();
    assert_eq!(
        read_uri,
        json!(document.uri),
        "the contents name the URI that was read"
    );

    let templates = client
        .list_all_resource_templates()
        .await
        .expect("resources/templates/list");
    let template = templates
        .iter()
        .find(|t| t.uri_template.contains("demo://resource/dynamic/text/"))
        .unwrap_or_else(|| panic!("the dynamic text template: {templates:#?}"));
    assert!(
        template
            .uri_template
            .starts_with("switchboard://everything/")
    );
    let expanded = template.uri_template.replace("{resourceId}", "7");
    let read = client
        .read_resource(ReadResourceRequestParams::new(expanded))
        .await
        .expect("an expanded template is read");
    assert!(text_of(&read).contains('7'), "{read:?}");

    let prompts = client.list_all_prompts().await.expect("prompts/list");
    assert!(
        prompts.iter().any(|p| p.name == "everything__args-prompt"),
        "{:?}",
        prompts.iter().map(|p| &p.name).collect::<Vec<_>>()
    );
    let mut params = GetPromptRequestParams::new("everything__args-prompt");
    params.arguments = json!({"city": "Paris"}).as_object().cloned();
    let prompt = client.get_prompt(params).await.expect("prompts/get");
    let first = serde_json::to_value(&prompt.messages[0]).expect("json");
    assert_eq!(
        first["content"]["text"], "What's weather in Paris?",
        "{first:#}"
    );

    let foreign = client
        .read_resource(ReadResourceRequestParams::new("file:///etc/passwd"))
        .await;
    let err = foreign.expect_err("a URI the gateway never listed");
    assert!(err.to_string().contains("switchboard://SERVER/"), "{err}");
    let nobody = client
        .get_prompt(GetPromptRequestParams::new("calc__nothing"))
        .await;
    let err = nobody.expect_err("calc offers no prompts");
    assert!(err.to_string().contains("offers prompts"), "{err}");
    client.cancel().await.expect("close");
    t.server.stop().await;
}
