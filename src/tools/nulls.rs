//! Removing the `null`s that strict mode invites but servers do not expect.
//!
//! The strict variant (see `strict`) marks optional properties nullable, so models answer `null`
//! for "not given". Servers often reject that (zod's `.default()` does), so before `tools/call`
//! we drop such members, guided by the server's original schema. Pure and bounded: it walks the
//! arguments, follows at most a fixed number of local `$ref` hops in a row, and never fetches.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::strict::type_names;

/// Most `$ref` hops followed in a row; ends `A -> B -> A` chains.
const MAX_REF_HOPS: usize = 32;

/// Removes object members whose value is `null` where the original `schema` marks the property
/// optional and does not itself accept `null`.
///
/// Call this on arguments produced against the strict variant (from
/// [`super::ToolEntry::openai_strict_tool`]) before validating and sending them: strict mode made
/// those properties nullable, and servers may reject `null` where they expect absence (zod's
/// `.default()` does). Properties whose schema accepts `null` keep it, since there `null` can mean
/// something ("clear this field"). Follows local `$ref`s; for `anyOf`/`oneOf` it uses the first
/// object branch whose properties fit the value. Values it cannot relate to the schema are left
/// alone, so the worst case is a validation error the model can read.
pub fn remove_null_optional_fields(schema: &Map<String, Value>, args: &mut Value) {
    strip_nulls(schema, schema, args);
}

/// Recursive worker of [`remove_null_optional_fields`]; depth is bounded by the value's depth.
fn strip_nulls(root: &Map<String, Value>, schema: &Map<String, Value>, value: &mut Value) {
    let Some(schema) = follow_refs(root, schema) else {
        return;
    };
    match value {
        Value::Object(members) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                let required: BTreeSet<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|names| names.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                members.retain(|name, member| {
                    let strip = member.is_null()
                        && !required.contains(name.as_str())
                        && properties
                            .get(name)
                            .is_some_and(|property| !accepts_null(root, property, 0));
                    !strip
                });
                for (name, member) in members.iter_mut() {
                    if let Some(Value::Object(property)) = properties.get(name) {
                        strip_nulls(root, property, member);
                    }
                }
            } else if let Some(branch) = matching_branch(root, schema, members) {
                strip_nulls(root, branch, value);
            }
        }
        Value::Array(items) => {
            if let Some(Value::Object(item_schema)) = schema.get("items") {
                for item in items {
                    strip_nulls(root, item_schema, item);
                }
            } else if let Some(branch) = union_branches(schema)
                .filter_map(|b| follow_refs(root, b))
                .find(|b| type_names(b.get("type")).contains(&"array"))
            {
                strip_nulls(root, branch, value);
            }
        }
        _ => {}
    }
}

/// The first `anyOf`/`oneOf` branch declaring every non-null member of `members` as a property
/// and having every required property present and non-null.
fn matching_branch<'a>(
    root: &'a Map<String, Value>,
    schema: &'a Map<String, Value>,
    members: &Map<String, Value>,
) -> Option<&'a Map<String, Value>> {
    union_branches(schema)
        .filter_map(|branch| follow_refs(root, branch))
        .find(|branch| {
            let Some(properties) = branch.get("properties").and_then(Value::as_object) else {
                return false;
            };
            let declared = members
                .iter()
                .all(|(name, member)| member.is_null() || properties.contains_key(name));
            let required_present = branch
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .all(|name| members.get(name).is_some_and(|m| !m.is_null()));
            declared && required_present
        })
}

fn union_branches(schema: &Map<String, Value>) -> impl Iterator<Item = &Map<String, Value>> {
    ["anyOf", "oneOf"]
        .into_iter()
        .filter_map(|keyword| schema.get(keyword).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_object)
}

/// Whether a value of `null` can satisfy `schema`, as far as a cheap look can tell. Untyped
/// schemas accept anything, so also `null`.
fn accepts_null(root: &Map<String, Value>, schema: &Value, depth: usize) -> bool {
    let node = match schema {
        Value::Bool(accepts) => return *accepts,
        Value::Object(node) => node,
        _ => return false,
    };
    if depth > MAX_REF_HOPS {
        return false;
    }
    let Some(node) = follow_refs(root, node) else {
        return false;
    };
    let excludes_null = node
        .get("type")
        .is_some_and(|types| !type_names(Some(types)).contains(&"null"))
        || node
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|values| !values.contains(&Value::Null))
        || node
            .get("const")
            .is_some_and(|constant| !constant.is_null());
    if excludes_null {
        return false;
    }
    let mut unions = ["anyOf", "oneOf"]
        .into_iter()
        .filter_map(|keyword| node.get(keyword).and_then(Value::as_array))
        .peekable();
    if unions.peek().is_none() {
        return true;
    }
    unions.all(|branches| {
        branches
            .iter()
            .any(|branch| accepts_null(root, branch, depth + 1))
    })
}

/// Follows a chain of local `$ref`s from `schema` to the node that has no `$ref`, at most
/// [`MAX_REF_HOPS`] hops; `None` for a dangling or endless chain.
fn follow_refs<'a>(
    root: &'a Map<String, Value>,
    mut schema: &'a Map<String, Value>,
) -> Option<&'a Map<String, Value>> {
    for _ in 0..=MAX_REF_HOPS {
        let Some(reference) = schema.get("$ref") else {
            return Some(schema);
        };
        schema = resolve_local_ref(root, reference.as_str()?)?;
    }
    None
}

/// The node a `#...` JSON-pointer reference names inside `root`.
fn resolve_local_ref<'a>(
    root: &'a Map<String, Value>,
    reference: &str,
) -> Option<&'a Map<String, Value>> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(root);
    }
    let rest = pointer.strip_prefix('/')?;
    let (first, tail) = rest.split_once('/').map_or((rest, ""), |(f, t)| (f, t));
    let first = first.replace("~1", "/").replace("~0", "~");
    let start = root.get(&first)?;
    let target = if tail.is_empty() {
        start
    } else {
        start.pointer(&format!("/{tail}"))?
    };
    target.as_object()
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

    /// Nulls stripped from `args` as expected.
    #[track_caller]
    fn check_strip(schema: Value, mut args: Value, expected: Value) {
        remove_null_optional_fields(&object(schema), &mut args);
        assert_eq!(args, expected);
    }

    /// The schemars shape: `Option<u32>` (nullable), an enum behind `$defs`, a serde default.
    fn schemars_tool() -> Value {
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "limit": {"type": ["integer", "null"], "format": "uint32", "minimum": 0},
                "order": {"$ref": "#/$defs/Order", "description": "Sort order"},
                "page": {"type": "integer", "format": "uint64", "minimum": 0, "default": 1},
                "score": {"type": "number", "format": "double"},
            },
            "required": ["query", "score"],
            "$defs": {"Order": {"type": "string", "enum": ["asc", "desc"]}},
        })
    }

    #[test]
    fn strips_nulls_of_optional_non_nullable_fields() {
        let schema = schemars_tool();
        check_strip(
            schema.clone(),
            json!({"query": "q", "limit": null, "order": null, "page": null, "score": null}),
            // `limit` is Option<u32>: null is meaningful there and kept. `score` is required:
            // left for validation to report.
            json!({"query": "q", "limit": null, "score": null}),
        );
        check_strip(
            schema,
            json!({"query": "q", "extra": null}),
            json!({"query": "q", "extra": null}),
        );
    }

    #[test]
    fn strips_nulls_in_nested_objects_arrays_and_refs() {
        let schema = json!({
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
                "cfg": {"type": "object", "properties": {"x": {"type": "string"}, "y": {}}},
            },
            "$defs": {"Item": {"type": "object", "properties": {"n": {"type": "integer"}, "m": {"type": "integer"}}, "required": ["n"]}},
        });
        check_strip(
            schema,
            json!({"items": [{"n": 1, "m": null}, {"n": null}], "cfg": {"x": null, "y": null}}),
            json!({"items": [{"n": 1}, {"n": null}], "cfg": {"y": null}}),
        );
    }

    #[test]
    fn strips_nulls_in_the_matching_union_branch() {
        let schema = json!({
            "type": "object",
            "properties": {"shape": {"oneOf": [
                {"type": "object", "properties": {"r": {"type": "number"}, "label": {"type": "string"}}, "required": ["r"]},
                {"type": "object", "properties": {"w": {"type": "number"}, "label": {"type": "string"}}, "required": ["w"]},
            ]}},
        });
        check_strip(
            schema.clone(),
            json!({"shape": {"w": 2, "label": null}}),
            json!({"shape": {"w": 2}}),
        );
        check_strip(
            schema.clone(),
            json!({"shape": {"r": 1, "label": null}}),
            json!({"shape": {"r": 1}}),
        );
        // Fits no branch: left alone for validation to report.
        check_strip(
            schema,
            json!({"shape": {"label": null, "q": 1}}),
            json!({"shape": {"label": null, "q": 1}}),
        );
    }

    #[test]
    fn strip_survives_ref_loops() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/A"}},
            "$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}},
        });
        check_strip(schema, json!({"a": {"b": null}}), json!({"a": {"b": null}}));
    }
}
