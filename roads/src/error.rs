//! The crate's one error type: what can go wrong loading a road network or reading the
//! `ROAD_NETWORK` setting. Travel-time failures at query time are `optimizer::TravelError`s.

use std::path::PathBuf;

/// Why a travel model could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RoadsError {
    /// The extract could not be opened or decoded.
    #[error("reading the OpenStreetMap extract {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        #[source]
        source: osmpbf::Error,
    },
    /// The extract holds no road any profile may use.
    #[error("the OpenStreetMap extract {0} has no roads for cars, bikes or scooters")]
    NoRoads(PathBuf),
    /// `ROAD_NETWORK` is neither a file nor `osrm:http://HOST:PORT`.
    #[error("ROAD_NETWORK={0:?} is neither an .osm.pbf file nor osrm:http://HOST:PORT")]
    BadSetting(String),
    /// The file named by `ROAD_NETWORK` does not exist.
    #[error("ROAD_NETWORK names {0}, which does not exist")]
    Missing(PathBuf),
}
