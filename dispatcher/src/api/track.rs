//! The customer's tracking link: `GET /v1/track/{tracking_id}` (no token: the unguessable id is
//! the secret) and its live counterpart `GET /v1/track/{tracking_id}/events` (server-sent
//! events). Both say the order's status and drop-off ETA, and the courier's position only while
//! that courier is on the way to this drop-off (the order is in the bag and this drop-off is
//! the courier's next stop); nothing else about the courier or other orders.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::Stream;
use optimizer::model::{OrderStatus, StopKind};
use serde::Serialize;
use service::error::{ApiError, ApiResult};
use service::extract::{Json, Path};
use time::OffsetDateTime;
use tokio::sync::broadcast::error::RecvError;
use tracker::LatestPositions;
use utoipa::ToSchema;

use crate::dispatch::events::rfc3339;
use crate::dispatch::{Change, Dispatch};
use crate::records::OrderRecord;

/// What a tracking page shows.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct TrackingView {
    /// `created`, `assigned`, `picked_up`, `delivered`, `failed` or `cancelled`.
    pub status: String,
    /// When the order was placed (RFC 3339).
    pub placed_at: String,
    /// When it is expected at the door (RFC 3339), while it is on its way to being delivered.
    pub dropoff_eta: Option<String>,
    /// When it was delivered (RFC 3339).
    pub delivered_at: Option<String>,
    /// The drop-off point (the customer's own address).
    pub dropoff: Point,
    /// The courier's position, only while it is on the way to this drop-off.
    pub courier: Option<CourierPosition>,
}

/// A point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, ToSchema)]
pub struct Point {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

/// The courier's position as the customer sees it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct CourierPosition {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Heading, degrees.
    pub heading: Option<f32>,
    /// Fix time (RFC 3339).
    pub at: String,
}

/// What the tracking routes need.
#[derive(Clone)]
pub struct TrackState {
    /// The core.
    pub dispatch: Dispatch,
    /// Couriers' latest positions.
    pub positions: Arc<LatestPositions>,
}

/// The tracking routes.
pub fn router(state: TrackState) -> Router {
    Router::new()
        .route("/v1/track/{tracking_id}", get(track))
        .route("/v1/track/{tracking_id}/events", get(events))
        .with_state(state)
}

/// Whether the order's courier is on the way to its drop-off now.
fn on_the_way(dispatch: &Dispatch, order: &OrderRecord) -> bool {
    order.status == OrderStatus::PickedUp
        && order.courier_id.as_ref().is_some_and(|c| {
            dispatch.read(|s| {
                s.route(c)
                    .and_then(|r| r.stops.first())
                    .is_some_and(|stop| stop.order_id == order.id && stop.kind == StopKind::Dropoff)
            })
        })
}

/// The customer's view of `order`.
pub fn view_of(state: &TrackState, order: &OrderRecord) -> TrackingView {
    let courier = if on_the_way(&state.dispatch, order) {
        order
            .courier_id
            .as_ref()
            .and_then(|c| state.positions.get(c))
            .map(|p| CourierPosition {
                lat: p.coords.lat(),
                lon: p.coords.lon(),
                heading: p.heading_deg,
                at: rfc3339(p.at),
            })
    } else {
        None
    };
    let open = !order.status.is_final();
    TrackingView {
        status: order.status.as_str().to_string(),
        placed_at: rfc3339(order.placed_at),
        dropoff_eta: order.dropoff_eta.filter(|_| open).map(rfc3339),
        delivered_at: order.delivered_at.map(rfc3339),
        dropoff: Point {
            lat: order.dropoff.lat(),
            lon: order.dropoff.lon(),
        },
        courier,
    }
}

/// The order behind a tracking id: open orders from memory, others from the store.
async fn find(state: &TrackState, tracking_id: &str) -> ApiResult<OrderRecord> {
    let unknown = || ApiError::NotFound("no order has this tracking id".into());
    if tracking_id.is_empty()
        || tracking_id.len() > 128
        || !tracking_id.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(unknown());
    }
    let open = state
        .dispatch
        .read(|s| s.orders().find(|o| o.tracking_id == tracking_id).cloned());
    if let Some(order) = open {
        return Ok(order);
    }
    state
        .dispatch
        .store()
        .order_by_tracking_id(tracking_id)
        .await
        .map_err(crate::dispatch::DispatchError::from)?
        .ok_or_else(unknown)
}

/// An order's status and ETA for its customer.
#[utoipa::path(
    get,
    path = "/v1/track/{tracking_id}",
    tag = "tracking",
    params(("tracking_id" = String, Path, description = "The order's tracking id")),
    responses(
        (status = 200, description = "The order as its customer sees it", body = TrackingView),
        (status = 404, description = "No order has this tracking id", body = crate::api::error::ErrorBody),
    ),
    security(())
)]
#[tracing::instrument(skip_all)]
async fn track(
    State(state): State<TrackState>,
    Path(tracking_id): Path<String>,
) -> ApiResult<Json<TrackingView>> {
    let order = find(&state, &tracking_id).await?;
    Ok(Json(view_of(&state, &order)))
}

/// Live updates of the tracking view: one `update` event now and on every change (at most one
/// a second for the courier's moves), ending after the order is finished.
#[utoipa::path(
    get,
    path = "/v1/track/{tracking_id}/events",
    tag = "tracking",
    params(("tracking_id" = String, Path, description = "The order's tracking id")),
    responses(
        (status = 200, description = "A stream of `update` events, each a tracking view", content_type = "text/event-stream", body = String),
        (status = 404, description = "No order has this tracking id", body = crate::api::error::ErrorBody),
    ),
    security(())
)]
#[tracing::instrument(skip_all)]
async fn events(
    State(state): State<TrackState>,
    Path(tracking_id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let order = find(&state, &tracking_id).await?;
    let stream = updates(state, order);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn event_of(view: &TrackingView) -> Event {
    Event::default()
        .event("update")
        .json_data(view)
        .unwrap_or_else(|_| Event::default().event("update"))
}

/// The stream behind [`events`]: a task follows the order and the courier's moves and sends
/// each new view; it ends when the order is finished or the client leaves.
fn updates(state: TrackState, order: OrderRecord) -> impl Stream<Item = Result<Event, Infallible>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(16);
    tokio::spawn(async move {
        let mut changes = state.dispatch.subscribe();
        let mut moves = state.positions.subscribe();
        let mut order = order;
        let mut last = view_of(&state, &order);
        if tx.send(event_of(&last)).await.is_err() {
            return;
        }
        let mut last_move = OffsetDateTime::UNIX_EPOCH;
        while !order.status.is_final() {
            tokio::select! {
                () = tx.closed() => return,
                change = changes.recv() => match change {
                    Ok(Change::Order(o)) if o.id == order.id => order = (*o).clone(),
                    Ok(Change::Route(r)) if order.courier_id.as_ref() == Some(&r.courier_id) => {}
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => {
                        if let Some(o) = state.dispatch.read(|s| s.order(&order.id).cloned()) {
                            order = o;
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
                moved = moves.recv() => match moved {
                    Ok(p) if order.courier_id.as_ref() == Some(&p.courier_id)
                        && p.at - last_move >= time::Duration::SECOND => last_move = p.at,
                    Ok(_) | Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                },
            }
            let view = view_of(&state, &order);
            if view != last {
                last = view;
                if tx.send(event_of(&last)).await.is_err() {
                    return;
                }
            }
        }
    });
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}
