//! Spatial keys: where a place sits on a flat map, for the R-trees that pick candidate couriers
//! and related orders. WGS84 longitudes are scaled by the cosine of the mean latitude, so that
//! a degree east and a degree north weigh about the same; planar points are used as they are.
//! Keys only rank nearness: every distance and time the solver uses comes from the travel table.

use crate::model::Location;

/// A 2-D key for a location, with longitudes scaled for WGS84.
pub(crate) fn key(loc: Location, lon_scale: f64) -> [f64; 2] {
    match loc {
        Location::Wgs84(c) => [c.lon() * lon_scale, c.lat()],
        Location::Planar(p) => [p.x(), p.y()],
    }
}

/// The cosine of the mean latitude of the WGS84 places (1 for planar ones).
pub(crate) fn lon_scale_of(places: &[Location]) -> f64 {
    let (sum, n) = places.iter().fold((0.0, 0usize), |(sum, n), l| match l {
        Location::Wgs84(c) => (sum + c.lat(), n + 1),
        Location::Planar(_) => (sum, n),
    });
    if n == 0 {
        1.0
    } else {
        (sum / n as f64).to_radians().cos().max(0.01)
    }
}
