//! Property tests: random small instances, with no couriers or a few on and off shift, orders on
//! board and committed, staff pins, hard and soft deadlines, travel times rounded or not, and
//! places across a river nobody can cross; every plan the solver returns, from scratch or
//! warm-started, must pass the independent checker, and every order left out says why.

use std::collections::HashMap;
use std::sync::Arc;

use optimizer::model::*;
use optimizer::{
    CheckRules, Objective, Problem, RoundedUp, SolverConfig, StraightLine, TravelModel, TripRules,
    Unlimited, check_plan, routes_of, solve, solve_from,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct OrderSpec {
    from: (f64, f64),
    to: (f64, f64),
    placed: f64,
    prep: f64,
    slack: Option<f64>,
    size: i64,
    service: (f64, f64),
}

#[derive(Clone, Debug)]
struct CourierSpec {
    at: (f64, f64),
    kind: VehicleKind,
    shift: (f64, f64),
    capacity: Option<i64>,
}

fn order_spec() -> impl Strategy<Value = OrderSpec> {
    (
        (0.0..2000.0f64, 0.0..2000.0f64),
        (0.0..2000.0f64, 0.0..2000.0f64),
        0.0..600.0f64,
        0.0..900.0f64,
        prop::option::weighted(0.7, 300.0..3000.0f64),
        1..=3i64,
        (0.0..120.0f64, 0.0..120.0f64),
    )
        .prop_map(|(from, to, placed, prep, slack, size, service)| OrderSpec {
            from,
            to,
            placed,
            prep,
            slack,
            size,
            service,
        })
}

fn courier_spec() -> impl Strategy<Value = CourierSpec> {
    (
        (0.0..2000.0f64, 0.0..2000.0f64),
        prop::sample::select(VehicleKind::ALL.to_vec()),
        (0.0..300.0f64, 600.0..5000.0f64),
        prop::option::of(1..=4i64),
    )
        .prop_map(|(at, kind, shift, capacity)| CourierSpec {
            at,
            kind,
            shift,
            capacity,
        })
}

/// Where the river runs in [`Islands`]: nothing crosses `x = RIVER_X`.
const RIVER_X: f64 = 1500.0;

/// Exact straight lines, except that no way crosses the river: places on different sides are
/// unreachable from each other (infinitely far).
struct Islands;

fn east(l: Location) -> bool {
    matches!(l, Location::Planar(p) if p.x() > RIVER_X)
}

impl TravelModel for Islands {
    fn distance(&self, from: Location, to: Location, vehicle: &Vehicle) -> f64 {
        if east(from) == east(to) {
            StraightLine::exact().distance(from, to, vehicle)
        } else {
            f64::INFINITY
        }
    }
}

/// The travel model of a case: straight lines or the river, times rounded up to `step` or not.
fn travel_model(river: bool, step: Option<f64>) -> Arc<dyn TravelModel> {
    match (river, step) {
        (false, None) => Arc::new(StraightLine::exact()),
        (false, Some(step)) => Arc::new(RoundedUp::new(StraightLine::exact(), step)),
        (true, None) => Arc::new(Islands),
        (true, Some(step)) => Arc::new(RoundedUp::new(Islands, step)),
    }
}

fn loc(p: (f64, f64)) -> Location {
    PlanarPoint::parse(p.0, p.1).unwrap().into()
}

fn t(s: f64) -> Time {
    Time::from_secs(s).unwrap()
}

struct Scenario {
    couriers: Vec<Courier>,
    orders: Vec<Order>,
    pins: HashMap<OrderId, CourierId>,
}

/// Builds a consistent scenario: courier 0 may carry order 0 on board and be committed to
/// order 1's pickup; order 2 may be pinned to the last courier.
fn scenario(
    orders: &[OrderSpec],
    couriers: &[CourierSpec],
    onboard: bool,
    committed: bool,
    pin: bool,
) -> Scenario {
    let onboard = onboard && !orders.is_empty() && !couriers.is_empty();
    let committed = committed && orders.len() >= 2 && !couriers.is_empty();
    let built: Vec<Order> = orders
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let mut b = Order::builder(
                OrderId::parse(format!("o{i}")).unwrap(),
                RestaurantId::parse(format!("r{i}")).unwrap(),
                loc(o.from),
                loc(o.to),
                t(o.placed),
            )
            .ready_at(t(o.placed + o.prep))
            .size(Size::new(o.size).unwrap())
            .service(
                Seconds::new(o.service.0).unwrap(),
                Seconds::new(o.service.1).unwrap(),
            );
            if let Some(slack) = o.slack {
                b = b.deliver_by(t(o.placed + o.prep + slack));
            }
            if i == 0 && onboard {
                b = b.status(OrderStatus::PickedUp);
            } else if i == 1 && committed {
                b = b.status(OrderStatus::Assigned);
            }
            b.build().unwrap()
        })
        .collect();
    let built_couriers: Vec<Courier> = couriers
        .iter()
        .enumerate()
        .map(|(v, c)| {
            let default = Vehicle::of_kind(c.kind);
            // Courier 0 may carry two orders of up to three units as commitments.
            let floor = if v == 0 { 6 } else { 1 };
            let capacity = c
                .capacity
                .unwrap_or(default.capacity().units() as i64)
                .max(floor);
            let vehicle = Vehicle::new(
                c.kind,
                default.speed_mps(),
                Capacity::new(capacity).unwrap(),
            )
            .unwrap();
            let shift = TimeWindow::new(t(c.shift.0), t(c.shift.1)).unwrap();
            let mut b = Courier::builder(
                CourierId::parse(format!("c{v}")).unwrap(),
                vehicle,
                shift,
                loc(c.at),
            );
            if v == 0 {
                if onboard {
                    b = b.onboard(vec![built[0].id().clone()]);
                }
                if committed {
                    b = b.committed(vec![Stop {
                        order: built[1].id().clone(),
                        kind: StopKind::Pickup,
                    }]);
                }
            }
            b.build().unwrap()
        })
        .collect();
    let mut pins = HashMap::new();
    if pin && orders.len() >= 3 && built_couriers.len() >= 2 {
        pins.insert(
            built[2].id().clone(),
            built_couriers.last().unwrap().id().clone(),
        );
    }
    Scenario {
        couriers: built_couriers,
        orders: built,
        pins,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_plan_passes_the_independent_checker(
        orders in prop::collection::vec(order_spec(), 0..14),
        couriers in prop::collection::vec(courier_spec(), 0..5),
        onboard in any::<bool>(),
        committed in any::<bool>(),
        pin in any::<bool>(),
        hard in any::<bool>(),
        seed in 0u64..1000,
        islands in 1usize..=2,
        trips in (any::<bool>(), any::<bool>()),
        step in prop::option::weighted(0.3, 1.0..120.0f64),
        river in prop::bool::weighted(0.25),
    ) {
        // Food on board or committed across the river could never be delivered: such a state
        // is not generated (the dispatcher would not have committed it).
        let (onboard, committed) = (onboard && !river, committed && !river);
        let s = scenario(&orders, &couriers, onboard, committed, pin);
        let objective = if hard { Objective::vehicles_then_distance() } else { Objective::meal_delivery() };
        let travel = travel_model(river, step);
        let trips = TripRules { single_restaurant: trips.0, one_trip_at_a_time: trips.1 };
        let problem = Problem::builder(&s.couriers, &s.orders, travel.clone())
            .objective(objective)
            .pins(s.pins.clone())
            .trip_rules(trips)
            .build()
            .unwrap();
        let config = SolverConfig { seed, max_iterations: Some(60), islands, epoch: 20, ..SolverConfig::default() };
        let solved = solve(&problem, &config, &Unlimited);
        let rules = CheckRules { hard_deadlines: hard, pins: s.pins.clone(), trips };
        if let Err(errors) = check_plan(&solved.plan, &s.couriers, &s.orders, travel.as_ref(), &rules) {
            prop_assert!(false, "checker rejected the plan: {errors:#?}\nplan: {:#?}", solved.plan);
        }
        // Orders on board always stay on their courier's route.
        if onboard && !s.orders.is_empty() && !s.couriers.is_empty() {
            prop_assert_eq!(solved.plan.courier_of(s.orders[0].id()), Some(s.couriers[0].id()));
        }
        // With nobody to carry them, every order waits for a courier.
        if s.couriers.is_empty() {
            prop_assert!(solved.plan.routes.is_empty());
            prop_assert_eq!(solved.plan.unassigned.len(), s.orders.len());
            for u in &solved.plan.unassigned {
                prop_assert_eq!(u.reason, UnassignedReason::NoCourierAvailable);
            }
        }
        // An order whose restaurant and customer are on different banks is never planned, and
        // says that no way leads there (unless it is too big or too late for anyone anyway, or
        // pinned to a courier whose bag is too small for it).
        if river {
            for o in &s.orders {
                if east(o.pickup().location()) != east(o.dropoff().location()) {
                    let left = solved.plan.unassigned.iter().find(|u| u.order == *o.id());
                    prop_assert!(left.is_some(), "order {} crosses the river", o.id());
                    prop_assert!(matches!(
                        left.map(|u| u.reason),
                        Some(UnassignedReason::Unreachable | UnassignedReason::TooLarge | UnassignedReason::NoCourierAvailable | UnassignedReason::Capacity)
                    ), "{:?}", left);
                }
            }
        }
        // Couriers with nothing to do have no route.
        prop_assert!(solved.plan.routes.iter().all(|r| !r.stops.is_empty()));

        // A warm start from the plan, after one more order arrives, also passes and is no worse
        // than re-solving it from the previous routes without search.
        let previous = routes_of(&solved.plan);
        let warm = solve_from(&problem, &previous, &SolverConfig { max_iterations: Some(30), ..config.clone() }, &Unlimited);
        if let Err(errors) = check_plan(&warm.plan, &s.couriers, &s.orders, travel.as_ref(), &rules) {
            prop_assert!(false, "checker rejected the warm plan: {errors:#?}");
        }
        let rank = |st: &optimizer::SolveStats| (st.unassigned, if hard { st.vehicles } else { 0 });
        prop_assert!(rank(&warm.stats) <= rank(&solved.stats));
        if rank(&warm.stats) == rank(&solved.stats) {
            prop_assert!(warm.stats.cost <= solved.stats.cost + 1e-6 * solved.stats.cost.abs().max(1.0),
                "warm start got worse: {} > {}", warm.stats.cost, solved.stats.cost);
        }
    }
}

#[test]
fn the_same_seed_and_iterations_give_the_same_plan() {
    let orders: Vec<OrderSpec> = (0..12)
        .map(|i| OrderSpec {
            from: ((i * 137 % 2000) as f64, (i * 331 % 2000) as f64),
            to: ((i * 733 % 2000) as f64, (i * 97 % 2000) as f64),
            placed: (i * 30) as f64,
            prep: 300.0,
            slack: Some(2400.0),
            size: 1,
            service: (60.0, 60.0),
        })
        .collect();
    let couriers: Vec<CourierSpec> = (0..3)
        .map(|v| CourierSpec {
            at: ((v * 500) as f64, 1000.0),
            kind: VehicleKind::Bike,
            shift: (0.0, 4000.0),
            capacity: None,
        })
        .collect();
    let s = scenario(&orders, &couriers, false, false, false);
    let travel = Arc::new(StraightLine::default());
    let problem = Problem::builder(&s.couriers, &s.orders, travel)
        .build()
        .unwrap();
    let config = SolverConfig {
        seed: 42,
        max_iterations: Some(400),
        ..SolverConfig::default()
    };
    let a = solve(&problem, &config, &Unlimited);
    let b = solve(&problem, &config, &Unlimited);
    assert_eq!(a.plan, b.plan);
    assert_eq!(a.stats, b.stats);
}

#[test]
fn an_order_bigger_than_every_vehicle_is_unassigned_with_a_reason() {
    let orders = vec![OrderSpec {
        from: (0.0, 0.0),
        to: (100.0, 0.0),
        placed: 0.0,
        prep: 0.0,
        slack: None,
        size: 3,
        service: (0.0, 0.0),
    }];
    let couriers = vec![CourierSpec {
        at: (0.0, 0.0),
        kind: VehicleKind::Bike,
        shift: (0.0, 3600.0),
        capacity: Some(1),
    }];
    let mut s = scenario(&orders, &couriers, false, false, false);
    // The scenario gives courier 0 room for six; shrink it to one unit.
    let c = &s.couriers[0];
    s.couriers[0] = Courier::builder(
        c.id().clone(),
        Vehicle::new(VehicleKind::Bike, 4.0, Capacity::new(1).unwrap()).unwrap(),
        c.shift(),
        c.position(),
    )
    .build()
    .unwrap();
    let problem = Problem::builder(&s.couriers, &s.orders, Arc::new(StraightLine::default()))
        .build()
        .unwrap();
    let solved = solve(&problem, &SolverConfig::default(), &Unlimited);
    assert_eq!(solved.plan.unassigned.len(), 1);
    assert_eq!(solved.plan.unassigned[0].reason, UnassignedReason::TooLarge);
}

/// A city-sized fleet (above the size where the R-tree picks candidate couriers): every order
/// is served near its restaurant, and the plan passes the checker.
#[test]
fn a_large_fleet_uses_spatial_candidates_and_stays_feasible() {
    let base = (52.50, 13.30);
    let at = |i: u64, salt: u64| {
        // SplitMix64 of (salt, i): independent positions per salt.
        let mut h = (salt << 32 ^ i).wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
        let u = (h % 10_000) as f64 / 10_000.0;
        let w = ((h / 10_000) % 10_000) as f64 / 10_000.0;
        Location::from(Coordinates::parse(base.0 + 0.1 * u, base.1 + 0.15 * w).unwrap())
    };
    let couriers: Vec<Courier> = (0..300u64)
        .map(|v| {
            Courier::builder(
                CourierId::parse(format!("c{v}")).unwrap(),
                Vehicle::of_kind(VehicleKind::ALL[(v % 3) as usize]),
                TimeWindow::new(t(0.0), t(4.0 * 3600.0)).unwrap(),
                at(v, 1),
            )
            .build()
            .unwrap()
        })
        .collect();
    let orders: Vec<Order> = (0..120u64)
        .map(|i| {
            Order::builder(
                OrderId::parse(format!("o{i}")).unwrap(),
                RestaurantId::parse(format!("r{}", i % 40)).unwrap(),
                at(i % 40, 2),
                at(i, 3),
                t((i * 20) as f64),
            )
            .ready_at(t((i * 20 + 600) as f64))
            .deliver_by(t((i * 20 + 2700) as f64))
            .service(Seconds::new(120.0).unwrap(), Seconds::new(120.0).unwrap())
            .build()
            .unwrap()
        })
        .collect();
    let travel = Arc::new(StraightLine::default());
    let problem = Problem::builder(&couriers, &orders, travel.clone())
        .build()
        .unwrap();
    let construction_only = SolverConfig {
        max_iterations: Some(1),
        ..SolverConfig::default()
    };
    let config = SolverConfig {
        max_iterations: Some(600),
        ..SolverConfig::default()
    };
    let start = solve(&problem, &construction_only, &Unlimited);
    let solved = solve(&problem, &config, &Unlimited);
    assert!(
        solved.stats.cost <= start.stats.cost,
        "search made the plan worse"
    );
    assert!(
        solved.plan.unassigned.is_empty(),
        "{:?}",
        solved.plan.unassigned
    );
    check_plan(
        &solved.plan,
        &couriers,
        &orders,
        travel.as_ref(),
        &CheckRules::default(),
    )
    .unwrap();
    // Couriers start near their first restaurant: no cross-city dispatch on average.
    let km: Vec<f64> = solved
        .plan
        .routes
        .iter()
        .map(|route| {
            let c = couriers.iter().find(|c| c.id() == &route.courier).unwrap();
            let order = orders
                .iter()
                .find(|o| o.id() == &route.stops[0].stop.order)
                .unwrap();
            StraightLine::straight_m(c.position(), order.pickup().location()) / 1000.0
        })
        .collect();
    let mean = km.iter().sum::<f64>() / km.len() as f64;
    assert!(
        mean < 2.5,
        "couriers travel {mean:.2} km on average to their first pickup"
    );
}

#[test]
fn orders_and_no_couriers_are_all_unassigned_with_a_reason_never_a_panic() {
    let orders: Vec<OrderSpec> = (0..6)
        .map(|i| OrderSpec {
            from: ((i * 137 % 2000) as f64, 10.0),
            to: (10.0, (i * 331 % 2000) as f64),
            placed: 0.0,
            prep: 60.0,
            slack: Some(2400.0),
            size: 1,
            service: (60.0, 60.0),
        })
        .collect();
    let s = scenario(&orders, &[], true, true, true);
    let problem = Problem::builder(&s.couriers, &s.orders, Arc::new(StraightLine::default()))
        .build()
        .unwrap();
    let solved = solve(&problem, &SolverConfig::default(), &Unlimited);
    assert!(solved.plan.routes.is_empty());
    assert_eq!(solved.plan.unassigned.len(), 6);
    assert!(
        solved
            .plan
            .unassigned
            .iter()
            .all(|u| u.reason == UnassignedReason::NoCourierAvailable),
        "{:?}",
        solved.plan.unassigned
    );
}

#[test]
fn an_order_across_the_river_is_unassigned_as_unreachable() {
    let orders = vec![
        OrderSpec {
            from: (100.0, 0.0),
            to: (2000.0, 0.0),
            placed: 0.0,
            prep: 0.0,
            slack: None,
            size: 1,
            service: (0.0, 0.0),
        },
        OrderSpec {
            from: (100.0, 0.0),
            to: (200.0, 0.0),
            placed: 0.0,
            prep: 0.0,
            slack: None,
            size: 1,
            service: (0.0, 0.0),
        },
    ];
    let couriers = vec![CourierSpec {
        at: (0.0, 0.0),
        kind: VehicleKind::Bike,
        shift: (0.0, 3600.0),
        capacity: None,
    }];
    let s = scenario(&orders, &couriers, false, false, false);
    let travel: Arc<dyn TravelModel> = Arc::new(Islands);
    let problem = Problem::builder(&s.couriers, &s.orders, travel.clone())
        .build()
        .unwrap();
    let solved = solve(&problem, &SolverConfig::default(), &Unlimited);
    assert_eq!(solved.plan.unassigned.len(), 1);
    assert_eq!(solved.plan.unassigned[0].order, *s.orders[0].id());
    assert_eq!(
        solved.plan.unassigned[0].reason,
        UnassignedReason::Unreachable
    );
    check_plan(
        &solved.plan,
        &s.couriers,
        &s.orders,
        travel.as_ref(),
        &CheckRules::default(),
    )
    .unwrap();
}

#[test]
fn a_full_courier_makes_a_waiting_order_say_capacity() {
    // One courier with room for one, carrying an order that keeps the bag full until after the
    // second order's pickup window closes.
    let orders = vec![
        OrderSpec {
            from: (0.0, 0.0),
            to: (1900.0, 0.0),
            placed: 0.0,
            prep: 0.0,
            slack: None,
            size: 1,
            service: (0.0, 0.0),
        },
        OrderSpec {
            from: (10.0, 0.0),
            to: (20.0, 0.0),
            placed: 0.0,
            prep: 0.0,
            slack: None,
            size: 1,
            service: (0.0, 0.0),
        },
    ];
    let couriers = vec![CourierSpec {
        at: (0.0, 0.0),
        kind: VehicleKind::Bike,
        shift: (0.0, 3600.0),
        capacity: Some(1),
    }];
    let mut s = scenario(&orders, &couriers, true, false, false);
    let c = &s.couriers[0];
    s.couriers[0] = Courier::builder(
        c.id().clone(),
        Vehicle::new(VehicleKind::Bike, 4.0, Capacity::new(1).unwrap()).unwrap(),
        c.shift(),
        c.position(),
    )
    .onboard(c.onboard().to_vec())
    .build()
    .unwrap();
    // The second order must be collected within 100 s; the first drop-off takes 475 s.
    s.orders[1] = Order::builder(
        s.orders[1].id().clone(),
        s.orders[1].restaurant().clone(),
        s.orders[1].pickup().location(),
        s.orders[1].dropoff().location(),
        t(0.0),
    )
    .pickup_latest(t(100.0))
    .build()
    .unwrap();
    let problem = Problem::builder(&s.couriers, &s.orders, Arc::new(StraightLine::exact()))
        .build()
        .unwrap();
    let solved = solve(&problem, &SolverConfig::default(), &Unlimited);
    assert_eq!(solved.plan.unassigned.len(), 1);
    // Full at the only place still in time (too late after the drop-off): the bag keeps it out.
    assert_eq!(solved.plan.unassigned[0].reason, UnassignedReason::Capacity);
}
