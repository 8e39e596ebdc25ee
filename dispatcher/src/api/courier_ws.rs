//! The courier WebSocket `/v1/courier/ws` (being written).
