//! Where an order fits best in one route: every pickup position, and for each every drop-off
//! position after it, checked against windows, capacity and the route's forward time slack.
//! Positions are walked so that one infeasible prefix ends the walk early. When no position
//! fits, the walk says why (a [`Rejection`]), so an order left out carries its real reason.

use crate::model::Rejection;
use crate::problem::Problem;
use crate::random::Random;
use crate::solution::{
    EPS, Insertion, Route, evaluate_into, stop_cost, trip_pickup_ok, trips_ok_with,
};

/// The constraints that failed somewhere in one insertion walk.
#[derive(Clone, Copy, Debug, Default)]
struct Failures(u8);

impl Failures {
    fn bit(r: Rejection) -> u8 {
        1 << r as u8
    }

    #[inline]
    fn add(&mut self, r: Rejection) {
        self.0 |= Self::bit(r);
    }

    /// A service start that came too late: a time window, or no way there at all.
    #[inline]
    fn late(&mut self, start: f64) {
        self.add(if start.is_infinite() {
            Rejection::Unreachable
        } else {
            Rejection::TimeWindow
        });
    }

    /// The reason that takes precedence ([`Rejection::ALL`]'s order). A walk whose feasible
    /// places were all skipped by blinks has none; it reports a time window, and only blinking
    /// searches (never the reasons given out) see it.
    fn rejection(self) -> Rejection {
        Rejection::ALL
            .into_iter()
            .find(|r| self.0 & Self::bit(*r) != 0)
            .unwrap_or(Rejection::TimeWindow)
    }
}

/// Scratch space reused across insertion evaluations of time-dependent objectives.
#[derive(Default)]
pub(crate) struct Scratch {
    nodes: Vec<usize>,
    /// Pickup positions of the current query.
    positions: Vec<usize>,
    /// Candidate couriers of the current query.
    pub couriers: Vec<usize>,
}

/// The cheapest feasible insertion of job `j` into route `r`, or why there is none. With
/// `blink`, each feasible position is skipped with that probability (SISR's blinks), adding
/// diversity.
pub(crate) fn best_insertion(
    p: &Problem,
    r: &Route,
    j: usize,
    blink: Option<(&mut Random, f64)>,
    scratch: &mut Scratch,
) -> Result<Insertion, Rejection> {
    if let Some(owner) = p.jobs[j].locked
        && owner != r.v
    {
        return Err(Rejection::PinnedElsewhere);
    }
    let mut failed = Failures::default();
    let (pn, dn) = (2 * j, 2 * j + 1);
    let v = r.v;
    let vehicle = &p.vehicles[v];
    let q = p.nodes[pn].demand;
    let timed = p.objective.is_time_dependent();
    let mut best: Option<Insertion> = None;
    let mut blink = blink;
    let onboard = p.jobs[j].onboard.is_some();
    let trip_rules = p.trips.any();
    // Positions that break the trip rules are skipped before they are priced.
    let allowed =
        |i: usize, k: usize| !trip_rules || trips_ok_with(p, r, (!onboard).then_some(i), k, pn, dn);
    let mut consider = |i: usize, k: usize, delta: f64, best: &mut Option<Insertion>| {
        if let Some((rng, rate)) = blink.as_mut()
            && *rate > 0.0
            && rng.chance(*rate)
        {
            return;
        }
        if best.is_none_or(|b| delta < b.delta) {
            *best = Some(Insertion { v, i, k, delta });
        }
    };
    let n = r.nodes.len();
    let fixed = r.fixed_len(p);
    let base_extra = if r.is_empty() {
        p.objective.vehicle
    } else {
        0.0
    } + stability_charge(p, j, v);
    let dist_w = p.objective.distance;

    if p.jobs[j].onboard.is_some() {
        // Only the drop-off remains to place.
        for k in fixed..=n {
            let a = r.place_before(p, k);
            let dep = r.departure_before(p, k);
            let start_d = (dep + p.time(v, a, dn)).max(p.nodes[dn].open);
            if start_d > p.close(v, dn) + EPS {
                failed.late(start_d);
                break;
            }
            let next = r.place_at(p, k);
            if let Some(b) = next {
                let arr = start_d + p.nodes[dn].service + p.time(v, dn, b);
                if arr > r.latest_at(p, k) + EPS {
                    failed.late(arr);
                    continue;
                }
            }
            if !allowed(k, k) {
                failed.add(Rejection::TripRules);
                continue;
            }
            let delta = if timed {
                timed_delta(p, r, None, k, dn, scratch)
            } else {
                dist_w * detour(p, v, a, dn, next)
            };
            consider(k, k, delta + base_extra, &mut best);
        }
        return best.ok_or_else(|| failed.rejection());
    }

    // On long routes under a distance objective, try only the pickup positions with the
    // smallest detours first (granular insertion); fall back to all positions if none fits.
    let granular = !timed && n - fixed > GRANULAR_ABOVE;
    let mut positions = std::mem::take(&mut scratch.positions);
    positions.clear();
    if granular {
        let mut by_detour: Vec<(f64, usize)> = (fixed..=n)
            .map(|i| (detour(p, v, r.place_before(p, i), pn, r.place_at(p, i)), i))
            .collect();
        by_detour.select_nth_unstable_by(GRANULAR_PICKUPS, |a, b| a.0.total_cmp(&b.0));
        positions.extend(by_detour[..GRANULAR_PICKUPS].iter().map(|x| x.1));
        positions.sort_unstable();
    } else {
        positions.extend(fixed..=n);
    }
    for pass in 0..if granular { 2 } else { 1 } {
        if pass == 1 {
            if best.is_some() {
                break;
            }
            positions.clear();
            positions.extend(fixed..=n);
        }
        for &i in &positions {
            if r.load_before(p, i) + q > vehicle.capacity {
                failed.add(Rejection::Capacity);
                continue;
            }
            if trip_rules && !trip_pickup_ok(p, r, i, pn) {
                failed.add(Rejection::TripRules);
                continue;
            }
            let a = r.place_before(p, i);
            let start_p = (r.departure_before(p, i) + p.time(v, a, pn)).max(p.nodes[pn].open);
            if start_p > p.close(v, pn) + EPS {
                if start_p.is_finite() && start_p <= p.nodes[pn].close + EPS {
                    failed.add(Rejection::ShiftEnd);
                } else {
                    failed.late(start_p);
                }
                break; // later positions only arrive later
            }
            let dep_p = start_p + p.nodes[pn].service;
            let next_i = r.place_at(p, i);
            let pickup_detour = detour(p, v, a, pn, next_i);
            // Drop-off right after the pickup.
            let start_d = (dep_p + p.time(v, pn, dn)).max(p.nodes[dn].open);
            if start_d <= p.close(v, dn) + EPS {
                let ok = match next_i {
                    Some(b) => {
                        let arr = start_d + p.nodes[dn].service + p.time(v, dn, b);
                        let ok = arr <= r.latest_at(p, i) + EPS;
                        if !ok {
                            failed.late(arr);
                        }
                        ok
                    }
                    None => true,
                };
                let allowed_here = ok && allowed(i, i);
                if ok && !allowed_here {
                    failed.add(Rejection::TripRules);
                }
                if allowed_here {
                    let delta = if timed {
                        timed_delta(p, r, Some(i), i, dn, scratch)
                    } else {
                        let added = p.distance(v, a, pn)
                            + p.distance(v, pn, dn)
                            + next_i.map_or(0.0, |b| p.distance(v, dn, b))
                            - next_i.map_or(0.0, |b| p.distance(v, a, b));
                        dist_w * added
                    };
                    consider(i, i, delta + base_extra, &mut best);
                }
            } else {
                failed.late(start_d);
            }
            // Drop-off later: walk the original stops after the pickup.
            let mut dep = dep_p;
            let mut prev = pn;
            for k in i..n {
                let node = r.nodes[k];
                let here = Problem::place(node);
                let arr = dep + p.time(v, prev, here);
                if arr > r.latest[k] + EPS {
                    failed.late(arr);
                    break;
                }
                if r.load[k] + q > vehicle.capacity {
                    failed.add(Rejection::Capacity);
                    break;
                }
                dep = arr.max(p.nodes[node].open) + p.nodes[node].service;
                prev = here;
                let start_d = (dep + p.time(v, here, dn)).max(p.nodes[dn].open);
                if start_d > p.close(v, dn) + EPS {
                    // The drop-off's window closes before we could get there: later is worse.
                    failed.late(start_d);
                    break;
                }
                let next = r.place_at(p, k + 1);
                if let Some(b) = next {
                    let arr = start_d + p.nodes[dn].service + p.time(v, dn, b);
                    if arr > r.latest_at(p, k + 1) + EPS {
                        failed.late(arr);
                        continue;
                    }
                }
                if !allowed(i, k + 1) {
                    failed.add(Rejection::TripRules);
                    continue;
                }
                let delta = if timed {
                    timed_delta(p, r, Some(i), k + 1, dn, scratch)
                } else {
                    dist_w * (pickup_detour + detour(p, v, here, dn, next))
                };
                consider(i, k + 1, delta + base_extra, &mut best);
            }
        }
    }
    scratch.positions = positions;
    best.ok_or_else(|| failed.rejection())
}

/// Routes longer than this many free stops use granular pickup positions.
const GRANULAR_ABOVE: usize = 24;
/// How many pickup positions granular insertion tries first.
const GRANULAR_PICKUPS: usize = 10;

/// Extra distance for vehicle `v` of visiting `x` between places `a` and `b` (or after `a` at a
/// route's open end).
#[inline]
fn detour(p: &Problem, v: usize, a: usize, x: usize, b: Option<usize>) -> f64 {
    match b {
        Some(b) => p.distance(v, a, x) + p.distance(v, x, b) - p.distance(v, a, b),
        None => p.distance(v, a, x),
    }
}

/// Cost increase of the insertion under a time-dependent objective. The stops before the first
/// inserted one keep their times, so the schedule is walked from there, and only until it meets
/// the route's cached schedule again (waiting absorbed the delay): from that stop on, times and
/// costs are those already known. Excludes the vehicle and stability terms, which the caller adds.
fn timed_delta(
    p: &Problem,
    r: &Route,
    i: Option<usize>,
    k: usize,
    dn: usize,
    scratch: &mut Scratch,
) -> f64 {
    if r.is_empty() {
        return timed_delta_full(p, r, i, k, dn, scratch);
    }
    let delta = timed_delta_from(p, r, i, k, dn);
    #[cfg(debug_assertions)]
    {
        let full = timed_delta_full(p, r, i, k, dn, scratch);
        debug_assert!(
            (delta - full).abs() <= 1e-6 * full.abs().max(1.0),
            "incremental insertion cost {delta} differs from the full evaluation {full}"
        );
    }
    delta
}

/// [`timed_delta`] on a non-empty route, walking from the first inserted stop.
fn timed_delta_from(p: &Problem, r: &Route, i: Option<usize>, k: usize, dn: usize) -> f64 {
    let v = r.v;
    let obj = &p.objective;
    let n = r.nodes.len();
    let first = i.unwrap_or(k);
    let mut t = r.departure_before(p, first);
    let mut place = r.place_before(p, first);
    let mut added = 0.0;
    let visit = |node: usize, t: &mut f64, place: &mut usize| -> f64 {
        let here = Problem::place(node);
        let start = (*t + p.time(v, *place, here)).max(p.nodes[node].open);
        *t = start + p.nodes[node].service;
        *place = here;
        start
    };
    for pos in first..=n {
        if i == Some(pos) {
            let start = visit(dn - 1, &mut t, &mut place);
            added += stop_cost(p, v, dn - 1, start);
        }
        if pos == k {
            let start = visit(dn, &mut t, &mut place);
            // The stability charge is the caller's.
            added += stop_cost(p, v, dn, start) - stability_charge(p, p.nodes[dn].job, v);
        }
        if pos == n {
            break;
        }
        let node = r.nodes[pos];
        let start = visit(node, &mut t, &mut place);
        if pos >= k && (start - r.start[pos]).abs() <= EPS {
            // Back on the cached schedule: nothing from this stop on changes.
            return added - (r.prefix[pos] - r.prefix[first]) + distance_delta(p, r, i, k, dn);
        }
        added += stop_cost(p, v, node, start);
    }
    let mut end = t;
    if let Some(e) = p.vehicles[v].end_place {
        end += p.time(v, place, e);
    }
    added - (r.prefix[n] - r.prefix[first])
        + obj.duration * (end - r.end)
        + distance_delta(p, r, i, k, dn)
}

/// The distance term's change for inserting the pickup before `i` (when given) and the drop-off
/// before `k`.
fn distance_delta(p: &Problem, r: &Route, i: Option<usize>, k: usize, dn: usize) -> f64 {
    let w = p.objective.distance;
    if w == 0.0 {
        return 0.0;
    }
    let v = r.v;
    let pn = dn - 1;
    let d = match i {
        Some(i) if i == k => {
            let (a, b) = (r.place_before(p, i), r.place_at(p, i));
            p.distance(v, a, pn) + p.distance(v, pn, dn) + b.map_or(0.0, |b| p.distance(v, dn, b))
                - b.map_or(0.0, |b| p.distance(v, a, b))
        }
        Some(i) => {
            detour(p, v, r.place_before(p, i), pn, r.place_at(p, i))
                + detour(p, v, r.place_before(p, k), dn, r.place_at(p, k))
        }
        None => detour(p, v, r.place_before(p, k), dn, r.place_at(p, k)),
    };
    w * d
}

/// [`timed_delta`] by re-evaluating the whole route (used for empty routes, whose vehicle term
/// and duration start from nothing).
fn timed_delta_full(
    p: &Problem,
    r: &Route,
    i: Option<usize>,
    k: usize,
    dn: usize,
    scratch: &mut Scratch,
) -> f64 {
    let nodes = &mut scratch.nodes;
    nodes.clear();
    nodes.extend_from_slice(&r.nodes);
    nodes.insert(k, dn);
    if let Some(i) = i {
        nodes.insert(i, dn - 1);
    }
    let eval = evaluate_into(p, r.v, nodes, None);
    let mut delta = eval.cost - r.cost;
    // evaluate_into counts the vehicle and stability terms; the caller adds them separately.
    if r.is_empty() {
        delta -= p.objective.vehicle;
    }
    delta - stability_charge(p, p.nodes[dn].job, r.v)
}

/// The stability cost of job `j` on vehicle `v`: charged when the previous plan gave it to
/// another courier.
fn stability_charge(p: &Problem, j: usize, v: usize) -> f64 {
    if p.jobs[j].previous.is_some_and(|w| w != v) {
        p.objective.stability
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Rejection;
    use crate::solution::Solution;
    use crate::testing::{assert_consistent, constructed, problem};

    #[test]
    fn the_best_insertion_is_feasible_and_priced_exactly() {
        let p = problem(3, 12, 3, false);
        let mut sol = constructed(&p);
        let j = (0..p.jobs.len())
            .find(|&j| sol.route_of[j].is_some())
            .expect("something is planned");
        let v = sol.take_out(&p, j).unwrap();
        sol.routes[v].update(&p);
        let before = sol.routes[v].cost;
        let ins = best_insertion(&p, &sol.routes[v], j, None, &mut Scratch::default())
            .expect("it fitted before");
        sol.insert(&p, j, &ins);
        assert!((sol.routes[v].cost - before - ins.delta).abs() < 1e-6 * before.max(1.0));
        assert_consistent(&p, &sol);
    }

    #[test]
    fn blinks_are_seeded() {
        let p = problem(3, 12, 3, false);
        let sol = Solution::empty(&p);
        let run = |seed| {
            let mut rng = Random::new(seed);
            (0..p.jobs.len())
                .map(|j| {
                    best_insertion(
                        &p,
                        &sol.routes[0],
                        j,
                        Some((&mut rng, 0.5)),
                        &mut Scratch::default(),
                    )
                    .ok()
                    .map(|i| (i.i, i.k))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(4), run(4));
    }

    #[test]
    fn an_order_locked_to_another_courier_is_pinned_elsewhere() {
        use crate::model::{CourierId, OrderId};
        use std::collections::HashMap;
        let (couriers, orders) = crate::testing::city(1, 3, 2);
        let pins = HashMap::from([(
            OrderId::parse("o0").unwrap(),
            CourierId::parse("c1").unwrap(),
        )]);
        let p = crate::Problem::builder(
            &couriers,
            &orders,
            std::sync::Arc::new(crate::StraightLine::exact()),
        )
        .pins(pins)
        .build()
        .unwrap();
        let sol = Solution::empty(&p);
        let got = best_insertion(&p, &sol.routes[0], 0, None, &mut Scratch::default());
        assert_eq!(got, Err(Rejection::PinnedElsewhere));
        assert!(best_insertion(&p, &sol.routes[1], 0, None, &mut Scratch::default()).is_ok());
    }
}
