//! Positions kept in memory, for `dispatcher demo`: [`MemoryPositions`] is both the
//! [`PositionStore`] the group-commit writer commits to and the [`HistoryStore`] the track
//! endpoint reads, answering as PostgreSQL does (one row per courier and fix time, tracks in
//! `[from, to)` in fix-time order, one point per bucket, the last, buckets counted from
//! 2000-01-01 as `date_bin` does). It is bounded: each courier keeps the points of the last
//! [`MemoryLimits::keep`] before its newest fix, and at most
//! [`MemoryLimits::points_per_courier`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use optimizer::model::CourierId;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::history::{HistoryStore, TrackPoint, TrackQuery};
use crate::position::Position;
use crate::store::{PositionStore, StoreError};

/// How much history each courier keeps in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Points older than this before the courier's newest fix are dropped.
    pub keep: Duration,
    /// At most this many points per courier (the oldest go first).
    pub points_per_courier: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        MemoryLimits {
            keep: Duration::from_secs(12 * 3600),
            points_per_courier: 20_000,
        }
    }
}

/// Every courier's recent track, in memory.
#[derive(Debug, Default)]
pub struct MemoryPositions {
    /// The bounds applied after each write.
    limits: MemoryLimits,
    /// Each courier's points by fix time (the primary key of `positions`).
    tracks: Mutex<HashMap<CourierId, BTreeMap<OffsetDateTime, TrackPoint>>>,
}

/// `date_bin`'s origin in the bucketed track query.
const BUCKET_ORIGIN: OffsetDateTime = datetime!(2000-01-01 00:00 UTC);

impl MemoryPositions {
    /// An empty store bounded by `limits`.
    pub fn new(limits: MemoryLimits) -> Self {
        MemoryPositions {
            limits,
            tracks: Mutex::default(),
        }
    }

    /// Points held for all couriers.
    pub fn len(&self) -> usize {
        self.tracks().values().map(BTreeMap::len).sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tracks; no holder can leave them half-written (each insert is one map operation),
    /// so a poisoned lock is taken over.
    fn tracks(&self) -> MutexGuard<'_, HashMap<CourierId, BTreeMap<OffsetDateTime, TrackPoint>>> {
        self.tracks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops what is beyond the limits from one track.
    fn trim(&self, track: &mut BTreeMap<OffsetDateTime, TrackPoint>) {
        if let Some((&newest, _)) = track.last_key_value() {
            let keep = time::Duration::try_from(self.limits.keep).unwrap_or(time::Duration::MAX);
            if let Some(cut) = newest.checked_sub(keep) {
                *track = track.split_off(&cut);
            }
        }
        while track.len() > self.limits.points_per_courier.max(1) {
            track.pop_first();
        }
    }
}

fn point(p: &Position) -> TrackPoint {
    TrackPoint {
        fix_time: p.fix_time,
        lat: p.coords.lat(),
        lon: p.coords.lon(),
        speed_mps: p.speed_mps,
        heading_deg: p.heading_deg,
        altitude_m: p.altitude_m,
        accuracy_m: p.accuracy_m,
    }
}

/// The bucket a fix falls in, as `date_bin(bucket, fix_time, '2000-01-01')`.
fn bucket_of(at: OffsetDateTime, bucket: Duration) -> i128 {
    let width = bucket.as_nanos().max(1) as i128;
    (at - BUCKET_ORIGIN).whole_nanoseconds().div_euclid(width)
}

impl PositionStore for MemoryPositions {
    fn write<'a>(&'a self, rows: &'a [Position]) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut tracks = self.tracks();
            let mut inserted = 0;
            let mut touched: Vec<&CourierId> = Vec::new();
            for row in rows {
                let track = tracks.entry(row.courier_id.clone()).or_default();
                if let std::collections::btree_map::Entry::Vacant(slot) = track.entry(row.fix_time)
                {
                    slot.insert(point(row));
                    inserted += 1;
                    if !touched.contains(&&row.courier_id) {
                        touched.push(&row.courier_id);
                    }
                }
            }
            for id in touched {
                if let Some(track) = tracks.get_mut(id) {
                    self.trim(track);
                }
            }
            Ok(inserted)
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

impl HistoryStore for MemoryPositions {
    fn track<'a>(
        &'a self,
        q: &'a TrackQuery,
    ) -> BoxFuture<'a, Result<Vec<TrackPoint>, sqlx::Error>> {
        Box::pin(async move {
            let limit = usize::try_from(q.limit.max(0)).unwrap_or(usize::MAX);
            if q.from >= q.to {
                return Ok(Vec::new());
            }
            let tracks = self.tracks();
            let Some(track) = tracks.get(&q.courier_id) else {
                return Ok(Vec::new());
            };
            let in_range = track.range(q.from..q.to).map(|(_, p)| p);
            let points: Vec<TrackPoint> = match q.bucket {
                None => in_range.take(limit).cloned().collect(),
                Some(bucket) => {
                    // The last point of each bucket, in fix-time order.
                    let mut last: Vec<&TrackPoint> = Vec::new();
                    for p in in_range {
                        match last.last_mut() {
                            Some(prev)
                                if bucket_of(prev.fix_time, bucket)
                                    == bucket_of(p.fix_time, bucket) =>
                            {
                                *prev = p;
                            }
                            _ => last.push(p),
                        }
                    }
                    last.into_iter().take(limit).cloned().collect()
                }
            };
            Ok(points)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use optimizer::model::Coordinates;

    use super::*;
    use crate::position::Source;

    fn at(secs: i64) -> OffsetDateTime {
        datetime!(2026-11-21 12:00 UTC) + time::Duration::seconds(secs)
    }

    fn fix(courier: &str, secs: i64, lat: f64) -> Position {
        Position {
            courier_id: CourierId::parse(courier).unwrap(),
            device_id: Arc::from("phone"),
            fix_time: at(secs),
            coords: Coordinates::parse(lat, 13.4).unwrap(),
            speed_mps: Some(2.0),
            heading_deg: None,
            altitude_m: Some(30.0),
            accuracy_m: Some(5.0),
            battery_pct: None,
            source: Source::WebSocket,
        }
    }

    fn query(courier: &str, from: i64, to: i64, bucket: Option<u64>) -> TrackQuery {
        TrackQuery {
            courier_id: CourierId::parse(courier).unwrap(),
            from: at(from),
            to: at(to),
            bucket: bucket.map(Duration::from_secs),
            limit: 100,
        }
    }

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        futures::executor::block_on(f)
    }

    #[test]
    fn a_resent_fix_is_stored_once_and_counts_as_not_new() {
        let store = MemoryPositions::default();
        let rows = [fix("c1", 0, 52.5), fix("c1", 1, 52.6), fix("c1", 1, 52.7)];
        assert_eq!(block(store.write(&rows)).unwrap(), 2);
        assert_eq!(block(store.write(&rows[..1])).unwrap(), 0);
        assert_eq!(store.len(), 2);
        // The first row of a fix time is kept, as `ON CONFLICT DO NOTHING` keeps it.
        let track = block(store.track(&query("c1", 0, 10, None))).unwrap();
        assert_eq!(track[1].lat, 52.6);
    }

    #[test]
    fn a_track_is_the_half_open_range_in_fix_time_order_of_one_courier() {
        let store = MemoryPositions::default();
        let rows = [
            fix("c1", 5, 52.55),
            fix("c1", 0, 52.50),
            fix("c2", 1, 48.0),
            fix("c1", 10, 52.60),
        ];
        block(store.write(&rows)).unwrap();
        let track = block(store.track(&query("c1", 0, 10, None))).unwrap();
        let times: Vec<_> = track.iter().map(|p| p.fix_time).collect();
        assert_eq!(times, [at(0), at(5)]);
        assert_eq!(track[0].altitude_m, Some(30.0));
        assert!(
            block(store.track(&query("c3", 0, 10, None)))
                .unwrap()
                .is_empty()
        );
        let mut limited = query("c1", 0, 11, None);
        limited.limit = 2;
        assert_eq!(block(store.track(&limited)).unwrap().len(), 2);
    }

    #[test]
    fn a_bucketed_track_keeps_the_last_point_of_each_bucket() {
        let store = MemoryPositions::default();
        let rows: Vec<_> = (0..25)
            .map(|s| fix("c1", s, 52.5 + s as f64 * 1e-4))
            .collect();
        block(store.write(&rows)).unwrap();
        // 12:00:00 is on a 10 s boundary from 2000-01-01: buckets [0,10), [10,20), [20,25).
        let track = block(store.track(&query("c1", 0, 25, Some(10)))).unwrap();
        let times: Vec<_> = track.iter().map(|p| p.fix_time).collect();
        assert_eq!(times, [at(9), at(19), at(24)]);
    }

    #[test]
    fn each_courier_keeps_only_the_recent_points_within_its_limits() {
        let store = MemoryPositions::new(MemoryLimits {
            keep: Duration::from_secs(60),
            points_per_courier: 5,
        });
        let rows: Vec<_> = (0..10).map(|s| fix("c1", s, 52.5)).collect();
        block(store.write(&rows)).unwrap();
        let track = block(store.track(&query("c1", 0, 100, None))).unwrap();
        assert_eq!(track.first().unwrap().fix_time, at(5), "at most 5 points");
        block(store.write(&[fix("c1", 100, 52.5), fix("c2", 0, 48.0)])).unwrap();
        let track = block(store.track(&query("c1", 0, 200, None))).unwrap();
        let times: Vec<_> = track.iter().map(|p| p.fix_time).collect();
        assert_eq!(
            times,
            [at(100)],
            "older than a minute before the newest fix"
        );
        assert_eq!(store.len(), 2);
    }
}
