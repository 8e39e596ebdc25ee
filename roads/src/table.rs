//! A solve's travel table on the road network: every place resolved (snapped, with its forward
//! and backward search spaces, in parallel and through the network's cache), then either a full
//! matrix for small solves, filled row by row in parallel with the bucket method (each target's
//! backward space is spread into buckets at its nodes, and each source's forward space scans the
//! buckets it meets), or, beyond [`optimizer::travel::DENSE_LIMIT`] places, each pair met on
//! demand from the two spaces. Both give exactly what [`crate::RoadNetwork`] answers for the
//! pair, because both go through the same integer milliseconds and decimetres.

use std::collections::HashMap;
use std::sync::Arc;

use optimizer::model::{Coordinates, Location, Vehicle};
use optimizer::travel::DENSE_LIMIT;
use optimizer::{TravelTable, Ways};

use crate::network::{Leg, Network, PlaceData};
use crate::parallel;
use crate::profile::Profile;

/// The resolved places of one profile (`None`: no usable road near).
type Resolved = Vec<Option<Arc<PlaceData>>>;

/// Integer cost of a cell that cannot be reached.
const UNREACHABLE: u32 = u32::MAX;

pub(crate) struct RoadTable {
    places: Vec<Location>,
    /// Unit vectors of the places (zero for planar ones), for relatedness.
    vectors: Vec<[f64; 3]>,
    /// The table's profile index to a slot below.
    slot_of: Vec<usize>,
    slots: Vec<Slot>,
}

enum Slot {
    /// Milliseconds and decimetres, row-major.
    Dense {
        time_ms: Vec<u32>,
        length_dm: Vec<u32>,
    },
    /// Pairs met on demand.
    Lazy {
        net: Arc<Network>,
        profile: Profile,
        resolved: Resolved,
    },
}

impl RoadTable {
    pub(crate) fn new(
        net: &Arc<Network>,
        places: &[Location],
        ways: &[Ways],
        vehicles: &[Vehicle],
    ) -> RoadTable {
        let mut profiles: Vec<Profile> = Vec::new();
        let slot_of = vehicles
            .iter()
            .map(|v| {
                let p = Profile::of(v.kind());
                match profiles.iter().position(|q| *q == p) {
                    Some(i) => i,
                    None => {
                        profiles.push(p);
                        profiles.len() - 1
                    }
                }
            })
            .collect();
        let dense = places.len() <= DENSE_LIMIT;
        let slots = profiles
            .iter()
            .map(|&profile| {
                let asked: Vec<(Location, Ways)> =
                    places.iter().copied().zip(ways.iter().copied()).collect();
                let resolved: Resolved = parallel::map(&asked, |&(at, way)| {
                    let place = net.resolve(at, profile).ok()?;
                    // The spaces the solve will use now, in parallel, rather than one by one in
                    // the solver's loops (any other is computed when first asked).
                    if way != Ways::In {
                        net.forward(&place, profile);
                    }
                    if way != Ways::Out {
                        net.backward(&place, profile);
                    }
                    Some(place)
                });
                if dense {
                    dense_slot(net, profile, places, &resolved)
                } else {
                    Slot::Lazy {
                        net: net.clone(),
                        profile,
                        resolved,
                    }
                }
            })
            .collect();
        RoadTable {
            places: places.to_vec(),
            vectors: places
                .iter()
                .map(|l| match l {
                    Location::Wgs84(c) => c.unit_vector(),
                    Location::Planar(_) => [0.0; 3],
                })
                .collect(),
            slot_of,
            slots,
        }
    }

    fn leg(&self, profile: usize, from: usize, to: usize) -> Leg {
        if from == to {
            return Leg::HERE;
        }
        match &self.slots[self.slot_of[profile]] {
            Slot::Dense { time_ms, length_dm } => {
                let cell = from * self.places.len() + to;
                if time_ms[cell] == UNREACHABLE {
                    Leg::UNREACHABLE
                } else {
                    Leg::of(u64::from(time_ms[cell]), u64::from(length_dm[cell]))
                }
            }
            Slot::Lazy {
                net,
                profile,
                resolved,
            } => {
                if self.places[from] == self.places[to] {
                    return Leg::HERE;
                }
                match (&resolved[from], &resolved[to]) {
                    (Some(a), Some(b)) => net.remembered_leg(a, b, *profile),
                    _ => Leg::UNREACHABLE,
                }
            }
        }
    }
}

/// The full matrix of one profile by the bucket method.
fn dense_slot(net: &Network, profile: Profile, places: &[Location], resolved: &Resolved) -> Slot {
    let n = places.len();
    // Buckets: every target's backward space, grouped by node.
    let mut entries: Vec<(u32, u32, u32, u32)> = Vec::new();
    for (j, place) in resolved.iter().enumerate() {
        if let Some(place) = place {
            for (node, t, l) in net.backward(place, profile).entries() {
                entries.push((node, j as u32, t, l));
            }
        }
    }
    entries.sort_unstable_by_key(|e| e.0);
    let mut first: HashMap<u32, (usize, usize)> = HashMap::new();
    let mut k = 0;
    while k < entries.len() {
        let node = entries[k].0;
        let start = k;
        while k < entries.len() && entries[k].0 == node {
            k += 1;
        }
        first.insert(node, (start, k));
    }
    let mut cells: Vec<(u64, u64)> = vec![(u64::MAX, 0); n * n];
    parallel::rows_mut(&mut cells, n, |i, row| {
        let Some(place) = &resolved[i] else {
            return;
        };
        for (node, t1, l1) in net.forward(place, profile).entries() {
            let Some(&(start, end)) = first.get(&node) else {
                continue;
            };
            for &(_, j, t2, l2) in &entries[start..end] {
                let t = u64::from(t1) + u64::from(t2);
                let cell = &mut row[j as usize];
                if t < cell.0 {
                    *cell = (t, u64::from(l1) + u64::from(l2));
                }
            }
        }
    });
    // Along one segment without passing a node, and the same place twice.
    let mut on_segment: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, place) in resolved.iter().enumerate() {
        if let Some(place) = place {
            on_segment.entry(place.snapped.segment).or_default().push(i);
        }
    }
    for group in on_segment.values().filter(|g| g.len() > 1) {
        for &i in group {
            for &j in group {
                if let (Some(a), Some(b)) = (&resolved[i], &resolved[j])
                    && let Some(direct) = net.direct(a, b, profile)
                    && direct.0 < cells[i * n + j].0
                {
                    cells[i * n + j] = direct;
                }
            }
        }
    }
    let mut at_place: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    for (i, place) in places.iter().enumerate() {
        if let Location::Wgs84(c) = place {
            at_place
                .entry((c.lat().to_bits(), c.lon().to_bits()))
                .or_default()
                .push(i);
        }
    }
    for group in at_place.values().filter(|g| g.len() > 1) {
        for &i in group {
            for &j in group {
                cells[i * n + j] = (0, 0);
            }
        }
    }
    let narrow = |x: u64| u32::try_from(x).unwrap_or(UNREACHABLE);
    Slot::Dense {
        time_ms: cells.iter().map(|c| narrow(c.0)).collect(),
        length_dm: cells.iter().map(|c| narrow(c.1)).collect(),
    }
}

impl TravelTable for RoadTable {
    fn distance(&self, profile: usize, from: usize, to: usize) -> f64 {
        self.leg(profile, from, to).metres
    }

    fn duration(&self, profile: usize, from: usize, to: usize) -> f64 {
        self.leg(profile, from, to).seconds
    }

    /// The great-circle distance: which orders are near each other is asked for tens of
    /// thousands of pairs per solve, and needs no streets.
    fn relatedness(&self, from: usize, to: usize) -> f64 {
        Coordinates::great_circle_m(self.vectors[from], self.vectors[to])
    }
}
