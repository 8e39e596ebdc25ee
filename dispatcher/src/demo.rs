//! `dispatcher demo`: the whole service in one process with no external service. The state is
//! in the [`MemoryStore`](crate::store::MemoryStore), positions in the in-memory tracker, the
//! kitchens talk to an [`InProcessBus`], and every part reads one scaled clock (simulated time
//! starting at `--start` today, `--speedup` times faster than the wall). [`Demo::build`]
//! mints a staff token and registers a courier the simulation leaves to a person (for the
//! courier app), with its token, through the store, so they can be printed before the city
//! warms up; [`Demo::run_until_stopped`] serves and runs a simulated city until the shutdown
//! signal.
//!
//! The city is [`crate::sim`]'s, the same kitchens and phones the city benchmark drives
//! `serve` with: kitchens publish to the [`InProcessBus`] (through [`BusKitchen`], its
//! [`KitchenPort`]), phones register over the API, take their tokens from the store, follow the
//! routes pushed over the courier socket (or poll them over REST) and report positions and taps.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use optimizer::model::{CourierId, VehicleKind};
use service::auth::Role;
use service::clock::Clock;
use service::settings::Settings;
use time::{OffsetDateTime, Time};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::bus::consumer::Verdict;
use crate::bus::in_process::InProcessBus;
use crate::config::Options;
use crate::dispatch::NewCourier;
use crate::sim::{self, CityConfig, Endpoints, KitchenPort, SimConfig, TokenSource};
use crate::startup::Application;
use crate::store::Store;

/// How the demo is shaped (`--couriers`, `--speedup`, `--seed`, `--start`).
#[derive(Clone, Debug, PartialEq)]
pub struct DemoOptions {
    /// Couriers in the simulated fleet.
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

/// The simulated kitchens' side of the [`InProcessBus`]: messages go through the consumer's
/// own parse-and-apply path, dispatch events come back as the RabbitMQ port delivers them.
pub struct BusKitchen {
    bus: Arc<InProcessBus>,
    events: broadcast::Sender<(String, serde_json::Value)>,
}

impl BusKitchen {
    /// A port on `bus`, forwarding its events until `stop`.
    pub fn new(bus: Arc<InProcessBus>, stop: CancellationToken) -> Arc<BusKitchen> {
        let (events, _) = broadcast::channel(4096);
        let mut from_bus = bus.subscribe();
        let forward = events.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    event = from_bus.recv() => match event {
                        Ok((key, _, payload)) => {
                            let _ = forward.send((key, payload));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        });
        Arc::new(BusKitchen { bus, events })
    }
}

#[async_trait]
impl KitchenPort for BusKitchen {
    async fn publish(
        &self,
        routing_key: &str,
        message_id: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<()> {
        match self
            .bus
            .publish_kitchen(routing_key, Some(message_id), &body)
            .await
        {
            // A dead letter was handed over too: it is kept with its reason, as kitchen.dead.
            Verdict::Ack(_) | Verdict::Dead(_) => Ok(()),
            Verdict::Retry => anyhow::bail!("the in-memory store did not take {message_id}"),
        }
    }

    fn events(&self) -> broadcast::Receiver<(String, serde_json::Value)> {
        self.events.subscribe()
    }
}

/// Tokens for the simulated phones, minted through the store.
fn token_source(store: Arc<dyn Store>) -> TokenSource {
    Arc::new(move |courier: CourierId| {
        let store = store.clone();
        Box::pin(async move {
            store
                .create_token(Role::Courier, Some(&courier), &[])
                .await
                .map_err(|e| anyhow::anyhow!("minting a courier token: {e}"))
        })
    })
}

/// The built demo, not yet serving.
pub struct Demo {
    /// The service on memory.
    app: Application,
    /// The kitchens' side of the in-process bus.
    bus: Arc<InProcessBus>,
    /// The clock every part reads.
    clock: Clock,
    /// The simulated city.
    city: CityConfig,
    /// A staff token, for the map.
    staff_token: String,
    /// The token of a courier the simulation leaves alone, for trying the courier app.
    courier_token: String,
}

impl Demo {
    /// Builds the in-memory service on `settings` (its addresses; port 0 binds any), registers
    /// a courier for a person to play (whose token is printed) and mints a staff token.
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
        let city = CityConfig {
            seed: demo.seed,
            couriers: demo.couriers.max(1),
            tag: "demo".into(),
            ..CityConfig::default()
        };
        // A courier for a person to try the courier app with (`/courier`): registered, off shift
        // until the app starts the shift, and never driven by the simulated phones.
        let courier = app
            .dispatch()
            .register_courier(NewCourier {
                name: "Demo courier (you)".into(),
                vehicle: VehicleKind::Bike,
                device_id: "demo-you".into(),
                capacity: None,
            })
            .await
            .context("registering the demo courier")?;
        let store = app.store().clone();
        let staff_token = store
            .create_token(Role::Staff, None, &[])
            .await
            .context("minting the staff token")?;
        let courier_token = store
            .create_token(Role::Courier, Some(&courier.id), &[])
            .await
            .context("minting a courier token")?;
        Ok(Demo {
            app,
            bus,
            clock,
            city,
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

    /// The token of the courier left to a person (not simulated).
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
        let endpoints = Endpoints {
            base: format!("http://{}", self.app.http_addr()),
            osmand: format!("http://{}", self.app.osmand_addr()),
            staff_token: self.staff_token.clone(),
        };
        let kitchen = BusKitchen::new(self.bus.clone(), city_stop.clone());
        let tokens = token_source(self.app.store().clone());
        let config = SimConfig {
            city: self.city,
            ..SimConfig::default()
        };
        let clock = self.clock;
        let served = tokio::spawn(self.app.run_until_stopped(shutdown.clone()));
        let city = sim::run(config, endpoints, kitchen, tokens, clock, city_stop.clone());
        shutdown.cancelled().await;
        city_stop.cancel();
        city.stopped().await;
        served.await.context("the demo service task")?
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
}
