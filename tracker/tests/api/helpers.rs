//! Test fixtures on the real database: each test gets its own UUID-named database with the
//! schema applied, and drops it at the end.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

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
    name: String,
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

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
