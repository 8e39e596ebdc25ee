//! Orders and their lifecycle: where the food is picked up and dropped off, when it can be
//! picked up and must arrive, how big it is, and which status changes are legal.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Location, ModelError, OrderId, RestaurantId, Seconds, Size, Time, TimeWindow};

/// Where an order stands.
///
/// ```text
/// created ──> assigned ──> picked_up ──> delivered
///    │  ^        │ ↺ (reassigned)  │
///    │  └────────┤ (unassigned)    └──> failed
///    ├──> cancelled <──┤
///    └──> failed <─────┘
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Known, not yet given to a courier.
    Created,
    /// Planned on a courier's route.
    Assigned,
    /// In the courier's bag.
    PickedUp,
    /// Handed to the customer.
    Delivered,
    /// Could not be delivered (no courier, lost food, customer absent).
    Failed,
    /// Withdrawn by the kitchen before pickup.
    Cancelled,
}

impl OrderStatus {
    /// Every status, for iteration.
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Created,
        OrderStatus::Assigned,
        OrderStatus::PickedUp,
        OrderStatus::Delivered,
        OrderStatus::Failed,
        OrderStatus::Cancelled,
    ];

    /// Whether the lifecycle allows going from `self` to `next`.
    pub const fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Created, Assigned | Cancelled | Failed)
                | (Assigned, Assigned | Created | PickedUp | Cancelled | Failed)
                | (PickedUp, Delivered | Failed)
        )
    }

    /// The status after a legal transition to `next`.
    ///
    /// # Errors
    /// [`ModelError::IllegalTransition`] when the lifecycle forbids it.
    pub fn transition(self, next: OrderStatus) -> Result<OrderStatus, ModelError> {
        if self.can_become(next) {
            Ok(next)
        } else {
            Err(ModelError::IllegalTransition {
                from: self,
                to: next,
            })
        }
    }

    /// Whether nothing can happen to the order any more.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Delivered | OrderStatus::Failed | OrderStatus::Cancelled
        )
    }

    /// The snake_case name used on the wire and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Assigned => "assigned",
            OrderStatus::PickedUp => "picked_up",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Failed => "failed",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        OrderStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ModelError::UnknownStatus(s.chars().take(32).collect()))
    }
}

/// One end of an order: a place, the window in which service may start there, and how long the
/// courier spends there (parking, handover).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Visit {
    location: Location,
    window: TimeWindow,
    service: Seconds,
}

impl Visit {
    /// Where the visit happens.
    pub const fn location(&self) -> Location {
        self.location
    }

    /// When service may start.
    pub const fn window(&self) -> TimeWindow {
        self.window
    }

    /// How long the stop takes.
    pub const fn service(&self) -> Seconds {
        self.service
    }
}

/// A pickup-and-delivery request: food from a restaurant to a customer.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    id: OrderId,
    restaurant: RestaurantId,
    pickup: Visit,
    dropoff: Visit,
    placed_at: Time,
    size: Size,
    status: OrderStatus,
}

/// Collects an order's optional parts; [`OrderBuilder::build`] checks them together.
#[derive(Clone, Debug)]
#[must_use]
pub struct OrderBuilder {
    id: OrderId,
    restaurant: RestaurantId,
    pickup_at: Location,
    dropoff_at: Location,
    placed_at: Time,
    ready_at: Option<Time>,
    pickup_latest: Option<Time>,
    dropoff_earliest: Option<Time>,
    deliver_by: Option<Time>,
    pickup_service: Seconds,
    dropoff_service: Seconds,
    size: Size,
    status: OrderStatus,
}

impl Order {
    /// Starts an order placed at `placed_at` for food from `restaurant` at `pickup_at` to
    /// `dropoff_at`. By default it is ready when placed, has no deadline, takes one unit and no
    /// service time, and is `created`.
    pub fn builder(
        id: OrderId,
        restaurant: RestaurantId,
        pickup_at: Location,
        dropoff_at: Location,
        placed_at: Time,
    ) -> OrderBuilder {
        OrderBuilder {
            id,
            restaurant,
            pickup_at,
            dropoff_at,
            placed_at,
            ready_at: None,
            pickup_latest: None,
            dropoff_earliest: None,
            deliver_by: None,
            pickup_service: Seconds::ZERO,
            dropoff_service: Seconds::ZERO,
            size: Size::ONE,
            status: OrderStatus::Created,
        }
    }

    /// The order's id.
    pub fn id(&self) -> &OrderId {
        &self.id
    }

    /// The restaurant cooking it.
    pub fn restaurant(&self) -> &RestaurantId {
        &self.restaurant
    }

    /// The pickup at the restaurant; its window opens at the ready time.
    pub const fn pickup(&self) -> &Visit {
        &self.pickup
    }

    /// The drop-off at the customer; its window closes at the deadline, if any.
    pub const fn dropoff(&self) -> &Visit {
        &self.dropoff
    }

    /// When the customer placed it.
    pub const fn placed_at(&self) -> Time {
        self.placed_at
    }

    /// When the food is ready for pickup.
    pub const fn ready_at(&self) -> Time {
        self.pickup.window.start()
    }

    /// When it must be delivered, if there is a deadline.
    pub fn deliver_by(&self) -> Option<Time> {
        let end = self.dropoff.window.end();
        (!end.is_never()).then_some(end)
    }

    /// Capacity units it takes.
    pub const fn size(&self) -> Size {
        self.size
    }

    /// Current lifecycle status.
    pub const fn status(&self) -> OrderStatus {
        self.status
    }

    /// Moves the order along its lifecycle.
    ///
    /// # Errors
    /// [`ModelError::IllegalTransition`]; the order is unchanged then.
    pub fn transition(&mut self, next: OrderStatus) -> Result<(), ModelError> {
        self.status = self.status.transition(next)?;
        Ok(())
    }

    /// The same order with a new ready time, as a kitchen reports delays.
    ///
    /// # Errors
    /// [`ModelError::ReadyBeforePlaced`], [`ModelError::EmptyWindow`] or
    /// [`ModelError::DeadlineBeforeReady`] when the new time contradicts the order.
    pub fn with_ready_at(&self, ready_at: Time) -> Result<Order, ModelError> {
        let mut b = self.to_builder();
        b.ready_at = Some(ready_at);
        b.build()
    }

    fn to_builder(&self) -> OrderBuilder {
        OrderBuilder {
            id: self.id.clone(),
            restaurant: self.restaurant.clone(),
            pickup_at: self.pickup.location,
            dropoff_at: self.dropoff.location,
            placed_at: self.placed_at,
            ready_at: Some(self.pickup.window.start()),
            pickup_latest: Some(self.pickup.window.end()),
            dropoff_earliest: Some(self.dropoff.window.start()),
            deliver_by: Some(self.dropoff.window.end()),
            pickup_service: self.pickup.service,
            dropoff_service: self.dropoff.service,
            size: self.size,
            status: self.status,
        }
    }
}

impl OrderBuilder {
    /// When the food will be ready (default: when placed).
    pub fn ready_at(mut self, t: Time) -> Self {
        self.ready_at = Some(t);
        self
    }

    /// The latest time pickup may start (benchmarks; meal orders leave it open).
    pub fn pickup_latest(mut self, t: Time) -> Self {
        self.pickup_latest = Some(t);
        self
    }

    /// The earliest time the drop-off may start (benchmarks; default: when placed).
    pub fn dropoff_earliest(mut self, t: Time) -> Self {
        self.dropoff_earliest = Some(t);
        self
    }

    /// The delivery deadline.
    pub fn deliver_by(mut self, t: Time) -> Self {
        self.deliver_by = Some(t);
        self
    }

    /// Service times at pickup and drop-off.
    pub fn service(mut self, pickup: Seconds, dropoff: Seconds) -> Self {
        self.pickup_service = pickup;
        self.dropoff_service = dropoff;
        self
    }

    /// Capacity units it takes.
    pub fn size(mut self, size: Size) -> Self {
        self.size = size;
        self
    }

    /// The status it has already reached (when loading from storage).
    pub fn status(mut self, status: OrderStatus) -> Self {
        self.status = status;
        self
    }

    /// Checks the parts together and builds the order.
    ///
    /// # Errors
    /// [`ModelError::ReadyBeforePlaced`] when ready before placed,
    /// [`ModelError::DeadlineBeforeReady`] when the deadline precedes the ready time, and
    /// [`ModelError::EmptyWindow`] when a window closes before it opens.
    pub fn build(self) -> Result<Order, ModelError> {
        let ready = self.ready_at.unwrap_or(self.placed_at);
        if ready < self.placed_at {
            return Err(ModelError::ReadyBeforePlaced {
                placed: self.placed_at.secs(),
                ready: ready.secs(),
            });
        }
        let deadline = self.deliver_by.unwrap_or(Time::NEVER);
        if deadline < ready {
            return Err(ModelError::DeadlineBeforeReady {
                ready: ready.secs(),
                deadline: deadline.secs(),
            });
        }
        let pickup_window = TimeWindow::new(ready, self.pickup_latest.unwrap_or(Time::NEVER))?;
        let dropoff_window =
            TimeWindow::new(self.dropoff_earliest.unwrap_or(self.placed_at), deadline)?;
        Ok(Order {
            id: self.id,
            restaurant: self.restaurant,
            pickup: Visit {
                location: self.pickup_at,
                window: pickup_window,
                service: self.pickup_service,
            },
            dropoff: Visit {
                location: self.dropoff_at,
                window: dropoff_window,
                service: self.dropoff_service,
            },
            placed_at: self.placed_at,
            size: self.size,
            status: self.status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Coordinates;
    use proptest::prelude::*;

    fn t(s: f64) -> Time {
        Time::from_secs(s).unwrap()
    }

    fn order(placed: f64) -> OrderBuilder {
        let here = Location::from(Coordinates::parse(52.5, 13.4).unwrap());
        let there = Location::from(Coordinates::parse(52.51, 13.42).unwrap());
        Order::builder(
            OrderId::parse("o1").unwrap(),
            RestaurantId::parse("r1").unwrap(),
            here,
            there,
            t(placed),
        )
    }

    #[test]
    fn an_order_ready_before_it_was_placed_is_rejected() {
        let err = order(100.0).ready_at(t(50.0)).build().unwrap_err();
        assert_eq!(
            err,
            ModelError::ReadyBeforePlaced {
                placed: 100.0,
                ready: 50.0
            }
        );
    }

    #[test]
    fn a_deadline_before_the_ready_time_is_rejected() {
        let err = order(0.0)
            .ready_at(t(600.0))
            .deliver_by(t(300.0))
            .build()
            .unwrap_err();
        assert!(matches!(err, ModelError::DeadlineBeforeReady { .. }));
    }

    #[test]
    fn defaults_make_an_open_order() {
        let o = order(10.0).build().unwrap();
        assert_eq!(o.ready_at(), t(10.0));
        assert_eq!(o.deliver_by(), None);
        assert_eq!(o.status(), OrderStatus::Created);
        assert_eq!(o.size(), Size::ONE);
    }

    #[test]
    fn a_delayed_kitchen_moves_the_ready_time() {
        let o = order(0.0)
            .ready_at(t(600.0))
            .deliver_by(t(2400.0))
            .build()
            .unwrap();
        assert_eq!(o.with_ready_at(t(900.0)).unwrap().ready_at(), t(900.0));
        assert!(o.with_ready_at(t(3000.0)).is_err());
    }

    #[test]
    fn the_happy_lifecycle_is_legal() {
        let mut o = order(0.0).build().unwrap();
        for next in [
            OrderStatus::Assigned,
            OrderStatus::Assigned,
            OrderStatus::PickedUp,
            OrderStatus::Delivered,
        ] {
            o.transition(next).unwrap();
        }
        assert!(o.status().is_final());
    }

    #[test]
    fn a_picked_up_order_cannot_be_cancelled_or_reassigned() {
        let mut o = order(0.0).status(OrderStatus::PickedUp).build().unwrap();
        assert_eq!(
            o.transition(OrderStatus::Cancelled),
            Err(ModelError::IllegalTransition {
                from: OrderStatus::PickedUp,
                to: OrderStatus::Cancelled
            })
        );
        assert!(o.transition(OrderStatus::Assigned).is_err());
        assert_eq!(o.status(), OrderStatus::PickedUp);
    }

    #[test]
    fn statuses_parse_from_their_wire_names() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>().unwrap(), s);
        }
        assert!("lost".parse::<OrderStatus>().is_err());
    }

    fn any_status() -> impl Strategy<Value = OrderStatus> {
        prop::sample::select(OrderStatus::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn final_statuses_never_change(from in any_status(), to in any_status()) {
            if from.is_final() {
                prop_assert!(from.transition(to).is_err());
            }
        }

        #[test]
        fn nothing_goes_back_to_created_except_an_unassignment(from in any_status()) {
            let ok = from.transition(OrderStatus::Created).is_ok();
            prop_assert_eq!(ok, from == OrderStatus::Assigned);
        }

        #[test]
        fn ready_before_placed_is_always_rejected(placed in 0f64..1e9, early in 1e-3f64..1e6) {
            let r = order(placed).ready_at(t(placed - early)).build();
            let is_ready_before_placed = matches!(r, Err(ModelError::ReadyBeforePlaced { .. }));
            prop_assert!(is_ready_before_placed);
        }

        #[test]
        fn consistent_times_always_build(placed in 0f64..1e9, prep in 0f64..7200.0, slack in 0f64..7200.0) {
            let o = order(placed).ready_at(t(placed + prep)).deliver_by(t(placed + prep + slack)).build().unwrap();
            prop_assert!(o.ready_at() >= o.placed_at());
            prop_assert!(o.deliver_by().unwrap() >= o.ready_at());
        }
    }
}
