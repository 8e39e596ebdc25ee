//! OSRM as a travel-time provider, for users who already run `osrm-routed` for a bigger region:
//! its `/table` service over HTTP (the I/O edge of the crate), behind the same
//! [`optimizer::TravelModel`].
//!
//! Every request has a timeout, and a server that is down, slow or answering nonsense gives a
//! [`TravelError::Unavailable`] that names it, so the replan fails with a clear message (and is
//! retried) instead of planning on made-up times. Tables are asked in blocks the server accepts
//! (`osrm-routed --max-table-size`, 100 by default), and every answered pair is kept across
//! replans (restaurants and customers come back), so a replan asks only for what is new. A solve
//! larger than [`optimizer::travel::DENSE_LIMIT`] places is refused: its full table would take
//! thousands of requests; a road network from an extract (`ROAD_NETWORK=file.osm.pbf`) serves
//! city scale.
//!
//! The server's profile (car, usually) serves every vehicle kind; a point the server snaps
//! further than the snapping limit from its road counts as unreachable, as with our own graph.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use optimizer::model::{Location, Vehicle};
use optimizer::travel::DENSE_LIMIT;
use optimizer::{TravelError, TravelModel, TravelTable, Ways};

/// Coordinates per `/table` request (sources plus destinations), within OSRM's default limit.
pub const DEFAULT_BLOCK: usize = 100;

/// Timeout of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Answered pairs kept for later replans.
const CACHE_PAIRS: usize = 4_000_000;

/// An OSRM server's `/table` service.
pub struct Osrm {
    base: String,
    agent: ureq::Agent,
    block: usize,
    snap_limit_m: f64,
    /// `(from, to)` by coordinate bits: seconds and metres (infinite when unreachable).
    cache: Mutex<HashMap<(Key, Key), (f64, f64)>>,
    /// Requests sent so far, for logs and tests.
    requests: AtomicU64,
}

type Key = (u64, u64);

fn key(l: Location) -> Option<Key> {
    match l {
        Location::Wgs84(c) => Some((c.lat().to_bits(), c.lon().to_bits())),
        Location::Planar(_) => None,
    }
}

impl Osrm {
    /// A client of the server at `base` (`http://HOST:PORT`), with [`DEFAULT_TIMEOUT`] per
    /// request and blocks of [`DEFAULT_BLOCK`] coordinates.
    pub fn new(base: &str) -> Osrm {
        Osrm::with(base, DEFAULT_TIMEOUT, DEFAULT_BLOCK)
    }

    /// A client with its own timeout and block size.
    pub fn with(base: &str, timeout: Duration, block: usize) -> Osrm {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build();
        Osrm {
            base: base.trim_end_matches('/').to_string(),
            agent: ureq::Agent::new_with_config(config),
            block: block.max(2),
            snap_limit_m: crate::network::DEFAULT_SNAP_LIMIT_M,
            cache: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
        }
    }

    /// How many requests the client has sent.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn unavailable(&self, reason: impl Into<String>) -> TravelError {
        TravelError::Unavailable {
            source_name: self.describe(),
            reason: reason.into(),
        }
    }

    /// Asks `/table` for `sources` × `destinations`: seconds and metres, infinite where the
    /// server finds no route or snaps a point too far away.
    ///
    /// # Errors
    /// [`TravelError::Unavailable`] when the server cannot be reached, times out, or answers
    /// anything but a table.
    pub fn table_block(
        &self,
        sources: &[Location],
        destinations: &[Location],
    ) -> Result<Vec<Vec<(f64, f64)>>, TravelError> {
        let coords: Vec<String> = sources
            .iter()
            .chain(destinations)
            .map(|l| match l {
                Location::Wgs84(c) => Ok(format!("{:.7},{:.7}", c.lon(), c.lat())),
                Location::Planar(_) => Err(TravelError::Unplaceable {
                    place: *l,
                    reason: "OSRM needs WGS84 coordinates".into(),
                }),
            })
            .collect::<Result<_, _>>()?;
        let list =
            |r: std::ops::Range<usize>| r.map(|i| i.to_string()).collect::<Vec<_>>().join(";");
        let url = format!(
            "{}/table/v1/driving/{}?annotations=duration,distance&sources={}&destinations={}",
            self.base,
            coords.join(";"),
            list(0..sources.len()),
            list(sources.len()..sources.len() + destinations.len())
        );
        let json = self.get_json(&url)?;
        let snapped_too_far = |list: &serde_json::Value, n: usize| -> Vec<bool> {
            (0..n)
                .map(|i| {
                    list[i]["distance"]
                        .as_f64()
                        .is_some_and(|d| d > self.snap_limit_m)
                })
                .collect()
        };
        let far_sources = snapped_too_far(&json["sources"], sources.len());
        let far_destinations = snapped_too_far(&json["destinations"], destinations.len());
        let durations = json["durations"]
            .as_array()
            .ok_or_else(|| self.unavailable("the answer has no durations"))?;
        let distances = json["distances"]
            .as_array()
            .ok_or_else(|| self.unavailable("the answer has no distances"))?;
        let mut rows = Vec::with_capacity(sources.len());
        for i in 0..sources.len() {
            let mut row = Vec::with_capacity(destinations.len());
            for j in 0..destinations.len() {
                let t = durations
                    .get(i)
                    .and_then(|r| r.get(j))
                    .and_then(|v| v.as_f64());
                let d = distances
                    .get(i)
                    .and_then(|r| r.get(j))
                    .and_then(|v| v.as_f64());
                row.push(match (t, d) {
                    (Some(t), Some(d)) if !far_sources[i] && !far_destinations[j] => (t, d),
                    _ if sources[i] == destinations[j] => (0.0, 0.0),
                    _ => (f64::INFINITY, f64::INFINITY),
                });
            }
            rows.push(row);
        }
        Ok(rows)
    }

    /// How far OSRM's nearest road is from `place`, metres (`/nearest`).
    ///
    /// # Errors
    /// [`TravelError::Unavailable`] when the server cannot answer, and
    /// [`TravelError::Unplaceable`] for a planar place.
    pub fn snap_distance(&self, place: Location) -> Result<f64, TravelError> {
        let Location::Wgs84(c) = place else {
            return Err(TravelError::Unplaceable {
                place,
                reason: "OSRM needs WGS84 coordinates".into(),
            });
        };
        let url = format!(
            "{}/nearest/v1/driving/{:.7},{:.7}?number=1",
            self.base,
            c.lon(),
            c.lat()
        );
        let json = self.get_json(&url)?;
        json["waypoints"][0]["distance"]
            .as_f64()
            .ok_or_else(|| self.unavailable("the answer has no waypoint"))
    }

    /// GETs `url` and reads an OSRM answer whose `code` is `Ok`.
    fn get_json(&self, url: &str) -> Result<serde_json::Value, TravelError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| self.unavailable(e.to_string()))?;
        let status = response.status();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| self.unavailable(format!("reading the answer: {e}")))?;
        let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
            self.unavailable(format!("HTTP {status}, not JSON ({e}): {}", cut(&body)))
        })?;
        if json["code"] != "Ok" {
            return Err(self.unavailable(format!(
                "HTTP {status}: {} {}",
                json["code"],
                json["message"].as_str().unwrap_or("")
            )));
        }
        Ok(json)
    }

    /// Fills the cache for every pair of `places`, asking only for pairs not known yet.
    fn fill(&self, places: &[Location]) -> Result<(), TravelError> {
        let mut unique: Vec<Location> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for &p in places {
            if let Some(k) = key(p)
                && seen.insert(k)
            {
                unique.push(p);
            }
        }
        let known = |a: Location, b: Location, cache: &HashMap<(Key, Key), (f64, f64)>| matches!((key(a), key(b)), (Some(x), Some(y)) if cache.contains_key(&(x, y)));
        let half = (self.block / 2).max(1);
        for sources in unique.chunks(half) {
            for destinations in unique.chunks(half) {
                let missing = {
                    let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                    sources
                        .iter()
                        .any(|&a| destinations.iter().any(|&b| !known(a, b, &cache)))
                };
                if !missing {
                    continue;
                }
                let rows = self.table_block(sources, destinations)?;
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() > CACHE_PAIRS {
                    cache.clear();
                }
                for (a, row) in sources.iter().zip(rows) {
                    for (b, cell) in destinations.iter().zip(row) {
                        if let (Some(x), Some(y)) = (key(*a), key(*b)) {
                            cache.insert((x, y), cell);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn cached(&self, from: Location, to: Location) -> Option<(f64, f64)> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(&(key(from)?, key(to)?)).copied()
    }

    fn pair(&self, from: Location, to: Location) -> (f64, f64) {
        if from == to {
            return (0.0, 0.0);
        }
        if let Some(cell) = self.cached(from, to) {
            return cell;
        }
        match self.table_block(&[from], &[to]) {
            Ok(rows) => rows[0][0],
            // A single pair cannot carry the error: it is unreachable for now, and the next
            // table asked of the model reports the server as down.
            Err(_) => (f64::INFINITY, f64::INFINITY),
        }
    }
}

fn cut(text: &str) -> String {
    text.chars().take(200).collect()
}

impl TravelModel for Osrm {
    fn distance(&self, from: Location, to: Location, _: &Vehicle) -> f64 {
        self.pair(from, to).1
    }

    fn duration(&self, from: Location, to: Location, _: &Vehicle) -> f64 {
        self.pair(from, to).0
    }

    fn table(
        &self,
        places: &[Location],
        _: &[Ways],
        _: &[Vehicle],
    ) -> Result<Option<Arc<dyn TravelTable>>, TravelError> {
        if places.len() > DENSE_LIMIT {
            return Err(self.unavailable(format!(
                "a table of {} places is too large to ask of OSRM (at most {DENSE_LIMIT}); \
                 use ROAD_NETWORK=file.osm.pbf for city scale",
                places.len()
            )));
        }
        self.fill(places)?;
        let n = places.len();
        let mut cells = vec![(0.0, 0.0); n * n];
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for (i, &a) in places.iter().enumerate() {
                for (j, &b) in places.iter().enumerate() {
                    if i != j && a != b {
                        cells[i * n + j] = key(a)
                            .zip(key(b))
                            .and_then(|k| cache.get(&k).copied())
                            .unwrap_or((f64::INFINITY, f64::INFINITY));
                    }
                }
            }
        }
        Ok(Some(Arc::new(OsrmTable { n, cells })))
    }

    fn check(&self, place: Location, vehicle: &Vehicle) -> Result<(), TravelError> {
        let _ = vehicle;
        let nearest = self.snap_distance(place)?;
        if nearest <= self.snap_limit_m {
            Ok(())
        } else {
            Err(TravelError::Unplaceable {
                place,
                reason: format!(
                    "OSRM's nearest road is {nearest:.0} m away (limit {} m)",
                    self.snap_limit_m
                ),
            })
        }
    }

    fn describe(&self) -> String {
        format!("OSRM at {}", self.base)
    }
}

/// A table answered by OSRM: seconds and metres, row-major.
struct OsrmTable {
    n: usize,
    cells: Vec<(f64, f64)>,
}

impl TravelTable for OsrmTable {
    fn distance(&self, _: usize, from: usize, to: usize) -> f64 {
        self.cells[from * self.n + to].1
    }

    fn duration(&self, _: usize, from: usize, to: usize) -> f64 {
        self.cells[from * self.n + to].0
    }
}
