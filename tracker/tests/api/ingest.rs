//! The inputs end to end on the real database: OsmAnd query and form, Traccar Client JSON and
//! the batch endpoint; validation answers; duplicates, out-of-order fixes and jumps.

use time::OffsetDateTime;

use crate::helpers::{TestApp, http};

fn ago(seconds: i64) -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    // Whole seconds, so epoch-second inputs compare equal.
    now.replace_nanosecond(0).unwrap() - time::Duration::seconds(seconds)
}

async fn rows(
    app: &TestApp,
    courier: &str,
) -> Vec<(OffsetDateTime, f64, f64, Option<f32>, Option<f32>, i16)> {
    sqlx::query_as(
        "SELECT fix_time, lat, lon, speed_mps, battery, source FROM positions \
         WHERE courier_id = $1 ORDER BY fix_time",
    )
    .bind(courier)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn osmand_query_form_and_traccar_json_are_stored_with_their_units() {
    let app = TestApp::spawn(true).await;
    app.courier("c1", "phone-1", "bike").await;
    let t1 = ago(300);
    let q = format!(
        "/?id=phone-1&lat=52.52&lon=13.405&timestamp={}&speed=10&bearing=90&batt=77",
        t1.unix_timestamp()
    );
    let r = http(app.osmand, "GET", &q, &[], "").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["stored"], 1);

    let t2 = ago(290);
    let form = format!(
        "deviceid=phone-1&lat=52.5201&lon=13.405&timestamp={}",
        t2.unix_timestamp() * 1000
    );
    let r = http(
        app.osmand,
        "POST",
        "/",
        &[("content-type", "application/x-www-form-urlencoded")],
        form,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    let t3 = ago(280);
    let json = serde_json::json!({"device_id": "phone-1", "location": {
        "timestamp": t3.format(&time::format_description::well_known::Rfc3339).unwrap(),
        "coords": {"latitude": 52.5202, "longitude": 13.405, "speed": 4.0, "accuracy": 5.0},
        "battery": {"level": 0.5, "is_charging": false}}});
    let r = http(
        app.osmand,
        "POST",
        "/",
        &[("content-type", "application/json")],
        json.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    let stored = rows(&app, "c1").await;
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0].0, t1);
    assert!(
        (stored[0].3.unwrap() - 5.144).abs() < 0.01,
        "10 knots in m/s"
    );
    assert_eq!(stored[0].4, Some(77.0));
    assert_eq!(stored[1].0, t2, "epoch milliseconds");
    assert_eq!(stored[2].3, Some(4.0), "JSON speed is m/s already");
    assert_eq!(
        stored[2].4,
        Some(50.0),
        "battery level 0..1 becomes percent"
    );
    assert_eq!(stored.iter().map(|r| r.5).collect::<Vec<_>>(), [0, 0, 1]);
    let latest = app
        .tracker
        .latest()
        .get(&optimizer::model::CourierId::parse("c1").unwrap())
        .unwrap();
    assert_eq!(latest.at, t3);
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn bad_input_gets_a_json_4xx_and_discarded_fixes_a_200() {
    let app = TestApp::spawn(true).await;
    app.courier("c1", "phone-1", "bike").await;
    let ts = ago(60).unix_timestamp();
    let future = (OffsetDateTime::now_utc() + time::Duration::minutes(30)).unix_timestamp();
    let old = ago(30 * 86_400).unix_timestamp();
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("/?id=ghost&lat=52.5&lon=13.4&timestamp={ts}"),
            404,
            "not_found",
        ),
        (
            format!("/?id=phone-1&lat=95&lon=13.4&timestamp={ts}"),
            400,
            "out_of_range",
        ),
        (
            format!("/?id=phone-1&lat=NaN&lon=13.4&timestamp={ts}"),
            400,
            "out_of_range",
        ),
        (
            format!("/?id=phone-1&lat=0&lon=0&timestamp={ts}"),
            200,
            "null_island",
        ),
        (
            format!("/?id=phone-1&lat=52.5&lon=13.4&timestamp={future}"),
            200,
            "future",
        ),
        (
            format!("/?id=phone-1&lat=52.5&lon=13.4&timestamp={old}"),
            200,
            "too_old",
        ),
        (
            format!("/?id=phone-1&lat=north&lon=13.4&timestamp={ts}"),
            400,
            "bad_request",
        ),
        ("/?lat=52.5&lon=13.4".to_string(), 400, "bad_request"),
        (
            "/?id=phone-1&lat=52.5&lon=13.4&timestamp=tomorrow".to_string(),
            400,
            "bad_request",
        ),
    ];
    for (q, status, error) in cases {
        let r = http(app.osmand, "GET", &q, &[], "").await.unwrap();
        assert_eq!(r.status, status, "{q}: {}", r.text());
        let body = r.json();
        if status == 200 {
            // Well-formed but filtered: acknowledged, so the phone moves on, and not stored.
            assert_eq!(body["stored"], 0, "{q}");
            assert_eq!(body["rejected"][0]["reason"], error, "{q}");
            continue;
        }
        assert_eq!(body["error"], error, "{q}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{q}"
        );
    }
    let r = http(
        app.osmand,
        "POST",
        "/",
        &[("content-type", "application/json")],
        "{\"device_id\":",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "bad_request");

    // Poor accuracy is discarded with a 200, so the app does not resend it forever.
    let q = format!("/?id=phone-1&lat=52.5&lon=13.4&timestamp={ts}&accuracy=900");
    let r = http(app.osmand, "GET", &q, &[], "").await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["rejected"][0]["reason"], "poor_accuracy");
    assert_eq!(rows(&app, "c1").await.len(), 0);
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn duplicates_are_stored_once_and_late_fixes_go_to_history_only() {
    let app = TestApp::spawn(false).await;
    app.courier("c1", "phone-1", "scooter").await;
    let send = |t: OffsetDateTime, lat: f64| {
        let q = format!(
            "/?id=phone-1&lat={lat}&lon=13.4&timestamp={}",
            t.unix_timestamp()
        );
        async move { http(app.osmand, "GET", &q, &[], "").await.unwrap() }
    };
    let (t1, t2, t0) = (ago(100), ago(90), ago(120));
    assert_eq!(send(t1, 52.500).await.status, 200);
    assert_eq!(send(t2, 52.501).await.status, 200);
    // A resend of the same fix: 200 again, one row.
    let again = send(t2, 52.501).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["stored"], 1);
    // A late fix from before: stored, but the latest position stays at t2.
    assert_eq!(send(t0, 52.499).await.status, 200);
    let stored = rows(&app, "c1").await;
    assert_eq!(stored.iter().map(|r| r.0).collect::<Vec<_>>(), [t0, t1, t2]);
    let latest = app
        .tracker
        .latest()
        .get(&optimizer::model::CourierId::parse("c1").unwrap())
        .unwrap();
    assert_eq!(latest.at, t2);
    assert_eq!(latest.coords.lat(), 52.501);

    // The same fix twice in one batch, and once more later: stored once.
    let token = app.courier("c2", "phone-2", "bike").await;
    let at = ago(50)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let batch = serde_json::json!([{"lat": 52.5, "lon": 13.4, "at": at}, {"lat": 52.5, "lon": 13.4, "at": at}]);
    for _ in 0..2 {
        let r = http(
            app.api,
            "POST",
            "/v1/positions",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("content-type", "application/json"),
            ],
            batch.to_string(),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(rows(&app, "c2").await.len(), 1);
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn impossible_jumps_are_discarded_until_the_courier_is_really_there() {
    let app = TestApp::spawn(true).await;
    app.courier("c1", "phone-1", "bike").await;
    let send = |t: OffsetDateTime, lat: f64| {
        let q = format!(
            "/?id=phone-1&lat={lat}&lon=13.4&timestamp={}",
            t.unix_timestamp()
        );
        async move { http(app.osmand, "GET", &q, &[], "").await.unwrap() }
    };
    assert_eq!(send(ago(100), 52.50).await.status, 200);
    // 11 km in 10 s on a bike: discarded (200, not stored).
    let r = send(ago(90), 52.60).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["rejected"][0]["reason"], "impossible_jump");
    assert_eq!(rows(&app, "c1").await.len(), 1);
    // A plausible move is fine.
    assert_eq!(send(ago(80), 52.5005).await.json()["stored"], 1);
    // Still far away after repeated fixes: believed on the third one.
    assert_eq!(send(ago(70), 52.60).await.json()["stored"], 0);
    assert_eq!(send(ago(69), 52.60).await.json()["stored"], 0);
    assert_eq!(send(ago(68), 52.60).await.json()["stored"], 1);
    assert_eq!(rows(&app, "c1").await.len(), 3);
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn the_batch_endpoint_needs_a_courier_token_and_reports_each_rejected_fix() {
    let app = TestApp::spawn(true).await;
    let token = app.courier("c1", "phone-1", "car").await;
    let staff = app.staff_token().await;
    let at = |s: i64| {
        ago(s)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let body = serde_json::json!([
        {"lat": 52.50, "lon": 13.40, "at": at(60), "speed_mps": 8.0, "accuracy_m": 5.0},
        {"lat": 0.0, "lon": 0.0, "at": at(59)},
        {"lat": 52.5001, "lon": 13.40, "at": "not a time"},
        {"lat": 52.5002, "lon": 13.40, "at": ago(58).unix_timestamp()},
    ])
    .to_string();
    let post = |auth: Option<String>, body: String| async move {
        let mut headers = vec![("content-type", "application/json".to_string())];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http(app.api, "POST", "/v1/positions", &headers, body)
            .await
            .unwrap()
    };
    assert_eq!(post(None, body.clone()).await.status, 401);
    assert_eq!(
        post(Some("Bearer nope".into()), body.clone()).await.status,
        401
    );
    assert_eq!(
        post(Some(format!("Bearer {staff}")), body.clone())
            .await
            .status,
        403
    );
    let r = post(Some(format!("Bearer {token}")), body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["stored"], 2);
    let reasons: Vec<_> = j["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["index"].as_u64().unwrap(),
                x["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(reasons.contains(&(1, "null_island".into())), "{reasons:?}");
    assert!(reasons.contains(&(2, "malformed".into())), "{reasons:?}");
    assert_eq!(rows(&app, "c1").await.len(), 2);

    let too_many = serde_json::Value::from(vec![serde_json::json!({"lat": 1.0, "lon": 1.0}); 1001]);
    assert_eq!(
        post(Some(format!("Bearer {token}")), too_many.to_string())
            .await
            .status,
        413
    );
    let r = post(Some(format!("Bearer {token}")), "[{\"lat\":".into()).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "bad_request");
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn latest_positions_are_rebuilt_from_the_database_at_start() {
    let app = TestApp::spawn(true).await;
    app.courier("near", "phone-near", "bike").await;
    app.courier("far", "phone-far", "bike").await;
    for (device, lat, s) in [
        ("phone-near", 52.5001, 30),
        ("phone-far", 52.55, 30),
        ("phone-near", 52.5002, 20),
    ] {
        let q = format!(
            "/?id={device}&lat={lat}&lon=13.4&timestamp={}",
            ago(s).unix_timestamp()
        );
        assert_eq!(
            http(app.osmand, "GET", &q, &[], "").await.unwrap().status,
            200
        );
    }
    let db = app.stop().await;
    let pool = db.pool.clone();
    let app = crate::helpers::TestApp::spawn_on(db, pool, tracker::TrackerConfig::default()).await;
    let latest = app.tracker.latest();
    assert_eq!(latest.len(), 2);
    let here = optimizer::model::Coordinates::parse(52.5, 13.4).unwrap();
    let within: Vec<_> = latest
        .within_radius(here, 1_000.0)
        .into_iter()
        .map(|(p, _)| p.courier_id.to_string())
        .collect();
    assert_eq!(within, ["near"]);
    let nearest = latest.nearest(here, 2);
    assert_eq!(
        nearest[0].0.coords.lat(),
        52.5002,
        "the newest fix, not the first"
    );
    assert_eq!(nearest[1].0.courier_id.as_str(), "far");
    app.stop().await.drop_database().await;
}
