//! Finding the agent files: the visible `*.yaml` / `*.yml` files of the agents directory, in
//! name order, with directory problems reported against `agents_dir` in the main config file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::super::fields::Ctx;
use super::super::yaml::Pos;

/// The agents directory and, when `agents_dir` gave it, where that value is written.
pub(super) struct Dir {
    pub(super) path: PathBuf,
    pub(super) explicit: Option<Option<Pos>>,
}

/// The agent files of `dir`, in name order; directory problems are reported against
/// `agents_dir` in the main config file.
pub(super) fn agent_files(ctx: &mut Ctx<'_>, dir: &Dir) -> Vec<PathBuf> {
    let shown_dir = dir.path.display();
    let (pos, what) = match dir.explicit {
        Some(pos) => (pos, format!("agents directory `{shown_dir}`")),
        None => (
            None,
            format!("default agents directory `{shown_dir}` (set `agents_dir` to use another)"),
        ),
    };
    let entries = match fs::read_dir(&dir.path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound && dir.explicit.is_none() => {
            return Vec::new();
        }
        Err(e) => {
            ctx.error(
                pos,
                "agents_dir",
                format!("cannot read the {what}: {}", io_message(&e)),
            );
            return Vec::new();
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                if is_agent_file(&path) {
                    paths.push(path);
                }
            }
            Err(e) => {
                let message = format!("cannot list the {what}: {}", io_message(&e));
                ctx.error(pos, "agents_dir", message);
            }
        }
    }
    paths.sort();
    paths
}

/// `*.yaml` and `*.yml` (any case), except hidden files such as editor lock files.
fn is_agent_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    yaml && !hidden
}

fn io_message(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "it does not exist".to_owned(),
        io::ErrorKind::NotADirectory => "it is not a directory".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => {
            let text = e.to_string();
            let mut chars = text.chars();
            chars.next().map_or(text.clone(), |first| {
                first.to_lowercase().chain(chars).collect()
            })
        }
    }
}
