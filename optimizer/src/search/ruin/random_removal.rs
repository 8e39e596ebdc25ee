//! Removes orders chosen uniformly at random.

use super::{Ruin, RuinContext, random_assigned, remove_jobs};
use crate::random::Random;
use crate::solution::Solution;

/// Uniform random removal.
pub(crate) struct RandomRemoval;

impl Ruin for RandomRemoval {
    fn ruin(
        &self,
        ctx: &RuinContext<'_>,
        sol: &mut Solution,
        rng: &mut Random,
        count: usize,
    ) -> Vec<usize> {
        let mut chosen = Vec::with_capacity(count);
        for _ in 0..count * 2 {
            if chosen.len() >= count {
                break;
            }
            if let Some(j) = random_assigned(ctx.p, sol, rng)
                && !chosen.contains(&j)
            {
                chosen.push(j);
            }
        }
        remove_jobs(ctx.p, sol, &chosen)
    }
}
