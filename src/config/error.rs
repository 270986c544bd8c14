//! Error values of the loader and the sink that collects them while the tree is walked.
//!
//! Every problem becomes one [`ConfigError`] that says where (file, line, column, dotted key
//! path) and what; [`ConfigErrors`] is the whole list, so a user fixes everything in one pass.

use std::fmt;
use std::path::{Path, PathBuf};

use super::yaml::Pos;

/// One problem found in a config file, pointing at the exact place to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file the problem is in: the YAML config or one of its included JSON files.
    pub file: PathBuf,
    /// 1-based line, when known (unknown for I/O errors and some JSON files).
    pub line: Option<usize>,
    /// 1-based column in characters, when known.
    pub column: Option<usize>,
    /// Dotted path of the offending key, e.g. `mcpServers.everything.args[2]`; empty for
    /// whole-file problems.
    pub key_path: String,
    /// What is wrong, lower case, without trailing period; never contains secret values.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if !self.key_path.is_empty() {
            write!(f, ": {}", self.key_path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All problems found in one load; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// A single error about a whole file (unreadable, too large, not UTF-8, ...).
    pub(super) fn file(file: &Path, pos: Option<Pos>, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError {
            file: file.to_path_buf(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            key_path: String::new(),
            message: message.into(),
        }])
    }

    /// Orders errors like a compiler does: files in the order they were first reported, then by
    /// position; errors without a position keep their place at the front of their file.
    pub(super) fn sort(&mut self) {
        let mut files: Vec<PathBuf> = Vec::new();
        for error in &self.0 {
            if !files.contains(&error.file) {
                files.push(error.file.clone());
            }
        }
        self.0.sort_by_key(|e| {
            let file = files
                .iter()
                .position(|f| *f == e.file)
                .unwrap_or(usize::MAX);
            (file, e.line.unwrap_or(0), e.column.unwrap_or(0))
        });
    }
}

/// Renders `path.key`, quoting keys that would make the dotted path ambiguous
/// (`mcpServers["my.server"].url`).
pub(super) fn child_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{key:?}]"),
    }
}

/// Renders `path[index]` for list items.
pub(super) fn item_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// ` `value`` (with a leading space) when `value` is short and printable, else nothing: short
/// values help the reader, long ones flood the message and are more likely to be tokens.
/// Callers never pass secrets (`env` and `headers` values) here.
pub(super) fn shown(value: &str) -> String {
    const MAX_CHARS: usize = 40;
    if value.chars().count() <= MAX_CHARS && !value.chars().any(char::is_control) {
        format!(" `{value}`")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(error: ConfigError, expected: &str) {
        assert_eq!(error.to_string(), expected);
    }

    fn error(line: Option<usize>, column: Option<usize>, key_path: &str) -> ConfigError {
        ConfigError {
            file: PathBuf::from("config/switchboard.yaml"),
            line,
            column,
            key_path: key_path.to_owned(),
            message: "not a valid URL (relative URL without a base)".to_owned(),
        }
    }

    #[test]
    fn display_has_file_position_path_and_message() {
        check(
            error(Some(12), Some(5), "mcpServers.everything.url"),
            "config/switchboard.yaml:12:5: mcpServers.everything.url: not a valid URL (relative URL without a base)",
        );
        check(
            error(None, None, "mcpServers.x.url"),
            "config/switchboard.yaml: mcpServers.x.url: not a valid URL (relative URL without a base)",
        );
        check(
            error(Some(3), Some(1), ""),
            "config/switchboard.yaml:3:1: not a valid URL (relative URL without a base)",
        );
    }

    #[test]
    fn errors_display_one_per_line_and_sort_by_position() {
        let mut errors = ConfigErrors(vec![
            error(Some(9), Some(1), "b"),
            error(Some(2), Some(7), "a"),
        ]);
        errors.sort();
        let text = errors.to_string();
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.starts_with("config/switchboard.yaml:2:7: a:"),
            "{text}"
        );
    }

    #[test]
    fn paths_quote_ambiguous_keys() {
        assert_eq!(child_path("", "mcpServers"), "mcpServers");
        assert_eq!(child_path("mcpServers", "fs"), "mcpServers.fs");
        assert_eq!(
            child_path("mcpServers", "my.server"),
            "mcpServers[\"my.server\"]"
        );
        assert_eq!(item_path("mcpServers.fs.args", 2), "mcpServers.fs.args[2]");
    }

    #[test]
    fn shown_omits_long_values() {
        assert_eq!(shown("ws"), " `ws`");
        assert_eq!(shown(&"x".repeat(100)), "");
        assert_eq!(shown("a\nb"), "");
    }
}
