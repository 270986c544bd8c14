//! The web UI in a real browser: headless Chromium driven over WebDriver
//! (`support::webdriver`) against the real server in-process, with the scripted fake model and
//! the bundled calc, clock and testkit servers. Each test saves screenshots under
//! `target/ui-screenshots/` and fails on errors in the browser console.
//!
//! - `pages`: every page loads with its CSP header, nav and a clean console; bad input gets a
//!   message.
//! - `trace`: a chat with two parallel tool calls shows both cards and the answer, and its trace
//!   in `/debug` draws exactly the stored DAG; the stop button cancels a run, and a model that
//!   fails gets a notice in plain words.
//! - `servers`: the catalog and its try-it forms (a result, validation errors with paths).
//! - `hostile`: script, event handlers, script and data URLs, SVG and remote images in model
//!   output, tool output, tool descriptions and server names stay inert text everywhere.
//! - `conversations`: the chat's conversation list: new, rename (Enter saves, Escape cancels),
//!   delete, reopen by URL, a hostile title, bad ids.
//! - `foreign`: a page on another origin sends a `text/plain` form post and `no-cors` fetches
//!   (completions, chat, config reload); nothing runs, no model is called, no reload applies.
//! - `forms`: try-it forms generated from schemas with booleans, enums (also behind `$ref` and
//!   `oneOf`), arrays of strings and objects, nested objects; what is sent is exactly what was
//!   filled in; JSON mode reports invalid JSON before sending and shows the server's error paths.
//! - `signin`: with `server.auth: keys`, signing in with a pasted key (a wrong one gets a
//!   message), the header's "signed in as", Sign out, the cookie's HttpOnly/SameSite flags,
//!   `next` followed only to this server, a foreign page that cannot use the session the browser
//!   holds, the Audit view (administrators only; plain messages for everyone else, on /servers
//!   too), and a 401 sending the page to sign in and back; with `auth: none`, "local".
//!
//! The pages' DOM contract (ids, classes, `data-` attributes) is what these tests select on.

mod approvals;
mod asks;
mod context;
mod conversations;
mod foreign;
mod forms;
mod hostile;
mod pages;
mod servers;
mod signin;
mod trace;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_fake_llm::FakeLlm;

use crate::support::webdriver::Browser;
use crate::support::{self};

/// Longest wait for the servers to be ready or a run to end.
const PATIENCE: Duration = Duration::from_secs(20);

/// The server under test: models `fake` (the scripted fake LLM, default) and `hosted` (no key,
/// so unavailable), agent `calc`, and the bundled calc, clock and testkit servers plus any
/// `extra_servers`.
struct Ui {
    server: support::InProcessServer,
    fake: FakeLlm,
    /// How many MCP servers the config has (all must be ready before a test starts).
    servers: usize,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Ui {
    type Target = support::InProcessServer;
    fn deref(&self) -> &Self::Target {
        &self.server
    }
}

impl Ui {
    /// Start with the default servers and the extra `mcpServers` entries of `extra_servers`
    /// (YAML lines indented by two spaces), `extra_count` of them; wait until all are ready.
    async fn start(extra_servers: &str, extra_count: usize) -> Ui {
        let fake = FakeLlm::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = support::write_demo_config(dir.path(), &fake, extra_servers);
        let ui = Ui {
            server: support::InProcessServer::start(&path).await,
            fake,
            servers: 3 + extra_count,
            _dir: dir,
        };
        ui.wait_ready().await;
        ui
    }

    /// The absolute URL of `path` on the server.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (_, body) = self.request(Method::GET, "/api/mcp/servers", None).await;
            let servers = body["servers"].as_array().cloned().unwrap_or_default();
            if servers.len() == self.servers && servers.iter().all(|s| s["status"] == "ready") {
                return;
            }
            assert!(Instant::now() < deadline, "servers not ready: {body:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /api/runs/{id}` once the run has ended.
    async fn ended_run(&self, id: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, run) = self
                .request(Method::GET, &format!("/api/runs/{id}"), None)
                .await;
            if status == StatusCode::OK && run["status"] != "running" {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} did not end: {run:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// On the chat page: pick model `fake`, send `message`, and return the run id the new assistant
/// message gets (`.message.assistant[data-run-id]`).
async fn send_chat(browser: &Browser, message: &str) -> String {
    let before = browser
        .script(
            "return document.querySelectorAll('#messages .message.assistant').length;",
            Value::Null,
        )
        .await;
    browser
        .wait_for("select#model-select option[value=\"fake\"]")
        .await
        .click()
        .await;
    browser
        .wait_until(
            "model `fake` to be selected in select#model-select",
            "return document.querySelector('select#model-select').value === 'fake';",
        )
        .await;
    let input = browser.wait_for("textarea#chat-input").await;
    input.send_keys(message).await;
    browser.find("button#send-button").await.click().await;
    let run_id = browser
        .wait_until_with(
            "a new assistant message with its run id (.message.assistant[data-run-id])",
            PATIENCE,
            "const m = document.querySelectorAll('#messages .message.assistant')[arguments[0]];\
             return m && m.dataset.runId;",
            json!([before]),
        )
        .await;
    run_id.as_str().expect("a run id string").to_owned()
}

/// Elements of the page matching `css` as `[attribute values…]` rows, for exact comparisons.
async fn rows(browser: &Browser, css: &str, attributes: &[&str]) -> Vec<Vec<String>> {
    let value = browser
        .script(
            "return [...document.querySelectorAll(arguments[0])]\
               .map(e => arguments[1].map(a => e.getAttribute(a)));",
            json!([css, attributes]),
        )
        .await;
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            row.as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().unwrap_or("<missing>").to_owned())
                .collect()
        })
        .collect()
}

/// The `textContent` of the first element matching `css` (empty when none matches).
async fn text_of(browser: &Browser, css: &str) -> String {
    browser
        .script(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Fail unless every resource the page has requested so far (Resource Timing: scripts, styles,
/// images, fetches) came from the page's own origin.
async fn assert_same_origin_requests(browser: &Browser, context: &str) {
    let foreign = browser
        .script(
            "return performance.getEntriesByType('resource')\
               .map(e => e.name)\
               .filter(u => new URL(u).origin !== location.origin);",
            Value::Null,
        )
        .await;
    if foreign.as_array().is_some_and(|a| !a.is_empty()) {
        browser
            .fail(&format!(
                "the page requested another origin ({context}): {foreign}"
            ))
            .await;
    }
}
