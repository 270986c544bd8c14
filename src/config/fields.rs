//! Typed reads of [`Node`]s that record a located error instead of failing.
//!
//! [`Ctx`] knows which file is being read and whether `${VAR}` expansion applies there; each
//! reader returns `None` after recording exactly why the value is unusable, so callers can keep
//! going and report every problem at once. Readers never copy a value into a message, which is
//! what keeps `env` and `headers` secrets out of errors.

use std::path::Path;

use super::error::{ConfigError, child_path, item_path};
use super::interpolate::interpolate;
use super::suggest;
use super::yaml::{Entry, Node, Pos, Value};

/// Environment lookup, as given to [`super::load`].
pub(super) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reading state for one file: where errors go and how strings are expanded.
pub(super) struct Ctx<'a> {
    /// The file being read, named by every error.
    pub(super) file: &'a Path,
    /// `Some` to expand `${VAR}` in strings (our YAML), `None` to take them literally (included
    /// JSON files, which other tools read verbatim).
    pub(super) env: Option<Lookup<'a>>,
    /// Every error found so far, across files.
    pub(super) errors: &'a mut Vec<ConfigError>,
}

/// The known keys of one mapping that are present, with their key and value nodes.
pub(super) struct Fields<'n> {
    /// Where the mapping itself is (for "missing key" errors).
    pub(super) pos: Option<Pos>,
    present: Vec<(&'static str, &'n Entry)>,
    /// Known keys offered as "did you mean" for unknown ones (already reported).
    suggested: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    /// The value of `key`, if present.
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The whole entry of `key` (its key node locates "not allowed here" errors).
    pub(super) fn entry(&self, key: &str) -> Option<&'n Entry> {
        self.present
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, e)| *e)
    }

    /// Whether `key` is present.
    pub(super) fn has(&self, key: &str) -> bool {
        self.entry(key).is_some()
    }

    /// Whether a misspelling of `key` was reported, so "missing `key`" would only repeat it.
    pub(super) fn misspelled(&self, key: &str) -> bool {
        self.suggested.contains(&key)
    }
}

impl<'a> Ctx<'a> {
    /// Records one error at `pos`.
    pub(super) fn error(&mut self, pos: Option<Pos>, path: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            key_path: path.to_owned(),
            message: message.into(),
        });
    }

    /// Records "expected X, found Y" (or the reason an unsupported value was rejected).
    pub(super) fn expected(&mut self, node: &Node, path: &str, what: &str) {
        let message = match &node.value {
            Value::Unsupported(why) => why.clone(),
            other => format!("expected {what}, found {}", other.describe()),
        };
        self.error(node.pos, path, message);
    }

    /// The entries of a mapping; null counts as an empty mapping so `section:` alone is fine.
    pub(super) fn mapping<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Entry]> {
        match &node.value {
            Value::Map(entries) => Some(entries),
            Value::Null => Some(&[]),
            _ => {
                self.expected(node, path, "a mapping");
                None
            }
        }
    }

    /// The key of an entry as text, or an error for null and collection keys.
    pub(super) fn key<'n>(&mut self, entry: &'n Entry, path: &str) -> Option<&'n str> {
        let key = entry.key.scalar_text();
        if key.is_none() {
            self.expected(&entry.key, path, "a string key");
        }
        key
    }

    /// A mapping whose keys must all be in `known`; unknown keys are reported with a hint.
    pub(super) fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        known: &[&'static str],
    ) -> Option<Fields<'n>> {
        let entries = self.mapping(node, path)?;
        let mut present = Vec::new();
        let mut suggested = Vec::new();
        for entry in entries {
            let Some(key) = self.key(entry, path) else {
                continue;
            };
            match known.iter().find(|k| **k == key) {
                Some(k) => present.push((*k, entry)),
                None => {
                    suggested.extend(suggest::closest(key, known));
                    let message = suggest::unknown("key", key, known);
                    self.error(entry.key.pos, &child_path(path, key), message);
                }
            }
        }
        Some(Fields {
            pos: node.pos,
            present,
            suggested,
        })
    }

    /// A string; other scalars count as their source text (`PORT: 3000` is `"3000"`).
    /// `${VAR}` references are expanded when this file allows it.
    pub(super) fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(text) => self.expand(text, node.pos, path),
            Value::Bool(_, text) | Value::Int(_, text) | Value::Float(text) => Some(text.clone()),
            _ => {
                self.expected(node, path, "a string");
                None
            }
        }
    }

    /// A non-empty string without NUL characters (program names, paths).
    pub(super) fn non_empty_string(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.string(node, path)?;
        if text.is_empty() {
            self.error(node.pos, path, "must not be empty");
            None
        } else if text.contains('\0') {
            self.error(node.pos, path, "must not contain a NUL character");
            None
        } else {
            Some(text)
        }
    }

    /// An integer in `min..=max`; strings holding a decimal integer are accepted, which is what
    /// `timeout_ms: ${T:-5000}` produces.
    pub(super) fn integer(&mut self, node: &Node, path: &str, min: u64, max: u64) -> Option<u64> {
        let range = || format!("between {min} and {max}");
        let number = match &node.value {
            Value::Int(i, _) => Some(*i),
            Value::Str(text) => {
                let text = self.expand(text, node.pos, path)?;
                match text.trim().parse::<i64>() {
                    Ok(i) => Some(i),
                    Err(_) => {
                        self.error(
                            node.pos,
                            path,
                            format!("expected an integer {}, found a string", range()),
                        );
                        return None;
                    }
                }
            }
            _ => None,
        };
        let Some(number) = number else {
            self.expected(node, path, &format!("an integer {}", range()));
            return None;
        };
        match u64::try_from(number) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(
                    node.pos,
                    path,
                    format!("must be {}, found {number}", range()),
                );
                None
            }
        }
    }

    /// A boolean; the strings `true` and `false` (any case) are accepted too.
    pub(super) fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b, _) => Some(*b),
            Value::Str(text) => {
                let text = self.expand(text, node.pos, path)?;
                match text.trim().to_ascii_lowercase().as_str() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => {
                        self.error(node.pos, path, "expected true or false, found a string");
                        None
                    }
                }
            }
            _ => {
                self.expected(node, path, "true or false");
                None
            }
        }
    }

    /// A list of strings (numbers count as their text); null is an empty list. Every bad item
    /// is reported; `None` if any was bad.
    pub(super) fn string_list(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let items: &[Node] = match &node.value {
            Value::Seq(items) => items,
            Value::Null => &[],
            _ => {
                self.expected(node, path, "a list of strings");
                return None;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = item_path(path, i);
            match self.string(item, &item_path) {
                Some(text) if text.contains('\0') => {
                    self.error(item.pos, &item_path, "must not contain a NUL character");
                    ok = false;
                }
                Some(text) => out.push(text),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Expands `${VAR}` in `text` when this file allows it, reporting each problem at `pos`.
    fn expand(&mut self, text: &str, pos: Option<Pos>, path: &str) -> Option<String> {
        let Some(env) = self.env else {
            return Some(text.to_owned());
        };
        match interpolate(text, env) {
            Ok(out) => Some(out),
            Err(problems) => {
                for problem in problems {
                    self.error(pos, path, problem.to_string());
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml;

    fn env(name: &str) -> Option<String> {
        (name == "T").then(|| "250".to_owned())
    }

    /// Runs `read` on the value of key `v` in `text`, returning its result and the messages.
    fn read<T>(
        text: &str,
        read: impl FnOnce(&mut Ctx<'_>, &Node) -> Option<T>,
    ) -> (Option<T>, Vec<String>) {
        let root = yaml::parse(text).expect("test YAML parses");
        let Value::Map(entries) = &root.value else {
            panic!("test YAML is a mapping")
        };
        let mut errors = Vec::new();
        let mut ctx = Ctx {
            file: Path::new("t.yaml"),
            env: Some(&env),
            errors: &mut errors,
        };
        let out = read(&mut ctx, &entries[0].value);
        (out, errors.iter().map(ToString::to_string).collect())
    }

    #[track_caller]
    fn check<T: PartialEq + std::fmt::Debug>(
        (value, errors): (Option<T>, Vec<String>),
        expected: Option<T>,
        expected_errors: &[&str],
    ) {
        assert_eq!(value, expected);
        assert_eq!(errors, expected_errors);
    }

    #[test]
    fn integers_from_numbers_and_strings() {
        let int = |c: &mut Ctx<'_>, n: &Node| c.integer(n, "v", 1, 1000);
        check(read("v: 5", int), Some(5), &[]);
        check(read("v: '7'", int), Some(7), &[]);
        check(read("v: ${T}", int), Some(250), &[]);
        check(read("v: ${U:-9}", int), Some(9), &[]);
        check(
            read("v: 0", int),
            None,
            &["t.yaml:1:4: v: must be between 1 and 1000, found 0"],
        );
        check(
            read("v: -3", int),
            None,
            &["t.yaml:1:4: v: must be between 1 and 1000, found -3"],
        );
        check(
            read("v: 2.5", int),
            None,
            &["t.yaml:1:4: v: expected an integer between 1 and 1000, found a number"],
        );
        check(
            read("v: five", int),
            None,
            &["t.yaml:1:4: v: expected an integer between 1 and 1000, found a string"],
        );
        check(
            read("v: ${U}", int),
            None,
            &[
                "t.yaml:1:4: v: environment variable `U` is not set (give a default with `${U:-default}`)",
            ],
        );
    }

    #[test]
    fn booleans_from_booleans_and_strings() {
        let b = |c: &mut Ctx<'_>, n: &Node| c.boolean(n, "v");
        check(read("v: true", b), Some(true), &[]);
        check(read("v: 'False'", b), Some(false), &[]);
        check(
            read("v: yes", b),
            None,
            &["t.yaml:1:4: v: expected true or false, found a string"],
        );
        check(
            read("v: 1", b),
            None,
            &["t.yaml:1:4: v: expected true or false, found an integer"],
        );
    }

    #[test]
    fn strings_accept_scalars_but_not_collections() {
        let s = |c: &mut Ctx<'_>, n: &Node| c.string(n, "v");
        check(read("v: 3000", s), Some("3000".to_owned()), &[]);
        check(read("v: 1.10", s), Some("1.10".to_owned()), &[]);
        check(
            read("v: [a]", s),
            None,
            &["t.yaml:1:4: v: expected a string, found a list"],
        );
        check(
            read("v:", s),
            None,
            &["t.yaml:1:2: v: expected a string, found null"],
        );
    }

    #[test]
    fn string_lists_report_every_bad_item() {
        let l = |c: &mut Ctx<'_>, n: &Node| c.string_list(n, "v");
        check(
            read("v: [a, 1, true]", l),
            Some(vec!["a".to_owned(), "1".to_owned(), "true".to_owned()]),
            &[],
        );
        check(
            read("v:\n  - a\n  - [b]\n  - {c: d}\n", l),
            None,
            &[
                "t.yaml:3:5: v[1]: expected a string, found a list",
                "t.yaml:4:5: v[2]: expected a string, found a mapping",
            ],
        );
        check(
            read("v: a b", l),
            None,
            &["t.yaml:1:4: v: expected a list of strings, found a string"],
        );
    }

    #[test]
    fn fields_report_unknown_keys_with_hints() {
        let f = |c: &mut Ctx<'_>, n: &Node| {
            c.fields(n, "s", &["command", "args"])
                .map(|f| f.has("args"))
        };
        check(
            read("v:\n  comand: x\n  args: []\n", f),
            Some(true),
            &[
                "t.yaml:2:3: s.comand: unknown key `comand` (did you mean `command`?); expected one of: command, args",
            ],
        );
    }
}
