//! `tools.allow` / `tools.deny` globs, compiled once per server listing.
//!
//! Globs match the server's original tool names (`read_file`), never the exposed
//! `server__read_file`, so a filter keeps working if naming rules change. Deny wins over allow and
//! an empty allow list allows everything. Config loading may call [`ToolMatcher::new`] to reject
//! bad globs early; the catalog calls it again and refuses every tool of a server whose filter
//! does not compile, because guessing what a broken deny list meant is unsafe.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::config::model::ToolFilter;

/// A compiled [`ToolFilter`].
#[derive(Debug, Clone)]
pub struct ToolMatcher {
    allow: Option<Patterns>,
    deny: Patterns,
}

/// A glob in `tools.allow` or `tools.deny` that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The pattern, which list it is in, and what is wrong with it.
    #[error("invalid glob {pattern:?} in tools.{list}: {message}")]
    InvalidGlob {
        /// `allow` or `deny`.
        list: &'static str,
        /// The pattern as written in the config.
        pattern: String,
        /// The parser's explanation.
        message: String,
    },
}

/// Why a matcher refused a tool; the catalog turns this into a drop reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A deny pattern matched (the first matching one, in config order).
    Denied { pattern: String },
    /// The allow list is non-empty and nothing in it matched.
    NotAllowed,
}

#[derive(Debug, Clone)]
struct Patterns {
    set: GlobSet,
    sources: Vec<String>,
}

impl ToolMatcher {
    /// Compiles both lists.
    ///
    /// # Errors
    ///
    /// Returns the first pattern that is not a valid glob.
    pub fn new(filter: &ToolFilter) -> Result<Self, FilterError> {
        let allow = if filter.allow.is_empty() {
            None
        } else {
            Some(Patterns::new("allow", &filter.allow)?)
        };
        Ok(Self {
            allow,
            deny: Patterns::new("deny", &filter.deny)?,
        })
    }

    /// Whether `tool` (an original tool name) is kept: `Ok` if so, otherwise the reason.
    pub(crate) fn check(&self, tool: &str) -> Result<(), Refusal> {
        if let Some(pattern) = self.deny.first_match(tool) {
            return Err(Refusal::Denied {
                pattern: pattern.to_owned(),
            });
        }
        match &self.allow {
            Some(allow) if allow.first_match(tool).is_none() => Err(Refusal::NotAllowed),
            _ => Ok(()),
        }
    }
}

impl Patterns {
    fn new(list: &'static str, patterns: &[String]) -> Result<Self, FilterError> {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = Glob::new(pattern).map_err(|err| FilterError::InvalidGlob {
                list,
                pattern: pattern.clone(),
                message: err.kind().to_string(),
            })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|err| FilterError::InvalidGlob {
            list,
            pattern: err.glob().unwrap_or_default().to_owned(),
            message: err.kind().to_string(),
        })?;
        Ok(Self {
            set,
            sources: patterns.to_vec(),
        })
    }

    fn first_match(&self, name: &str) -> Option<&str> {
        let index = self.set.matches(name).into_iter().min()?;
        self.sources.get(index).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(allow: &[&str], deny: &[&str]) -> ToolFilter {
        ToolFilter {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `expected`: "keep", "not allowed", or "denied by <pattern>".
    #[track_caller]
    fn check(allow: &[&str], deny: &[&str], tool: &str, expected: &str) {
        let matcher = ToolMatcher::new(&filter(allow, deny)).expect("test globs compile");
        let actual = match matcher.check(tool) {
            Ok(()) => "keep".to_owned(),
            Err(Refusal::NotAllowed) => "not allowed".to_owned(),
            Err(Refusal::Denied { pattern }) => format!("denied by {pattern}"),
        };
        assert_eq!(actual, expected, "tool {tool:?}");
    }

    #[test]
    fn empty_filter_keeps_everything() {
        check(&[], &[], "anything", "keep");
        check(&[], &[], "", "keep");
    }

    #[test]
    fn allow_list_restricts() {
        check(&["read_*", "list?"], &[], "read_file", "keep");
        check(&["read_*", "list?"], &[], "lists", "keep");
        check(&["read_*", "list?"], &[], "write_file", "not allowed");
        check(&["read_*"], &[], "READ_file", "not allowed");
    }

    #[test]
    fn deny_wins_over_allow() {
        check(&["*"], &["*delete*"], "delete_file", "denied by *delete*");
        check(
            &["delete_file"],
            &["delete_*"],
            "delete_file",
            "denied by delete_*",
        );
        check(&[], &["a*", "ab*"], "abc", "denied by a*");
    }

    #[test]
    fn globs_see_the_original_name_including_dots_and_slashes() {
        check(&["fs.*"], &[], "fs.read", "keep");
        check(&["[a-c]*"], &[], "b/nested", "keep");
        check(&["[a-c]*"], &[], "d", "not allowed");
    }

    #[test]
    fn bad_globs_are_reported() {
        let err = ToolMatcher::new(&filter(&[], &["ok", "[unclosed"])).unwrap_err();
        let FilterError::InvalidGlob { list, pattern, .. } = &err;
        assert_eq!((*list, pattern.as_str()), ("deny", "[unclosed"));
        assert!(
            err.to_string()
                .starts_with("invalid glob \"[unclosed\" in tools.deny: ")
        );
    }
}
