//! The API's one error body, `{"error": {"code", "message", "request_id", "details"?}}`, which
//! `ApiError` answers with, and the details of invalid tool arguments.

use serde::Serialize;
use serde_json::Value;

use crate::tools;

/// The body of every error of the API (not of `/v1`, which speaks OpenAI's error shape).
#[derive(Debug, Serialize)]
pub(in crate::api) struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Serialize)]
pub(in crate::api) struct ErrorDetail<'a> {
    /// Stable and machine-readable (`not_found`, `invalid_arguments`, ...).
    pub code: &'static str,
    /// For users; a generic text for internal errors.
    pub message: &'a str,
    /// Names the request in the server log.
    pub request_id: &'a str,
    /// Structured details (argument errors, config errors); absent when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<&'a Value>,
}

/// One entry of the `details` of `invalid_arguments`.
#[derive(Debug, Serialize)]
pub(in crate::api) struct ArgumentError<'a> {
    /// JSON pointer into the arguments (`""` for the arguments object itself).
    path: &'a str,
    message: &'a str,
}

impl<'a> From<&'a tools::ArgumentError> for ArgumentError<'a> {
    fn from(error: &'a tools::ArgumentError) -> Self {
        Self {
            path: &error.path,
            message: &error.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use serde_json::{Value, json};

    use crate::api::ApiError;
    use crate::hub::InvokeError;
    use crate::tools::ArgumentError;

    /// The body `error` answers with, and its request id (random, so checked apart).
    async fn body(error: ApiError) -> (StatusCode, Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let mut body: Value = serde_json::from_slice(&bytes).unwrap();
        let request_id = body["error"]["request_id"].take();
        let request_id = request_id.as_str().unwrap();
        assert_eq!(request_id.len(), 16, "{request_id}");
        assert!(request_id.chars().all(|c| c.is_ascii_hexdigit()));
        body["error"]["request_id"] = json!("<id>");
        (status, body)
    }

    #[tokio::test]
    async fn an_error_without_details_has_none() {
        let (status, body) = body(ApiError::not_found("no such route")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            json!({"error": {"code": "not_found", "message": "no such route", "request_id": "<id>"}})
        );
    }

    #[tokio::test]
    async fn config_errors_are_details() {
        let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_config", "2 errors")
            .with_details(vec!["a: bad".to_owned(), "b: worse".to_owned()]);
        assert_eq!(
            body(error).await.1,
            json!({"error": {
                "code": "invalid_config",
                "message": "2 errors",
                "request_id": "<id>",
                "details": ["a: bad", "b: worse"],
            }})
        );
    }

    #[tokio::test]
    async fn invalid_arguments_list_each_path_and_message() {
        let error = ApiError::from(InvokeError::InvalidArguments {
            tool: "calc__add".to_owned(),
            errors: vec![ArgumentError {
                path: "/a".to_owned(),
                message: "\"x\" is not of type \"number\"".to_owned(),
            }],
        });
        assert_eq!(
            body(error).await,
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": {
                    "code": "invalid_arguments",
                    "message": "arguments for `calc__add` do not match its input schema",
                    "request_id": "<id>",
                    "details": [{"path": "/a", "message": "\"x\" is not of type \"number\""}],
                }})
            )
        );
    }

    #[tokio::test]
    async fn internal_errors_hide_their_message() {
        let error = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "db: disk full",
        );
        assert_eq!(
            body(error).await.1,
            json!({"error": {
                "code": "internal",
                "message": "internal error; the server log has details under this request id",
                "request_id": "<id>",
            }})
        );
    }
}
