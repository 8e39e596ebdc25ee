//! Improving solutions: ruin-and-recreate operators (one per file in [`ruin`]), local moves
//! (one per file in [`local`]), and route minimisation by an ejection pool
//! ([`route_minimization`]). Each operator is a small type behind a trait, so the solver can
//! weigh and combine them.

pub(crate) mod local;
pub(crate) mod route_minimization;
pub(crate) mod ruin;

use crate::problem::Problem;

/// For each job, the other jobs nearest to it (pickup to pickup plus drop-off to drop-off),
/// nearest first: the relatedness the ruin operators use.
pub(crate) struct Neighbours {
    pub lists: Vec<Vec<usize>>,
}

/// How many neighbours to keep per job.
const NEIGHBOURS: usize = 40;

impl Neighbours {
    /// Computes the lists, with an R-tree over pickups so large problems stay near-linear.
    pub fn new(p: &Problem) -> Neighbours {
        use rstar::RTree;
        use rstar::primitives::GeomWithData;
        let n = p.jobs.len();
        let keys: Vec<[f64; 2]> = (0..n)
            .map(|j| crate::spatial::key(p.places[Problem::place(2 * j)], p.lon_scale))
            .collect();
        let tree = RTree::bulk_load(
            keys.iter()
                .enumerate()
                .map(|(j, k)| GeomWithData::new(*k, j))
                .collect::<Vec<_>>(),
        );
        let lists = crate::parallel::map_range(n, |j| {
            let mut near: Vec<(f64, usize)> = tree
                .nearest_neighbor_iter(keys[j])
                .filter(|g| g.data != j)
                .take(NEIGHBOURS * 2)
                .map(|g| {
                    let o = g.data;
                    let d =
                        p.related_distance(2 * j, 2 * o) + p.related_distance(2 * j + 1, 2 * o + 1);
                    (d, o)
                })
                .collect();
            near.sort_by(|a, b| a.0.total_cmp(&b.0));
            near.truncate(NEIGHBOURS);
            near.into_iter().map(|(_, o)| o).collect()
        });
        Neighbours { lists }
    }
}
