//! The baseline policy: at each epoch, orders in order of ready time each go to the idle courier
//! that reaches their restaurant soonest. Optionally, orders of the same restaurant ready within a
//! few minutes of the first join its trip (up to a bundle limit), dropped nearest-first.

use super::instance::{Minutes, Place};
use super::sim::{Decisions, Policy, SimState, TripAssignment};

/// Nearest-available assignment, with optional same-restaurant bundling.
#[derive(Clone, Debug)]
pub struct Greedy {
    /// An order is considered only once its ready time is at most this many minutes away.
    pub horizon: Minutes,
    /// Orders of the same restaurant ready within this many minutes after the first may share
    /// its trip.
    pub bundle_window: Minutes,
    /// Most orders in one trip (1 disables bundling).
    pub bundle_limit: usize,
}

impl Default for Greedy {
    fn default() -> Self {
        Self {
            horizon: 10,
            bundle_window: 10,
            bundle_limit: 3,
        }
    }
}

impl Policy for Greedy {
    fn decide(&mut self, now: Minutes, state: &SimState<'_>) -> Decisions {
        let inst = state.instance();
        let mut idle: Vec<usize> = (0..inst.couriers.len())
            .filter(|&c| state.is_idle(c, now))
            .collect();
        let pending = state.pending();
        let mut taken = vec![false; pending.len()];
        let mut out = Vec::new();
        for i in 0..pending.len() {
            if idle.is_empty() {
                break;
            }
            let first = &inst.orders[pending[i]];
            if first.ready > now + self.horizon {
                break; // pending is sorted by ready time
            }
            if taken[i] {
                continue;
            }
            let mut members = vec![i];
            for (j, &o) in pending.iter().enumerate().skip(i + 1) {
                if members.len() >= self.bundle_limit.max(1) {
                    break;
                }
                let order = &inst.orders[o];
                if order.ready > first.ready + self.bundle_window {
                    break;
                }
                if !taken[j] && order.restaurant == first.restaurant {
                    members.push(j);
                }
            }
            let orders =
                nearest_first(state, first.restaurant, members.iter().map(|&j| pending[j]));
            let best = idle
                .iter()
                .enumerate()
                .filter_map(|(k, &c)| {
                    let trip = state.trip(c, now, &orders)?;
                    Some((trip.arrive_restaurant, c, k))
                })
                .min();
            if let Some((_, courier, k)) = best {
                idle.swap_remove(k);
                for &j in &members {
                    taken[j] = true;
                }
                out.push(TripAssignment { courier, orders });
            }
        }
        out.into()
    }
}

/// Delivery sequence: from the restaurant, always to the nearest remaining drop-off.
fn nearest_first(
    state: &SimState<'_>,
    restaurant: usize,
    orders: impl Iterator<Item = usize>,
) -> Vec<usize> {
    let inst = state.instance();
    let mut left: Vec<usize> = orders.collect();
    let mut at = Place::Restaurant(restaurant);
    let mut seq = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let k = (0..left.len())
            .min_by_key(|&k| (inst.travel(at, Place::Dropoff(left[k])), left[k]))
            .expect("left is non-empty");
        let o = left.swap_remove(k);
        seq.push(o);
        at = Place::Dropoff(o);
    }
    seq
}
