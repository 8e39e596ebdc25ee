//! Staff map clients: each holds `/v1/map/ws` open as the live map does, reconnecting after a
//! restart, and measures how stale its view is: for every courier position a delta brings, the
//! age of that fix when the frame arrives (wall milliseconds; simulated ages are divided by
//! the speedup). The first client also keeps the latest KPIs the server sent (open orders, idle
//! couriers, ...) for the progress line and the charts, and per-interval staleness samples.
//!
//! Positions in snapshots are not counted: a snapshot lists every courier, including those whose
//! phone went quiet long ago, which says nothing about how fresh the feed is.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde::Deserialize;
use service::clock::Clock;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::stats::Histogram;

/// The map KPIs the city reads (the frame has more).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Kpis {
    /// Orders not yet delivered, failed or cancelled.
    #[serde(default)]
    pub open_orders: u64,
    /// Open orders without a courier.
    #[serde(default)]
    pub unassigned: u64,
    /// Orders late or going to be.
    #[serde(default)]
    pub late: u64,
    /// Couriers on shift.
    #[serde(default)]
    pub couriers_on_shift: u64,
    /// Couriers on shift with nothing to do.
    #[serde(default)]
    pub couriers_idle: u64,
    /// Couriers with a recent fix.
    #[serde(default)]
    pub couriers_connected: u64,
}

#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    couriers: Vec<CourierIn>,
    #[serde(default)]
    kpis: Option<Kpis>,
}

#[derive(Deserialize)]
struct CourierIn {
    position: Option<PositionIn>,
}

#[derive(Deserialize)]
struct PositionIn {
    at: String,
}

/// Staleness samples of one time bin (first client only), for the charts.
#[derive(Clone, Debug, Default)]
pub struct Bin {
    /// Ages in wall milliseconds.
    pub samples: Vec<f32>,
}

/// What the map clients saw.
#[derive(Debug)]
pub struct MapWatch {
    /// Age of each position at arrival, every client.
    staleness: Mutex<Histogram>,
    /// The first client's latest KPIs and when they came.
    kpis: Mutex<Option<(Instant, Kpis)>>,
    /// The first client's staleness samples by [`MapWatch::BIN`] since `started`.
    bins: Mutex<Vec<Bin>>,
    /// When the watch began.
    started: Instant,
    /// Frames read, every client.
    frames: Mutex<u64>,
    /// Snapshots after the first per connection: the client fell behind and was resynced.
    resyncs: Mutex<u64>,
    /// Connections made after a first one.
    reconnects: Mutex<u64>,
    /// The longest wait between two frames of one connection (wall).
    longest_gap: Mutex<Duration>,
    /// Simulated time, to age the fixes.
    clock: Clock,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MapWatch {
    /// Width of a chart bin.
    pub const BIN: Duration = Duration::from_secs(10);

    /// A watch reading fix times on `clock`.
    pub fn new(clock: Clock) -> Arc<MapWatch> {
        Arc::new(MapWatch {
            staleness: Mutex::new(Histogram::default()),
            kpis: Mutex::new(None),
            bins: Mutex::new(Vec::new()),
            started: Instant::now(),
            frames: Mutex::new(0),
            resyncs: Mutex::new(0),
            reconnects: Mutex::new(0),
            longest_gap: Mutex::new(Duration::ZERO),
            clock,
        })
    }

    /// The latest KPIs, if any came.
    pub fn kpis(&self) -> Option<Kpis> {
        lock(&self.kpis).as_ref().map(|(_, k)| k.clone())
    }

    /// Every position's age at arrival.
    pub fn staleness(&self) -> Histogram {
        lock(&self.staleness).clone()
    }

    /// The first client's samples by bin.
    pub fn bins(&self) -> Vec<Bin> {
        lock(&self.bins).clone()
    }

    /// Frames read, resyncs, reconnects and the longest gap between frames.
    pub fn counts(&self) -> (u64, u64, u64, Duration) {
        (
            *lock(&self.frames),
            *lock(&self.resyncs),
            *lock(&self.reconnects),
            *lock(&self.longest_gap),
        )
    }
}

/// Runs `clients` map clients on `base` (`http://host:port`) with `token` until `stop`.
pub fn spawn(
    clients: usize,
    base: &str,
    token: &str,
    watch: Arc<MapWatch>,
    stop: CancellationToken,
) -> tokio::task::JoinSet<()> {
    let url = format!("{}/v1/map/ws?token={token}", base.replacen("http", "ws", 1));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..clients {
        let (url, watch, stop) = (url.clone(), watch.clone(), stop.clone());
        set.spawn(async move { client(i, url, watch, stop).await });
    }
    set
}

/// One client: connects, reads, and reconnects with backoff until `stop`.
async fn client(index: usize, url: String, watch: Arc<MapWatch>, stop: CancellationToken) {
    let mut local = Histogram::default();
    let mut connected_before = false;
    let mut pause = Duration::from_millis(200);
    while !stop.is_cancelled() {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((socket, _)) => {
                if connected_before {
                    *lock(&watch.reconnects) += 1;
                }
                connected_before = true;
                pause = Duration::from_millis(200);
                if let Err(error) = read(index, socket, &watch, &mut local, &stop).await {
                    tracing::debug!(
                        error = format!("{error:#}"),
                        "A map client lost its socket."
                    );
                }
            }
            Err(error) => tracing::debug!(%error, "A map client could not connect."),
        }
        lock(&watch.staleness).merge(&std::mem::take(&mut local));
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    lock(&watch.staleness).merge(&local);
}

async fn read(
    index: usize,
    mut socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    watch: &MapWatch,
    local: &mut Histogram,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let mut snapshots = 0_u64;
    let mut last_frame: Option<Instant> = None;
    let speedup = watch.clock.speedup();
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            m = socket.next() => match m {
                Some(m) => m.context("reading the map socket")?,
                None => anyhow::bail!("the server closed the map socket"),
            },
        };
        let Message::Text(text) = message else {
            continue;
        };
        let arrived = Instant::now();
        if let Some(previous) = last_frame.replace(arrived) {
            let gap = arrived - previous;
            let mut longest = lock(&watch.longest_gap);
            *longest = (*longest).max(gap);
        }
        *lock(&watch.frames) += 1;
        let frame: Frame = serde_json::from_str(&text).context("a map frame")?;
        if index == 0
            && let Some(kpis) = frame.kpis
        {
            *lock(&watch.kpis) = Some((arrived, kpis));
        }
        if frame.kind == "snapshot" {
            snapshots += 1;
            if snapshots > 1 {
                *lock(&watch.resyncs) += 1;
            }
            continue;
        }
        let now = watch.clock.now();
        let mut ages = Vec::new();
        for courier in frame.couriers {
            let Some(p) = courier.position else { continue };
            let Ok(at) = OffsetDateTime::parse(&p.at, &Rfc3339) else {
                continue;
            };
            let age_ms = (now - at).as_seconds_f64() * 1e3 / speedup;
            local.record(age_ms);
            ages.push(age_ms as f32);
        }
        if index == 0 && !ages.is_empty() {
            let bin = (arrived.duration_since(watch.started).as_secs_f64()
                / MapWatch::BIN.as_secs_f64()) as usize;
            let mut bins = lock(&watch.bins);
            if bins.len() <= bin {
                bins.resize_with(bin + 1, Bin::default);
            }
            bins[bin].samples.extend(ages);
        }
    }
}
