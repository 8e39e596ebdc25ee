//! PostgreSQL storage (being written).
/// The PostgreSQL store.
pub struct PgStore;
