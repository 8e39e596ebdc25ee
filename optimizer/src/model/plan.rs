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

/// Why an order is not on any route: what the couriers' [`Rejection`]s add up to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnassignedReason {
    /// No courier is planned at all, or every shift is over before the order can be collected.
    NoCourierAvailable,
    /// The order is bigger than every vehicle's capacity.
    TooLarge,
    /// No courier can meet its time windows or deadline.
    TimeWindows,
    /// Every courier that could take it has a full bag for as long as it could collect it.
    Capacity,
    /// The couriers' shifts end before they could reach the restaurant.
    ShiftEnd,
    /// Taking it would break the trip rules (one restaurant per trip, one trip at a time).
    TripRules,
    /// No courier can travel to the restaurant or the customer (no road leads there).
    Unreachable,
    /// Some courier could take it, but the search ended before it was placed.
    NotPlanned,
}

impl UnassignedReason {
    /// The snake-case name used on the wire and in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            UnassignedReason::NoCourierAvailable => "no_courier_available",
            UnassignedReason::TooLarge => "too_large",
            UnassignedReason::TimeWindows => "time_windows",
            UnassignedReason::Capacity => "capacity",
            UnassignedReason::ShiftEnd => "shift_end",
            UnassignedReason::TripRules => "trip_rules",
            UnassignedReason::Unreachable => "unreachable",
            UnassignedReason::NotPlanned => "not_planned",
        }
    }
}

/// Why one courier cannot take one order: the verdict of trying every place in its route.
///
/// Where several constraints fail at different places of the route, the one reported is the
/// first of [`Rejection::ALL`]: no way there at all, the order belongs to someone else, then a
/// bag too full (where the order could otherwise still be collected in time, it is the bag that
/// keeps it out), the shift's end, a time window, and last the trip rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// No travel time leads from the route to the restaurant or the customer.
    Unreachable,
    /// The order is on board, committed or pinned to another courier.
    PinnedElsewhere,
    /// The bag is too full wherever the pickup could go (or the order is bigger than it).
    Capacity,
    /// The courier's shift ends before it could reach the restaurant (or get back).
    ShiftEnd,
    /// The order's pickup window or deadline, or a later stop's, could not be met.
    TimeWindow,
    /// One restaurant per trip, or one trip at a time, would be broken.
    TripRules,
}

impl Rejection {
    /// Every rejection, in order of precedence (and of declaration).
    pub const ALL: [Rejection; 6] = [
        Rejection::Unreachable,
        Rejection::PinnedElsewhere,
        Rejection::Capacity,
        Rejection::ShiftEnd,
        Rejection::TimeWindow,
        Rejection::TripRules,
    ];

    /// The snake-case name used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rejection::Unreachable => "unreachable",
            Rejection::PinnedElsewhere => "pinned_elsewhere",
            Rejection::ShiftEnd => "shift_end",
            Rejection::TimeWindow => "time_window",
            Rejection::Capacity => "capacity",
            Rejection::TripRules => "trip_rules",
        }
    }

    /// What an order rejected by every courier for this reason is waiting for.
    pub const fn unassigned(self) -> UnassignedReason {
        match self {
            Rejection::Unreachable => UnassignedReason::Unreachable,
            Rejection::TimeWindow => UnassignedReason::TimeWindows,
            // Never the last word: a locked order takes its own courier's reason.
            Rejection::PinnedElsewhere => UnassignedReason::NotPlanned,
            Rejection::ShiftEnd => UnassignedReason::ShiftEnd,
            Rejection::Capacity => UnassignedReason::Capacity,
            Rejection::TripRules => UnassignedReason::TripRules,
        }
    }
}

/// How orders may be grouped into trips. The live dispatcher allows any interleaving; the
/// MDRP benchmark requires trips from one restaurant, each delivered before the next starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TripRules {
    /// All orders picked up together come from one restaurant.
    pub single_restaurant: bool,
    /// A courier picks up nothing while carrying food: each trip is delivered before the next.
    pub one_trip_at_a_time: bool,
}

impl TripRules {
    /// Whether any rule is on.
    pub fn any(&self) -> bool {
        self.single_restaurant || self.one_trip_at_a_time
    }
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
