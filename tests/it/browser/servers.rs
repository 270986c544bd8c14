//! `/servers`: a card per MCP server with its tools, a try-it form generated from a tool's
//! schema that shows the result, validation errors with their JSON paths, and the reload button.

use serde_json::{Value, json};

use super::{Ui, assert_same_origin_requests};
use crate::support::webdriver::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_page_lists_the_catalog_and_its_try_it_forms_work() {
    let ui = Ui::start("", 0).await;
    let browser = Browser::start("servers").await;
    browser.goto(&ui.url("/servers")).await;

    // One card per server, each with its facts, and the tools under it.
    browser
        .wait_until(
            "server cards calc, clock and testkit",
            "return ['calc', 'clock', 'testkit'].every(s => \
               document.querySelector(`#server-list .server-card[data-server=\"${s}\"]`));",
        )
        .await;
    let cards = browser
        .script(
            "return [...document.querySelectorAll('#server-list .server-card')].map(c => { \
               const t = s => { const e = c.querySelector(s); return e ? e.textContent : null; }; \
               return { server: c.dataset.server, status: c.dataset.status, \
                        name: t('.server-name'), transport: t('.server-transport'), \
                        status_text: t('.server-status'), protocol: t('.server-protocol'), \
                        restarts: t('.server-restarts'), \
                        tools: [...c.querySelectorAll('.tool-entry')].map(e => e.dataset.tool) }; });",
            Value::Null,
        )
        .await;
    let cards = cards.as_array().expect("cards").clone();
    assert_eq!(cards.len(), 3, "{cards:#?}");
    let (_, catalog) = ui.request(reqwest::Method::GET, "/api/tools", None).await;
    for card in &cards {
        let server = card["server"].as_str().unwrap_or_default();
        assert_eq!(card["status"], "ready", "{card:#}");
        assert!(
            card["name"].as_str().is_some_and(|n| n.contains(server)),
            "{card:#}"
        );
        assert!(
            card["transport"]
                .as_str()
                .is_some_and(|t| t.contains("stdio")),
            "{card:#}"
        );
        for field in ["status_text", "protocol", "restarts"] {
            assert!(
                card[field].as_str().is_some_and(|t| !t.trim().is_empty()),
                "{field} missing or empty: {card:#}"
            );
        }
        let mut shown: Vec<&str> = card["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        shown.sort_unstable();
        let mut listed: Vec<&str> = catalog["tools"]
            .as_array()
            .expect("catalog")
            .iter()
            .filter(|t| t["server"] == server)
            .filter_map(|t| t["name"].as_str())
            .collect();
        listed.sort_unstable();
        assert_eq!(shown, listed, "the tools of {server} vs GET /api/tools");
    }
    let evaluate = ".server-card[data-server=\"calc\"] .tool-entry[data-tool=\"calc__evaluate\"]";
    let description = super::text_of(&browser, &format!("{evaluate} .tool-description")).await;
    assert!(
        !description.trim().is_empty(),
        "calc__evaluate has no .tool-description"
    );
    let schema = super::text_of(&browser, &format!("{evaluate} .tool-schema")).await;
    assert!(schema.contains("expression"), ".tool-schema: {schema:?}");
    browser.screenshot("servers").await;

    // Try calc__evaluate: the result shows.
    let form = format!("{evaluate} form.try-it");
    let expression = browser.find(&format!("{form} [name=\"expression\"]")).await;
    expression.clear().await;
    expression.send_keys("6*7").await;
    browser
        .find(&format!("{form} button[type=submit].try-submit"))
        .await
        .click()
        .await;
    browser
        .wait_until_with(
            "calc__evaluate's .try-result to show 42",
            super::PATIENCE,
            "const r = document.querySelector(arguments[0]); \
             return r && r.textContent.includes('42');",
            json!([format!("{evaluate} .try-result")]),
        )
        .await;
    browser.screenshot("servers-try-result").await;

    // Try testkit__sleep with a negative `ms` (the schema says at least 0): an error naming `ms`,
    // and the tool never ran.
    let sleep = ".server-card[data-server=\"testkit\"] .tool-entry[data-tool=\"testkit__sleep\"]";
    let ms = browser
        .find(&format!("{sleep} form.try-it [name=\"ms\"]"))
        .await;
    let data_type = ms.attr("data-type").await.unwrap_or_default();
    assert!(
        data_type == "integer" || data_type == "number",
        "[name=ms] has data-type {data_type:?}"
    );
    ms.clear().await;
    ms.send_keys("-5").await;
    browser
        .find(&format!(
            "{sleep} form.try-it button[type=submit].try-submit"
        ))
        .await
        .click()
        .await;
    let errors = browser
        .wait_until_with(
            "testkit__sleep's .try-errors li naming `ms`",
            super::PATIENCE,
            "const items = [...document.querySelectorAll(arguments[0])].map(e => e.textContent); \
             return items.some(t => /(^|[^A-Za-z0-9_])ms([^A-Za-z0-9_]|$)/.test(t)) && items;",
            json!([format!("{sleep} .try-errors li")]),
        )
        .await;
    assert!(errors.as_array().is_some_and(|e| !e.is_empty()), "{errors}");
    let result = super::text_of(&browser, &format!("{sleep} .try-result")).await;
    assert!(
        !result.contains("slept"),
        "the invalid call ran anyway: {result:?}"
    );
    browser.screenshot("servers-try-errors").await;

    // Reload the (unchanged) config: a notice says what happened.
    browser.find("button#reload-config").await.click().await;
    browser.wait_text("#reload-result .notice").await;
    browser
        .wait_until(
            "button#reload-config to be usable again after the reload",
            "return !document.querySelector('button#reload-config').disabled;",
        )
        .await;
    let outcome = super::text_of(&browser, "#reload-result .notice.error").await;
    assert!(
        outcome.is_empty(),
        "reloading an unchanged config failed: {outcome}"
    );
    browser.screenshot("servers-reloaded").await;
    browser.assert_console_clean("servers").await;
    assert_same_origin_requests(&browser, "servers").await;
    drop(browser);
    ui.server.stop().await;
}
