//! `roads-compare`: our road network against a reference on the same extract, and straight lines
//! against our road network. Prints one JSON line:
//!
//! - with `--osrm URL` (an `osrm-routed` serving the same extract, car profile): the relative
//!   difference of our car travel times from OSRM's on `--pairs` random pairs (median and p90 of
//!   the absolute difference, the median of the signed one), and the largest differences with
//!   their places, to explain; `--osrm-flat URL` does the same against an OSRM whose profile has
//!   no turn penalties, to tell how much of the difference the turns are;
//! - for each vehicle kind: how wrong the straight-line model (detour `StraightLine::CITY_DETOUR`, 1.3) is
//!   against our road times on the same pairs (median and p90 of the absolute relative
//!   difference), and the detour factor fitted from the road graph (the median over the pairs
//!   of road time × the kind's speed / great-circle distance), with the error it leaves.
//!
//! Pairs are drawn uniformly in the extract's box (shrunk by 5% on each side) from `--seed`;
//! pairs either side cannot route, or shorter than `--min-m` metres apart, are left out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use optimizer::model::{Coordinates, Location, Vehicle, VehicleKind};
use optimizer::travel::table_of;
use optimizer::{Random, StraightLine, TravelModel, TravelTable};
use roads::{Osrm, RoadNetwork};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "Compare road travel times with OSRM, and straight lines with the roads")]
struct Args {
    /// The OpenStreetMap extract.
    #[arg(long)]
    extract: PathBuf,
    /// An osrm-routed serving the same extract with the car profile.
    #[arg(long)]
    osrm: Option<String>,
    /// An osrm-routed serving it with a car profile without turn penalties.
    #[arg(long)]
    osrm_flat: Option<String>,
    /// Pairs to compare.
    #[arg(long, default_value_t = 400)]
    pairs: usize,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Pairs closer than this (great circle, metres) are left out.
    #[arg(long, default_value_t = 200.0)]
    min_m: f64,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// Median and p90 of the absolute values, and the median of the signed values.
fn summary(diffs: &[f64]) -> Value {
    let mut abs: Vec<f64> = diffs.iter().map(|d| d.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let mut signed = diffs.to_vec();
    signed.sort_by(f64::total_cmp);
    json!({
        "pairs": diffs.len(),
        "median_abs": quantile(&abs, 0.5),
        "p90_abs": quantile(&abs, 0.9),
        "median_signed": quantile(&signed, 0.5),
    })
}

/// One table over `sources ++ destinations`, read as pairs `(sources[k], destinations[k])`.
fn pair_times(
    model: &Arc<dyn TravelModel>,
    sources: &[Location],
    destinations: &[Location],
    vehicle: Vehicle,
) -> anyhow::Result<Vec<f64>> {
    let places: Vec<Location> = sources.iter().chain(destinations).copied().collect();
    let table: Arc<dyn TravelTable> =
        table_of(model, &places, &[vehicle]).context("asking for the travel table")?;
    let n = sources.len();
    Ok((0..n).map(|k| table.duration(0, k, n + k)).collect())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let graph = roads::osm::read_pbf(&args.extract).context("reading the extract")?;
    let nodes = graph.nodes();
    let (mut lat0, mut lat1, mut lon0, mut lon1) = (90.0f64, -90.0f64, 180.0f64, -180.0f64);
    for c in nodes {
        lat0 = lat0.min(c.lat());
        lat1 = lat1.max(c.lat());
        lon0 = lon0.min(c.lon());
        lon1 = lon1.max(c.lon());
    }
    let (dlat, dlon) = ((lat1 - lat0) * 0.05, (lon1 - lon0) * 0.05);
    let network = RoadNetwork::new(graph, args.extract.display().to_string());
    let prepare_s = started.elapsed().as_secs_f64();
    let ours: Arc<dyn TravelModel> = Arc::new(network);
    let mut rng = Random::new(args.seed);
    let mut point = || -> Location {
        let lat = lat0 + dlat + rng.unit() * (lat1 - lat0 - 2.0 * dlat);
        let lon = lon0 + dlon + rng.unit() * (lon1 - lon0 - 2.0 * dlon);
        Coordinates::parse(lat, lon)
            .expect("inside the extract")
            .into()
    };
    let (mut sources, mut destinations) = (Vec::new(), Vec::new());
    while sources.len() < args.pairs {
        let (a, b) = (point(), point());
        if StraightLine::straight_m(a, b) >= args.min_m {
            sources.push(a);
            destinations.push(b);
        }
    }
    let car = Vehicle::of_kind(VehicleKind::Car);
    let our_car = pair_times(&ours, &sources, &destinations, car)?;
    let mut report = json!({
        "extract": args.extract.display().to_string(),
        "network": ours.describe(),
        "prepare_s": prepare_s,
        "pairs_drawn": args.pairs,
        "seed": args.seed,
    });
    let mut against = |name: &str, url: &str| -> anyhow::Result<()> {
        let osrm: Arc<dyn TravelModel> = Arc::new(Osrm::new(url));
        let theirs = pair_times(&osrm, &sources, &destinations, car)?;
        let mut diffs = Vec::new();
        let mut rows = Vec::new();
        let mut unroutable = (0, 0);
        for k in 0..sources.len() {
            let (a, b) = (our_car[k], theirs[k]);
            unroutable.0 += usize::from(!a.is_finite());
            unroutable.1 += usize::from(!b.is_finite());
            if a.is_finite() && b.is_finite() && b > 0.0 {
                let d = (a - b) / b;
                diffs.push(d);
                rows.push((d, k, a, b));
            }
        }
        rows.sort_by(|x, y| y.0.abs().total_cmp(&x.0.abs()));
        let at = |l: Location| match l {
            Location::Wgs84(c) => json!([c.lat(), c.lon()]),
            Location::Planar(_) => Value::Null,
        };
        let largest: Vec<Value> = rows
            .iter()
            .take(8)
            .map(|&(d, k, a, b)| {
                json!({
                    "from": at(sources[k]), "to": at(destinations[k]),
                    "ours_s": a, "osrm_s": b, "relative": d,
                    "straight_m": StraightLine::straight_m(sources[k], destinations[k]),
                })
            })
            .collect();
        let mut s = summary(&diffs);
        s["unroutable_ours"] = json!(unroutable.0);
        s["unroutable_osrm"] = json!(unroutable.1);
        s["largest"] = json!(largest);
        report[name] = s;
        Ok(())
    };
    if let Some(url) = &args.osrm {
        against("car_vs_osrm", url)?;
    }
    if let Some(url) = &args.osrm_flat {
        against("car_vs_osrm_without_turn_penalties", url)?;
    }
    let straight: Arc<dyn TravelModel> = Arc::new(StraightLine::new(StraightLine::CITY_DETOUR));
    let mut kinds = serde_json::Map::new();
    for kind in VehicleKind::ALL {
        let vehicle = Vehicle::of_kind(kind);
        let road = pair_times(&ours, &sources, &destinations, vehicle)?;
        let line = pair_times(&straight, &sources, &destinations, vehicle)?;
        let mut ratios = Vec::new();
        let mut errors = Vec::new();
        for k in 0..sources.len() {
            if road[k].is_finite() && road[k] > 0.0 {
                errors.push((line[k] - road[k]) / road[k]);
                let gc = StraightLine::straight_m(sources[k], destinations[k]);
                ratios.push(road[k] * vehicle.speed_mps() / gc);
            }
        }
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let fitted = quantile(&sorted, 0.5);
        let refit: Vec<f64> = ratios.iter().map(|r| fitted / r - 1.0).collect();
        kinds.insert(
            kind.as_str().into(),
            json!({
                "straight_line_detour": StraightLine::CITY_DETOUR,
                "straight_line_vs_road": summary(&errors),
                "fitted_detour": fitted,
                "fitted_vs_road": summary(&refit),
            }),
        );
    }
    report["straight_lines"] = Value::Object(kinds);
    println!("{report}");
    Ok(())
}
