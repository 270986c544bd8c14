//! The server's route table, read from the router's source (`src/api.rs` and `src/web.rs`) by a
//! small parser, so the sweeps of the access tests cover a route the day it is added without
//! anyone remembering to list it here.
//!
//! The parser understands what the router is written with: `.route("PATH", get(..).post(..))`
//! (one line or several), the admin group `let admin = Router::new().route(..)…;` and the web
//! UI's `page_route(..)`. Anything else it meets in a method router is a panic that says so,
//! and [`ROUTES_TODAY`] catches a parser that silently finds fewer routes.

use std::path::Path;

use reqwest::Method;

/// How many (method, path) pairs the router declares today; fewer found means the parser broke.
const ROUTES_TODAY: usize = 43;

/// One (method, path) of the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Route {
    pub(super) method: Method,
    /// As declared: `/api/runs/{id}`.
    pub(super) path: String,
    /// In the admin-only group of `api::routes`.
    pub(super) admin: bool,
}

impl Route {
    /// A page of the web UI (everything outside `/api` and `/v1`), which redirects to sign-in.
    pub(super) fn is_page(&self) -> bool {
        !(self.path.starts_with("/api/") || self.path.starts_with("/v1/"))
    }

    /// On the explicit public list of issue 11: health, readiness, the sign-in page, static
    /// assets, and signing in itself; and `/mcp`'s protected resource metadata (RFC 9728).
    pub(super) fn is_public(&self) -> bool {
        let public_read = [
            "/healthz",
            "/readyz",
            "/signin",
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
        ]
        .contains(&self.path.as_str())
            || self.path.starts_with("/assets/");
        (self.method == Method::GET && public_read)
            || (self.method == Method::POST && self.path == "/api/session")
    }

    /// The path with its parameters replaced: `{id}` by `id`, `{name}` by a tool name,
    /// `{*path}` by an asset. Panics on a parameter it does not know, so a new kind is noticed.
    pub(super) fn with_id(&self, id: &str) -> String {
        let mut path = String::new();
        let mut rest = self.path.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').expect("a closed parameter") + open;
            path.push_str(&rest[..open]);
            path.push_str(match &rest[open + 1..close] {
                "id" => id,
                "name" => "calc__evaluate",
                "input" => "in-1",
                "approval" => "ap-1",
                "server" => "calc",
                "tool" => "evaluate",
                "*path" => "app.css",
                other => panic!(
                    "route {} has a parameter `{{{other}}}` the access tests do not know; \
                     add a plausible value for it in access/table.rs",
                    self.path
                ),
            });
            rest = &rest[close + 1..];
        }
        path.push_str(rest);
        path
    }

    /// The path with a fresh, unknown UUID for `{id}`.
    pub(super) fn sample(&self) -> String {
        self.with_id(&switchboard::domain::RunId::new().to_string())
    }

    /// `{}` for requests that may change something (they must be JSON), nothing for reads.
    pub(super) fn body(&self) -> Option<serde_json::Value> {
        (!matches!(self.method, Method::GET | Method::HEAD)).then(|| serde_json::json!({}))
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Every route of the server: the API's (`api::routes`) and the web UI's (`web::router`).
pub(super) fn routes() -> Vec<Route> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |file: &str| {
        let text = std::fs::read_to_string(root.join(file))
            .unwrap_or_else(|err| panic!("reading {file}: {err}"));
        strip_comments(&text)
    };
    let api = read("src/api.rs");
    let api = body_of(&api, "pub fn routes()");
    let admin_start = api
        .find("let admin")
        .expect("api::routes has its admin group in `let admin = …;`");
    let admin_end = admin_start + api[admin_start..].find(';').expect("the group ends");
    let web = read("src/web.rs");
    let web = body_of(&web, "pub fn router<");
    let mut routes = Vec::new();
    for (at, path, methods) in route_calls(api) {
        let admin = (admin_start..admin_end).contains(&at);
        routes.extend(methods.into_iter().map(|method| Route {
            method,
            path: path.clone(),
            admin,
        }));
    }
    for (_, path, methods) in route_calls(web) {
        routes.extend(methods.into_iter().map(|method| Route {
            method,
            path: path.clone(),
            admin: false,
        }));
    }
    check(&routes);
    routes
}

/// Fail loudly when the parser found less than is there.
fn check(routes: &[Route]) {
    assert!(
        routes.len() >= ROUTES_TODAY,
        "the route parser found {} routes, fewer than the {ROUTES_TODAY} the router has: {routes:#?}",
        routes.len()
    );
    let has = |method: Method, path: &str, admin: bool| {
        routes
            .iter()
            .any(|r| r.method == method && r.path == path && r.admin == admin)
    };
    for (method, path, admin) in [
        (Method::GET, "/healthz", false),
        (Method::DELETE, "/api/session", false),
        (Method::PATCH, "/api/conversations/{id}", false),
        (Method::GET, "/api/runs/{id}/events", false),
        (Method::POST, "/v1/chat/completions", false),
        (Method::GET, "/api/mcp/servers", true),
        (Method::POST, "/api/config/reload", true),
        (Method::POST, "/api/models/reload", true),
        (Method::GET, "/api/keys", true),
        (Method::POST, "/api/keys", true),
        (Method::DELETE, "/api/keys/{id}", true),
        (Method::GET, "/api/audit", true),
        (Method::GET, "/debug/runs/{id}", false),
        (Method::GET, "/signin", false),
        (Method::GET, "/assets/{*path}", false),
    ] {
        assert!(
            has(method.clone(), path, admin),
            "the route parser did not find {method} {path} (admin: {admin}): {routes:#?}"
        );
    }
}

/// `source` without `//` comments (outside string literals).
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut cut = line.len();
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
            } else if b == b'"' {
                in_string = true;
            } else if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
                cut = i;
                break;
            }
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

/// The body (between its braces) of the function whose signature starts with `signature`.
fn body_of<'a>(source: &'a str, signature: &str) -> &'a str {
    let start = source
        .find(signature)
        .unwrap_or_else(|| panic!("no `{signature}` in the router's source"));
    let open = start + source[start..].find('{').expect("a function body");
    let close = matching(source, open, b'{', b'}');
    &source[open + 1..close]
}

/// The index of the bracket closing the one at `open`, skipping string literals.
fn matching(source: &str, open: usize, opening: u8, closing: u8) -> usize {
    let bytes = source.as_bytes();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if b == b'"' {
            in_string = true;
        } else if b == opening {
            depth += 1;
        } else if b == closing {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
    }
    panic!(
        "unbalanced `{}` in the router's source",
        char::from(opening)
    );
}

/// Each `.route("PATH", METHODS)` in `source`: where it is, its path and its methods.
fn route_calls(source: &str) -> Vec<(usize, String, Vec<Method>)> {
    let mut calls = Vec::new();
    let mut from = 0;
    while let Some(found) = source[from..].find(".route(") {
        let at = from + found;
        let open = at + ".route".len();
        let close = matching(source, open, b'(', b')');
        let args = &source[open + 1..close];
        let path_start = args.find('"').expect("a route's path is a string literal") + 1;
        let path_end = path_start + args[path_start..].find('"').expect("the path ends");
        let path = args[path_start..path_end].to_owned();
        let methods = methods_of(&args[path_end + 1..], &path);
        assert!(!methods.is_empty(), "no methods found for route {path}");
        calls.push((at, path, methods));
        from = close;
    }
    calls
}

/// The methods of a method router such as `, get(a).post(b)`: the calls at its top level.
fn methods_of(expression: &str, path: &str) -> Vec<Method> {
    let bytes = expression.as_bytes();
    let mut methods = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'(' {
            i = matching(expression, i, b'(', b')') + 1;
            continue;
        }
        if b.is_ascii_alphabetic() || b == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let called = expression[i..].trim_start().starts_with('(');
            if called {
                methods.push(method_named(&expression[start..i], path));
            }
            continue;
        }
        i += 1;
    }
    methods
}

fn method_named(name: &str, path: &str) -> Method {
    match name {
        "get" | "page_route" => Method::GET,
        "post" => Method::POST,
        "put" => Method::PUT,
        "patch" => Method::PATCH,
        "delete" => Method::DELETE,
        "head" => Method::HEAD,
        "options" => Method::OPTIONS,
        other => panic!(
            "route {path} uses `{other}(..)`, which the access tests' route parser does not \
             know; teach it in access/table.rs"
        ),
    }
}
