//! The web UI: the pages (`/` chat, `/debug` runs and traces, `/servers` catalog) and their
//! assets, embedded at build time from `web/` (see `src/build.rs`), plus the security headers
//! every response carries.
//!
//! The UI is static HTML shells with small vanilla ES modules that call the JSON API: there is no
//! front-end build, so `cargo run` stays the only build step. Everything untrusted (model output,
//! tool output, tool and server names) reaches the page through the API as data and is put into
//! the DOM as text by the modules; the Content-Security-Policy below, sent with every page and
//! asset, is the second wall.

use std::borrow::Cow;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Files under `web/`, by path relative to it (`index.html`, `assets/js/chat.js`).
const ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Script only from our origin, no inline script or style, images only from us or `data:`,
/// no frames, no plugins, no form posts or fetches elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page routes and `/assets/…`, with the security headers; merged into the API router by
/// `api::router`. The headers are on the UI's responses only: the JSON API is never rendered as a
/// document, and a middleware on every tool call costs throughput (see docs/benchmarks.md).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { page("index.html") }))
        .route("/debug", get(|| async { page("debug.html") }))
        .route("/debug/runs/{id}", get(|| async { page("debug.html") }))
        .route("/servers", get(|| async { page("servers.html") }))
        .route("/assets/{*path}", get(asset))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Adds the security headers to a UI response.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Set once by `switchboard serve --web-dir`: files are then read from there on every request.
static DISK_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Serve the UI from `dir` instead of the embedded copy (development: edit, reload, no rebuild).
/// Paths with `..`, hidden or empty components are refused, so nothing outside `dir` is served.
pub fn serve_from_disk(dir: std::path::PathBuf) {
    let _ = DISK_DIR.set(dir);
}

fn lookup(path: &str) -> Option<Cow<'static, [u8]>> {
    if let Some(dir) = DISK_DIR.get() {
        return safe_relative(path)
            .then(|| std::fs::read(dir.join(path)).ok())
            .flatten()
            .map(Cow::Owned);
    }
    ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, body)| Cow::Borrowed(*body))
}

/// Relative paths of normal components only: no `..`, no absolute path, no hidden file.
fn safe_relative(path: &str) -> bool {
    path.split('/')
        .all(|part| !part.is_empty() && !part.starts_with('.') && !part.contains('\\'))
}

fn page(name: &str) -> Response {
    match lookup(name) {
        Some(body) => serve(name, body, &HeaderMap::new()),
        None => (StatusCode::NOT_FOUND, "page missing from this build").into_response(),
    }
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let full = format!("assets/{path}");
    match lookup(&full) {
        Some(body) => serve(&full, body, &headers),
        None => crate::api::ApiError::not_found(format!("no asset `{path}`")).into_response(),
    }
}

/// The body with its type and an ETag; `If-None-Match` with the same tag gets 304. Assets are
/// revalidated on every load (`no-cache`), so a new build is picked up at once.
fn serve(path: &str, body: Cow<'static, [u8]>, request: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", fnv1a(&body));
    let cache = [
        (header::CACHE_CONTROL, "no-cache".to_owned()),
        (header::ETAG, etag.clone()),
    ];
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if matches {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        [(header::CONTENT_TYPE, content_type(path).to_owned())],
        cache,
        body,
    )
        .into_response()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// A stable content hash for ETags (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_is_embedded() {
        for page in ["index.html", "debug.html", "servers.html"] {
            assert!(lookup(page).is_some(), "{page} is not embedded");
        }
    }

    #[test]
    fn every_asset_has_a_known_type() {
        for (path, _) in ASSETS {
            assert_ne!(
                content_type(path),
                "application/octet-stream",
                "{path} would be served without a content type"
            );
        }
    }

    /// The UI builds the DOM with text nodes only; these sinks would turn untrusted text into
    /// markup or code.
    #[test]
    fn no_script_uses_an_html_or_code_sink() {
        let sinks = [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "setAttribute('on",
            "setAttribute(\"on",
            "javascript:",
        ];
        for (path, body) in ASSETS.iter().filter(|(p, _)| p.ends_with(".js")) {
            let text = std::str::from_utf8(body).expect("scripts are UTF-8");
            for (line_no, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") || code.starts_with('*') {
                    continue;
                }
                for sink in sinks {
                    assert!(
                        !line.contains(sink),
                        "web/{path}:{}: uses `{sink}`",
                        line_no + 1
                    );
                }
            }
        }
    }

    #[test]
    fn pages_load_no_inline_script_or_style() {
        for (path, body) in ASSETS.iter().filter(|(p, _)| p.ends_with(".html")) {
            let text = std::str::from_utf8(body).expect("pages are UTF-8");
            assert!(
                !text.contains("<script>"),
                "web/{path} has an inline script"
            );
            assert!(!text.contains("<style"), "web/{path} has an inline style");
            assert!(
                !text.contains(" style="),
                "web/{path} has a style attribute"
            );
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "web/{path} refers to another origin"
            );
        }
    }
}
