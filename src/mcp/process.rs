//! Child processes of stdio MCP servers: spawning with a clean environment in their own process
//! group, capturing stderr, and shutting the whole group down without leaving zombies or orphans.
//!
//! This is the only place in Switchboard that starts processes. It does not speak MCP: the
//! transport gets the child's stdin/stdout and this module keeps the rest.

mod stderr;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use stderr::{
    STDERR_LOG_BURST, STDERR_LOG_PER_SECOND, STDERR_REPORT_EVERY, STDERR_TAIL_LINES, StderrTail,
};

/// Variables a child inherits from our environment; everything else (API keys, our own
/// configuration) stays with us. Values come from the configured `env` on top of these.
/// Proxy variables carrying credentials are the exception ([`inherited_env`]).
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
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// Proxy variables (any case) whose value may carry `user:password@`.
const PROXY_URL_VARS: &[&str] = &["http_proxy", "https_proxy", "all_proxy"];

/// Time a child gets to exit by itself after its stdin closes, before SIGTERM.
const EXIT_GRACE: Duration = Duration::from_millis(1500);
/// Time between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// Time a guard gets to end its subtree when asked (it SIGKILLs, so this is plenty), before
/// its group is SIGKILLed.
const GUARD_GRACE: Duration = Duration::from_secs(2);

/// How stdio children are run and remembered; the same for every server of a manager.
#[derive(Debug, Clone, Default)]
pub struct ChildControl {
    /// The `switchboard` binary whose `mcp-guard` mode runs each child (see
    /// [`super::guard`]), so that no descendant outlives us however we end. Only the
    /// `switchboard` binary itself can name one (it passes `/proc/self/exe`); `None` runs the
    /// command directly (a library user, the in-process tests), and then a `kill -9` of this
    /// process leaves whatever ignores stdin EOF to the next start-up sweep.
    pub guard: Option<PathBuf>,
    /// The directory that holds a record of each running child (see [`super::sweep`]), so
    /// the next start-up can end what a crash left; `None` keeps no records.
    pub records: Option<PathBuf>,
}

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
    /// Whether to run it under a guard, and where to record it.
    pub children: &'a ChildControl,
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

/// A running child: its pipes for the transport, and a handle that owns its lifetime.
pub struct SpawnedChild {
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub process: ChildProcess,
}

/// Owns a child process group. Dropping it without [`ChildProcess::shutdown`] still ends the
/// group at once (SIGKILL; a guard is told to end its whole subtree) so a panic or an early
/// return cannot leave an orphan behind.
pub struct ChildProcess {
    pid: Option<Pid>,
    guarded: bool,
    exit: watch::Receiver<Option<ExitInfo>>,
    /// Cancelled by `shutdown`: the graceful stop sequence.
    stop: CancellationToken,
    /// Cancelled on drop: end it now.
    now: CancellationToken,
    reaper: Option<tokio::task::JoinHandle<()>>,
}

/// Spawn a stdio server in its own process group with a clean environment, under a guard when
/// `spec.children` names one, and record it when it names a records directory.
///
/// # Errors
/// When the program cannot be started (not found, not executable, bad cwd).
pub fn spawn(spec: &SpawnSpec<'_>, stderr_tail: &StderrTail) -> std::io::Result<SpawnedChild> {
    let guard = spec.children.guard.as_deref();
    let mut command = match guard {
        Some(guard) => {
            // The guard would only report it once started; this keeps "not found" a spawn error.
            check_program(spec)?;
            let mut command = Command::new(guard);
            command.arg0("switchboard").args(super::guard::guard_args(
                std::process::id(),
                spec.command,
                spec.args,
            ));
            command
        }
        None => {
            let mut command = Command::new(spec.command);
            command.args(spec.args);
            command
        }
    };
    command
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let (inherited, withheld) = inherited_env(spec.inherited, spec.env);
    if !withheld.is_empty() {
        tracing::info!(
            server = %spec.server,
            variables = ?withheld,
            "proxy variables with credentials are not passed to the server; \
             list them under its `env` to pass them"
        );
    }
    command.envs(inherited);
    for (key, value) in spec.extra {
        command.env(key, value);
    }
    command.envs(spec.env);
    if let Some(cwd) = spec.cwd {
        command.current_dir(cwd);
    }
    let mut child = command.spawn()?;
    let pid = child.id().map(|id| Pid::from_raw(id as i32));
    let guarded = guard.is_some();
    let record = spec
        .children
        .records
        .as_deref()
        .zip(child.id())
        .and_then(|(dir, id)| record_child(dir, spec.server, id, guarded));
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("child pipes were not created"));
    };
    tokio::spawn(stderr::read_stderr(
        spec.server.to_owned(),
        stderr,
        stderr_tail.clone(),
    ));
    let (exit_tx, exit) = watch::channel(None);
    let stop = CancellationToken::new();
    let now = CancellationToken::new();
    let held = Held {
        child,
        pid,
        guarded,
        reaped: false,
    };
    let reaper = tokio::spawn(reap(held, stop.clone(), now.clone(), exit_tx, record));
    Ok(SpawnedChild {
        stdin,
        stdout,
        process: ChildProcess {
            pid,
            guarded,
            exit,
            stop,
            now,
            reaper: Some(reaper),
        },
    })
}

/// Write the record of a child we just started; a failure (a full disk, say) only costs the
/// start-up sweep its knowledge of this child, so it is logged, not fatal.
fn record_child(dir: &Path, server: &str, pid: u32, guarded: bool) -> Option<PathBuf> {
    let record = super::sweep::ChildRecord::of_child(server, pid, guarded)?;
    match record.write_to(dir) {
        Ok(path) => Some(path),
        Err(err) => {
            tracing::warn!(server = %server, pid, dir = %dir.display(), error = %err, "could not record the child process; a crash would leave it to outlive us");
            None
        }
    }
}

/// Fail like `execvp` would when the program does not exist or cannot be run, for a program
/// started through the guard (whose own spawn succeeds either way). Only decided when it can
/// be: a path, or a name with a known `PATH`.
fn check_program(spec: &SpawnSpec<'_>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let base = spec.cwd.unwrap_or(Path::new(""));
    let candidates: Vec<PathBuf> = if spec.command.contains('/') {
        vec![base.join(spec.command)]
    } else {
        let path = spec.env.get("PATH").map(String::as_str).or_else(|| {
            spec.inherited
                .iter()
                .find(|(key, _)| key == "PATH")
                .map(|(_, value)| value.as_str())
        });
        let Some(path) = path else {
            return Ok(());
        };
        // An empty entry means the working directory, as for execvp.
        path.split(':')
            .map(|dir| base.join(dir).join(spec.command))
            .collect()
    };
    let mut exists = false;
    for candidate in candidates {
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        if meta.is_file() {
            exists = true;
            if meta.permissions().mode() & 0o111 != 0 {
                return Ok(());
            }
        }
    }
    let errno = if exists {
        nix::errno::Errno::EACCES
    } else {
        nix::errno::Errno::ENOENT
    };
    Err(std::io::Error::from_raw_os_error(errno as i32))
}

/// The variables of our environment a child gets: those of [`INHERITED_ENV`], except proxy
/// URLs with credentials in them (`HTTPS_PROXY=http://user:pass@proxy:3128`), which would hand
/// our proxy account to every server. A server that needs them lists them in its `env`
/// (`HTTPS_PROXY: ${HTTPS_PROXY}`); `configured` is that `env`, which is applied on top. Returns
/// the variables to pass and the names withheld (those not configured), for the log.
fn inherited_env<'a>(
    ours: &'a [(String, String)],
    configured: &BTreeMap<String, String>,
) -> (Vec<(&'a str, &'a str)>, Vec<&'a str>) {
    let mut passed = Vec::new();
    let mut withheld = Vec::new();
    for (key, value) in ours {
        if !INHERITED_ENV.contains(&key.as_str()) {
            continue;
        }
        if is_proxy_url_var(key) && has_userinfo(value) {
            if !configured.contains_key(key) {
                withheld.push(key.as_str());
            }
            continue;
        }
        passed.push((key.as_str(), value.as_str()));
    }
    (passed, withheld)
}

fn is_proxy_url_var(name: &str) -> bool {
    PROXY_URL_VARS
        .iter()
        .any(|proxy| proxy.eq_ignore_ascii_case(name))
}

/// Whether a proxy URL carries userinfo. A proxy URL has no path, so any `@` counts (also in a
/// value without a scheme, `user:pass@proxy:3128`, which curl accepts): a false alarm only
/// means the server must be given the variable explicitly.
fn has_userinfo(value: &str) -> bool {
    value.contains('@')
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
            self.now.cancel();
            // At once, not when the reaper next runs (it may be gone with the runtime, and
            // then `Held` does this). Not once reaped: the pid may be someone else's by now.
            if self.exit.borrow().is_none() {
                end_now(self.pid, self.guarded);
            }
        }
    }
}

/// The reaper's hold on the child. Until the child is reaped, dropping it (the runtime going
/// away with the reaper task) ends the child at once, as `kill_on_drop` would, but for the
/// whole group, or, for a guard, its whole subtree.
struct Held {
    child: Child,
    pid: Option<Pid>,
    guarded: bool,
    reaped: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.reaped {
            end_now(self.pid, self.guarded);
        }
    }
}

/// End a child without waiting: a guard is asked to SIGKILL its subtree (a SIGKILL of its
/// group would miss descendants that left it), anything else gets its group SIGKILLed.
fn end_now(pid: Option<Pid>, guarded: bool) {
    let Some(pid) = pid else {
        return;
    };
    if guarded {
        let _ = kill(pid, super::guard::END_TREE);
    } else {
        let _ = killpg(pid, Signal::SIGKILL);
    }
}

async fn reap(
    mut held: Held,
    stop: CancellationToken,
    now: CancellationToken,
    exit_tx: watch::Sender<Option<ExitInfo>>,
    record: Option<PathBuf>,
) {
    let status = tokio::select! {
        status = held.child.wait() => status,
        () = stop.cancelled() => terminate(&mut held).await,
        () = now.cancelled() => end_and_wait(&mut held).await,
    };
    held.reaped = true;
    // Grandchildren may still run in the group after the leader exits; none may outlive it. A
    // guard has ended its whole subtree before exiting, unless it was killed itself (SIGKILL
    // from someone else): then its server is left in the group.
    if let Some(pid) = held.pid {
        end_group_remains(pid);
    }
    let info = match status {
        Ok(status) => ExitInfo::from_status(&status),
        Err(err) => ExitInfo(format!("unknown status ({err})")),
    };
    let _ = exit_tx.send(Some(info));
    // Only now: until the group is gone, the record is what a crash would need.
    if let Some(record) = record {
        let _ = tokio::fs::remove_file(record).await;
    }
}

/// SIGKILL what is left of the process group `pgid` after its leader was reaped, if anything
/// is. Only while a member is left: the kernel does not reuse a number that is still a group's
/// id, so the group is then ours; with no member left the number may already name another
/// process's new group, which must not be signalled.
fn end_group_remains(pgid: Pid) {
    let id = pgid.as_raw() as u32;
    if super::procfs::all().iter().any(|stat| stat.pgid == id) {
        let _ = killpg(pgid, Signal::SIGKILL);
    }
}

/// The stop sequence: a moment to exit by itself (stdin is closed), SIGTERM to the group,
/// then [`end_and_wait`].
async fn terminate(held: &mut Held) -> std::io::Result<ExitStatus> {
    if let Ok(status) = tokio::time::timeout(EXIT_GRACE, held.child.wait()).await {
        return status;
    }
    if let Some(pid) = held.pid {
        let _ = killpg(pid, Signal::SIGTERM);
    }
    if let Ok(status) = tokio::time::timeout(TERM_GRACE, held.child.wait()).await {
        return status;
    }
    end_and_wait(held).await
}

/// End it now and reap it: a guard gets [`GUARD_GRACE`] to end its subtree, then (or at once,
/// unguarded) the group is SIGKILLed.
async fn end_and_wait(held: &mut Held) -> std::io::Result<ExitStatus> {
    if held.guarded {
        end_now(held.pid, true);
        if let Ok(status) = tokio::time::timeout(GUARD_GRACE, held.child.wait()).await {
            return status;
        }
    }
    if let Some(pid) = held.pid {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    held.child.kill().await?;
    held.child.wait().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn proxies_with_credentials_are_withheld_unless_configured() {
        let ours = vars(&[
            ("PATH", "/bin"),
            ("OPENAI_API_KEY", "sk-never"),
            ("HTTPS_PROXY", "http://user:pass@proxy:3128"),
            ("https_proxy", "user:pass@proxy:3128"),
            ("ALL_PROXY", "socks5://u:p@proxy:1080"),
            ("http_proxy", "http://alice:pw@proxy:3128"),
            ("HTTP_PROXY", "http://proxy:3128"),
            ("all_proxy", "socks5h://proxy:1080"),
            ("NO_PROXY", "localhost,.internal"),
        ]);
        let configured = BTreeMap::from([(
            "http_proxy".to_owned(),
            "http://alice:pw@proxy:3128".to_owned(),
        )]);
        let (passed, withheld) = inherited_env(&ours, &configured);
        assert_eq!(
            passed,
            [
                ("PATH", "/bin"),
                ("HTTP_PROXY", "http://proxy:3128"),
                ("all_proxy", "socks5h://proxy:1080"),
                ("NO_PROXY", "localhost,.internal"),
            ]
        );
        // `http_proxy` is configured (applied on top of these), so it is not reported.
        assert_eq!(withheld, ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"]);
    }

    #[test]
    fn proxy_names_match_in_any_case() {
        for name in [
            "HTTPS_PROXY",
            "https_proxy",
            "Https_Proxy",
            "ALL_PROXY",
            "http_proxy",
        ] {
            assert!(is_proxy_url_var(name), "{name}");
        }
        assert!(!is_proxy_url_var("NO_PROXY"));
        assert!(has_userinfo("http://u:p@h:1"));
        assert!(has_userinfo("u@h"));
        assert!(!has_userinfo("http://proxy.corp:3128/"));
    }
}
