//! The OpenAPI 3 document of every `/v1` route (plus `/healthz`), generated from the handlers'
//! `#[utoipa::path]` attributes and the DTOs' schemas, served at `/openapi.json`.
//!
//! Answers every route can give are added here once rather than on each handler: 400 for a
//! malformed request, 401 without a valid token (under `/v1`), and 503 while storage is down,
//! each with the error body.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;
use super::{candidates, couriers, health, orders, support, track};
use service::extract::Json;

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Courier dispatch",
        description = "Orders, couriers, routes and the support tool. Every error is JSON \
                       `{\"error\": code, \"detail\": text}`."
    ),
    paths(
        couriers::create_courier,
        couriers::list_couriers,
        couriers::get_courier,
        couriers::set_shift,
        couriers::get_route,
        couriers::post_event,
        couriers::create_courier_token,
        orders::create_order,
        orders::list_orders,
        orders::get_order,
        orders::cancel_order,
        support::timeline,
        support::assign,
        support::pin,
        support::unpin,
        support::unassign,
        support::fail,
        support::amend_order,
        candidates::candidates,
        health::healthz,
        track::track,
        track::events,
    ),
    components(schemas(ErrorBody)),
    modifiers(&CommonAnswers),
    security(("bearer" = [])),
    tags(
        (name = "couriers", description = "Registration, shifts, routes and status events."),
        (name = "orders", description = "Placing, reading, listing and cancelling orders."),
        (name = "support", description = "The staff's timeline, corrections and candidates."),
        (name = "health", description = "Whether the service answers."),
        (name = "tracking", description = "The customer's tracking link (no token)."),
    )
)]
pub struct ApiDoc;

/// Adds the bearer scheme and the answers every operation can give.
struct CommonAnswers;

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
        .into()
}

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("An API token: `Authorization: Bearer TOKEN`."))
                        .build(),
                ),
            );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let v1 = path.starts_with("/v1/");
            let public = path.starts_with("/v1/track/");
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                let answers = &mut op.responses.responses;
                if v1 {
                    answers
                        .entry("400".into())
                        .or_insert_with(|| error_response("The request is malformed."));
                    if !public {
                        answers
                            .entry("401".into())
                            .or_insert_with(|| error_response("No valid bearer token."));
                    }
                    answers
                        .entry("503".into())
                        .or_insert_with(|| error_response("Storage is unavailable; retry later."));
                }
            }
        }
    }
}

/// The OpenAPI document.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
