//! Swaps two orders between two routes, each going to its best place in the other route.

use super::LocalMove;
use crate::construction::{Scratch, best_insertion};
use crate::problem::Problem;
use crate::random::Random;
use crate::search::Neighbours;
use crate::solution::{Route, Solution};

/// Exchanges neighbouring orders between routes while that lowers the cost.
pub(crate) struct ExchangePairs;

fn without(p: &Problem, r: &Route, j: usize) -> Route {
    let mut reduced = r.clone();
    reduced.nodes.retain(|&n| p.nodes[n].job != j);
    reduced.update(p);
    reduced
}

impl LocalMove for ExchangePairs {
    fn improve(
        &self,
        p: &Problem,
        neighbours: &Neighbours,
        sol: &mut Solution,
        rng: &mut Random,
        stop: &dyn Fn() -> bool,
    ) -> bool {
        let mut scratch = Scratch::default();
        let order = super::movable_in_random_order(p, sol, rng);
        let mut changed = false;
        for (n, a) in order.into_iter().enumerate() {
            if n % 32 == 31 && stop() {
                break;
            }
            let Some(ra) = sol.route_of[a] else { continue };
            for &b in neighbours.lists[a].iter().take(12) {
                let Some(rb) = sol.route_of[b] else { continue };
                if ra == rb || !Solution::is_movable(p, b) {
                    continue;
                }
                let ra_minus = without(p, &sol.routes[ra], a);
                let rb_minus = without(p, &sol.routes[rb], b);
                let Some(ins_a) = best_insertion(p, &rb_minus, a, None, &mut scratch) else {
                    continue;
                };
                let Some(ins_b) = best_insertion(p, &ra_minus, b, None, &mut scratch) else {
                    continue;
                };
                let before = sol.routes[ra].cost + sol.routes[rb].cost;
                let after = ra_minus.cost + ins_b.delta + rb_minus.cost + ins_a.delta;
                if after < before - 1e-7 {
                    sol.routes[ra] = ra_minus;
                    sol.routes[rb] = rb_minus;
                    sol.route_of[a] = None;
                    sol.route_of[b] = None;
                    sol.unassigned.push(a);
                    sol.unassigned.push(b);
                    sol.insert(p, b, &ins_b);
                    sol.insert(p, a, &ins_a);
                    changed = true;
                    break;
                }
            }
        }
        changed
    }
}
