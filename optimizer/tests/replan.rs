//! The replanning rules on small scenes: orders in the bag and within the commitment horizon
//! stay, pins hold, small gains do not move orders but large ones do, an order moves a bounded
//! number of times, no pickup falls after a shift, and nearby orders are bundled. Every plan
//! passes the independent checker.

use std::collections::HashMap;
use std::sync::Arc;

use optimizer::model::*;
use optimizer::{
    CheckRules, CityState, Objective, ReplanConfig, Replanned, SolverConfig, StraightLine,
    TravelModel, TripRules, Unlimited, check_plan, replan,
};

fn t(s: f64) -> Time {
    Time::from_secs(s).unwrap()
}

fn at(x: f64, y: f64) -> Location {
    PlanarPoint::parse(x, y).unwrap().into()
}

/// A bike courier moving 5 m/s (distances below are in metres, so 300 m is one minute).
fn courier(id: &str, x: f64, y: f64) -> Courier {
    courier_until(id, x, y, 8.0 * 3600.0)
}

fn courier_until(id: &str, x: f64, y: f64, shift_end: f64) -> Courier {
    Courier::builder(
        CourierId::parse(id).unwrap(),
        Vehicle::new(VehicleKind::Bike, 5.0, Capacity::new(4).unwrap()).unwrap(),
        TimeWindow::new(t(0.0), t(shift_end)).unwrap(),
        at(x, y),
    )
    .available_at(t(1000.0))
    .build()
    .unwrap()
}

/// Courier `c` with `orders` in its bag.
fn carrying(c: Courier, orders: &[&str]) -> Courier {
    Courier::builder(c.id().clone(), c.vehicle(), c.shift(), c.position())
        .available_at(c.available_at())
        .onboard(orders.iter().map(|o| id(o)).collect())
        .build()
        .unwrap()
}

fn order(id: &str, from: (f64, f64), to: (f64, f64)) -> Order {
    Order::builder(
        OrderId::parse(id).unwrap(),
        RestaurantId::parse(format!("r-{id}")).unwrap(),
        at(from.0, from.1),
        at(to.0, to.1),
        t(900.0),
    )
    .ready_at(t(1200.0))
    .deliver_by(t(900.0 + 2400.0))
    .build()
    .unwrap()
}

fn config() -> ReplanConfig {
    ReplanConfig {
        solver: SolverConfig {
            max_iterations: Some(300),
            ..SolverConfig::default()
        },
        ..ReplanConfig::default()
    }
}

struct Scene {
    couriers: Vec<Courier>,
    orders: Vec<Order>,
    pins: HashMap<OrderId, CourierId>,
    moves: HashMap<OrderId, u32>,
}

impl Scene {
    fn new(couriers: Vec<Courier>, orders: Vec<Order>) -> Scene {
        Scene {
            couriers,
            orders,
            pins: HashMap::new(),
            moves: HashMap::new(),
        }
    }

    fn replan(&self, previous: &Plan, config: &ReplanConfig) -> Replanned {
        let travel = Arc::new(StraightLine::exact());
        let state = CityState {
            now: t(1000.0),
            couriers: &self.couriers,
            orders: &self.orders,
            previous,
            pins: &self.pins,
            moves: &self.moves,
        };
        let out = replan(&state, config, travel.clone(), &Unlimited).unwrap();
        // The plan is checked against the couriers as replanning committed them.
        let committed: Vec<Courier> = self
            .couriers
            .iter()
            .map(|c| {
                let mut stops = c.committed().to_vec();
                for (o, by) in &out.committed {
                    if by == c.id() {
                        stops.push(Stop {
                            order: o.clone(),
                            kind: StopKind::Pickup,
                        });
                    }
                }
                Courier::builder(c.id().clone(), c.vehicle(), c.shift(), c.position())
                    .available_at(c.available_at())
                    .onboard(c.onboard().to_vec())
                    .committed(stops)
                    .build()
                    .unwrap()
            })
            .collect();
        let rules = CheckRules {
            hard_deadlines: false,
            pins: self.pins.clone(),
            trips: config.trips,
        };
        check_plan(&out.plan, &committed, &self.orders, travel.as_ref(), &rules)
            .unwrap_or_else(|e| panic!("checker rejected the replan: {e:#?}"));
        out
    }
}

fn id(s: &str) -> OrderId {
    OrderId::parse(s).unwrap()
}

fn cid(s: &str) -> CourierId {
    CourierId::parse(s).unwrap()
}

/// A plan giving `order` to `courier` (times are recomputed by replanning).
fn plan_with(courier: &str, orders: &[&str]) -> Plan {
    let stop = |o: &str, kind| ScheduledStop {
        stop: Stop { order: id(o), kind },
        arrival: t(1000.0),
        service_start: t(1000.0),
        departure: t(1000.0),
    };
    let mut stops: Vec<ScheduledStop> = orders.iter().map(|o| stop(o, StopKind::Pickup)).collect();
    stops.extend(orders.iter().map(|o| stop(o, StopKind::Dropoff)));
    Plan {
        routes: vec![Route {
            courier: cid(courier),
            stops,
        }],
        unassigned: vec![],
    }
}

#[test]
fn a_picked_up_order_stays_with_its_courier() {
    let a = carrying(courier("a", 0.0, 0.0), &["o1"]);
    let o1 = Order::builder(
        id("o1"),
        RestaurantId::parse("r").unwrap(),
        at(0.0, 0.0),
        at(9000.0, 0.0),
        t(900.0),
    )
    .status(OrderStatus::PickedUp)
    .build()
    .unwrap();
    let scene = Scene::new(vec![a, courier("b", 9000.0, 0.0)], vec![o1]);
    let out = scene.replan(&Plan::default(), &config());
    assert_eq!(out.plan.courier_of(&id("o1")), Some(&cid("a")));
}

#[test]
fn an_order_within_the_commitment_horizon_stays_with_its_courier() {
    // a is one minute from the restaurant, b is at it: a keeps the order.
    let scene = Scene::new(
        vec![courier("a", 300.0, 0.0), courier("b", 0.0, 0.0)],
        vec![order("o1", (0.0, 0.0), (3000.0, 0.0))],
    );
    let out = scene.replan(&plan_with("a", &["o1"]), &config());
    assert_eq!(out.plan.courier_of(&id("o1")), Some(&cid("a")));
    assert_eq!(out.committed, vec![(id("o1"), cid("a"))]);
    assert!(out.diff.moved.is_empty());
}

#[test]
fn an_order_moves_when_the_gain_beats_the_hysteresis() {
    // a is 20 minutes from the restaurant, b is at it: the order moves to b.
    let scene = Scene::new(
        vec![courier("a", 6000.0, 0.0), courier("b", 0.0, 0.0)],
        vec![order("o1", (0.0, 0.0), (3000.0, 0.0))],
    );
    let out = scene.replan(&plan_with("a", &["o1"]), &config());
    assert_eq!(out.plan.courier_of(&id("o1")), Some(&cid("b")));
    assert_eq!(out.diff.moved, vec![(id("o1"), cid("a"), cid("b"))]);
    assert_eq!(out.diff.changed_couriers, vec![cid("a"), cid("b")]);
    assert!(out.committed.is_empty());
}

#[test]
fn a_small_gain_does_not_move_an_order() {
    // b would arrive 40 s sooner than a: not worth a change under a 10-minute hysteresis.
    let scene = Scene::new(
        vec![courier("a", 1800.0, 0.0), courier("b", 0.0, 1600.0)],
        vec![order("o1", (0.0, 0.0), (3000.0, 0.0))],
    );
    let config = ReplanConfig {
        objective: Objective {
            stability: 600.0,
            ..Objective::meal_delivery()
        },
        ..config()
    };
    let out = scene.replan(&plan_with("a", &["o1"]), &config);
    assert_eq!(out.plan.courier_of(&id("o1")), Some(&cid("a")));
    assert!(out.diff.changed_couriers.is_empty(), "{:?}", out.diff);
    // Without hysteresis the same small gain does move it: the threshold is what holds it.
    let eager = ReplanConfig {
        objective: Objective {
            stability: 0.0,
            ..Objective::meal_delivery()
        },
        ..config
    };
    let out = scene.replan(&plan_with("a", &["o1"]), &eager);
    assert_eq!(out.plan.courier_of(&id("o1")), Some(&cid("b")));
}

#[test]
fn an_order_that_moved_too_often_stays() {
    let mut scene = Scene::new(
        vec![courier("a", 6000.0, 0.0), courier("b", 0.0, 0.0)],
        vec![order("o1", (0.0, 0.0), (3000.0, 0.0))],
    );
    scene.moves.insert(id("o1"), 2);
    let out = scene.replan(&plan_with("a", &["o1"]), &config());
    assert_eq!(out.plan.courier_of(&id("o1")), Some(&cid("a")));
}

#[test]
fn staff_pins_are_never_broken() {
    let mut scene = Scene::new(
        vec![courier("a", 6000.0, 0.0), courier("b", 0.0, 0.0)],
        vec![order("o1", (0.0, 0.0), (3000.0, 0.0))],
    );
    scene.pins.insert(id("o1"), cid("a"));
    let out = scene.replan(&Plan::default(), &config());
    assert_eq!(out.plan.courier_of(&id("o1")), Some(&cid("a")));
}

#[test]
fn no_pickup_is_planned_after_a_shift_ends() {
    // a's shift ends before it could reach the restaurant; b is far but on shift.
    let scene = Scene::new(
        vec![
            courier_until("a", 3000.0, 0.0, 1100.0),
            courier("b", 9000.0, 0.0),
        ],
        vec![order("o1", (0.0, 0.0), (3000.0, 0.0))],
    );
    let out = scene.replan(&Plan::default(), &config());
    assert_eq!(out.plan.courier_of(&id("o1")), Some(&cid("b")));
}

#[test]
fn orders_from_one_restaurant_are_bundled_and_timed_for_the_kitchen() {
    let mut o2 = order("o2", (0.0, 0.0), (3100.0, 0.0));
    o2 = Order::builder(
        id("o2"),
        RestaurantId::parse("r-o1").unwrap(),
        at(0.0, 0.0),
        at(3100.0, 0.0),
        t(900.0),
    )
    .ready_at(t(1200.0))
    .deliver_by(o2.deliver_by().unwrap())
    .build()
    .unwrap();
    let scene = Scene::new(
        vec![courier("a", 600.0, 0.0), courier("b", 12000.0, 0.0)],
        vec![order("o1", (0.0, 0.0), (3000.0, 0.0)), o2],
    );
    let out = scene.replan(&Plan::default(), &config());
    assert_eq!(out.plan.courier_of(&id("o1")), Some(&cid("a")));
    assert_eq!(out.plan.courier_of(&id("o2")), Some(&cid("a")));
    let kinds: Vec<StopKind> = out
        .plan
        .route_of(&cid("a"))
        .unwrap()
        .stops
        .iter()
        .map(|s| s.stop.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            StopKind::Pickup,
            StopKind::Pickup,
            StopKind::Dropoff,
            StopKind::Dropoff
        ]
    );
    // The kitchen hears when the courier arrives: two minutes after now, from 600 m at 5 m/s.
    let eta = out.pickup_etas.iter().find(|e| e.0 == id("o1")).unwrap();
    assert_eq!(eta.1, cid("a"));
    assert!((eta.2.secs() - 1120.0).abs() < 1e-6, "{:?}", eta.2);
    assert_eq!(out.diff.assigned.len(), 2);
}

#[test]
fn mdrp_trip_rules_keep_one_restaurant_per_trip_and_one_trip_at_a_time() {
    // Two restaurants side by side, one courier: freely it would carry both orders at once;
    // under the MDRP rules it delivers one trip before starting the next.
    let scene = Scene::new(
        vec![courier("a", 0.0, 0.0)],
        vec![
            order("o1", (0.0, 0.0), (3000.0, 0.0)),
            order("o2", (50.0, 0.0), (3050.0, 0.0)),
        ],
    );
    let free = scene.replan(&Plan::default(), &config());
    let kinds = |out: &Replanned| -> Vec<StopKind> {
        out.plan.routes[0]
            .stops
            .iter()
            .map(|s| s.stop.kind)
            .collect()
    };
    assert_eq!(kinds(&free)[..2], [StopKind::Pickup, StopKind::Pickup]);
    let mdrp = ReplanConfig {
        trips: TripRules {
            single_restaurant: true,
            one_trip_at_a_time: true,
        },
        ..config()
    };
    let strict = scene.replan(&Plan::default(), &mdrp);
    assert_eq!(
        kinds(&strict),
        vec![
            StopKind::Pickup,
            StopKind::Dropoff,
            StopKind::Pickup,
            StopKind::Dropoff
        ]
    );
}

#[test]
fn stops_done_since_the_last_plan_are_not_route_changes() {
    // The previous plan had a's pickup and drop-off of o1; o1 is now on board, so only the
    // drop-off is ahead, and a plan with just that drop-off is no change.
    let a = carrying(courier("a", 0.0, 0.0), &["o1"]);
    let o1 = Order::builder(
        id("o1"),
        RestaurantId::parse("r").unwrap(),
        at(0.0, 0.0),
        at(3000.0, 0.0),
        t(900.0),
    )
    .status(OrderStatus::PickedUp)
    .build()
    .unwrap();
    let scene = Scene::new(vec![a, courier("b", 9000.0, 0.0)], vec![o1]);
    let out = scene.replan(&plan_with("a", &["o1"]), &config());
    assert_eq!(out.plan.courier_of(&id("o1")), Some(&cid("a")));
    assert!(out.diff.changed_couriers.is_empty(), "{:?}", out.diff);
}

#[test]
fn food_on_board_stays_planned_when_the_previous_plan_lacks_it() {
    // a picked up o1 (say by a staff override) but the last plan only knew of o2 for a.
    let a = carrying(courier("a", 0.0, 0.0), &["o1"]);
    let o1 = Order::builder(
        id("o1"),
        RestaurantId::parse("r").unwrap(),
        at(0.0, 0.0),
        at(3000.0, 0.0),
        t(900.0),
    )
    .status(OrderStatus::PickedUp)
    .build()
    .unwrap();
    let scene = Scene::new(vec![a], vec![o1, order("o2", (100.0, 0.0), (2000.0, 0.0))]);
    let out = scene.replan(&plan_with("a", &["o2"]), &config());
    assert_eq!(out.plan.courier_of(&id("o1")), Some(&cid("a")));
    assert_eq!(out.plan.courier_of(&id("o2")), Some(&cid("a")));
}

/// Exact straight lines, but nothing crosses the river at `x = 5000`.
struct River;

impl TravelModel for River {
    fn distance(&self, from: Location, to: Location, vehicle: &Vehicle) -> f64 {
        let east = |l: Location| matches!(l, Location::Planar(p) if p.x() > 5000.0);
        if east(from) == east(to) {
            StraightLine::exact().distance(from, to, vehicle)
        } else {
            f64::INFINITY
        }
    }
}

#[test]
fn a_courier_that_cannot_reach_an_order_is_never_committed_to_it() {
    // The previous plan sends a (east of the river) to a restaurant on the west bank: an
    // infinite drive must not read as "there now".
    let scene = Scene::new(
        vec![courier("a", 6000.0, 0.0)],
        vec![order("o1", (100.0, 0.0), (200.0, 0.0))],
    );
    let state = CityState {
        now: t(1000.0),
        couriers: &scene.couriers,
        orders: &scene.orders,
        previous: &plan_with("a", &["o1"]),
        pins: &scene.pins,
        moves: &scene.moves,
    };
    let out = replan(&state, &config(), Arc::new(River), &Unlimited).unwrap();
    assert!(out.committed.is_empty(), "{:?}", out.committed);
    assert!(out.plan.routes.is_empty());
    assert_eq!(out.plan.unassigned.len(), 1);
    assert_eq!(out.plan.unassigned[0].reason, UnassignedReason::Unreachable);
}

#[test]
fn the_objective_stability_weight_is_the_hysteresis_and_is_not_overwritten() {
    // b is 5 minutes nearer the restaurant than a: worth moving under a 2-minute threshold,
    // not under a 20-minute one. The weight set in the objective is the one that holds.
    let scene = Scene::new(
        vec![courier("a", 3000.0, 0.0), courier("b", 1500.0, 0.0)],
        vec![order("o1", (0.0, 0.0), (-3000.0, 0.0))],
    );
    let strict = ReplanConfig {
        objective: Objective {
            stability: 1200.0,
            ..Objective::meal_delivery()
        },
        commitment_horizon: Seconds::ZERO,
        ..config()
    };
    let out = scene.replan(&plan_with("a", &["o1"]), &strict);
    assert_eq!(out.plan.courier_of(&id("o1")), Some(&cid("a")));
    let loose = ReplanConfig {
        objective: Objective {
            stability: 120.0,
            ..Objective::meal_delivery()
        },
        ..strict
    };
    let out = scene.replan(&plan_with("a", &["o1"]), &loose);
    assert_eq!(out.plan.courier_of(&id("o1")), Some(&cid("b")));
}
