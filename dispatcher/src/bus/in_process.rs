//! The broker of `dispatcher demo`, in process. Kitchen messages go in through
//! [`InProcessBus::publish_kitchen`], which parses and applies them exactly as the RabbitMQ
//! consumer does ([`consumer::parse`], then [`consumer::apply`] on the [`KitchenHandler`]) and
//! keeps what cannot be applied in a dead list with its reason. Dispatch events come out of the
//! [`OutboxRelay`](super::relay::OutboxRelay), for which the bus is an [`EventSink`]: each is
//! broadcast to [`InProcessBus::subscribe`]rs as `(routing_key, message_id, payload)`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::consumer::{self, KitchenHandler, Rejection, Verdict};
use super::metric;
use super::sink::{Confirmed, EventSink};
use crate::records::OutboxEvent;

/// Dispatch events kept for a subscriber that falls behind.
const EVENT_BUFFER: usize = 16_384;

/// How often a message whose storage was unavailable is tried again before it counts as lost.
const RETRIES: u32 = 5;

/// Between two tries of such a message.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Dead letters kept (the oldest go first).
const DEAD_KEPT: usize = 10_000;

/// One dispatch event as published: routing key, message id and JSON payload.
pub type BusEvent = (String, String, serde_json::Value);

/// A kitchen message that could not be applied, as `kitchen.dead` would hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its routing key.
    pub routing_key: String,
    /// Its message id, if it had one.
    pub message_id: Option<String>,
    /// The body as sent.
    pub body: Vec<u8>,
    /// Why (the `x-reason` and `x-reason-detail` headers).
    pub reason: Rejection,
}

/// The in-process bus. Share it in an `Arc`.
pub struct InProcessBus {
    /// Applies kitchen messages (the dispatch core).
    handler: Arc<dyn KitchenHandler>,
    /// Dispatch events to whoever listens (the simulated kitchens).
    events: broadcast::Sender<BusEvent>,
    /// Kitchen messages that could not be applied, oldest first.
    dead: Mutex<Vec<DeadLetter>>,
}

impl InProcessBus {
    /// A bus applying kitchen messages with `handler`.
    pub fn new(handler: Arc<dyn KitchenHandler>) -> Self {
        InProcessBus {
            handler,
            events: broadcast::channel(EVENT_BUFFER).0,
            dead: Mutex::default(),
        }
    }

    /// Dispatch events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.events.subscribe()
    }

    /// Takes one kitchen message as the consumer takes a delivery and answers how it was
    /// settled: [`Verdict::Ack`] (applied or duplicate), [`Verdict::Dead`] (kept in the dead
    /// list) or, when storage stayed unavailable through the retries, [`Verdict::Retry`].
    #[tracing::instrument(skip_all, fields(routing_key, message_id))]
    pub async fn publish_kitchen(
        &self,
        routing_key: &str,
        message_id: Option<&str>,
        body: &[u8],
    ) -> Verdict {
        let (command, key) = match consumer::parse(routing_key, message_id, body) {
            Ok(parsed) => parsed,
            Err(rejection) => return self.bury(routing_key, message_id, body, rejection),
        };
        let mut tries = 0;
        loop {
            tries += 1;
            match consumer::apply(self.handler.clone(), command.clone(), key.clone()).await {
                Verdict::Retry if tries < RETRIES => tokio::time::sleep(RETRY_PAUSE).await,
                Verdict::Dead(rejection) => {
                    return self.bury(routing_key, message_id, body, rejection);
                }
                verdict => return verdict,
            }
        }
    }

    /// Keeps a message in the dead list.
    fn bury(
        &self,
        routing_key: &str,
        message_id: Option<&str>,
        body: &[u8],
        reason: Rejection,
    ) -> Verdict {
        metrics::counter!(metric::KITCHEN_DEAD_LETTERED, "reason" => reason.code).increment(1);
        tracing::warn!(reason = reason.code, detail = %reason.detail, "Kitchen message dead-lettered.");
        let mut dead = self.dead.lock().unwrap_or_else(|p| p.into_inner());
        if dead.len() >= DEAD_KEPT {
            dead.remove(0);
        }
        dead.push(DeadLetter {
            routing_key: routing_key.to_string(),
            message_id: message_id.map(str::to_string),
            body: body.to_vec(),
            reason: reason.clone(),
        });
        Verdict::Dead(reason)
    }

    /// The dead list, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl EventSink for InProcessBus {
    /// Broadcasts each event; with no subscriber it is confirmed all the same (as a broker
    /// confirms a message routed to no queue).
    async fn publish(&self, _exchange: &str, events: &[OutboxEvent]) -> Confirmed {
        for event in events {
            let _ = self.events.send((
                event.routing_key.clone(),
                event.message_id.clone(),
                event.payload.clone(),
            ));
        }
        Confirmed {
            ids: events.iter().map(|e| e.id).collect(),
            failure: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use time::OffsetDateTime;
    use tokio::sync::Notify;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::bus::Topology;
    use crate::bus::relay::OutboxRelay;
    use crate::dispatch::{DispatchError, KitchenCommand};
    use crate::records::InboxKey;
    use crate::store::{Batch, MemoryStore, Store};

    /// Applies each message id once; a body for order `down` is unavailable at first.
    #[derive(Default)]
    struct Kitchen {
        seen: Mutex<Vec<String>>,
        unavailable: AtomicUsize,
    }

    #[async_trait]
    impl KitchenHandler for Kitchen {
        async fn handle(
            &self,
            command: KitchenCommand,
            key: InboxKey,
        ) -> Result<(), DispatchError> {
            if let KitchenCommand::Cancelled { order_id } = &command
                && order_id.as_str() == "down"
                && self.unavailable.fetch_add(1, Ordering::SeqCst) < 2
            {
                return Err(DispatchError::Unavailable(anyhow::anyhow!("down")));
            }
            if let KitchenCommand::Cancelled { order_id } = &command
                && order_id.as_str() == "gone"
            {
                return Err(DispatchError::NotFound(format!("order {order_id}")));
            }
            let mut seen = self.seen.lock().unwrap();
            if seen.contains(&key.message_id) {
                return Err(DispatchError::Duplicate);
            }
            seen.push(key.message_id);
            Ok(())
        }
    }

    fn created(order_id: &str) -> String {
        format!(
            r#"{{"order_id":"{order_id}","restaurant":{{"id":"r1","lat":52.52,"lon":13.40}},
            "dropoff":{{"lat":52.50,"lon":13.42}},"placed_at":"2026-11-21T12:00:00Z",
            "ready_at":"2026-11-21T12:15:00Z"}}"#
        )
    }

    #[tokio::test]
    async fn kitchen_messages_are_applied_once_and_the_unparsable_kept_with_their_reason() {
        let kitchen = Arc::new(Kitchen::default());
        let bus = InProcessBus::new(kitchen.clone());
        let body = created("o1");
        assert_eq!(
            bus.publish_kitchen("order.created", Some("m1"), body.as_bytes())
                .await,
            Verdict::Ack("applied")
        );
        assert_eq!(
            bus.publish_kitchen("order.created", Some("m1"), body.as_bytes())
                .await,
            Verdict::Ack("duplicate")
        );
        let no_id = bus
            .publish_kitchen("order.created", None, body.as_bytes())
            .await;
        let bad_json = bus.publish_kitchen("order.ready", Some("m2"), b"{").await;
        let unknown = bus
            .publish_kitchen("order.cancelled", Some("m3"), br#"{"order_id":"gone"}"#)
            .await;
        assert!(matches!(no_id, Verdict::Dead(ref r) if r.code == "missing_message_id"));
        assert!(matches!(bad_json, Verdict::Dead(ref r) if r.code == "invalid_json"));
        assert!(matches!(unknown, Verdict::Dead(ref r) if r.code == "unknown_order"));
        let dead = bus.dead_letters();
        let codes: Vec<_> = dead.iter().map(|d| d.reason.code).collect();
        assert_eq!(
            codes,
            ["missing_message_id", "invalid_json", "unknown_order"]
        );
        assert_eq!(dead[1].body, b"{");
        assert_eq!(dead[2].message_id.as_deref(), Some("m3"));
        assert_eq!(*kitchen.seen.lock().unwrap(), ["m1"]);
    }

    #[tokio::test]
    async fn a_message_meeting_unavailable_storage_is_tried_again() {
        let kitchen = Arc::new(Kitchen::default());
        let bus = InProcessBus::new(kitchen.clone());
        let verdict = bus
            .publish_kitchen("order.cancelled", Some("m1"), br#"{"order_id":"down"}"#)
            .await;
        assert_eq!(verdict, Verdict::Ack("applied"));
        assert_eq!(kitchen.unavailable.load(Ordering::SeqCst), 3);
        assert!(bus.dead_letters().is_empty());
    }

    #[tokio::test]
    async fn the_relay_broadcasts_the_outbox_through_the_bus_and_marks_it_sent() {
        let store = Arc::new(MemoryStore::new());
        let bus = Arc::new(InProcessBus::new(Arc::new(Kitchen::default())));
        let mut events = bus.subscribe();
        let event = |id: &str| OutboxEvent {
            id: 0,
            message_id: id.into(),
            routing_key: "order.assigned".into(),
            payload: serde_json::json!({"order_id": id}),
            created_at: OffsetDateTime::now_utc(),
        };
        store
            .commit(Batch {
                outbox: vec![event("e1"), event("e2")],
                ..Batch::default()
            })
            .await
            .unwrap();
        let signal = Arc::new(Notify::new());
        let relay = OutboxRelay::new(store.clone(), &Topology::default(), signal.clone());
        let stop = CancellationToken::new();
        let running = {
            let (bus, stop) = (bus.clone(), stop.clone());
            tokio::spawn(async move { relay.run(&*bus, &stop).await })
        };
        for expected in ["e1", "e2"] {
            let (key, id, payload) = tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .expect("an event within 5 s")
                .unwrap();
            assert_eq!((key.as_str(), id.as_str()), ("order.assigned", expected));
            assert_eq!(payload["order_id"], expected);
        }
        stop.cancel();
        running.await.unwrap().unwrap();
        assert!(store.pending_outbox(10).await.unwrap().is_empty());
    }
}
