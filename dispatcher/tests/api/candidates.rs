//! `GET /v1/orders/{id}/candidates` on the real service (PostgreSQL, RabbitMQ): the courier
//! holding an order is marked current and priced with the others, off-shift couriers say so,
//! the limit holds, refusals are JSON 4xx; and with `ROAD_NETWORK` naming an extract the same
//! service plans and explains on Helsinki's streets.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::app::{TestApp, order_created, spawn_app, spawn_app_on};

/// Waits until the planner gives `order` a courier; its id.
async fn assigned(app: &TestApp, order: &str) -> String {
    let started = Instant::now();
    loop {
        let (_, body) = app
            .staff_request(Method::GET, &format!("/v1/orders/{order}"), None)
            .await;
        if let Some(c) = body["courier_id"].as_str() {
            return c.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{order} not assigned within 10 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn time_of(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().expect("an RFC 3339 time"), &Rfc3339).expect("RFC 3339")
}

#[tokio::test]
async fn the_holder_is_current_the_others_are_priced_and_off_shift_couriers_say_so() {
    let app = spawn_app().await;
    // Both more than the commitment horizon (3 minutes) away, so the order stays movable.
    let (near, _) = app.courier_on_shift("cand-near", 60.1530, 24.9384).await;
    let (far, _) = app.courier_on_shift("cand-far", 60.1400, 24.9384).await;
    let (status, body) = app
        .staff_request(
            Method::POST,
            "/v1/couriers",
            Some(json!({"name": "Resting", "vehicle": "bike", "device_id": "cand-rest"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let resting = body["id"].as_str().unwrap().to_string();
    let (status, body) = app
        .staff_request(Method::POST, "/v1/orders", Some(order_created("o-c1", 0)))
        .await;
    assert_eq!(status, 201, "{body}");
    let holder = assigned(&app, "o-c1").await;
    assert_eq!(holder, near, "the nearer courier takes it");

    let (status, body) = app
        .staff_request(Method::GET, "/v1/orders/o-c1/candidates", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order_id"], "o-c1");
    assert_eq!(body["status"], "assigned");
    assert_eq!(body["courier_id"], near.as_str());
    assert_eq!(body["unassigned_reason"], Value::Null);
    let candidates = body["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2, "{body}");
    assert_eq!(candidates[0]["courier_id"], near.as_str());
    assert_eq!(candidates[0]["current"], true);
    assert_eq!(candidates[0]["name"], "cand-near");
    assert_eq!(candidates[1]["courier_id"], far.as_str());
    assert_eq!(candidates[1]["current"], false);
    assert!(candidates[1]["cost"].as_f64() > candidates[0]["cost"].as_f64());
    for c in candidates {
        assert!(time_of(&c["dropoff_eta"]) > time_of(&c["pickup_eta"]));
        assert!(c["added_travel_s"].as_f64().unwrap() > 0.0);
        assert!(c["dropoff_index"].as_u64() > c["pickup_index"].as_u64());
    }
    assert_eq!(
        body["rejected"],
        json!([{"courier_id": resting, "name": "Resting", "reason": "off_shift"}])
    );

    // The limit counts candidates; the current courier is listed wherever it ranks.
    let (status, body) = app
        .staff_request(Method::GET, "/v1/orders/o-c1/candidates?limit=1", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["candidates"].as_array().unwrap().len(), 1);

    // Refusals.
    for (path, want) in [
        ("/v1/orders/nope/candidates", 404),
        ("/v1/orders/o-c1/candidates?limit=21", 400),
        ("/v1/orders/o-c1/candidates?limit=x", 400),
    ] {
        let (status, body) = app.staff_request(Method::GET, path, None).await;
        assert_eq!(status, want, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    let (_, courier_token) = app.courier_on_shift("cand-other", 60.17, 24.94).await;
    let (status, _) = app
        .request(
            Method::GET,
            "/v1/orders/o-c1/candidates",
            None,
            &courier_token,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .request(
            Method::GET,
            "/v1/orders/o-c1/candidates",
            None,
            "not-a-token",
        )
        .await;
    assert_eq!(status, 401);
    let (status, body) = app
        .staff_request(Method::POST, "/v1/orders/o-c1/cancel", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .staff_request(Method::GET, "/v1/orders/o-c1/candidates", None)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "order_not_open");
    app.finish().await;
}

#[tokio::test]
async fn with_a_road_network_the_service_plans_and_explains_on_the_streets() {
    let extract = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../roads/tests/data/helsinki-centre.osm.pbf");
    let app = spawn_app_on(Some(extract.to_str().unwrap())).await;
    let (courier, _) = app.courier_on_shift("road-1", 60.1700, 24.9390).await;
    let (status, body) = app
        .staff_request(Method::POST, "/v1/orders", Some(order_created("o-r1", 600)))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(assigned(&app, "o-r1").await, courier);
    let (status, body) = app
        .staff_request(Method::GET, "/v1/orders/o-r1/candidates", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let c = &body["candidates"][0];
    assert_eq!(c["courier_id"], courier.as_str());
    // The restaurant is 100 m from the courier as the crow flies; by scooter on the streets
    // the pickup is a little way off, the customer about 1 km further.
    let travel = c["added_travel_s"].as_f64().unwrap();
    assert!((60.0..900.0).contains(&travel), "{travel} s on the streets");
    app.finish().await;
}
