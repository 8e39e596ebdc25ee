//! Metric names, all in one place. Labels take few values (a reason, a protocol), never a
//! courier, device or token.

/// Positions received, before any check; label `protocol`.
pub const POSITIONS_RECEIVED: &str = "tracker_positions_received_total";
/// Positions refused or discarded by validation; label `reason` (see [`reason`]).
pub const POSITIONS_REJECTED: &str = "tracker_positions_rejected_total";
/// Positions committed to the database (duplicates excluded).
pub const POSITIONS_STORED: &str = "tracker_positions_stored_total";
/// Positions that were already stored (same courier and fix time).
pub const POSITIONS_DUPLICATE: &str = "tracker_positions_duplicate_total";
/// Stored positions older than the courier's latest one (kept in history only).
pub const POSITIONS_OUT_OF_ORDER: &str = "tracker_positions_out_of_order_total";
/// Requests answered 503 because the database was down, slow or the queue full; label `cause`.
pub const INGEST_UNAVAILABLE: &str = "tracker_ingest_unavailable_total";
/// Requests refused as malformed before any position could be read; label `protocol`.
pub const REQUESTS_MALFORMED: &str = "tracker_requests_malformed_total";
/// Points waiting for their commit.
pub const QUEUE_POINTS: &str = "tracker_queue_points";
/// Points per committed batch.
pub const BATCH_POINTS: &str = "tracker_batch_points";
/// Seconds one batch write took, commit included.
pub const BATCH_WRITE_SECONDS: &str = "tracker_batch_write_seconds";
/// Batch writes that failed; label `cause`.
pub const BATCH_WRITE_FAILED: &str = "tracker_batch_write_failed_total";
/// Whether the writer can currently reach the database (1) or not (0).
pub const DATABASE_UP: &str = "tracker_database_up";
/// Couriers with a known latest position.
pub const LATEST_COURIERS: &str = "tracker_latest_couriers";
/// Chunks or partitions dropped by the retention job.
pub const RETENTION_DROPPED: &str = "tracker_retention_dropped_total";

/// Values of the `reason` label of [`POSITIONS_REJECTED`].
pub mod reason {
    /// Latitude or longitude NaN, infinite or out of range.
    pub const OUT_OF_RANGE: &str = "out_of_range";
    /// Exactly (0, 0): a phone without a fix.
    pub const NULL_ISLAND: &str = "null_island";
    /// The device id belongs to no courier.
    pub const UNKNOWN_DEVICE: &str = "unknown_device";
    /// Fix time too far ahead of the server clock.
    pub const FUTURE: &str = "future";
    /// Fix time older than the accepted age.
    pub const TOO_OLD: &str = "too_old";
    /// Reported accuracy worse than the threshold.
    pub const POOR_ACCURACY: &str = "poor_accuracy";
    /// Faster than the courier's vehicle can move.
    pub const IMPOSSIBLE_JUMP: &str = "impossible_jump";
    /// A field present but unreadable (speed, altitude, ...).
    pub const MALFORMED: &str = "malformed";
}

/// Registers descriptions of every metric with the installed recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(POSITIONS_RECEIVED, "Positions received, before any check.");
    describe_counter!(
        POSITIONS_REJECTED,
        "Positions refused or discarded by validation."
    );
    describe_counter!(POSITIONS_STORED, "Positions committed to the database.");
    describe_counter!(POSITIONS_DUPLICATE, "Positions that were already stored.");
    describe_counter!(
        POSITIONS_OUT_OF_ORDER,
        "Stored positions older than the latest."
    );
    describe_counter!(INGEST_UNAVAILABLE, "Requests answered 503.");
    describe_counter!(REQUESTS_MALFORMED, "Requests refused as malformed.");
    describe_gauge!(QUEUE_POINTS, "Points waiting for their commit.");
    describe_histogram!(BATCH_POINTS, "Points per committed batch.");
    describe_histogram!(BATCH_WRITE_SECONDS, "Seconds one batch write took.");
    describe_counter!(BATCH_WRITE_FAILED, "Batch writes that failed.");
    describe_gauge!(DATABASE_UP, "Whether the writer reaches the database.");
    describe_gauge!(LATEST_COURIERS, "Couriers with a known latest position.");
    describe_counter!(
        RETENTION_DROPPED,
        "Chunks or partitions dropped by retention."
    );
}
