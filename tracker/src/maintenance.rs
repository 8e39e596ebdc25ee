//! Housekeeping of the positions table: keeping the coming days' partitions ready (plain
//! PostgreSQL; a hypertable makes its own chunks) and dropping history older than the
//! retention, on both storages. Runs at start and then periodically.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::TrackerConfig;
use crate::metric;

/// What one maintenance run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Maintained {
    /// Daily partitions created.
    pub partitions_created: i32,
    /// Chunks or partitions dropped by retention.
    pub dropped: i32,
}

/// Creates missing partitions from yesterday to `ahead_days` on, and drops positions older
/// than `retention`.
///
/// # Errors
/// When a statement fails.
pub async fn run_once(
    pool: &PgPool,
    ahead_days: i32,
    retention: Duration,
) -> Result<Maintained, sqlx::Error> {
    let partitions_created: i32 = sqlx::query_scalar(
        "SELECT positions_ensure_partitions((now() AT TIME ZONE 'UTC')::date - 1, $1)",
    )
    .bind(ahead_days.max(1) + 2)
    .fetch_one(pool)
    .await?;
    let dropped: i32 =
        sqlx::query_scalar("SELECT positions_drop_older_than(now() - make_interval(secs => $1))")
            .bind(retention.as_secs_f64())
            .fetch_one(pool)
            .await?;
    metrics::counter!(metric::RETENTION_DROPPED).increment(u64::try_from(dropped).unwrap_or(0));
    Ok(Maintained {
        partitions_created,
        dropped,
    })
}

/// Runs [`run_once`] now and every `maintenance_every` until `shutdown` turns true.
pub fn spawn(
    pool: PgPool,
    config: &TrackerConfig,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let every = config.maintenance_every;
    let ahead = config.partitions_ahead_days;
    let retention = config.retention;
    tokio::spawn(async move {
        loop {
            match run_once(&pool, ahead, retention).await {
                Ok(m) if m.partitions_created > 0 || m.dropped > 0 => tracing::info!(
                    created = m.partitions_created,
                    dropped = m.dropped,
                    "Positions maintenance changed partitions."
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "Positions maintenance failed; it runs again later.")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
        }
    })
}
