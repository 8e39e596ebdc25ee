//! The kitchen queue's consumer: each delivery is parsed by its routing key into a
//! [`KitchenCommand`], applied once through a [`KitchenHandler`] (the [`Dispatch`] core in
//! production, a fake in tests), and settled by what happened:
//!
//! | outcome | delivery |
//! |---|---|
//! | applied, or a duplicate | acked |
//! | unparsable, invalid, unknown order, conflict | copied to the dead queue with the reason in `x-reason`, then acked |
//! | storage unavailable, or the dead-letter publish failed | requeued after a pause |
//!
//! Deliveries are processed one at a time, in queue order, so an `order.ready` right after its
//! `order.created` never overtakes it (the core serialises its changes anyway, so parallel
//! handling would gain little). A message to retry is held for a pause, taking no other, then
//! requeued; the channel is closed too, which hands every prefetched message back in its
//! original position: a database outage neither spins nor reorders.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tracing::{Span, instrument};

use super::{BusError, KITCHEN_KEYS, Publisher, Topology, confirmed, metric};
use crate::dispatch::{Dispatch, DispatchError, Invalid, KitchenCommand, NewOrder};
use crate::records::InboxKey;
use crate::wire::{self, OrderCancelled, OrderCreated, OrderReady};

/// Deliveries the broker sends ahead of the one being processed.
pub const DEFAULT_PREFETCH: u16 = 64;

/// How long the consumer holds a message to retry, taking no other, before requeueing it.
pub const DEFAULT_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Applies parsed kitchen messages; the consumer's only view of the core.
#[async_trait]
pub trait KitchenHandler: Send + Sync + 'static {
    /// Applies `command` once per `key`.
    ///
    /// # Errors
    /// [`DispatchError::Duplicate`] when `key` was applied before (the delivery is acked);
    /// [`DispatchError::Invalid`], [`DispatchError::NotFound`] or [`DispatchError::Conflict`]
    /// when it can never be applied (dead-lettered); [`DispatchError::Unavailable`] to retry
    /// later (requeued).
    async fn handle(&self, command: KitchenCommand, key: InboxKey) -> Result<(), DispatchError>;
}

#[async_trait]
impl KitchenHandler for Dispatch {
    async fn handle(&self, command: KitchenCommand, key: InboxKey) -> Result<(), DispatchError> {
        self.kitchen(command, key).await
    }
}

/// Why a kitchen message goes to the dead queue: the `x-reason` and `x-reason-detail` headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Machine-readable reason (`invalid_json`, `missing_field`, `unknown_order`, ...).
    pub code: &'static str,
    /// Human-readable explanation.
    pub detail: String,
}

impl Rejection {
    fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Rejection {
            code,
            detail: detail.into(),
        }
    }
}

impl From<Invalid> for Rejection {
    fn from(invalid: Invalid) -> Self {
        Rejection::new(invalid.code, invalid.detail)
    }
}

/// Parses one kitchen message into its command and idempotency key.
///
/// # Errors
/// A [`Rejection`]: `unknown_routing_key`, `missing_message_id`, `invalid_json`,
/// `missing_field`, `unknown_field`, `invalid_field`, or a check of [`NewOrder`]'s conversion
/// (`invalid_coordinates`, `ready_before_placed`, ...).
pub fn parse(
    routing_key: &str,
    message_id: Option<&str>,
    body: &[u8],
) -> Result<(KitchenCommand, InboxKey), Rejection> {
    if !KITCHEN_KEYS.contains(&routing_key) {
        return Err(Rejection::new(
            "unknown_routing_key",
            format!("kitchen messages are routed with {KITCHEN_KEYS:?}, not {routing_key:?}"),
        ));
    }
    let message_id = message_id
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| {
            Rejection::new(
                "missing_message_id",
                "the AMQP message_id property is the idempotency key and must be set",
            )
        })?;
    let command = match routing_key {
        "order.created" => {
            KitchenCommand::Created(NewOrder::try_from(json::<OrderCreated>(body)?)?)
        }
        "order.ready" => {
            let ready: OrderReady = json(body)?;
            KitchenCommand::Ready {
                order_id: wire::order_id(&ready.order_id)?,
                ready_at: ready.ready_at,
            }
        }
        _ => {
            let cancelled: OrderCancelled = json(body)?;
            KitchenCommand::Cancelled {
                order_id: wire::order_id(&cancelled.order_id)?,
            }
        }
    };
    let key = InboxKey {
        message_id: message_id.to_string(),
        routing_key: routing_key.to_string(),
    };
    Ok((command, key))
}

/// Deserialises a body, naming what is wrong with it.
fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Rejection> {
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        let code = match e.classify() {
            serde_json::error::Category::Data if text.starts_with("missing field") => {
                "missing_field"
            }
            serde_json::error::Category::Data if text.starts_with("unknown field") => {
                "unknown_field"
            }
            serde_json::error::Category::Data => "invalid_field",
            _ => "invalid_json",
        };
        Rejection::new(code, text)
    })
}

/// What the handler's answer means for the message (the RabbitMQ consumer and the in-process
/// bus settle by it alike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Done: ack (`applied` or `duplicate`).
    Ack(&'static str),
    /// Never applicable: dead-letter, then ack.
    Dead(Rejection),
    /// Try again later: requeue.
    Retry,
}

/// Applies one parsed kitchen message through `handler` and judges the answer. The handler
/// runs on its own task, so that a caller torn down mid-message never cancels a change half-way
/// through its commit.
pub async fn apply(
    handler: Arc<dyn KitchenHandler>,
    command: KitchenCommand,
    key: InboxKey,
) -> Verdict {
    let answer = tokio::spawn(async move { handler.handle(command, key).await }).await;
    match answer {
        Ok(Ok(())) => Verdict::Ack("applied"),
        Ok(Err(DispatchError::Duplicate)) => Verdict::Ack("duplicate"),
        Ok(Err(DispatchError::Invalid(invalid))) => Verdict::Dead(invalid.into()),
        Ok(Err(DispatchError::NotFound(what))) => {
            Verdict::Dead(Rejection::new("unknown_order", format!("{what} not found")))
        }
        Ok(Err(DispatchError::Conflict { code, detail })) => {
            Verdict::Dead(Rejection::new(code, detail))
        }
        Ok(Err(DispatchError::Unavailable(error))) => {
            tracing::warn!(error = %format!("{error:#}"), "Storage unavailable; the message is retried.");
            Verdict::Retry
        }
        Err(panicked) => {
            // A bug in the handler: retrying may hit it again, but dropping the order
            // would be worse, and the pause keeps it from spinning.
            tracing::error!(error = %panicked, "The kitchen handler panicked; the message is retried.");
            Verdict::Retry
        }
    }
}

/// How one delivery was settled.
enum Settled {
    /// Acked; take the next one.
    Done,
    /// Requeued; pause before taking more.
    Requeued,
}

/// Consumes the kitchen queue until told to stop.
pub struct KitchenConsumer {
    /// Applies the parsed commands.
    handler: Arc<dyn KitchenHandler>,
    /// The queue consumed and the dead queue.
    topology: Topology,
    /// The broker's prefetch window.
    prefetch: u16,
    /// How long a message to retry is held before it is requeued, so an outage does not spin.
    retry_pause: Duration,
}

impl KitchenConsumer {
    /// A consumer of `topology`'s kitchen queue, with the default prefetch and retry pause.
    pub fn new(handler: Arc<dyn KitchenHandler>, topology: Topology) -> Self {
        KitchenConsumer {
            handler,
            topology,
            prefetch: DEFAULT_PREFETCH,
            retry_pause: DEFAULT_RETRY_PAUSE,
        }
    }

    /// Sets the prefetch window (at least 1).
    #[must_use]
    pub fn with_prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    /// Sets how long a message to retry is held before it is requeued.
    #[must_use]
    pub fn with_retry_pause(mut self, pause: Duration) -> Self {
        self.retry_pause = pause;
        self
    }

    /// Consumes on `conn` until `stop` is cancelled, then cancels the consumer after the
    /// in-flight message is settled and closes its channel (prefetched messages go back to
    /// the queue). Returns `Ok` only after `stop`.
    ///
    /// # Errors
    /// [`BusError`] when the connection or a channel fails, or the broker ends the consumer:
    /// the caller reconnects.
    pub async fn run(&self, conn: &Connection, stop: &CancellationToken) -> Result<(), BusError> {
        let dead = Publisher::new(conn).await?;
        loop {
            let channel = self.open(conn).await?;
            let mut consumer = channel
                .basic_consume(
                    self.topology.kitchen_queue.as_str().into(),
                    ShortString::from(""),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|source| BusError::Broker {
                    operation: "consume",
                    source,
                })?;
            tracing::info!(queue = %self.topology.kitchen_queue, "Consuming kitchen messages.");
            loop {
                let next = tokio::select! {
                    biased;
                    () = stop.cancelled() => {
                        let _ = channel
                            .basic_cancel(consumer.tag(), BasicCancelOptions::default())
                            .await;
                        let _ = channel.close(200, "shutdown".into()).await;
                        return Ok(());
                    }
                    next = consumer.next() => next,
                };
                let delivery = match next {
                    Some(Ok(delivery)) => delivery,
                    Some(Err(source)) => {
                        return Err(BusError::Broker {
                            operation: "consume",
                            source,
                        });
                    }
                    None => {
                        return Err(BusError::ConsumerEnded {
                            queue: self.topology.kitchen_queue.clone(),
                        });
                    }
                };
                match self.process(&dead, delivery).await? {
                    Settled::Done => {}
                    Settled::Requeued => break,
                }
            }
            // Closing the channel hands the prefetched messages back in queue order, so none
            // overtakes the one requeued; the pause before the requeue kept the consumer idle.
            let _ = channel.close(200, "retry later".into()).await;
            if stop.is_cancelled() {
                return Ok(());
            }
        }
    }

    /// A channel with the prefetch window set.
    async fn open(&self, conn: &Connection) -> Result<Channel, BusError> {
        let channel = conn
            .create_channel()
            .await
            .map_err(|source| BusError::Broker {
                operation: "channel open",
                source,
            })?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(|source| BusError::Broker {
                operation: "qos",
                source,
            })?;
        Ok(channel)
    }

    /// Parses, applies and settles one delivery.
    #[instrument(skip_all, fields(message_id, routing_key))]
    async fn process(&self, dead: &Publisher, delivery: Delivery) -> Result<Settled, BusError> {
        let span = Span::current();
        let routing_key = delivery.routing_key.as_str();
        span.record("routing_key", routing_key);
        let message_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str());
        if let Some(id) = message_id {
            span.record("message_id", id);
        }
        let key_label = KITCHEN_KEYS
            .into_iter()
            .find(|k| *k == routing_key)
            .unwrap_or("other");
        let verdict = match parse(routing_key, message_id, &delivery.data) {
            Err(rejection) => Verdict::Dead(rejection),
            Ok((command, key)) => self.apply(command, key).await,
        };
        let outcome = match verdict {
            Verdict::Ack(outcome) => {
                ack(&delivery).await?;
                tracing::debug!(outcome, "Kitchen message settled.");
                outcome
            }
            Verdict::Dead(rejection) => {
                match dead_letter(dead, &self.topology, &delivery, &rejection).await {
                    Ok(()) => {
                        ack(&delivery).await?;
                        metrics::counter!(metric::KITCHEN_DEAD_LETTERED, "reason" => rejection.code)
                        .increment(1);
                        tracing::warn!(
                            reason = rejection.code,
                            detail = %rejection.detail,
                            "Kitchen message dead-lettered."
                        );
                        "dead_lettered"
                    }
                    Err(error) => {
                        tracing::warn!(%error, "Dead-lettering failed; the message is requeued.");
                        tokio::time::sleep(self.retry_pause).await;
                        requeue(&delivery, "dead_letter_failed").await?;
                        metrics::counter!(metric::KITCHEN_CONSUMED, "routing_key" => key_label, "outcome" => "requeued")
                        .increment(1);
                        return Ok(Settled::Requeued);
                    }
                }
            }
            Verdict::Retry => {
                // Wait before handing it back, so the broker does not redeliver it at once.
                tokio::time::sleep(self.retry_pause).await;
                requeue(&delivery, "unavailable").await?;
                metrics::counter!(metric::KITCHEN_CONSUMED, "routing_key" => key_label, "outcome" => "requeued")
                    .increment(1);
                return Ok(Settled::Requeued);
            }
        };
        metrics::counter!(metric::KITCHEN_CONSUMED, "routing_key" => key_label, "outcome" => outcome)
            .increment(1);
        Ok(Settled::Done)
    }

    /// Applies through the handler ([`apply`]).
    async fn apply(&self, command: KitchenCommand, key: InboxKey) -> Verdict {
        apply(self.handler.clone(), command, key).await
    }
}

/// Acks one delivery.
async fn ack(delivery: &Delivery) -> Result<(), BusError> {
    delivery
        .ack(BasicAckOptions::default())
        .await
        .map(|_| ())
        .map_err(|source| BusError::Broker {
            operation: "ack",
            source,
        })
}

/// Hands one delivery back to the queue.
async fn requeue(delivery: &Delivery, cause: &'static str) -> Result<(), BusError> {
    metrics::counter!(metric::KITCHEN_REQUEUED, "cause" => cause).increment(1);
    delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        })
        .await
        .map(|_| ())
        .map_err(|source| BusError::Broker {
            operation: "nack",
            source,
        })
}

/// Publishes the original body to the dead queue with the reason in headers, and waits for the
/// broker's confirmation.
async fn dead_letter(
    dead: &Publisher,
    topology: &Topology,
    delivery: &Delivery,
    rejection: &Rejection,
) -> Result<(), BusError> {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    let text = |s: &str| AMQPValue::LongString(LongString::from(s));
    headers.insert("x-reason".into(), text(rejection.code));
    headers.insert("x-reason-detail".into(), text(&rejection.detail));
    headers.insert(
        "x-original-routing-key".into(),
        text(delivery.routing_key.as_str()),
    );
    headers.insert(
        "x-original-exchange".into(),
        text(delivery.exchange.as_str()),
    );
    if let Some(id) = delivery.properties.message_id() {
        headers.insert("x-original-message-id".into(), text(id.as_str()));
    }
    let properties = delivery
        .properties
        .clone()
        .with_delivery_mode(2)
        .with_headers(headers);
    let confirm = dead
        .send("", &topology.dead_queue, &delivery.data, properties)
        .await?;
    confirmed(confirm).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED: &str = r#"{"order_id":"o1","restaurant":{"id":"r1","lat":52.52,"lon":13.40},
        "dropoff":{"lat":52.50,"lon":13.42},"placed_at":"2026-11-21T12:00:00Z",
        "ready_at":"2026-11-21T12:15:00Z"}"#;

    fn code(key: &str, id: Option<&str>, body: &str) -> &'static str {
        parse(key, id, body.as_bytes()).unwrap_err().code
    }

    #[test]
    fn a_valid_created_message_becomes_a_new_order() {
        let (command, key) = parse("order.created", Some("m1"), CREATED.as_bytes()).unwrap();
        assert!(matches!(command, KitchenCommand::Created(order) if order.id.as_str() == "o1"));
        assert_eq!(key.message_id, "m1");
        assert_eq!(key.routing_key, "order.created");
    }

    #[test]
    fn malformed_messages_are_rejected_with_a_reason() {
        assert_eq!(code("order.created", Some("m"), "not json"), "invalid_json");
        assert_eq!(
            code("order.created", Some("m"), r#"{"order_id":"o1"}"#),
            "missing_field"
        );
        assert_eq!(
            code("order.cancelled", Some("m"), r#"{"order_id":"o1","x":1}"#),
            "unknown_field"
        );
        assert_eq!(
            code(
                "order.ready",
                Some("m"),
                r#"{"order_id":"o1","ready_at":"soon"}"#
            ),
            "invalid_field"
        );
        assert_eq!(
            code("order.created", Some("m"), &CREATED.replace("52.52", "999")),
            "invalid_coordinates"
        );
        assert_eq!(
            code(
                "order.created",
                Some("m"),
                &CREATED.replace("12:15", "11:15")
            ),
            "ready_before_placed"
        );
        assert_eq!(code("order.created", None, CREATED), "missing_message_id");
        assert_eq!(
            code("order.created", Some(" "), CREATED),
            "missing_message_id"
        );
        assert_eq!(code("menu.updated", Some("m"), "{}"), "unknown_routing_key");
        assert_eq!(
            code("order.cancelled", Some("m"), r#"{"order_id":""}"#),
            "invalid_order_id"
        );
    }
}
