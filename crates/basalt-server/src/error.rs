//! The one place domain errors become HTTP: status, AWS error headers and body
//! (`X-Amzn-ErrorType`, `__type`, `message`), or the OpenAI error body.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use basalt_types::{Error, ErrorKind};

/// HTTP status, AWS error code and OpenAI error type of each kind.
#[must_use]
pub fn classify(kind: ErrorKind) -> (StatusCode, &'static str, &'static str) {
    match kind {
        ErrorKind::Validation => (
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "invalid_request_error",
        ),
        ErrorKind::NotFound => (
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            "not_found_error",
        ),
        ErrorKind::Throttling => (
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "rate_limit_error",
        ),
        ErrorKind::Conflict => (StatusCode::CONFLICT, "ConflictException", "conflict_error"),
        ErrorKind::ModelTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            "ModelTimeoutException",
            "timeout_error",
        ),
        ErrorKind::ServiceUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "server_error",
        ),
        ErrorKind::AccessDenied => (
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "authentication_error",
        ),
        ErrorKind::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            "server_error",
        ),
    }
}

/// The event-stream exception member for an error that happens mid-stream.
#[must_use]
pub fn stream_exception(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Validation => "validationException",
        ErrorKind::Throttling => "throttlingException",
        ErrorKind::ServiceUnavailable => "serviceUnavailableException",
        ErrorKind::ModelTimeout
        | ErrorKind::NotFound
        | ErrorKind::AccessDenied
        | ErrorKind::Conflict => "modelStreamErrorException",
        ErrorKind::Internal => "internalServerException",
    }
}

/// An error answered in the AWS rest-json shape.
#[derive(Debug)]
pub struct AwsError {
    pub error: Error,
    /// Overrides the kind's status (e.g. 413 for a body over the limit).
    pub status: Option<StatusCode>,
}

impl From<Error> for AwsError {
    fn from(error: Error) -> Self {
        Self {
            error,
            status: None,
        }
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let (status, code, _) = classify(self.error.kind);
        let body = serde_json::json!({ "__type": code, "message": self.error.message });
        let mut resp = (self.status.unwrap_or(status), axum::Json(body)).into_response();
        resp.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(code));
        resp
    }
}

/// An error answered in the OpenAI shape.
#[derive(Debug)]
pub struct OpenAiError {
    pub error: Error,
    pub status: Option<StatusCode>,
}

impl From<Error> for OpenAiError {
    fn from(error: Error) -> Self {
        Self {
            error,
            status: None,
        }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let (status, _, kind) = classify(self.error.kind);
        let (status, kind) = match (self.error.kind, self.status) {
            (ErrorKind::AccessDenied, None) => (StatusCode::UNAUTHORIZED, kind),
            (_, Some(s)) => (s, kind),
            _ => (status, kind),
        };
        let code = match self.error.kind {
            ErrorKind::NotFound => Some("model_not_found"),
            ErrorKind::AccessDenied => Some("invalid_api_key"),
            _ => None,
        };
        let body = serde_json::json!({
            "error": { "message": self.error.message, "type": kind, "param": null, "code": code }
        });
        (status, axum::Json(body)).into_response()
    }
}

/// Which error shape a path's API uses.
#[must_use]
pub fn is_openai_path(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

/// An error response in the shape of the API that `path` belongs to.
#[must_use]
pub fn error_for_path(path: &str, error: Error, status: Option<StatusCode>) -> Response {
    if is_openai_path(path) {
        OpenAiError { error, status }.into_response()
    } else {
        AwsError { error, status }.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn aws_errors_carry_code_in_header_and_body() {
        let resp = AwsError::from(Error::throttling("slow down")).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["x-amzn-errortype"], "ThrottlingException");
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["__type"], "ThrottlingException");
        assert_eq!(v["message"], "slow down");
    }

    #[tokio::test]
    async fn openai_errors_use_the_openai_shape() {
        let resp = OpenAiError::from(Error::not_found("no model")).into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "model_not_found");
        let denied = OpenAiError::from(Error::new(ErrorKind::AccessDenied, "x")).into_response();
        assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    }
}
