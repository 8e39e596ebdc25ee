//! The environment of CONTRACT.md, read once into typed [`Settings`] with the contract's
//! defaults. Empty values count as unset; secrets (the URLs carry passwords) are
//! [`SecretString`]s, so they never show in logs or `Debug` output.

use std::net::SocketAddr;

pub use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock::Clock;

/// The settings both services read.
#[derive(Debug)]
pub struct Settings {
    /// `DATABASE_URL`: PostgreSQL/TimescaleDB; `None` means in-memory state (demo only).
    pub database_url: Option<SecretString>,
    /// `AMQP_URL`: RabbitMQ; `None` means the in-process bus (demo only).
    pub amqp_url: Option<SecretString>,
    /// `HTTP_ADDR`: API, WebSockets and web UI.
    pub http_addr: SocketAddr,
    /// `OSMAND_ADDR`: the OsmAnd / Traccar Client position endpoint.
    pub osmand_addr: SocketAddr,
    /// `TIMESCALEDB`: whether positions may become a TimescaleDB hypertable.
    pub use_timescaledb: bool,
    /// `ROAD_NETWORK`: an `.osm.pbf` extract or `osrm:http://HOST:PORT`; `None` for straight lines.
    pub road_network: Option<String>,
    /// `MAX_CONNECTIONS`: concurrent connections each server accepts.
    pub max_connections: usize,
    /// `LOG_FORMAT`: JSON logs (`json`, the default) or human-readable ones (`text`).
    pub json_logs: bool,
    /// `CLOCK_SPEEDUP` and `CLOCK_EPOCH`: simulated time for city simulations
    /// ([`Clock::warped`]); the system clock when `CLOCK_SPEEDUP` is unset or 1.
    pub clock: Clock,
}

/// Default of `HTTP_ADDR`.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// Default of `OSMAND_ADDR`.
pub const DEFAULT_OSMAND_ADDR: &str = "127.0.0.1:5055";
/// Default of `MAX_CONNECTIONS`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// A variable whose value cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Not a `host:port` socket address.
    #[error("{var}={value:?} is not a socket address (like 127.0.0.1:8080)")]
    Address {
        /// Which variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// Why it does not parse.
        #[source]
        source: std::net::AddrParseError,
    },
    /// Not one of on/off/true/false/1/0.
    #[error("{var}={value:?}: expected on or off")]
    Switch {
        /// Which variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// Not a positive whole number.
    #[error("{var}={value:?} is not a positive whole number")]
    Number {
        /// Which variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// `LOG_FORMAT` is neither `json` nor `text`.
    #[error("LOG_FORMAT={0:?}: expected json or text")]
    LogFormat(String),
    /// `CLOCK_SPEEDUP` is not a number from 0.01 to 10000.
    #[error("CLOCK_SPEEDUP={0:?}: expected a number from 0.01 to 10000")]
    Speedup(String),
    /// `CLOCK_EPOCH` is not an RFC 3339 time.
    #[error("CLOCK_EPOCH={0:?}: expected an RFC 3339 time")]
    Epoch(String),
}

impl Settings {
    /// Reads the process environment.
    ///
    /// # Errors
    /// As [`Settings::from_lookup`].
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `get` (the environment, or a map in tests).
    ///
    /// # Errors
    /// [`SettingsError`] naming the first variable whose value cannot be used.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let addr = |name: &'static str, default: &str| -> Result<SocketAddr, SettingsError> {
            let text = var(name).unwrap_or_else(|| default.to_string());
            text.trim()
                .parse()
                .map_err(|source| SettingsError::Address {
                    var: name,
                    value: text,
                    source,
                })
        };
        let use_timescaledb = match var("TIMESCALEDB") {
            None => true,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                _ => {
                    return Err(SettingsError::Switch {
                        var: "TIMESCALEDB",
                        value: v,
                    });
                }
            },
        };
        let max_connections = match var("MAX_CONNECTIONS") {
            None => DEFAULT_MAX_CONNECTIONS,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(SettingsError::Number {
                        var: "MAX_CONNECTIONS",
                        value: v,
                    });
                }
            },
        };
        let json_logs = match var("LOG_FORMAT") {
            None => true,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "json" => true,
                "text" => false,
                _ => return Err(SettingsError::LogFormat(v)),
            },
        };
        let clock = match var("CLOCK_SPEEDUP") {
            None => Clock::system(),
            Some(v) => match v.trim().parse::<f64>() {
                Ok(1.0) => Clock::system(),
                Ok(x) if (0.01..=10_000.0).contains(&x) => {
                    let epoch = match var("CLOCK_EPOCH") {
                        None => OffsetDateTime::now_utc(),
                        Some(e) => OffsetDateTime::parse(e.trim(), &Rfc3339)
                            .map_err(|_| SettingsError::Epoch(e))?,
                    };
                    Clock::warped(epoch, x)
                }
                _ => return Err(SettingsError::Speedup(v)),
            },
        };
        Ok(Settings {
            database_url: var("DATABASE_URL").map(SecretString::from),
            amqp_url: var("AMQP_URL").map(SecretString::from),
            http_addr: addr("HTTP_ADDR", DEFAULT_HTTP_ADDR)?,
            osmand_addr: addr("OSMAND_ADDR", DEFAULT_OSMAND_ADDR)?,
            use_timescaledb,
            road_network: var("ROAD_NETWORK"),
            max_connections,
            json_logs,
            clock,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_gives_the_contract_defaults() {
        let s = read(&[]).unwrap();
        assert!(s.database_url.is_none() && s.amqp_url.is_none());
        assert_eq!(s.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.osmand_addr, "127.0.0.1:5055".parse().unwrap());
        assert!(s.use_timescaledb);
        assert_eq!(s.road_network, None);
        assert_eq!(s.max_connections, 10_000);
        assert!(s.json_logs);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let s = read(&[
            ("DATABASE_URL", ""),
            ("HTTP_ADDR", " "),
            ("TIMESCALEDB", ""),
            ("ROAD_NETWORK", ""),
        ])
        .unwrap();
        assert!(s.database_url.is_none());
        assert_eq!(s.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert!(s.use_timescaledb);
        assert_eq!(s.road_network, None);
    }

    #[test]
    fn every_variable_is_read() {
        let s = read(&[
            ("DATABASE_URL", "postgres://u:pw@db/x"),
            ("AMQP_URL", "amqp://mq"),
            ("HTTP_ADDR", "0.0.0.0:80"),
            ("OSMAND_ADDR", "[::1]:5055"),
            ("TIMESCALEDB", "off"),
            ("ROAD_NETWORK", "osrm:http://osrm:5000"),
            ("MAX_CONNECTIONS", "64"),
            ("LOG_FORMAT", "text"),
        ])
        .unwrap();
        assert_eq!(
            s.database_url.as_ref().unwrap().expose_secret(),
            "postgres://u:pw@db/x"
        );
        assert!(
            !format!("{s:?}").contains("pw"),
            "secrets stay out of Debug"
        );
        assert_eq!(s.amqp_url.unwrap().expose_secret(), "amqp://mq");
        assert_eq!(s.http_addr, "0.0.0.0:80".parse().unwrap());
        assert_eq!(s.osmand_addr, "[::1]:5055".parse().unwrap());
        assert!(!s.use_timescaledb);
        assert_eq!(s.road_network.as_deref(), Some("osrm:http://osrm:5000"));
        assert_eq!(s.max_connections, 64);
        assert!(!s.json_logs);
    }

    #[test]
    fn a_clock_speedup_warps_time_from_its_epoch() {
        assert_eq!(read(&[]).unwrap().clock.speedup(), 1.0);
        assert_eq!(
            read(&[("CLOCK_SPEEDUP", "1")]).unwrap().clock.speedup(),
            1.0
        );
        let s = read(&[
            ("CLOCK_SPEEDUP", "4"),
            ("CLOCK_EPOCH", "2026-12-01T12:00:00Z"),
        ])
        .unwrap();
        assert_eq!(s.clock.speedup(), 4.0);
        // Long after the epoch, four times as far ahead of it.
        let epoch = time::macros::datetime!(2026-12-01 12:00 UTC);
        let wall: time::Duration = OffsetDateTime::now_utc() - epoch;
        let sim: time::Duration = s.clock.now() - epoch;
        assert!(
            (sim - wall * 4_i32).abs() < time::Duration::seconds(5),
            "{sim} vs {wall}"
        );
        for bad in [
            ("CLOCK_SPEEDUP", "fast"),
            ("CLOCK_SPEEDUP", "0"),
            ("CLOCK_SPEEDUP", "1e9"),
        ] {
            assert!(
                matches!(read(&[bad]), Err(SettingsError::Speedup(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            read(&[("CLOCK_SPEEDUP", "2"), ("CLOCK_EPOCH", "noon")]),
            Err(SettingsError::Epoch(_))
        ));
    }

    #[test]
    fn timescaledb_takes_the_six_spellings() {
        for (v, on) in [
            ("on", true),
            ("true", true),
            ("1", true),
            ("off", false),
            ("false", false),
            ("0", false),
        ] {
            assert_eq!(
                read(&[("TIMESCALEDB", v)]).unwrap().use_timescaledb,
                on,
                "{v}"
            );
        }
    }

    #[test]
    fn unusable_values_name_their_variable() {
        for (k, v) in [
            ("HTTP_ADDR", "localhost"),
            ("OSMAND_ADDR", "5055"),
            ("TIMESCALEDB", "maybe"),
            ("MAX_CONNECTIONS", "0"),
            ("MAX_CONNECTIONS", "many"),
            ("LOG_FORMAT", "xml"),
        ] {
            let e = read(&[(k, v)]).unwrap_err().to_string();
            assert!(e.contains(k), "{k}={v}: {e}");
        }
    }
}
