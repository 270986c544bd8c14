//! Compiling a tool's input schema once and checking model-produced arguments against it.
//!
//! Models get arguments wrong; catching that before the MCP call gives the model a precise,
//! short error to retry with instead of whatever the server says. This file owns the compiler
//! configuration (offline, draft detection, no format assertions) and the error shape. It never
//! fetches: references the document cannot resolve make compilation fail.

use std::fmt;

use jsonschema::{Draft, PatternOptions, Validator};
use serde_json::{Map, Value};

use super::sanitize::cap_chars;
use super::schema::SchemaError;

/// One way the arguments break the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentError {
    /// JSON pointer to the offending value inside the arguments (`""` for the arguments object
    /// itself, `/items/2/name` for a nested one), so the model knows exactly what to fix.
    pub path: String,
    /// What is wrong, lower-case, with any quoted value cut to about 80 characters.
    pub message: String,
}

/// The compiled validator plus nothing else; kept private so callers go through
/// [`super::ToolEntry::validate_arguments`].
pub(crate) struct ArgumentValidator {
    validator: Validator,
}

/// Most errors reported for one call; past this, more detail only fills the model's context.
const MAX_ERRORS: usize = 16;
/// Longest rendering of an offending value inside a message.
const MAX_VALUE_CHARS: usize = 80;
/// Longest message, since messages may also quote schema values (enum lists, property names).
const MAX_MESSAGE_CHARS: usize = 240;
/// Cap on regex backtracking per match, so a hostile `pattern` costs milliseconds, not minutes.
const REGEX_BACKTRACK_LIMIT: usize = 100_000;
/// Cap on a compiled regex's size (bytes), against patterns like `(a{1000}){1000}`.
const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// Checks `value` against `schema` compiled on the spot: what a person filled into a form a
/// server asked for (elicitation) is held to the server's schema before it is sent back. A
/// schema that does not compile is reported as one error at the root.
pub fn validate_against(schema: &Value, value: &Value) -> Result<(), Vec<ArgumentError>> {
    let Some(schema) = schema.as_object() else {
        return Err(vec![ArgumentError {
            path: String::new(),
            message: "the requested schema is not a JSON object".to_owned(),
        }]);
    };
    let validator = ArgumentValidator::compile(schema).map_err(|err| {
        vec![ArgumentError {
            path: String::new(),
            message: format!("the requested schema cannot be checked: {err}"),
        }]
    })?;
    validator.validate(value)
}

impl ArgumentValidator {
    /// Compiles `schema` without any network or file access.
    ///
    /// The draft comes from `$schema` when it names a known draft (TS/zod servers say draft-07,
    /// rmcp/schemars say 2020-12); a missing or unknown `$schema` means 2020-12, the MCP default.
    /// `$schema` itself is removed from the compiled copy so an unknown meta-schema is never
    /// looked up. `format` is not asserted: format checkers differ between validators and a
    /// false rejection is worse than letting the server decide.
    ///
    /// # Errors
    ///
    /// [`SchemaError::DoesNotCompile`] with the compiler's message.
    pub(crate) fn compile(schema: &Map<String, Value>) -> Result<Self, SchemaError> {
        let draft = schema
            .get("$schema")
            .and_then(Value::as_str)
            .map(Draft::from_schema_uri)
            .filter(|draft| *draft != Draft::Unknown)
            .unwrap_or(Draft::Draft202012);
        let mut document = schema.clone();
        document.remove("$schema");
        let validator = jsonschema::options()
            .offline()
            .with_draft(draft)
            .should_validate_formats(false)
            .with_pattern_options(
                PatternOptions::fancy_regex()
                    .backtrack_limit(REGEX_BACKTRACK_LIMIT)
                    .size_limit(REGEX_SIZE_LIMIT),
            )
            .build(&Value::Object(document))
            .map_err(|err| SchemaError::DoesNotCompile {
                message: lower_first(&cap_chars(&err.to_string(), MAX_MESSAGE_CHARS)),
            })?;
        Ok(Self { validator })
    }

    /// Checks `args`; see [`super::ToolEntry::validate_arguments`].
    pub(crate) fn validate(&self, args: &Value) -> Result<(), Vec<ArgumentError>> {
        if !args.is_object() {
            return Err(vec![ArgumentError {
                path: String::new(),
                message: format!("arguments must be a JSON object, got {}", type_name(args)),
            }]);
        }
        self.validate_value(args)
    }

    /// Checks any JSON value (a tool's `structuredContent` against its output schema), with
    /// the same error shape as arguments.
    pub(crate) fn validate_value(&self, value: &Value) -> Result<(), Vec<ArgumentError>> {
        let mut errors: Vec<ArgumentError> = self
            .validator
            .iter_errors(value)
            .take(MAX_ERRORS)
            .map(|err| {
                let shown = preview(err.instance());
                ArgumentError {
                    path: err.instance_path().as_str().to_owned(),
                    message: lower_first(&cap_chars(
                        &err.masked_with(shown).to_string(),
                        MAX_MESSAGE_CHARS,
                    )),
                }
            })
            .collect();
        // Reading order, and independent of the order keywords happen to be evaluated in.
        errors.sort_by(|a, b| (&a.path, &a.message).cmp(&(&b.path, &b.message)));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl fmt::Debug for ArgumentValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArgumentValidator { .. }")
    }
}

impl fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Compact JSON of `value`, cut to [`MAX_VALUE_CHARS`] without serializing all of a huge value.
fn preview(value: &Value) -> String {
    let mut out = LimitedString {
        text: String::new(),
        // Bytes, generously above the character cap so multi-byte text still fills it.
        left: MAX_VALUE_CHARS * 4 + 4,
    };
    // An error only means the value was longer than the buffer; what was kept is what we want.
    let _ = serde_json::to_writer(&mut out, value);
    cap_chars(&out.text, MAX_VALUE_CHARS)
}

/// Collects at most `left` bytes of UTF-8 output, then refuses more.
struct LimitedString {
    text: String,
    left: usize,
}

impl std::io::Write for LimitedString {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("preview full"));
        }
        let take = buf.len().min(self.left);
        self.left -= take;
        // serde_json writes whole tokens or escaped text; a cut may split a character, which
        // the lossy conversion turns into U+FFFD at the very end (then cut off by the cap).
        self.text.push_str(&String::from_utf8_lossy(&buf[..take]));
        Ok(take)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A JSON value's kind with its article (`a string`, `null`), for messages about the wrong
/// shape of a value.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Lower-cases a leading capital of an ordinary word (`Additional` -> `additional`) but leaves
/// acronyms and quoted values alone.
fn lower_first(message: &str) -> String {
    let mut chars = message.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_ascii_uppercase() && second.is_lowercase() => {
            let mut out = String::with_capacity(message.len());
            out.push(first.to_ascii_lowercase());
            out.push_str(&message[1..]);
            out
        }
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(schema: Value) -> Result<ArgumentValidator, SchemaError> {
        match schema {
            Value::Object(map) => ArgumentValidator::compile(&map),
            other => panic!("test schema must be an object, got {other}"),
        }
    }

    /// `expected`: one `"path: message"` line per error (`message` alone for the root).
    #[track_caller]
    fn check(schema: Value, args: Value, expected: &[&str]) {
        let validator = compile(schema).expect("test schema compiles");
        let actual: Vec<String> = match validator.validate(&args) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(actual, expected);
    }

    fn get_sum() -> Value {
        json!({
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        })
    }

    #[test]
    fn accepts_valid_arguments() {
        check(get_sum(), json!({"a": 1, "b": 2.5}), &[]);
    }

    #[test]
    fn non_objects_are_one_root_error() {
        check(
            get_sum(),
            json!([1, 2]),
            &["arguments must be a JSON object, got an array"],
        );
        check(
            get_sum(),
            json!(null),
            &["arguments must be a JSON object, got null"],
        );
        check(
            get_sum(),
            json!("{}"),
            &["arguments must be a JSON object, got a string"],
        );
    }

    #[test]
    fn reports_paths_and_short_messages() {
        check(
            get_sum(),
            json!({"a": "one"}),
            &[
                "\"b\" is a required property",
                "/a: \"one\" is not of type \"number\"",
            ],
        );
        let schema = json!({
            "type": "object",
            "properties": {"items": {"type": "array", "items": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 3}},
                "additionalProperties": false,
            }}},
        });
        check(
            schema,
            json!({"items": [{"name": "ok"}, {"name": "ok"}, {"name": "toolong", "x": 1}]}),
            &[
                "/items/2: additional properties are not allowed ('x' was unexpected)",
                "/items/2/name: \"toolong\" is longer than 3 characters",
            ],
        );
    }

    #[test]
    fn never_echoes_huge_values() {
        let huge = "y".repeat(100_000);
        let validator = compile(get_sum()).expect("compiles");
        let errors = validator
            .validate(&json!({"a": huge, "b": [huge, huge]}))
            .expect_err("invalid");
        assert_eq!(errors.len(), 2);
        for err in &errors {
            assert!(err.message.chars().count() <= MAX_MESSAGE_CHARS, "{err}");
            assert!(err.message.contains('…'), "{err}");
        }
    }

    #[test]
    fn error_count_is_capped() {
        let properties: Map<String, Value> = (0..40)
            .map(|i| (format!("p{i}"), json!({"type": "string"})))
            .collect();
        let schema = json!({"type": "object", "properties": properties});
        let args: Map<String, Value> = (0..40).map(|i| (format!("p{i}"), json!(i))).collect();
        let errors = compile(schema)
            .expect("compiles")
            .validate(&Value::Object(args))
            .expect_err("invalid");
        assert_eq!(errors.len(), MAX_ERRORS);
    }

    #[test]
    fn draft_07_schemas_use_draft_07_rules() {
        // Tuple `items` is draft-07 syntax (2020-12 calls it prefixItems).
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"pair": {"type": "array", "items": [{"type": "string"}, {"type": "number"}]}},
            "definitions": {"unused": {"type": "string"}},
        });
        check(schema.clone(), json!({"pair": ["a", 1]}), &[]);
        check(
            schema,
            json!({"pair": [1, 1]}),
            &["/pair/0: 1 is not of type \"string\""],
        );
    }

    #[test]
    fn unknown_drafts_fall_back_to_2020_12_without_fetching() {
        let schema = json!({
            "$schema": "https://example.invalid/my-meta-schema",
            "type": "object",
            "properties": {"n": {"type": "integer"}},
        });
        check(
            schema,
            json!({"n": 1.5}),
            &["/n: 1.5 is not of type \"integer\""],
        );
    }

    #[test]
    fn remote_refs_fail_to_compile_instead_of_fetching() {
        for reference in [
            "https://example.invalid/s.json",
            "file:///etc/passwd",
            "other.json",
        ] {
            let err = compile(json!({"type": "object", "properties": {"a": {"$ref": reference}}}))
                .expect_err("remote ref must not compile");
            assert!(
                matches!(err, SchemaError::DoesNotCompile { .. }),
                "{reference}: {err}"
            );
        }
    }

    #[test]
    fn dangling_local_refs_fail_to_compile() {
        let err = compile(json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/nope"}}}))
            .expect_err("dangling ref");
        assert!(
            err.to_string().starts_with("schema does not compile: "),
            "{err}"
        );
    }

    #[test]
    fn cyclic_refs_validate() {
        let schema = json!({
            "type": "object",
            "properties": {"root": {"$ref": "#/$defs/node"}},
            "$defs": {"node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                "required": ["children"],
            }},
        });
        check(
            schema.clone(),
            json!({"root": {"children": [{"children": []}]}}),
            &[],
        );
        check(
            schema,
            json!({"root": {"children": [{"children": [{}]}]}}),
            &["/root/children/0/children/0: \"children\" is a required property"],
        );
    }

    #[test]
    fn formats_are_not_asserted() {
        let schema =
            json!({"type": "object", "properties": {"e": {"type": "string", "format": "email"}}});
        check(schema, json!({"e": "not an email"}), &[]);
    }

    #[test]
    fn catastrophic_patterns_do_not_hang() {
        let schema = json!({
            "type": "object",
            "properties": {"s": {"type": "string", "pattern": "^(a+)+(?=b)$"}},
        });
        let validator = compile(schema).expect("compiles");
        // Either outcome is fine; returning at all is the point.
        let _ = validator.validate(&json!({"s": format!("{}c", "a".repeat(64))}));
    }

    #[test]
    fn invalid_schemas_fail_to_compile() {
        let err = compile(json!({"type": "object", "properties": {"a": {"type": "strnig"}}}))
            .expect_err("bad type");
        assert!(
            err.to_string().starts_with("schema does not compile: "),
            "{err}"
        );
        let err = compile(json!({"type": "object", "properties": {"a": {"pattern": "("}}}))
            .expect_err("bad regex");
        assert!(
            err.to_string().starts_with("schema does not compile: "),
            "{err}"
        );
    }

    #[test]
    fn previews_are_short() {
        assert_eq!(preview(&json!("abc")), "\"abc\"");
        assert_eq!(preview(&json!({"k": [1, 2]})), "{\"k\":[1,2]}");
        let long = preview(&json!("é".repeat(1000)));
        assert_eq!(long.chars().count(), MAX_VALUE_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn lower_first_spares_acronyms() {
        assert_eq!(
            lower_first("Additional properties"),
            "additional properties"
        );
        assert_eq!(lower_first("JSON is"), "JSON is");
        assert_eq!(lower_first("\"A\" is"), "\"A\" is");
        assert_eq!(lower_first(""), "");
    }
}
