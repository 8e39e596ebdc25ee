//! Names of the RabbitMQ link's metrics, in one place so dashboards and alerts can rely on them.
//! Labels take few values: routing keys of the contract, reason codes, never ids.

/// Kitchen messages taken from the queue, by `routing_key` (the contract's keys, or `other`)
/// and `outcome` (`applied`, `duplicate`, `dead_lettered`, `requeued`).
pub const KITCHEN_CONSUMED: &str = "dispatcher_kitchen_messages_consumed_total";

/// Kitchen messages moved to the dead queue, by `reason` (the `x-reason` header).
pub const KITCHEN_DEAD_LETTERED: &str = "dispatcher_kitchen_messages_dead_lettered_total";

/// Kitchen messages handed back to the broker to retry later, by `cause` (`unavailable`,
/// `dead_letter_failed`).
pub const KITCHEN_REQUEUED: &str = "dispatcher_kitchen_messages_requeued_total";

/// Outbox events the broker confirmed.
pub const OUTBOX_PUBLISHED: &str = "dispatcher_outbox_events_published_total";

/// Relay rounds that failed (broker nack or error, or the store unavailable), by `cause`.
pub const OUTBOX_FAILURES: &str = "dispatcher_outbox_failures_total";

/// Connections to RabbitMQ the link opened (more than one means it reconnected).
pub const BUS_CONNECTIONS: &str = "dispatcher_bus_connections_total";

/// 1 while the link is connected to RabbitMQ, else 0.
pub const BUS_CONNECTED: &str = "dispatcher_bus_connected";
