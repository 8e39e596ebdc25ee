//! The customer's tracking link on the real service: the courier's position only while it is
//! on the way to this order's drop-off, nothing for unknown ids.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::app::{TestApp, order_created, spawn_app};

async fn track(app: &TestApp, tracking_id: &str) -> (u16, Value) {
    let resp = app
        .http
        .get(format!("{}/v1/track/{tracking_id}", app.base))
        .send()
        .await
        .expect("answered");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_tracking_link_shows_the_courier_only_during_this_orders_delivery() {
    let app = spawn_app().await;
    let (courier, token) = app.courier_on_shift("phone-t", 60.1700, 24.9390).await;
    let (status, _) = app
        .staff_request(Method::POST, "/v1/orders", Some(order_created("t-1", 30)))
        .await;
    assert_eq!(status, 201);
    let (_, order) = app.staff_request(Method::GET, "/v1/orders/t-1", None).await;
    let tracking = order["tracking_id"]
        .as_str()
        .expect("staff see the tracking id")
        .to_string();

    let (status, view) = track(&app, &tracking).await;
    assert_eq!(status, 200, "{view}");
    assert!(
        view["courier"].is_null(),
        "no courier before pickup: {view}"
    );
    assert!(view.get("courier_id").is_none() && view.get("tracking_id").is_none());

    let (status, _) = app
        .staff_request(
            Method::POST,
            "/v1/orders/t-1/assign",
            Some(json!({"courier_id": courier})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, view) = track(&app, &tracking).await;
    assert!(
        view["courier"].is_null(),
        "on the way to the restaurant is not on the way here"
    );

    let events = format!("/v1/couriers/{courier}/events");
    let (status, body) = app
        .request(
            Method::POST,
            &events,
            Some(json!({"order_id": "t-1", "type": "picked_up", "client_id": "t1"})),
            &token,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let view = loop {
        let (_, view) = track(&app, &tracking).await;
        if view["courier"].is_object() {
            break view;
        }
        assert!(
            Instant::now() < deadline,
            "the courier never showed: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(view["status"], "picked_up");
    assert!((view["courier"]["lat"].as_f64().unwrap() - 60.17).abs() < 0.01);

    // The live counterpart starts with the same view.
    let resp = app
        .http
        .get(format!("{}/v1/track/{tracking}/events", app.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut resp = resp;
    let first = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
        .await
        .expect("an event soon")
        .expect("readable")
        .expect("a chunk");
    let text = String::from_utf8_lossy(&first);
    assert!(
        text.contains("event: update") && text.contains("picked_up"),
        "{text}"
    );

    let (status, _) = app
        .request(
            Method::POST,
            &events,
            Some(json!({"order_id": "t-1", "type": "delivered", "client_id": "t2"})),
            &token,
        )
        .await;
    assert_eq!(status, 200);
    let (_, view) = track(&app, &tracking).await;
    assert_eq!(view["status"], "delivered");
    assert!(
        view["courier"].is_null(),
        "delivered: the courier is private again"
    );

    let (status, body) = track(&app, "0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
    let (status, _) = track(&app, "not..valid").await;
    assert_eq!(status, 404);
    app.finish().await;
}
