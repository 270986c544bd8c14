//! Getting the first keys, and where an open server may listen: `SWITCHBOARD_ADMIN_KEY`
//! authenticates as the administrator (and a near miss does not); `switchboard keys create`
//! prints a key once that the server then accepts, `keys list` never shows its secret, and
//! `keys revoke` makes the running server refuse it within the refresh interval; an unknown
//! role is refused with a message naming the roles there are. `serve` with `auth: none`
//! refuses a non-loopback address, saying why, and starts there with `auth: keys`.
//!
//! The command-line tests run the real binary in a temporary directory with a config of its
//! own, an empty environment of ours, and a kill when the test ends.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use super::{Auth, Client, PATIENCE, shared, write_config};
use crate::support;

/// Variables of ours that would change what the binary does.
const OURS: &[&str] = &[
    "SWITCHBOARD_CONFIG",
    "SWITCHBOARD_BIND",
    "SWITCHBOARD_DATA_DIR",
    "SWITCHBOARD_WEB_DIR",
    "SWITCHBOARD_DATABASE_URL",
    "SWITCHBOARD_ADMIN_KEY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

/// `switchboard --config CONFIG ARGS…` in the config's directory, without our variables.
fn command(config: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(support::switchboard_bin());
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(config.parent().expect("the config is in a directory"));
    for var in OURS {
        command.env_remove(var);
    }
    command
        .env("OTEL_SDK_DISABLED", "true")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Run the binary to its end: exit status, stdout, stderr.
async fn run(config: &Path, args: &[&str]) -> (ExitStatus, String, String) {
    let output = tokio::time::timeout(PATIENCE, command(config, args).output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "`switchboard {}` ran longer than {PATIENCE:?}",
                args.join(" ")
            )
        })
        .expect("run switchboard");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Run the binary, expecting it to succeed; its stdout.
async fn run_ok(config: &Path, args: &[&str]) -> String {
    let (status, stdout, stderr) = run(config, args).await;
    assert!(
        status.success(),
        "`switchboard {}` exited with {status}:\n{stdout}\n{stderr}",
        args.join(" ")
    );
    stdout
}

/// The line of `keys list` for key `id`, split into its columns.
fn listed(list: &str, id: &str) -> Vec<String> {
    list.lines()
        .find(|line| line.starts_with(id))
        .unwrap_or_else(|| panic!("key {id} is not listed:\n{list}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_environment_admin_key_is_an_administrator_and_a_near_miss_is_not() {
    let client = Client::shared();
    let admin = shared().admin_key.as_str();
    let me = client
        .call(Method::GET, "/api/session", Auth::Bearer(admin), None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    assert_eq!(me.body["user"], "admin", "{me:?}");
    assert_eq!(me.body["admin"], true, "{me:?}");
    let keys = client
        .call(Method::GET, "/api/keys", Auth::Bearer(admin), None)
        .await;
    assert_eq!(keys.status, StatusCode::OK, "an admin-only route: {keys:?}");

    let last = admin.chars().last().expect("a key");
    let near_miss = format!(
        "{}{}",
        &admin[..admin.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    assert_eq!(near_miss.len(), admin.len());
    for path in ["/api/session", "/api/keys"] {
        let answer = client
            .call(Method::GET, path, Auth::Bearer(&near_miss), None)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "GET {path} with the admin key off by its last character: {answer:?}"
        );
    }
}

#[tokio::test]
async fn keys_made_on_the_command_line_work_until_revoked_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "mcpServers: {}\n");
    let created = run_ok(
        &config,
        &[
            "keys",
            "create",
            "--user",
            "carol",
            "--role",
            "user",
            "--expires",
            "30d",
        ],
    )
    .await;
    let token = created.lines().next().unwrap_or_default().trim().to_owned();
    assert!(token.starts_with("sb_"), "the key comes first:\n{created}");
    let id = switchboard::access::key_id_of(&token)
        .unwrap_or_else(|| panic!("not an `sb_<id>_<secret>` key: {token}"))
        .to_owned();
    let secret = &token[16..];

    let list = run_ok(&config, &["keys", "list"]).await;
    assert!(
        !list.contains(secret),
        "`keys list` shows the secret:\n{list}"
    );
    let columns = listed(&list, &id);
    assert_eq!(&columns[1..4], ["carol", "user", "active"], "{list}");
    let (created_at, expires_at): (i64, i64) = (
        columns[4].parse().expect("created (ms)"),
        columns[5].parse().expect("expires (ms)"),
    );
    assert_eq!(
        expires_at - created_at,
        30 * 86_400 * 1000,
        "--expires 30d: {list}"
    );

    let server = support::InProcessServer::start(&config).await;
    let client = Client::new(&server.base);
    let me = client
        .call(Method::GET, "/api/session", Auth::Bearer(&token), None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "the CLI's key works: {me:?}");
    assert_eq!(
        (&me.body["user"], &me.body["role"]),
        (&serde_json::json!("carol"), &serde_json::json!("user")),
        "{me:?}"
    );

    let revoked = run_ok(&config, &["keys", "revoke", &id]).await;
    assert!(revoked.contains(&id), "{revoked}");
    // The server cached the key; it re-checks the database within its refresh interval.
    let deadline = Instant::now() + switchboard::auth::REFRESH + Duration::from_secs(5);
    loop {
        let answer = client
            .call(Method::GET, "/api/session", Auth::Bearer(&token), None)
            .await;
        if answer.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        assert!(
            Instant::now() < deadline,
            "the server still accepts the key the CLI revoked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let list = run_ok(&config, &["keys", "list"]).await;
    assert_eq!(listed(&list, &id)[3], "revoked", "{list}");
    server.stop().await;
}

#[tokio::test]
async fn keys_create_refuses_an_unknown_role_saying_which_there_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "mcpServers: {}\n");
    let (status, stdout, stderr) = run(
        &config,
        &["keys", "create", "--user", "carol", "--role", "nosuchrole"],
    )
    .await;
    assert!(!status.success(), "exited with {status}: {stdout}");
    assert!(
        stderr.contains("no role named `nosuchrole`")
            && stderr.contains("admin")
            && stderr.contains("user"),
        "the error names the role and the roles there are:\n{stderr}"
    );
    assert!(!stdout.contains("sb_"), "no key was printed: {stdout}");
    let list = run_ok(&config, &["keys", "list"]).await;
    assert!(!list.contains("carol"), "no key was made: {list}");
}

/// A config in `dir` binding every address on a free port chosen at bind time, with `auth`.
fn open_config(dir: &Path, auth: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{auth}.yaml"));
    let text = format!(
        "server:\n  bind: '0.0.0.0:0'\n  auth: {auth}\n  data_dir: '{}'\nmcpServers: {{}}\n",
        dir.join("data").display()
    );
    std::fs::write(&path, text).expect("write the config");
    path
}

/// The `address=` of the child's "switchboard listening" log line, read from its stderr as it
/// is written; panics with what it wrote if it exits first.
async fn listening_address(child: &mut tokio::process::Child) -> String {
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

#[tokio::test]
async fn auth_none_refuses_a_non_loopback_bind_and_keys_allow_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let none = open_config(dir.path(), "none");
    let mut child = command(&none, &["serve"])
        .spawn()
        .expect("start switchboard");
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let status = tokio::time::timeout(PATIENCE, async {
        let _ = pipe.read_to_string(&mut stderr).await;
        child.wait().await.expect("wait for switchboard")
    })
    .await
    .unwrap_or_else(|_| panic!("`serve` with auth: none on 0.0.0.0 was still running"));
    assert!(!status.success(), "exited with {status}: {stderr}");
    assert!(
        stderr.contains("auth") && stderr.contains("loopback"),
        "the error says that auth none needs a loopback address:\n{stderr}"
    );

    let keys = open_config(dir.path(), "keys");
    let mut child = command(&keys, &["serve"])
        .spawn()
        .expect("start switchboard");
    let address = tokio::time::timeout(PATIENCE, listening_address(&mut child))
        .await
        .unwrap_or_else(|_| panic!("`serve` with auth: keys did not listen within {PATIENCE:?}"));
    let port = address
        .strip_prefix("0.0.0.0:")
        .unwrap_or_else(|| panic!("it listens on {address}, not on every address"));
    let client = Client::new(&format!("http://127.0.0.1:{port}"));
    let health = client
        .call(Method::GET, "/healthz", Auth::Anonymous, None)
        .await;
    assert_eq!(health.status, StatusCode::OK, "{health:?}");
    let tools = client
        .call(Method::GET, "/api/tools", Auth::Anonymous, None)
        .await;
    assert_eq!(
        tools.status,
        StatusCode::UNAUTHORIZED,
        "and it wants keys: {tools:?}"
    );
    let _ = child.kill().await;
}
