//! Travel times on real streets, as [`optimizer::TravelModel`]s the optimizer asks like any
//! other:
//!
//! - [`RoadNetwork`]: a road graph read from an OpenStreetMap `.osm.pbf` extract ([`osm`]) or
//!   generated for benchmarks ([`city`]), the ways each vehicle kind may use with their speeds
//!   ([`profile`]), a contraction hierarchy per profile ([`ch`]), snapping with an R-tree
//!   ([`snap`]) and many-to-many tables computed in parallel ([`table`]);
//! - [`Osrm`]: an OSRM server's `/table` service over HTTP ([`osrm`]);
//! - [`travel_model`]: the model the `ROAD_NETWORK` setting names (straight lines when unset).
//!
//! Why a crate of its own: the optimizer stays pure (no files, no sockets) and small, and only
//! the services and benchmarks that need streets pay for them. Inside, the graph, the
//! hierarchies, snapping and tables are pure computation over data in memory; reading an
//! extract (`osm`) and talking to OSRM (`osrm`) are the two I/O edges, each in its own module.
//! Rayon is called only from [`parallel`](crate::parallel)'s helpers.

pub mod ch;
pub mod city;
mod config;
mod error;
pub mod graph;
mod network;
pub mod osm;
pub mod osrm;
mod parallel;
pub mod profile;
pub mod snap;
mod table;

pub use config::{Loaded, travel_model};
pub use error::RoadsError;
pub use network::{DEFAULT_SNAP_LIMIT_M, RoadNetwork};
pub use osrm::Osrm;
pub use profile::Profile;
