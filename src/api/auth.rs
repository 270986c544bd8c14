//! Who is calling: the layer every route but the public ones passes after the gate. It turns an
//! `Authorization: Bearer` key or a session cookie into a [`Caller`] that handlers receive as
//! an extension, counts the request against the key's rate, and ends a streaming response when
//! the key is revoked. With `auth: none` every request is the local administrator.
//!
//! Public, in every mode: `/healthz`, `/readyz`, the sign-in page and its assets
//! (`/signin`, `/assets/…`), signing in itself (`POST /api/session`), and `/mcp`'s protected
//! resource metadata (`/.well-known/oauth-protected-resource[/mcp]`). Everything else
//! needs a caller; a page asked for without one is redirected to the sign-in page, anything
//! else gets 401 (OpenAI's error shape under `/v1`) that never says why a credential failed.
//! Admin-only routes are grouped in `api::routes` behind [`require_admin`].

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::{ApiError, AppState, protected_resource};
use crate::access::{AuditEvent, Caller, Refused, key_id_of};
use crate::auth::AuthFailure;
use crate::config::model::AuthMode;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sb_session";

/// The address a request came from, when known (every request has this extension).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub Option<String>);

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `auth: none`.
    Local,
    Bearer,
    Cookie,
}

/// Paths anyone may reach.
fn is_public(method: &Method, path: &str) -> bool {
    matches!(
        path,
        "/healthz"
            | "/readyz"
            | "/signin"
            | "/favicon.ico"
            | protected_resource::MCP_METADATA_PATH
            | protected_resource::ROOT_METADATA_PATH
    ) || path.starts_with("/assets/")
        || (path == "/api/session" && method == Method::POST)
}

/// Pages (as opposed to API routes): without a caller they redirect to the sign-in page.
fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/")
        || path.starts_with("/v1/")
        || path == "/v1"
        || path == "/mcp"
        || path.starts_with("/mcp/"))
}

/// The layer's function: authenticate, count, attach the caller, then the route.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string());
    request.extensions_mut().insert(ClientAddr(client.clone()));
    let found = match state.auth.mode() {
        AuthMode::None => Ok((Caller::local(), Credential::Local)),
        AuthMode::Keys => credential(&state, request.headers()).await,
    };
    let (caller, credential) = match found {
        Ok(found) => found,
        Err(_) if is_public(request.method(), &path) => return next.run(request).await,
        Err((failure, key_id)) => {
            if !matches!(failure, AuthFailure::Missing) {
                tracing::info!(path = %path, reason = failure.reason(), error = %failure, "credential refused");
                state.hub.audit().record(AuditEvent {
                    user: None,
                    key_id,
                    action: "auth_failure",
                    target: Some(failure.reason().to_owned()),
                    outcome: "denied",
                    client,
                    trace_id: None,
                });
            }
            return refusal(&failure, &request, &path);
        }
    };
    if credential == Credential::Cookie
        && !matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        )
        && !request.headers().contains_key(header::ORIGIN)
    {
        // The gate refused a foreign Origin; a cookie-borne change must also say it is ours.
        return error_for(
            &path,
            StatusCode::FORBIDDEN,
            "cross_origin_refused",
            "a change made with a session cookie must carry this server's Origin".to_owned(),
        );
    }
    if let Err(refused) = state.hub.limiter().request(&caller) {
        return limited(&path, &refused);
    }
    let caller = caller.from_client(client);
    let revoked = (credential != Credential::Local).then(|| caller.revoked().clone());
    request.extensions_mut().insert(caller);
    request.extensions_mut().insert(credential);
    let response = next.run(request).await;
    match revoked {
        Some(revoked) if is_event_stream(response.headers()) => end_on_revoke(response, revoked),
        _ => response,
    }
}

/// The bearer key or session cookie of a request, authenticated.
async fn credential(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Caller, Credential), (AuthFailure, Option<String>)> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or((AuthFailure::Malformed, None))?;
        let key_id = key_id_of(token).map(str::to_owned);
        return match state.auth.authenticate_key(token).await {
            Ok(caller) => Ok((caller, Credential::Bearer)),
            Err(failure) => Err((failure, key_id)),
        };
    }
    let Some(token) = session_cookie(headers) else {
        return Err((AuthFailure::Missing, None));
    };
    match state.auth.authenticate_session(token).await {
        Ok(caller) => Ok((caller, Credential::Cookie)),
        Err(failure) => Err((failure, None)),
    }
}

/// The value of the session cookie, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value.trim())
        })
}

/// The answer to a request without a valid credential.
fn refusal(failure: &AuthFailure, request: &Request, path: &str) -> Response {
    let (method, query) = (request.method(), request.uri().query());
    if let AuthFailure::UnknownRole(_) = failure {
        return error_for(
            path,
            StatusCode::FORBIDDEN,
            "role_not_configured",
            failure.to_string(),
        );
    }
    if let AuthFailure::Store(err) = failure {
        tracing::error!(error = %err, "checking a credential failed");
        return error_for(
            path,
            StatusCode::SERVICE_UNAVAILABLE,
            "auth_unavailable",
            "credentials cannot be checked right now; try again shortly".to_owned(),
        );
    }
    if is_page(path) && *method == Method::GET {
        // Back to the same page and query after signing in (the conversation open, the filters).
        let next = match query {
            _ if !path.starts_with('/') || path.starts_with("//") => "/".to_owned(),
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        let location = format!(
            "/signin?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        return (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    }
    let mut response = error_for(
        path,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a valid API key is required: send `Authorization: Bearer <key>`, or sign in at /signin"
            .to_owned(),
    );
    let presented = !matches!(failure, AuthFailure::Missing);
    let challenge = protected_resource::challenge(path, request.headers(), presented);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}

/// 429 with `Retry-After` for a limit.
pub(super) fn limited(path: &str, refused: &Refused) -> Response {
    let mut response = error_for(
        path,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        refused.to_string(),
    );
    if let Ok(value) = HeaderValue::from_str(&refused.retry_after().as_secs().to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// An error in the shape of the route asked for: OpenAI's under `/v1`, ours elsewhere.
pub(super) fn error_for(
    path: &str,
    status: StatusCode,
    code: &'static str,
    message: String,
) -> Response {
    if path.starts_with("/v1/") {
        return super::openai::refusal(status, code, message);
    }
    ApiError::new(status, code, message).into_response()
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// The response, cut off when `revoked` is cancelled.
fn end_on_revoke(response: Response, revoked: tokio_util::sync::CancellationToken) -> Response {
    let (parts, body) = response.into_parts();
    let stream = body
        .into_data_stream()
        .take_until(revoked.cancelled_owned());
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The route layer of admin-only routes: 403 for anyone else.
pub async fn require_admin(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    match request.extensions().get::<Caller>() {
        Some(caller) if caller.is_admin() => next.run(request).await,
        _ => error_for(
            &path,
            StatusCode::FORBIDDEN,
            "admin_only",
            "only administrators may do this".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_list_is_short() {
        for (method, path) in [
            (Method::GET, "/healthz"),
            (Method::GET, "/readyz"),
            (Method::GET, "/signin"),
            (Method::GET, "/assets/app.css"),
            (Method::POST, "/api/session"),
        ] {
            assert!(is_public(&method, path), "{method} {path}");
        }
        for (method, path) in [
            (Method::GET, "/api/session"),
            (Method::DELETE, "/api/session"),
            (Method::GET, "/"),
            (Method::GET, "/api/tools"),
            (Method::POST, "/v1/chat/completions"),
            (Method::GET, "/healthz/x"),
        ] {
            assert!(!is_public(&method, path), "{method} {path}");
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; sb_session=sbs_abc ; b=2"),
        );
        assert_eq!(session_cookie(&headers), Some("sbs_abc"));
        let mut other = HeaderMap::new();
        other.append(header::COOKIE, HeaderValue::from_static("sb_session_x=1"));
        assert_eq!(session_cookie(&other), None);
    }
}
