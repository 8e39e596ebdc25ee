//! Travel distances and times. The solver asks a [`TravelModel`] for the distance between two
//! places and divides by the vehicle's speed; [`StraightLine`] measures haversine (WGS84) or
//! Euclidean (planar) distance times a detour factor. A road-network table service (OSRM,
//! Valhalla) can implement the same trait later. [`DistanceCache`] holds the distances between
//! the stops of one solve.

use std::sync::Arc;

use rayon::prelude::*;

use crate::model::{Coordinates, Location, Vehicle};

/// How far apart two places are on the way a courier travels.
pub trait TravelModel: Send + Sync {
    /// Travel distance in metres (or plane units for benchmark instances).
    fn distance(&self, from: Location, to: Location) -> f64;

    /// Travel time in seconds for `vehicle`; by default distance over the vehicle's speed.
    fn duration(&self, from: Location, to: Location, vehicle: &Vehicle) -> f64 {
        self.distance(from, to) / vehicle.speed_mps()
    }

    /// For straight-line models: the detour factor, so a cache can measure with precomputed
    /// vectors and get exactly what [`TravelModel::distance`] would.
    fn straight_line_detour(&self) -> Option<f64> {
        None
    }
}

/// Straight-line distance times a detour factor: haversine on WGS84, Euclidean on a plane.
/// Mixing the two kinds of location is a caller bug and measures as infinitely far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StraightLine {
    detour_factor: f64,
}

impl StraightLine {
    /// Typical ratio of street distance to straight-line distance in cities.
    pub const CITY_DETOUR: f64 = 1.3;

    /// A model with the given detour factor (values below 1 or not finite become 1).
    pub fn new(detour_factor: f64) -> Self {
        let detour_factor = if detour_factor.is_finite() && detour_factor >= 1.0 {
            detour_factor
        } else {
            1.0
        };
        StraightLine { detour_factor }
    }

    /// The exact straight-line distance, as benchmark instances define it.
    pub fn exact() -> Self {
        StraightLine { detour_factor: 1.0 }
    }

    /// The detour factor applied.
    pub fn detour_factor(&self) -> f64 {
        self.detour_factor
    }
}

impl Default for StraightLine {
    fn default() -> Self {
        StraightLine::new(Self::CITY_DETOUR)
    }
}

impl TravelModel for StraightLine {
    fn distance(&self, from: Location, to: Location) -> f64 {
        let d = match (from, to) {
            (Location::Wgs84(a), Location::Wgs84(b)) => {
                Coordinates::great_circle_m(a.unit_vector(), b.unit_vector())
            }
            (Location::Planar(a), Location::Planar(b)) => a.distance(b),
            _ => return f64::INFINITY,
        };
        d * self.detour_factor
    }

    fn straight_line_detour(&self) -> Option<f64> {
        Some(self.detour_factor)
    }
}

/// Largest number of places for which the cache keeps a full matrix (8 bytes per pair); above
/// it, distances are measured on demand so memory and set-up time stay linear in city size.
pub const DENSE_LIMIT: usize = 1_200;

/// Distances between the places of one solve: a full matrix (built in parallel) for small
/// solves, the model asked on demand beyond [`DENSE_LIMIT`] places.
#[derive(Clone)]
pub struct DistanceCache {
    places: Vec<Location>,
    model: Arc<dyn TravelModel>,
    dense: Option<Arc<Vec<f64>>>,
    /// For a straight-line model on WGS84 places: each place's unit vector and the detour.
    vectors: Option<(Arc<Vec<[f64; 3]>>, f64)>,
}

impl DistanceCache {
    /// Builds the cache for `places`.
    pub fn new(places: Vec<Location>, model: Arc<dyn TravelModel>) -> Self {
        let n = places.len();
        // Straight lines on the sphere are cheap from precomputed vectors: no matrix needed.
        let vectors = model.straight_line_detour().and_then(|detour| {
            let v: Option<Vec<[f64; 3]>> = places
                .iter()
                .map(|l| match l {
                    Location::Wgs84(c) => Some(c.unit_vector()),
                    Location::Planar(_) => None,
                })
                .collect();
            v.map(|v| (Arc::new(v), detour))
        });
        if vectors.is_some() {
            return DistanceCache {
                places,
                model,
                dense: None,
                vectors,
            };
        }
        let dense = (n <= DENSE_LIMIT).then(|| {
            let mut m = vec![0.0; n * n];
            m.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, row)| {
                for (j, cell) in row.iter_mut().enumerate() {
                    if i != j {
                        *cell = model.distance(places[i], places[j]);
                    }
                }
            });
            Arc::new(m)
        });
        DistanceCache {
            places,
            model,
            dense,
            vectors: None,
        }
    }

    /// Distance from place `a` to place `b` (indices into the places given at construction).
    #[inline]
    pub fn get(&self, a: usize, b: usize) -> f64 {
        if let Some((v, detour)) = &self.vectors {
            return Coordinates::great_circle_m(v[a], v[b]) * detour;
        }
        match &self.dense {
            Some(m) => m[a * self.places.len() + b],
            None if a == b => 0.0,
            None => self.model.distance(self.places[a], self.places[b]),
        }
    }

    /// The place with index `i`.
    pub fn place(&self, i: usize) -> Location {
        self.places[i]
    }

    /// Number of places.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Whether there are no places.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Coordinates, PlanarPoint};

    #[test]
    fn planar_distance_is_unrounded_euclidean() {
        let a = Location::from(PlanarPoint::parse(0.0, 0.0).unwrap());
        let b = Location::from(PlanarPoint::parse(3.0, 4.0).unwrap());
        assert_eq!(StraightLine::exact().distance(a, b), 5.0);
        assert_eq!(StraightLine::new(1.5).distance(a, b), 7.5);
    }

    #[test]
    fn travel_time_divides_by_speed() {
        let a = Location::from(Coordinates::parse(52.52, 13.40).unwrap());
        let b = Location::from(Coordinates::parse(52.53, 13.40).unwrap());
        let bike = Vehicle::of_kind(crate::model::VehicleKind::Bike);
        let model = StraightLine::default();
        let t = model.duration(a, b, &bike);
        assert!((t - model.distance(a, b) / bike.speed_mps()).abs() < 1e-9);
        assert!(t > 0.0);
    }

    #[test]
    fn the_vector_cache_agrees_exactly_with_the_model() {
        let places: Vec<Location> = (0..6)
            .map(|i| {
                Coordinates::parse(52.5 + 0.01 * i as f64, 13.4 - 0.02 * i as f64)
                    .unwrap()
                    .into()
            })
            .collect();
        let model = StraightLine::default();
        let cache = DistanceCache::new(places.clone(), Arc::new(model));
        for i in 0..6 {
            for j in 0..6 {
                assert_eq!(cache.get(i, j), model.distance(places[i], places[j]));
            }
        }
    }

    #[test]
    fn mixed_location_kinds_are_unreachable() {
        let a = Location::from(Coordinates::parse(0.0, 0.0).unwrap());
        let b = Location::from(PlanarPoint::parse(0.0, 0.0).unwrap());
        assert!(StraightLine::exact().distance(a, b).is_infinite());
    }

    #[test]
    fn the_cache_agrees_with_the_model() {
        let places: Vec<Location> = (0..5)
            .map(|i| PlanarPoint::parse(i as f64, (i * i) as f64).unwrap().into())
            .collect();
        let model = StraightLine::exact();
        let cache = DistanceCache::new(places.clone(), Arc::new(model));
        for i in 0..5 {
            for j in 0..5 {
                assert_eq!(cache.get(i, j), model.distance(places[i], places[j]));
            }
        }
    }
}
