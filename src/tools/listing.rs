//! Reading a `tools/list` page one tool at a time.
//!
//! rmcp decodes a listing as a whole: one tool with `inputSchema: null` (or any other field of
//! the wrong shape) makes the typed `ListToolsResult` fail, and the server looked as if it had
//! no tools. [`read_page`] reads the raw result instead: each entry is decoded on its own, and
//! the ones that cannot be become [`UnreadableTool`]s with a reason, which the catalog shows
//! beside the tools it refused for other reasons. Only a result that has no `tools` array at all
//! fails as a whole.

use rmcp::model::{ListToolsResult, Tool};
use serde_json::{Map, Value};

use super::validate::type_name as kind;

/// The tools of one or more `tools/list` pages, as read.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Entries that decoded as MCP tools (still to be filtered and checked by the catalog).
    pub tools: Vec<Tool>,
    /// Entries that did not, in listing order.
    pub unreadable: Vec<UnreadableTool>,
}

/// A listed entry that is not a readable MCP tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableTool {
    /// Its `name` when that is a string, else `#<index in the page>`.
    pub name: String,
    /// What is wrong with it, naming the field.
    pub reason: String,
}

/// One page: its tools and the cursor of the next, if any.
#[derive(Debug, Default)]
pub struct Page {
    /// What the page listed.
    pub listing: Listing,
    /// `nextCursor`, when it is a string.
    pub next_cursor: Option<String>,
}

/// Why a `tools/list` result could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    /// The result is not a JSON object.
    #[error("the tools/list result is {0}, not a JSON object")]
    NotAnObject(&'static str),
    /// The result has no `tools` array.
    #[error("the tools/list result has no `tools` array (`tools` is {0})")]
    NoToolsArray(&'static str),
}

impl Listing {
    /// Add the entries of `other` after this listing's.
    pub fn extend(&mut self, other: Listing) {
        self.tools.extend(other.tools);
        self.unreadable.extend(other.unreadable);
    }
}

impl From<Vec<Tool>> for Listing {
    /// Tools decoded elsewhere: all readable.
    fn from(tools: Vec<Tool>) -> Self {
        Listing {
            tools,
            unreadable: Vec::new(),
        }
    }
}

impl From<ListToolsResult> for Page {
    /// A page rmcp decoded in full: every entry is readable.
    fn from(result: ListToolsResult) -> Self {
        Page {
            listing: Listing {
                tools: result.tools,
                unreadable: Vec::new(),
            },
            next_cursor: result.next_cursor,
        }
    }
}

/// Read a raw `tools/list` result entry by entry.
///
/// # Errors
///
/// The result is not an object or has no `tools` array. A `nextCursor` that is not a string
/// ends paging (logged), as if there were no more pages.
pub fn read_page(result: Value) -> Result<Page, ListingError> {
    let Value::Object(mut result) = result else {
        return Err(ListingError::NotAnObject(kind(&result)));
    };
    let entries = match result.remove("tools") {
        Some(Value::Array(entries)) => entries,
        Some(other) => return Err(ListingError::NoToolsArray(kind(&other))),
        None => return Err(ListingError::NoToolsArray("missing")),
    };
    let next_cursor = match result.remove("nextCursor") {
        Some(Value::String(cursor)) => Some(cursor),
        None | Some(Value::Null) => None,
        Some(other) => {
            tracing::warn!(
                cursor = kind(&other),
                "tools/list nextCursor is not a string; stopped paging"
            );
            None
        }
    };
    let mut listing = Listing::default();
    for (index, entry) in entries.into_iter().enumerate() {
        match read_tool(entry) {
            Ok(tool) => listing.tools.push(tool),
            Err((name, reason)) => listing.unreadable.push(UnreadableTool {
                name: name.unwrap_or_else(|| format!("#{index}")),
                reason,
            }),
        }
    }
    Ok(Page {
        listing,
        next_cursor,
    })
}

/// One entry as a tool, or its name (if it has a string one) and what is wrong with it.
fn read_tool(entry: Value) -> Result<Tool, (Option<String>, String)> {
    let Value::Object(fields) = entry else {
        return Err((
            None,
            format!("the entry is {}, not a JSON object", kind(&entry)),
        ));
    };
    let name = fields
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(problem) = field_problem(&fields) {
        return Err((name, problem));
    }
    serde_json::from_value(Value::Object(fields))
        .map_err(|err| (name, format!("the entry is not a valid MCP tool: {err}")))
}

/// The first field of a tool entry with the wrong shape, said plainly (serde's own message does
/// not name the field).
fn field_problem(fields: &Map<String, Value>) -> Option<String> {
    let expect = |field: &str, wanted: &str, ok: fn(&Value) -> bool, required: bool| match fields
        .get(field)
    {
        None if required => Some(format!("`{field}` is missing; expected {wanted}")),
        None => None,
        Some(value) if ok(value) => None,
        Some(value) => Some(format!("`{field}` is {}; expected {wanted}", kind(value))),
    };
    expect("name", "a string", Value::is_string, true)
        .or_else(|| expect("inputSchema", "a JSON object", Value::is_object, true))
        .or_else(|| expect("outputSchema", "a JSON object", Value::is_object, false))
        .or_else(|| expect("annotations", "a JSON object", Value::is_object, false))
        .or_else(|| expect("description", "a string", Value::is_string, false))
        .or_else(|| expect("title", "a string", Value::is_string, false))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reasons(page: &Page) -> Vec<String> {
        page.listing
            .unreadable
            .iter()
            .map(|tool| format!("{}: {}", tool.name, tool.reason))
            .collect()
    }

    #[test]
    fn each_bad_entry_is_refused_alone() {
        let page = read_page(json!({
            "tools": [
                {"name": "good", "inputSchema": {"type": "object"}},
                {"name": "null_schema", "inputSchema": null},
                {"name": "no_schema"},
                7,
                {"inputSchema": {"type": "object"}},
                {"name": "bad_output", "inputSchema": {"type": "object"}, "outputSchema": "x"},
                {"name": "bad_hints", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": "yes"}},
                {"name": "also_good", "inputSchema": {"type": "object"}, "description": "d"},
            ],
            "nextCursor": "2",
        }))
        .expect("readable page");
        let names: Vec<_> = page
            .listing
            .tools
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        assert_eq!(names, ["good", "also_good"]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let reasons = reasons(&page);
        assert_eq!(
            reasons[..5],
            [
                "null_schema: `inputSchema` is null; expected a JSON object",
                "no_schema: `inputSchema` is missing; expected a JSON object",
                "#3: the entry is a number, not a JSON object",
                "#4: `name` is missing; expected a string",
                "bad_output: `outputSchema` is a string; expected a JSON object",
            ]
        );
        assert!(
            reasons[5].starts_with("bad_hints: the entry is not a valid MCP tool: invalid type"),
            "{}",
            reasons[5]
        );
    }

    #[test]
    fn a_result_without_tools_fails_as_a_whole() {
        assert_eq!(
            read_page(json!([])).unwrap_err(),
            ListingError::NotAnObject("an array")
        );
        assert_eq!(
            read_page(json!({"tools": null})).unwrap_err(),
            ListingError::NoToolsArray("null")
        );
        assert_eq!(
            read_page(json!({})).unwrap_err(),
            ListingError::NoToolsArray("missing")
        );
    }

    #[test]
    fn a_cursor_that_is_not_a_string_ends_paging() {
        let page = read_page(json!({"tools": [], "nextCursor": 3})).expect("readable");
        assert_eq!(page.next_cursor, None);
    }
}
