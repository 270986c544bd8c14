//! What `/proc` says about processes: parent, process group, session and start time. The guard
//! uses it to find its descendants, the start-up sweep to tell a process we started from an
//! unrelated one that got the same pid later (a pid plus its start time names one process for
//! the life of a boot).

use std::collections::HashMap;

/// The fields of `/proc/PID/stat` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 1.
    pub pid: u32,
    /// Field 3, one letter (`R`, `S`, `Z`, …).
    pub state: char,
    /// Field 4.
    pub ppid: u32,
    /// Field 5: the process group.
    pub pgid: u32,
    /// Field 6: the session.
    pub sid: u32,
    /// Field 22: when the process started, in clock ticks since boot.
    pub start_time: u64,
}

impl ProcStat {
    /// The stat of `pid`, or `None` when there is no such process (or `/proc` is not there).
    pub fn read(pid: u32) -> Option<ProcStat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        ProcStat::parse(&text)
    }

    /// Parse one `/proc/PID/stat` line. The command name (field 2) is in parentheses and may
    /// itself contain spaces and `)`, so the fields are counted from its last `)`.
    pub fn parse(text: &str) -> Option<ProcStat> {
        let (head, rest) = text.rsplit_once(')')?;
        let pid = head.split_once('(')?.0.trim().parse().ok()?;
        // `rest` starts at field 3.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).copied();
        Some(ProcStat {
            pid,
            state: field(3)?.chars().next()?,
            ppid: field(4)?.parse().ok()?,
            pgid: field(5)?.parse().ok()?,
            sid: field(6)?.parse().ok()?,
            start_time: field(22)?.parse().ok()?,
        })
    }

    /// False for a zombie (it has exited; only its exit status is left for its parent).
    pub fn is_running(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Every process `/proc` lists right now (those that vanish while we read are skipped).
pub fn all() -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(ProcStat::read)
        .collect()
}

/// The pids of every descendant of `root` (children, their children, …), from one scan.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for stat in all() {
        children.entry(stat.ppid).or_default().push(stat.pid);
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(parent) = queue.pop() {
        for &child in children.get(&parent).map_or(&[][..], Vec::as_slice) {
            // A pid cannot be its own ancestor, but /proc is read while it changes.
            if child != root && !found.contains(&child) {
                found.push(child);
                queue.push(child);
            }
        }
    }
    found
}

/// This boot's id: start times count from boot, so a record from another boot names nothing.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_owned())
}

/// Our own pid and start time, read once (neither changes while we run).
pub fn this_process() -> Option<(u32, u64)> {
    static SELF: std::sync::OnceLock<Option<(u32, u64)>> = std::sync::OnceLock::new();
    *SELF.get_or_init(|| {
        let pid = std::process::id();
        ProcStat::read(pid).map(|stat| (pid, stat.start_time))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_name_has_spaces_and_parentheses() {
        let line = "4242 (my (odd) name) S 17 4242 4000 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 50 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let stat = ProcStat::parse(line).expect("parses");
        assert_eq!(
            stat,
            ProcStat {
                pid: 4242,
                state: 'S',
                ppid: 17,
                pgid: 4242,
                sid: 4000,
                start_time: 987_654,
            }
        );
        assert!(stat.is_running());
        assert!(ProcStat::parse("12 (x) Z 1 12 12").is_none(), "too short");
        assert!(ProcStat::parse("garbage").is_none());
    }

    #[test]
    fn reads_ourselves_and_finds_our_children() {
        let me = ProcStat::read(std::process::id()).expect("our own stat");
        assert_eq!(me.pid, std::process::id());
        assert_eq!(this_process(), Some((me.pid, me.start_time)));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("start sleep");
        let found = descendants(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(boot_id().is_some_and(|id| !id.is_empty()));
    }
}
