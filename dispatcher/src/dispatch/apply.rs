//! Applying a plan: the planner's answer checked against the state as it is when the answer
//! arrives, turned into assignments, route versions, ETAs, waiting reasons and their events,
//! all in one batch.

use std::collections::{HashMap, HashSet};

use optimizer::model::{CourierId, OrderId, OrderStatus, Plan, StopKind};
use serde_json::json;
use time::OffsetDateTime;

use super::events::{self, rfc3339};
use super::{Dispatch, DispatchError, State};
use crate::planner::{PlannerConfig, from_time};
use crate::records::{Actor, AssignmentChange, OrderRecord, RouteRecord, RouteStop};
use crate::store::Batch;

/// Whether two ETAs differ by more than `limit`.
fn moved(a: Option<OffsetDateTime>, b: OffsetDateTime, limit: std::time::Duration) -> bool {
    a.is_none_or(|a| (a - b).unsigned_abs() > limit)
}

/// Whether a route's new stops differ from the current ones enough to tell the courier.
fn route_changed(
    current: Option<&RouteRecord>,
    stops: &[RouteStop],
    limit: std::time::Duration,
) -> bool {
    let Some(current) = current else {
        return !stops.is_empty();
    };
    current.stops.len() != stops.len()
        || current.stops.iter().zip(stops).any(|(a, b)| {
            a.order_id != b.order_id
                || a.kind != b.kind
                || a.location != b.location
                || (a.eta - b.eta).unsigned_abs() > limit
        })
}

/// Builds the batch that applies `plan` (or, with `None`, only the waiting reasons).
fn plan_batch(
    state: &State,
    plan: Option<&Plan>,
    waiting: &[(OrderId, &'static str)],
    now: OffsetDateTime,
    config: &PlannerConfig,
) -> Batch {
    let mut batch = Batch::default();
    let mut updated: HashMap<OrderId, OrderRecord> = HashMap::new();
    let mut routed: HashSet<CourierId> = HashSet::new();
    let actor = Actor::Optimizer;
    for route in plan.map(|p| p.routes.as_slice()).unwrap_or_default() {
        let courier = &route.courier;
        let Some(record) = state.courier(courier) else {
            continue;
        };
        let mut stops = Vec::with_capacity(route.stops.len());
        for s in &route.stops {
            let Some(order) = state.order(&s.stop.order) else {
                continue; // finished while the solver ran
            };
            let eta = from_time(s.arrival);
            let departs_at = from_time(s.departure);
            // Food on board or pinned stays with its courier, whatever the plan says.
            if order.courier_id.as_ref() != Some(courier)
                && (order.status == OrderStatus::PickedUp || order.pinned)
            {
                continue;
            }
            if s.stop.kind == StopKind::Pickup && order.status == OrderStatus::PickedUp {
                continue;
            }
            if s.stop.kind == StopKind::Pickup && !record.on_shift {
                continue; // off shift: finish what is on board, take nothing new
            }
            let next = updated
                .entry(order.id.clone())
                .or_insert_with(|| order.clone());
            match s.stop.kind {
                StopKind::Pickup => {
                    let previous = next.courier_id.clone();
                    if previous.as_ref() != Some(courier) {
                        if previous.is_some() {
                            next.moves += 1;
                            batch.assignments.push(AssignmentChange::Release {
                                order_id: order.id.clone(),
                                at: now,
                            });
                        }
                        next.status = OrderStatus::Assigned;
                        next.courier_id = Some(courier.clone());
                        next.unassigned_reason = None;
                        next.pickup_eta = Some(eta);
                        batch.assignments.push(AssignmentChange::Open {
                            order_id: order.id.clone(),
                            courier_id: courier.clone(),
                            by_staff: false,
                            pickup_eta: Some(eta),
                            at: now,
                        });
                        batch.timeline.push(events::entry(
                            next,
                            if previous.is_some() {
                                "reassigned"
                            } else {
                                "assigned"
                            },
                            &actor,
                            json!({
                                "courier_id": courier.as_str(),
                                "previous_courier_id": previous.as_ref().map(|c| c.as_str()),
                                "pickup_eta": rfc3339(eta),
                            }),
                            now,
                        ));
                        batch
                            .outbox
                            .push(events::pickup_eta(next, courier, eta, now));
                        // `order.assigned` after the drop-off ETA is known (below).
                    } else if moved(next.pickup_eta, eta, config.eta_threshold) {
                        next.pickup_eta = Some(eta);
                        batch.timeline.push(events::entry(
                            next,
                            "pickup_eta",
                            &actor,
                            json!({"courier_id": courier.as_str(), "pickup_eta": rfc3339(eta)}),
                            now,
                        ));
                        batch
                            .outbox
                            .push(events::pickup_eta(next, courier, eta, now));
                    }
                }
                StopKind::Dropoff => {
                    if moved(next.dropoff_eta, eta, config.eta_threshold) {
                        next.dropoff_eta = Some(eta);
                    }
                }
            }
            stops.push(RouteStop {
                order_id: order.id.clone(),
                kind: s.stop.kind,
                location: match s.stop.kind {
                    StopKind::Pickup => order.restaurant,
                    StopKind::Dropoff => order.dropoff,
                },
                eta,
                departs_at,
                ready_at: (s.stop.kind == StopKind::Pickup).then_some(order.ready_at),
                restaurant_id: (s.stop.kind == StopKind::Pickup)
                    .then(|| order.restaurant_id.clone()),
            });
        }
        // A drop-off whose pickup was skipped for another courier's pinned order, or a pickup
        // whose drop-off is missing, is not a route a courier can ride: keep pairs only.
        let owned: HashSet<&OrderId> = stops
            .iter()
            .filter(|s| {
                updated
                    .get(&s.order_id)
                    .is_some_and(|o| o.courier_id.as_ref() == Some(courier))
            })
            .map(|s| &s.order_id)
            .collect();
        let stops: Vec<RouteStop> = stops
            .iter()
            .filter(|s| owned.contains(&s.order_id))
            .cloned()
            .collect();
        routed.insert(courier.clone());
        let current = state.route(courier);
        if route_changed(current, &stops, config.route_eta_threshold) {
            batch.routes.push(RouteRecord {
                courier_id: courier.clone(),
                seq: current.map_or(1, |r| r.seq + 1),
                stops,
                updated_at: now,
            });
        }
    }
    // Assignment events carry both ETAs, so they are written once the whole plan is read.
    for next in updated.values() {
        let Some(order) = state.order(&next.id) else {
            continue;
        };
        if let Some(courier) = &next.courier_id
            && order.courier_id.as_ref() != Some(courier)
        {
            batch.outbox.push(events::assigned(
                next,
                courier,
                order.courier_id.as_ref(),
                now,
            ));
        }
    }
    // Orders the plan left out: back to waiting (unless on board or pinned), with the reason.
    let reasons: HashMap<&OrderId, &'static str> = waiting.iter().map(|(o, r)| (o, *r)).collect();
    for order in state.orders() {
        if updated.contains_key(&order.id) {
            continue;
        }
        let Some(reason) = reasons.get(&order.id) else {
            continue;
        };
        let mut next = order.clone();
        match order.status {
            OrderStatus::Created => {
                if order.unassigned_reason.as_deref() == Some(*reason) {
                    continue;
                }
                next.unassigned_reason = Some((*reason).to_string());
            }
            OrderStatus::Assigned if !order.pinned => {
                let courier = order.courier_id.clone();
                next.status = OrderStatus::Created;
                next.courier_id = None;
                next.pickup_eta = None;
                next.dropoff_eta = None;
                next.unassigned_reason = Some((*reason).to_string());
                batch.assignments.push(AssignmentChange::Release {
                    order_id: order.id.clone(),
                    at: now,
                });
                batch.timeline.push(events::entry(
                    &next,
                    "unassigned",
                    &actor,
                    json!({"courier_id": courier.as_ref().map(|c| c.as_str()), "reason": reason}),
                    now,
                ));
            }
            _ => continue,
        }
        updated.insert(order.id.clone(), next);
    }
    // Couriers the plan gave no route although they have one: their orders went elsewhere.
    if plan.is_some() {
        for route in state.routes() {
            if routed.contains(&route.courier_id) || route.stops.is_empty() {
                continue;
            }
            let keep: Vec<RouteStop> = route
                .stops
                .iter()
                .filter(|s| {
                    let owner = updated
                        .get(&s.order_id)
                        .or_else(|| state.order(&s.order_id))
                        .and_then(|o| o.courier_id.clone());
                    owner.as_ref() == Some(&route.courier_id)
                })
                .cloned()
                .collect();
            if keep.len() != route.stops.len() {
                batch.routes.push(RouteRecord {
                    courier_id: route.courier_id.clone(),
                    seq: route.seq + 1,
                    stops: keep,
                    updated_at: now,
                });
            }
        }
    }
    for (id, next) in updated {
        if state.order(&id) != Some(&next) {
            batch.orders.push(next);
        }
    }
    batch
}

impl Dispatch {
    /// Applies the planner's answer (or only the waiting reasons) in one batch; returns how
    /// many routes got a new version.
    ///
    /// # Errors
    /// [`DispatchError::Unavailable`] when the batch cannot be written.
    pub async fn apply_plan(
        &self,
        plan: Option<&Plan>,
        waiting: &[(OrderId, &'static str)],
        now: OffsetDateTime,
        config: &PlannerConfig,
    ) -> Result<usize, DispatchError> {
        self.change(|state, _| {
            let batch = plan_batch(state, plan, waiting, now, config);
            let routes = batch.routes.len();
            Ok((batch, Vec::new(), routes))
        })
        .await
    }
}
