//! `city --couriers N --minutes M [--speedup X] [--server URL] [--map-clients N] [--chaos]
//! [--plot FILE]`: the whole system through a simulated day over its real interfaces (see
//! `simulations::city`). Prints one JSON line of KPIs on stdout and a progress bar on stderr.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use simulations::city::{CityOptions, run};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Parser, Debug)]
#[command(about = "Runs a simulated city against the dispatcher and prints its KPIs")]
struct Args {
    /// Couriers in the fleet.
    #[arg(long, default_value_t = 200)]
    couriers: usize,
    /// Simulated minutes during which kitchens place orders (the fleet then finishes them).
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Simulated seconds per wall second.
    #[arg(long, default_value_t = 1.0)]
    speedup: f64,
    /// A running `dispatcher serve` (`http://host:port`); without it the city starts one on
    /// a fresh database (the `dispatcher` binary beside this one, or --dispatcher).
    #[arg(long)]
    server: Option<String>,
    /// With --server: its OsmAnd endpoint (default: its host, port 5055).
    #[arg(long, requires = "server")]
    osmand: Option<String>,
    /// With --server: its TOPOLOGY_SUFFIX.
    #[arg(long, requires = "server")]
    topology_suffix: Option<String>,
    /// With --server and --speedup: its CLOCK_EPOCH (RFC 3339).
    #[arg(long, requires = "server")]
    clock_epoch: Option<String>,
    /// Staff map clients holding /v1/map/ws open.
    #[arg(long, default_value_t = 1)]
    map_clients: usize,
    /// SIGKILL and restart the service three times, restart RabbitMQ's app once, cut
    /// PostgreSQL for 10 s once (only when the city starts the service).
    #[arg(long)]
    chaos: bool,
    /// Writes an SVG chart of the run.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Seeds the city, the demand and the faults.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Mean orders per second while orders are placed (default: 1.5 per 2,000 couriers).
    #[arg(long)]
    orders_per_s: Option<f64>,
    /// Orders per second at the top of the two peaks (default: twice the mean; equal to the
    /// mean for a flat rate).
    #[arg(long)]
    peak_per_s: Option<f64>,
    /// Simulated minutes to wait after the last order for every order to end.
    #[arg(long, default_value_t = 60.0)]
    drain_minutes: f64,
    /// The dispatcher binary to start.
    #[arg(long)]
    dispatcher: Option<PathBuf>,
    /// Keep the run's database afterwards.
    #[arg(long)]
    keep_database: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        service::telemetry::init(false);
    }
    let clock_epoch = args
        .clock_epoch
        .as_deref()
        .map(|e| OffsetDateTime::parse(e, &Rfc3339))
        .transpose()
        .context("--clock-epoch is not an RFC 3339 time")?;
    // 1.5 orders/s for 2,000 couriers: the rate a fleet serves with room for peaks of twice it.
    let orders_per_s = args
        .orders_per_s
        .unwrap_or(args.couriers as f64 * 1.5 / 2_000.0);
    let peak_per_s = args.peak_per_s.unwrap_or(orders_per_s * 2.0);
    let server_env = std::env::vars()
        .filter(|(k, _)| k.starts_with("PLANNER_") || k == "DISPATCHER_LOG")
        .map(|(k, v)| {
            if k == "DISPATCHER_LOG" {
                ("RUST_LOG".to_string(), v)
            } else {
                (k, v)
            }
        })
        .collect();
    let options = CityOptions {
        couriers: args.couriers,
        minutes: args.minutes,
        speedup: args.speedup,
        server: args.server,
        osmand: args.osmand,
        topology_suffix: args.topology_suffix,
        clock_epoch,
        map_clients: args.map_clients,
        chaos: args.chaos,
        plot: args.plot,
        seed: args.seed,
        orders_per_s,
        peak_per_s,
        drain_minutes: args.drain_minutes,
        dispatcher: args.dispatcher,
        database_url: service::testing::database_url(),
        amqp_url: service::testing::amqp_url(),
        progress: !args.quiet,
        keep_database: args.keep_database,
        server_env,
    };
    let report = run(options).await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
