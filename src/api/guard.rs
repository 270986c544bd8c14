//! The browser-facing gate every request passes before any route sees it, in every auth mode:
//!
//! - **Host allowlist** (DNS rebinding): a page on `rebind.test` whose name was re-pointed at
//!   127.0.0.1 reaches this server as a same-origin request, so the name in `Host` must be one
//!   this server answers to: a loopback name, the specific address it is bound to, or one of
//!   `server.public_hosts`. Ports are not compared. Refused with 421.
//! - **Cross-site writes**: a page on another origin can send a form post or a `no-cors` fetch
//!   without any CORS grant. A state-changing request (any method but GET, HEAD, OPTIONS) that
//!   carries an `Origin` must come from this server's own origin or one of
//!   `server.allowed_origins` (403), and one that carries a `Content-Type` must be
//!   `application/json` (415), which no cross-origin page can send without a CORS preflight.
//!   Clients that send neither header (curl, SDKs, `switchboard reload`) pass.
//!
//! No CORS grant (`Access-Control-Allow-*`) is ever sent. The decision ([`check`]) is a pure
//! function over the request's method and headers; [`GuardLayer`] applies it to the whole
//! router without allocating on the happy path, since every tool invoke goes through it.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::{Either, Ready, ready};

use super::ApiError;

/// What the gate lets through, from `server.*` config and the bound address.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Host names besides the loopback ones (`server.public_hosts`), lower-case.
    pub public_hosts: Vec<String>,
    /// Origins besides the server's own that may send state-changing requests
    /// (`server.allowed_origins`), lower-case, without a trailing slash.
    pub allowed_origins: Vec<String>,
    /// The address the server is bound to, when it is a specific one (not 0.0.0.0 or ::).
    pub bound_ip: Option<IpAddr>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `Host` header (or one that is not text).
    MissingHost,
    /// `Host` names a host this server does not answer to.
    Host(String),
    /// A state-changing request from another origin.
    Origin(String),
    /// A state-changing request whose body is not JSON.
    ContentType(String),
}

/// Whether a request with this method and these headers may reach the routes.
///
/// # Errors
/// The first rule it breaks, as a [`Refusal`].
pub fn check(method: &Method, headers: &HeaderMap, policy: &Policy) -> Result<(), Refusal> {
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
    else {
        return Err(Refusal::MissingHost);
    };
    if !host_allowed(host_name(host), policy) {
        return Err(Refusal::Host(host.to_owned()));
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(origin, host, policy) {
            return Err(Refusal::Origin(origin.to_owned()));
        }
    }
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let content_type = content_type.to_str().unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/json") {
            return Err(Refusal::ContentType(content_type.to_owned()));
        }
    }
    Ok(())
}

/// The host part of a `Host` value: `[::1]:8080` → `::1`, `example.test:80` → `example.test`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn host_allowed(name: &str, policy: &Policy) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Ok(ip) = name.parse::<IpAddr>()
        && (ip.is_loopback() || Some(ip) == policy.bound_ip)
    {
        return true;
    }
    policy
        .public_hosts
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// The request's own origin is `http(s)://` + its `Host`; others must be listed.
fn origin_allowed(origin: &str, host: &str, policy: &Policy) -> bool {
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    if authority.is_some_and(|authority| authority.eq_ignore_ascii_case(host)) {
        return true;
    }
    policy
        .allowed_origins
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(origin))
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::MissingHost | Refusal::Host(_) => StatusCode::MISDIRECTED_REQUEST,
            Refusal::Origin(_) => StatusCode::FORBIDDEN,
            Refusal::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Refusal::MissingHost | Refusal::Host(_) => "host_not_allowed",
            Refusal::Origin(_) => "cross_origin_refused",
            Refusal::ContentType(_) => "unsupported_media_type",
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::MissingHost => {
                "the request has no Host header; this server answers only to the names it is \
                 configured for"
                    .to_owned()
            }
            Refusal::Host(host) => format!(
                "this server does not answer to the host `{}`; add it to server.public_hosts \
                 if it is one of this server's names",
                printable(host)
            ),
            Refusal::Origin(origin) => format!(
                "a page on `{}` may not change anything here; add the origin to \
                 server.allowed_origins if it is trusted",
                printable(origin)
            ),
            Refusal::ContentType(content_type) => format!(
                "a request that changes something must send Content-Type: application/json, \
                 not `{}`",
                printable(content_type)
            ),
        }
    }

    /// The refusal in the error shape of the route asked for: OpenAI's under `/v1`, ours
    /// elsewhere.
    fn into_response_for(self, path: &str) -> Response {
        let (status, code, message) = (self.status(), self.code(), self.message());
        tracing::warn!(status = %status, code, error = %message, "request refused by the gate");
        if path.starts_with("/v1/") {
            return super::openai::refusal(status, code, message);
        }
        ApiError::new(status, code, message).into_response()
    }
}

/// At most 200 characters of a header value, for an error message.
fn printable(value: &str) -> String {
    value.chars().take(200).collect()
}

/// Applies [`check`] to every request of the router it wraps.
#[derive(Debug, Clone)]
pub struct GuardLayer {
    policy: Arc<Policy>,
}

impl GuardLayer {
    /// A gate with this policy.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }
}

impl<S> tower_layer::Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service [`GuardLayer`] makes: refuses at once, or hands the request on untouched.
#[derive(Debug, Clone)]
pub struct Guard<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S> tower_service::Service<Request<Body>> for Guard<S>
where
    S: tower_service::Service<Request<Body>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        match check(request.method(), request.headers(), &self.policy) {
            Ok(()) => Either::Left(self.inner.call(request)),
            Err(refusal) => {
                Either::Right(ready(Ok(refusal.into_response_for(request.uri().path()))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn policy() -> Policy {
        Policy {
            public_hosts: vec!["switchboard.internal".into()],
            allowed_origins: vec!["https://tools.example.test".into()],
            bound_ip: Some("10.1.2.3".parse().unwrap()),
        }
    }

    #[track_caller]
    fn check_case(method: Method, headers: &[(&str, &str)], expected: Result<(), Refusal>) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        assert_eq!(check(&method, &map, &policy()), expected, "{headers:?}");
    }

    #[test]
    fn hosts_are_loopback_the_bound_address_or_listed() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1:8080",
            "127.9.9.9",
            "[::1]:8080",
            "[::1]",
            "10.1.2.3:8080",
            "switchboard.internal",
            "Switchboard.Internal:443",
            "localhost.",
        ] {
            check_case(Method::GET, &[("host", host)], Ok(()));
        }
        for host in [
            "rebind.test",
            "rebind.test:8080",
            "10.1.2.4",
            "[::2]:8080",
            "localhost.rebind.test",
            "127.0.0.1.nip.io",
        ] {
            check_case(
                Method::GET,
                &[("host", host)],
                Err(Refusal::Host(host.to_owned())),
            );
        }
        check_case(Method::GET, &[], Err(Refusal::MissingHost));
    }

    #[test]
    fn state_changes_come_from_this_origin_or_a_listed_one() {
        let host = ("host", "127.0.0.1:8080");
        check_case(
            Method::POST,
            &[host, ("origin", "http://127.0.0.1:8080")],
            Ok(()),
        );
        check_case(
            Method::POST,
            &[host, ("origin", "https://tools.example.test")],
            Ok(()),
        );
        for origin in [
            "http://evil.test",
            "http://127.0.0.1:9999",
            "null",
            "http://127.0.0.1:8080.evil.test",
        ] {
            check_case(
                Method::POST,
                &[host, ("origin", origin)],
                Err(Refusal::Origin(origin.to_owned())),
            );
        }
        // Reads are not state changes; CORS keeps their answers from other origins.
        check_case(Method::GET, &[host, ("origin", "http://evil.test")], Ok(()));
        check_case(
            Method::DELETE,
            &[host, ("origin", "http://evil.test")],
            Err(Refusal::Origin("http://evil.test".to_owned())),
        );
        // No Origin: not a browser page (curl, SDKs, the CLI).
        check_case(Method::POST, &[host], Ok(()));
    }

    #[test]
    fn state_changes_are_json_when_they_say_what_they_are() {
        let host = ("host", "localhost:8080");
        for json in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
        ] {
            check_case(Method::POST, &[host, ("content-type", json)], Ok(()));
        }
        for other in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
        ] {
            check_case(
                Method::POST,
                &[host, ("content-type", other)],
                Err(Refusal::ContentType(other.to_owned())),
            );
        }
        check_case(Method::GET, &[host, ("content-type", "text/plain")], Ok(()));
    }
}
