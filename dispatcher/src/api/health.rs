//! `GET /healthz` (the dependencies' checks) and `GET /metrics` (Prometheus text).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use serde::Serialize;
use service::error::DEFAULT_RETRY_AFTER_S;
use service::extract::Json;
use utoipa::ToSchema;

use super::ApiState;

/// The dependencies `/healthz` reports on; the service wires the database and broker in.
pub trait HealthCheck: Send + Sync {
    /// Each dependency's name and whether it answers now.
    fn check(&self) -> BoxFuture<'_, Vec<(&'static str, bool)>>;
}

/// No dependencies: always healthy (tests, or a demo with everything in memory).
pub struct NoDependencies;

impl HealthCheck for NoDependencies {
    fn check(&self) -> BoxFuture<'_, Vec<(&'static str, bool)>> {
        Box::pin(async { Vec::new() })
    }
}

/// The body of `/healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    /// Each dependency and whether it answers.
    pub checks: BTreeMap<String, bool>,
}

/// Whether the service and its dependencies answer.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Everything answers.", body = Health),
        (status = 503, description = "A dependency is down; `Retry-After` says when to retry.", body = Health),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn healthz(State(state): State<ApiState>) -> Response {
    let checks: BTreeMap<String, bool> = state
        .health
        .check()
        .await
        .into_iter()
        .map(|(name, ok)| (name.to_string(), ok))
        .collect();
    let healthy = checks.values().all(|ok| *ok);
    let body = Health {
        status: if healthy { "ok" } else { "unavailable" }.into(),
        checks,
    };
    if healthy {
        (StatusCode::OK, Json(body)).into_response()
    } else {
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(DEFAULT_RETRY_AFTER_S),
        );
        response
    }
}

/// The metrics in Prometheus text format.
#[tracing::instrument(skip_all)]
pub async fn metrics(State(state): State<ApiState>) -> Response {
    let text = state
        .metrics
        .as_ref()
        .map(|handle| handle.render())
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
