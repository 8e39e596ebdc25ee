//! Writing positions to PostgreSQL. A batch goes in one transaction: normally one binary `COPY`
//! straight into `positions`; when that meets a row already stored (a resend), the batch is
//! copied into a temporary table and inserted with `ON CONFLICT DO NOTHING`, so each
//! (courier, fix time) is stored once. After a conflict the next batches take the second path
//! for a while, since resends come in bursts.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::pool::PoolConnection;
use sqlx::{Acquire, Postgres};
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
}

impl StoreError {
    /// The metric label.
    pub fn cause(&self) -> &'static str {
        match self {
            StoreError::Database(sqlx::Error::Database(_)) => "database",
            StoreError::Database(_) => "connection",
            StoreError::Timeout(_) => "timeout",
        }
    }
}

/// Where batches of positions are committed.
pub trait PositionStore: Send + Sync + 'static {
    /// Writes `rows` (distinct by courier and fix time) in one transaction; returns how many were
    /// new. Rows already stored are skipped.
    fn write<'a>(&'a self, rows: &'a [Position]) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Whether the database answers.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Columns written, in the order of the binary `COPY` rows.
const COLUMNS: &str = "courier_id, device_id, fix_time, lat, lon, speed_mps, heading_deg, \
                       altitude_m, accuracy_m, battery, source";

/// Batches taken on the conflict-safe path after a conflict.
const SAFE_BATCHES_AFTER_CONFLICT: u32 = 20;

/// [`PositionStore`] on PostgreSQL/TimescaleDB.
pub struct PgPositionStore {
    pool: PgPool,
    /// Longest one write may take.
    write_timeout: Duration,
    /// Batches still to write on the conflict-safe path.
    safe_batches: AtomicU32,
}

impl PgPositionStore {
    /// A store writing through `pool` (give it its own pool, sized to the parallel writes).
    pub fn new(pool: PgPool, write_timeout: Duration) -> Self {
        PgPositionStore {
            pool,
            write_timeout,
            safe_batches: AtomicU32::new(0),
        }
    }

    async fn write_on(
        &self,
        conn: &mut PoolConnection<Postgres>,
        rows: &[Position],
    ) -> Result<u64, StoreError> {
        let data = encode_binary_copy(rows);
        let safe = self
            .safe_batches
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if !safe {
            let mut tx = conn.begin().await?;
            let copied = async {
                let mut copy = tx
                    .copy_in_raw(&format!(
                        "COPY positions ({COLUMNS}) FROM STDIN (FORMAT binary)"
                    ))
                    .await?;
                copy.send(&data[..]).await?;
                copy.finish().await
            }
            .await;
            match copied {
                Ok(n) => {
                    tx.commit().await?;
                    return Ok(n);
                }
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                    tx.rollback().await?;
                    self.safe_batches
                        .store(SAFE_BATCHES_AFTER_CONFLICT, Ordering::Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut tx = conn.begin().await?;
        sqlx::query(
            "CREATE TEMP TABLE IF NOT EXISTS positions_incoming \
             (LIKE positions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
        )
        .execute(&mut *tx)
        .await?;
        let mut copy = tx
            .copy_in_raw(&format!(
                "COPY positions_incoming ({COLUMNS}) FROM STDIN (FORMAT binary)"
            ))
            .await?;
        copy.send(&data[..]).await?;
        copy.finish().await?;
        let inserted = sqlx::query(INSERT_INCOMING)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(inserted)
    }
}

const INSERT_INCOMING: &str = "INSERT INTO positions (courier_id, device_id, fix_time, lat, lon, speed_mps, heading_deg, \
     altitude_m, accuracy_m, battery, source) SELECT courier_id, device_id, fix_time, lat, lon, \
     speed_mps, heading_deg, altitude_m, accuracy_m, battery, source FROM positions_incoming \
     ON CONFLICT DO NOTHING";

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

/// Encodes rows in `COPY ... (FORMAT binary)` form, columns as in [`COLUMNS`].
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
