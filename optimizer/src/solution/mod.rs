//! A solution inside the solver: one [`Route`] per courier, where each order is, and which
//! orders are left out; where an order can go in a route ([`Insertion`]); how good a solution is
//! ([`SolutionCost`]); and its conversion into the public [`Plan`].

mod cost;
mod route;

pub(crate) use cost::SolutionCost;
pub(crate) use route::{
    EPS, Route, evaluate_into, schedule, stop_cost, trip_pickup_ok, trips_ok_with,
};

use crate::model::UnassignedReason;
use crate::model::{Plan, Route as PlanRoute, ScheduledStop, Stop, StopKind, Time, Unassigned};
use crate::problem::Problem;

/// A place for an order in a route: its pickup goes before position `i` and its drop-off before
/// position `k` (`k >= i`) of the route as it was; `delta` is the cost increase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Insertion {
    /// The courier (vehicle index).
    pub v: usize,
    /// Pickup position.
    pub i: usize,
    /// Drop-off position.
    pub k: usize,
    /// Cost increase.
    pub delta: f64,
}

/// Routes for every courier plus the orders on none.
#[derive(Clone, Debug)]
pub(crate) struct Solution {
    pub routes: Vec<Route>,
    /// The vehicle each job is on.
    pub route_of: Vec<Option<usize>>,
    /// Jobs on no route, in the order they were left out.
    pub unassigned: Vec<usize>,
}

impl Solution {
    /// Every courier with only its committed stops; every job not on board unassigned, and
    /// jobs on board or committed placed as their commitments say.
    pub fn empty(p: &Problem) -> Solution {
        let mut routes: Vec<Route> = (0..p.vehicles.len()).map(|v| Route::new(p, v)).collect();
        let mut route_of = vec![None; p.jobs.len()];
        for r in &routes {
            for &n in &r.nodes {
                route_of[p.nodes[n].job] = Some(r.v);
            }
        }
        // Onboard jobs whose drop-off is not committed still ride with their courier: append
        // their drop-offs (the search will reorder them).
        for (j, job) in p.jobs.iter().enumerate() {
            if let Some(v) = job.onboard
                && route_of[j].is_none()
            {
                routes[v].nodes.push(2 * j + 1);
                route_of[j] = Some(v);
            }
        }
        for r in &mut routes {
            r.update(p);
        }
        // A committed pickup without its drop-off: append the drop-off too.
        for (j, owner) in route_of.iter().enumerate() {
            if let Some(v) = *owner {
                let r = &mut routes[v];
                if !r.nodes.contains(&(2 * j + 1)) {
                    r.nodes.push(2 * j + 1);
                    r.update(p);
                }
            }
        }
        let unassigned = (0..p.jobs.len())
            .filter(|&j| route_of[j].is_none())
            .collect();
        Solution {
            routes,
            route_of,
            unassigned,
        }
    }

    /// Total cost: the routes' costs plus the penalty for each order left out.
    pub fn cost(&self, p: &Problem) -> f64 {
        self.routes.iter().map(|r| r.cost).sum::<f64>()
            + self.unassigned.len() as f64 * p.objective.unassigned
    }

    /// Couriers with a non-empty route.
    pub fn used_routes(&self) -> usize {
        self.routes.iter().filter(|r| !r.is_empty()).count()
    }

    /// Total distance driven.
    pub fn distance(&self) -> f64 {
        self.routes.iter().map(|r| r.distance).sum()
    }

    /// Whether job `j` may be taken off its route (not on board, committed or pinned).
    pub fn is_movable(p: &Problem, j: usize) -> bool {
        p.jobs[j].locked.is_none()
    }

    /// Takes job `j` off its route (no-op for unassigned jobs); the caller updates the route.
    pub fn take_out(&mut self, p: &Problem, j: usize) -> Option<usize> {
        let v = self.route_of[j]?;
        let r = &mut self.routes[v];
        r.nodes.retain(|&n| p.nodes[n].job != j);
        self.route_of[j] = None;
        self.unassigned.push(j);
        Some(v)
    }

    /// Places job `j` as `ins` says and refreshes the route.
    pub fn insert(&mut self, p: &Problem, j: usize, ins: &Insertion) {
        let r = &mut self.routes[ins.v];
        if p.jobs[j].onboard.is_some() {
            r.nodes.insert(ins.k, 2 * j + 1);
        } else {
            r.nodes.insert(ins.k, 2 * j + 1);
            r.nodes.insert(ins.i, 2 * j);
        }
        r.update(p);
        self.route_of[j] = Some(ins.v);
        if let Some(pos) = self.unassigned.iter().position(|&u| u == j) {
            self.unassigned.swap_remove(pos);
        }
    }

    /// Lexicographic quality: fewer unassigned, then (when minimising vehicles) fewer routes,
    /// then lower cost.
    pub fn key(&self, p: &Problem) -> SolutionCost {
        let routes = if p.objective.minimize_vehicles {
            self.used_routes()
        } else {
            0
        };
        SolutionCost {
            unassigned: self.unassigned.len(),
            routes,
            value: self.cost(p),
        }
    }

    /// Whether `self` is strictly better than `other` by [`Solution::key`].
    pub fn better_than(&self, p: &Problem, other: &Solution) -> bool {
        self.key(p).improves_on(&other.key(p))
    }

    /// The public plan: timed stops per courier with work, and the reasons orders are left out.
    pub fn to_plan(&self, p: &Problem, reason: impl Fn(usize) -> UnassignedReason) -> Plan {
        let mut routes = Vec::new();
        for r in &self.routes {
            if r.nodes.is_empty() {
                continue;
            }
            let vehicle = &p.vehicles[r.v];
            let (times, _) = schedule(p, r.v, &r.nodes);
            let stops = r
                .nodes
                .iter()
                .zip(&times)
                .map(|(&n, at)| {
                    let node = &p.nodes[n];
                    ScheduledStop {
                        stop: Stop {
                            order: p.jobs[node.job].order.clone(),
                            kind: if node.pickup {
                                StopKind::Pickup
                            } else {
                                StopKind::Dropoff
                            },
                        },
                        arrival: time(at.arrival),
                        service_start: time(at.start),
                        departure: time(at.start + node.service),
                    }
                })
                .collect();
            routes.push(PlanRoute {
                courier: vehicle.courier.clone(),
                stops,
            });
        }
        let mut unassigned: Vec<Unassigned> = self
            .unassigned
            .iter()
            .map(|&j| Unassigned {
                order: p.jobs[j].order.clone(),
                reason: reason(j),
            })
            .collect();
        unassigned.sort_by(|a, b| a.order.cmp(&b.order));
        Plan { routes, unassigned }
    }
}

pub(crate) fn time(secs: f64) -> Time {
    // Schedules are computed from finite inputs; clamp defensively instead of panicking.
    Time::from_secs(if secs.is_finite() {
        secs
    } else {
        Time::NEVER.secs()
    })
    .unwrap_or(Time::NEVER)
}
