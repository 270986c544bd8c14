//! OAuth 2.0 Protected Resource Metadata (RFC 9728) for `/mcp`, as the MCP authorization spec
//! asks of a server: where a client learns how to present a token, linked from every 401 that
//! `/mcp` answers (`WWW-Authenticate: Bearer resource_metadata="…"`).
//!
//! Switchboard is its own authority for the tokens it takes (its API keys), so the document
//! names no authorization server: a client is given a key by an admin (`POST /api/keys`) and
//! sends it as `Authorization: Bearer KEY`.
//!
//! URLs are made from the request's `Host` (which the gate has checked against the server's
//! own names) and the scheme a proxy in front says it used (`X-Forwarded-Proto`).

use axum::Json;
use axum::http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

/// Where the metadata of the resource `/mcp` is published (RFC 9728 §3.1: the well-known
/// prefix inserted before the resource's path).
pub(super) const MCP_METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

/// The same document at the well-known root, which clients also try (RFC 9728 §3).
pub(super) const ROOT_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The resource this server protects with its keys.
const MCP_PATH: &str = "/mcp";

/// `GET` of either metadata path.
pub(super) async fn metadata(headers: HeaderMap) -> Json<Value> {
    let origin = origin(&headers);
    Json(json!({
        "resource": format!("{origin}{MCP_PATH}"),
        "resource_name": "Switchboard",
        "bearer_methods_supported": ["header"],
        "resource_documentation": format!("{origin}/servers"),
    }))
}

/// The `WWW-Authenticate` of a 401 for `path`: on `/mcp`, the challenge the MCP authorization
/// spec asks for, pointing at the metadata (`invalid_token` when a credential was sent and
/// refused, RFC 6750 §3.1); elsewhere a plain `Bearer`.
pub(super) fn challenge(path: &str, headers: &HeaderMap, presented: bool) -> HeaderValue {
    if !(path == MCP_PATH || path.starts_with("/mcp/")) {
        return HeaderValue::from_static("Bearer");
    }
    let mut value = format!(
        "Bearer resource_metadata=\"{}{MCP_METADATA_PATH}\"",
        origin(headers)
    );
    if presented {
        value.push_str(", error=\"invalid_token\"");
    }
    // The Host was checked by the gate, but a value that cannot be a header says nothing.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// `scheme://host` as the client reached this server.
fn origin(headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = header("host").unwrap_or("localhost");
    let scheme = match header("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_mcp_challenge_points_at_the_metadata_as_the_client_reached_us() {
        let seen = headers(&[("host", "sb.example.com"), ("x-forwarded-proto", "https")]);
        assert_eq!(
            challenge("/mcp", &seen, false),
            "Bearer resource_metadata=\"https://sb.example.com/.well-known/oauth-protected-resource/mcp\""
        );
        assert_eq!(
            challenge("/mcp", &headers(&[("host", "127.0.0.1:8080")]), true),
            "Bearer resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp\", error=\"invalid_token\""
        );
        assert_eq!(challenge("/api/tools", &seen, false), "Bearer");
        assert_eq!(challenge("/mcpx", &seen, false), "Bearer");
    }

    #[test]
    fn the_router_serves_the_paths_named_here() {
        let router = include_str!("../api.rs");
        for path in [MCP_METADATA_PATH, ROOT_METADATA_PATH] {
            assert!(
                router.contains(&format!("\"{path}\"")),
                "{path} is not routed"
            );
        }
    }
}
