//! Li & Lim PDPTW instances: reading the benchmark's files into couriers and orders, and
//! writing solutions in SINTEF form (`Route K : id id ...`, task ids of the file, depot omitted).

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::{Context, bail, ensure};
use optimizer::model::{
    Capacity, Courier, CourierId, Location, Order, OrderId, Plan, PlanarPoint, RestaurantId,
    Seconds, Size, StopKind, Time, TimeWindow, Vehicle, VehicleKind,
};

/// One instance: its couriers (identical vehicles at the depot) and orders (one per pickup).
pub struct Instance {
    /// File stem, e.g. `lc101`.
    pub name: String,
    /// The vehicles.
    pub couriers: Vec<Courier>,
    /// The requests; an order's id is its pickup task's id.
    pub orders: Vec<Order>,
    /// Delivery task id of each order.
    pub delivery_task: HashMap<OrderId, String>,
}

struct Task {
    x: f64,
    y: f64,
    demand: i64,
    open: f64,
    close: f64,
    service: f64,
    pickup_of: usize,
    delivery: usize,
}

/// Parses a Li & Lim file (CRLF or LF, tab- or space-separated).
///
/// # Errors
/// When the file is malformed or a request's data are inconsistent.
pub fn parse(name: &str, text: &str) -> anyhow::Result<Instance> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let header: Vec<f64> = numbers(lines.next().context("empty file")?)?;
    ensure!(header.len() >= 2, "header needs vehicles and capacity");
    let (vehicles, capacity) = (header[0] as usize, header[1] as i64);
    let mut tasks = Vec::new();
    for (n, line) in lines.enumerate() {
        let f = numbers(line)?;
        ensure!(
            f.len() >= 9,
            "line {} has {} fields, expected 9",
            n + 2,
            f.len()
        );
        ensure!(f[0] as usize == n, "task ids must be consecutive from 0");
        tasks.push(Task {
            x: f[1],
            y: f[2],
            demand: f[3] as i64,
            open: f[4],
            close: f[5],
            service: f[6],
            pickup_of: f[7] as usize,
            delivery: f[8] as usize,
        });
    }
    ensure!(!tasks.is_empty(), "no depot");
    let at = |t: &Task| -> anyhow::Result<Location> { Ok(PlanarPoint::parse(t.x, t.y)?.into()) };
    let depot = &tasks[0];
    let horizon = TimeWindow::new(Time::from_secs(depot.open)?, Time::from_secs(depot.close)?)?;
    let vehicle = Vehicle::new(VehicleKind::Car, 1.0, Capacity::new(capacity)?)?;
    let couriers = (0..vehicles)
        .map(|k| {
            Courier::builder(
                CourierId::parse(format!("v{}", k + 1))?,
                vehicle,
                horizon,
                at(depot)?,
            )
            .returns_to(at(depot)?)
            .build()
            .map_err(anyhow::Error::from)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut orders = Vec::new();
    let mut delivery_task = HashMap::new();
    for (i, t) in tasks.iter().enumerate().skip(1) {
        if t.demand <= 0 {
            ensure!(t.pickup_of > 0, "task {i} is neither pickup nor delivery");
            continue;
        }
        let d = tasks
            .get(t.delivery)
            .with_context(|| format!("task {i}: no delivery"))?;
        ensure!(
            d.pickup_of == i,
            "delivery {} does not point back to pickup {i}",
            t.delivery
        );
        let id = OrderId::parse(i.to_string())?;
        let order = Order::builder(
            id.clone(),
            RestaurantId::parse(i.to_string())?,
            at(t)?,
            at(d)?,
            Time::ZERO,
        )
        .ready_at(Time::from_secs(t.open)?)
        .pickup_latest(Time::from_secs(t.close)?)
        .dropoff_earliest(Time::from_secs(d.open)?)
        .deliver_by(Time::from_secs(d.close.max(t.open))?)
        .service(Seconds::new(t.service)?, Seconds::new(d.service)?)
        .size(Size::new(t.demand)?)
        .build()
        .with_context(|| format!("request {i}"))?;
        orders.push(order);
        delivery_task.insert(id, t.delivery.to_string());
    }
    Ok(Instance {
        name: name.to_string(),
        couriers,
        orders,
        delivery_task,
    })
}

fn numbers(line: &str) -> anyhow::Result<Vec<f64>> {
    line.split_whitespace()
        .map(|w| {
            w.parse::<f64>()
                .with_context(|| format!("not a number: {w:?}"))
        })
        .collect()
}

/// The plan in SINTEF form, one line per non-empty route.
///
/// # Errors
/// When the plan leaves a request unassigned (a benchmark solution must serve all).
pub fn sintef(instance: &Instance, plan: &Plan) -> anyhow::Result<String> {
    if !plan.unassigned.is_empty() {
        bail!("{} requests unassigned", plan.unassigned.len());
    }
    let mut out = String::new();
    for (k, route) in plan
        .routes
        .iter()
        .filter(|r| !r.stops.is_empty())
        .enumerate()
    {
        write!(out, "Route {} :", k + 1)?;
        for s in &route.stops {
            let id = match s.stop.kind {
                StopKind::Pickup => s.stop.order.as_str(),
                StopKind::Dropoff => instance
                    .delivery_task
                    .get(&s.stop.order)
                    .map(String::as_str)
                    .context("unknown order in plan")?,
            };
            write!(out, " {id}")?;
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = "2\t10\t1\r\n0\t0\t0\t0\t0\t1000\t0\t0\t0\r\n1\t10\t0\t3\t0\t500\t5\t0\t2\r\n2\t20\t0\t-3\t0\t600\t5\t1\t0\r\n";

    #[test]
    fn a_tiny_instance_parses_into_one_order_and_two_couriers() {
        let inst = parse("tiny", TINY).unwrap();
        assert_eq!(inst.couriers.len(), 2);
        assert_eq!(inst.orders.len(), 1);
        assert_eq!(inst.delivery_task[inst.orders[0].id()], "2");
        assert_eq!(inst.orders[0].size().units(), 3);
    }

    #[test]
    fn a_delivery_pointing_elsewhere_is_an_error() {
        let bad = TINY.replace(
            "2\t20\t0\t-3\t0\t600\t5\t1\t0",
            "2\t20\t0\t-3\t0\t600\t5\t0\t0",
        );
        assert!(parse("bad", &bad).is_err());
    }
}
