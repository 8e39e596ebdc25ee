//! Where the outbox relay publishes: an [`EventSink`] takes a batch of outbox events and
//! answers once each is confirmed or refused. The RabbitMQ [`Publisher`] is one (publisher
//! confirms on the `dispatch` exchange); the demo's
//! [`InProcessBus`](super::in_process::InProcessBus) is the other.

use async_trait::async_trait;

use super::{BusError, Publisher, confirmed, json_properties};
use crate::records::OutboxEvent;

/// What became of a published batch.
#[derive(Debug, Default)]
pub struct Confirmed {
    /// Outbox ids of the events the sink confirmed (they may be marked sent).
    pub ids: Vec<i64>,
    /// The first failure, when some event was not confirmed.
    pub failure: Option<BusError>,
}

/// Publishes outbox events.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Publishes `events` to `exchange` (each with its routing key, message id and JSON
    /// payload) and returns once every one is confirmed or refused.
    async fn publish(&self, exchange: &str, events: &[OutboxEvent]) -> Confirmed;
}

#[async_trait]
impl EventSink for Publisher {
    /// Sends the whole batch, then awaits the confirmations together: one round trip per batch.
    /// A send that fails stops the batch with nothing confirmed (the channel is gone).
    async fn publish(&self, exchange: &str, events: &[OutboxEvent]) -> Confirmed {
        let mut sent = Vec::with_capacity(events.len());
        for event in events {
            match self
                .send(
                    exchange,
                    &event.routing_key,
                    event.payload.to_string().as_bytes(),
                    properties(event),
                )
                .await
            {
                Ok(confirm) => sent.push((event.id, confirm)),
                Err(error) => {
                    return Confirmed {
                        ids: Vec::new(),
                        failure: Some(error),
                    };
                }
            }
        }
        let answers = futures::future::join_all(
            sent.into_iter()
                .map(|(id, confirm)| async move { (id, confirmed(confirm).await) }),
        )
        .await;
        let mut outcome = Confirmed::default();
        for (id, answer) in answers {
            match answer {
                Ok(()) => outcome.ids.push(id),
                Err(error) => outcome.failure = outcome.failure.or(Some(error)),
            }
        }
        outcome
    }
}

/// A persistent JSON message with the event's stable id and creation time.
fn properties(event: &OutboxEvent) -> lapin::BasicProperties {
    let at = u64::try_from(event.created_at.unix_timestamp()).unwrap_or(0);
    json_properties(&event.message_id).with_timestamp(at)
}
