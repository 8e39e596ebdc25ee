//! The simulated city against the real service: kitchens on RabbitMQ, phones over REST and the
//! OsmAnd endpoint, orders delivered end to end.

use std::sync::Arc;
use std::time::Duration;

use dispatcher::sim::{
    self, AmqpKitchenPort, CityConfig, CourierOptions, Demand, Endpoints, SimConfig, TokenSource,
    Transport, TransportPlan,
};
use futures::FutureExt;
use service::auth::{Role, create_token};
use service::clock::Clock;
use tokio_util::sync::CancellationToken;

use crate::app::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_city_gets_its_orders_delivered_through_the_real_service() {
    let stats = small_city(TransportPlan::Every(Transport::Rest), None).await;
    assert_eq!(stats.reconnects, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn couriers_on_the_socket_deliver_too_and_resume_after_dropped_connections() {
    let stats = small_city(
        TransportPlan::Every(Transport::Socket),
        Some(Duration::from_secs(4)),
    )
    .await;
    assert!(stats.reconnects > 0, "{stats:?}");
}

/// Runs a city of 5 couriers and 4 orders on `transport` until all are delivered (60 s at
/// most), checks the service's side, and returns the counters.
async fn small_city(transport: TransportPlan, drop_every: Option<Duration>) -> sim::SimStats {
    let app = spawn_app().await;
    let shutdown = CancellationToken::new();
    let kitchen = Arc::new(AmqpKitchenPort::start(
        service::testing::amqp_url(),
        app.topology.clone(),
        shutdown.clone(),
    ));
    let pool = app.pool().clone();
    let tokens: TokenSource = Arc::new(move |courier| {
        let pool = pool.clone();
        async move {
            create_token(&pool, Role::Courier, Some(&courier), &[])
                .await
                .map_err(anyhow::Error::from)
        }
        .boxed()
    });
    // `serve` runs on the system clock and accepts positions up to 10 minutes either side of
    // it; starting 9 minutes back at 18x keeps a minute of wall time within that window.
    let speedup = 18.0;
    let clock = Clock::scaled(
        time::OffsetDateTime::now_utc() - time::Duration::minutes(9),
        speedup,
    );
    let config = SimConfig {
        city: CityConfig {
            seed: 7,
            couriers: 5,
            radius_m: 1_500.0,
            restaurants: 3,
            demand: Demand {
                base_per_courier_hour: 40.0,
                lunch_per_courier_hour: 0.0,
                dinner_per_courier_hour: 0.0,
                late_share: 0.0,
                cancel_share: 0.0,
                preparation_median: Duration::from_secs(150),
                preparation_range: (Duration::from_secs(60), Duration::from_secs(240)),
                ..Demand::default()
            },
            ..CityConfig::default()
        },
        couriers: CourierOptions {
            transport,
            drop_connection_every: drop_every,
            route_poll: Duration::from_millis(500),
            handover: Duration::from_secs(20),
            ..CourierOptions::default()
        },
        max_orders: Some(4),
    };
    let handle = sim::run(
        config,
        Endpoints {
            base: app.base.clone(),
            osmand: app.osmand.clone(),
            staff_token: app.staff.clone(),
        },
        kitchen,
        tokens,
        clock,
        shutdown.clone(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut stats = handle.stats();
    while tokio::time::Instant::now() < deadline {
        stats = handle.stats();
        if stats.orders_placed == 4 && stats.delivered >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let tag = handle.city.config.tag.clone();
    shutdown.cancel();
    handle.stopped().await;
    assert_eq!(stats.orders_placed, 4, "{stats:?}");
    assert!(stats.delivered >= 4, "not all delivered in time: {stats:?}");
    assert!(
        stats.routes_received > 0 && stats.events_sent >= 12,
        "{stats:?}"
    );
    assert!(
        stats.pickup_etas > 0,
        "the kitchens heard no pickup ETA: {stats:?}"
    );

    for n in 1..=4 {
        let (status, body) = app
            .staff_request(
                reqwest::Method::GET,
                &format!("/v1/orders/{tag}-o{n}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "delivered", "{body}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM positions")
        .fetch_one(app.pool())
        .await
        .expect("counting positions");
    assert!(stored >= 20, "only {stored} positions stored: {stats:?}");
    assert!(stats.positions_stored > 0, "{stats:?}");
    app.finish().await;
    stats
}
