//! A question the reference server asks during a chat's tool call (MCP elicitation): the chat
//! shows its message and a form generated from its schema under the tool's card; submitting
//! without the required field is refused next to it; a filled-in form goes back to the server,
//! the card says it was answered, and the tool's result shows what the server got.

use serde_json::json;
use switchboard_fake_llm::Reply;

use super::{Ui, send_chat, text_of};
use crate::support::webdriver::Browser;
use crate::support::{self};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_question_is_answered_from_the_chat() {
    let command = support::node_bin_dir().join("mcp-server-everything");
    let everything = format!(
        "  everything:\n    command: {}\n    args: [stdio]\n    trusted: true\n",
        command.display()
    );
    let ui = Ui::start(&everything, 1).await;
    ui.fake.push(Reply::tool_call(
        "call_ask",
        "everything__trigger-elicitation-request",
        json!({}),
    ));
    ui.fake.push(Reply::text("Thank you, **noted**."));
    let browser = Browser::start("chat_elicitation").await;
    browser.goto(&ui.url("/")).await;
    let run_id = send_chat(&browser, "Ask me for my details.").await;

    let card = ".tool-card[data-tool=\"everything__trigger-elicitation-request\"] .input-card";
    browser
        .wait_for(&format!("{card}[data-state=\"open\"]"))
        .await;
    assert_eq!(
        text_of(&browser, &format!("{card} .input-server")).await,
        "everything"
    );
    assert!(
        text_of(&browser, &format!("{card} .input-message"))
            .await
            .contains("provide inputs"),
        "the server's message is shown"
    );
    browser.screenshot("chat_elicitation_open").await;

    // `name` is required: sending without it is refused next to the field.
    browser
        .find(&format!("{card} button.input-accept"))
        .await
        .click()
        .await;
    browser
        .wait_until(
            "an error placed at /name",
            &format!(
                "const c = document.querySelector('{}'); \
                 return c && c.dataset.state === 'open' \
                   && (c.querySelector('.input-errors li[data-path=\"/name\"]') !== null \
                       || c.querySelector('.sf-invalid [name=\"name\"], .sf-invalid[data-path=\"/name\"]') !== null);",
                card.replace('"', "\\\"")
            ),
        )
        .await;

    let name = browser.find(&format!("{card} [name=\"name\"]")).await;
    name.send_keys("Grace Hopper").await;
    browser
        .find(&format!("{card} button.input-accept"))
        .await
        .click()
        .await;
    browser
        .wait_for(&format!("{card}[data-state=\"accept\"]"))
        .await;
    browser
        .wait_for(".tool-card[data-tool=\"everything__trigger-elicitation-request\"][data-status=\"succeeded\"]")
        .await;
    let run = ui.ended_run(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let act = run["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["kind"] == "act"))
        .expect("the act step");
    assert!(
        act["output"].to_string().contains("Name: Grace Hopper"),
        "the server got the form's content: {act:#}"
    );
    browser.screenshot("chat_elicitation_answered").await;
    browser
        .assert_console_clean("answering a server's question")
        .await;
}
