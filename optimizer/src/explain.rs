//! Why an order is where it is, or waiting: for one order in the current state, the couriers
//! that could take it, cheapest first, each with the cost of inserting it into its current
//! route, where it would go and when the courier would be at each end; and for every other
//! courier the reason it cannot (a [`Rejection`]).
//!
//! It prices with the same rules, problem and insertion as [`crate::replan`] (commitment
//! horizon, pins, move cap, the stability cost of moving an order away from its courier), on
//! the routes as they are now, without searching: the dispatcher shows it to staff as "why this
//! courier" and "why is this order waiting". Pure, like the rest of the crate.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::construction::{Scratch, best_insertion};
use crate::model::{CourierId, OrderId, Rejection, Time};
use crate::problem::{Problem, ProblemError};
use crate::replan::{CityState, ReplanConfig, prepare};
use crate::solution::{evaluate_into, schedule, time};
use crate::solver::{repaired, routes_of};
use crate::travel::TravelModel;

/// Why an explanation could not be given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExplainError {
    /// The order is not among the state's open orders.
    #[error("order {0} is not open in this state")]
    UnknownOrder(OrderId),
    /// The state could not be made into a problem.
    #[error(transparent)]
    Problem(#[from] ProblemError),
}

/// A courier that could take the order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The courier.
    pub courier: CourierId,
    /// The objective's increase from inserting the order into the courier's route (for the
    /// courier that holds it now: what the order adds to its route).
    pub cost: f64,
    /// Seconds of driving the order adds to the route.
    pub added_travel_s: f64,
    /// When the courier would reach the restaurant (`None` for food already on board).
    pub pickup_eta: Option<Time>,
    /// When the courier would reach the customer.
    pub dropoff_eta: Time,
    /// The pickup's position in the courier's route with the order in it (`None` on board).
    pub pickup_index: Option<usize>,
    /// The drop-off's position in that route.
    pub dropoff_index: usize,
    /// Whether this courier holds the order now.
    pub current: bool,
}

/// The answer for one order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The order.
    pub order: OrderId,
    /// The courier whose route holds it now, if any.
    pub current: Option<CourierId>,
    /// The cheapest couriers, at most the limit asked for, plus the current courier wherever it
    /// ranks; cheapest first.
    pub candidates: Vec<Candidate>,
    /// Every courier that cannot take it and why, by courier id.
    pub rejected: Vec<(CourierId, Rejection)>,
}

/// Explains where `order` could go in `state`, with `config`'s rules: the `limit` cheapest
/// couriers and the others' reasons.
///
/// # Errors
/// [`ExplainError::UnknownOrder`] when the order is not among `state.orders`, and
/// [`ExplainError::Problem`] when the state is inconsistent or the travel model cannot answer.
pub fn explain(
    state: &CityState<'_>,
    config: &ReplanConfig,
    travel: Arc<dyn TravelModel>,
    order: &OrderId,
    limit: usize,
) -> Result<Explanation, ExplainError> {
    let prepared = prepare(state, config, travel)?;
    let p = &prepared.problem;
    let j = p
        .jobs
        .iter()
        .position(|job| &job.order == order)
        .ok_or_else(|| ExplainError::UnknownOrder(order.clone()))?;
    let mut sol = repaired(p, &routes_of(state.previous));
    let holder = sol.route_of[j];
    let mut candidates = Vec::new();
    // An order among its courier's committed stops cannot be taken out: price what it adds.
    let fixed = holder.filter(|&v| {
        let r = &sol.routes[v];
        r.nodes[..r.fixed_len(p)]
            .iter()
            .any(|&n| p.nodes[n].job == j)
    });
    if let Some(v) = fixed {
        let r = &sol.routes[v];
        let without: Vec<usize> = r
            .nodes
            .iter()
            .copied()
            .filter(|&n| p.nodes[n].job != j)
            .collect();
        let cost = r.cost - evaluate_into(p, v, &without, None).cost;
        candidates.push(candidate(p, v, j, &r.nodes, &without, cost, true));
    } else if let Some(v) = holder {
        sol.take_out(p, j);
        sol.routes[v].update(p);
    }
    let mut rejected = Vec::new();
    let mut scratch = Scratch::default();
    for v in 0..p.vehicles.len() {
        if fixed.is_some_and(|w| w == v) {
            continue;
        }
        if fixed.is_some() {
            rejected.push((p.vehicles[v].courier.clone(), Rejection::PinnedElsewhere));
            continue;
        }
        let r = &sol.routes[v];
        match best_insertion(p, r, j, None, &mut scratch) {
            Ok(ins) => {
                let mut nodes = r.nodes.clone();
                nodes.insert(ins.k, 2 * j + 1);
                if p.jobs[j].onboard.is_none() {
                    nodes.insert(ins.i, 2 * j);
                }
                let current = holder == Some(v);
                candidates.push(candidate(p, v, j, &nodes, &r.nodes, ins.delta, current));
            }
            Err(reason) => rejected.push((p.vehicles[v].courier.clone(), reason)),
        }
    }
    candidates.sort_by(|a, b| {
        a.cost
            .total_cmp(&b.cost)
            .then_with(|| a.courier.cmp(&b.courier))
    });
    let mut kept = 0;
    candidates.retain(|c| {
        kept += 1;
        kept <= limit || c.current
    });
    rejected.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Explanation {
        order: order.clone(),
        current: holder.map(|v| p.vehicles[v].courier.clone()),
        candidates,
        rejected,
    })
}

/// The candidate of vehicle `v` for job `j`, whose route would be `with` instead of `without`.
fn candidate(
    p: &Problem,
    v: usize,
    j: usize,
    with: &[usize],
    without: &[usize],
    cost: f64,
    current: bool,
) -> Candidate {
    let (times, driving) = schedule(p, v, with);
    let (_, driving_before) = schedule(p, v, without);
    let at = |node: usize| with.iter().position(|&n| n == node);
    let pickup_index = at(2 * j).filter(|_| p.jobs[j].onboard.is_none());
    // A route holding the job has its drop-off.
    let dropoff_index = at(2 * j + 1).unwrap_or(0);
    Candidate {
        courier: p.vehicles[v].courier.clone(),
        cost,
        added_travel_s: driving - driving_before,
        pickup_eta: pickup_index.map(|i| time(times[i].arrival)),
        dropoff_eta: times
            .get(dropoff_index)
            .map_or(Time::NEVER, |t| time(t.arrival)),
        pickup_index,
        dropoff_index,
        current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use crate::testing::{courier, order};
    use crate::{StraightLine, Unlimited, replan};
    use std::collections::HashMap;

    fn config() -> ReplanConfig {
        ReplanConfig {
            commitment_horizon: Seconds::ZERO,
            solver: crate::SolverConfig {
                max_iterations: Some(200),
                ..crate::SolverConfig::default()
            },
            ..ReplanConfig::default()
        }
    }

    #[test]
    fn the_nearest_courier_is_cheapest_and_a_small_one_is_rejected_for_capacity() {
        let orders = vec![crate::testing::order_of_size(
            "o1",
            (100.0, 0.0),
            (200.0, 0.0),
            0.0,
            2,
        )];
        let couriers = vec![
            courier("near", (90.0, 0.0), 4),
            courier("far", (5000.0, 0.0), 4),
            courier("small", (100.0, 0.0), 1),
        ];
        let (pins, moves) = (HashMap::new(), HashMap::new());
        let previous = Plan::default();
        let state = CityState {
            now: Time::ZERO,
            couriers: &couriers,
            orders: &orders,
            previous: &previous,
            pins: &pins,
            moves: &moves,
        };
        let out = explain(
            &state,
            &config(),
            Arc::new(StraightLine::exact()),
            &OrderId::parse("o1").unwrap(),
            5,
        )
        .unwrap();
        let ids: Vec<&str> = out.candidates.iter().map(|c| c.courier.as_str()).collect();
        assert_eq!(ids, ["near", "far"]);
        assert!(out.candidates[0].cost < out.candidates[1].cost);
        assert_eq!(out.candidates[0].pickup_index, Some(0));
        assert_eq!(out.candidates[0].dropoff_index, 1);
        // 10 m then 100 m at 4 m/s.
        assert!((out.candidates[0].added_travel_s - 110.0 / 4.0).abs() < 1e-9);
        assert_eq!(
            out.rejected,
            vec![(CourierId::parse("small").unwrap(), Rejection::Capacity)]
        );
        assert!(out.current.is_none());
    }

    #[test]
    fn the_holder_is_marked_current_and_others_pay_the_stability_cost() {
        let orders = vec![order("o1", (100.0, 0.0), (200.0, 0.0), 0.0)];
        let couriers = vec![courier("a", (0.0, 0.0), 4), courier("b", (0.0, 0.0), 4)];
        let (pins, moves) = (HashMap::new(), HashMap::new());
        let empty = Plan::default();
        let mut state = CityState {
            now: Time::ZERO,
            couriers: &couriers,
            orders: &orders,
            previous: &empty,
            pins: &pins,
            moves: &moves,
        };
        let travel: Arc<dyn TravelModel> = Arc::new(StraightLine::exact());
        let planned = replan(&state, &config(), travel.clone(), &Unlimited).unwrap();
        let holder = planned.plan.routes[0].courier.clone();
        state.previous = &planned.plan;
        let out = explain(&state, &config(), travel, &OrderId::parse("o1").unwrap(), 5).unwrap();
        assert_eq!(out.current.as_ref(), Some(&holder));
        assert!(out.candidates[0].current);
        assert_eq!(out.candidates[0].courier, holder);
        let stability = config().objective.stability;
        assert!((out.candidates[1].cost - out.candidates[0].cost - stability).abs() < 1e-6);
    }

    #[test]
    fn an_order_nobody_can_reach_is_rejected_as_unreachable_by_everyone() {
        let orders = vec![order("o1", (100.0, 0.0), (200.0, 0.0), 0.0)];
        let couriers = vec![courier("a", (0.0, 0.0), 4)];
        let (pins, moves) = (HashMap::new(), HashMap::new());
        let previous = Plan::default();
        let state = CityState {
            now: Time::ZERO,
            couriers: &couriers,
            orders: &orders,
            previous: &previous,
            pins: &pins,
            moves: &moves,
        };
        let out = explain(
            &state,
            &config(),
            Arc::new(crate::testing::Islands { x: 150.0 }),
            &OrderId::parse("o1").unwrap(),
            5,
        )
        .unwrap();
        assert!(out.candidates.is_empty());
        assert_eq!(
            out.rejected,
            vec![(CourierId::parse("a").unwrap(), Rejection::Unreachable)]
        );
    }

    #[test]
    fn an_unknown_order_is_an_error() {
        let (pins, moves) = (HashMap::new(), HashMap::new());
        let previous = Plan::default();
        let state = CityState {
            now: Time::ZERO,
            couriers: &[],
            orders: &[],
            previous: &previous,
            pins: &pins,
            moves: &moves,
        };
        let err = explain(
            &state,
            &config(),
            Arc::new(StraightLine::exact()),
            &OrderId::parse("nope").unwrap(),
            5,
        )
        .unwrap_err();
        assert!(matches!(err, ExplainError::UnknownOrder(_)));
    }
}
