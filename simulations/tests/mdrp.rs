//! The greedy replay on generated MDRP instances: every trip obeys the timing rules, the written
//! moves are continuous, and the metrics agree with the trips.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use simulations::mdrp::instance::travel_minutes;
use simulations::mdrp::optimizer_policy::Positioning;
use simulations::mdrp::report::{self, Metrics};
use simulations::mdrp::sim::time_trip;
use simulations::mdrp::{
    Decisions, Greedy, Instance, OptimizerPolicy, Outcome, Place, Policy, Reposition, SimState,
    TripAssignment, simulate,
};

/// A small deterministic pseudo-random generator (xorshift), so the test needs no crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const PARAMS: &str = "meters_per_minute\tpickup service minutes\tdropoff service minutes\t\
                      target click-to-door\tmaximum click-to-door\tpay per order\t\
                      guaranteed pay per hour\n320\t4\t4\t40\t90\t10\t15\n";

/// Writes an instance of `orders` orders, 6 restaurants and 5 couriers into a fresh temp dir.
fn generated_instance(seed: u64, orders: usize) -> PathBuf {
    generated_city(seed, orders, 5)
}

/// Writes an instance of `orders` orders, 6 restaurants and `couriers` couriers into a fresh
/// temp dir.
fn generated_city(seed: u64, orders: usize, couriers: usize) -> PathBuf {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let dir = std::env::temp_dir().join(format!("mdrp-test-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut r = String::from("restaurant\tx\ty\n");
    for k in 1..=6 {
        let _ = writeln!(r, "r{k}\t{}\t{}", rng.below(6000), rng.below(6000));
    }
    let mut o = String::from("order\tx\ty\tplacement_time\trestaurant\tready_time\n");
    for k in 1..=orders {
        let placed = rng.below(150);
        let ready = placed + 5 + rng.below(20);
        let rest = 1 + rng.below(6);
        let (x, y) = (rng.below(6000), rng.below(6000));
        let _ = writeln!(o, "o{k}\t{x}\t{y}\t{placed}\tr{rest}\t{ready}");
    }
    let mut c = String::from("courier\tx\ty\ton_time\toff_time\n");
    for k in 1..=couriers {
        let on = rng.below(40);
        let off = on + 120 + rng.below(60);
        let (x, y) = (rng.below(6000), rng.below(6000));
        let _ = writeln!(c, "c{k}\t{x}\t{y}\t{on}\t{off}");
    }
    for (name, text) in [
        ("restaurants.txt", r),
        ("orders.txt", o),
        ("couriers.txt", c),
        ("instance_parameters.txt", PARAMS.to_owned()),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

#[test]
fn a_trip_follows_the_travel_and_service_rules() {
    let orders = "order\tx\ty\tplacement_time\trestaurant\tready_time\n\
                  o1\t0\t1000\t0\tr1\t20\no2\t0\t1640\t2\tr1\t15\n";
    let inst = Instance::parse(
        "t",
        orders,
        "restaurant\tx\ty\nr1\t0\t0\n",
        "courier\tx\ty\ton_time\toff_time\nc1\t0\t-650\t0\t100\n",
        PARAMS,
    )
    .unwrap();
    // Start -> r1: 650 m, 3 min; pickup at max(20, 10 + 3 + 2) = 20; leave at 22.
    let trip = time_trip(&inst, 0, Place::Start(0), 10, &[1, 0]);
    assert_eq!(
        (trip.arrive_restaurant, trip.pickup, trip.leave_restaurant),
        (13, 20, 22)
    );
    // r1 -> o2: 1640 m, 6 min: arrive 28, drop 30, leave 32; o2 -> o1: 640 m, 2 min: 34, 36, 38.
    let drops: Vec<_> = trip
        .drops
        .iter()
        .map(|d| (d.order, d.depart, d.arrive, d.dropoff, d.leave))
        .collect();
    assert_eq!(drops, vec![(1, 22, 28, 30, 32), (0, 32, 34, 36, 38)]);
    // A courier that arrives late picks up at arrival + half the service.
    let late = time_trip(&inst, 0, Place::Start(0), 30, &[0]);
    assert_eq!(
        (late.arrive_restaurant, late.pickup, late.leave_restaurant),
        (33, 35, 37)
    );
}

/// Checks every trip against the MDRP travel, service and trip rules; returns the orders delivered.
fn assert_trips_obey_the_rules(inst: &Instance, outcome: &Outcome) -> HashSet<usize> {
    let p = &inst.params;
    let mut delivered = HashSet::new();
    for trip in &outcome.trips {
        let courier = &inst.couriers[trip.courier];
        assert!(trip.assigned_at >= courier.on);
        assert!(trip.pickup <= courier.off, "pickup after off-time");
        assert!(trip.pickup >= trip.arrive_restaurant + p.pickup_service / 2);
        assert_eq!(trip.leave_restaurant, trip.pickup + p.pickup_service / 2);
        let to_restaurant = inst.travel(trip.origin, Place::Restaurant(trip.restaurant));
        assert_eq!(trip.arrive_restaurant - trip.depart, to_restaurant);
        let mut at = (Place::Restaurant(trip.restaurant), trip.leave_restaurant);
        for d in &trip.drops {
            let order = &inst.orders[d.order];
            assert_eq!(
                order.restaurant, trip.restaurant,
                "a trip mixes restaurants"
            );
            assert!(
                order.placement <= trip.assigned_at,
                "assigned before placement"
            );
            assert!(order.ready <= trip.pickup, "picked up before ready");
            assert_eq!(d.depart, at.1);
            assert_eq!(
                d.arrive,
                d.depart + inst.travel(at.0, Place::Dropoff(d.order))
            );
            assert_eq!((d.dropoff, d.leave), (d.arrive + 2, d.arrive + 4));
            assert!(delivered.insert(d.order), "order delivered twice");
            at = (Place::Dropoff(d.order), d.leave);
        }
    }
    delivered
}

/// The moves file: per courier, each move starts where and after the previous one ended, the
/// first from the courier's own start; returns the number of moves.
fn assert_moves_are_continuous(inst: &Instance, outcome: &Outcome) -> usize {
    let p = &inst.params;
    let text = report::moves(inst, outcome);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("courier departure_time origin destination")
    );
    let place = |id: &str| {
        let o = inst
            .orders
            .iter()
            .position(|o| o.id == id)
            .map(Place::Dropoff);
        let r = || {
            inst.restaurants
                .iter()
                .position(|r| r.id == id)
                .map(Place::Restaurant)
        };
        let c = || {
            inst.couriers
                .iter()
                .position(|c| c.id == id)
                .map(Place::Start)
        };
        inst.point(o.or_else(r).or_else(c).unwrap())
    };
    let mut last: Option<(String, String, i64)> = None;
    let mut seen = HashSet::new();
    for line in lines {
        let f: Vec<&str> = line.split(' ').collect();
        let (c, dep, from, to) = (f[0], f[1].parse::<i64>().unwrap(), f[2], f[3]);
        let arrive = dep + travel_minutes(place(from), place(to), p.meters_per_minute);
        match &last {
            Some((lc, at, free)) if lc == c => {
                assert_eq!(at, from, "courier {c} jumps");
                assert!(dep >= *free, "courier {c} leaves before arriving");
            }
            _ => {
                assert!(seen.insert(c.to_owned()), "moves of {c} are not contiguous");
                assert_eq!(from, c, "first move of {c} starts elsewhere");
            }
        }
        last = Some((c.to_owned(), to.to_owned(), arrive));
    }

    text.lines().count() - 1
}

#[test]
fn greedy_replay_obeys_the_rules_and_writes_continuous_moves() {
    let dir = generated_instance(7, 30);
    let inst = Instance::read(&dir).unwrap();
    let outcome = simulate(&inst, &mut Greedy::default(), 1).unwrap();
    let delivered = assert_trips_obey_the_rules(&inst, &outcome);
    assert!(
        delivered.len() >= 20,
        "only {} of 30 delivered",
        delivered.len()
    );

    assert_moves_are_continuous(&inst, &outcome);

    let m = Metrics::measure(&inst, &outcome);
    assert_eq!(m.delivered, delivered.len());
    let rows = report::orders(&inst, &outcome).lines().count();
    assert_eq!(rows, delivered.len() + 1);
    let lines = report::assignments(&inst, &outcome).lines().count();
    assert_eq!(lines, outcome.trips.len() + 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn optimizer_replay_obeys_the_rules_and_delivers_at_least_as_many_as_greedy() {
    let dir = generated_instance(23, 40);
    let inst = Instance::read(&dir).unwrap();
    let greedy = simulate(&inst, &mut Greedy::default(), 1).unwrap();
    let outcome = simulate(&inst, &mut OptimizerPolicy::new(60), 1).unwrap();
    let delivered = assert_trips_obey_the_rules(&inst, &outcome);
    let greedy_delivered = assert_trips_obey_the_rules(&inst, &greedy);
    assert!(
        delivered.len() >= greedy_delivered.len(),
        "optimizer delivered {} orders, greedy {}",
        delivered.len(),
        greedy_delivered.len()
    );
    assert_eq!(Metrics::measure(&inst, &outcome).delivered, delivered.len());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Gives every known order to courier 0, busy or not.
struct Cheater;

impl Policy for Cheater {
    fn decide(&mut self, _now: i64, state: &SimState<'_>) -> Decisions {
        let orders = state.pending().iter();
        let trips: Vec<TripAssignment> = orders
            .map(|&o| TripAssignment {
                courier: 0,
                orders: vec![o],
            })
            .collect();
        trips.into()
    }
}

#[test]
fn an_assignment_that_breaks_the_rules_is_rejected() {
    let dir = generated_instance(11, 30);
    let inst = Instance::read(&dir).unwrap();
    assert!(simulate(&inst, &mut Cheater, 1).is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn prepositioned_couriers_wait_at_restaurants_and_their_moves_stay_continuous() {
    let dir = generated_city(31, 40, 12);
    let inst = Instance::read(&dir).unwrap();
    let mut policy = OptimizerPolicy::new(60);
    policy.positioning = Positioning::Demand;
    let outcome = simulate(&inst, &mut policy, 1).unwrap();
    let delivered = assert_trips_obey_the_rules(&inst, &outcome);
    assert!(
        delivered.len() >= 36,
        "only {} of 40 delivered",
        delivered.len()
    );
    assert!(!outcome.moves.is_empty(), "no courier was prepositioned");
    for m in &outcome.moves {
        assert!(matches!(m.to, Place::Restaurant(_)), "a move to {:?}", m.to);
        assert_ne!(m.from, m.to);
        assert_eq!(m.arrive - m.depart, inst.travel(m.from, m.to));
        let shift = &inst.couriers[m.courier];
        assert!(
            shift.on <= m.depart && m.depart < shift.off,
            "a move off shift"
        );
    }
    // Every trip and prepositioning move is in the file, except a trip's zero-minute hop to the
    // restaurant a courier already waits at.
    let written = assert_moves_are_continuous(&inst, &outcome);
    let legs: usize = outcome
        .trips
        .iter()
        .map(|t| t.drops.len() + usize::from(t.origin != Place::Restaurant(t.restaurant)))
        .sum();
    assert_eq!(written, legs + outcome.moves.len());
    let waited = outcome
        .trips
        .iter()
        .filter(|t| t.origin == Place::Restaurant(t.restaurant))
        .count();
    assert!(
        waited > 0,
        "no trip started at the restaurant its courier waited at"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Starts a trip for courier 0 and, in the same epoch, sends it elsewhere.
struct Restless;

impl Policy for Restless {
    fn decide(&mut self, now: i64, state: &SimState<'_>) -> Decisions {
        let Some(&o) = state.pending().first() else {
            return Decisions::default();
        };
        if !state.is_idle(0, now) || state.trip(0, now, &[o]).is_none() {
            return Decisions::default();
        }
        let restaurant =
            (state.instance().orders[o].restaurant + 1) % state.instance().restaurants.len();
        Decisions {
            trips: vec![TripAssignment {
                courier: 0,
                orders: vec![o],
            }],
            repositions: vec![Reposition {
                courier: 0,
                restaurant,
            }],
        }
    }

    fn repositions(&self) -> bool {
        true
    }
}

#[test]
fn a_courier_on_a_trip_cannot_be_prepositioned() {
    let dir = generated_instance(13, 30);
    let inst = Instance::read(&dir).unwrap();
    let err = simulate(&inst, &mut Restless, 1).unwrap_err();
    assert!(err.to_string().contains("not idle"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
