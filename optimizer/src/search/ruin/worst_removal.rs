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
        let removed = WorstRemoval.ruin(&ctx, &mut sol, &mut Random::new(3), 5);
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
            WorstRemoval.ruin(&ctx, &mut sol, &mut Random::new(seed), 4)
        };
        assert_eq!(run(5), run(5));
    }
}
