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
