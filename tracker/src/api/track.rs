//! `GET /v1/couriers/{id}/track?from=RFC3339&to=RFC3339&format=geojson|gpx|csv&bucket=30s`:
//! a courier's history, for staff or that courier.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use optimizer::model::CourierId;
use service::auth::Auth;
use service::extract::{Path, Query};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::TrackerState;
use super::error::ApiError;
use crate::history::{TrackQuery, parse_bucket, to_csv, to_geojson, to_gpx};

/// Most points one track response holds.
const MAX_TRACK_POINTS: i64 = 100_000;
/// Longest span one request may ask for.
const MAX_SPAN: time::Duration = time::Duration::days(31);

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("bad_request", detail)
}

fn instant(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<Option<OffsetDateTime>, ApiError> {
    params
        .get(name)
        .map(|t| {
            OffsetDateTime::parse(t, &Rfc3339)
                .map_err(|_| bad(format!("`{name}` must be an RFC 3339 time")))
        })
        .transpose()
}

/// `GET /v1/couriers/{id}/track`.
#[tracing::instrument(skip_all, fields(courier_id = %id))]
pub async fn get_track(
    State(state): State<TrackerState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let courier_id =
        CourierId::parse(&id).map_err(|_| ApiError::NotFound("unknown courier".into()))?;
    if !principal.may_act_for_courier(&courier_id) {
        return Err(ApiError::Forbidden(
            "only staff or the courier may read a track".into(),
        ));
    }
    let to = instant(&params, "to")?.unwrap_or_else(|| state.ingest.clock().now());
    let from = instant(&params, "from")?.unwrap_or(to - time::Duration::hours(24));
    if from >= to {
        return Err(bad("`from` must be before `to`"));
    }
    if to - from > MAX_SPAN {
        return Err(bad("a track spans at most 31 days"));
    }
    let bucket = match params.get("bucket") {
        None => None,
        Some(b) => Some(
            parse_bucket(b)
                .ok_or_else(|| bad("`bucket` must be like 30s, 5m or 1h, at most a day"))?,
        ),
    };
    let format = params.get("format").map_or("geojson", String::as_str);
    if !matches!(format, "geojson" | "gpx" | "csv") {
        return Err(bad("`format` must be geojson, gpx or csv"));
    }
    let query = TrackQuery {
        courier_id: courier_id.clone(),
        from,
        to,
        bucket,
        limit: MAX_TRACK_POINTS,
    };
    let points = state.history.track(&query).await.map_err(|e| {
        tracing::warn!(error = %e, "Reading a track failed.");
        ApiError::Unavailable {
            cause: "the database is unreachable".into(),
            retry_after_s: state.ingest.config().retry_after_s,
        }
    })?;
    let (content_type, body) = match format {
        "gpx" => ("application/gpx+xml", to_gpx(&courier_id, &points)),
        "csv" => ("text/csv; charset=utf-8", to_csv(&points)),
        _ => (
            "application/geo+json",
            to_geojson(&courier_id, &points).to_string(),
        ),
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}
