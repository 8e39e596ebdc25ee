//! `GET /v1/orders/{id}/candidates` (staff only): the best couriers for an open order, with the
//! cost of inserting it into each one's route, where it would go and when the courier would be
//! at each end, and every other courier with the reason it cannot take it. The support tool and
//! the map show it as "why this courier" and "why is this order waiting".
//!
//! The answer is the optimizer's pure `explain` on the planner's own input (see
//! [`crate::planner::Explainer`]), computed on the planner's pool, off the async runtime.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use service::auth::{Auth, TokenVerifier};
use service::error::{ApiError, ApiResult};
use service::extract::{Json, Path, Query};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

use super::error::ErrorBody;
use super::{order_id, rfc3339};
use crate::dispatch::Dispatch;
use crate::planner::{Candidates, ExplainFailure, Explainer, from_time};

/// Candidates listed when no limit is asked.
pub const DEFAULT_LIMIT: u32 = 5;
/// The most candidates one request may ask for.
pub const MAX_LIMIT: u32 = 20;
/// Rejected couriers listed at most (by courier id).
pub const MAX_REJECTED: usize = 50;

/// What the endpoint needs.
#[derive(Clone)]
pub struct CandidatesState {
    /// The core.
    pub dispatch: Dispatch,
    /// Checks bearer tokens.
    pub verifier: Arc<dyn TokenVerifier>,
    /// The planner's explainer.
    pub explainer: Explainer,
}

impl axum::extract::FromRef<CandidatesState> for Arc<dyn TokenVerifier> {
    fn from_ref(state: &CandidatesState) -> Self {
        state.verifier.clone()
    }
}

/// The route on `state`.
pub fn router(state: CandidatesState) -> Router {
    Router::new()
        .route("/v1/orders/{id}/candidates", get(candidates))
        .with_state(state)
}

/// The query of `GET /v1/orders/{id}/candidates`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CandidatesQuery {
    /// How many couriers to list (1..=20, default 5).
    #[param(minimum = 1, maximum = 20)]
    pub limit: Option<u32>,
}

/// A courier that could take the order.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CandidateView {
    /// The courier.
    pub courier_id: String,
    /// Its name.
    pub name: String,
    /// The objective's increase from giving it the order (seconds of click-to-door, mostly).
    pub cost: f64,
    /// Seconds of driving the order adds to its route.
    pub added_travel_s: f64,
    /// When it would reach the restaurant (RFC 3339; null when the food is on board).
    #[schema(format = DateTime)]
    pub pickup_eta: Option<String>,
    /// When it would reach the customer (RFC 3339).
    #[schema(format = DateTime)]
    pub dropoff_eta: String,
    /// Position of the pickup in its route with the order in it (null when on board).
    pub pickup_index: Option<usize>,
    /// Position of the drop-off in that route.
    pub dropoff_index: usize,
    /// Whether this courier holds the order now.
    pub current: bool,
}

/// A courier that cannot take the order.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RejectedView {
    /// The courier.
    pub courier_id: String,
    /// Its name.
    pub name: String,
    /// `capacity`, `time_window`, `shift_end`, `trip_rules`, `pinned_elsewhere`,
    /// `unreachable`, `no_position` or `off_shift`.
    pub reason: String,
}

/// The answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CandidatesView {
    /// The order.
    pub order_id: String,
    /// `created`, `assigned` or `picked_up`.
    pub status: String,
    /// Who holds it now.
    pub courier_id: Option<String>,
    /// Why it waits, when it does.
    pub unassigned_reason: Option<String>,
    /// The cheapest couriers first, at most `limit` (plus the current one wherever it ranks).
    pub candidates: Vec<CandidateView>,
    /// The other couriers and their reasons, by courier id (at most 50).
    pub rejected: Vec<RejectedView>,
}

impl CandidatesView {
    fn of(record: &crate::records::OrderRecord, found: Candidates) -> CandidatesView {
        CandidatesView {
            order_id: record.id.to_string(),
            status: record.status.as_str().to_string(),
            courier_id: record.courier_id.as_ref().map(ToString::to_string),
            unassigned_reason: record.unassigned_reason.clone(),
            candidates: found
                .candidates
                .into_iter()
                .map(|c| CandidateView {
                    courier_id: c.candidate.courier.to_string(),
                    name: c.name,
                    cost: c.candidate.cost,
                    added_travel_s: c.candidate.added_travel_s,
                    pickup_eta: c.candidate.pickup_eta.map(|t| rfc3339(from_time(t))),
                    dropoff_eta: rfc3339(from_time(c.candidate.dropoff_eta)),
                    pickup_index: c.candidate.pickup_index,
                    dropoff_index: c.candidate.dropoff_index,
                    current: c.candidate.current,
                })
                .collect(),
            rejected: found
                .rejected
                .into_iter()
                .take(MAX_REJECTED)
                .map(|r| RejectedView {
                    courier_id: r.courier_id.to_string(),
                    name: r.name,
                    reason: r.reason.to_string(),
                })
                .collect(),
        }
    }
}

/// The best couriers for an open order, and why the others cannot take it.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}/candidates",
    tag = "support",
    params(
        ("id" = String, Path, description = "The order's id.", min_length = 1, max_length = 128),
        CandidatesQuery,
    ),
    responses(
        (status = 200, description = "The candidates and the rejected couriers.", body = CandidatesView),
        (status = 403, description = "Not staff.", body = ErrorBody),
        (status = 404, description = "No such order.", body = ErrorBody),
        (status = 409, description = "The order is no longer open.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn candidates(
    State(state): State<CandidatesState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Query(query): Query<CandidatesQuery>,
) -> ApiResult<Json<CandidatesView>> {
    principal.require_staff()?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be 1..={MAX_LIMIT}"),
        ));
    }
    let id = order_id(&id)?;
    let record = state
        .dispatch
        .order(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("order {id} not found")))?;
    if record.status.is_final() {
        return Err(ApiError::conflict(
            "order_not_open",
            format!("order {id} is {} and has no candidates", record.status),
        ));
    }
    let found = state
        .explainer
        .candidates(&state.dispatch, &id, limit as usize)
        .await
        .map_err(|e| match e {
            ExplainFailure::Unavailable(cause) => ApiError::unavailable(cause),
            ExplainFailure::Unexpected(e) => ApiError::Unexpected(e),
        })?;
    Ok(Json(CandidatesView::of(&record, found)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use futures::future::BoxFuture;
    use optimizer::model::{Coordinates, CourierId, VehicleKind};
    use serde_json::{Value, json};
    use service::auth::{Principal, StaticTokens};
    use time::format_description::well_known::Rfc3339;
    use tower::ServiceExt;
    use tracker::{LatestPosition, LatestPositions};

    use super::*;
    use crate::api::{ApiState, HealthCheck};
    use crate::dispatch::NewCourier;
    use crate::planner::{Planner, PlannerConfig};
    use crate::records::Actor;
    use crate::store::MemoryStore;

    struct Up;

    impl HealthCheck for Up {
        fn check(&self) -> BoxFuture<'_, Vec<(&'static str, bool)>> {
            Box::pin(async { vec![("store", true)] })
        }
    }

    /// The API with Ada (on shift, near the restaurant), Bob (on shift, no position) and Cy
    /// (off shift), and one order placed by staff.
    async fn app() -> (Router, CourierId) {
        let dispatch = Dispatch::load(Arc::new(MemoryStore::new())).await.unwrap();
        let mut ids = Vec::new();
        for (name, on) in [("Ada", true), ("Bob", true), ("Cy", false)] {
            let c = dispatch
                .register_courier(NewCourier {
                    name: name.into(),
                    vehicle: VehicleKind::Bike,
                    device_id: format!("dev-{name}"),
                    capacity: None,
                })
                .await
                .unwrap();
            dispatch.set_shift(&c.id, on, Actor::System).await.unwrap();
            ids.push(c.id);
        }
        let positions = Arc::new(LatestPositions::from_positions([LatestPosition {
            courier_id: ids[0].clone(),
            coords: Coordinates::parse(60.1700, 24.9390).unwrap(),
            at: dispatch.now(),
            speed_mps: None,
            heading_deg: None,
            accuracy_m: None,
        }]));
        let planner = Planner::new(
            dispatch.clone(),
            positions.clone(),
            Arc::new(optimizer::StraightLine::default()),
            PlannerConfig::default(),
        )
        .unwrap();
        let tokens: Arc<dyn TokenVerifier> = Arc::new(StaticTokens(HashMap::from([
            ("staff".to_string(), Principal::Staff),
            ("ada".to_string(), Principal::Courier(ids[0].clone())),
        ])));
        let router = crate::api::router(ApiState {
            dispatch: dispatch.clone(),
            verifier: tokens.clone(),
            positions,
            health: Arc::new(Up),
            metrics: None,
        })
        .merge(router(CandidatesState {
            dispatch,
            verifier: tokens,
            explainer: planner.explainer(),
        }));
        let now = time::OffsetDateTime::now_utc();
        let at = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap();
        let order = json!({
            "order_id": "o-1",
            "restaurant": {"id": "r1", "lat": 60.1699, "lon": 24.9384},
            "dropoff": {"lat": 60.1756, "lon": 24.9500},
            "placed_at": at(now),
            "ready_at": at(now + time::Duration::minutes(10)),
        });
        let (status, body) = call(&router, "POST", "/v1/orders", Some("staff"), Some(order)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (router, ids[0].clone())
    }

    async fn call(
        router: &Router,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let response = router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn staff_see_the_courier_that_can_take_it_and_why_the_others_cannot() {
        let (router, ada) = app().await;
        let (status, body) = call(
            &router,
            "GET",
            "/v1/orders/o-1/candidates",
            Some("staff"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["order_id"], "o-1");
        assert_eq!(body["status"], "created");
        assert_eq!(body["courier_id"], Value::Null);
        let candidates = body["candidates"].as_array().unwrap();
        assert_eq!(candidates.len(), 1, "{body}");
        let c = &candidates[0];
        assert_eq!(c["courier_id"], ada.as_str());
        assert_eq!(c["name"], "Ada");
        assert_eq!(c["current"], false);
        assert_eq!(
            (c["pickup_index"].clone(), c["dropoff_index"].clone()),
            (json!(0), json!(1))
        );
        assert!(c["cost"].as_f64().unwrap() > 0.0 && c["added_travel_s"].as_f64().unwrap() > 0.0);
        let pickup =
            time::OffsetDateTime::parse(c["pickup_eta"].as_str().unwrap(), &Rfc3339).unwrap();
        let dropoff =
            time::OffsetDateTime::parse(c["dropoff_eta"].as_str().unwrap(), &Rfc3339).unwrap();
        assert!(dropoff > pickup);
        let reasons: HashMap<String, String> = body["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().into(),
                    r["reason"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(reasons.get("Bob").map(String::as_str), Some("no_position"));
        assert_eq!(reasons.get("Cy").map(String::as_str), Some("off_shift"));
        assert_eq!(reasons.len(), 2);
    }

    #[tokio::test]
    async fn the_endpoint_refuses_what_it_must() {
        let (router, _) = app().await;
        let get = |uri: &'static str, token: Option<&'static str>| {
            let router = router.clone();
            async move { call(&router, "GET", uri, token, None).await.0 }
        };
        assert_eq!(
            get("/v1/orders/o-1/candidates", None).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get("/v1/orders/o-1/candidates", Some("ada")).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            get("/v1/orders/nope/candidates", Some("staff")).await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get("/v1/orders/o-1/candidates?limit=0", Some("staff")).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            get("/v1/orders/o-1/candidates?limit=21", Some("staff")).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            get("/v1/orders/o-1/candidates?limit=20", Some("staff")).await,
            StatusCode::OK
        );
        let (status, body) = call(
            &router,
            "POST",
            "/v1/orders/o-1/cancel",
            Some("staff"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = call(
            &router,
            "GET",
            "/v1/orders/o-1/candidates",
            Some("staff"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"], "order_not_open");
    }
}
