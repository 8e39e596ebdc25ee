//! A simulated courier's phone: it registers, goes on shift, then on the simulated clock follows
//! its route at its vehicle's speed, reports positions, taps `arrived` at each stop, waits for
//! the food at a pickup, taps `picked_up`, then `delivered` at the drop-off. Each event has a
//! client id and is resent with the same id until the service answers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use optimizer::model::CourierId;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::city::{CourierSpec, Point, speed_mps, within};
use super::link::{Event, EventError, Fix, Http, Link, Route, Stop, StopKind, TransportPlan};
use super::probe::OrderProbe;
use super::{Endpoints, SimCounters};

/// Gives a courier's API token: the demo mints them in memory, tests against `serve` create them
/// in the database.
pub type TokenSource =
    Arc<dyn Fn(CourierId) -> BoxFuture<'static, anyhow::Result<String>> + Send + Sync>;

/// How the simulated phones behave.
#[derive(Clone, Debug, PartialEq)]
pub struct CourierOptions {
    /// Which transport each phone uses.
    pub transport: TransportPlan,
    /// A position every this much simulated time...
    pub report_every: Duration,
    /// ...but at most once per this much wall time (high speedups).
    pub min_report_wall: Duration,
    /// How often a REST phone fetches its route (wall time).
    pub route_poll: Duration,
    /// Time spent handing food over at a drop-off, and at least at a pickup (simulated).
    pub handover: Duration,
    /// When set, couriers go off shift once this time has passed and their hands are empty.
    pub shift_ends_at: Option<OffsetDateTime>,
    /// When set, a socket phone drops its connection this often (wall time) and resumes with
    /// `since`.
    pub drop_connection_every: Option<Duration>,
    /// Share of the socket phones that drop their connection (when `drop_connection_every` is
    /// set); each starts at a random point of the period.
    pub drop_share: f64,
    /// Share of drop-offs where the customer cannot be found: the phone taps `failed` with a
    /// reason instead of `delivered`.
    pub fail_share: f64,
    /// Share of couriers who end their shift early, at a random moment within `leave_within`
    /// of the start (simulated time), once their hands are empty.
    pub leave_share: f64,
    /// See `leave_share`.
    pub leave_within: Duration,
}

impl Default for CourierOptions {
    fn default() -> Self {
        CourierOptions {
            transport: super::Transport::mixed(1),
            report_every: Duration::from_secs(1),
            min_report_wall: Duration::from_secs(1),
            route_poll: Duration::from_secs(2),
            handover: Duration::from_secs(60),
            shift_ends_at: None,
            drop_connection_every: None,
            drop_share: 1.0,
            fail_share: 0.0,
            leave_share: 0.0,
            leave_within: Duration::ZERO,
        }
    }
}

/// Moves `distance_m` from `from` straight towards `to`; returns the new point and whether `to`
/// was reached.
pub fn step_towards(from: Point, to: Point, distance_m: f64) -> (Point, bool) {
    let left = from.distance_m(to);
    if left <= distance_m.max(0.5) {
        return (to, true);
    }
    let (dx, dy) = from.offset_m(to);
    let f = distance_m / left;
    (from.moved_m(dx * f, dy * f), false)
}

/// What the phones share.
pub(crate) struct Shared {
    pub http: reqwest::Client,
    pub endpoints: Endpoints,
    pub tokens: TokenSource,
    pub clock: service::clock::Clock,
    pub options: CourierOptions,
    pub counters: Arc<SimCounters>,
    pub probe: Arc<OrderProbe>,
}

/// Retries `f` until it succeeds or `shutdown`; `None` when shut down.
async fn retrying<T, F, Fut>(what: &str, shutdown: &CancellationToken, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut pause = Duration::from_millis(200);
    loop {
        match f().await {
            Ok(v) => return Some(v),
            Err(error) => tracing::debug!(
                error = format!("{error:#}"),
                what,
                "A simulated phone retries."
            ),
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

async fn staff_json(
    shared: &Shared,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = shared
        .http
        .request(method, format!("{}{path}", shared.endpoints.base))
        .bearer_auth(&shared.endpoints.staff_token)
        .timeout(Duration::from_secs(10));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Registers `spec` (or finds it, when its device id is already registered); returns its id.
async fn register(shared: &Shared, spec: &CourierSpec) -> anyhow::Result<String> {
    let body = json!({"name": spec.name, "vehicle": spec.vehicle, "device_id": spec.device_id});
    let (status, answer) =
        staff_json(shared, reqwest::Method::POST, "/v1/couriers", Some(body)).await?;
    match status {
        201 => answer["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("no id in {answer}")),
        409 => {
            let (_, list) = staff_json(shared, reqwest::Method::GET, "/v1/couriers", None).await?;
            list["couriers"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["device_id"] == spec.device_id.as_str())
                .and_then(|c| c["id"].as_str())
                .map(str::to_string)
                .ok_or_else(|| anyhow::anyhow!("device {} taken by nobody listed", spec.device_id))
        }
        _ => anyhow::bail!("registering answered {status}: {answer}"),
    }
}

async fn shift(shared: &Shared, id: &str, on: bool) -> anyhow::Result<()> {
    let state = if on { "on" } else { "off" };
    let (status, answer) = staff_json(
        shared,
        reqwest::Method::POST,
        &format!("/v1/couriers/{id}/shift"),
        Some(json!({"state": state})),
    )
    .await?;
    anyhow::ensure!(status == 200, "shift {state} answered {status}: {answer}");
    Ok(())
}

/// An event waiting for the service's answer.
struct Pending {
    event: Event,
    /// The stop it is about.
    stop: (String, StopKind),
    /// Whether it finishes the stop (`arrived` does not).
    completes: bool,
    /// Not before (wall time): the backoff after a failed send.
    next_try: Instant,
}

/// The phone's state on the road.
struct Phone {
    spec: CourierSpec,
    position: Point,
    /// The service's latest route.
    route: Option<Route>,
    /// Stops this phone finished (or the service refused): skipped even while the service
    /// still lists them.
    done: HashSet<(String, StopKind)>,
    /// Stops where `arrived` was tapped.
    arrived: HashSet<(String, StopKind)>,
    /// When the phone reached the stop it is at (simulated).
    at_stop_since: Option<OffsetDateTime>,
    /// Orders picked up and not yet delivered.
    in_hand: HashSet<String>,
    pending: Option<Pending>,
    /// Numbers client ids.
    events: u64,
    /// Where an idle courier drifts to: couriers without work keep moving slowly around their
    /// start, as real ones look for a spot near the restaurants.
    roam: Option<Point>,
    /// Draws roaming spots.
    rng: ChaCha8Rng,
}

/// How far from its start an idle courier roams.
const ROAM_RADIUS_M: f64 = 400.0;
/// An idle courier's share of its vehicle's speed.
const ROAM_SPEED: f64 = 0.3;

impl Phone {
    fn target(&self) -> Option<&Stop> {
        self.route
            .as_ref()?
            .stops
            .iter()
            .find(|s| !self.done.contains(&(s.order_id.clone(), s.kind)))
    }

    fn event(&mut self, stop: &Stop, kind: &'static str, completes: bool) {
        self.events += 1;
        let reason = (kind == "failed").then(|| "customer not found at the door".to_string());
        self.pending = Some(Pending {
            event: Event {
                client_id: format!("{}-e{}", self.spec.device_id, self.events),
                order_id: stop.order_id.clone(),
                kind,
                reason,
            },
            stop: (stop.order_id.clone(), stop.kind),
            completes,
            next_try: Instant::now(),
        });
    }
}

/// One phone, from registration until `shutdown` (or the end of its shift).
pub(crate) async fn run_courier(
    spec: CourierSpec,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let Some(id) = retrying("register", &shutdown, || register(&shared, &spec)).await else {
        return;
    };
    let Some(courier_id) = CourierId::parse(&id).ok() else {
        tracing::warn!(id, "The service gave a courier id the model refuses.");
        return;
    };
    if retrying("shift on", &shutdown, || shift(&shared, &id, true))
        .await
        .is_none()
    {
        return;
    }
    let Some(token) = retrying("token", &shutdown, || (shared.tokens)(courier_id.clone())).await
    else {
        return;
    };
    shared.counters.bump(&shared.counters.couriers_on_shift);
    let transport = shared.options.transport.for_courier(spec.index);
    let mut link = Link::new(
        transport,
        Http {
            client: shared.http.clone(),
            base: shared.endpoints.base.clone(),
            osmand: shared.endpoints.osmand.clone(),
            token,
            courier_id: id.clone(),
            device_id: spec.device_id.clone(),
            probe: shared.probe.clone(),
        },
        shared.options.route_poll,
        shutdown.clone(),
    );
    let clock = shared.clock;
    let options = &shared.options;
    let counters = &shared.counters;
    let speed = speed_mps(spec.vehicle);
    let spec_index_seed = spec.index as u64;
    let mut phone = Phone {
        position: spec.start,
        spec,
        route: None,
        done: HashSet::new(),
        arrived: HashSet::new(),
        at_stop_since: None,
        in_hand: HashSet::new(),
        pending: None,
        events: 0,
        roam: None,
        rng: ChaCha8Rng::seed_from_u64(0x5eed ^ spec_index_seed),
    };
    let tick = clock
        .wall(Duration::from_secs(1))
        .clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = clock.now();
    let mut last_report: Option<(OffsetDateTime, Instant)> = None;
    // This phone's draws: whether (and from when) it drops its connection, and whether it
    // leaves early.
    let drops = options
        .drop_connection_every
        .filter(|_| phone.rng.random_bool(options.drop_share.clamp(0.0, 1.0)));
    let mut last_drop = match drops {
        Some(every) => Instant::now()
            .checked_sub(every.mul_f64(phone.rng.random::<f64>()))
            .unwrap_or_else(Instant::now),
        None => Instant::now(),
    };
    let leaves_at = phone
        .rng
        .random_bool(options.leave_share.clamp(0.0, 1.0))
        .then(|| last + options.leave_within.mul_f64(phone.rng.random::<f64>()));
    let shift_ends_at = match (options.shift_ends_at, leaves_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut heading = 0.0;
    let mut moving = false;
    let mut reconnects = 0;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let now = clock.now();
        let dt = (now - last).as_seconds_f64().max(0.0);
        last = now;

        if let Some(every) = drops
            && last_drop.elapsed() >= every
        {
            last_drop = Instant::now();
            link.drop_connection();
        }
        let seen = link.reconnects();
        if seen > reconnects {
            counters.add(&counters.reconnects, seen - reconnects);
            reconnects = seen;
        }
        match link.route().await {
            Ok(Some(route)) => {
                counters.bump(&counters.routes_received);
                phone.route = Some(route);
            }
            Ok(None) => {}
            Err(error) => tracing::debug!(
                error = format!("{error:#}"),
                "A simulated phone missed its route."
            ),
        }

        if let Some(pending) = &phone.pending {
            if pending.next_try <= Instant::now() {
                let event = pending.event.clone();
                match link.event(&event).await {
                    Ok(()) => {
                        counters.bump(&counters.events_sent);
                        let pending = phone.pending.take();
                        match event.kind {
                            "picked_up" => {
                                counters.bump(&counters.picked_up);
                                phone.in_hand.insert(event.order_id.clone());
                            }
                            "delivered" => {
                                counters.bump(&counters.delivered);
                                phone.in_hand.remove(&event.order_id);
                            }
                            "failed" => {
                                counters.bump(&counters.failed);
                                phone.in_hand.remove(&event.order_id);
                            }
                            _ => {}
                        }
                        if let Some(p) = pending {
                            if p.completes {
                                phone.done.insert(p.stop);
                                phone.at_stop_since = None;
                            } else {
                                phone.arrived.insert(p.stop);
                            }
                        }
                    }
                    Err(EventError::Refused(why)) => {
                        counters.bump(&counters.events_refused);
                        tracing::debug!(order_id = %event.order_id, kind = event.kind, why, "A simulated event was refused; skipping the stop.");
                        if let Some(p) = phone.pending.take() {
                            let stop_kind = p.stop.1;
                            phone.done.insert(p.stop);
                            if stop_kind == StopKind::Pickup {
                                phone
                                    .done
                                    .insert((event.order_id.clone(), StopKind::Dropoff));
                            }
                            phone.in_hand.remove(&event.order_id);
                            phone.at_stop_since = None;
                        }
                    }
                    Err(EventError::Transport(error)) => {
                        tracing::debug!(
                            error = format!("{error:#}"),
                            "A simulated event is resent."
                        );
                        if let Some(p) = &mut phone.pending {
                            p.next_try = Instant::now() + Duration::from_secs(1);
                        }
                    }
                }
            }
        } else if let Some(stop) = phone.target().cloned() {
            let key = (stop.order_id.clone(), stop.kind);
            let (next, reached) = step_towards(phone.position, stop.point(), speed * dt);
            if next != phone.position {
                heading = phone.position.bearing_deg(next);
            }
            moving = !reached;
            phone.position = next;
            if reached {
                let since = *phone.at_stop_since.get_or_insert(now);
                if !phone.arrived.contains(&key) {
                    phone.event(&stop, "arrived", false);
                } else {
                    let handed = now - since >= options.handover;
                    match stop.kind {
                        StopKind::Pickup => {
                            let ready = stop.ready_at.is_none_or(|r| now >= r);
                            if ready && now - since >= options.handover / 2 {
                                phone.event(&stop, "picked_up", true);
                            }
                        }
                        StopKind::Dropoff if handed => {
                            let kind = if phone.rng.random_bool(options.fail_share.clamp(0.0, 1.0))
                            {
                                "failed"
                            } else {
                                "delivered"
                            };
                            phone.event(&stop, kind, true);
                        }
                        StopKind::Dropoff => {}
                    }
                }
            } else {
                phone.at_stop_since = None;
            }
        } else {
            moving = false;
            if phone.in_hand.is_empty() && phone.target().is_none() {
                let spot = *phone
                    .roam
                    .get_or_insert_with(|| within(&mut phone.rng, phone.spec.start, ROAM_RADIUS_M));
                let (next, reached) = step_towards(phone.position, spot, speed * ROAM_SPEED * dt);
                if next != phone.position {
                    heading = phone.position.bearing_deg(next);
                }
                phone.position = next;
                moving = !reached;
                if reached {
                    phone.roam = None;
                }
            }
            if let Some(end) = shift_ends_at
                && now >= end
                && phone.in_hand.is_empty()
            {
                if retrying("shift off", &shutdown, || shift(&shared, &id, false))
                    .await
                    .is_some()
                {
                    counters.bump(&counters.shifts_ended);
                }
                return;
            }
        }

        let due = last_report.is_none_or(|(sim, wall)| {
            now - sim >= options.report_every && wall.elapsed() >= options.min_report_wall
        });
        if due {
            last_report = Some((now, Instant::now()));
            let fix = Fix {
                at: phone.position,
                time: now,
                speed_mps: if moving { speed } else { 0.0 },
                heading_deg: heading,
            };
            match link.positions(&[fix]).await {
                Ok(stored) => {
                    counters.bump(&counters.positions_sent);
                    counters.add(&counters.positions_stored, stored);
                }
                Err(error) => tracing::debug!(
                    error = format!("{error:#}"),
                    "A simulated position was not sent."
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_courier_moves_along_its_route_at_its_speed() {
        let a = Point {
            lat: 60.17,
            lon: 24.94,
        };
        let b = a.moved_m(1_000.0, 0.0);
        assert!((a.distance_m(b) - 1_000.0).abs() < 1.0);
        let speed = speed_mps(crate::api::couriers::Vehicle::Bike);
        let mut at = a;
        let mut seconds = 0;
        loop {
            let (next, reached) = step_towards(at, b, speed);
            assert!(at.distance_m(next) <= speed + 1e-6);
            at = next;
            seconds += 1;
            if reached {
                break;
            }
        }
        // 1 km at 15 km/h is 240 s (one more for rounding).
        assert!((240..=241).contains(&seconds), "{seconds}");
        assert_eq!(at, b);
        assert!((a.bearing_deg(b) - 90.0).abs() < 0.5);
        let (half, reached) = step_towards(a, b, 500.0);
        assert!(!reached);
        assert!((half.distance_m(a) - 500.0).abs() < 1.0);
        assert!((half.distance_m(b) - 500.0).abs() < 1.0);
    }
}
