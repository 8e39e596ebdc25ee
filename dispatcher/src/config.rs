//! Settings read from the environment, with the defaults of CONTRACT.md.

use std::net::SocketAddr;

use anyhow::{Context, bail};

/// The service's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// PostgreSQL/TimescaleDB; `None` means in-memory state (demo only).
    pub database_url: Option<String>,
    /// RabbitMQ; `None` means the in-process bus (demo only).
    pub amqp_url: Option<String>,
    /// API, WebSockets and web UI.
    pub http_addr: SocketAddr,
    /// OsmAnd / Traccar Client position endpoint.
    pub osmand_addr: SocketAddr,
    /// Whether positions may become a TimescaleDB hypertable (`TIMESCALEDB=off` turns it off).
    pub use_timescaledb: bool,
}

impl Settings {
    /// Reads `DATABASE_URL`, `AMQP_URL`, `HTTP_ADDR`, `OSMAND_ADDR` and `TIMESCALEDB`.
    ///
    /// # Errors
    /// When an address does not parse or `TIMESCALEDB` is not on/off.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let addr = |name: &str, default: &str| -> anyhow::Result<SocketAddr> {
            let text = var(name).unwrap_or_else(|| default.to_string());
            text.parse()
                .with_context(|| format!("{name}={text:?} is not a socket address"))
        };
        let use_timescaledb = match var("TIMESCALEDB").as_deref() {
            None | Some("on" | "true" | "1") => true,
            Some("off" | "false" | "0") => false,
            Some(other) => bail!("TIMESCALEDB={other:?}: expected on or off"),
        };
        Ok(Settings {
            database_url: var("DATABASE_URL"),
            amqp_url: var("AMQP_URL"),
            http_addr: addr("HTTP_ADDR", "127.0.0.1:8080")?,
            osmand_addr: addr("OSMAND_ADDR", "127.0.0.1:5055")?,
            use_timescaledb,
        })
    }
}
