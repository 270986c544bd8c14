//! Turns YAML text into a small owned tree whose every node knows its line and column.
//!
//! saphyr's marked loader does the parsing; this module copies its result into [`Node`]s that
//! keep exactly what the walkers need (kind, value, source text of numbers, position). It also
//! shields callers from two saphyr limits: its parser, clone and drop recurse once per nesting
//! level, so parsing runs on a thread whose stack is sized from a cheap upper bound on the
//! nesting, and the copied tree is cut off at [`MAX_DEPTH`] so nothing after it recurses deeply.

use std::borrow::Cow;

use saphyr::{LoadableYamlNode, MarkedYaml, Marker, Scalar, YamlData};

/// A place in a file; both numbers are 1-based, the column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pos {
    /// 1-based line.
    pub(super) line: usize,
    /// 1-based column, in characters.
    pub(super) column: usize,
}

impl Pos {
    fn from_marker(marker: Marker) -> Pos {
        Pos {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

/// One value of the document with its position (`None` for JSON that saphyr could not mark).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    /// Where the value starts.
    pub(super) pos: Option<Pos>,
    /// The value itself.
    pub(super) value: Value,
}

/// The kinds of value a config can hold; scalars other than strings keep their source text so
/// `PORT: 3000` or `- 1.10` can be used as strings exactly as written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool, String),
    /// An integer that fits in `i64`.
    Int(i64, String),
    /// Any other number.
    Float(String),
    /// A string (quoted, or plain text that is no other kind).
    Str(String),
    /// A list.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<Entry>),
    /// Something the config cannot use (custom tag, bad tagged value, excessive nesting); the
    /// text says why and is reported wherever the value is read.
    Unsupported(String),
}

/// One `key: value` pair of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry {
    /// The key node (its position is where "unknown key" errors point).
    pub(super) key: Node,
    /// The value node.
    pub(super) value: Node,
}

impl Value {
    /// Names the kind for "expected X, found Y" messages, without the value.
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(..) => "a boolean",
            Value::Int(..) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Unsupported(_) => "an unsupported value",
        }
    }
}

impl Node {
    /// The text of a scalar usable as a mapping key or string (`None` for null and collections).
    pub(super) fn scalar_text(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) | Value::Bool(_, s) | Value::Int(_, s) | Value::Float(s) => Some(s),
            _ => None,
        }
    }
}

/// A document that could not be parsed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SyntaxError {
    /// Where the parser gave up, when known.
    pub(super) pos: Option<Pos>,
    /// The parser's reason, lower case.
    pub(super) message: String,
}

/// Nodes deeper than this are replaced by [`Value::Unsupported`]; the config schema is about six
/// levels deep, so nothing valid is lost.
pub(super) const MAX_DEPTH: usize = 32;

/// Stack budget per nesting level for saphyr's recursion (measured around 2–4 KiB in debug
/// builds; doubled for margin).
const STACK_PER_LEVEL: usize = 8 * 1024;
/// Stack for everything that does not depend on nesting.
const STACK_BASE: usize = 2 * 1024 * 1024;
/// Beyond this the file is refused rather than given an absurd stack.
const STACK_MAX: usize = 1024 * 1024 * 1024;
/// saphyr's default budget of nodes created by alias expansion.
const ALIAS_NODE_BUDGET: u64 = 100_000;

/// Parses one YAML document; an empty document is [`Value::Null`].
pub(super) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let (bound, deepest_line) = nesting_bound(text);
    let stack = bound
        .checked_mul(STACK_PER_LEVEL)
        .and_then(|s| s.checked_add(STACK_BASE))
        .filter(|s| *s <= STACK_MAX);
    let Some(stack) = stack else {
        return Err(SyntaxError {
            pos: Some(Pos {
                line: deepest_line,
                column: 1,
            }),
            message: "the document nests or indents too deeply to be parsed safely".to_owned(),
        });
    };
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("config-yaml".to_owned())
            .stack_size(stack)
            .spawn_scoped(scope, || parse_on_this_thread(text));
        match handle {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(SyntaxError {
                    pos: None,
                    message: "the YAML parser failed on this input".to_owned(),
                })
            }),
            Err(e) => Err(SyntaxError {
                pos: None,
                message: format!("cannot start the YAML parser thread: {e}"),
            }),
        }
    })
}

/// An upper bound on how deeply saphyr will recurse for `text`, and the line that drives it.
///
/// Block collections nest only at strictly greater columns (plus one indentless sequence per
/// mapping), and each starts at or before an indicator (`-`, `?`, `:`) followed by a blank, so
/// block depth is at most twice the largest such column; flow nesting is capped at 255 by
/// saphyr. Aliases copy anchored subtrees: with the alias node budget `N` and per-step depth
/// `d`, chained aliases reach at most `sqrt(2·N·d)` more levels.
fn nesting_bound(text: &str) -> (usize, usize) {
    let mut max_column: usize = 0;
    let mut deepest_line = 1;
    let mut line = 1;
    let mut column = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
            column = 0;
            continue;
        }
        if matches!(c, '-' | '?' | ':')
            && chars
                .peek()
                .is_none_or(|n| matches!(n, ' ' | '\t' | '\r' | '\n'))
            && column > max_column
        {
            max_column = column;
            deepest_line = line;
        }
        column += 1;
    }
    let mut bound = 2 * (max_column + 2) + 256;
    if text.contains('&') && text.contains('*') {
        let steps = u64::try_from(bound).unwrap_or(u64::MAX);
        let extra = (2 * ALIAS_NODE_BUDGET).saturating_mul(steps).isqrt();
        bound = bound.saturating_add(usize::try_from(extra).unwrap_or(usize::MAX));
    }
    (bound, deepest_line)
}

fn parse_on_this_thread(text: &str) -> Result<Node, SyntaxError> {
    let docs = MarkedYaml::load_from_str(text).map_err(|e| SyntaxError {
        pos: Some(Pos::from_marker(*e.marker())),
        message: e.info().to_owned(),
    })?;
    let source = Source::new(text);
    // Empty documents (only comments, a lone `---`, `...`) load as null or as a zero-width
    // `BadValue`; they carry no configuration, so only the others count.
    let mut docs = docs.into_iter().filter(|doc| match doc.data {
        YamlData::Value(Scalar::Null) => false,
        YamlData::BadValue => doc.span.start.index() != doc.span.end.index(),
        _ => true,
    });
    let Some(first) = docs.next() else {
        return Ok(Node {
            pos: None,
            value: Value::Null,
        });
    };
    if let Some(second) = docs.next() {
        return Err(SyntaxError {
            pos: Some(Pos::from_marker(second.span.start)),
            message: "found a second YAML document; a config file holds exactly one".to_owned(),
        });
    }
    Ok(convert(&first, &source, 0))
}

/// The input text with char-index to byte-offset conversion (saphyr's markers count chars).
struct Source<'a> {
    text: &'a str,
    /// Byte offset of each char, only built when the text is not ASCII.
    offsets: Option<Vec<usize>>,
}

impl<'a> Source<'a> {
    fn new(text: &'a str) -> Self {
        let offsets = (!text.is_ascii()).then(|| {
            text.char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(text.len()))
                .collect()
        });
        Source { text, offsets }
    }

    fn slice(&self, start: usize, end: usize) -> Option<&'a str> {
        let (start, end) = match &self.offsets {
            None => (start, end),
            Some(offsets) => (*offsets.get(start)?, *offsets.get(end)?),
        };
        self.text.get(start..end)
    }
}

fn convert(node: &MarkedYaml<'_>, source: &Source<'_>, depth: usize) -> Node {
    let pos = Some(Pos::from_marker(node.span.start));
    let value = if depth > MAX_DEPTH {
        Value::Unsupported("the value nests too deeply".to_owned())
    } else {
        convert_data(node, source, depth)
    };
    Node { pos, value }
}

fn convert_data(node: &MarkedYaml<'_>, source: &Source<'_>, depth: usize) -> Value {
    match &node.data {
        YamlData::Value(scalar) => convert_scalar(scalar, node, source),
        YamlData::Representation(text, style, tag) => {
            match Scalar::parse_from_cow_and_metadata(Cow::Borrowed(text), *style, tag.as_ref()) {
                Some(scalar) => convert_scalar(&scalar, node, source),
                None => bad_tag_value(),
            }
        }
        YamlData::Sequence(items) => Value::Seq(
            items
                .iter()
                .map(|item| convert(item, source, depth + 1))
                .collect(),
        ),
        YamlData::Mapping(map) => Value::Map(
            map.iter()
                .map(|(key, value)| Entry {
                    key: convert(key, source, depth + 1),
                    value: convert(value, source, depth + 1),
                })
                .collect(),
        ),
        YamlData::Tagged(tag, inner) => {
            if tag.is_yaml_core_schema() {
                convert_data(inner, source, depth)
            } else {
                Value::Unsupported(format!(
                    "YAML tags such as `{tag}` are not supported; use `${{VAR}}` to insert environment variables"
                ))
            }
        }
        YamlData::Alias(_) => Value::Unsupported("unresolved YAML alias".to_owned()),
        YamlData::BadValue => bad_tag_value(),
    }
}

fn bad_tag_value() -> Value {
    Value::Unsupported("the value does not match its YAML tag".to_owned())
}

fn convert_scalar(scalar: &Scalar<'_>, node: &MarkedYaml<'_>, source: &Source<'_>) -> Value {
    // The source text of a plain scalar, if it reads back as the same value.
    let written = || {
        source
            .slice(node.span.start.index(), node.span.end.index())
            .filter(|text| Scalar::parse_from_cow(Cow::Borrowed(text)) == *scalar)
            .map(str::to_owned)
    };
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b, written().unwrap_or_else(|| b.to_string())),
        Scalar::Integer(i) => Value::Int(*i, written().unwrap_or_else(|| i.to_string())),
        Scalar::FloatingPoint(f) => Value::Float(written().unwrap_or_else(|| f.to_string())),
        Scalar::String(s) => Value::Str(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Node {
        match parse(text) {
            Ok(node) => node,
            Err(e) => panic!("{text:?} should parse: {e:?}"),
        }
    }

    fn map_entries(node: &Node) -> &[Entry] {
        match &node.value {
            Value::Map(entries) => entries,
            other => panic!("expected a mapping, found {other:?}"),
        }
    }

    #[track_caller]
    fn check(text: &str, key: &str, value: Value, line: usize, column: usize) {
        let root = parsed(text);
        let entry = map_entries(&root)
            .iter()
            .find(|e| e.key.scalar_text() == Some(key))
            .unwrap_or_else(|| panic!("no key {key}"));
        assert_eq!(entry.value.value, value);
        assert_eq!(entry.value.pos, Some(Pos { line, column }));
    }

    #[test]
    fn scalars_keep_positions_and_source_text() {
        let text = "a: 1\nb:  0x1F\nc: 1.10\nd: true\ne: text\nf: '3'\ng:\nh: é\ni: 3000\n";
        check(text, "a", Value::Int(1, "1".into()), 1, 4);
        check(text, "b", Value::Int(31, "0x1F".into()), 2, 5);
        check(text, "c", Value::Float("1.10".into()), 3, 4);
        check(text, "d", Value::Bool(true, "true".into()), 4, 4);
        check(text, "e", Value::Str("text".into()), 5, 4);
        check(text, "f", Value::Str("3".into()), 6, 4);
        check(text, "g", Value::Null, 7, 2);
        check(text, "h", Value::Str("é".into()), 8, 4);
        check(text, "i", Value::Int(3000, "3000".into()), 9, 4);
    }

    #[test]
    fn empty_and_comment_only_documents_are_null() {
        for text in ["", "# nothing\n", "---\n", "\n\n"] {
            assert_eq!(parsed(text).value, Value::Null, "{text:?}");
        }
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(e.pos.is_some(), "{e:?}");
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.pos, Some(Pos { line: 2, column: 1 }), "{e:?}");
        assert!(e.message.contains("duplicated key"), "{e:?}");
    }

    #[test]
    fn second_document_is_an_error() {
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.pos.map(|p| p.line), Some(3), "{e:?}");
        // Empty documents around the real one are harmless.
        assert!(matches!(
            parsed("---\na: 1\n---\n# end\n").value,
            Value::Map(_)
        ));
    }

    #[test]
    fn custom_tags_are_unsupported_and_core_tags_apply() {
        let root = parsed("a: !env HOME\nb: !!str 12\nc: !!int nope\n");
        let entries = map_entries(&root);
        assert!(matches!(&entries[0].value.value, Value::Unsupported(m) if m.contains("`!env`")));
        assert_eq!(entries[1].value.value, Value::Str("12".into()));
        assert!(matches!(&entries[2].value.value, Value::Unsupported(_)));
    }

    #[test]
    fn aliases_are_resolved() {
        let root = parsed("a: &x [1]\nb: *x\n");
        let entries = map_entries(&root);
        assert_eq!(entries[0].value.value, entries[1].value.value);
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        for text in [
            "- ".repeat(20_000) + "x",
            "[".repeat(300),
            format!("? {}x\n: 1\n", "- ".repeat(5_000)),
            (0..3_000)
                .map(|i| " ".repeat(i) + "a:\n")
                .collect::<String>(),
            chained_aliases(200, 30),
        ] {
            // Ok or Err are both fine; the process must survive.
            let _ = parse(&text);
        }
        let deep = "- ".repeat(100) + "x";
        let root = parsed(&deep);
        let mut node = &root;
        let mut depth = 0;
        while let Value::Seq(items) = &node.value {
            node = &items[0];
            depth += 1;
        }
        assert!(depth <= MAX_DEPTH + 2, "{depth}");
        assert!(matches!(node.value, Value::Unsupported(_)));
    }

    /// `a0: &a0 [[..x..]]`, then each `aN` nests `*aN-1` `depth` levels deeper.
    fn chained_aliases(depth: usize, count: usize) -> String {
        let (open, close) = ("[".repeat(depth), "]".repeat(depth));
        let mut text = format!("a0: &a0 {open}x{close}\n");
        for i in 1..count {
            text.push_str(&format!("a{i}: &a{i} {open}*a{}{close}\n", i - 1));
        }
        text
    }

    #[test]
    fn chained_aliases_parse_on_a_big_enough_stack() {
        let root = parsed(&chained_aliases(200, 30));
        let entries = map_entries(&root);
        assert_eq!(entries.len(), 30);
    }

    #[test]
    fn nesting_bound_tracks_indicator_columns() {
        assert_eq!(nesting_bound("a: 1\n").0, 2 * 3 + 256);
        let (bound, line) = nesting_bound("a:\n  b:\n      - x\n");
        assert_eq!((bound, line), (2 * 8 + 256, 3));
    }
}
