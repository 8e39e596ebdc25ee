//! No acknowledged point is lost: neither when the database becomes unreachable for 10 s in the
//! middle of a run, nor when the tracker process is killed with SIGKILL and restarted.
//!
//! The shared PostgreSQL server must keep running for everyone else's tests, so the outage is
//! made by a TCP proxy of the test's own between the tracker and the server: it cuts every
//! connection and refuses new ones, then lets them through again.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use time::OffsetDateTime;
use tokio::io::AsyncBufReadExt;
use tokio::sync::Mutex;

use service::testing::{Proxy, server_addr, via};

use crate::helpers::{TestApp, TestDb, add_courier, database_url, http};

/// Acknowledged (device, epoch second) pairs, and how the run went.
#[derive(Default)]
struct Log {
    acked: Vec<(String, i64)>,
    unavailable: u64,
    retry_after_seen: bool,
    slowest: Duration,
    other: Vec<String>,
}

/// Sends fixes for `device` one after the other, a second of fix time apart, until `stop`.
async fn sender(
    osmand: Arc<Mutex<SocketAddr>>,
    device: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Log>>,
    seq: Arc<AtomicU64>,
) {
    let base = OffsetDateTime::now_utc().unix_timestamp() - 3_600;
    while !stop.load(Ordering::Relaxed) {
        let k = seq.fetch_add(1, Ordering::Relaxed) as i64;
        let ts = base + k;
        let lat = 52.5 + (k as f64) * 0.00001;
        let q = format!("/?id={device}&lat={lat:.6}&lon=13.4&timestamp={ts}");
        let addr = *osmand.lock().await;
        let started = Instant::now();
        let result = http(addr, "GET", &q, &[], "").await;
        let took = started.elapsed();
        let mut log = log.lock().await;
        log.slowest = log.slowest.max(took);
        match result {
            Ok(r) if r.status == 200 => log.acked.push((device.clone(), ts)),
            Ok(r) if r.status == 503 => {
                log.unavailable += 1;
                log.retry_after_seen |= r.headers.contains_key("retry-after");
            }
            Ok(r) => log.other.push(format!("{}: {}", r.status, r.text())),
            Err(_) => {} // the tracker is down (killed): nothing was acknowledged
        }
        drop(log);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn missing(db: &TestDb, acked: &[(String, i64)]) -> Vec<(String, i64)> {
    let stored: Vec<(String, i64)> =
        sqlx::query_as("SELECT device_id, extract(epoch FROM fix_time)::bigint FROM positions")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let stored: HashSet<_> = stored.into_iter().collect();
    acked
        .iter()
        .filter(|a| !stored.contains(*a))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_ten_second_database_outage_loses_no_acknowledged_point() {
    let db = TestDb::new(true).await;
    let devices: Vec<String> = (0..4).map(|i| format!("phone-{i}")).collect();
    for (i, d) in devices.iter().enumerate() {
        add_courier(&db.pool, &format!("c{i}"), d, "scooter").await;
    }
    let proxy = Proxy::start(server_addr(&database_url(), 5432)).await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(2))
        .connect(&via(&db.url, proxy.addr()))
        .await
        .unwrap();
    let config = tracker::TrackerConfig {
        ack_timeout: Duration::from_secs(3),
        write_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let app = TestApp::spawn_on(db, pool, config).await;

    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Log::default()));
    let osmand = Arc::new(Mutex::new(app.osmand));
    let mut tasks = Vec::new();
    for d in &devices {
        let seq = Arc::new(AtomicU64::new(0));
        tasks.push(tokio::spawn(sender(
            osmand.clone(),
            d.clone(),
            stop.clone(),
            log.clone(),
            seq,
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = log.lock().await.acked.len();
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during_503 = log.lock().await.unavailable;
    let acked_at_restore = log.lock().await.acked.len();
    proxy.restore();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let log = log.lock().await;
    assert!(before > 20, "fixes were stored before the outage: {before}");
    assert!(during_503 > 0, "the outage was answered with 503");
    assert!(log.retry_after_seen, "503 carries Retry-After");
    assert!(
        log.slowest < Duration::from_secs(5),
        "every request was answered within a bounded time, slowest {:?}",
        log.slowest
    );
    assert!(
        log.acked.len() > acked_at_restore + 20,
        "ingestion resumed by itself after the outage ({} then {})",
        acked_at_restore,
        log.acked.len()
    );
    assert!(
        log.other.is_empty(),
        "unexpected answers: {:?}",
        &log.other[..log.other.len().min(3)]
    );
    let db = app.stop().await;
    let lost = missing(&db, &log.acked).await;
    assert!(
        lost.is_empty(),
        "{} acknowledged points lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    db.drop_database().await;
}

/// Starts the `tracker` binary on `url`; returns the child and its OsmAnd address.
async fn start_binary(url: &str) -> (tokio::process::Child, SocketAddr) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracker"))
        .env("DATABASE_URL", url)
        .env("OSMAND_ADDR", "127.0.0.1:0")
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting the tracker binary");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(a) = line.strip_prefix("osmand: ") {
                return a.parse::<SocketAddr>().unwrap();
            }
        }
        panic!("the tracker binary exited before listening")
    })
    .await
    .expect("the tracker binary listens within 30 s");
    // Keep reading, so later lines never meet a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

#[tokio::test]
async fn sigkill_of_the_tracker_loses_no_acknowledged_point() {
    let db = TestDb::new(true).await;
    let devices: Vec<String> = (0..4).map(|i| format!("phone-{i}")).collect();
    for (i, d) in devices.iter().enumerate() {
        add_courier(&db.pool, &format!("c{i}"), d, "scooter").await;
    }
    let url = db.url.clone();
    let (mut child, addr) = start_binary(&url).await;

    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Log::default()));
    let osmand = Arc::new(Mutex::new(addr));
    let seqs: Vec<_> = devices
        .iter()
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    let mut tasks = Vec::new();
    for (d, seq) in devices.iter().zip(&seqs) {
        tasks.push(tokio::spawn(sender(
            osmand.clone(),
            d.clone(),
            stop.clone(),
            log.clone(),
            seq.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SIGKILL: no shutdown code runs.
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let acked_before_kill = log.lock().await.acked.len();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Restarted, it takes fixes again (the senders go on with later fix times).
    let (mut child, addr) = start_binary(&url).await;
    *osmand.lock().await = addr;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let log = log.lock().await;
    assert!(
        acked_before_kill > 10,
        "fixes were acknowledged before the kill: {acked_before_kill}"
    );
    assert!(
        log.acked.len() > acked_before_kill + 10,
        "the restarted tracker took fixes"
    );
    assert!(
        log.other.is_empty(),
        "unexpected answers: {:?}",
        &log.other[..log.other.len().min(3)]
    );
    let lost = missing(&db, &log.acked).await;
    assert!(
        lost.is_empty(),
        "{} acknowledged points lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    db.drop_database().await;
}
