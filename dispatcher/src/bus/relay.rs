//! The outbox relay: publishes the events the core wrote with its changes to the `dispatch`
//! exchange, and marks them sent only once the broker confirmed them.
//!
//! Delivery is at least once: a crash between the broker's confirmation and `mark_sent` sends
//! the event again, with the same `message_id`, so consumers can drop the copy. A batch is sent
//! in one go and its confirmations awaited together, so a batch costs one round trip, not one
//! per event.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{BusError, Publisher, Topology, confirmed, json_properties, metric};
use crate::records::OutboxEvent;
use crate::store::{Store, StoreError};

/// Events read and published per round.
pub const DEFAULT_BATCH: usize = 500;

/// Why a relay round failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Reading the outbox or marking events sent failed.
    #[error("outbox storage failed")]
    Store(#[source] StoreError),
    /// Publishing failed or the broker refused an event.
    #[error("publishing outbox events failed")]
    Bus(#[source] BusError),
}

/// Publishes the outbox until told to stop.
pub struct OutboxRelay {
    /// Where the events wait.
    store: Arc<dyn Store>,
    /// The `dispatch` exchange.
    exchange: String,
    /// Wakes the relay after a commit that wrote events.
    signal: Arc<Notify>,
    /// Events per round.
    batch: usize,
    /// How often to look without a wake-up (events written by another process, or a missed
    /// signal).
    tick: Duration,
    /// How long a failed round waits at first (doubling up to `max_backoff`).
    min_backoff: Duration,
    /// The longest wait after failures.
    max_backoff: Duration,
    /// How long shutdown may spend publishing what is pending.
    drain_timeout: Duration,
}

impl OutboxRelay {
    /// A relay of `store`'s outbox to `topology`'s dispatch exchange, woken by `signal`.
    pub fn new(store: Arc<dyn Store>, topology: &Topology, signal: Arc<Notify>) -> Self {
        OutboxRelay {
            store,
            exchange: topology.dispatch_exchange.clone(),
            signal,
            batch: DEFAULT_BATCH,
            tick: Duration::from_secs(1),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
        }
    }

    /// Sets how long shutdown may spend publishing what is pending.
    #[must_use]
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Publishes one batch of pending events and marks the confirmed ones sent. Returns how
    /// many were read.
    ///
    /// # Errors
    /// [`RelayError::Store`] when the outbox cannot be read or marked; [`RelayError::Bus`]
    /// when publishing fails or the broker refuses an event (those confirmed are still marked).
    pub async fn publish_pending(&self, publisher: &Publisher) -> Result<usize, RelayError> {
        let events = self
            .store
            .pending_outbox(self.batch)
            .await
            .map_err(RelayError::Store)?;
        if events.is_empty() {
            return Ok(0);
        }
        let mut sent = Vec::with_capacity(events.len());
        for event in &events {
            let confirm = publisher
                .send(
                    &self.exchange,
                    &event.routing_key,
                    event.payload.to_string().as_bytes(),
                    properties(event),
                )
                .await
                .map_err(RelayError::Bus)?;
            sent.push((event.id, confirm));
        }
        let answers = futures::future::join_all(
            sent.into_iter()
                .map(|(id, confirm)| async move { (id, confirmed(confirm).await) }),
        )
        .await;
        let mut ids = Vec::with_capacity(answers.len());
        let mut failure = None;
        for (id, answer) in answers {
            match answer {
                Ok(()) => ids.push(id),
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        if !ids.is_empty() {
            self.store
                .mark_sent(&ids)
                .await
                .map_err(RelayError::Store)?;
            metrics::counter!(metric::OUTBOX_PUBLISHED).increment(ids.len() as u64);
            tracing::debug!(events = ids.len(), "Outbox events published.");
        }
        match failure {
            Some(error) => Err(RelayError::Bus(error)),
            None => Ok(events.len()),
        }
    }

    /// Publishes until `stop` is cancelled, then drains what is pending (bounded by the drain
    /// timeout). Store failures and refused events are retried with backoff.
    ///
    /// # Errors
    /// [`BusError`] when the channel or connection fails: the caller reconnects.
    pub async fn run(
        &self,
        publisher: &Publisher,
        stop: &CancellationToken,
    ) -> Result<(), BusError> {
        let mut backoff = self.min_backoff;
        loop {
            let wait = match self.publish_pending(publisher).await {
                Ok(read) => {
                    backoff = self.min_backoff;
                    if read >= self.batch {
                        // More may be waiting.
                        continue;
                    }
                    None
                }
                Err(RelayError::Store(error)) => {
                    metrics::counter!(metric::OUTBOX_FAILURES, "cause" => "store").increment(1);
                    tracing::warn!(error = %error, "Outbox storage failed; retrying.");
                    Some(backoff)
                }
                Err(RelayError::Bus(BusError::Nacked)) => {
                    metrics::counter!(metric::OUTBOX_FAILURES, "cause" => "nack").increment(1);
                    tracing::warn!("The broker refused an outbox event; retrying.");
                    Some(backoff)
                }
                Err(RelayError::Bus(error)) => {
                    metrics::counter!(metric::OUTBOX_FAILURES, "cause" => "broker").increment(1);
                    return Err(error);
                }
            };
            let pause = async {
                match wait {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => {
                        tokio::select! {
                            () = self.signal.notified() => {}
                            () = tokio::time::sleep(self.tick) => {}
                        }
                    }
                }
            };
            tokio::select! {
                () = stop.cancelled() => {
                    self.drain(publisher).await;
                    return Ok(());
                }
                () = pause => {}
            }
            if wait.is_some() {
                backoff = (backoff * 2).min(self.max_backoff);
            }
        }
    }

    /// Publishes what is pending until nothing is, a round fails, or the drain timeout.
    async fn drain(&self, publisher: &Publisher) {
        let drained = tokio::time::timeout(self.drain_timeout, async {
            loop {
                match self.publish_pending(publisher).await {
                    Ok(read) if read >= self.batch => {}
                    Ok(_) => return Ok(()),
                    Err(error) => return Err(error),
                }
            }
        })
        .await;
        match drained {
            Ok(Ok(())) => tracing::info!("Outbox drained."),
            Ok(Err(error)) => {
                tracing::warn!(%error, "Draining the outbox failed; the rest is sent after restart.");
            }
            Err(_) => {
                tracing::warn!("Draining the outbox timed out; the rest is sent after restart.");
            }
        }
    }
}

/// A persistent JSON message with the event's stable id and creation time.
fn properties(event: &OutboxEvent) -> lapin::BasicProperties {
    let at = u64::try_from(event.created_at.unix_timestamp()).unwrap_or(0);
    json_properties(&event.message_id).with_timestamp(at)
}
