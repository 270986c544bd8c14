//! Records of the children we start, and the start-up sweep that ends what a previous
//! Switchboard left running.
//!
//! Each stdio child (the guard, or the server itself when there is no guard) gets a record file
//! `<data dir>/processes/<pid>.json` ([`ChildRecord`]) while it runs: its pid, process group
//! and start time, the boot it ran in, and who started it (pid and start time of that
//! Switchboard process). The file is removed once the child has been reaped. A file that is
//! still there names a child whose owner died without cleaning up.
//!
//! At start-up [`sweep`] reads every record. Records of a live owner (another Switchboard on
//! the same data dir, `switchboard chat` beside a server) are left alone. For the others, a
//! process is only ever signalled when it is provably the one recorded: the same pid *and* the
//! same start time in the same boot, so a pid the kernel has since given to an unrelated
//! process is never touched. Such a child is ended with its whole process group (a guard is
//! first asked to end its subtree, which reaches descendants in other groups too). When the
//! recorded leader is gone but members of its group are left (a guard killed with SIGKILL, its
//! server ignoring stdin EOF), the group is ended too, but only while no process holds the
//! group's number as its pid: the kernel never reuses a number that is still some group's id,
//! so a leaderless group with that id is ours.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::guard;
use super::procfs::{self, ProcStat};

/// The directory under the data dir that holds the records.
pub const RECORDS_DIR: &str = "processes";
/// How long the sweep waits for a live guard to end its subtree before killing its group.
const GUARD_WAIT: Duration = Duration::from_secs(1);

/// One child a Switchboard process started, as stored in its record file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildRecord {
    /// The configured server the child runs.
    pub server: String,
    /// The child's pid (the guard's, when guarded).
    pub pid: u32,
    /// Its process group (the child leads it).
    pub pgid: u32,
    /// Its start time, in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
    /// The boot it ran in (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
    /// The Switchboard process that started it.
    pub owner_pid: u32,
    /// That process's start time.
    pub owner_start_time: u64,
    /// Whether the child is a guard (see `mcp::guard`), which ends its subtree on SIGUSR1.
    pub guarded: bool,
}

impl ChildRecord {
    /// The record of `pid`, started by this process for `server`, read from `/proc`; `None`
    /// when `/proc` does not know it (the child is already gone, or there is no `/proc`).
    pub fn of_child(server: &str, pid: u32, guarded: bool) -> Option<ChildRecord> {
        let stat = ProcStat::read(pid)?;
        let (owner_pid, owner_start_time) = procfs::this_process()?;
        Some(ChildRecord {
            server: server.to_owned(),
            pid,
            pgid: stat.pgid,
            start_time: stat.start_time,
            boot_id: procfs::boot_id()?,
            owner_pid,
            owner_start_time,
            guarded,
        })
    }

    /// Where the record of `pid` lives under `dir`.
    pub fn path_in(dir: &Path, pid: u32) -> PathBuf {
        dir.join(format!("{pid}.json"))
    }

    /// Write the record under `dir` (created if missing), completely or not at all (a
    /// temporary file renamed into place), and return its path.
    ///
    /// # Errors
    /// When the directory or the file cannot be written.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = Self::path_in(dir, self.pid);
        let partial = dir.join(format!("{}.json.partial", self.pid));
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, &path)?;
        Ok(path)
    }
}

/// What [`sweep`] found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Children (server, pid) of a dead owner that were still running and have been ended.
    pub ended: Vec<(String, u32)>,
    /// Leaderless groups (server, pgid) of a dead owner whose members have been ended.
    pub ended_groups: Vec<(String, u32)>,
    /// Records left alone because their owner still runs.
    pub owner_alive: usize,
    /// Records removed because nothing they name is left (or it is another process now).
    pub stale: usize,
    /// Record files that could not be read, each with the reason (they are removed).
    pub unreadable: Vec<String>,
}

/// End what previous Switchboard processes left under `dir` (see the module docs) and remove
/// their records. A missing directory is an empty one.
pub fn sweep(dir: &Path) -> SweepReport {
    let mut report = SweepReport::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return report;
    };
    let boot = procfs::boot_id();
    let me = procfs::this_process();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let record = match read_record(&path) {
            Ok(record) => record,
            Err(why) => {
                report.unreadable.push(format!("{}: {why}", path.display()));
                let _ = std::fs::remove_file(&path);
                continue;
            }
        };
        if boot.as_deref() == Some(record.boot_id.as_str())
            && (owner_alive(&record) || me == Some((record.owner_pid, record.owner_start_time)))
        {
            report.owner_alive += 1;
            continue;
        }
        if boot.as_deref() == Some(record.boot_id.as_str()) {
            end_recorded(&record, &mut report);
        } else {
            report.stale += 1;
        }
        let _ = std::fs::remove_file(&path);
    }
    report
}

fn read_record(path: &Path) -> Result<ChildRecord, String> {
    let text = std::fs::read_to_string(path).map_err(|err| err.to_string())?;
    serde_json::from_str(&text).map_err(|err| format!("not a child record: {err}"))
}

fn owner_alive(record: &ChildRecord) -> bool {
    ProcStat::read(record.owner_pid)
        .is_some_and(|stat| stat.is_running() && stat.start_time == record.owner_start_time)
}

/// End the recorded child (and its group) if it is still the same process, else what is left
/// of its group if that provably is its group.
fn end_recorded(record: &ChildRecord, report: &mut SweepReport) {
    let safe = |id: u32| id > 1 && id != std::process::id() && id <= i32::MAX as u32;
    if !safe(record.pid) || !safe(record.pgid) {
        report.stale += 1;
        return;
    }
    let same = |stat: &ProcStat| stat.is_running() && stat.start_time == record.start_time;
    match ProcStat::read(record.pid) {
        Some(stat) if same(&stat) => {
            let pid = Pid::from_raw(record.pid as i32);
            if record.guarded {
                // The guard reaches descendants that left its group; give it a moment.
                let _ = kill(pid, guard::END_TREE);
                let deadline = Instant::now() + GUARD_WAIT;
                while ProcStat::read(record.pid).is_some_and(|s| same(&s))
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            if stat.pgid == record.pgid && not_our_group(record.pgid) {
                let _ = killpg(Pid::from_raw(record.pgid as i32), Signal::SIGKILL);
            } else if ProcStat::read(record.pid).is_some_and(|s| same(&s)) {
                let _ = kill(pid, Signal::SIGKILL);
            }
            report.ended.push((record.server.clone(), record.pid));
        }
        // Gone, or the pid is someone else's now: maybe members of its group are left.
        _ => {
            if leaderless_remnants(record) {
                let _ = killpg(Pid::from_raw(record.pgid as i32), Signal::SIGKILL);
                report
                    .ended_groups
                    .push((record.server.clone(), record.pgid));
            } else {
                report.stale += 1;
            }
        }
    }
}

/// Never our own process group (a record naming it is corrupt).
fn not_our_group(pgid: u32) -> bool {
    procfs::this_process()
        .and_then(|(pid, _)| ProcStat::read(pid))
        .is_none_or(|me| me.pgid != pgid)
}

/// Whether processes of the recorded group are still running while the group's number is
/// held by no process, or by the recorded leader itself as a zombie (either way the number
/// cannot have been reused, and the group is ours).
fn leaderless_remnants(record: &ChildRecord) -> bool {
    if !not_our_group(record.pgid) {
        return false;
    }
    let ours =
        |holder: &ProcStat| record.pid == record.pgid && holder.start_time == record.start_time;
    if ProcStat::read(record.pgid).is_some_and(|holder| !ours(&holder)) {
        return false;
    }
    procfs::all().iter().any(|stat| {
        stat.pgid == record.pgid && stat.is_running() && stat.start_time >= record.start_time
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: u32, start_time: u64) -> ChildRecord {
        ChildRecord {
            server: "s".to_owned(),
            pid,
            pgid: pid,
            start_time,
            boot_id: procfs::boot_id().unwrap_or_default(),
            // pid 1 never has our start time: a dead owner.
            owner_pid: 1,
            owner_start_time: u64::MAX,
            guarded: false,
        }
    }

    fn sleeper() -> std::process::Child {
        let mut command = std::process::Command::new("sleep");
        command.arg("30");
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command.spawn().expect("start sleep")
    }

    fn gone(child: &mut std::process::Child) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn ends_a_recorded_child_and_spares_a_reused_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut left = sleeper();
        let mut unrelated = sleeper();
        let left_stat = ProcStat::read(left.id()).expect("stat");
        let unrelated_stat = ProcStat::read(unrelated.id()).expect("stat");
        record(left.id(), left_stat.start_time)
            .write_to(dir.path())
            .expect("write");
        // The same pid, another start time: the kernel gave the pid to someone else.
        record(unrelated.id(), unrelated_stat.start_time + 1)
            .write_to(dir.path())
            .expect("write");
        std::fs::write(dir.path().join("9.json"), "{not json").expect("write");
        let report = sweep(dir.path());
        assert_eq!(report.ended, [("s".to_owned(), left.id())], "{report:?}");
        assert_eq!(report.stale, 1, "{report:?}");
        assert_eq!(report.unreadable.len(), 1, "{report:?}");
        assert!(report.unreadable[0].contains("9.json"), "{report:?}");
        assert!(gone(&mut left), "the recorded child is still running");
        assert!(
            unrelated.try_wait().expect("try_wait").is_none(),
            "the unrelated process was killed"
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("read dir").count(), 0);
        let _ = unrelated.kill();
        let _ = unrelated.wait();
    }

    #[test]
    fn leaves_the_records_of_a_live_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = sleeper();
        let stat = ProcStat::read(child.id()).expect("stat");
        let mut mine = record(child.id(), stat.start_time);
        let (pid, start) = procfs::this_process().expect("ourselves");
        (mine.owner_pid, mine.owner_start_time) = (pid, start);
        let path = mine.write_to(dir.path()).expect("write");
        let report = sweep(dir.path());
        assert_eq!(report.owner_alive, 1, "{report:?}");
        assert!(path.exists());
        assert!(child.try_wait().expect("try_wait").is_none());
        let _ = child.kill();
        let _ = child.wait();
    }
}
