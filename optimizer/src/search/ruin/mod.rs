//! Ruin operators: each takes some movable orders off their routes and returns them, leaving
//! the recreate step to put them back. One operator per file.

mod random_removal;
mod related_removal;
mod route_removal;
mod string_removal;
mod worst_removal;

pub(crate) use random_removal::RandomRemoval;
pub(crate) use related_removal::RelatedRemoval;
pub(crate) use route_removal::RouteRemoval;
pub(crate) use string_removal::StringRemoval;
pub(crate) use worst_removal::WorstRemoval;

use crate::problem::Problem;
use crate::random::Random;
use crate::search::Neighbours;
use crate::solution::Solution;

/// What a ruin operator may look at.
pub(crate) struct RuinContext<'a> {
    pub p: &'a Problem,
    pub neighbours: &'a Neighbours,
}

/// Removes about `count` orders from `sol` and returns them.
pub(crate) trait Ruin: Send + Sync {
    /// Removes orders; the routes touched are refreshed before returning.
    fn ruin(
        &self,
        ctx: &RuinContext<'_>,
        sol: &mut Solution,
        rng: &mut Random,
        count: usize,
    ) -> Vec<usize>;
}

/// Removes the listed jobs (skipping locked and unassigned ones) and refreshes their routes.
pub(crate) fn remove_jobs(p: &Problem, sol: &mut Solution, jobs: &[usize]) -> Vec<usize> {
    let mut touched = Vec::new();
    let mut removed = Vec::new();
    for &j in jobs {
        if !Solution::is_movable(p, j) {
            continue;
        }
        if let Some(v) = sol.take_out(p, j) {
            removed.push(j);
            if !touched.contains(&v) {
                touched.push(v);
            }
        }
    }
    for v in touched {
        sol.routes[v].update(p);
    }
    removed
}

/// A random assigned, movable job, if any.
pub(crate) fn random_assigned(p: &Problem, sol: &Solution, rng: &mut Random) -> Option<usize> {
    let n = p.jobs.len();
    if n == 0 {
        return None;
    }
    for _ in 0..32 {
        let j = rng.below(n);
        if sol.route_of[j].is_some() && Solution::is_movable(p, j) {
            return Some(j);
        }
    }
    (0..n).find(|&j| sol.route_of[j].is_some() && Solution::is_movable(p, j))
}
