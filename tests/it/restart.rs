//! `kill -9` of the real `switchboard serve` binary in the middle of a run, then a restart on the
//! same data dir: the run is found `interrupted`, its finished steps are intact, the tool call that
//! was in flight is marked `interrupted` and is not run again, and neither is the model. A run
//! waiting for an approval instead survives a `kill -9` and a clean stop, on SQLite and Postgres:
//! the next server resumes it on the same approval, and once approved it goes on without running
//! anything twice.
//!
//! Unlike `chat.rs` this runs the built binary as a child process (a SIGKILL must not take the
//! test with it). Every process it starts is killed when the test ends, also when it fails.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_fake_llm::{FakeLlm, Reply};

use crate::support::events::{Events, Received};
use crate::support::{self};

/// Longest wait for any one event or state.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long the tool in flight would sleep: far longer than the test takes to kill it.
const SLEEP_MS: u64 = 30_000;
/// How long the testkit may outlive a SIGKILLed switchboard: rmcp's 5 s drain of in-flight
/// handlers after stdin EOF, plus slack for a loaded machine.
const ORPHAN_LIMIT: Duration = Duration::from_secs(15);
/// What the store says about runs it found `running` at start-up (`store/events.rs`).
const INTERRUPTED_ERROR: &str = "the server stopped while this run was running";

// ---------------------------------------------------------------------------------------------
// Harness

/// `switchboard serve` as a child process in its own process group, with its output in a log
/// file. Dropping it SIGKILLs the group and every stdio MCP server it was seen to run (those
/// have process groups of their own) and reaps the child.
struct Serve {
    child: Child,
    base: String,
    log: PathBuf,
    /// Pids of the MCP server children seen through `/api/mcp/servers`.
    mcp_pids: Vec<u32>,
    http: reqwest::Client,
}

impl Serve {
    /// Start `switchboard serve` on a free port and wait until `/healthz` answers. A port taken
    /// between our probe and the child's bind is retried with another.
    async fn start(config: &Path, data_dir: &Path, log: &Path) -> Serve {
        Serve::start_binary(Path::new(support::switchboard_bin()), config, data_dir, log).await
    }

    /// [`Serve::start`] running the switchboard binary at `bin`.
    async fn start_binary(bin: &Path, config: &Path, data_dir: &Path, log: &Path) -> Serve {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = support::free_port();
            let mut serve = Serve::spawn(bin, config, data_dir, port, log);
            match serve.wait_healthy().await {
                Ok(()) => return serve,
                Err(why) => failures.push(format!("port {port}: {why}\n{}", serve.log_text())),
            }
        }
        panic!(
            "switchboard serve never became healthy:\n{}",
            failures.join("\n")
        );
    }

    fn spawn(bin: &Path, config: &Path, data_dir: &Path, port: u16, log: &Path) -> Serve {
        let out = File::create(log).expect("create the server log");
        let err = out.try_clone().expect("clone the log handle");
        let mut command = Command::new(bin);
        command
            .arg("--config")
            .arg(config)
            .arg("serve")
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .env("OTEL_SDK_DISABLED", "true")
            // `wait_healthy` reads the `switchboard listening` line: plain, and not filtered out.
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info,rmcp=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for var in [
            "SWITCHBOARD_CONFIG",
            "SWITCHBOARD_BIND",
            // `${SWITCHBOARD_BIN}` in a config is then the running binary's own path.
            "SWITCHBOARD_BIN",
            "SWITCHBOARD_DATABASE_URL",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            command.env_remove(var);
        }
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("start switchboard serve");
        Serve {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log: log.to_owned(),
            mcp_pids: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits i32"))
    }

    /// The log, without colours.
    fn log_text(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut text = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // An escape sequence: ESC [ parameters final-byte.
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                text.push(c);
            }
        }
        text
    }

    /// What `app::serve_on` logs once it has bound our address.
    fn listening_line(&self) -> String {
        let addr = self.base.trim_start_matches("http://");
        format!("switchboard listening address={addr} ")
    }

    /// Poll `/healthz`; an error when the child exits first or it never answers.
    async fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(format!("exited early ({status})"));
            }
            // Another test's server may have taken the port between our probe and the child's
            // bind (the child then fails and exits): only our own log proves whose port it is.
            if self.log_text().contains(&self.listening_line()) {
                let answer = self
                    .http
                    .get(format!("{}/healthz", self.base))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await;
                if answer.is_ok_and(|r| r.status() == StatusCode::OK) {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("no answer on /healthz within {PATIENCE:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)), "GET", path)
            .await
    }

    /// `POST path` with `body` as JSON when given.
    async fn post(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request, "POST", path).await
    }

    /// The status and the body (JSON, or the text as a JSON string) of `request`.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        method: &str,
        path: &str,
    ) -> (StatusCode, Value) {
        let response = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("{method} {path}: {err}\n{}", self.log_text()));
        let status = response.status();
        let bytes = response.bytes().await.expect("response body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    async fn run(&self, id: &str) -> Value {
        let (status, run) = self.get(&format!("/api/runs/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{run:#}");
        run
    }

    /// Poll `GET /api/runs/{id}` until `done` holds for the stored run (a run not stored yet
    /// is waited for too: its first rows may still be on their way to the database).
    async fn run_when(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, run) = self.get(&format!("/api/runs/{id}")).await;
            if status == StatusCode::OK && done(&run) {
                return run;
            }
            assert!(
                status == StatusCode::OK || status == StatusCode::NOT_FOUND,
                "{status}: {run:#}"
            );
            assert!(
                Instant::now() < deadline,
                "the stored run never got to: {what}\n{run:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until the one MCP server (`testkit`) is ready; remember and return its pid.
    async fn wait_testkit_ready(&mut self) -> u32 {
        self.wait_ready("testkit").await
    }

    /// Wait until MCP server `name` is ready; remember and return its pid.
    async fn wait_ready(&mut self, name: &str) -> u32 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (_, body) = self.get("/api/mcp/servers").await;
            let testkit = body["servers"]
                .as_array()
                .and_then(|servers| servers.iter().find(|s| s["name"] == name));
            if let Some(testkit) = testkit.filter(|s| s["status"] == "ready") {
                let pid = testkit["pid"].as_u64().expect("a stdio server has a pid");
                let pid = u32::try_from(pid).expect("pid fits u32");
                self.mcp_pids.push(pid);
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never got ready: {body:#}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `POST /api/chat`: the run id and its event stream.
    async fn chat(&self, message: &str) -> (String, Events) {
        let response = self
            .http
            .post(format!("{}/api/chat", self.base))
            // The stream may outlive the client's default timeout.
            .timeout(Duration::from_secs(600))
            .json(&json!({ "message": message, "model": "fake" }))
            .send()
            .await
            .expect("POST /api/chat");
        assert_eq!(response.status(), StatusCode::OK);
        let run_id = response.headers()["x-switchboard-run-id"]
            .to_str()
            .expect("ascii run id")
            .to_owned();
        (run_id, Events::new(response))
    }

    /// Wait (polling) for the child to exit.
    async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "switchboard did not exit within {limit:?}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Not once reaped: the pid (and group id) may belong to someone else by now.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = killpg(self.pid(), Signal::SIGKILL);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for &pid in &self.mcp_pids {
            // Only a live process that still is one of ours (pids are reused).
            if process_alive(pid) && cmdline(pid).contains("mcp-server") {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "--- log of switchboard serve ({}) ---\n{}",
                self.base,
                self.log_text()
            );
        }
    }
}

/// True while `pid` exists and has not exited. An exited child of a killed parent is
/// reparented to pid 1, which in a container may never reap it: a zombie counts as gone.
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself contain `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default()
}

/// Poll until `pid` is gone; false if it is still there after `limit`.
async fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while process_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

fn is(event: &Received, name: &str) -> bool {
    event.name.as_deref() == Some(name)
}

/// The config: model `fake` (the fake LLM) and the bundled testkit over stdio, with a short run
/// lease (the killed server's run is orphaned 1 s after its last renewal). The data dir (and so
/// the SQLite file) comes from `--data-dir`.
fn write_config(dir: &Path, fake: &FakeLlm) -> PathBuf {
    let yaml = format!(
        "server:\n  run_lease_ms: 1000\n\
         models:\n  - name: fake\n    type: openai\n    base_url: {base}\n    model_name: fake-model\n\
         \x20   default: true\n    healthcheck: false\n    retry: {{max_attempts: 1}}\n\
         mcpServers:\n{testkit}",
        base = fake.openai_base_url(),
        testkit = support::bundled_stdio("testkit", "testkit", &[]),
    );
    let path = dir.join("switchboard.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

fn steps(run: &Value) -> &[Value] {
    run["steps"].as_array().map_or(&[], Vec::as_slice)
}

fn step_named<'a>(run: &'a Value, name: &str) -> Option<&'a Value> {
    steps(run).iter().find(|s| s["name"] == name)
}

// ---------------------------------------------------------------------------------------------
// The test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_then_restart_interrupts_the_run_and_reruns_nothing() {
    let began = Instant::now();
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let config = write_config(dir.path(), &fake);

    let mut first = Serve::start(&config, &data_dir, &dir.path().join("serve-1.log")).await;
    let testkit_pid = first.wait_testkit_ready().await;

    fake.push(Reply::tool_call(
        "call_echo",
        "testkit__echo",
        json!({ "message": "first" }),
    ));
    fake.push(Reply::tool_call(
        "call_sleep",
        "testkit__sleep",
        json!({ "ms": SLEEP_MS }),
    ));
    let leftover = "The nap is over.";
    fake.push(Reply::text(leftover));

    // Until the sleep is in flight: its act started and the testkit reports progress on it.
    let (run_id, mut stream) = first.chat("Echo, then take a long nap").await;
    let events = stream
        .until_matching("the sleep's first progress", |e| {
            is(e, "tool_progress") && e.data["step"] == 4
        })
        .await;
    let act = |kind: &str, name: &str| {
        events
            .iter()
            .find(|e| is(e, kind) && e.data["kind"] == "act" && e.data["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} of {name}: {events:#?}"))
    };
    assert_eq!(act("step_started", "testkit__echo").data["step"], 1);
    let echoed = act("step_finished", "testkit__echo");
    assert_eq!(echoed.data["status"], "succeeded", "{events:#?}");
    assert_eq!(echoed.data["output_preview"], "first", "{events:#?}");
    assert_eq!(act("step_started", "testkit__sleep").data["step"], 4);
    assert!(
        !events
            .iter()
            .any(|e| is(e, "step_finished") && e.data["step"] == 4),
        "the sleep finished already: {events:#?}"
    );

    // The rows the writer may still have queued are committed before the kill, so what is
    // checked below is what the store does at start-up, not what a crash happened to lose.
    let before = first
        .run_when(&run_id, "the sleep stored as running", |run| {
            step_named(run, "testkit__sleep").is_some_and(|s| s["status"] == "running")
        })
        .await;
    assert_eq!(before["status"], "running", "{before:#}");
    let requests_before = fake.requests().len();
    assert_eq!(requests_before, 2, "{:#?}", fake.requests());
    assert_eq!(fake.remaining(), 1);

    // kill -9 the server itself (not its group: the testkit has a group of its own anyway).
    kill(first.pid(), Signal::SIGKILL).expect("SIGKILL switchboard");
    let status = first.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status}"
    );
    let killed = Instant::now();
    drop(stream);

    // Restart on the same data dir (and so the same SQLite file).
    let mut second = Serve::start(&config, &data_dir, &dir.path().join("serve-2.log")).await;
    let new_testkit_pid = second.wait_testkit_ready().await;
    assert_ne!(new_testkit_pid, testkit_pid);

    // Orphaned once its lease (1 s) has not been renewed: at start-up, or at the next sweep.
    let run = second
        .run_when(&run_id, "interrupted", |run| run["status"] == "interrupted")
        .await;
    assert_eq!(run["error"], INTERRUPTED_ERROR, "{run:#}");
    assert!(run["finished_at"].as_i64().is_some(), "{run:#}");
    assert_eq!(run["answer"], Value::Null, "{run:#}");
    assert_eq!(run["user_message"], "Echo, then take a long nap");
    assert_eq!(run["tool_call_count"], 2, "{run:#}");
    let kinds: Vec<&str> = steps(&run)
        .iter()
        .map(|s| s["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(kinds, ["plan", "act", "observe", "plan", "act"], "{run:#}");
    let edges: Vec<(u64, u64)> = run["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| (e["from"].as_u64().unwrap(), e["to"].as_u64().unwrap()))
        .collect();
    assert_eq!(edges, [(0, 1), (1, 2), (2, 3), (3, 4)], "{run:#}");

    // The finished steps, as they were before the kill.
    for (i, step) in steps(&run).iter().enumerate().take(4) {
        assert_eq!(step["index"], i, "{run:#}");
        assert_eq!(step["status"], "succeeded", "{step:#}");
        assert!(step["finished_at"].as_i64().is_some(), "{step:#}");
        assert!(!step["output"].is_null(), "{step:#}");
        assert_eq!(step, &before["steps"][i], "changed by the restart");
    }
    let plans = [&run["steps"][0], &run["steps"][3]];
    for (plan, tool) in plans.iter().zip(["testkit__echo", "testkit__sleep"]) {
        assert_eq!(plan["name"], "fake", "{plan:#}");
        assert!(
            plan["output"]["tool_calls"].to_string().contains(tool),
            "{plan:#}"
        );
    }
    let echo = &run["steps"][1];
    assert_eq!(echo["name"], "testkit__echo");
    assert_eq!(echo["server"], "testkit");
    assert_eq!(echo["input"], json!({ "message": "first" }));
    assert_eq!(echo["output"]["content"][0]["text"], "first", "{echo:#}");

    // The tool in flight: interrupted, with no output, started once.
    let sleep = &run["steps"][4];
    assert_eq!(sleep["name"], "testkit__sleep", "{sleep:#}");
    assert_eq!(sleep["input"], json!({ "ms": SLEEP_MS }));
    assert_eq!(sleep["status"], "interrupted", "{sleep:#}");
    assert_eq!(sleep["output"], Value::Null, "{sleep:#}");
    assert_eq!(sleep["attempt"], before["steps"][4]["attempt"], "{sleep:#}");
    assert_eq!(sleep["started_at"], before["steps"][4]["started_at"]);
    assert!(sleep["finished_at"].as_i64().is_some(), "{sleep:#}");

    // The API agrees it is over: listed as interrupted, its events are its stored end, and it
    // cannot be cancelled.
    let (_, page) = second.get("/api/runs?status=interrupted").await;
    assert!(
        page["runs"]
            .as_array()
            .is_some_and(|runs| runs.iter().any(|r| r["id"] == run_id.as_str())),
        "{page:#}"
    );
    let response = second
        .http
        .get(format!("{}/api/runs/{run_id}/events", second.base))
        .send()
        .await
        .expect("GET events");
    let mut replay = Events::new(response);
    let end = replay.next().await.expect("the stored end");
    assert!(is(&end, "run_finished"), "{end:#?}");
    assert_eq!(end.data["status"], "interrupted", "{end:#?}");
    assert!(replay.next().await.is_none(), "more than the stored end");
    let (status, _) = second
        .post(&format!("/api/runs/{run_id}/cancel"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Nothing was re-run: the model got no request since the kill, and the reply a resumed run
    // would take is still queued. A fresh run takes it, proving the server is up and the queue
    // untouched; by then a resumption at start-up would have shown.
    assert_eq!(
        fake.requests().len(),
        requests_before,
        "the model was called again"
    );
    assert_eq!(fake.remaining(), 1);
    let (fresh_id, mut fresh) = second.chat("Are you back?").await;
    let events = fresh
        .until_matching("run_finished", |e| is(e, "run_finished"))
        .await;
    let finished = events.last().expect("run_finished");
    assert_eq!(finished.data["status"], "succeeded", "{events:#?}");
    assert_eq!(finished.data["answer"], leftover, "{events:#?}");
    let requests = fake.requests();
    assert_eq!(requests.len(), requests_before + 1, "{requests:#?}");
    let asked = requests.last().expect("a request").body["messages"].to_string();
    assert!(asked.contains("Are you back?"), "{asked}");
    assert!(!asked.contains("take a long nap"), "{asked}");
    assert_ne!(fresh_id, run_id);
    assert_eq!(
        second.run(&run_id).await,
        run,
        "the interrupted run changed after the restart"
    );

    // The orphaned testkit saw EOF on stdin and must have gone, its 30 s sleep notwithstanding.
    // (rmcp gives in-flight handlers 5 s to answer after EOF before it returns; `first` is
    // still held so that its drop cannot kill the testkit for us.)
    let limit = ORPHAN_LIMIT.saturating_sub(killed.elapsed());
    assert!(
        gone_within(testkit_pid, limit).await,
        "the testkit (pid {testkit_pid}, `{}`) outlived the SIGKILLed switchboard by {:?}",
        cmdline(testkit_pid),
        killed.elapsed()
    );
    eprintln!(
        "the orphaned testkit was gone {:?} after the kill",
        killed.elapsed()
    );
    drop(first);

    // A clean stop of the restarted server takes its testkit along.
    kill(second.pid(), Signal::SIGTERM).expect("SIGTERM switchboard");
    let status = second.wait_exit(PATIENCE).await;
    assert!(status.success(), "{status}\n{}", second.log_text());
    assert!(
        gone_within(new_testkit_pid, Duration::from_secs(10)).await,
        "the testkit (pid {new_testkit_pid}) outlived a clean shutdown"
    );
    eprintln!("restart test took {:?}", began.elapsed());
}

/// Replacing the binary while it runs (a rebuild, an upgrade in place) makes Linux name the
/// running image `PATH (deleted)`. `${SWITCHBOARD_BIN}` must stay the path, so a reload sees the
/// bundled servers unchanged, keeps them running, and calls go on working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_after_the_binary_is_replaced_keeps_the_bundled_servers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("switchboard");
    std::fs::copy(support::switchboard_bin(), &bin).expect("copy the binary");
    let config = dir.path().join("switchboard.yaml");
    std::fs::write(
        &config,
        "mcpServers:\n  testkit:\n    command: ${SWITCHBOARD_BIN}\n    args: [mcp-server, testkit]\n",
    )
    .expect("write config");
    let data_dir = dir.path().join("data");
    let mut serve =
        Serve::start_binary(&bin, &config, &data_dir, &dir.path().join("serve.log")).await;
    let pid = serve.wait_testkit_ready().await;

    // A new build lands at the same path: a new file, so the running image is now "deleted".
    std::fs::remove_file(&bin).expect("remove the binary");
    std::fs::copy(support::switchboard_bin(), &bin).expect("copy the binary again");
    let image = std::fs::read_link(format!("/proc/{}/exe", serve.child.id())).expect("exe link");
    assert!(
        image.to_string_lossy().ends_with(" (deleted)"),
        "the running image should be reported deleted: {}",
        image.display()
    );

    let (status, report) = serve.post("/api/config/reload", None).await;
    assert_eq!(status, StatusCode::OK, "{report:#}");
    assert_eq!(
        report["servers"]["unchanged"],
        json!(["testkit"]),
        "{report:#}"
    );
    assert_eq!(report["servers"]["restarted"], json!([]), "{report:#}");
    assert_eq!(
        serve.wait_testkit_ready().await,
        pid,
        "testkit was restarted"
    );

    let (status, body) = serve
        .post(
            "/api/tools/testkit__echo/invoke",
            Some(json!({"message": "still here"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(
        body["result"]["content"][0]["text"], "still here",
        "{body:#}"
    );

    kill(serve.pid(), Signal::SIGTERM).expect("SIGTERM");
    assert!(
        serve.wait_exit(PATIENCE).await.success(),
        "{}",
        serve.log_text()
    );
}

// ---------------------------------------------------------------------------------------------
// A run waiting for a person survives the server

crate::on_both_backends!(a_waiting_run_survives_kill_9_and_a_restart_and_resumes_once_approved);

/// The config of the waiting-run test: model `fake`, the bundled notes server (its own file in
/// `dir`) with deletes gated by an `approval:` rule, a short run lease, the store at `database`.
fn write_waiting_config(dir: &Path, fake: &FakeLlm, database: &str) -> PathBuf {
    let notes_db = dir.join("notes.sqlite");
    let yaml = format!(
        "server:\n  run_lease_ms: 1000\n  database_url: \"{database}\"\n\
         models:\n  - name: fake\n    type: openai\n    base_url: {base}\n    model_name: fake-model\n\
         \x20   default: true\n    healthcheck: false\n    retry: {{max_attempts: 1}}\n\
         mcpServers:\n{notes}\
         approval:\n  rules:\n    - tools: [notes__delete_note]\n      action: ask\n",
        base = fake.openai_base_url(),
        notes = support::bundled_stdio("notes", "notes", &["--db", &notes_db.to_string_lossy()]),
    );
    let path = dir.join("switchboard.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

impl Serve {
    /// Wait until run `run_id` (resumed here) has its approval pending; its id.
    async fn pending_approval(&self, run_id: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (_, body) = self.get("/api/approvals").await;
            let pending = body["approvals"].as_array().and_then(|all| {
                all.iter()
                    .find(|a| a["run_id"] == run_id)
                    .and_then(|a| a["id"].as_str().map(str::to_owned))
            });
            if let Some(id) = pending {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} never waited here: {body:#}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The notes the notes server holds now, by title.
    async fn note_titles(&self) -> Vec<String> {
        let (status, body) = self
            .post("/api/tools/notes__list_notes/invoke", Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        let text = body.to_string();
        ["alpha", "beta"]
            .into_iter()
            .filter(|title| text.contains(&format!("{title}-note")))
            .map(str::to_owned)
            .collect()
    }
}

/// A turn of two calls: a free `add_note` and a gated `delete_note`. The free one runs while the
/// gated one waits; then the server is `kill -9`ed. The restarted server resumes the run (still
/// `waiting`, the same approval pending); a clean stop (SIGTERM) of that one leaves it waiting
/// too, and a third server takes it at once. Approved there, the delete runs, the model answers,
/// and nothing ran twice: the model was asked twice in all, the note added before the kill was
/// added once.
async fn a_waiting_run_survives_kill_9_and_a_restart_and_resumes_once_approved(
    db: &crate::support::testdb::TestDb,
) {
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let config = write_waiting_config(dir.path(), &fake, &db.url);
    let mut first = Serve::start(&config, &data_dir, &dir.path().join("serve-1.log")).await;
    first.wait_ready("notes").await;

    // Note 1 is the one the turn adds; the delete of it waits for a person.
    fake.push(Reply::ToolCalls {
        calls: vec![
            switchboard_fake_llm::FakeToolCall::new(
                "add",
                "notes__add_note",
                json!({"title": "alpha-note", "body": "kept"}),
            ),
            switchboard_fake_llm::FakeToolCall::new("del", "notes__delete_note", json!({"id": 1})),
        ],
        text: None,
    });
    fake.push(Reply::text("Added alpha, then deleted it."));
    let (run_id, mut stream) = first.chat("Add a note and delete note 1").await;
    stream
        .until_matching("the approval", |e| is(e, "approval_requested"))
        .await;
    let before = first
        .run_when(&run_id, "the add stored as done, the run waiting", |run| {
            run["status"] == "waiting"
                && step_named(run, "notes__add_note").is_some_and(|s| s["status"] == "succeeded")
                && step_named(run, "notes__delete_note")
                    .is_some_and(|s| s["status"] == "waiting_approval")
        })
        .await;
    assert_eq!(before["status"], "waiting", "{before:#}");
    assert_eq!(fake.requests().len(), 1);

    kill(first.pid(), Signal::SIGKILL).expect("SIGKILL switchboard");
    first.wait_exit(Duration::from_secs(10)).await;
    drop(stream);

    // The restarted server claims the run once its lease ran out and waits on the same approval.
    let mut second = Serve::start(&config, &data_dir, &dir.path().join("serve-2.log")).await;
    second.wait_ready("notes").await;
    let id = second.pending_approval(&run_id).await;
    assert_eq!(id, "ap-2", "the approval of act step 2, as before the kill");
    let run = second.run(&run_id).await;
    assert_eq!(run["status"], "waiting", "{run:#}");
    assert_eq!(
        step_named(&run, "notes__add_note"),
        step_named(&before, "notes__add_note"),
        "the settled call is kept as it was"
    );
    assert_eq!(second.note_titles().await, ["alpha"]);

    // A clean stop keeps it waiting (not cancelled), and the next server takes it at once.
    kill(second.pid(), Signal::SIGTERM).expect("SIGTERM switchboard");
    let status = second.wait_exit(PATIENCE).await;
    assert!(status.success(), "{status}\n{}", second.log_text());
    let mut third = Serve::start(&config, &data_dir, &dir.path().join("serve-3.log")).await;
    third.wait_ready("notes").await;
    let stored = third.run(&run_id).await;
    assert_eq!(stored["status"], "waiting", "{stored:#}");
    let id = third.pending_approval(&run_id).await;

    let response = third
        .http
        .get(format!("{}/api/runs/{run_id}/events", third.base))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .expect("GET events");
    let mut events = Events::new(response);
    let (status, body) = third
        .post(
            &format!("/api/runs/{run_id}/approvals/{id}"),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body:#}");
    let seen = events
        .until_matching("run_finished", |e| is(e, "run_finished"))
        .await;
    let end = seen.last().expect("run_finished");
    assert_eq!(end.data["status"], "succeeded", "{seen:#?}");
    assert_eq!(end.data["answer"], "Added alpha, then deleted it.");
    assert!(
        seen.iter().any(|e| is(e, "run_resumed")),
        "the resumed run says so: {seen:#?}"
    );

    let run = third
        .run_when(&run_id, "succeeded", |run| run["status"] == "succeeded")
        .await;
    let kinds: Vec<&str> = steps(&run)
        .iter()
        .map(|s| s["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        kinds,
        ["plan", "act", "act", "observe", "plan", "answer"],
        "{run:#}"
    );
    assert_eq!(
        step_named(&run, "notes__delete_note").map(|s| &s["status"]),
        Some(&json!("succeeded")),
        "{run:#}"
    );
    // Nothing ran twice: the model was asked once before and once after, and the note added
    // before the kill is gone (deleted), not added again.
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let tools_told = requests[1].body["messages"].to_string();
    assert!(tools_told.contains("alpha-note"), "{tools_told}");
    assert!(third.note_titles().await.is_empty(), "{run:#}");
    drop(first);
}
