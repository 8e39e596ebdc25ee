//! Orders: kitchens (for their restaurants) and staff create and cancel them; staff, the
//! kitchen and the order's courier read them; the list filters and pages them with an opaque
//! keyset cursor over `(placed_at, id)`.

use axum::extract::State;
use axum::http::StatusCode;
use optimizer::model::{OrderId, OrderStatus, RestaurantId};
use serde::{Deserialize, Serialize};
use service::auth::{Auth, Principal};
use service::error::{ApiError, ApiResult};
use service::extract::{Json, Path, Query};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::error::{ErrorBody, invalid};
use super::{ApiState, actor_of, courier_id, order_id, rfc3339};
use crate::dispatch::{Correction, DispatchError, NewOrder};
use crate::records::OrderRecord;
use crate::store::OrderQuery;
use crate::wire::{LatLon, OrderCreated};

/// Orders per page when the request names no limit.
pub const DEFAULT_PAGE: u32 = 50;
/// The most orders one page holds.
pub const MAX_PAGE: u32 = 200;

/// An order's status on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatusView {
    /// Known, not yet given to a courier.
    Created,
    /// Planned on a courier's route.
    Assigned,
    /// In the courier's bag.
    PickedUp,
    /// Handed to the customer.
    Delivered,
    /// Could not be delivered.
    Failed,
    /// Withdrawn before pickup.
    Cancelled,
}

impl From<OrderStatus> for OrderStatusView {
    fn from(s: OrderStatus) -> Self {
        match s {
            OrderStatus::Created => OrderStatusView::Created,
            OrderStatus::Assigned => OrderStatusView::Assigned,
            OrderStatus::PickedUp => OrderStatusView::PickedUp,
            OrderStatus::Delivered => OrderStatusView::Delivered,
            OrderStatus::Failed => OrderStatusView::Failed,
            OrderStatus::Cancelled => OrderStatusView::Cancelled,
        }
    }
}

/// How much of an order a reader may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Everything, tracking link included (staff, kitchens).
    Full,
    /// Without the customer's tracking id (couriers).
    Courier,
}

impl View {
    /// The view `principal` gets.
    pub fn of(principal: &Principal) -> Self {
        match principal {
            Principal::Courier(_) => View::Courier,
            Principal::Staff | Principal::Kitchen { .. } => View::Full,
        }
    }
}

/// An order as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OrderView {
    /// The kitchen's id.
    pub id: String,
    /// The restaurant that cooks it.
    pub restaurant_id: String,
    /// Where the food is picked up.
    pub restaurant: LatLon,
    /// Where it goes.
    pub dropoff: LatLon,
    /// Where it is in its lifecycle.
    pub status: OrderStatusView,
    /// Its courier while assigned or picked up.
    pub courier_id: Option<String>,
    /// Pinned to its courier by staff.
    pub pinned: bool,
    /// Capacity units.
    pub size: u32,
    /// When ordered (RFC 3339).
    #[schema(format = DateTime)]
    pub placed_at: String,
    /// When the food is expected to be ready (RFC 3339).
    #[schema(format = DateTime)]
    pub ready_at: String,
    /// The promised delivery time (RFC 3339).
    #[schema(format = DateTime)]
    pub deliver_by: Option<String>,
    /// When the courier is expected at the restaurant (RFC 3339).
    #[schema(format = DateTime)]
    pub pickup_eta: Option<String>,
    /// When the courier is expected at the customer (RFC 3339).
    #[schema(format = DateTime)]
    pub dropoff_eta: Option<String>,
    /// When picked up (RFC 3339).
    #[schema(format = DateTime)]
    pub picked_up_at: Option<String>,
    /// When delivered (RFC 3339).
    #[schema(format = DateTime)]
    pub delivered_at: Option<String>,
    /// Whether it is, or will be, later than promised.
    pub late: bool,
    /// Why it waits without a courier.
    pub unassigned_reason: Option<String>,
    /// Why it failed.
    pub failed_reason: Option<String>,
    /// The customer's tracking id (staff and kitchens only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_id: Option<String>,
}

impl OrderView {
    /// The view of `o` for a reader with `view`.
    pub fn of(o: &OrderRecord, view: View, now: OffsetDateTime) -> Self {
        OrderView {
            id: o.id.to_string(),
            restaurant_id: o.restaurant_id.to_string(),
            restaurant: o.restaurant.into(),
            dropoff: o.dropoff.into(),
            status: o.status.into(),
            courier_id: o.courier_id.as_ref().map(ToString::to_string),
            pinned: o.pinned,
            size: o.size,
            placed_at: rfc3339(o.placed_at),
            ready_at: rfc3339(o.ready_at),
            deliver_by: o.deliver_by.map(rfc3339),
            pickup_eta: o.pickup_eta.map(rfc3339),
            dropoff_eta: o.dropoff_eta.map(rfc3339),
            picked_up_at: o.picked_up_at.map(rfc3339),
            delivered_at: o.delivered_at.map(rfc3339),
            late: o.is_late(now),
            unassigned_reason: o.unassigned_reason.clone(),
            failed_reason: o.failed_reason.clone(),
            tracking_id: (view == View::Full).then(|| o.tracking_id.clone()),
        }
    }
}

/// A page of orders.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OrderPage {
    /// Newest first.
    pub orders: Vec<OrderView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The filters of `GET /v1/orders`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderFilter {
    /// Comma-separated statuses (`created,assigned,picked_up,delivered,failed,cancelled`).
    pub status: Option<String>,
    /// Only this restaurant's.
    pub restaurant: Option<String>,
    /// Only this courier's.
    pub courier: Option<String>,
    /// Only late ones (`true`) or only ones on time (`false`).
    pub late: Option<bool>,
    /// Orders per page (1..=200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page's cursor: after `(placed_at, id)`, hex-encoded.
fn encode_cursor(o: &OrderRecord) -> String {
    hex::encode(format!("{}:{}", o.placed_at.unix_timestamp_nanos(), o.id))
}

fn decode_cursor(text: &str) -> ApiResult<(OffsetDateTime, OrderId)> {
    let bad = || ApiError::bad_request("invalid_cursor", "cursor is not one this API gave");
    let bytes = hex::decode(text).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (nanos, id) = text.split_once(':').ok_or_else(bad)?;
    let nanos: i128 = nanos.parse().map_err(|_| bad())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| bad())?;
    let id = OrderId::parse(id).map_err(|_| bad())?;
    Ok((at, id))
}

/// 403 unless `principal` may read `o`.
pub(super) fn require_may_see(principal: &Principal, o: &OrderRecord) -> ApiResult<()> {
    let allowed = match principal {
        Principal::Courier(own) => o.courier_id.as_ref() == Some(own),
        other => other.may_see_restaurant(&o.restaurant_id),
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden("not an order you may see".into()))
    }
}

/// The order `id`; 404 when unknown.
pub(super) async fn find(state: &ApiState, id: &OrderId) -> ApiResult<OrderRecord> {
    state
        .dispatch
        .order(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("order {id} not found")))
}

/// Places an order (kitchens for their restaurants, or staff); an identical resend answers 200
/// with the same order.
#[utoipa::path(
    post,
    path = "/v1/orders",
    tag = "orders",
    request_body = OrderCreated,
    responses(
        (status = 201, description = "Created.", body = OrderView),
        (status = 200, description = "An identical resend: the order as stored.", body = OrderView),
        (status = 403, description = "Not staff, nor the kitchen of this restaurant.", body = ErrorBody),
        (status = 409, description = "This id is taken by another order.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %body.order_id))]
pub async fn create_order(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Json(body): Json<OrderCreated>,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    let order = NewOrder::try_from(body).map_err(invalid)?;
    if principal.courier().is_some() || !principal.may_see_restaurant(&order.restaurant_id) {
        return Err(ApiError::Forbidden(
            "only staff or this restaurant's kitchen may place its orders".into(),
        ));
    }
    let id = order.id.clone();
    let existed = state.dispatch.order(&id).await?.is_some();
    let view = View::of(&principal);
    match state
        .dispatch
        .create_order(order, actor_of(&principal))
        .await
    {
        Ok(record) => {
            let status = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok((
                status,
                Json(OrderView::of(&record, view, state.dispatch.now())),
            ))
        }
        Err(DispatchError::Duplicate) => {
            let record = find(&state, &id).await?;
            Ok((
                StatusCode::OK,
                Json(OrderView::of(&record, view, state.dispatch.now())),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// One order.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    tag = "orders",
    params(("id" = String, Path, description = "The order's id.", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The order.", body = OrderView),
        (status = 403, description = "Not an order this token may see.", body = ErrorBody),
        (status = 404, description = "No such order.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn get_order(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    let id = order_id(&id)?;
    let record = find(&state, &id).await?;
    require_may_see(&principal, &record)?;
    Ok(Json(OrderView::of(
        &record,
        View::of(&principal),
        state.dispatch.now(),
    )))
}

/// Orders, newest first, filtered and paged; kitchens see their restaurants' only, couriers
/// their own.
#[utoipa::path(
    get,
    path = "/v1/orders",
    tag = "orders",
    params(OrderFilter),
    responses(
        (status = 200, description = "A page of orders.", body = OrderPage),
        (status = 403, description = "A filter outside this token's scope.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list_orders(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Query(filter): Query<OrderFilter>,
) -> ApiResult<Json<OrderPage>> {
    let limit = filter.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be 1..={MAX_PAGE}"),
        ));
    }
    let mut query = OrderQuery {
        late: filter.late,
        now: Some(state.dispatch.now()),
        limit: limit as usize + 1,
        ..OrderQuery::default()
    };
    if let Some(list) = filter.status.as_deref().filter(|s| !s.is_empty()) {
        for s in list.split(',') {
            let status = s.trim().parse::<OrderStatus>().map_err(|_| {
                ApiError::bad_request("invalid_status", format!("unknown status {s:?}"))
            })?;
            query.statuses.push(status);
        }
    }
    if let Some(r) = filter.restaurant.as_deref() {
        let r = RestaurantId::parse(r).map_err(|_| {
            ApiError::bad_request(
                "invalid_restaurant",
                "restaurant must be 1..=128 characters",
            )
        })?;
        query.restaurants.push(r);
    }
    if let Some(c) = filter.courier.as_deref() {
        query.courier = Some(courier_id(c)?);
    }
    if let Some(c) = filter.cursor.as_deref() {
        query.after = Some(decode_cursor(c)?);
    }
    match &principal {
        Principal::Staff => {}
        Principal::Kitchen { restaurants } => {
            if query.restaurants.is_empty() {
                if restaurants.is_empty() {
                    return Ok(Json(OrderPage {
                        orders: Vec::new(),
                        next_cursor: None,
                    }));
                }
                query.restaurants = restaurants.clone();
            } else if !query.restaurants.iter().all(|r| restaurants.contains(r)) {
                return Err(ApiError::Forbidden("not one of your restaurants".into()));
            }
        }
        Principal::Courier(own) => match &query.courier {
            Some(asked) if asked != own => {
                return Err(ApiError::Forbidden("only your own orders".into()));
            }
            _ => query.courier = Some(own.clone()),
        },
    }
    let mut records = state
        .dispatch
        .store()
        .orders(&query)
        .await
        .map_err(DispatchError::from)?;
    let next_cursor = if records.len() > limit as usize {
        records.truncate(limit as usize);
        records.last().map(encode_cursor)
    } else {
        None
    };
    let view = View::of(&principal);
    Ok(Json(OrderPage {
        orders: records
            .iter()
            .map(|o| OrderView::of(o, view, state.dispatch.now()))
            .collect(),
        next_cursor,
    }))
}

/// Withdraws an order before pickup (its kitchen, or staff).
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/cancel",
    tag = "orders",
    params(("id" = String, Path, description = "The order's id.", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The order, cancelled.", body = OrderView),
        (status = 403, description = "Neither staff nor this order's kitchen.", body = ErrorBody),
        (status = 404, description = "No such order.", body = ErrorBody),
        (status = 409, description = "Too late to cancel.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn cancel_order(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    let id = order_id(&id)?;
    if principal.courier().is_some() {
        return Err(ApiError::Forbidden(
            "only staff or the order's kitchen may cancel it".into(),
        ));
    }
    let record = find(&state, &id).await?;
    if !principal.may_see_restaurant(&record.restaurant_id) {
        return Err(ApiError::Forbidden(
            "only staff or the order's kitchen may cancel it".into(),
        ));
    }
    let record = state
        .dispatch
        .correct(&id, Correction::Cancel, actor_of(&principal))
        .await?;
    Ok(Json(OrderView::of(
        &record,
        View::of(&principal),
        state.dispatch.now(),
    )))
}
