//! Grubhub MDRP replay: the instance reader ([`instance`]), the discrete-event simulator with its
//! [`Policy`] seam ([`sim`]), the nearest-available baseline ([`greedy`]), the replanning policy
//! on the optimizer ([`optimizer_policy`]), and the evaluator's
//! three solution files plus the run's metrics ([`report`]).
//!
//! The rules are those of the MDRP instances (`data/mdrp/README.md`): travel time is
//! `ceil(euclid / meters_per_minute)` minutes, pickup at `max(ready, arrival + pickup_service/2)`,
//! drop-off at `arrival + dropoff_service/2`, a trip's orders come from one restaurant, a courier
//! starts its next trip only after delivering the previous one and never picks up after its
//! off-time, and nobody is diverted while driving. Couriers wait where they are between trips
//! unless the policy sends them ahead to a restaurant (the variant with prepositioning moves).

pub mod greedy;
pub mod instance;
pub mod optimizer_policy;
pub mod report;
pub mod sim;

pub use greedy::Greedy;
pub use instance::{Instance, Place};
pub use optimizer_policy::OptimizerPolicy;
pub use report::Metrics;
pub use sim::{Decisions, Move, Outcome, Policy, Reposition, SimState, TripAssignment, simulate};
