//! The store when it cannot write: a data dir on a real, tiny filesystem that fills up while a
//! run's tool call is in flight (a size-limited tmpfs this test mounts), and a private Postgres
//! cluster stopped with `pg_ctl stop -m immediate` mid-run and started again.
//!
//! Both must behave the same: the run in flight is never reported as succeeded (its trace is
//! incomplete, and the chat stream and the OpenAI response say so), new runs are refused with
//! 503 and a message that says why, `/readyz` is not ready (with the reason), and once the store
//! can write again everything recovers by itself, without a restart.
//!
//! Mounting needs root and the cluster needs PostgreSQL's server binaries: without them these
//! tests are skipped with a note, except under CI (`CI` set), where they fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_fake_llm::{FakeLlm, FakeToolCall, Reply};

use crate::support::events::Events;
use crate::support::gate::Gate;
use crate::support::{self, InProcessServer, McpHttpServer};

/// Longest wait for any one state in these tests.
const PATIENCE: Duration = Duration::from_secs(30);

/// The tool every run here calls: it blocks until the test opens the gate.
const GATE_TOOL: &str = "gate__wait";

// ---------------------------------------------------------------------------------------------
// The tests

/// The data dir is a 4 MiB tmpfs; while two runs wait in their tool call, a file fills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_and_recovered_from_without_a_restart() {
    let Some(disk) = Tmpfs::mount("4m") else {
        return;
    };
    let served = Served::start(disk.path(), None).await;

    let filler = disk.path().join("filler");
    let (mut chat, completion) = served.two_runs_in_their_tool_call(|| fill(&filler)).await;

    let events = chat.until("run_finished").await;
    let finished = &events.last().expect("run_finished").data;
    assert_trace_incomplete(finished);
    let (status, body) = completion.await.expect("the completion request");
    assert_completion_incomplete(status, &body);

    served.assert_refuses_runs("disk is full").await;

    std::fs::remove_file(&filler).expect("free the disk");
    served.assert_recovers(&chat.run_id()).await;
    served.server.stop().await;
}

/// The store is a private Postgres cluster, stopped (`-m immediate`) while two runs wait in
/// their tool call, then started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_is_reported_and_recovered_from_without_a_restart() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let data = tempfile::tempdir().expect("tempdir");
    let served = Served::start(data.path(), Some(&cluster.url())).await;

    let (mut chat, completion) = served.two_runs_in_their_tool_call(|| cluster.stop()).await;

    let events = chat.until("run_finished").await;
    let finished = &events.last().expect("run_finished").data;
    assert_trace_incomplete(finished);
    let (status, body) = completion.await.expect("the completion request");
    assert_completion_incomplete(status, &body);

    served.assert_refuses_runs("database").await;

    cluster.start_again();
    served.assert_recovers(&chat.run_id()).await;
    served.server.stop().await;
}

/// `run_finished` of a run whose events were not all stored.
fn assert_trace_incomplete(finished: &Value) {
    assert_ne!(finished["status"], "succeeded", "{finished:#}");
    assert_eq!(finished["trace_incomplete"], true, "{finished:#}");
    let error = finished["error"].as_str().unwrap_or_default();
    assert!(
        // "could not be stored", or "could not be confirmed as stored" when the database did
        // not answer within the end's wait: either way never a success.
        (error.contains("could not be stored") || error.contains("could not be confirmed"))
            && error.contains("trace is incomplete"),
        "{finished:#}"
    );
    // What the model answered is still shown: only its record is incomplete.
    assert_eq!(finished["answer"], "The gate opened.", "{finished:#}");
}

/// A whole (not streamed) completion of such a run: an error, never a 200 with the answer.
fn assert_completion_incomplete(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:#}");
    assert_eq!(body["error"]["code"], "run_trace_incomplete", "{body:#}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("trace is incomplete"), "{body:#}");
}

// ---------------------------------------------------------------------------------------------
// Harness

/// The server under test with the fake model and the gate, and the gate's handle.
struct Served {
    server: InProcessServer,
    fake: FakeLlm,
    gate: Gate,
    _gate_server: McpHttpServer,
    _config: tempfile::TempDir,
}

impl Served {
    /// Serve a config whose data dir is `data` (and whose database is `database_url`, when
    /// given), and wait until the gate's tool is in the catalog.
    async fn start(data: &Path, database_url: Option<&str>) -> Served {
        let fake = FakeLlm::start().await;
        let (gate, gate_server) = Gate::serve().await;
        let config = tempfile::tempdir().expect("tempdir");
        let database = database_url
            .map(|url| format!("  database_url: {url}\n"))
            .unwrap_or_default();
        let yaml = format!(
            "server:\n  bind: 127.0.0.1:0\n  data_dir: {data}\n{database}\
             models:\n  - name: fake\n    type: openai\n    base_url: {base}\n\
             \x20   model_name: fake-model\n    default: true\n    healthcheck: false\n\
             \x20   retry: {{max_attempts: 1}}\n\
             mcpServers:\n  gate:\n    url: {gate}\n    trusted: true\n",
            data = data.display(),
            base = fake.openai_base_url(),
            gate = gate_server.url,
        );
        let path = config.path().join("switchboard.yaml");
        std::fs::write(&path, yaml).expect("write config");
        let served = Served {
            server: InProcessServer::start(&path).await,
            fake,
            gate,
            _gate_server: gate_server,
            _config: config,
        };
        served.wait_for_gate().await;
        served
    }

    async fn wait_for_gate(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (_, body) = self.server.request(Method::GET, "/api/tools", None).await;
            let listed = body["tools"].as_array().cloned().unwrap_or_default();
            if listed.iter().any(|tool| tool["name"] == GATE_TOOL) {
                return;
            }
            assert!(Instant::now() < deadline, "the gate never listed: {body:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Start a chat (event stream) and a whole OpenAI completion, each calling the gate; once
    /// both are stored and waiting in their tool call, `fault` breaks the store and the gate
    /// opens. Returns the chat stream and the completion's pending status and body.
    async fn two_runs_in_their_tool_call(
        &self,
        fault: impl FnOnce(),
    ) -> (
        Events,
        tokio::task::JoinHandle<(StatusCode, serde_json::Value)>,
    ) {
        for id in ["call-chat", "call-completion"] {
            self.fake.push(Reply::ToolCalls {
                calls: vec![FakeToolCall::new(id, GATE_TOOL, json!({}))],
                text: None,
            });
        }
        for _ in 0..2 {
            self.fake.push(Reply::text("The gate opened."));
        }
        let response = self
            .server
            .send(
                Method::POST,
                "/api/chat",
                Some(json!({ "message": "Wait at the gate" })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut chat = Events::new(response);
        until_tool_call_started(&mut chat).await;
        self.wait_until(|| self.gate.entered() == 1, "the chat's tool call")
            .await;
        let request = self
            .server
            .http
            .post(format!("{}/v1/chat/completions", self.server.base));
        let completion = tokio::spawn(async move {
            let response = request
                .json(&json!({
                    "model": "fake",
                    "messages": [{ "role": "user", "content": "Wait at the gate too" }],
                }))
                .send()
                .await
                .expect("request to switchboard");
            let status = response.status();
            let bytes = response.bytes().await.expect("response body");
            (status, support::json_or_text(&bytes))
        });
        self.wait_until(|| self.gate.entered() == 2, "the completion's tool call")
            .await;
        // Both runs' rows are in the store before the fault (so its end has a row to land on).
        self.run_when(&chat.run_id(), |run| run["status"] == "running")
            .await;

        fault();
        self.gate.open(2);
        (chat, completion)
    }

    /// While the store cannot write: `/readyz` is not ready and says why, and a new run is
    /// refused with 503 before anything runs.
    async fn assert_refuses_runs(&self, reason: &str) {
        let (status, body) = self.server.request(Method::GET, "/readyz", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:#}");
        assert_eq!(body["error"]["code"], "not_ready", "{body:#}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{body:#}");

        let asked = self.fake.requests().len();
        let (status, body) = self
            .server
            .request(
                Method::POST,
                "/api/chat",
                Some(json!({ "message": "Anyone there?" })),
            )
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:#}");
        assert_eq!(body["error"]["code"], "store_unavailable", "{body:#}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(reason) && message.contains("new runs"),
            "{body:#}"
        );

        let (status, body) = self
            .server
            .request(
                Method::POST,
                "/v1/chat/completions",
                Some(json!({
                    "model": "fake",
                    "messages": [{ "role": "user", "content": "Anyone there?" }],
                })),
            )
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:#}");
        assert_eq!(body["error"]["code"], "store_unavailable", "{body:#}");
        assert_eq!(
            self.fake.requests().len(),
            asked,
            "a refused run must not reach the model"
        );
    }

    /// Once the store can write again: ready, new runs succeed and are stored, and the run that
    /// was in flight during the fault is not left `running`.
    async fn assert_recovers(&self, interrupted_run: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, body) = self.server.request(Method::GET, "/readyz", None).await;
            if status == StatusCode::OK {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "never ready again: {status} {body:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        self.fake.push(Reply::text("Back again."));
        let response = self
            .server
            .send(
                Method::POST,
                "/api/chat",
                Some(json!({ "message": "Are you back?" })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut chat = Events::new(response);
        let events = chat.until("run_finished").await;
        let finished = &events.last().expect("run_finished").data;
        assert_eq!(finished["status"], "succeeded", "{finished:#}");
        assert!(finished.get("trace_incomplete").is_none(), "{finished:#}");
        let run = self
            .run_when(&chat.run_id(), |run| run["status"] != "running")
            .await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
        assert_eq!(run["answer"], "Back again.", "{run:#}");

        let run = self
            .run_when(interrupted_run, |run| run["status"] != "running")
            .await;
        assert_ne!(run["status"], "succeeded", "{run:#}");
        let error = run["error"].as_str().unwrap_or_default();
        assert!(error.contains("trace is incomplete"), "{run:#}");
    }

    /// Poll `GET /api/runs/{id}` until `done` holds for it.
    async fn run_when(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, run) = self
                .server
                .request(Method::GET, &format!("/api/runs/{id}"), None)
                .await;
            if status == StatusCode::OK && done(&run) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run never got there: {status} {run:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_until(&self, check: impl Fn() -> bool, what: &str) {
        support::eventually(PATIENCE, what, check).await;
    }
}

/// Until the gate's tool call has started.
async fn until_tool_call_started(chat: &mut Events) {
    chat.until_matching("the gate's tool call", |event| {
        event.name.as_deref() == Some("step_started") && event.data["name"] == GATE_TOOL
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The faults

/// Whether this test may skip for lack of `what`: not under CI, where it must fail instead.
fn skip(what: &str, how: &str) -> bool {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is required under CI: {how}"
    );
    eprintln!("skipped: {what} is not available ({how})");
    true
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Run `program` with `args`; panics with its output when it fails.
fn run(program: &mut Command, what: &str) {
    let out = program
        .output()
        .unwrap_or_else(|err| panic!("{what}: cannot run it: {err}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A size-limited tmpfs on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
    mount: PathBuf,
}

impl Tmpfs {
    /// Mount one of `size` (`mount -o size=…`), or `None` when the test is skipped.
    fn mount(size: &str) -> Option<Tmpfs> {
        if !is_root() && skip("root (to mount a small tmpfs)", "run the tests as root") {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = dir.path().join("data");
        std::fs::create_dir(&mount).expect("mount point");
        run(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={size},mode=0700"))
                .arg("tmpfs")
                .arg(&mount),
            "mount -t tmpfs",
        );
        Some(Tmpfs { dir, mount })
    }

    fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: the server's files may still be open when a failed test unwinds.
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        let _ = &self.dir;
    }
}

/// Write `path` until the filesystem is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("create the filler");
    let chunk = vec![0_u8; 64 * 1024];
    let mut size = chunk.len();
    loop {
        match file.write(&chunk[..size]) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if err.raw_os_error() == Some(28) && size > 1 => size /= 2, // ENOSPC
            Err(err) if err.raw_os_error() == Some(28) => break,
            Err(err) => panic!("filling the disk: {err}"),
        }
    }
}

/// A private PostgreSQL cluster on a free port, in a temporary directory, run as the
/// `postgres` user when this test runs as root; stopped and removed when dropped.
struct Cluster {
    bin: PathBuf,
    root: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    /// `initdb` and start one, or `None` when the test is skipped.
    fn start() -> Option<Cluster> {
        let how = "install Debian's `postgresql` package (apt-get install postgresql)";
        let Some(bin) = postgres_bin_dir() else {
            skip("PostgreSQL's initdb and pg_ctl", how);
            return None;
        };
        let root = tempfile::tempdir().expect("tempdir");
        if is_root() {
            hand_to_postgres(root.path());
        }
        let cluster = Cluster {
            bin,
            root,
            port: support::free_port(),
        };
        run(
            cluster
                .command("initdb")
                .arg("-D")
                .arg(cluster.data())
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
                .args(["--no-locale", "--no-sync"]),
            "initdb",
        );
        cluster.start_again();
        Some(cluster)
    }

    /// `postgres://…` of the cluster's `postgres` database.
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start`, waiting until it accepts connections.
    fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.root.path().display()
        );
        run(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.root.path().join("postgres.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]),
            "pg_ctl start",
        );
    }

    /// `pg_ctl stop -m immediate`: the server ends at once, as if it crashed.
    fn stop(&self) {
        run(
            self.command("pg_ctl").arg("-D").arg(self.data()).args([
                "-m",
                "immediate",
                "-w",
                "stop",
            ]),
            "pg_ctl stop",
        );
    }

    fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// `bin/program`, run as `postgres` when we are root (the server refuses to run as root).
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// Where `initdb` and `pg_ctl` are: the newest `/usr/lib/postgresql/*/bin` (Debian), else `PATH`.
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

/// Give `dir` to the `postgres` user (and let it through the temporary directory's parent).
fn hand_to_postgres(dir: &Path) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        assert!(out.status.success(), "there is no `postgres` user");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    std::os::unix::fs::chown(dir, Some(id("-u")), Some(id("-g"))).expect("chown to postgres");
}
