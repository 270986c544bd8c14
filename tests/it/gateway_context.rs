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

/// The same resources and prompts for Switchboard's own chat: `/api/context` lists them with
/// their servers, a prompt is got with its arguments, a resource is read, and a chat message
/// with an attachment reaches the model with the resource's text after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_lists_gets_reads_and_attaches_them() {
    use reqwest::{Method, StatusCode};
    use switchboard_fake_llm::Reply;

    let everything = support::node_bin_dir().join("mcp-server-everything");
    let entry = format!(
        "  everything:\n    command: {}\n    args: [stdio]\n",
        everything.display()
    );
    let t = Served::demo(move |_| entry, 1).await;
    let (status, listed) = t.request(Method::GET, "/api/context", None).await;
    assert_eq!(status, StatusCode::OK, "{listed:#}");
    let document = listed["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| {
            r["server"] == "everything"
                && r["uri"]
                    .as_str()
                    .is_some_and(|u| u.contains("static/document"))
        })
        .cloned()
        .unwrap_or_else(|| panic!("{listed:#}"));
    assert!(
        listed["prompts"]
            .as_array()
            .expect("prompts")
            .iter()
            .any(|p| p["server"] == "everything"
                && p["name"] == "args-prompt"
                && p["arguments"][0]["name"] == "city"
                && p["arguments"][0]["required"] == true),
        "{listed:#}"
    );

    let body =
        json!({"server": "everything", "name": "args-prompt", "arguments": {"city": "Oslo"}});
    let (status, prompt) = t
        .request(Method::POST, "/api/context/prompt", Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{prompt:#}");
    assert_eq!(
        prompt["messages"][0]["text"], "What's weather in Oslo?",
        "{prompt:#}"
    );
    let body = json!({"server": "everything", "name": "args-prompt", "arguments": {"city": 3}});
    let (status, refused) = t
        .request(Method::POST, "/api/context/prompt", Some(body))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused:#}");

    let body = json!({"server": "everything", "uri": document["uri"]});
    let (status, read) = t
        .request(Method::POST, "/api/context/read", Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{read:#}");
    let text = read["contents"][0]["text"]
        .as_str()
        .expect("text")
        .to_owned();
    assert!(!text.is_empty());
    let body = json!({"server": "calc", "uri": "calc://nothing"});
    let (status, refused) = t
        .request(Method::POST, "/api/context/read", Some(body))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "calc offers no resources: {refused:#}"
    );

    t.fake.push(Reply::text("Read it."));
    let body = json!({"message": "Summarise this.", "model": "fake",
        "attachments": [{"server": "everything", "uri": document["uri"]}]});
    let response = t.send(Method::POST, "/api/chat", Some(body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut events = crate::support::events::Events::new(response);
    events.all().await;
    let user = t.last_user_message();
    assert!(user.starts_with("Summarise this."), "{user}");
    assert!(
        user.contains(text.trim()),
        "the resource's text follows the message: {user}"
    );
    t.server.stop().await;
}

/// A role's `tools` globs decide which resources and prompts it sees, in `/api/context` and
/// `/mcp` alike: `everything__args-prompt` grants that prompt and no resources; `everything__*`
/// grants all of the server's; `calc__*` none of them; a read outside the role is 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_sees_only_the_resources_and_prompts_its_globs_grant() {
    use reqwest::StatusCode;
    use switchboard_fake_llm::FakeLlm;

    const ADMIN_KEY: &str = "context-admin-key-0123456789abcdef0123456789";
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let everything = support::node_bin_dir().join("mcp-server-everything");
    let entry = format!(
        "  everything:\n    command: {}\n    args: [stdio]\n",
        everything.display()
    );
    let roles = "roles:\n  docs:\n    tools: [\"everything__args-prompt\"]\n\
                 \x20 reader:\n    tools: [\"everything__*\"]\n\
                 \x20 narrow:\n    tools: [\"calc__*\"]\n";
    let path = support::write_demo_config(dir.path(), &fake, &format!("{entry}{roles}"));
    let yaml = std::fs::read_to_string(&path).expect("config");
    std::fs::write(
        &path,
        yaml.replacen("server:\n", "server:\n  auth: keys\n", 1),
    )
    .expect("config with keys");
    let extras = support::ServeExtras {
        admin_key: Some(ADMIN_KEY.to_owned()),
        ..support::ServeExtras::default()
    };
    let server = support::InProcessServer::start_with(&path, extras).await;
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let key = |role: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let created: serde_json::Value = http
                .post(format!("{base}/api/keys"))
                .bearer_auth(ADMIN_KEY)
                .json(&json!({"user": role, "role": role}))
                .send()
                .await
                .expect("POST /api/keys")
                .json()
                .await
                .expect("JSON");
            created["secret"].as_str().expect("a secret").to_owned()
        }
    };
    let (docs, reader, narrow) = (key("docs").await, key("reader").await, key("narrow").await);
    let context = |key: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let listed: serde_json::Value = http
                .get(format!("{base}/api/context"))
                .bearer_auth(&key)
                .send()
                .await
                .expect("GET /api/context")
                .json()
                .await
                .expect("JSON");
            listed
        }
    };
    let count =
        |listed: &serde_json::Value, kind: &str| listed[kind].as_array().map_or(0, Vec::len);

    // The reference server connects in the background: wait until the reader sees it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let seen = loop {
        let seen = context(reader.clone()).await;
        if count(&seen, "prompts") > 0 || std::time::Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        count(&seen, "resources") > 0 && count(&seen, "prompts") > 1,
        "{seen:#}"
    );
    let seen = context(docs.clone()).await;
    assert_eq!(count(&seen, "resources"), 0, "{seen:#}");
    assert_eq!(count(&seen, "templates"), 0, "{seen:#}");
    let prompts: Vec<&str> = seen["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(prompts, ["args-prompt"], "{seen:#}");
    let nothing = context(narrow.clone()).await;
    assert_eq!(
        (count(&nothing, "resources"), count(&nothing, "prompts")),
        (0, 0),
        "{nothing:#}"
    );

    let refused = http
        .post(format!("{base}/api/context/read"))
        .bearer_auth(&docs)
        .json(&json!({"server": "everything", "uri": "demo://resource/static/document/architecture.md"}))
        .send()
        .await
        .expect("POST read");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = http
        .post(format!("{base}/api/context/prompt"))
        .bearer_auth(&narrow)
        .json(&json!({"server": "everything", "name": "simple-prompt"}))
        .send()
        .await
        .expect("POST prompt");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // The same view through /mcp.
    let mut config =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            format!("{base}/mcp"),
        );
    config = config.auth_header(docs);
    let client =
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect("client");
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["everything__args-prompt"]);
    assert!(
        client
            .list_all_resources()
            .await
            .expect("resources/list")
            .is_empty()
    );
    client.cancel().await.expect("close");
    server.stop().await;
}
