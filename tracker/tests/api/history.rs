//! History and retention on both storages: tracks as GeoJSON, GPX and CSV, downsampling with
//! `bucket`, who may read a track, and the retention job dropping old chunks or partitions.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{TestApp, http};

async fn track_scenario(use_timescaledb: bool) {
    let app = TestApp::spawn(use_timescaledb).await;
    let token = app.courier("c1", "phone-1", "bike").await;
    let other = app.courier("c2", "phone-2", "bike").await;
    let staff = app.staff_token().await;
    // Two minutes of fixes, one every 5 s.
    let start =
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - time::Duration::minutes(10);
    let start = start - time::Duration::seconds(i64::from(start.second()));
    let points: Vec<_> = (0..24)
        .map(|i| {
            serde_json::json!({"lat": 52.5 + f64::from(i) * 0.0001, "lon": 13.4,
                "at": (start + time::Duration::seconds(i64::from(i) * 5)).format(&Rfc3339).unwrap()})
        })
        .collect();
    let auth = format!("Bearer {token}");
    let r = http(
        app.api,
        "POST",
        "/v1/positions",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        serde_json::Value::from(points).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["stored"], 24);

    let from = start.format(&Rfc3339).unwrap().replace('+', "%2B");
    let to = (start + time::Duration::minutes(5))
        .format(&Rfc3339)
        .unwrap();
    let base = format!("/v1/couriers/c1/track?from={from}&to={to}");
    let get = |path: String, auth: String| async move {
        http(app.api, "GET", &path, &[("authorization", &auth)], "")
            .await
            .unwrap()
    };
    let r = get(base.clone(), auth.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "application/geo+json");
    let g = r.json();
    assert_eq!(g["geometry"]["type"], "LineString");
    assert_eq!(g["geometry"]["coordinates"].as_array().unwrap().len(), 24);
    assert_eq!(g["geometry"]["coordinates"][0][0], 13.4);

    let r = get(format!("{base}&format=gpx"), format!("Bearer {staff}")).await;
    assert_eq!(r.status, 200);
    let gpx = r.text();
    assert!(gpx.contains("<gpx version=\"1.1\""));
    assert_eq!(gpx.matches("<trkpt ").count(), 24);

    let r = get(format!("{base}&format=csv&bucket=30s"), auth.clone()).await;
    assert_eq!(r.status, 200);
    let csv = r.text();
    assert_eq!(
        csv.lines().count(),
        1 + 4,
        "two minutes in 30 s buckets: {csv}"
    );
    // The last fix of each bucket is kept.
    let second_line = csv.lines().nth(1).unwrap();
    let expected = (start + time::Duration::seconds(25))
        .format(&Rfc3339)
        .unwrap();
    assert!(
        second_line.starts_with(&expected),
        "{second_line} vs {expected}"
    );

    assert_eq!(
        get(base.clone(), format!("Bearer {other}")).await.status,
        403
    );
    assert_eq!(get(base.clone(), String::new()).await.status, 401);
    assert_eq!(
        get(format!("{base}&format=kml"), auth.clone()).await.status,
        400
    );
    assert_eq!(
        get(format!("{base}&bucket=3d"), auth.clone()).await.status,
        400
    );
    assert_eq!(
        get(format!("/v1/couriers/c1/track?from={to}&to={to}"), auth)
            .await
            .status,
        400
    );
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn tracks_render_and_downsample_on_a_hypertable() {
    track_scenario(true).await;
}

#[tokio::test]
async fn tracks_render_and_downsample_on_native_partitions() {
    track_scenario(false).await;
}

async fn retention_scenario(use_timescaledb: bool) {
    // The tracker's own maintenance job keeps ten years here, so only the explicit run below
    // drops anything.
    let db = crate::helpers::TestDb::new(use_timescaledb).await;
    let pool = db.pool.clone();
    let config = tracker::TrackerConfig {
        retention: std::time::Duration::from_secs(3650 * 86_400),
        ..Default::default()
    };
    let app = TestApp::spawn_on(db, pool, config).await;
    app.courier("c1", "phone-1", "bike").await;
    let pool = &app.db.pool;
    // Old rows bypass validation (which refuses them) by going straight into the table.
    for day in [40, 35, 1] {
        sqlx::query(
            "INSERT INTO positions (courier_id, device_id, fix_time, lat, lon) \
             VALUES ('c1', 'phone-1', now() - make_interval(days => $1), 52.5, 13.4)",
        )
        .bind(day)
        .execute(pool)
        .await
        .unwrap();
    }
    // Old days get their own partitions on plain PostgreSQL, as a long-running tracker has.
    sqlx::query("SELECT positions_ensure_partitions((now() - interval '41 days')::date, 8)")
        .execute(pool)
        .await
        .unwrap();
    let m = tracker::maintenance::run_once(pool, 7, std::time::Duration::from_secs(30 * 86_400))
        .await
        .unwrap();
    assert!(m.dropped >= 2, "{m:?}");
    let left: Vec<OffsetDateTime> = sqlx::query_scalar("SELECT fix_time FROM positions")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(left.len(), 1, "only the recent row is left");
    // Partitions for the coming days exist.
    if !use_timescaledb {
        let ahead: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_class WHERE relname = 'positions_p' || \
             to_char((now() AT TIME ZONE 'UTC')::date + 7, 'YYYYMMDD')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(ahead, 1);
    }
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn retention_drops_old_chunks_of_a_hypertable() {
    retention_scenario(true).await;
}

#[tokio::test]
async fn retention_drops_old_partitions_on_plain_postgres() {
    retention_scenario(false).await;
}
