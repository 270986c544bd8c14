//! No process outlives Switchboard, and none outlives being stopped: the real `switchboard serve`
//! binary with misbehaving testkit servers (one ignoring stdin EOF; one that starts a child in
//! its process group, one in a group of its own and one in a session of its own; one that
//! announces `tools/list_changed` and then never answers `tools/list`), killed with `kill -9`,
//! restarted on the same data dir, and reloaded without a server. Processes are found and
//! checked through `/proc`, always by pid *and* start time, so a reused pid never counts as
//! alive and is never killed by the cleanup here.
//!
//! Like `restart.rs` this runs the binary as a child process (a SIGKILL must not take the test
//! with it). Whatever a failing test leaves is killed when its `Serve` and `Leftovers` drop.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard::mcp::procfs::{self, ProcStat};
use switchboard::mcp::sweep::{ChildRecord, RECORDS_DIR};

use crate::support;

/// Longest wait for the server to come up or a state to show.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long a process may outlive what should have ended it ("within a few seconds").
const GONE_WITHIN: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Harness

/// A process as `/proc` named it when we first saw it: pid and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    pid: u32,
    start_time: u64,
}

impl Proc {
    fn pid(self) -> Pid {
        Pid::from_raw(self.pid as i32)
    }

    fn of(pid: u32) -> Proc {
        let stat = ProcStat::read(pid).unwrap_or_else(|| panic!("no process {pid}"));
        Proc {
            pid,
            start_time: stat.start_time,
        }
    }

    /// Still this process, and not exited (a zombie has exited; nobody may ever reap it when
    /// its parent is gone and pid 1 is not an init).
    fn alive(self) -> bool {
        ProcStat::read(self.pid)
            .is_some_and(|stat| stat.start_time == self.start_time && stat.is_running())
    }

    /// Whether it is a guard (`switchboard mcp-guard …`) rather than a server.
    fn is_guard(self) -> bool {
        self.describe().contains(" mcp-guard ")
    }

    fn describe(self) -> String {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
            .unwrap_or_default();
        format!("pid {} `{}`", self.pid, cmdline.trim())
    }
}

/// Processes the test saw, SIGKILLed on drop if they are still the same processes.
#[derive(Default)]
struct Leftovers(Vec<Proc>);

impl Leftovers {
    fn watch(&mut self, procs: &[Proc]) {
        self.0.extend_from_slice(procs);
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for proc in &self.0 {
            if proc.alive() {
                let _ = kill(Pid::from_raw(proc.pid as i32), Signal::SIGKILL);
            }
        }
    }
}

/// Poll until every one of `procs` is gone, or panic after `limit` naming those still there.
async fn all_gone_within(procs: &[Proc], limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    loop {
        let alive: Vec<Proc> = procs.iter().copied().filter(|p| p.alive()).collect();
        if alive.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still running after {limit:?}: {}",
            alive
                .iter()
                .map(|p| p.describe())
                .collect::<Vec<_>>()
                .join("; ")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `switchboard serve` as a child process in its own process group, with its output in a log
/// file; dropping it SIGKILLs it if it still runs.
struct Serve {
    child: Child,
    base: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Serve {
    /// Start `switchboard serve` on a free port and wait until `/healthz` answers (a port taken
    /// between our probe and the child's bind is retried with another).
    async fn start(config: &Path, data_dir: &Path, log: &Path) -> Serve {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = support::free_port();
            let mut serve = Serve::spawn(config, data_dir, port, log);
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

    fn spawn(config: &Path, data_dir: &Path, port: u16, log: &Path) -> Serve {
        let out = File::create(log).expect("create the server log");
        let err = out.try_clone().expect("clone the log handle");
        let mut command = Command::new(support::switchboard_bin());
        command
            .arg("--config")
            .arg(config)
            .arg("serve")
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .env("OTEL_SDK_DISABLED", "true")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info,rmcp=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for var in [
            "SWITCHBOARD_CONFIG",
            "SWITCHBOARD_BIND",
            // `${SWITCHBOARD_BIN}` is then the running binary's own path.
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
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
        }
    }

    fn proc(&self) -> Proc {
        Proc::of(self.child.id())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let addr = self.base.trim_start_matches("http://");
        let listening = format!("switchboard listening address={addr} ");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(format!("exited early ({status})"));
            }
            if self.log_text().contains(&listening) {
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

    /// `GET /api/mcp/servers`: the servers by name.
    async fn servers(&self) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/api/mcp/servers", self.base))
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET /api/mcp/servers: {err}\n{}", self.log_text()));
        let body: Value = response.json().await.expect("a JSON server list");
        body["servers"].as_array().cloned().unwrap_or_default()
    }

    async fn server(&self, name: &str) -> Option<Value> {
        self.servers().await.into_iter().find(|s| s["name"] == name)
    }

    /// Wait until `name` is ready; its pid (that of the guard the server runs under).
    async fn wait_ready(&self, name: &str) -> u32 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(server) = self.server(name).await.filter(|s| s["status"] == "ready") {
                let pid = server["pid"].as_u64().expect("a stdio server has a pid");
                return u32::try_from(pid).expect("pid fits u32");
            }
            assert!(
                Instant::now() < deadline,
                "`{name}` never got ready: {:#?}\n{}",
                self.server(name).await,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn reload(&self) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/api/config/reload", self.base))
            .json(&json!({}))
            .send()
            .await
            .expect("POST /api/config/reload");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// SIGKILL switchboard and reap it.
    fn kill_9(&mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL).expect("SIGKILL switchboard");
        let status = self.child.wait().expect("reap switchboard");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{status}"
        );
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Not once reaped: the pid may belong to someone else by now.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
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

/// A testkit server entry in `mode`, with extra `env` lines.
fn testkit(name: &str, mode: &str, env: &[(&str, String)]) -> String {
    let mut entry = support::bundled_stdio(name, "testkit", &[]);
    entry.push_str(&format!(
        "    env:\n      SWITCHBOARD_TESTKIT_MODE: {mode}\n"
    ));
    for (key, value) in env {
        entry.push_str(&format!("      {key}: \"{value}\"\n"));
    }
    entry
}

fn write_config(dir: &Path, servers: &[String]) -> PathBuf {
    let path = dir.join("switchboard.yaml");
    std::fs::write(&path, format!("mcpServers:\n{}", servers.concat())).expect("write config");
    path
}

/// `pid` and everything under it, as they are now.
fn tree(guard: u32) -> Vec<Proc> {
    let mut procs = vec![Proc::of(guard)];
    procs.extend(procfs::descendants(guard).into_iter().map(Proc::of));
    procs
}

/// [`tree`] of a server's status pid, once the server itself runs (under its guard, the
/// status pid is the guard's).
async fn tree_with_server(pid: u32) -> Vec<Proc> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let procs = tree(pid);
        if procs.iter().any(|p| !p.is_guard()) {
            return procs;
        }
        assert!(Instant::now() < deadline, "{pid} runs no server: {procs:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait for the `descendants` mode's pid file; `role → pid`.
async fn read_pid_file(path: &Path) -> Vec<(String, u32)> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text
                .lines()
                .filter_map(|line| {
                    let (role, pid) = line.split_once(' ')?;
                    Some((role.to_owned(), pid.parse().ok()?))
                })
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sleeper() -> Child {
    let mut command = Command::new("sleep");
    command.arg("600").stdin(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command.spawn().expect("start sleep")
}

// ---------------------------------------------------------------------------------------------
// The tests

/// `kill -9` of switchboard ends every child, grandchild and `setsid`ed descendant of its
/// servers within a few seconds, without any restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_switchboard_leaves_no_descendant_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("family.pids");
    let config = write_config(
        dir.path(),
        &[
            testkit("stubborn", "ignore-eof", &[]),
            testkit(
                "family",
                "descendants",
                &[(
                    "SWITCHBOARD_TESTKIT_PID_FILE",
                    pid_file.display().to_string(),
                )],
            ),
        ],
    );
    let mut leftovers = Leftovers::default();
    let mut serve = Serve::start(
        &config,
        &dir.path().join("data"),
        &dir.path().join("serve.log"),
    )
    .await;
    let stubborn = serve.wait_ready("stubborn").await;
    let family = serve.wait_ready("family").await;
    let pids = read_pid_file(&pid_file).await;
    let roles: Vec<&str> = pids.iter().map(|(role, _)| role.as_str()).collect();
    assert_eq!(
        roles,
        ["server", "group", "own-group", "session"],
        "{pids:?}"
    );

    let mut procs = tree_with_server(stubborn).await;
    procs.extend(tree_with_server(family).await);
    for (_, pid) in &pids {
        if !procs.iter().any(|p| p.pid == *pid) {
            procs.push(Proc::of(*pid));
        }
    }
    leftovers.watch(&procs);
    // The stubborn server itself and the family's four, besides the guards.
    assert!(
        procs.iter().filter(|p| !p.is_guard()).count() >= 5,
        "{procs:?}"
    );
    let session = pids
        .iter()
        .find(|(role, _)| role == "session")
        .expect("session")
        .1;
    let session_stat = ProcStat::read(session).expect("the setsid'd sleeper");
    assert_eq!(session_stat.sid, session, "it leads a session of its own");
    let own_group = pids
        .iter()
        .find(|(role, _)| role == "own-group")
        .expect("own-group")
        .1;
    assert_eq!(ProcStat::read(own_group).map(|s| s.pgid), Some(own_group));

    serve.kill_9();
    all_gone_within(&procs, GONE_WITHIN, "after kill -9 of switchboard").await;
}

/// What a death signal cannot cover (here: a guard stopped, then killed with switchboard; and
/// a record of a child that escaped) is ended by the next start on the same data dir, while a
/// process that merely got a recorded pid later is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_sweep_ends_what_a_crash_left_and_spares_reused_pids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let config = write_config(dir.path(), &[testkit("stubborn", "ignore-eof", &[])]);
    let mut leftovers = Leftovers::default();
    let mut first = Serve::start(&config, &data_dir, &dir.path().join("serve-1.log")).await;
    let guard = first.wait_ready("stubborn").await;
    let old_tree = tree_with_server(guard).await;
    leftovers.watch(&old_tree);
    let old_server: Vec<Proc> = old_tree.iter().copied().filter(|p| !p.is_guard()).collect();
    let owner = first.proc();

    // The guard killed while switchboard cannot act on it (stopped), then switchboard killed:
    // as if both went together (the OOM killer taking a cgroup, say). Nothing reaps the guard
    // or removes its record, and its server, which ignores stdin EOF, runs on in its group.
    // (Stopping the guard instead would not do: a process group that is orphaned with a
    // stopped member gets SIGHUP from the kernel.)
    kill(owner.pid(), Signal::SIGSTOP).expect("SIGSTOP switchboard");
    if Proc::of(guard).is_guard() {
        kill(Pid::from_raw(guard as i32), Signal::SIGKILL).expect("SIGKILL the guard");
    }
    first.kill_9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for proc in &old_server {
        assert!(proc.alive(), "{} should have survived", proc.describe());
    }

    // A child that escaped, recorded by the dead switchboard; and an unrelated process that
    // got a recorded pid later (same pid, another start time).
    let records = data_dir.join(RECORDS_DIR);
    let mut escaped = sleeper();
    let mut unrelated = sleeper();
    let escaped_proc = Proc::of(escaped.id());
    let unrelated_proc = Proc::of(unrelated.id());
    leftovers.watch(&[escaped_proc, unrelated_proc]);
    let boot_id = procfs::boot_id().expect("a boot id");
    for (proc, start_time) in [
        (escaped_proc, escaped_proc.start_time),
        (unrelated_proc, unrelated_proc.start_time.saturating_sub(1)),
    ] {
        ChildRecord {
            server: "left".to_owned(),
            pid: proc.pid,
            pgid: proc.pid,
            start_time,
            boot_id: boot_id.clone(),
            owner_pid: owner.pid,
            owner_start_time: owner.start_time,
            guarded: false,
        }
        .write_to(&records)
        .expect("write a record");
    }

    let second = Serve::start(&config, &data_dir, &dir.path().join("serve-2.log")).await;
    all_gone_within(&old_server, GONE_WITHIN, "the old server after the restart").await;
    let deadline = Instant::now() + GONE_WITHIN;
    while escaped.try_wait().expect("try_wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "the recorded child outlived the restart\n{}",
            second.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        unrelated.try_wait().expect("try_wait").is_none(),
        "the process with a reused pid was killed\n{}",
        second.log_text()
    );
    let new_guard = second.wait_ready("stubborn").await;
    assert_ne!(new_guard, guard);
    leftovers.watch(&tree(new_guard));
    // The old records are gone; the new server's is there.
    let mut names: Vec<String> = std::fs::read_dir(&records)
        .expect("records dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [format!("{new_guard}.json")]);
    let _ = unrelated.kill();
    let _ = unrelated.wait();
}

/// A server that announces `tools/list_changed` and never answers `tools/list` is still
/// stopped by a reload that removes it: it shows `stopping`, then is gone from the list, and
/// its processes are gone within a bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedged_server_is_stopped_by_reload_and_shown_stopping_until_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let calm = testkit("calm", "normal", &[]);
    let config = write_config(
        dir.path(),
        &[calm.clone(), testkit("wedged", "wedge-tools-list", &[])],
    );
    let mut leftovers = Leftovers::default();
    let serve = Serve::start(
        &config,
        &dir.path().join("data"),
        &dir.path().join("serve.log"),
    )
    .await;
    let guard = serve.wait_ready("wedged").await;
    let procs = tree_with_server(guard).await;
    leftovers.watch(&procs);
    // Until its supervisor is waiting on the `tools/list` that never comes.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let wedged = serve.server("wedged").await.expect("listed");
        let stderr = wedged["stderr_tail"].to_string();
        if stderr.contains("not answering tools/list") {
            break;
        }
        assert!(Instant::now() < deadline, "never wedged: {wedged:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    write_config(dir.path(), &[calm]);
    let asked = Instant::now();
    let (status, report) = serve.reload().await;
    assert_eq!(status, StatusCode::OK, "{report:#}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "reload waited {:?}",
        asked.elapsed()
    );
    assert_eq!(
        report["servers"]["stopped"],
        json!(["wedged"]),
        "{report:#}"
    );

    // `stopping` while it is being ended, then not listed at all.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = serve
            .server("wedged")
            .await
            .map(|s| s["status"].as_str().unwrap_or("?").to_owned());
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status.is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still listed after 20 s: {seen:?}\n{}",
            serve.log_text()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        seen.first()
            .is_some_and(|s| s.as_deref() == Some("stopping")),
        "not shown as stopping after the reload: {seen:?}"
    );
    all_gone_within(
        &procs,
        GONE_WITHIN,
        "the wedged server after it left the list",
    )
    .await;
    assert!(
        serve
            .server("calm")
            .await
            .is_some_and(|s| s["status"] == "ready")
    );
}
