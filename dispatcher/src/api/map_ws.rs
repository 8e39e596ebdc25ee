//! The map WebSocket `/v1/map/ws` (being written).
