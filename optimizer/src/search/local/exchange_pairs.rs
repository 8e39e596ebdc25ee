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
                let Ok(ins_a) = best_insertion(p, &rb_minus, a, None, &mut scratch) else {
                    continue;
                };
                let Ok(ins_b) = best_insertion(p, &ra_minus, b, None, &mut scratch) else {
                    continue;
                };
                let before = sol.routes[ra].cost + sol.routes[rb].cost;
                let after = ra_minus.cost + ins_b.delta + rb_minus.cost + ins_a.delta;
                if after < before - super::MIN_GAIN {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::ruin::{RandomRemoval, Ruin, RuinContext};
    use crate::testing::{assert_consistent, constructed, neighbours, problem};

    /// A constructed solution shaken by random removal and cheap reinsertion, so there is
    /// something to improve.
    fn shaken(p: &Problem, neighbours: &Neighbours) -> Solution {
        let mut sol = constructed(p);
        let ctx = RuinContext { p, neighbours };
        let mut rng = Random::new(17);
        let removed = RandomRemoval.ruin(&ctx, &mut sol, &mut rng, 8);
        crate::construction::insert_greedy(
            p,
            &mut sol,
            &removed,
            crate::construction::Open::Any,
            &mut rng,
            0.5,
        );
        sol
    }

    #[test]
    fn never_makes_a_solution_worse_and_keeps_it_consistent() {
        for seed in [1, 2, 3] {
            let p = problem(seed, 30, 5, false);
            let neighbours = neighbours(&p);
            let mut sol = shaken(&p, &neighbours);
            let before = sol.key(&p);
            ExchangePairs.improve(&p, &neighbours, &mut sol, &mut Random::new(seed), &|| false);
            assert!(
                sol.key(&p) <= before,
                "seed {seed}: {:?} > {before:?}",
                sol.key(&p)
            );
            assert_consistent(&p, &sol);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_solution() {
        let p = problem(4, 30, 5, false);
        let neighbours = neighbours(&p);
        let start = shaken(&p, &neighbours);
        let run = |seed| {
            let mut sol = start.clone();
            ExchangePairs.improve(&p, &neighbours, &mut sol, &mut Random::new(seed), &|| false);
            sol.routes
                .iter()
                .map(|r| r.nodes.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(8), run(8));
    }
}
