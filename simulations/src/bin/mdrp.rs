//! `mdrp`: replays one Grubhub MDRP instance under a dispatch policy, writes the evaluator's three
//! solution files into `--out` and prints the run's metrics as one JSON line.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use simulations::mdrp::{self, Greedy, Instance, Metrics};

#[derive(Parser)]
#[command(about = "Replay a Grubhub MDRP instance and write the evaluator's solution files")]
struct Args {
    /// Instance directory (orders.txt, couriers.txt, restaurants.txt, instance_parameters.txt).
    #[arg(long)]
    instance: PathBuf,
    /// Output directory for the solution files (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Dispatch policy.
    #[arg(long, value_enum, default_value_t = PolicyKind::Optimizer)]
    policy: PolicyKind,
    /// Minutes between decision epochs.
    #[arg(long, default_value_t = 1)]
    cycle_minutes: i64,
    /// Optimizer: search iterations per replan.
    #[arg(long, default_value_t = 100)]
    iterations: u64,
    /// Optimizer: where idle couriers without a planned trip wait.
    #[arg(long, value_enum, default_value_t = Positioning::Demand)]
    positioning: Positioning,
    /// Greedy: consider an order once its ready time is at most this many minutes away.
    #[arg(long, default_value_t = Greedy::default().horizon)]
    horizon: i64,
    /// Greedy: most orders per trip (1 disables bundling).
    #[arg(long, default_value_t = Greedy::default().bundle_limit)]
    bundle_limit: usize,
    /// Greedy: orders of one restaurant ready within this many minutes may share a trip.
    #[arg(long, default_value_t = Greedy::default().bundle_window)]
    bundle_window: i64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Positioning {
    /// At the start point or last drop-off (the MDRP base rules).
    Stay,
    /// Drive to a nearby restaurant with recent orders (prepositioning moves).
    Demand,
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyKind {
    /// `optimizer::replan`, the dispatcher's engine.
    Optimizer,
    /// Nearest-available baseline.
    Greedy,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let instance = Instance::read(&args.instance).context("reading the instance")?;
    let mut policy: Box<dyn mdrp::Policy> = match args.policy {
        PolicyKind::Greedy => Box::new(Greedy {
            horizon: args.horizon,
            bundle_window: args.bundle_window,
            bundle_limit: args.bundle_limit,
        }),
        PolicyKind::Optimizer => {
            let mut p = mdrp::OptimizerPolicy::new(args.iterations);
            p.positioning = match args.positioning {
                Positioning::Stay => mdrp::optimizer_policy::Positioning::Stay,
                Positioning::Demand => mdrp::optimizer_policy::Positioning::Demand,
            };
            Box::new(p)
        }
    };
    let outcome = mdrp::simulate(&instance, policy.as_mut(), args.cycle_minutes)
        .context("replaying the instance")?;
    mdrp::report::write_solution(&instance, &outcome, &args.out)?;
    let mut metrics = Metrics::measure(&instance, &outcome);
    metrics.wall_s = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::to_string(&metrics).context("serialising the metrics")?
    );
    Ok(())
}
