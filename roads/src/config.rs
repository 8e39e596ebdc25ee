//! The `ROAD_NETWORK` setting: unset for straight lines, `osrm:http://HOST:PORT` for an OSRM
//! server, or the path of an `.osm.pbf` extract to read and prepare.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use optimizer::{StraightLine, TravelModel};

use crate::error::RoadsError;
use crate::network::RoadNetwork;
use crate::osm::read_pbf;
use crate::osrm::Osrm;

/// A travel model chosen by configuration, and what to log about it.
pub struct Loaded {
    /// The model.
    pub model: Arc<dyn TravelModel>,
    /// What it is ([`TravelModel::describe`]).
    pub description: String,
    /// How long reading and preparing took (zero for straight lines and OSRM).
    pub prepared_in: Duration,
}

/// The travel model `setting` (the value of `ROAD_NETWORK`) names: straight lines with the
/// detour factors fitted per vehicle kind when `None` or empty, an [`Osrm`] client for
/// `osrm:URL`, otherwise the road network of the extract at that path.
///
/// # Errors
/// [`RoadsError`] when the extract is missing or unreadable, or the setting is malformed.
pub fn travel_model(setting: Option<&str>) -> Result<Loaded, RoadsError> {
    let started = Instant::now();
    let model: Arc<dyn TravelModel> = match setting.map(str::trim).filter(|s| !s.is_empty()) {
        None => Arc::new(StraightLine::default()),
        Some(s) if s.starts_with("osrm:") => {
            let url = &s["osrm:".len()..];
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(RoadsError::BadSetting(s.into()));
            }
            Arc::new(Osrm::new(url))
        }
        Some(path) => {
            let path = Path::new(path);
            if !path.exists() {
                return Err(RoadsError::Missing(path.to_path_buf()));
            }
            let graph = read_pbf(path)?;
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            );
            Arc::new(RoadNetwork::new(graph, name))
        }
    };
    Ok(Loaded {
        description: model.describe(),
        model,
        prepared_in: started.elapsed(),
    })
}
