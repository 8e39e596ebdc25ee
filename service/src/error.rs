//! The one error type of every HTTP API: bad input is a 4xx with a JSON body
//! `{"error": code, "detail": text}` and is not logged as an error; an unavailable dependency is
//! 503 with `Retry-After`; our own failures are 500 with the cause chain logged once and a
//! generic detail.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Seconds a client is told to wait before resending after a 503.
pub const DEFAULT_RETRY_AFTER_S: u32 = 5;

/// An HTTP error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read or a value is not acceptable (400).
    #[error("{detail}")]
    BadRequest {
        /// Machine-readable code.
        error: &'static str,
        /// Human-readable explanation.
        detail: String,
    },
    /// No or an invalid token (401).
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The token does not allow this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The thing asked for does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state, e.g. an illegal lifecycle transition (409).
    #[error("{detail}")]
    Conflict {
        /// Machine-readable code.
        error: &'static str,
        /// Human-readable explanation.
        detail: String,
    },
    /// The request is larger than accepted (413).
    #[error("{0}")]
    TooLarge(String),
    /// A dependency is unavailable right now; resend after `retry_after_s` (503).
    #[error("the service is unavailable right now: {cause}")]
    Unavailable {
        /// Why.
        cause: String,
        /// Seconds for `Retry-After`.
        retry_after_s: u32,
    },
    /// Our failure (500).
    #[error("unexpected error")]
    Unexpected(#[from] anyhow::Error),
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A 400 with the code `error`.
    pub fn bad_request(error: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            error,
            detail: detail.into(),
        }
    }

    /// A 409 with the code `error`.
    pub fn conflict(error: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Conflict {
            error,
            detail: detail.into(),
        }
    }

    /// A 503 asking to resend after [`DEFAULT_RETRY_AFTER_S`].
    pub fn unavailable(cause: impl Into<String>) -> Self {
        ApiError::Unavailable {
            cause: cause.into(),
            retry_after_s: DEFAULT_RETRY_AFTER_S,
        }
    }

    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code of the body's `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { error, .. } | ApiError::Conflict { error, .. } => error,
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Unexpected(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            ApiError::Unexpected(e) => {
                tracing::error!(error = ?e, "Request failed unexpectedly.");
                "an unexpected error happened; it has been logged".to_string()
            }
            ApiError::Unavailable { cause, .. } => {
                tracing::debug!(%cause, "Answered 503.");
                self.to_string()
            }
            other => {
                tracing::debug!(status = status.as_u16(), detail = %other, "Refused a request.");
                other.to_string()
            }
        };
        let body = axum::Json(serde_json::json!({"error": self.code(), "detail": detail}));
        let mut response = (status, body).into_response();
        if let ApiError::Unavailable { retry_after_s, .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(e: ApiError) -> (StatusCode, Option<HeaderValue>, serde_json::Value) {
        let r = e.into_response();
        let status = r.status();
        let retry = r.headers().get(header::RETRY_AFTER).cloned();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, retry, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn every_error_is_a_json_body_with_code_and_detail() {
        let (s, _, b) = answer(ApiError::conflict("illegal_transition", "delivered twice")).await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(
            b,
            serde_json::json!({"error": "illegal_transition", "detail": "delivered twice"})
        );
        let (s, _, b) = answer(ApiError::Unauthorized).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(b["detail"], "a valid bearer token is required");
        let (s, _, b) = answer(ApiError::bad_request("bad_request", "no")).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request"))
        );
    }

    #[tokio::test]
    async fn unavailable_carries_retry_after() {
        let (s, retry, b) = answer(ApiError::unavailable("the database is unreachable")).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.unwrap(), "5");
        assert_eq!(b["error"], "unavailable");
    }

    #[tokio::test]
    async fn an_unexpected_error_keeps_its_cause_out_of_the_body() {
        let e = anyhow::anyhow!("password=hunter2").context("connecting");
        let (s, _, b) = answer(ApiError::from(e)).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!b["detail"].as_str().unwrap().contains("hunter2"));
    }
}
