//! The road network of a real extract (central Helsinki, ODbL, see `tests/data/README.md`):
//! it reads, snaps, honours one-way streets, answers tables that agree exactly with single
//! queries (as full matrices and on demand), refuses points far from any road with a reason,
//! and plans with the optimizer so that every plan passes the independent checker.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use optimizer::model::*;
use optimizer::travel::{DENSE_LIMIT, table_of};
use optimizer::{
    CheckRules, Problem, Random, SolverConfig, TravelModel, Unlimited, check_plan, solve,
};
use roads::graph::CLOSED;
use roads::{Profile, RoadNetwork};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/helsinki-centre.osm.pbf")
}

/// The network, prepared once for all tests.
fn network() -> &'static RoadNetwork {
    static NET: OnceLock<RoadNetwork> = OnceLock::new();
    NET.get_or_init(|| {
        let graph = roads::osm::read_pbf(&fixture()).expect("the fixture reads");
        RoadNetwork::new(graph, "helsinki-centre.osm.pbf")
    })
}

/// A seeded point in the extract's box.
fn point(rng: &mut Random) -> Location {
    let lat = 60.1650 + rng.unit() * (60.1785 - 60.1650);
    let lon = 24.9360 + rng.unit() * (24.9525 - 24.9360);
    Coordinates::parse(lat, lon).unwrap().into()
}

fn vehicle(kind: VehicleKind) -> Vehicle {
    Vehicle::of_kind(kind)
}

#[test]
fn the_extract_becomes_a_graph_with_every_profile() {
    let net = network();
    let g = net.graph();
    assert!(g.node_count() > 2_000, "{} nodes", g.node_count());
    for p in Profile::ALL {
        let open = g.segments().iter().filter(|s| s.open_for(p)).count();
        assert!(open > 1_500, "{p:?}: {open} segments");
    }
    // Bikes have ways cars do not (cycleways, shared footways); cars have one-way streets.
    let bike_only = g
        .segments()
        .iter()
        .filter(|s| s.open_for(Profile::Bike) && !s.open_for(Profile::Car))
        .count();
    assert!(bike_only > 100, "{bike_only}");
    let oneway = g
        .segments()
        .iter()
        .filter(|s| s.time_ms[Profile::Car.index()][1] == CLOSED && s.open_for(Profile::Car))
        .count();
    assert!(oneway > 100, "{oneway}");
}

#[test]
fn a_car_goes_the_long_way_round_against_a_one_way_street() {
    let net = network();
    let g = net.graph();
    let car = vehicle(VehicleKind::Car);
    let mut checked = 0;
    for (i, s) in g.segments().iter().enumerate() {
        let [along, against] = s.time_ms[Profile::Car.index()];
        if along == CLOSED || against != CLOSED || s.length_m < 40.0 {
            continue;
        }
        let at = |f: f64| -> Location {
            let (a, b) = (g.nodes()[s.a as usize], g.nodes()[s.b as usize]);
            Coordinates::parse(
                a.lat() + (b.lat() - a.lat()) * f,
                a.lon() + (b.lon() - a.lon()) * f,
            )
            .unwrap()
            .into()
        };
        let (p, q) = (at(0.25), at(0.75));
        let Ok(snapped) = net.snap(
            match p {
                Location::Wgs84(c) => c,
                Location::Planar(_) => unreachable!(),
            },
            Profile::Car,
        ) else {
            continue;
        };
        if snapped.segment as usize != i {
            continue; // another road lies nearer
        }
        let forward = net.duration(p, q, &car);
        let backward = net.duration(q, p, &car);
        let half = f64::from(along) / 2000.0;
        assert!(
            (forward - half).abs() < 0.01,
            "along: {forward} s, want {half} s"
        );
        assert!(
            backward > forward,
            "against the one-way: {backward} s <= {forward} s"
        );
        checked += 1;
        if checked == 20 {
            break;
        }
    }
    assert!(checked >= 5, "only {checked} one-way segments checked");
}

#[test]
fn full_tables_agree_exactly_with_single_queries() {
    let net: Arc<dyn TravelModel> = Arc::new(network().clone());
    let mut rng = Random::new(7);
    let places: Vec<Location> = (0..40).map(|_| point(&mut rng)).collect();
    let profiles: Vec<Vehicle> = VehicleKind::ALL.map(vehicle).to_vec();
    let table = table_of(&net, &places, &profiles).unwrap();
    let mut reachable = 0;
    for (p, v) in profiles.iter().enumerate() {
        for (i, &a) in places.iter().enumerate() {
            for (j, &b) in places.iter().enumerate() {
                let want = if i == j { 0.0 } else { net.duration(a, b, v) };
                assert_eq!(table.duration(p, i, j), want, "{v:?} {i} -> {j}");
                let want = if i == j { 0.0 } else { net.distance(a, b, v) };
                assert_eq!(table.distance(p, i, j), want);
                reachable += usize::from(want.is_finite());
            }
        }
    }
    assert!(
        reachable > 3 * 40 * 39 * 9 / 10,
        "{reachable} reachable pairs"
    );
}

#[test]
fn tables_beyond_the_dense_limit_agree_with_single_queries_too() {
    let net: Arc<dyn TravelModel> = Arc::new(network().clone());
    let mut rng = Random::new(11);
    let places: Vec<Location> = (0..DENSE_LIMIT + 10).map(|_| point(&mut rng)).collect();
    let bike = [vehicle(VehicleKind::Bike)];
    let table = table_of(&net, &places, &bike).unwrap();
    for _ in 0..500 {
        let (i, j) = (rng.below(places.len()), rng.below(places.len()));
        let want = if i == j {
            0.0
        } else {
            net.duration(places[i], places[j], &bike[0])
        };
        assert_eq!(table.duration(0, i, j), want);
    }
}

#[test]
fn times_are_those_of_city_streets() {
    let net = network();
    let mut rng = Random::new(3);
    for (kind, low, high) in [
        (VehicleKind::Car, 8.0, 45.0),
        (VehicleKind::Bike, 8.0, 18.5),
        (VehicleKind::Scooter, 8.0, 40.0),
    ] {
        let v = vehicle(kind);
        let mut speeds = Vec::new();
        for _ in 0..200 {
            let (a, b) = (point(&mut rng), point(&mut rng));
            let (t, d) = (net.duration(a, b, &v), net.distance(a, b, &v));
            if t.is_finite() && t > 60.0 {
                speeds.push(d / t * 3.6);
            }
        }
        speeds.sort_by(f64::total_cmp);
        let median = speeds[speeds.len() / 2];
        assert!(
            (low..high).contains(&median),
            "{kind}: median {median:.1} km/h"
        );
    }
}

#[test]
fn a_point_far_from_any_road_is_refused_with_a_reason() {
    let net = network();
    // Out in the sea, 3 km south of the extract.
    let sea: Location = Coordinates::parse(60.14, 24.945).unwrap().into();
    let car = vehicle(VehicleKind::Car);
    let err = net.check(sea, &car).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("no car road within 500 m"), "{text}");
    let centre: Location = Coordinates::parse(60.170, 24.941).unwrap().into();
    assert!(net.check(centre, &car).is_ok());
    assert!(net.duration(centre, sea, &car).is_infinite());
}

#[test]
fn plans_on_the_streets_pass_the_checker_and_leave_unreachable_orders_out() {
    let net: Arc<dyn TravelModel> = Arc::new(network().clone());
    let mut rng = Random::new(5);
    let t = |s: f64| Time::from_secs(s).unwrap();
    let mut orders: Vec<Order> = (0..12)
        .map(|i| {
            Order::builder(
                OrderId::parse(format!("o{i}")).unwrap(),
                RestaurantId::parse(format!("r{}", i % 3)).unwrap(),
                point(&mut rng),
                point(&mut rng),
                t(0.0),
            )
            .ready_at(t(300.0))
            .build()
            .unwrap()
        })
        .collect();
    orders.push(
        Order::builder(
            OrderId::parse("to-the-sea").unwrap(),
            RestaurantId::parse("r0").unwrap(),
            point(&mut rng),
            Coordinates::parse(60.14, 24.945).unwrap().into(),
            t(0.0),
        )
        .build()
        .unwrap(),
    );
    let couriers: Vec<Courier> = VehicleKind::ALL
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            Courier::builder(
                CourierId::parse(format!("c{i}")).unwrap(),
                vehicle(k),
                TimeWindow::new(t(0.0), t(4.0 * 3600.0)).unwrap(),
                point(&mut rng),
            )
            .build()
            .unwrap()
        })
        .collect();
    let problem = Problem::builder(&couriers, &orders, net.clone())
        .build()
        .unwrap();
    let solved = solve(
        &problem,
        &SolverConfig {
            max_iterations: Some(300),
            ..SolverConfig::default()
        },
        &Unlimited,
    );
    check_plan(
        &solved.plan,
        &couriers,
        &orders,
        net.as_ref(),
        &CheckRules::default(),
    )
    .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(
        solved.plan.unassigned.len(),
        1,
        "{:?}",
        solved.plan.unassigned
    );
    assert_eq!(solved.plan.unassigned[0].order.as_str(), "to-the-sea");
    assert_eq!(
        solved.plan.unassigned[0].reason,
        UnassignedReason::Unreachable
    );
}
