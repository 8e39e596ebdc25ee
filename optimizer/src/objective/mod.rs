//! What makes one plan better than another: a weighted sum of goals, composed per use. The static
//! benchmark counts vehicles first and distance second; the live dispatcher weighs travel time,
//! lateness, click-to-door time, food waiting and route stability.

use serde::{Deserialize, Serialize};

/// Weights of the plan's cost terms. A zero weight switches a goal off. Plans are compared by
/// unassigned orders first (each costs [`Objective::unassigned`]), then by the weighted sum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Objective {
    /// Cost of each courier that gets a non-empty route.
    pub vehicle: f64,
    /// Cost per metre (or plane unit) travelled.
    pub distance: f64,
    /// Cost per second a route lasts, from the courier's departure to its last stop (waiting
    /// included).
    pub duration: f64,
    /// Cost per second from placement to drop-off (click-to-door).
    pub click_to_door: f64,
    /// Cost per second a drop-off starts after the order's deadline (only when deadlines are
    /// soft).
    pub lateness: f64,
    /// Cost per second the food waits at the restaurant after it is ready (ready-to-pickup).
    pub ready_to_pickup: f64,
    /// Cost per order moved away from the courier the previous plan gave it.
    pub stability: f64,
    /// Cost of each order left unplanned; large, so serving orders comes first.
    pub unassigned: f64,
    /// Whether deadlines are hard time-window ends (benchmarks) or soft with a lateness cost.
    pub hard_deadlines: bool,
    /// Whether the solver first tries to remove whole routes (vehicle minimisation).
    pub minimize_vehicles: bool,
}

impl Default for Objective {
    fn default() -> Self {
        Objective::meal_delivery()
    }
}

impl Objective {
    /// The static benchmark's hierarchy: fewest vehicles, then shortest distance, windows hard.
    pub fn vehicles_then_distance() -> Self {
        Objective {
            vehicle: 0.0,
            distance: 1.0,
            duration: 0.0,
            click_to_door: 0.0,
            lateness: 0.0,
            ready_to_pickup: 0.0,
            stability: 0.0,
            unassigned: 1e9,
            hard_deadlines: true,
            minimize_vehicles: true,
        }
    }

    /// The live dispatcher's default: fast delivery to the door, fresh food, few late orders,
    /// little driving, and routes that do not churn.
    pub fn meal_delivery() -> Self {
        Objective {
            vehicle: 0.0,
            distance: 0.0,
            duration: 0.05,
            click_to_door: 1.0,
            lateness: 5.0,
            ready_to_pickup: 0.5,
            stability: 120.0,
            unassigned: 1e7,
            hard_deadlines: false,
            minimize_vehicles: false,
        }
    }

    /// Whether the cost depends on when stops happen, not only on the distance driven.
    pub fn is_time_dependent(&self) -> bool {
        self.duration != 0.0
            || self.click_to_door != 0.0
            || self.lateness != 0.0
            || self.ready_to_pickup != 0.0
    }
}
