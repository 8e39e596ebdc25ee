//! The outbox events for the `dispatch` exchange and the timeline entries, built in one place
//! so every command reports the same shapes.

use optimizer::model::CourierId;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::records::{Actor, OrderRecord, OutboxEvent, TimelineEntry};

/// RFC 3339 text of a time (the wire form of every time we publish or answer).
pub fn rfc3339(t: OffsetDateTime) -> String {
    // Formatting fails only for years outside 0..=9999, which no parsed input holds.
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// RFC 3339 text of an optional time, `null` when absent.
pub fn rfc3339_opt(t: Option<OffsetDateTime>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

/// An outbox event with a fresh, stable message id.
pub fn outbox(routing_key: &str, payload: Value, now: OffsetDateTime) -> OutboxEvent {
    OutboxEvent {
        id: 0,
        message_id: uuid::Uuid::new_v4().to_string(),
        routing_key: routing_key.to_string(),
        payload,
        created_at: now,
    }
}

/// A timeline entry.
pub fn entry(
    order: &OrderRecord,
    kind: &str,
    actor: &Actor,
    detail: Value,
    now: OffsetDateTime,
) -> TimelineEntry {
    TimelineEntry {
        order_id: order.id.clone(),
        at: now,
        kind: kind.to_string(),
        actor: actor.clone(),
        detail,
    }
}

/// When the kitchen should start cooking so the food is ready as the courier arrives: the
/// pickup ETA minus the order's preparation time, never before it was placed.
pub fn cook_start_at(order: &OrderRecord, pickup_eta: OffsetDateTime) -> OffsetDateTime {
    let preparation = order.ready_at - order.placed_at;
    (pickup_eta - preparation).max(order.placed_at)
}

/// `order.assigned` (first courier) or `order.reassigned` (another courier than before).
pub fn assigned(
    order: &OrderRecord,
    courier: &CourierId,
    previous: Option<&CourierId>,
    now: OffsetDateTime,
) -> OutboxEvent {
    let mut body = json!({
        "order_id": order.id.as_str(),
        "courier_id": courier.as_str(),
        "pickup_eta": rfc3339_opt(order.pickup_eta),
        "dropoff_eta": rfc3339_opt(order.dropoff_eta),
        "tracking_id": order.tracking_id,
        "at": rfc3339(now),
    });
    match previous {
        Some(previous) => {
            body["previous_courier_id"] = Value::String(previous.as_str().to_string());
            outbox("order.reassigned", body, now)
        }
        None => outbox("order.assigned", body, now),
    }
}

/// `order.pickup_eta`, for the kitchen to time its cooking.
pub fn pickup_eta(
    order: &OrderRecord,
    courier: &CourierId,
    eta: OffsetDateTime,
    now: OffsetDateTime,
) -> OutboxEvent {
    outbox(
        "order.pickup_eta",
        json!({
            "order_id": order.id.as_str(),
            "courier_id": courier.as_str(),
            "pickup_eta": rfc3339(eta),
            "cook_start_at": rfc3339(cook_start_at(order, eta)),
            "at": rfc3339(now),
        }),
        now,
    )
}

/// `order.picked_up`, `order.delivered`, `order.failed` or `order.cancelled`.
pub fn lifecycle(routing_key: &str, order: &OrderRecord, now: OffsetDateTime) -> OutboxEvent {
    let mut body = json!({
        "order_id": order.id.as_str(),
        "courier_id": order.courier_id.as_ref().map(|c| c.as_str()),
        "at": rfc3339(now),
    });
    if let Some(reason) = &order.failed_reason {
        body["reason"] = Value::String(reason.clone());
    }
    outbox(routing_key, body, now)
}
