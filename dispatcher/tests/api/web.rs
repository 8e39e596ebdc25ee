//! The web pages as the service serves them (embedded in the binary), the staff's sign-in
//! tokens for couriers' phones, and what the map's counters tell about the planner.

use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use crate::app::spawn_app;

#[tokio::test]
async fn the_pages_and_their_bundles_are_served_from_the_binary() {
    let app = spawn_app().await;
    let get = |path: &str| app.http.get(format!("{}{path}", app.base)).send();

    let map = get("/").await.unwrap();
    assert_eq!(map.status(), 200);
    assert!(
        map.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = map.text().await.unwrap();
    assert!(html.contains(r#"id="map""#), "{html}");
    let courier = get("/courier").await.unwrap().text().await.unwrap();
    assert!(courier.contains("courier.webmanifest"), "{courier}");
    let track = get("/t/abc123").await.unwrap().text().await.unwrap();
    assert!(track.contains(r#"id="status""#), "{track}");

    let manifest = get("/courier.webmanifest").await.unwrap();
    assert_eq!(
        manifest.headers()["content-type"],
        "application/manifest+json"
    );
    let manifest: Value = manifest.json().await.unwrap();
    assert_eq!(manifest["start_url"], "/courier");
    let worker = get("/courier-sw.js").await.unwrap();
    assert_eq!(worker.headers()["service-worker-allowed"], "/courier");

    // A hashed bundle named by the page: cached for good, and revalidated by its ETag.
    let bundle = html
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .expect("the page names its script bundle");
    let first = get(bundle).await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(
        first.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let etag = first.headers()["etag"].clone();
    let again = app
        .http
        .get(format!("{}{bundle}", app.base))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    let config: Value = get("/config.json").await.unwrap().json().await.unwrap();
    assert_eq!(config["tiles"], Value::Null, "no basemap unless MAP_TILES");

    // The API's own 404 stays JSON.
    let missing = get("/v1/nothing-here").await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "not_found", "{body}");
    let missing = get("/assets/nothing.js").await.unwrap();
    assert_eq!(missing.status(), 404);
    app.finish().await;
}

#[tokio::test]
async fn staff_issue_a_sign_in_token_for_a_couriers_phone() {
    let app = spawn_app().await;
    let (id, courier_token) = app.courier_on_shift("web-phone-1", 60.17, 24.94).await;

    let (status, body) = app
        .staff_request(Method::POST, &format!("/v1/couriers/{id}/tokens"), None)
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["courier_id"], id.as_str());
    let token = body["token"].as_str().expect("a token").to_string();

    // The new token speaks for that courier, and only for it.
    let (status, body) = app
        .request(
            Method::GET,
            &format!("/v1/couriers/{id}/route"),
            None,
            &token,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.request(Method::GET, "/v1/couriers", None, &token).await;
    assert_eq!(status, 403, "a courier token is not staff");
    let ws = format!(
        "{}/v1/courier/ws?token={token}",
        app.base.replace("http", "ws")
    );
    let (mut socket, _) = connect_async(ws).await.expect("the courier socket opens");
    let welcome = loop {
        match socket.next().await.expect("a frame").expect("a message") {
            Message::Text(t) => break serde_json::from_str::<Value>(&t).unwrap(),
            _ => continue,
        }
    };
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["courier_id"], id.as_str());
    assert!(welcome["now"].is_string(), "the service's clock: {welcome}");

    // Only staff issue tokens, for couriers that exist.
    let (status, _) = app
        .request(
            Method::POST,
            &format!("/v1/couriers/{id}/tokens"),
            None,
            &courier_token,
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .staff_request(Method::POST, "/v1/couriers/nobody/tokens", None)
        .await;
    assert_eq!(status, 404, "{body}");
    app.finish().await;
}

#[tokio::test]
async fn the_map_tells_when_the_planner_last_ran_and_the_service_clock() {
    let app = spawn_app().await;
    let ws = format!(
        "{}/v1/map/ws?token={}",
        app.base.replace("http", "ws"),
        app.staff
    );
    let (mut socket, _) = connect_async(ws).await.expect("the map socket opens");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("a frame with the last replan within 20 s (the planner runs every second)")
            .expect("the socket stays open")
            .expect("a message");
        let Message::Text(text) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        assert!(frame["now"].is_string(), "{frame}");
        let kpis = &frame["kpis"];
        if kpis["last_replan_at"].is_string() {
            assert!(
                kpis["last_replan_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
                "{kpis}"
            );
            break;
        }
    }
    app.finish().await;
}
