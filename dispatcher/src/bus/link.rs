//! The kitchen link: one supervised RabbitMQ connection that declares the topology and runs the
//! kitchen [`KitchenConsumer`] and the [`OutboxRelay`] on it. When the connection or a channel
//! fails (a broker restart, a closed connection, a deleted queue) it reconnects with backoff and
//! resumes by itself; `/healthz` reads [`LinkHealth`].
//!
//! Shutdown, on the token given to [`KitchenLink::start`]: the consumer is cancelled after the
//! message in flight is settled, then the outbox is drained (the last message may have written
//! events), then the connection is closed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::{Connection, ConnectionProperties, Event};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::consumer::{DEFAULT_PREFETCH, DEFAULT_RETRY_PAUSE, KitchenConsumer, KitchenHandler};
use super::relay::OutboxRelay;
use super::{BusError, Publisher, Topology, connect_with, metric, redact};
use crate::store::Store;

/// The first wait before reconnecting; it doubles up to [`MAX_RECONNECT_DELAY`].
/// How long winding down a failed session (cancelling, closing channels) may take.
const WIND_DOWN: Duration = Duration::from_secs(5);
const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(100);

/// The longest wait between reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// How often the link checks that its connection is still up, besides the broker's events.
const CONNECTION_CHECK: Duration = Duration::from_secs(1);

/// What the link needs; [`KitchenLink::start`] runs it.
pub struct KitchenLink {
    /// The broker (with credentials; logged only redacted).
    url: String,
    /// The exchanges and queues.
    topology: Topology,
    /// Applies kitchen messages.
    handler: Arc<dyn KitchenHandler>,
    /// Holds the outbox.
    store: Arc<dyn Store>,
    /// Wakes the relay after commits with events.
    outbox: Arc<Notify>,
    /// Shown in `rabbitmqctl list_connections` (tests find their connection by it).
    connection_name: String,
    /// The consumer's prefetch window.
    prefetch: u16,
    /// How long the consumer holds a message to retry before requeueing it.
    retry_pause: Duration,
}

impl KitchenLink {
    /// A link to `url` for `topology`, applying kitchen messages with `handler` and relaying
    /// `store`'s outbox when `outbox` is notified.
    pub fn new(
        url: impl Into<String>,
        topology: Topology,
        handler: Arc<dyn KitchenHandler>,
        store: Arc<dyn Store>,
        outbox: Arc<Notify>,
    ) -> Self {
        KitchenLink {
            url: url.into(),
            topology,
            handler,
            store,
            outbox,
            connection_name: "dispatcher".into(),
            prefetch: DEFAULT_PREFETCH,
            retry_pause: DEFAULT_RETRY_PAUSE,
        }
    }

    /// Sets the connection's name as the broker shows it.
    #[must_use]
    pub fn with_connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = name.into();
        self
    }

    /// Sets the consumer's prefetch window.
    #[must_use]
    pub fn with_prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// Sets how long the consumer holds a message to retry before requeueing it.
    #[must_use]
    pub fn with_retry_pause(mut self, pause: Duration) -> Self {
        self.retry_pause = pause;
        self
    }

    /// Runs the link on a task until `shutdown` is cancelled.
    pub fn start(self, shutdown: CancellationToken) -> LinkHandle {
        let (connected, health) = watch::channel(false);
        let task = tokio::spawn(self.supervise(shutdown, connected));
        LinkHandle {
            health: LinkHealth(health),
            task,
        }
    }

    /// Connects, runs a session, and reconnects after failures, until shutdown.
    async fn supervise(self, shutdown: CancellationToken, connected: watch::Sender<bool>) {
        let consumer = KitchenConsumer::new(self.handler.clone(), self.topology.clone())
            .with_prefetch(self.prefetch)
            .with_retry_pause(self.retry_pause);
        let relay = OutboxRelay::new(self.store.clone(), &self.topology, self.outbox.clone());
        let properties = ConnectionProperties::default()
            .with_connection_name(self.connection_name.as_str().into());
        let mut delay = MIN_RECONNECT_DELAY;
        while !shutdown.is_cancelled() {
            let attempt = tokio::select! {
                () = shutdown.cancelled() => break,
                attempt = connect_with(&self.url, properties.clone(), 1) => attempt,
            };
            let failure = match attempt {
                Ok(conn) => {
                    metrics::counter!(metric::BUS_CONNECTIONS).increment(1);
                    let outcome = self
                        .session(&conn, &consumer, &relay, &shutdown, &connected, &mut delay)
                        .await;
                    set_connected(&connected, false);
                    if conn.status().connected() {
                        let _ =
                            tokio::time::timeout(WIND_DOWN, conn.close(200, "bye".into())).await;
                    }
                    match outcome {
                        Ok(()) => break,
                        Err(error) => error,
                    }
                }
                Err(error) => error,
            };
            tracing::warn!(
                url = %redact(&self.url),
                error = %error_chain(&failure),
                retry_in_ms = delay.as_millis() as u64,
                "RabbitMQ link down; reconnecting."
            );
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(MAX_RECONNECT_DELAY);
        }
        set_connected(&connected, false);
        tracing::info!("RabbitMQ link stopped.");
    }

    /// One connection's life: declare, consume and relay until shutdown (`Ok`) or a failure.
    async fn session(
        &self,
        conn: &Connection,
        consumer: &KitchenConsumer,
        relay: &OutboxRelay,
        shutdown: &CancellationToken,
        connected: &watch::Sender<bool>,
        delay: &mut Duration,
    ) -> Result<(), BusError> {
        let setup = Publisher::new(conn).await?;
        self.topology.declare(setup.channel()).await?;
        let _ = setup.channel().close(200, "declared".into()).await;
        let publisher = Publisher::new(conn).await?;
        *delay = MIN_RECONNECT_DELAY;
        set_connected(connected, true);
        tracing::info!(url = %redact(&self.url), "RabbitMQ link up.");

        // The consumer stops on shutdown or when the session fails; the relay only after the
        // consumer, so it drains what the last message wrote.
        let consumer_stop = shutdown.child_token();
        let relay_stop = CancellationToken::new();
        let consuming = consumer.run(conn, &consumer_stop);
        let relaying = relay.run(&publisher, &relay_stop);
        let lost = connection_lost(conn);
        tokio::pin!(consuming, relaying, lost);
        tokio::select! {
            stopped = &mut consuming => {
                stopped?;
                relay_stop.cancel();
                relaying.await
            }
            failed = &mut relaying => {
                consumer_stop.cancel();
                // Closing channels on a dead connection may never answer: bounded.
                let _ = tokio::time::timeout(WIND_DOWN, consuming).await;
                // The relay returns only with an error before its stop token is cancelled.
                Err(failed.err().unwrap_or(BusError::Disconnected))
            }
            error = &mut lost => {
                // Let the message in flight finish (its ack fails; it is redelivered and
                // recognised as a duplicate).
                consumer_stop.cancel();
                let _ = tokio::time::timeout(WIND_DOWN, consuming).await;
                Err(error)
            }
        }
    }
}

/// Resolves when the connection reports an error or is no longer connected.
async fn connection_lost(conn: &Connection) -> BusError {
    let mut events = conn.events_listener();
    let mut check = tokio::time::interval(CONNECTION_CHECK);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Event::Error(source)) => {
                    return BusError::Broker { operation: "connection", source };
                }
                Some(_) => {}
                None => return BusError::Disconnected,
            },
            _ = check.tick() => {
                if !conn.status().connected() {
                    return BusError::Disconnected;
                }
            }
        }
    }
}

/// Publishes the link's state to health readers and the gauge.
fn set_connected(connected: &watch::Sender<bool>, up: bool) {
    connected.send_replace(up);
    metrics::gauge!(metric::BUS_CONNECTED).set(if up { 1.0 } else { 0.0 });
}

/// An error with its causes, for one log line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The running link.
pub struct LinkHandle {
    /// Whether it is connected.
    health: LinkHealth,
    /// The supervisor; ends after shutdown.
    task: JoinHandle<()>,
}

impl LinkHandle {
    /// A cheap handle for `/healthz`.
    pub fn health(&self) -> LinkHealth {
        self.health.clone()
    }

    /// Whether the link is connected and consuming now.
    pub fn is_connected(&self) -> bool {
        self.health.is_connected()
    }

    /// Waits until the link has stopped (after its shutdown token was cancelled).
    pub async fn stopped(self) {
        if let Err(error) = self.task.await {
            tracing::error!(%error, "The RabbitMQ link task failed.");
        }
    }
}

/// Whether the link is connected, for `/healthz`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LinkHealth(watch::Receiver<bool>);

impl LinkHealth {
    /// Whether the link is connected and consuming now.
    pub fn is_connected(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until the link is connected (or has stopped: then returns `false`).
    pub async fn connected(&mut self) -> bool {
        self.0.wait_for(|up| *up).await.is_ok()
    }

    /// Waits until the link is down (or has stopped).
    pub async fn disconnected(&mut self) {
        let _ = self.0.wait_for(|up| !*up).await;
    }
}
