//! Reading one MDRP instance directory (`orders.txt`, `couriers.txt`, `restaurants.txt`,
//! `instance_parameters.txt`: tab-separated, one header line, times in integer minutes,
//! coordinates in metres) and the travel-time rule.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{Context, bail, ensure};

/// Minutes from the start of the instance's day.
pub type Minutes = i64;

/// A point in metres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Easting, metres.
    pub x_m: f64,
    /// Northing, metres.
    pub y_m: f64,
}

/// One order of `orders.txt`.
#[derive(Clone, Debug)]
pub struct Order {
    /// The file's id, e.g. `o12`.
    pub id: String,
    /// Drop-off location.
    pub dropoff: Point,
    /// When the order becomes known.
    pub placement: Minutes,
    /// Index into [`Instance::restaurants`].
    pub restaurant: usize,
    /// When the food is ready at the restaurant.
    pub ready: Minutes,
}

/// One restaurant of `restaurants.txt`.
#[derive(Clone, Debug)]
pub struct Restaurant {
    /// The file's id, e.g. `r3`.
    pub id: String,
    /// Its location.
    pub at: Point,
}

/// One courier of `couriers.txt`.
#[derive(Clone, Debug)]
pub struct Courier {
    /// The file's id, e.g. `c7`.
    pub id: String,
    /// Where the courier comes on duty.
    pub start: Point,
    /// Shift start.
    pub on: Minutes,
    /// Shift end: no pickup after it.
    pub off: Minutes,
}

/// The row of `instance_parameters.txt`.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Travel speed.
    pub meters_per_minute: f64,
    /// Pickup service, split half before and half after the pickup instant.
    pub pickup_service: Minutes,
    /// Drop-off service, split likewise around the drop-off instant.
    pub dropoff_service: Minutes,
    /// Click-to-door target (overage is measured beyond it).
    pub target_ctd: f64,
    /// Click-to-door maximum (reported, not enforced).
    pub max_ctd: f64,
    /// Pay per delivered order.
    pub pay_per_order: f64,
    /// Guaranteed pay per shift hour.
    pub pay_per_hour: f64,
}

/// Where a courier can be: its on-duty point, a restaurant, or an order's drop-off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Place {
    /// The courier's own starting point (index into [`Instance::couriers`]).
    Start(usize),
    /// A restaurant (index into [`Instance::restaurants`]).
    Restaurant(usize),
    /// An order's drop-off (index into [`Instance::orders`]).
    Dropoff(usize),
}

/// One instance, with indices in file order.
#[derive(Clone, Debug)]
pub struct Instance {
    /// Directory name, e.g. `0o50t100s1p100`.
    pub name: String,
    /// Orders in file order.
    pub orders: Vec<Order>,
    /// Restaurants in file order.
    pub restaurants: Vec<Restaurant>,
    /// Couriers in file order.
    pub couriers: Vec<Courier>,
    /// Speed, service times and pay.
    pub params: Params,
}

impl Instance {
    /// Reads the four files of an instance directory.
    ///
    /// # Errors
    /// When a file is missing or malformed (see [`Instance::parse`]).
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .with_context(|| format!("reading {}", dir.join(file).display()))
        };
        let name = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Self::parse(
            &name,
            &read("orders.txt")?,
            &read("restaurants.txt")?,
            &read("couriers.txt")?,
            &read("instance_parameters.txt")?,
        )
    }

    /// Parses the texts of the four files.
    ///
    /// # Errors
    /// When a header lacks a column, a value is not a number, a time is not a whole minute,
    /// an id repeats across the files, an order names an unknown restaurant, or a shift ends
    /// before it starts.
    pub fn parse(
        name: &str,
        orders: &str,
        restaurants: &str,
        couriers: &str,
        params: &str,
    ) -> anyhow::Result<Self> {
        let restaurants: Vec<Restaurant> = Table::parse(restaurants)
            .context("restaurants.txt")?
            .rows(|r| {
                Ok(Restaurant {
                    id: r.text("restaurant")?.to_owned(),
                    at: Point {
                        x_m: r.number("x")?,
                        y_m: r.number("y")?,
                    },
                })
            })
            .context("restaurants.txt")?;
        let by_id: HashMap<&str, usize> = restaurants
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), i))
            .collect();
        let orders: Vec<Order> = Table::parse(orders)
            .context("orders.txt")?
            .rows(|r| {
                let restaurant = r.text("restaurant")?;
                Ok(Order {
                    id: r.text("order")?.to_owned(),
                    dropoff: Point {
                        x_m: r.number("x")?,
                        y_m: r.number("y")?,
                    },
                    placement: r.minutes("placement_time")?,
                    restaurant: *by_id
                        .get(restaurant)
                        .with_context(|| format!("unknown restaurant {restaurant}"))?,
                    ready: r.minutes("ready_time")?,
                })
            })
            .context("orders.txt")?;
        let couriers: Vec<Courier> = Table::parse(couriers)
            .context("couriers.txt")?
            .rows(|r| {
                let c = Courier {
                    id: r.text("courier")?.to_owned(),
                    start: Point {
                        x_m: r.number("x")?,
                        y_m: r.number("y")?,
                    },
                    on: r.minutes("on_time")?,
                    off: r.minutes("off_time")?,
                };
                ensure!(c.off > c.on, "courier {} has off_time before on_time", c.id);
                Ok(c)
            })
            .context("couriers.txt")?;
        let params = Table::parse(params)
            .context("instance_parameters.txt")?
            .rows(|r| {
                Ok(Params {
                    meters_per_minute: r.number("meters_per_minute")?,
                    pickup_service: r.minutes("pickup service minutes")?,
                    dropoff_service: r.minutes("dropoff service minutes")?,
                    target_ctd: r.number("target click-to-door")?,
                    max_ctd: r.number("maximum click-to-door")?,
                    pay_per_order: r.number("pay per order")?,
                    pay_per_hour: r.number("guaranteed pay per hour")?,
                })
            });
        let params = params
            .context("instance_parameters.txt")?
            .into_iter()
            .next()
            .context("instance_parameters.txt has no data row")?;
        ensure!(
            params.meters_per_minute > 0.0,
            "meters_per_minute must be positive"
        );
        let mut seen = HashSet::new();
        let ids = orders.iter().map(|o| &o.id);
        for id in ids
            .chain(restaurants.iter().map(|r| &r.id))
            .chain(couriers.iter().map(|c| &c.id))
        {
            ensure!(seen.insert(id.as_str()), "location id {id} is used twice");
        }
        Ok(Self {
            name: name.to_owned(),
            orders,
            restaurants,
            couriers,
            params,
        })
    }

    /// The location of a place.
    #[must_use]
    pub fn point(&self, place: Place) -> Point {
        match place {
            Place::Start(c) => self.couriers[c].start,
            Place::Restaurant(r) => self.restaurants[r].at,
            Place::Dropoff(o) => self.orders[o].dropoff,
        }
    }

    /// The file id of a place (the courier's own id for its starting point).
    #[must_use]
    pub fn place_id(&self, place: Place) -> &str {
        match place {
            Place::Start(c) => &self.couriers[c].id,
            Place::Restaurant(r) => &self.restaurants[r].id,
            Place::Dropoff(o) => &self.orders[o].id,
        }
    }

    /// Travel minutes between two places: `ceil(euclid metres / meters_per_minute)`.
    #[must_use]
    pub fn travel(&self, from: Place, to: Place) -> Minutes {
        travel_minutes(
            self.point(from),
            self.point(to),
            self.params.meters_per_minute,
        )
    }
}

/// `ceil(euclid(a, b) / meters_per_minute)` as whole minutes.
#[must_use]
pub fn travel_minutes(a: Point, b: Point, meters_per_minute: f64) -> Minutes {
    let (dx, dy) = (b.x_m - a.x_m, b.y_m - a.y_m);
    // The result is a small non-negative whole number of minutes, so the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    let minutes = ((dx * dx + dy * dy).sqrt() / meters_per_minute).ceil() as Minutes;
    minutes
}

/// A tab-separated table with a header line.
struct Table<'a> {
    header: Vec<&'a str>,
    lines: Vec<(usize, Vec<&'a str>)>,
}

struct Row<'t, 'a> {
    table: &'t Table<'a>,
    fields: &'t [&'a str],
}

impl<'a> Table<'a> {
    fn parse(text: &'a str) -> anyhow::Result<Self> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, head) = lines.next().context("empty file")?;
        let header = head.split('\t').map(str::trim).collect();
        let lines = lines
            .map(|(n, l)| (n + 1, l.split('\t').map(str::trim).collect()))
            .collect();
        Ok(Self { header, lines })
    }

    fn rows<T>(&self, f: impl Fn(&Row<'_, 'a>) -> anyhow::Result<T>) -> anyhow::Result<Vec<T>> {
        self.lines
            .iter()
            .map(|(n, fields)| {
                f(&Row {
                    table: self,
                    fields,
                })
                .with_context(|| format!("line {n}"))
            })
            .collect()
    }
}

impl<'a> Row<'_, 'a> {
    fn text(&self, column: &str) -> anyhow::Result<&'a str> {
        let i = self
            .table
            .header
            .iter()
            .position(|h| *h == column)
            .with_context(|| format!("no column `{column}` in the header"))?;
        match self.fields.get(i) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => bail!("no value in column `{column}`"),
        }
    }

    fn number(&self, column: &str) -> anyhow::Result<f64> {
        let v = self.text(column)?;
        let x: f64 = v
            .parse()
            .with_context(|| format!("`{v}` in `{column}` is not a number"))?;
        ensure!(x.is_finite(), "`{v}` in `{column}` is not finite");
        Ok(x)
    }

    fn minutes(&self, column: &str) -> anyhow::Result<Minutes> {
        let x = self.number(column)?;
        ensure!(
            x.fract() == 0.0 && x.abs() < 1e12,
            "`{x}` in `{column}` is not a whole minute"
        );
        // Checked just above: a whole number well inside i64.
        #[allow(clippy::cast_possible_truncation)]
        Ok(x as Minutes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDERS: &str = "order\tx\ty\tplacement_time\trestaurant\tready_time\n\
                          o1\t1000\t0\t10\tr1\t20\no2\t0\t650\t12\tr2\t30\n";
    const RESTAURANTS: &str = "restaurant\tx\ty\nr1\t0\t0\nr2\t320\t0\n";
    const COURIERS: &str = "courier\tx\ty\ton_time\toff_time\nc1\t0\t320\t0\t120\n";
    const PARAMS: &str = "meters_per_minute\tpickup service minutes\tdropoff service minutes\t\
                          target click-to-door\tmaximum click-to-door\tpay per order\t\
                          guaranteed pay per hour\n320\t4\t4\t40\t90\t10\t15\n";

    #[test]
    fn a_well_formed_instance_is_read_with_indices_in_file_order() {
        let i = Instance::parse("tiny", ORDERS, RESTAURANTS, COURIERS, PARAMS).unwrap();
        assert_eq!(i.orders.len(), 2);
        assert_eq!(i.orders[1].restaurant, 1);
        assert_eq!((i.orders[1].placement, i.orders[1].ready), (12, 30));
        assert_eq!(i.couriers[0].off, 120);
        assert_eq!(i.params.pickup_service, 4);
        assert!((i.params.pay_per_hour - 15.0).abs() < 1e-12);
        assert_eq!(i.place_id(Place::Start(0)), "c1");
    }

    #[test]
    fn travel_time_rounds_up_to_whole_minutes() {
        let i = Instance::parse("tiny", ORDERS, RESTAURANTS, COURIERS, PARAMS).unwrap();
        // 320 m is exactly one minute; 1000 m is 3.125 minutes, so 4; 0 m is 0.
        assert_eq!(i.travel(Place::Restaurant(0), Place::Restaurant(1)), 1);
        assert_eq!(i.travel(Place::Restaurant(0), Place::Dropoff(0)), 4);
        assert_eq!(i.travel(Place::Restaurant(0), Place::Restaurant(0)), 0);
        // sqrt(320^2 + 320^2) = 452.5 m: 2 minutes.
        assert_eq!(i.travel(Place::Start(0), Place::Restaurant(1)), 2);
    }

    #[test]
    fn an_order_of_an_unknown_restaurant_is_rejected() {
        let orders = "order\tx\ty\tplacement_time\trestaurant\tready_time\no1\t0\t0\t1\tr9\t2\n";
        let err = Instance::parse("bad", orders, RESTAURANTS, COURIERS, PARAMS).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown restaurant r9"),
            "{err:#}"
        );
    }

    #[test]
    fn a_fractional_time_is_rejected() {
        let orders = "order\tx\ty\tplacement_time\trestaurant\tready_time\no1\t0\t0\t1.5\tr1\t2\n";
        assert!(Instance::parse("bad", orders, RESTAURANTS, COURIERS, PARAMS).is_err());
    }

    #[test]
    fn a_repeated_location_id_is_rejected() {
        let couriers = "courier\tx\ty\ton_time\toff_time\nr1\t0\t0\t0\t60\n";
        assert!(Instance::parse("bad", ORDERS, RESTAURANTS, couriers, PARAMS).is_err());
    }
}
