//! Publishing with confirms and consuming on the real broker, and the kitchen link on it: the
//! consumer with a fake [`KitchenHandler`], the outbox relay with a fake [`Store`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use dispatcher::bus::Publisher;
use dispatcher::bus::consumer::KitchenHandler;
use dispatcher::dispatch::{DispatchError, Invalid, KitchenCommand};
use dispatcher::records::{InboxKey, OrderRecord, OutboxEvent, TimelineEntry};
use dispatcher::store::{Batch, OrderQuery, Snapshot, Store, StoreError};
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicNackOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use optimizer::model::OrderId;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::helpers::{
    connect, consume, delete, delete_queue, eventually, header, link_name, message_id,
    next_delivery, publish_kitchen, queue_depth, start_link, stop_link, topology,
};

#[tokio::test]
async fn kitchen_messages_are_confirmed_routed_and_dead_lettered_when_rejected() {
    let conn = connect().await;
    let topology = topology();
    let publisher = Publisher::new(&conn).await.expect("confirm channel");
    topology
        .declare(publisher.channel())
        .await
        .expect("declare");
    // Declaring twice is harmless (the service does it at every start).
    topology
        .declare(publisher.channel())
        .await
        .expect("declare again");

    let body = br#"{"order_id":"o1","ready_at":"2026-11-21T12:00:00Z"}"#;
    let mut headers = FieldTable::default();
    headers.insert("kitchen".into(), AMQPValue::LongString("k1".into()));
    publisher
        .publish(
            &topology.kitchen_exchange,
            "order.ready",
            "m-1",
            body,
            headers,
        )
        .await
        .expect("the broker confirms a routable persistent message");
    publisher
        .publish(
            &topology.kitchen_exchange,
            "order.created",
            "m-2",
            b"not json",
            FieldTable::default(),
        )
        .await
        .expect("confirmed");
    // A key nobody is bound to is still confirmed by the broker (and dropped by it).
    publisher
        .publish(
            &topology.kitchen_exchange,
            "menu.updated",
            "m-3",
            b"{}",
            FieldTable::default(),
        )
        .await
        .expect("confirmed");

    let consumer_channel = conn.create_channel().await.unwrap();
    consumer_channel
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = consumer_channel
        .basic_consume(
            topology.kitchen_queue.as_str().into(),
            "test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("a message within 10 s")
        .expect("stream open")
        .expect("delivery");
    assert_eq!(first.routing_key.as_str(), "order.ready");
    assert_eq!(first.data, body);
    assert_eq!(
        first.properties.message_id().as_ref().map(|m| m.as_str()),
        Some("m-1")
    );
    assert_eq!(first.properties.delivery_mode(), &Some(2));
    first.ack(Default::default()).await.unwrap();

    let second = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("a second message within 10 s")
        .expect("stream open")
        .expect("delivery");
    assert_eq!(second.data, b"not json");
    second
        .nack(BasicNackOptions {
            requeue: false,
            ..Default::default()
        })
        .await
        .unwrap();

    // The rejected message lands in the dead queue, with its id intact.
    let dead_channel = conn.create_channel().await.unwrap();
    let mut dead = dead_channel
        .basic_consume(
            topology.dead_queue.as_str().into(),
            "test-dead".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let dead_letter = tokio::time::timeout(Duration::from_secs(10), dead.next())
        .await
        .expect("the rejected message is dead-lettered within 10 s")
        .expect("stream open")
        .expect("delivery");
    assert_eq!(dead_letter.data, b"not json");
    assert_eq!(
        dead_letter
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str()),
        Some("m-2")
    );
    dead_letter.ack(Default::default()).await.unwrap();

    // Nothing else arrived: the unbound routing key never reached the kitchen queue.
    let nothing = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await;
    assert!(nothing.is_err(), "unexpected delivery {nothing:?}");

    delete(&conn, &topology).await;
}

/// What a fake kitchen handler answers for a command, given how often it saw that message id.
type Script = Box<dyn Fn(&KitchenCommand, usize) -> Result<(), DispatchError> + Send + Sync>;

/// A kitchen handler that records every call and answers from a script.
struct FakeKitchen {
    calls: Mutex<Vec<(KitchenCommand, InboxKey)>>,
    script: Script,
}

impl FakeKitchen {
    fn new(script: Script) -> Arc<Self> {
        Arc::new(FakeKitchen {
            calls: Mutex::new(Vec::new()),
            script,
        })
    }

    fn accepting() -> Arc<Self> {
        FakeKitchen::new(Box::new(|_, _| Ok(())))
    }

    fn calls(&self) -> Vec<(KitchenCommand, InboxKey)> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl KitchenHandler for FakeKitchen {
    async fn handle(&self, command: KitchenCommand, key: InboxKey) -> Result<(), DispatchError> {
        let seen = {
            let mut calls = self.calls.lock().unwrap();
            let seen = calls
                .iter()
                .filter(|(_, k)| k.message_id == key.message_id)
                .count();
            calls.push((command.clone(), key));
            seen
        };
        (self.script)(&command, seen)
    }
}

/// A store with only an outbox (`MemoryStore` is still being written): the relay's view.
#[derive(Default)]
struct FakeOutbox {
    pending: Mutex<Vec<OutboxEvent>>,
    sent: Mutex<Vec<i64>>,
}

impl FakeOutbox {
    fn add(&self, id: i64, routing_key: &str) {
        self.pending.lock().unwrap().push(OutboxEvent {
            id,
            message_id: format!("evt-{id}"),
            routing_key: routing_key.into(),
            payload: serde_json::json!({"order_id": format!("o{id}")}),
            created_at: OffsetDateTime::now_utc(),
        });
    }

    fn sent(&self) -> Vec<i64> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl Store for FakeOutbox {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot::default())
    }
    async fn commit(&self, _batch: Batch) -> Result<(), StoreError> {
        Ok(())
    }
    async fn seen(&self, _message_id: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn order(&self, _id: &OrderId) -> Result<Option<OrderRecord>, StoreError> {
        Ok(None)
    }
    async fn order_by_tracking_id(&self, _t: &str) -> Result<Option<OrderRecord>, StoreError> {
        Ok(None)
    }
    async fn orders(&self, _query: &OrderQuery) -> Result<Vec<OrderRecord>, StoreError> {
        Ok(Vec::new())
    }
    async fn timeline(&self, _id: &OrderId) -> Result<Vec<TimelineEntry>, StoreError> {
        Ok(Vec::new())
    }
    async fn pending_outbox(&self, limit: usize) -> Result<Vec<OutboxEvent>, StoreError> {
        let sent = self.sent();
        Ok(self
            .pending
            .lock()
            .unwrap()
            .iter()
            .filter(|e| !sent.contains(&e.id))
            .take(limit)
            .cloned()
            .collect())
    }
    async fn mark_sent(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.sent.lock().unwrap().extend_from_slice(ids);
        Ok(())
    }
    async fn create_token(
        &self,
        _role: service::auth::Role,
        _courier: Option<&optimizer::model::CourierId>,
        _restaurants: &[optimizer::model::RestaurantId],
    ) -> Result<String, StoreError> {
        Err(StoreError::Invalid(
            "the relay's store keeps no tokens".into(),
        ))
    }
    fn verifier(&self) -> Arc<dyn service::auth::TokenVerifier> {
        Arc::new(service::auth::StaticTokens::default())
    }
    async fn healthy(&self) -> bool {
        true
    }
}

fn created(order_id: &str) -> String {
    format!(
        r#"{{"order_id":"{order_id}","restaurant":{{"id":"r1","lat":52.52,"lon":13.40}},
        "dropoff":{{"lat":52.50,"lon":13.42}},"placed_at":"2026-11-21T12:00:00Z",
        "ready_at":"2026-11-21T12:15:00Z"}}"#
    )
}

fn order_of(command: &KitchenCommand) -> String {
    match command {
        KitchenCommand::Created(order) => order.id.to_string(),
        KitchenCommand::Ready { order_id, .. } | KitchenCommand::Cancelled { order_id } => {
            order_id.to_string()
        }
    }
}

#[tokio::test]
async fn a_valid_created_message_reaches_the_handler_once_and_is_acked() {
    let conn = connect().await;
    let topology = topology();
    let kitchen = FakeKitchen::accepting();
    let (link, shutdown) = start_link(
        &topology,
        kitchen.clone(),
        Arc::new(FakeOutbox::default()),
        Arc::new(Notify::new()),
    )
    .await;
    assert!(link.is_connected());
    let publisher = Publisher::new(&conn).await.unwrap();
    publish_kitchen(
        &publisher,
        &topology,
        "order.created",
        Some("m-1"),
        created("o1").as_bytes(),
        "valid",
    )
    .await;

    eventually(10, "the handler gets the order", || {
        kitchen.calls().len() == 1
    })
    .await;
    stop_link(link, shutdown).await;

    let calls = kitchen.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(matches!(&calls[0].0, KitchenCommand::Created(order) if order.id.to_string() == "o1"));
    assert_eq!(
        calls[0].1,
        InboxKey {
            message_id: "m-1".into(),
            routing_key: "order.created".into()
        }
    );
    // Acked: nothing went back to the queue when the link closed, nothing was dead-lettered.
    assert_eq!(queue_depth(&conn, &topology.kitchen_queue).await, 0);
    assert_eq!(queue_depth(&conn, &topology.dead_queue).await, 0);
    delete(&conn, &topology).await;
}

/// A kitchen message that must be dead-lettered, and why.
struct Case<'a> {
    /// Told apart by a `case` header, kept on the dead letter.
    name: &'a str,
    key: &'a str,
    id: Option<&'a str>,
    body: &'a [u8],
    /// The expected `x-reason`.
    reason: &'a str,
}

#[tokio::test]
async fn malformed_or_refused_kitchen_messages_are_dead_lettered_with_their_reason() {
    let conn = connect().await;
    let topology = topology();
    let kitchen = FakeKitchen::new(Box::new(|command, _| match command {
        KitchenCommand::Ready { order_id, .. } if order_id.to_string() == "ghost" => {
            Err(DispatchError::NotFound(format!("order {order_id}")))
        }
        KitchenCommand::Created(order) if order.id.to_string() == "taken" => Err(
            DispatchError::conflict("order_conflict", "o taken exists with another body"),
        ),
        KitchenCommand::Cancelled { .. } => {
            Err(Invalid::new("order_finished", "already delivered").into())
        }
        _ => Ok(()),
    }));
    let (link, shutdown) = start_link(
        &topology,
        kitchen.clone(),
        Arc::new(FakeOutbox::default()),
        Arc::new(Notify::new()),
    )
    .await;
    let publisher = Publisher::new(&conn).await.unwrap();
    let late = created("o2").replace("12:15", "11:15");
    let far = created("o3").replace("52.52", "999");
    let anonymous = created("o4");
    let taken = created("taken");
    let cases = [
        Case {
            name: "not_json",
            key: "order.created",
            id: Some("d-1"),
            body: b"not json",
            reason: "invalid_json",
        },
        Case {
            name: "missing_field",
            key: "order.created",
            id: Some("d-2"),
            body: br#"{"order_id":"o1"}"#,
            reason: "missing_field",
        },
        Case {
            name: "latitude_999",
            key: "order.created",
            id: Some("d-3"),
            body: far.as_bytes(),
            reason: "invalid_coordinates",
        },
        Case {
            name: "ready_before_placed",
            key: "order.created",
            id: Some("d-4"),
            body: late.as_bytes(),
            reason: "ready_before_placed",
        },
        Case {
            name: "no_message_id",
            key: "order.created",
            id: None,
            body: anonymous.as_bytes(),
            reason: "missing_message_id",
        },
        Case {
            name: "unknown_key",
            key: "order.updated",
            id: Some("d-6"),
            body: b"{}",
            reason: "unknown_routing_key",
        },
        Case {
            name: "unknown_order",
            key: "order.ready",
            id: Some("d-7"),
            body: br#"{"order_id":"ghost","ready_at":"2026-11-21T12:20:00Z"}"#,
            reason: "unknown_order",
        },
        Case {
            name: "conflict",
            key: "order.created",
            id: Some("d-8"),
            body: taken.as_bytes(),
            reason: "order_conflict",
        },
        Case {
            name: "invalid_now",
            key: "order.cancelled",
            id: Some("d-9"),
            body: br#"{"order_id":"o1"}"#,
            reason: "order_finished",
        },
    ];
    // The kitchen exchange only routes the contract's keys to the queue: bind another, as a
    // misconfigured binding would.
    publisher
        .channel()
        .queue_bind(
            topology.kitchen_queue.as_str().into(),
            topology.kitchen_exchange.as_str().into(),
            "order.updated".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    for case in &cases {
        publish_kitchen(
            &publisher, &topology, case.key, case.id, case.body, case.name,
        )
        .await;
    }

    let mut dead = consume(&conn, &topology.dead_queue).await;
    let mut reasons = HashMap::new();
    for _ in 0..cases.len() {
        let letter = next_delivery(&mut dead, 10, "a dead letter").await;
        let case = header(&letter, "case").expect("the original headers are kept");
        let Case { key, id, body, .. } = cases.iter().find(|c| c.name == case).unwrap();
        assert_eq!(letter.data, *body, "{case}: the original body");
        assert_eq!(
            message_id(&letter).as_deref(),
            *id,
            "{case}: the original message id"
        );
        assert_eq!(
            header(&letter, "x-original-routing-key").as_deref(),
            Some(*key),
            "{case}"
        );
        assert!(
            header(&letter, "x-reason-detail").is_some_and(|d| !d.is_empty()),
            "{case}"
        );
        assert_eq!(
            letter.properties.delivery_mode(),
            &Some(2),
            "{case}: persistent"
        );
        reasons.insert(case, header(&letter, "x-reason").unwrap_or_default());
        letter.ack(Default::default()).await.unwrap();
    }
    for case in &cases {
        assert_eq!(
            reasons.get(case.name).map(String::as_str),
            Some(case.reason),
            "{}",
            case.name
        );
    }
    stop_link(link, shutdown).await;
    // Only the messages that parsed reached the handler, and every one was acked.
    let handled: Vec<String> = kitchen
        .calls()
        .iter()
        .map(|(_, k)| k.message_id.clone())
        .collect();
    assert_eq!(handled, ["d-7", "d-8", "d-9"]);
    assert_eq!(queue_depth(&conn, &topology.kitchen_queue).await, 0);
    assert_eq!(queue_depth(&conn, &topology.dead_queue).await, 0);
    delete(&conn, &topology).await;
}

#[tokio::test]
async fn a_message_met_by_unavailable_storage_is_redelivered_in_order_and_applied_once() {
    let conn = connect().await;
    let topology = topology();
    // The first two attempts of the create meet a database outage.
    let kitchen = FakeKitchen::new(Box::new(|command, seen| match command {
        KitchenCommand::Created(_) if seen < 2 => {
            Err(DispatchError::Unavailable(anyhow::anyhow!("database down")))
        }
        _ => Ok(()),
    }));
    let (link, shutdown) = start_link(
        &topology,
        kitchen.clone(),
        Arc::new(FakeOutbox::default()),
        Arc::new(Notify::new()),
    )
    .await;
    let publisher = Publisher::new(&conn).await.unwrap();
    publish_kitchen(
        &publisher,
        &topology,
        "order.created",
        Some("u-1"),
        created("o9").as_bytes(),
        "create",
    )
    .await;
    publish_kitchen(
        &publisher,
        &topology,
        "order.ready",
        Some("u-2"),
        br#"{"order_id":"o9","ready_at":"2026-11-21T12:20:00Z"}"#,
        "ready",
    )
    .await;

    eventually(15, "the create is retried and the ready follows", || {
        kitchen.calls().len() == 4
    })
    .await;
    stop_link(link, shutdown).await;
    let calls: Vec<(String, String)> = kitchen
        .calls()
        .iter()
        .map(|(c, k)| (k.message_id.clone(), order_of(c)))
        .collect();
    // The ready never overtook the create it depends on.
    assert_eq!(
        calls,
        [("u-1", "o9"), ("u-1", "o9"), ("u-1", "o9"), ("u-2", "o9")]
            .map(|(m, o)| (m.to_string(), o.to_string()))
    );
    assert_eq!(queue_depth(&conn, &topology.kitchen_queue).await, 0);
    assert_eq!(queue_depth(&conn, &topology.dead_queue).await, 0);
    delete(&conn, &topology).await;
}

#[tokio::test]
async fn the_relay_publishes_pending_outbox_events_with_their_ids_and_marks_them_sent() {
    let conn = connect().await;
    let topology = topology();
    let store = Arc::new(FakeOutbox::default());
    store.add(1, "order.assigned");
    store.add(2, "order.pickup_eta");
    store.add(3, "order.delivered");
    // A queue of the kitchen's, bound to the dispatch exchange.
    let setup = Publisher::new(&conn).await.unwrap();
    topology.declare(setup.channel()).await.unwrap();
    let kitchen_side = format!("{}.listener", topology.dispatch_exchange);
    setup
        .channel()
        .queue_declare(
            kitchen_side.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    setup
        .channel()
        .queue_bind(
            kitchen_side.as_str().into(),
            topology.dispatch_exchange.as_str().into(),
            "order.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let outbox = Arc::new(Notify::new());
    let (link, shutdown) = start_link(
        &topology,
        FakeKitchen::accepting(),
        store.clone(),
        outbox.clone(),
    )
    .await;

    let mut listener = consume(&conn, &kitchen_side).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let event = next_delivery(&mut listener, 10, "an outbox event").await;
        assert_eq!(event.properties.delivery_mode(), &Some(2));
        assert_eq!(
            event.properties.content_type().as_ref().map(|c| c.as_str()),
            Some("application/json")
        );
        let body: serde_json::Value = serde_json::from_slice(&event.data).unwrap();
        got.push((
            message_id(&event).unwrap(),
            event.routing_key.to_string(),
            body["order_id"].to_string(),
        ));
        event.ack(Default::default()).await.unwrap();
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("evt-1", "order.assigned", "o1"),
            ("evt-2", "order.pickup_eta", "o2"),
            ("evt-3", "order.delivered", "o3"),
        ]
        .map(|(m, k, o)| (m.to_string(), k.to_string(), format!("{o:?}")))
    );
    eventually(5, "the confirmed events are marked sent", || {
        store.sent().len() == 3
    })
    .await;

    // A commit's signal wakes the relay at once.
    store.add(4, "order.picked_up");
    outbox.notify_one();
    let event = next_delivery(&mut listener, 5, "the signalled event").await;
    assert_eq!(message_id(&event).as_deref(), Some("evt-4"));
    event.ack(Default::default()).await.unwrap();

    // What is pending at shutdown is drained.
    store.add(5, "order.failed");
    stop_link(link, shutdown).await;
    let mut sent = store.sent();
    sent.sort_unstable();
    assert_eq!(sent, [1, 2, 3, 4, 5]);
    let event = next_delivery(&mut listener, 5, "the drained event").await;
    assert_eq!(message_id(&event).as_deref(), Some("evt-5"));
    event.ack(Default::default()).await.unwrap();

    delete_queue(&conn, &kitchen_side).await;
    delete(&conn, &topology).await;
}

#[tokio::test]
async fn the_link_reconnects_by_itself_when_the_broker_closes_its_connection() {
    let conn = connect().await;
    let topology = topology();
    let kitchen = FakeKitchen::accepting();
    let (link, shutdown) = start_link(
        &topology,
        kitchen.clone(),
        Arc::new(FakeOutbox::default()),
        Arc::new(Notify::new()),
    )
    .await;
    let publisher = Publisher::new(&conn).await.unwrap();
    publish_kitchen(
        &publisher,
        &topology,
        "order.created",
        Some("r-1"),
        created("o1").as_bytes(),
        "before",
    )
    .await;
    eventually(10, "the first message is handled", || {
        kitchen.calls().len() == 1
    })
    .await;

    close_connection(&link_name(&topology));
    let mut health = link.health();
    tokio::time::timeout(Duration::from_secs(10), health.disconnected())
        .await
        .expect("the link notices the closed connection");
    tokio::time::timeout(Duration::from_secs(20), health.connected())
        .await
        .expect("the link reconnects within 20 s");

    publish_kitchen(
        &publisher,
        &topology,
        "order.created",
        Some("r-2"),
        created("o2").as_bytes(),
        "after",
    )
    .await;
    eventually(10, "the link consumes again", || {
        kitchen.calls().iter().any(|(_, k)| k.message_id == "r-2")
    })
    .await;
    stop_link(link, shutdown).await;
    assert_eq!(queue_depth(&conn, &topology.kitchen_queue).await, 0);
    delete(&conn, &topology).await;
}

/// Closes the broker connection named `name`, as a broker restart would, with `rabbitmqctl`.
fn close_connection(name: &str) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("rabbitmqctl")
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("rabbitmqctl is needed to close a connection ({e}); it comes with RabbitMQ (`scripts/services`)")
            });
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listing = run(&["list_connections", "-q", "pid", "client_properties"]);
    let pid = listing
        .lines()
        .find(|line| line.contains(name))
        .and_then(|line| line.split('\t').next())
        .unwrap_or_else(|| panic!("no connection named {name} in {listing}"))
        .to_string();
    run(&["close_connection", &pid, "test: simulated broker restart"]);
}
