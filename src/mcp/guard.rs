//! The guard: a small process of ours between Switchboard and each stdio server, so that no
//! descendant of a server outlives Switchboard however Switchboard ends (`kill -9` included),
//! nor outlives the server itself.
//!
//! Switchboard runs `switchboard mcp-guard <our pid> -- <command> <args…>` (its own binary)
//! instead of the command, in a process group of its own, with the server's environment, working
//! directory and pipes. The guard
//!
//! - asks the kernel for a signal (`PR_SET_PDEATHSIG`, SIGUSR2) when its parent goes, and also
//!   checks its parent every second (SIGALRM), since that signal is sent when the *thread* that
//!   started it ends, which in a multi-threaded parent need not mean the process ended: either
//!   way it acts only once `getppid()` is no longer Switchboard;
//! - is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so every descendant whose parent dies,
//!   also one that `setsid`ed or changed its process group, is re-parented to it rather than to
//!   init, and so stays in its subtree;
//! - starts the command through `switchboard mcp-guard-exec -- <command> <args…>`, which
//!   clears the signal mask it would otherwise inherit from the guard and execs the command in
//!   place (same pid); the command inherits the pipes. The guard waits for signals only (it keeps its
//!   copies of the pipes: it never reads or writes them, and exits within milliseconds of the
//!   server, so Switchboard sees the end of stdout then);
//! - ends the whole subtree (SIGKILL to every descendant, again as re-parented ones come in,
//!   until it has no children left) when the server exits, when Switchboard goes, or when
//!   Switchboard asks with SIGUSR1; then exits the way the server did (same code, same signal).
//!
//! SIGTERM, SIGINT, SIGHUP and SIGQUIT do not stop the guard: Switchboard signals the whole
//! process group, so the server receives them itself and the guard waits for it to exit.
//!
//! No `unsafe` anywhere: everything the guard does is done by an exec'd program of ours, not in
//! a forked child before `exec`, where only async-signal-safe code could run.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getppid};

use super::procfs;

/// The first argument that makes the `switchboard` binary act as a guard.
pub const GUARD_COMMAND: &str = "mcp-guard";
/// The first argument that makes it clear its signal mask and exec the command in place: how
/// the guard starts the server, whose mask must not be the guard's (a child inherits the
/// blocked signals of whoever spawned it, and std's spawn leaves them as they are).
pub const EXEC_COMMAND: &str = "mcp-guard-exec";
/// The signal that asks a guard to end its server and everything under it, now.
pub const END_TREE: Signal = Signal::SIGUSR1;
/// The parent-death signal; the guard then checks that its parent really is gone.
const PARENT_GONE: Signal = Signal::SIGUSR2;
/// How often the guard checks its parent besides the parent-death signal.
const PARENT_POLL_SECONDS: u32 = 1;
/// How long ending a subtree may take before the guard gives up (a process stuck in the
/// kernel cannot be killed).
const END_TREE_LIMIT: Duration = Duration::from_secs(5);
/// Pause between rounds of ending a subtree (re-parented descendants arrive in between).
const END_TREE_ROUND: Duration = Duration::from_millis(10);
/// Exit code when the guard's own arguments are wrong.
const USAGE_EXIT: i32 = 125;
/// Exit code when the command cannot be started for another reason than not existing.
const CANNOT_RUN_EXIT: i32 = 126;
/// Exit code when the command does not exist, as a shell reports it.
const NOT_FOUND_EXIT: i32 = 127;

/// The arguments, after `mcp-guard`, that make a guard for `command args` under `parent`.
pub fn guard_args(parent: u32, command: &str, args: &[String]) -> Vec<OsString> {
    let mut all = vec![
        OsString::from(GUARD_COMMAND),
        OsString::from(parent.to_string()),
        OsString::from("--"),
        OsString::from(command),
    ];
    all.extend(args.iter().map(OsString::from));
    all
}

/// Run as a guard when `args` (the process's arguments without the program name) start with
/// [`GUARD_COMMAND`]; never returns then. Call it first thing in `main`, before any thread or
/// runtime starts: the guard's signal mask must cover the whole process.
pub fn run_if_requested(args: &[OsString]) {
    if args.first().is_some_and(|first| first == GUARD_COMMAND) {
        std::process::exit(run(&args[1..]));
    }
    if args.first().is_some_and(|first| first == EXEC_COMMAND) {
        std::process::exit(exec_in_place(&args[1..]));
    }
}

/// `-- <command> [args…]`: unblock every signal and become the command (same pid). Returns
/// only when it cannot be run, with the shell's exit code for that.
fn exec_in_place(args: &[OsString]) -> i32 {
    let [dashes, command, rest @ ..] = args else {
        eprintln!(
            "switchboard {EXEC_COMMAND}: usage: switchboard {EXEC_COMMAND} -- <command> [args…]"
        );
        return USAGE_EXIT;
    };
    if dashes != "--" {
        eprintln!(
            "switchboard {EXEC_COMMAND}: usage: switchboard {EXEC_COMMAND} -- <command> [args…]"
        );
        return USAGE_EXIT;
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    let err =
        std::os::unix::process::CommandExt::exec(std::process::Command::new(command).args(rest));
    eprintln!("could not start `{}`: {err}", command.to_string_lossy());
    if err.kind() == std::io::ErrorKind::NotFound {
        NOT_FOUND_EXIT
    } else {
        CANNOT_RUN_EXIT
    }
}

/// The guard's main: `<parent pid> -- <command> [args…]`. Returns the exit code when it cannot
/// mirror the server's end (a signal that does not terminate, say).
fn run(args: &[OsString]) -> i32 {
    let (parent, command, command_args) = match parse(args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("switchboard mcp-guard: {message}");
            return USAGE_EXIT;
        }
    };
    let handled = handled_signals();
    // Blocked before anything can send them, so none is lost or takes its default action; the
    // command gets an empty mask ([`EXEC_COMMAND`]).
    if let Err(err) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled), None) {
        eprintln!("switchboard mcp-guard: cannot block signals: {err}");
        return USAGE_EXIT;
    }
    if let Err(err) = nix::sys::prctl::set_child_subreaper(true) {
        // Without it a descendant whose parent dies escapes to init; the rest still works.
        eprintln!("switchboard mcp-guard: cannot become a child subreaper: {err}");
    }
    if let Err(err) = nix::sys::prctl::set_pdeathsig(PARENT_GONE) {
        eprintln!("switchboard mcp-guard: cannot ask for a parent-death signal: {err}");
    }
    // The parent may have gone before the signal was asked for.
    if getppid() != parent {
        return 0;
    }
    // Through our own binary (the running image, whatever its path), which clears the signal
    // mask this process needs and execs the command in place.
    let server = match std::process::Command::new("/proc/self/exe")
        .arg(EXEC_COMMAND)
        .arg("--")
        .arg(&command)
        .args(&command_args)
        .spawn()
    {
        Ok(child) => Pid::from_raw(child.id() as i32),
        Err(err) => {
            eprintln!("switchboard mcp-guard: cannot start the server: {err}");
            return CANNOT_RUN_EXIT;
        }
    };
    nix::unistd::alarm::set(PARENT_POLL_SECONDS);
    let status = watch(parent, server, &handled);
    exit_like(status)
}

/// `<parent pid> -- <command> [args…]`.
fn parse(args: &[OsString]) -> Result<(Pid, OsString, Vec<OsString>), String> {
    let usage = "usage: switchboard mcp-guard <parent pid> -- <command> [args…]";
    let [parent, dashes, command, rest @ ..] = args else {
        return Err(usage.to_owned());
    };
    if dashes != "--" {
        return Err(usage.to_owned());
    }
    let parent = parent
        .to_str()
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("not a parent pid: {}; {usage}", parent.to_string_lossy()))?;
    Ok((Pid::from_raw(parent), command.clone(), rest.to_vec()))
}

fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGCHLD,
        Signal::SIGALRM,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        END_TREE,
        PARENT_GONE,
    ] {
        set.add(signal);
    }
    set
}

/// Wait for the server to exit, for Switchboard to go or for [`END_TREE`]; end the subtree;
/// return how the server ended.
fn watch(parent: Pid, server: Pid, handled: &SigSet) -> Option<WaitStatus> {
    loop {
        let signal = match handled.wait() {
            Ok(signal) => signal,
            Err(Errno::EINTR) => continue,
            Err(err) => {
                eprintln!("switchboard mcp-guard: waiting for signals failed: {err}");
                return end_tree(server, None);
            }
        };
        match signal {
            Signal::SIGCHLD => {
                if let Some(status) = reap_server(server) {
                    return end_tree(server, Some(status));
                }
            }
            Signal::SIGALRM | PARENT_GONE => {
                if getppid() != parent {
                    return end_tree(server, None);
                }
                if signal == Signal::SIGALRM {
                    nix::unistd::alarm::set(PARENT_POLL_SECONDS);
                }
            }
            END_TREE => return end_tree(server, None),
            // SIGTERM and the like reached the server through the process group.
            _ => {}
        }
    }
}

/// Reap every child that has exited; the server's status once it is among them. Other
/// children are re-parented descendants, reaped so they leave no zombie.
fn reap_server(server: Pid) -> Option<WaitStatus> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(status) => {
                if status.pid() == Some(server) {
                    found = Some(status);
                }
            }
        }
    }
}

/// SIGKILL every descendant, round after round (a descendant whose parent we killed is
/// re-parented to us, and one may have forked in between), reaping as we go, until we have
/// no children left or [`END_TREE_LIMIT`] passes.
fn end_tree(server: Pid, mut status: Option<WaitStatus>) -> Option<WaitStatus> {
    let started = Instant::now();
    let me = std::process::id();
    loop {
        for pid in procfs::descendants(me) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(reaped) => {
                    if reaped.pid() == Some(server) {
                        status = Some(reaped);
                    }
                }
                Err(Errno::EINTR) => {}
                // ECHILD: nothing is left under us.
                Err(_) => return status,
            }
        }
        if started.elapsed() >= END_TREE_LIMIT {
            eprintln!(
                "switchboard mcp-guard: descendants still there after {} s; giving up",
                END_TREE_LIMIT.as_secs()
            );
            return status;
        }
        std::thread::sleep(END_TREE_ROUND);
    }
}

/// Exit the way the server did: its exit code, or death by its signal, so that Switchboard
/// reports the server's end, not ours. Returns only when that signal does not end us.
fn exit_like(status: Option<WaitStatus>) -> i32 {
    match status {
        Some(WaitStatus::Exited(_, code)) => code,
        Some(WaitStatus::Signaled(_, signal, _)) => {
            let mut only = SigSet::empty();
            only.add(signal);
            let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&only), None);
            // Twice: a handler std installed (SIGSEGV, SIGBUS) resets itself on the first.
            let _ = nix::sys::signal::raise(signal);
            let _ = nix::sys::signal::raise(signal);
            128 + signal as i32
        }
        // Ended before the server was reaped (a stuck process): as if killed.
        _ => 128 + Signal::SIGKILL as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn arguments_round_trip() {
        let args = guard_args(42, "node", &["server.js".to_owned(), "--".to_owned()]);
        assert_eq!(args[0], GUARD_COMMAND);
        let (parent, command, rest) = parse(&args[1..]).expect("parses");
        assert_eq!(parent, Pid::from_raw(42));
        assert_eq!(command, "node");
        assert_eq!(rest, os(&["server.js", "--"]));
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        assert!(parse(&os(&["42"])).unwrap_err().starts_with("usage:"));
        assert!(
            parse(&os(&["42", "-x", "node"]))
                .unwrap_err()
                .starts_with("usage:")
        );
        let err = parse(&os(&["nope", "--", "node"])).unwrap_err();
        assert!(err.starts_with("not a parent pid: nope"), "{err}");
        assert!(parse(&os(&["0", "--", "node"])).is_err());
    }
}
