//! Places. Real deliveries use WGS84 [`Coordinates`]; benchmark instances (Li & Lim, Grubhub's
//! MDRP) use planar points in their own units. A [`Location`] is either, and the travel-time
//! model decides how to measure between two of them.

use serde::{Deserialize, Serialize};

use super::ModelError;
use super::error::finite;

/// Mean Earth radius used for great-circle distances, in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A validated WGS84 position in degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawCoordinates", into = "RawCoordinates")]
pub struct Coordinates {
    lat: f64,
    lon: f64,
}

/// A point on a plane, in the units of the instance it came from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawPlanar", into = "RawPlanar")]
pub struct PlanarPoint {
    x: f64,
    y: f64,
}

/// Where a stop, a courier or a restaurant is.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// On the Earth.
    Wgs84(Coordinates),
    /// On a benchmark's plane.
    Planar(PlanarPoint),
}

impl Coordinates {
    /// Parses latitude and longitude in degrees.
    ///
    /// # Errors
    /// [`ModelError::NotFinite`] for NaN or infinity, [`ModelError::LatitudeOutOfRange`] outside
    /// ±90 and [`ModelError::LongitudeOutOfRange`] outside ±180.
    pub fn parse(lat: f64, lon: f64) -> Result<Self, ModelError> {
        let lat = finite("latitude", lat)?;
        let lon = finite("longitude", lon)?;
        if !(-90.0..=90.0).contains(&lat) {
            return Err(ModelError::LatitudeOutOfRange(lat));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(ModelError::LongitudeOutOfRange(lon));
        }
        Ok(Coordinates { lat, lon })
    }

    /// Latitude in degrees.
    pub const fn lat(self) -> f64 {
        self.lat
    }

    /// Longitude in degrees.
    pub const fn lon(self) -> f64 {
        self.lon
    }

    /// The point as a unit vector from the Earth's centre, for fast repeated distances with
    /// [`Coordinates::great_circle_m`].
    pub fn unit_vector(self) -> [f64; 3] {
        let (phi, lambda) = (self.lat.to_radians(), self.lon.to_radians());
        [
            phi.cos() * lambda.cos(),
            phi.cos() * lambda.sin(),
            phi.sin(),
        ]
    }

    /// Great-circle distance in metres between two unit vectors (from the chord length; the
    /// same as haversine to well under a millimetre, with one square root and one arcsine).
    pub fn great_circle_m(a: [f64; 3], b: [f64; 3]) -> f64 {
        let chord = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt();
        2.0 * EARTH_RADIUS_M * (chord / 2.0).min(1.0).asin()
    }

    /// Great-circle distance in metres (haversine).
    pub fn haversine_m(self, other: Coordinates) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

impl PlanarPoint {
    /// A point at `(x, y)`.
    ///
    /// # Errors
    /// [`ModelError::NotFinite`] for NaN or infinity.
    pub fn parse(x: f64, y: f64) -> Result<Self, ModelError> {
        Ok(PlanarPoint {
            x: finite("x", x)?,
            y: finite("y", y)?,
        })
    }

    /// Horizontal coordinate.
    pub const fn x(self) -> f64 {
        self.x
    }

    /// Vertical coordinate.
    pub const fn y(self) -> f64 {
        self.y
    }

    /// Euclidean distance, unrounded.
    pub fn distance(self, other: PlanarPoint) -> f64 {
        (self.x - other.x).hypot(self.y - other.y)
    }
}

impl Location {
    /// A 2-D key for spatial indexing: (lon, lat) in degrees or (x, y) in plane units.
    pub fn xy(self) -> [f64; 2] {
        match self {
            Location::Wgs84(c) => [c.lon, c.lat],
            Location::Planar(p) => [p.x, p.y],
        }
    }
}

impl From<Coordinates> for Location {
    fn from(c: Coordinates) -> Self {
        Location::Wgs84(c)
    }
}
impl From<PlanarPoint> for Location {
    fn from(p: PlanarPoint) -> Self {
        Location::Planar(p)
    }
}

#[derive(Serialize, Deserialize)]
struct RawCoordinates {
    lat: f64,
    lon: f64,
}
impl TryFrom<RawCoordinates> for Coordinates {
    type Error = ModelError;
    fn try_from(r: RawCoordinates) -> Result<Self, ModelError> {
        Coordinates::parse(r.lat, r.lon)
    }
}
impl From<Coordinates> for RawCoordinates {
    fn from(c: Coordinates) -> Self {
        RawCoordinates {
            lat: c.lat,
            lon: c.lon,
        }
    }
}
#[derive(Serialize, Deserialize)]
struct RawPlanar {
    x: f64,
    y: f64,
}
impl TryFrom<RawPlanar> for PlanarPoint {
    type Error = ModelError;
    fn try_from(r: RawPlanar) -> Result<Self, ModelError> {
        PlanarPoint::parse(r.x, r.y)
    }
}
impl From<PlanarPoint> for RawPlanar {
    fn from(p: PlanarPoint) -> Self {
        RawPlanar { x: p.x, y: p.y }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nan_coordinates_are_rejected() {
        assert!(matches!(
            Coordinates::parse(f64::NAN, 0.0),
            Err(ModelError::NotFinite {
                field: "latitude",
                ..
            })
        ));
        assert!(matches!(
            Coordinates::parse(0.0, f64::INFINITY),
            Err(ModelError::NotFinite {
                field: "longitude",
                ..
            })
        ));
        assert!(PlanarPoint::parse(f64::NAN, 1.0).is_err());
    }

    #[test]
    fn the_poles_and_the_antimeridian_are_valid() {
        for (lat, lon) in [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0)] {
            assert!(Coordinates::parse(lat, lon).is_ok());
        }
    }

    #[test]
    fn coordinates_deserialise_through_the_parser() {
        assert!(serde_json::from_str::<Coordinates>(r#"{"lat":91,"lon":0}"#).is_err());
        let c: Coordinates = serde_json::from_str(r#"{"lat":52.5,"lon":13.4}"#).unwrap();
        assert_eq!(c.lat(), 52.5);
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // Berlin Alexanderplatz to Brandenburg Gate: about 2.5 km.
        let a = Coordinates::parse(52.5219, 13.4132).unwrap();
        let b = Coordinates::parse(52.5163, 13.3777).unwrap();
        let d = a.haversine_m(b);
        assert!((2_350.0..2_550.0).contains(&d), "{d}");
        assert_eq!(a.haversine_m(a), 0.0);
    }

    proptest! {
        #[test]
        fn the_chord_formula_agrees_with_haversine(a in (-89f64..=89.0, -180f64..=180.0), b in (-0.5f64..0.5, -0.5f64..0.5)) {
            let p = Coordinates::parse(a.0, a.1).unwrap();
            let q = Coordinates::parse((a.0 + b.0).clamp(-90.0, 90.0), (a.1 + b.1).clamp(-180.0, 180.0)).unwrap();
            let exact = p.haversine_m(q);
            let fast = Coordinates::great_circle_m(p.unit_vector(), q.unit_vector());
            prop_assert!((exact - fast).abs() < 1e-3, "{exact} vs {fast}");
        }

        #[test]
        fn latitudes_beyond_the_poles_are_rejected(lat in 90.000_001f64..1e6, sign in prop::bool::ANY, lon in -180f64..180.0) {
            let lat = if sign { lat } else { -lat };
            prop_assert_eq!(Coordinates::parse(lat, lon), Err(ModelError::LatitudeOutOfRange(lat)));
        }

        #[test]
        fn longitudes_beyond_the_antimeridian_are_rejected(lon in 180.000_001f64..1e6, sign in prop::bool::ANY, lat in -90f64..90.0) {
            let lon = if sign { lon } else { -lon };
            prop_assert_eq!(Coordinates::parse(lat, lon), Err(ModelError::LongitudeOutOfRange(lon)));
        }

        #[test]
        fn valid_coordinates_round_trip(lat in -90f64..=90.0, lon in -180f64..=180.0) {
            let c = Coordinates::parse(lat, lon).unwrap();
            prop_assert_eq!((c.lat(), c.lon()), (lat, lon));
            let back: Coordinates = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
            prop_assert_eq!(back, c);
        }

        #[test]
        fn haversine_is_symmetric_and_bounded(a in (-90f64..=90.0, -180f64..=180.0), b in (-90f64..=90.0, -180f64..=180.0)) {
            let (a, b) = (Coordinates::parse(a.0, a.1).unwrap(), Coordinates::parse(b.0, b.1).unwrap());
            let d = a.haversine_m(b);
            prop_assert!((d - b.haversine_m(a)).abs() < 1e-6);
            prop_assert!(d <= std::f64::consts::PI * EARTH_RADIUS_M + 1.0);
        }
    }
}
