//! The dispatcher's stored facts: orders with their lifecycle, couriers with their shifts, each
//! courier's current route under its sequence number, the order timeline and the outbox events.
//!
//! These are the rows the [`crate::store::Store`] keeps and the in-memory state mirrors. They
//! hold already-parsed domain values (ids, coordinates, statuses), so a record that exists is
//! valid; the wire shapes of the API and the bus convert into and out of them.

use optimizer::model::{
    Coordinates, CourierId, OrderId, OrderStatus, RestaurantId, StopKind, VehicleKind,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// An order as the dispatcher knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// The kitchen's id.
    pub id: OrderId,
    /// The restaurant that cooks it.
    pub restaurant_id: RestaurantId,
    /// Where the food is picked up.
    pub restaurant: Coordinates,
    /// Where it goes.
    pub dropoff: Coordinates,
    /// When the customer ordered.
    pub placed_at: OffsetDateTime,
    /// When the food is expected to be ready (kitchens update it with `order.ready`).
    pub ready_at: OffsetDateTime,
    /// The promised delivery time, when the kitchen gave one.
    pub deliver_by: Option<OffsetDateTime>,
    /// Capacity units it takes.
    pub size: u32,
    /// Where it is in its lifecycle.
    pub status: OrderStatus,
    /// Its courier while assigned or picked up.
    pub courier_id: Option<CourierId>,
    /// Staff pinned it to its courier: the planner never moves it.
    pub pinned: bool,
    /// When the courier is expected at the restaurant.
    pub pickup_eta: Option<OffsetDateTime>,
    /// When the courier is expected at the customer.
    pub dropoff_eta: Option<OffsetDateTime>,
    /// When the courier took the food.
    pub picked_up_at: Option<OffsetDateTime>,
    /// When the customer got it.
    pub delivered_at: Option<OffsetDateTime>,
    /// When it reached a final status (delivered, failed, cancelled).
    pub finished_at: Option<OffsetDateTime>,
    /// Why it failed.
    pub failed_reason: Option<String>,
    /// Why it waits without a courier (the planner's reason), while created.
    pub unassigned_reason: Option<String>,
    /// The unguessable id of the customer's tracking link.
    pub tracking_id: String,
    /// How many times it moved from one courier to another.
    pub moves: u32,
    /// A fingerprint of the kitchen's original `order.created` body, so that a second create
    /// with the same id and another body is refused rather than taken for a duplicate.
    pub spec_hash: String,
}

impl OrderRecord {
    /// Whether the order still needs a courier's work.
    pub fn is_open(&self) -> bool {
        !self.status.is_final()
    }

    /// The order taken from its courier, waiting again for the planner with `reason`.
    pub fn unassigned(&self, reason: &str) -> OrderRecord {
        OrderRecord {
            status: OrderStatus::Created,
            courier_id: None,
            pinned: false,
            pickup_eta: None,
            dropoff_eta: None,
            unassigned_reason: Some(reason.to_string()),
            ..self.clone()
        }
    }

    /// Whether it is, or will be, later than promised at `now`.
    pub fn is_late(&self, now: OffsetDateTime) -> bool {
        let Some(by) = self.deliver_by else {
            return false;
        };
        match self.delivered_at {
            Some(done) => done > by,
            None if self.is_open() => self.dropoff_eta.unwrap_or(now).max(now) > by,
            None => false,
        }
    }
}

/// A courier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CourierRecord {
    /// The service's id (a UUID string).
    pub id: CourierId,
    /// Display name.
    pub name: String,
    /// Bike, scooter or car.
    pub vehicle: VehicleKind,
    /// Capacity units the vehicle carries.
    pub capacity: u32,
    /// The id the phone's OsmAnd / Traccar Client app sends.
    pub device_id: String,
    /// Whether the courier is working now.
    pub on_shift: bool,
    /// When the current shift ends, when known.
    pub shift_ends_at: Option<OffsetDateTime>,
    /// When the courier was registered.
    pub created_at: OffsetDateTime,
}

/// One planned stop as a courier's phone shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteStop {
    /// The order served.
    pub order_id: OrderId,
    /// Pickup or drop-off.
    pub kind: StopKind,
    /// Where.
    pub location: Coordinates,
    /// When the courier is expected there.
    #[serde(with = "time::serde::rfc3339")]
    pub eta: OffsetDateTime,
    /// When the courier is expected to leave (after waiting for food and handing over).
    #[serde(with = "time::serde::rfc3339")]
    pub departs_at: OffsetDateTime,
    /// For a pickup, when the food should be ready.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub ready_at: Option<OffsetDateTime>,
    /// The restaurant, for a pickup.
    pub restaurant_id: Option<RestaurantId>,
}

/// A courier's current route: the stops in order, under a sequence number that grows by one
/// with every change, so a phone can tell which version it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteRecord {
    /// Whose route.
    pub courier_id: CourierId,
    /// The version; the first route of a courier is 1.
    pub seq: u64,
    /// The stops, in visiting order (empty: nothing to do).
    pub stops: Vec<RouteStop>,
    /// When this version was made.
    pub updated_at: OffsetDateTime,
}

/// Who caused a change, as the timeline shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// A kitchen over RabbitMQ or the API.
    Kitchen,
    /// The planner.
    Optimizer,
    /// A courier, tapping in the app.
    Courier(CourierId),
    /// Detected from the courier's positions.
    Gps,
    /// Support staff; the text says which token or person.
    Staff(String),
    /// The service itself (for example a shift that ended).
    System,
}

impl Actor {
    /// The stored form: `kitchen`, `optimizer`, `courier:ID`, `gps`, `staff:WHO`, `system`.
    pub fn as_stored(&self) -> String {
        match self {
            Actor::Kitchen => "kitchen".into(),
            Actor::Optimizer => "optimizer".into(),
            Actor::Courier(id) => format!("courier:{id}"),
            Actor::Gps => "gps".into(),
            Actor::Staff(who) => format!("staff:{who}"),
            Actor::System => "system".into(),
        }
    }

    /// Reads the stored form back; unknown text is `System`.
    pub fn from_stored(text: &str) -> Actor {
        match text.split_once(':') {
            Some(("courier", id)) => CourierId::parse(id).map_or(Actor::System, Actor::Courier),
            Some(("staff", who)) => Actor::Staff(who.to_string()),
            _ => match text {
                "kitchen" => Actor::Kitchen,
                "optimizer" => Actor::Optimizer,
                "gps" => Actor::Gps,
                _ => Actor::System,
            },
        }
    }
}

/// One entry of an order's append-only timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// The order.
    pub order_id: OrderId,
    /// When it happened.
    pub at: OffsetDateTime,
    /// What happened: `placed`, `ready_updated`, `assigned`, `reassigned`, `unassigned`,
    /// `pickup_eta`, `arrived_pickup`, `arrived_dropoff`, `picked_up`, `delivered`, `failed`,
    /// `cancelled`, `pinned`, `unpinned`, `amended`.
    pub kind: String,
    /// Who did it.
    pub actor: Actor,
    /// Details (courier, ETA, reason, old and new values).
    pub detail: serde_json::Value,
}

/// An event for the `dispatch` exchange, written with the change it reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// The store's sequence (0 until stored).
    pub id: i64,
    /// The stable AMQP `message_id`: a resend carries the same one.
    pub message_id: String,
    /// `order.assigned`, `order.reassigned`, `order.pickup_eta`, `order.picked_up`,
    /// `order.delivered`, `order.failed`, `order.cancelled`.
    pub routing_key: String,
    /// The JSON body.
    pub payload: serde_json::Value,
    /// When it was written.
    pub created_at: OffsetDateTime,
}

/// The idempotency key of a consumed message or a resent request: the AMQP `message_id` of a
/// kitchen message, or a courier's client id, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InboxKey {
    /// The key itself.
    pub message_id: String,
    /// The routing key or endpoint it came through.
    pub routing_key: String,
}

/// An assignment's start or end, for the `assignments` history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AssignmentChange {
    /// The order now belongs to this courier (any open assignment of the order is released).
    Open {
        /// The order.
        order_id: OrderId,
        /// Its new courier.
        courier_id: CourierId,
        /// `optimizer` or `staff`.
        by_staff: bool,
        /// The pickup ETA at assignment.
        pickup_eta: Option<OffsetDateTime>,
        /// When.
        at: OffsetDateTime,
    },
    /// The order's open assignment ends (unassigned, delivered, failed, cancelled).
    Release {
        /// The order.
        order_id: OrderId,
        /// When.
        at: OffsetDateTime,
    },
}
