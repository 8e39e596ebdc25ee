//! The customer tracking link `/v1/track/{tracking_id}` (being written).
