//! The bundled servers (clock, calc, notes, files) through the real manager and hub, over stdio
//! and over Streamable HTTP, plus the hub's own duties around them (argument validation, result
//! capping, progress, tool-list changes, catalog caps and filters) driven with `testkit`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use switchboard::hub::{InvokeError, InvokeOutcome};
use switchboard::mcp::{CallOptions, ConnectionState};
use switchboard::tools::DropReason;
use switchboard_mcp_servers::BundledServer;
use tokio_util::sync::CancellationToken;

use crate::support::{self, TestHub, eventually};

/// Long enough for a cold start of four child processes on a busy 2-core machine.
const SETTLE: Duration = Duration::from_secs(20);

/// Every tool each bundled server offers; a change here is a change to what models see.
const CLOCK_TOOLS: &[&str] = &["convert_time", "date_add", "date_diff", "now"];
const CALC_TOOLS: &[&str] = &["evaluate", "evaluate_many"];
const NOTES_TOOLS: &[&str] = &[
    "add_note",
    "delete_note",
    "get_note",
    "list_notes",
    "search_notes",
];
const FILES_TOOLS: &[&str] = &["file_info", "list_directory", "read_file", "search_files"];
const TESTKIT_TOOLS: &[&str] = &[
    "add_tool", "big", "echo", "exit", "fail", "flood", "pid", "rich", "sleep",
];

/// The protocol revision our own servers speak (stateless, no `initialize`).
const OUR_PROTOCOL: &str = "2026-07-28";

/// A shared directory for `files`, with a secret next to (not inside) it.
struct FilesFixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

fn files_fixture() -> FilesFixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("shared");
    std::fs::create_dir_all(root.join("docs")).expect("mkdir");
    std::fs::write(root.join("hello.txt"), "hello from the shared directory\n").expect("write");
    std::fs::write(root.join("docs/guide.md"), "# Guide\n").expect("write");
    std::fs::write(dir.path().join("secret.txt"), "top secret\n").expect("write");
    FilesFixture { _dir: dir, root }
}

fn stdio_yaml(files_root: &Path) -> String {
    let mut yaml = String::from("mcpServers:\n");
    yaml += &support::bundled_stdio("clock", "clock", &[]);
    yaml += &support::bundled_stdio("calc", "calc", &[]);
    // notes keeps its database in $SWITCHBOARD_DATA_DIR, which the hub gives every child.
    yaml += &support::bundled_stdio("notes", "notes", &[]);
    let root = files_root.display().to_string();
    yaml += &support::bundled_stdio("files", "files", &["--root", &root]);
    yaml
}

/// All text blocks of a result, joined by newlines.
fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn assert_ok(outcome: &InvokeOutcome) {
    assert_ne!(
        outcome.result.is_error,
        Some(true),
        "`{}` returned isError: {}",
        outcome.tool.exposed_name,
        text_of(&outcome.result)
    );
}

async fn invoke(hub: &TestHub, name: &str, args: Value) -> InvokeOutcome {
    hub.hub
        .invoke(
            &switchboard::access::Caller::local(),
            name,
            args,
            CallOptions::default(),
        )
        .await
        .unwrap_or_else(|err| panic!("`{name}` failed: {err}"))
}

/// The catalog's tools of `server`, by their original names.
fn catalog_tools(hub: &TestHub, server: &str) -> BTreeSet<String> {
    hub.hub
        .catalog()
        .iter()
        .filter(|entry| entry.server == server)
        .map(|entry| entry.tool_name.clone())
        .collect()
}

/// Status, catalog names and tool counts of one bundled server.
#[track_caller]
fn check_listed(hub: &TestHub, server: &str, transport: &str, tools: &[&str]) {
    let status = hub.status(server);
    assert_eq!(
        status.status,
        ConnectionState::Ready,
        "{server}: {:?}",
        status.last_error
    );
    assert_eq!(status.transport, transport, "{server}");
    assert_eq!(
        status.protocol_version.as_deref(),
        Some(OUR_PROTOCOL),
        "{server}"
    );
    assert_eq!(status.tool_count, tools.len(), "{server}");
    assert_eq!(status.last_error, None, "{server}");
    let expected: BTreeSet<String> = tools.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(catalog_tools(hub, server), expected, "{server}");
    let catalog = hub.hub.catalog();
    for tool in tools {
        let exposed = format!("{server}__{tool}");
        let entry = catalog
            .get(&exposed)
            .unwrap_or_else(|| panic!("`{exposed}` is not in the catalog"));
        assert_eq!(entry.server, server);
        assert_eq!(entry.tool_name, *tool);
    }
}

/// One real call of each bundled server, plus the hub's refusals, on an already started hub.
async fn check_bundled(hub: &TestHub, transport: &str) {
    check_listed(hub, "clock", transport, CLOCK_TOOLS);
    check_listed(hub, "calc", transport, CALC_TOOLS);
    check_listed(hub, "notes", transport, NOTES_TOOLS);
    check_listed(hub, "files", transport, FILES_TOOLS);

    // calc
    let outcome = invoke(hub, "calc__evaluate", json!({"expression": "2*(3+4)"})).await;
    assert_ok(&outcome);
    assert_eq!(text_of(&outcome.result), "14");
    assert!(outcome.truncated.is_none());

    // clock: structured content with the zone's fixed offset (Asia/Kolkata has no DST).
    let outcome = invoke(hub, "clock__now", json!({"timezone": "Asia/Kolkata"})).await;
    assert_ok(&outcome);
    let info = outcome
        .result
        .structured_content
        .clone()
        .unwrap_or_else(|| serde_json::from_str(&text_of(&outcome.result)).expect("json text"));
    assert_eq!(info["timezone"], "Asia/Kolkata", "{info}");
    assert_eq!(info["offset"], "+05:30", "{info}");
    assert!(
        info["time"].as_str().is_some_and(|t| t.ends_with("+05:30")),
        "{info}"
    );
    let unix = info["unix_seconds"].as_i64().expect("unix_seconds");
    let ours = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    assert!((unix - ours).abs() < 120, "server time {unix}, ours {ours}");
    let outcome = invoke(hub, "clock__now", json!({"timezone": "Mars/Olympus"})).await;
    assert_eq!(outcome.result.is_error, Some(true), "unknown zone");

    // notes: add, search, get.
    let marker = format!("{transport}-zebra");
    let outcome = invoke(
        hub,
        "notes__add_note",
        json!({"title": "Striped", "body": format!("the {marker} crossed the road"), "tags": ["animals"]}),
    )
    .await;
    assert_ok(&outcome);
    let added = text_of(&outcome.result);
    let id: i64 = added
        .strip_prefix("added note #")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("unexpected add_note answer: {added}"));
    let outcome = invoke(hub, "notes__search_notes", json!({"query": marker})).await;
    assert_ok(&outcome);
    let found = text_of(&outcome.result);
    assert!(found.contains(&format!("#{id} Striped")), "{found}");
    let outcome = invoke(hub, "notes__get_note", json!({"id": id})).await;
    assert_ok(&outcome);
    let note = text_of(&outcome.result);
    assert!(
        note.starts_with(&format!("#{id} Striped\ntags: animals")),
        "{note}"
    );
    assert!(
        note.ends_with(&format!("the {marker} crossed the road")),
        "{note}"
    );

    // files: list and read inside the root; a way out is a tool error, not a crash.
    let outcome = invoke(hub, "files__list_directory", json!({})).await;
    assert_ok(&outcome);
    let listing = text_of(&outcome.result);
    assert!(listing.contains("[file] hello.txt"), "{listing}");
    assert!(listing.contains("[dir]  docs/"), "{listing}");
    assert!(!listing.contains("secret"), "{listing}");
    let outcome = invoke(hub, "files__read_file", json!({"path": "hello.txt"})).await;
    assert_ok(&outcome);
    assert_eq!(
        text_of(&outcome.result),
        "hello from the shared directory\n"
    );
    for escape in ["../secret.txt", "docs/../../secret.txt"] {
        let outcome = invoke(hub, "files__read_file", json!({"path": escape})).await;
        assert_eq!(outcome.result.is_error, Some(true), "{escape}");
        let message = text_of(&outcome.result);
        assert!(message.contains("escapes"), "{escape}: {message}");
        assert!(!message.contains("top secret"), "{escape}: {message}");
    }

    // The hub refuses bad arguments itself, with JSON pointers; the server never sees them
    // (a server-side refusal would be `McpError::Protocol`, not `InvalidArguments`).
    let err = hub
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "calc__evaluate",
            json!({"expression": 5}),
            CallOptions::default(),
        )
        .await
        .expect_err("a number is not an expression");
    let InvokeError::InvalidArguments { tool, errors } = err else {
        panic!("expected InvalidArguments, got {err:?}");
    };
    assert_eq!(tool, "calc__evaluate");
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["/expression"], "{errors:?}");
    let err = hub
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "calc__evaluate_many",
            json!({"expressions": ["1+1", 2, "3"]}),
            CallOptions::default(),
        )
        .await
        .expect_err("2 is not a string");
    let InvokeError::InvalidArguments { errors, .. } = err else {
        panic!("expected InvalidArguments, got {err:?}");
    };
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["/expressions/1"], "{errors:?}");
    let err = hub
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "notes__get_note",
            json!({}),
            CallOptions::default(),
        )
        .await
        .expect_err("id is required");
    let InvokeError::InvalidArguments { errors, .. } = err else {
        panic!("expected InvalidArguments, got {err:?}");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "", "{errors:?}");
    assert!(errors[0].message.contains("id"), "{errors:?}");

    let err = hub
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "calc__nope",
            json!({}),
            CallOptions::default(),
        )
        .await
        .expect_err("no such tool");
    assert!(
        matches!(&err, InvokeError::UnknownTool { name } if name == "calc__nope"),
        "{err:?}"
    );
    // The exposed name is the only way in: the bare tool name is not routed.
    let err = hub
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "evaluate",
            json!({"expression": "1"}),
            CallOptions::default(),
        )
        .await
        .expect_err("bare names are not exposed");
    assert!(matches!(err, InvokeError::UnknownTool { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_servers_over_stdio() {
    let files = files_fixture();
    let yaml = stdio_yaml(&files.root);
    let hub = TestHub::start(&yaml, SETTLE).await;
    check_bundled(&hub, "stdio").await;
    for server in ["clock", "calc", "notes", "files"] {
        assert!(hub.status(server).pid.is_some(), "{server} has a pid");
    }

    // Notes persist across a hub restart with the same data dir (new child processes).
    let old_pid = hub.status("notes").pid;
    assert!(hub.dir.path().join("notes.sqlite").exists());
    let hub = hub.restart(&yaml, SETTLE).await;
    check_listed(&hub, "notes", "stdio", NOTES_TOOLS);
    assert_ne!(hub.status("notes").pid, old_pid, "notes was restarted");
    let outcome = invoke(&hub, "notes__search_notes", json!({"query": "stdio-zebra"})).await;
    assert_ok(&outcome);
    let found = text_of(&outcome.result);
    assert!(found.contains("Striped"), "{found}");
    hub.hub.mcp().shutdown().await;
}

/// Bundled servers served in-process over Streamable HTTP on port 0; stopped on drop.
struct HttpServers {
    cancel: CancellationToken,
    urls: Vec<(String, String)>,
}

impl Drop for HttpServers {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn serve_http(servers: Vec<(&str, BundledServer)>) -> HttpServers {
    let cancel = CancellationToken::new();
    let mut urls = Vec::new();
    for (name, server) in servers {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let port = listener.local_addr().expect("local addr").port();
        let shutdown = cancel.clone();
        tokio::spawn(async move {
            if let Err(err) = switchboard_mcp_servers::serve_http(server, listener, shutdown).await
            {
                panic!("bundled http server failed: {err}");
            }
        });
        urls.push((name.to_owned(), format!("http://127.0.0.1:{port}/mcp")));
    }
    HttpServers { cancel, urls }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_servers_over_streamable_http() {
    let files = files_fixture();
    let state = tempfile::tempdir().expect("tempdir");
    let servers = serve_http(vec![
        ("clock", BundledServer::Clock),
        ("calc", BundledServer::Calc),
        (
            "notes",
            BundledServer::Notes {
                db_path: state.path().join("notes.sqlite"),
            },
        ),
        (
            "files",
            BundledServer::Files {
                root: files.root.clone(),
            },
        ),
    ])
    .await;
    let mut yaml = String::from("mcpServers:\n");
    for (name, url) in &servers.urls {
        yaml += &format!("  {name}:\n    url: {url}\n");
    }
    let hub = TestHub::start(&yaml, SETTLE).await;
    check_bundled(&hub, "streamable-http").await;
    for server in ["clock", "calc", "notes", "files"] {
        assert_eq!(hub.status(server).pid, None, "{server} is remote");
    }
    hub.hub.mcp().shutdown().await;
}

fn testkit_yaml(tools_section: &str, servers: &[(&str, &str)]) -> String {
    let mut yaml = format!("{tools_section}mcpServers:\n");
    for (name, extra) in servers {
        yaml += &support::bundled_stdio(name, "testkit", &[]);
        yaml += extra;
    }
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_results_are_truncated_and_rich_content_is_kept() {
    let limit = 4096;
    let yaml = testkit_yaml(
        &format!("tools:\n  max_result_bytes: {limit}\n"),
        &[("testkit", "")],
    );
    let hub = TestHub::start(&yaml, SETTLE).await;
    check_listed(&hub, "testkit", "stdio", TESTKIT_TOOLS);

    let outcome = invoke(&hub, "testkit__big", json!({"bytes": 100_000})).await;
    assert_ok(&outcome);
    let truncation = outcome.truncated.clone().expect("a 100 kB result is cut");
    assert_eq!(truncation.limit_bytes, limit);
    assert!(
        truncation.original_bytes > 100_000,
        "original size {} counts the whole result",
        truncation.original_bytes
    );
    let size = serde_json::to_vec(&outcome.result).expect("json").len();
    assert!(size <= limit, "capped result is {size} bytes");
    let marker = outcome
        .result
        .content
        .last()
        .and_then(|block| block.as_text())
        .map(|t| t.text.clone())
        .expect("a text marker ends the result");
    assert!(
        marker.contains(&truncation.original_bytes.to_string()),
        "{marker}"
    );
    let kept = outcome.result.content[0]
        .as_text()
        .expect("the text is kept, cut")
        .text
        .clone();
    // Newlines cost two bytes each in JSON, not six: most of the budget holds text.
    assert!(
        kept.len() > limit * 3 / 4,
        "most of the budget is used: {}",
        kept.len()
    );
    assert!(kept.starts_with("abcdefghijklmnopqrstuvwxyz"), "{kept:.80}");

    // Under the limit, nothing is touched.
    let outcome = invoke(&hub, "testkit__big", json!({"bytes": 1000})).await;
    assert!(outcome.truncated.is_none());
    assert_eq!(text_of(&outcome.result).len(), 1000);

    // Every content kind survives the hub, in order, with the structured content.
    let outcome = invoke(&hub, "testkit__rich", json!({})).await;
    assert_ok(&outcome);
    assert!(outcome.truncated.is_none());
    let content = &outcome.result.content;
    assert_eq!(content.len(), 4, "{content:?}");
    assert_eq!(
        content[0].as_text().map(|t| t.text.as_str()),
        Some("rich result")
    );
    let image = content[1].as_image().expect("image block");
    assert_eq!(image.mime_type, "image/png");
    assert!(!image.data.is_empty());
    let audio = content[2].as_audio().expect("audio block");
    assert_eq!(audio.mime_type, "audio/wav");
    assert!(!audio.data.is_empty());
    let resource = content[3].as_resource().expect("embedded resource block");
    let resource = serde_json::to_value(&resource.resource).expect("json");
    assert_eq!(resource["uri"], "testkit://rich/resource.txt", "{resource}");
    assert_eq!(resource["text"], "embedded resource text", "{resource}");
    assert_eq!(
        outcome.result.structured_content,
        Some(json!({"kinds": ["text", "image", "audio", "resource"], "answer": 42}))
    );
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_tool_list_changes_reach_the_hub() {
    let yaml = testkit_yaml("", &[("testkit", "")]);
    let hub = TestHub::start(&yaml, SETTLE).await;
    check_listed(&hub, "testkit", "stdio", TESTKIT_TOOLS);

    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let outcome = hub
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "testkit__sleep",
            json!({"ms": 500, "steps": 5}),
            CallOptions {
                progress: Some(tx),
                ..CallOptions::default()
            },
        )
        .await
        .expect("sleep");
    assert_ok(&outcome);
    assert_eq!(text_of(&outcome.result), "slept 500 ms");
    let mut seen = Vec::new();
    while let Ok(progress) = rx.try_recv() {
        seen.push(progress);
    }
    // The last tick may race the response; the first four come 100 ms apart before it.
    assert!(seen.len() >= 3, "progress: {seen:?}");
    for (i, progress) in seen.iter().enumerate() {
        assert_eq!(progress.total, Some(5.0), "{seen:?}");
        assert!(
            i == 0 || progress.progress > seen[i - 1].progress,
            "{seen:?}"
        );
        let step = progress.progress as u32;
        assert_eq!(
            progress.message.as_deref(),
            Some(format!("step {step} of 5").as_str())
        );
    }

    // A tool registered at runtime shows up in the catalog once the server says so.
    let outcome = invoke(&hub, "testkit__add_tool", json!({"name": "late_echo"})).await;
    assert_ok(&outcome);
    eventually(
        Duration::from_secs(10),
        "testkit__late_echo in the catalog",
        || hub.hub.catalog().get("testkit__late_echo").is_some(),
    )
    .await;
    assert_eq!(hub.status("testkit").tool_count, TESTKIT_TOOLS.len() + 1);
    let outcome = invoke(&hub, "testkit__late_echo", json!({"message": "hello late"})).await;
    assert_ok(&outcome);
    assert_eq!(text_of(&outcome.result), "hello late");
    // Its schema came along: it is validated like any other tool.
    let err = hub
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "testkit__late_echo",
            json!({}),
            CallOptions::default(),
        )
        .await
        .expect_err("message is required");
    assert!(
        matches!(err, InvokeError::InvalidArguments { .. }),
        "{err:?}"
    );
    hub.hub.mcp().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_caps_and_filters_apply_per_server() {
    let yaml = testkit_yaml(
        "tools:\n  max_tools_per_server: 50\n",
        &[
            (
                "many",
                "    env:\n      SWITCHBOARD_TESTKIT_TOOLS: \"300\"\n",
            ),
            (
                "picky",
                "    env:\n      SWITCHBOARD_TESTKIT_TOOLS: \"30\"\n    tools:\n      allow: [\"t0*\", \"echo\"]\n      deny: [\"t00*\"]\n",
            ),
        ],
    );
    let hub = TestHub::start(&yaml, SETTLE).await;
    for server in ["many", "picky"] {
        let status = hub.status(server);
        assert_eq!(
            status.status,
            ConnectionState::Ready,
            "{server}: {:?}",
            status.last_error
        );
    }
    let catalog = hub.hub.catalog();

    // 300 extra tools + 8 own ones, capped at 50 in name order; the rest are dropped, not lost.
    let many = catalog_tools(&hub, "many");
    assert_eq!(many.len(), 50, "{many:?}");
    let expected: BTreeSet<String> = {
        let mut all: Vec<String> = (0..300).map(|i| format!("t{i:03}")).collect();
        all.extend(TESTKIT_TOOLS.iter().map(|t| (*t).to_owned()));
        all.sort();
        all.into_iter().take(50).collect()
    };
    assert_eq!(many, expected);
    let dropped: Vec<_> = catalog.dropped().filter(|d| d.server == "many").collect();
    assert_eq!(dropped.len(), 300 + TESTKIT_TOOLS.len() - 50);
    assert!(
        dropped
            .iter()
            .all(|d| d.reason == DropReason::OverLimit { max: 50 }),
        "{dropped:?}"
    );
    assert!(dropped.iter().all(|d| !many.contains(&d.tool)));

    // allow t0* and echo, then deny t00*: t010..t029 plus echo.
    let picky = catalog_tools(&hub, "picky");
    let mut expected: BTreeSet<String> = (10..30).map(|i| format!("t{i:03}")).collect();
    expected.insert("echo".to_owned());
    assert_eq!(picky, expected);
    let dropped: Vec<_> = catalog.dropped().filter(|d| d.server == "picky").collect();
    let denied_pattern = DropReason::Denied {
        pattern: "t00*".to_owned(),
    };
    let denied: BTreeSet<String> = dropped
        .iter()
        .filter(|d| d.reason == denied_pattern)
        .map(|d| d.tool.clone())
        .collect();
    assert_eq!(denied, (0..10).map(|i| format!("t{i:03}")).collect());
    let not_allowed: BTreeSet<&str> = dropped
        .iter()
        .filter(|d| d.reason == DropReason::NotAllowed)
        .map(|d| d.tool.as_str())
        .collect();
    let expected: BTreeSet<&str> = TESTKIT_TOOLS
        .iter()
        .copied()
        .filter(|t| *t != "echo")
        .collect();
    assert_eq!(not_allowed, expected);
    assert_eq!(dropped.len(), 10 + expected.len(), "{dropped:?}");

    // Filtered tools are not callable, even though the server has them.
    let err = hub
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "picky__sleep",
            json!({"ms": 1}),
            CallOptions::default(),
        )
        .await
        .expect_err("sleep is filtered out");
    assert!(matches!(err, InvokeError::UnknownTool { .. }), "{err:?}");
    let outcome = invoke(&hub, "picky__t015", json!({})).await;
    assert_eq!(text_of(&outcome.result), "t015");
    hub.hub.mcp().shutdown().await;
}
