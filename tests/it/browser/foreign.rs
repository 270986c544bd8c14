//! A page on another origin, opened in the real browser, tries what an attacker's page would:
//! a `text/plain` form post and `no-cors` fetches that start runs, and a config reload. None
//! may start a run, call the model or apply a reload.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::Ui;
use crate::support::{self, webdriver::Browser};

/// The attacker's page, aimed at `target` (Switchboard's base URL). It marks
/// `body[data-done]` once every request has been sent and the form's answer has loaded.
fn attack_page(target: &str) -> String {
    format!(
        r#"<!doctype html><html><body>
<iframe name="sink" id="sink"></iframe>
<form id="form" method="post" enctype="text/plain" target="sink" action="{target}/v1/chat/completions">
<input type="hidden" name='{{"model":"fake","messages":[{{"role":"user","content":"from a form"}}],"pad":"' value='"}}'>
</form>
<script>
(async () => {{
  const target = {target:?};
  const completion = JSON.stringify({{model: "fake", messages: [{{role: "user", content: "from a fetch"}}]}});
  const shots = [
    [target + "/v1/chat/completions", {{method: "POST", mode: "no-cors", body: completion}}],
    [target + "/api/chat", {{method: "POST", mode: "no-cors", body: JSON.stringify({{message: "from a fetch"}})}}],
    [target + "/api/config/reload", {{method: "POST", mode: "no-cors"}}],
  ];
  for (const [url, init] of shots) {{
    try {{ await fetch(url, init); }} catch (e) {{}}
  }}
  document.getElementById("sink").addEventListener("load", () => {{ document.body.dataset.done = "1"; }});
  document.getElementById("form").submit();
}})();
</script></body></html>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_another_origin_can_start_nothing_and_reload_nothing() {
    let ui = Ui::start("", 0).await;
    // A reload would apply this extra model; the attack must not.
    let config = ui._dir.path().join("switchboard.yaml");
    let yaml = std::fs::read_to_string(&config).expect("config");
    let extra = "models:\n  - name: added-later\n    type: openai\n    \
                 base_url: http://127.0.0.1:9/v1\n    model_name: x\n    healthcheck: false\n";
    std::fs::write(&config, yaml.replacen("models:\n", extra, 1)).expect("rewrite config");

    let stop = tokio_util::sync::CancellationToken::new();
    let page = attack_page(&ui.base);
    let foreign = support::serve_local(
        axum::Router::new().route(
            "/",
            axum::routing::get(move || async move { axum::response::Html(page) }),
        ),
        &stop,
    )
    .await;
    assert_ne!(
        foreign, ui.base,
        "the attacker's page must be on another origin"
    );

    let browser = Browser::start("foreign-origin").await;
    browser.goto(&foreign).await;
    browser
        .wait_until_with(
            "the attacker's page to send every request",
            Duration::from_secs(20),
            "return document.body && document.body.dataset.done === '1';",
            serde_json::json!([]),
        )
        .await;
    browser.screenshot("foreign-origin").await;

    let (_, runs) = ui.request(Method::GET, "/api/runs", None).await;
    assert_eq!(
        runs["runs"],
        Value::Array(Vec::new()),
        "a run started: {runs:#}"
    );
    assert!(ui.fake.requests().is_empty(), "the model was called");
    let (_, models) = ui.request(Method::GET, "/api/models", None).await;
    let names: Vec<&str> = models["models"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"added-later"),
        "the reload was applied: {names:?}"
    );
    stop.cancel();
}
