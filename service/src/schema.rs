//! Applying the workspace's single schema (`migrations/`) and telling how positions are stored.
//!
//! Positions become a TimescaleDB hypertable when the extension is available and not switched
//! off; otherwise a natively range-partitioned table. The switch is the session setting
//! `courier.timescaledb`, which the migration reads, so one code path serves both.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Connection, PgConnection, PgPool};

/// The migrations in `migrations/`, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// How the positions table is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PositionsStorage {
    /// A TimescaleDB hypertable.
    Hypertable,
    /// A natively range-partitioned PostgreSQL table.
    Partitioned,
}

/// Why the schema could not be applied or inspected.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A migration failed.
    #[error("applying migrations failed")]
    Migrate(#[source] MigrateError),
    /// The database could not be reached or queried.
    #[error("database query failed")]
    Database(#[source] sqlx::Error),
    /// The positions table is missing or of an unexpected kind.
    #[error("positions table is neither a hypertable nor partitioned")]
    UnknownPositionsStorage,
}

async fn set_timescaledb(
    conn: &mut PgConnection,
    use_timescaledb: bool,
) -> Result<(), SchemaError> {
    let setting = if use_timescaledb { "on" } else { "off" };
    sqlx::query("SELECT set_config('courier.timescaledb', $1, false)")
        .bind(setting)
        .execute(&mut *conn)
        .await
        .map_err(SchemaError::Database)?;
    Ok(())
}

/// Applies pending migrations. With `use_timescaledb` false, positions becomes a natively
/// partitioned table even where the extension exists.
///
/// # Errors
/// [`SchemaError::Database`] when no connection can be had, [`SchemaError::Migrate`] when a
/// migration fails (it is rolled back).
pub async fn migrate(pool: &PgPool, use_timescaledb: bool) -> Result<(), SchemaError> {
    let mut conn = pool.acquire().await.map_err(SchemaError::Database)?;
    set_timescaledb(&mut conn, use_timescaledb).await?;
    let result = MIGRATOR.run(&mut *conn).await;
    // The setting is per session: do not hand a pooled connection back with it changed.
    conn.detach().close().await.ok();
    result.map_err(SchemaError::Migrate)
}

/// Applies pending migrations on a single connection (used by `dispatcher migrate`).
///
/// # Errors
/// As [`migrate`].
pub async fn migrate_connection(
    conn: &mut PgConnection,
    use_timescaledb: bool,
) -> Result<(), SchemaError> {
    set_timescaledb(conn, use_timescaledb).await?;
    MIGRATOR
        .run(&mut *conn)
        .await
        .map_err(SchemaError::Migrate)?;
    conn.ping().await.map_err(SchemaError::Database)
}

/// Tells how the positions table is stored.
///
/// # Errors
/// [`SchemaError::UnknownPositionsStorage`] when it is neither kind, [`SchemaError::Database`]
/// when the catalogue cannot be read.
pub async fn positions_storage(pool: &PgPool) -> Result<PositionsStorage, SchemaError> {
    let hypertable: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
    )
    .fetch_one(pool)
    .await
    .map_err(SchemaError::Database)?;
    if hypertable {
        let is_hyper: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables \
             WHERE hypertable_name = 'positions')",
        )
        .fetch_one(pool)
        .await
        .map_err(SchemaError::Database)?;
        if is_hyper {
            return Ok(PositionsStorage::Hypertable);
        }
    }
    let partitioned: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table pt JOIN pg_class c \
         ON c.oid = pt.partrelid WHERE c.relname = 'positions' AND pt.partstrat = 'r')",
    )
    .fetch_one(pool)
    .await
    .map_err(SchemaError::Database)?;
    if partitioned {
        Ok(PositionsStorage::Partitioned)
    } else {
        Err(SchemaError::UnknownPositionsStorage)
    }
}

/// `url` with its database name replaced by `name` (query parameters kept): how tests and
/// benchmarks reach the fresh database they create on the server.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_name() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u@h:5432/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
    }
}
