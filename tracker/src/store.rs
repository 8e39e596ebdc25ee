//! Writing positions to PostgreSQL. A batch goes in one transaction of
//! `INSERT ... SELECT * FROM UNNEST(arrays) ON CONFLICT DO NOTHING` statements, so each
//! (courier, fix time) is stored once and a resend is harmless.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use time::OffsetDateTime;

use crate::position::Position;

/// A batch could not be written; none of it is committed (or the outcome is unknown).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or the connection broke.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The write took longer than allowed; the connection was given up.
    #[error("write timed out after {0:?}")]
    Timeout(Duration),
    /// The COPY writer's connection failed.
    #[error("database error: {0}")]
    Client(String),
}

impl StoreError {
    /// The metric label.
    pub fn cause(&self) -> &'static str {
        match self {
            StoreError::Database(sqlx::Error::Database(_)) => "database",
            StoreError::Database(_) => "connection",
            StoreError::Timeout(_) => "timeout",
            StoreError::Client(_) => "copy_client",
        }
    }
}

/// Where batches of positions are committed.
pub trait PositionStore: Send + Sync + 'static {
    /// Writes `rows` in one transaction; returns how many were new. A row whose courier and
    /// fix time are already stored, or appear earlier in `rows`, is skipped.
    fn write<'a>(&'a self, rows: &'a [Position]) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Whether the database answers.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Columns of a binary `COPY` of [`encode_binary_copy`] rows.
pub const COPY_COLUMNS: &str = "courier_id, device_id, fix_time, lat, lon, speed_mps, \
     heading_deg, altitude_m, accuracy_m, battery, source";

/// [`PositionStore`] on PostgreSQL/TimescaleDB.
pub struct PgPositionStore {
    pool: PgPool,
    /// Longest one write may take.
    write_timeout: Duration,
}

impl PgPositionStore {
    /// A store writing through `pool` (give it its own pool, sized to the parallel writes).
    pub fn new(pool: PgPool, write_timeout: Duration) -> Self {
        PgPositionStore {
            pool,
            write_timeout,
        }
    }

    async fn write_on(
        &self,
        conn: &mut PoolConnection<Postgres>,
        rows: &[Position],
    ) -> Result<u64, StoreError> {
        let chunks = chunk_by_wire_size(rows);
        if let [only] = chunks.as_slice() {
            // One statement is its own transaction: all rows or none.
            return insert_chunk(conn, only).await;
        }
        let mut tx = sqlx::Connection::begin(&mut **conn).await?;
        let mut inserted = 0;
        for chunk in chunks {
            inserted += insert_chunk(&mut tx, chunk).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }
}

/// Most bytes of array data one statement carries: the whole message then fits in one TCP
/// segment on loopback (MSS about 64 KiB). sqlx leaves `TCP_NODELAY` off, so a message longer
/// than a segment has its tail held by Nagle's algorithm until the server's delayed ACK, up to
/// 40 ms per statement; one segment, sent after the previous answer, is never held.
const STATEMENT_BYTES: usize = 7 * 1024;

/// Splits rows into runs whose encoded arrays stay under [`STATEMENT_BYTES`].
fn chunk_by_wire_size(rows: &[Position]) -> Vec<&[Position]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in rows.iter().enumerate() {
        // Per element: a 4-byte length each, then the value (text, 8-byte time and doubles,
        // 4-byte reals, 2-byte source).
        let row_bytes =
            11 * 4 + r.courier_id.as_str().len() + r.device_id.len() + 8 * 3 + 4 * 5 + 2;
        if bytes + row_bytes > STATEMENT_BYTES && i > start {
            chunks.push(&rows[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += row_bytes;
    }
    if start < rows.len() || chunks.is_empty() {
        chunks.push(&rows[start..]);
    }
    chunks
}

async fn insert_chunk(conn: &mut sqlx::PgConnection, rows: &[Position]) -> Result<u64, StoreError> {
    let n = rows.len();
    let mut courier_ids = Vec::with_capacity(n);
    let mut device_ids = Vec::with_capacity(n);
    let mut fix_times = Vec::with_capacity(n);
    let mut lats = Vec::with_capacity(n);
    let mut lons = Vec::with_capacity(n);
    let mut speeds = Vec::with_capacity(n);
    let mut headings = Vec::with_capacity(n);
    let mut altitudes = Vec::with_capacity(n);
    let mut accuracies = Vec::with_capacity(n);
    let mut batteries = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    for r in rows {
        courier_ids.push(r.courier_id.as_str());
        device_ids.push(&*r.device_id);
        fix_times.push(r.fix_time);
        lats.push(r.coords.lat());
        lons.push(r.coords.lon());
        speeds.push(r.speed_mps);
        headings.push(r.heading_deg);
        altitudes.push(r.altitude_m);
        accuracies.push(r.accuracy_m);
        batteries.push(r.battery_pct);
        sources.push(r.source as i16);
    }
    let inserted = sqlx::query(INSERT_UNNEST)
        .bind(courier_ids)
        .bind(device_ids)
        .bind(fix_times)
        .bind(lats)
        .bind(lons)
        .bind(speeds)
        .bind(headings)
        .bind(altitudes)
        .bind(accuracies)
        .bind(batteries)
        .bind(sources)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(inserted)
}

/// The batch insert: arrays in, one row per element, resends skipped.
const INSERT_UNNEST: &str = "INSERT INTO positions (courier_id, device_id, fix_time, lat, lon, \
     speed_mps, heading_deg, altitude_m, accuracy_m, battery, source) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::float8[], \
     $5::float8[], $6::float4[], $7::float4[], $8::float4[], $9::float4[], $10::float4[], \
     $11::int2[]) ON CONFLICT DO NOTHING";

impl PositionStore for PgPositionStore {
    fn write<'a>(&'a self, rows: &'a [Position]) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + self.write_timeout;
            let mut conn = tokio::time::timeout_at(deadline, self.pool.acquire())
                .await
                .map_err(|_| StoreError::Timeout(self.write_timeout))??;
            match tokio::time::timeout_at(deadline, self.write_on(&mut conn, rows)).await {
                Ok(Ok(n)) => Ok(n),
                Ok(Err(e)) => {
                    // The connection may be mid-protocol or broken: never reuse it.
                    conn.close_on_drop();
                    Err(e)
                }
                Err(_) => {
                    conn.close_on_drop();
                    Err(StoreError::Timeout(self.write_timeout))
                }
            }
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            tokio::time::timeout(
                self.write_timeout,
                sqlx::query("SELECT 1").execute(&self.pool),
            )
            .await
            .map_err(|_| StoreError::Timeout(self.write_timeout))??;
            Ok(())
        })
    }
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// A timestamp as PostgreSQL's binary `timestamptz`: microseconds since 2000-01-01 UTC.
pub fn pg_timestamp_us(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64 - PG_EPOCH_OFFSET_US
}

/// Encodes rows in `COPY ... (FORMAT binary)` form, columns as in [`COPY_COLUMNS`] (the benchmark's raw `COPY` baseline).
pub fn encode_binary_copy(rows: &[Position]) -> BytesMut {
    let mut buf = BytesMut::with_capacity(19 + 2 + rows.len() * 120);
    buf.put_slice(b"PGCOPY\n\xff\r\n\0");
    buf.put_i32(0); // flags
    buf.put_i32(0); // header extension length
    for r in rows {
        buf.put_i16(11);
        put_text(&mut buf, r.courier_id.as_str());
        put_text(&mut buf, &r.device_id);
        buf.put_i32(8);
        buf.put_i64(pg_timestamp_us(r.fix_time));
        buf.put_i32(8);
        buf.put_f64(r.coords.lat());
        buf.put_i32(8);
        buf.put_f64(r.coords.lon());
        for v in [
            r.speed_mps,
            r.heading_deg,
            r.altitude_m,
            r.accuracy_m,
            r.battery_pct,
        ] {
            match v {
                Some(v) => {
                    buf.put_i32(4);
                    buf.put_f32(v);
                }
                None => buf.put_i32(-1),
            }
        }
        buf.put_i32(2);
        buf.put_i16(r.source as i16);
    }
    buf.put_i16(-1);
    buf
}

fn put_text(buf: &mut BytesMut, s: &str) {
    buf.put_i32(s.len() as i32);
    buf.put_slice(s.as_bytes());
}

/// A store that keeps rows in memory and can be told to fail, for tests of the writer.
#[derive(Default)]
pub struct MemoryStore {
    /// Rows committed so far.
    pub rows: std::sync::Mutex<Vec<Position>>,
    /// While set, every write and ping fails.
    pub down: std::sync::atomic::AtomicBool,
    /// Each write takes this long (milliseconds).
    pub delay_ms: std::sync::atomic::AtomicU64,
}

impl PositionStore for MemoryStore {
    fn write<'a>(&'a self, rows: &'a [Position]) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let delay = self.delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if self.down.load(Ordering::Relaxed) {
                return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
            }
            let mut stored = self.rows.lock().unwrap_or_else(|e| e.into_inner());
            let mut n = 0;
            for r in rows {
                if !stored
                    .iter()
                    .any(|s| s.courier_id == r.courier_id && s.fix_time == r.fix_time)
                {
                    stored.push(r.clone());
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            if self.down.load(Ordering::Relaxed) {
                Err(StoreError::Database(sqlx::Error::PoolTimedOut))
            } else {
                Ok(())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_count_from_the_postgres_epoch() {
        assert_eq!(pg_timestamp_us(datetime!(2000-01-01 00:00 UTC)), 0);
        assert_eq!(
            pg_timestamp_us(datetime!(2000-01-01 00:00:01.5 UTC)),
            1_500_000
        );
    }
}
