//! The pure heart of the dispatcher: given couriers and orders, decide who carries what, in which
//! order.
//!
//! The crate owns the domain model ([`model`]) that every other crate of the workspace builds on,
//! and the optimizer proper. It performs no I/O, reads no clock and spawns no async work: travel
//! times, randomness, deadlines and thread pools are passed in, so a plan is a function of its
//! inputs and can be replayed exactly.
//!
//! ```
//! use optimizer::model::{Coordinates, Location, Time, TimeWindow};
//!
//! let kitchen = Coordinates::parse(52.5200, 13.4050)?;
//! let window = TimeWindow::new(Time::from_secs(0.0)?, Time::from_secs(3600.0)?)?;
//! assert_eq!(Location::from(kitchen), Location::Wgs84(kitchen));
//! assert!(window.contains(Time::from_secs(60.0)?));
//! # Ok::<(), optimizer::model::ModelError>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod checker;
pub mod explain;
pub mod model;
pub mod objective;
pub mod replan;
pub mod travel;

mod construction;
mod parallel;
mod problem;
mod random;
mod search;
mod solution;
mod solver;
mod spatial;
#[cfg(test)]
mod testing;

pub use checker::{CheckRules, check_plan};
pub use explain::{Candidate, ExplainError, Explanation, explain};
pub use model::TripRules;
pub use objective::Objective;
pub use problem::{Problem, ProblemBuilder, ProblemError};
pub use random::Random;
pub use replan::{CityState, PlanDiff, ReplanConfig, Replanned, replan};
pub use solver::{
    Budget, SolveStats, Solved, SolverConfig, Unlimited, routes_of, solve, solve_from,
};
pub use travel::{RoundedUp, StraightLine, TravelError, TravelModel, TravelTable, Ways};
