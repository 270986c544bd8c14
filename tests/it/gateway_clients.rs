//! `/mcp` from the clients people use, as separate processes against the real server: the
//! official TypeScript clients of both spec eras (`tests/node/ts-clients.mjs`: SDK 1.x with
//! a 2025-11-25 session, the 2.x client's 2025 handshake, and 2.x pinned to the stateless
//! 2026-07-28 era) and the MCP Inspector's CLI mode. Each lists the catalog and calls a tool;
//! the call is a run Switchboard stored.

use std::path::Path;

use serde_json::Value;

use crate::support::served::Served;
use crate::support::{self};

/// Run `program` with `args` to its end; its stdout as JSON (panics with stderr otherwise).
async fn json_of(program: &Path, args: &[&str], catalog: &Path) -> Value {
    let output = tokio::process::Command::new(program)
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node"))
        // The Inspector keeps a catalog of servers; not in the home directory.
        .env("MCP_CATALOG_PATH", catalog)
        .env("PATH", support::node_bin_dir())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), output)
        .await
        .expect("the client finished in time")
        .expect("the client ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{program:?} {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("{args:?}: not JSON ({err}): {stdout}"))
}

/// The run a result's `_meta` names was stored, and succeeded.
async fn stored(t: &Served, meta: &Value) {
    let id = meta["switchboard/run_id"]
        .as_str()
        .expect("a run id in _meta");
    let run = t.ended(id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["steps"][0]["name"], "calc__evaluate", "{run:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_clients_of_both_eras_and_the_inspector_cli_use_the_gateway() {
    let t = Served::demo(|_| String::new(), 0).await;
    let url = format!("{}/mcp", t.base);
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = dir.path().join("inspector.json");
    let node = support::node_bin_dir().join("node");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/ts-clients.mjs");
    let script = script.to_str().expect("a UTF-8 path");
    for (mode, protocol) in [
        ("sdk1", "2025-11-25"),
        ("legacy", "2025-11-25"),
        ("modern", "2026-07-28"),
    ] {
        let seen = json_of(&node, &[script, &url, mode], &catalog).await;
        assert_eq!(seen["protocol"], protocol, "{seen:#}");
        let names: Vec<&str> = seen["names"]
            .as_array()
            .expect("names")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for expected in [
            "calc__evaluate",
            "clock__now",
            "testkit__sleep",
            "agent__calc",
        ] {
            assert!(
                names.contains(&expected),
                "{mode}: {expected} missing: {names:?}"
            );
        }
        assert_eq!(seen["text"], "42", "{seen:#}");
        assert_eq!(seen["isError"], false, "{seen:#}");
        stored(&t, &seen["meta"]).await;
    }

    let inspector = support::node_bin_dir().join("mcp-inspector");
    let listed = json_of(
        &inspector,
        &["--cli", &url, "--method", "tools/list"],
        &catalog,
    )
    .await;
    assert!(
        listed["tools"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|tool| tool["name"] == "calc__evaluate")),
        "{listed:#}"
    );
    let called = json_of(
        &inspector,
        &[
            "--cli",
            &url,
            "--method",
            "tools/call",
            "--tool-name",
            "calc__evaluate",
            "--tool-arg",
            "expression=6*7",
        ],
        &catalog,
    )
    .await;
    assert_eq!(called["content"][0]["text"], "42", "{called:#}");
    stored(&t, &called["_meta"]).await;
    t.server.stop().await;
}
