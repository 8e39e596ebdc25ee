//! A simulated city that uses the service only through its public interfaces: kitchens
//! ([`kitchen`]) publish kitchen messages and read pickup ETAs back, couriers' phones
//! ([`courier`]) register, go on shift, follow their routes on the simulated clock, report
//! positions and tap their status events, over REST or the courier socket ([`link`]). The city
//! itself, its restaurants, fleet and demand, is [`city`].
//!
//! `dispatcher demo` runs it in the same process as the service, and the city benchmark runs the
//! same actors against a `dispatcher serve` over the network; [`run`] starts them and its
//! [`SimHandle`] counts what happened.

pub mod city;
pub mod courier;
pub mod kitchen;
pub mod link;
pub mod probe;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use city::{City, CityConfig, Curve, Demand, Point, VehicleMix};
pub use courier::{CourierOptions, TokenSource, step_towards};
pub use kitchen::{AmqpKitchenPort, KitchenPort};
pub use link::{Transport, TransportPlan};
pub use probe::{OrderProbe, RouteLatency};

/// Where the service listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// The API, `http://host:port`.
    pub base: String,
    /// The OsmAnd / Traccar Client endpoint, `http://host:port`.
    pub osmand: String,
    /// A staff token, for registering couriers and their shifts.
    pub staff_token: String,
}

/// What to simulate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimConfig {
    /// The city and its demand.
    pub city: CityConfig,
    /// How the phones behave.
    pub couriers: CourierOptions,
    /// Stop placing orders after this many (none: place them as long as the run lasts).
    pub max_orders: Option<u64>,
}

/// Live counters, updated by the kitchens and phones as they go.
#[derive(Debug, Default)]
pub struct SimCounters {
    /// `order.created` messages the kitchens published.
    pub orders_placed: AtomicU64,
    /// `order.ready` updates (kitchens running late).
    pub ready_updates: AtomicU64,
    /// `order.cancelled` messages.
    pub cancelled: AtomicU64,
    /// `order.pickup_eta` events the kitchens received.
    pub pickup_etas: AtomicU64,
    /// Couriers registered and on shift.
    pub couriers_on_shift: AtomicU64,
    /// Couriers that went off shift at the end of theirs.
    pub shifts_ended: AtomicU64,
    /// Orders the phones picked up (the service accepted `picked_up`).
    pub picked_up: AtomicU64,
    /// Orders the phones delivered (the service accepted `delivered`).
    pub delivered: AtomicU64,
    /// Position reports sent.
    pub positions_sent: AtomicU64,
    /// Position reports the service said it stored.
    pub positions_stored: AtomicU64,
    /// Status events the service accepted.
    pub events_sent: AtomicU64,
    /// Status events the service refused (the order was cancelled or reassigned meanwhile).
    pub events_refused: AtomicU64,
    /// Route versions the phones received.
    pub routes_received: AtomicU64,
    /// Socket reconnections.
    pub reconnects: AtomicU64,
    /// Deliveries the phones reported as failed (customer not found), with a reason.
    pub failed: AtomicU64,
}

impl SimCounters {
    fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> SimStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            orders_placed: get(&self.orders_placed),
            ready_updates: get(&self.ready_updates),
            cancelled: get(&self.cancelled),
            pickup_etas: get(&self.pickup_etas),
            couriers_on_shift: get(&self.couriers_on_shift),
            shifts_ended: get(&self.shifts_ended),
            picked_up: get(&self.picked_up),
            delivered: get(&self.delivered),
            positions_sent: get(&self.positions_sent),
            positions_stored: get(&self.positions_stored),
            events_sent: get(&self.events_sent),
            events_refused: get(&self.events_refused),
            routes_received: get(&self.routes_received),
            reconnects: get(&self.reconnects),
            failed: get(&self.failed),
        }
    }
}

/// A copy of the [`SimCounters`] (see there for each field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct SimStats {
    pub orders_placed: u64,
    pub ready_updates: u64,
    pub cancelled: u64,
    pub pickup_etas: u64,
    pub couriers_on_shift: u64,
    pub shifts_ended: u64,
    pub picked_up: u64,
    pub delivered: u64,
    pub positions_sent: u64,
    pub positions_stored: u64,
    pub events_sent: u64,
    pub events_refused: u64,
    pub routes_received: u64,
    pub reconnects: u64,
    pub failed: u64,
}

/// The running simulation.
pub struct SimHandle {
    /// What happened so far.
    pub counters: Arc<SimCounters>,
    /// Order-to-route latencies.
    pub probe: Arc<OrderProbe>,
    /// The city as laid out (restaurants, fleet).
    pub city: City,
    /// The kitchens and the phones.
    tasks: JoinSet<()>,
    /// The simulated clock.
    clock: service::clock::Clock,
    /// Stops every actor.
    shutdown: CancellationToken,
}

impl SimHandle {
    /// Starts the kitchens on `port`, placing orders on `demand` (at most `max_orders`).
    pub fn start_kitchens(
        &mut self,
        port: Arc<dyn KitchenPort>,
        demand: Demand,
        max_orders: Option<u64>,
    ) {
        let mut city = self.city.clone();
        city.config.demand = demand;
        self.tasks.spawn(kitchen::run_kitchens(
            city,
            port,
            self.clock,
            max_orders,
            self.counters.clone(),
            self.probe.clone(),
            self.shutdown.clone(),
        ));
    }

    /// The counters now.
    pub fn stats(&self) -> SimStats {
        self.counters.snapshot()
    }

    /// Waits until every kitchen and phone has stopped (after the shutdown token fires, or the
    /// kitchens placed their last order and every shift ended).
    pub async fn stopped(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts the kitchens and couriers of `config` against the service at `endpoints`, on `clock`,
/// until `shutdown`.
pub fn run(
    config: SimConfig,
    endpoints: Endpoints,
    kitchen: Arc<dyn KitchenPort>,
    tokens: TokenSource,
    clock: service::clock::Clock,
    shutdown: CancellationToken,
) -> SimHandle {
    let demand = config.city.demand;
    let max_orders = config.max_orders;
    let mut handle = run_couriers(config, endpoints, tokens, clock, shutdown);
    handle.start_kitchens(kitchen, demand, max_orders);
    handle
}

/// Starts only the couriers of `config` (the kitchens wait for [`SimHandle::start_kitchens`]),
/// so a fleet can be on shift before the first order, as a real one is before lunch.
pub fn run_couriers(
    config: SimConfig,
    endpoints: Endpoints,
    tokens: TokenSource,
    clock: service::clock::Clock,
    shutdown: CancellationToken,
) -> SimHandle {
    let counters = Arc::new(SimCounters::default());
    let probe = Arc::new(OrderProbe::default());
    let city = City::new(config.city.clone());
    let mut tasks = JoinSet::new();
    let shared = Arc::new(courier::Shared {
        http: reqwest::Client::new(),
        endpoints,
        tokens,
        clock,
        options: config.couriers.clone(),
        counters: counters.clone(),
        probe: probe.clone(),
    });
    for spec in city.couriers.clone() {
        tasks.spawn(courier::run_courier(spec, shared.clone(), shutdown.clone()));
    }
    SimHandle {
        counters,
        probe,
        city,
        tasks,
        clock,
        shutdown,
    }
}
