//! The web UI: the pages (`/` chat, `/debug` runs and traces, `/debug/audit` the audit log,
//! `/servers` catalog, `/signin` the sign-in page) and their assets, embedded at build time from
//! `web/` (see `src/build.rs`), plus the security headers every response carries.
//!
//! Who may load which page is decided in front of this router (`api::auth`): `/signin` and
//! `/assets/…` are public, every other page without a caller redirects to
//! `/signin?next=<path>`. The pages themselves hold no data; what they show comes from the API,
//! which checks the caller on every call.
//!
//! The UI is static HTML shells with small vanilla ES modules that call the JSON API: there is no
//! front-end build, so `cargo run` stays the only build step. Everything untrusted (model output,
//! tool output, tool and server names) reaches the page through the API as data and is put into
//! the DOM as text by the modules; the Content-Security-Policy below, sent with every page and
//! asset, is the second wall.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

/// Files under `web/`, by path relative to it (`index.html`, `assets/js/chat.js`).
const ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Script only from our origin, no inline script or style, images only from us or `data:`,
/// no frames, no plugins, no form posts or fetches elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Where the UI's files come from; given to [`router`] by the composition root rather than set
/// in a global, so servers in one process (tests) can each serve their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WebAssets {
    /// The copy embedded at build time: the binary needs nothing beside it.
    #[default]
    Embedded,
    /// Files read from this directory on every request (`serve --web-dir`, development: edit,
    /// reload, no rebuild). Paths with `..`, hidden or empty components are refused, so nothing
    /// outside the directory is served.
    Disk(PathBuf),
}

/// The page routes and `/assets/…` serving `assets`, with the security headers; merged into the
/// API's routes by `app`. The headers are on the UI's responses only: the JSON API is never
/// rendered as a document, and a middleware on every tool call costs throughput (see
/// docs/benchmarks.md).
pub fn router<S: Clone + Send + Sync + 'static>(assets: WebAssets) -> Router<S> {
    Router::new()
        .route("/", page_route("index.html"))
        .route("/debug", page_route("debug.html"))
        .route("/debug/audit", page_route("debug.html"))
        .route("/debug/runs/{id}", page_route("debug.html"))
        .route("/servers", page_route("servers.html"))
        .route("/signin", page_route("signin.html"))
        .route("/assets/{*path}", get(asset))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(Arc::new(assets))
}

/// The router's own state: where files come from.
type Assets = State<Arc<WebAssets>>;

/// `GET` of the page `name` (the pages take no parameters: `/debug/runs/{id}` is read by the
/// page's script).
fn page_route(name: &'static str) -> MethodRouter<Arc<WebAssets>> {
    get(move |State(assets): Assets| async move { page(&assets, name) })
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

fn lookup(assets: &WebAssets, path: &str) -> Option<Cow<'static, [u8]>> {
    if let WebAssets::Disk(dir) = assets {
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

fn page(assets: &WebAssets, name: &str) -> Response {
    match lookup(assets, name) {
        Some(body) => serve(name, body, &HeaderMap::new()),
        None => (StatusCode::NOT_FOUND, "page missing from this build").into_response(),
    }
}

async fn asset(State(assets): Assets, Path(path): Path<String>, headers: HeaderMap) -> Response {
    let full = format!("assets/{path}");
    match lookup(&assets, &full) {
        Some(body) => serve(&full, body, &headers),
        None => not_found(format!("no asset `{path}`")),
    }
}

/// A 404 in the JSON API's error shape (`{"error": {"code", "message", "request_id"}}`), so
/// clients see one shape whichever part answered; built here so the UI does not depend on `api`.
fn not_found(message: String) -> Response {
    let request_id = format!("{:016x}", fastrand::u64(..));
    let body = serde_json::json!({
        "error": { "code": "not_found", "message": message, "request_id": request_id }
    });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
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
        for page in ["index.html", "debug.html", "servers.html", "signin.html"] {
            assert!(
                lookup(&WebAssets::Embedded, page).is_some(),
                "{page} is not embedded"
            );
        }
    }

    #[test]
    fn files_on_disk_are_served_from_their_directory_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("web");
        std::fs::create_dir_all(root.join("assets")).expect("mkdir");
        std::fs::write(root.join("index.html"), "on disk").expect("write");
        std::fs::write(dir.path().join("secret"), "outside").expect("write");
        let disk = WebAssets::Disk(root);
        assert_eq!(
            lookup(&disk, "index.html").as_deref(),
            Some(&b"on disk"[..])
        );
        assert_eq!(
            lookup(&disk, "debug.html"),
            None,
            "not embedded as a fallback"
        );
        for path in [
            "../secret",
            "assets/../../secret",
            ".hidden",
            "a//b",
            "a\\b",
        ] {
            assert_eq!(lookup(&disk, path), None, "{path}");
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
