//! `dispatcher demo`: the whole service in one process with no external service. The state is
//! in the [`MemoryStore`](crate::store::MemoryStore), positions in the in-memory tracker, the
//! kitchens talk to an [`InProcessBus`], and every part reads one scaled clock (simulated time
//! starting at `--start` today, `--speedup` times faster than the wall). [`Demo::build`]
//! registers the couriers and mints a staff token and one courier's token through the store, so
//! they can be printed before the city warms up; [`Demo::run_until_stopped`] serves and runs a
//! simulated city until the shutdown signal.
//!
//! The city here is a small stand-in (kitchens placing orders through the bus, couriers riding
//! their planned routes and reporting pickups and deliveries) until the `sim` module's city is
//! merged, which takes its place behind the same [`InProcessBus`] and token source.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use optimizer::model::{Coordinates, CourierId, OrderStatus, StopKind, VehicleKind};
use service::auth::Role;
use service::clock::Clock;
use service::settings::Settings;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, Time};
use tokio_util::sync::CancellationToken;
use tracker::{FixInput, Source};

use crate::bus::in_process::InProcessBus;
use crate::config::Options;
use crate::dispatch::{CourierEventKind, Dispatch, NewCourier};
use crate::records::Actor;
use crate::startup::Application;

/// How the demo is shaped (`--couriers`, `--speedup`, `--seed`, `--start`).
#[derive(Clone, Debug, PartialEq)]
pub struct DemoOptions {
    /// Couriers registered and put on shift.
    pub couriers: usize,
    /// Simulated seconds per wall second.
    pub speedup: f64,
    /// Seeds the city's randomness: the same seed places the same orders.
    pub seed: u64,
    /// Simulated time of day (UTC) the demo starts at, today.
    pub start: Time,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            couriers: 50,
            speedup: 1.0,
            seed: 1,
            // Shortly before lunch, so the rush comes soon.
            start: time::macros::time!(11:30),
        }
    }
}

/// Parses `HH:MM` (24 hours).
///
/// # Errors
/// When the text is not two numbers of an hour and minute.
pub fn parse_start(text: &str) -> anyhow::Result<Time> {
    let (h, m) = text
        .split_once(':')
        .with_context(|| format!("--start {text:?}: expected HH:MM"))?;
    let (h, m): (u8, u8) = (
        h.trim()
            .parse()
            .context("--start: the hour is not a number")?,
        m.trim()
            .parse()
            .context("--start: the minute is not a number")?,
    );
    Time::from_hms(h, m, 0).with_context(|| format!("--start {text:?} is not a time of day"))
}

/// The built demo, not yet serving.
pub struct Demo {
    /// The service on memory.
    app: Application,
    /// The kitchens' side of the in-process bus.
    bus: Arc<InProcessBus>,
    /// Shape of the city.
    options: DemoOptions,
    /// The registered couriers, in registration order.
    couriers: Vec<CourierId>,
    /// A staff token, for the map.
    staff_token: String,
    /// The first courier's token, for trying the courier app.
    courier_token: String,
}

impl Demo {
    /// Builds the in-memory service on `settings` (its addresses; port 0 binds any) and
    /// registers `demo.couriers` couriers on shift.
    ///
    /// # Errors
    /// When a listener cannot be bound or registering fails.
    pub async fn build(
        settings: &Settings,
        options: Options,
        demo: DemoOptions,
    ) -> anyhow::Result<Demo> {
        let today = OffsetDateTime::now_utc().replace_time(demo.start);
        let clock = Clock::scaled(today, demo.speedup);
        let (app, bus) = Application::build_in_memory(settings, options, clock)
            .await
            .context("building the in-memory service")?;
        let dispatch = app.dispatch().clone();
        let mut couriers = Vec::with_capacity(demo.couriers);
        for i in 1..=demo.couriers.max(1) {
            let vehicle = match i % 5 {
                0 => VehicleKind::Car,
                1 | 3 => VehicleKind::Scooter,
                _ => VehicleKind::Bike,
            };
            let courier = dispatch
                .register_courier(NewCourier {
                    name: format!("Courier {i}"),
                    vehicle,
                    device_id: format!("demo-{i}"),
                    capacity: None,
                })
                .await
                .context("registering a demo courier")?;
            dispatch
                .set_shift(&courier.id, true, Actor::System)
                .await
                .context("starting a demo courier's shift")?;
            couriers.push(courier.id);
        }
        let store = app.store().clone();
        let staff_token = store
            .create_token(Role::Staff, None, &[])
            .await
            .context("minting the staff token")?;
        let courier_token = store
            .create_token(Role::Courier, Some(&couriers[0]), &[])
            .await
            .context("minting a courier token")?;
        Ok(Demo {
            app,
            bus,
            options: demo,
            couriers,
            staff_token,
            courier_token,
        })
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> std::net::SocketAddr {
        self.app.http_addr()
    }

    /// The bound OsmAnd address.
    pub fn osmand_addr(&self) -> std::net::SocketAddr {
        self.app.osmand_addr()
    }

    /// A staff token.
    pub fn staff_token(&self) -> &str {
        &self.staff_token
    }

    /// The first courier's token.
    pub fn courier_token(&self) -> &str {
        &self.courier_token
    }

    /// The in-process bus the kitchens publish to.
    pub fn bus(&self) -> &Arc<InProcessBus> {
        &self.bus
    }

    /// Serves and runs the city until `shutdown`; the city stops first, then the service in
    /// its usual order.
    ///
    /// # Errors
    /// When a server fails for good.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let city_stop = shutdown.child_token();
        let city = City {
            dispatch: self.app.dispatch().clone(),
            ingest: self.app.tracker().ingest().clone(),
            bus: self.bus.clone(),
            couriers: self.couriers.clone(),
            rng: SplitMix(self.options.seed),
        };
        let city = tokio::spawn(city.run(city_stop.clone()));
        let served = self.app.run_until_stopped(shutdown).await;
        city_stop.cancel();
        let _ = city.await;
        served
    }
}

/// A small seeded generator (SplitMix64): the city needs only uniform numbers.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The city's centre (Berlin Mitte) and the restaurants around it.
const CENTRE: (f64, f64) = (52.520, 13.405);
const RESTAURANTS: [(&str, f64, f64); 6] = [
    ("r-mitte", 52.5208, 13.4094),
    ("r-kreuzberg", 52.4986, 13.4030),
    ("r-prenzlberg", 52.5389, 13.4244),
    ("r-friedrichshain", 52.5156, 13.4545),
    ("r-moabit", 52.5257, 13.3421),
    ("r-schoeneberg", 52.4840, 13.3530),
];

/// Wall time between two city steps.
const STEP: Duration = Duration::from_millis(500);

/// The stand-in city: kitchens placing orders, couriers riding their routes.
struct City {
    dispatch: Dispatch,
    ingest: Arc<tracker::Ingest>,
    bus: Arc<InProcessBus>,
    couriers: Vec<CourierId>,
    rng: SplitMix,
}

impl City {
    async fn run(mut self, stop: CancellationToken) {
        let clock = self.dispatch.clock();
        let mut at: Vec<Coordinates> = (0..self.couriers.len())
            .map(|_| self.near(CENTRE, 0.02))
            .collect();
        let mut last = clock.now();
        // Orders per simulated second: one per courier every ~15 simulated minutes.
        let rate = self.couriers.len() as f64 / 900.0;
        let mut due = 0.0;
        let mut placed = 0u64;
        let mut ticker = tokio::time::interval(STEP);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let now = clock.now();
            let dt = (now - last).as_seconds_f64().max(0.0);
            last = now;
            due += rate * dt;
            while due >= 1.0 {
                due -= 1.0;
                placed += 1;
                self.place(placed, now).await;
            }
            for (i, here) in at.iter_mut().enumerate() {
                *here = self.ride(i, *here, dt, now).await;
            }
        }
        tracing::info!(orders = placed, "The demo city stopped.");
    }

    /// A point within `spread` degrees of `centre`.
    fn near(&mut self, centre: (f64, f64), spread: f64) -> Coordinates {
        let lat = centre.0 + (self.rng.next() - 0.5) * spread;
        let lon = centre.1 + (self.rng.next() - 0.5) * spread * 1.6;
        Coordinates::parse(lat, lon).expect("points near the centre are valid coordinates")
    }

    /// A kitchen places an order through the bus, ready in 5 to 15 minutes.
    async fn place(&mut self, n: u64, now: OffsetDateTime) {
        let pick = (self.rng.next() * RESTAURANTS.len() as f64) as usize;
        let (id, lat, lon) = RESTAURANTS[pick.min(RESTAURANTS.len() - 1)];
        let dropoff = self.near((lat, lon), 0.03);
        let ready = now + time::Duration::seconds(300 + (self.rng.next() * 600.0) as i64);
        let body = serde_json::json!({
            "order_id": format!("demo-{n}"),
            "restaurant": {"id": id, "lat": lat, "lon": lon},
            "dropoff": {"lat": dropoff.lat(), "lon": dropoff.lon()},
            "placed_at": now.format(&Rfc3339).unwrap_or_default(),
            "ready_at": ready.format(&Rfc3339).unwrap_or_default(),
        });
        let message_id = format!("demo-kitchen-{n}");
        self.bus
            .publish_kitchen(
                "order.created",
                Some(&message_id),
                body.to_string().as_bytes(),
            )
            .await;
    }

    /// Moves courier `i` `dt` simulated seconds along its route from `from`, reports the
    /// position, and a pickup or delivery on reaching the stop.
    async fn ride(
        &mut self,
        i: usize,
        from: Coordinates,
        dt: f64,
        now: OffsetDateTime,
    ) -> Coordinates {
        let courier = &self.couriers[i];
        let next = self.dispatch.read(|s| {
            let stop = s.route(courier)?.stops.first()?.clone();
            let status = s.order(&stop.order_id)?.status;
            let vehicle = s.courier(courier)?.vehicle;
            Some((stop, status, vehicle))
        });
        let mut here = from;
        if let Some((stop, status, vehicle)) = next {
            let speed = match vehicle {
                VehicleKind::Bike => 4.5,
                VehicleKind::Scooter => 7.0,
                VehicleKind::Car => 8.0,
            };
            let distance = here.haversine_m(stop.location);
            let step = speed * dt;
            if distance <= step.max(15.0) {
                here = stop.location;
                let event = match (stop.kind, status) {
                    (StopKind::Pickup, OrderStatus::Assigned)
                        if stop.ready_at.is_none_or(|r| r <= now) =>
                    {
                        Some(CourierEventKind::PickedUp)
                    }
                    (StopKind::Dropoff, OrderStatus::PickedUp) => Some(CourierEventKind::Delivered),
                    _ => None,
                };
                if let Some(event) = event {
                    let result = self
                        .dispatch
                        .courier_event(
                            courier,
                            &stop.order_id,
                            event,
                            None,
                            Actor::Courier(courier.clone()),
                        )
                        .await;
                    if let Err(error) = result {
                        tracing::debug!(%error, courier_id = %courier, "A demo courier's event was refused.");
                    }
                }
            } else {
                let f = step / distance;
                let lat = here.lat() + (stop.location.lat() - here.lat()) * f;
                let lon = here.lon() + (stop.location.lon() - here.lon()) * f;
                here = Coordinates::parse(lat, lon).unwrap_or(here);
            }
        }
        let fix = FixInput {
            lat: here.lat(),
            lon: here.lon(),
            fix_time: Some(now),
            accuracy_m: Some(5.0),
            ..FixInput::default()
        };
        if let Err(error) = self
            .ingest
            .ingest_courier(courier, vec![fix], Source::WebSocket)
            .await
        {
            tracing::debug!(%error, courier_id = %courier, "A demo position was not stored.");
        }
        here
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_time_is_hours_and_minutes() {
        assert_eq!(parse_start("11:30").unwrap(), time::macros::time!(11:30));
        assert_eq!(parse_start("0:05").unwrap(), time::macros::time!(0:05));
        for bad in ["25:00", "11", "aa:bb", "11:60"] {
            assert!(parse_start(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_numbers() {
        let (mut a, mut b) = (SplitMix(7), SplitMix(7));
        for _ in 0..10 {
            let x = a.next();
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x, b.next());
        }
    }
}
