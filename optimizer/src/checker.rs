//! An independent feasibility checker for plans. It re-derives every schedule from the model
//! inputs and the travel model alone, sharing no code with the solver's cached schedules, so a
//! solver bug cannot hide behind the same bug here. Every plan in the tests passes through it.

use std::collections::{HashMap, HashSet};

use crate::model::{Courier, CourierId, Order, OrderId, Plan, StopKind, TripRules};
use crate::travel::TravelModel;

/// Tolerance for comparing times and for window ends.
const TOLERANCE: f64 = 1e-6;

/// Rules a plan is checked against beyond the model's own.
#[derive(Clone, Debug, Default)]
pub struct CheckRules {
    /// Deadlines are hard window ends (otherwise lateness is allowed).
    pub hard_deadlines: bool,
    /// Orders staff pinned to couriers.
    pub pins: HashMap<OrderId, CourierId>,
    /// How orders may be grouped into trips.
    pub trips: TripRules,
}

/// Checks `plan` against the couriers, orders and travel model it was made for. Returns every
/// violation found, described in a sentence.
///
/// # Errors
/// The list of violations when there is at least one.
pub fn check_plan(
    plan: &Plan,
    couriers: &[Courier],
    orders: &[Order],
    travel: &dyn TravelModel,
    rules: &CheckRules,
) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let orders_by_id: HashMap<&OrderId, &Order> = orders.iter().map(|o| (o.id(), o)).collect();
    let couriers_by_id: HashMap<&CourierId, &Courier> =
        couriers.iter().map(|c| (c.id(), c)).collect();
    let mut served_by: HashMap<&OrderId, &CourierId> = HashMap::new();
    let mut seen_couriers = HashSet::new();

    for route in &plan.routes {
        let Some(courier) = couriers_by_id.get(&route.courier) else {
            errors.push(format!("route for unknown courier {}", route.courier));
            continue;
        };
        if !seen_couriers.insert(&route.courier) {
            errors.push(format!("courier {} has two routes", route.courier));
        }
        let vehicle = courier.vehicle();
        let onboard: HashSet<&OrderId> = courier.onboard().iter().collect();
        // Orders in the bag or committed must be delivered by this courier, late or not.
        let bound: HashSet<&OrderId> = onboard
            .iter()
            .copied()
            .chain(courier.committed().iter().map(|s| &s.order))
            .collect();
        // Committed stops must open the route, in order.
        for (k, committed) in courier.committed().iter().enumerate() {
            match route.stops.get(k) {
                Some(s) if s.stop == *committed => {}
                _ => errors.push(format!(
                    "courier {}: committed stop {k} ({:?} of {}) is not kept in place",
                    route.courier, committed.kind, committed.order
                )),
            }
        }
        let mut load: i64 = onboard
            .iter()
            .filter_map(|id| orders_by_id.get(id))
            .map(|o| o.size().units() as i64)
            .sum();
        let mut picked: HashSet<&OrderId> = HashSet::new();
        // The bag, for the trip rules: what is on board, and whether delivering has begun.
        let mut bag: Vec<&OrderId> = courier.onboard().iter().collect();
        let mut delivering = !bag.is_empty();
        let mut dropped: HashSet<&OrderId> = HashSet::new();
        let mut position = courier.position();
        let mut t = courier.available_at().max(courier.shift().start()).secs();
        let committed = courier.committed().len();
        for (k, s) in route.stops.iter().enumerate() {
            // Committed stops were decided earlier: their timing is checked, not their windows.
            let chosen = k >= committed;
            let id = &s.stop.order;
            let Some(order) = orders_by_id.get(id) else {
                errors.push(format!("courier {}: unknown order {id}", route.courier));
                continue;
            };
            let visit = match s.stop.kind {
                StopKind::Pickup => order.pickup(),
                StopKind::Dropoff => order.dropoff(),
            };
            let arrival = t + travel.duration(position, visit.location(), &vehicle);
            let start = arrival.max(visit.window().start().secs());
            if (arrival - s.arrival.secs()).abs() > 1e-3
                || (start - s.service_start.secs()).abs() > 1e-3
            {
                errors.push(format!(
                    "courier {}: {:?} of {id} is timed at {}/{} but arrives at {arrival} and starts at {start}",
                    route.courier,
                    s.stop.kind,
                    s.arrival.secs(),
                    s.service_start.secs()
                ));
            }
            match s.stop.kind {
                StopKind::Pickup => {
                    if chosen && rules.trips.one_trip_at_a_time && delivering {
                        errors.push(format!(
                            "courier {} picks up {id} before finishing the trip it is delivering",
                            route.courier
                        ));
                    }
                    if chosen
                        && rules.trips.single_restaurant
                        && bag.iter().any(|o| {
                            orders_by_id
                                .get(o)
                                .is_some_and(|other| other.restaurant() != order.restaurant())
                        })
                    {
                        errors.push(format!(
                            "courier {} carries {id} with food from another restaurant",
                            route.courier
                        ));
                    }
                    bag.push(id);
                    if onboard.contains(id) {
                        errors.push(format!("order {id} is on board but picked up again"));
                    }
                    if !picked.insert(id) {
                        errors.push(format!("order {id} is picked up twice"));
                    }
                    if chosen && start > visit.window().end().secs() + TOLERANCE {
                        errors.push(format!(
                            "pickup of {id} starts at {start}, after its window"
                        ));
                    }
                    if chosen && start > courier.shift().end().secs() + TOLERANCE {
                        errors.push(format!(
                            "pickup of {id} starts at {start}, after courier {}'s shift ends",
                            route.courier
                        ));
                    }
                    load += order.size().units() as i64;
                }
                StopKind::Dropoff => {
                    bag.retain(|o| *o != id);
                    delivering = !bag.is_empty();
                    if !picked.contains(id) && !onboard.contains(id) {
                        errors.push(format!(
                            "order {id} is dropped off by {} before (or without) its pickup",
                            route.courier
                        ));
                    }
                    if !dropped.insert(id) {
                        errors.push(format!("order {id} is dropped off twice"));
                    }
                    let end = visit.window().end().secs();
                    if chosen
                        && rules.hard_deadlines
                        && !bound.contains(id)
                        && start > end + TOLERANCE
                    {
                        errors.push(format!("drop-off of {id} starts at {start}, after {end}"));
                    }
                    load -= order.size().units() as i64;
                }
            }
            if load > vehicle.capacity().units() as i64 {
                errors.push(format!(
                    "courier {} carries {load} units, over its capacity {}",
                    route.courier,
                    vehicle.capacity().units()
                ));
            }
            if let Some(other) = served_by.insert(id, &route.courier)
                && other != &route.courier
            {
                errors.push(format!(
                    "order {id} is on the routes of {other} and {}",
                    route.courier
                ));
            }
            t = start + visit.service().secs();
            position = visit.location();
        }
        for id in &picked {
            if !dropped.contains(id) {
                errors.push(format!(
                    "order {id} is picked up by {} but never dropped off",
                    route.courier
                ));
            }
        }
        for id in &onboard {
            if !dropped.contains(id) {
                errors.push(format!(
                    "order {id} is on board {} but not dropped off",
                    route.courier
                ));
            }
        }
        if let Some(depot) = courier.end() {
            let back = t + travel.duration(position, depot, &vehicle);
            if back > courier.shift().end().secs() + TOLERANCE {
                errors.push(format!(
                    "courier {} returns at {back}, after its shift ends",
                    route.courier
                ));
            }
        }
    }
    // Onboard orders need a route even if the plan omitted the courier.
    for c in couriers {
        if !c.onboard().is_empty() && plan.route_of(c.id()).is_none() {
            errors.push(format!(
                "courier {} has orders on board but no route",
                c.id()
            ));
        }
    }
    let unassigned: HashSet<&OrderId> = plan.unassigned.iter().map(|u| &u.order).collect();
    if unassigned.len() != plan.unassigned.len() {
        errors.push("an order is listed as unassigned twice".into());
    }
    for o in orders {
        let on_route = served_by.contains_key(o.id());
        let left = unassigned.contains(o.id());
        match (on_route, left) {
            (true, true) => errors.push(format!("order {} is both routed and unassigned", o.id())),
            (false, false) => {
                errors.push(format!("order {} is neither routed nor unassigned", o.id()))
            }
            _ => {}
        }
    }
    for (order, courier) in &rules.pins {
        if let Some(actual) = served_by.get(order)
            && *actual != courier
        {
            errors.push(format!(
                "order {order} is pinned to {courier} but routed on {actual}"
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
