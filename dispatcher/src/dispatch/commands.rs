//! The commands of [`Dispatch`]: kitchens' messages, couriers and shifts, couriers' status
//! events, and staff corrections. Each checks the state, builds its batch with timeline and
//! outbox events, and goes through `Dispatch::change`.

use optimizer::model::{CourierId, OrderId};

use super::{
    Correction, CourierEventKind, Dispatch, DispatchError, KitchenCommand, NewCourier, NewOrder,
};
use crate::records::{Actor, CourierRecord, InboxKey, OrderRecord};

/// What a courier's status event did.
#[derive(Clone, Debug, PartialEq)]
pub struct EventOutcome {
    /// The order after the event.
    pub order: OrderRecord,
    /// Whether it was a resend of an event already applied (same client id).
    pub duplicate: bool,
}

impl Dispatch {
    /// Applies a kitchen message once: a second message with the same key changes nothing and
    /// returns [`DispatchError::Duplicate`].
    ///
    /// # Errors
    /// [`DispatchError::Invalid`] or [`DispatchError::NotFound`] for a message to dead-letter
    /// (unknown order, a known id with another body, a ready time before placed);
    /// [`DispatchError::Duplicate`]; [`DispatchError::Unavailable`] to retry later.
    pub async fn kitchen(
        &self,
        command: KitchenCommand,
        key: InboxKey,
    ) -> Result<(), DispatchError> {
        todo!("{command:?} {key:?}")
    }

    /// Creates an order from `POST /v1/orders` (same rules as `order.created`); an identical
    /// resend returns the stored order.
    ///
    /// # Errors
    /// As [`Dispatch::kitchen`], plus [`DispatchError::Conflict`] for a known id with another body.
    pub async fn create_order(
        &self,
        order: NewOrder,
        actor: Actor,
    ) -> Result<OrderRecord, DispatchError> {
        todo!("{order:?} {actor:?}")
    }

    /// Registers a courier (off shift).
    ///
    /// # Errors
    /// [`DispatchError::Invalid`] for a bad name or device id, [`DispatchError::Conflict`] when
    /// the device id belongs to another courier; [`DispatchError::Unavailable`].
    pub async fn register_courier(
        &self,
        courier: NewCourier,
    ) -> Result<CourierRecord, DispatchError> {
        todo!("{courier:?}")
    }

    /// Starts or ends a courier's shift. Ending it unassigns the orders not yet picked up.
    ///
    /// # Errors
    /// [`DispatchError::NotFound`]; [`DispatchError::Unavailable`].
    pub async fn set_shift(
        &self,
        courier: &CourierId,
        on: bool,
        actor: Actor,
    ) -> Result<CourierRecord, DispatchError> {
        todo!("{courier} {on} {actor:?}")
    }

    /// A courier's status event on one of its orders, checked against the lifecycle and
    /// ownership; with a `client_id`, a resend is applied once. REST and the courier socket
    /// both call this.
    ///
    /// # Errors
    /// [`DispatchError::NotFound`] for an unknown order, [`DispatchError::Conflict`] for
    /// another courier's order or an illegal transition; [`DispatchError::Unavailable`].
    pub async fn courier_event(
        &self,
        courier: &CourierId,
        order: &OrderId,
        event: CourierEventKind,
        client_id: Option<&str>,
        actor: Actor,
    ) -> Result<EventOutcome, DispatchError> {
        todo!("{courier} {order} {event:?} {client_id:?} {actor:?}")
    }

    /// A staff correction; it lands in the timeline with `actor` and replans at once.
    ///
    /// # Errors
    /// [`DispatchError::NotFound`], [`DispatchError::Conflict`] when the order's status forbids
    /// it (e.g. assigning a delivered order), [`DispatchError::Invalid`]; [`DispatchError::Unavailable`].
    pub async fn correct(
        &self,
        order: &OrderId,
        correction: Correction,
        actor: Actor,
    ) -> Result<OrderRecord, DispatchError> {
        todo!("{order} {correction:?} {actor:?}")
    }
}
