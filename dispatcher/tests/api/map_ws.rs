//! The map WebSocket: snapshot then deltas for staff, refusals for others, and slow clients
//! that neither delay the others nor grow the server's memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dispatcher::dispatch::{Dispatch, NewCourier};
use dispatcher::live::map::{MapClient, MapFeed, MapOptions};
use dispatcher::store::MemoryStore;
use futures::StreamExt;
use optimizer::model::{Coordinates, VehicleKind};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use tokio_util::sync::CancellationToken;
use tracker::{LatestPosition, LatestPositions};

use crate::app::{TestApp, order_created, spawn_app};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(app: &TestApp, token: &str) -> Socket {
    let url = format!("{}/v1/map/ws?token={token}", app.base.replace("http", "ws"));
    connect_async(url).await.expect("the map socket opens").0
}

/// The next JSON frame within `within`, skipping pings.
async fn next_frame(socket: &mut Socket, within: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??
            .ok()?;
        if let Message::Text(text) = message {
            return Some(serde_json::from_str(&text).expect("frames are JSON"));
        }
    }
}

/// Reads frames until one satisfies `found`, within `within`.
async fn frame_where(
    socket: &mut Socket,
    within: Duration,
    found: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let deadline = Instant::now() + within;
    while let Some(remaining) = deadline.checked_duration_since(Instant::now()) {
        let frame = next_frame(socket, remaining).await?;
        if found(&frame) {
            return Some(frame);
        }
    }
    None
}

fn has_courier_at(frame: &Value, id: &str, lat: f64) -> bool {
    frame["couriers"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            c["id"] == id
                && c["position"]["lat"]
                    .as_f64()
                    .is_some_and(|got| (got - lat).abs() < 1e-6)
        })
    })
}

fn order_in<'a>(frame: &'a Value, id: &str) -> Option<&'a Value> {
    frame["orders"].as_array()?.iter().find(|o| o["id"] == id)
}

#[tokio::test]
async fn a_staff_client_gets_a_snapshot_then_deltas_when_an_order_is_assigned_and_a_courier_moves()
{
    let app = spawn_app().await;
    let (courier, _) = app.courier_on_shift("map-1", 60.1699, 24.9384).await;
    let mut socket = connect(&app, &app.staff).await;

    let snapshot = next_frame(&mut socket, Duration::from_secs(2))
        .await
        .expect("a first frame");
    assert_eq!(snapshot["type"], "snapshot");
    assert!(snapshot["version"].is_u64());
    assert!(has_courier_at(&snapshot, &courier, 60.1699), "{snapshot}");
    assert_eq!(snapshot["kpis"]["couriers_on_shift"], 1);

    app.publish(
        "order.created",
        Some("map-o1"),
        order_created("map-o1", 600).to_string().as_bytes(),
    )
    .await;
    let assigned = frame_where(&mut socket, Duration::from_secs(10), |f| {
        f["type"] == "delta"
            && order_in(f, "map-o1").is_some_and(|o| o["courier_id"] == courier.as_str())
    })
    .await
    .expect("a delta with the order assigned");
    let order = order_in(&assigned, "map-o1").unwrap();
    assert_eq!(order["status"], "assigned");
    assert!(order["pickup_eta"].is_string(), "{order}");
    assert_eq!(order["restaurant"]["lat"], 60.1699);
    assert!(assigned["version"].as_u64() > snapshot["version"].as_u64());
    let routed = frame_where(&mut socket, Duration::from_secs(5), |f| {
        f["couriers"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["id"] == courier.as_str() && c["route"][0]["order_id"] == "map-o1")
        })
    })
    .await;
    assert!(routed.is_some() || assigned["couriers"].to_string().contains("map-o1"));

    // A new fix needs a later second (the OsmAnd timestamp is in seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.position("map-1", 60.1700, 24.9385).await;
    let moved = frame_where(&mut socket, Duration::from_secs(3), |f| {
        has_courier_at(f, &courier, 60.1700)
    })
    .await
    .expect("a delta with the courier's new position");
    assert_eq!(moved["type"], "delta");
    app.finish().await;
}

#[tokio::test]
async fn the_map_socket_refuses_a_missing_token_with_401_and_a_courier_token_with_403() {
    let app = spawn_app().await;
    let (_, courier_token) = app.courier_on_shift("map-2", 60.17, 24.94).await;
    let ws = app.base.replace("http", "ws");
    for (url, status) in [
        (format!("{ws}/v1/map/ws"), 401),
        (format!("{ws}/v1/map/ws?token=nonsense"), 401),
        (format!("{ws}/v1/map/ws?token={courier_token}"), 403),
    ] {
        match connect_async(url.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), status, "{url}");
            }
            Err(other) => panic!("{url}: {other}"),
            Ok(_) => panic!("{url} was accepted"),
        }
    }
    let (status, _) = app
        .request(
            reqwest::Method::GET,
            "/v1/map/clients",
            None,
            &courier_token,
        )
        .await;
    assert_eq!(status, 403);
    app.finish().await;
}

#[tokio::test]
async fn a_stalled_client_neither_delays_another_nor_grows_and_is_eventually_disconnected() {
    let app = spawn_app().await;
    let (courier, _) = app.courier_on_shift("map-3", 60.1699, 24.9384).await;
    // Opened, never read.
    let stalled = connect(&app, &app.staff).await;
    let mut healthy = connect(&app, &app.staff).await;
    let snapshot = next_frame(&mut healthy, Duration::from_secs(2)).await;
    assert_eq!(snapshot.expect("a snapshot")["type"], "snapshot");
    // Keep reading the healthy client (so it answers pings) and hand its frames over.
    let (frames, mut received) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(frame) = next_frame(&mut healthy, Duration::from_secs(60)).await {
            if frames.send(frame).is_err() {
                break;
            }
        }
    });

    for step in 1..=4 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // About 5 m a second: a plausible scooter, never an impossible jump.
        let lat = 60.1699 + f64::from(step) * 0.00005;
        let moved_at = Instant::now();
        app.position("map-3", lat, 24.9384).await;
        let seen = loop {
            let Ok(Some(frame)) =
                tokio::time::timeout(Duration::from_secs(1), received.recv()).await
            else {
                break None;
            };
            if has_courier_at(&frame, &courier, lat) {
                break Some(moved_at.elapsed());
            }
        };
        let seen = seen.expect("the healthy client sees the move within a second");
        assert!(seen < Duration::from_secs(1), "{seen:?}");

        let (status, stats) = app
            .staff_request(reqwest::Method::GET, "/v1/map/clients", None)
            .await;
        assert_eq!(status, 200, "{stats}");
        let clients = stats["clients"].as_array().unwrap();
        assert_eq!(clients.len(), 2, "{stats}");
        for c in clients {
            assert!(
                c["queued_frames"].as_u64() <= c["capacity"].as_u64(),
                "{stats}"
            );
        }
    }

    // Silent for 10 s (it answers no ping): the server lets it go, and keeps the healthy one.
    let deadline = Instant::now() + Duration::from_secs(20);
    let remaining = loop {
        let (_, stats) = app
            .staff_request(reqwest::Method::GET, "/v1/map/clients", None)
            .await;
        let n = stats["clients"].as_array().map_or(0, Vec::len);
        if n < 2 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        remaining, 1,
        "the stalled client is disconnected, the healthy one stays"
    );
    drop(stalled);
    reader.abort();
    app.finish().await;
}

async fn feed_with_one_courier(
    options: MapOptions,
) -> (Dispatch, Arc<LatestPositions>, MapFeed, LatestPosition) {
    let dispatch = Dispatch::load(Arc::new(MemoryStore::new()))
        .await
        .expect("a memory store loads");
    let courier = dispatch
        .register_courier(NewCourier {
            name: "Feed".into(),
            vehicle: VehicleKind::Bike,
            device_id: "feed-1".into(),
            capacity: None,
        })
        .await
        .expect("registered");
    let positions = Arc::new(LatestPositions::new());
    let fix = LatestPosition {
        courier_id: courier.id.clone(),
        coords: Coordinates::parse(60.17, 24.94).unwrap(),
        at: dispatch.now(),
        speed_mps: Some(4.0),
        heading_deg: Some(90.0),
        accuracy_m: Some(5.0),
    };
    positions.offer(fix.clone());
    (dispatch, positions, MapFeed::new(options), fix)
}

async fn next_json(client: &MapClient) -> Value {
    let frame = tokio::time::timeout(Duration::from_secs(2), client.next())
        .await
        .expect("a frame in time")
        .expect("the feed runs");
    serde_json::from_str(frame.as_str()).expect("frames are JSON")
}

#[tokio::test]
async fn a_client_that_falls_behind_loses_its_queue_and_then_gets_a_newer_snapshot() {
    let options = MapOptions {
        tick: Duration::from_millis(10),
        queue_frames: 4,
        position_every: Duration::from_millis(1),
        ..MapOptions::default()
    };
    let (dispatch, positions, feed, fix) = feed_with_one_courier(options).await;
    let stalled = feed.join();
    let healthy = feed.join();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        feed.clone()
            .run(dispatch.clone(), positions.clone(), stop.clone()),
    );
    assert_eq!(next_json(&healthy).await["type"], "snapshot");

    let mut last_version = 0;
    for step in 1..=20 {
        let mut p = fix.clone();
        p.at += time::Duration::seconds(step);
        p.coords = Coordinates::parse(60.17 + step as f64 * 1e-4, 24.94).unwrap();
        positions.offer(p);
        let delta = next_json(&healthy).await;
        assert_eq!(delta["type"], "delta");
        assert!(delta["version"].as_u64().unwrap() > last_version);
        last_version = delta["version"].as_u64().unwrap();
        let stats = feed.client_stats();
        assert!(
            stats.iter().all(|s| s.queued_frames <= s.capacity),
            "{stats:?}"
        );
    }
    let stats = feed.client_stats();
    let behind = stats.iter().find(|s| s.id == stalled.id()).unwrap();
    assert!(behind.dropped_frames > 0, "{stats:?}");
    assert!(behind.queued_frames <= 4, "{stats:?}");

    // Reading again: a snapshot at least as new as what the healthy client saw last.
    let frame = next_json(&stalled).await;
    assert_eq!(frame["type"], "snapshot", "{frame}");
    assert!(frame["version"].as_u64().unwrap() >= last_version);
    assert_eq!(
        frame["couriers"][0]["position"]["lat"].as_f64(),
        Some(60.17 + 20.0 * 1e-4)
    );
    stop.cancel();
    task.await.unwrap();
    assert!(stalled.next().await.is_none(), "clients end with the feed");
}
