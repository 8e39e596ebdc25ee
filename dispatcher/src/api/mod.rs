//! The REST API under `/v1`, with `/healthz`, `/metrics` and `/openapi.json`: one module per
//! area ([`couriers`], [`orders`], the staff [`support`] tool and its [`candidates`], [`health`]),
//! the error mapping
//! ([`error`]) and the generated OpenAPI document ([`openapi`]).
//!
//! Handlers only check who asks (the [`Auth`] extractor's [`Principal`]), read the request
//! through the shared JSON extractors (so every refusal is a JSON 4xx), call [`Dispatch`] and
//! answer with this module's DTOs, converted from the records.

pub mod candidates;
pub mod courier_ws;
pub mod couriers;
pub mod error;
pub mod health;
pub mod map_ws;
pub mod openapi;
pub mod orders;
pub mod support;
pub mod track;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use optimizer::model::{CourierId, OrderId};
use service::auth::{Principal, TokenVerifier};
use service::error::ApiError;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracker::LatestPositions;

use crate::dispatch::Dispatch;
use crate::records::Actor;

pub use health::HealthCheck;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The core every change and read goes through.
    pub dispatch: Dispatch,
    /// Checks bearer tokens (the [`Auth`] extractor finds it through `FromRef`).
    pub verifier: Arc<dyn TokenVerifier>,
    /// Couriers' latest positions, for their status and position.
    pub positions: Arc<LatestPositions>,
    /// The dependencies `/healthz` reports on.
    pub health: Arc<dyn HealthCheck>,
    /// Renders `/metrics`; without it the page is empty.
    pub metrics: Option<PrometheusHandle>,
}

impl FromRef<ApiState> for Arc<dyn TokenVerifier> {
    fn from_ref(state: &ApiState) -> Self {
        state.verifier.clone()
    }
}

/// The API's routes on `state`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/v1/couriers",
            get(couriers::list_couriers).post(couriers::create_courier),
        )
        .route("/v1/couriers/{id}", get(couriers::get_courier))
        .route("/v1/couriers/{id}/shift", post(couriers::set_shift))
        .route("/v1/couriers/{id}/route", get(couriers::get_route))
        .route("/v1/couriers/{id}/events", post(couriers::post_event))
        .route(
            "/v1/couriers/{id}/tokens",
            post(couriers::create_courier_token),
        )
        .route(
            "/v1/orders",
            get(orders::list_orders).post(orders::create_order),
        )
        .route(
            "/v1/orders/{id}",
            get(orders::get_order).patch(support::amend_order),
        )
        .route("/v1/orders/{id}/cancel", post(orders::cancel_order))
        .route("/v1/orders/{id}/timeline", get(support::timeline))
        .route("/v1/orders/{id}/assign", post(support::assign))
        .route("/v1/orders/{id}/pin", post(support::pin))
        .route("/v1/orders/{id}/unpin", post(support::unpin))
        .route("/v1/orders/{id}/unassign", post(support::unassign))
        .route("/v1/orders/{id}/fail", post(support::fail))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn no_method() -> Response {
    let body = serde_json::json!({
        "error": "method_not_allowed",
        "detail": "this route does not take that method",
    });
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// Who the timeline names for a change `principal` made.
fn actor_of(principal: &Principal) -> Actor {
    match principal {
        Principal::Staff => Actor::Staff("staff".into()),
        Principal::Kitchen { .. } => Actor::Kitchen,
        Principal::Courier(id) => Actor::Courier(id.clone()),
    }
}

/// An order id from a path or body; 400 when malformed.
fn order_id(text: &str) -> Result<OrderId, ApiError> {
    crate::wire::order_id(text).map_err(error::invalid)
}

/// A courier id from a path or body; 400 when malformed.
fn courier_id(text: &str) -> Result<CourierId, ApiError> {
    CourierId::parse(text).map_err(|_| {
        ApiError::bad_request(
            "invalid_courier_id",
            "courier id must be 1..=128 characters",
        )
    })
}

use crate::dispatch::events::rfc3339;

/// RFC 3339 text as a time; 400 naming `field` otherwise.
fn parse_time(field: &'static str, text: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| ApiError::bad_request("invalid_time", format!("{field}: {e}")))
}
