//! A generated city for benchmarks: a grid of streets with arterials every few blocks, one-way
//! residential streets, and a meandering river that only a few bridges cross (plus a few
//! bridges for bikes only). Generated from a seed in code, so no large file is committed; the
//! ways carry OpenStreetMap tags and go through the same profiles as a real extract.

use optimizer::Random;
use optimizer::model::Coordinates;

use crate::graph::{NodeId, RoadGraph, RoadGraphBuilder};
use crate::profile::WayTags;

/// The shape of a generated city.
#[derive(Clone, Debug, PartialEq)]
pub struct CityParams {
    /// Streets running east-west.
    pub rows: usize,
    /// Streets running north-south.
    pub cols: usize,
    /// Block size, metres.
    pub spacing_m: f64,
    /// The city centre.
    pub centre: (f64, f64),
    /// Every this many streets is an arterial (two-way, 50 km/h, with bike lanes), and so are
    /// the edges.
    pub arterial_every: usize,
    /// Share of residential streets that are one-way.
    pub oneway_share: f64,
    /// Road bridges over the river (on arterials).
    pub bridges: usize,
    /// Bridges for bikes only.
    pub bike_bridges: usize,
    /// Randomness of one-way directions, the river's course and the bridges.
    pub seed: u64,
}

impl CityParams {
    /// The benchmark city: 500 × 500 streets 50 m apart (250,000 nodes, 25 km across) around
    /// `centre`.
    pub fn benchmark(centre: (f64, f64), seed: u64) -> CityParams {
        CityParams {
            rows: 500,
            cols: 500,
            spacing_m: 50.0,
            centre,
            arterial_every: 10,
            oneway_share: 0.5,
            bridges: 5,
            bike_bridges: 4,
            seed,
        }
    }

    /// A small city for tests.
    pub fn small(seed: u64) -> CityParams {
        CityParams {
            rows: 40,
            cols: 40,
            spacing_m: 60.0,
            centre: (60.17, 24.94),
            arterial_every: 8,
            oneway_share: 0.5,
            bridges: 2,
            bike_bridges: 1,
            seed,
        }
    }
}

/// Metres per degree of latitude.
const METRES_PER_DEGREE: f64 = 111_320.0;

/// Generates the city's road graph.
pub fn generate(params: &CityParams) -> RoadGraph {
    let mut rng = Random::new(params.seed);
    let (rows, cols) = (params.rows.max(2), params.cols.max(2));
    let lat_step = params.spacing_m / METRES_PER_DEGREE;
    let lon_step = lat_step / params.centre.0.to_radians().cos();
    let mut b = RoadGraphBuilder::new();
    let mut id = vec![0 as NodeId; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            // A regular grid: equal blocks give many equally short paths, which keeps the
            // hierarchy small (jittered blocks made every path unique and bike preparation on
            // 250,000 nodes several times slower).
            let lat = params.centre.0 + (r as f64 - rows as f64 / 2.0) * lat_step;
            let lon = params.centre.1 + (c as f64 - cols as f64 / 2.0) * lon_step;
            id[r * cols + c] =
                b.add_node(Coordinates::parse(lat, lon).expect("the grid stays on the globe"));
        }
    }
    // The river: south of row `river[c]` at column `c`, meandering within the middle rows.
    let phase = rng.unit() * std::f64::consts::TAU;
    let river: Vec<usize> = (0..cols)
        .map(|c| {
            let wave = (c as f64 / cols as f64 * 3.0 * std::f64::consts::TAU + phase).sin();
            (rows as f64 / 2.0 + wave * rows as f64 / 12.0) as usize
        })
        .collect();
    let south = |r: usize, c: usize| r > river[c];
    let arterial_cols: Vec<usize> = (0..cols)
        .filter(|c| c % params.arterial_every.max(1) == 0)
        .collect();
    let pick = |n: usize, rng: &mut Random| -> Vec<usize> {
        let mut cs = arterial_cols.clone();
        rng.shuffle(&mut cs);
        cs.truncate(n.min(cs.len()));
        cs
    };
    let bridges = pick(params.bridges, &mut rng);
    let mut bike_bridges = pick(params.bridges + params.bike_bridges, &mut rng);
    bike_bridges.retain(|c| !bridges.contains(c));
    bike_bridges.truncate(params.bike_bridges);
    let street = |arterial: bool, rng: &mut Random| -> WayTags {
        if arterial {
            WayTags {
                maxspeed: Some("50".into()),
                cycleway: Some("lane".into()),
                ..WayTags::highway("secondary")
            }
        } else {
            let mut tags = WayTags::highway("residential");
            if rng.chance(params.oneway_share) {
                tags.oneway = Some(if rng.chance(0.5) { "yes" } else { "-1" }.into());
                // Cycling against one-way streets is allowed, as in many cities.
                tags.oneway_bicycle = Some("no".into());
            }
            tags
        }
    };
    // East-west streets: split where the river crosses them.
    for r in 0..rows {
        let tags = street(
            r % params.arterial_every.max(1) == 0 || r == rows - 1,
            &mut rng,
        );
        let mut piece = vec![id[r * cols]];
        for c in 1..cols {
            if south(r, c - 1) != south(r, c) {
                b.add_way(&piece, &tags);
                piece.clear();
            }
            piece.push(id[r * cols + c]);
        }
        b.add_way(&piece, &tags);
    }
    // North-south streets: broken by the river except at bridges.
    for c in 0..cols {
        let tags = street(
            c % params.arterial_every.max(1) == 0 || c == cols - 1,
            &mut rng,
        );
        let mut piece = vec![id[c]];
        for r in 1..rows {
            if south(r - 1, c) != south(r, c) {
                b.add_way(&piece, &tags);
                piece.clear();
                let crossing = [id[(r - 1) * cols + c], id[r * cols + c]];
                if bridges.contains(&c) {
                    b.add_way(&crossing, &tags);
                } else if bike_bridges.contains(&c) {
                    b.add_way(&crossing, &WayTags::highway("cycleway"));
                }
            }
            piece.push(id[r * cols + c]);
        }
        b.add_way(&piece, &tags);
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;
    use crate::snap::largest_component;

    #[test]
    fn the_city_has_its_nodes_and_only_bridges_cross_the_river() {
        let params = CityParams::small(3);
        let g = generate(&params);
        assert_eq!(g.node_count(), 1600);
        // The bridges hold the city together: nearly every node can reach every other (a few
        // one-way dead ends at the river banks excepted).
        for p in Profile::ALL {
            let main = largest_component(&g, p);
            let reached = main.iter().filter(|&&m| m).count();
            assert!(reached >= 1560, "{p:?}: {reached}");
        }
        // Bikes have more ways across than cars.
        let count = |p: Profile| g.arcs(p).len();
        assert!(count(Profile::Bike) > count(Profile::Car));
        assert_eq!(
            generate(&params).segments(),
            g.segments(),
            "the seed fixes the city"
        );
    }
}
