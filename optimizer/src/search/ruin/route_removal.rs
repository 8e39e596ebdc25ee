//! Removes every order of one route, preferring short routes: the move that cuts vehicles.

use super::{Ruin, RuinContext, remove_jobs};
use crate::random::Random;
use crate::solution::Solution;

/// Removes a whole route (the shorter of two random ones).
pub(crate) struct RouteRemoval;

impl Ruin for RouteRemoval {
    fn ruin(
        &self,
        ctx: &RuinContext<'_>,
        sol: &mut Solution,
        rng: &mut Random,
        _count: usize,
    ) -> Vec<usize> {
        let used: Vec<usize> = (0..sol.routes.len())
            .filter(|&v| !sol.routes[v].is_empty())
            .collect();
        if used.is_empty() {
            return Vec::new();
        }
        let a = used[rng.below(used.len())];
        let b = used[rng.below(used.len())];
        let v = if sol.routes[a].nodes.len() <= sol.routes[b].nodes.len() {
            a
        } else {
            b
        };
        let jobs: Vec<usize> = sol.routes[v]
            .nodes
            .iter()
            .filter(|&&n| ctx.p.nodes[n].pickup)
            .map(|&n| ctx.p.nodes[n].job)
            .collect();
        remove_jobs(ctx.p, sol, &jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_consistent, constructed, neighbours, problem};

    #[test]
    fn empties_exactly_one_route() {
        let p = problem(7, 30, 6, false);
        let neighbours = neighbours(&p);
        let ctx = RuinContext {
            p: &p,
            neighbours: &neighbours,
        };
        let start = constructed(&p);
        let mut sol = start.clone();
        let removed = RouteRemoval.ruin(&ctx, &mut sol, &mut Random::new(3), 1);
        assert!(!removed.is_empty());
        assert_eq!(sol.used_routes(), start.used_routes() - 1);
        let v = start.route_of[removed[0]].unwrap();
        for &j in &removed {
            assert_eq!(start.route_of[j], Some(v), "orders from one route only");
        }
        assert!(sol.routes[v].is_empty());
        assert_consistent(&p, &sol);
    }

    #[test]
    fn the_same_seed_empties_the_same_route() {
        let p = problem(11, 25, 5, false);
        let neighbours = neighbours(&p);
        let ctx = RuinContext {
            p: &p,
            neighbours: &neighbours,
        };
        let start = constructed(&p);
        let run = |seed| RouteRemoval.ruin(&ctx, &mut start.clone(), &mut Random::new(seed), 1);
        assert_eq!(run(9), run(9));
    }
}
