//! The tracker: couriers' phones stream GPS fixes here. It validates them, stores them durably
//! in TimescaleDB (or natively partitioned PostgreSQL), keeps each courier's latest position in
//! memory, and serves position history.
//!
//! It also owns applying the one database schema ([`schema`]), since every service that stores
//! anything depends on this crate.

pub mod schema;
