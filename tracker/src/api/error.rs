//! The one error type of the tracker's HTTP surface: bad input is a 4xx with a JSON body
//! `{"error", "detail"}` and is not logged as an error; an unavailable database is 503 with
//! `Retry-After`; our own failures are 500 with the cause chain logged once.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ingest::IngestError;
use crate::metric;
use crate::protocol::ProtocolError;

/// An HTTP error of the tracker.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read or a value is not acceptable.
    #[error("{detail}")]
    BadRequest {
        /// Machine-readable code.
        error: &'static str,
        /// Human-readable explanation.
        detail: String,
    },
    /// More points than allowed in one request.
    #[error("{0}")]
    TooLarge(String),
    /// No or an invalid token.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The token does not allow this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The device or courier is not registered.
    #[error("{0}")]
    NotFound(&'static str),
    /// Storage is not possible now; resend after the given seconds.
    #[error("positions cannot be stored right now: {cause}")]
    Unavailable {
        /// Why.
        cause: String,
        /// Seconds for `Retry-After`.
        retry_after_s: u32,
    },
    /// Our failure.
    #[error("unexpected error")]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    /// A protocol error as a 400 (or 413 for too many points), counted per protocol.
    pub fn protocol(e: ProtocolError, protocol: &'static str) -> Self {
        metrics::counter!(metric::REQUESTS_MALFORMED, "protocol" => protocol).increment(1);
        match e {
            ProtocolError::TooManyPoints(_) => ApiError::TooLarge(e.to_string()),
            e => ApiError::BadRequest {
                error: "bad_request",
                detail: e.to_string(),
            },
        }
    }

    /// An ingest failure.
    pub fn ingest(e: IngestError, retry_after_s: u32) -> Self {
        match e {
            IngestError::UnknownDevice => {
                ApiError::NotFound("unknown device: register it for a courier first")
            }
            IngestError::UnknownCourier => ApiError::NotFound("unknown courier"),
            IngestError::Unavailable(u) => ApiError::Unavailable {
                cause: u.to_string(),
                retry_after_s,
            },
            IngestError::Lookup(l) => {
                tracing::warn!(error = %l, "Looking up a courier failed.");
                ApiError::Unavailable {
                    cause: "the database is unreachable".into(),
                    retry_after_s,
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::BadRequest { error, .. } => (StatusCode::BAD_REQUEST, *error),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_many_points"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Unexpected(e) => {
                tracing::error!(error = ?e, "Request failed unexpectedly.");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let detail = match &self {
            ApiError::Unexpected(_) => {
                "an unexpected error happened; it has been logged".to_string()
            }
            other => other.to_string(),
        };
        let body = axum::Json(serde_json::json!({"error": code, "detail": detail}));
        let mut response = (status, body).into_response();
        if let ApiError::Unavailable { retry_after_s, .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        }
        response
    }
}
