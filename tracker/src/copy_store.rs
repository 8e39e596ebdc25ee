//! The fast [`PositionStore`]: binary `COPY` into `positions` on connections of its own
//! (tokio-postgres, which sets `TCP_NODELAY`; sqlx does not, and a `COPY`'s several writes then
//! wait on delayed ACKs). A batch is one transaction. When it meets a row already stored
//! (a resend), the batch is copied into a temporary table and inserted with
//! `ON CONFLICT DO NOTHING` instead, so each (courier, fix time) is stored once; after a
//! conflict the next batches take that path for a while, since resends come in bursts.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::SinkExt;
use futures::future::BoxFuture;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use crate::position::Position;
use crate::store::{COPY_COLUMNS, PositionStore, StoreError, encode_binary_copy};

/// Batches taken on the conflict-safe path after a conflict.
const SAFE_BATCHES_AFTER_CONFLICT: u32 = 20;

/// Why the store cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("the database needs TLS ({0:?}), which the COPY writer does not speak")]
pub struct TlsRequired(pub PgSslMode);

/// [`PositionStore`] writing with binary `COPY`.
pub struct CopyStore {
    config: tokio_postgres::Config,
    /// Connections not in use; a broken one is dropped, not returned.
    idle: Mutex<Vec<Client>>,
    /// Longest one write (connecting included) may take.
    write_timeout: Duration,
    /// Batches still to write on the conflict-safe path.
    safe_batches: AtomicU32,
}

/// A tokio-postgres configuration for the same server, user and database as `options`.
///
/// # Errors
/// [`TlsRequired`] when the options demand TLS.
pub fn client_config(options: &PgConnectOptions) -> Result<tokio_postgres::Config, TlsRequired> {
    let ssl = options.get_ssl_mode();
    if matches!(
        ssl,
        PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull
    ) {
        return Err(TlsRequired(ssl));
    }
    let mut config = tokio_postgres::Config::new();
    match options.get_socket() {
        Some(dir) => config.host_path(dir),
        None => config.host(options.get_host()),
    };
    config.port(options.get_port());
    config.user(options.get_username());
    if let Some(db) = options.get_database() {
        config.dbname(db);
    }
    let url = options.to_url_lossy();
    if let Some(password) = url.password() {
        let decoded: String = form_urlencoded::parse(format!("p={password}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        config.password(decoded);
    }
    config.application_name("tracker-writer");
    config.connect_timeout(Duration::from_secs(3));
    Ok(config)
}

impl CopyStore {
    /// A store connecting with `config`.
    pub fn new(config: tokio_postgres::Config, write_timeout: Duration) -> Self {
        CopyStore {
            config,
            idle: Mutex::new(Vec::new()),
            write_timeout,
            safe_batches: AtomicU32::new(0),
        }
    }

    async fn client(&self) -> Result<Client, tokio_postgres::Error> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(c) = idle.filter(|c| !c.is_closed()) {
            return Ok(c);
        }
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the connection breaks; the write that uses
            // it sees the error.
            let _ = connection.await;
        });
        Ok(client)
    }

    fn give_back(&self, client: Client) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(client);
    }

    async fn write_on(
        &self,
        client: &mut Client,
        data: bytes::Bytes,
    ) -> Result<u64, tokio_postgres::Error> {
        let safe = self
            .safe_batches
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if !safe {
            // A COPY outside a transaction block is a transaction of its own: all or nothing,
            // with one round trip less than BEGIN ... COMMIT.
            let copied = async {
                let sink = client
                    .copy_in(&format!(
                        "COPY positions ({COPY_COLUMNS}) FROM STDIN (FORMAT binary)"
                    ))
                    .await?;
                futures::pin_mut!(sink);
                sink.send(data.clone()).await?;
                sink.finish().await
            }
            .await;
            match copied {
                Ok(n) => return Ok(n),
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    self.safe_batches
                        .store(SAFE_BATCHES_AFTER_CONFLICT, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        let tx = client.transaction().await?;
        tx.batch_execute(
            "CREATE TEMP TABLE IF NOT EXISTS positions_incoming \
             (LIKE positions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
        )
        .await?;
        let sink = tx
            .copy_in(&format!(
                "COPY positions_incoming ({COPY_COLUMNS}) FROM STDIN (FORMAT binary)"
            ))
            .await?;
        futures::pin_mut!(sink);
        sink.send(data).await?;
        sink.finish().await?;
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO positions ({COPY_COLUMNS}) SELECT {COPY_COLUMNS} \
                     FROM positions_incoming ON CONFLICT DO NOTHING"
                ),
                &[],
            )
            .await?;
        tx.commit().await?;
        Ok(inserted)
    }
}

fn store_error(e: tokio_postgres::Error) -> StoreError {
    StoreError::Client(e.to_string())
}

impl PositionStore for CopyStore {
    fn write<'a>(&'a self, rows: &'a [Position]) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let data = encode_binary_copy(rows).freeze();
            let attempt = async {
                let mut client = self.client().await.map_err(store_error)?;
                let n = self
                    .write_on(&mut client, data)
                    .await
                    .map_err(store_error)?;
                // Only a connection that just worked goes back to the idle list.
                self.give_back(client);
                Ok(n)
            };
            tokio::time::timeout(self.write_timeout, attempt)
                .await
                .map_err(|_| StoreError::Timeout(self.write_timeout))?
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let attempt = async {
                let client = self.client().await.map_err(store_error)?;
                client.simple_query("SELECT 1").await.map_err(store_error)?;
                self.give_back(client);
                Ok(())
            };
            tokio::time::timeout(self.write_timeout, attempt)
                .await
                .map_err(|_| StoreError::Timeout(self.write_timeout))?
        })
    }
}
