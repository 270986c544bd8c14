//! Sign-in and sign-out (`/api/session`), key management (`/api/keys`, admins only) and the
//! audit log (`/api/audit`, admins only).

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::auth::{ClientAddr, SESSION_COOKIE, session_cookie};
use super::error::{ApiError, AppJson};
use super::wire::access::{AuditList, CreatedKey, Key, KeyList, NewKey, Session, SignIn};
use crate::access::{AuditEvent, Caller, key_id_of};
use crate::auth::{AuthFailure, KeyAdminError, parse_duration};
use crate::config::model::AuthMode;
use crate::domain::now_millis;
use crate::store::AuditFilter;

/// `GET /api/session`: who the caller is.
pub(super) async fn current(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    Json(Session::new(&caller, state.auth.mode().name(), None)).into_response()
}

/// `POST /api/session`: trade a key for an HttpOnly session cookie.
pub(super) async fn sign_in(
    State(state): State<AppState>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    headers: HeaderMap,
    AppJson(SignIn { key }): AppJson<SignIn>,
) -> Result<Response, ApiError> {
    let secure = is_tls(&headers);
    if state.auth.mode() == AuthMode::None {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "auth_disabled",
            "this server does not use sign-in (server.auth: none); every local caller is its administrator",
        ));
    }
    let key = key.trim();
    let signed = state.auth.sign_in(key).await;
    let audit = |user: Option<&str>, outcome| AuditEvent {
        user: user.map(str::to_owned),
        key_id: key_id_of(key).map(str::to_owned),
        action: "sign_in",
        target: None,
        outcome,
        client: client.clone(),
        trace_id: None,
    };
    let signed = match signed {
        Ok(signed) => signed,
        Err(AuthFailure::Store(err)) => return Err(err.into()),
        Err(failure) => {
            tracing::info!(reason = failure.reason(), "sign-in refused");
            state.hub.audit().record(audit(None, "denied"));
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "that key was not accepted",
            ));
        }
    };
    state
        .hub
        .audit()
        .record(audit(Some(signed.caller.user()), "ok"));
    let max_age = (signed.expires_at - now_millis()).max(0) / 1000;
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        signed.token.expose(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = Json(Session::new(
        &signed.caller,
        "keys",
        Some(signed.expires_at),
    ))
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `DELETE /api/session`: end the browser session (the cookie is cleared either way).
pub(super) async fn sign_out(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = session_cookie(&headers) {
        state.auth.sign_out(token).await?;
        state
            .hub
            .audit()
            .record(AuditEvent::by(&caller, "sign_out", None, "ok"));
    }
    let cookie = format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if is_tls(&headers) { "; Secure" } else { "" }
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Whether the browser reached us over TLS (directly or through a proxy that says so).
fn is_tls(headers: &HeaderMap) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("https://"));
    forwarded || origin
}

/// `GET /api/keys`: every key, newest first, never a secret.
pub(super) async fn list_keys(State(state): State<AppState>) -> Result<Response, ApiError> {
    let keys = state.auth.list_keys().await?;
    let now = now_millis();
    Ok(Json(KeyList {
        keys: keys.iter().map(|k| Key::new(k, now)).collect(),
    })
    .into_response())
}

/// `POST /api/keys`: a new key; its secret is in this answer only.
pub(super) async fn create_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    AppJson(request): AppJson<NewKey>,
) -> Result<Response, ApiError> {
    let expires_in = request
        .expires_in
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|message| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                format!("expires_in: {message}"),
            )
        })?;
    let created = state
        .auth
        .create_key(&request.user, &request.role, expires_in)
        .await;
    let target = created.as_ref().ok().map(|c| c.record.id.clone());
    let outcome = if created.is_ok() { "ok" } else { "failed" };
    state
        .hub
        .audit()
        .record(AuditEvent::by(&caller, "key_create", target, outcome));
    let created = created.map_err(|err| match err {
        KeyAdminError::Store(err) => ApiError::from(err),
        KeyAdminError::Random(err) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            err.to_string(),
        ),
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            other.to_string(),
        ),
    })?;
    let body = CreatedKey {
        key: Key::new(&created.record, now_millis()),
        secret: created.token.expose(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE /api/keys/{id}`: revoke a key (its sessions end, its open streams close).
pub(super) async fn revoke_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let revoked = state.auth.revoke_key(&id).await;
    let outcome = if revoked.is_ok() { "ok" } else { "failed" };
    state.hub.audit().record(AuditEvent::by(
        &caller,
        "key_revoke",
        Some(id.chars().take(64).collect()),
        outcome,
    ));
    revoked?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/audit` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    user: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/audit`: one page of the audit log, newest first.
pub(super) async fn audit(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let filter = AuditFilter {
        user: super::runs::non_empty(query.user),
        action: super::runs::non_empty(query.action),
        outcome: super::runs::non_empty(query.outcome),
        since: super::runs::number(query.since.as_deref(), "since")?,
        until: super::runs::number(query.until.as_deref(), "until")?,
        limit: super::runs::number(query.limit.as_deref(), "limit")?.unwrap_or(0),
        cursor: super::runs::non_empty(query.cursor),
    };
    let page = state.runs.store().list_audit(&filter).await?;
    Ok(Json(AuditList::from(&page)).into_response())
}
