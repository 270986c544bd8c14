//! Signing in to the web UI of a server with `server.auth: keys`, in the real browser. Keys are
//! made through `POST /api/keys` with the administrator key of `SWITCHBOARD_ADMIN_KEY` (which
//! itself cannot sign in); the browser signs in with them as a person would, by pasting one.
//!
//! What the tests prove:
//! - a page asked for without a session lands on `/signin?next=…`; a wrong key gets "That key
//!   was not accepted." and keeps what was typed; the right key lands on the page asked for,
//!   whose header says who is signed in; the session cookie is HttpOnly (the page's script
//!   cannot read it), SameSite=Strict and Secure only behind TLS; a chat works signed in and
//!   the run is the user's; Sign out returns to `/signin` and the session is gone (401);
//! - `next` is followed only to a path on this server: another origin, `//host`, a backslash
//!   or a tab trick, a script URL all land on `/`;
//! - a page on another origin (same site, so the browser attaches the cookie) cannot use the
//!   administrator's session: a `text/plain` form post to `/api/chat`, `no-cors` fetches with
//!   credentials to `/v1/chat/completions` and `/api/config/reload` and JSON fetches start no
//!   run, call no model and reload nothing (nothing in the audit log either), and the session
//!   still works afterwards;
//! - a user who is not an administrator gets no Audit tab, a plain message on `/debug/audit`
//!   and on `/servers`, and a clean console;
//! - the administrator's Audit view lists exactly the audit log (sign-ins with their key ids,
//!   the failed one without a user), filters it by action, user and outcome, links a run's
//!   trace id to its trace, and pages through it with "Older entries";
//! - an API call answered 401 (the key was revoked while the page was open) sends the page to
//!   `/signin?next=<that page>`, and signing in again goes back there;
//! - with `server.auth: none` the header says "local" without a Sign out button, and the
//!   sign-in page says sign-in is not needed.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_fake_llm::{FakeLlm, Reply};

use super::{PATIENCE, Ui, rows, send_chat, text_of};
use crate::support::webdriver::Browser;
use crate::support::{self, InProcessServer, ServeExtras};

/// `SWITCHBOARD_ADMIN_KEY` of these servers. It makes keys; it cannot sign in itself.
const ADMIN_KEY: &str = "sb-admin-key-for-the-browser-tests-0123456789";
/// A key of the right shape (`sb_<12 hex id>_<64 hex secret>`) that no server issued.
const UNKNOWN_KEY: &str =
    "sb_0123456789ab_00000000000000000000000000000000000000000000000000000000000000ff";
/// The id part of [`UNKNOWN_KEY`], which a refused sign-in is audited with.
const UNKNOWN_KEY_ID: &str = "0123456789ab";

/// A key made through `POST /api/keys`.
struct Key {
    id: String,
    secret: String,
}

/// The demo servers (fake model, `calc` agent, calc, clock and testkit) with `auth: keys` and
/// [`ADMIN_KEY`], every MCP server ready.
struct Secured {
    server: InProcessServer,
    fake: FakeLlm,
    dir: tempfile::TempDir,
}

impl std::ops::Deref for Secured {
    type Target = InProcessServer;
    fn deref(&self) -> &Self::Target {
        &self.server
    }
}

impl Secured {
    async fn start() -> Secured {
        let fake = FakeLlm::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = support::write_demo_config(dir.path(), &fake, "");
        let yaml = std::fs::read_to_string(&path).expect("read the demo config");
        let keys = yaml.replacen("server:\n", "server:\n  auth: keys\n", 1);
        assert_ne!(
            keys, yaml,
            "the demo config has a `server:` section for `auth: keys`"
        );
        std::fs::write(&path, keys).expect("write the config");
        let extras = ServeExtras {
            admin_key: Some(ADMIN_KEY.to_owned()),
            ..ServeExtras::default()
        };
        let server = InProcessServer::start_with(&path, extras).await;
        let secured = Secured { server, fake, dir };
        secured.wait_ready().await;
        secured
    }

    /// The absolute URL of `path` on the server.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Polls (the admin's view of) the MCP servers until all three are ready: a test must not
    /// race the servers' start.
    async fn wait_ready(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (_, body) = self.admin(Method::GET, "/api/mcp/servers", None).await;
            let servers = body["servers"].as_array().cloned().unwrap_or_default();
            if servers.len() == 3 && servers.iter().all(|s| s["status"] == "ready") {
                return;
            }
            assert!(Instant::now() < deadline, "servers not ready: {body:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A request as `key` (`Authorization: Bearer`), the reply as JSON.
    async fn as_key(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request to switchboard");
        let status = response.status();
        let bytes = response.bytes().await.expect("response body");
        (status, support::json_or_text(&bytes))
    }

    /// A request as the administrator of [`ADMIN_KEY`].
    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.as_key(ADMIN_KEY, method, path, body).await
    }

    /// A new key for `user` with `role`, made by the administrator.
    async fn create_key(&self, user: &str, role: &str) -> Key {
        let body = json!({ "user": user, "role": role });
        let (status, created) = self.admin(Method::POST, "/api/keys", Some(body)).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "creating a key for {user}: {created:#}"
        );
        let field = |name: &str| {
            created[name]
                .as_str()
                .unwrap_or_else(|| panic!("a created key has `{name}`: {created:#}"))
                .to_owned()
        };
        Key {
            id: field("id"),
            secret: field("secret"),
        }
    }

    /// Every audit entry matching `query` (`action=sign_in&…`), newest first.
    async fn audit(&self, query: &str) -> Vec<Value> {
        let (status, page) = self
            .admin(Method::GET, &format!("/api/audit?limit=200&{query}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "GET /api/audit?{query}: {page:#}");
        assert!(
            page["next_cursor"].is_null(),
            "more than one page: {page:#}"
        );
        page["entries"].as_array().cloned().unwrap_or_default()
    }

    /// The audit entries of `query` once `done` holds for them. The log is written in the
    /// background, so an entry appears shortly after its action.
    async fn audit_when(&self, query: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let entries = self.audit(query).await;
            if done(&entries) {
                return entries;
            }
            assert!(
                Instant::now() < deadline,
                "the audit log never matched for `{query}`: {entries:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Make an audit entry (a refused sign-in with [`UNKNOWN_KEY`]) and wait until it is in
    /// the log: the log is written in order, so everything before it is there too, and an
    /// entry still missing then was never made.
    async fn settle_audit(&self) {
        let before = self.audit("action=sign_in&outcome=denied").await.len();
        let response = self
            .http
            .post(self.url("/api/session"))
            .json(&json!({ "key": UNKNOWN_KEY }))
            .send()
            .await
            .expect("sign-in request");
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "an unknown key signs in"
        );
        self.audit_when("action=sign_in&outcome=denied", |entries| {
            entries.len() > before
        })
        .await;
    }

    /// `GET /api/runs/{id}` (as the administrator) once the run has ended.
    async fn ended_run(&self, id: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, run) = self
                .admin(Method::GET, &format!("/api/runs/{id}"), None)
                .await;
            if status == StatusCode::OK && run["status"] != "running" {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} did not end: {run:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Browser helpers

/// `value` as one query parameter value (`/` → `%2F`).
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The page's path and query, e.g. `/signin?next=%2F`.
async fn location(browser: &Browser) -> String {
    let here = browser
        .script("return location.pathname + location.search;", Value::Null)
        .await;
    here.as_str().unwrap_or_default().to_owned()
}

/// Wait until the page's path and query are `expected`.
async fn wait_location(browser: &Browser, expected: &str) {
    browser
        .wait_until_with(
            &format!("the page to be {expected}"),
            PATIENCE,
            "return location.pathname + location.search === arguments[0] \
               && document.readyState === 'complete';",
            json!([expected]),
        )
        .await;
}

/// On the sign-in page: paste `key` and press Sign in.
async fn submit_key(browser: &Browser, key: &str) {
    let input = browser.wait_for("input#signin-key").await;
    input.clear().await;
    input.send_keys(key).await;
    browser.find("button#signin-submit").await.click().await;
}

/// Sign in through `/signin?next=<next>` and wait until the browser has left the sign-in page.
async fn sign_in(browser: &Browser, secured: &Secured, key: &str, next: &str) {
    browser
        .goto(&secured.url(&format!("/signin?next={}", encode(next))))
        .await;
    submit_key(browser, key).await;
    browser
        .wait_until(
            "the browser to leave /signin after signing in",
            "return location.pathname !== '/signin' && document.readyState === 'complete';",
        )
        .await;
}

/// Who the header says is signed in, `(user, role)`, once it has rendered.
async fn signed_in_as(browser: &Browser) -> (String, String) {
    let user = browser.wait_text("#session-info .session-name").await;
    let role = text_of(browser, "#session-info .session-role").await;
    (user, role)
}

/// The status of `fetch(path)` made by the page itself (with the browser's cookies).
async fn status_in_page(browser: &Browser, path: &str) -> Value {
    browser
        .script_async(
            "const done = arguments[arguments.length - 1]; \
             fetch(arguments[0]).then(r => done(r.status), e => done(String(e)));",
            json!([path]),
        )
        .await
}

/// The `Set-Cookie` of a sign-in with `key` over plain HTTP, and with `X-Forwarded-Proto:
/// https` as a TLS-terminating proxy sends it.
async fn sign_in_cookies(secured: &Secured, key: &str) -> (String, String) {
    let mut cookies = Vec::new();
    for proto in ["http", "https"] {
        let response = secured
            .http
            .post(secured.url("/api/session"))
            .header("x-forwarded-proto", proto)
            .json(&json!({ "key": key }))
            .send()
            .await
            .expect("sign-in request");
        assert_eq!(response.status(), StatusCode::OK, "signing in over {proto}");
        let cookie = response
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("a sign-in over {proto} sets a cookie"))
            .to_owned();
        cookies.push(cookie);
    }
    let https = cookies.pop().expect("two cookies");
    let http = cookies.pop().expect("two cookies");
    (http, https)
}

/// A cookie's attributes after its `name=value`, trimmed.
fn attributes(cookie: &str) -> Vec<String> {
    cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_reaches_the_page_asked_for_and_signing_out_ends_the_session() {
    let secured = Secured::start().await;
    let alice = secured.create_key("alice", "user").await;

    // The cookie's attributes, as a browser receives them.
    let (http, https) = sign_in_cookies(&secured, &alice.secret).await;
    assert!(
        http.starts_with("sb_session=sbs_"),
        "the session cookie is sb_session with a session token: {http}"
    );
    let plain = attributes(&http);
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            plain.iter().any(|a| a == wanted),
            "the session cookie has `{wanted}`: {http}"
        );
    }
    assert!(
        !plain.iter().any(|a| a.eq_ignore_ascii_case("secure")),
        "over plain HTTP the cookie is not Secure (the browser would drop it): {http}"
    );
    assert!(
        attributes(&https).iter().any(|a| a == "Secure"),
        "behind TLS the cookie is Secure: {https}"
    );

    let browser = Browser::start("signin").await;
    // The server's own redirect keeps the query too (an open conversation, the runs' filters).
    browser.goto(&secured.url("/debug?status=failed")).await;
    wait_location(&browser, "/signin?next=%2Fdebug%3Fstatus%3Dfailed").await;
    browser.goto(&secured.url("/")).await;
    wait_location(&browser, "/signin?next=%2F").await;
    browser.screenshot("signin-page").await;

    // A wrong key: the message, and nothing else lost.
    submit_key(&browser, UNKNOWN_KEY).await;
    browser
        .wait_for("#signin-message[data-outcome=\"rejected\"]")
        .await;
    assert_eq!(
        text_of(&browser, "#signin-message").await,
        "That key was not accepted.",
        "the message for a key that was refused"
    );
    let typed = browser
        .script(
            "return document.querySelector('#signin-key').value;",
            Value::Null,
        )
        .await;
    assert_eq!(
        typed, UNKNOWN_KEY,
        "the refused key stays in the field to be corrected"
    );
    assert_eq!(
        location(&browser).await,
        "/signin?next=%2F",
        "a refused key keeps the page and its `next`"
    );
    browser.screenshot("signin-rejected").await;
    browser.assert_console_clean("a refused key").await;

    // The right key: back on the chat, as alice.
    submit_key(&browser, &alice.secret).await;
    wait_location(&browser, "/").await;
    assert_eq!(
        signed_in_as(&browser).await,
        ("alice".to_owned(), "user".to_owned()),
        "the header says who is signed in and with which role"
    );
    assert!(
        browser
            .try_find("#session-info button#sign-out")
            .await
            .is_some(),
        "the header has a Sign out button"
    );
    let cookies = browser.script("return document.cookie;", Value::Null).await;
    assert!(
        !cookies.as_str().unwrap_or_default().contains("sb_session"),
        "the page's script can read the session cookie (not HttpOnly): {cookies}"
    );

    // A chat works signed in, and the run is alice's.
    secured.fake.push(Reply::text("Hello, alice."));
    let run_id = send_chat(&browser, "Who am I talking to?").await;
    browser
        .wait_until(
            "the answer `Hello, alice.`",
            "const a = document.querySelector('.message.assistant .answer'); \
             return a && a.textContent.includes('Hello, alice.');",
        )
        .await;
    let run = secured.ended_run(&run_id).await;
    assert_eq!(run["status"], "succeeded", "the chat's run: {run:#}");
    assert_eq!(
        run["user"], "alice",
        "the run belongs to who signed in: {run:#}"
    );
    browser.screenshot("signin-chat").await;
    browser.assert_console_clean("a chat signed in").await;

    // Sign out: the sign-in page, and no session any more.
    browser
        .find("#session-info button#sign-out")
        .await
        .click()
        .await;
    wait_location(&browser, "/signin").await;
    assert_eq!(
        status_in_page(&browser, "/api/session").await,
        json!(401),
        "GET /api/session after signing out"
    );
    browser.goto(&secured.url("/debug")).await;
    wait_location(&browser, "/signin?next=%2Fdebug").await;
    browser.screenshot("signin-signed-out").await;
    browser.assert_console_clean("after signing out").await;
    drop(browser);
    secured.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_is_followed_only_to_a_path_on_this_server() {
    let secured = Secured::start().await;
    let alice = secured.create_key("alice", "user").await;
    let browser = Browser::start("signin-next").await;
    for (next, lands_on) in [
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("//evil.example/debug", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("debug", "/"),
        ("/debug?status=failed", "/debug?status=failed"),
    ] {
        sign_in(&browser, &secured, &alice.secret, next).await;
        let href = browser.script("return location.href;", Value::Null).await;
        assert_eq!(
            href,
            json!(secured.url(lands_on)),
            "after signing in with next={next:?} the browser is on {lands_on} of this server"
        );
    }
    browser
        .assert_console_clean("signing in with odd `next` values")
        .await;
    drop(browser);
    secured.server.stop().await;
}

/// The attacker's page, aimed at `target` (Switchboard's base URL): a `text/plain` form post
/// to `/api/chat`, and fetches with the browser's cookies (`credentials: "include"`): `no-cors`
/// ones (which need no CORS grant to be sent) and JSON ones (which need a preflight). It marks
/// `body[data-done]` once every request has been sent and the form's answer has loaded.
fn attack_page(target: &str) -> String {
    format!(
        r#"<!doctype html><html><body>
<iframe name="sink" id="sink"></iframe>
<form id="form" method="post" enctype="text/plain" target="sink" action="{target}/api/chat">
<input type="hidden" name='{{"message":"from a form","model":"fake","pad":"' value='"}}'>
</form>
<script>
(async () => {{
  const target = {target:?};
  const completion = JSON.stringify({{model: "fake", messages: [{{role: "user", content: "from a fetch"}}]}});
  const chat = JSON.stringify({{message: "from a fetch", model: "fake"}});
  const json = {{"content-type": "application/json"}};
  const shots = [
    [target + "/v1/chat/completions", {{method: "POST", mode: "no-cors", credentials: "include", body: completion}}],
    [target + "/api/chat", {{method: "POST", mode: "no-cors", credentials: "include", body: chat}}],
    [target + "/api/config/reload", {{method: "POST", mode: "no-cors", credentials: "include"}}],
    [target + "/api/chat", {{method: "POST", credentials: "include", headers: json, body: chat}}],
    [target + "/api/config/reload", {{method: "POST", credentials: "include", headers: json, body: "{{}}"}}],
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
async fn a_page_on_another_origin_cannot_use_the_session_the_browser_holds() {
    let secured = Secured::start().await;
    let root = secured.create_key("root", "admin").await;
    // A reload would apply this extra model; the attack must not.
    let config = secured.dir.path().join("switchboard.yaml");
    let yaml = std::fs::read_to_string(&config).expect("config");
    let extra = "models:\n  - name: added-later\n    type: openai\n    \
                 base_url: http://127.0.0.1:9/v1\n    model_name: x\n    healthcheck: false\n";
    std::fs::write(&config, yaml.replacen("models:\n", extra, 1)).expect("rewrite config");

    let browser = Browser::start("signin-foreign").await;
    sign_in(&browser, &secured, &root.secret, "/").await;
    assert_eq!(
        signed_in_as(&browser).await,
        ("root".to_owned(), "admin".to_owned()),
        "the browser holds an administrator's session before the attack"
    );
    browser
        .assert_console_clean("signed in as an administrator")
        .await;

    // Another port of 127.0.0.1: another origin but the same site, so SameSite=Strict does not
    // keep the cookie off these requests; the Origin and content-type rules must.
    let stop = tokio_util::sync::CancellationToken::new();
    let page = attack_page(&secured.base);
    let foreign = support::serve_local(
        axum::Router::new().route(
            "/",
            axum::routing::get(move || async move { axum::response::Html(page) }),
        ),
        &stop,
    )
    .await;
    assert_ne!(
        foreign, secured.base,
        "the attacker's page must be on another origin"
    );
    browser.goto(&foreign).await;
    browser
        .wait_until(
            "the attacker's page to send every request",
            "return document.body && document.body.dataset.done === '1';",
        )
        .await;
    browser.screenshot("signin-foreign-attack").await;

    secured.settle_audit().await;
    assert!(secured.fake.requests().is_empty(), "the model was called");
    let (_, runs) = secured.admin(Method::GET, "/api/runs", None).await;
    assert_eq!(runs["runs"], json!([]), "a run started: {runs:#}");
    for action in ["run_start", "config_reload", "tool_invoke"] {
        let entries = secured.audit(&format!("action={action}")).await;
        assert!(
            entries.is_empty(),
            "the audit log has {action}: {entries:#?}"
        );
    }
    let (_, models) = secured.admin(Method::GET, "/api/models", None).await;
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

    // The session was there all along, and still works.
    browser.goto(&secured.url("/")).await;
    wait_location(&browser, "/").await;
    assert_eq!(
        signed_in_as(&browser).await,
        ("root".to_owned(), "admin".to_owned()),
        "the administrator is still signed in after the attack"
    );
    stop.cancel();
    drop(browser);
    secured.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_is_not_an_administrator_sees_no_audit_and_no_server_status() {
    let secured = Secured::start().await;
    let alice = secured.create_key("alice", "user").await;
    let browser = Browser::start("signin-non-admin").await;
    sign_in(&browser, &secured, &alice.secret, "/debug").await;
    wait_location(&browser, "/debug").await;
    assert_eq!(
        signed_in_as(&browser).await,
        ("alice".to_owned(), "user".to_owned()),
        "signed in as alice"
    );
    browser.wait_for("table#runs-table").await;
    let tabs = browser
        .script(
            "const nav = document.querySelector('#debug-tabs'); \
             return [nav ? nav.hidden : 'no nav', document.querySelectorAll('a.debug-tab').length];",
            Value::Null,
        )
        .await;
    assert_eq!(
        tabs,
        json!([true, 0]),
        "a user who is not an administrator sees no tabs"
    );
    browser.screenshot("debug").await;

    browser.goto(&secured.url("/debug/audit")).await;
    assert_eq!(
        browser.wait_text(".audit-admin-only").await,
        "The audit log is for administrators only.",
        "the audit view's answer to a user who is not an administrator"
    );
    browser.screenshot("audit").await;

    browser.goto(&secured.url("/servers")).await;
    let message = browser.wait_text("#server-list #admin-only").await;
    assert!(
        message.contains("for administrators only"),
        "/servers says plainly it is for administrators: {message:?}"
    );
    let page = browser
        .script(
            "return { reload_hidden: document.querySelector('#reload-config').hidden, \
                      error_hidden: document.querySelector('#refresh-error').hidden, \
                      cards: document.querySelectorAll('.server-card').length };",
            Value::Null,
        )
        .await;
    assert_eq!(
        page,
        json!({ "reload_hidden": true, "error_hidden": true, "cards": 0 }),
        "/servers for a user who is not an administrator: no reload button, no error, no cards"
    );
    browser.screenshot("servers").await;
    browser
        .assert_console_clean("the pages of a user who is not an administrator")
        .await;
    drop(browser);
    secured.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_view_lists_filters_links_and_pages_the_log() {
    let secured = Secured::start().await;
    let root = secured.create_key("root", "admin").await;
    let alice = secured.create_key("alice", "user").await;
    // alice signs in (as the API sees it) and runs a chat with her key.
    sign_in_cookies(&secured, &alice.secret).await;
    secured.fake.push(Reply::text("Hi."));
    let completion = json!({ "model": "fake", "messages": [{ "role": "user", "content": "Hi" }] });
    let response = secured
        .http
        .post(secured.url("/v1/chat/completions"))
        .bearer_auth(&alice.secret)
        .json(&completion)
        .send()
        .await
        .expect("completion request");
    assert_eq!(response.status(), StatusCode::OK, "alice's completion");
    let run_id = response.headers()["x-switchboard-run-id"]
        .to_str()
        .expect("a run id header")
        .to_owned();
    let run = secured.ended_run(&run_id).await;
    let trace_id = run["trace_id"]
        .as_str()
        .expect("the run has a trace id")
        .to_owned();

    // root: a wrong key first, then the right one.
    let browser = Browser::start("signin-audit").await;
    browser.goto(&secured.url("/signin?next=%2Fdebug")).await;
    submit_key(&browser, UNKNOWN_KEY).await;
    browser
        .wait_for("#signin-message[data-outcome=\"rejected\"]")
        .await;
    submit_key(&browser, &root.secret).await;
    wait_location(&browser, "/debug").await;
    browser.wait_for("a.debug-tab[data-tab=\"audit\"]").await;
    assert_eq!(
        rows(&browser, "a.debug-tab", &["data-tab", "aria-current"]).await,
        [["runs", "page"], ["audit", "<missing>"]],
        "an administrator gets the Runs and Audit tabs, Runs current on /debug"
    );

    // Both sign-ins of alice and root, and root's refused one, are in the log before looking.
    secured
        .audit_when("action=sign_in", |entries| entries.len() == 4)
        .await;
    let everything = secured.audit("").await;
    browser
        .find("a.debug-tab[data-tab=\"audit\"]")
        .await
        .click()
        .await;
    wait_location(&browser, "/debug/audit").await;
    let ids = audit_ids(&browser, everything.len()).await;
    let expected: Vec<String> = everything.iter().map(|e| e["id"].to_string()).collect();
    assert_eq!(
        ids, expected,
        "the Audit view shows exactly the log, newest first"
    );
    browser.screenshot("audit").await;

    // By action: the sign-ins, with their users, outcomes and key ids.
    browser
        .find("select#audit-action option[value=\"sign_in\"]")
        .await
        .click()
        .await;
    wait_location(&browser, "/debug/audit?action=sign_in").await;
    let sign_ins = audit_cells(
        &browser,
        4,
        &[".audit-user", ".audit-outcome", ".audit-key"],
    )
    .await;
    assert_eq!(
        sign_ins,
        [
            ["root", "ok", root.id.as_str()],
            ["—", "denied", UNKNOWN_KEY_ID],
            ["alice", "ok", alice.id.as_str()],
            ["alice", "ok", alice.id.as_str()],
        ],
        "the sign-ins, newest first: root, root's refused key (no user), alice over https and http"
    );
    browser.screenshot("audit-sign-ins").await;

    // By user: alice's entries; her run's trace id links to its trace.
    browser
        .find("select#audit-action option[value=\"\"]")
        .await
        .click()
        .await;
    browser
        .find("input#audit-user")
        .await
        .send_keys("alice\u{E007}")
        .await;
    wait_location(&browser, "/debug/audit?user=alice").await;
    let mine = audit_cells(&browser, 3, &[".audit-action", ".audit-trace"]).await;
    assert_eq!(
        mine,
        [
            ["run_start", trace_id.as_str()],
            ["sign_in", "—"],
            ["sign_in", "—"]
        ],
        "alice's entries, newest first, with the run's trace id"
    );
    let link = rows(
        &browser,
        "tr.audit-row[data-action=\"run_start\"] .audit-trace a.audit-trace-link",
        &["href"],
    )
    .await;
    assert_eq!(
        link,
        [[secured.url(&format!("/debug/runs/{run_id}"))]],
        "the trace id of alice's run links to the run's trace"
    );

    // By outcome (and no user): only the refused sign-in.
    browser.find("input#audit-user").await.clear().await;
    browser
        .find("select#audit-outcome option[value=\"denied\"]")
        .await
        .click()
        .await;
    wait_location(&browser, "/debug/audit?outcome=denied").await;
    let denied = audit_cells(&browser, 1, &[".audit-action", ".audit-key"]).await;
    assert_eq!(denied, [["sign_in", UNKNOWN_KEY_ID]], "the refused entries");

    // Two at a time: "Older entries" until the end gives the whole log, in order.
    browser.goto(&secured.url("/debug/audit?limit=2")).await;
    audit_ids(&browser, 2).await;
    let mut shown = 2;
    while shown < everything.len() {
        browser.find("button#audit-older").await.click().await;
        shown = (shown + 2).min(everything.len());
        audit_ids(&browser, shown).await;
    }
    browser
        .wait_until(
            "the Older entries button to go at the end of the log",
            "return !document.querySelector('button#audit-older');",
        )
        .await;
    assert_eq!(
        audit_ids(&browser, everything.len()).await,
        expected,
        "paging by two through the log shows every entry once, newest first"
    );
    browser.screenshot("audit-paged").await;
    browser
        .assert_console_clean("the administrator's Audit view")
        .await;
    drop(browser);
    secured.server.stop().await;
}

/// The `data-id` of every audit row, once there are `count` rows.
async fn audit_ids(browser: &Browser, count: usize) -> Vec<String> {
    audit_wait(browser, count).await;
    rows(browser, "tr.audit-row", &["data-id"])
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The text of the cells `cells` of every audit row, once there are exactly `count` rows.
async fn audit_cells(browser: &Browser, count: usize, cells: &[&str]) -> Vec<Vec<String>> {
    audit_wait(browser, count).await;
    let value = browser
        .script(
            "return [...document.querySelectorAll('tr.audit-row')].map(r => \
               arguments[0].map(c => r.querySelector(c).textContent.trim()));",
            json!([cells]),
        )
        .await;
    serde_json::from_value(value).expect("rows of cell texts")
}

/// Wait until the audit table has exactly `count` rows and is not loading.
async fn audit_wait(browser: &Browser, count: usize) {
    browser
        .wait_until_with(
            &format!("{count} rows in table#audit-table"),
            PATIENCE,
            "const t = document.querySelector('table#audit-table'); \
             return t && !t.hasAttribute('aria-busy') \
               && t.querySelectorAll('tr.audit-row').length === arguments[0];",
            json!([count]),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_api_call_sends_the_page_to_sign_in_and_back() {
    let secured = Secured::start().await;
    let alice = secured.create_key("alice", "user").await;
    let root = secured.create_key("root", "admin").await;
    let browser = Browser::start("signin-revoked").await;
    sign_in(&browser, &secured, &alice.secret, "/debug").await;
    wait_location(&browser, "/debug").await;
    browser.wait_for("table#runs-table").await;

    // The runs list polls; once alice's key is revoked its next call gets 401.
    let (status, body) = secured
        .admin(Method::DELETE, &format!("/api/keys/{}", alice.id), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "revoking alice's key: {body:#}"
    );
    wait_location(&browser, "/signin?next=%2Fdebug").await;
    browser.screenshot("sent-to-signin").await;

    // Signing in again goes back to where the page was.
    submit_key(&browser, &root.secret).await;
    wait_location(&browser, "/debug").await;
    assert_eq!(
        signed_in_as(&browser).await,
        ("root".to_owned(), "admin".to_owned()),
        "signed in again"
    );
    browser
        .assert_console_clean("a session that ended while a page was open")
        .await;
    drop(browser);
    secured.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_the_header_says_local_and_sign_in_is_not_needed() {
    let ui = Ui::start("", 0).await;
    let browser = Browser::start("signin-none").await;
    browser.goto(&ui.url("/")).await;
    assert_eq!(
        browser.wait_text("#session-info .session-local").await,
        "local",
        "with `auth: none` the header says local"
    );
    assert!(
        browser
            .try_find("#session-info button#sign-out")
            .await
            .is_none(),
        "with `auth: none` there is no Sign out button"
    );
    browser.goto(&ui.url("/signin")).await;
    submit_key(&browser, UNKNOWN_KEY).await;
    browser
        .wait_for("#signin-message[data-outcome=\"disabled\"]")
        .await;
    let message = text_of(&browser, "#signin-message").await;
    assert!(
        message.contains("Sign-in is not needed"),
        "the sign-in page says sign-in is not needed: {message:?}"
    );
    assert_eq!(
        rows(&browser, "#signin-message a", &["href"]).await,
        [[ui.url("/")]],
        "and links to the chat"
    );
    browser.screenshot("signin-none").await;
    browser.assert_console_clean("`auth: none`").await;
    drop(browser);
    ui.server.stop().await;
}
