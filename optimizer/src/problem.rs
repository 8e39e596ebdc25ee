//! The problem as the solver sees it: orders and couriers turned into dense arrays of stops
//! ("nodes") with time windows, service times and demands, plus the distances between them.
//!
//! Node `2j` is order `j`'s pickup and `2j + 1` its drop-off; courier `v`'s start and end places
//! follow the order nodes. Everything the solver needs at a stop is one array index away.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{
    Courier, CourierId, Location, Order, OrderId, OrderStatus, StopKind, TripRules,
    Vehicle as Ride, VehicleKind,
};
use crate::objective::Objective;
use crate::spatial::lon_scale_of;
use crate::travel::{TravelError, TravelModel, TravelTable, Ways, table_for};

/// Why a problem could not be built from the given couriers and orders.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProblemError {
    /// Two orders share an id, or two couriers.
    #[error("duplicate {what} id {id}")]
    Duplicate {
        /// "order" or "courier".
        what: &'static str,
        /// The id.
        id: String,
    },
    /// A courier refers to an order that is not in the problem.
    #[error("courier {courier} refers to unknown order {order}")]
    UnknownOrder {
        /// The courier.
        courier: String,
        /// The order.
        order: String,
    },
    /// An order is on board or committed on two couriers.
    #[error("order {0} is committed to two couriers")]
    DoublyCommitted(String),
    /// A pin or previous assignment names an unknown courier.
    #[error("unknown courier {0}")]
    UnknownCourier(String),
    /// An order that is delivered, failed or cancelled was passed in.
    #[error("order {0} is already {1} and cannot be planned")]
    Final(String, OrderStatus),
    /// A courier's commitments, extended by replanning, contradict each other.
    #[error("inconsistent commitments of courier {courier}")]
    Commitment {
        /// The courier.
        courier: String,
        /// What is wrong.
        #[source]
        source: crate::model::ModelError,
    },
    /// An order picked up but on no courier's board.
    #[error("order {0} is picked up but on no courier's board")]
    PickedUpNowhere(String),
    /// The travel model could not give the travel times.
    #[error("travel times: {0}")]
    Travel(#[from] TravelError),
}

/// One stop of one order.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub job: usize,
    pub pickup: bool,
    /// Earliest service start.
    pub open: f64,
    /// Latest service start (hard).
    pub close: f64,
    pub service: f64,
    /// +size at a pickup, -size at a drop-off.
    pub demand: i32,
    /// Index of the order's restaurant (for trip rules).
    pub restaurant: usize,
}

/// One order.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub order: OrderId,
    pub placed_at: f64,
    pub ready_at: f64,
    /// Soft deadline, when deadlines are soft.
    pub soft_deadline: Option<f64>,
    /// The courier whose bag holds it (its pickup is done).
    pub onboard: Option<usize>,
    /// The courier it must stay with (on board, committed or pinned by staff).
    pub locked: Option<usize>,
    /// The courier the previous plan gave it, for the stability cost.
    pub previous: Option<usize>,
}

/// One courier.
#[derive(Clone, Debug)]
pub(crate) struct Vehicle {
    pub courier: CourierId,
    pub start_place: usize,
    pub end_place: Option<usize>,
    /// When the courier leaves its start place.
    pub depart: f64,
    /// No pickup may start after this.
    pub shift_end: f64,
    /// Latest arrival at the end place.
    pub end_close: f64,
    pub capacity: i32,
    /// Which travel profile of the table the courier's vehicle uses.
    pub profile: usize,
    pub initial_load: i32,
    /// Committed stops, visited first and in this order.
    pub fixed: Vec<usize>,
    /// Identical empty vehicles share a class; only one per class is tried when opening a route.
    pub class: usize,
    /// Restaurant of the food already on board, for trip rules.
    pub onboard_restaurant: Option<usize>,
}

/// A planning problem, ready for the solver.
pub struct Problem {
    pub(crate) nodes: Vec<Node>,
    pub(crate) jobs: Vec<Job>,
    pub(crate) vehicles: Vec<Vehicle>,
    /// Distances and travel times between the places, per profile: the one source of both.
    pub(crate) travel: Arc<dyn TravelTable>,
    pub(crate) objective: Objective,
    pub(crate) places: Vec<Location>,
    pub(crate) trips: TripRules,
    /// Longitudes are scaled by this (the cosine of the mean latitude) for spatial keys.
    pub(crate) lon_scale: f64,
}

/// Collects the optional inputs of a [`Problem`].
#[must_use]
pub struct ProblemBuilder<'a> {
    couriers: &'a [Courier],
    orders: &'a [Order],
    travel: Arc<dyn TravelModel>,
    objective: Objective,
    previous: HashMap<OrderId, CourierId>,
    pins: HashMap<OrderId, CourierId>,
    trips: TripRules,
}

impl Problem {
    /// Starts a problem over `couriers` and `orders` (every order still to be picked up or
    /// dropped off, including those on board).
    pub fn builder<'a>(
        couriers: &'a [Courier],
        orders: &'a [Order],
        travel: Arc<dyn TravelModel>,
    ) -> ProblemBuilder<'a> {
        ProblemBuilder {
            couriers,
            orders,
            travel,
            objective: Objective::default(),
            previous: HashMap::new(),
            pins: HashMap::new(),
            trips: TripRules::default(),
        }
    }

    /// The orders of the problem, in index order.
    pub fn order_ids(&self) -> impl Iterator<Item = &OrderId> {
        self.jobs.iter().map(|j| &j.order)
    }

    /// Number of orders.
    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }

    /// Number of couriers.
    pub fn vehicle_count(&self) -> usize {
        self.vehicles.len()
    }

    /// The objective the solver minimises.
    pub fn objective(&self) -> &Objective {
        &self.objective
    }

    /// Travel time between two places for vehicle `v`, from the travel table.
    #[inline]
    pub(crate) fn time(&self, v: usize, a: usize, b: usize) -> f64 {
        self.travel.duration(self.vehicles[v].profile, a, b)
    }

    /// Distance between two places for vehicle `v`, from the travel table.
    #[inline]
    pub(crate) fn distance(&self, v: usize, a: usize, b: usize) -> f64 {
        self.travel.distance(self.vehicles[v].profile, a, b)
    }

    /// How related two places are, for choices that belong to no courier
    /// ([`TravelTable::relatedness`]).
    #[inline]
    pub(crate) fn related_distance(&self, a: usize, b: usize) -> f64 {
        self.travel.relatedness(a, b)
    }

    /// Latest service start of node `n` on vehicle `v`: its window, and for pickups the shift end.
    #[inline]
    pub(crate) fn close(&self, v: usize, n: usize) -> f64 {
        let node = &self.nodes[n];
        if node.pickup {
            node.close.min(self.vehicles[v].shift_end)
        } else {
            node.close
        }
    }

    /// The place a node is at (its index in the distance cache).
    #[inline]
    pub(crate) fn place(n: usize) -> usize {
        n
    }
}

impl ProblemBuilder<'_> {
    /// The objective to minimise (default: [`Objective::meal_delivery`]).
    pub fn objective(mut self, objective: Objective) -> Self {
        self.objective = objective;
        self
    }

    /// Which courier the previous plan gave each order, for the stability cost.
    pub fn previous(mut self, previous: HashMap<OrderId, CourierId>) -> Self {
        self.previous = previous;
        self
    }

    /// How orders may be grouped into trips (default: freely).
    pub fn trip_rules(mut self, rules: TripRules) -> Self {
        self.trips = rules;
        self
    }

    /// Orders staff pinned to a courier: they never move.
    pub fn pins(mut self, pins: HashMap<OrderId, CourierId>) -> Self {
        self.pins = pins;
        self
    }

    /// Builds the index-based problem and asks the travel model for its table.
    ///
    /// # Errors
    /// A [`ProblemError`] when ids repeat, a courier refers to an order not given, an order is
    /// committed twice, an order is final, a pin names an unknown courier, or the travel model
    /// cannot answer.
    pub fn build(self) -> Result<Problem, ProblemError> {
        let mut job_of: HashMap<&OrderId, usize> = HashMap::with_capacity(self.orders.len());
        for (j, o) in self.orders.iter().enumerate() {
            if job_of.insert(o.id(), j).is_some() {
                return Err(ProblemError::Duplicate {
                    what: "order",
                    id: o.id().to_string(),
                });
            }
            if o.status().is_final() {
                return Err(ProblemError::Final(o.id().to_string(), o.status()));
            }
        }
        let mut vehicle_of: HashMap<&CourierId, usize> = HashMap::new();
        for (v, c) in self.couriers.iter().enumerate() {
            if vehicle_of.insert(c.id(), v).is_some() {
                return Err(ProblemError::Duplicate {
                    what: "courier",
                    id: c.id().to_string(),
                });
            }
        }
        let hard = self.objective.hard_deadlines;
        let mut restaurant_of: HashMap<&crate::model::RestaurantId, usize> = HashMap::new();
        let mut nodes = Vec::with_capacity(self.orders.len() * 2);
        let mut jobs = Vec::with_capacity(self.orders.len());
        let mut places = Vec::with_capacity(self.orders.len() * 2 + self.couriers.len() * 2);
        for (j, o) in self.orders.iter().enumerate() {
            let size = o.size().units().min(i32::MAX as u32) as i32;
            let next = restaurant_of.len();
            let restaurant = *restaurant_of.entry(o.restaurant()).or_insert(next);
            let p = o.pickup();
            let d = o.dropoff();
            nodes.push(Node {
                job: j,
                pickup: true,
                open: p.window().start().secs(),
                close: p.window().end().secs(),
                service: p.service().secs(),
                demand: size,
                restaurant,
            });
            let close = if hard {
                d.window().end().secs()
            } else {
                crate::model::Time::NEVER.secs()
            };
            nodes.push(Node {
                job: j,
                pickup: false,
                open: d.window().start().secs(),
                close,
                service: d.service().secs(),
                demand: -size,
                restaurant,
            });
            places.push(p.location());
            places.push(d.location());
            jobs.push(Job {
                order: o.id().clone(),
                placed_at: o.placed_at().secs(),
                ready_at: o.ready_at().secs(),
                soft_deadline: if hard {
                    None
                } else {
                    o.deliver_by().map(|t| t.secs())
                },
                onboard: None,
                locked: None,
                previous: None,
            });
        }
        let mut vehicles = Vec::with_capacity(self.couriers.len());
        let mut classes: HashMap<String, usize> = HashMap::new();
        // The distinct vehicles (by kind and speed) the table is asked for; never empty (a car
        // stands in when there is no courier, so relatedness can still be measured).
        let mut profiles: Vec<Ride> = Vec::new();
        for (v, c) in self.couriers.iter().enumerate() {
            let start_place = places.len();
            places.push(c.position());
            let end_place = c.end().map(|e| {
                places.push(e);
                places.len() - 1
            });
            let mut initial_load = 0i32;
            let mut onboard_restaurant = None;
            for id in c.onboard() {
                let j = *job_of.get(id).ok_or_else(|| ProblemError::UnknownOrder {
                    courier: c.id().to_string(),
                    order: id.to_string(),
                })?;
                if jobs[j].onboard.is_some() {
                    return Err(ProblemError::DoublyCommitted(id.to_string()));
                }
                jobs[j].onboard = Some(v);
                jobs[j].locked = Some(v);
                initial_load += nodes[2 * j].demand;
                onboard_restaurant.get_or_insert(nodes[2 * j].restaurant);
                // Food in the bag is delivered, late or not: its deadline becomes soft.
                let drop = &mut nodes[2 * j + 1];
                if drop.close < crate::model::Time::NEVER.secs() {
                    jobs[j].soft_deadline = Some(drop.close);
                    drop.close = crate::model::Time::NEVER.secs();
                }
            }
            let mut fixed = Vec::with_capacity(c.committed().len());
            for stop in c.committed() {
                let j = *job_of
                    .get(&stop.order)
                    .ok_or_else(|| ProblemError::UnknownOrder {
                        courier: c.id().to_string(),
                        order: stop.order.to_string(),
                    })?;
                if jobs[j].locked.is_some_and(|owner| owner != v) {
                    return Err(ProblemError::DoublyCommitted(stop.order.to_string()));
                }
                jobs[j].locked = Some(v);
                // A committed order must be delivered by this courier, late or not.
                let drop = &mut nodes[2 * j + 1];
                if drop.close < crate::model::Time::NEVER.secs() {
                    jobs[j].soft_deadline = Some(drop.close);
                    drop.close = crate::model::Time::NEVER.secs();
                }
                fixed.push(match stop.kind {
                    StopKind::Pickup => 2 * j,
                    StopKind::Dropoff => 2 * j + 1,
                });
            }
            let shift = c.shift();
            let depart = c.available_at().max(shift.start()).secs();
            let key = if c.committed().is_empty() && c.onboard().is_empty() {
                format!(
                    "{:?}|{:?}|{:?}|{}|{}",
                    c.position(),
                    c.end(),
                    c.vehicle(),
                    depart,
                    shift.end().secs()
                )
            } else {
                format!("busy#{v}")
            };
            let next = classes.len();
            let class = *classes.entry(key).or_insert(next);
            let ride = c.vehicle();
            let profile = match profiles.iter().position(|r| {
                r.kind() == ride.kind() && r.speed_mps().to_bits() == ride.speed_mps().to_bits()
            }) {
                Some(i) => i,
                None => {
                    profiles.push(ride);
                    profiles.len() - 1
                }
            };
            vehicles.push(Vehicle {
                courier: c.id().clone(),
                start_place,
                end_place,
                depart,
                shift_end: shift.end().secs(),
                end_close: if c.end().is_some() {
                    shift.end().secs()
                } else {
                    crate::model::Time::NEVER.secs()
                },
                capacity: c.vehicle().capacity().units().min(i32::MAX as u32) as i32,
                profile,
                initial_load,
                fixed,
                class,
                onboard_restaurant,
            });
        }
        for (j, o) in self.orders.iter().enumerate() {
            if o.status() == OrderStatus::PickedUp && jobs[j].onboard.is_none() {
                return Err(ProblemError::PickedUpNowhere(o.id().to_string()));
            }
        }
        for (order, courier) in &self.pins {
            let (Some(&j), Some(&v)) = (job_of.get(order), vehicle_of.get(courier)) else {
                if !vehicle_of.contains_key(courier) {
                    return Err(ProblemError::UnknownCourier(courier.to_string()));
                }
                continue; // a pin on an order no longer open is moot
            };
            if jobs[j].locked.is_some_and(|owner| owner != v) {
                return Err(ProblemError::DoublyCommitted(order.to_string()));
            }
            jobs[j].locked = Some(v);
        }
        for (order, courier) in &self.previous {
            if let (Some(&j), Some(&v)) = (job_of.get(order), vehicle_of.get(courier)) {
                jobs[j].previous = Some(v);
            }
        }
        if profiles.is_empty() {
            profiles.push(Ride::of_kind(VehicleKind::Car));
        }
        let lon_scale = lon_scale_of(&places);
        // Orders' stops are reached and left; couriers only leave their start, and reach their
        // end place.
        let mut ways = vec![Ways::Both; nodes.len()];
        for v in &vehicles {
            ways.push(Ways::Out);
            if v.end_place.is_some() {
                ways.push(Ways::In);
            }
        }
        let travel = table_for(&self.travel, &places, &ways, &profiles)?;
        Ok(Problem {
            nodes,
            jobs,
            vehicles,
            travel,
            objective: self.objective,
            places,
            trips: self.trips,
            lon_scale,
        })
    }
}
