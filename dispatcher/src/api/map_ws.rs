//! The map WebSocket `/v1/map/ws` (staff token, as `Authorization: Bearer T` or `?token=T`):
//! a snapshot of the map, then live deltas, from the one [`MapFeed`]. Also
//! `GET /v1/map/clients` (staff): each connected map client's queue, for operators and tests.
//!
//! # Frames
//!
//! Every frame is a JSON text message. The first is a snapshot; after it come deltas, each with
//! a `version` one higher than the frame before. A client that fell behind gets a new snapshot
//! (its queued deltas were dropped): a snapshot always replaces the whole view, and a delta
//! whose `version` is not above the view's must be ignored (the server never sends one, but a
//! reconnecting client may hold stale state).
//!
//! ```json
//! {"type":"snapshot","version":41,"now":"RFC3339","couriers":[COURIER...],"orders":[ORDER...],
//!  "kpis":KPIS}
//! {"type":"delta","version":42,"now":"RFC3339","couriers":[COURIER...],"orders":[ORDER...],
//!  "removed_orders":["o-17"],"kpis":KPIS}
//! ```
//!
//! `now` is the service's clock when the frame was made (the demo's clock is simulated, so a
//! page measures "late" and "in 5 min" against it, not against its own).
//!
//! A delta lists only the couriers and orders that changed, each in full; `removed_orders` are
//! orders no longer open (delivered, failed or cancelled). A courier's position changes at most
//! once per second in deltas.
//!
//! ```json
//! COURIER = {"id":"…","name":"…","vehicle":"bike|scooter|car","on_shift":true,
//!            "status":"offline|idle|to_pickup|to_dropoff",
//!            "position":{"lat":60.17,"lon":24.94,"at":"RFC3339","heading":90.0,"speed_mps":4.2}|null,
//!            "route":[{"order_id":"…","kind":"pickup|dropoff","lat":…,"lon":…,"eta":"RFC3339"}]}
//! ORDER   = {"id":"…","status":"created|assigned|picked_up","restaurant":{"lat":…,"lon":…},
//!            "dropoff":{"lat":…,"lon":…},"courier_id":"…"|null,"pickup_eta":"RFC3339"|null,
//!            "dropoff_eta":"RFC3339"|null,"ready_at":"RFC3339","deliver_by":"RFC3339"|null,
//!            "late":false,"at_risk":false,"unassigned_reason":"…"|null}
//! KPIS    = {"open_orders":12,"unassigned":2,"unassigned_by_reason":{"no_courier":2},"late":1,
//!            "at_risk":3,"couriers_on_shift":40,"couriers_idle":7,"couriers_connected":38,
//!            "delivered_today":120,"ctd_mean_s_today":1510.4|null,
//!            "last_replan_at":"RFC3339"|null,"last_replan_ms":312.5|null}
//! ```
//!
//! `late`: the order is (or will be, by its drop-off ETA) later than its `deliver_by`.
//! `at_risk`: not late, but expected within five minutes of `deliver_by`. `couriers_connected`:
//! couriers with a position fix in the last two minutes. `delivered_today` and
//! `ctd_mean_s_today` (mean click-to-door, placed to delivered, seconds) count the orders
//! delivered today (UTC) **since the feed started**, not those delivered before a restart.
//! `last_replan_at` and `last_replan_ms`: when the planner last finished a run (the
//! service's clock) and how long its solve took; null until the first run.
//!
//! # Sessions
//!
//! A session is a send task and a receive task (when one ends the other is aborted). The send
//! task writes the client's frames and pings every few seconds; a client that has sent nothing
//! (not even a pong) for 10 s, or whose socket accepts no write for 10 s, is disconnected.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRef, State};
use axum::response::Response;
use axum::routing::get;
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde::Serialize;
use service::auth::{Auth, TokenVerifier};
use service::error::ApiResult;
use service::extract::Json;

use super::couriers::{CourierStatus, PositionView, StopKindView, Vehicle};
use super::orders::OrderStatusView;
use super::rfc3339;
use crate::live::map::{ClientStats, MapClient, MapFeed};
use crate::records::{CourierRecord, OrderRecord, RouteRecord};

/// What the map routes share.
#[derive(Clone)]
pub struct MapState {
    /// The feed every session reads.
    pub feed: MapFeed,
    /// Checks bearer tokens.
    pub verifier: Arc<dyn TokenVerifier>,
}

impl FromRef<MapState> for Arc<dyn TokenVerifier> {
    fn from_ref(state: &MapState) -> Self {
        state.verifier.clone()
    }
}

/// `/v1/map/ws` and `/v1/map/clients` on `state`.
pub fn router(state: MapState) -> Router {
    Router::new()
        .route("/v1/map/ws", get(map_ws))
        .route("/v1/map/clients", get(map_clients))
        .with_state(state)
}

/// The upgrade: staff only (401 without a valid token, 403 for others).
async fn map_ws(
    Auth(principal): Auth,
    State(state): State<MapState>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    principal.require_staff()?;
    let client = state.feed.join();
    Ok(ws.on_upgrade(move |socket: WebSocket| {
        let (sink, stream) = socket.split();
        session(sink, stream, client, SessionOptions::default())
    }))
}

/// The connected map clients.
#[derive(Debug, Serialize)]
pub struct ClientList {
    /// One entry per open map socket.
    pub clients: Vec<ClientStats>,
}

async fn map_clients(
    Auth(principal): Auth,
    State(state): State<MapState>,
) -> ApiResult<Json<ClientList>> {
    principal.require_staff()?;
    Ok(Json(ClientList {
        clients: state.feed.client_stats(),
    }))
}

/// How a session watches its client.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// How often the server pings.
    pub ping_every: Duration,
    /// Silence (no message, no pong) or a blocked write this long ends the session.
    pub idle_timeout: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            ping_every: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// Runs one map session: the client's frames out, pings, and its messages in, until either side
/// ends, the client is silent or blocked for `idle_timeout`, or the feed stops.
pub async fn session<S, R, E>(
    mut sink: S,
    mut stream: R,
    client: MapClient,
    options: SessionOptions,
) where
    S: Sink<Message> + Unpin + Send + 'static,
    R: Stream<Item = Result<Message, E>> + Unpin + Send + 'static,
{
    let started = Instant::now();
    // Milliseconds after `started` of the last message from the client.
    let heard = Arc::new(AtomicU64::new(0));
    let mut receive = tokio::spawn({
        let heard = heard.clone();
        async move {
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
                heard.store(elapsed_ms(started), Ordering::Relaxed);
            }
        }
    });
    let idle = options.idle_timeout;
    let mut send = tokio::spawn(async move {
        let mut ping = tokio::time::interval(options.ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let message = tokio::select! {
                frame = client.next() => match frame {
                    Some(frame) => Message::Text(frame),
                    None => {
                        let _ = tokio::time::timeout(idle, sink.send(Message::Close(None))).await;
                        break;
                    }
                },
                _ = ping.tick() => {
                    let silent_ms = elapsed_ms(started) - heard.load(Ordering::Relaxed);
                    if silent_ms > idle.as_millis() as u64 {
                        tracing::info!(client = client.id(), silent_ms, "Map client went silent; disconnecting.");
                        break;
                    }
                    Message::Ping(Default::default())
                }
            };
            match tokio::time::timeout(idle, sink.send(message)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    tracing::info!(
                        client = client.id(),
                        "Map client stopped reading; disconnecting."
                    );
                    break;
                }
            }
        }
    });
    tokio::select! {
        _ = &mut receive => send.abort(),
        _ = &mut send => receive.abort(),
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// A point on the map.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PointView {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
}

/// One stop of a courier's route on the map.
#[derive(Clone, Debug, Serialize)]
pub struct MapStopView {
    /// The order served.
    pub order_id: String,
    /// Pickup or drop-off.
    pub kind: StopKindView,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// When the courier is expected there (RFC 3339).
    pub eta: String,
}

/// A courier on the map.
#[derive(Clone, Debug, Serialize)]
pub struct MapCourierView {
    /// The service's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The vehicle.
    pub vehicle: Vehicle,
    /// Whether the courier is working now.
    pub on_shift: bool,
    /// What the courier is doing.
    pub status: CourierStatus,
    /// The latest position, when one is known.
    pub position: Option<PositionView>,
    /// The current route's stops, in visiting order.
    pub route: Vec<MapStopView>,
}

impl MapCourierView {
    /// The view of a courier with its position, route and status.
    pub fn of(
        courier: &CourierRecord,
        position: Option<&tracker::LatestPosition>,
        route: Option<&RouteRecord>,
        status: CourierStatus,
    ) -> Self {
        MapCourierView {
            id: courier.id.to_string(),
            name: courier.name.clone(),
            vehicle: courier.vehicle.into(),
            on_shift: courier.on_shift,
            status,
            position: position.map(PositionView::from),
            route: route
                .map(|r| {
                    r.stops
                        .iter()
                        .map(|s| MapStopView {
                            order_id: s.order_id.to_string(),
                            kind: s.kind.into(),
                            lat: s.location.lat(),
                            lon: s.location.lon(),
                            eta: rfc3339(s.eta),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// An open order on the map.
#[derive(Clone, Debug, Serialize)]
pub struct MapOrderView {
    /// The kitchen's id.
    pub id: String,
    /// Created, assigned or picked up.
    pub status: OrderStatusView,
    /// Where the food is picked up.
    pub restaurant: PointView,
    /// Where it goes.
    pub dropoff: PointView,
    /// Its courier, when assigned.
    pub courier_id: Option<String>,
    /// When the courier is expected at the restaurant (RFC 3339).
    pub pickup_eta: Option<String>,
    /// When the courier is expected at the customer (RFC 3339).
    pub dropoff_eta: Option<String>,
    /// When the food should be ready (RFC 3339).
    pub ready_at: String,
    /// The promise (RFC 3339).
    pub deliver_by: Option<String>,
    /// Later than promised (or will be).
    pub late: bool,
    /// Not late, but expected within five minutes of the promise.
    pub at_risk: bool,
    /// Why it waits without a courier.
    pub unassigned_reason: Option<String>,
}

impl MapOrderView {
    /// The view of an open order.
    pub fn of(order: &OrderRecord, late: bool, at_risk: bool) -> Self {
        MapOrderView {
            id: order.id.to_string(),
            status: order.status.into(),
            restaurant: PointView {
                lat: order.restaurant.lat(),
                lon: order.restaurant.lon(),
            },
            dropoff: PointView {
                lat: order.dropoff.lat(),
                lon: order.dropoff.lon(),
            },
            courier_id: order.courier_id.as_ref().map(ToString::to_string),
            pickup_eta: order.pickup_eta.map(rfc3339),
            dropoff_eta: order.dropoff_eta.map(rfc3339),
            ready_at: rfc3339(order.ready_at),
            deliver_by: order.deliver_by.map(rfc3339),
            late,
            at_risk,
            unassigned_reason: order.unassigned_reason.clone(),
        }
    }
}

/// The map's counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KpiView {
    /// Open orders (created, assigned, picked up).
    pub open_orders: usize,
    /// Open orders without a courier.
    pub unassigned: usize,
    /// The unassigned ones by the planner's reason (`none` when it gave none yet).
    pub unassigned_by_reason: BTreeMap<String, usize>,
    /// Open orders later than promised.
    pub late: usize,
    /// Open orders expected within five minutes of the promise.
    pub at_risk: usize,
    /// Couriers on shift.
    pub couriers_on_shift: usize,
    /// Couriers on shift, connected, with nothing to do.
    pub couriers_idle: usize,
    /// Couriers with a position fix in the last two minutes.
    pub couriers_connected: usize,
    /// Orders delivered today (UTC) since the feed started.
    pub delivered_today: u64,
    /// Their mean click-to-door time (placed to delivered), seconds.
    pub ctd_mean_s_today: Option<f64>,
    /// When the planner last finished a run (RFC 3339).
    pub last_replan_at: Option<String>,
    /// How long that run's solve took, milliseconds.
    pub last_replan_ms: Option<f64>,
}

/// The first frame, and the one after falling behind.
#[derive(Debug, Serialize)]
pub struct SnapshotFrame<'a> {
    /// Always `snapshot`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The version of the last delta it includes.
    pub version: u64,
    /// The service's clock (RFC 3339).
    pub now: String,
    /// Every courier.
    pub couriers: Vec<MapCourierView>,
    /// Every open order.
    pub orders: Vec<MapOrderView>,
    /// The counters.
    pub kpis: &'a KpiView,
}

/// What changed since the frame before.
#[derive(Debug, Serialize)]
pub struct DeltaFrame<'a> {
    /// Always `delta`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// One more than the frame before.
    pub version: u64,
    /// The service's clock (RFC 3339).
    pub now: String,
    /// The couriers that changed.
    pub couriers: Vec<MapCourierView>,
    /// The open orders that changed.
    pub orders: Vec<MapOrderView>,
    /// Orders no longer open.
    pub removed_orders: Vec<String>,
    /// The counters.
    pub kpis: &'a KpiView,
}
