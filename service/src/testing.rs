//! Integration-test fixtures on the real PostgreSQL (feature `testing`): the servers' URLs from
//! the environment with CONTRACT.md's defaults, a UUID-named database per test with the schema
//! applied ([`TestDb`]), and a TCP [`Proxy`] that can cut the way to a server, so outages are
//! tested without stopping the shared one.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

pub use crate::schema::with_database;

/// Default of `DATABASE_URL` in tests.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Default of `AMQP_URL` in tests.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn var_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| default.into())
}

/// The server URL from `DATABASE_URL`, defaulting to the local test server.
pub fn database_url() -> String {
    var_or("DATABASE_URL", DEFAULT_DATABASE_URL)
}

/// The broker URL from `AMQP_URL`, defaulting to the local broker.
pub fn amqp_url() -> String {
    var_or("AMQP_URL", DEFAULT_AMQP_URL)
}

/// Connects to the maintenance database of [`database_url`], retrying with backoff.
///
/// # Panics
/// When PostgreSQL stays unreachable, with the way to start it, so a missing service fails the
/// run loudly instead of skipping.
pub async fn maintenance_connection() -> PgConnection {
    let url = database_url();
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match PgConnection::connect(&url).await {
            Ok(conn) => return conn,
            Err(e) if attempt == 6 => panic!(
                "PostgreSQL is not reachable at {} ({e}); start it with `scripts/services` \
                 (or `pg_ctlcluster --skip-systemctl-redirect 15 main start`)",
                redact(&url)
            ),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
        }
    }
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A database of one test's own, with the schema applied.
pub struct TestDb {
    /// Pool on the test database.
    pub pool: PgPool,
    /// The database's name.
    pub name: String,
    /// The test database's URL.
    pub url: String,
    /// Set once [`TestDb::drop_database`] ran, so `Drop` has nothing left to clean up.
    dropped: bool,
}

impl TestDb {
    /// Creates a fresh UUID-named database and applies the schema, with or without TimescaleDB.
    ///
    /// # Panics
    /// When PostgreSQL is unreachable or the schema cannot be applied.
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
        crate::schema::migrate(&pool, use_timescaledb)
            .await
            .expect("applying migrations to the test database");
        TestDb {
            pool,
            name,
            url,
            dropped: false,
        }
    }

    /// Closes the pool and drops the database.
    ///
    /// # Panics
    /// When the database cannot be dropped.
    pub async fn drop_database(mut self) {
        self.pool.close().await;
        let mut admin = maintenance_connection().await;
        sqlx::raw_sql(AssertSqlSafe(drop_statement(&self.name)))
            .execute(&mut admin)
            .await
            .expect("dropping the test database");
        self.dropped = true;
    }
}

fn drop_statement(name: &str) -> String {
    format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#)
}

impl Drop for TestDb {
    /// Best-effort cleanup when a test ends without [`TestDb::drop_database`] (a failed
    /// assertion): drops the database from a thread of its own, within a few seconds.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let statement = drop_statement(&self.name);
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let attempt = async {
                    let mut admin = PgConnection::connect(&database_url()).await.ok()?;
                    sqlx::raw_sql(AssertSqlSafe(statement))
                        .execute(&mut admin)
                        .await
                        .ok()
                };
                let _ = tokio::time::timeout(Duration::from_secs(5), attempt).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// The `host:port` a URL's server listens on, `default_port` when it names none.
///
/// # Panics
/// When the host cannot be resolved.
pub fn server_addr(url: &str, default_port: u16) -> SocketAddr {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host_part = after_scheme.split(['/', '?']).next().unwrap_or("");
    let host_port = host_part.rsplit_once('@').map_or(host_part, |(_, h)| h);
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok() && !p.is_empty())
        && !host_port.ends_with(']');
    let target = if has_port {
        host_port.to_string()
    } else {
        format!("{host_port}:{default_port}")
    };
    target
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("cannot resolve the server of {}", redact(url)))
}

/// `url` pointed at `addr` instead of its own server (to go through a [`Proxy`]).
pub fn via(url: &str, addr: SocketAddr) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let userinfo = authority.rsplit_once('@').map(|(u, _)| u);
    match userinfo {
        Some(u) => format!("{scheme}://{u}@{addr}{tail}"),
        None => format!("{scheme}://{addr}{tail}"),
    }
}

/// A loopback TCP proxy to a server that can cut and restore the way to it.
pub struct Proxy {
    /// Where clients connect.
    addr: SocketAddr,
    /// Whether new connections are let through.
    up: Arc<AtomicBool>,
    /// Bumped on every cut; relays of an older generation end.
    generation: tokio::sync::watch::Sender<u64>,
    /// The accept loop, ended when the proxy is dropped.
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts relaying connections on a loopback port to `target`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port for the proxy");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (up2, gen2) = (up.clone(), generation.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(client); // refused while the server is "down"
                    continue;
                }
                let mut cut = gen2.subscribe();
                let born = *cut.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|g| *g != born) => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            up,
            generation,
            task,
        }
    }

    /// Where clients connect to reach the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every live connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Lets new connections through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn urls_are_taken_apart_and_redirected() {
        let url = "postgres://postgres:pw@127.0.0.1:5433/db?sslmode=disable";
        assert_eq!(server_addr(url, 5432), "127.0.0.1:5433".parse().unwrap());
        assert_eq!(
            server_addr("amqp://guest:guest@127.0.0.1/%2f", 5672),
            "127.0.0.1:5672".parse().unwrap()
        );
        assert_eq!(
            via(url, "127.0.0.1:9".parse().unwrap()),
            "postgres://postgres:pw@127.0.0.1:9/db?sslmode=disable"
        );
        assert_eq!(
            redact(url),
            "postgres://postgres:***@127.0.0.1:5433/db?sslmode=disable"
        );
    }

    #[tokio::test]
    async fn the_proxy_relays_cuts_and_restores() {
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let proxy = Proxy::start(target).await;
        let mut c = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        proxy.cut();
        assert_eq!(
            c.read(&mut buf).await.unwrap_or(0),
            0,
            "live connections close"
        );
        let mut refused = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            refused.read(&mut buf).await.unwrap_or(0),
            0,
            "new ones are refused"
        );
        proxy.restore();
        let mut c = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
        c.write_all(b"pong").await.unwrap();
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
    }
}
