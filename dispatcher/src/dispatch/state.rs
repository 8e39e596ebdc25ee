//! The committed state in memory: open orders, couriers, current routes and the indexes the
//! checks and the planner need. It changes only by applying committed batches.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use optimizer::model::{CourierId, OrderId, StopKind};

use super::Change;
use crate::records::{CourierRecord, OrderRecord, RouteRecord};
use crate::store::{Batch, Snapshot};

/// Open orders, couriers and routes as committed.
#[derive(Debug, Default)]
pub struct State {
    /// Orders not yet final, by id.
    orders: BTreeMap<OrderId, OrderRecord>,
    /// Every courier, by id.
    couriers: BTreeMap<CourierId, CourierRecord>,
    /// Couriers by device id, to refuse a device registered twice.
    devices: HashMap<String, CourierId>,
    /// Each courier's current route.
    routes: HashMap<CourierId, RouteRecord>,
    /// Stops of open orders the courier was seen or said to be at, so an arrival is recorded
    /// once (a tap, or else the GPS).
    arrivals: HashSet<(OrderId, StopKind)>,
    /// A reload failed after an uncertain commit: memory may be behind the store.
    stale: bool,
}

impl State {
    /// The state a snapshot holds.
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        let mut state = State::default();
        for c in snapshot.couriers {
            state.devices.insert(c.device_id.clone(), c.id.clone());
            state.couriers.insert(c.id.clone(), c);
        }
        for o in snapshot.open_orders {
            state.orders.insert(o.id.clone(), o);
        }
        for r in snapshot.routes {
            state.routes.insert(r.courier_id.clone(), r);
        }
        state
    }

    /// Applies a committed batch and returns what changed.
    pub fn apply(&mut self, batch: &Batch) -> Vec<Change> {
        let mut changes = Vec::new();
        for c in &batch.couriers {
            self.devices.insert(c.device_id.clone(), c.id.clone());
            self.couriers.insert(c.id.clone(), c.clone());
            changes.push(Change::Courier(Arc::new(c.clone())));
        }
        for o in &batch.orders {
            if o.is_open() {
                self.orders.insert(o.id.clone(), o.clone());
            } else {
                self.orders.remove(&o.id);
            }
            changes.push(Change::Order(Arc::new(o.clone())));
        }
        for t in &batch.timeline {
            let kind = match t.kind.as_str() {
                "arrived_pickup" => StopKind::Pickup,
                "arrived_dropoff" => StopKind::Dropoff,
                _ => continue,
            };
            self.arrivals.insert((t.order_id.clone(), kind));
        }
        for o in &batch.orders {
            if !o.is_open() {
                self.arrivals.remove(&(o.id.clone(), StopKind::Pickup));
                self.arrivals.remove(&(o.id.clone(), StopKind::Dropoff));
            }
        }
        for r in &batch.routes {
            self.routes.insert(r.courier_id.clone(), r.clone());
            changes.push(Change::Route(Arc::new(r.clone())));
        }
        changes
    }

    /// Whether the courier's arrival at this stop was recorded.
    pub fn arrived(&self, order: &OrderId, kind: StopKind) -> bool {
        self.arrivals.contains(&(order.clone(), kind))
    }

    /// Marks memory as possibly behind the store.
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Whether memory may be behind the store.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// An open order.
    pub fn order(&self, id: &OrderId) -> Option<&OrderRecord> {
        self.orders.get(id)
    }

    /// Every open order.
    pub fn orders(&self) -> impl Iterator<Item = &OrderRecord> {
        self.orders.values()
    }

    /// A courier.
    pub fn courier(&self, id: &CourierId) -> Option<&CourierRecord> {
        self.couriers.get(id)
    }

    /// Every courier.
    pub fn couriers(&self) -> impl Iterator<Item = &CourierRecord> {
        self.couriers.values()
    }

    /// The courier holding a device id.
    pub fn courier_by_device(&self, device_id: &str) -> Option<&CourierRecord> {
        self.devices
            .get(device_id)
            .and_then(|id| self.couriers.get(id))
    }

    /// A courier's current route.
    pub fn route(&self, id: &CourierId) -> Option<&RouteRecord> {
        self.routes.get(id)
    }

    /// Every current route.
    pub fn routes(&self) -> impl Iterator<Item = &RouteRecord> {
        self.routes.values()
    }

    /// The open orders of one courier.
    pub fn orders_of<'a>(
        &'a self,
        courier: &'a CourierId,
    ) -> impl Iterator<Item = &'a OrderRecord> {
        self.orders
            .values()
            .filter(move |o| o.courier_id.as_ref() == Some(courier))
    }
}
