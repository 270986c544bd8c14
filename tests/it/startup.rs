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
    // Port 0: the child picks a free port and logs it, so no port can be taken in between.
    let mut child = spawn(dir.path(), &config, "127.0.0.1:0");
    let address = tokio::time::timeout(PATIENCE, listening_address(&mut child))
        .await
        .unwrap_or_else(|_| panic!("switchboard did not say where it listens within {PATIENCE:?}"));
    assert!(
        address.starts_with("127.0.0.1:") && !address.ends_with(&format!(":{file_port}")),
        "it listens on {address}, not on the SWITCHBOARD_BIND address (the file says port {file_port})"
    );
    let answer = reqwest::get(format!("http://{address}/healthz"))
        .await
        .expect("GET /healthz on the SWITCHBOARD_BIND address");
    assert!(answer.status().is_success(), "{}", answer.status());
    let _ = child.kill().await;
}

/// The `address=` of the child's "switchboard listening" log line, read from its stderr as it
/// is written; panics with what it wrote if it exits first.
async fn listening_address(child: &mut tokio::process::Child) -> String {
    use tokio::io::AsyncBufReadExt;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    while let Some(line) = lines.next_line().await.expect("read stderr") {
        if line.contains("switchboard listening")
            && let Some(address) = line
                .split_whitespace()
                .find_map(|field| field.strip_prefix("address="))
        {
            return address.to_owned();
        }
        seen.push(line);
    }
    panic!("switchboard exited before listening:\n{}", seen.join("\n"));
}
