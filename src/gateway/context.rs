//! Resources and prompts through `/mcp`: the upstream servers' (`hub::context`), named per
//! server so two servers never clash. A prompt is `server__NAME`; a resource's URI (and a
//! template's) is `switchboard://SERVER/` followed by the server's own URI, unchanged, so a
//! template the client expands still names its server when it is read.

use rmcp::ErrorData as McpError;
use rmcp::model::{
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, Prompt,
    ReadResourceResult, Resource, ResourceTemplate,
};
use serde_json::Value;

use crate::hub::context::{ContextError, FromServer};

/// What every namespaced resource URI begins with.
pub(super) const URI_PREFIX: &str = "switchboard://";

/// `uri` of `server` as `/mcp` lists it.
pub(super) fn namespaced_uri(server: &str, uri: &str) -> String {
    format!("{URI_PREFIX}{server}/{uri}")
}

/// The server and its own URI, from a URI `/mcp` listed.
///
/// # Errors
/// Not a URI this gateway gives out.
pub(super) fn split_uri(uri: &str) -> Result<(&str, &str), McpError> {
    uri.strip_prefix(URI_PREFIX)
        .and_then(|rest| rest.split_once('/'))
        .filter(|(server, original)| !server.is_empty() && !original.is_empty())
        .ok_or_else(|| {
            McpError::invalid_params(
                format!("`{uri}` is not a resource this server lists (they begin with `{URI_PREFIX}SERVER/`)"),
                None,
            )
        })
}

/// The server and its own name, from a prompt name `/mcp` listed.
///
/// # Errors
/// Not a `server__NAME`.
pub(super) fn split_prompt(name: &str) -> Result<(&str, &str), McpError> {
    name.split_once("__")
        .filter(|(server, prompt)| !server.is_empty() && !prompt.is_empty())
        .ok_or_else(|| {
            McpError::invalid_params(
                format!(
                    "`{name}` is not a prompt this server lists (they are named SERVER__PROMPT)"
                ),
                None,
            )
        })
}

pub(super) fn resources(listed: Vec<FromServer<Resource>>) -> ListResourcesResult {
    ListResourcesResult::with_all_items(
        listed
            .into_iter()
            .map(|FromServer { server, mut item }| {
                item.uri = namespaced_uri(&server, &item.uri);
                item.name = format!("{server}__{}", item.name);
                item
            })
            .collect(),
    )
}

pub(super) fn templates(listed: Vec<FromServer<ResourceTemplate>>) -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(
        listed
            .into_iter()
            .map(|FromServer { server, mut item }| {
                item.uri_template = namespaced_uri(&server, &item.uri_template);
                item.name = format!("{server}__{}", item.name);
                item
            })
            .collect(),
    )
}

pub(super) fn prompts(listed: Vec<FromServer<Prompt>>) -> ListPromptsResult {
    ListPromptsResult::with_all_items(
        listed
            .into_iter()
            .map(|FromServer { server, mut item }| {
                item.name = format!("{server}__{}", item.name);
                item
            })
            .collect(),
    )
}

/// A read's contents with their URIs as `/mcp` names them.
pub(super) fn read(server: &str, result: ReadResourceResult) -> ReadResourceResult {
    let Ok(mut value) = serde_json::to_value(&result) else {
        return result;
    };
    if let Some(contents) = value.get_mut("contents").and_then(Value::as_array_mut) {
        for content in contents {
            if let Some(Value::String(uri)) = content.get_mut("uri") {
                *uri = namespaced_uri(server, uri);
            }
        }
    }
    serde_json::from_value(value).unwrap_or(result)
}

/// A refused or failed read or prompt as the client hears it.
pub(super) fn error(err: ContextError) -> McpError {
    match err {
        ContextError::Forbidden { .. } | ContextError::NotOffered { .. } => {
            McpError::invalid_params(err.to_string(), None)
        }
        ContextError::Mcp(crate::mcp::McpError::Protocol { code, message, .. }) => {
            McpError::new(rmcp::model::ErrorCode(code), message, None)
        }
        ContextError::Mcp(other) => McpError::internal_error(other.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uris_go_there_and_back() {
        let uri = namespaced_uri("everything", "demo://resource/static/document/1.md");
        assert_eq!(
            uri,
            "switchboard://everything/demo://resource/static/document/1.md"
        );
        assert_eq!(
            split_uri(&uri).unwrap(),
            ("everything", "demo://resource/static/document/1.md")
        );
        assert!(split_uri("file:///etc/passwd").is_err());
        assert!(split_uri("switchboard://everything").is_err());
        assert!(split_uri("switchboard:///x").is_err());
        assert_eq!(
            split_prompt("notes__summary").unwrap(),
            ("notes", "summary")
        );
        assert!(split_prompt("summary").is_err());
    }
}
