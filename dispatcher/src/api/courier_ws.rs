//! The courier WebSocket `/v1/courier/ws` (courier token in the header or `?token=`; optional
//! `?since=SEQ`): the courier's route versions pushed as they are made, and the phone's status
//! events and GPS fixes taken in, each answered once committed.
//!
//! The protocol is JSON text frames tagged by `type` ([`ServerFrame`], [`ClientFrame`]). The
//! server sends `welcome` first (with the service's clock), then the current `route` (or
//! `in_sync` when `since` is the current version), then every new version. Status events go
//! through the same [`Dispatch::courier_event`] as REST and are applied once per client id;
//! fixes go to the tracker's ingest. Anything refused is an `error` frame with the code REST would answer.
//!
//! A session ([`run_session`]) is a send task and a receive task; when one ends the other is
//! aborted. It is written against any `Sink`/`Stream` of [`Message`]s, so tests drive it with
//! channels. The server pings every 15 s, closes a connection silent for 45 s or a send that
//! takes over 10 s, and closes a session with code 4000 (`replaced`) when the same courier
//! connects again.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{
    CloseFrame, Message, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{FromRef, State};
use axum::response::Response;
use axum::routing::get;
use futures::future::BoxFuture;
use futures::{FutureExt as _, Sink, SinkExt as _, Stream, StreamExt as _};
use optimizer::model::{CourierId, OrderId, OrderStatus, StopKind};
use serde::{Deserialize, Serialize};
use service::auth::{Auth, Principal, TokenVerifier};
use service::error::ApiError;
use service::extract::Query;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::Instrument as _;
use tracker::{FixInput, Ingest, IngestReport, Source};

use crate::dispatch::{CourierEventKind, Dispatch};
use crate::live::routes::{RouteHub, RouteWatch, Session};
use crate::records::{Actor, RouteRecord, RouteStop};

/// The close code telling a session a newer one of the same courier took over.
pub const CLOSE_REPLACED: u16 = 4000;

/// Frames the server sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The first frame: whose socket this is, the route version the server holds (0: none),
    /// and the service's clock, so a phone can time its fixes on it (the demo's clock is
    /// simulated).
    Welcome {
        /// The courier.
        courier_id: String,
        /// The current route version.
        seq: u64,
        /// The service's clock when the session started.
        #[serde(with = "time::serde::rfc3339")]
        now: OffsetDateTime,
    },
    /// The courier's current route (on connect and on every new version).
    Route {
        /// Its version.
        seq: u64,
        /// The stops, in visiting order.
        stops: Vec<StopFrame>,
    },
    /// Sent instead of the route when the phone already holds the current version.
    InSync {
        /// The current version.
        seq: u64,
    },
    /// A status event was applied (or had been: `duplicate`).
    EventOk {
        /// The phone's id for the event.
        client_id: String,
        /// The order.
        order_id: String,
        /// The order's status now.
        status: String,
        /// Whether it was a resend of an event already applied.
        duplicate: bool,
    },
    /// Fixes were taken: `stored` are durably stored, `rejected` are not.
    PositionsOk {
        /// The phone's id for the frame.
        client_id: String,
        /// Fixes stored.
        stored: usize,
        /// Fixes refused.
        rejected: usize,
    },
    /// A frame was refused.
    Error {
        /// The refused frame's client id, when it had one.
        client_id: Option<String>,
        /// Machine-readable code (the one REST uses for the same refusal).
        error: String,
        /// Human-readable explanation.
        detail: String,
    },
}

/// One stop of a route frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopFrame {
    /// The order served.
    pub order_id: String,
    /// `pickup` or `dropoff`.
    pub kind: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// When the courier is expected there.
    #[serde(with = "time::serde::rfc3339")]
    pub eta: OffsetDateTime,
    /// When the courier is expected to leave.
    #[serde(with = "time::serde::rfc3339")]
    pub departs_at: OffsetDateTime,
    /// For a pickup, when the food should be ready.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ready_at: Option<OffsetDateTime>,
    /// The restaurant, for a pickup.
    pub restaurant_id: Option<String>,
}

impl From<&RouteStop> for StopFrame {
    fn from(s: &RouteStop) -> Self {
        StopFrame {
            order_id: s.order_id.to_string(),
            kind: match s.kind {
                StopKind::Pickup => "pickup",
                StopKind::Dropoff => "dropoff",
            }
            .into(),
            lat: s.location.lat(),
            lon: s.location.lon(),
            eta: s.eta,
            departs_at: s.departs_at,
            ready_at: s.ready_at,
            restaurant_id: s.restaurant_id.as_ref().map(ToString::to_string),
        }
    }
}

impl ServerFrame {
    /// The route frame of `route` (`None`: version 0, no stops).
    pub fn route(route: Option<&RouteRecord>) -> Self {
        ServerFrame::Route {
            seq: route.map_or(0, |r| r.seq),
            stops: route.map_or_else(Vec::new, |r| r.stops.iter().map(StopFrame::from).collect()),
        }
    }

    /// An error frame for `e`, with its REST code.
    pub fn error(client_id: Option<String>, e: &ApiError) -> Self {
        ServerFrame::Error {
            client_id,
            error: e.code().into(),
            detail: e.to_string(),
        }
    }
}

/// Frames the phone sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// The phone holds route version `seq`.
    Ack {
        /// The version.
        seq: u64,
    },
    /// A status event on one of the courier's orders.
    Event {
        /// The phone's id for the event (1..=128 characters): a resend is applied once.
        client_id: String,
        /// The order.
        order_id: String,
        /// What happened.
        event: EventName,
        /// Why, for `failed` (1..=500 characters).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// GPS fixes (at most [`SessionConfig::max_fixes`]).
    Positions {
        /// The phone's id for the frame.
        client_id: String,
        /// The fixes.
        fixes: Vec<FixFrame>,
    },
}

/// The name of a status event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    /// At the restaurant or the customer.
    Arrived,
    /// Took the food.
    PickedUp,
    /// Handed it over.
    Delivered,
    /// Cannot deliver (`reason` required).
    Failed,
}

/// One GPS fix of a positions frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FixFrame {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// When the phone took it; now when absent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    /// Ground speed, metres per second.
    #[serde(default)]
    pub speed_mps: Option<f64>,
    /// Course, degrees clockwise from north.
    #[serde(default)]
    pub heading: Option<f64>,
    /// Accuracy radius, metres.
    #[serde(default)]
    pub accuracy_m: Option<f64>,
}

impl From<FixFrame> for FixInput {
    fn from(f: FixFrame) -> Self {
        FixInput {
            lat: f.lat,
            lon: f.lon,
            fix_time: f.at,
            speed_mps: f.speed_mps,
            heading_deg: f.heading,
            accuracy_m: f.accuracy_m,
            ..FixInput::default()
        }
    }
}

/// What a status event did, as the socket answers it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventDone {
    /// The order's status now.
    pub status: OrderStatus,
    /// Whether it was a resend of an event already applied.
    pub duplicate: bool,
}

/// What the socket does for a courier: apply status events and store fixes. The futures are
/// `'static` and are spawned, so a session closing mid-way never cancels a commit.
pub trait CourierActions: Send + Sync + 'static {
    /// Applies `event` on `order` for `courier`, once per `client_id`.
    fn event(
        &self,
        courier: CourierId,
        order: OrderId,
        event: CourierEventKind,
        client_id: String,
    ) -> BoxFuture<'static, Result<EventDone, ApiError>>;

    /// Stores `fixes` of `courier`; answers once committed.
    fn positions(
        &self,
        courier: CourierId,
        fixes: Vec<FixInput>,
    ) -> BoxFuture<'static, Result<IngestReport, ApiError>>;

    /// The service's clock (the welcome frame tells the phone).
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// [`CourierActions`] on the core and the tracker.
pub struct LiveActions {
    /// The core status events go through.
    pub dispatch: Dispatch,
    /// The tracker's ingest fixes go to.
    pub ingest: Arc<Ingest>,
}

impl CourierActions for LiveActions {
    fn event(
        &self,
        courier: CourierId,
        order: OrderId,
        event: CourierEventKind,
        client_id: String,
    ) -> BoxFuture<'static, Result<EventDone, ApiError>> {
        let dispatch = self.dispatch.clone();
        async move {
            let actor = Actor::Courier(courier.clone());
            let outcome = dispatch
                .courier_event(&courier, &order, event, Some(&client_id), actor)
                .await?;
            Ok(EventDone {
                status: outcome.order.status,
                duplicate: outcome.duplicate,
            })
        }
        .boxed()
    }

    fn positions(
        &self,
        courier: CourierId,
        fixes: Vec<FixInput>,
    ) -> BoxFuture<'static, Result<IngestReport, ApiError>> {
        let ingest = self.ingest.clone();
        async move {
            let retry = ingest.config().retry_after_s;
            ingest
                .ingest_courier(&courier, fixes, Source::WebSocket)
                .await
                .map_err(|e| tracker::api::error::ingest_error(e, retry))
        }
        .boxed()
    }

    fn now(&self) -> OffsetDateTime {
        self.dispatch.now()
    }
}

/// A session's timing and limits.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// How often the server pings.
    pub ping_every: Duration,
    /// A connection silent this long is closed.
    pub silent_for: Duration,
    /// A send taking longer closes the connection.
    pub send_timeout: Duration,
    /// Larger frames are refused with an error frame.
    pub max_frame_bytes: usize,
    /// At most this many fixes per positions frame.
    pub max_fixes: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ping_every: Duration::from_secs(15),
            silent_for: Duration::from_secs(45),
            send_timeout: Duration::from_secs(10),
            max_frame_bytes: 64 * 1024,
            max_fixes: 100,
        }
    }
}

/// Messages larger than this end the connection (they are not even read into memory whole);
/// below it and above [`SessionConfig::max_frame_bytes`] they get an error frame.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// What the socket's handler shares.
#[derive(Clone)]
pub struct CourierWsState {
    /// Route versions and the one-session-per-courier rule.
    pub hub: RouteHub,
    /// Status events and fixes.
    pub actions: Arc<dyn CourierActions>,
    /// Checks tokens.
    pub verifier: Arc<dyn TokenVerifier>,
    /// Timing and limits.
    pub config: SessionConfig,
}

impl CourierWsState {
    /// The socket on the core and the tracker's ingest, with the default timing.
    pub fn live(
        hub: RouteHub,
        dispatch: Dispatch,
        ingest: Arc<Ingest>,
        verifier: Arc<dyn TokenVerifier>,
    ) -> Self {
        CourierWsState {
            hub,
            actions: Arc::new(LiveActions { dispatch, ingest }),
            verifier,
            config: SessionConfig::default(),
        }
    }
}

impl FromRef<CourierWsState> for Arc<dyn TokenVerifier> {
    fn from_ref(state: &CourierWsState) -> Self {
        state.verifier.clone()
    }
}

/// The route `/v1/courier/ws` on `state`.
pub fn router(state: CourierWsState) -> Router {
    Router::new()
        .route("/v1/courier/ws", get(courier_ws))
        .with_state(state)
}

/// The query of `/v1/courier/ws` (`token` is read by [`Auth`]).
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// The route version the phone holds.
    #[serde(default)]
    pub since: Option<u64>,
}

/// `GET /v1/courier/ws`: 401 without a valid token, 403 for anyone but a courier, 400 for a
/// request that is not a WebSocket upgrade.
#[tracing::instrument(skip_all)]
pub async fn courier_ws(
    State(state): State<CourierWsState>,
    Auth(principal): Auth,
    Query(query): Query<WsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Principal::Courier(courier) = principal else {
        return Err(ApiError::Forbidden(
            "only a courier token may open the courier socket".into(),
        ));
    };
    let ws = ws.map_err(|e| ApiError::bad_request("not_websocket", e.to_string()))?;
    let span = tracing::info_span!("courier_ws", courier_id = %courier);
    Ok(ws
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            run_session(
                sink,
                stream,
                courier,
                query.since,
                state.hub,
                state.actions,
                state.config,
            )
            .instrument(span)
        }))
}

/// Runs one courier's session on `sink` and `stream` until either side ends, the courier
/// connects again, or the hub stops.
pub async fn run_session<W, R, E>(
    sink: W,
    stream: R,
    courier: CourierId,
    since: Option<u64>,
    hub: RouteHub,
    actions: Arc<dyn CourierActions>,
    config: SessionConfig,
) where
    W: Sink<Message> + Unpin + Send + 'static,
    W::Error: Display,
    R: Stream<Item = Result<Message, E>> + Unpin + Send + 'static,
    E: Display + Send + 'static,
{
    let session = hub.register(&courier);
    let routes = hub.watch(&courier);
    tracing::info!(since, "Courier connected.");
    let (replies, outgoing) = mpsc::channel(32);
    let sender = SendHalf {
        started: actions.now(),
        sink,
        config: config.clone(),
    };
    let mut send = tokio::spawn(
        sender
            .run(outgoing, routes, session, hub, courier.clone(), since)
            .in_current_span(),
    );
    let mut receive =
        tokio::spawn(receive(stream, replies, courier, actions, config).in_current_span());
    tokio::select! {
        _ = &mut send => receive.abort(),
        _ = &mut receive => send.abort(),
    }
    tracing::info!("Courier disconnected.");
}

/// The send half: owns the sink.
struct SendHalf<W> {
    /// The service's clock when the session started (for the welcome frame).
    started: OffsetDateTime,
    sink: W,
    config: SessionConfig,
}

impl<W> SendHalf<W>
where
    W: Sink<Message> + Unpin + Send + 'static,
    W::Error: Display,
{
    /// Sends `message`; `false` when the connection is gone or the send took too long.
    async fn send(&mut self, message: Message) -> bool {
        match tokio::time::timeout(self.config.send_timeout, self.sink.send(message)).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::debug!(%error, "Sending failed; closing.");
                false
            }
            Err(_) => {
                tracing::info!("A send took too long; closing.");
                false
            }
        }
    }

    async fn frame(&mut self, frame: &ServerFrame) -> bool {
        // A frame always serialises: every field is a string, number, bool or time.
        let text = serde_json::to_string(frame).expect("server frames serialise");
        self.send(Message::Text(text.into())).await
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        self.send(Message::Close(Some(frame))).await;
    }

    /// Welcome, the current route (or `in_sync`), then every new version, the answers of the
    /// receive half and pings, until the session ends.
    async fn run(
        mut self,
        mut outgoing: mpsc::Receiver<ServerFrame>,
        mut routes: RouteWatch,
        session: Session,
        hub: RouteHub,
        courier: CourierId,
        since: Option<u64>,
    ) {
        let current = routes.borrow_and_update().clone();
        let seq = current.as_ref().map_or(0, |r| r.seq);
        let welcome = ServerFrame::Welcome {
            courier_id: courier.to_string(),
            seq,
            now: self.started,
        };
        if !self.frame(&welcome).await {
            return;
        }
        let first = if since == Some(seq) {
            ServerFrame::InSync { seq }
        } else {
            ServerFrame::route(current.as_deref())
        };
        if !self.frame(&first).await {
            return;
        }
        let every = self.config.ping_every;
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            let message = tokio::select! {
                () = session.replaced() => {
                    tracing::info!("A newer session of this courier took over; closing.");
                    self.close(CLOSE_REPLACED, "replaced").await;
                    return;
                }
                () = hub.stopped() => {
                    self.close(1001, "shutting down").await;
                    return;
                }
                changed = routes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let route = routes.borrow_and_update().clone();
                    ServerFrame::route(route.as_deref())
                }
                reply = outgoing.recv() => match reply {
                    Some(frame) => frame,
                    None => return,
                },
                _ = ping.tick() => {
                    if !self.send(Message::Ping(Default::default())).await {
                        return;
                    }
                    continue;
                }
            };
            if !self.frame(&message).await {
                return;
            }
        }
    }
}

/// The receive half: reads frames, acts on them and queues the answers, until the phone
/// closes, errs or stays silent too long.
async fn receive<R, E>(
    mut stream: R,
    replies: mpsc::Sender<ServerFrame>,
    courier: CourierId,
    actions: Arc<dyn CourierActions>,
    config: SessionConfig,
) where
    R: Stream<Item = Result<Message, E>> + Unpin + Send + 'static,
    E: Display + Send + 'static,
{
    loop {
        let message = match tokio::time::timeout(config.silent_for, stream.next()).await {
            Err(_) => {
                tracing::info!("The phone went silent; closing.");
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(error))) => {
                tracing::debug!(%error, "Reading failed; closing.");
                return;
            }
            Ok(Some(Ok(message))) => message,
        };
        let answer = match message {
            Message::Text(text) if text.len() > config.max_frame_bytes => Some(too_large(&config)),
            Message::Text(text) => handle(text.as_str(), &courier, actions.as_ref(), &config).await,
            Message::Binary(_) => Some(ServerFrame::error(
                None,
                &ApiError::bad_request("bad_request", "frames are JSON text, not binary"),
            )),
            Message::Ping(_) | Message::Pong(_) => None,
            Message::Close(_) => return,
        };
        if let Some(answer) = answer
            && replies.send(answer).await.is_err()
        {
            return;
        }
    }
}

fn too_large(config: &SessionConfig) -> ServerFrame {
    ServerFrame::error(
        None,
        &ApiError::TooLarge(format!(
            "frames are at most {} bytes",
            config.max_frame_bytes
        )),
    )
}

/// The names of [`ClientFrame`]'s `type`.
const CLIENT_TYPES: [&str; 3] = ["ack", "event", "positions"];

/// Acts on one text frame; the answer to send, if any.
async fn handle(
    text: &str,
    courier: &CourierId,
    actions: &dyn CourierActions,
    config: &SessionConfig,
) -> Option<ServerFrame> {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let e = ApiError::bad_request("bad_json", format!("the frame is not JSON: {e}"));
            return Some(ServerFrame::error(None, &e));
        }
    };
    let client_id = value
        .get("client_id")
        .and_then(|c| c.as_str())
        .map(str::to_string);
    match value.get("type").and_then(|t| t.as_str()) {
        Some(t) if CLIENT_TYPES.contains(&t) => {}
        other => {
            let e = ApiError::bad_request(
                "unknown_type",
                format!(
                    "unknown frame type {:?}; expected ack, event or positions",
                    other.unwrap_or("")
                ),
            );
            return Some(ServerFrame::error(client_id, &e));
        }
    }
    let frame: ClientFrame = match serde_json::from_value(value) {
        Ok(f) => f,
        Err(e) => {
            let e = ApiError::bad_request("bad_request", e.to_string());
            return Some(ServerFrame::error(client_id, &e));
        }
    };
    match frame {
        ClientFrame::Ack { seq } => {
            tracing::debug!(seq, "The phone holds this route version.");
            None
        }
        ClientFrame::Event {
            client_id,
            order_id,
            event,
            reason,
        } => Some(
            match event_frame(courier, &client_id, &order_id, event, reason, actions).await {
                Ok(done) => ServerFrame::EventOk {
                    client_id,
                    order_id,
                    status: done.status.as_str().into(),
                    duplicate: done.duplicate,
                },
                Err(e) => ServerFrame::error(Some(client_id), &e),
            },
        ),
        ClientFrame::Positions { client_id, fixes } => Some(
            match positions_frame(courier, &client_id, fixes, actions, config).await {
                Ok(report) => ServerFrame::PositionsOk {
                    client_id,
                    stored: report.stored,
                    rejected: report.rejected.len(),
                },
                Err(e) => ServerFrame::error(Some(client_id), &e),
            },
        ),
    }
}

/// A client id of 1..=128 characters, as REST takes it.
fn check_client_id(client_id: &str) -> Result<(), ApiError> {
    if client_id.is_empty() || client_id.len() > 128 {
        return Err(ApiError::bad_request(
            "invalid_client_id",
            "client_id must be 1..=128 characters",
        ));
    }
    Ok(())
}

/// Joins a spawned action; a panic in it is our failure.
async fn joined<T>(task: tokio::task::JoinHandle<Result<T, ApiError>>) -> Result<T, ApiError> {
    task.await
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("the action task failed: {e}")))?
}

async fn event_frame(
    courier: &CourierId,
    client_id: &str,
    order_id: &str,
    event: EventName,
    reason: Option<String>,
    actions: &dyn CourierActions,
) -> Result<EventDone, ApiError> {
    check_client_id(client_id)?;
    let order = crate::wire::order_id(order_id).map_err(super::error::invalid)?;
    let kind = match event {
        EventName::Arrived => CourierEventKind::Arrived,
        EventName::PickedUp => CourierEventKind::PickedUp,
        EventName::Delivered => CourierEventKind::Delivered,
        EventName::Failed => match reason {
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
    // Spawned: a session closing mid-way must not cancel a commit.
    joined(tokio::spawn(actions.event(
        courier.clone(),
        order,
        kind,
        client_id.to_string(),
    )))
    .await
}

async fn positions_frame(
    courier: &CourierId,
    client_id: &str,
    fixes: Vec<FixFrame>,
    actions: &dyn CourierActions,
    config: &SessionConfig,
) -> Result<IngestReport, ApiError> {
    check_client_id(client_id)?;
    if fixes.len() > config.max_fixes {
        return Err(ApiError::TooLarge(format!(
            "at most {} fixes per frame",
            config.max_fixes
        )));
    }
    if fixes.is_empty() {
        return Ok(IngestReport::default());
    }
    let fixes = fixes.into_iter().map(FixInput::from).collect();
    joined(tokio::spawn(actions.positions(courier.clone(), fixes))).await
}

#[cfg(test)]
mod tests {
    use futures::channel::mpsc as chan;
    use tokio_util::sync::CancellationToken;

    use super::*;

    /// Applies every event as picked up, refuses client id `illegal`, stores every fix.
    struct FakeActions;

    impl CourierActions for FakeActions {
        fn event(
            &self,
            _courier: CourierId,
            _order: OrderId,
            _event: CourierEventKind,
            client_id: String,
        ) -> BoxFuture<'static, Result<EventDone, ApiError>> {
            async move {
                if client_id == "illegal" {
                    return Err(ApiError::conflict("illegal_transition", "not yet"));
                }
                Ok(EventDone {
                    status: OrderStatus::PickedUp,
                    duplicate: false,
                })
            }
            .boxed()
        }

        fn positions(
            &self,
            _courier: CourierId,
            fixes: Vec<FixInput>,
        ) -> BoxFuture<'static, Result<IngestReport, ApiError>> {
            let stored = fixes.len();
            async move {
                Ok(IngestReport {
                    stored,
                    rejected: Vec::new(),
                })
            }
            .boxed()
        }
    }

    fn route(courier: &str, seq: u64) -> Arc<RouteRecord> {
        Arc::new(RouteRecord {
            courier_id: CourierId::parse(courier).unwrap(),
            seq,
            stops: Vec::new(),
            updated_at: OffsetDateTime::UNIX_EPOCH,
        })
    }

    type Phone = (
        chan::Receiver<Message>,
        chan::Sender<Result<Message, std::convert::Infallible>>,
        tokio::task::JoinHandle<()>,
    );

    fn connect(hub: &RouteHub, courier: &str, since: Option<u64>) -> Phone {
        let (to_phone, from_server) = chan::channel(64);
        let (to_server, from_phone) = chan::channel(64);
        let task = tokio::spawn(run_session(
            to_phone,
            from_phone,
            CourierId::parse(courier).unwrap(),
            since,
            hub.clone(),
            Arc::new(FakeActions),
            SessionConfig::default(),
        ));
        (from_server, to_server, task)
    }

    /// The next text frame, skipping pings.
    async fn next(rx: &mut chan::Receiver<Message>) -> ServerFrame {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(60), rx.next())
                .await
                .expect("a frame in time")
                .expect("the session is open");
            match m {
                Message::Text(t) => return serde_json::from_str(&t).expect("a server frame"),
                Message::Ping(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    async fn say(tx: &mut chan::Sender<Result<Message, std::convert::Infallible>>, text: &str) {
        tx.send(Ok(Message::Text(text.to_string().into())))
            .await
            .unwrap();
    }

    fn error_code(frame: &ServerFrame) -> (&str, Option<&str>) {
        match frame {
            ServerFrame::Error {
                error, client_id, ..
            } => (error.as_str(), client_id.as_deref()),
            other => panic!("expected an error frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_session_over_channels_pushes_its_routes_and_answers_each_frame() {
        let hub = RouteHub::new(CancellationToken::new());
        hub.publish(route("c1", 3));
        let (mut rx, mut tx, task) = connect(&hub, "c1", None);
        assert!(matches!(
            next(&mut rx).await,
            ServerFrame::Welcome { courier_id, seq: 3, .. } if courier_id == "c1"
        ));
        assert!(matches!(
            next(&mut rx).await,
            ServerFrame::Route { seq: 3, .. }
        ));

        hub.publish(route("c2", 9));
        hub.publish(route("c1", 4));
        assert!(matches!(
            next(&mut rx).await,
            ServerFrame::Route { seq: 4, .. }
        ));

        say(&mut tx, r#"{"type":"ack","seq":4}"#).await;
        say(
            &mut tx,
            r#"{"type":"event","client_id":"e1","order_id":"o1","event":"picked_up"}"#,
        )
        .await;
        assert_eq!(
            next(&mut rx).await,
            ServerFrame::EventOk {
                client_id: "e1".into(),
                order_id: "o1".into(),
                status: "picked_up".into(),
                duplicate: false
            }
        );
        say(
            &mut tx,
            r#"{"type":"event","client_id":"illegal","order_id":"o1","event":"delivered"}"#,
        )
        .await;
        assert_eq!(
            error_code(&next(&mut rx).await),
            ("illegal_transition", Some("illegal"))
        );
        say(
            &mut tx,
            r#"{"type":"event","client_id":"f1","order_id":"o1","event":"failed"}"#,
        )
        .await;
        assert_eq!(
            error_code(&next(&mut rx).await),
            ("invalid_reason", Some("f1"))
        );
        say(&mut tx, "not json").await;
        assert_eq!(error_code(&next(&mut rx).await), ("bad_json", None));
        say(&mut tx, r#"{"type":"dance","client_id":"d1"}"#).await;
        assert_eq!(
            error_code(&next(&mut rx).await),
            ("unknown_type", Some("d1"))
        );
        let fix = r#"{"lat":60.17,"lon":24.94}"#;
        let many = vec![fix; 101].join(",");
        say(
            &mut tx,
            &format!(r#"{{"type":"positions","client_id":"p1","fixes":[{many}]}}"#),
        )
        .await;
        assert_eq!(error_code(&next(&mut rx).await), ("too_large", Some("p1")));
        say(
            &mut tx,
            &format!(
                r#"{{"type":"positions","client_id":"p2","fixes":[{fix},{{"lat":60.1,"lon":24.9,"at":"2024-05-01T12:00:00Z","speed_mps":3.5,"heading":90,"accuracy_m":8}}]}}"#
            ),
        )
        .await;
        assert_eq!(
            next(&mut rx).await,
            ServerFrame::PositionsOk {
                client_id: "p2".into(),
                stored: 2,
                rejected: 0
            }
        );
        let huge = format!(r#"{{"type":"ack","seq":1,"pad":"{}"}}"#, "x".repeat(70_000));
        say(&mut tx, &huge).await;
        assert_eq!(error_code(&next(&mut rx).await), ("too_large", None));

        let _second = hub.register(&CourierId::parse("c1").unwrap());
        match tokio::time::timeout(Duration::from_secs(5), rx.next()).await {
            Ok(Some(Message::Close(Some(f)))) => {
                assert_eq!((f.code, f.reason.as_str()), (CLOSE_REPLACED, "replaced"));
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the session ends")
            .unwrap();
    }

    #[tokio::test]
    async fn a_phone_at_the_current_version_is_told_it_is_in_sync() {
        let hub = RouteHub::new(CancellationToken::new());
        hub.publish(route("c1", 7));
        let (mut rx, _tx, _task) = connect(&hub, "c1", Some(7));
        assert!(matches!(
            next(&mut rx).await,
            ServerFrame::Welcome { seq: 7, .. }
        ));
        assert_eq!(next(&mut rx).await, ServerFrame::InSync { seq: 7 });
        let (mut rx, _tx, _task) = connect(&hub, "c1", Some(5));
        assert!(matches!(
            next(&mut rx).await,
            ServerFrame::Welcome { seq: 7, .. }
        ));
        assert!(matches!(
            next(&mut rx).await,
            ServerFrame::Route { seq: 7, .. }
        ));
    }

    #[tokio::test]
    async fn a_silent_phone_is_pinged_and_then_closed() {
        // The production timing scaled down 150 times: pings every 100 ms, silence of 300 ms.
        let config = SessionConfig {
            ping_every: Duration::from_millis(100),
            silent_for: Duration::from_millis(300),
            ..SessionConfig::default()
        };
        let hub = RouteHub::new(CancellationToken::new());
        let (to_phone, mut rx) = chan::channel(64);
        let (_tx, from_phone) = chan::channel::<Result<Message, std::convert::Infallible>>(64);
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(run_session(
            to_phone,
            from_phone,
            CourierId::parse("c1").unwrap(),
            None,
            hub,
            Arc::new(FakeActions),
            config,
        ));
        assert!(matches!(
            next(&mut rx).await,
            ServerFrame::Welcome { seq: 0, .. }
        ));
        assert_eq!(
            next(&mut rx).await,
            ServerFrame::Route {
                seq: 0,
                stops: Vec::new()
            }
        );
        let mut pings = 0;
        while let Some(m) = rx.next().await {
            assert!(matches!(m, Message::Ping(_)), "{m:?}");
            pings += 1;
        }
        task.await.unwrap();
        let elapsed = started.elapsed();
        assert!((2..=3).contains(&pings), "{pings} pings");
        assert!(
            elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );
    }
}
