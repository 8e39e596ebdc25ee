//! The planner loop: the bridge from the committed state to `optimizer::replan` and back.
//!
//! It runs on a timer (default 5 s) and when [`Dispatch`] signals a change, waiting a short
//! debounce so a burst of events makes one run, and never runs twice at once. The solve runs on
//! a dedicated rayon pool, never on the async runtime; its answer is applied against the state
//! as it is by then (an order delivered or pinned elsewhere meanwhile keeps what it has), in
//! one batch with its outbox events.
//!
//! The loop plans one zone; a zone is a filter over restaurants, couriers and orders (one zone,
//! everything, by default), so several processes could each plan their own.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use optimizer::model::{
    Capacity, Courier, CourierId, Location, Order, OrderId, OrderStatus, Plan, Route,
    ScheduledStop, Seconds, Size, Stop, Time, TimeWindow, UnassignedReason, Vehicle,
};
use optimizer::{
    Budget, CityState, ExplainError, ProblemError, ReplanConfig, Replanned, TravelError,
    TravelModel, explain, replan,
};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracker::LatestPositions;

use crate::dispatch::{Dispatch, State};
use crate::metric;
use crate::records::{CourierRecord, OrderRecord};

/// Settings of the planner loop.
#[derive(Clone, Debug)]
pub struct PlannerConfig {
    /// Replan at least this often.
    pub interval: Duration,
    /// After a signal, wait this long for more before planning.
    pub debounce: Duration,
    /// Wall-clock budget of one solve.
    pub budget: Duration,
    /// Budget of a run started for a new order or a staff correction: the new order is placed
    /// in the plan before the search begins, so a short search commits it soon. Any run is
    /// cut short by such a trigger once it has run this long.
    pub quick_budget: Duration,
    /// Publish `order.pickup_eta` again when the ETA moved by more than this.
    pub eta_threshold: Duration,
    /// A new route version is made when a stop's ETA moved by more than this.
    pub route_eta_threshold: Duration,
    /// Solver iterations per open order (at least `min_iterations` in all).
    pub iterations_per_order: u64,
    /// The floor of solver iterations.
    pub min_iterations: u64,
    /// Threads of the solver's pool.
    pub threads: usize,
    /// Time at the restaurant (parking, handover).
    pub pickup_service: Duration,
    /// Time at the customer.
    pub dropoff_service: Duration,
    /// A courier's position older than this does not count as known.
    pub position_max_age: Duration,
    /// The replanning rules and objective.
    pub replan: ReplanConfig,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        PlannerConfig {
            interval: Duration::from_secs(5),
            debounce: Duration::from_millis(100),
            budget: Duration::from_millis(800),
            quick_budget: Duration::from_millis(150),
            eta_threshold: Duration::from_secs(60),
            route_eta_threshold: Duration::from_secs(30),
            iterations_per_order: 40,
            min_iterations: 400,
            threads: default_threads(),
            pickup_service: Duration::from_secs(120),
            dropoff_service: Duration::from_secs(120),
            position_max_age: Duration::from_secs(600),
            replan: ReplanConfig::default(),
        }
    }
}

/// The solver's threads by default: every core but one, which the service keeps for its I/O
/// (sockets, ingest, commits), so a busy planner never starves what users wait on; one on a
/// machine of one or two cores.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// A wall-clock budget for the solver, over as soon as an urgent trigger is pending and the
/// run has lasted `interruptible_after`.
struct Deadline {
    started: Instant,
    budget: Duration,
    interruptible_after: Duration,
    signal: Arc<crate::dispatch::PlannerSignal>,
}

impl Budget for Deadline {
    fn used(&self) -> f64 {
        let elapsed = self.started.elapsed();
        if elapsed >= self.interruptible_after && self.signal.is_urgent() {
            return 1.05;
        }
        elapsed.as_secs_f64() / self.budget.as_secs_f64().max(1e-3)
    }
}

/// The optimizer's clock: seconds since the Unix epoch.
pub fn to_time(t: OffsetDateTime) -> Time {
    let secs = t.unix_timestamp_nanos() as f64 / 1e9;
    Time::from_secs(secs.max(0.0)).expect("a finite, non-negative number of seconds")
}

/// Back from the optimizer's clock (saturating far outside the calendar).
pub fn from_time(t: Time) -> OffsetDateTime {
    let nanos = (f64::from(t) * 1e9) as i128;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The solver's input, copied out of the state so the lock is held only briefly.
pub struct PlanInput {
    /// When.
    pub now: OffsetDateTime,
    /// Couriers that can take work (with a known position).
    pub couriers: Vec<Courier>,
    /// Orders the solver may place or keep.
    pub orders: Vec<Order>,
    /// The current routes as a plan.
    pub previous: Plan,
    /// Staff pins.
    pub pins: HashMap<OrderId, CourierId>,
    /// Moves so far.
    pub moves: HashMap<OrderId, u32>,
    /// Why orders that need a courier cannot be planned at all (no solve needed for them).
    pub waiting: Vec<(OrderId, &'static str)>,
}

/// Builds the solver's input from the state.
pub fn plan_input(
    state: &State,
    positions: &LatestPositions,
    config: &PlannerConfig,
    now: OffsetDateTime,
) -> PlanInput {
    let now_t = to_time(now);
    let mut onboard: HashMap<&CourierId, Vec<OrderId>> = HashMap::new();
    for o in state.orders() {
        if o.status == OrderStatus::PickedUp
            && let Some(c) = &o.courier_id
        {
            onboard.entry(c).or_default().push(o.id.clone());
        }
    }
    let mut couriers = Vec::new();
    let mut on_shift = 0;
    for c in state.couriers() {
        let carrying = onboard.get(&c.id);
        if !c.on_shift && carrying.is_none() {
            continue;
        }
        on_shift += usize::from(c.on_shift);
        let Some(position) = positions.get(&c.id) else {
            continue;
        };
        if now - position.at > config.position_max_age {
            continue;
        }
        if let Some(courier) = courier_model(c, position.coords.into(), carrying, now_t, now) {
            couriers.push(courier);
        }
    }
    let planned: std::collections::HashSet<&CourierId> = couriers.iter().map(|c| c.id()).collect();
    let mut orders = Vec::new();
    let mut waiting = Vec::new();
    let mut pins = HashMap::new();
    let mut moves = HashMap::new();
    for o in state.orders() {
        let courier_planned = o.courier_id.as_ref().is_some_and(|c| planned.contains(c));
        // Food on board or pinned to a courier the solver cannot see stays as it is.
        if (o.status == OrderStatus::PickedUp || o.pinned) && !courier_planned {
            continue;
        }
        if couriers.is_empty() {
            if o.status == OrderStatus::Created {
                waiting.push((
                    o.id.clone(),
                    if on_shift == 0 {
                        "no_courier_on_shift"
                    } else {
                        "no_courier_position"
                    },
                ));
            }
            continue;
        }
        if let Some(order) = order_model(o, config) {
            if o.pinned
                && let Some(c) = &o.courier_id
            {
                pins.insert(o.id.clone(), c.clone());
            }
            if o.moves > 0 {
                moves.insert(o.id.clone(), o.moves);
            }
            orders.push(order);
        }
    }
    let previous = previous_plan(state, &planned, &orders);
    PlanInput {
        now,
        couriers,
        orders,
        previous,
        pins,
        moves,
        waiting,
    }
}

/// The optimizer's courier for a record at `position`.
fn courier_model(
    c: &CourierRecord,
    position: Location,
    carrying: Option<&Vec<OrderId>>,
    now_t: Time,
    now: OffsetDateTime,
) -> Option<Courier> {
    let end = match c.shift_ends_at {
        Some(end) if c.on_shift && end > now => end,
        _ if c.on_shift => now + Duration::from_secs(12 * 3600),
        // Off shift but carrying food: time enough to deliver it.
        _ => now + Duration::from_secs(3 * 3600),
    };
    let vehicle = Vehicle::new(
        c.vehicle,
        c.vehicle.default_speed_mps(),
        Capacity::new(i64::from(c.capacity)).ok()?,
    )
    .ok()?;
    let shift = TimeWindow::new(now_t, to_time(end)).ok()?;
    Courier::builder(c.id.clone(), vehicle, shift, position)
        .available_at(now_t)
        .onboard(carrying.cloned().unwrap_or_default())
        .build()
        .ok()
}

/// The optimizer's order for a record.
fn order_model(o: &OrderRecord, config: &PlannerConfig) -> Option<Order> {
    let mut b = Order::builder(
        o.id.clone(),
        o.restaurant_id.clone(),
        o.restaurant.into(),
        o.dropoff.into(),
        to_time(o.placed_at),
    )
    .ready_at(to_time(o.ready_at.max(o.placed_at)))
    .service(
        Seconds::new(config.pickup_service.as_secs_f64()).ok()?,
        Seconds::new(config.dropoff_service.as_secs_f64()).ok()?,
    )
    .size(Size::new(i64::from(o.size)).ok()?)
    .status(o.status);
    if let Some(by) = o.deliver_by {
        b = b.deliver_by(to_time(by.max(o.ready_at)));
    }
    b.build().ok()
}

/// The current routes as the optimizer's plan, keeping only what it can still use.
fn previous_plan(
    state: &State,
    planned: &std::collections::HashSet<&CourierId>,
    orders: &[Order],
) -> Plan {
    let known: std::collections::HashSet<&OrderId> = orders.iter().map(|o| o.id()).collect();
    let mut routes = Vec::new();
    for r in state.routes() {
        if !planned.contains(&r.courier_id) || r.stops.is_empty() {
            continue;
        }
        let stops: Vec<ScheduledStop> = r
            .stops
            .iter()
            .filter(|s| known.contains(&s.order_id))
            .filter(|s| {
                state
                    .order(&s.order_id)
                    .is_some_and(|o| o.courier_id.as_ref() == Some(&r.courier_id))
            })
            .map(|s| ScheduledStop {
                stop: Stop {
                    order: s.order_id.clone(),
                    kind: s.kind,
                },
                arrival: to_time(s.eta),
                service_start: to_time(s.eta),
                departure: to_time(s.departs_at.max(s.eta)),
            })
            .collect();
        if !stops.is_empty() {
            routes.push(Route {
                courier: r.courier_id.clone(),
                stops,
            });
        }
    }
    Plan {
        routes,
        unassigned: Vec::new(),
    }
}

/// The stored name of an unassigned reason.
pub fn reason_name(reason: UnassignedReason) -> &'static str {
    reason.as_str()
}

/// What one planning run did, for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunReport {
    /// Orders considered.
    pub orders: usize,
    /// Couriers considered.
    pub couriers: usize,
    /// Orders left without a courier.
    pub unassigned: usize,
    /// Routes given a new version.
    pub changed_routes: usize,
    /// Solver iterations.
    pub iterations: u64,
    /// Wall time of the solve.
    pub solve_time: Duration,
}

/// The last planning run, as the support map shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LastReplan {
    /// When it ran (the service's clock).
    pub at: OffsetDateTime,
    /// How long its solve took (zero when there was nothing to plan).
    pub solve_time: Duration,
}

/// The planner loop.
pub struct Planner {
    dispatch: Dispatch,
    positions: Arc<LatestPositions>,
    travel: Arc<dyn TravelModel>,
    config: PlannerConfig,
    pool: Arc<rayon::ThreadPool>,
    /// The last successful run, for whoever watches (the map's counters).
    last: tokio::sync::watch::Sender<Option<LastReplan>>,
}

impl Planner {
    /// A planner over `dispatch`, reading couriers' positions from `positions`.
    ///
    /// # Errors
    /// When the solver's thread pool cannot be created.
    pub fn new(
        dispatch: Dispatch,
        positions: Arc<LatestPositions>,
        travel: Arc<dyn TravelModel>,
        config: PlannerConfig,
    ) -> Result<Planner, rayon::ThreadPoolBuildError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads.max(1))
            .thread_name(|i| format!("solver-{i}"))
            .build()?;
        Ok(Planner {
            dispatch,
            positions,
            travel,
            config,
            pool: Arc::new(pool),
            last: tokio::sync::watch::Sender::new(None),
        })
    }

    /// Follows the last successful run.
    pub fn last_replan(&self) -> tokio::sync::watch::Receiver<Option<LastReplan>> {
        self.last.subscribe()
    }

    /// What the candidates endpoint needs to explain an order with this planner's input, rules,
    /// travel model and pool.
    pub fn explainer(&self) -> Explainer {
        Explainer {
            positions: self.positions.clone(),
            travel: self.travel.clone(),
            config: self.config.clone(),
            pool: self.pool.clone(),
        }
    }

    /// Runs until `shutdown`: a plan at start, then on signals (debounced) and on the timer.
    pub async fn run(self, shutdown: CancellationToken) {
        let signal = self.dispatch.planner_signal();
        let mut timer = tokio::time::interval(self.config.interval);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = timer.tick() => {}
                _ = signal.wait() => {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(self.config.debounce) => {}
                    }
                }
            }
            // Everything asked for until now is covered by this run (`wait` left its reasons
            // pending; take them with any that came during the debounce).
            let triggers = signal.take();
            let urgent = triggers.iter().any(|t| t.is_urgent());
            let budget = if urgent {
                self.config.quick_budget.min(self.config.budget)
            } else {
                self.config.budget
            };
            match self.run_with(budget).await {
                Ok(report) => tracing::debug!(?report, "Replanned."),
                Err(error) => tracing::warn!(%error, "Replanning failed; the next run retries."),
            }
            timer.reset();
        }
        tracing::info!("Planner stopped.");
    }

    /// One planning run with the full budget: solve on the pool, apply the answer.
    ///
    /// # Errors
    /// When the solver failed or panicked, or applying the plan failed (storage down).
    pub async fn run_once(&self) -> anyhow::Result<RunReport> {
        self.run_with(self.config.budget).await
    }

    /// One planning run within `budget` (cut short by an urgent trigger).
    ///
    /// # Errors
    /// As [`Planner::run_once`].
    async fn run_with(&self, budget: Duration) -> anyhow::Result<RunReport> {
        self.dispatch.reload_if_stale().await;
        let now = self.dispatch.now();
        let input = self
            .dispatch
            .read(|s| plan_input(s, &self.positions, &self.config, now));
        let mut report = RunReport {
            orders: input.orders.len(),
            couriers: input.couriers.len(),
            ..RunReport::default()
        };
        metrics::gauge!(metric::PLANNER_OPEN_ORDERS)
            .set(self.dispatch.read(|s| s.orders().count()) as f64);
        if input.orders.is_empty() {
            let changed = self
                .dispatch
                .apply_plan(None, &input.waiting, now, &self.config)
                .await?;
            report.unassigned = input.waiting.len();
            report.changed_routes = changed;
            metrics::gauge!(metric::PLANNER_UNASSIGNED).set(report.unassigned as f64);
            self.last.send_replace(Some(LastReplan {
                at: now,
                solve_time: Duration::ZERO,
            }));
            return Ok(report);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let travel = self.travel.clone();
        let mut config = self.config.replan.clone();
        config.solver.max_iterations = Some(
            (self.config.iterations_per_order * input.orders.len() as u64)
                .max(self.config.min_iterations),
        );
        let interruptible_after = self.config.quick_budget.min(budget);
        let signal = self.dispatch.planner_signal();
        let pool = self.pool.clone();
        let input = Arc::new(input);
        let job = input.clone();
        pool.spawn(move || {
            let started = Instant::now();
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let deadline = Deadline {
                    started,
                    budget,
                    interruptible_after,
                    signal,
                };
                let state = CityState {
                    now: to_time(job.now),
                    couriers: &job.couriers,
                    orders: &job.orders,
                    previous: &job.previous,
                    pins: &job.pins,
                    moves: &job.moves,
                };
                replan(&state, &config, travel, &deadline)
            }));
            let _ = tx.send((outcome, started.elapsed()));
        });
        let (outcome, elapsed) = rx.await?;
        report.solve_time = elapsed;
        metrics::histogram!(metric::PLANNER_REPLAN_SECONDS).record(elapsed.as_secs_f64());
        let replanned: Replanned = match outcome {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                metrics::counter!(metric::PLANNER_FAILURES).increment(1);
                anyhow::bail!("the optimizer refused the state: {e}");
            }
            Err(_) => {
                metrics::counter!(metric::PLANNER_FAILURES).increment(1);
                anyhow::bail!("the optimizer panicked");
            }
        };
        report.iterations = replanned.stats.iterations;
        metrics::counter!(metric::PLANNER_ITERATIONS).increment(replanned.stats.iterations);
        let mut waiting = input.waiting.clone();
        waiting.extend(
            replanned
                .plan
                .unassigned
                .iter()
                .map(|u| (u.order.clone(), reason_name(u.reason))),
        );
        report.unassigned = waiting.len();
        metrics::gauge!(metric::PLANNER_UNASSIGNED).set(report.unassigned as f64);
        report.changed_routes = self
            .dispatch
            .apply_plan(Some(&replanned.plan), &waiting, now, &self.config)
            .await?;
        metrics::counter!(metric::PLANNER_CHANGED_ROUTES).increment(report.changed_routes as u64);
        metrics::counter!(metric::PLANNER_RUNS).increment(1);
        self.last.send_replace(Some(LastReplan {
            at: now,
            solve_time: report.solve_time,
        }));
        Ok(report)
    }
}

/// Explains where an open order could go: the optimizer's pure [`optimizer::explain`] on the
/// planner's own input (the same [`plan_input`]), rules and travel model, run on the planner's
/// pool, never on the async runtime.
#[derive(Clone)]
pub struct Explainer {
    positions: Arc<LatestPositions>,
    travel: Arc<dyn TravelModel>,
    config: PlannerConfig,
    pool: Arc<rayon::ThreadPool>,
}

/// A courier that could take the order, with the optimizer's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateCourier {
    /// The courier's name.
    pub name: String,
    /// The optimizer's answer for it.
    pub candidate: optimizer::Candidate,
}

/// A courier that cannot take the order, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct RejectedCourier {
    /// The courier.
    pub courier_id: CourierId,
    /// Its name.
    pub name: String,
    /// `capacity`, `time_window`, `shift_end`, `trip_rules`, `pinned_elsewhere`,
    /// `unreachable` (the optimizer's), `no_position` or `off_shift` (the planner's).
    pub reason: &'static str,
}

/// An explanation of one open order.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidates {
    /// The cheapest couriers first (the current one included wherever it ranks).
    pub candidates: Vec<CandidateCourier>,
    /// Every other courier with its reason, by courier id.
    pub rejected: Vec<RejectedCourier>,
}

/// Why an explanation could not be given.
#[derive(Debug, thiserror::Error)]
pub enum ExplainFailure {
    /// The travel-time source is down (an OSRM server).
    #[error("travel times are unavailable: {0}")]
    Unavailable(String),
    /// Anything else (an inconsistent state, the solver pool gone).
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl Explainer {
    /// The best `limit` couriers for open order `order` and the others' reasons, in the state
    /// as it is now.
    ///
    /// # Errors
    /// [`ExplainFailure::Unavailable`] when the travel model cannot answer; `Unexpected` when
    /// the state cannot be made into a problem or the pool is gone.
    pub async fn candidates(
        &self,
        dispatch: &Dispatch,
        order: &OrderId,
        limit: usize,
    ) -> Result<Candidates, ExplainFailure> {
        let now = dispatch.now();
        let (input, couriers) = dispatch.read(|s| {
            let couriers: Vec<(CourierId, String, bool)> = s
                .couriers()
                .map(|c| (c.id.clone(), c.name.clone(), c.on_shift))
                .collect();
            (plan_input(s, &self.positions, &self.config, now), couriers)
        });
        let name_of: HashMap<&CourierId, &str> = couriers
            .iter()
            .map(|(id, name, _)| (id, name.as_str()))
            .collect();
        let planned: std::collections::BTreeSet<CourierId> =
            input.couriers.iter().map(|c| c.id().clone()).collect();
        let mut out = Candidates {
            candidates: Vec::new(),
            rejected: Vec::new(),
        };
        if input.orders.iter().any(|o| o.id() == order) {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let travel = self.travel.clone();
            let config = self.config.replan.clone();
            let input = Arc::new(input);
            let job = input.clone();
            let order = order.clone();
            self.pool.spawn(move || {
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let state = CityState {
                        now: to_time(job.now),
                        couriers: &job.couriers,
                        orders: &job.orders,
                        previous: &job.previous,
                        pins: &job.pins,
                        moves: &job.moves,
                    };
                    explain(&state, &config, travel, &order, limit)
                }));
                let _ = tx.send(outcome);
            });
            let explained = match rx.await {
                Ok(Ok(Ok(e))) => e,
                Ok(Ok(Err(ExplainError::Problem(ProblemError::Travel(
                    e @ TravelError::Unavailable { .. },
                ))))) => return Err(ExplainFailure::Unavailable(e.to_string())),
                Ok(Ok(Err(e))) => return Err(anyhow::anyhow!("explaining the order: {e}").into()),
                Ok(Err(_)) => return Err(anyhow::anyhow!("the optimizer panicked").into()),
                Err(_) => return Err(anyhow::anyhow!("the solver pool is gone").into()),
            };
            for c in explained.candidates {
                let name = name_of
                    .get(&c.courier)
                    .copied()
                    .unwrap_or_default()
                    .to_string();
                out.candidates.push(CandidateCourier { name, candidate: c });
            }
            for (id, why) in explained.rejected {
                let name = name_of.get(&id).copied().unwrap_or_default().to_string();
                out.rejected.push(RejectedCourier {
                    courier_id: id,
                    name,
                    reason: why.as_str(),
                });
            }
        } else {
            // Not planned at all (no courier with a position, or held by a courier the planner
            // cannot see): every planned courier would have to take it from its holder.
            for id in &planned {
                out.rejected.push(RejectedCourier {
                    courier_id: id.clone(),
                    name: name_of.get(id).copied().unwrap_or_default().to_string(),
                    reason: "pinned_elsewhere",
                });
            }
        }
        // Couriers the planner does not plan with: off shift, or no recent position.
        for (id, name, on_shift) in &couriers {
            if !planned.contains(id) {
                out.rejected.push(RejectedCourier {
                    courier_id: id.clone(),
                    name: name.clone(),
                    reason: if *on_shift {
                        "no_position"
                    } else {
                        "off_shift"
                    },
                });
            }
        }
        out.rejected.sort_by(|a, b| a.courier_id.cmp(&b.courier_id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use optimizer::model::{Coordinates, RestaurantId, VehicleKind};
    use time::macros::datetime;
    use tracker::LatestPosition;

    use super::*;
    use crate::dispatch::Trigger;
    use crate::store::Snapshot;

    const NOW: OffsetDateTime = datetime!(2026-12-01 12:01 UTC);

    fn courier(id: &str, on_shift: bool) -> CourierRecord {
        CourierRecord {
            id: CourierId::parse(id).unwrap(),
            name: id.into(),
            vehicle: VehicleKind::Scooter,
            capacity: 4,
            device_id: format!("dev-{id}"),
            on_shift,
            shift_ends_at: None,
            created_at: datetime!(2026-12-01 10:00 UTC),
        }
    }

    fn order(id: &str) -> OrderRecord {
        OrderRecord {
            id: OrderId::parse(id).unwrap(),
            restaurant_id: RestaurantId::parse("r1").unwrap(),
            restaurant: Coordinates::parse(60.17, 24.94).unwrap(),
            dropoff: Coordinates::parse(60.18, 24.95).unwrap(),
            placed_at: datetime!(2026-12-01 12:00 UTC),
            ready_at: datetime!(2026-12-01 12:10 UTC),
            deliver_by: Some(datetime!(2026-12-01 12:40 UTC)),
            size: 1,
            status: OrderStatus::Created,
            courier_id: None,
            pinned: false,
            pickup_eta: None,
            dropoff_eta: None,
            picked_up_at: None,
            delivered_at: None,
            finished_at: None,
            failed_reason: None,
            unassigned_reason: None,
            tracking_id: format!("t-{id}"),
            moves: 0,
            spec_hash: String::new(),
        }
    }

    fn positions(ids: &[&str]) -> LatestPositions {
        LatestPositions::from_positions(ids.iter().map(|id| LatestPosition {
            courier_id: CourierId::parse(*id).unwrap(),
            coords: Coordinates::parse(60.171, 24.941).unwrap(),
            at: NOW,
            speed_mps: None,
            heading_deg: None,
            accuracy_m: None,
        }))
    }

    fn state(couriers: Vec<CourierRecord>, orders: Vec<OrderRecord>) -> State {
        State::from_snapshot(Snapshot {
            open_orders: orders,
            couriers,
            routes: Vec::new(),
        })
    }

    #[test]
    fn with_no_courier_on_shift_orders_wait_with_that_reason() {
        let s = state(vec![courier("c1", false)], vec![order("o1")]);
        let input = plan_input(&s, &positions(&["c1"]), &PlannerConfig::default(), NOW);
        assert!(input.couriers.is_empty() && input.orders.is_empty());
        assert_eq!(input.waiting[0].1, "no_courier_on_shift");
    }

    #[test]
    fn couriers_on_shift_without_a_position_make_orders_wait_for_one() {
        let s = state(vec![courier("c1", true)], vec![order("o1")]);
        let input = plan_input(&s, &positions(&[]), &PlannerConfig::default(), NOW);
        assert_eq!(input.waiting[0].1, "no_courier_position");
    }

    #[test]
    fn a_courier_on_shift_with_a_position_is_planned_with_the_open_orders() {
        let s = state(vec![courier("c1", true)], vec![order("o1")]);
        let input = plan_input(&s, &positions(&["c1"]), &PlannerConfig::default(), NOW);
        assert_eq!(input.couriers.len(), 1);
        assert_eq!(input.orders.len(), 1);
        assert!(input.waiting.is_empty());
        let config = ReplanConfig {
            solver: optimizer::SolverConfig {
                max_iterations: Some(50),
                ..optimizer::SolverConfig::default()
            },
            ..ReplanConfig::default()
        };
        let state = CityState {
            now: to_time(NOW),
            couriers: &input.couriers,
            orders: &input.orders,
            previous: &input.previous,
            pins: &input.pins,
            moves: &input.moves,
        };
        let out = replan(
            &state,
            &config,
            Arc::new(optimizer::StraightLine::new(1.3)),
            &optimizer::Unlimited,
        )
        .unwrap();
        assert_eq!(out.plan.routes.len(), 1);
        assert!(out.plan.unassigned.is_empty());
    }

    #[test]
    fn food_on_board_of_an_unseen_courier_is_left_alone() {
        let mut carried = order("o1");
        carried.status = OrderStatus::PickedUp;
        carried.courier_id = Some(CourierId::parse("c1").unwrap());
        let s = state(
            vec![courier("c1", true), courier("c2", true)],
            vec![carried],
        );
        let input = plan_input(&s, &positions(&["c2"]), &PlannerConfig::default(), NOW);
        assert!(
            input.orders.is_empty(),
            "another courier must not be offered it"
        );
    }

    #[test]
    fn an_urgent_trigger_ends_a_long_solve_once_it_ran_its_quick_share() {
        let signal = Arc::new(crate::dispatch::PlannerSignal::default());
        let deadline = Deadline {
            started: Instant::now() - Duration::from_millis(200),
            budget: Duration::from_secs(10),
            interruptible_after: Duration::from_millis(150),
            signal: signal.clone(),
        };
        assert!(deadline.used() < 0.1);
        signal.trigger(Trigger::OffPlan);
        assert!(deadline.used() < 0.1, "not urgent");
        signal.trigger(Trigger::NewOrder);
        assert!(deadline.used() >= 1.0);
        // Not before its quick share.
        let young = Deadline {
            started: Instant::now(),
            budget: Duration::from_secs(10),
            interruptible_after: Duration::from_secs(5),
            signal: signal.clone(),
        };
        assert!(young.used() < 0.1);
        let taken = signal.take();
        assert_eq!(taken, vec![Trigger::OffPlan, Trigger::NewOrder]);
        assert!(!signal.is_urgent() && deadline.used() < 0.1);
    }

    #[test]
    fn times_round_trip_through_the_optimizer_clock() {
        let t = datetime!(2026-12-01 12:34:56.789 UTC);
        let back = from_time(to_time(t));
        assert!((back - t).abs() < time::Duration::milliseconds(1));
    }
}
