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
                next = order.unassigned(reason);
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

#[cfg(test)]
mod tests {
    use optimizer::model::{
        Coordinates, RestaurantId, Route, ScheduledStop, Stop, Time, VehicleKind,
    };
    use time::macros::datetime;

    use super::*;
    use crate::records::CourierRecord;
    use crate::store::Snapshot;

    fn courier(id: &str, on_shift: bool) -> CourierRecord {
        CourierRecord {
            id: CourierId::parse(id).unwrap(),
            name: id.into(),
            vehicle: VehicleKind::Bike,
            capacity: 4,
            device_id: format!("dev-{id}"),
            on_shift,
            shift_ends_at: None,
            created_at: datetime!(2026-12-01 10:00 UTC),
        }
    }

    fn order(id: &str) -> OrderRecord {
        OrderRecord {
            id: OrderId::parse(id).unwrap(),
            restaurant_id: RestaurantId::parse("r1").unwrap(),
            restaurant: Coordinates::parse(60.17, 24.94).unwrap(),
            dropoff: Coordinates::parse(60.18, 24.95).unwrap(),
            placed_at: datetime!(2026-12-01 12:00 UTC),
            ready_at: datetime!(2026-12-01 12:10 UTC),
            deliver_by: None,
            size: 1,
            status: OrderStatus::Created,
            courier_id: None,
            pinned: false,
            pickup_eta: None,
            dropoff_eta: None,
            picked_up_at: None,
            delivered_at: None,
            finished_at: None,
            failed_reason: None,
            unassigned_reason: None,
            tracking_id: format!("t-{id}"),
            moves: 0,
            spec_hash: String::new(),
        }
    }

    fn at(t: OffsetDateTime) -> Time {
        crate::planner::to_time(t)
    }

    fn route(courier: &str, order: &str, pickup: OffsetDateTime, dropoff: OffsetDateTime) -> Route {
        let stop = |kind, t| ScheduledStop {
            stop: Stop {
                order: OrderId::parse(order).unwrap(),
                kind,
            },
            arrival: at(t),
            service_start: at(t),
            departure: at(t),
        };
        Route {
            courier: CourierId::parse(courier).unwrap(),
            stops: vec![
                stop(StopKind::Pickup, pickup),
                stop(StopKind::Dropoff, dropoff),
            ],
        }
    }

    fn state(couriers: Vec<CourierRecord>, orders: Vec<OrderRecord>) -> State {
        State::from_snapshot(Snapshot {
            open_orders: orders,
            couriers,
            routes: Vec::new(),
        })
    }

    const NOW: OffsetDateTime = datetime!(2026-12-01 12:01 UTC);

    #[test]
    fn a_first_assignment_opens_it_versions_the_route_and_tells_the_kitchen() {
        let s = state(vec![courier("c1", true)], vec![order("o1")]);
        let plan = Plan {
            routes: vec![route(
                "c1",
                "o1",
                datetime!(2026-12-01 12:08 UTC),
                datetime!(2026-12-01 12:20 UTC),
            )],
            unassigned: Vec::new(),
        };
        let batch = plan_batch(&s, Some(&plan), &[], NOW, &PlannerConfig::default());
        assert_eq!(batch.orders.len(), 1);
        let o = &batch.orders[0];
        assert_eq!(o.status, OrderStatus::Assigned);
        assert_eq!(o.courier_id.as_ref().map(|c| c.as_str()), Some("c1"));
        assert_eq!(o.pickup_eta, Some(datetime!(2026-12-01 12:08 UTC)));
        assert_eq!(o.dropoff_eta, Some(datetime!(2026-12-01 12:20 UTC)));
        let keys: Vec<&str> = batch
            .outbox
            .iter()
            .map(|e| e.routing_key.as_str())
            .collect();
        assert!(keys.contains(&"order.assigned") && keys.contains(&"order.pickup_eta"));
        let eta = batch
            .outbox
            .iter()
            .find(|e| e.routing_key == "order.pickup_eta")
            .unwrap();
        // Ten minutes of cooking before a 12:08 pickup: start at 11:58, but not before placed.
        assert_eq!(eta.payload["cook_start_at"], "2026-12-01T12:00:00Z");
        assert_eq!(batch.routes.len(), 1);
        assert_eq!(batch.routes[0].seq, 1);
        assert_eq!(batch.routes[0].stops.len(), 2);
        assert!(matches!(
            batch.assignments[0],
            AssignmentChange::Open {
                by_staff: false,
                ..
            }
        ));
    }

    #[test]
    fn a_small_eta_drift_publishes_nothing_and_keeps_the_route_version() {
        let mut o = order("o1");
        o.status = OrderStatus::Assigned;
        o.courier_id = Some(CourierId::parse("c1").unwrap());
        o.pickup_eta = Some(datetime!(2026-12-01 12:08 UTC));
        o.dropoff_eta = Some(datetime!(2026-12-01 12:20 UTC));
        let s = state(vec![courier("c1", true)], vec![o]);
        let plan = Plan {
            routes: vec![route(
                "c1",
                "o1",
                datetime!(2026-12-01 12:08:20 UTC),
                datetime!(2026-12-01 12:20:20 UTC),
            )],
            unassigned: Vec::new(),
        };
        let first = plan_batch(&s, Some(&plan), &[], NOW, &PlannerConfig::default());
        // The route did not exist yet, so it is written once; no event for a 20 s drift.
        assert!(first.outbox.is_empty());
        assert_eq!(first.routes.len(), 1);
    }

    #[test]
    fn food_on_board_and_pins_stay_with_their_courier() {
        let mut carried = order("o1");
        carried.status = OrderStatus::PickedUp;
        carried.courier_id = Some(CourierId::parse("c1").unwrap());
        let mut pinned = order("o2");
        pinned.status = OrderStatus::Assigned;
        pinned.courier_id = Some(CourierId::parse("c1").unwrap());
        pinned.pinned = true;
        let s = state(
            vec![courier("c1", true), courier("c2", true)],
            vec![carried, pinned],
        );
        let t = datetime!(2026-12-01 12:08 UTC);
        let plan = Plan {
            routes: vec![route("c2", "o1", t, t), route("c2", "o2", t, t)],
            unassigned: Vec::new(),
        };
        let batch = plan_batch(&s, Some(&plan), &[], NOW, &PlannerConfig::default());
        assert!(batch.orders.is_empty(), "{:?}", batch.orders);
        assert!(batch.outbox.is_empty());
        assert!(batch.assignments.is_empty());
    }

    #[test]
    fn a_waiting_order_gets_its_reason_once() {
        let s = state(Vec::new(), vec![order("o1")]);
        let id = OrderId::parse("o1").unwrap();
        let waiting = [(id.clone(), "no_courier_on_shift")];
        let batch = plan_batch(&s, None, &waiting, NOW, &PlannerConfig::default());
        assert_eq!(
            batch.orders[0].unassigned_reason.as_deref(),
            Some("no_courier_on_shift")
        );
        let mut again = State::default();
        again.apply(&batch);
        let batch = plan_batch(&again, None, &waiting, NOW, &PlannerConfig::default());
        assert!(batch.orders.is_empty());
    }
}
