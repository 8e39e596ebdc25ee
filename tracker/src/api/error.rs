//! The tracker's errors as HTTP answers: the shared [`ApiError`] of the `service` crate, and
//! how the tracker's own failures (unreadable requests, ingest failures) become one.

use crate::ingest::IngestError;
use crate::metric;
use crate::protocol::ProtocolError;

pub use service::error::{ApiError, ApiResult};

/// A protocol error as a 400 (or 413 for too many points), counted per protocol.
pub fn protocol_error(e: ProtocolError, protocol: &'static str) -> ApiError {
    metrics::counter!(metric::REQUESTS_MALFORMED, "protocol" => protocol).increment(1);
    match e {
        ProtocolError::TooManyPoints(_) => ApiError::TooLarge(e.to_string()),
        e => ApiError::bad_request("bad_request", e.to_string()),
    }
}

/// An ingest failure: unknown devices and couriers are 404, storage problems 503 asking to
/// resend after `retry_after_s`.
pub fn ingest_error(e: IngestError, retry_after_s: u32) -> ApiError {
    match e {
        IngestError::UnknownDevice => {
            ApiError::NotFound("unknown device: register it for a courier first".into())
        }
        IngestError::UnknownCourier => ApiError::NotFound("unknown courier".into()),
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
