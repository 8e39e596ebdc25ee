//! Route minimisation with an ejection pool (after Nagata & Kobayashi's guided ejection
//! search for the PDPTW): take one route's orders into a pool, then put them back into the
//! remaining routes; an order that fits nowhere ejects one or two other orders (those that were
//! hard to place least often) to make room, and random moves shake the routes between tries.
//! Success removes a vehicle; failure leaves the solution as it was.

use crate::construction::{Scratch, best_insertion};
use crate::problem::Problem;
use crate::random::Random;
use crate::solution::{Insertion, Route, Solution};

/// The blink rate of the random relocations that shake routes between tries.
const PERTURB_BLINK: f64 = 0.3;

/// State kept across attempts: how often each order was hard to place.
pub(crate) struct RouteMinimizer {
    penalty: Vec<u32>,
    scratch: Scratch,
}

impl RouteMinimizer {
    /// A minimiser for `p`'s orders.
    pub fn new(p: &Problem) -> Self {
        RouteMinimizer {
            penalty: vec![1; p.jobs.len()],
            scratch: Scratch::default(),
        }
    }

    /// Tries to empty one route. `stop` is polled between steps. Returns the solution with one
    /// route fewer on success.
    pub fn remove_one_route(
        &mut self,
        p: &Problem,
        sol: &Solution,
        rng: &mut Random,
        stop: &mut dyn FnMut() -> bool,
    ) -> Option<Solution> {
        let removable: Vec<usize> = (0..sol.routes.len())
            .filter(|&v| {
                let r = &sol.routes[v];
                !r.is_empty()
                    && r.fixed_len(p) == 0
                    && r.nodes
                        .iter()
                        .all(|&n| Solution::is_movable(p, p.nodes[n].job))
            })
            .collect();
        if removable.len() < 2 {
            return None;
        }
        // Prefer short routes: the shortest of three random picks.
        let v = (0..3)
            .map(|_| removable[rng.below(removable.len())])
            .min_by_key(|&v| sol.routes[v].nodes.len())?;
        let mut trial = sol.clone();
        let mut pool: Vec<usize> = trial.routes[v]
            .nodes
            .iter()
            .filter(|&&n| p.nodes[n].pickup)
            .map(|&n| p.nodes[n].job)
            .collect();
        for &j in &pool {
            trial.route_of[j] = None;
        }
        trial.routes[v].nodes.clear();
        trial.routes[v].update(p);
        rng.shuffle(&mut pool);
        let mut steps = 0u64;
        while let Some(j) = pool.pop() {
            steps += 1;
            if steps.is_multiple_of(8) && stop() {
                return None;
            }
            if let Some(ins) = self.best_in_used(p, &trial, j, v) {
                trial.insert(p, j, &ins);
                continue;
            }
            self.penalty[j] += 1;
            match self.best_ejection(p, &trial, j, v, rng) {
                Some((route, ejected, ins)) => {
                    for &e in &ejected {
                        trial.route_of[e] = None;
                        pool.push(e);
                    }
                    trial.routes[ins.v] = route;
                    trial.insert(p, j, &ins);
                }
                None => pool.insert(0, j),
            }
            self.perturb(p, &mut trial, v, rng);
        }
        // Orders that were out before stay out; the pool's orders are all placed again.
        trial.unassigned = (0..p.jobs.len())
            .filter(|&j| trial.route_of[j].is_none())
            .collect();
        Some(trial)
    }

    /// Cheapest insertion of `j` into a non-empty route other than `closed`.
    fn best_in_used(
        &mut self,
        p: &Problem,
        sol: &Solution,
        j: usize,
        closed: usize,
    ) -> Option<Insertion> {
        let mut best: Option<Insertion> = None;
        for r in &sol.routes {
            if r.v == closed || r.is_empty() {
                continue;
            }
            if let Ok(ins) = best_insertion(p, r, j, None, &mut self.scratch)
                && best.is_none_or(|b| ins.delta < b.delta)
            {
                best = Some(ins);
            }
        }
        best
    }

    /// The route, ejected orders (one or two) and insertion that place `j` at the lowest total
    /// penalty of the ejected orders.
    fn best_ejection(
        &mut self,
        p: &Problem,
        sol: &Solution,
        j: usize,
        closed: usize,
        rng: &mut Random,
    ) -> Option<(Route, Vec<usize>, Insertion)> {
        let mut best: Option<(u32, f64, Route, Vec<usize>, Insertion)> = None;
        let mut routes: Vec<usize> = (0..sol.routes.len())
            .filter(|&v| v != closed && !sol.routes[v].is_empty())
            .collect();
        rng.shuffle(&mut routes);
        for v in routes {
            let r = &sol.routes[v];
            let jobs: Vec<usize> = r
                .nodes
                .iter()
                .filter(|&&n| p.nodes[n].pickup && Solution::is_movable(p, p.nodes[n].job))
                .map(|&n| p.nodes[n].job)
                .collect();
            for (x, &a) in jobs.iter().enumerate() {
                let pa = self.penalty[a];
                if best.as_ref().is_some_and(|b| pa > b.0) {
                    continue;
                }
                let mut reduced = r.clone();
                reduced.nodes.retain(|&n| p.nodes[n].job != a);
                reduced.update(p);
                if let Ok(ins) = best_insertion(p, &reduced, j, None, &mut self.scratch) {
                    if best.as_ref().is_none_or(|b| (pa, ins.delta) < (b.0, b.1)) {
                        best = Some((pa, ins.delta, reduced, vec![a], ins));
                    }
                    continue;
                }
                for &b in &jobs[x + 1..] {
                    let pab = pa + self.penalty[b];
                    if best.as_ref().is_some_and(|bst| pab > bst.0) {
                        continue;
                    }
                    let mut reduced2 = reduced.clone();
                    reduced2.nodes.retain(|&n| p.nodes[n].job != b);
                    reduced2.update(p);
                    if let Ok(ins) = best_insertion(p, &reduced2, j, None, &mut self.scratch)
                        && best
                            .as_ref()
                            .is_none_or(|bst| (pab, ins.delta) < (bst.0, bst.1))
                    {
                        best = Some((pab, ins.delta, reduced2, vec![a, b], ins));
                    }
                }
            }
        }
        best.map(|(_, _, route, ejected, ins)| (route, ejected, ins))
    }

    /// A few random relocations between the remaining routes, each at a feasible place chosen
    /// with blinks, to change which orders block each other.
    fn perturb(&mut self, p: &Problem, sol: &mut Solution, closed: usize, rng: &mut Random) {
        let moves = 1 + rng.below(4);
        for _ in 0..moves {
            let assigned: Vec<usize> = (0..3)
                .map(|_| rng.below(p.jobs.len()))
                .filter(|&j| sol.route_of[j].is_some() && Solution::is_movable(p, j))
                .collect();
            let Some(&j) = assigned.first() else { continue };
            let from = sol.route_of[j].expect("filtered on assigned jobs");
            let mut reduced = sol.routes[from].clone();
            reduced.nodes.retain(|&n| p.nodes[n].job != j);
            reduced.update(p);
            if reduced.is_empty() {
                continue; // never empty another route here
            }
            let target = rng.below(sol.routes.len());
            if target == closed || sol.routes[target].is_empty() {
                continue;
            }
            let r = if target == from {
                &reduced
            } else {
                &sol.routes[target]
            };
            if let Ok(ins) = best_insertion(p, r, j, Some((rng, PERTURB_BLINK)), &mut self.scratch)
            {
                sol.routes[from] = reduced;
                sol.route_of[j] = None;
                sol.insert(p, j, &ins);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_consistent, constructed, problem};

    #[test]
    fn a_removed_route_leaves_every_order_placed_and_one_route_fewer() {
        // Many couriers for few orders under the benchmark objective: routes can go.
        let p = problem(5, 20, 8, true);
        let start = constructed(&p);
        let mut minimizer = RouteMinimizer::new(&p);
        let mut rng = Random::new(2);
        let mut tries = 0;
        let found = minimizer.remove_one_route(&p, &start, &mut rng, &mut || {
            tries += 1;
            tries > 10_000
        });
        let sol = found.expect("a spare route can be removed");
        assert_eq!(sol.used_routes(), start.used_routes() - 1);
        assert!(sol.unassigned.len() <= start.unassigned.len());
        assert_consistent(&p, &sol);
    }

    #[test]
    fn an_exhausted_budget_gives_up_without_changing_anything() {
        let p = problem(5, 20, 8, true);
        let start = constructed(&p);
        let mut minimizer = RouteMinimizer::new(&p);
        let found = minimizer.remove_one_route(&p, &start, &mut Random::new(2), &mut || true);
        assert!(found.is_none() || found.is_some_and(|s| s.used_routes() < start.used_routes()));
    }
}
