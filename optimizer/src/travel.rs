//! Travel distances and times: the one source of every travel time the optimizer uses.
//!
//! A [`TravelModel`] answers for two places (the checker and replanning ask it directly) and
//! builds the [`TravelTable`] of one solve, which the solver reads by place index in its inner
//! loops; the solver never computes a time itself. Vehicles that travel alike share a
//! *profile*: the table is asked per profile (one per distinct vehicle of the solve).
//!
//! Here are the models that need no data: [`StraightLine`] (great-circle or planar distance
//! times a detour factor per vehicle kind, over the vehicle's speed) and [`RoundedUp`], which
//! rounds another model's times up to whole steps (the MDRP benchmark counts whole minutes, so
//! rounding is a property of the model, and the checker sees the same times as the solver).
//! Road networks implement the same trait outside this crate, which does no I/O: crate `roads`
//! has an OpenStreetMap road graph with contraction hierarchies, and an OSRM client.

use std::sync::Arc;

use crate::model::{Coordinates, Location, Vehicle, VehicleKind};
use crate::parallel;

/// Why a travel model could not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TravelError {
    /// The source of travel times is down or too slow (for example an OSRM server).
    #[error("travel times are unavailable from {source_name}: {reason}")]
    Unavailable {
        /// The source, as [`TravelModel::describe`] names it.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// A place no vehicle of the kind can travel from or to (no usable road near it).
    #[error("no way to travel to or from {place:?}: {reason}")]
    Unplaceable {
        /// The place.
        place: Location,
        /// Why, e.g. the distance to the nearest usable road and the snapping limit.
        reason: String,
    },
}

/// Which ways a solve travels at a place: only away from it (a courier's start), only to it
/// (a depot at the end), or both (an order's stop). A table may prepare just those (a road
/// network's search spaces); it must still answer any pair it is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ways {
    /// Only leaving it.
    Out,
    /// Only arriving.
    In,
    /// Both.
    Both,
}

/// Distances and travel times between two places, for one vehicle.
///
/// Unreachable places are infinitely far: a model never answers a made-up time.
pub trait TravelModel: Send + Sync {
    /// Distance in metres (plane units for benchmark instances) along the way `vehicle` goes.
    fn distance(&self, from: Location, to: Location, vehicle: &Vehicle) -> f64;

    /// Travel time in seconds for `vehicle`; by default distance over the vehicle's speed.
    fn duration(&self, from: Location, to: Location, vehicle: &Vehicle) -> f64 {
        self.distance(from, to, vehicle) / vehicle.speed_mps()
    }

    /// A table over `places` (travelled as `ways` says, one entry per place) for each vehicle
    /// of `profiles`, built the model's own way (from precomputed vectors, a many-to-many
    /// query); `Ok(None)` lets the optimizer ask [`TravelModel::distance`] and
    /// [`TravelModel::duration`] pair by pair (as a full matrix, built in parallel, for up to
    /// [`DENSE_LIMIT`] places). Every entry must equal what those two methods answer.
    ///
    /// # Errors
    /// [`TravelError::Unavailable`] when the source cannot answer now.
    fn table(
        &self,
        places: &[Location],
        ways: &[Ways],
        profiles: &[Vehicle],
    ) -> Result<Option<Arc<dyn TravelTable>>, TravelError> {
        let _ = (places, ways, profiles);
        Ok(None)
    }

    /// Whether `vehicle` can travel from and to `place` at all.
    ///
    /// # Errors
    /// [`TravelError::Unplaceable`] with the reason, e.g. no usable road within the limit.
    fn check(&self, place: Location, vehicle: &Vehicle) -> Result<(), TravelError> {
        let _ = (place, vehicle);
        Ok(())
    }

    /// What the model is, for logs ("straight lines, detour 1.3", "road network ...").
    fn describe(&self) -> String {
        "a custom travel model".into()
    }
}

/// Distances and times between the places of one solve, by index: what the solver reads.
pub trait TravelTable: Send + Sync {
    /// Distance from place `from` to place `to` for profile `profile`.
    fn distance(&self, profile: usize, from: usize, to: usize) -> f64;
    /// Travel time from place `from` to place `to` for profile `profile`.
    fn duration(&self, profile: usize, from: usize, to: usize) -> f64;

    /// How far apart two places are for choices that belong to no courier (which orders are
    /// related, for the ruin operators), asked for every order's nearest few dozen others. By
    /// default the first profile's distance; a table whose pairs are dear to meet may answer a
    /// cheaper measure of nearness.
    fn relatedness(&self, from: usize, to: usize) -> f64 {
        self.distance(0, from, to)
    }
}

/// Largest number of places for which a table asked pair by pair keeps full matrices; above it
/// the model is asked on demand, so memory and set-up stay linear in city size.
pub const DENSE_LIMIT: usize = 1_200;

/// The table of `model` over `places`, each travelled both ways, for `profiles`.
///
/// # Errors
/// What [`TravelModel::table`] returns.
pub fn table_of(
    model: &Arc<dyn TravelModel>,
    places: &[Location],
    profiles: &[Vehicle],
) -> Result<Arc<dyn TravelTable>, TravelError> {
    table_for(model, places, &vec![Ways::Both; places.len()], profiles)
}

/// The table of `model` over `places` travelled as `ways` says, for `profiles`: the model's
/// own, or one that asks it pair by pair.
///
/// # Errors
/// What [`TravelModel::table`] returns.
pub fn table_for(
    model: &Arc<dyn TravelModel>,
    places: &[Location],
    ways: &[Ways],
    profiles: &[Vehicle],
) -> Result<Arc<dyn TravelTable>, TravelError> {
    match model.table(places, ways, profiles)? {
        Some(table) => Ok(table),
        None => Ok(Arc::new(PairTable::new(model.clone(), places, profiles))),
    }
}

/// Straight-line distance times a detour factor per vehicle kind: great circle on WGS84,
/// Euclidean on a plane; the time is that distance over the vehicle's speed. Mixing the two
/// kinds of location is a caller bug and measures as infinitely far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StraightLine {
    /// Ratio of the way travelled to the straight line, per kind in [`VehicleKind::ALL`] order.
    detours: [f64; 3],
}

/// A detour factor, or 1 when below 1 or not finite.
fn sane_detour(factor: f64) -> f64 {
    if factor.is_finite() && factor >= 1.0 {
        factor
    } else {
        1.0
    }
}

fn kind_index(kind: VehicleKind) -> usize {
    match kind {
        VehicleKind::Bike => 0,
        VehicleKind::Scooter => 1,
        VehicleKind::Car => 2,
    }
}

impl StraightLine {
    /// A typical ratio of street distance to straight-line distance in cities.
    pub const CITY_DETOUR: f64 = 1.3;

    /// Detour factors fitted on the road graph of central Helsinki (`optimizer/ROADS.md`: the
    /// median over 400 random pairs of road time × the kind's default speed / great circle),
    /// for bike, scooter and car: the default where no road network is given.
    pub const FITTED_DETOURS: [f64; 3] = [1.37, 1.59, 1.72];

    /// One detour factor for every kind (values below 1 or not finite become 1).
    pub fn new(detour_factor: f64) -> Self {
        let d = sane_detour(detour_factor);
        StraightLine { detours: [d; 3] }
    }

    /// A detour factor per kind (values below 1 or not finite become 1).
    pub fn per_kind(bike: f64, scooter: f64, car: f64) -> Self {
        StraightLine {
            detours: [sane_detour(bike), sane_detour(scooter), sane_detour(car)],
        }
    }

    /// The exact straight-line distance, as benchmark instances define it.
    pub fn exact() -> Self {
        StraightLine { detours: [1.0; 3] }
    }

    /// The detour factor applied for `kind`.
    pub fn detour_factor(&self, kind: VehicleKind) -> f64 {
        self.detours[kind_index(kind)]
    }

    /// The straight-line distance itself, without detour.
    pub fn straight_m(from: Location, to: Location) -> f64 {
        match (from, to) {
            (Location::Wgs84(a), Location::Wgs84(b)) => {
                Coordinates::great_circle_m(a.unit_vector(), b.unit_vector())
            }
            (Location::Planar(a), Location::Planar(b)) => a.distance(b),
            _ => f64::INFINITY,
        }
    }
}

impl Default for StraightLine {
    /// The detour factors fitted per vehicle kind ([`StraightLine::FITTED_DETOURS`]).
    fn default() -> Self {
        let [bike, scooter, car] = Self::FITTED_DETOURS;
        StraightLine::per_kind(bike, scooter, car)
    }
}

impl TravelModel for StraightLine {
    fn distance(&self, from: Location, to: Location, vehicle: &Vehicle) -> f64 {
        Self::straight_m(from, to) * self.detour_factor(vehicle.kind())
    }

    fn table(
        &self,
        places: &[Location],
        _: &[Ways],
        profiles: &[Vehicle],
    ) -> Result<Option<Arc<dyn TravelTable>>, TravelError> {
        // Straight lines on the sphere are cheap from precomputed vectors: no matrix needed.
        let vectors: Option<Vec<[f64; 3]>> = places
            .iter()
            .map(|l| match l {
                Location::Wgs84(c) => Some(c.unit_vector()),
                Location::Planar(_) => None,
            })
            .collect();
        Ok(vectors.map(|vectors| {
            Arc::new(SphereTable {
                vectors,
                detours: profiles
                    .iter()
                    .map(|v| self.detour_factor(v.kind()))
                    .collect(),
                speeds: profiles.iter().map(|v| v.speed_mps()).collect(),
            }) as Arc<dyn TravelTable>
        }))
    }

    fn describe(&self) -> String {
        let [bike, scooter, car] = self.detours;
        if bike == scooter && scooter == car {
            format!("straight lines times {car}")
        } else {
            format!("straight lines times {bike} (bike), {scooter} (scooter), {car} (car)")
        }
    }
}

/// [`StraightLine`]'s table on WGS84 places: unit vectors, so a distance is one square root and
/// one arcsine, computed exactly as the model computes it.
struct SphereTable {
    vectors: Vec<[f64; 3]>,
    /// Per profile.
    detours: Vec<f64>,
    /// Per profile, metres per second.
    speeds: Vec<f64>,
}

impl TravelTable for SphereTable {
    #[inline]
    fn distance(&self, profile: usize, from: usize, to: usize) -> f64 {
        Coordinates::great_circle_m(self.vectors[from], self.vectors[to]) * self.detours[profile]
    }

    #[inline]
    fn duration(&self, profile: usize, from: usize, to: usize) -> f64 {
        self.distance(profile, from, to) / self.speeds[profile]
    }
}

/// Another model's travel times rounded up to whole multiples of a step (distances unchanged).
#[derive(Clone, Debug)]
pub struct RoundedUp<M> {
    inner: M,
    step: f64,
}

impl<M: TravelModel> RoundedUp<M> {
    /// `inner`'s times rounded up to multiples of `step` (a step that is not positive and finite
    /// rounds nothing).
    pub fn new(inner: M, step: f64) -> Self {
        let step = if step.is_finite() && step > 0.0 {
            step
        } else {
            0.0
        };
        RoundedUp { inner, step }
    }

    /// The step.
    pub fn step(&self) -> f64 {
        self.step
    }
}

/// `x` rounded up to a multiple of `step` (0: unchanged).
#[inline]
fn round_up(x: f64, step: f64) -> f64 {
    if step > 0.0 { ceil(x / step) * step } else { x }
}

impl<M: TravelModel> TravelModel for RoundedUp<M> {
    fn distance(&self, from: Location, to: Location, vehicle: &Vehicle) -> f64 {
        self.inner.distance(from, to, vehicle)
    }

    fn duration(&self, from: Location, to: Location, vehicle: &Vehicle) -> f64 {
        round_up(self.inner.duration(from, to, vehicle), self.step)
    }

    fn table(
        &self,
        places: &[Location],
        ways: &[Ways],
        profiles: &[Vehicle],
    ) -> Result<Option<Arc<dyn TravelTable>>, TravelError> {
        let step = self.step;
        Ok(self
            .inner
            .table(places, ways, profiles)?
            .map(|inner| Arc::new(RoundedTable { inner, step }) as Arc<dyn TravelTable>))
    }

    fn check(&self, place: Location, vehicle: &Vehicle) -> Result<(), TravelError> {
        self.inner.check(place, vehicle)
    }

    fn describe(&self) -> String {
        format!(
            "{}, times rounded up to {} s",
            self.inner.describe(),
            self.step
        )
    }
}

struct RoundedTable {
    inner: Arc<dyn TravelTable>,
    step: f64,
}

impl TravelTable for RoundedTable {
    fn distance(&self, profile: usize, from: usize, to: usize) -> f64 {
        self.inner.distance(profile, from, to)
    }

    fn duration(&self, profile: usize, from: usize, to: usize) -> f64 {
        round_up(self.inner.duration(profile, from, to), self.step)
    }

    fn relatedness(&self, from: usize, to: usize) -> f64 {
        self.inner.relatedness(from, to)
    }
}

/// A table that asks its model pair by pair: into full matrices (built in parallel) for up to
/// [`DENSE_LIMIT`] places, on demand beyond.
struct PairTable {
    places: Vec<Location>,
    profiles: Vec<Vehicle>,
    model: Arc<dyn TravelModel>,
    /// Per profile: distances and durations, row-major.
    dense: Option<Vec<(Vec<f64>, Vec<f64>)>>,
}

impl PairTable {
    fn new(model: Arc<dyn TravelModel>, places: &[Location], profiles: &[Vehicle]) -> PairTable {
        let n = places.len();
        let dense = (n <= DENSE_LIMIT).then(|| {
            profiles
                .iter()
                .map(|vehicle| {
                    let matrix = |f: &(dyn Fn(Location, Location) -> f64 + Sync)| {
                        let mut m = vec![0.0; n * n];
                        parallel::rows_mut(&mut m, n, |i, row| {
                            for (j, cell) in row.iter_mut().enumerate() {
                                if i != j {
                                    *cell = f(places[i], places[j]);
                                }
                            }
                        });
                        m
                    };
                    (
                        matrix(&|a, b| model.distance(a, b, vehicle)),
                        matrix(&|a, b| model.duration(a, b, vehicle)),
                    )
                })
                .collect()
        });
        PairTable {
            places: places.to_vec(),
            profiles: profiles.to_vec(),
            model,
            dense,
        }
    }
}

impl TravelTable for PairTable {
    #[inline]
    fn distance(&self, profile: usize, from: usize, to: usize) -> f64 {
        match &self.dense {
            Some(m) => m[profile].0[from * self.places.len() + to],
            None if from == to => 0.0,
            None => {
                self.model
                    .distance(self.places[from], self.places[to], &self.profiles[profile])
            }
        }
    }

    #[inline]
    fn duration(&self, profile: usize, from: usize, to: usize) -> f64 {
        match &self.dense {
            Some(m) => m[profile].1[from * self.places.len() + to],
            None if from == to => 0.0,
            None => {
                self.model
                    .duration(self.places[from], self.places[to], &self.profiles[profile])
            }
        }
    }
}

/// `x.ceil()` without the library call (x86-64's baseline has no rounding instruction); exact for
/// the finite values below 2^52 that travel times are, and defers to `ceil` otherwise.
#[inline]
fn ceil(x: f64) -> f64 {
    const EXACT: f64 = 4_503_599_627_370_496.0; // 2^52
    if x.abs() < EXACT {
        // |x| < 2^52, so the truncation to i64 is exact and in range.
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let t = x as i64 as f64;
        if t < x { t + 1.0 } else { t }
    } else {
        x.ceil()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Coordinates, PlanarPoint};

    fn bike() -> Vehicle {
        Vehicle::of_kind(VehicleKind::Bike)
    }

    fn planar(x: f64, y: f64) -> Location {
        PlanarPoint::parse(x, y).unwrap().into()
    }

    #[test]
    fn planar_distance_is_unrounded_euclidean() {
        let (a, b) = (planar(0.0, 0.0), planar(3.0, 4.0));
        assert_eq!(StraightLine::exact().distance(a, b, &bike()), 5.0);
        assert_eq!(StraightLine::new(1.5).distance(a, b, &bike()), 7.5);
    }

    #[test]
    fn travel_time_divides_by_speed() {
        let a = Location::from(Coordinates::parse(52.52, 13.40).unwrap());
        let b = Location::from(Coordinates::parse(52.53, 13.40).unwrap());
        let model = StraightLine::default();
        let t = model.duration(a, b, &bike());
        assert_eq!(t, model.distance(a, b, &bike()) / bike().speed_mps());
        assert!(t > 0.0);
    }

    #[test]
    fn each_kind_has_its_own_detour() {
        let (a, b) = (planar(0.0, 0.0), planar(0.0, 10.0));
        let model = StraightLine::per_kind(1.5, 1.2, 1.4);
        for (kind, want) in [
            (VehicleKind::Bike, 15.0),
            (VehicleKind::Scooter, 12.0),
            (VehicleKind::Car, 14.0),
        ] {
            let d = model.distance(a, b, &Vehicle::of_kind(kind));
            assert!((d - want).abs() < 1e-9, "{kind}: {d}");
        }
    }

    fn agree(model: Arc<dyn TravelModel>, places: &[Location]) {
        let profiles: Vec<Vehicle> = VehicleKind::ALL.map(Vehicle::of_kind).to_vec();
        let table = table_of(&model, places, &profiles).unwrap();
        for (p, vehicle) in profiles.iter().enumerate() {
            for (i, &a) in places.iter().enumerate() {
                for (j, &b) in places.iter().enumerate() {
                    let (d, t) = if i == j {
                        (0.0, 0.0)
                    } else {
                        (model.distance(a, b, vehicle), model.duration(a, b, vehicle))
                    };
                    assert_eq!(table.distance(p, i, j), d);
                    assert_eq!(table.duration(p, i, j), t);
                }
            }
        }
    }

    #[test]
    fn the_sphere_table_agrees_exactly_with_the_model() {
        let places: Vec<Location> = (0..6)
            .map(|i| {
                Coordinates::parse(52.5 + 0.01 * i as f64, 13.4 - 0.02 * i as f64)
                    .unwrap()
                    .into()
            })
            .collect();
        agree(Arc::new(StraightLine::per_kind(1.4, 1.3, 1.35)), &places);
    }

    #[test]
    fn the_pair_table_agrees_with_the_model() {
        let places: Vec<Location> = (0..5).map(|i| planar(i as f64, (i * i) as f64)).collect();
        agree(Arc::new(StraightLine::exact()), &places);
        agree(
            Arc::new(RoundedUp::new(StraightLine::exact(), 2.0)),
            &places,
        );
    }

    #[test]
    fn rounded_times_are_whole_steps_and_never_shorter() {
        let (a, b) = (planar(0.0, 0.0), planar(0.0, 10.0));
        let car = Vehicle::new(
            VehicleKind::Car,
            3.0,
            crate::model::Capacity::new(1).unwrap(),
        )
        .unwrap();
        let exact = StraightLine::exact().duration(a, b, &car);
        let rounded = RoundedUp::new(StraightLine::exact(), 1.0).duration(a, b, &car);
        assert_eq!(rounded, 4.0);
        assert!(rounded >= exact);
        // Unreachable stays unreachable.
        let far = Location::from(Coordinates::parse(0.0, 0.0).unwrap());
        assert!(
            RoundedUp::new(StraightLine::exact(), 60.0)
                .duration(a, far, &car)
                .is_infinite()
        );
    }

    #[test]
    fn mixed_location_kinds_are_unreachable() {
        let a = Location::from(Coordinates::parse(0.0, 0.0).unwrap());
        assert!(
            StraightLine::exact()
                .distance(a, planar(0.0, 0.0), &bike())
                .is_infinite()
        );
    }
}
