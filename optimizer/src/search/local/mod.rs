//! Local moves that improve a solution in place, one per file: relocate an order's pair of
//! stops, exchange two orders between routes, and reorder the stops within a route. Each move
//! is applied only when it lowers the cost and keeps every route feasible.

mod exchange_pairs;
mod relocate_pair;
mod reorder_in_route;

pub(crate) use exchange_pairs::ExchangePairs;
pub(crate) use relocate_pair::RelocatePair;
pub(crate) use reorder_in_route::ReorderInRoute;

use crate::problem::Problem;
use crate::random::Random;
use crate::search::Neighbours;
use crate::solution::Solution;

/// A move must gain more than this to count (below it is rounding noise).
pub(crate) const MIN_GAIN: f64 = 1e-7;

/// A local improvement move.
pub(crate) trait LocalMove: Send + Sync {
    /// Applies improving moves until done or `stop` says so; returns whether anything changed.
    fn improve(
        &self,
        p: &Problem,
        neighbours: &Neighbours,
        sol: &mut Solution,
        rng: &mut Random,
        stop: &dyn Fn() -> bool,
    ) -> bool;
}

/// The movable orders that are on a route, in random order: where the moves start from.
pub(crate) fn movable_in_random_order(p: &Problem, sol: &Solution, rng: &mut Random) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.jobs.len())
        .filter(|&j| sol.route_of[j].is_some() && Solution::is_movable(p, j))
        .collect();
    rng.shuffle(&mut order);
    order
}

/// Runs the moves in turn until none improves (or `rounds` passes are done).
pub(crate) fn descend(
    p: &Problem,
    neighbours: &Neighbours,
    sol: &mut Solution,
    rng: &mut Random,
    moves: &[&dyn LocalMove],
    rounds: usize,
    stop: &dyn Fn() -> bool,
) {
    for _ in 0..rounds {
        let mut changed = false;
        for m in moves {
            if stop() {
                return;
            }
            changed |= m.improve(p, neighbours, sol, rng, stop);
        }
        if !changed {
            break;
        }
    }
}
