//! The discrete-event replay: orders become known at their placement time, couriers come on and
//! go off shift as scheduled, and at every decision epoch a [`Policy`] commits idle couriers to
//! trips and, in the MDRP variant with prepositioning, sends idle couriers ahead to restaurants.
//! The simulator, not the policy, times each trip and move by the MDRP rules and rejects any
//! decision that breaks them.

use std::time::Instant;

use anyhow::{bail, ensure};

use super::instance::{Instance, Minutes, Place};

/// A courier committed to one trip: orders of one restaurant, in delivery sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TripAssignment {
    /// Index into [`Instance::couriers`]; the courier must be idle at the epoch.
    pub courier: usize,
    /// Indices into [`Instance::orders`], all known, unassigned and of one restaurant.
    pub orders: Vec<usize>,
}

/// An idle courier sent ahead to a restaurant without orders yet (a prepositioning move): it
/// drives there and waits; it cannot be diverted on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reposition {
    /// Index into [`Instance::couriers`]; the courier must be idle and on shift at the epoch.
    pub courier: usize,
    /// Index into [`Instance::restaurants`].
    pub restaurant: usize,
}

/// What a policy decides at one epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decisions {
    /// Trips to start now. Each courier and order appears at most once.
    pub trips: Vec<TripAssignment>,
    /// Idle couriers without a trip to move towards a restaurant now.
    pub repositions: Vec<Reposition>,
}

impl From<Vec<TripAssignment>> for Decisions {
    fn from(trips: Vec<TripAssignment>) -> Self {
        Decisions {
            trips,
            repositions: Vec::new(),
        }
    }
}

/// Decides, at each epoch, which idle couriers start which trips, and where idle couriers wait.
pub trait Policy {
    /// What to do now. Called at every epoch with open orders, and at every epoch with an idle
    /// courier when [`Policy::repositions`] is true.
    fn decide(&mut self, now: Minutes, state: &SimState<'_>) -> Decisions;

    /// Whether the policy moves idle couriers (the MDRP variant with prepositioning).
    fn repositions(&self) -> bool {
        false
    }
}

/// What the simulator knows about a courier between trips.
#[derive(Clone, Debug)]
pub struct CourierState {
    /// Where the courier waits: its start, or the last drop-off.
    pub place: Place,
    /// When it leaves that place after its last trip's drop-off service (its on-time before any).
    pub free_at: Minutes,
    /// Orders delivered so far (for pay).
    pub delivered: usize,
    /// Trips so far (pickup service counts once per trip in utilisation).
    pub trips: usize,
    /// Driving minutes so far.
    pub driving: Minutes,
    /// Whether the courier has moved at all (trips or prepositioning), for utilisation.
    pub moved: bool,
}

/// The state a policy sees at an epoch.
pub struct SimState<'a> {
    /// The instance (order and restaurant data, courier shifts, parameters).
    instance: &'a Instance,
    /// Per courier, by index.
    couriers: Vec<CourierState>,
    /// Known, unassigned orders, sorted by (ready time, index).
    pending: Vec<usize>,
    /// Per order: already committed to a trip.
    assigned: Vec<bool>,
}

/// The timed stops of one trip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trip {
    /// Index of the courier.
    pub courier: usize,
    /// Index of the restaurant.
    pub restaurant: usize,
    /// When the courier was committed to the trip (the epoch).
    pub assigned_at: Minutes,
    /// Where the courier set off from.
    pub origin: Place,
    /// Departure towards the restaurant.
    pub depart: Minutes,
    /// Arrival at the restaurant.
    pub arrive_restaurant: Minutes,
    /// Pickup instant: `max(latest ready, arrival + pickup_service/2)`.
    pub pickup: Minutes,
    /// Departure from the restaurant: pickup + pickup_service/2.
    pub leave_restaurant: Minutes,
    /// Drop-offs in delivery sequence.
    pub drops: Vec<Drop>,
}

/// One drop-off of a trip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drop {
    /// Index of the order.
    pub order: usize,
    /// Departure from the previous stop.
    pub depart: Minutes,
    /// Arrival at the drop-off.
    pub arrive: Minutes,
    /// Drop-off instant: arrival + dropoff_service/2.
    pub dropoff: Minutes,
    /// Departure: drop-off + dropoff_service/2.
    pub leave: Minutes,
}

/// A prepositioning move as it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    /// Index of the courier.
    pub courier: usize,
    /// Where it set off from.
    pub from: Place,
    /// The restaurant it drove to.
    pub to: Place,
    /// Departure.
    pub depart: Minutes,
    /// Arrival.
    pub arrive: Minutes,
}

/// Everything a replay produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Trips in the order they were committed.
    pub trips: Vec<Trip>,
    /// Prepositioning moves in the order they were made.
    pub moves: Vec<Move>,
    /// Final state per courier.
    pub couriers: Vec<CourierState>,
    /// Wall-clock milliseconds of each policy call.
    pub decide_ms: Vec<f64>,
}

/// Times a trip by the MDRP rules: leave `origin` at `depart`, drive to the orders' restaurant,
/// pick up, then drop the orders in the given sequence.
///
/// # Panics
/// When `orders` is empty.
#[must_use]
pub fn time_trip(
    instance: &Instance,
    courier: usize,
    origin: Place,
    depart: Minutes,
    orders: &[usize],
) -> Trip {
    let p = &instance.params;
    let restaurant = instance.orders[orders[0]].restaurant;
    let at_restaurant = Place::Restaurant(restaurant);
    let arrive_restaurant = depart + instance.travel(origin, at_restaurant);
    let ready = orders
        .iter()
        .map(|&o| instance.orders[o].ready)
        .max()
        .expect("a trip has orders");
    let pickup = ready.max(arrive_restaurant + p.pickup_service / 2);
    let leave_restaurant = pickup + (p.pickup_service - p.pickup_service / 2);
    let (mut at, mut time) = (at_restaurant, leave_restaurant);
    let drops = orders
        .iter()
        .map(|&order| {
            let to = Place::Dropoff(order);
            let arrive = time + instance.travel(at, to);
            let dropoff = arrive + p.dropoff_service / 2;
            let leave = dropoff + (p.dropoff_service - p.dropoff_service / 2);
            let drop = Drop {
                order,
                depart: time,
                arrive,
                dropoff,
                leave,
            };
            (at, time) = (to, leave);
            drop
        })
        .collect();
    Trip {
        courier,
        restaurant,
        assigned_at: depart,
        origin,
        depart,
        arrive_restaurant,
        pickup,
        leave_restaurant,
        drops,
    }
}

impl<'a> SimState<'a> {
    fn new(instance: &'a Instance) -> Self {
        let couriers = (0..instance.couriers.len())
            .map(|c| CourierState {
                place: Place::Start(c),
                free_at: instance.couriers[c].on,
                delivered: 0,
                trips: 0,
                driving: 0,
                moved: false,
            })
            .collect();
        Self {
            instance,
            couriers,
            pending: Vec::new(),
            assigned: vec![false; instance.orders.len()],
        }
    }

    /// The instance being replayed.
    #[must_use]
    pub fn instance(&self) -> &'a Instance {
        self.instance
    }

    /// Courier states by index.
    #[must_use]
    pub fn couriers(&self) -> &[CourierState] {
        &self.couriers
    }

    /// Known, unassigned orders, earliest ready first.
    #[must_use]
    pub fn pending(&self) -> &[usize] {
        &self.pending
    }

    /// Whether courier `c` is on shift and idle at `now` (it may still be unable to reach a given
    /// restaurant before its off-time; see [`SimState::trip`]).
    #[must_use]
    pub fn is_idle(&self, c: usize, now: Minutes) -> bool {
        let shift = &self.instance.couriers[c];
        shift.on <= now && now <= shift.off && self.couriers[c].free_at <= now
    }

    /// The trip courier `c` would make if it started `orders` now, or `None` when the pickup
    /// would fall after its off-time.
    ///
    /// # Panics
    /// When `orders` is empty.
    #[must_use]
    pub fn trip(&self, c: usize, now: Minutes, orders: &[usize]) -> Option<Trip> {
        let trip = time_trip(self.instance, c, self.couriers[c].place, now, orders);
        (trip.pickup <= self.instance.couriers[c].off).then_some(trip)
    }

    /// The id of courier `c` if it exists and is idle and on shift at `now`.
    fn idle_courier(&self, c: usize, now: Minutes) -> anyhow::Result<&'a str> {
        let inst = self.instance;
        ensure!(c < inst.couriers.len(), "unknown courier index {c}");
        let id = inst.couriers[c].id.as_str();
        ensure!(
            self.is_idle(c, now),
            "courier {id} is not idle and on shift at {now}"
        );
        Ok(id)
    }

    fn start(&mut self, now: Minutes, a: &TripAssignment) -> anyhow::Result<Trip> {
        let inst = self.instance;
        let id = self.idle_courier(a.courier, now)?;
        ensure!(
            !a.orders.is_empty(),
            "a trip for courier {id} has no orders"
        );
        let restaurant = inst.orders.get(a.orders[0]).map(|o| o.restaurant);
        for (k, &o) in a.orders.iter().enumerate() {
            ensure!(o < inst.orders.len(), "unknown order index {o}");
            let order = &inst.orders[o];
            ensure!(
                order.placement <= now,
                "order {} is not placed yet at {now}",
                order.id
            );
            ensure!(!self.assigned[o], "order {} is already assigned", order.id);
            ensure!(
                !a.orders[..k].contains(&o),
                "order {} is twice in one trip",
                order.id
            );
            ensure!(
                Some(order.restaurant) == restaurant,
                "a trip mixes restaurants"
            );
        }
        let Some(trip) = self.trip(a.courier, now, &a.orders) else {
            bail!("courier {id} cannot pick up before its off-time");
        };
        let state = &mut self.couriers[a.courier];
        let last = trip.drops.last().expect("checked non-empty above");
        state.place = Place::Dropoff(last.order);
        state.free_at = last.leave;
        state.delivered += a.orders.len();
        state.trips += 1;
        state.moved = true;
        state.driving += trip.arrive_restaurant - trip.depart
            + trip
                .drops
                .iter()
                .map(|d| d.arrive - d.depart)
                .sum::<Minutes>();
        for &o in &a.orders {
            self.assigned[o] = true;
        }
        Ok(trip)
    }

    fn reposition(&mut self, now: Minutes, r: Reposition) -> anyhow::Result<Move> {
        let inst = self.instance;
        let id = self.idle_courier(r.courier, now)?;
        ensure!(
            now < inst.couriers[r.courier].off,
            "courier {id} is at the end of its shift at {now}"
        );
        ensure!(
            r.restaurant < inst.restaurants.len(),
            "unknown restaurant index {}",
            r.restaurant
        );
        let to = Place::Restaurant(r.restaurant);
        let state = &mut self.couriers[r.courier];
        ensure!(
            state.place != to,
            "courier {id} is already at that restaurant"
        );
        let travel = inst.travel(state.place, to);
        let moved = Move {
            courier: r.courier,
            from: state.place,
            to,
            depart: now,
            arrive: now + travel,
        };
        state.place = to;
        state.free_at = moved.arrive;
        state.driving += travel;
        state.moved = true;
        Ok(moved)
    }
}

/// Replays `instance` under `policy`, with a decision epoch every `cycle` minutes from the first
/// placement or on-time until no more pickups are possible.
///
/// # Errors
/// When `cycle` is not positive or the policy returns an assignment that breaks the rules.
pub fn simulate(
    instance: &Instance,
    policy: &mut dyn Policy,
    cycle: Minutes,
) -> anyhow::Result<Outcome> {
    ensure!(cycle > 0, "the cycle must be at least one minute");
    let mut by_placement: Vec<usize> = (0..instance.orders.len()).collect();
    by_placement.sort_by_key(|&o| (instance.orders[o].placement, o));
    let first = instance.orders.iter().map(|o| o.placement);
    let first = first
        .chain(instance.couriers.iter().map(|c| c.on))
        .min()
        .unwrap_or(0);
    let last_off = instance
        .couriers
        .iter()
        .map(|c| c.off)
        .max()
        .unwrap_or(first);
    let mut state = SimState::new(instance);
    let (mut trips, mut moves, mut decide_ms, mut next) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let repositions = policy.repositions();
    let mut now = first;
    while now <= last_off && !(next == by_placement.len() && state.pending.is_empty()) {
        let mut added = false;
        while next < by_placement.len() && instance.orders[by_placement[next]].placement <= now {
            state.pending.push(by_placement[next]);
            next += 1;
            added = true;
        }
        if added {
            state
                .pending
                .sort_by_key(|&o| (instance.orders[o].ready, o));
        }
        let open = !state.pending.is_empty();
        if open || (repositions && (0..instance.couriers.len()).any(|c| state.is_idle(c, now))) {
            let started = Instant::now();
            let decisions = policy.decide(now, &state);
            if open {
                decide_ms.push(started.elapsed().as_secs_f64() * 1e3);
            }
            for a in &decisions.trips {
                trips.push(state.start(now, a)?);
            }
            if !decisions.trips.is_empty() {
                let assigned = &state.assigned;
                state.pending.retain(|&o| !assigned[o]);
            }
            for &r in &decisions.repositions {
                moves.push(state.reposition(now, r)?);
            }
        }
        now += cycle;
    }
    Ok(Outcome {
        trips,
        moves,
        couriers: state.couriers,
        decide_ms,
    })
}
