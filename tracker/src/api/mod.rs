//! The tracker's HTTP surface as axum routers the dispatcher mounts (or the thin `tracker`
//! binary serves): [`osmand_router`] for `OSMAND_ADDR`, [`api_router`] for the `/v1` routes.

pub mod error;
pub mod osmand;
pub mod positions;
pub mod track;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};

use crate::auth::{Principal, TokenVerifier};
use crate::history::HistoryStore;
use crate::ingest::Ingest;
use error::ApiError;

/// What the handlers share.
#[derive(Clone)]
pub struct TrackerState {
    /// The ingest service.
    pub ingest: Arc<Ingest>,
    /// Bearer token checks.
    pub auth: Arc<dyn TokenVerifier>,
    /// Track reads.
    pub history: Arc<dyn HistoryStore>,
}

/// Largest request body accepted (a full batch is about 150 kB).
const BODY_LIMIT: usize = 1024 * 1024;

/// `GET|POST /` for the OsmAnd and Traccar Client apps.
pub fn osmand_router(state: TrackerState) -> Router {
    Router::new()
        .route("/", get(osmand::position).post(osmand::position))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// `POST /v1/positions` and `GET /v1/couriers/{id}/track`.
pub fn api_router(state: TrackerState) -> Router {
    Router::new()
        .route("/v1/positions", post(positions::post_positions))
        .route("/v1/couriers/{id}/track", get(track::get_track))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The principal of the request's `Authorization: Bearer` token.
async fn bearer(state: &TrackerState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    match state.auth.verify(token).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(ApiError::Unauthorized),
        Err(e) => {
            tracing::warn!(error = %e, "Checking a token failed.");
            Err(ApiError::Unavailable {
                cause: "the database is unreachable".into(),
                retry_after_s: state.ingest.config().retry_after_s,
            })
        }
    }
}

/// Serves `router` on `listener` with `TCP_NODELAY` on every connection (without it, small
/// responses wait for delayed ACKs: ~40 ms per request) until `shutdown` completes.
///
/// # Errors
/// When accepting connections fails for good.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        // Only latency suffers if this fails.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
