//! Which couriers to try for an order: an `rstar` R-tree over every planned stop and every
//! courier's position, queried for the nearest ones to the order's pickup. Only those couriers'
//! routes are evaluated, widening the search when none of them can take the order, so the cost
//! of a solve grows about linearly with the size of the city.

use rstar::RTree;
use rstar::primitives::GeomWithData;

use crate::problem::Problem;
use crate::solution::Solution;
use crate::spatial::key;

/// Below this many couriers every route is a candidate: the index would not pay for itself.
pub(crate) const ALL_ROUTES_BELOW: usize = 200;

/// How many distinct couriers the first query returns.
pub(crate) const FIRST_RING: usize = 12;

type Point = GeomWithData<[f64; 2], usize>;

/// A spatial index of where each courier is and will be.
pub(crate) struct CandidateIndex {
    tree: Option<RTree<Point>>,
    /// Longitudes are scaled by the cosine of this latitude so degrees are roughly isotropic.
    lon_scale: f64,
}

impl CandidateIndex {
    /// Indexes the couriers' positions and planned stops of `sol`.
    pub fn build(p: &Problem, sol: &Solution) -> CandidateIndex {
        let lon_scale = p.lon_scale;
        if p.vehicles.len() < ALL_ROUTES_BELOW {
            return CandidateIndex {
                tree: None,
                lon_scale,
            };
        }
        let mut points = Vec::with_capacity(p.vehicles.len() + p.nodes.len());
        for (v, vehicle) in p.vehicles.iter().enumerate() {
            points.push(Point::new(key(p.places[vehicle.start_place], lon_scale), v));
        }
        for r in &sol.routes {
            for &n in &r.nodes {
                points.push(Point::new(key(p.places[Problem::place(n)], lon_scale), r.v));
            }
        }
        CandidateIndex {
            tree: Some(RTree::bulk_load(points)),
            lon_scale,
        }
    }

    /// Couriers near job `j`'s pickup: up to `want` distinct ones, nearest first (all couriers
    /// when the fleet is small or `want` covers it). Empty couriers of one class appear once.
    pub fn near(&self, p: &Problem, sol: &Solution, j: usize, want: usize, out: &mut Vec<usize>) {
        out.clear();
        let mut seen_class = Vec::new();
        let mut push = |v: usize, out: &mut Vec<usize>| {
            if sol.routes[v].is_empty() {
                let class = p.vehicles[v].class;
                if seen_class.contains(&class) {
                    return;
                }
                seen_class.push(class);
            }
            out.push(v);
        };
        if let Some(owner) = p.jobs[j].locked {
            out.push(owner);
            return;
        }
        match &self.tree {
            Some(tree) if want < p.vehicles.len() => {
                let at = key(p.places[Problem::place(2 * j)], self.lon_scale);
                // `want` is small here, so a linear scan of those already met beats a bitmap
                // over the whole fleet.
                let mut taken: Vec<usize> = Vec::with_capacity(want * 2);
                for point in tree.nearest_neighbor_iter(at) {
                    let v = point.data;
                    if !taken.contains(&v) {
                        taken.push(v);
                        push(v, out);
                        if out.len() >= want {
                            break;
                        }
                    }
                }
            }
            _ => {
                for v in 0..p.vehicles.len() {
                    push(v, out);
                }
            }
        }
    }
}
