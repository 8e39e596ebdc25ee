//! Axum extractors whose rejections are [`ApiError::BadRequest`] JSON bodies (code
//! `bad_request`, detail the rejection's text), so every 4xx of every service is JSON:
//! [`Json`] (which also serialises responses), [`Query`] and [`Path`].

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;

/// A JSON request body (as [`axum::Json`]) or response.
#[derive(Clone, Copy, Debug, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

/// Query parameters (as [`axum::extract::Query`]).
#[derive(Clone, Copy, Debug, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// Path parameters (as [`axum::extract::Path`]).
#[derive(Clone, Copy, Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::bad_request("bad_request", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request("bad_request", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request("bad_request", r.body_text())
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::{get, post};
    use tower::ServiceExt;

    use super::*;

    #[derive(serde::Deserialize, Serialize)]
    struct Item {
        n: u32,
    }

    fn router() -> Router {
        Router::new()
            .route(
                "/items",
                post(|Json(item): Json<Item>| async move { Json(item) }),
            )
            .route(
                "/q",
                get(|Query(item): Query<Item>| async move { Json(item) }),
            )
            .route(
                "/p/{n}",
                get(|Path(n): Path<u32>| async move { Json(Item { n }) }),
            )
    }

    async fn call(req: Request<Body>) -> (StatusCode, serde_json::Value) {
        let r = router().oneshot(req).await.unwrap();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn good_input_is_read_and_answered_as_json() {
        let req = Request::post("/items")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"n":3}"#))
            .unwrap();
        assert_eq!(
            call(req).await,
            (StatusCode::OK, serde_json::json!({"n": 3}))
        );
    }

    #[tokio::test]
    async fn every_rejection_is_a_json_400() {
        for req in [
            Request::post("/items")
                .header("content-type", "application/json")
                .body(Body::from("{"))
                .unwrap(),
            Request::post("/items")
                .body(Body::from(r#"{"n":3}"#))
                .unwrap(),
            Request::get("/q?n=minus").body(Body::empty()).unwrap(),
            Request::get("/p/x").body(Body::empty()).unwrap(),
        ] {
            let uri = req.uri().clone();
            let (status, body) = call(req).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(body["error"], "bad_request", "{uri}");
            assert!(
                body["detail"].as_str().is_some_and(|d| !d.is_empty()),
                "{uri}"
            );
        }
    }
}
