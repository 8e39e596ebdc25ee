//! [`RoadNetwork`]: a road graph with a contraction hierarchy per profile and a snapping index,
//! as an [`optimizer::TravelModel`]. Pure computation over data already in memory (reading an
//! extract is `osm`'s job, generating one `city`'s).
//!
//! A place is snapped onto the nearest road its vehicle's profile may use (within the snapping
//! limit), and its upward search spaces, forwards (leaving it) and backwards (reaching it), are
//! computed when first needed and kept in a cache that outlives one solve: restaurants,
//! customers and couriers' next stops come back replan after replan, so most of a table's work
//! is already done. The cache keeps two generations and drops the older when the newer fills,
//! so memory stays bounded in a long-running dispatcher.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use optimizer::model::{Coordinates, Location, Vehicle};
use optimizer::{TravelError, TravelModel, TravelTable, Ways};

use crate::ch::{Hierarchy, SearchSpace, Seed, meet};
use crate::graph::{CLOSED, RoadGraph};
use crate::parallel;
use crate::profile::Profile;
use crate::snap::{SnapError, SnapIndex, Snapped};
use crate::table::RoadTable;

/// How far a point may be from the nearest usable road, by default, metres.
pub const DEFAULT_SNAP_LIMIT_M: f64 = 500.0;

/// Places (per profile) kept in each generation of the cache.
const CACHE_GENERATION: usize = 60_000;

/// A road network ready to answer travel times; a cheap handle (clones share the network and
/// its cache).
#[derive(Clone)]
pub struct RoadNetwork {
    net: Arc<Network>,
}

/// The network behind the handle.
pub(crate) struct Network {
    graph: RoadGraph,
    /// One per profile, by [`Profile::index`] (shared where profiles ride alike).
    hierarchies: Vec<Arc<Hierarchy>>,
    snap: SnapIndex,
    snap_limit_m: f64,
    /// For logs: where the graph came from.
    name: String,
    cache: Mutex<Cache>,
    /// Legs met before, by places and profile: restaurants and customers are asked about again
    /// in every replan.
    legs: PairMemo,
}

/// Shards of the leg memo (a power of two), so threads rarely wait for each other.
const MEMO_SHARDS: usize = 64;

/// Legs kept per shard before it starts afresh.
const MEMO_SHARD_LEGS: usize = 60_000;

type LegKey = ((u64, u64), (u64, u64), usize);

/// One shard of the memo: legs in integer milliseconds and decimetres.
type MemoShard = Mutex<HashMap<LegKey, (u32, u32), std::hash::BuildHasherDefault<Mix>>>;

/// A sharded memo of legs in integer milliseconds and decimetres (`u32::MAX`: unreachable).
struct PairMemo {
    shards: Vec<MemoShard>,
}

/// A fast hasher for the memo's keys (already well-spread float bits).
#[derive(Default)]
struct Mix(u64);

impl std::hash::Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

impl PairMemo {
    fn new() -> PairMemo {
        PairMemo {
            shards: (0..MEMO_SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
        }
    }

    fn shard(&self, key: &LegKey) -> &MemoShard {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let h = BuildHasherDefault::<Mix>::default().hash_one(key);
        &self.shards[(h >> 58) as usize % MEMO_SHARDS]
    }

    fn get(&self, key: &LegKey) -> Option<(u32, u32)> {
        self.shard(key)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
    }

    fn put(&self, key: LegKey, value: (u32, u32)) {
        let mut shard = self.shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= MEMO_SHARD_LEGS {
            shard.clear();
        }
        shard.insert(key, value);
    }
}

/// A place as a profile reaches it: where it snapped, and its search spaces once computed.
pub(crate) struct PlaceData {
    /// The place's coordinates' bits, as the caches know it.
    key: (u64, u64),
    pub snapped: Snapped,
    /// Seeds leaving the place, and reaching it.
    leave: Vec<Seed>,
    reach: Vec<Seed>,
    forward: OnceLock<SearchSpace>,
    backward: OnceLock<SearchSpace>,
}

type Key = (u64, u64, usize);
type Resolved = Result<Arc<PlaceData>, SnapError>;

/// Two generations of resolved places.
#[derive(Default)]
struct Cache {
    young: HashMap<Key, Resolved>,
    old: HashMap<Key, Resolved>,
    hits: u64,
    misses: u64,
}

impl Cache {
    fn get(&mut self, key: &Key) -> Option<Resolved> {
        if let Some(r) = self.young.get(key) {
            self.hits += 1;
            return Some(r.clone());
        }
        if let Some(r) = self.old.remove(key) {
            self.hits += 1;
            self.put(*key, r.clone());
            return Some(r);
        }
        self.misses += 1;
        None
    }

    fn put(&mut self, key: Key, value: Resolved) {
        if self.young.len() >= CACHE_GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }
}

/// What a place-to-place query found: seconds and metres, infinite when unreachable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Leg {
    pub seconds: f64,
    pub metres: f64,
}

impl Leg {
    pub const UNREACHABLE: Leg = Leg {
        seconds: f64::INFINITY,
        metres: f64::INFINITY,
    };
    pub const HERE: Leg = Leg {
        seconds: 0.0,
        metres: 0.0,
    };

    /// From integer milliseconds and decimetres, the one conversion every answer goes through.
    pub fn of(time_ms: u64, length_dm: u64) -> Leg {
        Leg {
            seconds: time_ms as f64 / 1000.0,
            metres: length_dm as f64 / 10.0,
        }
    }
}

impl RoadNetwork {
    /// Prepares the hierarchies of `graph` (the three profiles side by side), named `name` in
    /// logs, snapping within [`DEFAULT_SNAP_LIMIT_M`].
    pub fn new(graph: RoadGraph, name: impl Into<String>) -> RoadNetwork {
        Self::with_snap_limit(graph, name, DEFAULT_SNAP_LIMIT_M)
    }

    /// As [`RoadNetwork::new`], snapping within `snap_limit_m`.
    pub fn with_snap_limit(
        graph: RoadGraph,
        name: impl Into<String>,
        snap_limit_m: f64,
    ) -> RoadNetwork {
        let n = graph.node_count();
        // Profiles riding the same arcs at the same times share one hierarchy.
        let arcs: Vec<Vec<crate::graph::Arc>> =
            Profile::ALL.iter().map(|&p| graph.arcs(p)).collect();
        let first_same: Vec<usize> = (0..arcs.len())
            .map(|i| (0..=i).find(|&j| arcs[j] == arcs[i]).unwrap_or(i))
            .collect();
        let distinct: Vec<usize> = (0..arcs.len()).filter(|&i| first_same[i] == i).collect();
        let prepared = parallel::map(&distinct, |&i| {
            std::sync::Arc::new(Hierarchy::prepare(n, &arcs[i]))
        });
        let hierarchies = first_same
            .iter()
            .map(|&j| prepared[distinct.iter().position(|&d| d == j).unwrap_or(0)].clone())
            .collect();
        let snap = SnapIndex::new(&graph);
        RoadNetwork {
            net: Arc::new(Network {
                graph,
                hierarchies,
                snap,
                snap_limit_m,
                name: name.into(),
                cache: Mutex::new(Cache::default()),
                legs: PairMemo::new(),
            }),
        }
    }

    /// The graph.
    pub fn graph(&self) -> &RoadGraph {
        &self.net.graph
    }

    /// The hierarchy of `profile`.
    pub fn hierarchy(&self, profile: Profile) -> &Hierarchy {
        self.net.hierarchy(profile)
    }

    /// Where `at` meets the roads `profile` may use.
    ///
    /// # Errors
    /// [`SnapError`] when no usable road is within the snapping limit.
    pub fn snap(&self, at: Coordinates, profile: Profile) -> Result<Snapped, SnapError> {
        self.net.snap(at, profile)
    }

    /// Cache hits and misses so far (places resolved again versus for the first time).
    pub fn cache_stats(&self) -> (u64, u64) {
        let cache = self.net.cache.lock().unwrap_or_else(|e| e.into_inner());
        (cache.hits, cache.misses)
    }
}

impl Network {
    /// The hierarchy of `profile`.
    pub(crate) fn hierarchy(&self, profile: Profile) -> &Hierarchy {
        &self.hierarchies[profile.index()]
    }

    fn snap(&self, at: Coordinates, profile: Profile) -> Result<Snapped, SnapError> {
        self.snap.snap(at, profile, self.snap_limit_m)
    }

    fn resolve_uncached(&self, at: Coordinates, profile: Profile) -> Resolved {
        let snapped = self.snap(at, profile)?;
        let s = self.graph.segments()[snapped.segment as usize];
        let [along, against] = s.time_ms[profile.index()];
        let f = snapped.fraction;
        let dm = s.length_m * 10.0;
        let part = |time: u32, share: f64| Seed {
            node: 0,
            time_ms: (f64::from(time) * share).round() as u32,
            length_dm: (dm * share).round() as u32,
        };
        let mut leave = Vec::with_capacity(2);
        let mut reach = Vec::with_capacity(2);
        if along != CLOSED {
            leave.push(Seed {
                node: s.b,
                ..part(along, 1.0 - f)
            });
            reach.push(Seed {
                node: s.a,
                ..part(along, f)
            });
        }
        if against != CLOSED {
            leave.push(Seed {
                node: s.a,
                ..part(against, f)
            });
            reach.push(Seed {
                node: s.b,
                ..part(against, 1.0 - f)
            });
        }
        Ok(Arc::new(PlaceData {
            key: (at.lat().to_bits(), at.lon().to_bits()),
            snapped,
            leave,
            reach,
            forward: OnceLock::new(),
            backward: OnceLock::new(),
        }))
    }

    /// The place data of `at` for `profile`, from the cache or computed (not yet its spaces).
    pub(crate) fn resolve(&self, at: Location, profile: Profile) -> Resolved {
        let Location::Wgs84(c) = at else {
            return Err(SnapError::NoRoadNearby {
                profile: profile.as_str(),
                lat: f64::NAN,
                lon: f64::NAN,
                limit_m: self.snap_limit_m,
                nearest_m: None,
            });
        };
        let key = (c.lat().to_bits(), c.lon().to_bits(), profile.index());
        if let Some(r) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return r;
        }
        let r = self.resolve_uncached(c, profile);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(key, r.clone());
        r
    }

    /// The forward search space of a place.
    pub(crate) fn forward<'a>(&self, place: &'a PlaceData, profile: Profile) -> &'a SearchSpace {
        place
            .forward
            .get_or_init(|| self.hierarchy(profile).forward_space(&place.leave))
    }

    /// The backward search space of a place.
    pub(crate) fn backward<'a>(&self, place: &'a PlaceData, profile: Profile) -> &'a SearchSpace {
        place
            .backward
            .get_or_init(|| self.hierarchy(profile).backward_space(&place.reach))
    }

    /// The travel from one resolved place to another.
    pub(crate) fn leg(&self, from: &PlaceData, to: &PlaceData, profile: Profile) -> Leg {
        let via = meet(self.forward(from, profile), self.backward(to, profile));
        let direct = self.direct(from, to, profile);
        match (via, direct) {
            (Some(a), Some(b)) if b.0 < a.0 => Leg::of(b.0, b.1),
            (Some(a), _) => Leg::of(a.0, a.1),
            (None, Some(b)) => Leg::of(b.0, b.1),
            (None, None) => Leg::UNREACHABLE,
        }
    }

    /// [`Network::leg`] through the memo of legs met before.
    pub(crate) fn remembered_leg(&self, from: &PlaceData, to: &PlaceData, profile: Profile) -> Leg {
        let key = (from.key, to.key, profile.index());
        let cell = match self.legs.get(&key) {
            Some(cell) => cell,
            None => {
                let leg = self.leg(from, to, profile);
                let cell = if leg.seconds.is_finite() {
                    (
                        (leg.seconds * 1000.0).round() as u32,
                        (leg.metres * 10.0).round() as u32,
                    )
                } else {
                    (u32::MAX, u32::MAX)
                };
                self.legs.put(key, cell);
                cell
            }
        };
        if cell.0 == u32::MAX {
            Leg::UNREACHABLE
        } else {
            Leg::of(u64::from(cell.0), u64::from(cell.1))
        }
    }

    /// Along one segment, without passing a node: two points on the same segment, in a
    /// direction the profile may ride.
    pub(crate) fn direct(
        &self,
        from: &PlaceData,
        to: &PlaceData,
        profile: Profile,
    ) -> Option<(u64, u64)> {
        if from.snapped.segment != to.snapped.segment {
            return None;
        }
        let s = self.graph.segments()[from.snapped.segment as usize];
        let [along, against] = s.time_ms[profile.index()];
        let d = to.snapped.fraction - from.snapped.fraction;
        let time = if d >= 0.0 { along } else { against };
        (time != CLOSED).then(|| {
            let share = d.abs();
            (
                (f64::from(time) * share).round() as u64,
                (s.length_m * 10.0 * share).round() as u64,
            )
        })
    }

    pub(crate) fn pair(&self, from: Location, to: Location, vehicle: &Vehicle) -> Leg {
        if from == to {
            return Leg::HERE;
        }
        let profile = Profile::of(vehicle.kind());
        match (self.resolve(from, profile), self.resolve(to, profile)) {
            (Ok(a), Ok(b)) => self.remembered_leg(&a, &b, profile),
            _ => Leg::UNREACHABLE,
        }
    }
}

impl TravelModel for RoadNetwork {
    fn distance(&self, from: Location, to: Location, vehicle: &Vehicle) -> f64 {
        self.net.pair(from, to, vehicle).metres
    }

    fn duration(&self, from: Location, to: Location, vehicle: &Vehicle) -> f64 {
        self.net.pair(from, to, vehicle).seconds
    }

    fn table(
        &self,
        places: &[Location],
        ways: &[Ways],
        profiles: &[Vehicle],
    ) -> Result<Option<Arc<dyn TravelTable>>, TravelError> {
        Ok(Some(Arc::new(RoadTable::new(
            &self.net, places, ways, profiles,
        ))))
    }

    fn check(&self, place: Location, vehicle: &Vehicle) -> Result<(), TravelError> {
        self.net
            .resolve(place, Profile::of(vehicle.kind()))
            .map(|_| ())
            .map_err(|e| TravelError::Unplaceable {
                place,
                reason: e.to_string(),
            })
    }

    fn describe(&self) -> String {
        let net = &self.net;
        format!(
            "road network {} ({} nodes, {} segments; car, bike and scooter hierarchies)",
            net.name,
            net.graph.node_count(),
            net.graph.segments().len()
        )
    }
}
