//! The simulated city: restaurants around a centre, customers within a few kilometres of them,
//! a fleet of couriers with a vehicle mix, and demand with lunch and dinner peaks. Everything is
//! drawn from one seed, so a run can be repeated.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::OffsetDateTime;

use crate::api::couriers::Vehicle;

/// Metres per degree of latitude.
const M_PER_DEG_LAT: f64 = 111_320.0;

/// A point, degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

impl Point {
    /// Straight-line (equirectangular) distance in metres; exact enough within a city.
    pub fn distance_m(self, other: Point) -> f64 {
        let (dx, dy) = self.offset_m(other);
        dx.hypot(dy)
    }

    /// East and north metres from `self` to `other`.
    pub fn offset_m(self, other: Point) -> (f64, f64) {
        let mean_lat = ((self.lat + other.lat) / 2.0).to_radians();
        let dx = (other.lon - self.lon) * M_PER_DEG_LAT * mean_lat.cos();
        let dy = (other.lat - self.lat) * M_PER_DEG_LAT;
        (dx, dy)
    }

    /// The point `east_m` east and `north_m` north of `self`.
    pub fn moved_m(self, east_m: f64, north_m: f64) -> Point {
        let lat = self.lat + north_m / M_PER_DEG_LAT;
        let lon = self.lon + east_m / (M_PER_DEG_LAT * self.lat.to_radians().cos());
        Point { lat, lon }
    }

    /// Compass bearing from `self` to `other`, degrees (0 north, 90 east).
    pub fn bearing_deg(self, other: Point) -> f64 {
        let (dx, dy) = self.offset_m(other);
        dx.atan2(dy).to_degrees().rem_euclid(360.0)
    }
}

/// Shares of the fleet by vehicle (normalised; need not sum to 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VehicleMix {
    /// Bicycles.
    pub bike: f64,
    /// Scooters.
    pub scooter: f64,
    /// Cars.
    pub car: f64,
}

impl Default for VehicleMix {
    fn default() -> Self {
        VehicleMix {
            bike: 0.4,
            scooter: 0.4,
            car: 0.2,
        }
    }
}

/// The speed the simulated couriers ride at, m/s.
pub fn speed_mps(vehicle: Vehicle) -> f64 {
    match vehicle {
        Vehicle::Bike => 15.0 / 3.6,
        Vehicle::Scooter => 25.0 / 3.6,
        Vehicle::Car => 27.0 / 3.6,
    }
}

/// The shape of the order rate over time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Curve {
    /// A day: per courier per hour, the base rate plus lunch and dinner peaks (the demo's).
    Day,
    /// A benchmark run compressed into `length` from `start`: two peaks (at a third and at
    /// three quarters of the run) over a base rate, averaging `mean_per_s` orders per second
    /// and reaching `peak_per_s` at the top of each peak; no orders outside the run. Equal
    /// mean and peak make a flat rate.
    Run {
        /// When the run starts (simulated time).
        start: OffsetDateTime,
        /// How long orders are placed.
        length: Duration,
        /// Mean orders per second over the run.
        mean_per_s: f64,
        /// Orders per second at the top of the peaks.
        peak_per_s: f64,
    },
}

impl Curve {
    /// Width of a run's peaks, as a share of the run (one standard deviation).
    const PEAK_WIDTH: f64 = 1.0 / 14.0;

    /// The two peaks at `f` (share of the run, 0..1), 1 at their tops.
    fn peaks(f: f64) -> f64 {
        let bell = |centre: f64| (-((f - centre) / Self::PEAK_WIDTH).powi(2) / 2.0).exp();
        (bell(1.0 / 3.0) + bell(0.75)).min(1.0)
    }

    /// The base rate under a run's peaks that makes its mean `mean` with tops at `peak`
    /// (never negative: a mean too low for the peaks gives a base of zero).
    fn run_base(mean: f64, peak: f64) -> f64 {
        if peak <= mean {
            return mean;
        }
        // The peaks' mean height over the run, integrated numerically.
        const STEPS: usize = 2000;
        let g = (0..STEPS)
            .map(|i| Self::peaks((i as f64 + 0.5) / STEPS as f64))
            .sum::<f64>()
            / STEPS as f64;
        ((mean - peak * g) / (1.0 - g)).max(0.0)
    }
}

/// How many orders arrive when, and what happens to them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Demand {
    /// The rate's shape over time; the per-courier rates below are for [`Curve::Day`].
    pub curve: Curve,
    /// Orders per courier per hour outside the peaks.
    pub base_per_courier_hour: f64,
    /// Extra orders per courier per hour at the top of the lunch peak (12:00).
    pub lunch_per_courier_hour: f64,
    /// Extra orders per courier per hour at the top of the dinner peak (19:00).
    pub dinner_per_courier_hour: f64,
    /// Share of orders whose kitchen runs late and sends an `order.ready` update.
    pub late_share: f64,
    /// Share of orders cancelled.
    pub cancel_share: f64,
    /// Promised delivery, after the order is placed.
    pub deliver_within: Duration,
    /// The median kitchen preparation time (log-normal around it).
    pub preparation_median: Duration,
    /// The shortest and longest preparation times drawn.
    pub preparation_range: (Duration, Duration),
}

impl Default for Demand {
    fn default() -> Self {
        Demand {
            curve: Curve::Day,
            base_per_courier_hour: 0.5,
            lunch_per_courier_hour: 1.5,
            dinner_per_courier_hour: 2.0,
            late_share: 0.15,
            cancel_share: 0.02,
            deliver_within: Duration::from_secs(45 * 60),
            preparation_median: Duration::from_secs(13 * 60),
            preparation_range: (Duration::from_secs(8 * 60), Duration::from_secs(25 * 60)),
        }
    }
}

impl Demand {
    /// Orders per second across a fleet of `couriers` at `at`. For [`Curve::Day`], by its hour
    /// of day (in its offset): the base rate plus two bell-shaped peaks around 12:00 and 19:00;
    /// for [`Curve::Run`], by where `at` falls in the run.
    pub fn orders_per_second(&self, at: OffsetDateTime, couriers: usize) -> f64 {
        if let Curve::Run {
            start,
            length,
            mean_per_s,
            peak_per_s,
        } = self.curve
        {
            let length = length.as_secs_f64();
            let f = (at - start).as_seconds_f64() / length.max(1e-9);
            if !(0.0..1.0).contains(&f) {
                return 0.0;
            }
            let base = Curve::run_base(mean_per_s, peak_per_s);
            return base + (peak_per_s - base).max(0.0) * Curve::peaks(f);
        }
        let hour =
            f64::from(at.hour()) + f64::from(at.minute()) / 60.0 + f64::from(at.second()) / 3600.0;
        let bell = |centre: f64, width_h: f64| (-((hour - centre) / width_h).powi(2) / 2.0).exp();
        let per_courier_hour = self.base_per_courier_hour
            + self.lunch_per_courier_hour * bell(12.5, 1.0)
            + self.dinner_per_courier_hour * bell(19.0, 1.2);
        per_courier_hour * couriers as f64 / 3600.0
    }
}

/// What the city looks like.
#[derive(Clone, Debug, PartialEq)]
pub struct CityConfig {
    /// Seeds every draw.
    pub seed: u64,
    /// Fleet size.
    pub couriers: usize,
    /// The city centre.
    pub center: Point,
    /// Restaurants and couriers' starting points lie within this distance of the centre.
    pub radius_m: f64,
    /// How many restaurants.
    pub restaurants: usize,
    /// The fleet's vehicles.
    pub vehicles: VehicleMix,
    /// The orders.
    pub demand: Demand,
    /// Prefix of order ids, courier names and device ids, unique per run so that runs against
    /// the same service do not collide.
    pub tag: String,
}

impl Default for CityConfig {
    fn default() -> Self {
        CityConfig {
            seed: 1,
            couriers: 20,
            // Helsinki.
            center: Point {
                lat: 60.1699,
                lon: 24.9384,
            },
            radius_m: 4_000.0,
            restaurants: 30,
            vehicles: VehicleMix::default(),
            demand: Demand::default(),
            tag: format!("sim{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        }
    }
}

/// A restaurant.
#[derive(Clone, Debug, PartialEq)]
pub struct Restaurant {
    /// Its id on the wire.
    pub id: String,
    /// Where it is.
    pub location: Point,
}

/// A simulated courier before it registers.
#[derive(Clone, Debug, PartialEq)]
pub struct CourierSpec {
    /// Its number in the fleet.
    pub index: usize,
    /// Display name.
    pub name: String,
    /// The phone's device id.
    pub device_id: String,
    /// The vehicle.
    pub vehicle: Vehicle,
    /// Where the shift starts.
    pub start: Point,
}

/// One order the kitchens will place, with its fate.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedOrder {
    /// The order id.
    pub id: String,
    /// Index into [`City::restaurants`].
    pub restaurant: usize,
    /// The customer.
    pub dropoff: Point,
    /// When placed.
    pub placed_at: OffsetDateTime,
    /// When the food is first said to be ready.
    pub ready_at: OffsetDateTime,
    /// The promise.
    pub deliver_by: OffsetDateTime,
    /// When the kitchen runs late: how much later than `ready_at` it will be ready.
    pub late_by: Option<time::Duration>,
    /// When cancelled: how long after placing.
    pub cancel_after: Option<time::Duration>,
}

/// The seeded city.
#[derive(Clone, Debug)]
pub struct City {
    /// How it was made.
    pub config: CityConfig,
    /// Its restaurants.
    pub restaurants: Vec<Restaurant>,
    /// Its fleet.
    pub couriers: Vec<CourierSpec>,
    /// Draws orders; separate from the layout so layout stays the same whatever the demand.
    rng: ChaCha8Rng,
    /// Orders drawn so far (numbers the ids).
    drawn: u64,
}

impl City {
    /// Lays out the city of `config`.
    pub fn new(config: CityConfig) -> City {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let restaurants = (0..config.restaurants.max(1))
            .map(|i| Restaurant {
                id: format!("{}-r{i}", config.tag),
                location: within(&mut rng, config.center, config.radius_m * 0.6),
            })
            .collect();
        let mix = config.vehicles;
        let total = (mix.bike + mix.scooter + mix.car).max(f64::EPSILON);
        let couriers = (0..config.couriers)
            .map(|index| {
                let pick = rng.random::<f64>() * total;
                let vehicle = if pick < mix.bike {
                    Vehicle::Bike
                } else if pick < mix.bike + mix.scooter {
                    Vehicle::Scooter
                } else {
                    Vehicle::Car
                };
                CourierSpec {
                    index,
                    name: format!("{} courier {index}", config.tag),
                    device_id: format!("{}-c{index}", config.tag),
                    vehicle,
                    start: within(&mut rng, config.center, config.radius_m),
                }
            })
            .collect();
        let rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(0x9e37_79b9));
        City {
            config,
            restaurants,
            couriers,
            rng,
            drawn: 0,
        }
    }

    /// Draws the next order, placed at `now`.
    pub fn next_order(&mut self, now: OffsetDateTime) -> PlannedOrder {
        let restaurant = self.rng.random_range(0..self.restaurants.len());
        let from = self.restaurants[restaurant].location;
        // Customers 300 m to 3.5 km from the kitchen, skewed towards the near ones.
        let distance = 300.0 + 3_200.0 * self.rng.random::<f64>().powf(1.5);
        let angle = self.rng.random::<f64>() * std::f64::consts::TAU;
        let dropoff = from.moved_m(distance * angle.cos(), distance * angle.sin());
        let prep = preparation_time(&mut self.rng, &self.config.demand);
        let ready_at = now + prep;
        let demand = self.config.demand;
        let deliver_by = (now + demand.deliver_within).max(ready_at + time::Duration::minutes(10));
        let late_by = self
            .rng
            .random_bool(demand.late_share.clamp(0.0, 1.0))
            .then(|| time::Duration::seconds(self.rng.random_range(180..=720)));
        let cancel_after = self
            .rng
            .random_bool(demand.cancel_share.clamp(0.0, 1.0))
            .then(|| time::Duration::seconds(self.rng.random_range(60..=600)));
        self.drawn += 1;
        PlannedOrder {
            id: format!("{}-o{}", self.config.tag, self.drawn),
            restaurant,
            dropoff,
            placed_at: now,
            ready_at,
            deliver_by,
            late_by,
            cancel_after,
        }
    }

    /// How many orders arrive in the next `dt` at `now`: a Poisson draw at the demand's rate.
    pub fn arrivals(&mut self, now: OffsetDateTime, dt: Duration) -> u32 {
        let lambda = self
            .config
            .demand
            .orders_per_second(now, self.config.couriers)
            * dt.as_secs_f64();
        poisson(&mut self.rng, lambda)
    }
}

/// A uniform point within `radius_m` of `center`.
pub(crate) fn within(rng: &mut ChaCha8Rng, center: Point, radius_m: f64) -> Point {
    let r = radius_m * rng.random::<f64>().sqrt();
    let angle = rng.random::<f64>() * std::f64::consts::TAU;
    center.moved_m(r * angle.cos(), r * angle.sin())
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Kitchen preparation time: log-normal around the median (13 minutes by default), kept within
/// the range (8..=25 minutes).
fn preparation_time(rng: &mut ChaCha8Rng, demand: &Demand) -> time::Duration {
    let (shortest, longest) = demand.preparation_range;
    let median = demand.preparation_median.as_secs_f64().max(1.0);
    let seconds = (median.ln() + 0.3 * normal(rng)).exp().clamp(
        shortest.as_secs_f64(),
        longest.as_secs_f64().max(shortest.as_secs_f64()),
    );
    time::Duration::seconds_f64(seconds)
}

/// A Poisson draw of mean `lambda` (Knuth's method; large means use a normal approximation).
fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u32 {
    if lambda.is_nan() || lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        return (lambda + lambda.sqrt() * normal(rng)).round().max(0.0) as u32;
    }
    let limit = (-lambda).exp();
    let mut product = rng.random::<f64>();
    let mut count = 0;
    while product > limit {
        count += 1;
        product *= rng.random::<f64>();
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn demand_peaks_at_lunch_and_dinner() {
        let d = Demand::default();
        let at = |h: u8| {
            d.orders_per_second(
                datetime!(2026-12-01 00:00 UTC).replace_hour(h).unwrap(),
                100,
            )
        };
        assert!(
            at(12) > 2.0 * at(9),
            "lunch {} vs morning {}",
            at(12),
            at(9)
        );
        assert!(
            at(19) > 2.0 * at(16),
            "dinner {} vs afternoon {}",
            at(19),
            at(16)
        );
        assert!(at(19) > at(3) && at(12) > at(3));
        assert!(at(3) > 0.0);
        // Scaled to the fleet.
        let t = datetime!(2026-12-01 12:00 UTC);
        assert!((d.orders_per_second(t, 200) - 2.0 * d.orders_per_second(t, 100)).abs() < 1e-12);
    }

    #[test]
    fn orders_are_realistic_and_the_city_is_seeded() {
        let config = CityConfig {
            tag: "t".into(),
            ..CityConfig::default()
        };
        let mut a = City::new(config.clone());
        let mut b = City::new(config);
        assert_eq!(a.restaurants, b.restaurants);
        assert_eq!(a.couriers, b.couriers);
        let now = datetime!(2026-12-01 12:00 UTC);
        let orders: Vec<_> = (0..2000).map(|_| a.next_order(now)).collect();
        assert_eq!(orders[7], {
            for _ in 0..7 {
                b.next_order(now);
            }
            b.next_order(now)
        });
        for o in &orders {
            let prep = o.ready_at - o.placed_at;
            assert!(prep >= time::Duration::minutes(8) && prep <= time::Duration::minutes(25));
            assert_eq!(o.deliver_by - o.placed_at, time::Duration::minutes(45));
            let km = a.restaurants[o.restaurant].location.distance_m(o.dropoff) / 1000.0;
            assert!((0.29..3.6).contains(&km), "{km}");
        }
        let cancelled = orders.iter().filter(|o| o.cancel_after.is_some()).count();
        assert!((10..=80).contains(&cancelled), "{cancelled}");
        let late = orders.iter().filter(|o| o.late_by.is_some()).count();
        assert!((200..=400).contains(&late), "{late}");
    }

    #[test]
    fn a_run_curve_has_its_mean_and_its_peaks() {
        let start = datetime!(2026-12-01 12:00 UTC);
        let length = Duration::from_secs(600);
        let d = Demand {
            curve: Curve::Run {
                start,
                length,
                mean_per_s: 1.5,
                peak_per_s: 3.0,
            },
            ..Demand::default()
        };
        let rate = |s: f64| d.orders_per_second(start + time::Duration::seconds_f64(s), 2000);
        let mean = (0..600).map(|s| rate(f64::from(s) + 0.5)).sum::<f64>() / 600.0;
        assert!((mean - 1.5).abs() < 0.01, "{mean}");
        assert!((rate(200.0) - 3.0).abs() < 0.01, "{}", rate(200.0));
        assert!((rate(450.0) - 3.0).abs() < 0.01, "{}", rate(450.0));
        assert!(rate(20.0) < 1.0 && rate(20.0) > 0.3, "{}", rate(20.0));
        assert_eq!(rate(-1.0), 0.0);
        assert_eq!(rate(600.0), 0.0);
        // Mean and peak equal: flat.
        let flat = Demand {
            curve: Curve::Run {
                start,
                length,
                mean_per_s: 5.0,
                peak_per_s: 5.0,
            },
            ..Demand::default()
        };
        assert_eq!(
            flat.orders_per_second(start + time::Duration::minutes(3), 1),
            5.0
        );
    }

    #[test]
    fn arrivals_follow_the_rate() {
        let mut city = City::new(CityConfig {
            couriers: 100,
            tag: "t".into(),
            ..CityConfig::default()
        });
        let at = datetime!(2026-12-01 19:00 UTC);
        let per_s = city.config.demand.orders_per_second(at, 100);
        let n: u32 = (0..3600)
            .map(|_| city.arrivals(at, Duration::from_secs(1)))
            .sum();
        let expected = per_s * 3600.0;
        assert!(
            (f64::from(n) - expected).abs() < 0.1 * expected,
            "{n} vs {expected}"
        );
    }
}
