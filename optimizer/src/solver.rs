//! The solver: builds a first solution by regret insertion (or repairs a previous plan), removes
//! whole routes with the ejection pool when vehicles count, then runs ruin-and-recreate with
//! simulated annealing until the budget is spent. Independent searches ("islands", one per
//! thread of the given rayon pool) share their best solution at fixed epochs, so a run with an
//! iteration limit is repeatable for a seed, whatever the machine.
//!
//! Nothing here reads a clock: the caller's [`Budget`] says how much of the time is used.

use serde::{Deserialize, Serialize};

use crate::construction::{Open, construct, insert_greedy, insert_with_regret, unassigned_reasons};
use crate::model::{CourierId, Plan, Stop, StopKind, UnassignedReason};
use crate::parallel;
use crate::problem::Problem;
use crate::random::Random;
use crate::search::Neighbours;
use crate::search::local::{ExchangePairs, LocalMove, RelocatePair, ReorderInRoute, descend};
use crate::search::route_minimization::RouteMinimizer;
use crate::search::ruin::{
    RandomRemoval, RelatedRemoval, RouteRemoval, Ruin, RuinContext, StringRemoval, WorstRemoval,
};
use crate::solution::Solution;

/// The ruin operators, each with how often it is drawn (relative weights).
const RUINS: [(f64, &dyn Ruin); 5] = [
    (0.45, &StringRemoval { average_string: 8 }),
    (0.2, &RelatedRemoval),
    (0.15, &RandomRemoval),
    (0.12, &WorstRemoval),
    (0.08, &RouteRemoval),
];

/// The local moves that intensify around each new best (on problems up to
/// [`LOCAL_SEARCH_ON_BEST_MAX_JOBS`] orders), and how many passes they get.
const INTENSIFY: (&[&dyn LocalMove], usize) = (&[&RelocatePair, &ReorderInRoute], 2);

/// The local moves that polish the final best, and how many passes they get.
const POLISH: (&[&dyn LocalMove], usize) = (&[&RelocatePair, &ExchangePairs, &ReorderInRoute], 5);

/// The final polish may run this far past the budget (as a fraction of it).
const POLISH_OVERRUN: f64 = 1.05;

/// Mixed into the seed for the final polish's own generator.
const POLISH_SEED: u64 = 0x5EED;

/// Route removal gives up when an attempt uses this share of the route phase without success.
const ROUTE_PATIENCE: f64 = 0.4;

/// With an iteration limit, each route-removal attempt may use this fraction of an island's
/// iterations.
const ROUTE_TRIES_DIVISOR: u64 = 8;

/// At most this share of the orders is ruined at once.
const MAX_RUIN_SHARE: (usize, usize) = (2, 5);

/// How often recreation uses regret-2 instead of cheapest insertion with blinks.
const REGRET_CHANCE: f64 = 0.1;

/// The blink rate of cheapest insertion in recreation.
const RECREATE_BLINK: f64 = 0.01;

/// Regret's k when a warm start inserts what the previous plan lacks.
const WARM_START_REGRET: usize = 2;

/// How much of the caller's time budget is used: 0 at the start, 1 or more when it is over.
/// The dispatcher and benchmarks implement it with a clock; tests with a fixed fraction.
pub trait Budget: Sync {
    /// The fraction of the budget used so far.
    fn used(&self) -> f64;
}

/// A budget that never runs out: the iteration limit alone ends the search.
pub struct Unlimited;

impl Budget for Unlimited {
    fn used(&self) -> f64 {
        0.0
    }
}

/// Solver settings. `Default` gives a repeatable search of moderate length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SolverConfig {
    /// Seed of all randomness.
    pub seed: u64,
    /// Total ruin-and-recreate iterations over all islands; `None` runs until the budget ends.
    pub max_iterations: Option<u64>,
    /// Number of independent searches (at most one per thread is useful).
    pub islands: usize,
    /// Iterations between the islands' exchanges of their best solutions.
    pub epoch: u64,
    /// Share of the budget given to route removal when the objective minimises vehicles.
    pub route_phase: f64,
    /// Orders removed per ruin: at least this many...
    pub min_ruin: usize,
    /// ...and at most this many (also capped at 40% of the orders).
    pub max_ruin: usize,
    /// Start and end temperatures of annealing, relative to the average cost per order.
    pub temperature: (f64, f64),
}

impl Default for SolverConfig {
    fn default() -> Self {
        SolverConfig {
            seed: 1,
            max_iterations: Some(2_000),
            islands: 2,
            epoch: 250,
            route_phase: 0.5,
            min_ruin: 3,
            max_ruin: 20,
            temperature: (0.01, 0.0001),
        }
    }
}

/// What a solve did, for logs and metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SolveStats {
    /// Ruin-and-recreate iterations run, all islands together.
    pub iterations: u64,
    /// Routes removed by the ejection pool.
    pub routes_removed: u64,
    /// Times the best solution improved.
    pub improvements: u64,
    /// Objective value of the starting solution (constructed, or the repaired previous plan).
    pub start_cost: f64,
    /// Final objective value.
    pub cost: f64,
    /// Final distance.
    pub distance: f64,
    /// Couriers with work.
    pub vehicles: usize,
    /// Orders left out.
    pub unassigned: usize,
}

/// A solve's result.
#[derive(Clone, Debug)]
pub struct Solved {
    /// The plan.
    pub plan: Plan,
    /// How it was found.
    pub stats: SolveStats,
}

/// Solves `p` from scratch within `budget`.
///
/// ```
/// use std::sync::Arc;
/// use optimizer::model::*;
/// use optimizer::{Problem, SolverConfig, Unlimited, StraightLine, solve};
///
/// let at = |x: f64, y: f64| Location::from(PlanarPoint::parse(x, y).unwrap());
/// let order = Order::builder(OrderId::parse("o1")?, RestaurantId::parse("r1")?, at(1.0, 0.0), at(2.0, 0.0), Time::ZERO).build()?;
/// let courier = Courier::builder(CourierId::parse("c1")?, Vehicle::of_kind(VehicleKind::Bike), TimeWindow::ALWAYS, at(0.0, 0.0)).build()?;
/// let (couriers, orders) = (vec![courier], vec![order]);
/// let problem = Problem::builder(&couriers, &orders, Arc::new(StraightLine::exact())).build().unwrap();
/// let solved = solve(&problem, &SolverConfig::default(), &Unlimited);
/// assert_eq!(solved.plan.routes[0].stops.len(), 2);
/// # Ok::<(), ModelError>(())
/// ```
pub fn solve(p: &Problem, config: &SolverConfig, budget: &dyn Budget) -> Solved {
    let start = construct(p);
    run(p, config, budget, start)
}

/// Solves `p` starting from `previous` routes (stops per courier, e.g. the last published plan):
/// stops of unknown orders or couriers are dropped, routes that became infeasible are repaired
/// by removing orders, and new orders are inserted. The result is never worse than that
/// repaired start.
pub fn solve_from(
    p: &Problem,
    previous: &[(CourierId, Vec<Stop>)],
    config: &SolverConfig,
    budget: &dyn Budget,
) -> Solved {
    let start = warm_start(p, previous);
    run(p, config, budget, start)
}

fn warm_start(p: &Problem, previous: &[(CourierId, Vec<Stop>)]) -> Solution {
    let mut sol = repaired(p, previous);
    let pending = sol.unassigned.clone();
    insert_with_regret(p, &mut sol, &pending, WARM_START_REGRET, Open::Any);
    sol
}

/// The `previous` routes as a solution of `p`: stops of unknown orders or couriers dropped,
/// commitments in place, and infeasible routes repaired by taking movable orders off their
/// ends; everything else unassigned.
pub(crate) fn repaired(p: &Problem, previous: &[(CourierId, Vec<Stop>)]) -> Solution {
    let mut sol = Solution::empty(p);
    let job_of: std::collections::HashMap<_, _> = p
        .jobs
        .iter()
        .enumerate()
        .map(|(j, job)| (&job.order, j))
        .collect();
    let vehicle_of: std::collections::HashMap<_, _> = p
        .vehicles
        .iter()
        .enumerate()
        .map(|(v, veh)| (&veh.courier, v))
        .collect();
    for (courier, stops) in previous {
        let Some(&v) = vehicle_of.get(courier) else {
            continue;
        };
        let fixed = sol.routes[v].fixed_len(p);
        // What the courier must do whatever the previous plan said: its committed stops and the
        // drop-offs of food on board or committed (as `Solution::empty` placed them).
        let required = sol.routes[v].nodes.clone();
        let mut nodes: Vec<usize> = sol.routes[v].nodes[..fixed].to_vec();
        for s in stops {
            let Some(&j) = job_of.get(&s.order) else {
                continue;
            };
            let node = match s.kind {
                StopKind::Pickup => 2 * j,
                StopKind::Dropoff => 2 * j + 1,
            };
            let owner_ok = p.jobs[j].locked.is_none_or(|o| o == v);
            if nodes.contains(&node) || !owner_ok {
                continue;
            }
            if sol.route_of[j].is_some_and(|w| w != v) {
                continue;
            }
            if s.kind == StopKind::Pickup && p.jobs[j].onboard.is_some() {
                continue;
            }
            if s.kind == StopKind::Dropoff
                && p.jobs[j].onboard.is_none()
                && !nodes.contains(&(2 * j))
            {
                continue;
            }
            nodes.push(node);
        }
        // Keep both stops of each order, or neither (onboard orders need only the drop-off); the
        // committed prefix stays, and required stops the previous plan lacked go at the end.
        let mut complete: Vec<usize> = nodes[..fixed].to_vec();
        complete.extend(nodes[fixed..].iter().copied().filter(|&n| {
            let j = p.nodes[n].job;
            p.jobs[j].onboard.is_some()
                || (nodes.contains(&(2 * j)) && nodes.contains(&(2 * j + 1)))
        }));
        for n in required {
            if !complete.contains(&n) {
                complete.push(n);
            }
        }
        sol.routes[v].nodes = complete;
        sol.routes[v].update(p);
        for &n in &sol.routes[v].nodes {
            sol.route_of[p.nodes[n].job] = Some(v);
        }
    }
    // Make every route feasible by removing movable orders from the end of infeasible routes.
    for v in 0..sol.routes.len() {
        while !sol.routes[v].feasible {
            let movable = sol.routes[v]
                .nodes
                .iter()
                .rev()
                .map(|&n| p.nodes[n].job)
                .find(|&j| Solution::is_movable(p, j));
            match movable {
                Some(j) => {
                    sol.routes[v].nodes.retain(|&n| p.nodes[n].job != j);
                    sol.routes[v].update(p);
                    sol.route_of[j] = None;
                }
                None => break, // only commitments left: keep them as they are
            }
        }
    }
    sol.unassigned = (0..p.jobs.len())
        .filter(|&j| sol.route_of[j].is_none())
        .collect();
    sol
}

struct Island<'a> {
    p: &'a Problem,
    rng: Random,
    current: Solution,
    best: Solution,
    minimizer: RouteMinimizer,
    stats: SolveStats,
}

fn run(p: &Problem, config: &SolverConfig, budget: &dyn Budget, start: Solution) -> Solved {
    let start_cost = start.cost(p);
    let neighbours = Neighbours::new(p);
    let islands_n = config.islands.max(1);
    let mut master = Random::new(config.seed);
    let mut islands: Vec<Island<'_>> = (0..islands_n)
        .map(|_| Island {
            p,
            rng: master.fork(),
            current: start.clone(),
            best: start.clone(),
            minimizer: RouteMinimizer::new(p),
            stats: SolveStats::default(),
        })
        .collect();
    let total_iterations = config.max_iterations;
    let per_island = total_iterations.map(|n| n.div_ceil(islands_n as u64));
    let mut done = 0u64;
    let progress = |iterations: u64| -> f64 {
        let by_iter = per_island.map_or(0.0, |n| iterations as f64 / n.max(1) as f64);
        by_iter.max(budget.used())
    };
    let route_phase = if p.objective.minimize_vehicles && p.jobs.len() > 1 {
        config.route_phase
    } else {
        0.0
    };
    // Nothing to place, or nobody to place it with: the start is the answer.
    if p.jobs.is_empty() || p.vehicles.is_empty() {
        return finish(
            p,
            &start,
            SolveStats {
                start_cost,
                ..SolveStats::default()
            },
        );
    }
    // Phase 1: remove routes while the budget allows, giving up early when removals stop
    // succeeding (each attempt may use at most `patience` of the budget past the last success).
    if route_phase > 0.0 {
        let patience = route_phase * ROUTE_PATIENCE;
        let mut last_success = progress(done);
        loop {
            let phase_end = route_phase.min(last_success + patience);
            if progress(done) >= phase_end {
                break;
            }
            let results: Vec<Option<Solution>> = parallel::map_mut(&mut islands, |island| {
                let mut tries = 0u64;
                let mut stop = || {
                    tries += 1;
                    budget.used() >= phase_end
                        || per_island.is_some_and(|n| tries > n / ROUTE_TRIES_DIVISOR)
                };
                let found = island.minimizer.remove_one_route(
                    island.p,
                    &island.best,
                    &mut island.rng,
                    &mut stop,
                );
                if let Some(s) = &found {
                    island.best = s.clone();
                    island.current = s.clone();
                    island.stats.routes_removed += 1;
                }
                found
            });
            done += per_island.map_or(0, |n| n / ROUTE_TRIES_DIVISOR).max(1);
            let any = results.iter().any(Option::is_some);
            share_best(p, &mut islands);
            if any {
                last_success = progress(done);
            } else if per_island.is_some() || budget.used() >= phase_end {
                break;
            }
        }
    }
    // Phase 2: ruin and recreate with annealing.
    let mut iteration = if per_island.is_some() { 0 } else { done };
    loop {
        let epoch_end = iteration + config.epoch;
        let progress_at = |i: u64| progress(i);
        let over = parallel::map_mut(&mut islands, |island| {
            let mut i = iteration;
            while i < epoch_end {
                let f = progress_at(i);
                if f >= 1.0 {
                    return true;
                }
                lns_step(island, &neighbours, config, f, &|| budget.used() >= 1.0);
                i += 1;
            }
            false
        });
        for island in &mut islands {
            island.stats.iterations += epoch_end - iteration;
        }
        iteration = epoch_end;
        share_best(p, &mut islands);
        if over.iter().any(|o| *o) || progress(iteration) >= 1.0 {
            break;
        }
    }
    let best_idx = (0..islands.len())
        .min_by_key(|&i| islands[i].best.key(p))
        .unwrap_or(0);
    let mut stats = SolveStats {
        start_cost,
        ..SolveStats::default()
    };
    for island in &islands {
        stats.iterations += island.stats.iterations;
        stats.routes_removed += island.stats.routes_removed;
        stats.improvements += island.stats.improvements;
    }
    let mut best = islands.swap_remove(best_idx).best;
    let mut rng = Random::new(config.seed ^ POLISH_SEED);
    let (moves, rounds) = POLISH;
    descend(
        p,
        &neighbours,
        &mut best,
        &mut rng,
        moves,
        rounds,
        // A little past the budget at most: the descent is the last polish.
        &|| budget.used() >= POLISH_OVERRUN,
    );
    finish(p, &best, stats)
}

fn finish(p: &Problem, best: &Solution, mut stats: SolveStats) -> Solved {
    stats.cost = best.cost(p);
    stats.distance = best.distance();
    stats.vehicles = best.used_routes();
    stats.unassigned = best.unassigned.len();
    let reasons: std::collections::HashMap<usize, UnassignedReason> =
        unassigned_reasons(p, best).into_iter().collect();
    let plan = best.to_plan(p, |j| {
        reasons
            .get(&j)
            .copied()
            .unwrap_or(UnassignedReason::NotPlanned)
    });
    Solved { plan, stats }
}

/// Every island whose best is worse than the overall best continues from a copy of it.
fn share_best(p: &Problem, islands: &mut [Island<'_>]) {
    if islands.len() < 2 {
        return;
    }
    let mut best = 0;
    for i in 1..islands.len() {
        if islands[i].best.better_than(p, &islands[best].best) {
            best = i;
        }
    }
    let winner = islands[best].best.clone();
    let winner_key = winner.key(p);
    for (i, island) in islands.iter_mut().enumerate() {
        if i != best {
            let k = island.best.key(p);
            if winner_key.counts() < k.counts() {
                island.best = winner.clone();
                island.current = winner.clone();
            }
        }
    }
}

/// Above this many orders, new bests are not polished by a full local-search pass.
const LOCAL_SEARCH_ON_BEST_MAX_JOBS: usize = 600;

fn lns_step(
    island: &mut Island<'_>,
    neighbours: &Neighbours,
    config: &SolverConfig,
    progress: f64,
    over: &dyn Fn() -> bool,
) {
    let p = island.p;
    let rng = &mut island.rng;
    let mut candidate = island.current.clone();
    let jobs = p.jobs.len();
    let (share, of) = MAX_RUIN_SHARE;
    let max_ruin = config.max_ruin.min((jobs * share / of).max(1)).max(1);
    let min_ruin = config.min_ruin.min(max_ruin).max(1);
    let count = rng.range(min_ruin, max_ruin);
    let mut pick = rng.unit() * RUINS.iter().map(|(w, _)| w).sum::<f64>();
    let mut op = 0;
    for (i, (w, _)) in RUINS.iter().enumerate() {
        if pick < *w {
            op = i;
            break;
        }
        pick -= w;
    }
    let ctx = RuinContext { p, neighbours };
    let mut removed = RUINS[op].1.ruin(&ctx, &mut candidate, rng, count);
    // Orders left out before get another chance.
    for &j in &candidate.unassigned {
        if !removed.contains(&j) {
            removed.push(j);
        }
    }
    // Order of reinsertion: random, far from the start first, or tightest window first.
    match rng.below(4) {
        0 => rng.shuffle(&mut removed),
        1 => removed.sort_by(|&a, &b| p.nodes[2 * b].demand.cmp(&p.nodes[2 * a].demand)),
        2 => removed.sort_by(|&a, &b| {
            let wa = p.nodes[2 * a + 1].close - p.nodes[2 * a].open;
            let wb = p.nodes[2 * b + 1].close - p.nodes[2 * b].open;
            wa.total_cmp(&wb)
        }),
        // Far from the first courier's start first (`run` returns early without couriers).
        _ => removed.sort_by(|&a, &b| {
            let da = p.distance(0, p.vehicles[0].start_place, 2 * a);
            let db = p.distance(0, p.vehicles[0].start_place, 2 * b);
            db.total_cmp(&da)
        }),
    }
    let open = if p.objective.minimize_vehicles {
        Open::UsedOnly
    } else {
        Open::Any
    };
    if rng.chance(REGRET_CHANCE) {
        insert_with_regret(p, &mut candidate, &removed, 2, open);
    } else {
        insert_greedy(p, &mut candidate, &removed, open, rng, RECREATE_BLINK);
    }
    // Anything still out may open a courier, if vehicles are not being minimised.
    let key_c = candidate.key(p);
    let key_cur = island.current.key(p);
    let accept = if key_c.counts() != key_cur.counts() {
        key_c.counts() < key_cur.counts()
    } else {
        let scale = (key_cur.value / jobs.max(1) as f64).abs().max(1e-9);
        let (t0, t1) = config.temperature;
        let t = scale * t0 * (t1 / t0).powf(progress.clamp(0.0, 1.0));
        key_c.value < key_cur.value - t * rng.unit().max(1e-12).ln()
    };
    if accept {
        island.current = candidate;
        if island.current.better_than(p, &island.best) {
            // Intensify around every new best with the local moves (a full pass over every
            // order, so only on problems small enough for it to be cheap).
            if jobs <= LOCAL_SEARCH_ON_BEST_MAX_JOBS {
                let (moves, rounds) = INTENSIFY;
                descend(
                    p,
                    neighbours,
                    &mut island.current,
                    &mut island.rng,
                    moves,
                    rounds,
                    over,
                );
            }
            island.best = island.current.clone();
            island.stats.improvements += 1;
            debug_assert!(
                {
                    let mut fresh = island.best.clone();
                    fresh.routes.iter_mut().for_each(|r| r.update(p));
                    (fresh.cost(p) - island.best.cost(p)).abs()
                        < 1e-6 * fresh.cost(p).abs().max(1.0)
                },
                "a route's cached cost is stale"
            );
        }
    }
}

/// A route's stops as the public plan lists them, for warm starts from a [`Plan`].
pub fn routes_of(plan: &Plan) -> Vec<(CourierId, Vec<Stop>)> {
    plan.routes
        .iter()
        .map(|r| {
            (
                r.courier.clone(),
                r.stops.iter().map(|s| s.stop.clone()).collect(),
            )
        })
        .collect()
}
