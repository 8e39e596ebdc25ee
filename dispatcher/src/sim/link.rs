//! How a simulated phone talks to the service: [`Transport::Rest`] polls its route, posts its
//! events to the REST API and its positions to the OsmAnd endpoint (query, form and Traccar
//! JSON in turn); [`Transport::Socket`] takes route pushes, events and positions over the
//! courier WebSocket, resuming with `since` after a reconnect (and falls back to REST when the
//! service has no socket).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rand::{RngExt, SeedableRng};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::city::Point;
use super::probe::OrderProbe;

/// How a phone reaches the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The courier WebSocket.
    Socket,
    /// The courier WebSocket for routes and events, positions to the OsmAnd endpoint (a phone
    /// running the courier app beside Traccar Client or OsmAnd).
    SocketWithOsmand,
    /// REST polling and the OsmAnd endpoint.
    Rest,
}

impl Transport {
    /// A seeded mix: about half the fleet on each transport.
    pub fn mixed(seed: u64) -> TransportPlan {
        TransportPlan::Mixed {
            seed,
            socket_share: 0.5,
        }
    }
}

/// Which transport each courier uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TransportPlan {
    /// All the same.
    Every(Transport),
    /// Each courier draws one: the socket with probability `socket_share`.
    Mixed {
        /// Seeds the draws.
        seed: u64,
        /// Share of couriers on the socket.
        socket_share: f64,
    },
    /// Every courier on the socket; each sends its positions to the OsmAnd endpoint with
    /// probability `osmand_share`, over the socket otherwise.
    Phones {
        /// Seeds the draws.
        seed: u64,
        /// Share of couriers whose positions go to the OsmAnd endpoint.
        osmand_share: f64,
    },
}

impl TransportPlan {
    /// The transport of courier number `index`.
    pub fn for_courier(&self, index: usize) -> Transport {
        let draw = |seed: u64, p: f64| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            rng.random_bool(p.clamp(0.0, 1.0))
        };
        match *self {
            TransportPlan::Every(t) => t,
            TransportPlan::Mixed { seed, socket_share } => {
                if draw(seed, socket_share) {
                    Transport::Socket
                } else {
                    Transport::Rest
                }
            }
            TransportPlan::Phones { seed, osmand_share } => {
                if draw(seed, osmand_share) {
                    Transport::SocketWithOsmand
                } else {
                    Transport::Socket
                }
            }
        }
    }
}

/// A stop's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    /// At the restaurant.
    Pickup,
    /// At the customer.
    Dropoff,
}

/// One stop as the service sends it (REST route or socket push).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Stop {
    /// The order.
    pub order_id: String,
    /// Pickup or drop-off.
    pub kind: StopKind,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// When the food should be ready (pickups).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub ready_at: Option<OffsetDateTime>,
}

impl Stop {
    /// Where it is.
    pub fn point(&self) -> Point {
        Point {
            lat: self.lat,
            lon: self.lon,
        }
    }
}

/// A route version.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Route {
    /// Its version.
    pub seq: u64,
    /// Stops in visiting order.
    pub stops: Vec<Stop>,
}

impl Route {
    /// The orders it names.
    pub fn order_ids(&self) -> impl Iterator<Item = &str> {
        self.stops.iter().map(|s| s.order_id.as_str())
    }
}

/// A courier status event to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Same on every retry, so the service applies it once.
    pub client_id: String,
    /// The order.
    pub order_id: String,
    /// `arrived`, `picked_up`, `delivered` or `failed`.
    pub kind: &'static str,
    /// Why (`failed` only).
    pub reason: Option<String>,
}

/// A position fix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fix {
    /// Where.
    pub at: Point,
    /// When (simulated time).
    pub time: OffsetDateTime,
    /// Speed, m/s.
    pub speed_mps: f64,
    /// Heading, degrees.
    pub heading_deg: f64,
}

/// Why an event was not applied.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The service answered and refused it (the order was cancelled, reassigned, ...): do not
    /// retry.
    #[error("refused: {0}")]
    Refused(String),
    /// No answer: retry with the same client id.
    #[error(transparent)]
    Transport(#[from] anyhow::Error),
}

/// What a phone needs to reach the service as one courier.
#[derive(Clone)]
pub(crate) struct Http {
    pub client: reqwest::Client,
    /// `http://host:port` of the API.
    pub base: String,
    /// `http://host:port` of the OsmAnd endpoint.
    pub osmand: String,
    /// The courier's token.
    pub token: String,
    /// The courier's id.
    pub courier_id: String,
    /// The phone's device id.
    pub device_id: String,
    /// Told about every route the phone receives.
    pub probe: Arc<OrderProbe>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// One phone's connection, whichever the transport.
pub(crate) enum Link {
    Rest(RestLink),
    Socket(SocketLink),
}

impl Link {
    /// A link of `transport`.
    pub fn new(
        transport: Transport,
        http: Http,
        route_poll: Duration,
        shutdown: CancellationToken,
    ) -> Link {
        let rest = RestLink::new(http.clone(), route_poll);
        match transport {
            Transport::Rest => Link::Rest(rest),
            Transport::Socket => Link::Socket(SocketLink::start(http, rest, false, shutdown)),
            Transport::SocketWithOsmand => {
                Link::Socket(SocketLink::start(http, rest, true, shutdown))
            }
        }
    }

    /// A route newer than the last one returned, if any.
    pub async fn route(&mut self) -> anyhow::Result<Option<Route>> {
        match self {
            Link::Rest(l) => l.route().await,
            Link::Socket(l) if l.fell_back() => l.rest.route().await,
            Link::Socket(l) => Ok(l.route()),
        }
    }

    /// Sends an event and waits for the service's answer.
    pub async fn event(&mut self, event: &Event) -> Result<(), EventError> {
        match self {
            Link::Rest(l) => l.event(event).await,
            Link::Socket(l) if l.fell_back() => l.rest.event(event).await,
            Link::Socket(l) => l.event(event).await,
        }
    }

    /// Reports positions; returns how many the service stored.
    pub async fn positions(&mut self, fixes: &[Fix]) -> anyhow::Result<u64> {
        match self {
            Link::Rest(l) => l.positions(fixes).await,
            Link::Socket(l) if l.fell_back() || l.osmand_positions => l.rest.positions(fixes).await,
            Link::Socket(l) => l.positions(fixes).await,
        }
    }

    /// Drops the connection (the socket reconnects with `since`; REST has none to drop).
    pub fn drop_connection(&mut self) {
        if let Link::Socket(l) = self {
            l.drop.notify_one();
        }
    }

    /// How many times the socket reconnected.
    pub fn reconnects(&self) -> u64 {
        match self {
            Link::Rest(_) => 0,
            Link::Socket(l) => l.reconnects.load(Ordering::Relaxed),
        }
    }
}

/// REST polling and the OsmAnd endpoint.
pub(crate) struct RestLink {
    http: Http,
    /// How often the route is fetched (wall time).
    poll: Duration,
    /// When it was last fetched.
    last_poll: Option<Instant>,
    /// The last route version returned.
    seq: Option<u64>,
    /// Picks the position format in turn.
    sent: u64,
}

impl RestLink {
    fn new(http: Http, poll: Duration) -> Self {
        RestLink {
            http,
            poll,
            last_poll: None,
            seq: None,
            sent: 0,
        }
    }

    async fn route(&mut self) -> anyhow::Result<Option<Route>> {
        if self.last_poll.is_some_and(|t| t.elapsed() < self.poll) {
            return Ok(None);
        }
        self.last_poll = Some(Instant::now());
        let resp = self
            .http
            .client
            .get(format!(
                "{}/v1/couriers/{}/route",
                self.http.base, self.http.courier_id
            ))
            .bearer_auth(&self.http.token)
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        let status = resp.status();
        if !status.is_success() {
            anyhow::bail!(
                "GET route answered {status}: {}",
                resp.text().await.unwrap_or_default()
            );
        }
        let route: Route = resp.json().await?;
        if self.seq == Some(route.seq) {
            return Ok(None);
        }
        self.seq = Some(route.seq);
        self.http.probe.routed(route.order_ids());
        Ok(Some(route))
    }

    async fn event(&mut self, event: &Event) -> Result<(), EventError> {
        let resp = self
            .http
            .client
            .post(format!(
                "{}/v1/couriers/{}/events",
                self.http.base, self.http.courier_id
            ))
            .bearer_auth(&self.http.token)
            .timeout(Duration::from_secs(10))
            .json(&json!({
                "order_id": event.order_id,
                "type": event.kind,
                "client_id": event.client_id,
                "reason": event.reason,
            }))
            .send()
            .await
            .map_err(anyhow::Error::from)?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else if status.is_client_error() && status.as_u16() != 429 {
            Err(EventError::Refused(format!("{status}: {text}")))
        } else {
            Err(EventError::Transport(anyhow::anyhow!("{status}: {text}")))
        }
    }

    async fn positions(&mut self, fixes: &[Fix]) -> anyhow::Result<u64> {
        let mut stored = 0;
        for fix in fixes {
            self.sent += 1;
            let url = format!("{}/", self.http.osmand);
            let device = self.http.device_id.as_str();
            let knots = fix.speed_mps / tracker::protocol::osmand::MPS_PER_KNOT;
            let request = match self.sent % 3 {
                // OsmAnd: a GET with query parameters, epoch milliseconds, speed in knots.
                0 => self.http.client.get(&url).query(&[
                    ("id", device.to_string()),
                    ("lat", fix.at.lat.to_string()),
                    ("lon", fix.at.lon.to_string()),
                    (
                        "timestamp",
                        ((fix.time.unix_timestamp_nanos() / 1_000_000) as i64).to_string(),
                    ),
                    ("speed", format!("{knots:.3}")),
                    ("bearing", format!("{:.1}", fix.heading_deg)),
                    ("accuracy", "8".to_string()),
                ]),
                // Traccar Client's form post, ISO time.
                1 => self.http.client.post(&url).form(&[
                    ("deviceid", device.to_string()),
                    ("lat", fix.at.lat.to_string()),
                    ("lon", fix.at.lon.to_string()),
                    ("timestamp", rfc3339(fix.time)),
                    ("speed", format!("{knots:.3}")),
                    ("heading", format!("{:.1}", fix.heading_deg)),
                    ("batt", "80".to_string()),
                ]),
                // Traccar Client 9's JSON, speed in m/s.
                _ => self.http.client.post(&url).json(&json!({
                    "device_id": device,
                    "location": {
                        "timestamp": rfc3339(fix.time),
                        "coords": {
                            "latitude": fix.at.lat,
                            "longitude": fix.at.lon,
                            "accuracy": 6.0,
                            "speed": fix.speed_mps,
                            "heading": fix.heading_deg,
                        },
                        "battery": {"level": 0.8},
                    },
                })),
            };
            let resp = request.timeout(Duration::from_secs(10)).send().await?;
            if resp.status().is_success() {
                stored += 1;
            } else {
                tracing::debug!(status = %resp.status(), device, "A simulated position was refused.");
            }
        }
        Ok(stored)
    }
}

/// What a socket answer resolves: `Ok` with the stored count, or the service's refusal.
type Answer = Result<u64, String>;

/// The courier WebSocket, kept open by a task that reconnects with `since`.
pub(crate) struct SocketLink {
    /// For the fallback when the service has no socket.
    rest: RestLink,
    /// Frames to send.
    out: mpsc::Sender<String>,
    /// The newest route pushed and not yet taken.
    latest: Arc<Mutex<Option<Route>>>,
    /// Answers awaited, by client id.
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Answer>>>>,
    /// Asks the task to drop the connection.
    drop: Arc<Notify>,
    /// Set when the service answered the upgrade with 404: use REST instead.
    fallback: Arc<AtomicBool>,
    /// Reconnections so far.
    reconnects: Arc<AtomicU64>,
    /// Numbers position batches.
    batches: u64,
    /// Positions go to the OsmAnd endpoint, not over the socket.
    osmand_positions: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SocketLink {
    fn start(
        http: Http,
        rest: RestLink,
        osmand_positions: bool,
        shutdown: CancellationToken,
    ) -> Self {
        let (out, rx) = mpsc::channel(256);
        let link = SocketLink {
            rest,
            out,
            latest: Arc::default(),
            pending: Arc::default(),
            drop: Arc::default(),
            fallback: Arc::default(),
            reconnects: Arc::default(),
            batches: 0,
            osmand_positions,
        };
        let task = SocketTask {
            http,
            latest: link.latest.clone(),
            pending: link.pending.clone(),
            drop: link.drop.clone(),
            fallback: link.fallback.clone(),
            reconnects: link.reconnects.clone(),
            seq: 0,
        };
        tokio::spawn(task.run(rx, shutdown));
        link
    }

    fn fell_back(&self) -> bool {
        self.fallback.load(Ordering::Relaxed)
    }

    fn route(&mut self) -> Option<Route> {
        lock(&self.latest).take()
    }

    async fn ask(&mut self, client_id: &str, frame: Value) -> Result<u64, EventError> {
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(client_id.to_string(), tx);
        if self.out.send(frame.to_string()).await.is_err() {
            return Err(anyhow::anyhow!("the socket task ended").into());
        }
        match tokio::time::timeout(Duration::from_secs(5), rx).await {
            Ok(Ok(Ok(n))) => Ok(n),
            Ok(Ok(Err(refusal))) => Err(EventError::Refused(refusal)),
            _ => {
                lock(&self.pending).remove(client_id);
                Err(anyhow::anyhow!("no answer on the socket").into())
            }
        }
    }

    async fn event(&mut self, event: &Event) -> Result<(), EventError> {
        let frame = json!({
            "type": "event",
            "client_id": event.client_id,
            "order_id": event.order_id,
            "event": event.kind,
            "reason": event.reason,
        });
        self.ask(&event.client_id, frame).await.map(|_| ())
    }

    async fn positions(&mut self, fixes: &[Fix]) -> anyhow::Result<u64> {
        self.batches += 1;
        let client_id = format!("{}-p{}", self.rest.http.device_id, self.batches);
        let fixes: Vec<Value> = fixes
            .iter()
            .map(|f| {
                json!({
                    "lat": f.at.lat,
                    "lon": f.at.lon,
                    "at": rfc3339(f.time),
                    "speed_mps": f.speed_mps,
                    "heading": f.heading_deg,
                    "accuracy_m": 6.0,
                })
            })
            .collect();
        let frame = json!({"type": "positions", "client_id": client_id, "fixes": fixes});
        match self.ask(&client_id, frame).await {
            Ok(n) => Ok(n),
            Err(EventError::Refused(r)) => {
                tracing::debug!(refusal = %r, "Simulated positions were refused.");
                Ok(0)
            }
            Err(EventError::Transport(e)) => Err(e),
        }
    }
}

/// The task that owns the socket.
struct SocketTask {
    http: Http,
    latest: Arc<Mutex<Option<Route>>>,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Answer>>>>,
    drop: Arc<Notify>,
    fallback: Arc<AtomicBool>,
    reconnects: Arc<AtomicU64>,
    /// The newest route version seen, sent as `since` on reconnect.
    seq: u64,
}

impl SocketTask {
    async fn run(mut self, mut out: mpsc::Receiver<String>, shutdown: CancellationToken) {
        let mut pause = Duration::from_millis(200);
        let mut first = true;
        while !shutdown.is_cancelled() {
            let ws_base = self.http.base.replacen("http", "ws", 1);
            let url = format!(
                "{ws_base}/v1/courier/ws?token={}&since={}",
                self.http.token, self.seq
            );
            match tokio_tungstenite::connect_async(url.as_str()).await {
                Ok((socket, _)) => {
                    if !first {
                        self.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    first = false;
                    pause = Duration::from_millis(200);
                    if self.serve(socket, &mut out, &shutdown).await {
                        return;
                    }
                }
                Err(tokio_tungstenite::tungstenite::Error::Http(resp))
                    if resp.status().as_u16() == 404 =>
                {
                    tracing::warn!(device_id = %self.http.device_id, "The service has no courier socket; the simulated phone uses REST.");
                    self.fallback.store(true, Ordering::Relaxed);
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, "The simulated phone's socket did not connect.");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// Serves one connection; `true` when shut down.
    async fn serve(
        &mut self,
        socket: tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        out: &mut mpsc::Receiver<String>,
        shutdown: &CancellationToken,
    ) -> bool {
        let (mut tx, mut rx) = socket.split();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = tx.send(Message::Close(None)).await;
                    return true;
                }
                () = self.drop.notified() => {
                    let _ = tx.send(Message::Close(None)).await;
                    return false;
                }
                frame = out.recv() => {
                    let Some(frame) = frame else { return true };
                    if tx.send(Message::text(frame)).await.is_err() {
                        return false;
                    }
                }
                message = rx.next() => {
                    let text = match message {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return false,
                        Some(Ok(_)) => continue,
                    };
                    let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                    if let Some(ack) = self.receive(frame)
                        && tx.send(Message::text(ack)).await.is_err()
                    {
                        return false;
                    }
                }
            }
        }
    }

    /// Handles one server frame; returns a frame to answer with.
    fn receive(&mut self, frame: Value) -> Option<String> {
        let client_id = frame["client_id"].as_str().map(str::to_string);
        let resolve = |answer: Answer| {
            if let Some(id) = &client_id
                && let Some(tx) = lock(&self.pending).remove(id)
            {
                let _ = tx.send(answer);
            }
        };
        match frame["type"].as_str() {
            Some("route") => {
                let route: Route = serde_json::from_value(frame).ok()?;
                self.http.probe.routed(route.order_ids());
                self.seq = self.seq.max(route.seq);
                let seq = route.seq;
                *lock(&self.latest) = Some(route);
                Some(json!({"type": "ack", "seq": seq}).to_string())
            }
            Some("welcome") | Some("in_sync") => None,
            Some("event_ok") => {
                resolve(Ok(1));
                None
            }
            Some("positions_ok") => {
                resolve(Ok(frame["stored"].as_u64().unwrap_or(0)));
                None
            }
            Some("error") => {
                let code = frame["error"].as_str().unwrap_or_default();
                // Our failures are not refusals: leave the event unanswered so it is resent.
                if !(code.contains("unavailable")
                    || code.contains("internal")
                    || code.contains("unexpected"))
                {
                    resolve(Err(format!("{code}: {}", frame["detail"])));
                }
                None
            }
            _ => None,
        }
    }
}
