//! The chat page's conversation list: two chats make two conversations, listed newest first as
//! `GET /api/conversations` has them; a rename in place (Enter) is saved and shown, Escape
//! cancels one without saving, a hostile title stays text; a delete (with its confirmation)
//! removes one from the list and the store; opening the other loads its messages and puts
//! `?c=<id>` in the URL, a reload of that URL opens it again, and a `?c=` that names nothing
//! gets a notice instead of a blank page.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_fake_llm::Reply;

use super::{PATIENCE, Ui, assert_same_origin_requests, send_chat, text_of};
use crate::support::webdriver::{Browser, Element};

const FIRST_QUESTION: &str = "What is the first thing?";
const FIRST_ANSWER: &str = "The first answer.";
const SECOND_QUESTION: &str = "And the second thing?";
const SECOND_ANSWER: &str = "The second answer.";
const NEW_TITLE: &str = "Renamed: the first thing";
const HOSTILE_TITLE: &str = "<img src=x onerror=\"window.__pwned=1\">";
/// WebDriver key codes.
const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";
const CONTROL: &str = "\u{E009}";
const RELEASE: &str = "\u{E000}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_are_listed_renamed_deleted_and_opened_from_the_url() {
    let ui = Ui::start("", 0).await;
    ui.fake.push(Reply::text(FIRST_ANSWER));
    ui.fake.push(Reply::text(SECOND_ANSWER));
    let browser = Browser::start("conversations").await;
    browser.goto(&ui.url("/")).await;

    // Two chats, each its own conversation.
    let first_run = send_chat(&browser, FIRST_QUESTION).await;
    finish_answer(&browser, &ui, &first_run, FIRST_ANSWER).await;
    let first = url_conversation(&browser).await;
    wait_listed(&browser, 1).await;
    browser.find("button#new-conversation").await.click().await;
    browser
        .wait_until(
            "New chat to empty the page and the URL",
            "return location.search === '' && !document.querySelector('#messages .message');",
        )
        .await;
    let second_run = send_chat(&browser, SECOND_QUESTION).await;
    finish_answer(&browser, &ui, &second_run, SECOND_ANSWER).await;
    let second = url_conversation(&browser).await;
    assert_ne!(
        first, second,
        "the second chat reused the first conversation"
    );
    wait_listed(&browser, 2).await;

    // Newest first, exactly as the API lists them.
    let shown = listed(&browser).await;
    assert_eq!(
        shown,
        [
            (second.clone(), SECOND_QUESTION.to_owned()),
            (first.clone(), FIRST_QUESTION.to_owned())
        ],
        "#conversation-list [id, .conversation-title] (newest first)"
    );
    assert_eq!(
        shown,
        api_list(&ui).await,
        "the list vs GET /api/conversations"
    );
    let active = super::rows(
        &browser,
        "#conversation-list .conversation-item.active",
        &["data-conversation-id"],
    )
    .await;
    assert_eq!(
        active,
        [[second.clone()]],
        "the open conversation is marked active"
    );
    browser.screenshot("two-conversations").await;

    // Rename the first in place; Enter saves.
    let first_item = item(&first);
    let input = start_rename(&browser, &first_item).await;
    let start = browser
        .script(
            "const i = document.querySelector(arguments[0]); \
             return [i.value, document.activeElement === i];",
            json!([format!("{first_item} input.rename-input")]),
        )
        .await;
    assert_eq!(
        start,
        json!([FIRST_QUESTION, true]),
        "input.rename-input starts focused, with the current title"
    );
    input.send_keys(&replace_with(NEW_TITLE)).await;
    browser.screenshot("renaming").await;
    input.send_keys(ENTER).await;
    wait_title(&browser, &first, NEW_TITLE).await;
    assert_eq!(
        api_title(&ui, &first).await,
        NEW_TITLE,
        "GET /api/conversations/{first}"
    );
    assert_eq!(
        listed(&browser).await,
        api_list(&ui).await,
        "the list vs GET /api/conversations after the rename"
    );

    // Escape cancels a rename: nothing is saved, the old title comes back.
    let second_item = item(&second);
    let input = start_rename(&browser, &second_item).await;
    input
        .send_keys(&replace_with("This must not be saved"))
        .await;
    input.send_keys(ESCAPE).await;
    browser
        .wait_until_with(
            "Escape to put the title back in place of input.rename-input",
            PATIENCE,
            "const li = document.querySelector(arguments[0]); \
             return li && !li.querySelector('input.rename-input') \
               && li.querySelector('.conversation-title');",
            json!([second_item]),
        )
        .await;
    // A save would be a PATCH in flight: give it time to land before asking the store.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        text_of(&browser, &format!("{second_item} .conversation-title")).await,
        SECOND_QUESTION,
        "the title after Escape"
    );
    assert_eq!(
        api_title(&ui, &second).await,
        SECOND_QUESTION,
        "Escape saved the rename anyway"
    );

    // A hostile title is text: in the list and in the heading of the open conversation.
    let input = start_rename(&browser, &second_item).await;
    input.send_keys(&replace_with(HOSTILE_TITLE)).await;
    input.send_keys(ENTER).await;
    wait_title(&browser, &second, HOSTILE_TITLE).await;
    assert_eq!(api_title(&ui, &second).await, HOSTILE_TITLE);
    browser
        .wait_until_with(
            "h1#conversation-heading to show the hostile title as text",
            PATIENCE,
            "return document.getElementById('conversation-heading').textContent === arguments[0];",
            json!([HOSTILE_TITLE]),
        )
        .await;
    let inert = browser
        .script(
            "return { pwned: typeof window.__pwned, \
                      imgs: document.querySelectorAll( \
                        '#conversation-list img, #conversation-heading img').length };",
            Value::Null,
        )
        .await;
    assert_eq!(
        inert,
        json!({ "pwned": "undefined", "imgs": 0 }),
        "the hostile title became markup"
    );
    browser.screenshot("hostile-title").await;

    // Delete the second (open) conversation: confirm, gone from the list and the store.
    browser
        .find(&format!("{second_item} .delete-conversation"))
        .await
        .click()
        .await;
    browser
        .wait_for(&format!("{second_item} .confirm-delete"))
        .await
        .click()
        .await;
    browser
        .wait_until_with(
            "the deleted conversation to leave #conversation-list",
            PATIENCE,
            "return !document.querySelector(arguments[0]);",
            json!([second_item]),
        )
        .await;
    let (status, body) = ui
        .request(Method::GET, &format!("/api/conversations/{second}"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "GET a deleted conversation: {body:#}"
    );
    let remaining = vec![(first.clone(), NEW_TITLE.to_owned())];
    assert_eq!(
        listed(&browser).await,
        remaining,
        "#conversation-list after the delete"
    );
    assert_eq!(
        api_list(&ui).await,
        remaining,
        "GET /api/conversations after the delete"
    );
    browser
        .wait_until(
            "deleting the open conversation to leave an empty new chat at /",
            "return location.search === '' && !document.querySelector('#messages .message');",
        )
        .await;
    browser.screenshot("deleted").await;

    // Open the remaining one from the list: its messages, ?c=<id>, its title.
    browser
        .find(&format!("{first_item} .conversation-open"))
        .await
        .click()
        .await;
    check_open(&browser, &first).await;
    browser.screenshot("opened").await;

    // A reload of that URL opens it again.
    let url = browser.current_url().await;
    assert!(
        url.ends_with(&format!("/?c={first}")),
        "the URL of the open conversation is {url}"
    );
    browser.goto(&url).await;
    check_open(&browser, &first).await;
    browser.screenshot("reloaded").await;
    browser.assert_console_clean("conversations").await;
    assert_same_origin_requests(&browser, "conversations").await;

    // A ?c= that names nothing: the deleted id (404) and something that is no id at all (400).
    for (bad, shot) in [(second.as_str(), "deleted-id"), ("not-an-id", "garbage-id")] {
        browser.goto(&ui.url(&format!("/?c={bad}"))).await;
        let notice = browser
            .wait_until(
                "a .notice in #chat-notices for the bad ?c=",
                "const n = document.querySelector('#chat-notices .notice'); \
                 return n && n.textContent.trim();",
            )
            .await;
        assert!(
            notice.as_str().is_some_and(|n| !n.is_empty()),
            "?c={bad}: {notice}"
        );
        browser
            .wait_until_with(
                "an empty new chat (not a blank page) under the notice",
                PATIENCE,
                "return !!document.querySelector('#messages .chat-empty') \
                   && document.querySelectorAll('#conversation-list .conversation-item').length \
                        === 1;",
                json!([]),
            )
            .await;
        browser.screenshot(shot).await;
    }
    browser.assert_console_clean("conversations, bad ?c=").await;
    drop(browser);
    ui.server.stop().await;
}

/// Keys that select all of a field's text (Ctrl+A) and type `text` over it. (Element Clear
/// would blur the rename field, which saves or ends the rename.)
fn replace_with(text: &str) -> String {
    format!("{CONTROL}a{RELEASE}{text}")
}

/// The selector of conversation `id`'s list item.
/// Click an item's rename button and return the input that replaces its title.
async fn start_rename<'a>(browser: &'a Browser, item: &str) -> Element<'a> {
    browser
        .find(&format!("{item} .rename-conversation"))
        .await
        .click()
        .await;
    browser
        .wait_for(&format!("{item} input.rename-input"))
        .await
}

fn item(id: &str) -> String {
    format!("#conversation-list .conversation-item[data-conversation-id=\"{id}\"]")
}

/// Wait until run `run_id` has ended, its answer shows `answer`, and the composer is usable.
async fn finish_answer(browser: &Browser, ui: &Ui, run_id: &str, answer: &str) {
    let run = ui.ended_run(run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    browser
        .wait_until_with(
            "the answer to show and button#send-button to be enabled again",
            PATIENCE,
            "const m = document.querySelector( \
               `.message.assistant[data-run-id=\"${arguments[0]}\"] .answer`); \
             return m && m.textContent.includes(arguments[1]) \
               && !document.getElementById('send-button').disabled;",
            json!([run_id, answer]),
        )
        .await;
}

/// The conversation id in the page's `?c=`.
async fn url_conversation(browser: &Browser) -> String {
    let id = browser
        .wait_until(
            "?c=<conversation id> in the URL",
            "return new URLSearchParams(location.search).get('c');",
        )
        .await;
    id.as_str().expect("an id string").to_owned()
}

/// Wait until the list has `count` conversation items.
async fn wait_listed(browser: &Browser, count: usize) {
    browser
        .wait_until_with(
            &format!("{count} .conversation-item[data-conversation-id] in #conversation-list"),
            PATIENCE,
            "return document.querySelectorAll( \
               '#conversation-list .conversation-item[data-conversation-id]').length \
                 === arguments[0];",
            json!([count]),
        )
        .await;
}

/// The list as `(id, title)` in page order.
async fn listed(browser: &Browser) -> Vec<(String, String)> {
    let value = browser
        .script(
            "return [...document.querySelectorAll( \
                 '#conversation-list .conversation-item[data-conversation-id]')] \
               .map(li => { const t = li.querySelector('.conversation-title'); \
                            return [li.dataset.conversationId, t ? t.textContent : null]; });",
            Value::Null,
        )
        .await;
    serde_json::from_value(value).expect("[id, title] rows")
}

/// `GET /api/conversations` as `(id, title)`, in its order.
async fn api_list(ui: &Ui) -> Vec<(String, String)> {
    let (status, body) = ui.request(Method::GET, "/api/conversations", None).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    body["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_owned(),
                c["title"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The title `GET /api/conversations/{id}` has.
async fn api_title(ui: &Ui, id: &str) -> String {
    let (status, body) = ui
        .request(Method::GET, &format!("/api/conversations/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    body["title"].as_str().unwrap_or_default().to_owned()
}

/// Wait until conversation `id`'s list item shows `title` (and no rename field).
async fn wait_title(browser: &Browser, id: &str, title: &str) {
    browser
        .wait_until_with(
            &format!("the list item of {id} to show the title {title:?}"),
            PATIENCE,
            "const li = document.querySelector(arguments[0]); \
             const t = li && li.querySelector('.conversation-title'); \
             return !!t && !li.querySelector('input.rename-input') \
               && t.textContent === arguments[1];",
            json!([item(id), title]),
        )
        .await;
}

/// Conversation `id` (the first one, renamed) is open: `?c=<id>`, its item active, its title
/// as the heading, its question and answer as the messages.
async fn check_open(browser: &Browser, id: &str) {
    browser
        .wait_until_with(
            "the conversation to open with its messages",
            PATIENCE,
            "return new URLSearchParams(location.search).get('c') === arguments[0] \
               && document.querySelectorAll('#messages .message.user').length === 1 \
               && !!document.querySelector('#messages .message.assistant .answer');",
            json!([id]),
        )
        .await;
    let opened = browser
        .script(
            "const t = s => [...document.querySelectorAll(s)].map(e => e.textContent.trim()); \
             return { user: t('#messages .message.user .user-text'), \
                      answer: t('#messages .message.assistant .answer'), \
                      heading: document.getElementById('conversation-heading').textContent, \
                      active: [...document.querySelectorAll( \
                        '#conversation-list .conversation-item.active')] \
                        .map(li => li.dataset.conversationId) };",
            Value::Null,
        )
        .await;
    assert_eq!(
        opened,
        json!({
            "user": [FIRST_QUESTION],
            "answer": [FIRST_ANSWER],
            "heading": NEW_TITLE,
            "active": [id],
        }),
        "the opened conversation (messages, heading, active item)"
    );
}
