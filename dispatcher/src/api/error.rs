//! How the core's refusals become HTTP answers: [`DispatchError`] into the shared
//! [`ApiError`], and the error body's schema for the OpenAPI document.

use serde::Serialize;
use service::error::ApiError;
use utoipa::ToSchema;

use crate::dispatch::{DispatchError, Invalid};

/// The body of every 4xx and 5xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code (`bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `illegal_transition`, ...).
    pub error: String,
    /// Human-readable explanation.
    pub detail: String,
}

impl From<DispatchError> for ApiError {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::Invalid(Invalid { code, detail }) => ApiError::bad_request(code, detail),
            DispatchError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            DispatchError::Conflict { code, detail } => ApiError::conflict(code, detail),
            // Callers that can meet a duplicate answer it as a success before this; reaching
            // here means the request was a resend of one already applied.
            DispatchError::Duplicate => {
                ApiError::conflict("duplicate", "this request was already processed")
            }
            DispatchError::Unavailable(cause) => {
                tracing::warn!(error = ?cause, "Storage is unavailable.");
                ApiError::unavailable("storage is unavailable")
            }
        }
    }
}

/// A 400 from the core's invalid-input reason.
pub fn invalid(e: Invalid) -> ApiError {
    ApiError::bad_request(e.code, e.detail)
}
