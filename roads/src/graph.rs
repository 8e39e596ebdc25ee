//! The road graph: junctions and shape points as nodes with coordinates, and the pieces of ways
//! between consecutive nodes as segments, each with its length and its travel time in either
//! direction for each [`Profile`] (closed where the profile may not ride). Built from tagged
//! ways by [`RoadGraphBuilder`], whichever source the ways come from (an OpenStreetMap extract
//! or the generated city), so the profiles' rules are applied in one place.

use optimizer::model::Coordinates;

use crate::profile::{Profile, WayTags, speeds};

/// A travel time that marks a closed direction.
pub const CLOSED: u32 = u32::MAX;

/// A node index.
pub type NodeId = u32;

/// The piece of a way between two consecutive nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    /// First node (in the way's order).
    pub a: NodeId,
    /// Second node.
    pub b: NodeId,
    /// Length in metres.
    pub length_m: f64,
    /// Travel time in milliseconds per profile ([`Profile::index`]): `[a to b, b to a]`,
    /// [`CLOSED`] where closed.
    pub time_ms: [[u32; 2]; 3],
}

impl Segment {
    /// Whether `profile` may ride it in either direction.
    pub fn open_for(&self, profile: Profile) -> bool {
        self.time_ms[profile.index()].iter().any(|&t| t != CLOSED)
    }
}

/// A directed arc of one profile's graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arc {
    /// From.
    pub from: NodeId,
    /// To.
    pub to: NodeId,
    /// Travel time, milliseconds.
    pub time_ms: u32,
    /// Length, decimetres.
    pub length_dm: u32,
}

/// Nodes and segments.
#[derive(Clone, Debug, Default)]
pub struct RoadGraph {
    nodes: Vec<Coordinates>,
    segments: Vec<Segment>,
}

impl RoadGraph {
    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The nodes' coordinates, by index.
    pub fn nodes(&self) -> &[Coordinates] {
        &self.nodes
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The directed arcs `profile` may ride.
    pub fn arcs(&self, profile: Profile) -> Vec<Arc> {
        let p = profile.index();
        let mut arcs = Vec::with_capacity(self.segments.len() * 2);
        for s in &self.segments {
            let length_dm = (s.length_m * 10.0).round() as u32;
            let [forward, backward] = s.time_ms[p];
            if forward != CLOSED {
                arcs.push(Arc {
                    from: s.a,
                    to: s.b,
                    time_ms: forward,
                    length_dm,
                });
            }
            if backward != CLOSED {
                arcs.push(Arc {
                    from: s.b,
                    to: s.a,
                    time_ms: backward,
                    length_dm,
                });
            }
        }
        arcs
    }
}

/// Collects nodes and tagged ways into a [`RoadGraph`].
#[derive(Debug, Default)]
pub struct RoadGraphBuilder {
    graph: RoadGraph,
}

/// Milliseconds to ride `length_m` at `kmh` (at least 1), or [`CLOSED`].
fn time_ms(length_m: f64, kmh: f64) -> u32 {
    if kmh > 0.0 {
        ((length_m / (kmh / 3.6)) * 1000.0)
            .round()
            .clamp(1.0, f64::from(CLOSED - 1)) as u32
    } else {
        CLOSED
    }
}

impl RoadGraphBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node; its index.
    pub fn add_node(&mut self, at: Coordinates) -> NodeId {
        self.graph.nodes.push(at);
        (self.graph.nodes.len() - 1) as NodeId
    }

    /// Adds a way through `nodes` (indices from [`RoadGraphBuilder::add_node`]) with `tags`;
    /// returns how many segments were added (none when no profile may ride it).
    ///
    /// # Panics
    /// When a node index was not added before.
    pub fn add_way(&mut self, nodes: &[NodeId], tags: &WayTags) -> usize {
        let per_profile = Profile::ALL.map(|p| speeds(p, tags));
        if !per_profile.iter().any(|s| s.open()) {
            return 0;
        }
        let mut added = 0;
        for pair in nodes.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a == b {
                continue;
            }
            let length_m = self.graph.nodes[a as usize].haversine_m(self.graph.nodes[b as usize]);
            let time = per_profile.map(|s| {
                [
                    time_ms(length_m, s.forward_kmh),
                    time_ms(length_m, s.backward_kmh),
                ]
            });
            self.graph.segments.push(Segment {
                a,
                b,
                length_m,
                time_ms: time,
            });
            added += 1;
        }
        added
    }

    /// The graph.
    pub fn build(self) -> RoadGraph {
        self.graph
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_way_street_has_one_car_arc_and_two_bike_arcs_when_bikes_may_go_against() {
        let mut b = RoadGraphBuilder::new();
        let x = b.add_node(Coordinates::parse(60.0, 24.0).unwrap());
        let y = b.add_node(Coordinates::parse(60.001, 24.0).unwrap());
        let tags = WayTags::from_pairs([
            ("highway", "residential"),
            ("oneway", "yes"),
            ("oneway:bicycle", "no"),
        ]);
        assert_eq!(b.add_way(&[x, y], &tags), 1);
        assert_eq!(b.add_way(&[x, y], &WayTags::highway("footway")), 0);
        let g = b.build();
        let car = g.arcs(Profile::Car);
        assert_eq!(car.len(), 1);
        assert_eq!((car[0].from, car[0].to), (x, y));
        // 111 m at 25 km/h: 16 s.
        assert!((car[0].time_ms as f64 - 111.2 / (25.0 / 3.6) * 1000.0).abs() < 100.0);
        assert_eq!(g.arcs(Profile::Bike).len(), 2);
        assert!(g.segments()[0].open_for(Profile::Scooter));
    }
}
