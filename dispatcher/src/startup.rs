//! Wiring `dispatcher serve` and `dispatcher demo`: [`Application::build`] connects PostgreSQL (migrating first), loads
//! the state, embeds the tracker, starts the planner on its rayon pool, arrival detection and the
//! kitchen link, and binds the HTTP and OsmAnd listeners (port 0 in tests: the bound addresses
//! are exposed). [`Application::run_until_stopped`] serves until the shutdown token and then
//! stops in order: listeners first (in-flight requests finish), then the link (consumer
//! cancelled, outbox drained), the planner, and the tracker's writer.
//! [`Application::build_in_memory`] wires the same parts on the memory store, the in-memory
//! tracker and the in-process bus for the demo; both end in one `assemble`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret;
use service::settings::Settings;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::map_ws::MapState;
use crate::api::{ApiState, HealthCheck};
use crate::arrival::ArrivalDetector;
use crate::bus::in_process::InProcessBus;
use crate::bus::link::{KitchenLink, LinkHealth};
use crate::bus::relay::OutboxRelay;
use crate::config::Options;
use crate::directory::DispatchDirectory;
use crate::dispatch::Dispatch;
use crate::live::map::{MapFeed, MapOptions};
use crate::planner::Planner;
use crate::store::{MemoryStore, PgStore, Store};

/// Upper bounds of the replan-time histogram, seconds: 25 ms steps up to a second (the solve
/// budget is below it), then coarser. A histogram rather than a summary, so quantiles can be
/// computed over any period and summed across processes (the city simulation does).
const REPLAN_BUCKETS: [f64; 46] = {
    let mut b = [0.0; 46];
    let mut i = 0;
    while i < 40 {
        b[i] = (i + 1) as f64 * 0.025;
        i += 1;
    }
    let tail = [1.25, 1.5, 2.0, 3.0, 5.0, 10.0];
    let mut j = 0;
    while j < tail.len() {
        b[40 + j] = tail[j];
        j += 1;
    }
    b
};

/// The recorder's configuration: histograms where their buckets are chosen.
fn prometheus_builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(crate::metric::PLANNER_REPLAN_SECONDS.into()),
            &REPLAN_BUCKETS,
        )
        // The buckets are a non-empty constant, which is all this checks.
        .expect("replan buckets are not empty")
}

/// The process-wide Prometheus recorder (installed once; tests build several applications).
fn prometheus() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            prometheus_builder()
                .install_recorder()
                .unwrap_or_else(|_| prometheus_builder().build_recorder().handle())
        })
        .clone()
}

/// `/healthz`: the database answers and the broker link is up.
struct Health {
    store: Arc<dyn Store>,
    link: LinkHealth,
}

impl HealthCheck for Health {
    fn check(&self) -> BoxFuture<'_, Vec<(&'static str, bool)>> {
        Box::pin(async move {
            vec![
                ("database", self.store.healthy().await),
                ("rabbitmq", self.link.is_connected()),
            ]
        })
    }
}

/// A built, not yet serving, dispatcher.
pub struct Application {
    http: TcpListener,
    osmand: TcpListener,
    http_addr: SocketAddr,
    osmand_addr: SocketAddr,
    router: axum::Router,
    osmand_router: axum::Router,
    max_connections: usize,
    tracker: tracker::Tracker,
    /// Stops the bus side (the kitchen link, or the demo's relay) after the servers, so no
    /// request waits on it.
    bus_stop: CancellationToken,
    /// Finishes once the bus side has stopped (the outbox drained).
    bus_stopped: BoxFuture<'static, ()>,
    background: Vec<JoinHandle<()>>,
    /// Stops the planner and arrival detection (the bus has its own stop).
    tasks: CancellationToken,
    dispatch: Dispatch,
    /// The store the state is kept in (the demo mints its tokens through it).
    store: Arc<dyn Store>,
}

/// What `serve` and `demo` wire differently; [`assemble`] adds the rest.
struct Backends {
    store: Arc<dyn Store>,
    dispatch: Dispatch,
    tracker: tracker::Tracker,
    health: Arc<dyn HealthCheck>,
    bus_stop: CancellationToken,
    bus_stopped: BoxFuture<'static, ()>,
}

impl Application {
    /// Builds everything on `settings` and `options`.
    ///
    /// # Errors
    /// When `DATABASE_URL` or `AMQP_URL` is unset, the database cannot be migrated or read, or
    /// a listener cannot be bound.
    pub async fn build(settings: &Settings, options: Options) -> anyhow::Result<Application> {
        let database_url = settings
            .database_url
            .as_ref()
            .context("DATABASE_URL must be set for `dispatcher serve`")?;
        let amqp_url = settings
            .amqp_url
            .as_ref()
            .context("AMQP_URL must be set for `dispatcher serve`")?;
        let pool = connect(database_url.expose_secret()).await?;
        service::schema::migrate(&pool, settings.use_timescaledb)
            .await
            .context("applying migrations")?;
        let store: Arc<dyn Store> =
            Arc::new(PgStore::new(pool.clone()).with_token_ttl(options.tracker.lookup_ttl));
        let dispatch = Dispatch::load_with_clock(store.clone(), options.tracker.clock)
            .await
            .context("loading the state")?;
        let (orders, couriers) = dispatch.read(|s| (s.orders().count(), s.couriers().count()));
        tracing::info!(orders, couriers, "State restored.");
        let tracker = tracker::Tracker::build_with_auth(
            pool.clone(),
            options.tracker.clone(),
            store.verifier(),
        )
        .await
        .context("starting the tracker")?;

        let bus_stop = CancellationToken::new();
        let link = KitchenLink::new(
            amqp_url.expose_secret().to_string(),
            options.topology.clone(),
            Arc::new(dispatch.clone()),
            store.clone(),
            dispatch.outbox_signal(),
        )
        .start(bus_stop.clone());
        let health = Arc::new(Health {
            store: store.clone(),
            link: link.health(),
        });
        let backends = Backends {
            store,
            dispatch,
            tracker,
            health,
            bus_stop,
            bus_stopped: Box::pin(link.stopped()),
        };
        assemble(settings, &options, backends).await
    }

    /// Builds `dispatcher demo`'s service: everything in memory, on `clock`, with an
    /// [`InProcessBus`] in place of RabbitMQ (the relay publishes the outbox to it; kitchens
    /// publish to it). `DATABASE_URL` and `AMQP_URL` are not read.
    ///
    /// # Errors
    /// When a listener cannot be bound or the solver's pool cannot be made.
    pub async fn build_in_memory(
        settings: &Settings,
        mut options: Options,
        clock: service::clock::Clock,
    ) -> anyhow::Result<(Application, Arc<InProcessBus>)> {
        options.tracker.clock = clock;
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let dispatch = Dispatch::load_with_clock(store.clone(), clock)
            .await
            .context("loading the in-memory state")?;
        let tracker = tracker::Tracker::in_memory(
            options.tracker.clone(),
            Arc::new(DispatchDirectory::new(dispatch.clone())),
            store.verifier(),
        );
        let bus = Arc::new(InProcessBus::new(Arc::new(dispatch.clone())));
        let bus_stop = CancellationToken::new();
        let relay = OutboxRelay::new(store.clone(), &options.topology, dispatch.outbox_signal());
        let relaying = {
            let (bus, stop) = (bus.clone(), bus_stop.clone());
            tokio::spawn(async move {
                if let Err(error) = relay.run(&*bus, &stop).await {
                    tracing::error!(%error, "The in-process relay stopped.");
                }
            })
        };
        let backends = Backends {
            health: Arc::new(InMemoryHealth),
            store,
            dispatch,
            tracker,
            bus_stop,
            bus_stopped: Box::pin(async move {
                let _ = relaying.await;
            }),
        };
        Ok((assemble(settings, &options, backends).await?, bus))
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The bound OsmAnd address.
    pub fn osmand_addr(&self) -> SocketAddr {
        self.osmand_addr
    }

    /// The core (for tests and the simulation).
    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }

    /// The store (tokens are minted through it).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The embedded tracker (the simulation feeds positions through its ingest).
    pub fn tracker(&self) -> &tracker::Tracker {
        &self.tracker
    }

    /// Serves until `shutdown` is cancelled, then stops everything in order.
    ///
    /// # Errors
    /// When a server fails for good.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let http = tokio::spawn(service::server::serve(
            self.http,
            self.router,
            self.max_connections,
            shutdown.clone(),
        ));
        let osmand = tokio::spawn(service::server::serve(
            self.osmand,
            self.osmand_router,
            self.max_connections,
            shutdown.clone(),
        ));
        shutdown.cancelled().await;
        tracing::info!("Shutting down: finishing requests.");
        let (http, osmand) = tokio::join!(http, osmand);
        http.context("the HTTP server task")?
            .context("the HTTP server")?;
        osmand
            .context("the OsmAnd server task")?
            .context("the OsmAnd server")?;
        tracing::info!("Stopping the bus (draining the outbox).");
        self.bus_stop.cancel();
        self.bus_stopped.await;
        self.tasks.cancel();
        for task in self.background {
            let _ = task.await;
        }
        self.tracker.shutdown().await;
        tracing::info!("Stopped.");
        Ok(())
    }
}

/// `/healthz` in memory: nothing can be down.
struct InMemoryHealth;

impl HealthCheck for InMemoryHealth {
    fn check(&self) -> BoxFuture<'_, Vec<(&'static str, bool)>> {
        Box::pin(async { vec![("store", true), ("bus", true)] })
    }
}

/// The travel model `ROAD_NETWORK` names (straight lines when unset), read and prepared off the
/// async runtime, and logged.
async fn load_travel_model(
    road_network: Option<String>,
) -> anyhow::Result<Arc<dyn optimizer::TravelModel>> {
    let loaded = tokio::task::spawn_blocking(move || roads::travel_model(road_network.as_deref()))
        .await
        .context("preparing the road network")?
        .context("loading ROAD_NETWORK")?;
    tracing::info!(
        travel_model = %loaded.description,
        prepared_ms = loaded.prepared_in.as_millis() as u64,
        "Travel times from {}.",
        loaded.description
    );
    Ok(loaded.model)
}

/// What both commands share on top of their [`Backends`]: the planner on its rayon pool,
/// arrival detection, the API with the tracker's and the live routers, and the two listeners.
async fn assemble(
    settings: &Settings,
    options: &Options,
    backends: Backends,
) -> anyhow::Result<Application> {
    let Backends {
        store,
        dispatch,
        tracker,
        health,
        bus_stop,
        bus_stopped,
    } = backends;
    let metrics = prometheus();
    let positions = tracker.latest().clone();
    let tasks = CancellationToken::new();
    let travel = load_travel_model(settings.road_network.clone()).await?;
    let planner = Planner::new(
        dispatch.clone(),
        positions.clone(),
        travel,
        options.planner.clone(),
    )
    .context("creating the solver's thread pool")?;
    let last_replan = planner.last_replan();
    let explainer = planner.explainer();
    let mut background = vec![tokio::spawn(planner.run(tasks.clone()))];
    let detector = ArrivalDetector::new(dispatch.clone(), options.arrival.clone());
    background.push(tokio::spawn(detector.run(positions.clone(), tasks.clone())));

    let verifier = store.verifier();
    let state = ApiState {
        dispatch: dispatch.clone(),
        verifier: verifier.clone(),
        positions: positions.clone(),
        health,
        metrics: Some(metrics),
    };
    let router = crate::api::router(state).merge(tracker.api_router()).merge(
        crate::api::candidates::router(crate::api::candidates::CandidatesState {
            dispatch: dispatch.clone(),
            verifier: verifier.clone(),
            explainer,
        }),
    );
    // The live routers (courier socket, map socket, tracking link) merge here.
    let router = router.merge(crate::api::track::router(crate::api::track::TrackState {
        dispatch: dispatch.clone(),
        positions: positions.clone(),
    }));
    let router = router.merge(crate::api::courier_ws::router(
        crate::api::courier_ws::CourierWsState::live(
            crate::live::routes::RouteHub::start(dispatch.clone(), tasks.clone()),
            dispatch.clone(),
            tracker.ingest().clone(),
            verifier.clone(),
        ),
    ));
    let map = MapFeed::with_replans(MapOptions::default(), last_replan);
    background.push(tokio::spawn(map.clone().run(
        dispatch.clone(),
        positions.clone(),
        tasks.clone(),
    )));
    let router = router.merge(crate::api::map_ws::router(MapState {
        feed: map,
        verifier,
    }));
    let router = router.merge(crate::web::router(options.web.clone()));
    let osmand_router = tracker.osmand_router();
    let http = TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("binding HTTP_ADDR {}", settings.http_addr))?;
    let osmand = TcpListener::bind(settings.osmand_addr)
        .await
        .with_context(|| format!("binding OSMAND_ADDR {}", settings.osmand_addr))?;
    Ok(Application {
        http_addr: http.local_addr()?,
        osmand_addr: osmand.local_addr()?,
        http,
        osmand,
        router,
        osmand_router,
        max_connections: settings.max_connections,
        tracker,
        bus_stop,
        bus_stopped,
        background,
        tasks,
        dispatch,
        store,
    })
}

/// A pool on `url`, retrying briefly while the database starts.
async fn connect(url: &str) -> anyhow::Result<PgPool> {
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=10 {
        match PgPoolOptions::new()
            .max_connections(12)
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await
        {
            Ok(pool) => return Ok(pool),
            Err(e) if attempt == 10 => {
                return Err(e).context("connecting to DATABASE_URL");
            }
            Err(error) => {
                tracing::warn!(%error, attempt, "PostgreSQL is not reachable yet; retrying.");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
        }
    }
    unreachable!("the loop returns on its last attempt")
}
