//! In-memory storage (being written).
/// The in-memory store.
pub struct MemoryStore;
