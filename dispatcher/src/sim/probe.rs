//! What the simulated city knows of the orders it placed: which ones the broker confirmed (the
//! service owes each an outcome), and the order-to-route latency, the wall time from a kitchen
//! starting to publish `order.created` to the first route naming that order reaching a
//! courier's phone (a socket push, or a REST poll). The kitchens mark orders
//! [`OrderProbe::placed`] and [`OrderProbe::published`]; the phones report each route they
//! receive with [`OrderProbe::routed`].
//!
//! Only the first route per order counts (a later reassignment is the planner changing its mind,
//! not the order reaching the fleet), and orders that never reach a phone (cancelled while
//! waiting) are not latencies; they are forgotten after [`FORGET_AFTER`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

/// Orders placed longer ago than this without reaching a phone are dropped from the probe, so a
/// long demo does not grow it.
pub const FORGET_AFTER: Duration = Duration::from_secs(2 * 3600);

/// One latency: when the route arrived, and how long after the publish.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteLatency {
    /// The order.
    pub order_id: String,
    /// When the route reached the phone (wall).
    pub at: Instant,
    /// From publish to that moment.
    pub latency: Duration,
    /// When publishing began, on the system clock (to line up with the service's timeline).
    pub published_utc: OffsetDateTime,
}

/// The probe, shared by the kitchens and the phones.
#[derive(Debug, Default)]
pub struct OrderProbe {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Orders published and not yet seen in a route, with when publishing began (monotonic and
    /// system clock).
    waiting: HashMap<String, (Instant, OffsetDateTime)>,
    /// Latencies measured, in the order they were seen.
    seen: Vec<RouteLatency>,
    /// When `waiting` was last pruned.
    pruned: Option<Instant>,
    /// Orders whose `order.created` the broker (or the in-process bus) took, in order.
    published: Vec<String>,
}

impl OrderProbe {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A kitchen starts publishing `order_id` now.
    pub fn placed(&self, order_id: &str) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner
            .waiting
            .entry(order_id.to_string())
            .or_insert((now, OffsetDateTime::now_utc()));
        if inner
            .pruned
            .is_none_or(|t| now.duration_since(t) > FORGET_AFTER / 4)
        {
            inner.pruned = Some(now);
            inner
                .waiting
                .retain(|_, (since, _)| now.duration_since(*since) < FORGET_AFTER);
        }
    }

    /// The broker confirmed `order_id`'s `order.created`: the service owes it an outcome.
    pub fn published(&self, order_id: &str) {
        self.lock().published.push(order_id.to_string());
    }

    /// The orders published so far.
    pub fn published_orders(&self) -> Vec<String> {
        self.lock().published.clone()
    }

    /// A phone received a route naming `orders` now.
    pub fn routed<'a>(&self, orders: impl IntoIterator<Item = &'a str>) {
        let now = Instant::now();
        let mut inner = self.lock();
        for order in orders {
            if let Some((since, published_utc)) = inner.waiting.remove(order) {
                inner.seen.push(RouteLatency {
                    order_id: order.to_string(),
                    at: now,
                    latency: now.saturating_duration_since(since),
                    published_utc,
                });
            }
        }
    }

    /// Every latency measured so far.
    pub fn latencies(&self) -> Vec<RouteLatency> {
        self.lock().seen.clone()
    }

    /// Orders published and not yet seen in any route.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_route_naming_an_order_counts() {
        let probe = OrderProbe::default();
        probe.placed("o1");
        probe.placed("o2");
        std::thread::sleep(Duration::from_millis(5));
        probe.routed(["o1", "o1", "unknown"]);
        probe.routed(["o1"]);
        let seen = probe.latencies();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].latency >= Duration::from_millis(5));
        assert_eq!(probe.waiting(), 1);
        probe.routed(["o2"]);
        assert_eq!(probe.latencies().len(), 2);
        assert_eq!(probe.waiting(), 0);
        probe.published("o1");
        assert_eq!(probe.published_orders(), ["o1"]);
    }

    #[test]
    fn placing_twice_keeps_the_first_publish() {
        let probe = OrderProbe::default();
        probe.placed("o1");
        std::thread::sleep(Duration::from_millis(10));
        probe.placed("o1");
        probe.routed(["o1"]);
        assert!(probe.latencies()[0].latency >= Duration::from_millis(10));
    }
}
