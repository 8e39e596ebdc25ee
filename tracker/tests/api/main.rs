//! Integration tests of the tracker against the real PostgreSQL/TimescaleDB (see `helpers`).

mod helpers;
mod schema;
