//! The bounded walk behind `search_files`.
//!
//! Breadth-first over real directories only (directory symlinks are never followed, so
//! there are no loops), capped by depth, entries examined, results and bytes read. A
//! file symlink is re-resolved through [`Files::resolve`] before its content is read,
//! so one pointing outside the root is skipped.

use std::{fs, path::PathBuf};

use super::{
    Files, MAX_GREP_FILE_BYTES, MAX_SEARCH_BYTES, MAX_SEARCH_DEPTH, MAX_SEARCH_ENTRIES,
    looks_binary,
};

/// State of one bounded `search_files` walk.
pub(super) struct Search<'a> {
    pub(super) files: &'a Files,
    pub(super) query: String,
    pub(super) content: bool,
    pub(super) max_results: usize,
    pub(super) name_hits: Vec<String>,
    pub(super) line_hits: Vec<String>,
    pub(super) entries_seen: usize,
    pub(super) bytes_scanned: u64,
    pub(super) truncated: Option<String>,
}

impl Search<'_> {
    fn full(&self) -> bool {
        self.name_hits.len() + self.line_hits.len() >= self.max_results
    }

    /// Breadth-first walk with an explicit queue: no recursion, so no stack to blow.
    pub(super) fn walk(&mut self, start: PathBuf) {
        let mut queue = std::collections::VecDeque::from([(start, 0usize)]);
        while let Some((dir, depth)) = queue.pop_front() {
            let Ok(read) = fs::read_dir(&dir) else {
                continue;
            };
            let budget = MAX_SEARCH_ENTRIES.saturating_sub(self.entries_seen) + 1;
            let mut entries: Vec<_> = read.filter_map(Result::ok).take(budget).collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                if self.full() {
                    self.truncated = Some(format!("{} results reached", self.max_results));
                    return;
                }
                self.entries_seen += 1;
                if self.entries_seen > MAX_SEARCH_ENTRIES {
                    self.truncated = Some(format!("{MAX_SEARCH_ENTRIES} entries examined"));
                    return;
                }
                let path = entry.path();
                let rel = self.files.relative(&path);
                let name = entry.file_name().to_string_lossy().to_lowercase();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if name.contains(&self.query) {
                    let suffix = if kind.is_dir() { "/" } else { "" };
                    self.name_hits.push(format!("{rel}{suffix}"));
                }
                if kind.is_dir() {
                    if depth < MAX_SEARCH_DEPTH {
                        queue.push_back((path, depth + 1));
                    } else if self.truncated.is_none() {
                        self.truncated = Some(format!(
                            "directories deeper than {MAX_SEARCH_DEPTH} skipped"
                        ));
                    }
                } else if self.content && (kind.is_file() || kind.is_symlink()) {
                    self.grep(&rel);
                }
            }
        }
    }

    fn grep(&mut self, rel: &str) {
        // Re-resolve so a file symlink pointing outside is never read.
        let Ok(path) = self.files.resolve(Some(rel)) else {
            return;
        };
        let Ok(meta) = fs::metadata(&path) else {
            return;
        };
        if !meta.is_file() || meta.len() > MAX_GREP_FILE_BYTES {
            return;
        }
        if self.bytes_scanned + meta.len() > MAX_SEARCH_BYTES {
            self.truncated = Some(format!("{MAX_SEARCH_BYTES} bytes of content scanned"));
            return;
        }
        let Ok(bytes) = fs::read(&path) else {
            return;
        };
        self.bytes_scanned += bytes.len() as u64;
        if looks_binary(&bytes) {
            return;
        }
        let text = String::from_utf8_lossy(&bytes);
        for (number, line) in text.lines().enumerate() {
            if self.full() {
                return;
            }
            if line.to_lowercase().contains(&self.query) {
                let shown: String = line.trim().chars().take(200).collect();
                self.line_hits
                    .push(format!("{rel}:{}: {shown}", number + 1));
            }
        }
    }
}
