//! Test fixtures on the real database: each test gets its own UUID-named database with the
//! schema applied (`service::testing`), and drops it at the end; the tracker runs on it and is
//! spoken to over HTTP.

use std::net::SocketAddr;

use service::auth::token_hash;
use service::shutdown::CancellationToken;
use sqlx::PgPool;
use tracker::TrackerConfig;

pub use service::testing::{TestDb, database_url, maintenance_connection};

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
    stop: CancellationToken,
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
        let stop = CancellationToken::new();
        let osmand = serve(tracker.osmand_router(), stop.clone()).await;
        let api = serve(tracker.api_router(), stop.clone()).await;
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
        self.stop.cancel();
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

async fn serve(router: axum::Router, stop: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    tokio::spawn(service::server::serve(listener, router, 1_000, stop));
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
