//! Parses an included JSON file (Claude Desktop / Cursor format) into the same [`Node`] tree.
//!
//! serde_json is the judge of validity, so syntax errors read like JSON errors and nothing that
//! real JSON tools accept is refused. For line numbers the same text is parsed again as YAML
//! (JSON is almost a subset); that tree is used only when it agrees with serde_json's value,
//! otherwise (surrogate escapes, duplicate keys, ...) positions are simply left out.

use serde_json::Value as Json;

use super::yaml::{self, Entry, Node, Pos, SyntaxError, Value};

/// Parses `text` as strict JSON.
pub(super) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let json: Json = serde_json::from_str(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let suffix = format!(" at line {line} column {column}");
        let message = e.to_string();
        let message = message.strip_suffix(&suffix).unwrap_or(&message);
        SyntaxError {
            pos: (line > 0).then_some(Pos {
                line,
                column: column.max(1),
            }),
            message: format!("invalid JSON: {message}"),
        }
    })?;
    match yaml::parse(text) {
        Ok(marked) if agrees(&marked, &json) => Ok(marked),
        _ => Ok(unmarked(&json)),
    }
}

/// Whether the YAML reading of the text means the same as serde_json's.
fn agrees(node: &Node, json: &Json) -> bool {
    match (&node.value, json) {
        (Value::Null, Json::Null) => true,
        (Value::Bool(a, _), Json::Bool(b)) => a == b,
        (Value::Int(a, _), Json::Number(b)) => b.as_i64() == Some(*a),
        (Value::Float(a), Json::Number(b)) => {
            b.as_i64().is_none() && a.parse::<f64>().ok() == b.as_f64()
        }
        (Value::Str(a), Json::String(b)) => a == b,
        (Value::Seq(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| agrees(a, b))
        }
        (Value::Map(a), Json::Object(b)) => {
            a.len() == b.len()
                && a.iter().all(|entry| {
                    matches!(&entry.key.value, Value::Str(k)
                        if b.get(k).is_some_and(|v| agrees(&entry.value, v)))
                })
        }
        _ => false,
    }
}

/// The tree without positions (serde_json's depth limit keeps this recursion shallow).
fn unmarked(json: &Json) -> Node {
    let value = match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b, b.to_string()),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i, n.to_string()),
            None => Value::Float(n.to_string()),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::Seq(items.iter().map(unmarked).collect()),
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| Entry {
                    key: Node {
                        pos: None,
                        value: Value::Str(k.clone()),
                    },
                    value: unmarked(v),
                })
                .collect(),
        ),
    };
    Node { pos: None, value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_error(text: &str, line: usize, fragment: &str) {
        let e = parse(text).unwrap_err();
        assert_eq!(e.pos.map(|p| p.line), Some(line), "{e:?}");
        assert!(e.message.contains(fragment), "{e:?}");
        assert!(!e.message.contains(" at line "), "{e:?}");
    }

    #[test]
    fn valid_json_gets_positions() {
        let node =
            parse("{\n  \"mcpServers\": {\n    \"fs\": {\"command\": \"npx\"}\n  }\n}\n").unwrap();
        let Value::Map(entries) = &node.value else {
            panic!("{node:?}")
        };
        assert_eq!(entries[0].key.pos, Some(Pos { line: 2, column: 3 }));
    }

    #[test]
    fn tabs_and_numbers_parse() {
        let node = parse("{\n\t\"a\": 3000,\n\t\"b\": 1.5,\n\t\"c\": [true, null]\n}").unwrap();
        let Value::Map(entries) = &node.value else {
            panic!("{node:?}")
        };
        assert_eq!(entries.len(), 3);
    }

    #[test]
    fn json_that_yaml_reads_differently_loses_positions_only() {
        // A surrogate pair, and a duplicate key (JSON keeps the last one).
        for text in [r#"{"a": "\ud83d\ude00"}"#, r#"{"a": 1, "a": 2}"#] {
            let node = parse(text).unwrap();
            let Value::Map(entries) = &node.value else {
                panic!("{node:?}")
            };
            assert_eq!(entries.len(), 1, "{text}");
        }
        let node = parse(r#"{"a": "\ud83d\ude00"}"#).unwrap();
        let Value::Map(entries) = &node.value else {
            panic!("{node:?}")
        };
        assert_eq!(entries[0].value.value, Value::Str("😀".into()));
    }

    #[test]
    fn syntax_errors_name_json_positions() {
        check_error("{\n  \"a\": 1,\n}\n", 3, "trailing comma");
        check_error("{\n  // comment\n}", 2, "invalid JSON");
        check_error("", 1, "EOF");
    }
}
