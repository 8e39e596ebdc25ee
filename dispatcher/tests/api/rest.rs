//! The REST API on the in-memory store: roles, orders, courier events, corrections, lists,
//! malformed requests and the OpenAPI document, driven through the router with `oneshot`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use dispatcher::api::{ApiState, HealthCheck, router};
use dispatcher::dispatch::{Dispatch, NewCourier};
use dispatcher::records::Actor;
use dispatcher::store::MemoryStore;
use futures::future::BoxFuture;
use optimizer::model::{Coordinates, CourierId, RestaurantId, VehicleKind};
use serde_json::{Value, json};
use service::auth::{Principal, StaticTokens};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;
use tracker::{LatestPosition, LatestPositions};

/// Health checks answering what the test says.
struct Checks(Vec<(&'static str, bool)>);

impl HealthCheck for Checks {
    fn check(&self) -> BoxFuture<'_, Vec<(&'static str, bool)>> {
        Box::pin(async move { self.0.clone() })
    }
}

/// The router on a fresh in-memory store, with two couriers on shift and these tokens:
/// `staff`, `kitchen` (restaurant `r1`), `kitchen2` (restaurant `r2`), `alice`, `bob`.
struct App {
    router: Router,
    dispatch: Dispatch,
    positions: Arc<LatestPositions>,
    alice: CourierId,
    bob: CourierId,
}

async fn app_with(checks: Vec<(&'static str, bool)>) -> App {
    let dispatch = Dispatch::load(Arc::new(MemoryStore::new()))
        .await
        .expect("the memory store loads");
    let mut ids = Vec::new();
    for (name, device) in [("Alice", "dev-alice"), ("Bob", "dev-bob")] {
        let courier = dispatch
            .register_courier(NewCourier {
                name: name.into(),
                vehicle: VehicleKind::Bike,
                device_id: device.into(),
                capacity: None,
            })
            .await
            .expect("registering a courier");
        dispatch
            .set_shift(&courier.id, true, Actor::System)
            .await
            .expect("starting a shift");
        ids.push(courier.id);
    }
    let (alice, bob) = (ids[0].clone(), ids[1].clone());
    let restaurant = |r: &str| RestaurantId::parse(r).unwrap();
    let tokens = HashMap::from([
        ("staff".to_string(), Principal::Staff),
        (
            "kitchen".to_string(),
            Principal::Kitchen {
                restaurants: vec![restaurant("r1")],
            },
        ),
        (
            "kitchen2".to_string(),
            Principal::Kitchen {
                restaurants: vec![restaurant("r2")],
            },
        ),
        ("alice".to_string(), Principal::Courier(alice.clone())),
        ("bob".to_string(), Principal::Courier(bob.clone())),
    ]);
    let positions = Arc::new(LatestPositions::new());
    let router = router(ApiState {
        dispatch: dispatch.clone(),
        verifier: Arc::new(StaticTokens(tokens)),
        positions: positions.clone(),
        health: Arc::new(Checks(checks)),
        metrics: None,
    });
    App {
        router,
        dispatch,
        positions,
        alice,
        bob,
    }
}

async fn app() -> App {
    app_with(vec![("database", true)]).await
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// An `order.created` body for restaurant `restaurant`, placed `minutes_ago`.
fn order_body(id: &str, restaurant: &str, minutes_ago: i64) -> Value {
    let placed = OffsetDateTime::now_utc() - Duration::minutes(minutes_ago);
    json!({
        "order_id": id,
        "restaurant": {"id": restaurant, "lat": 52.52, "lon": 13.405},
        "dropoff": {"lat": 52.53, "lon": 13.42},
        "placed_at": rfc3339(placed),
        "ready_at": rfc3339(placed + Duration::minutes(10)),
        "deliver_by": rfc3339(placed + Duration::minutes(45)),
    })
}

impl App {
    async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        (status, body)
    }

    async fn call(
        &self,
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
        self.send(req).await
    }

    async fn get(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call("GET", uri, Some(token), None).await
    }

    async fn post(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, Some(token), Some(body)).await
    }

    /// Places an order as staff and gives it to `courier`.
    async fn assigned_order(&self, id: &str, courier: &CourierId) {
        let (s, b) = self
            .post("/v1/orders", "staff", order_body(id, "r1", 5))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let (s, b) = self
            .post(
                &format!("/v1/orders/{id}/assign"),
                "staff",
                json!({"courier_id": courier.as_str()}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["courier_id"], courier.as_str());
    }
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert!(body["error"].is_string(), "no error code in {body}");
    assert!(body["detail"].is_string(), "no detail in {body}");
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_with_401() {
    let app = app().await;
    for token in [None, Some("nonsense")] {
        for (method, uri) in [
            ("GET", "/v1/orders"),
            ("GET", "/v1/couriers"),
            ("POST", "/v1/orders/x/cancel"),
        ] {
            let (s, b) = app.call(method, uri, token, None).await;
            assert_error(s, &b, StatusCode::UNAUTHORIZED);
        }
    }
}

#[tokio::test]
async fn a_courier_sees_only_its_own_route_and_orders() {
    let app = app().await;
    app.assigned_order("o-bob", &app.bob).await;
    let bob = app.bob.as_str();
    let alice = app.alice.as_str();

    let (s, b) = app.get(&format!("/v1/couriers/{bob}/route"), "alice").await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    let (s, b) = app.get(&format!("/v1/couriers/{bob}"), "alice").await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    let (s, b) = app.get("/v1/couriers", "alice").await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    let (s, b) = app.get("/v1/orders/o-bob", "alice").await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    let (s, b) = app.get(&format!("/v1/orders?courier={bob}"), "alice").await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    let (s, b) = app.get("/v1/orders", "alice").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["orders"], json!([]));
    let (s, b) = app
        .post(
            "/v1/couriers",
            "alice",
            json!({"name": "Eve", "vehicle": "car", "device_id": "e"}),
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN);

    let (s, b) = app.get(&format!("/v1/couriers/{bob}/route"), "bob").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["courier_id"], bob);
    let (s, b) = app.get("/v1/orders/o-bob", "bob").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b.get("tracking_id").is_none(),
        "a courier sees no tracking id: {b}"
    );
    let (s, b) = app
        .get(&format!("/v1/couriers/{alice}/route"), "staff")
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app.get("/v1/orders/o-bob", "kitchen").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["tracking_id"].is_string(), "{b}");
}

#[tokio::test]
async fn a_kitchen_places_and_sees_only_its_restaurants_orders() {
    let app = app().await;
    let (s, b) = app
        .post("/v1/orders", "kitchen", order_body("k-1", "r1", 3))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .post("/v1/orders", "kitchen", order_body("k-2", "r2", 3))
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    let (s, b) = app
        .post("/v1/orders", "alice", order_body("k-3", "r1", 3))
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    let (s, _) = app
        .post("/v1/orders", "kitchen2", order_body("k-4", "r2", 3))
        .await;
    assert_eq!(s, StatusCode::CREATED);

    let (s, b) = app.get("/v1/orders/k-1", "kitchen2").await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    let (s, b) = app.get("/v1/orders", "kitchen").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let ids: Vec<&str> = b["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["k-1"]);
    let (s, b) = app.get("/v1/orders?restaurant=r2", "kitchen").await;
    assert_error(s, &b, StatusCode::FORBIDDEN);

    let (s, b) = app
        .call("POST", "/v1/orders/k-1/cancel", Some("kitchen2"), None)
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    let (s, b) = app
        .call("POST", "/v1/orders/k-1/cancel", Some("kitchen"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "cancelled");
}

#[tokio::test]
async fn an_order_is_created_read_back_and_resent_idempotently() {
    let app = app().await;
    let body = order_body("o-1", "r1", 2);
    let (s, created) = app.post("/v1/orders", "staff", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], "o-1");
    assert_eq!(created["status"], "created");
    assert_eq!(created["courier_id"], Value::Null);
    assert_eq!(created["restaurant"], json!({"lat": 52.52, "lon": 13.405}));
    assert!(created["tracking_id"].is_string());
    assert_eq!(created["late"], false);

    let (s, read) = app.get("/v1/orders/o-1", "staff").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(read["id"], "o-1");
    assert_eq!(read["placed_at"], body["placed_at"]);
    assert_eq!(read["tracking_id"], created["tracking_id"]);

    let (s, again) = app.post("/v1/orders", "staff", body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["tracking_id"], created["tracking_id"]);

    let mut other = body;
    other["dropoff"] = json!({"lat": 52.0, "lon": 13.0});
    let (s, b) = app.post("/v1/orders", "staff", other).await;
    assert_error(s, &b, StatusCode::CONFLICT);

    let (s, b) = app.get("/v1/orders/nope", "staff").await;
    assert_error(s, &b, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_courier_reports_arrived_picked_up_and_delivered_and_an_illegal_event_changes_nothing() {
    let app = app().await;
    app.assigned_order("o-life", &app.alice).await;
    let alice = app.alice.as_str();
    let bob = app.bob.as_str();
    let events = format!("/v1/couriers/{alice}/events");

    let (s, b) = app
        .post(
            &events,
            "alice",
            json!({"order_id": "o-life", "type": "delivered"}),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT);
    let (_, order) = app.get("/v1/orders/o-life", "staff").await;
    assert_eq!(order["status"], "assigned");
    assert_eq!(order["delivered_at"], Value::Null);

    let (s, b) = app
        .post(
            &events,
            "bob",
            json!({"order_id": "o-life", "type": "arrived"}),
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    let (s, b) = app
        .post(
            &format!("/v1/couriers/{bob}/events"),
            "bob",
            json!({"order_id": "o-life", "type": "arrived"}),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT);

    let (s, b) = app
        .post(
            &events,
            "alice",
            json!({"order_id": "o-life", "type": "arrived", "client_id": "e1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "assigned");
    assert_eq!(b["duplicate"], false);
    let (s, b) = app
        .post(
            &events,
            "alice",
            json!({"order_id": "o-life", "type": "picked_up", "client_id": "e2"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "picked_up");
    let (s, b) = app
        .post(
            &events,
            "alice",
            json!({"order_id": "o-life", "type": "picked_up", "client_id": "e2"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["duplicate"], true);
    assert_eq!(b["status"], "picked_up");
    let (s, b) = app
        .post(
            &events,
            "alice",
            json!({"order_id": "o-life", "type": "delivered", "client_id": "e3"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "delivered");
    assert!(b["delivered_at"].is_string(), "{b}");

    let (s, order) = app.get("/v1/orders/o-life", "staff").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(order["status"], "delivered");
    let (_, timeline) = app.get("/v1/orders/o-life/timeline", "staff").await;
    let kinds: Vec<&str> = timeline["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"picked_up") && kinds.contains(&"delivered"),
        "{kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| **k == "picked_up").count(), 1);
}

#[tokio::test]
async fn corrections_appear_in_the_timeline_with_the_staff_actor() {
    let app = app().await;
    app.assigned_order("o-fix", &app.alice).await;
    let (s, b) = app
        .call("POST", "/v1/orders/o-fix/pin", Some("staff"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["pinned"], true);
    let (s, b) = app
        .call("POST", "/v1/orders/o-fix/unpin", Some("staff"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["pinned"], false);
    let ready = rfc3339(OffsetDateTime::now_utc() + Duration::minutes(20));
    let (s, b) = app
        .call(
            "PATCH",
            "/v1/orders/o-fix",
            Some("staff"),
            Some(json!({"ready_at": ready, "deliver_by": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["deliver_by"], Value::Null);
    let (s, b) = app
        .call("POST", "/v1/orders/o-fix/unassign", Some("staff"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["courier_id"], Value::Null);
    let (s, b) = app
        .post(
            "/v1/orders/o-fix/fail",
            "staff",
            json!({"reason": "customer moved away"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "failed");

    let (s, b) = app
        .call("POST", "/v1/orders/o-fix/pin", Some("kitchen"), None)
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    let (s, b) = app.get("/v1/orders/o-fix/timeline", "kitchen").await;
    assert_error(s, &b, StatusCode::FORBIDDEN);

    let (s, timeline) = app.get("/v1/orders/o-fix/timeline", "staff").await;
    assert_eq!(s, StatusCode::OK, "{timeline}");
    let entries = timeline["entries"].as_array().unwrap();
    for kind in [
        "assigned",
        "pinned",
        "unpinned",
        "amended",
        "unassigned",
        "failed",
    ] {
        let entry = entries
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} entry in {timeline}"));
        assert_eq!(entry["actor"], "staff:staff", "{entry}");
        assert!(entry["at"].is_string());
    }
    let (s, b) = app.get("/v1/orders/nope/timeline", "staff").await;
    assert_error(s, &b, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_order_list_filters_and_pages_with_an_opaque_cursor() {
    let app = app().await;
    for i in 0..5 {
        let (s, b) = app
            .post(
                "/v1/orders",
                "staff",
                order_body(&format!("p-{i}"), "r1", 30 - i),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (s, _) = app
        .post("/v1/orders", "staff", order_body("p-other", "r2", 1))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = app
        .post(
            "/v1/orders/p-1/assign",
            "staff",
            json!({"courier_id": app.bob.as_str()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let mut seen = Vec::new();
    let mut uri = "/v1/orders?restaurant=r1&limit=2".to_string();
    loop {
        let (s, page) = app.get(&uri, "staff").await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let orders = page["orders"].as_array().unwrap();
        assert!(orders.len() <= 2);
        seen.extend(orders.iter().map(|o| o["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/orders?restaurant=r1&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["p-4", "p-3", "p-2", "p-1", "p-0"]);

    let (_, b) = app.get("/v1/orders?status=assigned", "staff").await;
    let ids: Vec<&str> = b["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["p-1"]);
    let bob = app.bob.as_str();
    let (_, b) = app.get(&format!("/v1/orders?courier={bob}"), "staff").await;
    assert_eq!(b["orders"].as_array().unwrap().len(), 1);
    let (_, b) = app.get("/v1/orders", "bob").await;
    assert_eq!(b["orders"].as_array().unwrap().len(), 1);
    let (_, b) = app.get("/v1/orders?status=created,assigned", "staff").await;
    assert_eq!(b["orders"].as_array().unwrap().len(), 6);
    let (_, b) = app.get("/v1/orders?late=true", "staff").await;
    assert_eq!(b["orders"], json!([]));
    let (_, b) = app.get("/v1/orders?late=false&limit=200", "staff").await;
    assert_eq!(b["orders"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn malformed_requests_are_answered_with_a_json_400() {
    let app = app().await;
    let good = order_body("m-1", "r1", 1);
    let mut unknown_field = good.clone();
    unknown_field["colour"] = json!("red");
    let mut wrong_type = good.clone();
    wrong_type["size"] = json!("big");
    let mut out_of_range = good.clone();
    out_of_range["dropoff"] = json!({"lat": 123.0, "lon": 13.0});
    let mut ready_before_placed = good.clone();
    ready_before_placed["ready_at"] = json!("2001-01-01T00:00:00Z");
    for body in [
        unknown_field,
        wrong_type,
        out_of_range,
        ready_before_placed,
        json!([1]),
    ] {
        let (s, b) = app.post("/v1/orders", "staff", body.clone()).await;
        assert_error(s, &b, StatusCode::BAD_REQUEST);
    }
    let raw = |uri: &str, content_type: Option<&str>, body: &str| {
        let mut req = Request::post(uri).header(header::AUTHORIZATION, "Bearer staff");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        req.body(Body::from(body.to_string())).unwrap()
    };
    let good_text = good.to_string();
    for req in [
        raw("/v1/orders", None, &good_text),
        raw("/v1/orders", Some("text/plain"), &good_text),
        raw("/v1/orders", Some("application/json"), "{\"order_id\":"),
        raw(
            "/v1/couriers",
            Some("application/json"),
            r#"{"name":"A","vehicle":"rocket","device_id":"d"}"#,
        ),
        raw(
            "/v1/couriers",
            Some("application/json"),
            r#"{"name":"A","vehicle":"car","device_id":"d","capacity":-1}"#,
        ),
        raw(
            "/v1/couriers",
            Some("application/json"),
            r#"{"name":"A","vehicle":"car","device_id":"d","capacity":0}"#,
        ),
        raw(
            "/v1/couriers",
            Some("application/json"),
            r#"{"name":"","vehicle":"car","device_id":"d"}"#,
        ),
    ] {
        let uri = req.uri().clone();
        let (s, b) = app.send(req).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {b}");
        assert!(
            b["error"].is_string() && b["detail"].is_string(),
            "{uri}: {b}"
        );
    }
    let alice = app.alice.as_str();
    let (s, b) = app
        .post(
            &format!("/v1/couriers/{alice}/shift"),
            "staff",
            json!({"state": "maybe"}),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST);
    let (s, b) = app
        .post(
            &format!("/v1/couriers/{alice}/events"),
            "alice",
            json!({"order_id": "m-1", "type": "failed"}),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST);
    for uri in [
        "/v1/orders?limit=0",
        "/v1/orders?limit=x",
        "/v1/orders?status=lost",
        "/v1/orders?late=perhaps",
        "/v1/orders?cursor=zz",
    ] {
        let (s, b) = app.get(uri, "staff").await;
        assert_error(s, &b, StatusCode::BAD_REQUEST);
    }
    let (s, b) = app
        .call(
            "PATCH",
            "/v1/orders/m-1",
            Some("staff"),
            Some(json!({"ready_at": "soon"})),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST);
    let (s, b) = app.get("/v1/nowhere", "staff").await;
    assert_error(s, &b, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn couriers_are_registered_and_show_status_and_position() {
    let app = app().await;
    let (s, created) = app
        .post(
            "/v1/couriers",
            "staff",
            json!({"name": "Carol", "vehicle": "scooter", "device_id": "dev-carol", "capacity": 3}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["vehicle"], "scooter");
    assert_eq!(created["capacity"], 3);
    assert_eq!(created["on_shift"], false);
    assert_eq!(created["status"], "offline");
    assert_eq!(created["position"], Value::Null);
    let (s, b) = app
        .post(
            "/v1/couriers",
            "staff",
            json!({"name": "Dave", "vehicle": "car", "device_id": "dev-carol"}),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT);

    let now = OffsetDateTime::now_utc();
    app.positions.offer(LatestPosition {
        courier_id: app.alice.clone(),
        coords: Coordinates::parse(52.5, 13.4).unwrap(),
        at: now,
        speed_mps: Some(4.0),
        heading_deg: Some(90.0),
        accuracy_m: None,
    });
    let alice = app.alice.as_str();
    let (s, b) = app.get(&format!("/v1/couriers/{alice}"), "alice").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "idle");
    assert_eq!(b["on_shift"], true);
    assert_eq!(b["position"]["lat"], 52.5);
    assert_eq!(b["position"]["heading"], 90.0);
    assert_eq!(b["position"]["at"], rfc3339(now));

    let (s, list) = app.get("/v1/couriers", "staff").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let couriers = list["couriers"].as_array().unwrap();
    assert_eq!(couriers.len(), 3);
    let bob = couriers
        .iter()
        .find(|c| c["id"] == app.bob.as_str())
        .unwrap();
    assert_eq!(bob["status"], "offline", "no position: offline");

    let (s, b) = app
        .post(
            &format!("/v1/couriers/{alice}/shift"),
            "alice",
            json!({"state": "off"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["on_shift"], false);
    assert_eq!(b["status"], "offline");
    let courier = app
        .dispatch
        .read(|s| s.courier(&app.alice).cloned())
        .unwrap();
    assert!(!courier.on_shift);
    let (s, b) = app.get("/v1/couriers/unknown-courier", "staff").await;
    assert_error(s, &b, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_is_ok_until_a_dependency_fails() {
    let app = app().await;
    let (s, b) = app.call("GET", "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, json!({"status": "ok", "checks": {"database": true}}));

    let down = app_with(vec![("database", true), ("broker", false)]).await;
    let response = down
        .router
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));

    let response = app
        .router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = app().await;
    let (s, doc) = app.call("GET", "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, methods) in [
        ("/v1/couriers", &["get", "post"][..]),
        ("/v1/couriers/{id}", &["get"]),
        ("/v1/couriers/{id}/shift", &["post"]),
        ("/v1/couriers/{id}/route", &["get"]),
        ("/v1/couriers/{id}/events", &["post"]),
        ("/v1/orders", &["get", "post"]),
        ("/v1/orders/{id}", &["get", "patch"]),
        ("/v1/orders/{id}/cancel", &["post"]),
        ("/v1/orders/{id}/timeline", &["get"]),
        ("/v1/orders/{id}/assign", &["post"]),
        ("/v1/orders/{id}/pin", &["post"]),
        ("/v1/orders/{id}/unpin", &["post"]),
        ("/v1/orders/{id}/unassign", &["post"]),
        ("/v1/orders/{id}/fail", &["post"]),
    ] {
        for method in methods {
            let op = &doc["paths"][path][method];
            assert!(op.is_object(), "{method} {path} is not documented");
            for code in ["400", "401"] {
                assert!(
                    op["responses"][code].is_object(),
                    "{method} {path} lacks {code}"
                );
            }
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["schemas"]["OrderView"].is_object());
}
