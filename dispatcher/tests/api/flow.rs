//! The service end to end on the real PostgreSQL and RabbitMQ: kitchens' orders in, planned,
//! announced on `dispatch`, moved through their lifecycle by the courier, refused when the
//! lifecycle forbids, waiting with a reason when nobody can take them, and restored after a
//! restart.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::app::{next_event, order_created, spawn_app, start};

#[tokio::test]
async fn an_order_from_a_kitchen_is_assigned_and_announced_within_two_seconds() {
    let app = spawn_app().await;
    let (courier, _) = app.courier_on_shift("phone-1", 60.1700, 24.9390).await;
    let mut events = app.watch_dispatch().await;
    let started = Instant::now();
    let body = serde_json::to_vec(&order_created("o-1", 300)).unwrap();
    app.publish("order.created", Some("m-1"), &body).await;
    let (mut assigned, mut eta) = (None, None);
    while (assigned.is_none() || eta.is_none()) && started.elapsed() < Duration::from_secs(2) {
        let Some((key, id, body)) = next_event(&mut events, Duration::from_secs(2)).await else {
            break;
        };
        assert!(!id.is_empty(), "every event carries a message id");
        match key.as_str() {
            "order.assigned" => assigned = Some(body),
            "order.pickup_eta" => eta = Some(body),
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    let assigned = assigned.expect("order.assigned within 2 s");
    let eta = eta.expect("order.pickup_eta within 2 s");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_eq!(assigned["order_id"], "o-1");
    assert_eq!(assigned["courier_id"], courier.as_str());
    assert!(
        assigned["tracking_id"]
            .as_str()
            .is_some_and(|t| t.len() >= 32)
    );
    assert_eq!(eta["courier_id"], courier.as_str());
    assert!(eta["pickup_eta"].is_string() && eta["cook_start_at"].is_string());
    let (status, order) = app.staff_request(Method::GET, "/v1/orders/o-1", None).await;
    assert_eq!(status, 200);
    assert_eq!(order["status"], "assigned");
    assert_eq!(order["courier_id"], courier.as_str());
    app.finish().await;
}

#[tokio::test]
async fn courier_events_move_an_order_through_its_lifecycle_and_illegal_ones_change_nothing() {
    let app = spawn_app().await;
    let (courier, token) = app.courier_on_shift("phone-2", 60.1700, 24.9390).await;
    let (other, other_token) = app.courier_on_shift("phone-3", 60.2000, 24.9000).await;
    let mut events = app.watch_dispatch().await;
    let (status, body) = app
        .staff_request(Method::POST, "/v1/orders", Some(order_created("o-2", 60)))
        .await;
    assert_eq!(status, 201, "{body}");
    // Make sure the right courier has it, whatever the planner chose.
    let (status, body) = app
        .staff_request(
            Method::POST,
            "/v1/orders/o-2/assign",
            Some(json!({"courier_id": courier})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let path = format!("/v1/couriers/{courier}/events");
    let event =
        |kind: &str, client: &str| json!({"order_id": "o-2", "type": kind, "client_id": client});

    // Delivered before picked up: refused, nothing changes.
    let (status, body) = app
        .request(Method::POST, &path, Some(event("delivered", "e0")), &token)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "illegal_transition");
    // Another courier's order: refused.
    let (status, _) = app
        .request(
            Method::POST,
            &format!("/v1/couriers/{other}/events"),
            Some(event("picked_up", "x1")),
            &other_token,
        )
        .await;
    assert_eq!(status, 409);
    // Acting as another courier with one's own token: forbidden.
    let (status, _) = app
        .request(
            Method::POST,
            &path,
            Some(event("picked_up", "x2")),
            &other_token,
        )
        .await;
    assert_eq!(status, 403);
    let (_, order) = app.staff_request(Method::GET, "/v1/orders/o-2", None).await;
    assert_eq!(order["status"], "assigned");

    for (kind, client) in [("arrived", "e1"), ("picked_up", "e2"), ("delivered", "e3")] {
        let (status, body) = app
            .request(Method::POST, &path, Some(event(kind, client)), &token)
            .await;
        assert_eq!(status, 200, "{kind}: {body}");
    }
    // A resend of the last event is applied once.
    let (status, body) = app
        .request(Method::POST, &path, Some(event("delivered", "e3")), &token)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["duplicate"], true);
    let (_, order) = app.staff_request(Method::GET, "/v1/orders/o-2", None).await;
    assert_eq!(order["status"], "delivered");

    let mut seen = Vec::new();
    while let Some((key, _, body)) = next_event(&mut events, Duration::from_secs(2)).await {
        if body["order_id"] == "o-2" {
            seen.push(key);
        }
        if seen.iter().any(|k| k == "order.delivered") {
            break;
        }
    }
    assert!(seen.iter().any(|k| k == "order.picked_up"), "{seen:?}");
    assert_eq!(
        seen.iter().filter(|k| *k == "order.delivered").count(),
        1,
        "{seen:?}"
    );
    let (status, timeline) = app
        .staff_request(Method::GET, "/v1/orders/o-2/timeline", None)
        .await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> = timeline["entries"]
        .as_array()
        .or_else(|| timeline.as_array())
        .expect("timeline entries")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for k in ["placed", "arrived_pickup", "picked_up", "delivered"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    app.finish().await;
}

#[tokio::test]
async fn with_no_courier_on_shift_orders_stay_open_and_say_why() {
    let app = spawn_app().await;
    for i in 0..3 {
        let body = serde_json::to_vec(&order_created(&format!("w-{i}"), 60)).unwrap();
        app.publish("order.created", Some(&format!("mw-{i}")), &body)
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, order) = app.staff_request(Method::GET, "/v1/orders/w-2", None).await;
        if status == 200 && order["unassigned_reason"] == "no_courier_on_shift" {
            assert_eq!(order["status"], "created");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no reason shown: {status} {order}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, health) = app.staff_request(Method::GET, "/healthz", None).await;
    assert_eq!(status, 200, "{health}");
    app.finish().await;
}

#[tokio::test]
async fn a_restart_restores_open_orders_routes_and_shifts() {
    let mut app = spawn_app().await;
    let (courier, _) = app.courier_on_shift("phone-4", 60.1700, 24.9390).await;
    let (status, _) = app
        .staff_request(Method::POST, "/v1/orders", Some(order_created("o-r", 120)))
        .await;
    assert_eq!(status, 201);
    let deadline = Instant::now() + Duration::from_secs(5);
    let route_before = loop {
        let (status, route) = app
            .staff_request(Method::GET, &format!("/v1/couriers/{courier}/route"), None)
            .await;
        if status == 200 && route["stops"].as_array().is_some_and(|s| s.len() == 2) {
            break route;
        }
        assert!(Instant::now() < deadline, "never planned: {route}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    app.shutdown.cancel();
    if let Some(task) = app.task.take() {
        task.await.expect("the app task").expect("a clean stop");
    }
    let url = app.db.as_ref().unwrap().url.clone();
    let (base, osmand, shutdown, task) = start(&url, &app.topology).await;
    app.base = base;
    app.osmand = osmand;
    app.shutdown = shutdown;
    app.task = Some(task);
    let (_, order) = app.staff_request(Method::GET, "/v1/orders/o-r", None).await;
    assert_eq!(order["status"], "assigned");
    assert_eq!(order["courier_id"], courier.as_str());
    let (_, c) = app
        .staff_request(Method::GET, &format!("/v1/couriers/{courier}"), None)
        .await;
    assert_eq!(c["on_shift"], true, "{c}");
    let (_, route) = app
        .staff_request(Method::GET, &format!("/v1/couriers/{courier}/route"), None)
        .await;
    assert!(
        route["seq"].as_u64() >= route_before["seq"].as_u64(),
        "{route}"
    );
    assert_eq!(route["stops"].as_array().map(Vec::len), Some(2), "{route}");
    app.finish().await;
}

#[tokio::test]
async fn bad_kitchen_messages_are_dead_lettered_with_their_reason() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&order_created("o-d", 60)).unwrap();
    app.publish("order.created", Some("md-1"), &body).await;
    let mut other = order_created("o-d", 60);
    other["dropoff"]["lat"] = json!(60.2);
    app.publish(
        "order.created",
        Some("md-2"),
        &serde_json::to_vec(&other).unwrap(),
    )
    .await;
    app.publish(
        "order.ready",
        Some("md-3"),
        br#"{"order_id":"nobody","ready_at":"2026-12-01T12:00:00Z"}"#,
    )
    .await;
    let mut lat = order_created("o-lat", 60);
    lat["dropoff"]["lat"] = json!(999);
    app.publish(
        "order.created",
        Some("md-4"),
        &serde_json::to_vec(&lat).unwrap(),
    )
    .await;
    let reasons = crate::helpers::dead_reasons(&app.amqp, &app.topology, 3).await;
    assert!(
        reasons.contains(&"order_conflict".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"unknown_order".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"invalid_coordinates".to_string()),
        "{reasons:?}"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_courier_staying_at_the_restaurant_is_recorded_as_arrived_by_gps() {
    let app = spawn_app().await;
    let (courier, _) = app.courier_on_shift("phone-gps", 60.1650, 24.9300).await;
    let (status, _) = app
        .staff_request(Method::POST, "/v1/orders", Some(order_created("g-1", 600)))
        .await;
    assert_eq!(status, 201);
    let (status, body) = app
        .staff_request(
            Method::POST,
            "/v1/orders/g-1/assign",
            Some(json!({"courier_id": courier})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, route) = app
            .staff_request(Method::GET, &format!("/v1/couriers/{courier}/route"), None)
            .await;
        if route["stops"][0]["order_id"] == "g-1" {
            break;
        }
        assert!(Instant::now() < deadline, "never routed: {route}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Two fixes at the restaurant 21 s apart (the dwell time is 20 s), two minutes after the
    // courier's first fix 650 m away, so the tracker's jump filter takes them.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for t in [now + 120, now + 141] {
        let resp = app
            .http
            .get(format!(
                "{}/?id=phone-gps&lat=60.16992&lon=24.93842&timestamp={t}",
                app.osmand
            ))
            .send()
            .await
            .expect("answered");
        assert_eq!(resp.status().as_u16(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, timeline) = app
            .staff_request(Method::GET, "/v1/orders/g-1/timeline", None)
            .await;
        let gps = timeline["entries"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e["kind"] == "arrived_pickup" && e["actor"] == "gps")
        });
        if gps {
            break;
        }
        assert!(Instant::now() < deadline, "no arrival recorded: {timeline}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.finish().await;
}
