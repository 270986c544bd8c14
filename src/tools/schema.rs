//! Admission checks for tool schemas, and the schema walker the other files share.
//!
//! A server's `inputSchema` is untrusted input that we compile, store, and paste into every model
//! request. This file refuses what is unusable or hostile (not an object schema, too deep, too
//! big, references outside the document) and returns a normalized copy with annotation text
//! sanitized. Compiling the validator lives in `validate`, provider conversion in `strict` and
//! `entry`.

use std::io;
use std::ops::ControlFlow;

use serde_json::{Map, Value};

use super::sanitize::{MAX_TITLE_CHARS, clean_text};

/// Deepest JSON nesting (objects and arrays, the root object being level 1) a schema may have.
///
/// Counted on the raw JSON, not on schema levels: one property level costs two (`properties`,
/// then the property's schema), so this allows about 15 levels of nested objects, more than any
/// real tool needs, while bounding every recursive walk in this module.
pub const MAX_SCHEMA_DEPTH: usize = 32;

/// Largest serialized (compact JSON) schema we accept: 256 KiB.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;

/// Why a schema was refused. Messages are shown to operators and embedded in drop reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The root is not an object schema, so arguments could never be a JSON object.
    #[error("schema root must have type \"object\", found {found}")]
    NotAnObject {
        /// What was there instead, e.g. `type "string"` or `no type`.
        found: String,
    },
    /// Nesting is deeper than [`MAX_SCHEMA_DEPTH`].
    #[error("schema nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// Serialized size is over [`MAX_SCHEMA_BYTES`].
    #[error("schema is larger than {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// A `$ref` (or `$dynamicRef`/`$recursiveRef`) that points outside the document: a URL or a
    /// file. We never fetch anything, and a schema that needs to cannot be checked.
    #[error("{keyword} {reference} is not a local \"#...\" reference")]
    NonLocalRef {
        /// The keyword that held it.
        keyword: String,
        /// The reference as JSON (quoted when a string), cut to a readable length.
        reference: String,
    },
    /// The validator compiler refused the schema (unresolvable local reference, invalid keyword
    /// value, bad regex, ...).
    #[error("schema does not compile: {message}")]
    DoesNotCompile {
        /// The compiler's message, cut to a readable length.
        message: String,
    },
}

/// Keywords whose value maps names to subschemas (the names are not keywords).
const SCHEMA_MAP_KEYWORDS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
    "dependencies",
];

/// Keywords whose value is data or annotation, never a subschema.
const DATA_KEYWORDS: &[&str] = &[
    "enum",
    "const",
    "default",
    "examples",
    "required",
    "dependentRequired",
    "type",
    "title",
    "description",
    "$comment",
    "$schema",
    "$id",
    "$anchor",
    "$dynamicAnchor",
    "pattern",
    "format",
];

/// Reference keywords; each must hold a local `#...` pointer.
const REF_KEYWORDS: &[&str] = &["$ref", "$dynamicRef", "$recursiveRef"];

/// Longest piece of a refused value quoted in an error message.
const QUOTE_CHARS: usize = 80;

/// Checks a tool's `inputSchema` and returns the copy we use from then on: missing `type` is
/// filled in as `"object"` when `properties` is present, and nested `title`/`description`
/// strings are sanitized and capped at `max_description_chars` like the tool's own description.
///
/// # Errors
///
/// The first problem found: depth, then size, then root type, then references.
pub(crate) fn check_input_schema(
    schema: &Map<String, Value>,
    max_description_chars: usize,
) -> Result<Map<String, Value>, SchemaError> {
    check_shape(schema)?;
    let mut schema = schema.clone();
    match schema.get("type") {
        Some(Value::String(t)) if t == "object" => {}
        Some(Value::Array(types)) if types.len() == 1 && types[0] == "object" => {
            schema.insert("type".into(), Value::from("object"));
        }
        None if schema.get("properties").is_some_and(Value::is_object) => {
            schema.insert("type".into(), Value::from("object"));
        }
        found => {
            return Err(SchemaError::NotAnObject {
                found: match found {
                    None => "no type".to_owned(),
                    Some(t) => format!("type {}", quote(t)),
                },
            });
        }
    }
    let mut root = Value::Object(schema);
    for_each_schema_mut(&mut root, &mut |node| {
        sanitize_annotations(node, max_description_chars)
    });
    match root {
        Value::Object(schema) => Ok(schema),
        // The walk never changes the root's JSON type.
        _ => Err(SchemaError::NotAnObject {
            found: "a non-object".to_owned(),
        }),
    }
}

/// Checks an `outputSchema`: the same depth, size and reference limits, any root type.
///
/// # Errors
///
/// The first problem found.
pub(crate) fn check_output_schema(schema: &Map<String, Value>) -> Result<(), SchemaError> {
    check_shape(schema)
}

/// Depth first (it bounds the recursion of the other two checks), then size, then references.
fn check_shape(schema: &Map<String, Value>) -> Result<(), SchemaError> {
    if object_depth_exceeds(schema, MAX_SCHEMA_DEPTH) {
        return Err(SchemaError::TooDeep {
            max: MAX_SCHEMA_DEPTH,
        });
    }
    if !fits_in_bytes(schema, MAX_SCHEMA_BYTES) {
        return Err(SchemaError::TooLarge {
            max: MAX_SCHEMA_BYTES,
        });
    }
    check_refs(schema)
}

/// Every reference keyword in any schema position holds a string starting with `#`.
///
/// Unknown keywords are walked as if they held schemas, so a reference cannot hide in a keyword
/// a later draft or the compiler might interpret.
fn check_refs(schema: &Map<String, Value>) -> Result<(), SchemaError> {
    let outcome = for_each_schema_node(schema, &mut |node| {
        for keyword in REF_KEYWORDS {
            match node.get(*keyword) {
                None => {}
                Some(Value::String(r)) if r.starts_with('#') => {}
                Some(other) => {
                    return ControlFlow::Break(SchemaError::NonLocalRef {
                        keyword: (*keyword).to_owned(),
                        reference: quote(other),
                    });
                }
            }
        }
        ControlFlow::Continue(())
    });
    match outcome {
        ControlFlow::Break(err) => Err(err),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Cleans `title` and `description` of one schema node.
fn sanitize_annotations(node: &mut Map<String, Value>, max_description_chars: usize) {
    for (keyword, cap) in [
        ("description", max_description_chars),
        ("title", MAX_TITLE_CHARS),
    ] {
        if let Some(Value::String(text)) = node.get_mut(keyword) {
            *text = clean_text(text, cap);
        }
    }
}

/// Whether the JSON nests deeper than `max` containers, the root object counting as 1.
/// Stops descending at `max`, so it is safe on any input.
fn object_depth_exceeds(schema: &Map<String, Value>, max: usize) -> bool {
    fn exceeds(value: &Value, depth_left: usize) -> bool {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(map) => Box::new(map.values()),
            Value::Array(items) => Box::new(items.iter()),
            _ => return false,
        };
        match depth_left.checked_sub(1) {
            None => true,
            Some(left) => children.into_iter().any(|child| exceeds(child, left)),
        }
    }
    max == 0 || schema.values().any(|child| exceeds(child, max - 1))
}

/// Whether `value` serializes to at most `max` bytes; stops writing as soon as it does not.
pub(crate) fn fits_in_bytes(value: &impl serde::Serialize, max: usize) -> bool {
    let mut budget = ByteBudget { left: max };
    serde_json::to_writer(&mut budget, value).is_ok()
}

/// A sink that only counts, and fails once more than its budget is written.
struct ByteBudget {
    left: usize,
}

impl io::Write for ByteBudget {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.left = self
            .left
            .checked_sub(buf.len())
            .ok_or_else(|| io::Error::other("over budget"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A short JSON rendering of `value` for messages (strings quoted, invisible characters gone).
fn quote(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{:?}", clean_text(text, QUOTE_CHARS)),
        other => clean_text(&other.to_string(), QUOTE_CHARS),
    }
}

/// Calls `visit` on every schema object reachable from `schema` through schema positions,
/// parents before children, until it breaks. Data keywords are skipped; the names in
/// `properties`-like maps are not mistaken for keywords. Does not follow `$ref`, so it
/// terminates on cyclic schemas. Recursion depth is the JSON depth: run it on checked schemas.
pub(crate) fn for_each_schema<B>(
    schema: &Value,
    visit: &mut impl FnMut(&Map<String, Value>) -> ControlFlow<B>,
) -> ControlFlow<B> {
    match schema {
        Value::Object(node) => for_each_schema_node(node, visit),
        Value::Array(items) => {
            for item in items {
                for_each_schema(item, visit)?;
            }
            ControlFlow::Continue(())
        }
        _ => ControlFlow::Continue(()),
    }
}

/// [`for_each_schema`] starting from a schema object.
pub(crate) fn for_each_schema_node<B>(
    node: &Map<String, Value>,
    visit: &mut impl FnMut(&Map<String, Value>) -> ControlFlow<B>,
) -> ControlFlow<B> {
    visit(node)?;
    for (keyword, child) in node {
        if DATA_KEYWORDS.contains(&keyword.as_str()) {
            continue;
        }
        if SCHEMA_MAP_KEYWORDS.contains(&keyword.as_str()) {
            if let Value::Object(named) = child {
                for sub in named.values() {
                    for_each_schema(sub, visit)?;
                }
            }
        } else {
            for_each_schema(child, visit)?;
        }
    }
    ControlFlow::Continue(())
}

/// The mutable twin of [`for_each_schema`], without early exit.
fn for_each_schema_mut(schema: &mut Value, visit: &mut impl FnMut(&mut Map<String, Value>)) {
    match schema {
        Value::Object(node) => {
            visit(node);
            for (keyword, child) in node.iter_mut() {
                if DATA_KEYWORDS.contains(&keyword.as_str()) {
                    continue;
                }
                if SCHEMA_MAP_KEYWORDS.contains(&keyword.as_str()) {
                    if let Value::Object(named) = child {
                        for sub in named.values_mut() {
                            for_each_schema_mut(sub, visit);
                        }
                    }
                } else {
                    for_each_schema_mut(child, visit);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                for_each_schema_mut(item, visit);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("test schema must be an object, got {other}"),
        }
    }

    /// `expected`: `Ok(normalized schema)` or `Err(error message)`.
    #[track_caller]
    fn check(schema: Value, expected: Result<Value, &str>) {
        let actual = check_input_schema(&object(schema), 40)
            .map(Value::Object)
            .map_err(|err| err.to_string());
        assert_eq!(actual, expected.map_err(str::to_owned));
    }

    #[test]
    fn accepts_object_schemas() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "number"}}});
        check(schema.clone(), Ok(schema));
        check(json!({"type": "object"}), Ok(json!({"type": "object"})));
        check(json!({"type": ["object"]}), Ok(json!({"type": "object"})));
    }

    #[test]
    fn missing_type_with_properties_means_object() {
        check(
            json!({"properties": {}}),
            Ok(json!({"type": "object", "properties": {}})),
        );
    }

    #[test]
    fn refuses_non_object_roots() {
        let msg = |found: &str| format!("schema root must have type \"object\", found {found}");
        check(json!({}), Err(&msg("no type")));
        check(json!({"type": "string"}), Err(&msg("type \"string\"")));
        check(
            json!({"type": ["object", "null"]}),
            Err(&msg("type [\"object\",\"null\"]")),
        );
        check(json!({"anyOf": [{"type": "object"}]}), Err(&msg("no type")));
        check(json!({"properties": "nope"}), Err(&msg("no type")));
    }

    #[test]
    fn refuses_deep_schemas() {
        // 15 property levels: 1 + 2 * 15 = 31 containers deep, accepted.
        let mut ok = json!({"type": "string"});
        for _ in 0..15 {
            ok = json!({"type": "object", "properties": {"x": ok}});
        }
        assert!(check_input_schema(&object(ok.clone()), 40).is_ok());
        let too_deep = json!({"type": "object", "properties": {"x": ok}});
        check(too_deep, Err("schema nests deeper than 32 levels"));
        // Depth counts arrays too, e.g. inside `enum` data.
        let mut data = json!(1);
        for _ in 0..40 {
            data = json!([data]);
        }
        check(
            json!({"type": "object", "properties": {"a": {"enum": [data]}}}),
            Err("schema nests deeper than 32 levels"),
        );
    }

    #[test]
    fn refuses_large_schemas() {
        let big = "x".repeat(MAX_SCHEMA_BYTES);
        check(
            json!({"type": "object", "description": big}),
            Err("schema is larger than 262144 bytes"),
        );
        let fits = "x".repeat(MAX_SCHEMA_BYTES - 100);
        assert!(check_input_schema(&object(json!({"type": "object", "title": fits})), 10).is_ok());
    }

    #[test]
    fn refuses_non_local_refs() {
        let with_ref =
            |r: Value| json!({"type": "object", "properties": {"a": {"items": {"$ref": r}}}});
        check(
            with_ref(json!("https://evil.example/schema.json")),
            Err("$ref \"https://evil.example/schema.json\" is not a local \"#...\" reference"),
        );
        check(
            with_ref(json!("file:///etc/passwd")),
            Err("$ref \"file:///etc/passwd\" is not a local \"#...\" reference"),
        );
        check(
            with_ref(json!("other.json#/a")),
            Err("$ref \"other.json#/a\" is not a local \"#...\" reference"),
        );
        check(
            with_ref(json!(7)),
            Err("$ref 7 is not a local \"#...\" reference"),
        );
        check(
            json!({"type": "object", "$defs": {"n": {"$dynamicRef": "https://x/y#n"}}}),
            Err("$dynamicRef \"https://x/y#n\" is not a local \"#...\" reference"),
        );
        // Hidden in an unknown keyword: still found.
        check(
            json!({"type": "object", "x-custom": {"nested": [{"$ref": "http://x"}]}}),
            Err("$ref \"http://x\" is not a local \"#...\" reference"),
        );
        // Hidden behind a property named like a data keyword: still found.
        check(
            json!({"type": "object", "properties": {"default": {"$ref": "http://x"}}}),
            Err("$ref \"http://x\" is not a local \"#...\" reference"),
        );
    }

    #[test]
    fn allows_local_refs_and_ref_like_data() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"$ref": "#/$defs/A"},
                "$ref": {"type": "string"},
                "b": {"const": {"$ref": "http://data.example"}, "default": {"$ref": "x"}},
            },
            "$defs": {"A": {"$ref": "#"}},
        });
        check(schema.clone(), Ok(schema));
    }

    #[test]
    fn sanitizes_nested_annotations_but_not_data() {
        check(
            json!({
                "type": "object",
                "properties": {
                    "a": {
                        "description": "hid\u{200B}den\u{E0041} text that goes on and on past the cap",
                        "title": "T\u{202E}x",
                        "const": "da\u{200B}ta",
                    },
                    "description": {"type": "string"},
                },
            }),
            Ok(json!({
                "type": "object",
                "properties": {
                    "a": {
                        "description": "hidden text that goes on and on past th…",
                        "title": "Tx",
                        "const": "da\u{200B}ta",
                    },
                    "description": {"type": "string"},
                },
            })),
        );
    }

    #[test]
    fn output_schemas_get_shape_checks_only() {
        assert!(check_output_schema(&object(json!({"type": "array"}))).is_ok());
        assert!(check_output_schema(&object(json!({"$ref": "https://x"}))).is_err());
    }

    #[test]
    fn byte_budget_is_exact() {
        let value = json!({"a": 1});
        let len = value.to_string().len();
        assert!(fits_in_bytes(&value, len));
        assert!(!fits_in_bytes(&value, len - 1));
    }
}
