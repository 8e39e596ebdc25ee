//! The tracker: couriers' phones stream GPS fixes here. It validates them, stores them durably
//! in TimescaleDB (or natively partitioned PostgreSQL) with group commit, keeps each courier's
//! latest position in memory with an R-tree, and serves position history.
//!
//! It also owns applying the one database schema ([`schema`]), since every service that stores
//! anything depends on this crate.
//!
//! The dispatcher mounts [`Tracker::osmand_router`] and [`Tracker::api_router`], calls
//! [`Ingest::ingest_courier`] from its courier WebSocket and reads [`LatestPositions`].

pub mod api;
pub mod auth;
pub mod config;
pub mod copy_store;
pub mod directory;
pub mod history;
pub mod ingest;
pub mod latest;
pub mod maintenance;
pub mod metric;
pub mod position;
pub mod protocol;
pub mod schema;
pub mod startup;
pub mod store;
pub mod validation;
pub mod writer;

pub use config::TrackerConfig;
pub use ingest::{Ingest, IngestError, IngestReport};
pub use latest::{LatestPosition, LatestPositions};
pub use position::{FixInput, Source};
pub use startup::Tracker;
