//! Continuous replanning: from the city's current state and the last published plan, a new plan
//! and the list of couriers whose routes changed.
//!
//! The rules that keep a live city calm are applied here, before and around the solver:
//! - food in a courier's bag stays with that courier (the caller lists it on board);
//! - an order whose courier is already at the restaurant, or will be within the commitment
//!   horizon, is committed to that courier: its pickup becomes a fixed first stop;
//! - staff pins are never broken;
//! - an order that has already moved `max_reassignments` times stays where it is;
//! - any other order may move, but moving costs the hysteresis (the objective's stability
//!   weight), so it moves only when the plan gains more than that;
//! - the search starts from the previous plan and never returns a plan worse than that plan
//!   repaired for what changed (finished orders removed, new ones inserted).
//!
//! Like the rest of the crate this is pure: `now`, the travel model and the budget are inputs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{
    Courier, CourierId, Location, Order, OrderId, Plan, ScheduledStop, Seconds, Stop, StopKind,
    Time, TripRules, Vehicle,
};
use crate::objective::Objective;
use crate::problem::{Problem, ProblemError};
use crate::solver::{Budget, SolveStats, SolverConfig, routes_of, solve_from};
use crate::travel::{TravelModel, Ways, table_for};

/// Settings of the replanning rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplanConfig {
    /// An order whose courier reaches the restaurant within this time stays with it.
    pub commitment_horizon: Seconds,
    /// How many times one order may move between couriers.
    pub max_reassignments: u32,
    /// How orders may be grouped into trips.
    pub trips: TripRules,
    /// The objective. Its `stability` weight is the hysteresis: the gain (in objective units;
    /// with the default objective, seconds of click-to-door) an order's move to another courier
    /// must bring. Rounding of travel times is the travel model's ([`crate::travel::RoundedUp`]).
    pub objective: Objective,
    /// The search.
    pub solver: SolverConfig,
}

impl Default for ReplanConfig {
    fn default() -> Self {
        ReplanConfig {
            commitment_horizon: Seconds::new(180.0).expect("a positive constant"),
            max_reassignments: 2,
            trips: TripRules::default(),
            objective: Objective::meal_delivery(),
            solver: SolverConfig {
                max_iterations: None,
                ..SolverConfig::default()
            },
        }
    }
}

/// The city as it is now.
#[derive(Clone, Copy, Debug)]
pub struct CityState<'a> {
    /// The current time on the plan's clock.
    pub now: Time,
    /// Couriers that can work: on shift, or still carrying food. Their committed stops and
    /// onboard orders are as the dispatcher knows them.
    pub couriers: &'a [Courier],
    /// Every order still to be picked up or dropped off.
    pub orders: &'a [Order],
    /// The last published plan (empty at start).
    pub previous: &'a Plan,
    /// Orders pinned to couriers by staff.
    pub pins: &'a HashMap<OrderId, CourierId>,
    /// How many times each order has already moved between couriers.
    pub moves: &'a HashMap<OrderId, u32>,
}

/// What changed between two plans.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanDiff {
    /// Couriers whose sequence of stops changed (including routes that appeared or vanished).
    pub changed_couriers: Vec<CourierId>,
    /// Orders that moved from one courier to another: (order, from, to).
    pub moved: Vec<(OrderId, CourierId, CourierId)>,
    /// Orders that got a courier for the first time.
    pub assigned: Vec<(OrderId, CourierId)>,
    /// Orders that lost their courier and are now unassigned.
    pub dropped: Vec<OrderId>,
}

/// A replanning result.
#[derive(Clone, Debug)]
pub struct Replanned {
    /// The new plan.
    pub plan: Plan,
    /// Its difference from the previous plan.
    pub diff: PlanDiff,
    /// When each planned order's courier is expected at the restaurant (for the kitchen).
    pub pickup_etas: Vec<(OrderId, CourierId, Time)>,
    /// Orders newly committed by the horizon in this run.
    pub committed: Vec<(OrderId, CourierId)>,
    /// The search statistics.
    pub stats: SolveStats,
}

/// Replans the city.
///
/// # Errors
/// A [`ProblemError`] when the state is inconsistent (for example an order on two couriers'
/// boards, or a pin naming an unknown courier).
pub fn replan(
    state: &CityState<'_>,
    config: &ReplanConfig,
    travel: Arc<dyn TravelModel>,
    budget: &dyn Budget,
) -> Result<Replanned, ProblemError> {
    let prepared = prepare(state, config, travel)?;
    let previous_routes = routes_of(state.previous);
    let solved = solve_from(&prepared.problem, &previous_routes, &config.solver, budget);
    // Compare with what was still ahead: stops done since the last plan are not changes.
    let order_ids: HashSet<&OrderId> = state.orders.iter().map(|o| o.id()).collect();
    let onboard: HashSet<&OrderId> = prepared.couriers.iter().flat_map(|c| c.onboard()).collect();
    let ahead = still_ahead(state.previous, &order_ids, &onboard);
    let diff = diff(&ahead, &solved.plan);
    let pickup_etas = pickup_etas(&solved.plan);
    Ok(Replanned {
        plan: solved.plan,
        diff,
        pickup_etas,
        committed: prepared.committed,
        stats: solved.stats,
    })
}

/// The state with the replanning rules applied, ready for the solver (or for an explanation).
pub(crate) struct Prepared {
    /// The couriers, their commitments extended by the horizon.
    pub couriers: Vec<Courier>,
    /// Orders newly committed by the horizon.
    pub committed: Vec<(OrderId, CourierId)>,
    /// The problem.
    pub problem: Problem,
}

/// Applies the commitment horizon, the pins and the move cap to the state and builds the
/// problem.
pub(crate) fn prepare(
    state: &CityState<'_>,
    config: &ReplanConfig,
    travel: Arc<dyn TravelModel>,
) -> Result<Prepared, ProblemError> {
    let order_ids: HashSet<&OrderId> = state.orders.iter().map(|o| o.id()).collect();
    let orders_by_id: HashMap<&OrderId, &Order> =
        state.orders.iter().map(|o| (o.id(), o)).collect();
    let previous_courier: HashMap<OrderId, CourierId> = state
        .previous
        .routes
        .iter()
        .flat_map(|r| {
            r.stops
                .iter()
                .map(move |s| (s.stop.order.clone(), r.courier.clone()))
        })
        .filter(|(o, _)| order_ids.contains(o))
        .collect();

    // Commitment horizon: extend each courier's committed stops by its next planned pickup when
    // it will be there soon.
    let already_bound: HashSet<&OrderId> = state
        .couriers
        .iter()
        .flat_map(|c| {
            c.onboard()
                .iter()
                .chain(c.committed().iter().map(|s| &s.order))
        })
        .collect();
    let next_pickups: Vec<Option<(&ScheduledStop, &Order)>> = state
        .couriers
        .iter()
        .map(|c| {
            let route = state.previous.route_of(c.id())?;
            // The courier's next stop after its commitments; only a pickup can be committed
            // (a drop-off first means the restaurant is not the next place it goes to).
            let next = route
                .stops
                .iter()
                .find(|s| !c.committed().contains(&s.stop))?;
            let order = orders_by_id.get(&next.stop.order)?;
            (next.stop.kind == StopKind::Pickup
                && !already_bound.contains(&next.stop.order)
                && state.pins.get(order.id()).is_none_or(|p| p == c.id()))
            .then_some((next, *order))
        })
        .collect();
    let drives = drive_times(state.couriers, &next_pickups, &travel)?;
    let mut committed_now = Vec::new();
    let mut couriers: Vec<Courier> = Vec::with_capacity(state.couriers.len());
    for ((c, next), drive) in state.couriers.iter().zip(&next_pickups).zip(drives) {
        let mut extended = None;
        if let Some((next, order)) = next {
            let eta = if c.committed().is_empty() {
                // Unreachable (an infinite drive) is never soon.
                Seconds::new(drive)
                    .ok()
                    .map(|d| c.available_at().max(state.now) + d)
            } else {
                Some(next.arrival)
            };
            if let Some(eta) = eta
                && eta.since(state.now) <= config.commitment_horizon
            {
                let mut stops = c.committed().to_vec();
                stops.push(next.stop.clone());
                extended = Some(stops);
                committed_now.push((order.id().clone(), c.id().clone()));
            }
        }
        couriers.push(match extended {
            Some(stops) => rebuild(c, stops)?,
            None => c.clone(),
        });
    }

    // Orders that moved too often stay with their courier, as if pinned.
    let mut pins = state.pins.clone();
    for (order, count) in state.moves {
        if *count >= config.max_reassignments
            && let Some(courier) = previous_courier.get(order)
        {
            pins.entry(order.clone()).or_insert_with(|| courier.clone());
        }
    }
    // A pin on a courier that is gone cannot hold.
    let present: HashSet<&CourierId> = couriers.iter().map(|c| c.id()).collect();
    pins.retain(|_, c| present.contains(c));

    let problem = Problem::builder(&couriers, state.orders, travel)
        .objective(config.objective.clone())
        .previous(previous_courier)
        .pins(pins)
        .trip_rules(config.trips)
        .build()?;
    Ok(Prepared {
        couriers,
        committed: committed_now,
        problem,
    })
}

/// For each courier with a next pickup and nothing committed, the drive from where it is to
/// that restaurant (infinite when unreachable), from one travel table; 0 for the others.
fn drive_times(
    couriers: &[Courier],
    next_pickups: &[Option<(&ScheduledStop, &Order)>],
    travel: &Arc<dyn TravelModel>,
) -> Result<Vec<f64>, ProblemError> {
    let mut places: Vec<Location> = Vec::new();
    let mut profiles: Vec<Vehicle> = Vec::new();
    let mut asks: Vec<Option<(usize, usize)>> = Vec::with_capacity(couriers.len());
    for (c, next) in couriers.iter().zip(next_pickups) {
        let ask = match next {
            Some((_, order)) if c.committed().is_empty() => {
                let profile = match profiles.iter().position(|v| *v == c.vehicle()) {
                    Some(i) => i,
                    None => {
                        profiles.push(c.vehicle());
                        profiles.len() - 1
                    }
                };
                places.push(c.position());
                places.push(order.pickup().location());
                Some((profile, places.len() - 2))
            }
            _ => None,
        };
        asks.push(ask);
    }
    if places.is_empty() {
        return Ok(vec![0.0; couriers.len()]);
    }
    let ways: Vec<Ways> = (0..places.len())
        .map(|i| if i % 2 == 0 { Ways::Out } else { Ways::In })
        .collect();
    let table = table_for(travel, &places, &ways, &profiles)?;
    Ok(asks
        .into_iter()
        .map(|ask| ask.map_or(0.0, |(profile, at)| table.duration(profile, at, at + 1)))
        .collect())
}

fn rebuild(c: &Courier, committed: Vec<Stop>) -> Result<Courier, ProblemError> {
    let mut b = Courier::builder(c.id().clone(), c.vehicle(), c.shift(), c.position())
        .available_at(c.available_at())
        .onboard(c.onboard().to_vec())
        .committed(committed);
    if let Some(end) = c.end() {
        b = b.returns_to(end);
    }
    b.build().map_err(|source| ProblemError::Commitment {
        courier: c.id().to_string(),
        source,
    })
}

/// The previous plan without the stops done since: orders no longer open, and pickups of
/// orders now on board.
fn still_ahead(previous: &Plan, open: &HashSet<&OrderId>, onboard: &HashSet<&OrderId>) -> Plan {
    let mut plan = previous.clone();
    for route in &mut plan.routes {
        route.stops.retain(|s| {
            open.contains(&s.stop.order)
                && !(s.stop.kind == StopKind::Pickup && onboard.contains(&s.stop.order))
        });
    }
    plan.routes.retain(|r| !r.stops.is_empty());
    plan
}

/// The difference between two plans.
pub fn diff(previous: &Plan, next: &Plan) -> PlanDiff {
    let stops =
        |plan: &Plan| -> HashMap<CourierId, Vec<Stop>> { routes_of(plan).into_iter().collect() };
    let owner = |plan: &Plan| -> HashMap<OrderId, CourierId> {
        plan.routes
            .iter()
            .flat_map(|r| {
                r.stops
                    .iter()
                    .map(move |s| (s.stop.order.clone(), r.courier.clone()))
            })
            .collect()
    };
    let (a, b) = (stops(previous), stops(next));
    let mut changed: Vec<CourierId> = a
        .keys()
        .chain(b.keys())
        .filter(|c| a.get(*c) != b.get(*c))
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    changed.sort();
    let (oa, ob) = (owner(previous), owner(next));
    let mut moved = Vec::new();
    let mut assigned = Vec::new();
    for (order, to) in &ob {
        match oa.get(order) {
            Some(from) if from != to => moved.push((order.clone(), from.clone(), to.clone())),
            None => assigned.push((order.clone(), to.clone())),
            _ => {}
        }
    }
    let unassigned_now: HashSet<&OrderId> = next.unassigned.iter().map(|u| &u.order).collect();
    let mut dropped: Vec<OrderId> = oa
        .keys()
        .filter(|o| !ob.contains_key(*o) && unassigned_now.contains(o))
        .cloned()
        .collect();
    moved.sort();
    assigned.sort();
    dropped.sort();
    PlanDiff {
        changed_couriers: changed,
        moved,
        assigned,
        dropped,
    }
}

/// When each planned pickup's courier arrives at the restaurant.
pub fn pickup_etas(plan: &Plan) -> Vec<(OrderId, CourierId, Time)> {
    let mut etas: Vec<(OrderId, CourierId, Time)> = plan
        .routes
        .iter()
        .flat_map(|r| {
            r.stops
                .iter()
                .filter(|s| s.stop.kind == StopKind::Pickup)
                .map(move |s| (s.stop.order.clone(), r.courier.clone(), s.arrival))
        })
        .collect();
    etas.sort_by(|a, b| a.0.cmp(&b.0));
    etas
}
