//! Reading an OpenStreetMap `.osm.pbf` extract (with the `osmpbf` crate) into a
//! [`RoadGraph`]: the I/O edge of the crate. Two passes over the file: the ways some profile
//! may ride (with their tags), then the coordinates of the nodes they use. Ways clipped by the
//! extract's boundary keep the pieces whose nodes are in the file.

use std::collections::HashMap;
use std::path::Path;

use optimizer::model::Coordinates;
use osmpbf::{Element, ElementReader};

use crate::error::RoadsError;
use crate::graph::{NodeId, RoadGraph, RoadGraphBuilder};
use crate::profile::{Profile, WayTags, speeds};

/// Reads the road graph of the extract at `path`.
///
/// # Errors
/// [`RoadsError::Read`] when the file cannot be opened or decoded, and
/// [`RoadsError::NoRoads`] when it holds no way any profile may ride.
pub fn read_pbf(path: &Path) -> Result<RoadGraph, RoadsError> {
    let read = |source| RoadsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut ways: Vec<(Vec<i64>, WayTags)> = Vec::new();
    ElementReader::from_path(path)
        .map_err(read)?
        .for_each(|element| {
            if let Element::Way(way) = element {
                let tags = WayTags::from_pairs(way.tags());
                if tags.highway.is_some() && Profile::ALL.iter().any(|&p| speeds(p, &tags).open()) {
                    ways.push((way.refs().collect(), tags));
                }
            }
        })
        .map_err(read)?;
    if ways.is_empty() {
        return Err(RoadsError::NoRoads(path.to_path_buf()));
    }
    let mut wanted: HashMap<i64, Option<Coordinates>> = ways
        .iter()
        .flat_map(|(refs, _)| refs.iter().map(|&id| (id, None)))
        .collect();
    let mut keep = |id: i64, lat: f64, lon: f64| {
        if let Some(slot) = wanted.get_mut(&id) {
            *slot = Coordinates::parse(lat, lon).ok();
        }
    };
    ElementReader::from_path(path)
        .map_err(read)?
        .for_each(|element| match element {
            Element::Node(n) => keep(n.id(), n.lat(), n.lon()),
            Element::DenseNode(n) => keep(n.id(), n.lat(), n.lon()),
            _ => {}
        })
        .map_err(read)?;
    let mut builder = RoadGraphBuilder::new();
    let mut index: HashMap<i64, NodeId> = HashMap::with_capacity(wanted.len());
    // Nodes in file order of first use, so the graph is the same on every read.
    for (refs, _) in &ways {
        for id in refs {
            if let Some(Some(at)) = wanted.get(id)
                && !index.contains_key(id)
            {
                index.insert(*id, builder.add_node(*at));
            }
        }
    }
    for (refs, tags) in &ways {
        // Split where the extract clipped nodes away.
        let mut piece: Vec<NodeId> = Vec::with_capacity(refs.len());
        for id in refs {
            match index.get(id) {
                Some(&n) => piece.push(n),
                None => {
                    builder.add_way(&piece, tags);
                    piece.clear();
                }
            }
        }
        builder.add_way(&piece, tags);
    }
    Ok(builder.build())
}
