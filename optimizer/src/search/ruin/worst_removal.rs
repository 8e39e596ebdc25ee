//! Removes the orders whose removal saves the most, with randomness so repeated calls differ.

use super::{Ruin, RuinContext, remove_jobs};
use crate::random::Random;
use crate::solution::{Solution, evaluate_into};

/// Orders judged per call on large problems.
const SAMPLE: usize = 256;

/// Randomised worst removal.
pub(crate) struct WorstRemoval;

impl Ruin for WorstRemoval {
    fn ruin(
        &self,
        ctx: &RuinContext<'_>,
        sol: &mut Solution,
        rng: &mut Random,
        count: usize,
    ) -> Vec<usize> {
        let p = ctx.p;
        let mut savings: Vec<(f64, usize)> = Vec::new();
        let mut buf = Vec::new();
        // On large problems, judge a random sample of orders rather than every one.
        let sample = (p.jobs.len() > SAMPLE).then(|| SAMPLE as f64 / p.jobs.len() as f64);
        for r in &sol.routes {
            for &n in &r.nodes {
                let node = &p.nodes[n];
                if !node.pickup || !Solution::is_movable(p, node.job) {
                    continue;
                }
                if let Some(rate) = sample
                    && !rng.chance(rate)
                {
                    continue;
                }
                buf.clear();
                buf.extend(
                    r.nodes
                        .iter()
                        .copied()
                        .filter(|&m| p.nodes[m].job != node.job),
                );
                let without = evaluate_into(p, r.v, &buf, None);
                savings.push((r.cost - without.cost, node.job));
            }
        }
        savings.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut chosen = Vec::with_capacity(count);
        while chosen.len() < count && !savings.is_empty() {
            // Bias towards the top: index = len * u^4.
            let u = rng.unit();
            let idx = ((savings.len() as f64) * u.powi(4)) as usize;
            chosen.push(savings.remove(idx.min(savings.len() - 1)).1);
        }
        remove_jobs(p, sol, &chosen)
    }
}
