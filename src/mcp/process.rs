//! Child processes of stdio MCP servers: spawning with a clean environment in their own process
//! group, capturing stderr, and shutting the whole group down without leaving zombies or orphans.
//!
//! This is the only place in Switchboard that starts processes. It does not speak MCP: the
//! transport gets the child's stdin/stdout and this module keeps the rest.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Variables a child inherits from our environment; everything else (API keys, our own
/// configuration) stays with us. Values come from the configured `env` on top of these.
const INHERITED_ENV: &[&str] = &[
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
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// How many stderr lines are kept per server for the status API and error messages.
pub const STDERR_TAIL_LINES: usize = 40;
/// Longest stderr line kept; longer lines are cut so a noisy child cannot grow our memory.
const STDERR_LINE_MAX: usize = 2048;
/// Time a child gets to exit by itself after its stdin closes, before SIGTERM.
const EXIT_GRACE: Duration = Duration::from_millis(1500);
/// Time between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// What to run; built from the stdio transport config plus the data dir.
#[derive(Debug, Clone)]
pub struct SpawnSpec<'a> {
    pub server: &'a str,
    pub command: &'a str,
    pub args: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub cwd: Option<&'a Path>,
    /// Our environment, looked up only for [`INHERITED_ENV`].
    pub inherited: &'a [(String, String)],
    /// Extra variables we give every child (e.g. `SWITCHBOARD_DATA_DIR`).
    pub extra: &'a [(String, String)],
}

/// How a child ended, as shown to users ("code 3", "signal 9").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo(pub String);

impl ExitInfo {
    fn from_status(status: &ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitInfo(format!("code {code}")),
            (None, Some(signal)) => ExitInfo(format!("signal {signal}")),
            _ => ExitInfo("unknown status".to_owned()),
        }
    }
}

/// The last lines a child wrote to stderr, shared between the reader task and the status API.
#[derive(Debug, Clone, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    /// A copy of the kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    fn push(&self, line: String) {
        let mut lines = self.lock();
        if lines.len() == STDERR_TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        // A poisoned tail only means a reader panicked mid-push; the lines are still usable.
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

/// A running child: its pipes for the transport, and a handle that owns its lifetime.
pub struct SpawnedChild {
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub process: ChildProcess,
}

/// Owns a child process group. Dropping it without [`ChildProcess::shutdown`] still kills the
/// group (SIGKILL) so a panic or an early return cannot leave an orphan behind.
pub struct ChildProcess {
    pid: Option<Pid>,
    exit: watch::Receiver<Option<ExitInfo>>,
    stop: CancellationToken,
    reaper: Option<tokio::task::JoinHandle<()>>,
}

/// Spawn a stdio server in its own process group with a clean environment.
///
/// # Errors
/// When the program cannot be started (not found, not executable, bad cwd).
pub fn spawn(spec: &SpawnSpec<'_>, stderr_tail: &StderrTail) -> std::io::Result<SpawnedChild> {
    let mut command = Command::new(spec.command);
    command
        .args(spec.args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (key, value) in spec.inherited {
        if INHERITED_ENV.contains(&key.as_str()) {
            command.env(key, value);
        }
    }
    for (key, value) in spec.extra {
        command.env(key, value);
    }
    command.envs(spec.env);
    if let Some(cwd) = spec.cwd {
        command.current_dir(cwd);
    }
    let mut child = command.spawn()?;
    let pid = child.id().map(|id| Pid::from_raw(id as i32));
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("child pipes were not created"));
    };
    tokio::spawn(read_stderr(
        spec.server.to_owned(),
        stderr,
        stderr_tail.clone(),
    ));
    let (exit_tx, exit) = watch::channel(None);
    let stop = CancellationToken::new();
    let reaper = tokio::spawn(reap(child, pid, stop.clone(), exit_tx));
    Ok(SpawnedChild {
        stdin,
        stdout,
        process: ChildProcess {
            pid,
            exit,
            stop,
            reaper: Some(reaper),
        },
    })
}

impl ChildProcess {
    /// OS process id, for logs and tests.
    pub fn pid(&self) -> Option<u32> {
        self.pid.map(|pid| pid.as_raw() as u32)
    }

    /// A receiver that turns `Some` once the child has exited and been reaped.
    pub fn exit_watch(&self) -> watch::Receiver<Option<ExitInfo>> {
        self.exit.clone()
    }

    /// Stop the child: the caller has already closed its stdin (by closing the transport); wait a
    /// little for a clean exit, then SIGTERM the group, then SIGKILL it, and reap.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(reaper) = self.reaper.take() {
            let _ = reaper.await;
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.reaper.is_some() {
            self.stop.cancel();
            if let Some(pid) = self.pid {
                // Best effort: the reaper task may already be gone with the runtime.
                let _ = killpg(pid, Signal::SIGKILL);
            }
        }
    }
}

async fn reap(
    mut child: Child,
    pid: Option<Pid>,
    stop: CancellationToken,
    exit_tx: watch::Sender<Option<ExitInfo>>,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        () = stop.cancelled() => terminate(&mut child, pid).await,
    };
    // Grandchildren may still run in the group after the leader exits; none may outlive it.
    if let Some(pid) = pid {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    let info = match status {
        Ok(status) => ExitInfo::from_status(&status),
        Err(err) => ExitInfo(format!("unknown status ({err})")),
    };
    let _ = exit_tx.send(Some(info));
}

async fn terminate(child: &mut Child, pid: Option<Pid>) -> std::io::Result<ExitStatus> {
    if let Ok(status) = tokio::time::timeout(EXIT_GRACE, child.wait()).await {
        return status;
    }
    if let Some(pid) = pid {
        let _ = killpg(pid, Signal::SIGTERM);
    }
    if let Ok(status) = tokio::time::timeout(TERM_GRACE, child.wait()).await {
        return status;
    }
    if let Some(pid) = pid {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    child.kill().await?;
    child.wait().await
}

async fn read_stderr(server: String, stderr: impl AsyncRead + Unpin, tail: StderrTail) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match read_line_capped(&mut reader, &mut buf, STDERR_LINE_MAX).await {
            Ok(0) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end();
                tracing::info!(target: "switchboard::mcp::stderr", server = %server, "{line}");
                tail.push(line.to_owned());
            }
            Err(_) => break,
        }
    }
}

/// Read one line, keeping at most `max` bytes of it and discarding the rest, so a child that
/// never writes a newline to stderr costs bounded memory.
async fn read_line_capped(
    reader: &mut BufReader<impl AsyncRead + Unpin>,
    out: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(total);
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(newline) => (&available[..newline], Some(newline + 1)),
            None => (available, None),
        };
        let room = max.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let consumed = done.unwrap_or(available.len());
        reader.consume(consumed);
        total += consumed;
        if done.is_some() {
            return Ok(total);
        }
    }
}
