//! What the process environment does at start-up, through the real binary with no subcommand
//! (plain `cargo run`): `SWITCHBOARD_BIND` is honoured when valid and refused, naming the
//! variable and the value, when not.
//!
//! Every child runs in a temporary directory with a config of its own, an empty data dir and
//! telemetry off, and is killed when the test ends (also when it fails).

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::support;

/// Longest wait for the binary to exit or to answer.
const PATIENCE: Duration = Duration::from_secs(30);

/// Variables of ours that would change what the child does.
const OURS: &[&str] = &[
    "SWITCHBOARD_CONFIG",
    "SWITCHBOARD_BIND",
    "SWITCHBOARD_DATA_DIR",
    "SWITCHBOARD_WEB_DIR",
    "SWITCHBOARD_DATABASE_URL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

/// A config in `dir` binding `bind`, with its data under `dir/data` and no servers or agents.
fn write_config(dir: &Path, bind: &str) -> std::path::PathBuf {
    let path = dir.join("switchboard.yaml");
    let agents = dir.join("agents");
    std::fs::create_dir_all(&agents).expect("create the agents dir");
    let text = format!(
        "server:\n  bind: '{bind}'\n  data_dir: '{}'\nagents_dir: '{}'\nmcpServers: {{}}\n",
        dir.join("data").display(),
        agents.display()
    );
    std::fs::write(&path, text).expect("write the config");
    path
}

/// `switchboard --config CONFIG` (no subcommand) in `dir`, with `SWITCHBOARD_BIND=bind`.
fn spawn(dir: &Path, config: &Path, bind: &str) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(support::switchboard_bin());
    command.arg("--config").arg(config).current_dir(dir);
    for var in OURS {
        command.env_remove(var);
    }
    command
        .env("SWITCHBOARD_BIND", bind)
        .env("OTEL_SDK_DISABLED", "true")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start switchboard")
}

/// The child's exit status and stderr, or `None` (after killing it) when it is still running
/// after `limit`.
async fn exit_within(
    child: &mut tokio::process::Child,
    limit: Duration,
) -> Option<(ExitStatus, String)> {
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let mut text = String::new();
    let finished = tokio::time::timeout(limit, async {
        let _ = stderr.read_to_string(&mut text).await;
        child.wait().await.expect("wait for switchboard")
    })
    .await;
    match finished {
        Ok(status) => Some((status, text)),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    }
}

#[tokio::test]
async fn a_malformed_bind_variable_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::free_port();
    let config = write_config(dir.path(), &format!("127.0.0.1:{port}"));
    let mut child = spawn(dir.path(), &config, "not-an-address");
    let Some((status, stderr)) = exit_within(&mut child, PATIENCE).await else {
        panic!(
            "switchboard was still running {PATIENCE:?} after starting with SWITCHBOARD_BIND=not-an-address"
        );
    };
    assert!(!status.success(), "exited with {status}: {stderr}");
    assert!(
        stderr.contains("SWITCHBOARD_BIND") && stderr.contains("not-an-address"),
        "the error names neither the variable nor its value:\n{stderr}"
    );
}

#[tokio::test]
async fn a_valid_bind_variable_beats_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file_port = support::free_port();
    let config = write_config(dir.path(), &format!("127.0.0.1:{file_port}"));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    // A port taken between our probe and the child's bind makes the child exit: try another.
    let mut failures = Vec::new();
    for _ in 0..3 {
        let port = support::free_port();
        let mut child = spawn(dir.path(), &config, &format!("127.0.0.1:{port}"));
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                let (_, stderr) = exit_within(&mut child, PATIENCE)
                    .await
                    .unwrap_or((status, String::new()));
                failures.push(format!("port {port}: exited with {status}: {stderr}"));
                break;
            }
            let answer = http
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                let _ = child.kill().await;
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill().await;
                panic!("nothing answered on the SWITCHBOARD_BIND port {port} within {PATIENCE:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!(
        "switchboard never served SWITCHBOARD_BIND:\n{}",
        failures.join("\n")
    );
}
