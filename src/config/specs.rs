//! Field specs shared by the sections: millisecond fields (key, range, default) and their
//! readers, and the alphabets of configured names.
//!
//! Models, agents and MCP servers all have timeouts and names; keeping one definition of each
//! here means a limit (a day for any timeout) or a rule (1–64 characters) cannot drift apart
//! between sections, and their messages read the same everywhere.

use std::time::Duration;

use super::error::child_path;
use super::fields::{Ctx, Fields};

/// Longest accepted timeout, in any section: a day.
pub(super) const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

/// A millisecond field: its key, accepted range and default.
#[derive(Clone, Copy)]
pub(super) struct Millis {
    pub(super) key: &'static str,
    pub(super) min: u64,
    pub(super) max: u64,
    pub(super) default: u64,
}

impl Millis {
    /// A timeout from 1 ms to [`MAX_TIMEOUT_MS`], the range of most timeouts.
    pub(super) const fn timeout(key: &'static str, default: u64) -> Self {
        Self {
            key,
            min: 1,
            max: MAX_TIMEOUT_MS,
            default,
        }
    }

    /// The default, as a duration.
    pub(super) const fn default_duration(self) -> Duration {
        Duration::from_millis(self.default)
    }
}

/// The value of a millisecond field of the mapping at `path`, `Some(None)` when absent, `None`
/// after an error.
pub(super) fn given_millis(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    path: &str,
    spec: Millis,
) -> Option<Option<u64>> {
    match fields.get(spec.key) {
        None => Some(None),
        Some(n) => ctx
            .integer(n, &child_path(path, spec.key), spec.min, spec.max)
            .map(Some),
    }
}

/// A millisecond field, its default when absent.
pub(super) fn millis(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    path: &str,
    spec: Millis,
) -> Option<Duration> {
    let value = given_millis(ctx, fields, path, spec)?.unwrap_or(spec.default);
    Some(Duration::from_millis(value))
}

/// Two millisecond fields where `low` must not exceed `high` (first token within the whole
/// request, first backoff within the cap, probe within its interval, one tool call within the
/// run).
///
/// An absent `low` takes its default lowered to fit, so `timeout_ms: 10000` alone is fine. A
/// given `low` above `high` is an error even when `high` is the default: silently raising a
/// limit the user did not write would be a surprise.
pub(super) fn ordered(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    path: &str,
    low: Millis,
    high: Millis,
) -> Option<(Duration, Duration)> {
    let low_given = given_millis(ctx, fields, path, low);
    let high_given = given_millis(ctx, fields, path, high);
    let (low_given, high_given) = (low_given?, high_given?);
    let high_value = high_given.unwrap_or(high.default);
    let low_value = match low_given {
        None => low.default.min(high_value),
        Some(value) if value > high_value => {
            let by_default = if high_given.is_none() {
                " by default"
            } else {
                ""
            };
            ctx.error(
                fields.get(low.key).and_then(|n| n.pos),
                &child_path(path, low.key),
                format!(
                    "must not exceed `{}` ({high_value}{by_default}), found {value}",
                    high.key
                ),
            );
            return None;
        }
        Some(value) => value,
    };
    Some((
        Duration::from_millis(low_value),
        Duration::from_millis(high_value),
    ))
}

/// The alphabet of a kind of configured name: 1–64 ASCII letters, digits and some punctuation.
/// Names end up in URLs, tool names (`server__tool`) and `agent:NAME`, so they stay plain.
#[derive(Clone, Copy)]
pub(super) struct NameSpec {
    /// The punctuation allowed besides letters and digits, in the order messages list it.
    punctuation: &'static [u8],
}

/// MCP server and agent names: `[A-Za-z0-9_.-]`.
pub(super) const PLAIN_NAME: NameSpec = NameSpec {
    punctuation: b"_.-",
};
/// Model names, which also allow `:` (`qwen2.5:7b` is how Ollama names its models).
pub(super) const MODEL_NAME: NameSpec = NameSpec {
    punctuation: b"_.:-",
};

impl NameSpec {
    /// Whether `name` is usable.
    pub(super) fn accepts(self, name: &str) -> bool {
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || self.punctuation.contains(&b))
    }

    /// How to fix a rejected name: "use 1 to 64 characters from A-Z, a-z, 0-9, `_`, `.` and `-`".
    pub(super) fn rule(self) -> String {
        let marks: Vec<String> = self
            .punctuation
            .iter()
            .map(|&b| format!("`{}`", char::from(b)))
            .collect();
        let listed = match marks.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        };
        format!("use 1 to 64 characters from A-Z, a-z, 0-9, {listed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules_read_as_before() {
        assert_eq!(
            PLAIN_NAME.rule(),
            "use 1 to 64 characters from A-Z, a-z, 0-9, `_`, `.` and `-`"
        );
        assert_eq!(
            MODEL_NAME.rule(),
            "use 1 to 64 characters from A-Z, a-z, 0-9, `_`, `.`, `:` and `-`"
        );
    }

    #[test]
    fn names_are_short_and_plain() {
        assert!(PLAIN_NAME.accepts("a.b-c_D9"));
        assert!(!PLAIN_NAME.accepts("a:b"));
        assert!(MODEL_NAME.accepts("a:b"));
        for spec in [PLAIN_NAME, MODEL_NAME] {
            assert!(spec.accepts(&"a".repeat(64)));
            assert!(!spec.accepts(&"a".repeat(65)));
            assert!(!spec.accepts(""));
            assert!(!spec.accepts("a b"));
            assert!(!spec.accepts("é"));
        }
    }
}
