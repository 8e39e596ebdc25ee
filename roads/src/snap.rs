//! Where a point meets the roads: an `rstar` R-tree over the segments, in a local metric
//! projection, answering the nearest segment a profile may use, and where on it the point falls.
//! A point with no usable road within the limit is an error that says how far the nearest one
//! is, never a silent straight line.
//!
//! Only segments of a profile's largest strongly connected component are snapping targets, as
//! OSRM prefers big components: a point must not snap onto a fragment (a parking lot reached only
//! through a private gate) from which nothing else can be reached.

use rstar::primitives::{GeomWithData, Line};
use rstar::{PointDistance, RTree};

use optimizer::model::Coordinates;

use crate::graph::{CLOSED, NodeId, RoadGraph};
use crate::profile::Profile;

/// Metres per degree of latitude (and of longitude at the equator), for the local projection.
const METRES_PER_DEGREE: f64 = 111_320.0;

type Indexed = GeomWithData<Line<[f64; 2]>, u32>;

/// A point on a segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snapped {
    /// The segment's index in the graph.
    pub segment: u32,
    /// Where along it, from its first node (0) to its second (1).
    pub fraction: f64,
    /// How far the point is from the road, metres.
    pub distance_m: f64,
}

/// Why a point could not be snapped.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SnapError {
    /// The nearest usable road is too far (or there is none).
    #[error(
        "no {profile} road within {limit_m} m of {lat}, {lon}{}",
        nearest_m.map(|d| format!(" (the nearest is {d:.0} m away)")).unwrap_or_default()
    )]
    NoRoadNearby {
        /// The profile.
        profile: &'static str,
        /// Latitude.
        lat: f64,
        /// Longitude.
        lon: f64,
        /// The limit.
        limit_m: f64,
        /// The nearest usable road, if any exists.
        nearest_m: Option<f64>,
    },
}

/// The segment index.
pub struct SnapIndex {
    tree: RTree<Indexed>,
    /// Per segment, a bit per profile: whether it is a snapping target for that profile.
    usable: Vec<u8>,
    /// Longitude scale of the projection (cosine of the mean latitude).
    lon_scale: f64,
}

impl SnapIndex {
    /// Indexes the segments of `graph`.
    pub fn new(graph: &RoadGraph) -> SnapIndex {
        let nodes = graph.nodes();
        let mean_lat = if nodes.is_empty() {
            0.0
        } else {
            nodes.iter().map(|c| c.lat()).sum::<f64>() / nodes.len() as f64
        };
        let lon_scale = mean_lat.to_radians().cos();
        let project = |c: Coordinates| project(c, lon_scale);
        let mut usable = vec![0u8; graph.segments().len()];
        for profile in Profile::ALL {
            let main = largest_component(graph, profile);
            for (i, s) in graph.segments().iter().enumerate() {
                if s.open_for(profile) && main[s.a as usize] && main[s.b as usize] {
                    usable[i] |= 1 << profile.index();
                }
            }
        }
        let lines: Vec<Indexed> = graph
            .segments()
            .iter()
            .enumerate()
            .filter(|(i, _)| usable[*i] != 0)
            .map(|(i, s)| {
                let (a, b) = (nodes[s.a as usize], nodes[s.b as usize]);
                GeomWithData::new(Line::new(project(a), project(b)), i as u32)
            })
            .collect();
        SnapIndex {
            tree: RTree::bulk_load(lines),
            usable,
            lon_scale,
        }
    }

    /// The nearest point on a road `profile` may use, within `limit_m`.
    ///
    /// # Errors
    /// [`SnapError::NoRoadNearby`] when there is none that near.
    pub fn snap(
        &self,
        at: Coordinates,
        profile: Profile,
        limit_m: f64,
    ) -> Result<Snapped, SnapError> {
        let p = project(at, self.lon_scale);
        let bit = 1 << profile.index();
        let mut nearest_m = None;
        for (line, d2) in self.tree.nearest_neighbor_iter_with_distance_2(p) {
            if self.usable[line.data as usize] & bit == 0 {
                continue;
            }
            let d = d2.sqrt();
            if d <= limit_m {
                let (a, b) = (line.geom().from, line.geom().to);
                let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
                let len2 = dx * dx + dy * dy;
                let fraction = if len2 > 0.0 {
                    (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                return Ok(Snapped {
                    segment: line.data,
                    fraction,
                    distance_m: d,
                });
            }
            nearest_m = Some(d);
            break;
        }
        Err(SnapError::NoRoadNearby {
            profile: profile.as_str(),
            lat: at.lat(),
            lon: at.lon(),
            limit_m,
            nearest_m,
        })
    }

    /// Distance from `at` to segment `segment`, metres (for tests and reports).
    pub fn distance_to(&self, graph: &RoadGraph, at: Coordinates, segment: u32) -> f64 {
        let s = graph.segments()[segment as usize];
        let nodes = graph.nodes();
        let line = Line::new(
            project(nodes[s.a as usize], self.lon_scale),
            project(nodes[s.b as usize], self.lon_scale),
        );
        line.distance_2(&project(at, self.lon_scale)).sqrt()
    }
}

fn project(c: Coordinates, lon_scale: f64) -> [f64; 2] {
    [
        c.lon() * lon_scale * METRES_PER_DEGREE,
        c.lat() * METRES_PER_DEGREE,
    ]
}

/// Which nodes belong to the largest strongly connected component of `profile`'s graph
/// (iterative Tarjan).
pub fn largest_component(graph: &RoadGraph, profile: Profile) -> Vec<bool> {
    let n = graph.node_count();
    let p = profile.index();
    let mut adjacency: Vec<Vec<NodeId>> = vec![Vec::new(); n];
    for s in graph.segments() {
        if s.time_ms[p][0] != CLOSED {
            adjacency[s.a as usize].push(s.b);
        }
        if s.time_ms[p][1] != CLOSED {
            adjacency[s.b as usize].push(s.a);
        }
    }
    const NONE: u32 = u32::MAX;
    let mut index = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<NodeId> = Vec::new();
    let mut component = vec![NONE; n];
    let mut sizes: Vec<usize> = Vec::new();
    let mut next = 0u32;
    // (node, next child position)
    let mut calls: Vec<(NodeId, usize)> = Vec::new();
    for root in 0..n as NodeId {
        if index[root as usize] != NONE || adjacency[root as usize].is_empty() {
            continue;
        }
        calls.push((root, 0));
        index[root as usize] = next;
        low[root as usize] = next;
        next += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        while let Some(&mut (v, ref mut child)) = calls.last_mut() {
            let vi = v as usize;
            if let Some(&w) = adjacency[vi].get(*child) {
                *child += 1;
                let wi = w as usize;
                if index[wi] == NONE {
                    index[wi] = next;
                    low[wi] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[wi] = true;
                    calls.push((w, 0));
                } else if on_stack[wi] {
                    low[vi] = low[vi].min(index[wi]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                low[parent as usize] = low[parent as usize].min(low[vi]);
            }
            if low[vi] == index[vi] {
                let id = sizes.len() as u32;
                let mut size = 0;
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    component[w as usize] = id;
                    size += 1;
                    if w == v {
                        break;
                    }
                }
                sizes.push(size);
            }
        }
    }
    let largest = (0..sizes.len()).max_by_key(|&c| sizes[c]);
    component
        .iter()
        .map(|&c| largest.is_some_and(|l| c == l as u32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::RoadGraphBuilder;
    use crate::profile::WayTags;

    fn c(lat: f64, lon: f64) -> Coordinates {
        Coordinates::parse(lat, lon).unwrap()
    }

    /// A two-way street from (60.0, 24.0) to (60.0, 24.01), and a footway north of it.
    fn graph() -> RoadGraph {
        let mut b = RoadGraphBuilder::new();
        let w = b.add_node(c(60.0, 24.0));
        let e = b.add_node(c(60.0, 24.01));
        b.add_way(&[w, e], &WayTags::highway("residential"));
        let fw = b.add_node(c(60.001, 24.0));
        let fe = b.add_node(c(60.001, 24.01));
        b.add_way(
            &[fw, fe],
            &WayTags::from_pairs([("highway", "footway"), ("bicycle", "yes")]),
        );
        b.build()
    }

    #[test]
    fn a_point_snaps_onto_the_nearest_usable_segment_where_it_falls() {
        let g = graph();
        let index = SnapIndex::new(&g);
        // Just north of the footway, a quarter of the way east.
        let at = c(60.0011, 24.0025);
        let bike = index.snap(at, Profile::Bike, 200.0).unwrap();
        assert_eq!(bike.segment, 1);
        assert!((bike.fraction - 0.25).abs() < 0.01, "{bike:?}");
        assert!((bike.distance_m - 11.1).abs() < 0.5);
        // A car must use the street, 122 m south.
        let car = index.snap(at, Profile::Car, 200.0).unwrap();
        assert_eq!(car.segment, 0);
        assert!((car.distance_m - 122.0).abs() < 2.0, "{car:?}");
    }

    #[test]
    fn a_point_far_from_any_usable_road_is_an_error_that_says_how_far() {
        let g = graph();
        let index = SnapIndex::new(&g);
        let err = index
            .snap(c(60.01, 24.005), Profile::Car, 500.0)
            .unwrap_err();
        let SnapError::NoRoadNearby { nearest_m, .. } = &err;
        assert!(nearest_m.is_some_and(|d| d > 1000.0), "{err}");
        assert!(
            err.to_string().contains("no car road within 500 m"),
            "{err}"
        );
    }

    #[test]
    fn the_largest_component_leaves_out_what_cannot_be_left() {
        let mut b = RoadGraphBuilder::new();
        let nodes: Vec<NodeId> = (0..4)
            .map(|i| b.add_node(c(60.0, 24.0 + 0.001 * f64::from(i))))
            .collect();
        b.add_way(&nodes[..3], &WayTags::highway("residential"));
        // A one-way spur out of the loop: nothing comes back from node 3.
        let oneway = WayTags {
            oneway: Some("yes".into()),
            ..WayTags::highway("residential")
        };
        b.add_way(&nodes[2..], &oneway);
        let g = b.build();
        let main = largest_component(&g, Profile::Car);
        assert_eq!(main, vec![true, true, true, false]);
    }
}
