//! Slack induction by string removal (Christiaens & Vanden Berghe), for pairs: around a random
//! seed, strings of consecutive stops are cut from several nearby routes and every order
//! touching them is removed, opening slack where routes meet.

use super::{Ruin, RuinContext, random_assigned, remove_jobs};
use crate::random::Random;
use crate::solution::Solution;

/// SISR-style string removal.
pub(crate) struct StringRemoval {
    /// Average number of stops per string.
    pub average_string: usize,
}

impl Ruin for StringRemoval {
    fn ruin(
        &self,
        ctx: &RuinContext<'_>,
        sol: &mut Solution,
        rng: &mut Random,
        count: usize,
    ) -> Vec<usize> {
        let p = ctx.p;
        let Some(seed) = random_assigned(p, sol, rng) else {
            return Vec::new();
        };
        let mut chosen: Vec<usize> = Vec::new();
        let mut ruined_routes: Vec<usize> = Vec::new();
        let max_strings = (count / self.average_string.max(1)).clamp(1, 8);
        let candidates = std::iter::once(seed).chain(ctx.neighbours.lists[seed].iter().copied());
        for o in candidates {
            if ruined_routes.len() >= max_strings || chosen.len() >= count {
                break;
            }
            let Some(v) = sol.route_of[o] else { continue };
            if ruined_routes.contains(&v) {
                continue;
            }
            ruined_routes.push(v);
            let nodes = &sol.routes[v].nodes;
            let len = nodes.len();
            let string = rng.range(1, (2 * self.average_string).min(len).max(1));
            // A string of `string` consecutive stops containing one of o's stops.
            let at = nodes.iter().position(|&n| p.nodes[n].job == o).unwrap_or(0);
            let first = at
                .saturating_sub(rng.below(string))
                .min(len - string.min(len));
            for &n in &nodes[first..(first + string).min(len)] {
                let j = p.nodes[n].job;
                if !chosen.contains(&j) {
                    chosen.push(j);
                }
            }
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
        let removed =
            StringRemoval { average_string: 4 }.ruin(&ctx, &mut sol, &mut Random::new(3), 5);
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
            StringRemoval { average_string: 4 }.ruin(&ctx, &mut sol, &mut Random::new(seed), 4)
        };
        assert_eq!(run(5), run(5));
    }
}
