//! One courier's route inside the solver, with its schedule cached: service start times, loads,
//! and for each position the latest arrival that keeps the rest of the route feasible (forward
//! time slack), so most insertion checks are constant time per position.

use crate::problem::Problem;

/// Time tolerance for window checks, far below any real or benchmark unit.
pub(crate) const EPS: f64 = 1e-7;

/// A route and its cached schedule.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// The courier (vehicle index).
    pub v: usize,
    /// Node indices in visiting order; the courier's committed stops come first.
    pub nodes: Vec<usize>,
    /// Service start at each position.
    pub start: Vec<f64>,
    /// Load after each position.
    pub load: Vec<i32>,
    /// Latest arrival at each position that keeps the suffix feasible.
    pub latest: Vec<f64>,
    /// Sum of the per-stop cost terms of the positions before each index (`len + 1` entries),
    /// so an insertion's cost change is priced from its first changed stop onwards.
    pub prefix: Vec<f64>,
    /// When the route ends: after the last stop (and the drive to the end place, if any).
    pub end: f64,
    /// The trip-rule state before each position (`len + 1` entries; empty without trip rules),
    /// so an insertion's rule check starts where the insertion does.
    pub walks: Vec<TripWalk>,
    /// Distance driven, end place included.
    pub distance: f64,
    /// The route's share of the objective.
    pub cost: f64,
    /// Whether every window and the capacity hold.
    pub feasible: bool,
}

/// Follows a stop sequence and tells whether it keeps the problem's trip rules: with one trip
/// at a time, no pickup once drop-offs have begun until the bag is empty; with single-restaurant
/// trips, everything in the bag at once comes from one restaurant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TripWalk {
    load: i32,
    dropping: bool,
    restaurant: Option<usize>,
}

impl TripWalk {
    /// The state when vehicle `v` sets off.
    pub fn start(p: &Problem, v: usize) -> TripWalk {
        let vehicle = &p.vehicles[v];
        TripWalk {
            load: vehicle.initial_load,
            dropping: vehicle.initial_load > 0,
            restaurant: vehicle.onboard_restaurant,
        }
    }

    /// Visits node `n`; false when that breaks a rule. The state follows the visit either way
    /// (a committed stop that breaks a rule is still a fact the rest of the route starts from).
    pub fn step(&mut self, p: &Problem, n: usize) -> bool {
        let node = &p.nodes[n];
        let mut ok = true;
        if node.pickup {
            if self.load > 0 {
                let second_trip = p.trips.one_trip_at_a_time && self.dropping;
                let other_restaurant = p.trips.single_restaurant
                    && self.restaurant.is_some_and(|r| r != node.restaurant);
                ok = !second_trip && !other_restaurant;
            }
            self.restaurant.get_or_insert(node.restaurant);
        } else {
            self.dropping = true;
        }
        self.load += node.demand;
        if self.load <= 0 {
            self.dropping = false;
            self.restaurant = None;
        }
        ok
    }
}

/// Whether route `r` with job `j` inserted (pickup before position `i` unless on board, drop-off
/// before position `k`) keeps the trip rules. The walk starts from the cached state at the first
/// inserted stop and, on a feasible route, ends once both are placed and the state is the cached
/// one again: from there on the route is as before.
pub(crate) fn trips_ok_with(
    p: &Problem,
    r: &Route,
    i: Option<usize>,
    k: usize,
    pn: usize,
    dn: usize,
) -> bool {
    let ok = trips_ok_from(p, r, i, k, pn, dn);
    #[cfg(debug_assertions)]
    if r.feasible {
        // Committed stops are facts: their own breaches do not count.
        let fixed = r.fixed_len(p);
        let mut walk = TripWalk::start(p, r.v);
        let mut full = true;
        for pos in 0..=r.nodes.len() {
            full &= i != Some(pos) || walk.step(p, pn);
            full &= k != pos || walk.step(p, dn);
            full &= pos == r.nodes.len() || walk.step(p, r.nodes[pos]) || pos < fixed;
        }
        debug_assert_eq!(
            ok,
            full,
            "the trip-rule check from the cache differs from a full walk: i {i:?} k {k} nodes {:?} pn {pn} fixed {} walks {:?}",
            r.nodes,
            p.vehicles[r.v].fixed.len(),
            r.walks
        );
    }
    ok
}

fn trips_ok_from(p: &Problem, r: &Route, i: Option<usize>, k: usize, pn: usize, dn: usize) -> bool {
    let first = i.unwrap_or(k);
    let mut walk = r.walks.get(first).copied().unwrap_or_else(|| {
        let mut w = TripWalk::start(p, r.v);
        for &n in &r.nodes[..first] {
            w.step(p, n);
        }
        w
    });
    for pos in first..=r.nodes.len() {
        if i == Some(pos) && !walk.step(p, pn) {
            return false;
        }
        if k == pos && !walk.step(p, dn) {
            return false;
        }
        if pos >= k && r.feasible && r.walks.get(pos) == Some(&walk) {
            return true;
        }
        if pos < r.nodes.len() && !walk.step(p, r.nodes[pos]) {
            return false;
        }
    }
    true
}

/// Whether a pickup of node `pn` may go before position `i` of route `r` as far as the stops
/// before it are concerned (a necessary condition for [`trips_ok_with`]).
#[inline]
pub(crate) fn trip_pickup_ok(p: &Problem, r: &Route, i: usize, pn: usize) -> bool {
    r.walks.get(i).is_none_or(|w| {
        let mut w = *w;
        w.step(p, pn)
    })
}

/// The outcome of a forward pass over a node sequence.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Evaluation {
    pub feasible: bool,
    pub distance: f64,
    pub cost: f64,
    /// When the route ends (see [`Route::end`]).
    pub end: f64,
}

/// Where a forward pass writes the schedule it computes.
pub(crate) struct ScheduleOut<'a> {
    pub start: &'a mut Vec<f64>,
    pub load: &'a mut Vec<i32>,
    pub prefix: &'a mut Vec<f64>,
}

impl Route {
    /// The route of vehicle `v` holding only its committed stops.
    pub fn new(p: &Problem, v: usize) -> Route {
        let mut r = Route {
            v,
            nodes: p.vehicles[v].fixed.clone(),
            start: Vec::new(),
            load: Vec::new(),
            latest: Vec::new(),
            prefix: Vec::new(),
            end: 0.0,
            walks: Vec::new(),
            distance: 0.0,
            cost: 0.0,
            feasible: true,
        };
        r.update(p);
        r
    }

    /// Number of committed stops that nothing may precede or move.
    pub fn fixed_len(&self, p: &Problem) -> usize {
        p.vehicles[self.v].fixed.len()
    }

    /// Whether the route has stops the solver placed or must place (beyond an empty start).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Place of the stop before position `i` (the courier's start for `i == 0`).
    #[inline]
    pub fn place_before(&self, p: &Problem, i: usize) -> usize {
        if i == 0 {
            p.vehicles[self.v].start_place
        } else {
            Problem::place(self.nodes[i - 1])
        }
    }

    /// Place at position `i`, or the end place at `i == len` (None when the route ends anywhere).
    #[inline]
    pub fn place_at(&self, p: &Problem, i: usize) -> Option<usize> {
        if i < self.nodes.len() {
            Some(Problem::place(self.nodes[i]))
        } else {
            p.vehicles[self.v].end_place
        }
    }

    /// When the courier leaves the stop before position `i`.
    #[inline]
    pub fn departure_before(&self, p: &Problem, i: usize) -> f64 {
        if i == 0 {
            p.vehicles[self.v].depart
        } else {
            self.start[i - 1] + p.nodes[self.nodes[i - 1]].service
        }
    }

    /// Load carried when arriving at position `i`.
    #[inline]
    pub fn load_before(&self, p: &Problem, i: usize) -> i32 {
        if i == 0 {
            p.vehicles[self.v].initial_load
        } else {
            self.load[i - 1]
        }
    }

    /// Latest arrival at position `i` (at the end place for `i == len`).
    #[inline]
    pub fn latest_at(&self, p: &Problem, i: usize) -> f64 {
        if i < self.nodes.len() {
            self.latest[i]
        } else {
            p.vehicles[self.v].end_close
        }
    }

    /// Recomputes the cached schedule and cost after the node list changed.
    pub fn update(&mut self, p: &Problem) {
        let n = self.nodes.len();
        self.start.resize(n, 0.0);
        self.load.resize(n, 0);
        self.latest.resize(n, 0.0);
        self.prefix.resize(n + 1, 0.0);
        self.walks.clear();
        if p.trips.any() {
            let mut walk = TripWalk::start(p, self.v);
            self.walks.push(walk);
            for &node in &self.nodes {
                walk.step(p, node);
                self.walks.push(walk);
            }
        }
        let eval = evaluate_into(
            p,
            self.v,
            &self.nodes,
            Some(ScheduleOut {
                start: &mut self.start,
                load: &mut self.load,
                prefix: &mut self.prefix,
            }),
        );
        self.end = eval.end;
        self.distance = eval.distance;
        self.cost = eval.cost;
        self.feasible = eval.feasible;
        let vehicle = &p.vehicles[self.v];
        let mut next_latest = vehicle.end_close;
        let mut next_place = vehicle.end_place;
        for k in (0..n).rev() {
            let node = self.nodes[k];
            let here = Problem::place(node);
            let via_next = match next_place {
                Some(next) => next_latest - p.nodes[node].service - p.time(self.v, here, next),
                None => f64::INFINITY,
            };
            let l = p.close(self.v, node).min(via_next);
            self.latest[k] = l;
            next_latest = l;
            next_place = Some(here);
        }
    }
}

/// Forward pass over `nodes` on vehicle `v`: feasibility, distance and cost. Writes service
/// starts and loads into `out` when given.
pub(crate) fn evaluate_into(
    p: &Problem,
    v: usize,
    nodes: &[usize],
    mut out: Option<ScheduleOut<'_>>,
) -> Evaluation {
    let vehicle = &p.vehicles[v];
    let obj = &p.objective;
    let mut t = vehicle.depart;
    let mut place = vehicle.start_place;
    let mut load = vehicle.initial_load;
    let mut distance = 0.0;
    let mut feasible = true;
    let mut cost = 0.0;
    // Committed stops are facts, not choices: their lateness is not the plan's infeasibility.
    let fixed = vehicle.fixed.len().min(nodes.len());
    let mut trips = p.trips.any().then(|| TripWalk::start(p, v));
    for (k, &n) in nodes.iter().enumerate() {
        if let Some(walk) = trips.as_mut()
            && !walk.step(p, n)
            && k >= fixed
        {
            feasible = false;
        }
        let node = &p.nodes[n];
        let here = Problem::place(n);
        distance += p.distance(v, place, here);
        let arrival = t + p.time(v, place, here);
        let start = arrival.max(node.open);
        if k >= fixed && start > p.close(v, n) + EPS {
            feasible = false;
        }
        load += node.demand;
        if load > vehicle.capacity || load < 0 {
            feasible = false;
        }
        if let Some(out) = out.as_mut() {
            out.prefix[k] = cost;
        }
        cost += stop_cost(p, v, n, start);
        if let Some(out) = out.as_mut() {
            out.start[k] = start;
            out.load[k] = load;
        }
        t = start + node.service;
        place = here;
    }
    if let Some(end) = vehicle.end_place {
        distance += p.distance(v, place, end);
        t += p.time(v, place, end);
        if t > vehicle.end_close + EPS {
            feasible = false;
        }
    }
    if let Some(out) = out.as_mut() {
        out.prefix[nodes.len()] = cost;
    }
    if !nodes.is_empty() {
        cost += obj.vehicle + obj.duration * (t - vehicle.depart).max(0.0);
    }
    cost += obj.distance * distance;
    Evaluation {
        feasible,
        distance,
        cost,
        end: t,
    }
}

/// A stop's times in a schedule: when the courier arrives and when service starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct StopTimes {
    pub arrival: f64,
    pub start: f64,
}

/// The schedule of `nodes` on vehicle `v` (arrival and service start at each stop, as
/// [`evaluate_into`] computes them) and the time spent driving, the way to the end place
/// included.
pub(crate) fn schedule(p: &Problem, v: usize, nodes: &[usize]) -> (Vec<StopTimes>, f64) {
    let vehicle = &p.vehicles[v];
    let mut t = vehicle.depart;
    let mut place = vehicle.start_place;
    let mut driving = 0.0;
    let mut times = Vec::with_capacity(nodes.len());
    for &n in nodes {
        let here = Problem::place(n);
        let leg = p.time(v, place, here);
        driving += leg;
        let arrival = t + leg;
        let start = arrival.max(p.nodes[n].open);
        times.push(StopTimes { arrival, start });
        t = start + p.nodes[n].service;
        place = here;
    }
    if let Some(end) = vehicle.end_place {
        driving += p.time(v, place, end);
    }
    (times, driving)
}

/// The cost terms of one stop served at `start` on vehicle `v`: food waiting at a pickup;
/// click-to-door, lateness and the stability charge at a drop-off.
#[inline]
pub(crate) fn stop_cost(p: &Problem, v: usize, n: usize, start: f64) -> f64 {
    let obj = &p.objective;
    let node = &p.nodes[n];
    let job = &p.jobs[node.job];
    if node.pickup {
        obj.ready_to_pickup * (start - job.ready_at).max(0.0)
    } else {
        let mut cost = obj.click_to_door * (start - job.placed_at).max(0.0);
        if let Some(deadline) = job.soft_deadline {
            cost += obj.lateness * (start - deadline).max(0.0);
        }
        if job.previous.is_some_and(|w| w != v) {
            cost += obj.stability;
        }
        cost
    }
}
