//! The tracker's HTTP surface as axum routers the dispatcher mounts (or the thin `tracker`
//! binary serves): [`osmand_router`] for `OSMAND_ADDR`, [`api_router`] for the `/v1` routes.

pub mod error;
pub mod osmand;
pub mod positions;
pub mod track;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{get, post};
use service::auth::TokenVerifier;

use crate::history::HistoryStore;
use crate::ingest::Ingest;

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

impl FromRef<TrackerState> for Arc<dyn TokenVerifier> {
    fn from_ref(state: &TrackerState) -> Self {
        state.auth.clone()
    }
}

#[cfg(test)]
mod tests {
    //! The routes on fakes: an in-memory directory, token set, store and history.

    use std::collections::HashMap;
    use std::sync::atomic::Ordering;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use futures::future::BoxFuture;
    use optimizer::model::{CourierId, VehicleKind};
    use tower::ServiceExt;

    use service::auth::{Principal, StaticTokens};

    use super::*;
    use crate::config::TrackerConfig;
    use crate::directory::StaticDirectory;
    use crate::history::{TrackPoint, TrackQuery};
    use crate::latest::LatestPositions;
    use crate::store::MemoryStore;
    use crate::writer::Writer;

    struct NoHistory;
    impl HistoryStore for NoHistory {
        fn track<'a>(
            &'a self,
            _: &'a TrackQuery,
        ) -> BoxFuture<'a, Result<Vec<TrackPoint>, sqlx::Error>> {
            Box::pin(async { Ok(Vec::new()) })
        }
    }

    fn state() -> (TrackerState, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::default());
        let config = TrackerConfig::default();
        // The batcher stops with the test's runtime.
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        std::mem::forget(stop);
        let (writer, _task) = Writer::start(store.clone(), &config, stop_rx);
        let directory = StaticDirectory::default().with("phone-1", "c1", VehicleKind::Bike);
        let ingest = Ingest::new(
            config,
            Arc::new(directory),
            writer,
            Arc::new(LatestPositions::new()),
        );
        let tokens = StaticTokens(HashMap::from([
            (
                "courier-token".to_string(),
                Principal::Courier(CourierId::parse("c1").unwrap()),
            ),
            ("staff-token".to_string(), Principal::Staff),
        ]));
        let state = TrackerState {
            ingest: Arc::new(ingest),
            auth: Arc::new(tokens),
            history: Arc::new(NoHistory),
        };
        (state, store)
    }

    async fn call(
        router: Router,
        req: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = router.oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    fn now_s() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[tokio::test]
    async fn an_osmand_fix_is_stored_before_the_200() {
        let (state, store) = state();
        let uri = format!("/?id=phone-1&lat=52.5&lon=13.4&timestamp={}", now_s());
        let (status, _, body) = call(
            osmand_router(state),
            Request::get(uri).body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(store.rows.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_unknown_device_is_a_json_404() {
        let (state, _) = state();
        let uri = format!("/?id=stranger&lat=52.5&lon=13.4&timestamp={}", now_s());
        let (status, _, body) = call(
            osmand_router(state),
            Request::get(uri).body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "not_found");
    }

    #[tokio::test]
    async fn a_down_database_is_a_503_with_retry_after() {
        let (state, store) = state();
        store.down.store(true, Ordering::Relaxed);
        let uri = format!("/?id=phone-1&lat=52.5&lon=13.4&timestamp={}", now_s());
        let (status, headers, body) = call(
            osmand_router(state),
            Request::get(uri).body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(headers["retry-after"], "5");
        assert_eq!(body["error"], "unavailable");
    }

    #[tokio::test]
    async fn the_batch_endpoint_takes_only_courier_tokens() {
        let (state, store) = state();
        let body = format!(r#"[{{"lat":52.5,"lon":13.4,"at":{}}}]"#, now_s());
        let post = |token: &str| {
            Request::post("/v1/positions")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::from(body.clone()))
                .unwrap()
        };
        let (status, _, _) = call(api_router(state.clone()), post("staff-token")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, _) = call(api_router(state.clone()), post("wrong")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, reply) = call(api_router(state), post("courier-token")).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["stored"], 1);
        assert_eq!(
            store.rows.lock().unwrap()[0].source,
            crate::position::Source::Batch
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn no_query_or_body_gets_a_5xx(
            params in proptest::collection::vec(
                (0usize..10, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24)),
                0..8,
            ),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            json in proptest::prelude::any::<bool>(),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let status = rt.block_on(async {
                let (state, _) = state();
                const KEYS: [&str; 10] = ["id", "lat", "lon", "timestamp", "speed", "bearing",
                    "altitude", "accuracy", "batt", "location"];
                let mut q = String::from("id=phone-1&lat=52.5&lon=13.4");
                for (k, v) in &params {
                    q.push('&');
                    q.push_str(KEYS[*k]);
                    q.push('=');
                    q.extend(form_urlencoded::byte_serialize(v));
                }
                let mut req = Request::post(format!("/?{q}"));
                if json {
                    req = req.header("content-type", "application/json");
                }
                let (status, _, _) = call(osmand_router(state), req.body(Body::from(body)).unwrap()).await;
                status
            });
            proptest::prop_assert!(status.as_u16() < 500, "{status}");
        }
    }
}
