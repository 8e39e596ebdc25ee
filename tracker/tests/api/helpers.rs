//! Test fixtures on the real database: each test gets its own UUID-named database with the
//! schema applied, and drops it at the end.

use std::net::SocketAddr;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use tracker::TrackerConfig;
use tracker::auth::token_hash;

/// The server URL from `DATABASE_URL`, defaulting to the local test server.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Connects to the maintenance database, retrying with backoff; panics with the way to start
/// PostgreSQL when it stays unreachable, so a missing service fails the run loudly.
pub async fn maintenance_connection() -> PgConnection {
    let url = database_url();
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=6 {
        match PgConnection::connect(&url).await {
            Ok(conn) => return conn,
            Err(e) if attempt == 6 => panic!(
                "PostgreSQL is not reachable at {url} ({e}); start it with `scripts/services` \
                 (or `pg_ctlcluster --skip-systemctl-redirect 15 main start`)"
            ),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    unreachable!("the loop returns or panics on its last attempt")
}

/// A database of one test's own.
pub struct TestDb {
    /// Pool on the test database.
    pub pool: PgPool,
    /// The database's name.
    pub name: String,
}

impl TestDb {
    /// Creates a fresh database and applies the schema, with or without TimescaleDB.
    pub async fn new(use_timescaledb: bool) -> TestDb {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = maintenance_connection().await;
        sqlx::raw_sql(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut admin)
            .await
            .expect("creating a test database");
        let url = with_database(&database_url(), &name);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .expect("connecting to the test database");
        tracker::schema::migrate(&pool, use_timescaledb)
            .await
            .expect("applying migrations to the test database");
        TestDb { pool, name }
    }

    /// Closes the pool and drops the database.
    pub async fn drop(self) {
        self.pool.close().await;
        let mut admin = maintenance_connection().await;
        let drop = format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name);
        sqlx::raw_sql(AssertSqlSafe(drop))
            .execute(&mut admin)
            .await
            .expect("dropping the test database");
    }
}

pub use tracker::schema::with_database;

/// The tracker running on a test database, serving both routers on loopback ports.
pub struct TestApp {
    /// The test database (direct pool, for setup and checks).
    pub db: TestDb,
    /// The running tracker.
    pub tracker: tracker::Tracker,
    /// Where the OsmAnd endpoint listens.
    pub osmand: SocketAddr,
    /// Where the `/v1` routes listen.
    pub api: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
}

impl TestApp {
    /// A tracker with default settings on a fresh database.
    pub async fn spawn(use_timescaledb: bool) -> TestApp {
        let db = TestDb::new(use_timescaledb).await;
        let pool = db.pool.clone();
        Self::spawn_on(db, pool, TrackerConfig::default()).await
    }

    /// A tracker using `pool` (maybe through a proxy) with `config`, on `db`.
    pub async fn spawn_on(db: TestDb, pool: PgPool, config: TrackerConfig) -> TestApp {
        let tracker = tracker::Tracker::build(pool, config)
            .await
            .expect("starting the tracker");
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let osmand = serve(tracker.osmand_router(), stop_rx.clone()).await;
        let api = serve(tracker.api_router(), stop_rx).await;
        TestApp {
            db,
            tracker,
            osmand,
            api,
            stop,
        }
    }

    /// Registers a courier with one device and returns a courier token for them.
    pub async fn courier(&self, id: &str, device: &str, vehicle: &str) -> String {
        add_courier(&self.db.pool, id, device, vehicle).await
    }

    /// A staff token.
    pub async fn staff_token(&self) -> String {
        let secret = format!("staff-{}", uuid::Uuid::new_v4().simple());
        sqlx::query("INSERT INTO api_tokens (id, token_hash, role) VALUES ($1, $2, 'staff')")
            .bind(uuid::Uuid::new_v4())
            .bind(&token_hash(&secret)[..])
            .execute(&self.db.pool)
            .await
            .expect("inserting a staff token");
        secret
    }

    /// Stops servers and tracker, and hands back the database.
    pub async fn stop(self) -> TestDb {
        let _ = self.stop.send(true);
        self.tracker.shutdown().await;
        self.db
    }
}

/// Registers a courier with one device; returns a courier token for them.
pub async fn add_courier(pool: &PgPool, id: &str, device: &str, vehicle: &str) -> String {
    sqlx::query("INSERT INTO couriers (id, name, vehicle, capacity) VALUES ($1, $1, $2, 4)")
        .bind(id)
        .bind(vehicle)
        .execute(pool)
        .await
        .expect("inserting a courier");
    sqlx::query("INSERT INTO devices (device_id, courier_id) VALUES ($1, $2)")
        .bind(device)
        .bind(id)
        .execute(pool)
        .await
        .expect("inserting a device");
    let secret = format!("courier-{}", uuid::Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO api_tokens (id, token_hash, role, courier_id) VALUES ($1, $2, 'courier', $3)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(&token_hash(&secret)[..])
    .bind(id)
    .execute(pool)
    .await
    .expect("inserting a courier token");
    secret
}

async fn serve(router: axum::Router, mut stop: tokio::sync::watch::Receiver<bool>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    tokio::spawn(tracker::api::serve(listener, router, async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    addr
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: hyper::HeaderMap,
    /// Body.
    pub body: bytes::Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one HTTP/1.1 request on a new connection.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<bytes::Bytes>,
) -> Result<Reply, Box<dyn std::error::Error + Send + Sync>> {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(http_body_util::Full::new(body.into()))?;
    let response = sender.send_request(req).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Reply {
        status,
        headers,
        body,
    })
}
