//! Fixtures on the real RabbitMQ: a connection (failing loudly with how to start the broker),
//! and a UUID-suffixed topology per test, deleted afterwards.

use dispatcher::bus::{self, Topology};
use lapin::Connection;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};

/// The broker URL from `AMQP_URL`, defaulting to the local broker.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A connection to the real broker; panics naming the way to start it when unreachable.
pub async fn connect() -> Connection {
    let url = amqp_url();
    match bus::connect(&url, 6).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "RabbitMQ is not reachable at {} ({e}); start it with `scripts/services` \
             (or `rabbitmq-server -detached`)",
            bus::redact(&url)
        ),
    }
}

/// A topology of the test's own.
pub fn topology() -> Topology {
    Topology::with_suffix(&format!(".test-{}", uuid::Uuid::new_v4().simple()))
}

/// Deletes a test topology's queues and exchanges.
pub async fn delete(conn: &Connection, t: &Topology) {
    let ch = conn.create_channel().await.expect("channel for cleanup");
    for q in [&t.kitchen_queue, &t.dead_queue] {
        ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await
            .expect("deleting a test queue");
    }
    for x in [&t.kitchen_exchange, &t.dispatch_exchange] {
        ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .expect("deleting a test exchange");
    }
}
