//! Wiring: [`Tracker::build`] connects the parts on a PostgreSQL pool (directory, token checks,
//! history, the group-commit writer with its own connections, latest positions rebuilt from the
//! database, the maintenance job) and hands out the routers and the ingest service.
//! [`Tracker::in_memory`] wires the same parts on [`MemoryPositions`] for `dispatcher demo`.

use std::sync::Arc;

use axum::Router;
use optimizer::model::{Coordinates, CourierId};
use service::auth::{PgTokenVerifier, TokenVerifier};
use service::schema::{SchemaError, positions_storage};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{TrackerState, api_router, osmand_router};
use crate::config::TrackerConfig;
use crate::copy_store::{CopyStore, client_config};
use crate::directory::{CourierDirectory, LookupError, PgCourierDirectory};
use crate::history::PgHistory;
use crate::ingest::Ingest;
use crate::latest::{LatestPosition, LatestPositions};
use crate::memory::{MemoryLimits, MemoryPositions};
use crate::store::{PgPositionStore, PositionStore};
use crate::writer::{Writer, WriterTask};

/// Why the tracker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The positions table is missing or unreadable.
    #[error("inspecting the positions table failed")]
    Schema(#[from] SchemaError),
    /// A startup query failed.
    #[error("a startup query failed")]
    Database(#[from] sqlx::Error),
    /// Loading devices failed.
    #[error("loading devices failed")]
    Lookup(#[from] LookupError),
}

/// A running tracker.
pub struct Tracker {
    /// What the handlers share (ingest, tokens, history).
    pub state: TrackerState,
    /// Turns true to stop the background tasks.
    shutdown: watch::Sender<bool>,
    writer_task: WriterTask,
    /// Retention and partition upkeep (none in memory: [`MemoryLimits`] bound it).
    maintenance: Option<JoinHandle<()>>,
}

impl Tracker {
    /// Starts the tracker on `pool` (schema already applied), with tokens checked against
    /// `api_tokens`.
    ///
    /// # Errors
    /// [`StartupError`] when the database cannot be read.
    pub async fn build(pool: PgPool, config: TrackerConfig) -> Result<Tracker, StartupError> {
        let auth = Arc::new(PgTokenVerifier::new(pool.clone(), config.lookup_ttl));
        Self::build_with_auth(pool, config, auth).await
    }

    /// As [`Tracker::build`], with the dispatcher's own token checks.
    ///
    /// # Errors
    /// [`StartupError`] when the database cannot be read.
    pub async fn build_with_auth(
        pool: PgPool,
        config: TrackerConfig,
        auth: Arc<dyn TokenVerifier>,
    ) -> Result<Tracker, StartupError> {
        crate::metric::describe();
        let storage = positions_storage(&pool).await?;
        let directory = Arc::new(PgCourierDirectory::new(pool.clone(), config.lookup_ttl));
        directory.preload().await?;
        let latest = Arc::new(LatestPositions::from_positions(load_latest(&pool).await?));
        tracing::info!(
            couriers = latest.len(),
            ?storage,
            "Latest positions loaded."
        );

        // The writer has connections of its own, so lookups and history reads never wait
        // behind a batch, and a broken connection is replaced on the next write. Binary COPY
        // where the server takes plain connections; batched UNNEST inserts over TLS.
        let options = pool.connect_options();
        let store: Arc<dyn PositionStore> = match client_config(&options) {
            Ok(client) => Arc::new(CopyStore::new(client, config.write_timeout)),
            Err(tls) => {
                tracing::info!(reason = %tls, "Positions are written with INSERT, not COPY.");
                let write_pool = PgPoolOptions::new()
                    .max_connections(u32::try_from(config.parallel_writes).unwrap_or(2).max(1) + 1)
                    .min_connections(0)
                    .acquire_timeout(config.write_timeout)
                    .connect_lazy_with(options.as_ref().clone());
                Arc::new(PgPositionStore::new(write_pool, config.write_timeout))
            }
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (writer, writer_task) = Writer::start(store, &config, shutdown_rx.clone());
        let maintenance = crate::maintenance::spawn(pool.clone(), &config, shutdown_rx);
        let ingest = Arc::new(Ingest::new(config, directory, writer, latest));
        let state = TrackerState {
            ingest,
            auth,
            history: Arc::new(PgHistory::new(pool, storage)),
        };
        Ok(Tracker {
            state,
            shutdown,
            writer_task,
            maintenance: Some(maintenance),
        })
    }

    /// A tracker keeping positions in memory ([`MemoryPositions`] with its default limits),
    /// finding couriers in `directory` and checking tokens with `auth`. Call it on a Tokio
    /// runtime (the writer is a task).
    pub fn in_memory(
        config: TrackerConfig,
        directory: Arc<dyn CourierDirectory>,
        auth: Arc<dyn TokenVerifier>,
    ) -> Tracker {
        crate::metric::describe();
        let positions = Arc::new(MemoryPositions::new(MemoryLimits::default()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (writer, writer_task) = Writer::start(positions.clone(), &config, shutdown_rx);
        let latest = Arc::new(LatestPositions::new());
        let ingest = Arc::new(Ingest::new(config, directory, writer, latest));
        Tracker {
            state: TrackerState {
                ingest,
                auth,
                history: positions,
            },
            shutdown,
            writer_task,
            maintenance: None,
        }
    }

    /// The router for `OSMAND_ADDR`.
    pub fn osmand_router(&self) -> Router {
        osmand_router(self.state.clone())
    }

    /// The `/v1` routes.
    pub fn api_router(&self) -> Router {
        api_router(self.state.clone())
    }

    /// The ingest service (for the courier WebSocket).
    pub fn ingest(&self) -> &Arc<Ingest> {
        &self.state.ingest
    }

    /// The latest positions and their R-tree.
    pub fn latest(&self) -> &Arc<LatestPositions> {
        self.state.ingest.latest()
    }

    /// Stops the background tasks after the queued positions are written. Stop the HTTP
    /// servers first, so nothing new arrives.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.writer_task.join().await;
        if let Some(maintenance) = self.maintenance {
            let _ = maintenance.await;
        }
    }
}

/// Each registered courier's latest stored position (one index probe per courier).
///
/// # Errors
/// When the query fails.
pub async fn load_latest(pool: &PgPool) -> Result<Vec<LatestPosition>, sqlx::Error> {
    type Row = (
        String,
        time::OffsetDateTime,
        f64,
        f64,
        Option<f32>,
        Option<f32>,
        Option<f32>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT c.id, p.fix_time, p.lat, p.lon, p.speed_mps, p.heading_deg, p.accuracy_m \
         FROM couriers c CROSS JOIN LATERAL (SELECT * FROM positions p WHERE p.courier_id = c.id \
         ORDER BY p.fix_time DESC LIMIT 1) p",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, at, lat, lon, speed_mps, heading_deg, accuracy_m)| {
            Some(LatestPosition {
                courier_id: CourierId::parse(id).ok()?,
                coords: Coordinates::parse(lat, lon).ok()?,
                at,
                speed_mps,
                heading_deg,
                accuracy_m,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use optimizer::model::VehicleKind;
    use service::auth::{Principal, StaticTokens};
    use service::clock::Clock;
    use time::OffsetDateTime;
    use time::macros::datetime;
    use tower::ServiceExt;

    use super::*;
    use crate::directory::StaticDirectory;
    use crate::position::{FixInput, Source};

    /// Long ago: the system clock would refuse fixes of then as too old.
    fn then() -> OffsetDateTime {
        datetime!(2020-01-01 12:01 UTC)
    }

    #[tokio::test]
    async fn an_in_memory_tracker_judges_by_its_clock_and_serves_the_track_it_stored() {
        let config = TrackerConfig {
            clock: Clock::from_fn(then),
            ..TrackerConfig::default()
        };
        let directory = StaticDirectory::default().with("phone-1", "c1", VehicleKind::Bike);
        let tokens = StaticTokens(HashMap::from([("staff".to_string(), Principal::Staff)]));
        let tracker = Tracker::in_memory(config, Arc::new(directory), Arc::new(tokens));
        let c1 = CourierId::parse("c1").unwrap();
        let fixes = (0..3)
            .map(|i| FixInput {
                lat: 52.52,
                lon: 13.405 + f64::from(i) * 1e-4,
                fix_time: Some(datetime!(2020-01-01 12:00 UTC) + time::Duration::seconds(i.into())),
                ..FixInput::default()
            })
            .collect();
        let report = tracker
            .ingest()
            .ingest_courier(&c1, fixes, Source::WebSocket)
            .await
            .unwrap();
        assert_eq!(report.stored, 3, "{report:?}");
        assert_eq!(
            tracker.latest().get(&c1).unwrap().at,
            datetime!(2020-01-01 12:00:02 UTC)
        );

        // No `to`: the track ends at the tracker's clock, not the system's.
        let response = tracker
            .api_router()
            .oneshot(
                Request::get("/v1/couriers/c1/track?format=csv")
                    .header("authorization", "Bearer staff")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let csv = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(csv.lines().count(), 4, "{csv}");
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .starts_with("2020-01-01T12:00:00Z,52.52,13.405")
        );
        tracker.shutdown().await;
    }
}
