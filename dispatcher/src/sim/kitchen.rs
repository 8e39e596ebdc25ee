//! The simulated kitchens: they place orders on the demand curve, send ready-time updates when
//! they run late, cancel a few, and count the pickup ETAs the dispatcher sends back. They talk to
//! the service only through a [`KitchenPort`]: [`AmqpKitchenPort`] against `dispatcher serve`,
//! an in-process one in `dispatcher demo`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::SimCounters;
use super::city::{City, PlannedOrder};
use super::probe::OrderProbe;
use crate::bus::{self, Publisher, Topology};
use crate::wire::{LatLon, OrderCancelled, OrderCreated, OrderReady, RestaurantBody};

/// How kitchens reach the service.
#[async_trait::async_trait]
pub trait KitchenPort: Send + Sync {
    /// Publishes a kitchen message (`order.created`, `order.ready`, `order.cancelled`) whose
    /// idempotency key is `message_id`; returns once the service's side has it.
    ///
    /// # Errors
    /// When the message could not be handed over.
    async fn publish(
        &self,
        routing_key: &str,
        message_id: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<()>;

    /// The dispatcher's events (routing key, JSON body), such as `order.pickup_eta`.
    fn events(&self) -> broadcast::Receiver<(String, Value)>;
}

/// A [`KitchenPort`] on RabbitMQ: publishes with confirms to the `kitchen` exchange and reads the
/// `dispatch` exchange through a private queue, reconnecting when the broker goes away.
pub struct AmqpKitchenPort {
    /// Shared with the connection task.
    inner: Arc<AmqpInner>,
}

struct AmqpInner {
    /// The exchanges.
    topology: Topology,
    /// The confirming channel of the current connection; `None` while reconnecting.
    publisher: Mutex<Option<Publisher>>,
    /// Wakes publishers waiting for a connection.
    connected: Notify,
    /// Tells the connection task that publishing failed, so it reconnects.
    broken: Notify,
    /// Fans the dispatcher's events out.
    events: broadcast::Sender<(String, Value)>,
}

impl AmqpKitchenPort {
    /// Starts the port on `url` and `topology`; it keeps connecting until `shutdown`.
    pub fn start(url: String, topology: Topology, shutdown: CancellationToken) -> AmqpKitchenPort {
        let (events, _) = broadcast::channel(4096);
        let inner = Arc::new(AmqpInner {
            topology,
            publisher: Mutex::new(None),
            connected: Notify::new(),
            broken: Notify::new(),
            events,
        });
        tokio::spawn(connection_loop(inner.clone(), url, shutdown));
        AmqpKitchenPort { inner }
    }

    /// Whether a connection is up now.
    pub fn is_connected(&self) -> bool {
        lock(&self.inner.publisher).is_some()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait::async_trait]
impl KitchenPort for AmqpKitchenPort {
    async fn publish(
        &self,
        routing_key: &str,
        message_id: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let current = lock(&self.inner.publisher).clone();
            let result = match current {
                Some(publisher) => publisher
                    .publish(
                        &self.inner.topology.kitchen_exchange,
                        routing_key,
                        message_id,
                        &body,
                        FieldTable::default(),
                    )
                    .await
                    .map_err(anyhow::Error::from),
                None => Err(anyhow::anyhow!("not connected to RabbitMQ")),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(e.context(format!("publishing {routing_key} {message_id}")));
                }
                Err(error) => {
                    tracing::debug!(%error, message_id, "Kitchen publish failed, retrying.");
                    self.inner.broken.notify_one();
                    let _ = tokio::time::timeout(
                        Duration::from_millis(500),
                        self.inner.connected.notified(),
                    )
                    .await;
                }
            }
        }
    }

    fn events(&self) -> broadcast::Receiver<(String, Value)> {
        self.inner.events.subscribe()
    }
}

/// Connects, serves one connection until it breaks, and again, until `shutdown`.
async fn connection_loop(inner: Arc<AmqpInner>, url: String, shutdown: CancellationToken) {
    let mut pause = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        match serve_connection(&inner, &url, &shutdown).await {
            Ok(()) => pause = Duration::from_millis(200),
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "Simulated kitchens lost RabbitMQ; reconnecting."
                );
            }
        }
        *lock(&inner.publisher) = None;
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

async fn serve_connection(
    inner: &AmqpInner,
    url: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let conn = bus::connect(url, 1).await?;
    let publisher = Publisher::new(&conn).await?;
    // Idempotent, and the same declarations as the service's: messages published before the
    // service connects wait in its queue.
    inner.topology.declare(publisher.channel()).await?;
    let channel = conn.create_channel().await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.name().as_str().into(),
            inner.topology.dispatch_exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.name().as_str().into(),
            "sim-kitchens".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    *lock(&inner.publisher) = Some(publisher);
    inner.connected.notify_waiters();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                let _ = conn.close(200, "done".into()).await;
                return Ok(());
            }
            () = inner.broken.notified() => {
                if !conn.status().connected() {
                    anyhow::bail!("the connection closed");
                }
            }
            delivery = consumer.next() => {
                let delivery = match delivery {
                    Some(Ok(d)) => d,
                    Some(Err(e)) => return Err(e.into()),
                    None => anyhow::bail!("the broker ended the consumer"),
                };
                let _ = delivery.ack(BasicAckOptions::default()).await;
                let body = serde_json::from_slice(&delivery.data).unwrap_or(Value::Null);
                let _ = inner.events.send((delivery.routing_key.to_string(), body));
            }
        }
    }
}

/// A follow-up a kitchen owes.
enum FollowUp {
    /// Running late: the new ready time.
    Ready(OffsetDateTime),
    /// The customer cancelled.
    Cancel,
}

/// Runs the kitchens of `city` until `shutdown` or until `max_orders` are placed and followed
/// up: places orders on the demand curve at `clock`'s time, sends ready updates and
/// cancellations when due, and counts pickup ETAs.
pub(crate) async fn run_kitchens(
    mut city: City,
    port: Arc<dyn KitchenPort>,
    clock: service::clock::Clock,
    max_orders: Option<u64>,
    counters: Arc<SimCounters>,
    probe: Arc<OrderProbe>,
    shutdown: CancellationToken,
) {
    let mut events = port.events();
    let eta_counters = counters.clone();
    let eta_stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = eta_stop.cancelled() => break,
                event = events.recv() => match event {
                    Ok((key, _)) if key == "order.pickup_eta" => eta_counters.bump(&eta_counters.pickup_etas),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        }
    });

    // One simulated second, but 50..=500 ms of wall time.
    let tick = clock
        .wall(Duration::from_secs(1))
        .clamp(Duration::from_millis(50), Duration::from_millis(500));
    let mut due: Vec<(OffsetDateTime, String, FollowUp)> = Vec::new();
    let mut last = clock.now();
    let mut placed = 0_u64;
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let now = clock.now();
        let dt = (now - last).try_into().unwrap_or(Duration::ZERO);
        last = now;
        let room = max_orders.map_or(u64::MAX, |m| m.saturating_sub(placed));
        let arrivals = u64::from(city.arrivals(now, dt)).min(room);
        for _ in 0..arrivals {
            let order = city.next_order(now);
            if let Some(late) = order.late_by {
                // The kitchen notices shortly before the promised ready time.
                let notice = (order.ready_at - time::Duration::minutes(3)).max(now);
                due.push((
                    notice,
                    order.id.clone(),
                    FollowUp::Ready(order.ready_at + late),
                ));
            }
            if let Some(after) = order.cancel_after {
                due.push((now + after, order.id.clone(), FollowUp::Cancel));
            }
            let body = created_body(&city, &order);
            let id = format!("{}:created", order.id);
            probe.placed(&order.id);
            match port.publish("order.created", &id, body).await {
                Ok(()) => {
                    counters.bump(&counters.orders_placed);
                    probe.published(&order.id);
                }
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), order_id = %order.id, "A simulated order could not be placed.")
                }
            }
            placed += 1;
        }
        let (ready, later): (Vec<_>, Vec<_>) = due.drain(..).partition(|(at, _, _)| *at <= now);
        due = later;
        for (_, order_id, follow_up) in ready {
            let (key, id, body) = match follow_up {
                FollowUp::Ready(ready_at) => (
                    "order.ready",
                    format!("{order_id}:ready"),
                    serde_json::to_vec(&OrderReady {
                        order_id: order_id.clone(),
                        ready_at,
                    }),
                ),
                FollowUp::Cancel => (
                    "order.cancelled",
                    format!("{order_id}:cancelled"),
                    serde_json::to_vec(&OrderCancelled {
                        order_id: order_id.clone(),
                    }),
                ),
            };
            let Ok(body) = body else { continue };
            match port.publish(key, &id, body).await {
                Ok(()) if key == "order.cancelled" => counters.bump(&counters.cancelled),
                Ok(()) => counters.bump(&counters.ready_updates),
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), %order_id, "A simulated kitchen update was not sent.")
                }
            }
        }
        if placed >= max_orders.unwrap_or(u64::MAX) && due.is_empty() {
            return;
        }
    }
}

fn created_body(city: &City, order: &PlannedOrder) -> Vec<u8> {
    let restaurant = &city.restaurants[order.restaurant];
    let body = OrderCreated {
        order_id: order.id.clone(),
        restaurant: RestaurantBody {
            id: restaurant.id.clone(),
            lat: restaurant.location.lat,
            lon: restaurant.location.lon,
        },
        dropoff: LatLon {
            lat: order.dropoff.lat,
            lon: order.dropoff.lon,
        },
        placed_at: order.placed_at,
        ready_at: order.ready_at,
        deliver_by: Some(order.deliver_by),
        size: Some(1),
    };
    // Serialising a struct of strings, numbers and valid times cannot fail.
    serde_json::to_vec(&body).expect("an order body serialises")
}
