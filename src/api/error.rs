//! The one JSON error shape of the HTTP API, and the extractor that makes malformed bodies use it.
//!
//! `{"error": {"code": "...", "message": "...", "details": ..., "request_id": "..."}}`, declared in
//! `wire::errors`.
//! 4xx messages are meant for users; 5xx responses never carry internals (only a generic message
//! and a request id), and the real error is logged once, here.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::wire::errors::{ArgumentError, ErrorBody, ErrorDetail};
use crate::hub::InvokeError;
use crate::mcp::McpError;

/// An API failure: status, stable machine code, user message, optional structured details.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// Sent as `Retry-After` (whole seconds) with a 429.
    pub retry_after: Option<std::time::Duration>,
    /// The whole cause chain of a failure (rmcp and reqwest errors with their type names and
    /// URLs): logged with the request id, never sent.
    pub detail: Option<String>,
}

impl ApiError {
    /// A 4xx or 5xx with a message that is safe to show.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            detail: None,
        }
    }

    /// 429 for a limit the caller reached, with its `Retry-After`.
    pub fn limited(refused: &crate::access::Refused) -> Self {
        Self {
            retry_after: Some(refused.retry_after()),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                refused.to_string(),
            )
        }
    }

    /// 403 for something the caller's role does not grant.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// Attach structured details (validation errors, config errors).
    pub fn with_details(mut self, details: impl Serialize) -> Self {
        self.details = serde_json::to_value(details).ok();
        self
    }

    /// Keep `err`'s cause chain for the log (5xx only; never sent to the client).
    pub fn with_detail(mut self, err: &(dyn std::error::Error + 'static)) -> Self {
        self.detail = Some(error_chain(err));
        self
    }

    /// A route that does not exist.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = format!("{:016x}", fastrand::u64(..));
        let message = if self.status.is_server_error() && self.code == "internal" {
            let detail = self.detail.as_deref().unwrap_or(&self.message);
            tracing::error!(request_id = %request_id, error = %detail, "request failed");
            "internal error; the server log has details under this request id".to_owned()
        } else {
            if self.status.is_server_error() {
                let detail = self.detail.as_deref().unwrap_or(&self.message);
                tracing::warn!(request_id = %request_id, code = self.code, error = %detail, "request failed");
            }
            self.message
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &message,
                request_id: &request_id,
                details: self.details.as_ref(),
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(after) = self.retry_after
            && let Ok(value) =
                axum::http::HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<InvokeError> for ApiError {
    fn from(err: InvokeError) -> Self {
        match &err {
            InvokeError::UnknownTool { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "tool_not_found", err.to_string())
            }
            InvokeError::InvalidArguments { errors, .. } => {
                let details: Vec<ArgumentError<'_>> =
                    errors.iter().map(ArgumentError::from).collect();
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_arguments",
                    err.to_string(),
                )
                .with_details(details)
            }
            InvokeError::InvalidOutput { errors, .. } => {
                let details: Vec<ArgumentError<'_>> =
                    errors.iter().map(ArgumentError::from).collect();
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "tool_invalid_output",
                    err.to_string(),
                )
                .with_details(details)
            }
            InvokeError::Forbidden { .. } => {
                ApiError::forbidden("tool_not_allowed", err.to_string())
            }
            InvokeError::Limited(refused) => ApiError::limited(refused),
            InvokeError::ApprovalDenied { .. } => {
                ApiError::forbidden("approval_denied", err.to_string())
            }
            InvokeError::ApprovalRequired { .. } => ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "approval_required",
                err.to_string(),
            ),
            InvokeError::Mcp(mcp) => mcp_error(mcp),
        }
    }
}

impl From<crate::hub::context::ContextError> for ApiError {
    fn from(err: crate::hub::context::ContextError) -> Self {
        use crate::hub::context::ContextError;
        match &err {
            ContextError::Forbidden { .. } => {
                ApiError::forbidden("context_not_allowed", err.to_string())
            }
            ContextError::NotOffered { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "context_not_offered",
                err.to_string(),
            ),
            ContextError::Mcp(mcp) => mcp_error(mcp),
        }
    }
}

fn mcp_error(err: &McpError) -> ApiError {
    let (status, code) = match err {
        McpError::UnknownServer { .. } => (StatusCode::NOT_FOUND, "server_not_found"),
        McpError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "server_unavailable"),
        McpError::ServerExited { .. } => (StatusCode::SERVICE_UNAVAILABLE, "server_exited"),
        McpError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "tool_timeout"),
        McpError::Protocol { .. } => (StatusCode::BAD_GATEWAY, "tool_protocol_error"),
        McpError::Transport { .. } => (StatusCode::BAD_GATEWAY, "server_transport_error"),
        McpError::OutcomeUnknown { .. } => (StatusCode::BAD_GATEWAY, "tool_outcome_unknown"),
        McpError::Cancelled { .. } => (StatusCode::SERVICE_UNAVAILABLE, "tool_cancelled"),
    };
    // These messages describe the MCP server's state in user terms; they hold no internals of
    // ours (`McpError`'s messages never embed an rmcp or reqwest error's text). The cause chain,
    // which does, goes to the log under the request id.
    ApiError::new(status, code, err.to_string()).with_detail(err)
}

/// `err` and each of its sources, joined with ": ", for the log.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

/// `Json<T>` whose rejections use our error shape and say what was wrong with the body.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(AppJson(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "request body: larger than this server accepts (server.max_body_bytes)",
                ))
            }
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                "invalid_body",
                format!("request body: {}", rejection.body_text()),
            )),
        }
    }
}
