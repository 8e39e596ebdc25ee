//! Integration tests of the tracker against the real PostgreSQL/TimescaleDB (see `helpers`).

mod durability;
mod helpers;
mod history;
mod ingest;
mod schema;
mod tokens;
mod traccar_client;
