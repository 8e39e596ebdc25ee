//! Shaw's related removal: a random seed order and the orders nearest to it, so the recreate
//! step can reshuffle a neighbourhood.

use super::{Ruin, RuinContext, random_assigned, remove_jobs};
use crate::random::Random;
use crate::solution::Solution;

/// Removes a seed and its nearest neighbours (skipping some at random).
pub(crate) struct RelatedRemoval;

/// The chance that each next-nearest neighbour is taken along.
const TAKE_NEIGHBOUR: f64 = 0.8;

impl Ruin for RelatedRemoval {
    fn ruin(
        &self,
        ctx: &RuinContext<'_>,
        sol: &mut Solution,
        rng: &mut Random,
        count: usize,
    ) -> Vec<usize> {
        let Some(seed) = random_assigned(ctx.p, sol, rng) else {
            return Vec::new();
        };
        let mut chosen = vec![seed];
        for &o in &ctx.neighbours.lists[seed] {
            if chosen.len() >= count {
                break;
            }
            if sol.route_of[o].is_some() && rng.chance(TAKE_NEIGHBOUR) {
                chosen.push(o);
            }
        }
        remove_jobs(ctx.p, sol, &chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_consistent, constructed, neighbours, problem};

    #[test]
    fn removes_at_most_the_count_asked_and_leaves_a_consistent_solution() {
        let p = problem(7, 30, 6, false);
        let neighbours = neighbours(&p);
        let ctx = RuinContext {
            p: &p,
            neighbours: &neighbours,
        };
        let start = constructed(&p);
        let before = start.unassigned.len();
        let mut sol = start.clone();
        let removed = RelatedRemoval.ruin(&ctx, &mut sol, &mut Random::new(3), 5);
        assert!(!removed.is_empty() && removed.len() <= 5, "{removed:?}");
        for &j in &removed {
            assert!(start.route_of[j].is_some() && sol.route_of[j].is_none());
        }
        assert_eq!(sol.unassigned.len(), before + removed.len());
        assert_consistent(&p, &sol);
    }

    #[test]
    fn the_same_seed_removes_the_same_orders() {
        let p = problem(11, 25, 5, false);
        let neighbours = neighbours(&p);
        let ctx = RuinContext {
            p: &p,
            neighbours: &neighbours,
        };
        let start = constructed(&p);
        let run = |seed| {
            let mut sol = start.clone();
            RelatedRemoval.ruin(&ctx, &mut sol, &mut Random::new(seed), 4)
        };
        assert_eq!(run(5), run(5));
    }
}
