//! Fixtures for the crate's unit tests: small planar problems built from a seed, couriers and
//! orders in one line each, and a travel model with places nobody can reach.

use std::sync::Arc;

use crate::model::{
    Capacity, Courier, CourierId, Location, Order, OrderId, PlanarPoint, RestaurantId, Size, Time,
    TimeWindow, Vehicle, VehicleKind,
};
use crate::problem::Problem;
use crate::random::Random;
use crate::travel::{StraightLine, TravelModel};
use crate::{Objective, TripRules};

/// A point on the plane.
pub(crate) fn planar(x: f64, y: f64) -> Location {
    PlanarPoint::parse(x, y).unwrap().into()
}

/// An order of size 1 from `from` to `to`, placed and ready at `placed`.
pub(crate) fn order(id: &str, from: (f64, f64), to: (f64, f64), placed: f64) -> Order {
    order_of_size(id, from, to, placed, 1)
}

/// An order of `size` units from `from` to `to`, placed and ready at `placed`.
pub(crate) fn order_of_size(
    id: &str,
    from: (f64, f64),
    to: (f64, f64),
    placed: f64,
    size: i64,
) -> Order {
    Order::builder(
        OrderId::parse(id).unwrap(),
        RestaurantId::parse(format!("r-{id}")).unwrap(),
        planar(from.0, from.1),
        planar(to.0, to.1),
        Time::from_secs(placed).unwrap(),
    )
    .size(Size::new(size).unwrap())
    .build()
    .unwrap()
}

/// A courier on a bike at 4 m/s with `capacity`, always on shift, at `at`.
pub(crate) fn courier(id: &str, at: (f64, f64), capacity: i64) -> Courier {
    Courier::builder(
        CourierId::parse(id).unwrap(),
        Vehicle::new(VehicleKind::Bike, 4.0, Capacity::new(capacity).unwrap()).unwrap(),
        TimeWindow::ALWAYS,
        planar(at.0, at.1),
    )
    .build()
    .unwrap()
}

/// Exact straight lines, except that nothing crosses the line `x = self.x` (a river without
/// bridges): places on different sides are unreachable from each other.
pub(crate) struct Islands {
    /// Where the river runs.
    pub x: f64,
}

impl TravelModel for Islands {
    fn distance(&self, from: Location, to: Location, vehicle: &Vehicle) -> f64 {
        let side = |l: Location| match l {
            Location::Planar(p) => p.x() > self.x,
            Location::Wgs84(_) => false,
        };
        if side(from) == side(to) {
            StraightLine::exact().distance(from, to, vehicle)
        } else {
            f64::INFINITY
        }
    }
}

/// A seeded city on a 3 km square: `orders` orders with 30-minute deadlines placed over the
/// first half hour, and `couriers` couriers with capacity 3.
pub(crate) fn city(seed: u64, orders: usize, couriers: usize) -> (Vec<Courier>, Vec<Order>) {
    let mut rng = Random::new(seed);
    let mut point = || (rng.unit() * 3000.0, rng.unit() * 3000.0);
    let mut list = Vec::with_capacity(orders);
    for i in 0..orders {
        let (from, to) = (point(), point());
        let placed = (i as f64) * 1800.0 / orders.max(1) as f64;
        list.push(
            Order::builder(
                OrderId::parse(format!("o{i}")).unwrap(),
                RestaurantId::parse(format!("r{}", i % 5)).unwrap(),
                planar(from.0, from.1),
                planar(to.0, to.1),
                Time::from_secs(placed).unwrap(),
            )
            .ready_at(Time::from_secs(placed + 300.0).unwrap())
            .deliver_by(Time::from_secs(placed + 2400.0).unwrap())
            .build()
            .unwrap(),
        );
    }
    let fleet = (0..couriers)
        .map(|v| courier(&format!("c{v}"), point(), 3))
        .collect();
    (fleet, list)
}

/// The problem of [`city`] under the meal-delivery objective (or the benchmark's, with
/// `vehicles_first`), on exact straight lines.
pub(crate) fn problem(seed: u64, orders: usize, couriers: usize, vehicles_first: bool) -> Problem {
    let (fleet, list) = city(seed, orders, couriers);
    let objective = if vehicles_first {
        Objective::vehicles_then_distance()
    } else {
        Objective::meal_delivery()
    };
    Problem::builder(&fleet, &list, Arc::new(StraightLine::exact()))
        .objective(objective)
        .trip_rules(TripRules::default())
        .build()
        .unwrap()
}

/// A first solution of `p` by construction, as the solver starts from.
pub(crate) fn constructed(p: &Problem) -> crate::solution::Solution {
    crate::construction::construct(p)
}

/// The neighbour lists of `p`, as the search uses them.
pub(crate) fn neighbours(p: &Problem) -> crate::search::Neighbours {
    crate::search::Neighbours::new(p)
}

/// Checks that `sol` is a consistent solution of `p`: every order on exactly one route (both
/// stops, pickup first) or unassigned, `route_of` agreeing, every route feasible and its
/// cached schedule and cost those of a fresh evaluation.
pub(crate) fn assert_consistent(p: &Problem, sol: &crate::solution::Solution) {
    for j in 0..p.jobs.len() {
        let on: Vec<usize> = sol
            .routes
            .iter()
            .filter(|r| r.nodes.iter().any(|&n| p.nodes[n].job == j))
            .map(|r| r.v)
            .collect();
        assert!(on.len() <= 1, "order {j} on routes {on:?}");
        assert_eq!(
            sol.route_of[j],
            on.first().copied(),
            "route_of of order {j}"
        );
        assert_eq!(
            sol.unassigned.contains(&j),
            on.is_empty(),
            "unassigned list and routes disagree on order {j}"
        );
        if let Some(&v) = on.first() {
            let nodes = &sol.routes[v].nodes;
            let pickup = nodes.iter().position(|&n| n == 2 * j);
            let drop = nodes.iter().position(|&n| n == 2 * j + 1);
            assert!(drop.is_some(), "order {j} has no drop-off on its route");
            assert!(
                p.jobs[j].onboard.is_some() || pickup < drop,
                "order {j} is dropped off before its pickup"
            );
        }
    }
    for r in &sol.routes {
        assert!(r.feasible, "route of vehicle {} is infeasible", r.v);
        let mut fresh = r.clone();
        fresh.update(p);
        assert!(
            (fresh.cost - r.cost).abs() <= 1e-6 * r.cost.abs().max(1.0),
            "route {} has a stale cost",
            r.v
        );
        assert_eq!(fresh.start, r.start, "route {} has a stale schedule", r.v);
    }
}
