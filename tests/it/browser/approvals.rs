//! Approval cards: a gated call in the chat shows its tool, server, reason and arguments;
//! Deny with a reason closes the card and the model hears it; Edit with JSON the schema refuses
//! shows the error at its path and keeps the card open, a valid edit approves; in `/debug` a
//! waiting run shows the same card and is decided from there.

use serde_json::json;
use switchboard_fake_llm::Reply;

use super::{Ui, send_chat, text_of};
use crate::support::webdriver::Browser;
use crate::support::{self};

const CARD: &str = ".tool-card[data-tool=\"notes__add_note\"] .approval-card";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_cards_decide_gated_calls_in_the_chat_and_in_debug() {
    let notes = support::bundled_stdio("notes", "notes", &[])
        .replace("    trusted: true\n", "    trusted: annotations\n");
    let ui = Ui::start(&notes, 1).await;
    let browser = Browser::start("approvals").await;
    browser.goto(&ui.url("/")).await;

    // Deny, with a reason the model hears.
    let (run_id, _) = gated_chat(
        &ui,
        &browser,
        "<img src=x onerror=alert(1)>",
        "Not saved.",
        "Save a note.",
    )
    .await;
    assert_eq!(
        text_of(&browser, &format!("{CARD} .approval-tool")).await,
        "notes__add_note"
    );
    assert_eq!(
        text_of(&browser, &format!("{CARD} .approval-server")).await,
        "notes"
    );
    assert!(
        text_of(&browser, &format!("{CARD} .approval-args"))
            .await
            .contains("<img src=x onerror=alert(1)>"),
        "the arguments are shown, as text"
    );
    assert!(
        browser.try_find(&format!("{CARD} img")).await.is_none(),
        "nothing in the arguments became markup"
    );
    browser.screenshot("approval_open").await;
    browser
        .find(&format!("{CARD} .approval-reason"))
        .await
        .send_keys("not now")
        .await;
    browser
        .find(&format!("{CARD} button.approval-deny"))
        .await
        .click()
        .await;
    browser
        .wait_for(&format!("{CARD}[data-state=\"denied\"]"))
        .await;
    let run = ui.ended_run(&run_id).await;
    let heard = ui.fake.requests()[1].body.to_string();
    assert!(
        heard.contains("not now"),
        "the model hears the reason: {heard}"
    );
    assert_eq!(
        run["status"], "partial",
        "the denied call did not run: {run:#}"
    );

    // Edit: JSON the schema refuses keeps the card open with the error; a valid edit approves.
    let (run_id, card) = gated_chat(&ui, &browser, "draft", "Saved.", "Save another.").await;
    browser
        .find(&format!("{card} button.approval-edit-toggle"))
        .await
        .click()
        .await;
    approve_edited(&browser, &card, "{\"title\": 5, \"body\": \"b\"}").await;
    browser
        .wait_for(&format!("{card} .approval-errors li[data-path=\"/title\"]"))
        .await;
    assert_eq!(
        browser
            .find(&card)
            .await
            .attr("data-state")
            .await
            .as_deref(),
        Some("open"),
        "a refused edit leaves the approval open"
    );
    approve_edited(&browser, &card, "{\"title\": \"final\", \"body\": \"b\"}").await;
    browser
        .wait_for(&format!("{card}[data-state=\"approved\"]"))
        .await;
    let run = ui.ended_run(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert!(
        run.to_string().contains("final"),
        "the note was saved as edited"
    );

    // /debug shows a waiting run's approval and decides it.
    let (run_id, _) = gated_chat(
        &ui,
        &browser,
        "from debug",
        "Saved from debug.",
        "One more.",
    )
    .await;
    browser
        .goto(&ui.url(&format!("/debug/runs/{run_id}")))
        .await;
    let debug_card = ".run-approvals .approval-card[data-state=\"open\"]";
    browser.wait_for(debug_card).await;
    browser.screenshot("approval_debug").await;
    browser
        .find(&format!("{debug_card} button.approval-approve"))
        .await
        .click()
        .await;
    browser
        .wait_for(".run-approvals .approval-card[data-state=\"approved\"]")
        .await;
    let run = ui.ended_run(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    browser.assert_console_clean("approval cards").await;
}

/// The model calls `notes__add_note` with `title` and then answers `answer`; the chat sends
/// `message`. Returns the run id and the selector of its approval card, once the card is open.
async fn gated_chat(
    ui: &Ui,
    browser: &Browser,
    title: &str,
    answer: &str,
    message: &str,
) -> (String, String) {
    ui.fake.push(Reply::tool_call(
        "add",
        "notes__add_note",
        json!({"title": title, "body": "b"}),
    ));
    ui.fake.push(Reply::text(answer));
    let run_id = send_chat(browser, message).await;
    let card = format!(".message.assistant[data-run-id=\"{run_id}\"] {CARD}");
    browser
        .wait_for(&format!("{card}[data-state=\"open\"]"))
        .await;
    (run_id, card)
}

/// Replace the card's edited arguments with `json` and press Approve.
async fn approve_edited(browser: &Browser, card: &str, json: &str) {
    let editor = browser
        .find(&format!("{card} textarea.approval-edit"))
        .await;
    editor.clear().await;
    editor.send_keys(json).await;
    browser
        .find(&format!("{card} button.approval-approve"))
        .await
        .click()
        .await;
}
