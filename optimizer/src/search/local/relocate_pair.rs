//! Moves one order (both stops) to the place where it costs least, on any route.

use super::LocalMove;
use crate::construction::{Scratch, best_insertion};
use crate::problem::Problem;
use crate::random::Random;
use crate::search::Neighbours;
use crate::solution::{Route, Solution};

/// Relocates single orders while that lowers the cost.
pub(crate) struct RelocatePair;

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
            let mut best: Option<(f64, crate::construction::Insertion)> = None;
            for &v in &routes {
                let r = if v == from { &reduced } else { &sol.routes[v] };
                if let Some(ins) = best_insertion(p, r, j, None, &mut scratch) {
                    let mut gain = saving - ins.delta;
                    if p.objective.minimize_vehicles && v != from && reduced.is_empty() {
                        gain += 1e6; // emptying a route is worth more than any distance
                    }
                    if gain > 1e-7 && best.is_none_or(|(g, _)| gain > g) {
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
