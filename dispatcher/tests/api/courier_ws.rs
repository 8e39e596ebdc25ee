//! The courier WebSocket `/v1/courier/ws` against the whole service: routes pushed as the
//! planner makes them, status events applied once and announced, one session per courier,
//! resuming with `since`, and who may connect.

use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::app::{TestApp, next_event, order_created, spawn_app};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The socket's URL for `token`, resuming at `since`.
fn ws_url(app: &TestApp, token: &str, since: Option<u64>) -> String {
    let base = app.base.replacen("http://", "ws://", 1);
    match since {
        Some(s) => format!("{base}/v1/courier/ws?token={token}&since={s}"),
        None => format!("{base}/v1/courier/ws?token={token}"),
    }
}

/// Connects as the courier of `token`.
async fn connect(app: &TestApp, token: &str, since: Option<u64>) -> Socket {
    let (socket, _) = connect_async(ws_url(app, token, since))
        .await
        .expect("the courier socket opens");
    socket
}

/// The next JSON frame within `within` (pings and pongs skipped); `None` on timeout.
async fn next_frame(socket: &mut Socket, within: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()?
            .expect("the socket is open")
            .expect("a readable frame");
        match message {
            Message::Text(text) => return Some(serde_json::from_str(&text).expect("JSON frames")),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Reads frames until one satisfies `wanted`; panics after `within`.
async fn frame_where(
    socket: &mut Socket,
    within: Duration,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_frame(socket, left).await {
            Some(f) if wanted(&f) => return f,
            Some(_) => continue,
            None => panic!("no {what} within {within:?}"),
        }
    }
}

/// Whether `frame` is a route with a stop of `order`.
fn route_with(frame: &Value, order: &str) -> bool {
    frame["type"] == "route"
        && frame["stops"]
            .as_array()
            .is_some_and(|s| s.iter().any(|stop| stop["order_id"] == order))
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .expect("sending a frame");
}

/// Reads the welcome and the first route (or `in_sync`); returns the welcome.
async fn welcome(socket: &mut Socket) -> Value {
    let w = next_frame(socket, Duration::from_secs(5))
        .await
        .expect("a welcome");
    assert_eq!(w["type"], "welcome", "{w}");
    w
}

/// Publishes `order.created` for `id`.
async fn publish_order(app: &TestApp, id: &str) {
    let body = serde_json::to_vec(&order_created(id, 300)).expect("serialises");
    app.publish("order.created", Some(&format!("m-{id}")), &body)
        .await;
}

/// A courier connected with an order on its route: (courier id, token, socket).
async fn courier_with_order(app: &TestApp, device: &str, order: &str) -> (String, String, Socket) {
    let (courier, token) = app.courier_on_shift(device, 60.1699, 24.9384).await;
    let mut socket = connect(app, &token, None).await;
    welcome(&mut socket).await;
    publish_order(app, order).await;
    frame_where(&mut socket, Duration::from_secs(10), "route", |f| {
        route_with(f, order)
    })
    .await;
    (courier, token, socket)
}

async fn event(socket: &mut Socket, client_id: &str, order: &str, event: &str) -> Value {
    send(
        socket,
        json!({"type": "event", "client_id": client_id, "order_id": order, "event": event}),
    )
    .await;
    frame_where(socket, Duration::from_secs(10), "event answer", |f| {
        f["client_id"] == client_id
    })
    .await
}

async fn order_status(app: &TestApp, order: &str) -> String {
    let (status, body) = app
        .staff_request(Method::GET, &format!("/v1/orders/{order}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["status"].as_str().expect("a status").to_string()
}

#[tokio::test]
async fn an_order_published_to_the_kitchen_reaches_the_couriers_socket_within_two_seconds() {
    let app = spawn_app().await;
    let (_, token) = app.courier_on_shift("ws-fast", 60.1699, 24.9384).await;
    let mut socket = connect(&app, &token, None).await;
    welcome(&mut socket).await;
    let first = next_frame(&mut socket, Duration::from_secs(5))
        .await
        .expect("the current route");
    assert_eq!(first["type"], "route", "{first}");

    let published = Instant::now();
    publish_order(&app, "ws-o1").await;
    let route = frame_where(&mut socket, Duration::from_secs(2), "route", |f| {
        route_with(f, "ws-o1")
    })
    .await;
    let took = published.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let stops = route["stops"].as_array().expect("stops");
    let pickup = stops
        .iter()
        .find(|s| s["kind"] == "pickup")
        .expect("a pickup");
    assert_eq!(pickup["restaurant_id"], "r1");
    assert!(pickup["ready_at"].is_string() && pickup["eta"].is_string());
    assert!(pickup["lat"].is_f64() && pickup["departs_at"].is_string());
    let dropoff = stops
        .iter()
        .find(|s| s["kind"] == "dropoff")
        .expect("a drop-off");
    assert!(dropoff["restaurant_id"].is_null());
    assert!(route["seq"].as_u64().expect("a seq") >= 1);
    app.finish().await;
}

#[tokio::test]
async fn picked_up_and_delivered_frames_update_the_order_and_are_announced_on_dispatch() {
    let app = spawn_app().await;
    let mut watch = app.watch_dispatch().await;
    let (_, _, mut socket) = courier_with_order(&app, "ws-flow", "ws-o2").await;

    let ok = event(&mut socket, "e-1", "ws-o2", "picked_up").await;
    assert_eq!(
        ok,
        json!({"type": "event_ok", "client_id": "e-1", "order_id": "ws-o2",
               "status": "picked_up", "duplicate": false})
    );
    assert_eq!(order_status(&app, "ws-o2").await, "picked_up");
    let ok = event(&mut socket, "e-2", "ws-o2", "delivered").await;
    assert_eq!(ok["type"], "event_ok", "{ok}");
    assert_eq!(ok["status"], "delivered");
    assert_eq!(order_status(&app, "ws-o2").await, "delivered");

    let mut seen = Vec::new();
    while !(seen.contains(&"order.picked_up".to_string())
        && seen.contains(&"order.delivered".to_string()))
    {
        let (key, _, body) = next_event(&mut watch, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("only {seen:?} on dispatch"));
        if body["order_id"] == "ws-o2" {
            seen.push(key);
        }
    }
    app.finish().await;
}

#[tokio::test]
async fn delivered_before_picked_up_gets_an_error_frame_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, _, mut socket) = courier_with_order(&app, "ws-illegal", "ws-o3").await;
    let before = order_status(&app, "ws-o3").await;
    assert_eq!(before, "assigned");

    let refused = event(&mut socket, "e-9", "ws-o3", "delivered").await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["error"], "illegal_transition");
    assert!(refused["detail"].is_string());
    assert_eq!(order_status(&app, "ws-o3").await, "assigned");
    let (_, timeline) = app
        .staff_request(Method::GET, "/v1/orders/ws-o3/timeline", None)
        .await;
    assert!(
        timeline["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .all(|e| e["kind"] != "delivered"),
        "{timeline}"
    );

    // Another courier's order is refused with REST's code too.
    let (_, other) = app.courier_on_shift("ws-other", 60.1699, 24.9384).await;
    let mut theirs = connect(&app, &other, None).await;
    welcome(&mut theirs).await;
    let refused = event(&mut theirs, "e-10", "ws-o3", "picked_up").await;
    assert_eq!(refused["error"], "not_your_order", "{refused}");
    // And so is a frame that is not JSON.
    theirs
        .send(Message::Text("{not json".into()))
        .await
        .expect("sending");
    let refused = frame_where(&mut theirs, Duration::from_secs(5), "error", |f| {
        f["type"] == "error"
    })
    .await;
    assert_eq!(refused["error"], "bad_json");
    assert!(refused["client_id"].is_null());
    assert_eq!(order_status(&app, "ws-o3").await, "assigned");
    app.finish().await;
}

#[tokio::test]
async fn a_couriers_socket_never_sees_another_couriers_route() {
    let app = spawn_app().await;
    // Two couriers 30 km apart, each beside one restaurant.
    let (a, a_token) = app.courier_on_shift("ws-a", 60.1699, 24.9384).await;
    let (b, b_token) = app.courier_on_shift("ws-b", 60.4500, 24.9384).await;
    let mut a_socket = connect(&app, &a_token, None).await;
    let mut b_socket = connect(&app, &b_token, None).await;
    welcome(&mut a_socket).await;
    welcome(&mut b_socket).await;
    let mut far = order_created("ws-ob", 300);
    far["restaurant"] = json!({"id": "r2", "lat": 60.4510, "lon": 24.9390});
    far["dropoff"] = json!({"lat": 60.4550, "lon": 24.9450});
    publish_order(&app, "ws-oa").await;
    let body = serde_json::to_vec(&far).expect("serialises");
    app.publish("order.created", Some("m-ws-ob"), &body).await;

    // Both orders assigned.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, oa) = app
            .staff_request(Method::GET, "/v1/orders/ws-oa", None)
            .await;
        let (_, ob) = app
            .staff_request(Method::GET, "/v1/orders/ws-ob", None)
            .await;
        if oa["courier_id"].is_string() && ob["courier_id"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "not assigned: {oa} {ob}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    for (courier, socket) in [(&a, &mut a_socket), (&b, &mut b_socket)] {
        let mut last = None;
        while let Some(f) = next_frame(socket, Duration::from_millis(500)).await {
            if f["type"] == "route" {
                last = Some(f);
            }
        }
        let ever: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT order_id FROM assignments WHERE courier_id = $1")
                .bind(courier)
                .fetch_all(app.pool())
                .await
                .expect("reading assignments");
        let ever: Vec<String> = ever.into_iter().map(|(o,)| o).collect();
        let (_, current) = app
            .staff_request(Method::GET, &format!("/v1/couriers/{courier}/route"), None)
            .await;
        let ids = |route: &Value| -> Vec<String> {
            route["stops"]
                .as_array()
                .expect("stops")
                .iter()
                .map(|s| s["order_id"].as_str().expect("an id").to_string())
                .collect()
        };
        if let Some(last) = &last {
            for id in ids(last) {
                assert!(
                    ever.contains(&id),
                    "courier {courier} was shown order {id}, never its own"
                );
            }
            assert_eq!(last["seq"], current["seq"], "{last} vs {current}");
            assert_eq!(ids(last), ids(&current));
        } else {
            assert!(ids(&current).is_empty(), "{current}");
        }
    }
    let owner = |o: &str| {
        let app = &app;
        let o = o.to_string();
        async move {
            app.staff_request(Method::GET, &format!("/v1/orders/{o}"), None)
                .await
                .1["courier_id"]
                .clone()
        }
    };
    // Nearest courier takes each; each saw only its own.
    assert_eq!(owner("ws-oa").await, a.as_str());
    assert_eq!(owner("ws-ob").await, b.as_str());
    app.finish().await;
}

#[tokio::test]
async fn a_resent_event_with_the_same_client_id_answers_duplicate() {
    let app = spawn_app().await;
    let (_, _, mut socket) = courier_with_order(&app, "ws-dup", "ws-o4").await;
    let first = event(&mut socket, "tap-1", "ws-o4", "picked_up").await;
    assert_eq!(first["duplicate"], false, "{first}");
    let again = event(&mut socket, "tap-1", "ws-o4", "picked_up").await;
    assert_eq!(again["type"], "event_ok", "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["status"], "picked_up");
    let (_, timeline) = app
        .staff_request(Method::GET, "/v1/orders/ws-o4/timeline", None)
        .await;
    let picked = timeline["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["kind"] == "picked_up")
        .count();
    assert_eq!(picked, 1, "{timeline}");
    app.finish().await;
}

#[tokio::test]
async fn a_second_connection_replaces_the_first() {
    let app = spawn_app().await;
    let (_, token) = app.courier_on_shift("ws-twice", 60.1699, 24.9384).await;
    let mut first = connect(&app, &token, None).await;
    welcome(&mut first).await;
    let mut second = connect(&app, &token, None).await;
    welcome(&mut second).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let message = tokio::time::timeout_at(deadline, first.next())
            .await
            .expect("the first connection is closed in time");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 4000);
                assert_eq!(frame.reason.as_str(), "replaced");
                break;
            }
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    // The second one still answers.
    send(&mut second, json!({"type": "hello"})).await;
    let refused = frame_where(&mut second, Duration::from_secs(5), "error", |f| {
        f["type"] == "error"
    })
    .await;
    assert_eq!(refused["error"], "unknown_type");
    app.finish().await;
}

#[tokio::test]
async fn since_at_the_current_version_answers_in_sync() {
    let app = spawn_app().await;
    let (_, token, mut socket) = courier_with_order(&app, "ws-since", "ws-o5").await;
    socket.close(None).await.expect("closing");
    // The version the server holds now (the planner may have re-timed the route meanwhile).
    let mut again = connect(&app, &token, None).await;
    let seq = welcome(&mut again).await["seq"].as_u64().expect("a seq");
    assert!(seq >= 1);
    let mut resumed = connect(&app, &token, Some(seq)).await;
    let w = welcome(&mut resumed).await;
    let next = next_frame(&mut resumed, Duration::from_secs(5))
        .await
        .expect("a frame after the welcome");
    if w["seq"] == seq {
        assert_eq!(next, json!({"type": "in_sync", "seq": seq}));
    } else {
        // A newer version was made in between: it is sent instead.
        assert_eq!(next["type"], "route", "{next}");
    }
    let mut behind = connect(&app, &token, Some(seq - 1)).await;
    welcome(&mut behind).await;
    let route = next_frame(&mut behind, Duration::from_secs(5))
        .await
        .expect("the current route");
    assert!(route_with(&route, "ws-o5"), "{route}");
    app.finish().await;
}

async fn refused_status(url: String) -> u16 {
    match connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("the socket opened"),
    }
}

#[tokio::test]
async fn a_socket_without_a_token_is_refused_with_401_and_a_staff_token_with_403() {
    let app = spawn_app().await;
    let base = app.base.replacen("http://", "ws://", 1);
    assert_eq!(refused_status(format!("{base}/v1/courier/ws")).await, 401);
    assert_eq!(
        refused_status(format!("{base}/v1/courier/ws?token=nonsense")).await,
        401
    );
    assert_eq!(refused_status(ws_url(&app, &app.staff, None)).await, 403);
    app.finish().await;
}
