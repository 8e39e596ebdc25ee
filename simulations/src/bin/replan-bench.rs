//! `replan-bench`: times warm replans of a synthetic city. A city of N couriers and about M open
//! orders around one centre is planned once (cold, timed separately), then K cycles each advance
//! the clock by 30 s: couriers move along their routes, pick up and deliver, new orders arrive,
//! and the city is replanned from the previous plan within a fixed budget. Prints one JSON line
//! with the replan latencies (p50/p99/max) and the objective before and after each replan.
//!
//! Travel times: straight lines by default; with `--road-network`, the streets of a generated
//! city of 250,000 nodes (a grid with arterials, one-way streets and a river with a few
//! bridges, `roads::city`) whose preparation is timed too; otherwise what `ROAD_NETWORK` names.
//! The model in use is printed on stderr and in the JSON line.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use optimizer::model::{
    Coordinates, Courier, CourierId, Location, Order, OrderId, OrderStatus, Plan, RestaurantId,
    StopKind, Time, TimeWindow, Vehicle, VehicleKind,
};
use optimizer::{Budget, CityState, Random, ReplanConfig, SolverConfig, TravelModel, replan};

#[derive(Parser)]
#[command(about = "Time warm replans of a synthetic city")]
struct Args {
    /// Couriers on shift.
    #[arg(long)]
    couriers: usize,
    /// Open orders to keep in the city.
    #[arg(long)]
    orders: usize,
    /// Replan cycles to time.
    #[arg(long, default_value_t = 20)]
    cycles: usize,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Search budget of one replan, in milliseconds.
    #[arg(long, default_value_t = 250)]
    budget_ms: u64,
    /// Travel on the streets of a generated city (250,000 nodes) instead of straight lines.
    #[arg(long)]
    road_network: bool,
    /// Streets of the generated city, each way (its nodes are the square of this).
    #[arg(long, default_value_t = 500)]
    city_streets: usize,
}

struct Clock {
    start: Instant,
    seconds: f64,
}

impl Budget for Clock {
    fn used(&self) -> f64 {
        self.start.elapsed().as_secs_f64() / self.seconds
    }
}

/// Seconds of city time per cycle.
const CYCLE_S: f64 = 30.0;
const CENTRE: (f64, f64) = (52.52, 13.40);

struct City {
    now: f64,
    rng: Random,
    /// Points stay within this many km of the centre, north-south and east-west (the generated
    /// street grid's extent).
    bound_km: Option<f64>,
    restaurants: Vec<Coordinates>,
    couriers: Vec<(CourierId, Vehicle, Coordinates, Vec<OrderId>)>,
    orders: HashMap<OrderId, Order>,
    plan: Plan,
    next_order: u64,
}

impl City {
    fn point(&mut self, centre: (f64, f64), radius_km: f64) -> Coordinates {
        let r = radius_km * self.rng.unit().sqrt();
        let a = self.rng.unit() * std::f64::consts::TAU;
        let mut lat = centre.0 + r / 111.0 * a.sin();
        let mut lon = centre.1 + r / (111.0 * centre.0.to_radians().cos()) * a.cos();
        if let Some(km) = self.bound_km {
            let dlat = km / 111.0;
            let dlon = km / (111.0 * CENTRE.0.to_radians().cos());
            lat = lat.clamp(CENTRE.0 - dlat, CENTRE.0 + dlat);
            lon = lon.clamp(CENTRE.1 - dlon, CENTRE.1 + dlon);
        }
        Coordinates::parse(lat, lon).expect("points stay near the centre")
    }

    fn new_order(&mut self) -> anyhow::Result<()> {
        let r = self.rng.below(self.restaurants.len());
        let at = self.restaurants[r];
        let drop = self.point((at.lat(), at.lon()), 3.0);
        let id = OrderId::parse(format!("o{}", self.next_order))?;
        self.next_order += 1;
        let prep = 300.0 + self.rng.unit() * 900.0;
        let order = Order::builder(
            id.clone(),
            RestaurantId::parse(format!("r{r}"))?,
            at.into(),
            drop.into(),
            Time::from_secs(self.now)?,
        )
        .ready_at(Time::from_secs(self.now + prep)?)
        .deliver_by(Time::from_secs(self.now + 2700.0)?)
        .build()?;
        self.orders.insert(id, order);
        Ok(())
    }

    /// Moves every courier along its route for one cycle, doing the stops it reaches.
    fn advance(&mut self) -> anyhow::Result<()> {
        let until = self.now + CYCLE_S;
        let routes: HashMap<CourierId, Vec<(OrderId, StopKind, f64)>> = self
            .plan
            .routes
            .iter()
            .map(|r| {
                let stops = r
                    .stops
                    .iter()
                    .map(|s| (s.stop.order.clone(), s.stop.kind, s.departure.secs()))
                    .collect();
                (r.courier.clone(), stops)
            })
            .collect();
        for (id, _, position, onboard) in &mut self.couriers {
            let Some(stops) = routes.get(id) else {
                continue;
            };
            for (order, kind, departure) in stops {
                if *departure > until {
                    // Not there yet: move a share of the way to the next stop.
                    if let Some(o) = self.orders.get(order) {
                        let target = match kind {
                            StopKind::Pickup => o.pickup().location(),
                            StopKind::Dropoff => o.dropoff().location(),
                        };
                        if let Location::Wgs84(t) = target {
                            let f = 0.3;
                            *position = Coordinates::parse(
                                position.lat() + (t.lat() - position.lat()) * f,
                                position.lon() + (t.lon() - position.lon()) * f,
                            )?;
                        }
                    }
                    break;
                }
                let Some(o) = self.orders.get_mut(order) else {
                    continue;
                };
                match kind {
                    StopKind::Pickup => {
                        if o.status() == OrderStatus::Created {
                            o.transition(OrderStatus::Assigned)?;
                        }
                        o.transition(OrderStatus::PickedUp)?;
                        onboard.push(order.clone());
                        if let Location::Wgs84(c) = o.pickup().location() {
                            *position = c;
                        }
                    }
                    StopKind::Dropoff => {
                        onboard.retain(|x| x != order);
                        if let Location::Wgs84(c) = o.dropoff().location() {
                            *position = c;
                        }
                        self.orders.remove(order);
                    }
                }
            }
        }
        self.now = until;
        // Statuses follow the plan: planned orders are assigned.
        let planned: Vec<OrderId> = self
            .plan
            .routes
            .iter()
            .flat_map(|r| r.stops.iter().map(|s| s.stop.order.clone()))
            .collect();
        for id in planned {
            if let Some(o) = self.orders.get_mut(&id)
                && o.status() == OrderStatus::Created
            {
                o.transition(OrderStatus::Assigned)?;
            }
        }
        Ok(())
    }

    fn couriers(&self) -> anyhow::Result<Vec<Courier>> {
        let shift = TimeWindow::new(
            Time::from_secs(self.now - 3600.0)?,
            Time::from_secs(self.now + 4.0 * 3600.0)?,
        )?;
        self.couriers
            .iter()
            .map(|(id, vehicle, position, onboard)| {
                Courier::builder(id.clone(), *vehicle, shift, (*position).into())
                    .available_at(Time::from_secs(self.now)?)
                    .onboard(onboard.clone())
                    .build()
                    .context("courier")
            })
            .collect()
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rng = Random::new(args.seed);
    // The travel model: the generated city's streets, what ROAD_NETWORK names, or straight lines.
    let (travel, prepare_s, bound_km, city_nodes): (Arc<dyn TravelModel>, f64, Option<f64>, usize) =
        if args.road_network {
            let started = Instant::now();
            let mut params = roads::city::CityParams::benchmark(CENTRE, args.seed);
            params.rows = args.city_streets;
            params.cols = args.city_streets;
            let graph = roads::city::generate(&params);
            let nodes = graph.node_count();
            let network =
                roads::RoadNetwork::new(graph, format!("generated city (seed {})", args.seed));
            let half_km = params.spacing_m * (args.city_streets as f64 / 2.0 - 4.0) / 1000.0;
            (
                Arc::new(network),
                started.elapsed().as_secs_f64(),
                Some(half_km),
                nodes,
            )
        } else {
            let loaded = roads::travel_model(std::env::var("ROAD_NETWORK").ok().as_deref())
                .context("loading ROAD_NETWORK")?;
            (loaded.model, loaded.prepared_in.as_secs_f64(), None, 0)
        };
    let description = travel.describe();
    eprintln!("replan-bench: travel times from {description} (prepared in {prepare_s:.1} s)");
    let mut city = City {
        now: 1_800_000_000.0,
        rng: rng.fork(),
        bound_km,
        restaurants: Vec::new(),
        couriers: Vec::new(),
        orders: HashMap::new(),
        plan: Plan::default(),
        next_order: 0,
    };
    let radius_km = (args.couriers.max(args.orders / 2) as f64 / 20.0)
        .sqrt()
        .clamp(3.0, 20.0);
    for _ in 0..(args.orders / 10).max(5) {
        let p = city.point(CENTRE, radius_km);
        city.restaurants.push(p);
    }
    for v in 0..args.couriers {
        let kind = VehicleKind::ALL[rng.below(3)];
        let p = city.point(CENTRE, radius_km);
        city.couriers.push((
            CourierId::parse(format!("c{v}"))?,
            Vehicle::of_kind(kind),
            p,
            Vec::new(),
        ));
    }
    for _ in 0..args.orders {
        city.new_order()?;
    }
    let config = ReplanConfig {
        solver: SolverConfig {
            seed: args.seed,
            max_iterations: None,
            islands: rayon::current_num_threads().max(1),
            ..SolverConfig::default()
        },
        ..ReplanConfig::default()
    };
    let pins = HashMap::new();
    let mut moves: HashMap<OrderId, u32> = HashMap::new();
    let run = |city: &mut City,
               moves: &mut HashMap<OrderId, u32>|
     -> anyhow::Result<(f64, f64, f64, usize, usize)> {
        let couriers = city.couriers()?;
        let orders: Vec<Order> = city.orders.values().cloned().collect();
        let start = Instant::now();
        let clock = Clock {
            start,
            seconds: args.budget_ms as f64 / 1000.0,
        };
        let state = CityState {
            now: Time::from_secs(city.now)?,
            couriers: &couriers,
            orders: &orders,
            previous: &city.plan,
            pins: &pins,
            moves,
        };
        let out = replan(&state, &config, travel.clone(), &clock)?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        for (order, _, _) in &out.diff.moved {
            *moves.entry(order.clone()).or_default() += 1;
        }
        let changed = out.diff.changed_couriers.len();
        let unassigned = out.plan.unassigned.len();
        city.plan = out.plan;
        Ok((
            ms,
            out.stats.start_cost,
            out.stats.cost,
            changed,
            unassigned,
        ))
    };
    let (cold_ms, _, cold_cost, _, _) = run(&mut city, &mut moves)?;
    let per_cycle_new = (args.orders as f64 * CYCLE_S / 2700.0).ceil() as usize;
    let mut times = Vec::with_capacity(args.cycles);
    let (mut before_sum, mut after_sum, mut changed_sum, mut unassigned_last) =
        (0.0, 0.0, 0usize, 0usize);
    for _ in 0..args.cycles {
        city.advance()?;
        for _ in 0..per_cycle_new {
            city.new_order()?;
        }
        let (ms, before, after, changed, unassigned) = run(&mut city, &mut moves)?;
        times.push(ms);
        before_sum += before;
        after_sum += after;
        changed_sum += changed;
        unassigned_last = unassigned;
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let cycles = args.cycles.max(1) as f64;
    println!(
        "{}",
        serde_json::json!({
            "couriers": args.couriers,
            "orders": args.orders,
            "open_orders_last": city.orders.len(),
            "cycles": args.cycles,
            "budget_ms": args.budget_ms,
            "p50_ms": percentile(&sorted, 0.5),
            "p99_ms": percentile(&sorted, 0.99),
            "max_ms": sorted.last().copied().unwrap_or(0.0),
            "cold_ms": cold_ms,
            "cold_objective": cold_cost,
            "objective_before_mean": before_sum / cycles,
            "objective_after_mean": after_sum / cycles,
            "changed_couriers_mean": changed_sum as f64 / cycles,
            "orders_moved": moves.values().sum::<u32>(),
            "unassigned_last": unassigned_last,
            "threads": rayon::current_num_threads(),
            "travel_model": description,
            "prepare_s": prepare_s,
            "city_nodes": city_nodes,
        })
    );
    Ok(())
}
