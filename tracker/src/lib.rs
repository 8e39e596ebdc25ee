//! The tracker: couriers' phones stream GPS fixes here. It validates them, stores them durably
//! in TimescaleDB (or natively partitioned PostgreSQL) with group commit, keeps each courier's
//! latest position in memory with an R-tree, and serves position history.
//!
//! Tokens, errors, settings, the server and the schema are the [`service`] crate's, shared with
//! the dispatcher.
//!
//! The dispatcher mounts [`Tracker::osmand_router`] and [`Tracker::api_router`], calls
//! [`Ingest::ingest_courier`] from its courier WebSocket and reads [`LatestPositions`]:
//!
//! ```no_run
//! # async fn wire(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! use tracker::{FixInput, Source, Tracker, TrackerConfig};
//!
//! let tracker = Tracker::build(pool, TrackerConfig::default()).await?;
//! let osmand = tokio::net::TcpListener::bind("127.0.0.1:5055").await?;
//! let stop = service::shutdown::on_signals();
//! tokio::spawn(service::server::serve(osmand, tracker.osmand_router(), 10_000, stop));
//! let api = tracker.api_router(); // merge into the dispatcher's router on HTTP_ADDR
//!
//! // A courier WebSocket message: answered once the fix is committed.
//! let courier = optimizer::model::CourierId::parse("c1")?;
//! let fix = FixInput { lat: 52.52, lon: 13.405, ..FixInput::default() };
//! let report = tracker.ingest().ingest_courier(&courier, vec![fix], Source::WebSocket).await?;
//! assert_eq!(report.stored, 1);
//!
//! // The planner and the map: who is near, and every move as it happens.
//! let here = optimizer::model::Coordinates::parse(52.52, 13.405)?;
//! let nearest = tracker.latest().nearest(here, 5);
//! let mut moves = tracker.latest().subscribe();
//! # let _ = (api, nearest, moves.recv().await);
//! tracker.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod config;
pub mod copy_store;
pub mod directory;
pub mod history;
pub mod ingest;
pub mod latest;
pub mod maintenance;
pub mod memory;
pub mod metric;
pub mod position;
pub mod protocol;
pub mod startup;
pub mod store;
pub mod validation;
pub mod writer;

pub use config::TrackerConfig;
pub use ingest::{Ingest, IngestError, IngestReport};
pub use latest::{LatestPosition, LatestPositions};
pub use position::{FixInput, Source};
pub use startup::Tracker;
