//! Fixtures on the real RabbitMQ: a connection (failing loudly with how to start the broker),
//! and a UUID-suffixed topology per test, deleted afterwards; publishing as a kitchen, reading
//! queues and headers, and running a kitchen link on the test's topology.

use std::sync::Arc;
use std::time::Duration;

use dispatcher::bus::consumer::KitchenHandler;
use dispatcher::bus::link::{KitchenLink, LinkHandle};
use dispatcher::bus::{self, Publisher, Topology};
use dispatcher::store::Store;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, Consumer};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use service::testing::amqp_url;

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

/// Deletes one queue a test declared itself.
pub async fn delete_queue(conn: &Connection, queue: &str) {
    let ch = conn.create_channel().await.expect("channel for cleanup");
    ch.queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .expect("deleting a test queue");
}

/// How many messages wait (ready, not in flight) in `queue`.
pub async fn queue_depth(conn: &Connection, queue: &str) -> u32 {
    let ch = conn.create_channel().await.expect("channel");
    let q = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the queue exists");
    let _ = ch.close(200, "done".into()).await;
    q.message_count()
}

/// The next delivery of `consumer`, failing the test after `seconds`.
pub async fn next_delivery(consumer: &mut Consumer, seconds: u64, what: &str) -> Delivery {
    tokio::time::timeout(Duration::from_secs(seconds), consumer.next())
        .await
        .unwrap_or_else(|_| panic!("{what} within {seconds} s"))
        .expect("stream open")
        .expect("delivery")
}

/// A consumer of `queue` on a channel of its own (deliveries must be acked).
pub async fn consume(conn: &Connection, queue: &str) -> Consumer {
    let ch = conn.create_channel().await.expect("channel");
    ch.basic_consume(
        queue.into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("consume")
}

/// A text header of a delivery.
pub fn header(delivery: &Delivery, name: &str) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(text) => Some(text.to_string()),
        AMQPValue::ShortString(text) => Some(text.to_string()),
        _ => None,
    }
}

/// The message id of a delivery.
pub fn message_id(delivery: &Delivery) -> Option<String> {
    delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.to_string())
}

/// Publishes a kitchen message as a kitchen would (persistent JSON, confirmed); without a
/// message id when `message_id` is `None`. `case` goes in a header, to recognise it later.
pub async fn publish_kitchen(
    publisher: &Publisher,
    topology: &Topology,
    routing_key: &str,
    message_id: Option<&str>,
    body: &[u8],
    case: &str,
) {
    let mut headers = FieldTable::default();
    headers.insert("case".into(), AMQPValue::LongString(case.into()));
    let mut properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_headers(headers);
    if let Some(id) = message_id {
        properties = properties.with_message_id(id.into());
    }
    let confirm = publisher
        .send(&topology.kitchen_exchange, routing_key, body, properties)
        .await
        .expect("publish");
    bus::confirmed(confirm)
        .await
        .expect("the broker confirms a kitchen message");
}

/// Starts a kitchen link on `topology` and waits until it is connected.
pub async fn start_link(
    topology: &Topology,
    handler: Arc<dyn KitchenHandler>,
    store: Arc<dyn Store>,
    outbox: Arc<Notify>,
) -> (LinkHandle, CancellationToken) {
    let shutdown = CancellationToken::new();
    let link = KitchenLink::new(amqp_url(), topology.clone(), handler, store, outbox)
        .with_connection_name(link_name(topology))
        .with_retry_pause(Duration::from_millis(100))
        .start(shutdown.clone());
    let mut health = link.health();
    tokio::time::timeout(Duration::from_secs(20), health.connected())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the kitchen link did not connect to RabbitMQ at {} within 20 s; start it with \
                 `scripts/services` (or `rabbitmq-server -detached`)",
                bus::redact(&amqp_url())
            )
        });
    (link, shutdown)
}

/// The connection name of a test's link, unique per topology.
pub fn link_name(topology: &Topology) -> String {
    format!("dispatcher-{}", topology.kitchen_queue)
}

/// Stops a link and waits until it has drained and closed.
pub async fn stop_link(link: LinkHandle, shutdown: CancellationToken) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), link.stopped())
        .await
        .expect("the link stops within 15 s");
}

/// Waits until `condition` holds, failing the test after `seconds`.
pub async fn eventually(seconds: u64, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {seconds} s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `x-reason` headers of the next `n` messages on the topology's dead queue (acked).
pub async fn dead_reasons(conn: &Connection, t: &Topology, n: usize) -> Vec<String> {
    let mut consumer = consume(conn, &t.dead_queue).await;
    let mut reasons = Vec::with_capacity(n);
    for _ in 0..n {
        let d = next_delivery(&mut consumer, 10, "a dead-lettered message").await;
        reasons.push(header(&d, "x-reason").unwrap_or_default());
        d.ack(lapin::options::BasicAckOptions::default())
            .await
            .expect("acking a dead letter");
    }
    reasons
}
