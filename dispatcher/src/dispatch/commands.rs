//! The commands of [`Dispatch`]: kitchens' messages, couriers and shifts, couriers' status
//! events, and staff corrections. Each checks the state, builds its batch with timeline and
//! outbox events, and goes through `Dispatch::change`.

use optimizer::model::{CourierId, OrderId, OrderStatus, StopKind, Vehicle};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::events::{self, rfc3339, rfc3339_opt};
use super::{
    Correction, CourierEventKind, Dispatch, DispatchError, Invalid, KitchenCommand, NewCourier,
    NewOrder, State, Trigger,
};
use crate::records::{Actor, AssignmentChange, CourierRecord, InboxKey, OrderRecord, RouteRecord};
use crate::store::{Batch, StoreError};

/// What a courier's status event did.
#[derive(Clone, Debug, PartialEq)]
pub struct EventOutcome {
    /// The order after the event.
    pub order: OrderRecord,
    /// Whether it was a resend of an event already applied (same client id).
    pub duplicate: bool,
}

/// The fingerprint of an order's kitchen-given facts, to tell a duplicate create from a
/// conflicting one.
fn spec_hash(o: &NewOrder) -> String {
    let canonical = format!(
        "{}|{}|{:.7}|{:.7}|{:.7}|{:.7}|{}|{}|{}|{}",
        o.id,
        o.restaurant_id,
        o.restaurant.lat(),
        o.restaurant.lon(),
        o.dropoff.lat(),
        o.dropoff.lon(),
        o.placed_at.unix_timestamp_nanos() / 1_000_000,
        o.ready_at.unix_timestamp_nanos() / 1_000_000,
        o.deliver_by
            .map_or(-1, |t| t.unix_timestamp_nanos() / 1_000_000),
        o.size
    );
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// A new unguessable tracking id (two UUIDv4s: 244 random bits).
fn tracking_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The courier's route without any stop of `order`, as the next version; `None` when the route
/// has no such stop.
pub(super) fn route_without(
    state: &State,
    courier: &CourierId,
    order: &OrderId,
    now: OffsetDateTime,
) -> Option<RouteRecord> {
    let route = state.route(courier)?;
    if !route.stops.iter().any(|s| &s.order_id == order) {
        return None;
    }
    Some(RouteRecord {
        courier_id: courier.clone(),
        seq: route.seq + 1,
        stops: route
            .stops
            .iter()
            .filter(|s| &s.order_id != order)
            .cloned()
            .collect(),
        updated_at: now,
    })
}

/// The open order `id` from memory.
fn open_order<'a>(state: &'a State, id: &OrderId) -> Result<&'a OrderRecord, DispatchError> {
    state
        .order(id)
        .ok_or_else(|| DispatchError::NotFound(format!("order {id}")))
}

/// Releases `order` from its courier into `batch`: the assignment ends and the courier's route
/// loses its stops.
fn release(state: &State, order: &OrderRecord, batch: &mut Batch, now: OffsetDateTime) {
    if let Some(courier) = &order.courier_id {
        batch.assignments.push(AssignmentChange::Release {
            order_id: order.id.clone(),
            at: now,
        });
        if let Some(route) = route_without(state, courier, &order.id, now) {
            batch.routes.push(route);
        }
    }
}

/// Ends an order (cancelled or failed) into `batch`.
fn finish(
    state: &State,
    order: &OrderRecord,
    status: OrderStatus,
    reason: Option<String>,
    actor: &Actor,
    batch: &mut Batch,
    now: OffsetDateTime,
) -> Result<OrderRecord, DispatchError> {
    if !order.status.can_become(status) {
        return Err(DispatchError::conflict(
            "illegal_transition",
            format!(
                "order {} is {} and cannot become {status}",
                order.id, order.status
            ),
        ));
    }
    let mut next = order.clone();
    next.status = status;
    next.finished_at = Some(now);
    next.failed_reason = reason.clone();
    next.unassigned_reason = None;
    release(state, order, batch, now);
    // The courier stays on the record so the events say whose order it was.
    let key = match status {
        OrderStatus::Cancelled => "order.cancelled",
        _ => "order.failed",
    };
    batch.outbox.push(events::lifecycle(key, &next, now));
    batch.timeline.push(events::entry(
        &next,
        status.as_str(),
        actor,
        json!({"reason": reason, "courier_id": order.courier_id.as_ref().map(|c| c.as_str())}),
        now,
    ));
    batch.orders.push(next.clone());
    Ok(next)
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
        match command {
            KitchenCommand::Created(order) => self
                .place(order, Actor::Kitchen, Some(key))
                .await
                .map(|_| ()),
            KitchenCommand::Ready { order_id, ready_at } => {
                self.known(&order_id).await?;
                self.change(move |state, now| {
                    let mut batch = Batch {
                        inbox: Some(key),
                        ..Batch::default()
                    };
                    let Some(order) = state.order(&order_id) else {
                        // Finished already: the new ready time changes nothing; keep the key.
                        return Ok((batch, Vec::new(), ()));
                    };
                    if ready_at < order.placed_at {
                        return Err(Invalid::new(
                            "ready_before_placed",
                            "ready_at must not be before the order's placed_at",
                        )
                        .into());
                    }
                    let mut next = order.clone();
                    next.ready_at = ready_at;
                    if let Some(by) = next.deliver_by
                        && by < ready_at
                    {
                        next.deliver_by = Some(ready_at);
                    }
                    batch.timeline.push(events::entry(
                        &next,
                        "ready_updated",
                        &Actor::Kitchen,
                        json!({"from": rfc3339(order.ready_at), "to": rfc3339(ready_at)}),
                        now,
                    ));
                    batch.orders.push(next);
                    Ok((batch, vec![Trigger::OrderChanged], ()))
                })
                .await
            }
            KitchenCommand::Cancelled { order_id } => {
                self.known(&order_id).await?;
                self.change(move |state, now| {
                    let mut batch = Batch {
                        inbox: Some(key),
                        ..Batch::default()
                    };
                    let Some(order) = state.order(&order_id) else {
                        return Ok((batch, Vec::new(), ()));
                    };
                    finish(
                        state,
                        order,
                        OrderStatus::Cancelled,
                        None,
                        &Actor::Kitchen,
                        &mut batch,
                        now,
                    )?;
                    Ok((batch, vec![Trigger::OrderChanged], ()))
                })
                .await
            }
        }
    }

    /// Fails with [`DispatchError::NotFound`] unless the order exists (open or finished).
    async fn known(&self, id: &OrderId) -> Result<OrderRecord, DispatchError> {
        self.order(id)
            .await?
            .ok_or_else(|| DispatchError::NotFound(format!("order {id}")))
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
        self.place(order, actor, None).await
    }

    /// The shared path of both ways an order arrives.
    async fn place(
        &self,
        order: NewOrder,
        actor: Actor,
        key: Option<InboxKey>,
    ) -> Result<OrderRecord, DispatchError> {
        let hash = spec_hash(&order);
        for _ in 0..2 {
            if let Some(existing) = self.order(&order.id).await? {
                if existing.spec_hash != hash {
                    return Err(DispatchError::conflict(
                        "order_conflict",
                        format!("order {} exists with another body", order.id),
                    ));
                }
                if let Some(key) = key {
                    // Another message for the same order: record its key so it stays processed.
                    self.change(move |_, _| {
                        Ok((
                            Batch {
                                inbox: Some(key),
                                ..Batch::default()
                            },
                            Vec::new(),
                            (),
                        ))
                    })
                    .await?;
                    return Err(DispatchError::Duplicate);
                }
                return Ok(existing);
            }
            let hash = hash.clone();
            let order = order.clone();
            let actor = actor.clone();
            let key = key.clone();
            let result = self
                .change(move |state, now| {
                    if state.order(&order.id).is_some() {
                        return Err(StoreError::Stale(format!("order {} exists", order.id)).into());
                    }
                    let record = OrderRecord {
                        id: order.id.clone(),
                        restaurant_id: order.restaurant_id,
                        restaurant: order.restaurant,
                        dropoff: order.dropoff,
                        placed_at: order.placed_at,
                        ready_at: order.ready_at,
                        deliver_by: order.deliver_by,
                        size: order.size,
                        status: OrderStatus::Created,
                        courier_id: None,
                        pinned: false,
                        pickup_eta: None,
                        dropoff_eta: None,
                        picked_up_at: None,
                        delivered_at: None,
                        finished_at: None,
                        failed_reason: None,
                        unassigned_reason: Some("not_planned_yet".into()),
                        tracking_id: tracking_id(),
                        moves: 0,
                        spec_hash: hash,
                    };
                    let batch = Batch {
                        inbox: key,
                        timeline: vec![events::entry(
                            &record,
                            "placed",
                            &actor,
                            json!({
                                "restaurant_id": record.restaurant_id.as_str(),
                                "ready_at": rfc3339(record.ready_at),
                                "deliver_by": rfc3339_opt(record.deliver_by),
                                "size": record.size,
                            }),
                            now,
                        )],
                        new_orders: vec![record.id.clone()],
                        orders: vec![record.clone()],
                        ..Batch::default()
                    };
                    Ok((batch, vec![Trigger::NewOrder], record))
                })
                .await;
            match result {
                // Created concurrently (or finished and unknown to memory): look again.
                Err(DispatchError::Conflict { code: "stale", .. }) => continue,
                other => return other,
            }
        }
        Err(DispatchError::conflict(
            "order_conflict",
            format!("order {} is being created concurrently", order.id),
        ))
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
        let name = courier.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Invalid::new("invalid_name", "name must be 1..=200 characters").into());
        }
        let device = courier.device_id.trim().to_string();
        if device.is_empty() || device.len() > 128 || device.chars().any(char::is_control) {
            return Err(Invalid::new(
                "invalid_device_id",
                "device_id must be 1..=128 printable characters",
            )
            .into());
        }
        let capacity = match courier.capacity {
            Some(0) => {
                return Err(Invalid::new("invalid_capacity", "capacity must be positive").into());
            }
            Some(c) if c > 1000 => {
                return Err(
                    Invalid::new("invalid_capacity", "capacity must be at most 1000").into(),
                );
            }
            Some(c) => c,
            None => u32::from(Vehicle::of_kind(courier.vehicle).capacity()),
        };
        self.change(move |state, now| {
            if state.courier_by_device(&device).is_some() {
                return Err(DispatchError::conflict(
                    "device_taken",
                    format!("device {device} belongs to another courier"),
                ));
            }
            let record = CourierRecord {
                id: CourierId::parse(uuid::Uuid::new_v4().to_string())
                    .expect("a UUID is a valid courier id"),
                name,
                vehicle: courier.vehicle,
                capacity,
                device_id: device,
                on_shift: false,
                shift_ends_at: None,
                created_at: now,
            };
            let batch = Batch {
                couriers: vec![record.clone()],
                ..Batch::default()
            };
            Ok((batch, Vec::new(), record))
        })
        .await
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
        let courier = courier.clone();
        self.change(move |state, now| {
            let record = state
                .courier(&courier)
                .ok_or_else(|| DispatchError::NotFound(format!("courier {courier}")))?;
            let mut next = record.clone();
            next.on_shift = on;
            if !on {
                next.shift_ends_at = None;
            }
            let mut batch = Batch::default();
            if record.on_shift != on {
                batch.couriers.push(next.clone());
            }
            if !on {
                let mut stops_left = state.route(&courier).cloned();
                for order in state.orders_of(&courier) {
                    if order.status != OrderStatus::Assigned {
                        continue;
                    }
                    let freed = order.unassigned("courier_off_shift");
                    batch.assignments.push(AssignmentChange::Release {
                        order_id: order.id.clone(),
                        at: now,
                    });
                    batch.timeline.push(events::entry(
                        &freed,
                        "unassigned",
                        &actor,
                        json!({"courier_id": courier.as_str(), "reason": "courier_off_shift"}),
                        now,
                    ));
                    batch.orders.push(freed);
                    if let Some(route) = &mut stops_left {
                        route.stops.retain(|s| s.order_id != order.id);
                    }
                }
                if let (Some(route), Some(old)) = (stops_left, state.route(&courier))
                    && route.stops.len() != old.stops.len()
                {
                    batch.routes.push(RouteRecord {
                        seq: old.seq + 1,
                        updated_at: now,
                        ..route
                    });
                }
            }
            Ok((batch, vec![Trigger::Shift], next))
        })
        .await
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
        let key = client_id.map(|id| InboxKey {
            message_id: format!("courier:{courier}:{id}"),
            routing_key: "courier.event".into(),
        });
        if let Some(key) = &key
            && self.seen(key).await?
        {
            return self.duplicate_outcome(order).await;
        }
        if self.read(|s| s.order(order).is_none()) {
            let known = self.known(order).await?;
            return Err(DispatchError::conflict(
                "order_finished",
                format!("order {} is already {}", known.id, known.status),
            ));
        }
        if let CourierEventKind::Failed { reason } = &event
            && (reason.trim().is_empty() || reason.chars().count() > 500)
        {
            return Err(Invalid::new("invalid_reason", "reason must be 1..=500 characters").into());
        }
        let courier = courier.clone();
        let order_id = order.clone();
        let result = self
            .change(move |state, now| {
                let order = open_order(state, &order_id)?;
                if order.courier_id.as_ref() != Some(&courier) {
                    return Err(DispatchError::conflict(
                        "not_your_order",
                        format!("order {order_id} is not assigned to courier {courier}"),
                    ));
                }
                let mut batch = Batch {
                    inbox: key,
                    ..Batch::default()
                };
                let mut next = order.clone();
                let illegal = |to: &str| {
                    DispatchError::conflict(
                        "illegal_transition",
                        format!("order {order_id} is {} and cannot be {to}", order.status),
                    )
                };
                match &event {
                    CourierEventKind::Arrived => {
                        let kind = match order.status {
                            OrderStatus::Assigned => "arrived_pickup",
                            _ => "arrived_dropoff",
                        };
                        batch.timeline.push(events::entry(
                            order,
                            kind,
                            &actor,
                            json!({"courier_id": courier.as_str()}),
                            now,
                        ));
                    }
                    CourierEventKind::PickedUp => {
                        if order.status != OrderStatus::Assigned {
                            return Err(illegal("picked up"));
                        }
                        next.status = OrderStatus::PickedUp;
                        next.picked_up_at = Some(now);
                        batch
                            .outbox
                            .push(events::lifecycle("order.picked_up", &next, now));
                        batch.timeline.push(events::entry(
                            &next,
                            "picked_up",
                            &actor,
                            json!({"courier_id": courier.as_str()}),
                            now,
                        ));
                        if let Some(route) = state.route(&courier)
                            && route
                                .stops
                                .iter()
                                .any(|s| s.order_id == order_id && s.kind == StopKind::Pickup)
                        {
                            batch.routes.push(RouteRecord {
                                courier_id: courier.clone(),
                                seq: route.seq + 1,
                                stops: route
                                    .stops
                                    .iter()
                                    .filter(|s| {
                                        !(s.order_id == order_id && s.kind == StopKind::Pickup)
                                    })
                                    .cloned()
                                    .collect(),
                                updated_at: now,
                            });
                        }
                        batch.orders.push(next);
                    }
                    CourierEventKind::Delivered => {
                        if order.status != OrderStatus::PickedUp {
                            return Err(illegal("delivered"));
                        }
                        next.status = OrderStatus::Delivered;
                        next.delivered_at = Some(now);
                        next.finished_at = Some(now);
                        next.dropoff_eta = Some(now);
                        batch
                            .outbox
                            .push(events::lifecycle("order.delivered", &next, now));
                        batch.timeline.push(events::entry(
                            &next,
                            "delivered",
                            &actor,
                            json!({"courier_id": courier.as_str()}),
                            now,
                        ));
                        if let Some(route) = route_without(state, &courier, &order_id, now) {
                            batch.routes.push(route);
                        }
                        batch.orders.push(next);
                    }
                    CourierEventKind::Failed { reason } => {
                        finish(
                            state,
                            order,
                            OrderStatus::Failed,
                            Some(reason.trim().to_string()),
                            &actor,
                            &mut batch,
                            now,
                        )?;
                    }
                }
                let value = batch
                    .orders
                    .first()
                    .cloned()
                    .unwrap_or_else(|| order.clone());
                Ok((batch, vec![Trigger::CourierStatus], value))
            })
            .await;
        match result {
            Ok(order) => Ok(EventOutcome {
                order,
                duplicate: false,
            }),
            Err(DispatchError::Duplicate) => self.duplicate_outcome(order).await,
            Err(e) => Err(e),
        }
    }

    /// The answer to a resent courier event.
    async fn duplicate_outcome(&self, order: &OrderId) -> Result<EventOutcome, DispatchError> {
        Ok(EventOutcome {
            order: self.known(order).await?,
            duplicate: true,
        })
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
        if self.read(|s| s.order(order).is_none()) {
            let known = self.known(order).await?;
            return Err(DispatchError::conflict(
                "order_finished",
                format!("order {} is already {}", known.id, known.status),
            ));
        }
        if let Correction::Fail { reason } = &correction
            && (reason.trim().is_empty() || reason.chars().count() > 500)
        {
            return Err(Invalid::new("invalid_reason", "reason must be 1..=500 characters").into());
        }
        let order_id = order.clone();
        self.change(move |state, now| {
            let order = open_order(state, &order_id)?;
            let mut batch = Batch::default();
            let mut next = order.clone();
            let before_pickup =
                matches!(order.status, OrderStatus::Created | OrderStatus::Assigned);
            let not_after_pickup = |what: &str| {
                DispatchError::conflict(
                    "illegal_transition",
                    format!("order {order_id} is {} and cannot be {what}", order.status),
                )
            };
            match correction {
                Correction::Assign { courier_id } => {
                    if !before_pickup {
                        return Err(not_after_pickup("reassigned"));
                    }
                    let courier = state
                        .courier(&courier_id)
                        .ok_or_else(|| DispatchError::NotFound(format!("courier {courier_id}")))?;
                    if !courier.on_shift {
                        return Err(DispatchError::conflict(
                            "courier_off_shift",
                            format!("courier {courier_id} is not on shift"),
                        ));
                    }
                    if order.size > courier.capacity {
                        return Err(DispatchError::conflict(
                            "too_large",
                            format!("order {order_id} does not fit courier {courier_id}'s vehicle"),
                        ));
                    }
                    let previous = order.courier_id.clone();
                    if previous.as_ref() != Some(&courier_id) {
                        release(state, order, &mut batch, now);
                        if previous.is_some() {
                            next.moves += 1;
                        }
                        next.courier_id = Some(courier_id.clone());
                        next.status = OrderStatus::Assigned;
                        next.pickup_eta = None;
                        next.dropoff_eta = None;
                        batch.assignments.push(AssignmentChange::Open {
                            order_id: order_id.clone(),
                            courier_id: courier_id.clone(),
                            by_staff: true,
                            pickup_eta: None,
                            at: now,
                        });
                        batch.outbox.push(events::assigned(
                            &next,
                            &courier_id,
                            previous.as_ref(),
                            now,
                        ));
                    }
                    // A manual assignment holds: the planner keeps the order with this courier
                    // until staff unpin it.
                    next.pinned = true;
                    next.unassigned_reason = None;
                    batch.timeline.push(events::entry(
                        &next,
                        if previous.is_some() {
                            "reassigned"
                        } else {
                            "assigned"
                        },
                        &actor,
                        json!({
                            "courier_id": courier_id.as_str(),
                            "previous_courier_id": previous.as_ref().map(|c| c.as_str()),
                            "pinned": true,
                        }),
                        now,
                    ));
                    batch.orders.push(next.clone());
                }
                Correction::Pin => {
                    let Some(courier) = &order.courier_id else {
                        return Err(DispatchError::conflict(
                            "not_assigned",
                            format!("order {order_id} has no courier to pin it to"),
                        ));
                    };
                    next.pinned = true;
                    batch.timeline.push(events::entry(
                        &next,
                        "pinned",
                        &actor,
                        json!({"courier_id": courier.as_str()}),
                        now,
                    ));
                    batch.orders.push(next.clone());
                }
                Correction::Unpin => {
                    next.pinned = false;
                    batch
                        .timeline
                        .push(events::entry(&next, "unpinned", &actor, json!({}), now));
                    batch.orders.push(next.clone());
                }
                Correction::Unassign => {
                    if !before_pickup {
                        return Err(not_after_pickup("unassigned"));
                    }
                    if let Some(courier) = &order.courier_id {
                        release(state, order, &mut batch, now);
                        next = order.unassigned("unassigned_by_staff");
                        batch.timeline.push(events::entry(
                            &next,
                            "unassigned",
                            &actor,
                            json!({"courier_id": courier.as_str()}),
                            now,
                        ));
                        batch.orders.push(next.clone());
                    }
                }
                Correction::Cancel => {
                    next = finish(
                        state,
                        order,
                        OrderStatus::Cancelled,
                        None,
                        &actor,
                        &mut batch,
                        now,
                    )?;
                }
                Correction::Fail { reason } => {
                    next = finish(
                        state,
                        order,
                        OrderStatus::Failed,
                        Some(reason.trim().to_string()),
                        &actor,
                        &mut batch,
                        now,
                    )?;
                }
                Correction::Amend {
                    ready_at,
                    deliver_by,
                    dropoff,
                } => {
                    let mut changed = serde_json::Map::new();
                    if let Some(ready_at) = ready_at {
                        if ready_at < order.placed_at {
                            return Err(Invalid::new(
                                "ready_before_placed",
                                "ready_at must not be before the order's placed_at",
                            )
                            .into());
                        }
                        next.ready_at = ready_at;
                        changed.insert("ready_at".into(), json!(rfc3339(ready_at)));
                    }
                    if let Some(deliver_by) = deliver_by {
                        next.deliver_by = deliver_by;
                        changed.insert("deliver_by".into(), rfc3339_opt(deliver_by));
                    }
                    if let Some(by) = next.deliver_by
                        && by < next.ready_at
                    {
                        return Err(Invalid::new(
                            "deliver_by_before_ready",
                            "deliver_by must not be before ready_at",
                        )
                        .into());
                    }
                    if let Some(dropoff) = dropoff {
                        next.dropoff = dropoff;
                        changed.insert(
                            "dropoff".into(),
                            json!({"lat": dropoff.lat(), "lon": dropoff.lon()}),
                        );
                    }
                    if changed.is_empty() {
                        return Err(Invalid::new(
                            "nothing_to_change",
                            "give ready_at, deliver_by or dropoff",
                        )
                        .into());
                    }
                    batch.timeline.push(events::entry(
                        &next,
                        "amended",
                        &actor,
                        serde_json::Value::Object(changed),
                        now,
                    ));
                    batch.orders.push(next.clone());
                }
            }
            Ok((batch, vec![Trigger::Correction], next))
        })
        .await
    }

    /// Records an arrival seen in the courier's positions, unless already recorded; returns
    /// whether it was recorded.
    ///
    /// # Errors
    /// [`DispatchError::Unavailable`].
    pub async fn gps_arrival(
        &self,
        courier: &CourierId,
        order: &OrderId,
        kind: StopKind,
    ) -> Result<bool, DispatchError> {
        let courier = courier.clone();
        let order_id = order.clone();
        self.change(move |state, now| {
            let Some(order) = state.order(&order_id) else {
                return Ok((Batch::default(), Vec::new(), false));
            };
            let expected = match kind {
                StopKind::Pickup => OrderStatus::Assigned,
                StopKind::Dropoff => OrderStatus::PickedUp,
            };
            if order.courier_id.as_ref() != Some(&courier)
                || order.status != expected
                || state.arrived(&order_id, kind)
            {
                return Ok((Batch::default(), Vec::new(), false));
            }
            let name = match kind {
                StopKind::Pickup => "arrived_pickup",
                StopKind::Dropoff => "arrived_dropoff",
            };
            let batch = Batch {
                timeline: vec![events::entry(
                    order,
                    name,
                    &Actor::Gps,
                    json!({"courier_id": courier.as_str()}),
                    now,
                )],
                ..Batch::default()
            };
            Ok((batch, Vec::new(), true))
        })
        .await
    }
}
