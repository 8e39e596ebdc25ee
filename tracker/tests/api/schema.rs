//! The schema on the real server: positions as a hypertable with TimescaleDB, as a natively
//! partitioned table without it, and the constraints that keep bad rows out.

use service::schema::{PositionsStorage, positions_storage};
use sqlx::Row;

use crate::helpers::{TestDb, maintenance_connection};

async fn timescaledb_available() -> bool {
    let mut conn = maintenance_connection().await;
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')",
    )
    .fetch_one(&mut conn)
    .await
    .expect("reading pg_available_extensions")
}

async fn insert_position(db: &TestDb, courier: &str, at: &str) -> u64 {
    sqlx::query(
        "INSERT INTO positions (courier_id, device_id, fix_time, lat, lon) \
         VALUES ($1, 'phone', $2::timestamptz, 52.5, 13.4) ON CONFLICT DO NOTHING",
    )
    .bind(courier)
    .bind(at)
    .execute(&db.pool)
    .await
    .expect("inserting a position")
    .rows_affected()
}

#[tokio::test]
async fn positions_is_a_hypertable_when_timescaledb_is_available() {
    assert!(
        timescaledb_available().await,
        "the timescaledb extension is not available on the test server; install it with \
         `scripts/services`"
    );
    let db = TestDb::new(true).await;
    assert_eq!(
        positions_storage(&db.pool).await.unwrap(),
        PositionsStorage::Hypertable
    );
    let (name, dims): (String, i32) = sqlx::query_as(
        "SELECT hypertable_name::text, num_dimensions::int FROM timescaledb_information.hypertables",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((name.as_str(), dims), ("positions", 1));

    // A duplicate fix (same courier, same time) is stored once.
    assert_eq!(insert_position(&db, "c1", "2026-11-21T12:00:00Z").await, 1);
    assert_eq!(insert_position(&db, "c1", "2026-11-21T12:00:00Z").await, 0);
    assert_eq!(insert_position(&db, "c1", "2025-01-01T00:00:00Z").await, 1);
    let chunks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'positions'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(chunks, 2, "one daily chunk per day with data");
    // The Apache edition's drop_chunks removes old days.
    sqlx::query("SELECT drop_chunks('positions', older_than => '2026-01-01'::timestamptz)")
        .execute(&db.pool)
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM positions")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, 1);
    db.drop_database().await;
}

#[tokio::test]
async fn positions_is_natively_partitioned_when_timescaledb_is_switched_off() {
    let db = TestDb::new(false).await;
    assert_eq!(
        positions_storage(&db.pool).await.unwrap(),
        PositionsStorage::Partitioned
    );
    let extension: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(
        !extension,
        "the extension must not be created when switched off"
    );

    // Today's partition exists; an old day lands in the default partition, and is moved into its
    // own partition when that is created.
    assert_eq!(insert_position(&db, "c1", &today_noon()).await, 1);
    assert_eq!(
        insert_position(&db, "c1", &today_noon()).await,
        0,
        "duplicate stored once"
    );
    assert_eq!(insert_position(&db, "c1", "2025-01-01T08:00:00Z").await, 1);
    let in_default: i64 = sqlx::query_scalar("SELECT count(*) FROM positions_default")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(in_default, 1);
    let created: i32 = sqlx::query_scalar("SELECT positions_ensure_partitions('2025-01-01', 1)")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(created, 1);
    let row = sqlx::query(
        "SELECT tableoid::regclass::text AS part FROM positions WHERE fix_time < '2026-01-01'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("part"), "positions_p20250101");

    // Same indexes on every partition as on a hypertable: unique by courier and time.
    let indexed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'positions_p20250101' \
         AND indexdef LIKE '%UNIQUE%(courier_id, fix_time DESC)%'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(indexed, 1);
    db.drop_database().await;
}

fn today_noon() -> String {
    let today = time::OffsetDateTime::now_utc().date();
    format!("{today}T12:00:00Z")
}

#[tokio::test]
async fn migrations_can_be_applied_twice() {
    let db = TestDb::new(true).await;
    service::schema::migrate(&db.pool, true).await.unwrap();
    db.drop_database().await;
}

#[tokio::test]
async fn the_order_event_log_is_append_only() {
    let db = TestDb::new(true).await;
    sqlx::query("INSERT INTO order_events (order_id, kind) VALUES ('o1', 'created')")
        .execute(&db.pool)
        .await
        .unwrap();
    for statement in [
        "UPDATE order_events SET kind = 'x'",
        "DELETE FROM order_events",
        "TRUNCATE order_events",
    ] {
        let err = sqlx::query(statement).execute(&db.pool).await.unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    db.drop_database().await;
}

#[tokio::test]
async fn the_schema_refuses_inconsistent_orders_and_tokens() {
    let db = TestDb::new(true).await;
    let insert = "INSERT INTO orders (id, restaurant_id, restaurant_lat, restaurant_lon, \
                  dropoff_lat, dropoff_lon, placed_at, ready_at, status) \
                  VALUES ($1, 'r', 52.5, 13.4, $2, 13.4, $3::timestamptz, $4::timestamptz, $5)";
    let ok = sqlx::query(insert)
        .bind("o1")
        .bind(52.51)
        .bind("2026-11-21T12:00:00Z")
        .bind("2026-11-21T12:10:00Z")
        .bind("created")
        .execute(&db.pool)
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let cases = [
        (
            "ready before placed",
            52.51,
            "2026-11-21T12:05:00Z",
            "created",
        ),
        (
            "latitude out of range",
            95.0,
            "2026-11-21T12:10:00Z",
            "created",
        ),
        (
            "assigned without courier",
            52.51,
            "2026-11-21T12:10:00Z",
            "assigned",
        ),
        ("unknown status", 52.51, "2026-11-21T12:10:00Z", "lost"),
    ];
    for (i, (what, lat, ready, status)) in cases.into_iter().enumerate() {
        let r = sqlx::query(insert)
            .bind(format!("bad{i}"))
            .bind(lat)
            .bind("2026-11-21T12:06:00Z")
            .bind(ready)
            .bind(status)
            .execute(&db.pool)
            .await;
        assert!(r.is_err(), "{what} was accepted");
    }
    let token = sqlx::query(
        "INSERT INTO api_tokens (id, token_hash, role) VALUES (gen_random_uuid(), $1, 'courier')",
    )
    .bind(vec![0u8; 32])
    .execute(&db.pool)
    .await;
    assert!(
        token.is_err(),
        "a courier token without a courier was accepted"
    );
    db.drop_database().await;
}
