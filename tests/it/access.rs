//! The access layer (issue 11) through the real server with `server.auth: keys`: authentication
//! on every route of the router (enumerated from its source, so a new route is covered the day
//! it is added), cross-user ownership on every id-taking route, revocation ending an open event
//! stream, bootstrapping the first keys (`SWITCHBOARD_ADMIN_KEY`, `switchboard keys …`), the
//! refusal of `auth: none` on a non-loopback address, and the browser session over plain HTTP.
//!
//! Most tests share one server (started on first use, on a runtime of its own so it outlives
//! any one test) and stay independent of order by each making its own keys and users. Tests
//! that need a server of their own (the command line, the bind check) start it themselves.

mod bootstrap;
mod ownership;
mod revoke;
mod routes;
mod session;
mod table;

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::sse::{SseDecoder, SseEvent};
use switchboard_fake_llm::{FakeLlm, Fallback};

use crate::support;

/// Longest wait for any one state, answer or event in these tests.
const PATIENCE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// The shared server

/// The server most tests share: `auth: keys`, an administrator key, roles `nobody` (grants
/// nothing) besides the built-in `admin` and `user`, the bundled calc server, agent `calc`,
/// model `fake` (the fake LLM's offline demo, so concurrent tests need not script it) and
/// model `slow` (a fake LLM of its own, scripted with slow replies by the tests that need a
/// run that stays running).
struct Shared {
    base: String,
    admin_key: String,
    slow: FakeLlm,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// The shared server, started on first use and ready (calc's tools in the catalog).
///
/// It runs on a thread and runtime of its own: each `#[tokio::test]` has its own runtime, and
/// a server spawned on one would die with the test that happened to start it.
fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("access-shared-server".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime for the shared server");
                runtime.block_on(serve_shared(sender));
            })
            .expect("spawn the shared server's thread");
        receiver
            .recv()
            .expect("the shared server failed to start (its panic is printed above)")
    })
}

/// Start the shared server, hand its description to `ready`, and keep serving forever.
async fn serve_shared(ready: std::sync::mpsc::Sender<Shared>) {
    let fake = FakeLlm::start().await;
    fake.set_fallback(Fallback::Demo);
    let slow = FakeLlm::start().await;
    // The server outlives every test, so its directory cannot be removed when they end; it
    // lives under target/, and the ones earlier runs left are removed here.
    remove_stale_shared_dirs();
    let dir = tempfile::Builder::new()
        .prefix(SHARED_DIR_PREFIX)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a data dir for the shared server")
        .keep();
    let config = write_config(
        &dir,
        &format!(
            "roles:\n  nobody: {{}}\nmodels:\n{}{}mcpServers:\n{}",
            model_entry("fake", &fake, true),
            model_entry("slow", &slow, false),
            support::bundled_stdio("calc", "calc", &[]),
        ),
    );
    let admin_key = format!(
        "test-admin-{}",
        switchboard::access::issue_key().expect("random").hash
    );
    let server = support::InProcessServer::start_with(
        &config,
        support::ServeExtras {
            admin_key: Some(admin_key.clone()),
            ..support::ServeExtras::default()
        },
    )
    .await;
    let client = Client::new(&server.base);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let tools = client
            .call(Method::GET, "/api/tools", Auth::Bearer(&admin_key), None)
            .await;
        if tools.status == StatusCode::OK && !names(&tools.body["tools"], "name").is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "calc never got ready: {tools:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let shared = Shared {
        base: server.base.clone(),
        admin_key,
        slow,
    };
    if ready.send(shared).is_ok() {
        std::future::pending::<()>().await;
    }
    drop((server, fake));
}

/// What the shared server's data directories under `CARGO_TARGET_TMPDIR` are called.
const SHARED_DIR_PREFIX: &str = "access-shared-";

/// Remove the shared servers' directories of earlier runs: those untouched for an hour (a run
/// takes seconds, so none of them belongs to a test process still running).
fn remove_stale_shared_dirs() {
    let Ok(entries) = std::fs::read_dir(env!("CARGO_TARGET_TMPDIR")) else {
        return;
    };
    for entry in entries.flatten() {
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(SHARED_DIR_PREFIX));
        let stale = entry.metadata().and_then(|m| m.modified()).is_ok_and(|at| {
            at.elapsed()
                .is_ok_and(|age| age > Duration::from_secs(3600))
        });
        if ours && stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `dir/switchboard.yaml` with `auth: keys`, data under `dir/data`, agent `calc` in
/// `dir/agents`, and `rest` (top-level sections) appended.
fn write_config(dir: &std::path::Path, rest: &str) -> std::path::PathBuf {
    let agents = dir.join("agents");
    std::fs::create_dir_all(&agents).expect("agents dir");
    std::fs::write(
        agents.join("calc.yaml"),
        "name: calc\ndescription: Arithmetic.\nsystem_prompt: You compute.\ntools: [\"calc__*\"]\n",
    )
    .expect("agent file");
    let yaml = format!(
        "server:\n  bind: 127.0.0.1:0\n  auth: keys\n  data_dir: '{}'\nagents_dir: '{}'\n{rest}",
        dir.join("data").display(),
        agents.display(),
    );
    let path = dir.join("switchboard.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

/// One `models:` entry named `name` answered by `fake`.
fn model_entry(name: &str, fake: &FakeLlm, default: bool) -> String {
    format!(
        "  - name: {name}\n    type: openai\n    base_url: {}\n    model_name: {name}-model\n\
         \x20   default: {default}\n    healthcheck: false\n    retry: {{max_attempts: 1}}\n",
        fake.openai_base_url()
    )
}

// ---------------------------------------------------------------------------------------------
// Talking to a server

/// How a request proves who it is.
#[derive(Debug, Clone, Copy)]
enum Auth<'a> {
    Anonymous,
    /// `Authorization: Bearer <key>`.
    Bearer(&'a str),
    /// `Authorization: <this, verbatim>`.
    Raw(&'a str),
    /// The session cookie with this value.
    Cookie(&'a str),
}

/// A reply: status, headers, and the body as JSON (a JSON string when it is not JSON).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A client of one server. Each test makes its own: a pooled connection belongs to the
/// runtime that opened it. Redirects are not followed (the 303s are what is tested).
struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn new(base: &str) -> Client {
        Client {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
        }
    }

    /// A client of the shared server.
    fn shared() -> Client {
        Client::new(&shared().base)
    }

    /// Send a request with a JSON body (when given) and extra headers; the raw response.
    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        request = match auth {
            Auth::Anonymous => request,
            Auth::Bearer(key) => request.bearer_auth(key),
            Auth::Raw(value) => request.header("authorization", value),
            Auth::Cookie(token) => request.header("cookie", format!("sb_session={token}")),
        };
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request to switchboard")
    }

    /// [`Client::send`] without extra headers, read whole.
    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> Answer {
        self.call_with(method, path, auth, body, &[]).await
    }

    /// [`Client::send`], read whole.
    async fn call_with(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let response = self.send(method, path, auth, body, headers).await;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("response body");
        Answer {
            status,
            headers,
            body: support::json_or_text(&bytes),
        }
    }

    /// `GET path` as the shared server's administrator, expecting 200.
    async fn admin_get(&self, path: &str) -> Value {
        let answer = self
            .call(Method::GET, path, Auth::Bearer(&shared().admin_key), None)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "GET {path} as admin: {answer:?}"
        );
        answer.body
    }
}

/// The values of `field` in the objects of the JSON array `list`.
fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item[field].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Keys and audit

/// A key the administrator made over `POST /api/keys`.
#[derive(Debug, Clone)]
struct Key {
    id: String,
    token: String,
    expires_at: Option<i64>,
}

/// Make a key on the shared server, as its administrator.
async fn create_key(client: &Client, user: &str, role: &str, expires_in: Option<&str>) -> Key {
    let mut body = json!({ "user": user, "role": role });
    if let Some(expires_in) = expires_in {
        body["expires_in"] = json!(expires_in);
    }
    let answer = client
        .call(
            Method::POST,
            "/api/keys",
            Auth::Bearer(&shared().admin_key),
            Some(body),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "POST /api/keys for {user}: {answer:?}"
    );
    let key = Key {
        id: answer.body["id"].as_str().expect("key id").to_owned(),
        token: answer.body["secret"]
            .as_str()
            .expect("key secret")
            .to_owned(),
        expires_at: answer.body["expires_at"].as_i64(),
    };
    assert_eq!(
        switchboard::access::key_id_of(&key.token),
        Some(key.id.as_str()),
        "the secret is an `sb_<id>_<secret>` key with the listed id"
    );
    key
}

/// Revoke a key on the shared server, as its administrator.
async fn revoke_key(client: &Client, id: &str) {
    let answer = client
        .call(
            Method::DELETE,
            &format!("/api/keys/{id}"),
            Auth::Bearer(&shared().admin_key),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::NO_CONTENT,
        "revoking {id}: {answer:?}"
    );
}

/// Every audit entry matching `query` (`action=…&…`), newest first, across all pages.
async fn audit_entries(client: &Client, query: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page_query = vec!["limit=200".to_owned()];
        page_query.extend((!query.is_empty()).then(|| query.to_owned()));
        page_query.extend(cursor.as_ref().map(|c| format!("cursor={c}")));
        let page = client
            .admin_get(&format!("/api/audit?{}", page_query.join("&")))
            .await;
        entries.extend(page["entries"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return entries,
        }
    }
}

/// Poll the audit log (entries are written behind the request) until an entry matching
/// `query` satisfies `wanted`; returns it.
async fn audit_entry(
    client: &Client,
    query: &str,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let entries = audit_entries(client, query).await;
        if let Some(entry) = entries.iter().find(|e| wanted(e)) {
            return entry.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no audit entry {what} (query {query}) within {PATIENCE:?}; entries: {entries:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Runs

/// An event stream, decoded as it arrives with the bounded decoder the server's clients use.
struct Events {
    response: reqwest::Response,
    decoder: SseDecoder,
    pending: VecDeque<SseEvent>,
}

/// How the wait for the next event ended.
#[derive(Debug)]
enum Next {
    Event(SseEvent),
    /// The server ended the stream.
    Ended,
    /// Neither came within the time allowed.
    Quiet,
}

impl Events {
    /// Read `response` as an event stream; panics when it is not one.
    fn new(response: reqwest::Response) -> Events {
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "expected an event stream ({} {content_type})",
            response.status()
        );
        Events {
            response,
            decoder: SseDecoder::new(1 << 20, 8 << 20),
            pending: VecDeque::new(),
        }
    }

    /// The next event or the end of the stream, whichever comes first within `limit`.
    async fn next(&mut self, limit: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Next::Event(event);
            }
            let Ok(chunk) = tokio::time::timeout_at(deadline, self.response.chunk()).await else {
                return Next::Quiet;
            };
            match chunk {
                Ok(Some(chunk)) => self.pending.extend(
                    self.decoder
                        .push(&chunk)
                        .expect("a well-formed event stream"),
                ),
                // A stream cut short ends as a transport error; both are an end here.
                Ok(None) | Err(_) => return Next::Ended,
            }
        }
    }

    /// Events up to and including the first named `name`.
    async fn until(&mut self, name: &str) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        loop {
            match self.next(PATIENCE).await {
                Next::Event(event) => {
                    let found = event.event.as_deref() == Some(name);
                    seen.push(event);
                    if found {
                        return seen;
                    }
                }
                Next::Ended => panic!("the stream ended before `{name}`: {seen:#?}"),
                Next::Quiet => panic!("no `{name}` within {PATIENCE:?}: {seen:#?}"),
            }
        }
    }
}

/// A run started with `POST /api/chat`, its stream open after `run_started`.
struct Started {
    run_id: String,
    conversation_id: String,
    events: Events,
}

/// Start a chat as `auth` and read up to its `run_started` event.
async fn start_chat(client: &Client, auth: Auth<'_>, body: Value) -> Started {
    let response = client
        .send(Method::POST, "/api/chat", auth, Some(body), &[])
        .await;
    assert_eq!(response.status(), StatusCode::OK, "POST /api/chat");
    let mut events = Events::new(response);
    let started = events.until("run_started").await;
    let data: Value = serde_json::from_str(&started.last().expect("run_started").data)
        .expect("run_started is JSON");
    Started {
        run_id: data["run_id"].as_str().expect("run id").to_owned(),
        conversation_id: data["conversation_id"]
            .as_str()
            .expect("conversation id")
            .to_owned(),
        events,
    }
}

/// Chat as `auth` on model `fake` until the run finishes; its run and conversation ids.
async fn chat_to_the_end(client: &Client, auth: Auth<'_>, message: &str) -> (String, String) {
    let mut started =
        start_chat(client, auth, json!({ "message": message, "model": "fake" })).await;
    let finished = started.events.until("run_finished").await;
    let data: Value = serde_json::from_str(&finished.last().expect("run_finished").data)
        .expect("run_finished is JSON");
    assert_eq!(data["status"], "succeeded", "the chat run failed: {data:#}");
    (started.run_id, started.conversation_id)
}

/// Queue a reply on model `slow` that keeps its run waiting on the model for a minute (the
/// tests cancel it long before).
fn script_slow_reply() {
    shared()
        .slow
        .push(switchboard_fake_llm::Reply::SlowFirstToken {
            delay: Duration::from_secs(60),
            then: Box::new(switchboard_fake_llm::Reply::text("Too late.")),
        });
}

/// Poll `GET /api/runs/{id}` as `auth` until the run's status is `status`.
async fn run_with_status(client: &Client, auth: Auth<'_>, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let run = client
            .call(Method::GET, &format!("/api/runs/{id}"), auth, None)
            .await;
        if run.status == StatusCode::OK && run.body["status"] == status {
            return run.body;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} never became {status}: {run:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// Sign in with `key` (`POST /api/session`); the answer and the session token of its cookie.
async fn sign_in(client: &Client, key: &str, headers: &[(&str, &str)]) -> (Answer, String) {
    let answer = client
        .call_with(
            Method::POST,
            "/api/session",
            Auth::Anonymous,
            Some(json!({ "key": key })),
            headers,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "signing in: {answer:?}");
    let cookie = answer
        .header("set-cookie")
        .expect("signing in sets the session cookie")
        .to_owned();
    let token = cookie
        .strip_prefix("sb_session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("not the session cookie: {cookie}"))
        .to_owned();
    (answer, token)
}
