//! RabbitMQ: the exchanges and queues of CONTRACT.md, connecting with retry, and publishing with
//! publisher confirms so that a message counts as sent only once the broker has it.
//!
//! The kitchen link is built from three parts: [`consumer`] applies kitchen messages through a
//! [`consumer::KitchenHandler`] and dead-letters what cannot be applied, [`relay`] publishes the
//! outbox to the `dispatch` exchange through a [`sink::EventSink`], and [`link`] keeps both
//! running over one connection, reconnecting when the broker goes away. [`in_process`] stands
//! in for the broker in `dispatcher demo`, on the same parsing, handler and relay.

pub mod consumer;
pub mod in_process;
pub mod link;
pub mod metric;
pub mod relay;
pub mod sink;

use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind, PublisherConfirm,
};

/// Routing keys kitchens publish with.
pub const KITCHEN_KEYS: [&str; 3] = ["order.created", "order.ready", "order.cancelled"];

/// Why talking to RabbitMQ failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// No connection could be opened within the retry budget.
    #[error("cannot connect to RabbitMQ at {url} after {attempts} attempts")]
    Connect {
        /// The URL tried, without credentials.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        #[source]
        source: lapin::Error,
    },
    /// A broker operation failed.
    #[error("RabbitMQ {operation} failed")]
    Broker {
        /// What was being done.
        operation: &'static str,
        /// The broker's error.
        #[source]
        source: lapin::Error,
    },
    /// The broker refused to take a published message.
    #[error("RabbitMQ did not confirm the message (nack)")]
    Nacked,
    /// The connection is no longer open.
    #[error("the RabbitMQ connection was closed")]
    Disconnected,
    /// The broker ended the kitchen consumer (its queue was deleted, or the channel closed).
    #[error("RabbitMQ ended the consumer of {queue}")]
    ConsumerEnded {
        /// The queue consumed.
        queue: String,
    },
}

/// Names of the exchanges and queues. Production uses the plain names; tests add a suffix so
/// parallel tests do not see each other's messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Topic exchange kitchens publish to.
    pub kitchen_exchange: String,
    /// Topic exchange the dispatcher publishes to.
    pub dispatch_exchange: String,
    /// Queue the dispatcher consumes kitchen messages from.
    pub kitchen_queue: String,
    /// Queue for messages that cannot be processed, with the reason in a header.
    pub dead_queue: String,
}

impl Default for Topology {
    fn default() -> Self {
        Topology::with_suffix("")
    }
}

impl Topology {
    /// The contract's names, each followed by `suffix`.
    pub fn with_suffix(suffix: &str) -> Self {
        Topology {
            kitchen_exchange: format!("kitchen{suffix}"),
            dispatch_exchange: format!("dispatch{suffix}"),
            kitchen_queue: format!("dispatcher.kitchen{suffix}"),
            dead_queue: format!("kitchen.dead{suffix}"),
        }
    }

    /// Declares the durable exchanges and queues and binds the kitchen queue to every kitchen
    /// routing key; rejected kitchen messages are dead-lettered to the dead queue. Idempotent.
    ///
    /// # Errors
    /// [`BusError::Broker`] when a declaration fails (for example, an existing queue with other
    /// arguments).
    pub async fn declare(&self, channel: &Channel) -> Result<(), BusError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        for exchange in [&self.kitchen_exchange, &self.dispatch_exchange] {
            channel
                .exchange_declare(
                    exchange.as_str().into(),
                    ExchangeKind::Topic,
                    durable,
                    FieldTable::default(),
                )
                .await
                .map_err(|source| BusError::Broker {
                    operation: "exchange declare",
                    source,
                })?;
        }
        let queue = QueueDeclareOptions::durable();
        channel
            .queue_declare(
                self.dead_queue.as_str().into(),
                queue,
                FieldTable::default(),
            )
            .await
            .map_err(|source| BusError::Broker {
                operation: "dead queue declare",
                source,
            })?;
        let mut args = FieldTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(self.dead_queue.as_str().into()),
        );
        channel
            .queue_declare(self.kitchen_queue.as_str().into(), queue, args)
            .await
            .map_err(|source| BusError::Broker {
                operation: "kitchen queue declare",
                source,
            })?;
        for key in KITCHEN_KEYS {
            channel
                .queue_bind(
                    self.kitchen_queue.as_str().into(),
                    self.kitchen_exchange.as_str().into(),
                    key.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|source| BusError::Broker {
                    operation: "queue bind",
                    source,
                })?;
        }
        Ok(())
    }
}

/// Opens a connection, retrying with exponential backoff (100 ms doubling up to 5 s).
///
/// # Errors
/// [`BusError::Connect`] after `attempts` failures.
pub async fn connect(url: &str, attempts: u32) -> Result<Connection, BusError> {
    connect_with(url, ConnectionProperties::default(), attempts).await
}

/// As [`connect`], with connection properties (for example a connection name that shows in
/// `rabbitmqctl list_connections`).
///
/// # Errors
/// [`BusError::Connect`] after `attempts` failures.
pub async fn connect_with(
    url: &str,
    properties: ConnectionProperties,
    attempts: u32,
) -> Result<Connection, BusError> {
    let mut delay = Duration::from_millis(100);
    let mut tried = 0;
    loop {
        tried += 1;
        match Connection::connect(url, properties.clone()).await {
            Ok(conn) => return Ok(conn),
            Err(source) if tried >= attempts.max(1) => {
                return Err(BusError::Connect {
                    url: redact(url),
                    attempts: tried,
                    source,
                });
            }
            Err(error) => {
                tracing::warn!(%error, attempt = tried, "RabbitMQ connection failed, retrying.");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The URL with any password replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// A channel in confirm mode: [`Publisher::publish`] returns once the broker has the message.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
}

impl Publisher {
    /// Opens a channel on `conn` and switches it to publisher confirms.
    ///
    /// # Errors
    /// [`BusError::Broker`] when the channel cannot be opened or confirms are refused.
    pub async fn new(conn: &Connection) -> Result<Self, BusError> {
        let channel = conn
            .create_channel()
            .await
            .map_err(|source| BusError::Broker {
                operation: "channel open",
                source,
            })?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|source| BusError::Broker {
                operation: "confirm select",
                source,
            })?;
        Ok(Publisher { channel })
    }

    /// The underlying channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publishes a persistent JSON message and waits for the broker's confirmation.
    ///
    /// # Errors
    /// [`BusError::Broker`] when the channel fails, [`BusError::Nacked`] when the broker refuses.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        message_id: &str,
        payload: &[u8],
        headers: FieldTable,
    ) -> Result<(), BusError> {
        let properties = json_properties(message_id).with_headers(headers);
        let confirm = self
            .send(exchange, routing_key, payload, properties)
            .await?;
        confirmed(confirm).await
    }

    /// Sends a message without waiting for its confirmation, so that many can be in flight;
    /// await each returned confirmation with [`confirmed`].
    ///
    /// # Errors
    /// [`BusError::Broker`] when the channel fails.
    pub async fn send(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<PublisherConfirm, BusError> {
        self.channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                payload,
                properties,
            )
            .await
            .map_err(|source| BusError::Broker {
                operation: "publish",
                source,
            })
    }
}

/// Properties of a persistent JSON message with a `message_id`.
pub fn json_properties(message_id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_content_type(ShortString::from("application/json"))
        .with_delivery_mode(2)
        .with_message_id(ShortString::from(message_id))
}

/// Waits for the broker's answer to one sent message.
///
/// # Errors
/// [`BusError::Broker`] when the channel fails before the answer, [`BusError::Nacked`] when the
/// broker refuses the message.
pub async fn confirmed(confirm: PublisherConfirm) -> Result<(), BusError> {
    let confirmation = confirm.await.map_err(|source| BusError::Broker {
        operation: "publish confirm",
        source,
    })?;
    if confirmation.is_ack() {
        Ok(())
    } else {
        Err(BusError::Nacked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }

    #[test]
    fn test_topologies_are_suffixed() {
        let t = Topology::with_suffix(".abc");
        assert_eq!(t.kitchen_exchange, "kitchen.abc");
        assert_eq!(Topology::default().dead_queue, "kitchen.dead");
    }
}
