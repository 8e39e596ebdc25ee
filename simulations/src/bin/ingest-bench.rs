//! `ingest-bench --couriers N --seconds S`: how fast the tracker stores positions end to end.
//!
//! Creates a fresh database on `DATABASE_URL`'s server, registers N couriers (a device and a
//! courier token each), starts the tracker in this process on loopback ports, and drives it
//! over real keep-alive HTTP/1.1 connections for S seconds: each simulated courier sends its
//! buffered fixes as a batch (`POST /v1/positions`) and live fixes one by one through the
//! OsmAnd protocol (form body and query string) and the Traccar Client JSON body. Afterwards it
//! counts the rows in the database (not what the client believes it sent), and times a raw
//! binary `COPY` of as many rows into a scratch table with the same columns and index, in the
//! same run, for the ratio. Prints one JSON line; every figure is measured in this run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use optimizer::model::{Coordinates, CourierId};
use service::auth::token_hash;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracker::position::{Position, Source};
use tracker::store::encode_binary_copy;
use tracker::{Tracker, TrackerConfig};

#[derive(Parser, Debug)]
#[command(about = "Measures end-to-end position ingest into the tracker")]
struct Args {
    /// Simulated couriers.
    #[arg(long, default_value_t = 5_000)]
    couriers: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Client connections per endpoint (each a task sending one request at a time).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Fixes per batch request.
    #[arg(long, default_value_t = 100)]
    batch_points: usize,
    /// Single-fix requests (OsmAnd form, OsmAnd query, Traccar JSON in turn) per batch request.
    #[arg(long, default_value_t = 3)]
    singles_per_batch: usize,
    /// Batches the tracker writes at once (its `parallel_writes`).
    #[arg(long, default_value_t = TrackerConfig::default().parallel_writes)]
    parallel_writes: usize,
    /// Milliseconds a batch lingers for more points once a write slot is free.
    #[arg(long, default_value_t = TrackerConfig::default().batch_linger.as_millis() as u64)]
    linger_ms: u64,
    /// Store positions natively partitioned instead of in a TimescaleDB hypertable.
    #[arg(long)]
    no_timescaledb: bool,
    /// Keep the benchmark database instead of dropping it.
    #[arg(long)]
    keep_db: bool,
}

fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// One simulated courier's path: a straight walk at a steady speed, one fix per second.
struct Walker {
    index: usize,
    lat: f64,
    lon: f64,
    dlat: f64,
    dlon: f64,
    next: OffsetDateTime,
}

impl Walker {
    fn new(index: usize, start: OffsetDateTime) -> Self {
        // Deterministic spread over a 20 km city, heading and speed (3..8 m/s) per courier.
        let h = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let unit = |shift: u32| ((h >> shift) & 0xFFFF) as f64 / 65_535.0;
        let angle = unit(0) * std::f64::consts::TAU;
        let speed_mps = 3.0 + 5.0 * unit(16);
        let per_deg_lat = 111_195.0;
        let lat = 52.42 + 0.18 * unit(32);
        let per_deg_lon = per_deg_lat * lat.to_radians().cos();
        Walker {
            index,
            lat,
            lon: 13.2 + 0.3 * unit(48),
            dlat: speed_mps * angle.cos() / per_deg_lat,
            dlon: speed_mps * angle.sin() / per_deg_lon,
            next: start,
        }
    }

    fn step(&mut self) -> (f64, f64, OffsetDateTime) {
        let fix = (self.lat, self.lon, self.next);
        self.lat += self.dlat;
        self.lon += self.dlon;
        self.next += time::Duration::SECOND;
        fix
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Batch,
    OsmandForm,
    OsmandQuery,
    TraccarJson,
}

#[derive(Default)]
struct ClientStats {
    latencies_us: Vec<u32>,
    /// Latencies by request kind.
    by_kind_us: [Vec<u32>; 4],
    sent: u64,
    acked: u64,
    requests: [u64; 4],
    unavailable: u64,
    other_errors: u64,
}

struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Conn { sender })
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        self.sender.ready().await?;
        let response = self.sender.send_request(req).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

#[derive(serde::Deserialize)]
struct Stored {
    stored: u64,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn build(
    kind: Kind,
    w: &mut Walker,
    batch_points: usize,
    host: &str,
) -> (Request<Full<Bytes>>, u64) {
    let courier = w.index;
    match kind {
        Kind::Batch => {
            use std::fmt::Write as _;
            let mut body = String::with_capacity(batch_points * 110);
            body.push('[');
            for i in 0..batch_points {
                let (lat, lon, t) = w.step();
                if i > 0 {
                    body.push(',');
                }
                let _ = write!(
                    body,
                    r#"{{"lat":{lat:.6},"lon":{lon:.6},"at":"{}","speed_mps":5.0,"accuracy_m":8.0}}"#,
                    rfc3339(t)
                );
            }
            body.push(']');
            let req = Request::post("/v1/positions")
                .header("host", host)
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer bench-token-{courier}"))
                .body(Full::new(Bytes::from(body)))
                .expect("a request of valid parts");
            (req, batch_points as u64)
        }
        Kind::OsmandForm => {
            let (lat, lon, t) = w.step();
            let body = format!(
                "id=bench-dev-{courier}&lat={lat:.6}&lon={lon:.6}&timestamp={}&speed=9.7&bearing=90&accuracy=6&batt=80",
                t.unix_timestamp()
            );
            let req = Request::post("/")
                .header("host", host)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(body)))
                .expect("a request of valid parts");
            (req, 1)
        }
        Kind::OsmandQuery => {
            let (lat, lon, t) = w.step();
            let uri = format!(
                "/?id=bench-dev-{courier}&lat={lat:.6}&lon={lon:.6}&timestamp={}&speed=9.7&altitude=40",
                t.unix_timestamp() * 1000
            );
            let req = Request::get(uri)
                .header("host", host)
                .body(Full::new(Bytes::new()))
                .expect("a request of valid parts");
            (req, 1)
        }
        Kind::TraccarJson => {
            let (lat, lon, t) = w.step();
            let body = format!(
                r#"{{"device_id":"bench-dev-{courier}","location":{{"timestamp":"{}","coords":{{"latitude":{lat:.6},"longitude":{lon:.6},"accuracy":5,"speed":5.0,"heading":90,"altitude":40}},"is_moving":true,"battery":{{"level":0.8,"is_charging":false}}}}}}"#,
                rfc3339(t)
            );
            let req = Request::post("/")
                .header("host", host)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .expect("a request of valid parts");
            (req, 1)
        }
    }
}

/// One client task: its share of the couriers, one connection to each endpoint.
async fn client(
    mut walkers: Vec<Walker>,
    osmand: std::net::SocketAddr,
    api: std::net::SocketAddr,
    args: Arc<Args>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<ClientStats> {
    let mut stats = ClientStats::default();
    let mut osmand_conn = Conn::open(osmand).await?;
    let mut api_conn = Conn::open(api).await?;
    let osmand_host = osmand.to_string();
    let api_host = api.to_string();
    let singles = [Kind::OsmandForm, Kind::OsmandQuery, Kind::TraccarJson];
    let mut single_turn = 0usize;
    'outer: while !stop.load(Ordering::Relaxed) {
        for w in walkers.iter_mut() {
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            let mut kinds = Vec::with_capacity(1 + args.singles_per_batch);
            if args.batch_points > 0 {
                kinds.push(Kind::Batch);
            }
            for _ in 0..args.singles_per_batch {
                kinds.push(singles[single_turn % singles.len()]);
                single_turn += 1;
            }
            for kind in kinds {
                let (host, conn) = match kind {
                    Kind::Batch => (&api_host, &mut api_conn),
                    _ => (&osmand_host, &mut osmand_conn),
                };
                let (req, points) = build(kind, w, args.batch_points, host);
                let started = Instant::now();
                let result = conn.send(req).await;
                let micros = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
                stats.latencies_us.push(micros);
                stats.by_kind_us[kind as usize].push(micros);
                stats.sent += points;
                stats.requests[kind as usize] += 1;
                match result {
                    Ok((200, body)) => {
                        stats.acked +=
                            serde_json::from_slice::<Stored>(&body).map_or(0, |s| s.stored);
                    }
                    Ok((503, _)) => stats.unavailable += 1,
                    Ok((status, body)) => {
                        stats.other_errors += 1;
                        if stats.other_errors <= 3 {
                            eprintln!(
                                "ingest-bench: {kind:?} got {status}: {}",
                                String::from_utf8_lossy(&body)
                            );
                        }
                    }
                    Err(e) => {
                        stats.other_errors += 1;
                        eprintln!("ingest-bench: {kind:?} failed: {e}; reconnecting");
                        *conn = Conn::open(match kind {
                            Kind::Batch => api,
                            _ => osmand,
                        })
                        .await?;
                    }
                }
            }
        }
    }
    Ok(stats)
}

async fn setup_couriers(pool: &PgPool, n: usize) -> anyhow::Result<()> {
    let ids: Vec<String> = (0..n).map(|i| format!("bench-courier-{i}")).collect();
    let devices: Vec<String> = (0..n).map(|i| format!("bench-dev-{i}")).collect();
    let hashes: Vec<Vec<u8>> = (0..n)
        .map(|i| token_hash(&format!("bench-token-{i}")).to_vec())
        .collect();
    let token_ids: Vec<uuid::Uuid> = (0..n).map(|_| uuid::Uuid::new_v4()).collect();
    sqlx::query(
        "INSERT INTO couriers (id, name, vehicle, capacity, on_shift) \
         SELECT id, id, 'scooter', 5, true FROM UNNEST($1::text[]) AS id",
    )
    .bind(&ids)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO devices (device_id, courier_id) SELECT * FROM UNNEST($1::text[], $2::text[])",
    )
    .bind(&devices)
    .bind(&ids)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO api_tokens (id, token_hash, role, courier_id) \
         SELECT t, h, 'courier', c FROM UNNEST($1::uuid[], $2::bytea[], $3::text[]) AS u(t, h, c)",
    )
    .bind(&token_ids)
    .bind(&hashes)
    .bind(&ids)
    .execute(pool)
    .await?;
    Ok(())
}

/// Times one binary COPY of `rows` GPS rows into a scratch table with the positions columns
/// and its one unique index, in one transaction; returns rows per second.
async fn raw_copy_rate(pool: &PgPool, rows: usize, couriers: usize) -> anyhow::Result<f64> {
    sqlx::query(
        "CREATE TABLE copy_scratch (LIKE positions INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
    )
    .execute(pool)
    .await?;
    sqlx::query("CREATE UNIQUE INDEX copy_scratch_courier_time_idx ON copy_scratch (courier_id, fix_time DESC)")
        .execute(pool)
        .await?;
    // The same shape of rows as the run stored: couriers walking, one fix per second each.
    let start = OffsetDateTime::now_utc() - time::Duration::hours(3);
    let mut walkers: Vec<Walker> = (0..couriers.max(1))
        .map(|i| Walker::new(i, start))
        .collect();
    let mut chunks = Vec::new();
    let mut made = 0;
    while made < rows {
        let take = (rows - made).min(10_000);
        let mut chunk = Vec::with_capacity(take);
        for k in 0..take {
            let w = &mut walkers[(made + k) % couriers.max(1)];
            let (lat, lon, t) = w.step();
            chunk.push(Position {
                courier_id: CourierId::parse(format!("bench-courier-{}", w.index))?,
                device_id: Arc::from(format!("bench-dev-{}", w.index)),
                fix_time: t,
                coords: Coordinates::parse(lat, lon)?,
                speed_mps: Some(5.0),
                heading_deg: Some(90.0),
                altitude_m: None,
                accuracy_m: Some(8.0),
                battery_pct: Some(80.0),
                source: Source::Batch,
            });
        }
        let mut data = encode_binary_copy(&chunk);
        // Strip the per-chunk header and trailer; one stream gets one of each.
        let body = data.split_off(19);
        let body = &body[..body.len() - 2];
        chunks.push(Bytes::copy_from_slice(body));
        made += take;
    }
    let mut conn = pool.acquire().await?;
    let header = &encode_binary_copy(&[])[..19];
    let started = Instant::now();
    let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
    let mut copy = tx
        .copy_in_raw(
            "COPY copy_scratch (courier_id, device_id, fix_time, lat, lon, speed_mps, heading_deg, \
             altitude_m, accuracy_m, battery, source) FROM STDIN (FORMAT binary)",
        )
        .await?;
    copy.send(header).await?;
    for chunk in &chunks {
        copy.send(&chunk[..]).await?;
    }
    copy.send(&(-1i16).to_be_bytes()[..]).await?;
    let copied = copy.finish().await?;
    tx.commit().await?;
    let elapsed = started.elapsed().as_secs_f64();
    if copied as usize != rows {
        bail!("raw COPY stored {copied} rows, expected {rows}");
    }
    Ok(rows as f64 / elapsed)
}

/// Transactions committed in this database so far (statistics lag by up to half a second).
async fn commits(pool: &PgPool) -> anyhow::Result<i64> {
    tokio::time::sleep(Duration::from_millis(600)).await;
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(pool)
        .await?;
    Ok(sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?)
}

/// The machine's one-minute load average (Linux), to tell a busy machine's figures apart.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    f64::from(sorted_us[rank.clamp(1, sorted_us.len()) - 1]) / 1000.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if args.couriers == 0
        || args.connections == 0
        || args.batch_points > tracker::protocol::batch::MAX_POINTS
    {
        bail!("--couriers and --connections must be positive and --batch-points at most 1000");
    }
    let server = server_url();
    let db_name = format!("ingest_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&server).await.with_context(|| {
        format!("connecting to DATABASE_URL {server} (start it with scripts/services)")
    })?;
    sqlx::raw_sql(AssertSqlSafe(format!(r#"CREATE DATABASE "{db_name}""#)))
        .execute(&mut admin)
        .await
        .context("creating the benchmark database")?;
    let result = run(args.clone(), &server, &db_name).await;
    if !args.keep_db {
        sqlx::raw_sql(AssertSqlSafe(format!(
            r#"DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)"#
        )))
        .execute(&mut admin)
        .await
        .context("dropping the benchmark database")?;
    }
    let line = result?;
    println!("{line}");
    Ok(())
}

async fn run(args: Arc<Args>, server: &str, db_name: &str) -> anyhow::Result<serde_json::Value> {
    let url = service::schema::with_database(server, db_name);
    let pool = PgPoolOptions::new()
        .max_connections(6)
        .connect(&url)
        .await
        .context("connecting to the benchmark database")?;
    service::schema::migrate(&pool, !args.no_timescaledb)
        .await
        .context("applying migrations")?;
    let storage = service::schema::positions_storage(&pool).await?;
    setup_couriers(&pool, args.couriers)
        .await
        .context("registering couriers")?;

    let config = TrackerConfig {
        parallel_writes: args.parallel_writes,
        batch_linger: Duration::from_millis(args.linger_ms),
        ..TrackerConfig::default()
    };
    let tracker = Tracker::build(pool.clone(), config)
        .await
        .context("starting the tracker")?;
    let osmand_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let osmand_addr = osmand_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;
    let osmand_router = tracker.osmand_router();
    let osmand_server = tokio::spawn(service::server::serve(
        osmand_listener,
        osmand_router,
        service::settings::DEFAULT_MAX_CONNECTIONS,
        service::shutdown::CancellationToken::new(),
    ));
    let api_router = tracker.api_router();
    let api_server = tokio::spawn(service::server::serve(
        api_listener,
        api_router,
        service::settings::DEFAULT_MAX_CONNECTIONS,
        service::shutdown::CancellationToken::new(),
    ));

    // Fixes start three hours back (buffered tracks), one per second per courier.
    let start = OffsetDateTime::now_utc() - time::Duration::hours(3);
    let mut shares: Vec<Vec<Walker>> = (0..args.connections).map(|_| Vec::new()).collect();
    for i in 0..args.couriers {
        shares[i % args.connections].push(Walker::new(i, start));
    }
    let commits_before = commits(&pool).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let load_before = load_average();
    let began = Instant::now();
    let mut tasks = Vec::new();
    for share in shares.into_iter().filter(|s| !s.is_empty()) {
        tasks.push(tokio::spawn(client(
            share,
            osmand_addr,
            api_addr,
            args.clone(),
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = ClientStats::default();
    for t in tasks {
        let s = t.await.context("client task panicked")??;
        total.latencies_us.extend(s.latencies_us);
        total.sent += s.sent;
        total.acked += s.acked;
        for k in 0..4 {
            total.requests[k] += s.requests[k];
        }
        for (all, mine) in total.by_kind_us.iter_mut().zip(s.by_kind_us) {
            all.extend(mine);
        }
        total.unavailable += s.unavailable;
        total.other_errors += s.other_errors;
    }
    let elapsed = began.elapsed().as_secs_f64();
    let load_after = load_average();
    osmand_server.abort();
    api_server.abort();
    tracker.shutdown().await;

    let commits_during = commits(&pool).await? - commits_before;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM positions")
        .fetch_one(&pool)
        .await?;
    let stored = usize::try_from(stored)?;
    let copy_rows_per_s = raw_copy_rate(&pool, stored.max(1), args.couriers)
        .await
        .context("timing the raw COPY")?;
    pool.close().await;

    total.latencies_us.sort_unstable();
    for v in &mut total.by_kind_us {
        v.sort_unstable();
    }
    let kind_p = |k: Kind, p: f64| round2(percentile_ms(&total.by_kind_us[k as usize], p));
    let rows_per_s = stored as f64 / elapsed;
    let requests: u64 = total.requests.iter().sum();
    Ok(serde_json::json!({
        "sent": total.sent,
        "acked": total.acked,
        "stored": stored,
        "rows_per_s": rows_per_s.round(),
        "p50_ms": round2(percentile_ms(&total.latencies_us, 50.0)),
        "p99_ms": round2(percentile_ms(&total.latencies_us, 99.0)),
        "max_ms": round2(percentile_ms(&total.latencies_us, 100.0)),
        "copy_rows_per_s": copy_rows_per_s.round(),
        "stored_to_copy": round2(rows_per_s / copy_rows_per_s),
        "seconds": round2(elapsed),
        "couriers": args.couriers,
        "connections": args.connections,
        "requests": requests,
        "requests_per_s": (requests as f64 / elapsed).round(),
        "requests_by_kind": {
            "batch": total.requests[Kind::Batch as usize],
            "osmand_form": total.requests[Kind::OsmandForm as usize],
            "osmand_query": total.requests[Kind::OsmandQuery as usize],
            "traccar_json": total.requests[Kind::TraccarJson as usize],
        },
        "p50_ms_by_kind": {
            "batch": kind_p(Kind::Batch, 50.0),
            "osmand_form": kind_p(Kind::OsmandForm, 50.0),
            "osmand_query": kind_p(Kind::OsmandQuery, 50.0),
            "traccar_json": kind_p(Kind::TraccarJson, 50.0),
        },
        "p99_ms_by_kind": {
            "batch": kind_p(Kind::Batch, 99.0),
            "osmand_form": kind_p(Kind::OsmandForm, 99.0),
            "osmand_query": kind_p(Kind::OsmandQuery, 99.0),
            "traccar_json": kind_p(Kind::TraccarJson, 99.0),
        },
        "batch_points": args.batch_points,
        "parallel_writes": args.parallel_writes,
        "db_commits": commits_during,
        "rows_per_commit": (stored as f64 / commits_during.max(1) as f64).round(),
        "linger_ms": args.linger_ms,
        "unavailable_503": total.unavailable,
        "other_errors": total.other_errors,
        "storage": format!("{storage:?}").to_lowercase(),
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
        "load_1m_before": load_before,
        "load_1m_after": load_after,
    }))
}
