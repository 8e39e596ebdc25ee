//! What the solver returns: for each courier an ordered route of timed stops, and the orders it
//! could not serve with the reason why. Infeasibility is data here, never an error.

use serde::{Deserialize, Serialize};

use super::{CourierId, OrderId, Time};

/// Which end of an order a stop serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    /// Collect the order at the restaurant.
    Pickup,
    /// Hand it to the customer.
    Dropoff,
}

/// One end of one order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stop {
    /// The order served.
    pub order: OrderId,
    /// Pickup or drop-off.
    pub kind: StopKind,
}

/// A stop with the times the plan expects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledStop {
    /// The stop.
    pub stop: Stop,
    /// When the courier gets there.
    pub arrival: Time,
    /// When service starts (after waiting for the window to open, e.g. for the food).
    pub service_start: Time,
    /// When the courier leaves.
    pub departure: Time,
}

/// One courier's planned stops, in visiting order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// Whose route it is.
    pub courier: CourierId,
    /// The stops, in order.
    pub stops: Vec<ScheduledStop>,
}

/// Why an order is not on any route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnassignedReason {
    /// No courier is on shift, or none could reach the restaurant before its shift ends.
    NoCourierAvailable,
    /// The order is bigger than every vehicle's capacity.
    TooLarge,
    /// No courier can meet its time windows or deadline.
    TimeWindows,
    /// The solver ran out of time before it found a place for it.
    NotPlanned,
}

/// An order left out of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unassigned {
    /// The order.
    pub order: OrderId,
    /// Why.
    pub reason: UnassignedReason,
}

/// The solver's answer: routes for couriers that have stops, and the orders left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Non-empty routes, one per courier that has work.
    pub routes: Vec<Route>,
    /// Orders on no route.
    pub unassigned: Vec<Unassigned>,
}

impl Plan {
    /// The route of `courier`, if it has one.
    pub fn route_of(&self, courier: &CourierId) -> Option<&Route> {
        self.routes.iter().find(|r| &r.courier == courier)
    }

    /// The courier whose route holds `order`.
    pub fn courier_of(&self, order: &OrderId) -> Option<&CourierId> {
        self.routes
            .iter()
            .find(|r| r.stops.iter().any(|s| &s.stop.order == order))
            .map(|r| &r.courier)
    }

    /// How many couriers have work.
    pub fn vehicles_used(&self) -> usize {
        self.routes.iter().filter(|r| !r.stops.is_empty()).count()
    }
}
