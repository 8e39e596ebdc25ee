//! `lilim`: solves Li & Lim PDPTW instances with the optimizer under a time or iteration budget
//! and prints `instance,vehicles,distance,seconds`; with `--solutions DIR` also writes each
//! solution in SINTEF form. Every solution is re-checked by the optimizer's independent checker.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use optimizer::{
    Budget, CheckRules, Objective, Problem, SolverConfig, StraightLine, check_plan, solve,
};
use simulations::lilim;

#[derive(Parser)]
#[command(about = "Solve Li & Lim PDPTW instances")]
struct Args {
    /// Time limit per instance, in seconds.
    #[arg(long, conflicts_with = "iterations")]
    seconds: Option<f64>,
    /// Iteration limit per instance instead of a time limit (repeatable for a seed).
    #[arg(long)]
    iterations: Option<u64>,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Tuning: annealing start and end temperatures, relative to the cost per order
    /// (default 10,0.1).
    #[arg(long, value_parser = parse_pair)]
    temperature: Option<(f64, f64)>,
    /// Tuning: share of the budget for removing routes.
    #[arg(long)]
    route_phase: Option<f64>,
    /// Folder for SINTEF-form solution files.
    #[arg(long)]
    solutions: Option<PathBuf>,
    /// Instance files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Annealing temperatures tuned on the 200 set (relative to the cost per request): hotter than
/// the library default, which suits the live objective.
const LILIM_TEMPERATURE: (f64, f64) = (10.0, 0.1);

fn parse_pair(text: &str) -> Result<(f64, f64), String> {
    let (a, b) = text.split_once(',').ok_or("expected START,END")?;
    Ok((
        a.trim().parse().map_err(|e| format!("{e}"))?,
        b.trim().parse().map_err(|e| format!("{e}"))?,
    ))
}

struct Clock {
    start: Instant,
    seconds: f64,
}

impl Budget for Clock {
    fn used(&self) -> f64 {
        self.start.elapsed().as_secs_f64() / self.seconds
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.seconds.is_none() && args.iterations.is_none() {
        bail!("give --seconds S or --iterations N");
    }
    if let Some(dir) = &args.solutions {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    println!("instance,vehicles,distance,seconds");
    for file in &args.files {
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .context("instance file name")?
            .to_string();
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let instance =
            lilim::parse(&name, &text).with_context(|| format!("parsing {}", file.display()))?;
        let start = Instant::now();
        let travel = Arc::new(StraightLine::exact());
        let problem = Problem::builder(&instance.couriers, &instance.orders, travel.clone())
            .objective(Objective::vehicles_then_distance())
            .build()?;
        let defaults = SolverConfig::default();
        let config = SolverConfig {
            seed: args.seed,
            max_iterations: args.iterations,
            islands: rayon::current_num_threads().max(1),
            temperature: args.temperature.unwrap_or(LILIM_TEMPERATURE),
            route_phase: args.route_phase.unwrap_or(defaults.route_phase),
            ..defaults
        };
        // Leave a little of the budget for checking and writing.
        let clock = Clock {
            start,
            seconds: args.seconds.map_or(f64::INFINITY, |s| (s - 0.05).max(0.01)),
        };
        let solved = solve(&problem, &config, &clock);
        let seconds = start.elapsed().as_secs_f64();
        let rules = CheckRules {
            hard_deadlines: true,
            ..CheckRules::default()
        };
        if let Err(errors) = check_plan(
            &solved.plan,
            &instance.couriers,
            &instance.orders,
            travel.as_ref(),
            &rules,
        ) {
            bail!("{name}: the plan fails the checker: {}", errors.join("; "));
        }
        if !solved.plan.unassigned.is_empty() {
            bail!(
                "{name}: {} requests could not be served",
                solved.plan.unassigned.len()
            );
        }
        println!(
            "{name},{},{:.2},{seconds:.2}",
            solved.stats.vehicles, solved.stats.distance
        );
        eprintln!(
            "{name}: iterations {} routes removed {} improvements {}",
            solved.stats.iterations, solved.stats.routes_removed, solved.stats.improvements
        );
        if let Some(dir) = &args.solutions {
            let path = dir.join(format!("{name}.sol"));
            std::fs::write(&path, lilim::sintef(&instance, &solved.plan)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}
