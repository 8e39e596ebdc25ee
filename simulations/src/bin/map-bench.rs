//! `map-bench --couriers N --clients C --seconds S`: how the map socket fans positions out.
//!
//! In one process: a `Dispatch` on the in-memory store with N couriers registered and on
//! shift, a `LatestPositions`, the `MapFeed`, and `/v1/map/ws` served on a loopback port with a
//! static staff token. Every courier moves once a second (offered to `LatestPositions` with the
//! current time as fix time; the bench remembers when it offered each (courier, fix time)). C
//! real WebSocket clients, on a runtime of their own thread, read the frames; each position
//! found in a delta is matched to its offer, so the delay is offer-to-arrival at the client.
//!
//! CPU is measured as process CPU time (`/proc/self/stat`) in two phases: a baseline with no
//! client (couriers moving, feed running), then with the clients; the clients' own thread time
//! (`/proc/thread-self/stat`) is subtracted, so `cpu_cores_feed` is the server-side cost of
//! serving the clients above the baseline. Prints one JSON line; every figure is measured.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use dispatcher::api::map_ws::{MapState, router};
use dispatcher::dispatch::{Dispatch, NewCourier};
use dispatcher::live::map::{MapFeed, MapOptions};
use dispatcher::records::Actor;
use dispatcher::store::MemoryStore;
use futures::StreamExt;
use optimizer::model::{Coordinates, CourierId, VehicleKind};
use serde::Deserialize;
use service::auth::{Principal, StaticTokens};
use simulations::stats::{cpu_seconds, quantile};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracker::{LatestPosition, LatestPositions};

#[derive(Parser, Debug)]
#[command(about = "Measures the map socket's fan-out of courier positions")]
struct Args {
    /// Couriers moving at 1 Hz.
    #[arg(long, default_value_t = 2_000)]
    couriers: usize,
    /// WebSocket clients reading the map.
    #[arg(long, default_value_t = 20)]
    clients: usize,
    /// Seconds measured with the clients.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Seconds of the baseline without clients.
    #[arg(long, default_value_t = 10)]
    baseline_seconds: u64,
}

/// Offer instants by (courier index, fix time in ns since the epoch).
type Offers = Mutex<HashMap<(u32, i128), Instant>>;

#[derive(Deserialize)]
struct FrameIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    couriers: Vec<CourierIn>,
}

#[derive(Deserialize)]
struct CourierIn {
    id: String,
    position: Option<PositionIn>,
}

#[derive(Deserialize)]
struct PositionIn {
    at: String,
}

/// What one client saw while measuring.
#[derive(Default)]
struct ClientReport {
    delays_ms: Vec<f64>,
    frames: u64,
    bytes: u64,
}

/// The couriers' random walk: each one once a second, spread over 10 ms slots.
async fn move_couriers(
    positions: Arc<LatestPositions>,
    ids: Vec<CourierId>,
    offers: Arc<Offers>,
    moved: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let n = ids.len();
    let mut coords: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let a = i as f64 * 0.618_034;
            (
                60.15 + (a.fract()) * 0.06,
                24.90 + ((a * 7.0).fract()) * 0.10,
            )
        })
        .collect();
    let slots = 100;
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / slots as u64));
    let mut slot = 0usize;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (from, to) = (slot * n / slots, (slot + 1) * n / slots);
        slot = (slot + 1) % slots;
        for i in from..to {
            let heading = (i as f64 * 37.0) % 360.0;
            let (lat, lon) = &mut coords[i];
            *lat += 4e-5 * heading.to_radians().cos();
            *lon += 8e-5 * heading.to_radians().sin();
            if !(60.10..60.25).contains(lat) || !(24.80..25.10).contains(lon) {
                (*lat, *lon) = (60.17, 24.94);
            }
            let Ok(point) = Coordinates::parse(*lat, *lon) else {
                continue;
            };
            let at = OffsetDateTime::now_utc();
            let offered = Instant::now();
            let p = LatestPosition {
                courier_id: ids[i].clone(),
                coords: point,
                at,
                speed_mps: Some(5.0),
                heading_deg: Some(heading as f32),
                accuracy_m: Some(5.0),
            };
            offers
                .lock()
                .expect("the offers lock is never poisoned")
                .insert((i as u32, at.unix_timestamp_nanos()), offered);
            if positions.offer(p) == tracker::latest::Offer::Moved {
                moved.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One client: connects, waits for its snapshot, then records deltas while `measuring`.
async fn client(
    url: String,
    index: Arc<HashMap<String, u32>>,
    offers: Arc<Offers>,
    measuring: Arc<AtomicBool>,
    stop: CancellationToken,
    ready: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<ClientReport> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .context("connecting to the map socket")?;
    let mut report = ClientReport::default();
    let mut got_snapshot = false;
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => break,
            m = socket.next() => match m {
                Some(m) => m.context("reading the map socket")?,
                None => anyhow::bail!("the server closed the map socket"),
            },
        };
        let Message::Text(text) = message else {
            continue;
        };
        let arrived = Instant::now();
        let frame: FrameIn = serde_json::from_str(&text).context("a map frame")?;
        if frame.kind == "snapshot" && !got_snapshot {
            got_snapshot = true;
            let _ = ready.send(()).await;
            continue;
        }
        if !measuring.load(Ordering::Relaxed) {
            continue;
        }
        report.frames += 1;
        report.bytes += text.len() as u64;
        if frame.kind != "delta" {
            continue;
        }
        let offers = offers.lock().expect("the offers lock is never poisoned");
        for c in frame.couriers {
            let (Some(p), Some(i)) = (c.position, index.get(&c.id)) else {
                continue;
            };
            let Ok(at) = OffsetDateTime::parse(&p.at, &Rfc3339) else {
                continue;
            };
            if let Some(offered) = offers.get(&(*i, at.unix_timestamp_nanos())) {
                report
                    .delays_ms
                    .push(arrived.duration_since(*offered).as_secs_f64() * 1e3);
            }
        }
    }
    Ok(report)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stop = CancellationToken::new();
    let dispatch = Dispatch::load(Arc::new(MemoryStore::new()))
        .await
        .context("loading the in-memory state")?;
    let mut ids = Vec::with_capacity(args.couriers);
    for i in 0..args.couriers {
        let c = dispatch
            .register_courier(NewCourier {
                name: format!("Courier {i}"),
                vehicle: VehicleKind::Scooter,
                device_id: format!("bench-{i}"),
                capacity: None,
            })
            .await
            .context("registering a courier")?;
        dispatch
            .set_shift(&c.id, true, Actor::System)
            .await
            .context("starting a shift")?;
        ids.push(c.id);
    }
    let index: Arc<HashMap<String, u32>> = Arc::new(
        ids.iter()
            .enumerate()
            .map(|(i, id)| (id.to_string(), i as u32))
            .collect(),
    );
    let positions = Arc::new(LatestPositions::new());
    let feed = MapFeed::new(MapOptions::default());
    let feed_task = tokio::spawn(feed.clone().run(
        dispatch.clone(),
        positions.clone(),
        stop.clone(),
    ));
    let tokens = StaticTokens(HashMap::from([("bench".to_string(), Principal::Staff)]));
    let app = router(MapState {
        feed: feed.clone(),
        verifier: Arc::new(tokens),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(service::server::serve(listener, app, 10_000, stop.clone()));

    let offers: Arc<Offers> = Arc::default();
    let moved = Arc::new(AtomicU64::new(0));
    let mover = tokio::spawn(move_couriers(
        positions.clone(),
        ids,
        offers.clone(),
        moved.clone(),
        stop.clone(),
    ));

    // Warm up (every courier has a position), then the baseline without clients.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu0 = cpu_seconds("/proc/self/stat")?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.baseline_seconds)).await;
    let baseline_cores = (cpu_seconds("/proc/self/stat")? - cpu0) / t0.elapsed().as_secs_f64();

    // The clients, on a thread and runtime of their own (so their CPU can be told apart).
    let measuring = Arc::new(AtomicBool::new(false));
    let client_stop = CancellationToken::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(args.clients.max(1));
    let clients_thread = {
        let (index, offers, measuring, client_stop) = (
            index.clone(),
            offers.clone(),
            measuring.clone(),
            client_stop.clone(),
        );
        let url = format!("ws://{addr}/v1/map/ws?token=bench");
        let n = args.clients;
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || -> anyhow::Result<Vec<ClientReport>> {
            // `/proc/thread-self` links to `PID/task/TID`: the main thread reads this
            // thread's CPU time there.
            let me = std::fs::read_link("/proc/thread-self").context("finding the thread id")?;
            let _ = tid_tx.send(format!("/proc/{}/stat", me.display()));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("the clients' runtime")?;
            rt.block_on(async move {
                let tasks: Vec<_> = (0..n)
                    .map(|_| {
                        tokio::spawn(client(
                            url.clone(),
                            index.clone(),
                            offers.clone(),
                            measuring.clone(),
                            client_stop.clone(),
                            ready_tx.clone(),
                        ))
                    })
                    .collect();
                drop(ready_tx);
                let mut reports = Vec::new();
                for t in tasks {
                    reports.push(t.await.context("a client task")??);
                }
                Ok(reports)
            })
        });
        let stat = tid_rx.recv().context("the clients' thread started")?;
        (thread, stat)
    };
    let (clients_thread, clients_stat) = clients_thread;
    for _ in 0..args.clients {
        ready_rx
            .recv()
            .await
            .context("a client failed before its snapshot")?;
    }
    let clients_cpu_before = cpu_seconds(&clients_stat)?;
    let cpu1 = cpu_seconds("/proc/self/stat")?;
    let moved1 = moved.load(Ordering::Relaxed);
    let t1 = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t1.elapsed().as_secs_f64();
    let process_cpu = cpu_seconds("/proc/self/stat")? - cpu1;
    let clients_cpu = cpu_seconds(&clients_stat)? - clients_cpu_before;
    let positions_per_s = (moved.load(Ordering::Relaxed) - moved1) as f64 / elapsed;
    client_stop.cancel();
    let reports = clients_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the clients' thread panicked"))??;
    stop.cancel();
    let _ = tokio::join!(feed_task, server, mover);

    let mut delays: Vec<f64> = reports
        .iter()
        .flat_map(|r| r.delays_ms.iter().copied())
        .collect();
    delays.sort_by(f64::total_cmp);
    let n = reports.len().max(1) as f64;
    let frames: u64 = reports.iter().map(|r| r.frames).sum();
    let bytes: u64 = reports.iter().map(|r| r.bytes).sum();
    let server_cores = (process_cpu - clients_cpu) / elapsed;
    let out = serde_json::json!({
        "couriers": args.couriers,
        "clients": args.clients,
        "positions_per_s": positions_per_s.round(),
        "delay_p50_ms": round1(quantile(&delays, 0.50).unwrap_or(f64::NAN)),
        "delay_p99_ms": round1(quantile(&delays, 0.99).unwrap_or(f64::NAN)),
        "delay_max_ms": round1(delays.last().copied().unwrap_or(f64::NAN)),
        "cpu_cores_feed": round3(server_cores - baseline_cores),
        "frames_per_s_per_client": round1(frames as f64 / n / elapsed),
        "bytes_per_s_per_client": (bytes as f64 / n / elapsed).round(),
        "positions_matched_per_s_per_client": round1(delays.len() as f64 / n / elapsed),
        "cpu_cores_baseline": round3(baseline_cores),
        "cpu_cores_server_with_clients": round3(server_cores),
        "cpu_cores_bench_clients": round3(clients_cpu / elapsed),
        "seconds": round1(elapsed),
    });
    println!("{out}");
    Ok(())
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
