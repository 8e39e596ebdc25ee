//! Shaw's related removal: a random seed order and the orders nearest to it, so the recreate
//! step can reshuffle a neighbourhood.

use super::{Ruin, RuinContext, random_assigned, remove_jobs};
use crate::random::Random;
use crate::solution::Solution;

/// Removes a seed and its nearest neighbours (skipping some at random).
pub(crate) struct RelatedRemoval;

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
            if sol.route_of[o].is_some() && rng.chance(0.8) {
                chosen.push(o);
            }
        }
        remove_jobs(ctx.p, sol, &chosen)
    }
}
