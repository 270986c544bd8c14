//! A server's prompt and resource used from the chat page (the reference server's
//! `args-prompt` and a static document): picking the prompt asks for its required argument,
//! fills the message with the prompt's text; attaching the resource shows a chip; the sent
//! message reaches the model with the resource's text after it, and the chip is gone. `/servers`
//! lists the server's resources and prompts.

use serde_json::json;
use switchboard_fake_llm::Reply;

use super::{Ui, send_chat};
use crate::support::webdriver::Browser;
use crate::support::{self};

/// Choose the option of `select` whose text contains `text` (as a person picking it would).
async fn choose(browser: &Browser, select: &str, text: &str) {
    browser
        .wait_until_with(
            &format!("an option containing `{text}` in {select}"),
            std::time::Duration::from_secs(30),
            "const s = document.querySelector(arguments[0]);\
             const o = s && [...s.options].find((o) => o.textContent.includes(arguments[1]));\
             if (!o) return false;\
             s.value = o.value; s.dispatchEvent(new Event('change', {bubbles: true})); return true;",
            json!([select, text]),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_prompt_and_resource_are_used_from_the_chat() {
    let command = support::node_bin_dir().join("mcp-server-everything");
    let everything = format!(
        "  everything:\n    command: {}\n    args: [stdio]\n",
        command.display()
    );
    let ui = Ui::start(&everything, 1).await;
    let browser = Browser::start("chat_context").await;
    browser.goto(&ui.url("/")).await;

    choose(&browser, "select#prompt-select", "Arguments Prompt").await;
    let city = browser.wait_for("#prompt-form input[name=\"city\"]").await;
    assert!(city.attr("required").await.is_some(), "city is required");
    let state = browser.find("#prompt-form input[name=\"state\"]").await;
    assert!(state.attr("required").await.is_none(), "state is optional");
    city.send_keys("Paris").await;
    browser
        .find("#prompt-form button.prompt-use")
        .await
        .click()
        .await;
    browser
        .wait_until(
            "the prompt's text in the message box",
            "return document.querySelector('textarea#chat-input').value === \"What's weather in Paris?\";",
        )
        .await;

    choose(&browser, "select#resource-select", "architecture").await;
    browser
        .wait_for(".attachment-chip[data-server=\"everything\"]")
        .await;
    browser.screenshot("chat_context_ready").await;

    ui.fake.push(Reply::text("Sunny."));
    let run_id = send_chat(&browser, " Briefly.").await;
    let run = ui.ended_run(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let user = crate::support::served::last_user_message(&ui.fake);
    assert!(
        user.starts_with("What's weather in Paris? Briefly."),
        "{user}"
    );
    assert!(
        user.contains(
            "--- attached resource demo://resource/static/document/architecture.md from everything"
        ),
        "{user}"
    );
    assert!(
        browser.try_find(".attachment-chip").await.is_none(),
        "the chip goes with the message"
    );

    browser.goto(&ui.url("/servers")).await;
    browser
        .wait_for("#context-list tr.context-row[data-kind=\"prompt\"][data-server=\"everything\"]")
        .await;
    browser
        .wait_for(
            "#context-list tr.context-row[data-kind=\"resource\"][data-server=\"everything\"]",
        )
        .await;
    browser
        .assert_console_clean("chat and servers with resources and prompts")
        .await;
}
