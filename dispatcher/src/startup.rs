//! Wiring `dispatcher serve`: [`Application::build`] connects PostgreSQL (migrating first), loads
//! the state, embeds the tracker, starts the planner on its rayon pool, arrival detection and the
//! kitchen link, and binds the HTTP and OsmAnd listeners (port 0 in tests: the bound addresses
//! are exposed). [`Application::run_until_stopped`] serves until the shutdown token and then
//! stops in order: listeners first (in-flight requests finish), then the link (consumer
//! cancelled, outbox drained), the planner, and the tracker's writer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret;
use service::auth::{PgTokenVerifier, TokenVerifier};
use service::settings::Settings;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::map_ws::MapState;
use crate::api::{ApiState, HealthCheck};
use crate::arrival::ArrivalDetector;
use crate::bus::link::{KitchenLink, LinkHandle, LinkHealth};
use crate::config::Options;
use crate::dispatch::Dispatch;
use crate::live::map::{MapFeed, MapOptions};
use crate::planner::Planner;
use crate::store::{PgStore, Store};

/// The process-wide Prometheus recorder (installed once; tests build several applications).
fn prometheus() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
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
    link: LinkHandle,
    /// Stops the kitchen link (after the servers, so no request waits on it).
    link_stop: CancellationToken,
    background: Vec<JoinHandle<()>>,
    /// Stops the planner and arrival detection (the link has its own stop).
    tasks: CancellationToken,
    dispatch: Dispatch,
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
        let metrics = prometheus();
        let pool = connect(database_url.expose_secret()).await?;
        service::schema::migrate(&pool, settings.use_timescaledb)
            .await
            .context("applying migrations")?;
        let store: Arc<dyn Store> = Arc::new(PgStore::new(pool.clone()));
        let dispatch = Dispatch::load(store.clone())
            .await
            .context("loading the state")?;
        let (orders, couriers) = dispatch.read(|s| (s.orders().count(), s.couriers().count()));
        tracing::info!(orders, couriers, "State restored.");
        let verifier: Arc<dyn TokenVerifier> = Arc::new(PgTokenVerifier::new(
            pool.clone(),
            options.tracker.lookup_ttl,
        ));
        let tracker = tracker::Tracker::build_with_auth(
            pool.clone(),
            options.tracker.clone(),
            verifier.clone(),
        )
        .await
        .context("starting the tracker")?;
        let positions = tracker.latest().clone();

        let tasks = CancellationToken::new();
        let travel: Arc<dyn optimizer::TravelModel> = Arc::new(optimizer::StraightLine::new(
            optimizer::StraightLine::CITY_DETOUR,
        ));
        if let Some(road) = &settings.road_network {
            tracing::warn!(road_network = %road, "ROAD_NETWORK is not supported yet; travel times are straight lines times 1.3.");
        }
        let planner = Planner::new(
            dispatch.clone(),
            positions.clone(),
            travel,
            options.planner.clone(),
        )
        .context("creating the solver's thread pool")?;
        let mut background = vec![tokio::spawn(planner.run(tasks.clone()))];
        let detector = ArrivalDetector::new(dispatch.clone(), options.arrival.clone());
        background.push(tokio::spawn(detector.run(positions.clone(), tasks.clone())));

        let link_stop = CancellationToken::new();
        let link = KitchenLink::new(
            amqp_url.expose_secret().to_string(),
            options.topology.clone(),
            Arc::new(dispatch.clone()),
            store.clone(),
            dispatch.outbox_signal(),
        )
        .start(link_stop.clone());

        let state = ApiState {
            dispatch: dispatch.clone(),
            verifier: verifier.clone(),
            positions: positions.clone(),
            health: Arc::new(Health {
                store: store.clone(),
                link: link.health(),
            }),
            metrics: Some(metrics),
        };
        let router = crate::api::router(state).merge(tracker.api_router());
        // The live routers (courier socket, map socket, tracking link) merge here.
        let map = MapFeed::new(MapOptions::default());
        background.push(tokio::spawn(map.clone().run(
            dispatch.clone(),
            positions.clone(),
            tasks.clone(),
        )));
        let router = router.merge(crate::api::map_ws::router(MapState {
            feed: map,
            verifier: verifier.clone(),
        }));
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
            link,
            link_stop,
            background,
            tasks,
            dispatch,
        })
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
        tracing::info!("Stopping the kitchen link (draining the outbox).");
        self.link_stop.cancel();
        self.link.stopped().await;
        self.tasks.cancel();
        for task in self.background {
            let _ = task.await;
        }
        self.tracker.shutdown().await;
        tracing::info!("Stopped.");
        Ok(())
    }
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
