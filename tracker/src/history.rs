//! Position history: a courier's track between two instants, optionally downsampled to one
//! point (the last) per time bucket, via `time_bucket` on a hypertable or `date_bin` on plain
//! PostgreSQL; and its renderings as GeoJSON, GPX 1.1 and CSV.

use std::fmt::Write as _;
use std::time::Duration;

use futures::future::BoxFuture;
use optimizer::model::CourierId;
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use service::schema::PositionsStorage;

/// One point of a track.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct TrackPoint {
    /// Fix time.
    pub fix_time: OffsetDateTime,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Speed, m/s.
    pub speed_mps: Option<f32>,
    /// Heading, degrees.
    pub heading_deg: Option<f32>,
    /// Altitude, m.
    pub altitude_m: Option<f32>,
    /// Accuracy, m.
    pub accuracy_m: Option<f32>,
}

/// What to read.
#[derive(Clone, Debug)]
pub struct TrackQuery {
    /// Whose track.
    pub courier_id: CourierId,
    /// From (inclusive).
    pub from: OffsetDateTime,
    /// To (exclusive).
    pub to: OffsetDateTime,
    /// One point per bucket of this length, when set.
    pub bucket: Option<Duration>,
    /// At most this many points.
    pub limit: i64,
}

/// Reads tracks.
pub trait HistoryStore: Send + Sync + 'static {
    /// The points of a track in fix-time order.
    fn track<'a>(
        &'a self,
        q: &'a TrackQuery,
    ) -> BoxFuture<'a, Result<Vec<TrackPoint>, sqlx::Error>>;
}

/// [`HistoryStore`] on PostgreSQL/TimescaleDB.
pub struct PgHistory {
    pool: PgPool,
    storage: PositionsStorage,
}

impl PgHistory {
    /// History read through `pool` from a positions table stored as `storage`.
    pub fn new(pool: PgPool, storage: PositionsStorage) -> Self {
        PgHistory { pool, storage }
    }
}

impl HistoryStore for PgHistory {
    fn track<'a>(
        &'a self,
        q: &'a TrackQuery,
    ) -> BoxFuture<'a, Result<Vec<TrackPoint>, sqlx::Error>> {
        Box::pin(async move {
            match q.bucket {
                None => {
                    sqlx::query_as(PLAIN)
                        .bind(q.courier_id.as_str())
                        .bind(q.from)
                        .bind(q.to)
                        .bind(q.limit)
                        .fetch_all(&self.pool)
                        .await
                }
                Some(bucket) => {
                    let sql = match self.storage {
                        PositionsStorage::Hypertable => BUCKETED_TIMESCALE,
                        PositionsStorage::Partitioned => BUCKETED_DATE_BIN,
                    };
                    sqlx::query_as(sql)
                        .bind(q.courier_id.as_str())
                        .bind(q.from)
                        .bind(q.to)
                        .bind(q.limit)
                        .bind(bucket.as_secs_f64())
                        .fetch_all(&self.pool)
                        .await
                }
            }
        })
    }
}

const PLAIN: &str = "SELECT fix_time, lat, lon, speed_mps, heading_deg, altitude_m, accuracy_m FROM positions \
     WHERE courier_id = $1 AND fix_time >= $2 AND fix_time < $3 ORDER BY fix_time LIMIT $4";

const BUCKETED_TIMESCALE: &str = "SELECT fix_time, lat, lon, speed_mps, heading_deg, altitude_m, \
     accuracy_m FROM (SELECT DISTINCT ON (b) time_bucket(make_interval(secs => $5), fix_time) AS b, \
     fix_time, lat, lon, speed_mps, heading_deg, altitude_m, accuracy_m FROM positions \
     WHERE courier_id = $1 AND fix_time >= $2 AND fix_time < $3 ORDER BY b, fix_time DESC) s \
     ORDER BY fix_time LIMIT $4";

const BUCKETED_DATE_BIN: &str = "SELECT fix_time, lat, lon, speed_mps, heading_deg, altitude_m, \
     accuracy_m FROM (SELECT DISTINCT ON (b) \
     date_bin(make_interval(secs => $5), fix_time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b, \
     fix_time, lat, lon, speed_mps, heading_deg, altitude_m, accuracy_m FROM positions \
     WHERE courier_id = $1 AND fix_time >= $2 AND fix_time < $3 ORDER BY b, fix_time DESC) s \
     ORDER BY fix_time LIMIT $4";

/// Reads a bucket length: `30s`, `5m`, `1h`, or plain seconds; between 1 s and 1 day.
pub fn parse_bucket(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => n,
        "m" | "min" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    (1..=86_400)
        .contains(&seconds)
        .then(|| Duration::from_secs(seconds))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The track as a GeoJSON Feature: a LineString (a Point for one fix, no geometry for none),
/// with the fix times in `properties.times`.
pub fn to_geojson(courier_id: &CourierId, points: &[TrackPoint]) -> serde_json::Value {
    let coords: Vec<_> = points
        .iter()
        .map(|p| serde_json::json!([p.lon, p.lat]))
        .collect();
    let geometry = match coords.len() {
        0 => serde_json::Value::Null,
        1 => serde_json::json!({"type": "Point", "coordinates": coords[0]}),
        _ => serde_json::json!({"type": "LineString", "coordinates": coords}),
    };
    let times: Vec<_> = points.iter().map(|p| rfc3339(p.fix_time)).collect();
    serde_json::json!({
        "type": "Feature",
        "geometry": geometry,
        "properties": {"courier_id": courier_id.as_str(), "times": times, "points": points.len()},
    })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The track as a GPX 1.1 document with one track segment.
pub fn to_gpx(courier_id: &CourierId, points: &[TrackPoint]) -> String {
    let mut out = String::with_capacity(200 + points.len() * 110);
    out.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\" creator=\"courier-tracker\" \
         xmlns=\"http://www.topografix.com/GPX/1/1\">\n<trk><name>",
    );
    out.push_str(&xml_escape(courier_id.as_str()));
    out.push_str("</name><trkseg>\n");
    for p in points {
        let _ = write!(out, "<trkpt lat=\"{}\" lon=\"{}\">", p.lat, p.lon);
        if let Some(ele) = p.altitude_m {
            let _ = write!(out, "<ele>{ele}</ele>");
        }
        let _ = writeln!(out, "<time>{}</time></trkpt>", rfc3339(p.fix_time));
    }
    out.push_str("</trkseg></trk>\n</gpx>\n");
    out
}

/// The track as CSV with a header line.
pub fn to_csv(points: &[TrackPoint]) -> String {
    let mut out = String::from("time,lat,lon,speed_mps,heading_deg,altitude_m,accuracy_m\n");
    let opt = |v: Option<f32>| v.map(|v| v.to_string()).unwrap_or_default();
    for p in points {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            rfc3339(p.fix_time),
            p.lat,
            p.lon,
            opt(p.speed_mps),
            opt(p.heading_deg),
            opt(p.altitude_m),
            opt(p.accuracy_m)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn pts() -> Vec<TrackPoint> {
        (0..2)
            .map(|i| TrackPoint {
                fix_time: datetime!(2026-11-21 12:00 UTC) + time::Duration::seconds(i),
                lat: 52.5 + i as f64 * 0.001,
                lon: 13.4,
                speed_mps: Some(3.0),
                heading_deg: None,
                altitude_m: Some(30.0),
                accuracy_m: None,
            })
            .collect()
    }

    #[test]
    fn buckets_read_seconds_minutes_and_hours() {
        assert_eq!(parse_bucket("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_bucket("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_bucket("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_bucket("45"), Some(Duration::from_secs(45)));
        for bad in ["0s", "2d", "x", "", "99999999999999999999s", "2h5"] {
            assert_eq!(parse_bucket(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_track_renders_as_linestring_gpx_and_csv() {
        let id = CourierId::parse("c<1>").unwrap();
        let g = to_geojson(&id, &pts());
        assert_eq!(g["geometry"]["type"], "LineString");
        assert_eq!(g["geometry"]["coordinates"][1][1], 52.501);
        assert_eq!(g["properties"]["times"][0], "2026-11-21T12:00:00Z");
        let gpx = to_gpx(&id, &pts());
        assert!(gpx.contains("<name>c&lt;1&gt;</name>"));
        assert!(gpx.contains("<trkpt lat=\"52.5\" lon=\"13.4\"><ele>30</ele><time>2026-11-21T12:00:00Z</time></trkpt>"));
        let csv = to_csv(&pts());
        assert_eq!(
            csv.lines().nth(1).unwrap(),
            "2026-11-21T12:00:00Z,52.5,13.4,3,,30,"
        );
        assert_eq!(to_geojson(&id, &[])["geometry"], serde_json::Value::Null);
    }
}
