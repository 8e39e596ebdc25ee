//! The domain model shared by every crate of the workspace: ids, places, time, vehicles,
//! couriers, orders and their lifecycle, and the stops, routes and plans the solver produces.
//!
//! Values are parsed, not validated later: every constructor that can receive bad input returns
//! `Result<_, ModelError>` and fields stay private, so a value that exists is valid. Deserialising
//! goes through the same constructors.

mod courier;
mod error;
mod ids;
mod location;
mod order;
mod plan;
mod time;
mod vehicle;

pub use courier::{Courier, CourierBuilder};
pub use error::ModelError;
pub use ids::{CourierId, OrderId, RestaurantId};
pub use location::{Coordinates, Location, PlanarPoint};
pub use order::{Order, OrderBuilder, OrderStatus, Visit};
pub use plan::{
    Plan, Rejection, Route, ScheduledStop, Stop, StopKind, TripRules, Unassigned, UnassignedReason,
};
pub use time::{Seconds, Time, TimeWindow};
pub use vehicle::{Capacity, Size, Vehicle, VehicleKind};
