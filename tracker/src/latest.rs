//! Every courier's latest position, in memory, with an R-tree for "who is within R of here" and
//! "the k nearest". Points are kept as Earth-centred 3-D coordinates in metres, where straight
//! (chord) distance grows with great-circle distance, so both queries are exact on the sphere.
//!
//! The latest position only moves forward in fix time: an older fix that arrives late goes to
//! history but never here. Each move is also broadcast, for the live map and the planner.

use std::collections::HashMap;
use std::sync::RwLock;

use optimizer::model::{Coordinates, CourierId};
use rstar::{AABB, PointDistance, RTree, RTreeObject};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::position::Position;
use crate::validation::Anchor;

/// A courier's latest known position.
#[derive(Clone, Debug, PartialEq)]
pub struct LatestPosition {
    /// Whose.
    pub courier_id: CourierId,
    /// Where.
    pub coords: Coordinates,
    /// Fix time.
    pub at: OffsetDateTime,
    /// Speed, m/s.
    pub speed_mps: Option<f32>,
    /// Heading, degrees.
    pub heading_deg: Option<f32>,
    /// Accuracy radius, m.
    pub accuracy_m: Option<f32>,
}

impl LatestPosition {
    /// The latest position a stored [`Position`] makes.
    pub fn of(p: &Position) -> Self {
        LatestPosition {
            courier_id: p.courier_id.clone(),
            coords: p.coords,
            at: p.fix_time,
            speed_mps: p.speed_mps,
            heading_deg: p.heading_deg,
            accuracy_m: p.accuracy_m,
        }
    }

    /// The anchor jumps are judged from.
    pub fn anchor(&self) -> Anchor {
        Anchor {
            coords: self.coords,
            at: self.at,
            accuracy_m: self.accuracy_m,
        }
    }
}

/// Mean Earth radius, metres (the optimizer's haversine uses the same).
const EARTH_RADIUS_M: f64 = 6_371_008.8;

#[derive(Clone, Debug, PartialEq)]
struct TreePoint {
    xyz: [f64; 3],
    courier_id: CourierId,
}

impl RTreeObject for TreePoint {
    type Envelope = AABB<[f64; 3]>;
    fn envelope(&self) -> Self::Envelope {
        AABB::from_point(self.xyz)
    }
}

impl PointDistance for TreePoint {
    fn distance_2(&self, point: &[f64; 3]) -> f64 {
        let d = [
            self.xyz[0] - point[0],
            self.xyz[1] - point[1],
            self.xyz[2] - point[2],
        ];
        d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    }
}

fn to_xyz(c: Coordinates) -> [f64; 3] {
    let (lat, lon) = (c.lat().to_radians(), c.lon().to_radians());
    [
        EARTH_RADIUS_M * lat.cos() * lon.cos(),
        EARTH_RADIUS_M * lat.cos() * lon.sin(),
        EARTH_RADIUS_M * lat.sin(),
    ]
}

/// The chord length of a great-circle distance.
fn chord_m(distance_m: f64) -> f64 {
    let half_angle = (distance_m / (2.0 * EARTH_RADIUS_M)).min(std::f64::consts::FRAC_PI_2);
    2.0 * EARTH_RADIUS_M * half_angle.sin()
}

#[derive(Default)]
struct Inner {
    /// The truth: one entry per courier.
    by_courier: HashMap<CourierId, Entry>,
    /// Index over the same points.
    tree: RTree<TreePoint>,
}

struct Entry {
    latest: LatestPosition,
    xyz: [f64; 3],
}

/// The latest positions and their spatial index.
pub struct LatestPositions {
    /// Entries and R-tree, changed together under one lock (no `.await` while held).
    inner: RwLock<Inner>,
    /// Moves of the latest positions, for subscribers (map, planner); lagging ones miss some.
    moves: broadcast::Sender<LatestPosition>,
}

impl Default for LatestPositions {
    fn default() -> Self {
        LatestPositions {
            inner: RwLock::default(),
            moves: broadcast::channel(4096).0,
        }
    }
}

/// The outcome of offering a position to [`LatestPositions::offer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// It became the courier's latest position.
    Moved,
    /// It is older than the latest (or the same fix): kept in history only.
    Older,
}

impl LatestPositions {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the set from (for instance) the database's latest row per courier.
    pub fn from_positions(positions: impl IntoIterator<Item = LatestPosition>) -> Self {
        let set = Self::new();
        {
            let mut inner = set.write();
            let mut points = Vec::new();
            for p in positions {
                let xyz = to_xyz(p.coords);
                match inner.by_courier.get(&p.courier_id) {
                    Some(e) if e.latest.at >= p.at => continue,
                    _ => {}
                }
                inner
                    .by_courier
                    .insert(p.courier_id.clone(), Entry { latest: p, xyz });
            }
            for (id, e) in &inner.by_courier {
                points.push(TreePoint {
                    xyz: e.xyz,
                    courier_id: id.clone(),
                });
            }
            inner.tree = RTree::bulk_load(points);
        }
        set
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map and tree half-changed in a way
        // that matters more than losing the service, so a poisoned lock is used as is.
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `p` the courier's latest position if it is newer than the one known.
    pub fn offer(&self, p: LatestPosition) -> Offer {
        let xyz = to_xyz(p.coords);
        {
            let mut inner = self.write();
            let Inner { by_courier, tree } = &mut *inner;
            match by_courier.get_mut(&p.courier_id) {
                Some(e) if e.latest.at >= p.at => return Offer::Older,
                Some(e) => {
                    if e.xyz != xyz {
                        tree.remove(&TreePoint {
                            xyz: e.xyz,
                            courier_id: p.courier_id.clone(),
                        });
                        tree.insert(TreePoint {
                            xyz,
                            courier_id: p.courier_id.clone(),
                        });
                    }
                    e.xyz = xyz;
                    e.latest = p.clone();
                }
                None => {
                    tree.insert(TreePoint {
                        xyz,
                        courier_id: p.courier_id.clone(),
                    });
                    by_courier.insert(
                        p.courier_id.clone(),
                        Entry {
                            latest: p.clone(),
                            xyz,
                        },
                    );
                }
            }
            metrics::gauge!(crate::metric::LATEST_COURIERS).set(by_courier.len() as f64);
        }
        // Nobody listening is fine.
        let _ = self.moves.send(p);
        Offer::Moved
    }

    /// The courier's latest position.
    pub fn get(&self, courier_id: &CourierId) -> Option<LatestPosition> {
        self.read()
            .by_courier
            .get(courier_id)
            .map(|e| e.latest.clone())
    }

    /// Every courier's latest position, in no particular order.
    pub fn all(&self) -> Vec<LatestPosition> {
        self.read()
            .by_courier
            .values()
            .map(|e| e.latest.clone())
            .collect()
    }

    /// How many couriers have a latest position.
    pub fn len(&self) -> usize {
        self.read().by_courier.len()
    }

    /// Whether no courier has one.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Couriers within `radius_m` (great-circle) of `center`, nearest first, with distances.
    pub fn within_radius(&self, center: Coordinates, radius_m: f64) -> Vec<(LatestPosition, f64)> {
        let inner = self.read();
        // A hair of slack so float rounding never hides a point the exact test below keeps.
        let chord = chord_m(radius_m.max(0.0)) * (1.0 + 1e-9) + 1e-6;
        let mut found: Vec<_> = inner
            .tree
            .locate_within_distance(to_xyz(center), chord * chord)
            .filter_map(|t| inner.by_courier.get(&t.courier_id))
            .map(|e| (e.latest.clone(), center.haversine_m(e.latest.coords)))
            .filter(|(_, d)| *d <= radius_m)
            .collect();
        found.sort_by(|a, b| a.1.total_cmp(&b.1));
        found
    }

    /// The `k` couriers nearest to `center`, nearest first, with great-circle distances.
    pub fn nearest(&self, center: Coordinates, k: usize) -> Vec<(LatestPosition, f64)> {
        let inner = self.read();
        inner
            .tree
            .nearest_neighbor_iter(to_xyz(center))
            .take(k)
            .filter_map(|t| inner.by_courier.get(&t.courier_id))
            .map(|e| (e.latest.clone(), center.haversine_m(e.latest.coords)))
            .collect()
    }

    /// A receiver of every future move of a latest position.
    pub fn subscribe(&self) -> broadcast::Receiver<LatestPosition> {
        self.moves.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn at(id: &str, lat: f64, lon: f64, minute: u8) -> LatestPosition {
        LatestPosition {
            courier_id: CourierId::parse(id).unwrap(),
            coords: Coordinates::parse(lat, lon).unwrap(),
            at: datetime!(2026-11-21 12:00 UTC) + time::Duration::minutes(minute.into()),
            speed_mps: None,
            heading_deg: None,
            accuracy_m: None,
        }
    }

    #[test]
    fn the_latest_position_only_moves_forward_in_fix_time() {
        let set = LatestPositions::new();
        assert_eq!(set.offer(at("a", 52.5, 13.4, 5)), Offer::Moved);
        assert_eq!(set.offer(at("a", 52.6, 13.4, 3)), Offer::Older);
        assert_eq!(set.offer(at("a", 52.6, 13.4, 5)), Offer::Older);
        assert_eq!(
            set.get(&CourierId::parse("a").unwrap())
                .unwrap()
                .coords
                .lat(),
            52.5
        );
        assert_eq!(set.offer(at("a", 52.7, 13.4, 6)), Offer::Moved);
        assert_eq!(set.len(), 1);
        assert_eq!(
            set.nearest(Coordinates::parse(52.7, 13.4).unwrap(), 5)
                .len(),
            1
        );
    }

    #[test]
    fn radius_and_nearest_queries_measure_on_the_sphere() {
        let set = LatestPositions::from_positions([
            at("near", 52.5010, 13.4, 0), // ~111 m north
            at("mid", 52.5, 13.4100, 0),  // ~677 m east
            at("far", 52.6, 13.4, 0),     // ~11 km
        ]);
        let here = Coordinates::parse(52.5, 13.4).unwrap();
        let within: Vec<_> = set
            .within_radius(here, 1_000.0)
            .into_iter()
            .map(|(p, _)| p.courier_id.to_string())
            .collect();
        assert_eq!(within, ["near", "mid"]);
        let nearest: Vec<_> = set
            .nearest(here, 2)
            .into_iter()
            .map(|(p, _)| p.courier_id.to_string())
            .collect();
        assert_eq!(nearest, ["near", "mid"]);
    }

    proptest! {
        #[test]
        fn radius_queries_agree_with_a_linear_scan(
            pts in proptest::collection::vec((-80.0f64..80.0, -179.0f64..179.0), 1..60),
            center in (-80.0f64..80.0, -179.0f64..179.0),
            radius in 0.0f64..3_000_000.0,
        ) {
            let set = LatestPositions::from_positions(
                pts.iter().enumerate().map(|(i, (lat, lon))| at(&format!("c{i}"), *lat, *lon, 0)));
            let c = Coordinates::parse(center.0, center.1).unwrap();
            let mut expected: Vec<String> = pts.iter().enumerate()
                .filter(|(_, (lat, lon))| c.haversine_m(Coordinates::parse(*lat, *lon).unwrap()) <= radius)
                .map(|(i, _)| format!("c{i}")).collect();
            let mut got: Vec<String> = set.within_radius(c, radius).into_iter()
                .map(|(p, _)| p.courier_id.to_string()).collect();
            expected.sort();
            got.sort();
            prop_assert_eq!(got, expected);
        }
    }
}
