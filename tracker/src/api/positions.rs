//! `POST /v1/positions`: a courier's buffered fixes, a JSON array of at most 1,000, with the
//! courier's bearer token. Answered after the accepted ones are committed, with what was not
//! accepted and why, so one bad fix never makes the app resend the whole batch.

use axum::body::Bytes;
use axum::extract::State;
use serde_json::json;
use service::auth::{Auth, Principal};
use service::extract::Json;

use super::TrackerState;
use super::error::{ApiError, ingest_error, protocol_error};
use crate::position::{FixInput, Source};
use crate::protocol::batch;
use crate::validation::Rejection;

/// `POST /v1/positions`.
#[tracing::instrument(skip_all)]
pub async fn post_positions(
    State(state): State<TrackerState>,
    Auth(principal): Auth,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Principal::Courier(courier_id) = principal else {
        return Err(ApiError::Forbidden(
            "only a courier token may post positions".into(),
        ));
    };
    let parsed = batch::parse(&body).map_err(|e| protocol_error(e, Source::Batch.label()))?;
    // Points whose timestamp could not be read are reported as malformed; the rest go on,
    // keeping their index in the request.
    let mut unreadable = Vec::new();
    let mut fixes: Vec<FixInput> = Vec::with_capacity(parsed.len());
    let mut index_of = Vec::with_capacity(parsed.len());
    for (i, p) in parsed.into_iter().enumerate() {
        match p {
            Ok(fix) => {
                index_of.push(i);
                fixes.push(fix);
            }
            Err(e) => unreadable.push(json!({"index": i, "reason": Rejection::Malformed.reason(), "detail": e.to_string()})),
        }
    }
    let retry = state.ingest.config().retry_after_s;
    let report = if fixes.is_empty() {
        Default::default()
    } else {
        state
            .ingest
            .ingest_courier(&courier_id, fixes, Source::Batch)
            .await
            .map_err(|e| ingest_error(e, retry))?
    };
    let mut rejected = unreadable;
    rejected.extend(
        report
            .rejected
            .iter()
            .map(|(i, r)| json!({"index": index_of[*i], "reason": r.reason()})),
    );
    Ok(Json(json!({"stored": report.stored, "rejected": rejected})))
}
