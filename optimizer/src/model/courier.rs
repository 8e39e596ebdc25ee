//! Couriers as the optimizer sees them: a vehicle, a shift, where they are and when they are free
//! there, and what they have already promised to do.

use std::collections::HashSet;

use super::{CourierId, Location, ModelError, OrderId, Stop, StopKind, Time, TimeWindow, Vehicle};

/// A courier available for planning.
#[derive(Clone, Debug, PartialEq)]
pub struct Courier {
    id: CourierId,
    vehicle: Vehicle,
    /// No pickup may be planned after the shift ends; drop-offs of food already picked up may.
    shift: TimeWindow,
    /// Where the courier is (or will be when free).
    position: Location,
    /// When the courier is at `position` and can start moving.
    available_at: Time,
    /// Stops the courier has been committed to, visited first and in this order.
    committed: Vec<Stop>,
    /// Orders in the bag: their drop-offs must be planned on this courier's route.
    onboard: Vec<OrderId>,
    /// Where the route must end, for fleets that return to a depot.
    end: Option<Location>,
}

/// Collects a courier's optional parts; [`CourierBuilder::build`] checks them together.
#[derive(Clone, Debug)]
#[must_use]
pub struct CourierBuilder {
    courier: Courier,
}

impl Courier {
    /// Starts a courier with `vehicle`, on `shift`, at `position`; by default free at the shift
    /// start, with nothing committed or on board and no depot to return to.
    pub fn builder(
        id: CourierId,
        vehicle: Vehicle,
        shift: TimeWindow,
        position: Location,
    ) -> CourierBuilder {
        CourierBuilder {
            courier: Courier {
                id,
                vehicle,
                shift,
                position,
                available_at: shift.start(),
                committed: Vec::new(),
                onboard: Vec::new(),
                end: None,
            },
        }
    }

    /// The courier's id.
    pub fn id(&self) -> &CourierId {
        &self.id
    }

    /// The vehicle ridden.
    pub const fn vehicle(&self) -> Vehicle {
        self.vehicle
    }

    /// The shift.
    pub const fn shift(&self) -> TimeWindow {
        self.shift
    }

    /// Current (or next free) position.
    pub const fn position(&self) -> Location {
        self.position
    }

    /// When the courier can leave `position`.
    pub const fn available_at(&self) -> Time {
        self.available_at
    }

    /// Stops already committed, in order.
    pub fn committed(&self) -> &[Stop] {
        &self.committed
    }

    /// Orders in the bag.
    pub fn onboard(&self) -> &[OrderId] {
        &self.onboard
    }

    /// The depot the route must end at, if any.
    pub const fn end(&self) -> Option<Location> {
        self.end
    }
}

impl CourierBuilder {
    /// When the courier can leave its position (default: the shift start).
    pub fn available_at(mut self, t: Time) -> Self {
        self.courier.available_at = t;
        self
    }

    /// Stops the courier must make first, in this order.
    pub fn committed(mut self, stops: Vec<Stop>) -> Self {
        self.courier.committed = stops;
        self
    }

    /// Orders already picked up.
    pub fn onboard(mut self, orders: Vec<OrderId>) -> Self {
        self.courier.onboard = orders;
        self
    }

    /// A depot the route must end at.
    pub fn returns_to(mut self, depot: Location) -> Self {
        self.courier.end = Some(depot);
        self
    }

    /// Checks the commitments together and builds the courier.
    ///
    /// # Errors
    /// [`ModelError::InconsistentCommitment`] when an order is on board twice, a stop is
    /// committed twice, an onboard order has a committed pickup, or a committed drop-off has
    /// neither its order on board nor its pickup committed before it.
    pub fn build(self) -> Result<Courier, ModelError> {
        let c = &self.courier;
        let onboard: HashSet<&OrderId> = c.onboard.iter().collect();
        if onboard.len() != c.onboard.len() {
            return Err(ModelError::InconsistentCommitment(
                "an order is on board twice".into(),
            ));
        }
        let mut seen: HashSet<(&OrderId, StopKind)> = HashSet::new();
        for stop in &c.committed {
            if !seen.insert((&stop.order, stop.kind)) {
                return Err(ModelError::InconsistentCommitment(format!(
                    "{:?} of order {} is committed twice",
                    stop.kind, stop.order
                )));
            }
            match stop.kind {
                StopKind::Pickup if onboard.contains(&stop.order) => {
                    return Err(ModelError::InconsistentCommitment(format!(
                        "order {} is on board but its pickup is still committed",
                        stop.order
                    )));
                }
                StopKind::Dropoff
                    if !onboard.contains(&stop.order)
                        && !seen.contains(&(&stop.order, StopKind::Pickup)) =>
                {
                    return Err(ModelError::InconsistentCommitment(format!(
                        "drop-off of order {} is committed before its pickup",
                        stop.order
                    )));
                }
                _ => {}
            }
        }
        Ok(self.courier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PlanarPoint, VehicleKind};

    fn courier() -> CourierBuilder {
        Courier::builder(
            CourierId::parse("c1").unwrap(),
            Vehicle::of_kind(VehicleKind::Bike),
            TimeWindow::ALWAYS,
            PlanarPoint::parse(0.0, 0.0).unwrap().into(),
        )
    }

    fn stop(order: &str, kind: StopKind) -> Stop {
        Stop {
            order: OrderId::parse(order).unwrap(),
            kind,
        }
    }

    #[test]
    fn a_dropoff_before_its_pickup_is_rejected() {
        let r = courier()
            .committed(vec![
                stop("a", StopKind::Dropoff),
                stop("a", StopKind::Pickup),
            ])
            .build();
        assert!(matches!(r, Err(ModelError::InconsistentCommitment(_))));
    }

    #[test]
    fn an_onboard_order_needs_no_pickup() {
        let c = courier()
            .onboard(vec![OrderId::parse("a").unwrap()])
            .committed(vec![
                stop("b", StopKind::Pickup),
                stop("a", StopKind::Dropoff),
                stop("b", StopKind::Dropoff),
            ])
            .build()
            .unwrap();
        assert_eq!(c.committed().len(), 3);
        let again = courier()
            .onboard(vec![OrderId::parse("a").unwrap()])
            .committed(vec![stop("a", StopKind::Pickup)])
            .build();
        assert!(again.is_err());
    }

    #[test]
    fn duplicate_commitments_are_rejected() {
        let a = OrderId::parse("a").unwrap();
        assert!(courier().onboard(vec![a.clone(), a]).build().is_err());
        assert!(
            courier()
                .committed(vec![
                    stop("b", StopKind::Pickup),
                    stop("b", StopKind::Pickup)
                ])
                .build()
                .is_err()
        );
    }
}
