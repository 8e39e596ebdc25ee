//! What the tracker and the dispatcher share as services, so both answer, authenticate, start
//! and stop alike: the API error type and JSON extractors ([`error`], [`extract`]), bearer-token
//! auth ([`auth`]) with its lookup cache ([`cache`]), the environment ([`settings`]), logging
//! ([`telemetry`]), the shutdown signal ([`shutdown`]), the clock ([`clock`]), the HTTP server ([`server`]), applying
//! the one schema ([`schema`]) and, behind the `testing` feature, integration-test fixtures.

pub mod auth;
pub mod cache;
pub mod clock;
pub mod error;
pub mod extract;
pub mod schema;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{ApiError, ApiResult};
