//! The support tool (staff only): an order's timeline, and the corrections (assign, pin,
//! unpin, unassign, fail, amend), each landing in the timeline with the staff actor.

use axum::extract::State;
use serde::{Deserialize, Deserializer, Serialize};
use service::auth::Auth;
use service::error::{ApiError, ApiResult};
use service::extract::{Json, Path};
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::orders::{OrderView, View};
use super::{ApiState, actor_of, courier_id, order_id, parse_time, rfc3339};
use crate::dispatch::Correction;
use crate::records::TimelineEntry;
use crate::wire::LatLon;

/// One entry of an order's timeline.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TimelineEntryView {
    /// When it happened (RFC 3339).
    #[schema(format = DateTime)]
    pub at: String,
    /// What happened (`placed`, `assigned`, `picked_up`, `pinned`, `amended`, ...).
    pub kind: String,
    /// Who did it: `kitchen`, `optimizer`, `courier:ID`, `gps`, `staff:WHO` or `system`.
    pub actor: String,
    /// Details (courier, ETA, reason, old and new values).
    #[schema(value_type = Value)]
    pub detail: serde_json::Value,
}

impl From<&TimelineEntry> for TimelineEntryView {
    fn from(e: &TimelineEntry) -> Self {
        TimelineEntryView {
            at: rfc3339(e.at),
            kind: e.kind.clone(),
            actor: e.actor.as_stored(),
            detail: e.detail.clone(),
        }
    }
}

/// An order's timeline.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Timeline {
    /// The order.
    pub order_id: String,
    /// Oldest first.
    pub entries: Vec<TimelineEntryView>,
}

/// The body of `POST /v1/orders/{id}/assign`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// The courier to give it to.
    #[schema(min_length = 1, max_length = 128)]
    pub courier_id: String,
}

/// The body of `POST /v1/orders/{id}/fail`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailBody {
    /// Why (1..=500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// The body of `PATCH /v1/orders/{id}`: only the fields given change (none: the order as is).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendBody {
    /// A new ready time (RFC 3339).
    #[serde(default)]
    #[schema(format = DateTime)]
    pub ready_at: Option<String>,
    /// A new promise (RFC 3339); null removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deliver_by: Option<Option<String>>,
    /// A new drop-off (before pickup only).
    #[serde(default)]
    pub dropoff: Option<LatLon>,
}

/// Tells a field given as null (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Applies a correction to the order in `id` and answers with the order.
async fn correct(
    state: &ApiState,
    principal: &service::auth::Principal,
    id: &str,
    correction: Correction,
) -> ApiResult<Json<OrderView>> {
    principal.require_staff()?;
    let id = order_id(id)?;
    let record = state
        .dispatch
        .correct(&id, correction, actor_of(principal))
        .await?;
    Ok(Json(OrderView::of(
        &record,
        View::Full,
        state.dispatch.now(),
    )))
}

/// An order's timeline, oldest first.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}/timeline",
    tag = "support",
    params(("id" = String, Path, description = "The order's id.", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The timeline.", body = Timeline),
        (status = 403, description = "Not staff.", body = ErrorBody),
        (status = 404, description = "No such order.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn timeline(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Timeline>> {
    principal.require_staff()?;
    let id = order_id(&id)?;
    let entries = state.dispatch.timeline(&id).await?;
    Ok(Json(Timeline {
        order_id: id.to_string(),
        entries: entries.iter().map(TimelineEntryView::from).collect(),
    }))
}

/// Gives the order to a courier; a manual assignment holds (it is pinned) until unpinned.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/assign",
    tag = "support",
    params(("id" = String, Path, description = "The order's id.", min_length = 1, max_length = 128)),
    request_body = AssignBody,
    responses(
        (status = 200, description = "The order after the change.", body = OrderView),
        (status = 403, description = "Not staff.", body = ErrorBody),
        (status = 404, description = "No such order or courier.", body = ErrorBody),
        (status = 409, description = "The order's status or the courier forbids it.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id, courier_id = %body.courier_id))]
pub async fn assign(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(body): Json<AssignBody>,
) -> ApiResult<Json<OrderView>> {
    principal.require_staff()?;
    let courier_id = courier_id(&body.courier_id)?;
    let correction = Correction::Assign { courier_id };
    correct(&state, &principal, &id, correction).await
}

/// Keeps the order with its courier: the planner no longer moves it.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/pin",
    tag = "support",
    params(("id" = String, Path, description = "The order's id.", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The order after the change.", body = OrderView),
        (status = 403, description = "Not staff.", body = ErrorBody),
        (status = 404, description = "No such order.", body = ErrorBody),
        (status = 409, description = "The order has no courier or is finished.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn pin(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    correct(&state, &principal, &id, Correction::Pin).await
}

/// Lets the planner move the order again.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/unpin",
    tag = "support",
    params(("id" = String, Path, description = "The order's id.", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The order after the change.", body = OrderView),
        (status = 403, description = "Not staff.", body = ErrorBody),
        (status = 404, description = "No such order.", body = ErrorBody),
        (status = 409, description = "The order is finished.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn unpin(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    correct(&state, &principal, &id, Correction::Unpin).await
}

/// Takes the order from its courier; the planner finds another.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/unassign",
    tag = "support",
    params(("id" = String, Path, description = "The order's id.", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The order after the change.", body = OrderView),
        (status = 403, description = "Not staff.", body = ErrorBody),
        (status = 404, description = "No such order.", body = ErrorBody),
        (status = 409, description = "The order is picked up or finished.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn unassign(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    correct(&state, &principal, &id, Correction::Unassign).await
}

/// Gives up on the order.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/fail",
    tag = "support",
    params(("id" = String, Path, description = "The order's id.", min_length = 1, max_length = 128)),
    request_body = FailBody,
    responses(
        (status = 200, description = "The order, failed.", body = OrderView),
        (status = 403, description = "Not staff.", body = ErrorBody),
        (status = 404, description = "No such order.", body = ErrorBody),
        (status = 409, description = "The order is finished.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn fail(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(body): Json<FailBody>,
) -> ApiResult<Json<OrderView>> {
    principal.require_staff()?;
    if body.reason.trim().is_empty() || body.reason.chars().count() > 500 {
        return Err(ApiError::bad_request(
            "invalid_reason",
            "reason must be 1..=500 characters",
        ));
    }
    let correction = Correction::Fail {
        reason: body.reason,
    };
    correct(&state, &principal, &id, correction).await
}

/// Changes what the kitchen said: ready time, promise, drop-off.
#[utoipa::path(
    patch,
    path = "/v1/orders/{id}",
    tag = "support",
    params(("id" = String, Path, description = "The order's id.", min_length = 1, max_length = 128)),
    request_body = AmendBody,
    responses(
        (status = 200, description = "The order after the change.", body = OrderView),
        (status = 403, description = "Not staff.", body = ErrorBody),
        (status = 404, description = "No such order.", body = ErrorBody),
        (status = 409, description = "The order's status forbids it (e.g. a new drop-off after pickup).", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn amend_order(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(body): Json<AmendBody>,
) -> ApiResult<Json<OrderView>> {
    principal.require_staff()?;
    let ready_at = body
        .ready_at
        .as_deref()
        .map(|t| parse_time("ready_at", t))
        .transpose()?;
    let deliver_by = match body.deliver_by {
        None => None,
        Some(None) => Some(None),
        Some(Some(t)) => Some(Some(parse_time("deliver_by", &t)?)),
    };
    let dropoff = body
        .dropoff
        .map(|d| d.parse("dropoff"))
        .transpose()
        .map_err(super::error::invalid)?;
    if ready_at.is_none() && deliver_by.is_none() && dropoff.is_none() {
        // Nothing asked: the order as it stands, with no timeline entry.
        let id = order_id(&id)?;
        let record = super::orders::find(&state, &id).await?;
        return Ok(Json(OrderView::of(
            &record,
            View::Full,
            state.dispatch.now(),
        )));
    }
    let correction = Correction::Amend {
        ready_at,
        deliver_by,
        dropoff,
    };
    correct(&state, &principal, &id, correction).await
}
