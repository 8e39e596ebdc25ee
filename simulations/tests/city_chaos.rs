//! The city under faults: a small city at 30x while the service is SIGKILLed and restarted
//! three times, RabbitMQ's app is stopped and started, and PostgreSQL is cut for ten seconds.
//! Every published order must still end delivered, cancelled or failed with a reason, none
//! delivered twice. Its own test binary, so it runs alone (it restarts the shared broker, which
//! [`chaos::BrokerGuard`](simulations::city::chaos::BrokerGuard) puts back even on failure).

use std::time::Duration;

use simulations::city::{CityOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_under_kills_a_broker_restart_and_a_database_cut_loses_no_order() {
    let options = CityOptions {
        couriers: 15,
        // 30 simulated minutes at 30x: a 60 s window for the five faults.
        minutes: 30.0,
        speedup: 30.0,
        server: None,
        osmand: None,
        topology_suffix: None,
        clock_epoch: None,
        map_clients: 1,
        chaos: true,
        plot: None,
        seed: 5,
        orders_per_s: 0.01,
        peak_per_s: 0.02,
        drain_minutes: 120.0,
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
    let r = tokio::time::timeout(Duration::from_secs(600), run(options))
        .await
        .expect("the city ends within ten minutes")
        .expect("the city runs (is the dispatcher binary built, are the services up?)");
    let json = serde_json::to_string(&r).expect("the report serialises");
    assert_eq!(r.faults.len(), 5, "{json}");
    assert!(
        r.faults.iter().all(|f| f.error.is_none()),
        "every fault went as planned: {json}"
    );
    assert_eq!(r.server_starts, 4, "three kills, three restarts: {json}");
    assert!(r.orders_placed >= 10, "{json}");
    assert_eq!(r.lost, 0, "{json}");
    assert_eq!(r.duplicated_deliveries, 0, "{json}");
    assert_eq!(
        r.delivered + r.cancelled + r.failed,
        r.orders_placed,
        "{json}"
    );
    assert!(r.positions_stored >= r.positions_acknowledged, "{json}");
}
