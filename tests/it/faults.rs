//! Servers that crash, hang, flood, never answer or refuse to die, and the manager's duties
//! around them: fail calls fast with the reason, restart with backoff, open the circuit, cancel
//! on timeout, cap concurrency, reload without dropping calls, and leave no processes behind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use switchboard::domain::ToolProgress;
use switchboard::hub::{InvokeError, InvokeOutcome};
use switchboard::mcp::{CallOptions, ConnectionState, McpError};
use tokio::sync::mpsc;

use crate::support::{self, TestHub, eventually};

const SETTLE: Duration = Duration::from_secs(20);
/// Generous bound for anything that should happen "soon" (a restart, a reaped child).
const SOON: Duration = Duration::from_secs(15);

/// A testkit stdio entry named `name`, followed by `extra` YAML lines (already indented).
fn testkit(name: &str, extra: &str) -> String {
    support::bundled_stdio(name, "testkit", &[]) + extra
}

fn yaml(entries: &[String]) -> String {
    format!("mcpServers:\n{}", entries.concat())
}

fn text_of(outcome: &InvokeOutcome) -> String {
    outcome
        .result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `(state, ppid, pgrp)` of a process from `/proc/<pid>/stat`, or `None` when it is gone.
fn proc_stat(pid: u32) -> Option<(char, u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces; fields follow the last `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

/// True once `pid` (a child we started) has exited and been reaped: no `/proc` entry, or a
/// recycled pid that is neither a zombie nor our child.
fn reaped(pid: u32) -> bool {
    match proc_stat(pid) {
        None => true,
        Some((state, ppid, _)) => state != 'Z' && ppid != std::process::id(),
    }
}

#[track_caller]
fn assert_reaped(pid: u32) {
    assert!(
        reaped(pid),
        "process {pid} is still there: {:?}",
        proc_stat(pid)
    );
}

/// Every live process in process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| matches!(proc_stat(*pid), Some((_, _, pgrp)) if pgrp == pgid))
        .collect()
}

/// The environment of a running process, from `/proc/<pid>/environ`.
fn environ(pid: u32) -> BTreeMap<String, String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("read environ");
    raw.split(|b| *b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (key, value) = entry.split_once('=').unwrap_or((&entry, ""));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

/// Our resident set size in KiB.
fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn pid_of(hub: &TestHub, server: &str) -> u32 {
    hub.status(server)
        .pid
        .unwrap_or_else(|| panic!("`{server}` has no pid: {:?}", hub.status(server)))
}

#[track_caller]
fn assert_ready(hub: &TestHub, server: &str) {
    let status = hub.status(server);
    assert_eq!(
        status.status,
        ConnectionState::Ready,
        "{server}: {status:?}"
    );
}

/// Start `testkit__sleep` on `server` in the background and return once the server is running
/// it (its first progress notification arrived).
async fn sleep_in_background(
    hub: &TestHub,
    server: &str,
    ms: u64,
) -> tokio::task::JoinHandle<Result<InvokeOutcome, InvokeError>> {
    let (tx, mut rx) = mpsc::channel::<ToolProgress>(1024);
    let hub = hub.hub.clone();
    let name = format!("{server}__sleep");
    let call = tokio::spawn(async move {
        hub.invoke(
            &switchboard::access::Caller::local(),
            &name,
            json!({"ms": ms, "steps": ms / 50}),
            CallOptions {
                progress: Some(tx),
                ..CallOptions::default()
            },
        )
        .await
    });
    let first = tokio::time::timeout(SOON, rx.recv()).await;
    assert!(
        matches!(first, Ok(Some(_))),
        "no progress from {server}__sleep: {first:?}"
    );
    // Keep draining so the route never fills up (it drops ticks when full anyway).
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    call
}

async fn echo(hub: &TestHub, server: &str, message: &str) -> Result<InvokeOutcome, InvokeError> {
    hub.hub
        .invoke(
            &switchboard::access::Caller::local(),
            &format!("{server}__echo"),
            json!({"message": message}),
            CallOptions::default(),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_call_fails_fast_and_the_server_restarts() {
    let hub = TestHub::start(
        &yaml(&[testkit("victim", "    timeout_ms: 30000\n")]),
        SETTLE,
    )
    .await;
    assert_ready(&hub, "victim");
    let old_pid = pid_of(&hub, "victim");
    let call = sleep_in_background(&hub, "victim", 20_000).await;

    let killed_at = Instant::now();
    kill(Pid::from_raw(old_pid as i32), Signal::SIGKILL).expect("kill -9");
    let result = tokio::time::timeout(SOON, call)
        .await
        .expect("the call ends")
        .expect("join");
    let failed_after = killed_at.elapsed();
    assert!(
        failed_after < Duration::from_secs(5),
        "the call took {failed_after:?} to fail; its timeout is 30 s"
    );
    match result {
        Err(InvokeError::Mcp(McpError::ServerExited { server, exit, .. })) => {
            assert_eq!(server, "victim");
            assert_eq!(exit, "signal 9");
        }
        other => panic!("expected ServerExited, got {other:?}"),
    }
    // The exit status comes from the reaper, so the child is already reaped.
    assert_reaped(old_pid);

    eventually(SOON, "victim restarted with a new pid", || {
        let status = hub.status("victim");
        status.status == ConnectionState::Ready && status.pid.is_some_and(|p| p != old_pid)
    })
    .await;
    let status = hub.status("victim");
    assert_eq!(status.restarts, 1, "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("signal 9")),
        "{status:?}"
    );
    let outcome = echo(&hub, "victim", "still here").await.expect("echo");
    assert_eq!(text_of(&outcome), "still here");
    assert_reaped(old_pid);
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_mid_call_reports_the_code_and_stderr() {
    let hub = TestHub::start(&yaml(&[testkit("crashy", "")]), SETTLE).await;
    assert_ready(&hub, "crashy");
    let old_pid = pid_of(&hub, "crashy");
    let result = hub
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "crashy__exit",
            json!({"code": 7}),
            CallOptions::default(),
        )
        .await;
    let err = match result {
        Err(InvokeError::Mcp(err)) => err,
        other => panic!("expected an MCP error, got {other:?}"),
    };
    let message = err.to_string();
    let McpError::ServerExited {
        exit, stderr_tail, ..
    } = err
    else {
        panic!("expected ServerExited, got {err:?}");
    };
    assert_eq!(exit, "code 7");
    assert!(
        stderr_tail.iter().any(|line| line == "testkit: exit 7"),
        "stderr tail: {stderr_tail:?}"
    );
    assert!(message.contains("code 7"), "{message}");
    assert!(message.contains("testkit: exit 7"), "{message}");
    assert_reaped(old_pid);
    eventually(SOON, "crashy restarted", || {
        hub.status("crashy").status == ConnectionState::Ready
            && hub.status("crashy").pid != Some(old_pid)
    })
    .await;
    assert_eq!(hub.status("crashy").restarts, 1);
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_initializes_does_not_hold_up_the_others() {
    let init_timeout = Duration::from_millis(1500);
    let config = yaml(&[
        testkit(
            "mute",
            &format!(
                "    init_timeout_ms: {}\n    env:\n      SWITCHBOARD_TESTKIT_MODE: never-init\n",
                init_timeout.as_millis()
            ),
        ),
        testkit("healthy", ""),
    ]);
    let started = Instant::now();
    // Settle limit zero: start-up itself must not wait for anything.
    let hub = TestHub::start(&config, Duration::ZERO).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "start-up blocked"
    );
    eventually(SOON, "healthy ready", || {
        hub.status("healthy").status == ConnectionState::Ready
    })
    .await;
    let healthy_after = started.elapsed();
    assert!(
        healthy_after < init_timeout * 2 / 3,
        "healthy took {healthy_after:?}, as if it waited for the mute server"
    );
    let outcome = echo(&hub, "healthy", "hi").await.expect("healthy works");
    assert_eq!(text_of(&outcome), "hi");
    assert_eq!(
        hub.status("mute").status,
        ConnectionState::Connecting,
        "mute is still connecting while healthy serves calls"
    );
    let err = hub
        .hub
        .mcp()
        .call("mute", "echo", Default::default(), CallOptions::default())
        .await
        .expect_err("mute cannot serve");
    assert!(
        matches!(&err, McpError::Unavailable { reason, .. } if reason.contains("connecting")),
        "{err:?}"
    );

    eventually(SOON, "mute gives up on the handshake", || {
        hub.status("mute").last_error.is_some()
    })
    .await;
    let status = hub.status("mute");
    let error = status.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("1500 ms") && error.contains("handshake"),
        "{status:?}"
    );
    assert!(started.elapsed() >= init_timeout, "gave up early");
    assert_ne!(status.status, ConnectionState::Ready);
    assert_eq!(status.tool_count, 0);
    assert!(
        hub.hub.catalog().iter().all(|entry| entry.server != "mute"),
        "no tools from mute"
    );
    assert_ready(&hub, "healthy");
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_on_start_backs_off_then_opens_the_circuit() {
    let config = yaml(&[testkit(
        "doomed",
        "    init_timeout_ms: 2000\n    env:\n      SWITCHBOARD_TESTKIT_MODE: exit-on-start\n",
    )]);
    let started = Instant::now();
    let hub = TestHub::start(&config, SETTLE).await;
    let status = hub.status("doomed");
    assert_ne!(status.status, ConnectionState::Ready);
    let error = status.last_error.clone().unwrap_or_default();
    assert!(error.contains("code 3"), "{status:?}");
    assert!(error.contains("testkit: exit-on-start"), "{status:?}");

    eventually(SOON, "circuit open after 5 failures", || {
        hub.status("doomed").status == ConnectionState::Failed
    })
    .await;
    let elapsed = started.elapsed();
    let status = hub.status("doomed");
    assert_eq!(status.consecutive_failures, 5, "{status:?}");
    assert_eq!(status.restarts, 0, "it never connected");
    assert_eq!(status.pid, None);
    let error = status.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("code 3") && error.contains("testkit: exit-on-start"),
        "{status:?}"
    );
    // Backoff 250, 500, 1000, 2000 ms (±20%) between the five attempts.
    assert!(
        elapsed >= Duration::from_millis(3000),
        "five attempts took only {elapsed:?}: no backoff?"
    );
    let err = hub
        .hub
        .mcp()
        .call("doomed", "echo", Default::default(), CallOptions::default())
        .await
        .expect_err("circuit open");
    assert!(
        matches!(&err, McpError::Unavailable { reason, .. } if reason.contains("failed repeatedly")),
        "{err:?}"
    );
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_tool_times_out_and_the_server_is_told() {
    let hub = TestHub::start(&yaml(&[testkit("sloth", "    timeout_ms: 500\n")]), SETTLE).await;
    assert_ready(&hub, "sloth");
    let pid = pid_of(&hub, "sloth");
    let started = Instant::now();
    let result = hub
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "sloth__sleep",
            json!({"ms": 60_000}),
            CallOptions::default(),
        )
        .await;
    let elapsed = started.elapsed();
    match result {
        Err(InvokeError::Mcp(McpError::Timeout { server, timeout })) => {
            assert_eq!(server, "sloth");
            assert_eq!(timeout, Duration::from_millis(500));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(3),
        "timed out after {elapsed:?}"
    );
    eventually(SOON, "the server logs the cancellation", || {
        hub.status("sloth").stderr_tail.iter().any(|line| {
            line.strip_prefix("cancelled ")
                .is_some_and(|id| !id.is_empty())
        })
    })
    .await;
    // The session survives a timeout: same process, next call works.
    assert_ready(&hub, "sloth");
    assert_eq!(hub.status("sloth").pid, Some(pid));
    let outcome = echo(&hub, "sloth", "awake").await.expect("echo");
    assert_eq!(text_of(&outcome), "awake");
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdout_flood_fails_the_server_with_bounded_memory() {
    let rss_before = vm_rss_kib();
    let hub = TestHub::start(
        &yaml(&[testkit(
            "firehose",
            "    env:\n      SWITCHBOARD_TESTKIT_MODE: flood\n",
        )]),
        SETTLE,
    )
    .await;
    eventually(SOON, "firehose fails", || {
        hub.status("firehose").last_error.is_some()
    })
    .await;
    let rss_after = vm_rss_kib();
    let status = hub.status("firehose");
    assert_ne!(status.status, ConnectionState::Ready);
    let error = status.last_error.clone().unwrap_or_default();
    let cap = switchboard::mcp::transport::stdio::MAX_FRAME_BYTES;
    assert!(
        error.contains(&cap.to_string()) && error.contains("frame"),
        "last_error should name the frame cap: {status:?}"
    );
    let growth_mib = rss_after.saturating_sub(rss_before) / 1024;
    assert!(
        growth_mib < 100,
        "RSS grew by {growth_mib} MiB ({rss_before} → {rss_after} KiB)"
    );
    hub.hub.mcp().shutdown().await;
}

/// A server that floods stdout after the handshake: the call fails fast, naming the frame cap
/// (not the clean exit the child makes once we close its pipe), and the status says so too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdout_flood_mid_call_names_the_frame_cap() {
    let hub = TestHub::start(&yaml(&[testkit("gusher", "")]), SETTLE).await;
    assert_ready(&hub, "gusher");
    let started = Instant::now();
    let err = hub
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "gusher__flood",
            json!({}),
            CallOptions::default(),
        )
        .await
        .expect_err("a flooding call cannot succeed");
    let message = err.to_string();
    let cap = switchboard::mcp::transport::stdio::MAX_FRAME_BYTES;
    assert!(
        message.contains(&cap.to_string()) && message.contains("frame"),
        "the call's error should name the frame cap: {message}"
    );
    assert!(
        !message.contains("exited"),
        "the clean exit after EPIPE is not the reason: {message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "failed only after {:?}",
        started.elapsed()
    );
    eventually(SOON, "gusher's last error names the cap", || {
        hub.status("gusher")
            .last_error
            .is_some_and(|e| e.contains("frame"))
    })
    .await;
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_queues_calls_in_waves() {
    let hub = TestHub::start(
        &yaml(&[testkit("narrow", "    max_concurrency: 2\n")]),
        SETTLE,
    )
    .await;
    assert_ready(&hub, "narrow");
    let t0 = Instant::now();
    let calls = (0..4).map(|_| {
        let hub = hub.hub.clone();
        async move {
            let outcome = hub
                .invoke(
                    &switchboard::access::Caller::local(),
                    "narrow__sleep",
                    json!({"ms": 300}),
                    CallOptions::default(),
                )
                .await;
            (outcome, t0.elapsed())
        }
    });
    let results = futures::future::join_all(calls).await;
    let total = t0.elapsed();
    let mut ends = Vec::new();
    for (outcome, end) in results {
        let outcome = outcome.expect("sleep");
        assert_eq!(text_of(&outcome), "slept 300 ms");
        ends.push(end);
    }
    ends.sort();
    // Two waves: the third call can only start once one of the first two has finished.
    assert!(
        total >= Duration::from_millis(600),
        "all four took {total:?}"
    );
    let gap = |a: usize, b: usize| ends[b] - ends[a];
    assert!(
        gap(0, 2) >= Duration::from_millis(250),
        "third call ended too soon after the first: {ends:?}"
    );
    // Not one at a time either: the first two (and the last two) end together.
    assert!(gap(0, 1) < gap(1, 2), "{ends:?}");
    assert!(gap(2, 3) < gap(1, 2), "{ends:?}");
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changes_only_what_changed_and_drops_no_calls() {
    let before = yaml(&[
        testkit("keep", ""),
        testkit("change", "    env:\n      FLAVOUR: vanilla\n"),
        testkit("gone", ""),
        testkit("toggle", ""),
        testkit("off", "    enabled: false\n"),
    ]);
    let after = yaml(&[
        testkit("keep", ""),
        testkit("change", "    env:\n      FLAVOUR: chocolate\n"),
        testkit("toggle", "    enabled: false\n"),
        testkit("off", "    enabled: false\n"),
        testkit("added", ""),
    ]);
    let mut hub = TestHub::start(&before, SETTLE).await;
    for server in ["keep", "change", "gone", "toggle"] {
        assert_ready(&hub, server);
    }
    assert_eq!(hub.status("off").status, ConnectionState::Disabled);
    assert_eq!(hub.status("off").pid, None);
    let keep_pid = pid_of(&hub, "keep");
    let change_pid = pid_of(&hub, "change");
    let gone_pid = pid_of(&hub, "gone");
    let toggle_pid = pid_of(&hub, "toggle");
    assert_eq!(
        environ(change_pid).get("FLAVOUR").map(String::as_str),
        Some("vanilla")
    );

    // Calls in flight on an untouched server and on a restarted one.
    let on_keep = sleep_in_background(&hub, "keep", 1500).await;
    let on_change = sleep_in_background(&hub, "change", 1000).await;
    let summary = hub.reload(&after);
    assert_eq!(summary.started, ["added"]);
    assert_eq!(summary.stopped, ["gone"]);
    assert_eq!(summary.restarted, ["change", "toggle"]);
    assert_eq!(summary.unchanged, ["keep", "off"]);

    // Removed and disabled servers leave the catalog at once.
    let catalog = hub.hub.catalog();
    assert!(catalog.get("gone__echo").is_none());
    assert!(catalog.get("toggle__echo").is_none());
    assert!(catalog.get("keep__echo").is_some());

    let outcome = on_keep.await.expect("join").expect("call on keep survives");
    assert_eq!(text_of(&outcome), "slept 1500 ms");
    let outcome = on_change
        .await
        .expect("join")
        .expect("call on the replaced server drains");
    assert_eq!(text_of(&outcome), "slept 1000 ms");
    assert_ready(&hub, "keep");
    assert_eq!(hub.status("keep").pid, Some(keep_pid));
    assert_eq!(hub.status("keep").restarts, 0);

    eventually(SOON, "change restarted with the new env", || {
        let status = hub.status("change");
        status.status == ConnectionState::Ready && status.pid.is_some_and(|p| p != change_pid)
    })
    .await;
    let new_pid = pid_of(&hub, "change");
    assert_eq!(
        environ(new_pid).get("FLAVOUR").map(String::as_str),
        Some("chocolate")
    );
    eventually(SOON, "added ready", || {
        hub.status("added").status == ConnectionState::Ready
    })
    .await;
    let outcome = echo(&hub, "added", "new").await.expect("added works");
    assert_eq!(text_of(&outcome), "new");

    assert!(
        hub.hub.mcp().statuses().iter().all(|s| s.name != "gone"),
        "gone is no longer listed"
    );
    assert_eq!(hub.status("toggle").status, ConnectionState::Disabled);
    assert_eq!(hub.status("toggle").pid, None);
    assert_eq!(hub.status("off").status, ConnectionState::Disabled);
    for (server, pid) in [
        ("gone", gone_pid),
        ("change (old)", change_pid),
        ("toggle", toggle_pid),
    ] {
        eventually(SOON, &format!("{server} child {pid} exits"), || reaped(pid)).await;
    }
    let err = echo(&hub, "toggle", "x").await.expect_err("disabled");
    assert!(matches!(err, InvokeError::UnknownTool { .. }), "{err:?}");
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_no_processes_even_when_the_child_ignores_stdin_close() {
    // testkit has no mode that ignores stdin close, so wrap it: when stdin closes the testkit
    // exits, but its shell (the group leader) goes on sleeping and ignores SIGTERM, as does the
    // `sleep` it starts. Only the final SIGKILL of the whole group ends them.
    let stubborn = "  stubborn:\n    command: sh\n    args: [\"-c\", \"trap '' TERM; \\\"$0\\\" mcp-server testkit; sleep 60\", \"${SWITCHBOARD_BIN}\"]\n";
    let config = yaml(&[testkit("one", ""), testkit("two", ""), stubborn.to_owned()]);
    let hub = TestHub::start(&config, SETTLE).await;
    let mut pids = Vec::new();
    for server in ["one", "two", "stubborn"] {
        assert_ready(&hub, server);
        pids.push((server, pid_of(&hub, server)));
    }
    let outcome = echo(&hub, "stubborn", "wrapped").await.expect("echo");
    assert_eq!(text_of(&outcome), "wrapped");
    for (server, pid) in &pids {
        // Each child leads its own process group.
        assert_eq!(
            proc_stat(*pid).map(|(_, _, pgrp)| pgrp),
            Some(*pid),
            "{server}"
        );
    }

    let started = Instant::now();
    hub.hub.mcp().shutdown().await;
    let took = started.elapsed();
    for (server, pid) in &pids {
        assert_reaped(*pid);
        // Killed grandchildren (the stubborn shell's `sleep`) may linger a moment as zombies
        // of init, which reaps orphans; anything alive, or a zombie of ours, is a leak.
        let left: Vec<_> = group_members(*pid)
            .into_iter()
            .filter_map(|p| proc_stat(p).map(|stat| (p, stat)))
            .filter(|(_, (state, ppid, _))| *state != 'Z' || *ppid == std::process::id())
            .collect();
        assert!(
            left.is_empty(),
            "{server}: processes left in its group (pid, (state, ppid, pgrp)): {left:?}"
        );
    }
    assert!(hub.hub.mcp().statuses().is_empty());
    // The stubborn one needed the whole ladder: 1.5 s after stdin closed, SIGTERM, 2 s, SIGKILL.
    assert!(
        took >= Duration::from_millis(3000),
        "shutdown took only {took:?}; did SIGTERM kill a shell that ignores it?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_get_a_clean_environment() {
    const SECRET_KEY: &str = "SWITCHBOARD_IT_SECRET_API_KEY";
    const SECRET_VALUE: &str = "sk-it-3f9a1c7e-never-leak";
    let config = yaml(&[testkit(
        "hygiene",
        "    env:\n      CONFIGURED_VAR: configured-value\n",
    )]);
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = TestHub::start_in(dir, &config, SETTLE, &[(SECRET_KEY, SECRET_VALUE)]).await;
    assert_ready(&hub, "hygiene");
    let env = environ(pid_of(&hub, "hygiene"));

    assert_eq!(
        env.get("CONFIGURED_VAR").map(String::as_str),
        Some("configured-value")
    );
    assert!(!env.contains_key(SECRET_KEY), "{env:?}");
    assert!(
        env.values().all(|v| !v.contains(SECRET_VALUE)),
        "the secret leaked under another name: {env:?}"
    );
    assert_eq!(
        env.get("SWITCHBOARD_DATA_DIR").map(String::as_str),
        Some(hub.dir.path().to_str().expect("utf-8 path"))
    );
    if let Ok(path) = std::env::var("PATH") {
        assert_eq!(env.get("PATH"), Some(&path), "PATH is passed through");
    }
    // Nothing else: our variables (CARGO_*, RUST_*, tokens) stay with us.
    const ALLOWED: &[&str] = &[
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TMPDIR",
        "TERM",
        "SHELL",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "SWITCHBOARD_DATA_DIR",
        "CONFIGURED_VAR",
    ];
    let unexpected: Vec<&String> = env
        .keys()
        .filter(|k| !ALLOWED.contains(&k.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected variables: {unexpected:?}"
    );
    hub.hub.mcp().shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// What reaches our log from a child (issue 12): a stderr flood is rate-limited with a count of
// what was left out, control characters are escaped, and proxy credentials stay with us. These
// run the real `switchboard serve` binary and read its log, as an operator would.

/// `switchboard serve` as a child process with its config, data and log (stderr and stdout) in
/// a directory the test owns, on a free port. Dropping it asks for a graceful shutdown (SIGTERM,
/// which stops the MCP servers), then SIGKILLs its group and the MCP children it was seen to run.
struct LoggedServe {
    child: std::process::Child,
    base: String,
    log: std::path::PathBuf,
    mcp_pids: std::collections::BTreeSet<u32>,
    http: reqwest::Client,
}

impl LoggedServe {
    /// Serve `yaml` (an `mcpServers:` config) from `dir` and wait until `/healthz` answers.
    async fn start(dir: &std::path::Path, yaml: &str) -> LoggedServe {
        let config = dir.join("switchboard.yaml");
        std::fs::write(&config, yaml).expect("write the config");
        let mut failures = Vec::new();
        for attempt in 0..3 {
            let log = dir.join(format!("switchboard-{attempt}.log"));
            let port = support::free_port();
            let out = std::fs::File::create(&log).expect("create the log");
            let err = out.try_clone().expect("clone the log handle");
            let mut command = std::process::Command::new(support::switchboard_bin());
            command
                .arg("--config")
                .arg(&config)
                .arg("serve")
                .arg("--bind")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(dir.join("data"))
                .env("SWITCHBOARD_BIN", support::switchboard_bin())
                .env("OTEL_SDK_DISABLED", "true")
                .env("NO_COLOR", "1")
                .env("RUST_LOG", "info,rmcp=warn")
                .stdin(std::process::Stdio::null())
                .stdout(out)
                .stderr(err);
            for var in [
                "SWITCHBOARD_CONFIG",
                "SWITCHBOARD_BIND",
                "SWITCHBOARD_DATABASE_URL",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            ] {
                command.env_remove(var);
            }
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            let child = command.spawn().expect("start switchboard serve");
            let mut serve = LoggedServe {
                child,
                base: format!("http://127.0.0.1:{port}"),
                log,
                mcp_pids: Default::default(),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("http client"),
            };
            match serve
                .wait_healthy(&format!("address=127.0.0.1:{port}"))
                .await
            {
                Ok(()) => return serve,
                Err(why) => failures.push(format!("port {port}: {why}\n{}", serve.log_text())),
            }
        }
        panic!(
            "switchboard serve never became healthy:\n{}",
            failures.join("\n")
        );
    }

    /// Poll `/healthz` once our own log says we listen on `address` (another test may have
    /// taken the port between our probe and the child's bind).
    async fn wait_healthy(&mut self, address: &str) -> Result<(), String> {
        let deadline = Instant::now() + SETTLE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(format!("exited early ({status})"));
            }
            if self.log_text().contains(address) {
                let answer = self.http.get(format!("{}/healthz", self.base)).send().await;
                if answer.is_ok_and(|r| r.status().is_success()) {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("no answer on /healthz within {SETTLE:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The log as written, bytes that are not UTF-8 shown as U+FFFD.
    fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// `server`'s entry of `GET /api/mcp/servers` (remembering its pid for the clean-up).
    async fn server(&mut self, server: &str) -> serde_json::Value {
        let body: serde_json::Value = self
            .http
            .get(format!("{}/api/mcp/servers", self.base))
            .send()
            .await
            .expect("GET /api/mcp/servers")
            .json()
            .await
            .expect("a JSON server list");
        let entry = body["servers"]
            .as_array()
            .and_then(|list| list.iter().find(|s| s["name"] == server))
            .cloned()
            .unwrap_or_else(|| panic!("no server `{server}` in {body:#}"));
        if let Some(pid) = entry["pid"].as_u64() {
            self.mcp_pids.insert(pid as u32);
        }
        entry
    }

    /// `server`'s stderr tail from the status API.
    async fn stderr_tail(&mut self, server: &str) -> Vec<String> {
        let entry = self.server(server).await;
        entry["stderr_tail"]
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Poll `server`'s stderr tail until `done` holds for it, or panic with `what`.
    async fn tail_when(
        &mut self,
        server: &str,
        what: &str,
        done: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let tail = self.stderr_tail(server).await;
            if done(&tail) {
                return tail;
            }
            assert!(
                Instant::now() < deadline,
                "`{server}`'s stderr tail never got to: {what}\n{tail:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for LoggedServe {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + SOON;
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::killpg(pid, Signal::SIGKILL);
        for child in &self.mcp_pids {
            let _ = nix::sys::signal::killpg(Pid::from_raw(*child as i32), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number before `suffix` in `line` (`199,800 stderr lines…`), thousands separators allowed.
fn count_before(line: &str, suffix: &str) -> Option<u64> {
    let head = &line[..line.find(suffix)?];
    let digits: String = head
        .trim_end()
        .rsplit(' ')
        .next()?
        .chars()
        .filter(|c| *c != ',')
        .collect();
    digits.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stderr_flood_is_rate_limited_with_a_count_and_the_tail_stays_current() {
    const LINES: u64 = 200_000;
    let config = yaml(&[testkit(
        "flood",
        &format!(
            "    env:\n      SWITCHBOARD_TESTKIT_MODE: stderr-flood\n      \
             SWITCHBOARD_TESTKIT_STDERR_LINES: '{LINES}'\n"
        ),
    )]);
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut serve = LoggedServe::start(dir.path(), &config).await;
    let last = format!("stderr flood line {LINES} of {LINES}");

    // The tail is complete and current: the last lines, in order, nothing left out.
    let tail = serve
        .tail_when("flood", &last, |tail| tail.last() == Some(&last))
        .await;
    let expected: Vec<String> = (LINES + 1 - switchboard::mcp::process::STDERR_TAIL_LINES as u64
        ..=LINES)
        .map(|i| format!("stderr flood line {i} of {LINES}"))
        .collect();
    assert_eq!(tail, expected);

    // Every line is either in the log or in a count of the ones that are not.
    let suffix = "stderr lines from `flood` not logged";
    let (logged, dropped, reports) = {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let log = serve.log_text();
            let logged = log
                .lines()
                .filter(|l| l.contains("stderr flood line "))
                .count() as u64;
            let reports: Vec<String> = log
                .lines()
                .filter(|l| l.contains(suffix))
                .map(str::to_owned)
                .collect();
            let dropped: u64 = reports.iter().filter_map(|l| count_before(l, suffix)).sum();
            if logged + dropped >= LINES || Instant::now() >= deadline {
                break (logged, dropped, reports);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let elapsed = started.elapsed().as_secs() + 1;
    let bound = u64::from(switchboard::mcp::process::STDERR_LOG_BURST)
        + u64::from(switchboard::mcp::process::STDERR_LOG_PER_SECOND) * elapsed;
    assert!(
        logged <= bound,
        "{logged} flood lines reached the log in {elapsed} s; at most {bound} may"
    );
    assert!(logged > 0, "the first lines of a flood are logged");
    assert!(
        logged + dropped >= LINES,
        "{logged} logged + {dropped} counted as not logged < {LINES} written: {reports:#?}"
    );
    assert!(
        reports
            .iter()
            .all(|r| r.contains(" WARN ") && r.contains("in the last ")),
        "{reports:#?}"
    );
    // The server itself is fine: a flood of stderr is not a fault of the session.
    assert_eq!(serve.server("flood").await["status"], "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_from_a_child_are_escaped_in_the_log_and_the_tail() {
    let config = yaml(&[testkit(
        "forger",
        "    env:\n      SWITCHBOARD_TESTKIT_MODE: stderr-forge\n",
    )]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut serve = LoggedServe::start(dir.path(), &config).await;
    let done = "testkit: stderr-forge done".to_owned();
    let tail = serve
        .tail_when("forger", &done, |tail| tail.contains(&done))
        .await;
    let escaped = [
        r"ok\rFORGED",
        r"\x1b[31mred\x1b[0m \x1b]0;title\x07",
        r"bidi \u{202e}desrever\u{202c} isolate \u{2066}x\u{2069}",
        r"c1 \u{9b}31m nul \x00 bs \x08 del \x7f",
    ];
    assert_eq!(
        switchboard_mcp_servers::testkit::FORGED_STDERR.len(),
        escaped.len()
    );
    for line in escaped {
        assert!(tail.iter().any(|t| t == line), "{line} not in {tail:#?}");
    }
    // Shut down first so the log is complete, then read it whole.
    let log_path = serve.log.clone();
    drop(serve);
    let log =
        String::from_utf8_lossy(&std::fs::read(&log_path).expect("read the log")).into_owned();
    for line in escaped {
        assert!(log.contains(line), "{line} is not in the log:\n{log}");
    }
    let raw: Vec<(usize, char)> = log
        .char_indices()
        .filter(|(_, c)| {
            (c.is_control() && *c != '\n' && *c != '\t')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(
        raw.is_empty(),
        "raw control characters in the log: {raw:?}\n{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_credentials_reach_a_child_only_when_its_config_asks() {
    let with_credentials = [
        ("HTTPS_PROXY", "http://user:pass@proxy.invalid:3128"),
        ("http_proxy", "http://alice:s3cret@proxy.invalid:3128"),
        ("ALL_PROXY", "socks5://bob:hunter2@proxy.invalid:1080"),
        ("https_proxy", "carol:pw@proxy.invalid:3128"),
    ];
    let without = [
        ("HTTP_PROXY", "http://proxy.invalid:3128"),
        ("all_proxy", "socks5://proxy.invalid:1080"),
        ("NO_PROXY", "localhost,127.0.0.1"),
    ];
    let config = yaml(&[
        testkit("plain", ""),
        // What `HTTPS_PROXY: ${HTTPS_PROXY}` gives it: our own value, listed explicitly.
        testkit(
            "asks",
            &format!(
                "    env:\n      HTTPS_PROXY: '{}'\n      http_proxy: '{}'\n",
                with_credentials[0].1, with_credentials[1].1
            ),
        ),
    ]);
    let env: Vec<(&str, &str)> = with_credentials.iter().chain(&without).copied().collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = TestHub::start_in(dir, &config, SETTLE, &env).await;
    assert_ready(&hub, "plain");
    assert_ready(&hub, "asks");

    let plain = environ(pid_of(&hub, "plain"));
    for (key, _) in with_credentials {
        assert!(!plain.contains_key(key), "{key} reached `plain`: {plain:?}");
    }
    for (key, value) in without {
        assert_eq!(plain.get(key).map(String::as_str), Some(value), "{plain:?}");
    }
    assert!(
        plain.values().all(|v| !v.contains('@')),
        "credentials reached `plain` under another name: {plain:?}"
    );

    let asks = environ(pid_of(&hub, "asks"));
    assert_eq!(
        asks.get("HTTPS_PROXY").map(String::as_str),
        Some(with_credentials[0].1)
    );
    assert_eq!(
        asks.get("http_proxy").map(String::as_str),
        Some(with_credentials[1].1)
    );
    assert!(!asks.contains_key("ALL_PROXY"), "{asks:?}");
    assert!(!asks.contains_key("https_proxy"), "{asks:?}");
    assert_eq!(
        asks.get("HTTP_PROXY").map(String::as_str),
        Some(without[0].1)
    );
    hub.hub.mcp().shutdown().await;
}
