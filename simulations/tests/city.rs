//! The city simulation end to end: a small city at 30x drives a real `dispatcher serve` child
//! on the real PostgreSQL/TimescaleDB and RabbitMQ, and every figure of its report is measured
//! and consistent. The `dispatcher` binary must be built (`cargo test --workspace` builds it
//! for the dispatcher's outage tests; alone: `cargo build -p dispatcher`).

use std::time::Duration;

use simulations::city::{CityOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_city_ends_with_every_order_accounted_for_and_every_figure_measured() {
    let plot = std::env::temp_dir().join(format!("city-test-{}.svg", uuid::Uuid::new_v4()));
    let options = CityOptions {
        couriers: 15,
        minutes: 3.0,
        speedup: 30.0,
        server: None,
        osmand: None,
        topology_suffix: None,
        clock_epoch: None,
        map_clients: 2,
        chaos: false,
        plot: Some(plot.clone()),
        seed: 3,
        orders_per_s: 0.06,
        peak_per_s: 0.12,
        drain_minutes: 90.0,
        dispatcher: None,
        database_url: service::testing::database_url(),
        amqp_url: service::testing::amqp_url(),
        progress: false,
        keep_database: false,
        server_env: vec![
            ("PLANNER_INTERVAL_MS".into(), "1000".into()),
            ("RUST_LOG".into(), "warn".into()),
        ],
    };
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(300), run(options))
        .await
        .expect("the city ends within five minutes")
        .expect("the city runs (is the dispatcher binary built, are the services up?)");
    let json = serde_json::to_string(&r).expect("the report serialises");
    assert!(r.orders_placed >= 3, "{json}");
    assert_eq!(r.lost, 0, "{json}");
    assert_eq!(
        r.delivered + r.cancelled + r.failed,
        r.orders_placed,
        "{json}"
    );
    assert!(r.delivered > 0, "{json}");
    assert_eq!(r.duplicated_deliveries, 0, "{json}");
    assert!(r.ctd_mean.is_some_and(|m| m > 0.0 && m < 90.0), "{json}");
    // Every position the service acknowledged is in the database.
    assert!(r.positions_acknowledged > 100, "{json}");
    assert!(r.positions_stored >= r.positions_acknowledged, "{json}");
    // Orders reached phones, and the latency of each was measured.
    assert!(r.routed_orders > 0, "{json}");
    assert!(r.order_to_route_p99_ms.is_some_and(|ms| ms > 0.0), "{json}");
    // The map clients saw positions move.
    assert!(r.map_positions > 0 && r.map_frames > 0, "{json}");
    assert!(r.map_staleness_p99_ms.is_some(), "{json}");
    // The service's own figures.
    assert!(r.replans > 0 && r.replan_p99_ms.is_some(), "{json}");
    assert!(r.server_rss_mb.is_some_and(|mb| mb > 1.0), "{json}");
    assert!(r.server_cpu_s.is_some_and(|s| s > 0.0), "{json}");
    assert_eq!(r.server_starts, 1, "{json}");
    assert!(r.pickup_etas > 0, "{json}");
    assert!(
        r.wall_s > 5.0 && r.wall_s < started.elapsed().as_secs_f64(),
        "{json}"
    );
    let svg = std::fs::read_to_string(&plot).expect("the chart is written");
    assert!(svg.starts_with("<svg") && svg.contains("Replan time"));
    let _ = std::fs::remove_file(&plot);
}
