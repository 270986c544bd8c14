//! OpenAI strict-mode parameters.
//!
//! Strict function calling guarantees the model's arguments parse against the schema, but only
//! for a subset of JSON Schema: every object closed (`additionalProperties: false`) with every
//! property required, optional ones expressed as nullable. [`strict_parameters`] rewrites a
//! checked input schema into that subset or gives up (`None`, and the tool is sent non-strict).
//! Undoing the nullable side effect on arguments lives in `nulls`.
//!
//! Rules follow `rmcp-notes.md` §8. Refs are kept, never inlined, so cyclic schemas cannot make
//! the converter loop; only refs to `#` or to a `$defs`/`definitions` entry are allowed.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Deepest object nesting OpenAI accepts in strict mode.
const MAX_OBJECT_NESTING: usize = 10;
/// Most properties OpenAI accepts across one strict schema.
const MAX_TOTAL_PROPERTIES: usize = 5000;
/// Most values OpenAI accepts in one strict `enum`.
const MAX_ENUM_VALUES: usize = 1000;

/// `format` values OpenAI strict mode understands on strings; others are removed.
const STRICT_FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];

/// Keywords dropped from strict schemas. Annotations the provider does not need, and limits it may
/// not support: our own validator still enforces them on the model's arguments.
const STRIPPED_KEYWORDS: &[&str] = &[
    "$schema",
    "$comment",
    "default",
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
    "contentEncoding",
    "contentMediaType",
    "minLength",
    "maxLength",
    "uniqueItems",
    "minProperties",
    "maxProperties",
];

/// Keywords copied as they are when their value has the right JSON type.
const COPIED_KEYWORDS: &[&str] = &[
    "description",
    "title",
    "enum",
    "const",
    "pattern",
    "multipleOf",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
];

/// The JSON type names strict mode accepts in `type`.
const TYPE_NAMES: &[&str] = &[
    "string", "number", "integer", "boolean", "object", "array", "null",
];

/// The strict-mode rewrite of a checked input schema (root `type: "object"`), or `None` when the
/// schema uses something strict mode cannot express: `allOf`, `not`, `if`/`then`/`else`,
/// `patternProperties`, `dependent*`, open objects (`additionalProperties` true or a schema, or a
/// nested object without `properties`), arrays without a single `items` schema, untyped
/// ("any") values, refs other than `#` and `#/$defs/<name>`, unknown keywords, or limits past
/// OpenAI's (10 object levels, 5000 properties, 1000 enum values).
///
/// What changes: `$schema`, `default`, unsupported `format`s and a few optional limits are
/// removed; `definitions` becomes `$defs`; `oneOf` becomes `anyOf` (our validator still checks
/// the original); every object gets `additionalProperties: false` and lists all its properties
/// in `required` (sorted), optional ones made nullable.
pub(crate) fn strict_parameters(schema: &Map<String, Value>) -> Option<Map<String, Value>> {
    let mut root = schema.clone();
    let defs = take_definitions(&mut root)?;
    if ["$ref", "anyOf", "oneOf"]
        .iter()
        .any(|keyword| root.contains_key(*keyword))
    {
        return None;
    }
    let mut converter = Converter {
        def_names: defs.keys().cloned().collect(),
        total_properties: 0,
    };
    let mut out = converter.node(&root, 0, true)?;
    if !defs.is_empty() {
        let mut strict_defs = Map::new();
        for (name, def) in &defs {
            strict_defs.insert(name.clone(), Value::Object(converter.schema(def, 0)?));
        }
        out.insert("$defs".into(), Value::Object(strict_defs));
    }
    Some(out)
}

/// `definitions`/`$defs` removed from the root and returned; `None` when both exist or an
/// entry is not an object schema.
fn take_definitions(root: &mut Map<String, Value>) -> Option<Map<String, Value>> {
    let defs = root.remove("$defs");
    let definitions = root.remove("definitions");
    let defs = match (defs, definitions) {
        (Some(_), Some(_)) => return None,
        (Some(Value::Object(defs)), None) | (None, Some(Value::Object(defs))) => defs,
        (None, None) => Map::new(),
        _ => return None,
    };
    defs.values().all(Value::is_object).then_some(defs)
}

struct Converter {
    def_names: BTreeSet<String>,
    total_properties: usize,
}

impl Converter {
    /// Converts a subschema, which must be an object (boolean schemas cannot be strict).
    fn schema(&mut self, schema: &Value, nesting: usize) -> Option<Map<String, Value>> {
        match schema {
            Value::Object(node) => self.node(node, nesting, false),
            _ => None,
        }
    }

    /// Converts one schema node. `nesting` counts enclosing objects; `is_root` allows an object
    /// without `properties` (a tool without arguments).
    fn node(
        &mut self,
        node: &Map<String, Value>,
        nesting: usize,
        is_root: bool,
    ) -> Option<Map<String, Value>> {
        let mut out = Map::new();
        self.keywords(node, &mut out)?;

        let has = |keyword: &str| node.contains_key(keyword);
        let union = match (node.get("anyOf"), node.get("oneOf")) {
            (Some(_), Some(_)) => return None,
            (Some(branches), None) | (None, Some(branches)) => Some(branches.as_array()?),
            (None, None) => None,
        };
        if has("$ref") && (union.is_some() || has("type") || has("properties") || has("items")) {
            return None;
        }
        if let Some(branches) = union {
            if branches.is_empty() {
                return None;
            }
            let strict_branches = branches
                .iter()
                .map(|branch| self.schema(branch, nesting).map(Value::Object))
                .collect::<Option<Vec<_>>>()?;
            out.insert("anyOf".into(), Value::Array(strict_branches));
        }

        let types = type_names(node.get("type"));
        self.shape(node, &types, &mut out, nesting, is_root)?;
        if let Some(Value::String(format)) = node.get("format") {
            let is_string =
                !types.is_empty() && types.iter().all(|t| *t == "string" || *t == "null");
            if is_string && STRICT_FORMATS.contains(&format.as_str()) {
                out.insert("format".into(), Value::String(format.clone()));
            }
        }

        let constrains_value =
            has("type") || has("$ref") || has("enum") || has("const") || union.is_some();
        constrains_value.then_some(out)
    }

    /// Copies or converts the keywords that do not depend on the node's type into `out`;
    /// `None` for a keyword strict mode cannot express. The type-dependent ones (`format`,
    /// object and array keywords, unions) are left to [`Converter::node`].
    fn keywords(&self, node: &Map<String, Value>, out: &mut Map<String, Value>) -> Option<()> {
        for (keyword, value) in node {
            let keyword = keyword.as_str();
            match keyword {
                k if STRIPPED_KEYWORDS.contains(&k) => {}
                "enum" => {
                    let values = value.as_array()?;
                    if values.len() > MAX_ENUM_VALUES {
                        return None;
                    }
                    out.insert(keyword.into(), value.clone());
                }
                "description" | "title" | "pattern" => {
                    out.insert(keyword.into(), Value::String(value.as_str()?.to_owned()));
                }
                "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf"
                | "minItems" | "maxItems" => {
                    // Draft-04's boolean exclusiveMinimum has no strict equivalent.
                    if !value.is_number() {
                        return None;
                    }
                    out.insert(keyword.into(), value.clone());
                }
                k if COPIED_KEYWORDS.contains(&k) => {
                    out.insert(keyword.into(), value.clone());
                }
                "type" => {
                    out.insert(keyword.into(), strict_type(value)?);
                }
                "$ref" => {
                    out.insert(keyword.into(), Value::String(self.strict_ref(value)?));
                }
                // Handled by the caller, where the node's type is known.
                "format"
                | "properties"
                | "required"
                | "additionalProperties"
                | "items"
                | "anyOf"
                | "oneOf" => {}
                _ => return None,
            }
        }
        Some(())
    }

    /// Converts an object node (closed, see [`Converter::object`]) or an array node's `items`;
    /// `None` for a node that is both, or has object or array keywords under another type.
    fn shape(
        &mut self,
        node: &Map<String, Value>,
        types: &[&str],
        out: &mut Map<String, Value>,
        nesting: usize,
        is_root: bool,
    ) -> Option<()> {
        let has = |keyword: &str| node.contains_key(keyword);
        let is_object = types.contains(&"object") || (!has("type") && has("properties"));
        let is_array = types.contains(&"array");
        if is_object && is_array {
            return None;
        }
        if is_object {
            out.insert(
                "type".into(),
                node.get("type").cloned().unwrap_or("object".into()),
            );
            self.object(node, out, nesting, is_root)?;
        } else if is_array {
            let items = self.schema(node.get("items")?, nesting)?;
            out.insert("items".into(), Value::Object(items));
        } else if has("properties")
            || has("required")
            || has("additionalProperties")
            || has("items")
        {
            // Object or array keywords on a node of another type: intent unclear.
            return None;
        }
        Some(())
    }

    /// Closes an object: `additionalProperties: false`, every property required, optional ones
    /// made nullable.
    fn object(
        &mut self,
        node: &Map<String, Value>,
        out: &mut Map<String, Value>,
        nesting: usize,
        is_root: bool,
    ) -> Option<()> {
        if nesting >= MAX_OBJECT_NESTING {
            return None;
        }
        match node.get("additionalProperties") {
            None | Some(Value::Bool(false)) => {}
            Some(_) => return None,
        }
        let empty = Map::new();
        let properties = match node.get("properties") {
            Some(Value::Object(properties)) => properties,
            // A nested `{"type": "object"}` is a free-form object; closing it would forbid
            // everything. At the root it means "no arguments".
            None if is_root || node.get("additionalProperties") == Some(&Value::Bool(false)) => {
                &empty
            }
            _ => return None,
        };
        let required: BTreeSet<&str> = match node.get("required") {
            None => BTreeSet::new(),
            Some(Value::Array(names)) => names.iter().map(Value::as_str).collect::<Option<_>>()?,
            Some(_) => return None,
        };
        if required.iter().any(|name| !properties.contains_key(*name)) {
            return None;
        }
        self.total_properties += properties.len();
        if self.total_properties > MAX_TOTAL_PROPERTIES {
            return None;
        }
        let mut strict_properties = Map::new();
        for (name, schema) in properties {
            let strict = self.schema(schema, nesting + 1)?;
            let strict = if required.contains(name.as_str()) {
                strict
            } else {
                nullable(strict)
            };
            strict_properties.insert(name.clone(), Value::Object(strict));
        }
        let mut all: Vec<&String> = properties.keys().collect();
        all.sort();
        out.insert(
            "required".into(),
            Value::Array(all.into_iter().map(|n| Value::String(n.clone())).collect()),
        );
        out.insert("properties".into(), Value::Object(strict_properties));
        out.insert("additionalProperties".into(), Value::Bool(false));
        Some(())
    }

    /// `#`, or `#/$defs/<name>` / `#/definitions/<name>` naming an existing definition, rewritten
    /// to `#/$defs/<name>`.
    fn strict_ref(&self, reference: &Value) -> Option<String> {
        let reference = reference.as_str()?;
        if reference == "#" {
            return Some(reference.to_owned());
        }
        let escaped = reference
            .strip_prefix("#/$defs/")
            .or_else(|| reference.strip_prefix("#/definitions/"))?;
        let name = unescape_pointer_segment(escaped)?;
        self.def_names
            .contains(&name)
            .then(|| format!("#/$defs/{escaped}"))
    }
}

/// A `type` value strict mode accepts: a known name, or a non-empty array of distinct ones.
fn strict_type(value: &Value) -> Option<Value> {
    let names = match value {
        Value::String(name) => vec![name.as_str()],
        Value::Array(names) => names
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    let distinct: BTreeSet<&str> = names.iter().copied().collect();
    let ok = !names.is_empty()
        && distinct.len() == names.len()
        && names.iter().all(|name| TYPE_NAMES.contains(name));
    ok.then(|| value.clone())
}

/// The names in a `type` value (empty when absent or malformed).
pub(crate) fn type_names(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(name)) => vec![name.as_str()],
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `schema` also accepting `null`: added to `type` (and `enum`) where possible, otherwise
/// wrapped as `anyOf: [schema, {"type": "null"}]` with the description moved outside.
fn nullable(mut schema: Map<String, Value>) -> Map<String, Value> {
    let null_schema = || Value::Object(Map::from_iter([("type".to_owned(), Value::from("null"))]));
    if let Some(Value::Array(branches)) = schema.get_mut("anyOf") {
        if !branches
            .iter()
            .any(|branch| branch.get("type") == Some(&Value::from("null")))
        {
            branches.push(null_schema());
        }
        return schema;
    }
    let typed = matches!(schema.get("type"), Some(Value::String(_) | Value::Array(_)));
    if typed && !schema.contains_key("const") {
        if let Some(Value::Array(values)) = schema.get_mut("enum")
            && !values.contains(&Value::Null)
        {
            values.push(Value::Null);
        }
        match schema.get_mut("type") {
            Some(Value::Array(names)) if !names.contains(&Value::from("null")) => {
                names.push(Value::from("null"));
            }
            Some(name @ Value::String(_)) if *name != "null" => {
                *name = Value::Array(vec![name.take(), Value::from("null")]);
            }
            _ => {}
        }
        return schema;
    }
    let mut wrapper = Map::new();
    if let Some(description) = schema.remove("description") {
        wrapper.insert("description".into(), description);
    }
    wrapper.insert(
        "anyOf".into(),
        Value::Array(vec![Value::Object(schema), null_schema()]),
    );
    wrapper
}

/// Decodes one JSON-pointer segment (`~1` is `/`, `~0` is `~`); `None` if it has a `/` left, so
/// only direct children of the definitions map are accepted.
fn unescape_pointer_segment(segment: &str) -> Option<String> {
    if segment.is_empty() || segment.contains('/') {
        return None;
    }
    Some(segment.replace("~1", "/").replace("~0", "~"))
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

    /// `expected`: the strict schema, or `None` when strict mode must be refused.
    #[track_caller]
    fn check(schema: Value, expected: Option<Value>) {
        let actual = strict_parameters(&object(schema)).map(Value::Object);
        assert_eq!(actual, expected);
    }

    #[test]
    fn server_everything_get_sum() {
        check(
            json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {
                    "a": {"type": "number", "description": "First number"},
                    "b": {"type": "number", "description": "Second number"},
                },
                "required": ["a", "b"],
                "additionalProperties": false,
            }),
            Some(json!({
                "type": "object",
                "properties": {
                    "a": {"type": "number", "description": "First number"},
                    "b": {"type": "number", "description": "Second number"},
                },
                "required": ["a", "b"],
                "additionalProperties": false,
            })),
        );
    }

    /// What schemars 1.x emits for a struct with `Option<u32>`, a unit enum behind `$defs`, a
    /// serde default and an optional enum.
    fn schemars_tool() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "SearchArgs",
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for"},
                "limit": {"type": ["integer", "null"], "format": "uint32", "minimum": 0},
                "order": {"$ref": "#/$defs/Order", "description": "Sort order"},
                "page": {"type": "integer", "format": "uint64", "minimum": 0, "default": 1},
                "score": {"type": "number", "format": "double"},
            },
            "required": ["query", "score"],
            "$defs": {
                "Order": {"type": "string", "enum": ["asc", "desc"], "description": "Sort order"},
            },
        })
    }

    #[test]
    fn schemars_style_tool() {
        check(
            schemars_tool(),
            Some(json!({
                "title": "SearchArgs",
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to look for"},
                    "limit": {"type": ["integer", "null"], "minimum": 0},
                    "order": {
                        "description": "Sort order",
                        "anyOf": [{"$ref": "#/$defs/Order"}, {"type": "null"}],
                    },
                    "page": {"type": ["integer", "null"], "minimum": 0},
                    "score": {"type": "number"},
                },
                "required": ["limit", "order", "page", "query", "score"],
                "additionalProperties": false,
                "$defs": {
                    "Order": {"type": "string", "enum": ["asc", "desc"], "description": "Sort order"},
                },
            })),
        );
    }

    /// What zod-to-json-schema emits (draft-07, `definitions`, nested objects, optional enum,
    /// string formats, `.default()`).
    #[test]
    fn zod_draft_07_tool() {
        check(
            json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {
                    "url": {"type": "string", "format": "uri", "description": "Page to open"},
                    "when": {"type": "string", "format": "date-time"},
                    "mode": {"type": "string", "enum": ["fast", "full"], "default": "fast"},
                    "viewport": {
                        "type": "object",
                        "properties": {"w": {"type": "integer", "exclusiveMinimum": 0}, "h": {"type": "integer"}},
                        "required": ["w"],
                        "additionalProperties": false,
                    },
                    "tags": {"type": "array", "items": {"$ref": "#/definitions/tag"}, "maxItems": 5},
                },
                "required": ["url"],
                "additionalProperties": false,
                "definitions": {"tag": {"type": "string", "minLength": 1}},
            }),
            Some(json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string", "description": "Page to open"},
                    "when": {"type": ["string", "null"], "format": "date-time"},
                    "mode": {"type": ["string", "null"], "enum": ["fast", "full", null]},
                    "viewport": {
                        "type": ["object", "null"],
                        "properties": {"w": {"type": "integer", "exclusiveMinimum": 0}, "h": {"type": ["integer", "null"]}},
                        "required": ["h", "w"],
                        "additionalProperties": false,
                    },
                    "tags": {"type": ["array", "null"], "items": {"$ref": "#/$defs/tag"}, "maxItems": 5},
                },
                "required": ["mode", "tags", "url", "viewport", "when"],
                "additionalProperties": false,
                "$defs": {"tag": {"type": "string"}},
            })),
        );
    }

    #[test]
    fn no_argument_tools() {
        let closed = json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false});
        check(json!({"type": "object"}), Some(closed.clone()));
        check(json!({"type": "object", "properties": {}}), Some(closed));
    }

    #[test]
    fn one_of_becomes_any_of_and_branches_are_closed() {
        check(
            json!({
                "type": "object",
                "properties": {"shape": {"oneOf": [
                    {"type": "object", "properties": {"r": {"type": "number"}}, "required": ["r"]},
                    {"type": "string", "const": "unit"},
                ]}},
                "required": ["shape"],
            }),
            Some(json!({
                "type": "object",
                "properties": {"shape": {"anyOf": [
                    {"type": "object", "properties": {"r": {"type": "number"}}, "required": ["r"], "additionalProperties": false},
                    {"type": "string", "const": "unit"},
                ]}},
                "required": ["shape"],
                "additionalProperties": false,
            })),
        );
    }

    #[test]
    fn optional_unions_and_consts_get_a_null_branch() {
        check(
            json!({"type": "object", "properties": {
                "u": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "c": {"const": 3, "type": "integer"},
                "n": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            }}),
            Some(json!({
                "type": "object",
                "properties": {
                    "u": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
                    "c": {"anyOf": [{"const": 3, "type": "integer"}, {"type": "null"}]},
                    "n": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
                "required": ["c", "n", "u"],
                "additionalProperties": false,
            })),
        );
    }

    #[test]
    fn recursive_schemas_convert_without_looping() {
        let tree = json!({
            "type": "object",
            "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}},
            "required": ["name", "children"],
        });
        let converted = strict_parameters(&object(tree)).expect("recursion via # is strict-safe");
        assert_eq!(
            converted["properties"]["children"]["items"],
            json!({"$ref": "#"})
        );
        let mutual = json!({
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/A"}},
            "required": ["a"],
            "$defs": {
                "A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/B"}}, "required": ["b"]},
                "B": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}},
            },
        });
        let converted = strict_parameters(&object(mutual)).expect("cycle through $defs");
        assert_eq!(
            converted["$defs"]["B"]["properties"]["a"],
            json!({"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}]})
        );
    }

    #[test]
    fn unsupported_constructs_refuse_strict() {
        let with_property = |property: Value| json!({"type": "object", "properties": {"p": property}, "required": ["p"]});
        for property in [
            json!({"allOf": [{"type": "string"}]}),
            json!({"not": {"type": "string"}}),
            json!({"type": "string", "if": {"minLength": 1}, "then": {}}),
            json!({"type": "object", "patternProperties": {"^x": {"type": "string"}}}),
            json!({"type": "object", "properties": {}, "dependentRequired": {"a": ["b"]}}),
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": true}),
            json!({"type": "object"}),
            json!({"type": "array"}),
            json!({"type": "array", "items": [{"type": "string"}]}),
            json!({"type": "array", "prefixItems": [{"type": "string"}]}),
            json!({"description": "anything"}),
            json!({}),
            json!(true),
            json!({"type": "strnig"}),
            json!({"type": "string", "nullable": true}),
            json!({"$ref": "#/properties/q"}),
            json!({"$ref": "#/$defs/Missing"}),
            json!({"$ref": "#/$defs/A", "type": "object"}),
            json!({"type": "number", "minimum": 0, "exclusiveMinimum": true}),
            json!({"type": "string", "enum": (0..1001).collect::<Vec<_>>()}),
            json!({"anyOf": []}),
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}),
        ] {
            check(with_property(property), None);
        }
    }

    #[test]
    fn unsupported_roots_refuse_strict() {
        check(
            json!({"type": "object", "anyOf": [{"required": ["a"]}]}),
            None,
        );
        check(
            json!({"type": "object", "$ref": "#/$defs/A", "$defs": {"A": {"type": "object"}}}),
            None,
        );
        check(
            json!({"type": "object", "$defs": {}, "definitions": {}}),
            None,
        );
        check(
            json!({"type": "object", "additionalProperties": true}),
            None,
        );
    }

    #[test]
    fn nesting_and_size_limits() {
        let mut deep = json!({"type": "string"});
        for _ in 0..MAX_OBJECT_NESTING {
            deep = json!({"type": "object", "properties": {"x": deep}, "required": ["x"]});
        }
        assert!(strict_parameters(&object(deep.clone())).is_some());
        let deeper = json!({"type": "object", "properties": {"x": deep}, "required": ["x"]});
        check(deeper, None);
        let many: Map<String, Value> = (0..=MAX_TOTAL_PROPERTIES)
            .map(|i| (format!("p{i}"), json!({"type": "string"})))
            .collect();
        check(json!({"type": "object", "properties": many}), None);
    }

    #[test]
    fn nullable_forms() {
        let n = |v: Value| Value::Object(nullable(object(v)));
        assert_eq!(
            n(json!({"type": "string"})),
            json!({"type": ["string", "null"]})
        );
        assert_eq!(
            n(json!({"type": ["string", "null"]})),
            json!({"type": ["string", "null"]})
        );
        assert_eq!(n(json!({"type": "null"})), json!({"type": "null"}));
        assert_eq!(
            n(json!({"type": "string", "enum": ["a"]})),
            json!({"type": ["string", "null"], "enum": ["a", null]})
        );
        assert_eq!(
            n(json!({"enum": ["a"]})),
            json!({"anyOf": [{"enum": ["a"]}, {"type": "null"}]})
        );
    }
}
