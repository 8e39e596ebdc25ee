//! The city simulation (`city`): the whole product through a day, over its real interfaces,
//! under load and faults.
//!
//! It drives a `dispatcher serve`, given by URL or started here as a child process
//! ([`server`]) on a fresh database and fresh RabbitMQ names, only through what real users
//! touch: the simulated kitchens publish orders, ready-time updates and cancellations to
//! RabbitMQ and read pickup ETAs back; the couriers' phones register, hold the courier socket,
//! follow their routes, report positions once a second to the OsmAnd endpoint (query, form and
//! Traccar JSON in turn) or over the socket, tap their status events, drop their connection and
//! resume with `since`, leave their shift; staff map clients hold `/v1/map/ws` open
//! ([`map_clients`]). Those actors are `dispatcher::sim`'s, the same the demo runs.
//!
//! A run places orders for `--minutes` of simulated time on a curve with two peaks
//! ([`dispatcher::sim::Curve::Run`]), then lets the fleet finish: it ends once every published
//! order has an outcome (or the drain time is up). Then every order is looked up through the
//! staff API ([`outcome`]); the service's replan statistics come from its `/metrics`
//! ([`scrape`]); its CPU and memory from `/proc`. `--chaos` injects faults ([`chaos`]);
//! `--plot` draws the run ([`plot`]). [`run`] returns the [`CityReport`] the binary prints.

pub mod chaos;
pub mod map_clients;
pub mod outcome;
pub mod plot;
pub mod scrape;
pub mod server;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use dispatcher::bus::Topology;
use dispatcher::sim::{
    self, AmqpKitchenPort, CityConfig, CourierOptions, Curve, Demand, Endpoints, SimConfig,
    TokenSource, TransportPlan,
};
use futures::FutureExt;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::style::RGBColor;
use serde::Serialize;
use service::auth::{Role, create_token};
use service::clock::Clock;
use service::testing::{Proxy, server_addr, via, with_database};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::stats::{Histogram, quantile};
use chaos::Happened;
use map_clients::{Kpis, MapWatch};
use scrape::{Scrape, Totals};
use server::{ManagedServer, ServerSpec};

/// How to run the city.
#[derive(Clone, Debug)]
pub struct CityOptions {
    /// Couriers in the fleet.
    pub couriers: usize,
    /// Simulated minutes of order placing.
    pub minutes: f64,
    /// Simulated seconds per wall second.
    pub speedup: f64,
    /// A running service's API (`http://host:port`); `None` starts one.
    pub server: Option<String>,
    /// That service's OsmAnd endpoint (default: its host, port 5055).
    pub osmand: Option<String>,
    /// That service's `TOPOLOGY_SUFFIX`.
    pub topology_suffix: Option<String>,
    /// That service's `CLOCK_EPOCH`, when it runs on simulated time.
    pub clock_epoch: Option<OffsetDateTime>,
    /// Staff map clients.
    pub map_clients: usize,
    /// Inject faults (only when the city starts the service).
    pub chaos: bool,
    /// Where to draw the chart.
    pub plot: Option<PathBuf>,
    /// Seeds the city, its demand and the faults.
    pub seed: u64,
    /// Mean orders per second over the run.
    pub orders_per_s: f64,
    /// Orders per second at the top of the peaks (equal to the mean: a flat rate).
    pub peak_per_s: f64,
    /// Simulated minutes to wait, after the last order, for every order to end.
    pub drain_minutes: f64,
    /// The `dispatcher` binary (default: beside this one).
    pub dispatcher: Option<PathBuf>,
    /// PostgreSQL (the server's database is created on it).
    pub database_url: String,
    /// RabbitMQ.
    pub amqp_url: String,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Keep the run's database afterwards.
    pub keep_database: bool,
    /// Environment for the service (`PLANNER_*`, `RUST_LOG`).
    pub server_env: Vec<(String, String)>,
}

/// What a run measured: one JSON line (CONTRACT.md's fields and more).
#[derive(Clone, Debug, Default, Serialize)]
pub struct CityReport {
    /// Orders the kitchens published and the broker confirmed.
    pub orders_placed: u64,
    /// Orders that ended delivered.
    pub delivered: u64,
    /// Orders that ended cancelled.
    pub cancelled: u64,
    /// Orders that ended failed with a reason.
    pub failed: u64,
    /// Published orders that did not end in one of those (must be 0).
    pub lost: u64,
    /// Orders whose timeline records more than one delivery.
    pub duplicated_deliveries: u64,
    /// Click-to-door, minutes.
    pub ctd_mean: Option<f64>,
    /// See `ctd_mean`.
    pub ctd_p90: Option<f64>,
    /// Ready to picked up, minutes.
    pub r2p_mean: Option<f64>,
    /// Share of deliveries after their promise.
    pub late_share: Option<f64>,
    /// Moves between couriers per order that had one.
    pub reassignments_per_order: Option<f64>,
    /// Mean share of on-shift couriers with work, while orders were placed (map KPIs).
    pub utilization: Option<f64>,
    /// Positions in the database for this run's couriers (counted there).
    pub positions_stored: u64,
    /// Positions the phones sent.
    pub positions_sent: u64,
    /// Positions the service answered as stored.
    pub positions_acknowledged: u64,
    /// What the service's tracker counted (received, stored, rejected by reason, ...).
    pub tracker: std::collections::BTreeMap<String, f64>,
    /// Replans the service ran.
    pub replans: u64,
    /// Replan wall time, ms, from the service's histogram (25 ms buckets).
    pub replan_p99_ms: Option<f64>,
    /// See `replan_p99_ms`.
    pub replan_mean_ms: Option<f64>,
    /// Kitchen publish to the first route naming the order at a phone, ms.
    pub order_to_route_p50_ms: Option<f64>,
    /// See `order_to_route_p50_ms`.
    pub order_to_route_p99_ms: Option<f64>,
    /// See `order_to_route_p50_ms`.
    pub order_to_route_max_ms: Option<f64>,
    /// Orders that reached a phone.
    pub routed_orders: u64,
    /// Where order-to-route time goes, ms (p50 and p99 of each stage): the kitchen's publish
    /// to the service recording the order, recorded to first assigned (the planner), and
    /// assigned to the route at the phone (commit, push).
    pub order_to_route_stages: Stages,
    /// Age of courier positions as map deltas bring them, ms.
    pub map_staleness_p50_ms: Option<f64>,
    /// See `map_staleness_p50_ms`.
    pub map_staleness_p99_ms: Option<f64>,
    /// Positions the map clients measured.
    pub map_positions: u64,
    /// Map frames read, all clients.
    pub map_frames: u64,
    /// Times a map client was resynced with a snapshot (it fell behind).
    pub map_resyncs: u64,
    /// Map client reconnections.
    pub map_reconnects: u64,
    /// The longest wait between two map frames of one connection, ms.
    pub map_longest_gap_ms: f64,
    /// Peak resident memory of the service, MiB (the highest of its processes).
    pub server_rss_mb: Option<f64>,
    /// CPU seconds of the service (all its processes).
    pub server_cpu_s: Option<f64>,
    /// Times the service was started.
    pub server_starts: u32,
    /// Pickup ETAs the kitchens heard.
    pub pickup_etas: u64,
    /// Status events the phones sent and the service took.
    pub events_sent: u64,
    /// Status events the service refused (the order moved meanwhile).
    pub events_refused: u64,
    /// Courier socket reconnections.
    pub courier_reconnects: u64,
    /// Couriers that ended their shift.
    pub shifts_ended: u64,
    /// Faults injected.
    pub faults: Vec<Happened>,
    /// The run: fleet, minutes, speedup, seed, rates.
    pub couriers: usize,
    /// See `couriers`.
    pub minutes: f64,
    /// See `couriers`.
    pub speedup: f64,
    /// See `couriers`.
    pub seed: u64,
    /// See `couriers`.
    pub orders_per_s: f64,
    /// See `couriers`.
    pub peak_per_s: f64,
    /// Map clients.
    pub map_clients: usize,
    /// Wall seconds for the fleet to come on shift (before the first order).
    pub warmup_s: f64,
    /// Wall seconds of the order window and of the drain after it.
    pub wall_s: f64,
    /// See `wall_s`.
    pub drain_s: f64,
}

/// The p50 and p99 of each stage of order-to-route, ms.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stages {
    /// Publish to recorded by the service.
    pub publish_to_recorded: [Option<f64>; 2],
    /// Recorded to first assigned.
    pub recorded_to_assigned: [Option<f64>; 2],
    /// Assigned to the route at the phone.
    pub assigned_to_phone: [Option<f64>; 2],
}

/// Splits each order's order-to-route time at the service's timeline (its times are simulated:
/// back to wall time through `epoch` and `speedup`).
fn stages(
    latencies: &[sim::RouteLatency],
    outcomes: &[outcome::OrderOutcome],
    epoch: OffsetDateTime,
    speedup: f64,
) -> Stages {
    let by_id: std::collections::HashMap<&str, &outcome::OrderOutcome> =
        outcomes.iter().map(|o| (o.id.as_str(), o)).collect();
    let wall = |t: OffsetDateTime| epoch + (t - epoch) / speedup;
    let ms = |d: time::Duration| d.as_seconds_f64() * 1e3;
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for l in latencies {
        let Some(o) = by_id.get(l.order_id.as_str()) else {
            continue;
        };
        let (Some(recorded), Some(assigned)) = (o.recorded_at, o.first_assigned_at) else {
            continue;
        };
        let (recorded, assigned) = (wall(recorded), wall(assigned));
        let routed = l.published_utc + l.latency;
        a.push(ms(recorded - l.published_utc));
        b.push(ms(assigned - recorded));
        c.push(ms(routed - assigned));
    }
    let pair = |v: &[f64]| [quantile(v, 0.5).map(round1), quantile(v, 0.99).map(round1)];
    Stages {
        publish_to_recorded: pair(&a),
        recorded_to_assigned: pair(&b),
        assigned_to_phone: pair(&c),
    }
}

/// One sample of the run, every [`SAMPLE_EVERY`].
#[derive(Clone, Debug)]
struct Sample {
    /// Wall seconds from the start.
    t_s: f64,
    /// The map's KPIs then.
    kpis: Option<Kpis>,
    /// The service's totals then.
    scrape: Scrape,
}

/// How often the run is sampled for the charts.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Longest the fleet may take to come on shift.
const WARMUP_LIMIT: Duration = Duration::from_secs(600);
/// Positions reported before the first order.
const WARMUP_POSITIONS: Duration = Duration::from_secs(5);

/// The city's layout for a fleet: restaurants and radius grow with it (a 2,000-courier fleet
/// covers a disc of about 12 km with 250 restaurants).
fn city_config(options: &CityOptions, tag: &str, start: OffsetDateTime) -> CityConfig {
    let scale = (options.couriers as f64 / 200.0).sqrt().clamp(1.0, 3.0);
    CityConfig {
        seed: options.seed,
        couriers: options.couriers,
        radius_m: 4_000.0 * scale,
        restaurants: (options.couriers / 8).max(30),
        tag: tag.to_string(),
        demand: Demand {
            curve: Curve::Run {
                start,
                length: Duration::from_secs_f64(options.minutes * 60.0),
                mean_per_s: options.orders_per_s,
                peak_per_s: options.peak_per_s.max(options.orders_per_s),
            },
            ..Demand::default()
        },
        ..CityConfig::default()
    }
}

/// How the phones behave in a city run.
fn courier_options(options: &CityOptions) -> CourierOptions {
    CourierOptions {
        transport: TransportPlan::Phones {
            seed: options.seed,
            osmand_share: 0.5,
        },
        drop_connection_every: Some(Duration::from_secs(150)),
        drop_share: 0.1,
        fail_share: 0.01,
        leave_share: 0.05,
        leave_within: Duration::from_secs_f64(options.minutes * 60.0),
        ..CourierOptions::default()
    }
}

/// The service the run talks to: one it started, or one given.
struct Target {
    base: String,
    osmand: String,
    suffix: String,
    pool: PgPool,
    managed: Option<Arc<ManagedServer>>,
    proxy: Option<Arc<Proxy>>,
    /// The database created for the run, to drop.
    database: Option<String>,
}

async fn start_target(
    options: &CityOptions,
    tag: &str,
    epoch: OffsetDateTime,
) -> anyhow::Result<Target> {
    if let Some(base) = &options.server {
        let base = base.trim_end_matches('/').to_string();
        let osmand = match &options.osmand {
            Some(o) => o.trim_end_matches('/').to_string(),
            None => {
                let host = reqwest::Url::parse(&base)
                    .context("--server is not a URL")?
                    .host_str()
                    .context("--server has no host")?
                    .to_string();
                format!("http://{host}:5055")
            }
        };
        let pool = PgPool::connect(&options.database_url)
            .await
            .context("connecting to DATABASE_URL (the service's database)")?;
        return Ok(Target {
            base,
            osmand,
            suffix: options.topology_suffix.clone().unwrap_or_default(),
            pool,
            managed: None,
            proxy: None,
            database: None,
        });
    }
    let binary = server::find_binary(options.dispatcher.as_deref())?;
    let name = format!("city_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&options.database_url)
        .await
        .context("connecting to DATABASE_URL to create the run's database")?;
    sqlx::raw_sql(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
        .execute(&mut admin)
        .await
        .context("creating the run's database")?;
    let url = with_database(&options.database_url, &name);
    // The service reaches PostgreSQL through a proxy (so a chaos run can cut it); runs without
    // faults go the same way, so the two compare.
    let proxy = Arc::new(Proxy::start(server_addr(&url, 5432)).await);
    let suffix = format!(".{tag}");
    let log = std::env::temp_dir().join(format!("{tag}-dispatcher.log"));
    eprintln!("city: the service logs to {}", log.display());
    let managed = Arc::new(ManagedServer::new(ServerSpec {
        binary,
        database_url: via(&url, proxy.addr()),
        amqp_url: options.amqp_url.clone(),
        http_port: server::free_port()?,
        osmand_port: server::free_port()?,
        topology_suffix: suffix.clone(),
        clock_epoch: epoch,
        speedup: options.speedup,
        log,
        env: options.server_env.clone(),
    }));
    managed
        .start(Duration::from_secs(120))
        .await
        .context("starting the dispatcher")?;
    let pool = PgPool::connect(&url)
        .await
        .context("connecting to the run's database")?;
    Ok(Target {
        base: managed.base(),
        osmand: managed.osmand(),
        suffix,
        pool,
        managed: Some(managed),
        proxy: Some(proxy),
        database: Some(name),
    })
}

/// Runs the city as `options` says.
///
/// # Errors
/// When the service cannot be started or reached, or the run's accounting fails.
pub async fn run(options: CityOptions) -> anyhow::Result<CityReport> {
    anyhow::ensure!(options.couriers > 0, "--couriers must be positive");
    anyhow::ensure!(
        options.minutes > 0.0 && options.minutes.is_finite(),
        "--minutes must be positive"
    );
    anyhow::ensure!(
        options.speedup.is_finite() && (0.01..=10_000.0).contains(&options.speedup),
        "--speedup must be a number from 0.01 to 10000"
    );
    anyhow::ensure!(
        !(options.chaos && options.server.is_some()),
        "--chaos needs the city to start the service (leave out --server)"
    );
    anyhow::ensure!(
        options.server.is_none() || options.speedup == 1.0 || options.clock_epoch.is_some(),
        "with --server and --speedup, pass the service's CLOCK_EPOCH as --clock-epoch"
    );
    let tag = format!(
        "city{}-{}",
        options.seed,
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let epoch = options.clock_epoch.unwrap_or_else(OffsetDateTime::now_utc);
    let clock = Clock::warped(epoch, options.speedup);
    let target = start_target(&options, &tag, epoch).await?;
    let result = drive(&options, &tag, clock, epoch, &target).await;
    if let Some(managed) = &target.managed {
        managed.stop(Duration::from_secs(30)).await;
    }
    let positions_stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM positions WHERE courier_id IN \
             (SELECT courier_id FROM devices WHERE device_id LIKE $1)",
    )
    .bind(format!("{tag}-c%"))
    .fetch_one(&target.pool)
    .await
    .context("counting the positions stored")?;
    target.pool.close().await;
    if let Some(name) = &target.database {
        if options.keep_database {
            eprintln!("city: kept the database {name}");
        } else if let Ok(mut admin) = PgConnection::connect(&options.database_url).await {
            let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
            )))
            .execute(&mut admin)
            .await;
        }
    }
    let mut report = result?;
    report.positions_stored = u64::try_from(positions_stored).unwrap_or(0);
    if let Some(managed) = &target.managed {
        report.server_rss_mb = Some(round1(managed.peak_rss_mb()));
        report.server_cpu_s = Some(round1(managed.cpu_seconds()));
        report.server_starts = managed.starts();
    }
    Ok(report)
}

/// What the sampler keeps.
#[derive(Default)]
struct Sampled {
    samples: Vec<Sample>,
    totals: Totals,
}

/// The run proper, on a started target.
async fn drive(
    options: &CityOptions,
    tag: &str,
    clock: Clock,
    epoch: OffsetDateTime,
    target: &Target,
) -> anyhow::Result<CityReport> {
    let http = reqwest::Client::new();
    let staff = create_token(&target.pool, Role::Staff, None, &[])
        .await
        .context("creating a staff token")?;
    let stop = CancellationToken::new();
    let watch = MapWatch::new(clock);
    let mut map_tasks = map_clients::spawn(
        options.map_clients,
        &target.base,
        &staff,
        watch.clone(),
        stop.clone(),
    );
    let kitchen = Arc::new(AmqpKitchenPort::start(
        options.amqp_url.clone(),
        Topology::with_suffix(&target.suffix),
        stop.clone(),
    ));
    let pool = target.pool.clone();
    let tokens: TokenSource = Arc::new(move |courier| {
        let pool = pool.clone();
        async move {
            create_token(&pool, Role::Courier, Some(&courier), &[])
                .await
                .map_err(anyhow::Error::from)
        }
        .boxed()
    });
    let config = SimConfig {
        city: city_config(options, tag, clock.now()),
        couriers: courier_options(options),
        max_orders: None,
    };
    let sim_stop = stop.child_token();
    let mut handle = sim::run_couriers(
        config,
        Endpoints {
            base: target.base.clone(),
            osmand: target.osmand.clone(),
            staff_token: staff.clone(),
        },
        tokens,
        clock,
        sim_stop.clone(),
    );
    // The fleet comes on shift first, as a real one does before lunch; then the kitchens open.
    let warming = Instant::now();
    let warmup_bar = progress_bar(
        options.progress,
        Duration::from_secs(options.couriers as u64),
    );
    while handle.stats().couriers_on_shift < options.couriers as u64
        && warming.elapsed() < WARMUP_LIMIT
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
        warmup_bar.set_position(handle.stats().couriers_on_shift);
        warmup_bar.set_message("couriers on shift");
    }
    warmup_bar.finish_and_clear();
    anyhow::ensure!(
        handle.stats().couriers_on_shift == options.couriers as u64,
        "only {} of {} couriers came on shift within {WARMUP_LIMIT:?}",
        handle.stats().couriers_on_shift,
        options.couriers
    );
    // A few seconds of positions, so every courier has a known place when orders come.
    tokio::time::sleep(WARMUP_POSITIONS).await;
    let warmup = warming.elapsed();
    let started = Instant::now();
    handle.start_kitchens(kitchen, city_config(options, tag, clock.now()).demand, None);

    // Sampling: the service's metrics and process every second, a sample every five.
    let sampled = Arc::new(Mutex::new(Sampled::default()));
    let sampler = {
        let (sampled, watch, stop) = (sampled.clone(), watch.clone(), stop.clone());
        let (http, url, managed) = (
            http.clone(),
            format!("{}/metrics", target.base),
            target.managed.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut last_sample: Option<Instant> = None;
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                if let Some(m) = &managed {
                    m.sample();
                }
                let page = async {
                    http.get(&url)
                        .timeout(Duration::from_secs(2))
                        .send()
                        .await?
                        .text()
                        .await
                };
                let page = page.await;
                let mut s = lock(&sampled);
                if let Ok(text) = page {
                    s.totals.add(scrape::parse(&text));
                }
                if last_sample.is_none_or(|t| t.elapsed() >= SAMPLE_EVERY) {
                    last_sample = Some(Instant::now());
                    let sample = Sample {
                        t_s: started.elapsed().as_secs_f64(),
                        kpis: watch.kpis(),
                        scrape: s.totals.total(),
                    };
                    s.samples.push(sample);
                }
            }
        })
    };

    let faults = Arc::new(Mutex::new(Vec::<Happened>::new()));
    let window = Duration::from_secs_f64(options.minutes * 60.0 / options.speedup);
    let chaos_task = match (&target.managed, &target.proxy) {
        (Some(managed), Some(proxy)) if options.chaos => {
            let plan = chaos::schedule(options.seed, window);
            eprintln!(
                "city: chaos at {}",
                plan.iter()
                    .map(|p| format!("{:.0}s {:?}", p.at.as_secs_f64(), p.fault))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Some(tokio::spawn(chaos::run(
                plan,
                started,
                managed.clone(),
                proxy.clone(),
                faults.clone(),
                stop.clone(),
            )))
        }
        _ => None,
    };

    // The order window.
    let bar = progress_bar(options.progress, window);
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(500)).await;
        bar.set_position(started.elapsed().as_secs().min(window.as_secs()));
        bar.set_message(status_line(&handle.stats(), watch.kpis().as_ref()));
    }
    if let Some(task) = chaos_task {
        // Faults are all within the window; one still running finishes first.
        let _ = task.await;
    }
    let window_end = started.elapsed();

    // The drain: wait for every published order to end, then account for them.
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} draining: {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let drain_deadline =
        Instant::now() + Duration::from_secs_f64(options.drain_minutes * 60.0 / options.speedup);
    let mut outcomes;
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        bar.set_message(status_line(&handle.stats(), watch.kpis().as_ref()));
        let open = open_orders(&http, &target.base, &staff).await.unwrap_or(1);
        let out_of_time = Instant::now() >= drain_deadline;
        if open > 0 && !out_of_time {
            continue;
        }
        outcomes = outcome::fetch(
            &http,
            &target.base,
            &staff,
            handle.probe.published_orders(),
            8,
        )
        .await
        .context("looking up the orders")?;
        let k = outcome::kpis(&outcomes);
        if k.lost == 0 || out_of_time {
            break;
        }
        bar.set_message(format!("{} orders without an outcome yet", k.lost));
    }
    let drained = started.elapsed() - window_end;
    bar.finish_and_clear();

    sim_stop.cancel();
    let stats = handle.stats();
    let probe = handle.probe.clone();
    handle.stopped().await;
    stop.cancel();
    let _ = sampler.await;
    while map_tasks.join_next().await.is_some() {}

    // The report.
    let k = outcome::kpis(&outcomes);
    let sampled = std::mem::take(&mut *lock(&sampled));
    let totals = sampled.totals.total();
    let mut latency = Histogram::default();
    for l in probe.latencies() {
        latency.record(l.latency.as_secs_f64() * 1e3);
    }
    let staleness = watch.staleness();
    let (map_frames, map_resyncs, map_reconnects, longest_gap) = watch.counts();
    let window_samples: Vec<&Sample> = sampled
        .samples
        .iter()
        .filter(|s| s.t_s <= window_end.as_secs_f64())
        .collect();
    let utilization: Vec<f64> = window_samples
        .iter()
        .filter_map(|s| {
            let k = s.kpis.as_ref()?;
            (k.couriers_on_shift > 0).then(|| {
                (k.couriers_on_shift.saturating_sub(k.couriers_idle)) as f64
                    / k.couriers_on_shift as f64
            })
        })
        .collect();
    let faults = lock(&faults).clone();
    let report = CityReport {
        orders_placed: k.orders_placed,
        delivered: k.delivered,
        cancelled: k.cancelled,
        failed: k.failed,
        lost: k.lost,
        duplicated_deliveries: k.duplicated_deliveries,
        ctd_mean: k.ctd_mean.map(round2),
        ctd_p90: k.ctd_p90.map(round2),
        r2p_mean: k.r2p_mean.map(round2),
        late_share: k.late_share.map(round4),
        reassignments_per_order: k.reassignments_per_order.map(round4),
        utilization: crate::stats::mean(&utilization).map(round4),
        positions_stored: 0,
        positions_sent: stats.positions_sent,
        positions_acknowledged: stats.positions_stored,
        tracker: totals.counters.clone(),
        replans: totals.replans as u64,
        replan_p99_ms: totals.replan_quantile_ms(0.99).map(round1),
        replan_mean_ms: totals.replan_mean_ms().map(round1),
        order_to_route_p50_ms: latency.quantile(0.5).map(round1),
        order_to_route_p99_ms: latency.quantile(0.99).map(round1),
        order_to_route_max_ms: latency.max().map(round1),
        routed_orders: latency.len(),
        order_to_route_stages: stages(&probe.latencies(), &outcomes, epoch, options.speedup),
        map_staleness_p50_ms: staleness.quantile(0.5).map(round1),
        map_staleness_p99_ms: staleness.quantile(0.99).map(round1),
        map_positions: staleness.len(),
        map_frames,
        map_resyncs,
        map_reconnects,
        map_longest_gap_ms: round1(longest_gap.as_secs_f64() * 1e3),
        server_rss_mb: None,
        server_cpu_s: None,
        server_starts: 0,
        pickup_etas: stats.pickup_etas,
        events_sent: stats.events_sent,
        events_refused: stats.events_refused,
        courier_reconnects: stats.reconnects,
        shifts_ended: stats.shifts_ended,
        faults: faults.clone(),
        couriers: options.couriers,
        minutes: options.minutes,
        speedup: options.speedup,
        seed: options.seed,
        orders_per_s: options.orders_per_s,
        peak_per_s: options.peak_per_s.max(options.orders_per_s),
        map_clients: options.map_clients,
        warmup_s: round1(warmup.as_secs_f64()),
        wall_s: round1(window_end.as_secs_f64()),
        drain_s: round1(drained.as_secs_f64()),
    };
    if let Some(path) = &options.plot {
        let panels = panels(
            &sampled.samples,
            &outcomes,
            &probe.latencies(),
            started,
            &watch.bins(),
            clock,
            options.speedup,
        );
        let title = format!(
            "city: {} couriers, {} min at {}x, {:.2} orders/s (peaks {:.2}){}",
            options.couriers,
            options.minutes,
            options.speedup,
            options.orders_per_s,
            options.peak_per_s.max(options.orders_per_s),
            if options.chaos { ", chaos" } else { "" }
        );
        let minutes = started.elapsed().as_secs_f64() / 60.0;
        if let Err(error) = plot::draw(path, &title, minutes, &panels, &faults) {
            eprintln!("city: the chart was not drawn: {error:#}");
        }
    }
    Ok(report)
}

/// Open orders the service lists (any status before an outcome), at most one page's worth.
async fn open_orders(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<usize> {
    let page: serde_json::Value = http
        .get(format!(
            "{base}/v1/orders?status=created,assigned,picked_up&limit=200"
        ))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(page["orders"].as_array().map_or(0, Vec::len))
}

fn progress_bar(visible: bool, window: Duration) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(window.as_secs().max(1));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {pos}/{len}s {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

fn status_line(stats: &sim::SimStats, kpis: Option<&Kpis>) -> String {
    let mut line = format!(
        "placed {} delivered {} positions {}",
        stats.orders_placed, stats.delivered, stats.positions_stored
    );
    if let Some(k) = kpis {
        line.push_str(&format!(
            " | open {} unassigned {} idle {}/{}",
            k.open_orders, k.unassigned, k.couriers_idle, k.couriers_on_shift
        ));
    }
    line
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The chart's panels from the run's samples.
fn panels(
    samples: &[Sample],
    outcomes: &[outcome::OrderOutcome],
    latencies: &[sim::RouteLatency],
    started: Instant,
    bins: &[map_clients::Bin],
    clock: Clock,
    speedup: f64,
) -> Vec<plot::Panel> {
    const BLUE: RGBColor = RGBColor(31, 119, 180);
    const ORANGE: RGBColor = RGBColor(255, 127, 14);
    const GREEN: RGBColor = RGBColor(44, 160, 44);
    const PURPLE: RGBColor = RGBColor(148, 103, 189);
    let minutes = |t_s: f64| t_s / 60.0;
    let kpi_line = |label: &str, color, f: fn(&Kpis) -> u64| plot::Line {
        label: label.into(),
        color,
        points: samples
            .iter()
            .filter_map(|s| Some((minutes(s.t_s), f(s.kpis.as_ref()?) as f64)))
            .collect(),
    };
    // Click-to-door of the orders delivered in each minute, placed on the wall axis.
    let now_sim = clock.now();
    let wall_of = |t: OffsetDateTime| {
        let ago_s = (now_sim - t).as_seconds_f64() / speedup;
        started.elapsed().as_secs_f64() - ago_s
    };
    let mut by_minute: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
    for o in outcomes.iter().filter(|o| o.status == "delivered") {
        if let (Some(placed), Some(delivered)) = (o.placed_at, o.delivered_at) {
            let minute = (wall_of(delivered) / 60.0).floor() as i64;
            by_minute
                .entry(minute)
                .or_default()
                .push((delivered - placed).as_seconds_f64() / 60.0);
        }
    }
    let ctd: Vec<(f64, f64)> = by_minute
        .iter()
        .map(|(m, v)| (*m as f64 + 0.5, v.iter().sum::<f64>() / v.len() as f64))
        .collect();
    // Replan time per sample interval, from the histogram's growth.
    let mut replan_mean = Vec::new();
    let mut replan_p99 = Vec::new();
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0].scrape, &pair[1].scrape);
        let delta = Scrape {
            replans: b.replans - a.replans,
            buckets: b
                .buckets
                .iter()
                .map(|(k, v)| (*k, v - a.buckets.get(k).copied().unwrap_or(0.0)))
                .collect(),
            sum_s: b.sum_s - a.sum_s,
            count: b.count - a.count,
            counters: Default::default(),
        };
        if delta.count > 0.0 {
            let t = minutes(pair[1].t_s);
            if let Some(m) = delta.replan_mean_ms() {
                replan_mean.push((t, m));
            }
            if let Some(p) = delta.replan_quantile_ms(0.99) {
                replan_p99.push((t, p));
            }
        }
    }
    // Order-to-route p99 per 30 s, and map staleness p99 per bin.
    let mut route_bins: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
    for l in latencies {
        let bin = l.at.saturating_duration_since(started).as_secs() / 30;
        route_bins
            .entry(bin)
            .or_default()
            .push(l.latency.as_secs_f64() * 1e3);
    }
    let route_p99: Vec<(f64, f64)> = route_bins
        .iter()
        .filter_map(|(b, v)| Some(((*b as f64 + 0.5) * 0.5, quantile(v, 0.99)?)))
        .collect();
    let bin_min = MapWatch::BIN.as_secs_f64() / 60.0;
    let staleness_p99: Vec<(f64, f64)> = bins
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            let v: Vec<f64> = b.samples.iter().map(|x| f64::from(*x)).collect();
            Some(((i as f64 + 0.5) * bin_min, quantile(&v, 0.99)?))
        })
        .collect();
    vec![
        plot::Panel {
            title: "Open orders and idle couriers (map KPIs)".into(),
            unit: "count".into(),
            lines: vec![
                kpi_line("open orders", BLUE, |k| k.open_orders),
                kpi_line("unassigned", PURPLE, |k| k.unassigned),
                kpi_line("idle couriers", GREEN, |k| k.couriers_idle),
            ],
        },
        plot::Panel {
            title: "Click-to-door of the orders delivered each minute".into(),
            unit: "minutes".into(),
            lines: vec![plot::Line {
                label: "click-to-door (mean)".into(),
                color: BLUE,
                points: ctd,
            }],
        },
        plot::Panel {
            title: "Replan time".into(),
            unit: "ms".into(),
            lines: vec![
                plot::Line {
                    label: "mean".into(),
                    color: BLUE,
                    points: replan_mean,
                },
                plot::Line {
                    label: "p99".into(),
                    color: ORANGE,
                    points: replan_p99,
                },
            ],
        },
        plot::Panel {
            title: "Latency: kitchen publish to courier route; map staleness".into(),
            unit: "ms".into(),
            lines: vec![
                plot::Line {
                    label: "order-to-route p99 (30 s)".into(),
                    color: ORANGE,
                    points: route_p99,
                },
                plot::Line {
                    label: "map staleness p99 (10 s)".into(),
                    color: GREEN,
                    points: staleness_p99,
                },
            ],
        },
    ]
}
