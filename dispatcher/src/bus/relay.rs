//! The outbox relay: publishes the events the core wrote with its changes to the `dispatch`
//! exchange through an [`EventSink`] (RabbitMQ, or the demo's in-process bus), and marks them
//! sent only once the sink confirmed them.
//!
//! Delivery is at least once: a crash between the broker's confirmation and `mark_sent` sends
//! the event again, with the same `message_id`, so consumers can drop the copy. A batch is sent
//! in one go and its confirmations awaited together, so a batch costs one round trip, not one
//! per event.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::sink::{Confirmed, EventSink};
use super::{BusError, Topology, metric};
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
    pub async fn publish_pending(&self, sink: &dyn EventSink) -> Result<usize, RelayError> {
        let events = self
            .store
            .pending_outbox(self.batch)
            .await
            .map_err(RelayError::Store)?;
        if events.is_empty() {
            return Ok(0);
        }
        let Confirmed { ids, failure } = sink.publish(&self.exchange, &events).await;
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
        sink: &dyn EventSink,
        stop: &CancellationToken,
    ) -> Result<(), BusError> {
        let mut backoff = self.min_backoff;
        loop {
            let wait = match self.publish_pending(sink).await {
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
                    self.drain(sink).await;
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
    async fn drain(&self, sink: &dyn EventSink) {
        let drained = tokio::time::timeout(self.drain_timeout, async {
            loop {
                match self.publish_pending(sink).await {
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
