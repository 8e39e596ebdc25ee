//! The support map's live view and its deltas: one task ([`MapFeed::run`]) keeps the map's view
//! in memory (couriers with position, status and route; open orders; counters), fed by
//! [`Dispatch::subscribe`] and [`LatestPositions::subscribe`]. Every tick (100 ms) it turns what
//! changed into one delta frame, coalesced per courier and per order (a courier's position at
//! most once per second), serialised once and shared by every client as [`Frame`].
//!
//! Each client ([`MapClient`]) has a bounded queue. A client whose queue is full when a frame
//! comes loses its queue and, when it reads again, gets a fresh snapshot first: the feed never
//! waits for a client, so a slow client stalls neither the feed, the other clients, nor the
//! core. The frame shapes are documented in [`crate::api::map_ws`].
//!
//! When a subscription lags (the broadcast dropped changes), the view is rebuilt from the
//! state and the latest positions, and every client gets a snapshot.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use optimizer::model::{CourierId, OrderId, OrderStatus};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use tracker::{LatestPosition, LatestPositions};

use crate::api::couriers::{CourierStatus, POSITION_FRESH_FOR, status_of};
use crate::api::map_ws::{DeltaFrame, KpiView, MapCourierView, MapOrderView, SnapshotFrame};
use crate::dispatch::{Change, Dispatch};
use crate::planner::LastReplan;
use crate::records::{CourierRecord, OrderRecord, RouteRecord};

/// One serialised frame (a JSON text), shared by every client it goes to.
pub type Frame = Utf8Bytes;

/// How the feed runs.
#[derive(Clone, Debug)]
pub struct MapOptions {
    /// How often changes become a delta.
    pub tick: Duration,
    /// Frames a client may have queued; one more and its queue is dropped.
    pub queue_frames: usize,
    /// A courier's position goes out at most this often: when its fix time advanced this much
    /// since the one sent, or this many ticks passed (so a device's jitter around 1 Hz never
    /// holds a fix back a whole period).
    pub position_every: Duration,
    /// An open order expected this close to its promise is at risk.
    pub at_risk_within: time::Duration,
    /// How often time-dependent fields (offline, late, at risk) are checked again.
    pub recheck_every: Duration,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            tick: Duration::from_millis(100),
            queue_frames: 32,
            position_every: Duration::from_secs(1),
            at_risk_within: time::Duration::minutes(5),
            recheck_every: Duration::from_secs(1),
        }
    }
}

/// The feed's handle: clients join through it. Cheap to clone.
#[derive(Clone)]
pub struct MapFeed {
    shared: Arc<Shared>,
}

struct Shared {
    /// How the feed runs.
    options: MapOptions,
    /// Every connected client's queue, by client id.
    clients: Mutex<HashMap<u64, Arc<ClientQueue>>>,
    /// The next client id.
    next_client: AtomicU64,
    /// Set when the feed stopped: joining clients get nothing.
    stopped: CancellationToken,
    /// The planner's last run, for the counters (none: not reported).
    replans: Option<tokio::sync::watch::Receiver<Option<LastReplan>>>,
}

/// A client's queue, filled by the feed and emptied by the client's session.
struct ClientQueue {
    state: Mutex<QueueState>,
    /// Wakes the client's reader (one waiter: `notify_one` keeps a permit).
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    /// Frames not yet taken, oldest first (at most `queue_frames`).
    frames: VecDeque<Frame>,
    /// Its queue was dropped; nothing is queued until the client reads again.
    lagged: bool,
    /// It needs a snapshot at the next tick (new, or back after lagging).
    wants_snapshot: bool,
    /// Frames dropped because it fell behind.
    dropped_frames: u64,
    /// Snapshots it was sent.
    snapshots: u64,
    /// The feed stopped.
    closed: bool,
}

/// One client's queue, as [`MapFeed::client_stats`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientStats {
    /// The client's id (in join order).
    pub id: u64,
    /// Frames waiting to be sent.
    pub queued_frames: usize,
    /// Their size, bytes.
    pub queued_bytes: usize,
    /// The most it may hold.
    pub capacity: usize,
    /// Whether its queue was dropped and it has not read since.
    pub lagged: bool,
    /// Frames dropped because it fell behind.
    pub dropped_frames: u64,
    /// Snapshots sent to it.
    pub snapshots: u64,
}

/// One connected client: its frames, in order, via [`MapClient::next`]. Dropping it leaves.
pub struct MapClient {
    id: u64,
    queue: Arc<ClientQueue>,
    shared: Arc<Shared>,
}

impl MapClient {
    /// The client's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next frame: a snapshot first (and after falling behind), then deltas. `None` once
    /// the feed stopped.
    pub async fn next(&self) -> Option<Frame> {
        loop {
            {
                let mut q = lock(&self.queue.state);
                if q.closed {
                    return None;
                }
                if let Some(frame) = q.frames.pop_front() {
                    return Some(frame);
                }
                if q.lagged {
                    // Back after falling behind: the next tick brings a snapshot.
                    q.lagged = false;
                    q.wants_snapshot = true;
                }
            }
            self.queue.ready.notified().await;
        }
    }
}

impl Drop for MapClient {
    fn drop(&mut self) {
        let mut clients = lock(&self.shared.clients);
        clients.remove(&self.id);
        metrics::gauge!(crate::metric::MAP_CLIENTS).set(clients.len() as f64);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // No code panics while holding these locks; a poisoned one is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MapFeed {
    /// A feed that serves nothing until [`MapFeed::run`] runs.
    pub fn new(options: MapOptions) -> Self {
        MapFeed::build(options, None)
    }

    /// As [`MapFeed::new`], with the planner's last run in the counters.
    pub fn with_replans(
        options: MapOptions,
        replans: tokio::sync::watch::Receiver<Option<LastReplan>>,
    ) -> Self {
        MapFeed::build(options, Some(replans))
    }

    fn build(
        options: MapOptions,
        replans: Option<tokio::sync::watch::Receiver<Option<LastReplan>>>,
    ) -> Self {
        MapFeed {
            shared: Arc::new(Shared {
                options,
                clients: Mutex::default(),
                next_client: AtomicU64::new(1),
                stopped: CancellationToken::new(),
                replans,
            }),
        }
    }

    /// A new client; its first frame is a snapshot at the next tick.
    pub fn join(&self) -> MapClient {
        let id = self.shared.next_client.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(ClientQueue {
            state: Mutex::new(QueueState {
                wants_snapshot: true,
                closed: self.shared.stopped.is_cancelled(),
                ..QueueState::default()
            }),
            ready: Notify::new(),
        });
        let mut clients = lock(&self.shared.clients);
        clients.insert(id, queue.clone());
        metrics::gauge!(crate::metric::MAP_CLIENTS).set(clients.len() as f64);
        MapClient {
            id,
            queue,
            shared: self.shared.clone(),
        }
    }

    /// Every connected client's queue, by id.
    pub fn client_stats(&self) -> Vec<ClientStats> {
        let clients: Vec<_> = lock(&self.shared.clients)
            .iter()
            .map(|(id, q)| (*id, q.clone()))
            .collect();
        let mut stats: Vec<_> = clients
            .into_iter()
            .map(|(id, q)| {
                let s = lock(&q.state);
                ClientStats {
                    id,
                    queued_frames: s.frames.len(),
                    queued_bytes: s.frames.iter().map(|f| f.len()).sum(),
                    capacity: self.shared.options.queue_frames,
                    lagged: s.lagged,
                    dropped_frames: s.dropped_frames,
                    snapshots: s.snapshots,
                }
            })
            .collect();
        stats.sort_by_key(|s| s.id);
        stats
    }

    /// Keeps the view and feeds the clients until `stop`; then every client's `next` ends.
    pub async fn run(
        self,
        dispatch: Dispatch,
        positions: Arc<LatestPositions>,
        stop: CancellationToken,
    ) {
        let options = self.shared.options.clone();
        let mut changes = dispatch.subscribe();
        let mut moves = positions.subscribe();
        let mut view = View::build(&dispatch, &positions, &options);
        let mut version = 0u64;
        let mut tick = tokio::time::interval(options.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_recheck = Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                change = changes.recv() => match change {
                    Ok(change) => view.apply(change, &positions, dispatch.now()),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "The map feed missed changes; rebuilding its view.");
                        view = self.rebuild(&dispatch, &positions, &options);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                moved = moves.recv() => match moved {
                    Ok(p) => view.moved(p),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "The map feed missed positions; rebuilding its view.");
                        view = self.rebuild(&dispatch, &positions, &options);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    let now = dispatch.now();
                    if last_recheck.elapsed() >= options.recheck_every {
                        last_recheck = Instant::now();
                        view.recheck(now);
                    }
                    self.publish(&mut view, &mut version, now);
                }
            }
        }
        self.shared.stopped.cancel();
        for q in lock(&self.shared.clients).values() {
            lock(&q.state).closed = true;
            q.ready.notify_one();
        }
    }

    /// A fresh view, and a snapshot for every client.
    fn rebuild(
        &self,
        dispatch: &Dispatch,
        positions: &LatestPositions,
        options: &MapOptions,
    ) -> View {
        let mut view = View::build(dispatch, positions, options);
        // Delivered-today counts cannot be rebuilt from the state (it holds open orders only).
        view.delivered = Delivered::default();
        for q in lock(&self.shared.clients).values() {
            let mut s = lock(&q.state);
            s.frames.clear();
            s.lagged = false;
            s.wants_snapshot = true;
        }
        view
    }

    /// Turns what changed into one delta for every client, and a snapshot for those needing one.
    fn publish(&self, view: &mut View, version: &mut u64, now: OffsetDateTime) {
        view.release_positions();
        let last_replan = self.shared.replans.as_ref().and_then(|r| *r.borrow());
        let kpis = view.kpis(now, last_replan);
        let changed = !view.dirty_couriers.is_empty()
            || !view.dirty_orders.is_empty()
            || !view.removed_orders.is_empty()
            || kpis != view.last_kpis;
        let clients: Vec<_> = lock(&self.shared.clients).values().cloned().collect();
        let delta = if changed {
            *version += 1;
            let frame = (!clients.is_empty()).then(|| view.delta_frame(*version, &kpis, now));
            view.mark_sent();
            frame
        } else {
            None
        };
        view.last_kpis = kpis;
        let mut snapshot = None;
        let capacity = self.shared.options.queue_frames;
        for q in clients {
            let mut s = lock(&q.state);
            if s.closed {
                continue;
            }
            if s.wants_snapshot {
                let frame = snapshot
                    .get_or_insert_with(|| view.snapshot_frame(*version, now))
                    .clone();
                s.frames.clear();
                s.frames.push_back(frame);
                s.wants_snapshot = false;
                s.snapshots += 1;
            } else if s.lagged {
                continue;
            } else if let Some(delta) = &delta {
                if s.frames.len() >= capacity {
                    let dropped = s.frames.len() as u64;
                    s.frames.clear();
                    s.lagged = true;
                    s.dropped_frames += dropped;
                    metrics::counter!(crate::metric::MAP_FRAMES_DROPPED).increment(dropped);
                    continue;
                }
                s.frames.push_back(delta.clone());
            } else {
                continue;
            }
            drop(s);
            q.ready.notify_one();
        }
    }
}

/// A courier as the map holds it.
struct CourierEntry {
    record: Arc<CourierRecord>,
    position: Option<LatestPosition>,
    route: Option<Arc<RouteRecord>>,
    status: CourierStatus,
    /// The fix time of the position last sent, and the tick it was sent at.
    sent: Option<(OffsetDateTime, u64)>,
}

/// An open order as the map holds it.
struct OrderEntry {
    record: Arc<OrderRecord>,
    late: bool,
    at_risk: bool,
}

/// Orders delivered today since the feed started.
#[derive(Default)]
struct Delivered {
    day: Option<time::Date>,
    ids: HashSet<OrderId>,
    ctd_sum_s: f64,
}

/// The map's view and what changed in it since the last delta.
struct View {
    couriers: HashMap<CourierId, CourierEntry>,
    orders: HashMap<OrderId, OrderEntry>,
    /// Couriers to send in the next delta.
    dirty_couriers: HashSet<CourierId>,
    /// Couriers whose position moved but was not released yet (at most once per second).
    moved_couriers: HashSet<CourierId>,
    /// Orders to send in the next delta.
    dirty_orders: HashSet<OrderId>,
    /// Orders closed since the last delta.
    removed_orders: Vec<OrderId>,
    delivered: Delivered,
    /// The counters last sent.
    last_kpis: KpiView,
    /// Ticks published so far.
    tick: u64,
    /// `position_every` in ticks (at least one).
    position_ticks: u64,
    position_every: Duration,
    at_risk_within: time::Duration,
}

impl View {
    fn build(dispatch: &Dispatch, positions: &LatestPositions, options: &MapOptions) -> View {
        let now = dispatch.now();
        let (couriers, orders, routes) = dispatch.read(|s| {
            (
                s.couriers().cloned().collect::<Vec<_>>(),
                s.orders()
                    .filter(|o| o.is_open())
                    .cloned()
                    .collect::<Vec<_>>(),
                s.routes().cloned().collect::<Vec<_>>(),
            )
        });
        let mut latest: HashMap<_, _> = positions
            .all()
            .into_iter()
            .map(|p| (p.courier_id.clone(), p))
            .collect();
        let mut routes: HashMap<_, _> = routes
            .into_iter()
            .map(|r| (r.courier_id.clone(), Arc::new(r)))
            .collect();
        let mut view = View {
            couriers: HashMap::new(),
            orders: HashMap::new(),
            dirty_couriers: HashSet::new(),
            moved_couriers: HashSet::new(),
            dirty_orders: HashSet::new(),
            removed_orders: Vec::new(),
            delivered: Delivered::default(),
            last_kpis: KpiView::default(),
            tick: 0,
            position_ticks: options
                .position_every
                .as_nanos()
                .div_ceil(options.tick.as_nanos().max(1))
                .max(1) as u64,
            position_every: options.position_every,
            at_risk_within: options.at_risk_within,
        };
        for c in couriers {
            let position = latest.remove(&c.id);
            let route = routes.remove(&c.id);
            let status = status_of(&c, position.as_ref(), route.as_deref(), now);
            view.couriers.insert(
                c.id.clone(),
                CourierEntry {
                    record: Arc::new(c),
                    position,
                    route,
                    status,
                    sent: None,
                },
            );
        }
        for o in orders {
            let (late, at_risk) = view.risk(&o, now);
            view.orders.insert(
                o.id.clone(),
                OrderEntry {
                    record: Arc::new(o),
                    late,
                    at_risk,
                },
            );
        }
        view
    }

    /// Whether `order` is late and whether it is at risk, at `now`.
    fn risk(&self, order: &OrderRecord, now: OffsetDateTime) -> (bool, bool) {
        let late = order.is_late(now);
        let at_risk = !late
            && order.deliver_by.is_some_and(|by| {
                order.dropoff_eta.unwrap_or(now).max(now) > by - self.at_risk_within
            });
        (late, at_risk)
    }

    fn apply(&mut self, change: Change, positions: &LatestPositions, now: OffsetDateTime) {
        match change {
            Change::Order(order) => {
                if order.status == OrderStatus::Delivered {
                    self.count_delivered(&order);
                }
                if order.is_open() {
                    let (late, at_risk) = self.risk(&order, now);
                    self.dirty_orders.insert(order.id.clone());
                    self.orders.insert(
                        order.id.clone(),
                        OrderEntry {
                            record: order,
                            late,
                            at_risk,
                        },
                    );
                } else if self.orders.remove(&order.id).is_some() {
                    self.dirty_orders.remove(&order.id);
                    self.removed_orders.push(order.id.clone());
                }
            }
            Change::Courier(courier) => {
                let id = courier.id.clone();
                let entry = self
                    .couriers
                    .entry(id.clone())
                    .or_insert_with(|| CourierEntry {
                        record: courier.clone(),
                        position: positions.get(&id),
                        route: None,
                        status: CourierStatus::Offline,
                        sent: None,
                    });
                entry.record = courier;
                entry.status = entry.status_at(now);
                self.dirty_couriers.insert(id);
            }
            Change::Route(route) => {
                if let Some(entry) = self.couriers.get_mut(&route.courier_id) {
                    let id = route.courier_id.clone();
                    entry.route = Some(route);
                    entry.status = entry.status_at(now);
                    self.dirty_couriers.insert(id);
                }
            }
        }
    }

    fn moved(&mut self, p: LatestPosition) {
        if let Some(entry) = self.couriers.get_mut(&p.courier_id) {
            if entry.position.as_ref().is_some_and(|old| old.at >= p.at) {
                return;
            }
            self.moved_couriers.insert(p.courier_id.clone());
            entry.position = Some(p);
        }
    }

    fn count_delivered(&mut self, order: &OrderRecord) {
        let Some(at) = order.delivered_at else {
            return;
        };
        let day = at.to_offset(time::UtcOffset::UTC).date();
        let d = &mut self.delivered;
        if d.day.is_some_and(|known| day < known) {
            return;
        }
        if d.day != Some(day) {
            *d = Delivered {
                day: Some(day),
                ..Delivered::default()
            };
        }
        if d.ids.insert(order.id.clone()) {
            d.ctd_sum_s += (at - order.placed_at).as_seconds_f64();
        }
    }

    /// Moves the couriers whose position may go out now into the delta.
    fn release_positions(&mut self) {
        self.tick += 1;
        let (tick, position_ticks) = (self.tick, self.position_ticks);
        let fix_every =
            time::Duration::try_from(self.position_every).unwrap_or(time::Duration::SECOND);
        let couriers = &self.couriers;
        let dirty = &mut self.dirty_couriers;
        self.moved_couriers.retain(|id| {
            let Some(entry) = couriers.get(id) else {
                return false;
            };
            let due = match (&entry.sent, &entry.position) {
                (None, _) | (_, None) => true,
                (Some((fix, sent_tick)), Some(p)) => {
                    p.at - *fix >= fix_every || tick - *sent_tick >= position_ticks
                }
            };
            if due {
                dirty.insert(id.clone());
            }
            !due
        });
    }

    /// Time-dependent fields again: couriers gone offline, orders become late or at risk.
    fn recheck(&mut self, now: OffsetDateTime) {
        for (id, entry) in &mut self.couriers {
            let status = entry.status_at(now);
            if status != entry.status {
                entry.status = status;
                self.dirty_couriers.insert(id.clone());
            }
        }
        let at_risk_within = self.at_risk_within;
        for (id, entry) in &mut self.orders {
            let late = entry.record.is_late(now);
            let at_risk = !late
                && entry.record.deliver_by.is_some_and(|by| {
                    entry.record.dropoff_eta.unwrap_or(now).max(now) > by - at_risk_within
                });
            if (late, at_risk) != (entry.late, entry.at_risk) {
                entry.late = late;
                entry.at_risk = at_risk;
                self.dirty_orders.insert(id.clone());
            }
        }
    }

    fn kpis(&self, now: OffsetDateTime, last_replan: Option<LastReplan>) -> KpiView {
        let mut k = KpiView {
            open_orders: self.orders.len(),
            last_replan_at: last_replan.map(|r| crate::dispatch::events::rfc3339(r.at)),
            last_replan_ms: last_replan.map(|r| r.solve_time.as_secs_f64() * 1000.0),
            ..KpiView::default()
        };
        for o in self.orders.values() {
            if o.record.courier_id.is_none() {
                k.unassigned += 1;
                let reason = o.record.unassigned_reason.as_deref().unwrap_or("none");
                *k.unassigned_by_reason
                    .entry(reason.to_string())
                    .or_default() += 1;
            }
            k.late += usize::from(o.late);
            k.at_risk += usize::from(o.at_risk);
        }
        for c in self.couriers.values() {
            k.couriers_on_shift += usize::from(c.record.on_shift);
            k.couriers_idle += usize::from(c.status == CourierStatus::Idle);
            k.couriers_connected += usize::from(
                c.position
                    .as_ref()
                    .is_some_and(|p| now - p.at <= POSITION_FRESH_FOR),
            );
        }
        let today = now.to_offset(time::UtcOffset::UTC).date();
        if self.delivered.day == Some(today) && !self.delivered.ids.is_empty() {
            k.delivered_today = self.delivered.ids.len() as u64;
            k.ctd_mean_s_today = Some(self.delivered.ctd_sum_s / self.delivered.ids.len() as f64);
        }
        k
    }

    fn courier_view(entry: &CourierEntry) -> MapCourierView {
        MapCourierView::of(
            &entry.record,
            entry.position.as_ref(),
            entry.route.as_deref(),
            entry.status,
        )
    }

    fn delta_frame(&self, version: u64, kpis: &KpiView, now: OffsetDateTime) -> Frame {
        let frame = DeltaFrame {
            kind: "delta",
            version,
            now: crate::dispatch::events::rfc3339(now),
            couriers: self
                .dirty_couriers
                .iter()
                .filter_map(|id| self.couriers.get(id))
                .map(View::courier_view)
                .collect(),
            orders: self
                .dirty_orders
                .iter()
                .filter_map(|id| self.orders.get(id))
                .map(|o| MapOrderView::of(&o.record, o.late, o.at_risk))
                .collect(),
            removed_orders: self
                .removed_orders
                .iter()
                .map(|id| id.to_string())
                .collect(),
            kpis,
        };
        to_frame(&frame)
    }

    fn snapshot_frame(&self, version: u64, now: OffsetDateTime) -> Frame {
        let frame = SnapshotFrame {
            kind: "snapshot",
            version,
            now: crate::dispatch::events::rfc3339(now),
            couriers: self.couriers.values().map(View::courier_view).collect(),
            orders: self
                .orders
                .values()
                .map(|o| MapOrderView::of(&o.record, o.late, o.at_risk))
                .collect(),
            kpis: &self.last_kpis,
        };
        to_frame(&frame)
    }

    /// Forgets what the last delta carried.
    fn mark_sent(&mut self) {
        for id in self.dirty_couriers.drain() {
            if let Some(entry) = self.couriers.get_mut(&id) {
                if let Some(p) = &entry.position {
                    entry.sent = Some((p.at, self.tick));
                }
                self.moved_couriers.remove(&id);
            }
        }
        self.dirty_orders.clear();
        self.removed_orders.clear();
    }
}

impl CourierEntry {
    fn status_at(&self, now: OffsetDateTime) -> CourierStatus {
        status_of(
            &self.record,
            self.position.as_ref(),
            self.route.as_deref(),
            now,
        )
    }
}

fn to_frame(frame: &impl Serialize) -> Frame {
    // Serialising these plain structs (strings, numbers, maps with string keys) cannot fail.
    Utf8Bytes::from(serde_json::to_string(frame).expect("a map frame serialises"))
}
