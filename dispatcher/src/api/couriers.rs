//! Couriers: registration and the fleet list (staff), one courier's status and position, its
//! shift, its current route and its status events on its orders (that courier, or staff).

use axum::extract::State;
use axum::http::StatusCode;
use optimizer::model::{StopKind, VehicleKind};
use serde::{Deserialize, Serialize};
use service::auth::{Auth, Principal, Role};
use service::error::{ApiError, ApiResult};
use service::extract::{Json, Path};
use time::{Duration, OffsetDateTime};
use tracker::LatestPosition;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::orders::{OrderView, View};
use super::{ApiState, actor_of, courier_id, order_id, rfc3339};
use crate::dispatch::{CourierEventKind, DispatchError, NewCourier};
use crate::records::{CourierRecord, RouteRecord};

/// A courier without a position this recent is offline.
pub const POSITION_FRESH_FOR: Duration = Duration::seconds(120);

/// The largest capacity a courier may be registered with, in order-size units.
pub const MAX_CAPACITY: u32 = 1000;

/// A vehicle kind on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Vehicle {
    /// Bicycle or e-bike.
    Bike,
    /// Moped or motor scooter.
    Scooter,
    /// Car.
    Car,
}

impl From<Vehicle> for VehicleKind {
    fn from(v: Vehicle) -> Self {
        match v {
            Vehicle::Bike => VehicleKind::Bike,
            Vehicle::Scooter => VehicleKind::Scooter,
            Vehicle::Car => VehicleKind::Car,
        }
    }
}

impl From<VehicleKind> for Vehicle {
    fn from(v: VehicleKind) -> Self {
        match v {
            VehicleKind::Bike => Vehicle::Bike,
            VehicleKind::Scooter => Vehicle::Scooter,
            VehicleKind::Car => Vehicle::Car,
        }
    }
}

/// The body of `POST /v1/couriers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCourierBody {
    /// Display name (1..=200 characters).
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The vehicle.
    pub vehicle: Vehicle,
    /// The id the phone's OsmAnd / Traccar Client app sends (1..=128 characters, unique).
    #[schema(min_length = 1, max_length = 128)]
    pub device_id: String,
    /// Capacity units (1..=1000); the vehicle's default when absent.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub capacity: Option<u32>,
}

/// What a courier is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CourierStatus {
    /// Off shift, or no position for two minutes.
    Offline,
    /// On shift with nothing to do.
    Idle,
    /// On the way to a restaurant.
    ToPickup,
    /// On the way to a customer.
    ToDropoff,
}

/// A courier's latest position.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PositionView {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Fix time (RFC 3339).
    #[schema(format = DateTime)]
    pub at: String,
    /// Heading, degrees.
    pub heading: Option<f32>,
    /// Speed, m/s.
    pub speed_mps: Option<f32>,
}

impl From<&LatestPosition> for PositionView {
    fn from(p: &LatestPosition) -> Self {
        PositionView {
            lat: p.coords.lat(),
            lon: p.coords.lon(),
            at: rfc3339(p.at),
            heading: p.heading_deg,
            speed_mps: p.speed_mps,
        }
    }
}

/// A courier as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CourierView {
    /// The service's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The vehicle.
    pub vehicle: Vehicle,
    /// Capacity units.
    pub capacity: u32,
    /// The phone app's device id.
    pub device_id: String,
    /// Whether the courier is working now.
    pub on_shift: bool,
    /// What the courier is doing.
    pub status: CourierStatus,
    /// The latest position, when one is known.
    pub position: Option<PositionView>,
    /// When registered (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// The courier list.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CourierList {
    /// Every courier.
    pub couriers: Vec<CourierView>,
}

/// The body of `POST /v1/couriers/{id}/shift`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShiftBody {
    /// Start (`on`) or end (`off`) the shift.
    pub state: ShiftState,
}

/// A shift's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShiftState {
    /// Working.
    On,
    /// Not working.
    Off,
}

/// A stop's kind on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopKindView {
    /// Collect the food at the restaurant.
    Pickup,
    /// Hand it to the customer.
    Dropoff,
}

impl From<StopKind> for StopKindView {
    fn from(k: StopKind) -> Self {
        match k {
            StopKind::Pickup => StopKindView::Pickup,
            StopKind::Dropoff => StopKindView::Dropoff,
        }
    }
}

/// One stop of a route.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StopView {
    /// The order served.
    pub order_id: String,
    /// Pickup or drop-off.
    pub kind: StopKindView,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// When the courier is expected there (RFC 3339).
    #[schema(format = DateTime)]
    pub eta: String,
    /// When the courier is expected to leave (RFC 3339).
    #[schema(format = DateTime)]
    pub departs_at: String,
    /// For a pickup, when the food should be ready (RFC 3339).
    #[schema(format = DateTime)]
    pub ready_at: Option<String>,
}

/// A courier's current route.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RouteView {
    /// Whose route.
    pub courier_id: String,
    /// The route's version (0: never planned).
    pub seq: u64,
    /// The stops in visiting order.
    pub stops: Vec<StopView>,
}

impl RouteView {
    fn of(courier: &CourierRecord, route: Option<&RouteRecord>) -> Self {
        RouteView {
            courier_id: courier.id.to_string(),
            seq: route.map_or(0, |r| r.seq),
            stops: route
                .map(|r| {
                    r.stops
                        .iter()
                        .map(|s| StopView {
                            order_id: s.order_id.to_string(),
                            kind: s.kind.into(),
                            lat: s.location.lat(),
                            lon: s.location.lon(),
                            eta: rfc3339(s.eta),
                            departs_at: rfc3339(s.departs_at),
                            ready_at: s.ready_at.map(rfc3339),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// The type of a courier's status event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// At the restaurant (before pickup) or at the customer (after).
    Arrived,
    /// Took the food.
    PickedUp,
    /// Handed it over.
    Delivered,
    /// Cannot deliver (`reason` required).
    Failed,
}

/// The body of `POST /v1/couriers/{id}/events`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CourierEventBody {
    /// The order.
    #[schema(min_length = 1, max_length = 128)]
    pub order_id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// Why, for `failed` (1..=500 characters).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 500)]
    pub reason: Option<String>,
    /// The phone's id for this event (1..=128 characters): a resend with the same one is
    /// applied once.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128)]
    pub client_id: Option<String>,
}

/// The order after a courier's event.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventAnswer {
    /// The order.
    #[serde(flatten)]
    pub order: OrderView,
    /// Whether it was a resend of an event already applied.
    pub duplicate: bool,
}

/// The status of `courier` at `now`.
pub fn status_of(
    courier: &CourierRecord,
    position: Option<&LatestPosition>,
    route: Option<&RouteRecord>,
    now: OffsetDateTime,
) -> CourierStatus {
    let fresh = position.is_some_and(|p| now - p.at <= POSITION_FRESH_FOR);
    if !courier.on_shift || !fresh {
        return CourierStatus::Offline;
    }
    match route.and_then(|r| r.stops.first()).map(|s| s.kind) {
        None => CourierStatus::Idle,
        Some(StopKind::Pickup) => CourierStatus::ToPickup,
        Some(StopKind::Dropoff) => CourierStatus::ToDropoff,
    }
}

fn view(state: &ApiState, courier: &CourierRecord, route: Option<&RouteRecord>) -> CourierView {
    let position = state.positions.get(&courier.id);
    CourierView {
        id: courier.id.to_string(),
        name: courier.name.clone(),
        vehicle: courier.vehicle.into(),
        capacity: courier.capacity,
        device_id: courier.device_id.clone(),
        on_shift: courier.on_shift,
        status: status_of(courier, position.as_ref(), route, state.dispatch.now()),
        position: position.as_ref().map(PositionView::from),
        created_at: rfc3339(courier.created_at),
    }
}

/// The view of a courier by id; 404 when unknown.
fn view_by_id(state: &ApiState, id: &optimizer::model::CourierId) -> ApiResult<CourierView> {
    let found = state
        .dispatch
        .read(|s| s.courier(id).map(|c| (c.clone(), s.route(id).cloned())));
    let (courier, route) =
        found.ok_or_else(|| ApiError::NotFound(format!("courier {id} not found")))?;
    Ok(view(state, &courier, route.as_ref()))
}

/// 403 unless `principal` is staff or the courier `id`.
fn require_courier_or_staff(
    principal: &Principal,
    id: &optimizer::model::CourierId,
) -> ApiResult<()> {
    if principal.may_act_for_courier(id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only staff or that courier may do this".into(),
        ))
    }
}

/// Registers a courier (off shift).
#[utoipa::path(
    post,
    path = "/v1/couriers",
    tag = "couriers",
    request_body = NewCourierBody,
    responses(
        (status = 201, description = "Registered.", body = CourierView),
        (status = 403, description = "Not staff.", body = ErrorBody),
        (status = 409, description = "The device id belongs to another courier.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(device_id = %body.device_id))]
pub async fn create_courier(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Json(body): Json<NewCourierBody>,
) -> ApiResult<(StatusCode, Json<CourierView>)> {
    principal.require_staff()?;
    if let Some(c) = body.capacity
        && !(1..=MAX_CAPACITY).contains(&c)
    {
        return Err(ApiError::bad_request(
            "invalid_capacity",
            format!("capacity must be 1..={MAX_CAPACITY}"),
        ));
    }
    let courier = state
        .dispatch
        .register_courier(NewCourier {
            name: body.name,
            vehicle: body.vehicle.into(),
            device_id: body.device_id,
            capacity: body.capacity,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, &courier, None))))
}

/// A new sign-in token for a courier's phone.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CourierTokenView {
    /// The courier the token speaks for.
    pub courier_id: String,
    /// The secret (shown only now; the service keeps its hash): the courier enters it in the
    /// courier app at `/courier`.
    pub token: String,
}

/// Issues a courier token, so staff can sign a new phone in to the courier app; earlier tokens
/// stay valid.
#[utoipa::path(
    post,
    path = "/v1/couriers/{id}/tokens",
    tag = "couriers",
    params(("id" = String, Path, description = "The courier's id.", min_length = 1, max_length = 128)),
    responses(
        (status = 201, description = "Issued.", body = CourierTokenView),
        (status = 403, description = "Not staff.", body = ErrorBody),
        (status = 404, description = "No such courier.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(courier_id = %id))]
pub async fn create_courier_token(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<CourierTokenView>)> {
    principal.require_staff()?;
    let id = courier_id(&id)?;
    if state.dispatch.read(|s| s.courier(&id).is_none()) {
        return Err(ApiError::NotFound(format!("courier {id} not found")));
    }
    let token = state
        .dispatch
        .store()
        .create_token(Role::Courier, Some(&id), &[])
        .await
        .map_err(DispatchError::from)?;
    Ok((
        StatusCode::CREATED,
        Json(CourierTokenView {
            courier_id: id.to_string(),
            token,
        }),
    ))
}

/// Every courier with its status and position.
#[utoipa::path(
    get,
    path = "/v1/couriers",
    tag = "couriers",
    responses(
        (status = 200, description = "The fleet.", body = CourierList),
        (status = 403, description = "Not staff.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list_couriers(
    State(state): State<ApiState>,
    Auth(principal): Auth,
) -> ApiResult<Json<CourierList>> {
    principal.require_staff()?;
    let couriers: Vec<(CourierRecord, Option<RouteRecord>)> = state.dispatch.read(|s| {
        s.couriers()
            .map(|c| (c.clone(), s.route(&c.id).cloned()))
            .collect()
    });
    Ok(Json(CourierList {
        couriers: couriers
            .iter()
            .map(|(c, r)| view(&state, c, r.as_ref()))
            .collect(),
    }))
}

/// One courier with its status and position.
#[utoipa::path(
    get,
    path = "/v1/couriers/{id}",
    tag = "couriers",
    params(("id" = String, Path, description = "The courier's id.", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The courier.", body = CourierView),
        (status = 403, description = "Neither staff nor that courier.", body = ErrorBody),
        (status = 404, description = "No such courier.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(courier_id = %id))]
pub async fn get_courier(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<CourierView>> {
    let id = courier_id(&id)?;
    require_courier_or_staff(&principal, &id)?;
    Ok(Json(view_by_id(&state, &id)?))
}

/// Starts or ends a courier's shift; ending it hands back the orders not yet picked up.
#[utoipa::path(
    post,
    path = "/v1/couriers/{id}/shift",
    tag = "couriers",
    params(("id" = String, Path, description = "The courier's id.", min_length = 1, max_length = 128)),
    request_body = ShiftBody,
    responses(
        (status = 200, description = "The courier after the change.", body = CourierView),
        (status = 403, description = "Neither staff nor that courier.", body = ErrorBody),
        (status = 404, description = "No such courier.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(courier_id = %id))]
pub async fn set_shift(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(body): Json<ShiftBody>,
) -> ApiResult<Json<CourierView>> {
    let id = courier_id(&id)?;
    require_courier_or_staff(&principal, &id)?;
    let courier = state
        .dispatch
        .set_shift(&id, body.state == ShiftState::On, actor_of(&principal))
        .await?;
    let route = state.dispatch.read(|s| s.route(&id).cloned());
    Ok(Json(view(&state, &courier, route.as_ref())))
}

/// A courier's current stops.
#[utoipa::path(
    get,
    path = "/v1/couriers/{id}/route",
    tag = "couriers",
    params(("id" = String, Path, description = "The courier's id.", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The route (no stops: nothing to do).", body = RouteView),
        (status = 403, description = "Neither staff nor that courier.", body = ErrorBody),
        (status = 404, description = "No such courier.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(courier_id = %id))]
pub async fn get_route(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RouteView>> {
    let id = courier_id(&id)?;
    require_courier_or_staff(&principal, &id)?;
    let found = state
        .dispatch
        .read(|s| s.courier(&id).map(|c| RouteView::of(c, s.route(&id))));
    found
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("courier {id} not found")))
}

/// A courier's status event on one of its orders.
#[utoipa::path(
    post,
    path = "/v1/couriers/{id}/events",
    tag = "couriers",
    params(("id" = String, Path, description = "The courier's id.", min_length = 1, max_length = 128)),
    request_body = CourierEventBody,
    responses(
        (status = 200, description = "The order after the event (`duplicate` for a resend).", body = EventAnswer),
        (status = 403, description = "Neither staff nor that courier.", body = ErrorBody),
        (status = 404, description = "No such order or courier.", body = ErrorBody),
        (status = 409, description = "Another courier's order, or the lifecycle forbids it now.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(courier_id = %id, order_id = %body.order_id))]
pub async fn post_event(
    State(state): State<ApiState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(body): Json<CourierEventBody>,
) -> ApiResult<Json<EventAnswer>> {
    let id = courier_id(&id)?;
    require_courier_or_staff(&principal, &id)?;
    let order = order_id(&body.order_id)?;
    if let Some(c) = &body.client_id
        && (c.is_empty() || c.len() > 128)
    {
        return Err(ApiError::bad_request(
            "invalid_client_id",
            "client_id must be 1..=128 characters",
        ));
    }
    let kind = match body.kind {
        EventType::Arrived => CourierEventKind::Arrived,
        EventType::PickedUp => CourierEventKind::PickedUp,
        EventType::Delivered => CourierEventKind::Delivered,
        EventType::Failed => match body.reason {
            Some(reason) if !reason.trim().is_empty() && reason.chars().count() <= 500 => {
                CourierEventKind::Failed { reason }
            }
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_reason",
                    "a failed event needs a reason of 1..=500 characters",
                ));
            }
        },
    };
    let outcome = state
        .dispatch
        .courier_event(
            &id,
            &order,
            kind,
            body.client_id.as_deref(),
            actor_of(&principal),
        )
        .await?;
    Ok(Json(EventAnswer {
        order: OrderView::of(&outcome.order, View::of(&principal), state.dispatch.now()),
        duplicate: outcome.duplicate,
    }))
}
