//! Moves one order (both stops) to the place where it costs least, on any route.

use super::LocalMove;
use crate::construction::{Scratch, best_insertion};
use crate::problem::Problem;
use crate::random::Random;
use crate::search::Neighbours;
use crate::solution::{Route, Solution};

/// Relocates single orders while that lowers the cost.
pub(crate) struct RelocatePair;

/// What emptying a route is worth when vehicles are minimised: more than any distance.
const ROUTE_EMPTIED_GAIN: f64 = 1e6;

impl LocalMove for RelocatePair {
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
        for (n, j) in order.into_iter().enumerate() {
            if n % 32 == 31 && stop() {
                break;
            }
            let Some(from) = sol.route_of[j] else {
                continue;
            };
            let mut reduced: Route = sol.routes[from].clone();
            reduced.nodes.retain(|&n| p.nodes[n].job != j);
            reduced.update(p);
            let saving = sol.routes[from].cost - reduced.cost;
            // Candidate routes: the own route and the routes of neighbouring orders.
            let mut routes = vec![from];
            for &o in &neighbours.lists[j] {
                if let Some(v) = sol.route_of[o]
                    && !routes.contains(&v)
                {
                    routes.push(v);
                }
            }
            let mut best: Option<(f64, crate::solution::Insertion)> = None;
            for &v in &routes {
                let r = if v == from { &reduced } else { &sol.routes[v] };
                if let Ok(ins) = best_insertion(p, r, j, None, &mut scratch) {
                    let mut gain = saving - ins.delta;
                    if p.objective.minimize_vehicles && v != from && reduced.is_empty() {
                        gain += ROUTE_EMPTIED_GAIN;
                    }
                    if gain > super::MIN_GAIN && best.is_none_or(|(g, _)| gain > g) {
                        best = Some((gain, ins));
                    }
                }
            }
            if let Some((_, ins)) = best {
                sol.routes[from] = reduced;
                sol.route_of[j] = None;
                sol.unassigned.push(j);
                sol.insert(p, j, &ins);
                changed = true;
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
            RelocatePair.improve(&p, &neighbours, &mut sol, &mut Random::new(seed), &|| false);
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
            RelocatePair.improve(&p, &neighbours, &mut sol, &mut Random::new(seed), &|| false);
            sol.routes
                .iter()
                .map(|r| r.nodes.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(8), run(8));
    }
}
