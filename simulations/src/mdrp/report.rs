//! The three solution files of the MDRP evaluator and the run's metrics, with the evaluator's
//! definitions (percentiles interpolate linearly; utilisation counts driving, one pickup service
//! per trip and one drop-off service per order over the shift, 0 for a courier that never moved;
//! prepositioning moves count as driving).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::instance::{Instance, Place};
use super::sim::Outcome;
use crate::stats::mean;
use crate::stats::quantile;

/// The metrics line `mdrp` prints; every figure is measured in the run.
#[derive(Clone, Debug, Serialize)]
pub struct Metrics {
    /// Instance directory name.
    pub instance: String,
    /// Orders in the instance.
    pub orders: usize,
    /// Orders delivered.
    pub delivered: usize,
    /// 100 × delivered / orders.
    pub delivered_pct: f64,
    /// Mean click-to-door (drop-off − placement), minutes, over delivered orders.
    pub ctd_mean: Option<f64>,
    /// 90th percentile of click-to-door.
    pub ctd_p90: Option<f64>,
    /// Mean of max(0, click-to-door − target).
    pub ctd_overage_mean: Option<f64>,
    /// Mean ready-to-pickup (pickup − ready), minutes.
    pub r2p_mean: Option<f64>,
    /// 90th percentile of ready-to-pickup.
    pub r2p_p90: Option<f64>,
    /// Total courier pay / delivered orders.
    pub cost_per_order: Option<f64>,
    /// Mean courier utilisation over all couriers.
    pub utilization_mean: Option<f64>,
    /// Mean orders per trip.
    pub orders_per_bundle: Option<f64>,
    /// Policy calls (decision epochs with open orders).
    pub replans: usize,
    /// 99th percentile of a policy call's wall time, milliseconds.
    pub replan_p99_ms: Option<f64>,
    /// Wall time of the whole run, seconds (set by the caller).
    pub wall_s: f64,
}

impl Metrics {
    /// Measures an outcome; `wall_s` is left 0 for the caller to fill in.
    #[must_use]
    pub fn measure(instance: &Instance, outcome: &Outcome) -> Self {
        let p = &instance.params;
        let (mut ctd, mut r2p) = (Vec::new(), Vec::new());
        for trip in &outcome.trips {
            for d in &trip.drops {
                let order = &instance.orders[d.order];
                ctd.push(to_f64(d.dropoff - order.placement));
                r2p.push(to_f64(trip.pickup - order.ready));
            }
        }
        let over: Vec<f64> = ctd.iter().map(|&x| (x - p.target_ctd).max(0.0)).collect();
        let delivered = ctd.len();
        let (mut pay, mut util) = (0.0, Vec::new());
        for (c, s) in instance.couriers.iter().zip(&outcome.couriers) {
            let shift = to_f64(c.off - c.on);
            let earned = p.pay_per_order * to_f64(s.delivered as i64);
            pay += earned.max(p.pay_per_hour * shift / 60.0);
            let busy = s.driving
                + p.dropoff_service * s.delivered as i64
                + p.pickup_service * s.trips as i64;
            util.push(if s.moved { to_f64(busy) / shift } else { 0.0 });
        }
        let sizes: Vec<f64> = outcome.trips.iter().map(|t| t.drops.len() as f64).collect();
        Self {
            instance: instance.name.clone(),
            orders: instance.orders.len(),
            delivered,
            delivered_pct: if instance.orders.is_empty() {
                100.0
            } else {
                100.0 * delivered as f64 / instance.orders.len() as f64
            },
            ctd_mean: mean(&ctd),
            ctd_p90: quantile(&ctd, 0.9),
            ctd_overage_mean: mean(&over),
            r2p_mean: mean(&r2p),
            r2p_p90: quantile(&r2p, 0.9),
            cost_per_order: (delivered > 0).then(|| pay / delivered as f64),
            utilization_mean: mean(&util),
            orders_per_bundle: mean(&sizes),
            replans: outcome.decide_ms.len(),
            replan_p99_ms: quantile(&outcome.decide_ms, 0.99),
            wall_s: 0.0,
        }
    }
}

/// Writes `solution_info_assignments.txt`, `solution_info_orders.txt` and
/// `solution_info_couriers.txt` into `dir` (created if missing).
///
/// # Errors
/// When the directory or a file cannot be written.
pub fn write_solution(instance: &Instance, outcome: &Outcome, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text)
            .with_context(|| format!("writing {}", dir.join(name).display()))
    };
    write(
        "solution_info_assignments.txt",
        assignments(instance, outcome),
    )?;
    write("solution_info_orders.txt", orders(instance, outcome))?;
    write("solution_info_couriers.txt", moves(instance, outcome))
}

/// `assignment_time pickup_time courier order ...`, one line per trip, after a header.
#[must_use]
pub fn assignments(instance: &Instance, outcome: &Outcome) -> String {
    let mut s = String::from("assignment_time pickup_time courier orders\n");
    for t in &outcome.trips {
        let _ = write!(
            s,
            "{} {} {}",
            t.assigned_at, t.pickup, instance.couriers[t.courier].id
        );
        for d in &t.drops {
            let _ = write!(s, " {}", instance.orders[d.order].id);
        }
        s.push('\n');
    }
    s
}

/// One single-space-separated row per delivered order, in order-file order.
#[must_use]
pub fn orders(instance: &Instance, outcome: &Outcome) -> String {
    let mut rows = vec![None; instance.orders.len()];
    for t in &outcome.trips {
        for d in &t.drops {
            rows[d.order] = Some((t.pickup, d.dropoff, t.courier));
        }
    }
    let mut s = String::from(
        "order placement_time restaurant x y ready_time pickup_time dropoff_time courier\n",
    );
    for (o, row) in rows.iter().enumerate() {
        if let Some((pickup, dropoff, c)) = row {
            let order = &instance.orders[o];
            let _ = writeln!(
                s,
                "{} {} {} {} {} {} {pickup} {dropoff} {}",
                order.id,
                order.placement,
                instance.restaurants[order.restaurant].id,
                order.dropoff.x_m,
                order.dropoff.y_m,
                order.ready,
                instance.couriers[*c].id,
            );
        }
    }
    s
}

/// `courier departure_time origin destination`, each courier's moves together and in time order.
#[must_use]
pub fn moves(instance: &Instance, outcome: &Outcome) -> String {
    let mut per: Vec<Vec<(i64, Place, Place)>> = vec![Vec::new(); instance.couriers.len()];
    for m in &outcome.moves {
        per[m.courier].push((m.depart, m.from, m.to));
    }
    for t in &outcome.trips {
        let m = &mut per[t.courier];
        // A courier already waiting at the restaurant does not move to get there.
        if t.origin != Place::Restaurant(t.restaurant) {
            m.push((t.depart, t.origin, Place::Restaurant(t.restaurant)));
        }
        let mut at = Place::Restaurant(t.restaurant);
        for d in &t.drops {
            m.push((d.depart, at, Place::Dropoff(d.order)));
            at = Place::Dropoff(d.order);
        }
    }
    let mut s = String::from("courier departure_time origin destination\n");
    for m in &mut per {
        // Stable: a trip's own moves keep their sequence (a drop-off can leave at the minute the
        // previous one is reached, after a zero-minute hop).
        m.sort_by_key(|&(depart, _, _)| depart);
    }
    for (c, m) in per.iter().enumerate() {
        for (depart, from, to) in m {
            let _ = writeln!(
                s,
                "{} {depart} {} {}",
                instance.couriers[c].id,
                instance.place_id(*from),
                instance.place_id(*to)
            );
        }
    }
    s
}

#[allow(clippy::cast_precision_loss)] // minutes are far below 2^52
fn to_f64(x: i64) -> f64 {
    x as f64
}
