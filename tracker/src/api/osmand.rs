//! The OsmAnd / Traccar Client endpoint: `GET` or `POST /` with query or form parameters, or a
//! Traccar Client JSON body. 200 means durably stored (or already stored, or a well-formed fix
//! discarded by the filters: too old, too far ahead, (0, 0), inaccurate, a jump; the phone must
//! not resend it, as the Traccar Client resends its oldest fix until it gets a 2xx); 4xx means
//! the request is wrong (unreadable, out-of-range coordinates, an unknown device).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::TrackerState;
use super::error::{ApiError, ingest_error, protocol_error};
use crate::position::Source;
use crate::protocol::{osmand, traccar};

fn is_json(headers: &HeaderMap, body: &[u8]) -> bool {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    declared || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// `GET|POST /` on `OSMAND_ADDR`.
#[tracing::instrument(skip_all)]
pub async fn position(
    State(state): State<TrackerState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let retry = state.ingest.config().retry_after_s;
    let (device_id, fixes, source) = if is_json(&headers, &body) {
        let r =
            traccar::parse(&body).map_err(|e| protocol_error(e, Source::TraccarJson.label()))?;
        (r.device_id, r.fixes, Source::TraccarJson)
    } else {
        let r = osmand::parse(query.as_deref().unwrap_or("").as_bytes(), &body)
            .map_err(|e| protocol_error(e, Source::Osmand.label()))?;
        (r.device_id, vec![r.fix], Source::Osmand)
    };
    let single = fixes.len() == 1;
    let report = state
        .ingest
        .ingest_device(&device_id, fixes, source)
        .await
        .map_err(|e| ingest_error(e, retry))?;
    // One fix refused as bad input is the request's fault; discarded ones are answered 200 (and
    // counted as rejected) so the phone drops them instead of resending forever.
    if single && let Some((_, r)) = report.rejected.first().filter(|(_, r)| r.is_bad_input()) {
        return Err(ApiError::bad_request(r.reason(), r.detail()));
    }
    let rejected: Vec<_> = report
        .rejected
        .iter()
        .map(|(i, r)| json!({"index": i, "reason": r.reason()}))
        .collect();
    Ok(axum::Json(json!({"stored": report.stored, "rejected": rejected})).into_response())
}
